"""Pretraining configuration: one dataclass tree, read from YAML or JSON, with ``key=value`` overrides.

Example (YAML)::

    dataset: enwiki-train            # built by `luke build-pretraining-dataset`
    eval_dataset: enwiki-heldout     # optional: evaluated at every checkpoint and at the end
    model: ./bert-base-uncased       # a BERT/RoBERTa transformers folder, or a LUKE folder, or a Hugging
                                     # Face Hub repo id of either (e.g. FacebookAI/roberta-base)
    model_revision: main             # optional: branch, tag or commit of a Hub repo id
    output_dir: runs/luke
    batch_size: 256                  # items per optimiser step, over all processes
    gradient_accumulation_steps: 4
    stages:
      - {name: stage1, trainable: entity, max_steps: 1000, learning_rate: 5.0e-4, warmup_steps: 100}
      - {name: stage2, trainable: all, max_steps: 1000, learning_rate: 1.0e-5, warmup_steps: 100}

Overrides use dotted paths, list items by index: ``batch_size=64``, ``stages.0.max_steps=10``,
``masking.whole_word_masking=false``. Values are parsed as YAML scalars (``1e-4``, ``true``, ``null``).
An unknown key is an error that names the closest existing key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from luke.errors import ConfigError, DataError, shorten
from luke.files import read_text, write_text_atomic


@dataclass
class MaskingConfig:
    """Dynamic masking (spec §2.6). Entities are always replaced by ``[MASK]``."""

    masked_lm_prob: float = 0.15
    random_word_prob: float = 0.1
    unmasked_word_prob: float = 0.1
    whole_word_masking: bool = True
    masked_entity_prob: float = 0.15


@dataclass
class OptimizerConfig:
    """AdamW with decoupled weight decay (no decay on biases and LayerNorm weights)."""

    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-6
    bias_correction: bool = True  # the original LUKE recipe trained without (set false to reproduce it)
    max_grad_norm: float = 0.0  # 0 disables clipping (the original: none, or 10000 in the DeepSpeed configs)


@dataclass
class StageConfig:
    """One training stage. ``trainable: entity`` freezes the word side (spec §2.9, stage 1)."""

    name: str = "stage"
    trainable: Literal["entity", "all"] = "all"
    max_steps: int = 100
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    lr_schedule: Literal["warmup_linear", "warmup_constant"] = "warmup_linear"
    # With trainable: entity, parameter-name prefixes that train as well (e.g. ["lm_head.dense.",
    # "lm_head.layer_norm."] when the word checkpoint has no MLM head, like sentence-transformers' MiniLM).
    extra_trainable: list[str] = field(default_factory=list)


@dataclass
class PretrainingConfig:
    """Everything ``luke pretrain`` needs; saved as ``config.json`` in the output folder."""

    dataset: str = ""
    model: str = ""  # a local folder, or a Hugging Face Hub repo id (luke.hub.resolve_pretrained)
    model_revision: str | None = None  # branch, tag or commit hash when `model` is a Hub repo id
    output_dir: str = ""
    eval_dataset: str | None = None
    # Initialising from a BERT/RoBERTa folder: the new entity side.
    entity_emb_size: int = 256
    use_entity_aware_attention: bool = False  # the original pretrained with vanilla attention (spec §8)
    # "random" (the original: a new N(0, 0.02) table) or "word": entity position row p starts as the word
    # position embedding of word index p, so masked entities attend to their mention from the first step.
    entity_position_init: Literal["random", "word"] = "random"
    # "random" (the original) or "words": entity row i starts as the mean word embedding of its title, and
    # entity positions, token types and LayerNorm as the word side's (needs entity_emb_size == hidden size).
    entity_init: Literal["random", "words"] = "random"
    hidden_dropout_prob: float | None = None  # None keeps the model's values
    attention_probs_dropout_prob: float | None = None
    seed: int = 0
    batch_size: int = 32  # items per optimiser step, summed over processes and accumulation steps
    gradient_accumulation_steps: int = 1
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast, fp32 master weights
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    stages: list[StageConfig] = field(
        default_factory=lambda: [
            StageConfig(name="stage1", trainable="entity", learning_rate=5e-4),
            StageConfig(name="stage2", trainable="all", learning_rate=1e-5),
        ]
    )
    save_every_steps: int = 500  # global optimiser steps between checkpoints (0: only at stage ends);
    # the eval dataset is evaluated at every checkpoint and at the end of each stage
    keep_checkpoints: int = 2
    log_every_steps: int = 10
    eval_batch_size: int = 16
    eval_max_items: int | None = None
    num_workers: int = 1  # DataLoader worker processes per training process (0 = in the main process)
    progress: bool = True
    tensorboard: bool = True

    # ---------------------------------------------------------------------------------------- checks

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work (before anything is loaded)."""
        for name in ("dataset", "model", "output_dir"):
            if not getattr(self, name):
                raise ConfigError(f"config key {name!r} is required")
        _check_paths(self)
        _check_ints(
            self,
            batch_size=(1, MAX_BATCH_SIZE),
            gradient_accumulation_steps=(1, MAX_BATCH_SIZE),
            entity_emb_size=(1, None),
            seed=(0, 2**32 - 1),
            save_every_steps=(0, None),
            keep_checkpoints=(1, None),
            log_every_steps=(1, None),
            eval_batch_size=(1, MAX_BATCH_SIZE),
            num_workers=(0, 256),
        )
        if self.eval_max_items is not None:
            _check_ints(self, eval_max_items=(1, None))
        if self.batch_size % self.gradient_accumulation_steps:
            raise ConfigError(
                f"batch_size {self.batch_size} is not divisible by gradient_accumulation_steps "
                f"{self.gradient_accumulation_steps}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if getattr(self, name) is not None:
                _check_float(self, name, 0.0, 1.0, high_open=True)
        m = self.masking
        for name in ("masked_lm_prob", "masked_entity_prob", "random_word_prob", "unmasked_word_prob"):
            _check_float(m, name, 0.0, 1.0, where="masking.")
        if m.random_word_prob + m.unmasked_word_prob > 1.0:
            raise ConfigError("masking.random_word_prob + masking.unmasked_word_prob must be at most 1")
        o = self.optimizer
        _check_float(o, "weight_decay", 0.0, None, where="optimizer.")
        _check_float(o, "beta1", 0.0, 1.0, where="optimizer.", high_open=True)
        _check_float(o, "beta2", 0.0, 1.0, where="optimizer.", high_open=True)
        _check_float(o, "eps", 0.0, None, where="optimizer.", low_open=True)
        _check_float(o, "max_grad_norm", 0.0, None, where="optimizer.")
        _check_stages(self.stages)
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be fp32 or bf16, got {shorten(repr(self.precision))}")

    # ------------------------------------------------------------------------------------------ I/O

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainingConfig:
        config = _build(cls, data, "")
        return config

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> PretrainingConfig:
        """Read a YAML/JSON file (or start from defaults when ``path`` is None), apply ``key=value``
        overrides, validate."""
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if p.is_dir():
                raise ConfigError(f"{p}: is a folder, expected a YAML or JSON config file")
            if not p.is_file():
                raise ConfigError(f"{p}: config file not found")
            try:
                text = read_text(p)
            except DataError as err:
                raise ConfigError(str(err)) from None
            data = _parse_config(p, text)
            if not isinstance(data, dict):
                raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
        for item in overrides:
            _apply_override(data, item)
        try:
            config = cls.from_dict(data)
            config.validate()
        except ConfigError as err:
            if path is None:
                raise
            raise ConfigError(f"{path}: {err}") from None
        return config


# ------------------------------------------------------------------------------------------ checks

#: items per optimiser step beyond any real run (LUKE used 2048); larger values are typos that would
#: allocate per-step index arrays of that size
MAX_BATCH_SIZE = 2**20
#: folder and file names ``luke pretrain`` writes in ``output_dir`` besides the stage folders
RESERVED_NAMES = {"final", "checkpoints", "tensorboard", "config.json", "metrics.jsonl", "training_curves.png"}
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_ints(obj: Any, where: str = "", **bounds: tuple[int, int | None]) -> None:
    for name, (low, high) in bounds.items():
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}{name} must be an integer, got {shorten(repr(value))}")
        if value < low or (high is not None and value > high):
            limit = f"between {low:,} and {high:,}" if high is not None else f"at least {low:,}"
            raise ConfigError(f"{where}{name} must be {limit}, got {value:,}")


def _check_float(
    obj: Any,
    name: str,
    low: float,
    high: float | None,
    *,
    where: str = "",
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    value = getattr(obj, name)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high)
        )
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise ConfigError(
            f"{where}{name} must be a finite number in {left}{low}, {'inf' if high is None else high}{right}, "
            f"got {shorten(repr(value))}"
        )


def _check_stages(stages: list[StageConfig]) -> None:
    if not stages:
        raise ConfigError("stages: at least one stage is needed")
    seen: set[str] = set()
    for i, stage in enumerate(stages):
        where = f"stages.{i}."
        if not isinstance(stage.name, str) or not _STAGE_NAME.match(stage.name) or stage.name in RESERVED_NAMES:
            raise ConfigError(
                f"{where}name {shorten(repr(stage.name))} cannot be a folder name in output_dir (letters, digits, "
                f"'_', '-', '.'; not one of {sorted(RESERVED_NAMES)})"
            )
        if stage.name in seen:
            raise ConfigError(f"{where}name {stage.name!r} is used by an earlier stage; stage names must differ")
        seen.add(stage.name)
        if stage.trainable not in ("entity", "all"):
            raise ConfigError(f"{where}trainable must be 'entity' or 'all', got {shorten(repr(stage.trainable))}")
        if stage.lr_schedule not in ("warmup_linear", "warmup_constant"):
            raise ConfigError(f"{where}lr_schedule must be warmup_linear or warmup_constant")
        _check_ints(stage, where, max_steps=(1, None), warmup_steps=(0, stage.max_steps))
        _check_float(stage, "learning_rate", 0.0, None, where=where, low_open=True)
        if stage.extra_trainable and stage.trainable != "entity":
            raise ConfigError(f"{where}extra_trainable only applies to trainable: entity (all parameters train)")


def _check_paths(cfg: PretrainingConfig) -> None:
    """``output_dir`` may not be one of the inputs or inside one (it would write over them)."""
    out = Path(os.path.realpath(cfg.output_dir))
    for name in ("dataset", "eval_dataset", "model"):
        value = getattr(cfg, name)
        if not value:
            continue
        source = Path(os.path.realpath(value))
        if out == source or source in out.parents:
            raise ConfigError(f"output_dir {cfg.output_dir} is {name} {value} or inside it; use a folder of its own")


# ------------------------------------------------------------------------------------------ helpers


def _parse_config(path: Path, text: str) -> Any:
    """The value of a JSON (``.json``) or YAML (anything else) config file; a syntax error is a
    :class:`ConfigError` naming the file and its 1-based line."""
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{err.lineno}: not valid JSON ({err.msg}, column {err.colno})") from None
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else f"{path}"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({shorten(problem, 200)})") from None


def _suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(choices))}"


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys and types (nested dataclasses, lists)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {shorten(repr(path))}{_suggest(str(key), names)}")
        kwargs[key] = _convert(hints[key], value, path)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{path}.")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {shorten(repr(value))}")
        return [_convert(args[0], v, f"{path}.{i}") for i, v in enumerate(value)]
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: expected one of {list(args)}, got {shorten(repr(value))}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {shorten(repr(value))}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {shorten(repr(value))}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {shorten(repr(value))}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {shorten(repr(value))}")
        return str(value)
    return value


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except Exception:
        return text
    if isinstance(value, str) and value.lower() in ("inf", "nan"):
        return text
    # YAML 1.1 reads "1e-4" as a string; accept it as a number.
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def _apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to the raw config mapping (checked later by ``_build``)."""
    if "=" not in item:
        raise ConfigError(f"override {shorten(repr(item))} is not of the form key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    value = _parse_scalar(raw)
    # Walk the dataclass tree alongside the data so that unknown keys are reported with suggestions.
    cls: Any = PretrainingConfig
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        path = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit():
                raise ConfigError(f"override {key!r}: {path!r} must be a list index")
            index = int(part)
            if index >= len(node):
                if index == len(node):
                    node.append({})
                else:
                    raise ConfigError(f"override {key!r}: index {index} is past the end of the list")
            if last:
                node[index] = value
                return
            item_type = typing.get_args(cls)[0]
            if not dataclasses.is_dataclass(item_type):
                raise ConfigError(f"override {key!r}: {path!r} is a single value, not a section with keys")
            if not isinstance(node[index], dict):
                node[index] = dataclasses.asdict(node[index]) if dataclasses.is_dataclass(node[index]) else {}
            node, cls = node[index], item_type
            continue
        names = [f.name for f in dataclasses.fields(cls)]
        if part not in names:
            raise ConfigError(f"unknown config key {shorten(repr(path))}{_suggest(part, names)}")
        hint = typing.get_type_hints(cls)[part]
        if last:
            node[part] = value
            return
        if not dataclasses.is_dataclass(hint) and typing.get_origin(hint) is not list:
            raise ConfigError(f"override {key!r}: {path!r} is a single value, not a section with keys")
        if part not in node:
            default = getattr(cls(), part)
            node[part] = (
                [dataclasses.asdict(s) for s in default]
                if isinstance(default, list)
                else (dataclasses.asdict(default) if dataclasses.is_dataclass(default) else {})
            )
        if not isinstance(node[part], dict | list):
            raise ConfigError(f"override {key!r}: {path!r} in the config file is not a section")
        node, cls = node[part], hint
