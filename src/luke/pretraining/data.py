"""Reading a pretraining dataset for training: checks, the deterministic item stream, micro-batches.

The item stream is a pure function of the seed: position ``p`` of the stream is item
``permutation(epoch)[p % N]`` with ``epoch = p // N`` and ``permutation(epoch) =
numpy.random.default_rng([seed, epoch]).permutation(N)``. Optimiser step ``s`` of the whole run consumes
stream positions ``[s·B, (s+1)·B)`` (``B`` = global batch size); inside a step, micro-batch ``j`` of process
``r`` takes the slice ``(j·W + r)·m … +m`` (``m = B / (A·W)``). The data position is therefore just the global
step: resuming needs no skipping through the data, and 1 process and W processes see the same global
batches.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from luke.entity_vocab import EntityVocab
from luke.errors import ConfigError, DatasetError, LukeError, OutputError
from luke.files import atomic_output, check_output
from luke.pretraining.collator import EntityVocabInfo, WordVocabInfo, collate, mask_item
from luke.pretraining.config import MaskingConfig

logger = logging.getLogger(__name__)


class PretrainingDataset:
    """A folder written by ``luke build-pretraining-dataset``, checked and memory-mapped."""

    def __init__(self, path: str | Path) -> None:
        from luke.wikipedia.pretraining_dataset import load_arrow, read_metadata

        self.path = Path(path)
        self.metadata: dict[str, Any] = read_metadata(self.path)
        self.data = load_arrow(self.path)
        expected = self.metadata["number_of_items"]
        if len(self.data) != expected:
            raise DatasetError(
                f"{self.path}: {len(self.data)} items in the Arrow shards but metadata.json says {expected} "
                "(a shard is truncated or from another build)"
            )
        if len(self.data) == 0:
            raise DatasetError(f"{self.path}: the dataset has no items")
        needed = {"word_ids", "entity_ids", "entity_position_ids"}
        if not needed <= set(self.data.column_names):
            raise DatasetError(f"{self.path}: columns {sorted(needed - set(self.data.column_names))} are missing")

    def __len__(self) -> int:
        return len(self.data)

    def entity_counts(self) -> np.ndarray:
        """How often each entity id occurs as a mention over the whole dataset (length = vocabulary size)."""
        ids = self.data.with_format("numpy")["entity_ids"]
        flat = np.concatenate([np.asarray(row, dtype=np.int64) for row in ids]) if len(ids) else np.zeros(0, np.int64)
        return np.bincount(flat, minlength=len(self.entity_vocab))

    @cached_property
    def tokenizer(self) -> Any:
        from luke.wikipedia.pretraining_dataset import load_tokenizer

        folder = self.path / self.metadata.get("tokenizer", {}).get("saved_to", "tokenizer/")
        try:
            return load_tokenizer(folder)
        except (LukeError, OSError) as err:  # the message names the file; anything else is a bug
            raise DatasetError(f"the dataset's tokenizer cannot be loaded: {err}") from None

    @cached_property
    def entity_vocab(self) -> EntityVocab:
        name = self.metadata.get("entity_vocab", {}).get("file", "entity_vocab.jsonl")
        try:
            return EntityVocab.load(self.path / name)
        except (LukeError, OSError) as err:  # the message names the file; anything else is a bug
            raise DatasetError(f"the dataset's entity vocabulary cannot be loaded: {err}") from None

    @property
    def tokenizer_sha256(self) -> str | None:
        return self.metadata.get("tokenizer", {}).get("sha256")

    @property
    def entity_vocab_sha256(self) -> str | None:
        return self.metadata.get("entity_vocab", {}).get("sha256")

    def word_info(self, vocab_size: int | None = None) -> WordVocabInfo:
        return WordVocabInfo.from_tokenizer(self.tokenizer, vocab_size)

    def entity_info(self) -> EntityVocabInfo:
        vocab = self.entity_vocab
        expected = self.metadata["entity_vocab"]["size"]
        if len(vocab) != expected:
            raise DatasetError(
                self.path / "metadata.json",
                f"entity_vocab.size is {expected:,} but {vocab.source or 'the entity vocabulary'} holds {len(vocab):,}"
                " entries (a file replaced after the build?)",
            )
        return EntityVocabInfo(pad_id=vocab.pad_id, mask_id=vocab.mask_id, size=len(vocab))


@dataclass
class StreamLayout:
    """How global steps map to stream positions and micro-batches (see the module docstring)."""

    num_items: int
    batch_size: int  # global, per optimiser step
    accumulation: int
    world_size: int
    seed: int

    @property
    def micro_batch_size(self) -> int:
        return self.batch_size // (self.accumulation * self.world_size)

    def check(self) -> None:
        if self.batch_size % (self.accumulation * self.world_size):
            raise ConfigError(
                f"batch_size {self.batch_size} must be divisible by gradient_accumulation_steps × processes = "
                f"{self.accumulation} × {self.world_size}"
            )

    def positions(self, step: int, micro: int, rank: int) -> np.ndarray:
        m = self.micro_batch_size
        start = step * self.batch_size + (micro * self.world_size + rank) * m
        return np.arange(start, start + m)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_items)

    def items(self, positions: np.ndarray) -> list[tuple[int, int]]:
        """(item index, epoch) for stream positions."""
        out = []
        cache: dict[int, np.ndarray] = {}
        for p in positions.tolist():
            epoch = p // self.num_items
            if epoch not in cache:
                cache[epoch] = self._permutation(epoch)
            out.append((int(cache[epoch][p % self.num_items]), epoch))
        return out


class MicroBatches(torch.utils.data.Dataset):
    """Index ``k`` = the ``k``-th micro-batch of this process from global step ``start_step`` on: a
    ``torch`` Dataset, so a ``DataLoader`` can prefetch it in worker processes."""

    def __init__(
        self,
        dataset: PretrainingDataset,
        layout: StreamLayout,
        rank: int,
        start_step: int,
        num_steps: int,
        masking: MaskingConfig,
        words: WordVocabInfo,
        entities: EntityVocabInfo,
    ) -> None:
        self.data = dataset.data
        self.layout = layout
        self.rank = rank
        self.start_step = start_step
        self.num_steps = num_steps
        self.masking = masking
        self.words = words
        self.entities = entities

    def __len__(self) -> int:
        return self.num_steps * self.layout.accumulation

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        step = self.start_step + k // self.layout.accumulation
        micro = k % self.layout.accumulation
        pairs = self.layout.items(self.layout.positions(step, micro, self.rank))
        rows = self.data[[i for i, _ in pairs]]
        examples = []
        for j, (index, epoch) in enumerate(pairs):
            item = {key: rows[key][j] for key in ("word_ids", "entity_ids", "entity_position_ids")}
            examples.append(
                mask_item(
                    item,
                    index,
                    seed=self.layout.seed,
                    epoch=epoch,
                    masking=self.masking,
                    words=self.words,
                    entities=self.entities,
                )
            )
        return collate(examples, word_pad_id=self.words.pad_id, entity_pad_id=self.entities.pad_id)


class EvalBatches(torch.utils.data.Dataset):
    """Fixed masking (epoch 0, the given seed) of the first ``max_items`` items, in order."""

    def __init__(
        self,
        dataset: PretrainingDataset,
        batch_size: int,
        seed: int,
        masking: MaskingConfig,
        words: WordVocabInfo,
        entities: EntityVocabInfo,
        max_items: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        n = len(dataset) if max_items is None else min(max_items, len(dataset))
        self.data = dataset.data
        self.batches = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)][rank::world_size]
        self.seed, self.masking, self.words, self.entities = seed, masking, words, entities

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        indices = self.batches[k]
        rows = self.data[indices]
        examples = [
            mask_item(
                {key: rows[key][j] for key in ("word_ids", "entity_ids", "entity_position_ids")},
                index,
                seed=self.seed,
                epoch=0,
                masking=self.masking,
                words=self.words,
                entities=self.entities,
            )
            for j, index in enumerate(indices)
        ]
        return collate(examples, word_pad_id=self.words.pad_id, entity_pad_id=self.entities.pad_id)


def split_by_page(
    dataset_path: str | Path, train_out: str | Path, heldout_out: str | Path, heldout_fraction: float, seed: int = 0
) -> tuple[int, int]:
    """Split a dataset by article (``page_id``) into train and held-out folders, each a complete dataset
    (metadata, tokenizer and entity vocabulary copied; item counts updated). Returns (train, held-out) items.

    Both output folders are checked before the work (they must not exist, and must differ); each is written
    under a temporary name and renamed into place when complete."""
    if not 0 < heldout_fraction < 1:
        raise ConfigError("--heldout-fraction must lie in (0, 1)")
    outputs = (
        check_output(train_out, kind="dir", what="train output folder"),
        check_output(heldout_out, kind="dir", what="held-out output folder"),
    )
    if outputs[0].absolute() == outputs[1].absolute():
        raise OutputError(f"the train and held-out output folders are the same ({outputs[0]})")
    source = PretrainingDataset(dataset_path)
    for out in outputs:
        target, src = out.resolve(), source.path.resolve()
        if target == src or src in target.parents or target in src.parents:
            raise OutputError(f"output folder {out} is, holds or lies inside the input dataset {source.path}")
    pages = sorted(set(source.data["page_id"]))
    rng = np.random.default_rng(seed)
    n_held = max(1, round(len(pages) * heldout_fraction))
    held = set(rng.permutation(pages)[:n_held].tolist())
    if n_held >= len(pages):
        raise DatasetError(f"{dataset_path}: only {len(pages)} article(s); cannot hold out {n_held}")
    counts = []
    for out, keep_held in ((outputs[0], False), (outputs[1], True)):
        indices = [i for i, p in enumerate(source.data["page_id"]) if (p in held) == keep_held]
        subset = source.data.select(indices)
        with atomic_output(out, "dir") as tmp:
            _save_split(source, subset, tmp)
            metadata = dict(source.metadata)
            metadata["number_of_items"] = len(subset)
            metadata["number_of_pages"] = n_held if keep_held else len(pages) - n_held
            metadata["split"] = {
                "source": str(source.path),
                "part": "heldout" if keep_held else "train",
                "heldout_fraction": heldout_fraction,
                "seed": seed,
                "heldout_page_ids": sorted(int(p) for p in held),
            }
            text = json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
            (tmp / "metadata.json").write_text(text, encoding="utf-8")
        counts.append(len(subset))
    return counts[0], counts[1]


def _save_split(source: PretrainingDataset, subset: Any, folder: Path) -> None:
    """Save ``subset`` (Arrow shards) with a copy of the source's tokenizer and entity vocabulary in ``folder``."""
    import shutil

    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        subset.save_to_disk(str(folder))
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
    for name in (source.metadata["tokenizer"]["saved_to"], source.metadata["entity_vocab"]["file"]):
        src = source.path / name
        if src.is_dir():
            shutil.copytree(src, folder / name)
        elif src.is_file():
            shutil.copyfile(src, folder / name)
