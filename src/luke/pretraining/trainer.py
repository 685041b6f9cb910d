"""The pretraining loop: two stages, accelerate (DDP), exact resume, atomic checkpoints, logs, export.

Loss normalisation. Each optimiser step sums the cross-entropy of every masked word (entity) over all
micro-batches of all processes and divides by the *global* number of masked words (entities), so the
gradient of a global batch does not depend on how it is split over processes or accumulation steps
(``1 process × micro-batch 8`` and ``2 processes × 4`` compute the same loss). The counts are known before
the forward pass (they are in the labels) and are summed over processes with one small all-reduce.

Checkpoints (``OUTPUT/checkpoints/step-NNNNNNNN/``): ``model.pt``, ``optimizer.pt`` (tensors and plain values,
loaded with ``torch.load(weights_only=True)``), ``scheduler.json``, ``rng-rankR.pt`` (torch, numpy, python RNG
per process, as tensors and integers) and ``trainer_state.json`` (stage, step, the open log window), written
into a temporary folder, flushed to disk and renamed; then ``checkpoints/latest`` is replaced atomically.
Only complete checkpoints are ever named by ``latest``, so a crash or a full disk during a write leaves the
previous checkpoint as the resume point. Nothing in a checkpoint is unpickled: a tampered or damaged file is
a :class:`~luke.errors.CheckpointError` naming it. The data position is the global step (see
``luke.pretraining.data``). A stage ends with its export (``OUTPUT/STAGE``) and then a checkpoint at the start
of the next stage, so a resumed run is the uninterrupted one at every point, stage boundaries included.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, ConfigError, DatasetError
from luke.files import atomic_output, check_output
from luke.modeling import LukeForMaskedLM
from luke.pretraining.collator import IGNORE_INDEX
from luke.pretraining.config import PretrainingConfig, StageConfig
from luke.pretraining.data import EvalBatches, MicroBatches, PretrainingDataset, StreamLayout
from luke.pretraining.optim import LukeAdamW
from luke.training import (
    CheckpointFolders,
    MetricsLog,
    WarmupSchedule,
    create_accelerator,
    fault,
    load_json_state,
    load_optimizer_state,
    load_rng_state,
    load_scheduler_state,
    load_tensors,
    log_bf16_choice,
    parameter_groups,
    progress_bar,
    save_json_state,
    save_rng_state,
)

logger = logging.getLogger(__name__)

ENTITY_PREFIXES = ("luke.entity_embeddings.", "entity_predictions.")
FROZEN_ALWAYS = ("luke.pooler.",)  # not used by the pretraining losses (the original excluded it too)
CHECKPOINT_DIR = "checkpoints"
# Settings that may change between a run and its resumption.
RESUMABLE_KEYS = {
    "progress",
    "num_workers",
    "tensorboard",
    "keep_checkpoints",
    "eval_batch_size",
    "log_every_steps",
    "output_dir",  # a run folder may be moved before it is resumed
}


# ------------------------------------------------------------------------------------------- the model


class PretrainingModule(nn.Module):
    """Wraps :class:`LukeForMaskedLM`: runs the encoder once and the heads only at masked positions.

    Returns summed losses and accuracy counts; the caller normalises (see the module docstring)."""

    def __init__(self, model: LukeForMaskedLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model = self.model
        out = model.luke(
            batch["input_ids"],
            attention_mask=batch["attention_mask"],
            entity_ids=batch["entity_ids"],
            entity_attention_mask=batch["entity_attention_mask"],
            entity_position_ids=batch["entity_position_ids"],
        )
        labels, entity_labels = batch["labels"], batch["entity_labels"]
        word_sel = labels != IGNORE_INDEX
        word_targets = labels[word_sel]
        word_logits = model.lm_head(out.last_hidden_state[word_sel]).float()  # (Nw, V)
        ent_sel = entity_labels != IGNORE_INDEX
        ent_targets = entity_labels[ent_sel]
        ent_logits = model.entity_predictions(out.entity_last_hidden_state[ent_sel]).float()  # (Ne, Ve)
        return {
            "mlm_sum": F.cross_entropy(word_logits, word_targets, reduction="sum"),
            "mep_sum": F.cross_entropy(ent_logits, ent_targets, reduction="sum"),
            "mlm_correct": (word_logits.argmax(-1) == word_targets).sum(),
            "mep_correct": (ent_logits.argmax(-1) == ent_targets).sum(),
            "mep_predictions": ent_logits.detach().argmax(-1),
            "mep_targets": ent_targets,
        }


def _set_dropout(model: nn.Module, hidden: float | None, attention: float | None) -> None:
    from luke.modeling import LukeSelfAttention

    if hidden is not None:
        model.config.hidden_dropout_prob = hidden
    if attention is not None:
        model.config.attention_probs_dropout_prob = attention
    for module in model.modules():
        if isinstance(module, LukeSelfAttention):
            if attention is not None:
                module.dropout.p = attention
        elif hidden is not None:
            for child in module.children():
                if isinstance(child, nn.Dropout) and not isinstance(module, LukeSelfAttention):
                    child.p = hidden


def _tokenizer_vocab(folder: Path) -> dict[str, int] | None:
    """The word vocabulary of a tokenizer stored in ``folder`` (None when there is none)."""
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab(with_added_tokens=True)
    if (folder / "vocab.txt").is_file():
        lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        return {token: i for i, token in enumerate(lines)}
    if (folder / "vocab.json").is_file():
        return json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    return None


def check_model_matches_dataset(folder: Path, dataset: PretrainingDataset, model_vocab_size: int) -> None:
    """Raise :class:`DatasetError` when the dataset was built with another tokenizer than the model's."""
    data_vocab = dataset.tokenizer.get_vocab()
    if len(data_vocab) > model_vocab_size:
        raise DatasetError(
            f"{dataset.path} was built with a tokenizer of {len(data_vocab)} tokens "
            f"({dataset.metadata.get('tokenizer', {}).get('source')}) but the model {folder} has "
            f"vocab_size {model_vocab_size}: the dataset and model use different tokenizers"
        )
    stamp = folder / "pretraining_metadata.json"
    if stamp.is_file():
        saved = json.loads(stamp.read_text()).get("tokenizer_sha256")
        if saved and dataset.tokenizer_sha256 and saved != dataset.tokenizer_sha256:
            raise DatasetError(
                f"{dataset.path} was built with a different tokenizer (sha256 {dataset.tokenizer_sha256[:12]}…) "
                f"than the model {folder} was pretrained with ({saved[:12]}…)"
            )
    model_vocab = _tokenizer_vocab(folder)
    if model_vocab is not None:
        differing = [t for t, i in data_vocab.items() if model_vocab.get(t, i) != i or t not in model_vocab]
        if differing:
            raise DatasetError(
                f"{dataset.path} was built with a different tokenizer than the one in {folder} "
                f"({len(differing)} of {len(data_vocab)} tokens differ, e.g. {differing[:3]}); rebuild the dataset "
                f"with `luke build-pretraining-dataset ... {folder}`"
            )


def load_model(config: PretrainingConfig, dataset: PretrainingDataset) -> tuple[LukeForMaskedLM, str]:
    """Build the model: a LUKE folder (continued pretraining) or a BERT/RoBERTa folder (word side); either
    may be a Hugging Face Hub repo id (``model:`` in the config, at ``model_revision``), read from the
    Hugging Face cache and downloaded when online (a local folder always wins).

    Returns (model, "luke" | "transformers"). Checks vocabulary sizes and tokenizer identity against the
    dataset's metadata."""
    from luke.hub import resolve_pretrained

    folder = resolve_pretrained(config.model, files="model", revision=config.model_revision)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder}: not a model folder (no config.json)")
    if json.loads(cfg_path.read_text()).get("model_type") == "luke":
        model, kind = _load_luke(config, dataset, folder), "luke"
    else:
        model, kind = _load_from_transformers(config, dataset, folder), "transformers"
    check_model_matches_dataset(folder, dataset, model.config.vocab_size)
    _set_dropout(model, config.hidden_dropout_prob, config.attention_probs_dropout_prob)
    return model, kind


def _load_luke(config: PretrainingConfig, dataset: PretrainingDataset, folder: Path) -> LukeForMaskedLM:
    """A LUKE folder whose entity vocabulary must be the dataset's."""
    vocab = dataset.entity_vocab
    if config.entity_init != "random":
        raise ConfigError(
            f"entity_init: {config.entity_init} only applies when starting from a BERT/RoBERTa folder; {folder} "
            "is a LUKE checkpoint whose entity table is loaded"
        )
    model = LukeForMaskedLM.from_pretrained(folder)
    if model.config.entity_vocab_size != len(vocab):
        raise DatasetError(
            f"{dataset.path} has an entity vocabulary of {len(vocab)} entities but the model {folder} has "
            f"entity_vocab_size {model.config.entity_vocab_size}: the dataset and model use different entity "
            "vocabularies"
        )
    for name in ("entity_vocab.json", "entity_vocab.jsonl", "entity_vocab.tsv"):
        if (folder / name).is_file():
            other = EntityVocab.load(folder / name)
            if other.to_dict() != vocab.to_dict():
                raise DatasetError(
                    f"{dataset.path} was built with a different entity vocabulary than {folder / name} "
                    "(same size, different titles or ids)"
                )
            break
    return model


def _load_from_transformers(config: PretrainingConfig, dataset: PretrainingDataset, folder: Path) -> LukeForMaskedLM:
    """A BERT/RoBERTa folder's word side plus a new entity side (``entity_init``, ``entity_position_init``)."""
    from luke.checkpoint import (
        copy_word_positions_to_entities,
        init_entities_from_words,
        init_from_transformers,
        title_token_ids,
    )

    model, _ = init_from_transformers(
        folder,
        LukeForMaskedLM,
        entity_vocab_size=len(dataset.entity_vocab),
        entity_emb_size=config.entity_emb_size,
        use_entity_aware_attention=config.use_entity_aware_attention,
        seed=config.seed,
    )
    if config.entity_position_init == "word":
        copy_word_positions_to_entities(model)
    if config.entity_init == "words":
        if config.entity_emb_size != model.config.hidden_size:
            raise ConfigError(
                f"entity_init: words needs entity_emb_size == the model's hidden_size "
                f"({model.config.hidden_size}), got entity_emb_size {config.entity_emb_size}"
            )
        tokenizer = dataset.tokenizer

        def encode(texts: list[str]) -> list[list[int]]:
            return tokenizer(texts, add_special_tokens=False)["input_ids"]

        n = init_entities_from_words(model, title_token_ids(dataset.entity_vocab, encode))
        logger.info("initialised %d entity embeddings from their titles' word embeddings", n)
    return model


def set_trainable(model: LukeForMaskedLM, stage: StageConfig) -> int:
    """Freeze according to the stage; returns the number of trainable parameters."""
    names = [name for name, _ in model.named_parameters()]
    unmatched = [prefix for prefix in stage.extra_trainable if not any(n.startswith(prefix) for n in names)]
    if unmatched:
        raise ConfigError(
            f"stage {stage.name}: extra_trainable {unmatched} match no parameter of the model "
            f"(names look like {names[0]!r}, {names[-1]!r})"
        )
    for name, param in model.named_parameters():
        if name.startswith(FROZEN_ALWAYS):
            param.requires_grad_(False)
        elif stage.trainable == "entity":
            param.requires_grad_(name.startswith(ENTITY_PREFIXES + tuple(stage.extra_trainable)))
        else:
            param.requires_grad_(True)
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


# --------------------------------------------------------------------------------------- checkpoints


def checkpoint_folders(output_dir: Path, keep: int | None = None) -> CheckpointFolders:
    """``OUTPUT/checkpoints/step-NNNNNNNN/`` with the ``latest`` pointer (see the module docstring)."""
    return CheckpointFolders(Path(output_dir) / CHECKPOINT_DIR, "step-*", pointer="latest", keep=keep)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The checkpoint named by ``checkpoints/latest`` if complete, else the newest complete one."""
    return checkpoint_folders(output_dir).latest()


@dataclass
class TrainerState:
    global_step: int = 0  # optimiser steps done in the whole run
    stage: int = 0  # index of the current stage
    stage_step: int = 0  # optimiser steps done in the current stage
    tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _check_position(state: TrainerState, stages: list[StageConfig], where: Path) -> None:
    """The saved step counters agree with each other and with the stages (global step = steps of the earlier
    stages + step in this stage); anything else is a damaged or edited trainer state."""
    if state.stage > len(stages):
        raise CheckpointError(f"{where}: stage {state.stage} is beyond this run's {len(stages)} stages")
    limit = stages[state.stage].max_steps if state.stage < len(stages) else 0
    if state.stage_step > limit:
        raise CheckpointError(f"{where}: stage_step {state.stage_step:,} is beyond the stage's {limit:,} steps")
    expected = sum(s.max_steps for s in stages[: state.stage]) + state.stage_step
    if state.global_step != expected:
        raise CheckpointError(
            f"{where}: global_step {state.global_step:,} does not match stage {state.stage} step "
            f"{state.stage_step:,} (expected {expected:,})"
        )


# ---------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: LukeForMaskedLM,
    dataset: PretrainingDataset,
    *,
    batch_size: int = 16,
    seed: int = 0,
    masking: Any = None,
    max_items: int | None = None,
    precision: str = "fp32",
    progress: bool = False,
    train_dataset: PretrainingDataset | None = None,
) -> dict[str, float]:
    """Held-out masked-word and masked-entity loss/accuracy (fixed masking: epoch 0 of ``seed``), plus the
    accuracy of always predicting the most frequent masked entity of this set (an upper bound on the
    "most frequent entity" baseline) and the same restricted to non-``[UNK]`` targets.  With
    ``train_dataset``, also ``mep_train_frequent_accuracy``: always predicting the entity (``[UNK]`` and
    specials excluded) that occurs most often in the training data — the baseline a model has to beat."""
    from luke.pretraining.config import MaskingConfig

    masking = masking or MaskingConfig()
    words = dataset.word_info(model.config.vocab_size)
    batches = EvalBatches(dataset, batch_size, seed, masking, words, dataset.entity_info(), max_items)
    unk = dataset.entity_vocab.unk_id
    was_training = model.training
    model.eval()
    sums, targets = _evaluation_sums(model, batches, unk, precision, progress)
    model.train(was_training)
    all_targets = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
    majority = np.bincount(all_targets).max() / len(all_targets) if len(all_targets) else 0.0
    known_targets = all_targets[all_targets != unk]
    majority_known = np.bincount(known_targets).max() / len(known_targets) if len(known_targets) else 0.0
    n_w, n_e, known = max(sums["mlm_n"], 1), max(sums["mep_n"], 1), sums["known"]
    result = {
        "mlm_loss": sums["mlm_sum"] / n_w,
        "mlm_accuracy": sums["mlm_correct"] / n_w,
        "mep_loss": sums["mep_sum"] / n_e,
        "mep_accuracy": sums["mep_correct"] / n_e,
        "mep_majority_accuracy": float(majority),
        "mep_accuracy_non_unk": sums["correct_known"] / known if known else 0.0,
        "mep_majority_accuracy_non_unk": float(majority_known),
        "masked_words": int(sums["mlm_n"]),
        "masked_entities": int(sums["mep_n"]),
        "masked_entities_non_unk": int(known),
    }
    if train_dataset is not None:
        result.update(_train_frequent_baseline(train_dataset, all_targets))
    return result


def _evaluation_sums(
    model: LukeForMaskedLM, batches: EvalBatches, unk: int, precision: str, progress: bool
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Summed losses and counts over ``batches`` (``known``: non-``[UNK]`` targets, ``correct_known``: of
    those predicted right) and the masked entity targets of each batch."""
    from tqdm import tqdm

    module = PretrainingModule(model)
    device = next(model.parameters()).device
    sums: dict[str, Any] = dict.fromkeys(("mlm_sum", "mep_sum", "mlm_correct", "mep_correct", "mlm_n", "mep_n"), 0.0)
    sums["correct_known"] = sums["known"] = 0
    targets: list[np.ndarray] = []
    for k in tqdm(range(len(batches)), desc="evaluate", unit="batch", disable=not progress):
        batch = {key: v.to(device) for key, v in batches[k].items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = module(batch)
        for key in ("mlm_sum", "mep_sum", "mlm_correct", "mep_correct"):
            sums[key] += float(out[key])
        sums["mlm_n"] += int((batch["labels"] != IGNORE_INDEX).sum())
        labels = batch["entity_labels"][batch["entity_labels"] != IGNORE_INDEX].cpu().numpy()
        sums["mep_n"] += len(labels)
        targets.append(labels)
        known_sel = out["mep_targets"] != unk
        sums["correct_known"] += int((out["mep_predictions"][known_sel] == out["mep_targets"][known_sel]).sum())
        sums["known"] += int(known_sel.sum())
    return sums, targets


def _train_frequent_baseline(train_dataset: PretrainingDataset, targets: np.ndarray) -> dict[str, float]:
    """The entity occurring most often in the training data (specials excluded) and its accuracy on ``targets``."""
    counts = train_dataset.entity_counts()
    counts[list(train_dataset.entity_vocab.special_ids().values())] = 0
    frequent = int(counts.argmax())
    return {
        "mep_train_frequent_entity": frequent,
        "mep_train_frequent_accuracy": float((targets == frequent).mean()) if len(targets) else 0.0,
    }


# ----------------------------------------------------------------------------------------- training


class _Window:
    """What the training log averages over: the optimiser steps since the last record."""

    def __init__(self) -> None:
        self.time, self.wait, self.tokens, self.steps = 0.0, 0.0, 0, 0
        # summed over processes: mlm loss, mep loss, mlm correct, mep correct, masked words, masked entities
        self.sums = torch.zeros(6, dtype=torch.float64)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``trainer_state.json`` (a resumed run continues the open window exactly)."""
        return {
            "sums": self.sums.tolist(),
            "time": self.time,
            "wait": self.wait,
            "tokens": self.tokens,
            "steps": self.steps,
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any] | None) -> _Window | None:
        """The window :meth:`to_dict` saved (None: none saved); a value of the wrong shape is a ``ValueError``."""
        if saved is None:
            return None
        window = cls()
        window.sums = torch.tensor([float(x) for x in saved["sums"]], dtype=torch.float64)
        if window.sums.shape != (6,):
            raise ValueError("window sums")
        window.time, window.wait = float(saved["time"]), float(saved["wait"])
        window.tokens, window.steps = int(saved["tokens"]), int(saved["steps"])
        return window

    def record(self, step: int, stage: str, lr: float, world: int) -> dict[str, Any]:
        """The ``metrics.jsonl`` record of this window."""
        sums = self.sums
        w, e = max(float(sums[4]), 1.0), max(float(sums[5]), 1.0)
        return {
            "step": step,
            "stage": stage,
            "loss": float(sums[0]) / w + float(sums[1]) / e,
            "mlm_loss": float(sums[0]) / w,
            "mlm_accuracy": float(sums[2]) / w,
            "mep_loss": float(sums[1]) / e,
            "mep_accuracy": float(sums[3]) / e,
            "learning_rate": lr,
            "tokens_per_second": self.tokens * world / max(self.time, 1e-9),
            "data_wait_fraction": self.wait / max(self.time, 1e-9),
            "step_time": self.time / self.steps,
        }


class Trainer:
    """Runs :class:`PretrainingConfig` (``luke pretrain``). Use :meth:`run`."""

    def __init__(self, config: PretrainingConfig, resume: bool = False) -> None:
        config.validate()
        self.config = config
        self.resume = resume
        self.output_dir = Path(config.output_dir)

    # -- setup ----------------------------------------------------------------------------------

    def _setup(self) -> None:
        from accelerate.utils import DistributedType

        cfg = self.config
        check_output(self.output_dir, kind="dir", exist_ok=True, what="output_dir")  # before any work
        self.accelerator = create_accelerator(cpu=not torch.cuda.is_available())
        acc = self.accelerator
        if acc.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
            # The loop wraps the model in its own DDP per stage and owns the optimiser and checkpoints; a
            # DeepSpeed/FSDP configuration would otherwise be silently ignored.
            raise ConfigError(
                f"accelerate is configured for {acc.distributed_type.value}, which `luke pretrain` does not support "
                "yet; launch with a plain multi-process (DDP) configuration (`torchrun --nproc_per_node N -m luke "
                "pretrain ...` or `accelerate launch` without --use_deepspeed/--use_fsdp)"
            )
        self.rank, self.world = acc.process_index, acc.num_processes
        self.is_main = acc.is_main_process
        # Inputs are checked before any heavy work (and on every rank, so all fail alike).
        self.dataset = PretrainingDataset(cfg.dataset)
        self.eval_dataset = PretrainingDataset(cfg.eval_dataset) if cfg.eval_dataset else None
        if self.eval_dataset is not None and self.eval_dataset.tokenizer_sha256 != self.dataset.tokenizer_sha256:
            raise DatasetError(f"{cfg.eval_dataset} was built with a different tokenizer than {cfg.dataset}")
        self.layout = StreamLayout(
            len(self.dataset), cfg.batch_size, cfg.gradient_accumulation_steps, self.world, cfg.seed
        )
        self.layout.check()
        torch.manual_seed(cfg.seed)
        self.model, self.init_kind = load_model(cfg, self.dataset)
        self.model.to(acc.device)
        self.words = self.dataset.word_info(self.model.config.vocab_size)
        self.entities = self.dataset.entity_info()

        self.checkpoints = checkpoint_folders(self.output_dir, keep=cfg.keep_checkpoints)
        self.checkpoint: Path | None = None
        self.window, self._resumed_window = _Window(), None
        if self.resume:
            self.checkpoint = self.checkpoints.latest()
            if self.checkpoint is None:
                raise CheckpointError(f"--resume: no complete checkpoint in {self.output_dir / CHECKPOINT_DIR}")
            saved = load_json_state(self.output_dir / "config.json", "pretraining configuration")
            current = cfg.to_dict()
            changed = sorted(k for k in current if k not in RESUMABLE_KEYS and saved.get(k) != current[k])
            if changed:
                raise ConfigError(f"--resume: the config differs from the interrupted run's in {changed}")
        else:
            ckpts = self.output_dir / CHECKPOINT_DIR
            if ckpts.is_dir() and any(ckpts.iterdir()):  # checked on every rank, so all stop alike
                raise ConfigError(
                    f"{self.output_dir} already holds checkpoints; pass --resume to continue or use a new output_dir"
                )
        acc.wait_for_everyone()
        if self.is_main and not self.resume:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.output_dir / "config.json")
        acc.wait_for_everyone()

    def _stage_objects(self, stage: StageConfig) -> None:
        cfg = self.config
        n = set_trainable(self.model, stage)
        if self.is_main:
            logger.info("stage %s: %s trainable parameters (%s)", stage.name, f"{n:,}", stage.trainable)
        wrapper = PretrainingModule(self.model)
        self.module = wrapper
        if self.world > 1:
            # A fresh DDP wrapper per stage: DDP registers only the parameters that require gradients, and the
            # set changes between stages. (accelerate set up the process group and devices; wrapping directly
            # lets the previous stage's wrapper and its gradient hooks be dropped.)
            self.module = None  # release the previous wrapper first
            self.module = nn.parallel.DistributedDataParallel(
                wrapper, find_unused_parameters=True, broadcast_buffers=False
            )
        o = cfg.optimizer
        self.optimizer = LukeAdamW(
            parameter_groups(self.model, o.weight_decay),
            lr=stage.learning_rate,
            betas=(o.beta1, o.beta2),
            eps=o.eps,
            bias_correction=o.bias_correction,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, WarmupSchedule(stage.warmup_steps, stage.max_steps, stage.lr_schedule)
        )

    # -- checkpoints ----------------------------------------------------------------------------

    def _save_checkpoint(self, state: TrainerState) -> None:
        state.extra["window"] = self.window.to_dict()

        def write(folder: Path) -> None:
            save_rng_state(folder / f"rng-rank{self.rank}.pt")
            if self.is_main:
                torch.save(self.model.state_dict(), folder / "model.pt")
                torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")
                save_json_state(folder / "scheduler.json", self.scheduler.state_dict())
                fault(f"checkpoint:{state.global_step}")

        self.checkpoints.save(f"step-{state.global_step:08d}", dict(state.__dict__), write, self.accelerator)

    def _load_checkpoint(self, path: Path) -> TrainerState:
        """The trainer state and the model weights of checkpoint ``path`` (a :class:`CheckpointError` for any
        missing, damaged or tampered file)."""
        saved = CheckpointFolders.read_state(path)
        try:
            state = TrainerState(**saved)
            ints = (state.global_step, state.stage, state.stage_step, state.tokens)
            if not all(isinstance(x, int) and x >= 0 for x in ints) or not isinstance(state.extra, dict):
                raise TypeError("bad values")
            self._resumed_window = _Window.from_dict(state.extra.pop("window", None))
        except (TypeError, ValueError, KeyError):
            raise CheckpointError(
                f"{path / 'trainer_state.json'}: not a valid trainer state (expected the keys global_step, stage, "
                "stage_step, tokens, extra with non-negative integer steps)"
            ) from None
        _check_position(state, self.config.stages, path / "trainer_state.json")
        weights = load_tensors(path / "model.pt", "model weights")  # on the CPU, copied into the model
        try:
            self.model.load_state_dict(weights)
        except Exception as err:  # noqa: BLE001 - weights of another model
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{path / 'model.pt'}: does not fit this model ({reason[:160]})") from None
        return state

    def _load_optimizer(self, path: Path) -> None:
        load_optimizer_state(self.optimizer, path / "optimizer.pt")  # cast to each parameter's device
        load_scheduler_state(self.scheduler, path / "scheduler.json")
        self._load_rng(path)

    def _load_rng(self, path: Path) -> None:
        rng = path / f"rng-rank{self.rank}.pt"
        if not rng.is_file() and rng.parent.is_dir() and self.rank > 0:
            raise CheckpointError(
                f"{rng}: missing; the checkpoint was written by fewer processes, resume with the same count"
            )
        load_rng_state(rng)

    # -- export ---------------------------------------------------------------------------------

    def export(self, folder: Path) -> None:
        """Write a ``transformers``-loadable LUKE folder with tokenizer and entity vocabulary."""
        export_model(self.model, self.dataset, folder, self.config)

    # -- the loop -------------------------------------------------------------------------------

    def _batches(self, start_step: int, num_steps: int) -> Iterator[dict[str, torch.Tensor]]:
        cfg = self.config
        micro = MicroBatches(
            self.dataset, self.layout, self.rank, start_step, num_steps, cfg.masking, self.words, self.entities
        )
        loader = torch.utils.data.DataLoader(
            micro,
            batch_size=None,
            shuffle=False,
            num_workers=cfg.num_workers,
            prefetch_factor=4 if cfg.num_workers > 0 else None,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(cfg.seed),  # never draw from the global RNG
        )
        return iter(loader)

    def run(self) -> dict[str, Any]:
        """Train all stages (or the rest of them after ``--resume``); returns the final metrics."""
        self._setup()
        cfg, acc = self.config, self.accelerator
        state = TrainerState()
        if self.checkpoint is not None:
            state = self._load_checkpoint(self.checkpoint)
            if self.is_main:
                logger.info("resuming from %s (global step %d)", self.checkpoint, state.global_step)
        log = MetricsLog(
            self.output_dir,
            self.is_main,
            cfg.tensorboard,
            state.global_step if self.checkpoint is not None else None,
        )
        final_eval: dict[str, Any] = {}
        stage_offsets = np.cumsum([0] + [s.max_steps for s in cfg.stages])
        try:
            if self.checkpoint is None and self.eval_dataset is not None:
                self._evaluate(state, log)  # step 0: the initial model, for the curves
            resume_from = self.checkpoint  # only the first stage run here continues from the checkpoint
            for stage_index in range(state.stage, len(cfg.stages)):
                stage = cfg.stages[stage_index]
                self._stage_objects(stage)
                if resume_from is not None and state.stage_step > 0:
                    self._load_optimizer(resume_from)  # mid-stage: optimiser, schedule and RNG
                elif resume_from is not None:
                    self._load_rng(resume_from)  # at a stage start: a fresh optimiser, the RNG as it was
                start = state.stage_step if resume_from is not None else 0
                resume_from = None
                state.stage, state.stage_step = stage_index, start
                state.global_step = int(stage_offsets[stage_index]) + start
                final_eval = self._train_stage(stage, state, log)
                if self.is_main:
                    self.export(self.output_dir / stage.name)
                state.stage, state.stage_step = stage_index + 1, 0
                self._save_checkpoint(state)
                fault(f"stage-end:{stage_index}")
            if self.is_main:
                self.export(self.output_dir / "final")
        finally:
            log.close()
        acc.wait_for_everyone()
        acc.end_training()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        return final_eval

    def _train_stage(self, stage: StageConfig, state: TrainerState, log: MetricsLog) -> dict[str, Any]:
        cfg = self.config
        remaining = stage.max_steps - state.stage_step
        batches = self._batches(state.global_step, remaining)
        params = [p for p in self.model.parameters() if p.requires_grad]
        autocast = (
            torch.autocast(self.accelerator.device.type, dtype=torch.bfloat16)
            if cfg.precision == "bf16"
            else nullcontext()
        )
        if cfg.precision == "bf16" and state.stage_step == 0:
            log_bf16_choice(self.accelerator.device.type)
        bar = progress_bar(stage.max_steps, state.stage_step, stage.name, cfg.progress and self.is_main, unit="step")
        self.model.train()
        window = self.window = self._resumed_window or _Window()
        self._resumed_window = None
        last_eval: dict[str, Any] = {}
        for _ in range(remaining):
            lr = self._optimizer_step(batches, params, autocast, window)
            state.global_step += 1
            state.stage_step += 1
            bar.update(1)
            if state.stage_step % cfg.log_every_steps == 0 or state.stage_step == stage.max_steps:
                record = window.record(state.global_step, stage.name, lr, self.world)
                log.log(record)
                bar.set_postfix(
                    loss=f"{record['loss']:.3f}",
                    mlm_acc=f"{record['mlm_accuracy']:.3f}",
                    mep_acc=f"{record['mep_accuracy']:.3f}",
                    tok_s=f"{record['tokens_per_second']:.0f}",
                    refresh=False,
                )
                window = self.window = _Window()
            fault(f"step:{state.global_step}")
            at_save = cfg.save_every_steps and state.global_step % cfg.save_every_steps == 0
            at_end = state.stage_step == stage.max_steps
            if self.eval_dataset is not None and (at_save or at_end):
                last_eval = self._evaluate(state, log)
            if at_save and not at_end:
                self._save_checkpoint(state)
        bar.close()
        return last_eval

    def _optimizer_step(
        self, batches: Iterator[dict[str, torch.Tensor]], params: list[nn.Parameter], autocast: Any, window: _Window
    ) -> float:
        """One optimiser step over ``gradient_accumulation_steps`` micro-batches (the loss normalised by the
        global counts, see the module docstring); adds to ``window`` and returns the learning rate used."""
        acc = self.accelerator
        t0 = time.perf_counter()
        micro_batches = []
        for _ in range(self.config.gradient_accumulation_steps):
            t_wait = time.perf_counter()
            micro_batches.append({k: v.to(acc.device) for k, v in next(batches).items()})
            window.wait += time.perf_counter() - t_wait
        counts = torch.tensor(
            [
                sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in micro_batches),
                sum(int((b["entity_labels"] != IGNORE_INDEX).sum()) for b in micro_batches),
            ],
            dtype=torch.float64,
            device=acc.device,
        )
        if self.world > 1:
            counts = acc.reduce(counts, "sum")
        n_words, n_ents = float(counts[0]), float(counts[1])
        step_sums = self._forward_backward(micro_batches, n_words, n_ents, autocast, window)
        if self.config.optimizer.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.config.optimizer.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.world > 1:
            step_sums = acc.reduce(step_sums.to(acc.device), "sum").cpu()
        window.sums += torch.cat([step_sums, torch.tensor([n_words, n_ents], dtype=torch.float64)])
        window.time += time.perf_counter() - t0
        window.steps += 1
        return lr

    def _forward_backward(
        self,
        micro_batches: list[dict[str, torch.Tensor]],
        n_words: float,
        n_ents: float,
        autocast: Any,
        window: _Window,
    ) -> torch.Tensor:
        """Gradients of the micro-batches (DDP synchronises on the last one); returns the summed losses and
        correct counts (mlm, mep, mlm correct, mep correct) of this process."""
        step_sums = torch.zeros(4, dtype=torch.float64)
        last = len(micro_batches) - 1
        for j, batch in enumerate(micro_batches):
            sync = j == last or self.world == 1
            with nullcontext() if sync else self.accelerator.no_sync(self.module), autocast:
                out = self.module(batch)
            loss = out["mlm_sum"] * (self.world / max(n_words, 1.0))
            if n_ents > 0:
                loss = loss + out["mep_sum"] * (self.world / n_ents)
            with nullcontext() if sync else self.accelerator.no_sync(self.module):
                loss.backward()
            step_sums += torch.stack(
                [out[k].detach().double().cpu() for k in ("mlm_sum", "mep_sum", "mlm_correct", "mep_correct")]
            )
            window.tokens += int(batch["attention_mask"].sum() + batch["entity_attention_mask"].sum())
        return step_sums

    def _evaluate(self, state: TrainerState, log: MetricsLog) -> dict[str, Any]:
        cfg = self.config
        if not self.is_main:
            self.accelerator.wait_for_everyone()
            return {}
        assert self.eval_dataset is not None
        result = evaluate(
            self.model,
            self.eval_dataset,
            batch_size=cfg.eval_batch_size,
            seed=cfg.seed,
            masking=cfg.masking,
            max_items=cfg.eval_max_items,
            precision=cfg.precision,
        )
        fault(f"eval:{state.global_step}")
        log.log({"step": state.global_step, **{f"eval_{k}": v for k, v in result.items()}})
        logger.info(
            "step %d held-out: mlm loss %.4f acc %.4f | entity loss %.4f acc %.4f (majority %.4f)",
            state.global_step,
            result["mlm_loss"],
            result["mlm_accuracy"],
            result["mep_loss"],
            result["mep_accuracy"],
            result["mep_majority_accuracy"],
        )
        self.accelerator.wait_for_everyone()
        return result


def export_model(model: LukeForMaskedLM, dataset: PretrainingDataset, folder: Path, config: Any = None) -> None:
    """``save_pretrained`` + the dataset's tokenizer (as a LUKE tokenizer with the entity vocabulary) +
    ``pretraining_metadata.json``, written to a temporary folder and renamed."""
    from luke.tokenization import LukeTokenizer

    folder = Path(folder)
    tokenizer_dir = dataset.path / dataset.metadata.get("tokenizer", {}).get("saved_to", "tokenizer/")
    meta = {
        "dataset": str(dataset.path),
        "tokenizer_sha256": dataset.tokenizer_sha256,
        "entity_vocab_sha256": dataset.entity_vocab_sha256,
        "max_seq_length": dataset.metadata.get("max_seq_length"),
        "max_entity_length": dataset.metadata.get("max_entity_length"),
        "max_mention_length": dataset.metadata.get("max_mention_length"),
        "pretraining_config": config.to_dict() if config is not None else None,
    }
    with atomic_output(folder, "dir") as tmp:
        model.save_pretrained(tmp)
        tokenizer = LukeTokenizer.from_pretrained(tokenizer_dir, entity_vocab=dataset.entity_vocab)
        tokenizer.save_pretrained(tmp)
        (tmp / "pretraining_metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        fault(f"export:{folder.name}")
