"""The task interface: everything task-specific, and nothing else.

A :class:`Task` turns data files into examples (``read``), examples into model features (``featurize``),
features into padded batches (``collate``), per-feature logits back into per-example predictions
(``decode``), and predictions into the task's official score (``score``).  The one training loop in
:mod:`luke.finetuning.trainer` drives all tasks through this interface; no task has a loop of its own.

Features are plain dicts of NumPy arrays (one per model input, unpadded) plus ``labels``; ``collate``
pads a list of them into the ``transformers``-named tensors that both our models and ``transformers``'
LUKE classes take.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from luke.dataclass_args import from_mapping
from luke.errors import ConfigError, DataError, shorten
from luke.files import write_text_atomic
from luke.finetuning.data import find_split_file
from luke.finetuning.options import TaskDefaults, TaskOptions

__all__ = [
    "Task",
    "TaskDefaults",
    "TaskOptions",
    "Feature",
    "collate_features",
    "entity_features",
    "UNSEEN_LABEL_POLICIES",
    "softmax",
    "sigmoid",
]

logger = logging.getLogger(__name__)

Feature = dict[str, Any]
#: What to do with a dev/test gold label that train does not have: ``error`` (default) stops with the
#: file and line; ``keep`` keeps it in the gold data for scoring (the model can never predict it, so it
#: counts as a miss) and ignores it in the dev loss.
UNSEEN_LABEL_POLICIES = ("error", "keep")
IGNORE_INDEX = -100


class Task(ABC):
    """One fine-tuning task.  Subclasses set the class attributes and implement the abstract methods.

    Args:
        labels: the label list (index = class id); ``None`` until :meth:`set_labels_from` sees train data.
        unseen_labels: policy for dev/test labels missing from train (see :data:`UNSEEN_LABEL_POLICIES`).
        options: fields of :attr:`options_class` (the others keep the task's defaults); unknown ones raise
            :class:`~luke.errors.ConfigError`.
    """

    name: ClassVar[str]
    model_class_name: ClassVar[str]  # the luke.modeling / transformers head class
    defaults: ClassVar[TaskDefaults]
    #: the task's options (flags of ``luke finetune``), with the task's defaults
    options_class: ClassVar[type[TaskOptions]] = TaskOptions
    #: file name suffix of the predictions file (``{split}_predictions.{suffix}``)
    prediction_suffix: ClassVar[str] = "jsonl"
    #: the ``luke predict`` input record, for the command's help
    raw_input: ClassVar[str]
    #: data file names tried for each split, in order
    split_files: ClassVar[dict[str, tuple[str, ...]]] = {s: (f"{s}.json",) for s in ("train", "dev", "test")}
    main_metric: ClassVar[str] = "f1"
    label_kind: ClassVar[str] = "class"  # "class" (one id per feature), "multilabel", "entity" (one id per entity)
    #: batch keys that hold training targets (left out of the batch at prediction time)
    label_keys: ClassVar[tuple[str, ...]] = ("labels",)
    #: the model keeps the entity vocabulary of its starting point (no entity-table surgery; SQuAD)
    keeps_entity_vocab: ClassVar[bool] = False
    #: alternatives a prediction lists beside its decision (relations: the top-k relations; SQuAD and ReCoRD:
    #: the n-best answers); ``luke predict --top-k`` and ``luke.pipeline(..., top_k=)`` set it per instance
    top_k: int = 5
    #: the labels are those of a loaded fine-tuned model (``luke evaluate``), not of training data: messages
    #: about unseen gold labels say so
    labels_from_model: bool = False

    def __init__(self, labels: Sequence[str] | None = None, unseen_labels: str = "error", **options: Any) -> None:
        if unseen_labels not in UNSEEN_LABEL_POLICIES:
            raise ConfigError(f"unseen_labels must be one of {UNSEEN_LABEL_POLICIES}, got {unseen_labels!r}")
        self.labels: list[str] | None = list(labels) if labels is not None else None
        self.unseen_labels = unseen_labels
        options = {k: v for k, v in options.items() if v is not None}  # None = not given
        self.options: TaskOptions = from_mapping(self.options_class, options, f"task {self.name}")
        #: the options given (not defaulted), as ``luke_task.json`` records them
        self.given_options: dict[str, Any] = {k: _plain(getattr(self.options, k)) for k in options}

    # ------------------------------------------------------------------------------------------ data
    @abstractmethod
    def read(self, path: str | Path) -> list[Any]:
        """Read one data file into examples; raise :class:`DataError` (file:line) on malformed input."""

    def load_splits(self, data_dir: str | Path, splits: Sequence[str] = ("train", "dev", "test")) -> dict[str, list]:
        """Examples of each requested split that exists in ``data_dir`` (train is required when asked for)."""
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise DataError(data_dir, "data directory does not exist")
        out: dict[str, list] = {}
        for split in splits:
            path = find_split_file(data_dir, self.split_files[split])
            if path is None:
                if split == "train":
                    names = ", ".join(self.split_files["train"])
                    raise DataError(data_dir, f"no training file for task {self.name} (looked for {names})")
                continue
            out[split] = self.read(path)
            if not out[split]:
                raise DataError(path, "no examples in file")
        return out

    @abstractmethod
    def gold_labels(self, example: Any) -> list[str]:
        """All label strings of one example (used to build and check the label set)."""

    def build_labels(self, train: Sequence[Any]) -> list[str]:
        """The label list from the training examples (sorted; subclasses put a negative class first)."""
        return sorted({label for ex in train for label in self.gold_labels(ex)})

    def set_labels_from(self, train: Sequence[Any]) -> None:
        self.labels = self.build_labels(train)
        if not self.labels:
            where = getattr(train[0], "path", None) if train else None
            raise DataError(where or "train", "the training data has no labels (no example has a gold label)")

    def check_labels(self, examples: Sequence[Any], split: str) -> None:
        """Apply the unseen-label policy to dev/test examples."""
        known = set(self.labels or ())
        for ex in examples:
            unseen = [label for label in self.gold_labels(ex) if label not in known]
            if unseen:
                if self.unseen_labels == "error":
                    raise DataError(
                        getattr(ex, "path", split),
                        f"label {shorten(unseen[0])!r} {self.unseen_reason()} (it could never be predicted); "
                        "pass --unseen-labels keep to score such gold labels as misses",
                        getattr(ex, "line", None),
                    )
                shown = [shorten(label) for label in unseen]
                logger.warning("%s: gold label(s) %s %s are kept as unpredictable", split, shown, self._unseen_short())

    def unseen_reason(self) -> str:
        """Why a gold label is unknown, for messages: not in the training data, or not among the labels of
        the loaded model (:attr:`labels_from_model`)."""
        if self.labels_from_model:
            return f"is not among the model's labels ({shorten(', '.join(self.labels or ()), 200)})"
        return "does not occur in the training data"

    def _unseen_short(self) -> str:
        return "not among the model's labels" if self.labels_from_model else "unseen in train"

    @property
    def label2id(self) -> dict[str, int]:
        if self.labels is None:
            raise RuntimeError("the task has no labels yet")
        return {label: i for i, label in enumerate(self.labels)}

    # ------------------------------------------------------------------------------------------ features
    @abstractmethod
    def featurize(self, examples: Sequence[Any], tokenizer: Any) -> list[Feature]:
        """Model features (each with ``example_index``); a long example may give several features."""

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, torch.Tensor]:
        """Pad features into a batch of tensors (model inputs + ``labels``)."""
        return collate_features(features, pad_token_id, self.label_kind)

    def model_settings(self) -> dict[str, Any]:
        """Keywords of :func:`luke.finetuning.model_io.build_for_finetuning` for this task.

        The tokenizer cuts entity mentions at ``max_mention_length`` only when that option was given (else at
        ``max_seq_length``: never); NER and ReCoRD apply their default to their own candidates."""
        o = self.options
        mention = o.max_mention_length if "max_mention_length" in self.given_options else o.max_seq_length
        return {
            "max_mention_length": mention,
            "keep_entity_vocab": self.keeps_entity_vocab,
            "entity_init": o.entity_init,
            "entity_aware_attention": not o.no_entity_aware_attention,
        }

    def prepare_model(self, model: Any) -> None:  # noqa: B027 (optional hook)
        """Task-specific changes to a freshly built model before training (e.g. freezing); default none."""

    # ------------------------------------------------------------------------------------------ inference
    @classmethod
    def load_model(
        cls, model_path: str | Path, tokenizer_path: str | Path | None = None, **hub_kwargs: Any
    ) -> tuple[Any, Any, dict[str, Any]] | None:
        """(model, tokenizer, task state) of a model folder or Hub repo id for ``luke evaluate`` / ``predict``
        when the task accepts folders other than its fine-tuned ones (entity disambiguation: a pretrained
        model, zero-shot); None (the default): a folder fine-tuned for this task, read by
        :func:`luke.finetuning.model_io.load_finetuned`."""
        return None

    def predict(
        self,
        model: Any,
        examples: Sequence[Any],
        features: Sequence[Feature],
        batch_size: int,
        pad_token_id: int,
        accelerator: Any = None,
        progress: bool = True,
        desc: str = "eval",
    ) -> list:
        """Per-example predictions of ``model`` (evaluation, ``luke predict``): by default one pass over the
        features (:func:`luke.finetuning.trainer.predict_logits`) and :meth:`decode`. A task whose inference
        is not one pass (entity disambiguation's global order) overrides this."""
        from luke.finetuning.trainer import predict_logits

        logits = predict_logits(model, self, features, batch_size, pad_token_id, accelerator, progress, desc)
        return self.decode(examples, features, logits)

    # ------------------------------------------------------------------------------------------ outputs
    def output_logits(self, outputs: Any) -> torch.Tensor:
        """The per-feature scores in a model output: ``logits`` (B, ...); QA stacks start/end (B, L, 2)."""
        return outputs.logits

    def trim_logits(self, row: np.ndarray, feature: Feature) -> np.ndarray:
        """One feature's scores without batch padding (per-entity rows cut to the feature's entities)."""
        return row[: len(feature["entity_ids"])] if row.ndim == 2 else row

    @abstractmethod
    def decode(self, examples: Sequence[Any], features: Sequence[Feature], logits: Sequence[np.ndarray]) -> list:
        """Per-example predictions from the logits of each feature (same order as ``features``)."""

    @abstractmethod
    def score(self, examples: Sequence[Any], predictions: Sequence[Any]) -> dict[str, Any]:
        """The task's official metric(s) (``self.main_metric`` among them)."""

    @abstractmethod
    def write_predictions(self, path: str | Path, examples: Sequence[Any], predictions: Sequence[Any]) -> None:
        """Write a predictions file that ``luke score`` reads back."""

    @abstractmethod
    def score_files(self, gold: str | Path | None, predictions: str | Path) -> dict[str, Any]:
        """Score a predictions file against a gold data file (``luke score``)."""

    @abstractmethod
    def examples_from_raw(self, records: Sequence[tuple[int, Any]], path: Path) -> list[Any]:
        """Examples from ``luke predict`` input records ``(line, object)``: raw text plus spans."""

    @abstractmethod
    def format_prediction(self, example: Any, prediction: Any) -> dict[str, Any]:
        """One JSON-serialisable ``luke predict`` output record."""

    # ------------------------------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        """What a fine-tuned model folder records about the task (``luke_task.json``)."""
        return {"task": self.name, "labels": self.labels, "options": self.given_options}

    def save(self, folder: str | Path) -> None:
        write_text_atomic(Path(folder, "luke_task.json"), json.dumps(self.state(), indent=2) + "\n")


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities of mutually exclusive classes (relations, NER span types, SQuAD's n-best answers)."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Independent probabilities (entity typing's labels, ReCoRD's candidates: both trained with BCE)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, np.float64)))  # no overflow for large |x|


def _plain(value: Any) -> Any:
    """JSON-friendly option values (paths as strings)."""
    return str(value) if isinstance(value, Path) else value


def entity_features(enc: Any, examples: Sequence[Any], max_seq_length: int, labels: Sequence[Any]) -> list[Feature]:
    """Features of one-input-per-example tasks (typing, relations) from a tokenizer batch ``enc``: an example
    longer than ``max_seq_length`` tokens raises :class:`DataError` (file:line); ``labels[i]`` is example i's."""
    feats = []
    for i, ex in enumerate(examples):
        ids = np.asarray(enc["input_ids"][i], np.int64)
        if len(ids) > max_seq_length:
            raise DataError(ex.path, f"{len(ids)} tokens, more than --max-seq-length {max_seq_length}", ex.line)
        feats.append(
            {
                "input_ids": ids,
                "entity_ids": np.asarray(enc["entity_ids"][i], np.int64),
                "entity_position_ids": np.asarray(enc["entity_position_ids"][i], np.int64),
                "labels": labels[i],
                "example_index": i,
            }
        )
    return feats


def _pad_stack(rows: Sequence[np.ndarray], value: int, dtype=np.int64) -> np.ndarray:
    """Stack 1-D arrays of different lengths into (B, max_len), padding with ``value``."""
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), value, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _pad_or_zeros(features: Sequence[Feature], key: str, like: np.ndarray) -> np.ndarray:
    """The features' ``key`` arrays padded with 0, or zeros shaped like ``like`` when they have none."""
    return _pad_stack([f[key] for f in features], 0) if key in features[0] else np.zeros_like(like)


def collate_features(features: Sequence[Feature], pad_token_id: int, label_kind: str) -> dict[str, torch.Tensor]:
    """Pad a list of features to the longest word / entity / mention length in the batch.

    Entity position ids are either given per feature (``entity_position_ids`` (E, M), −1 padded) or
    derived from ``entity_start_positions``/``entity_end_positions`` (inclusive token spans).  Token type
    ids come from the features when they carry them (text pairs), else zeros.  ``label_kind="span"``
    batches ``start_positions``/``end_positions`` (extractive QA).  A batch in which no feature has an
    entity is words-only (no entity inputs at all).
    """
    B = len(features)
    words = [f["input_ids"] for f in features]
    input_ids = _pad_stack(words, pad_token_id)
    attention_mask = _pad_stack([np.ones(len(w), np.int64) for w in words], 0)
    entity_ids = _pad_stack([f["entity_ids"] for f in features], 0)
    entity_attention_mask = _pad_stack([np.ones(len(f["entity_ids"]), np.int64) for f in features], 0)
    E = entity_ids.shape[1]
    batch: dict[str, np.ndarray] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": _pad_or_zeros(features, "token_type_ids", input_ids),
        "entity_ids": entity_ids,
        "entity_attention_mask": entity_attention_mask,
        "entity_token_type_ids": _pad_or_zeros(features, "entity_token_type_ids", entity_ids),
    }
    if label_kind == "span" and "start_positions" in features[0]:
        batch["start_positions"] = np.array([f["start_positions"] for f in features], np.int64)
        batch["end_positions"] = np.array([f["end_positions"] for f in features], np.int64)
    if E == 0:
        for key in ("entity_ids", "entity_attention_mask", "entity_token_type_ids"):
            del batch[key]
        return {k: torch.from_numpy(v) for k, v in batch.items()}
    if "entity_start_positions" in features[0]:
        starts = _pad_stack([f["entity_start_positions"] for f in features], 0)
        ends = _pad_stack([f["entity_end_positions"] for f in features], 0)
        batch["entity_start_positions"], batch["entity_end_positions"] = starts, ends
    if "entity_position_ids" in features[0]:
        M = max(int((f["entity_position_ids"] >= 0).sum(-1).max(initial=1)) for f in features)
        pos = np.full((B, E, M), -1, np.int64)
        for i, f in enumerate(features):
            p = f["entity_position_ids"][:, :M]
            pos[i, : p.shape[0]] = p
    else:  # spans: start + arange(M), -1 past the end
        width = np.where(entity_attention_mask > 0, ends - starts + 1, 0)
        M = max(int(width.max(initial=1)), 1)
        pos = starts[:, :, None] + np.arange(M)[None, None, :]
        pos = np.where(np.arange(M)[None, None, :] < width[:, :, None], pos, -1)
    batch["entity_position_ids"] = pos
    if "labels" in features[0]:
        if label_kind == "entity":
            batch["labels"] = _pad_stack([f["labels"] for f in features], IGNORE_INDEX)
        elif label_kind == "multilabel":
            batch["labels"] = np.stack([f["labels"] for f in features]).astype(np.float32)
        else:
            batch["labels"] = np.array([f["labels"] for f in features], np.int64)
    return {k: torch.from_numpy(v) for k, v in batch.items()}
