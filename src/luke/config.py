"""`LukeConfig`: the model's hyper-parameters, read from and written to a `transformers`-compatible
``config.json``.

Field names and meanings are exactly those of ``transformers.LukeConfig`` so a folder written here
loads in ``transformers`` and vice versa. Defaults are those of the released ``luke-base`` checkpoint
(RoBERTa values: ``layer_norm_eps=1e-5``, ``max_position_embeddings=514``, ``type_vocab_size=1``), not
``transformers.LukeConfig``'s BERT-flavoured defaults; every field is always written explicitly, so the
difference never matters for a saved folder. Keys we do not know are preserved in ``extra`` and written
back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from luke.errors import CheckpointError, ConfigError, shorten
from luke.files import read_json, write_text_atomic
from luke.hub import resolve_pretrained

CONFIG_NAME = "config.json"

# Keys that `transformers` writes but that carry no model meaning for us; dropped on read.
_IGNORED_KEYS = {"model_type", "transformers_version", "_name_or_path", "torch_dtype", "dtype"}


@dataclass
class LukeConfig:
    """Hyper-parameters of a LUKE model (field names identical to ``transformers.LukeConfig``)."""

    vocab_size: int = 50267
    entity_vocab_size: int = 500000
    hidden_size: int = 768
    entity_emb_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    use_entity_aware_attention: bool = True
    classifier_dropout: float | None = None
    pad_token_id: int = 1
    bos_token_id: int | None = 0
    eos_token_id: int | None = 2
    tie_word_embeddings: bool = True
    #: How word position ids are derived when not given. ``"roberta"`` (what ``transformers`` always
    #: does): non-pad tokens get ``pad_token_id + 1 + running index``. ``"bert"``: ``0..L-1``. Models
    #: saved for ``transformers`` must use ``"roberta"``; see ``checkpoint.convert_to_roberta_positions``.
    word_position_style: Literal["roberta", "bert"] = "roberta"
    architectures: list[str] | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    #: Unknown keys from a config.json, written back unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse sizes, ids and probabilities no model can be built from, before anything is allocated:
        one :class:`ConfigError` line saying which field and why (see :func:`validate_config`)."""
        validate_config(self)
        if self.id2label is not None:
            self.id2label = _int_keys(self.id2label)
            if self.label2id is None:
                self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 2

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # ---------------------------------------------------------------- serialisation
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LukeConfig:
        """Build a config from a ``config.json`` dictionary; unknown keys go to ``extra``."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {}
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise ConfigError(f"'extra' must be an object, got {shorten(extra)}")
        extra = dict(extra)
        for key, value in data.items():
            if key in known:
                kwargs[key] = value
            elif key not in _IGNORED_KEYS and key != "extra":
                extra[key] = value
        if data.get("model_type", "luke") not in ("luke", None):
            raise ConfigError(f"config has model_type {shorten(data['model_type'])}, expected 'luke'")
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` dictionary (``model_type: "luke"``, every field explicit)."""
        out: dict[str, Any] = {"model_type": "luke"}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name in ("architectures", "id2label", "label2id"):
                continue
            if f.name == "id2label":
                value = {str(k): v for k, v in value.items()}
            out[f.name] = value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_json_file(cls, path: str | Path) -> LukeConfig:
        """Read a ``config.json``; a file that is not UTF-8 JSON holding an object, or whose values no
        model can be built from, is an error naming the file."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no config file at {path}")
        data = read_json(path, expected=dict)
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **hub_kwargs: Any) -> LukeConfig:
        """Read ``config.json`` of a local folder or a Hub repo id (``revision=``, ``cache_dir=``,
        ``local_files_only=``, ``token=`` as in :func:`luke.hub.resolve_pretrained`); a folder without
        ``config.json`` (or a name that cannot be resolved) is a :class:`~luke.errors.CheckpointError`."""
        folder = resolve_pretrained(name_or_path, files="config", **hub_kwargs)
        if not (folder / CONFIG_NAME).is_file():
            raise CheckpointError(f"{str(name_or_path) or repr('')} is not a model folder (no {CONFIG_NAME})")
        return cls.from_json_file(folder / CONFIG_NAME)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``folder/config.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / CONFIG_NAME, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------- validation

#: Sizes that must be positive integers (a bool is not one, nor is ``3.0``).
_SIZES = (
    "vocab_size",
    "entity_vocab_size",
    "hidden_size",
    "entity_emb_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_PROBABILITIES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
_FLAGS = ("use_entity_aware_attention", "tie_word_embeddings")

#: The most memory a model's parameters may take (float32) unless ``LUKE_MAX_MODEL_BYTES`` says otherwise:
#: far beyond the largest released LUKE (mLUKE-large, ~2.3 GB), far below what a typo like
#: ``vocab_size: 1000000000000`` would ask for.
DEFAULT_MAX_MODEL_BYTES = 64 * 2**30
MAX_MODEL_BYTES_ENV = "LUKE_MAX_MODEL_BYTES"
_UNITS = {"": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20}
_UNITS |= {"g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def validate_config(config: LukeConfig, max_bytes: int | None = None) -> None:
    """Check every size, id, probability and flag of ``config``, then the memory its parameters need
    (:func:`estimated_parameters` x 4 bytes) against ``max_bytes`` (default: ``LUKE_MAX_MODEL_BYTES`` or
    64 GiB). Raises one-line :class:`ConfigError` s; allocates nothing."""
    for name in _SIZES:
        value = getattr(config, name)
        if not _is_int(value) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {shorten(value)}")
    if config.hidden_size % config.num_attention_heads:
        raise ConfigError(
            f"hidden_size ({config.hidden_size}) must be a multiple of num_attention_heads "
            f"({config.num_attention_heads})"
        )
    for name in _PROBABILITIES:
        value = getattr(config, name)
        if value is None and name == "classifier_dropout":
            continue
        if not _is_real(value) or not 0 <= value < 1:
            raise ConfigError(f"{name} must be a probability in [0, 1), got {shorten(value)}")
    if not _is_real(config.layer_norm_eps) or config.layer_norm_eps <= 0:
        raise ConfigError(f"layer_norm_eps must be a positive number, got {shorten(config.layer_norm_eps)}")
    if not _is_real(config.initializer_range) or config.initializer_range < 0:
        raise ConfigError(f"initializer_range must be a number >= 0, got {shorten(config.initializer_range)}")
    for name in _FLAGS:
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name} must be true or false, got {shorten(getattr(config, name))}")
    if not isinstance(config.hidden_act, str):
        raise ConfigError(f"hidden_act must be a name such as 'gelu', got {shorten(config.hidden_act)}")
    if config.word_position_style not in ("roberta", "bert"):
        raise ConfigError(f"word_position_style must be 'roberta' or 'bert', got {shorten(config.word_position_style)}")
    _validate_ids(config)
    _validate_labels(config)
    _check_memory(config, max_bytes)


def _validate_ids(config: LukeConfig) -> None:
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(config, name)
        if value is None and name != "pad_token_id":
            continue
        if not _is_int(value) or not 0 <= value < config.vocab_size:
            raise ConfigError(
                f"{name} must be a word id in [0, vocab_size = {config.vocab_size}), got {shorten(value)}"
            )
    first = config.pad_token_id + 1
    if config.word_position_style == "roberta" and config.max_position_embeddings <= first:
        raise ConfigError(
            f"max_position_embeddings ({config.max_position_embeddings}) must be larger than pad_token_id + 1 "
            f"({first}): RoBERTa-style positions number words from there"
        )


def _validate_labels(config: LukeConfig) -> None:
    if config.id2label is not None and not isinstance(config.id2label, dict):
        raise ConfigError(f"id2label must be an object {{id: label}}, got {shorten(config.id2label)}")
    if config.label2id is not None and not isinstance(config.label2id, dict):
        raise ConfigError(f"label2id must be an object {{label: id}}, got {shorten(config.label2id)}")
    if config.architectures is not None and (
        not isinstance(config.architectures, list) or not all(isinstance(a, str) for a in config.architectures)
    ):
        raise ConfigError(f"architectures must be a list of class names, got {shorten(config.architectures)}")


def _int_keys(id2label: dict[Any, Any]) -> dict[int, Any]:
    out = {}
    for key, label in id2label.items():
        try:
            out[int(key)] = label
        except (TypeError, ValueError):
            raise ConfigError(f"id2label keys must be integer ids, got {shorten(key)}") from None
    return out


def estimated_parameters(config: LukeConfig) -> int:
    """An upper bound of the parameters a model built from ``config`` holds (encoder, pooler, and the
    pretraining heads with an untied MLM decoder), computed from the sizes alone."""
    h, e, inner = config.hidden_size, config.entity_emb_size, config.intermediate_size
    positions = config.max_position_embeddings * h + config.type_vocab_size * h + 2 * h
    words = config.vocab_size * h + positions
    entities = config.entity_vocab_size * e + (e * h if e != h else 0) + positions
    queries = 7 if config.use_entity_aware_attention else 4
    layer = queries * (h * h + h) + 2 * h * inner + inner + h + 4 * h
    heads = (h * h + 3 * h) + config.vocab_size * (h + 1) + (h * e + 3 * e) + config.entity_vocab_size
    return words + entities + config.num_hidden_layers * layer + (h * h + h) + heads


def max_model_bytes() -> int:
    """The memory limit for a model's parameters: ``LUKE_MAX_MODEL_BYTES`` (bytes, or e.g. ``200GiB``) or
    :data:`DEFAULT_MAX_MODEL_BYTES`."""
    raw = os.environ.get(MAX_MODEL_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_MODEL_BYTES
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", raw)
    if m is None or m[2].lower() not in _UNITS:
        raise ConfigError(f"{MAX_MODEL_BYTES_ENV}={shorten(raw)}: expected a number of bytes such as 2000000 or 64GiB")
    return int(float(m[1]) * _UNITS[m[2].lower()])


def _check_memory(config: LukeConfig, max_bytes: int | None) -> None:
    limit = max_model_bytes() if max_bytes is None else max_bytes
    need = 4 * estimated_parameters(config)
    if need > limit:
        raise ConfigError(
            f"these sizes need about {_gib(need)} for the parameters alone (vocab_size {config.vocab_size:,}, "
            f"entity_vocab_size {config.entity_vocab_size:,}, entity_emb_size {config.entity_emb_size:,}, "
            f"hidden_size {config.hidden_size:,}, "
            f"num_hidden_layers {config.num_hidden_layers:,}, intermediate_size {config.intermediate_size:,}), "
            f"over the limit of {_gib(limit)}; set {MAX_MODEL_BYTES_ENV} to allow more"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"
