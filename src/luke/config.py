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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from luke.errors import CheckpointError, ConfigError

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
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.word_position_style not in ("roberta", "bert"):
            raise ConfigError(f"word_position_style must be 'roberta' or 'bert', got {self.word_position_style!r}")
        for name in (
            "vocab_size",
            "entity_vocab_size",
            "hidden_size",
            "entity_emb_size",
            "num_hidden_layers",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.id2label is not None:
            self.id2label = {int(k): v for k, v in self.id2label.items()}
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
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = dict(data.get("extra", {}))
        for key, value in data.items():
            if key in known:
                kwargs[key] = value
            elif key not in _IGNORED_KEYS and key != "extra":
                extra[key] = value
        if data.get("model_type", "luke") not in ("luke", None):
            raise ConfigError(f"config has model_type {data['model_type']!r}, expected 'luke'")
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
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no config file at {path}") from None
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(data)
        except TypeError as err:
            raise CheckpointError(f"{path}: {err}") from None

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> LukeConfig:
        """Read ``folder/config.json``."""
        return cls.from_json_file(Path(folder) / CONFIG_NAME)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``folder/config.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
