"""Checkpoint I/O at one boundary: `transformers`-format folders, the original project's archives, and
initialisation from BERT/RoBERTa `transformers` folders.

State-dict keys are exactly ``transformers``' LUKE keys, so loading is the identity plus a few explicit,
logged rules (``load_state_dict``):

* ``luke.`` prefix added or stripped between headed models and the bare encoder;
* entity-aware query weights (``w2e_query``/``e2w_query``/``e2e_query``) missing from a checkpoint are
  copied from that layer's ``query`` (the original pretraining used vanilla attention);
* tied weights (entity decoder = entity table, MLM decoder = word embeddings) are re-tied, and untied
  when a checkpoint carries a different MLM decoder (as ``transformers`` 5.x does);
* a tensor whose shape disagrees with the model raises an error naming it.

``pytorch_model.bin`` files are read with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import json
import logging
import lzma
import pickle
import re
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from luke.config import LukeConfig
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, ConfigError, LukeError, TokenizerError, error_summary, shorten
from luke.files import atomic_output, read_json
from luke.modeling import MODEL_CLASSES, LukeForMaskedLM, LukeModel, LukePreTrainedModel

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
LEGACY_WEIGHTS_NAME = "pytorch_model.bin"
_HEAD_PREFIXES = ("lm_head.", "entity_predictions.", "classifier.", "qa_outputs.")
_EA_QUERY = re.compile(r"^(.*encoder\.layer\.\d+\.attention\.self\.)(w2e_query|e2w_query|e2e_query)\.(weight|bias)$")


@dataclass
class LoadReport:
    """What ``load_state_dict`` did besides copying tensors one to one."""

    missing_keys: list[str] = field(default_factory=list)  # model tensors left at their initial values
    unexpected_keys: list[str] = field(default_factory=list)  # checkpoint tensors nobody used
    copied_queries: list[str] = field(default_factory=list)  # entity-aware queries copied from `query`
    untied: list[str] = field(default_factory=list)  # tied weights that the checkpoint untied
    fresh_keys: list[str] = field(default_factory=list)  # expected missing tensors (a new head, a new entity side)

    def __bool__(self) -> bool:
        return bool(self.missing_keys or self.unexpected_keys)


# ----------------------------------------------------------------------------------------- reading


def weights_file(path: str | Path) -> Path:
    """The weights file of ``path``: the file itself, or a folder's ``model.safetensors`` /
    ``pytorch_model.bin``."""
    path = Path(path)
    if path.is_dir():
        for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} contains neither {WEIGHTS_NAME} nor {LEGACY_WEIGHTS_NAME}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` or ``pytorch_model.bin`` (a file, or a folder containing one); a
    truncated or corrupt file is a :class:`CheckpointError` naming it."""
    path = weights_file(path)
    if path.suffix == ".safetensors":
        safetensors_shapes(path)  # a truncated or garbled file is reported here, naming it
        try:
            return load_file(str(path))
        except Exception as err:  # SafetensorError and friends
            raise CheckpointError(f"{path}: not a readable safetensors file ({error_summary(err)})") from None
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (an interrupted copy or download?)")
    state = torch_load_safely(path, "weights-only PyTorch checkpoint")
    if isinstance(state, dict) and "module" in state and isinstance(state["module"], dict):
        state = state["module"]  # DeepSpeed model-states file
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return state


def torch_load_safely(path: str | Path, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values, never code. Any failure (a tampered
    pickle, a truncated zip, garbage) is one :class:`CheckpointError` line naming the file and ``what`` it
    should hold; torch's warnings about the file are not printed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Detected pickle protocol …": the error below says it all
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors have many types; report the file
        raise CheckpointError(f"{path}: not a valid {what} file ({_load_failure(err)})") from None


def _load_failure(err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words (never torch's advice to retry
    with ``weights_only=False``, which would run whatever code a tampered file holds)."""
    text = str(err)
    unsupported = re.search(r"Unsupported (global|operand)[^\n.]*", text)
    if isinstance(err, pickle.UnpicklingError) or unsupported:
        found = f": {shorten(unsupported.group(0), 100)}" if unsupported else ""
        return f"it holds objects other than tensors and plain values{found}; refused, since loading it could run code"
    return error_summary(err)


def safetensors_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` from a ``.safetensors`` file's header, without reading the tensors.

    The header is checked against the file: a file too short for its header or for the tensors the
    header lists (a truncated download), or a header that is not the format's JSON, is a
    :class:`CheckpointError` naming the file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, too short for a header)")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise CheckpointError(
                f"{path}: truncated or not a safetensors file (header of {n:,} bytes announced, file has {size:,})"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not a JSON object)")
    shapes: dict[str, tuple[int, ...]] = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            shape = tuple(int(d) for d in info["shape"])
            begin, stop = (int(o) for o in info["data_offsets"])
        except (TypeError, KeyError, ValueError):
            raise CheckpointError(f"{path}: corrupt safetensors header (entry {shorten(name)})") from None
        shapes[name] = shape
        end = max(end, stop, begin)
    if end > size - 8 - n:
        raise CheckpointError(
            f"{path}: truncated: its tensors need {end + 8 + n:,} bytes, the file has {size:,} "
            "(an interrupted copy or download?)"
        )
    return shapes


def weight_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of a checkpoint (file or folder); reads only the header of a
    ``.safetensors`` file, and a ``.bin`` file memory-mapped where its format allows."""
    path = weights_file(path)
    if path.suffix == ".safetensors":
        return safetensors_shapes(path)
    return {k: tuple(v.shape) for k, v in read_state_dict(path).items()}


_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
_PREFIXES = ("module.", "luke.", "bert.", "roberta.")


def _shape_rules(config: LukeConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Tensor name (without ``luke.``) -> (shape the config implies, the fields that decide it)."""
    h = config.hidden_size
    return {
        "embeddings.word_embeddings.weight": ((config.vocab_size, h), "vocab_size, hidden_size"),
        "embeddings.position_embeddings.weight": ((config.max_position_embeddings, h), "max_position_embeddings"),
        "embeddings.token_type_embeddings.weight": ((config.type_vocab_size, h), "type_vocab_size"),
        "entity_embeddings.entity_embeddings.weight": (
            (config.entity_vocab_size, config.entity_emb_size),
            "entity_vocab_size, entity_emb_size",
        ),
        "encoder.layer.0.intermediate.dense.weight": ((config.intermediate_size, h), "intermediate_size"),
    }


def _plain_key(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def config_contradictions(
    config: LukeConfig, shapes: dict[str, tuple[int, ...]], *, fewer_layers_ok: bool = False
) -> list[str]:
    """What ``config`` says that the weights' ``shapes`` (``{name: shape}``) contradict: table sizes,
    widths and the number of layers; one sentence each, empty when they agree. A config with fewer layers
    than the weights (a deliberately truncated model) counts only unless ``fewer_layers_ok``."""
    plain = {_plain_key(k): tuple(v) for k, v in shapes.items()}
    found = []
    for name, (expected, fields) in _shape_rules(config).items():
        got = plain.get(name)
        if got is not None and got != expected:
            found.append(f"{name} has shape {tuple(got)} in the weights, but the config ({fields}) needs {expected}")
    layers = {int(m[1]) for k in plain if (m := _LAYER.search(f".{k}"))}
    if layers:
        n = max(layers) + 1
        if config.num_hidden_layers > n:
            found.append(f"the config has num_hidden_layers {config.num_hidden_layers:,} but the weights hold {n}")
        elif config.num_hidden_layers < n and not fewer_layers_ok:
            found.append(f"the config has num_hidden_layers {config.num_hidden_layers} but the weights hold {n}")
    return found


def check_config_matches(
    config: LukeConfig, shapes: dict[str, tuple[int, ...]], where: str | Path, *, fewer_layers_ok: bool = True
) -> None:
    """Refuse (:class:`CheckpointError` naming ``where``) a config the weights contradict, before a model
    is built from it: a million layers over weights that hold two is never allocated."""
    found = config_contradictions(config, shapes, fewer_layers_ok=fewer_layers_ok)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise CheckpointError(f"{where}: config and weights disagree: {found[0]}{more}")


def entity_vocab_contradictions(vocab: EntityVocab, shapes: dict[str, tuple[int, ...]], where: str | Path) -> list[str]:
    """A sentence when the entity vocabulary ``vocab`` (read from ``where``) has another size than the
    entity table in the weights' ``shapes``; empty when they agree (or the weights have no table)."""
    plain = {_plain_key(k): v for k, v in shapes.items()}
    table = plain.get("entity_embeddings.entity_embeddings.weight")
    if table is None or table[0] == len(vocab):
        return []
    return [f"the entity vocabulary {where} has {len(vocab):,} entries but the entity table has {table[0]:,} rows"]


def check_entity_vocab_size(vocab: EntityVocab, config: LukeConfig, where: str | Path) -> None:
    """Refuse an entity vocabulary whose size is not the model's entity table's (``entity_vocab_size``):
    ids past the table crash at run time, rows past the vocabulary are never used."""
    if len(vocab) != config.entity_vocab_size:
        raise CheckpointError(
            f"{where}: the entity vocabulary has {len(vocab):,} entries but the entity table has "
            f"{config.entity_vocab_size:,} rows"
        )


def _normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Legacy spellings -> current ones: DDP ``module.``, TF-style ``gamma/beta``, BERT MLM head names."""
    out = {}
    for key, value in state.items():
        if key.endswith(".position_ids"):  # a buffer old `transformers` versions saved
            continue
        key = key.removeprefix("module.")
        key = re.sub(r"\.gamma$", ".weight", key)
        key = re.sub(r"\.beta$", ".bias", key)
        key = key.replace("cls.predictions.transform.LayerNorm.", "lm_head.layer_norm.")
        key = key.replace("cls.predictions.transform.dense.", "lm_head.dense.")
        key = key.replace("cls.predictions.decoder.", "lm_head.decoder.")
        key = key.replace("cls.predictions.bias", "lm_head.bias")
        out[key] = value
    return out


# ----------------------------------------------------------------------------------------- loading


def load_state_dict(
    model: LukePreTrainedModel, state: dict[str, torch.Tensor], expected_missing: tuple[str, ...] = ()
) -> LoadReport:
    """Copy ``state`` into ``model`` following the rules in the module docstring; returns a report.

    Missing tensors whose names (without ``luke.``) start with one of ``expected_missing`` are left out
    of the report and not warned about (e.g. the entity side when starting from a BERT checkpoint)."""
    headed = hasattr(model, "luke")
    own = model.state_dict()
    state = _renamed_for(own, _normalise_keys(state), headed)
    ignored = getattr(model, "ignored_checkpoint_prefixes", ())  # e.g. the MLM head for entity disambiguation
    state = {k: v for k, v in state.items() if not (ignored and k.startswith(ignored))}
    report = LoadReport()
    _match_entity_aware_queries(own, state, report)
    if isinstance(model, LukeForMaskedLM):
        if _untie_if_different(model, state, report):
            own = model.state_dict()
        state.pop("entity_predictions.decoder.weight", None)
    _copy_tensors(model, own, state, report)
    report.unexpected_keys = sorted(k for k in state if k not in own)
    if expected_missing:
        fresh = [k for k in report.missing_keys if k.removeprefix("luke.").startswith(expected_missing)]
        report.missing_keys = [k for k in report.missing_keys if k not in fresh]
        report.fresh_keys = fresh
        logger.info("freshly initialised as expected: %d tensors", len(fresh))
    model.tie_weights()
    _log_report(report, headed)
    return report


def _renamed_for(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], headed: bool) -> dict[str, torch.Tensor]:
    """``state`` with the keys the model uses: headed models keep the encoder under ``luke.``, the bare encoder
    has no prefix; ``lm_head.bias`` is carried as ``lm_head.decoder.bias``."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if headed and not key.startswith("luke.") and f"luke.{key}" in own:
            key = f"luke.{key}"
        elif not headed and key.startswith("luke."):
            key = key[len("luke.") :]
        renamed[key] = value
    if "lm_head.decoder.bias" not in renamed and "lm_head.bias" in renamed:
        renamed["lm_head.decoder.bias"] = renamed["lm_head.bias"]
    renamed.pop("lm_head.bias", None)
    return renamed


def _match_entity_aware_queries(
    own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], report: LoadReport
) -> None:
    """Entity-aware queries: copy ``query`` where the checkpoint has none; drop them if the model has none."""
    for key in list(own):
        m = _EA_QUERY.match(key)
        if m and key not in state:
            source = f"{m.group(1)}query.{m.group(3)}"
            if source in state:
                state[key] = state[source].clone()
                report.copied_queries.append(key)
    for key in list(state):
        if _EA_QUERY.match(key) and key not in own:
            state.pop(key)
            logger.info("ignoring %s: the model does not use entity-aware attention", key)


def _untie_if_different(model: LukeForMaskedLM, state: dict[str, torch.Tensor], report: LoadReport) -> bool:
    """Untie the MLM decoder from the word embeddings when the checkpoint's two differ; True if it did."""
    word = state.get("luke.embeddings.word_embeddings.weight")
    decoder = state.get("lm_head.decoder.weight")
    if decoder is None or word is None or not model.config.tie_word_embeddings:
        return False
    if decoder.shape == word.shape and torch.equal(decoder, word):
        return False
    model.config.tie_word_embeddings = False
    model.lm_head.decoder.weight = nn.Parameter(model.lm_head.decoder.weight.detach().clone())
    report.untied.append("lm_head.decoder.weight")
    return True


def _copy_tensors(
    model: nn.Module, own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], report: LoadReport
) -> None:
    """Copy every tensor of ``own`` (aliases once) from ``state``; record the missing ones in ``report``."""
    tied = _tied_keys(model)
    with torch.no_grad():
        params = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers())
        for key, target in own.items():
            # `lm_head.bias` and `lm_head.decoder.bias` are one parameter; named_parameters() lists the former
            # first, so the latter counts as the alias, yet it is the key the state dict carries (see above).
            if (key in tied and key != "lm_head.decoder.bias") or key == "lm_head.bias":
                continue
            if key not in state:
                report.missing_keys.append(key)
                continue
            value = state[key]
            if value.shape != target.shape:
                raise CheckpointError(
                    f"checkpoint tensor {key} has shape {tuple(value.shape)} but the model (config) expects "
                    f"{tuple(target.shape)}"
                )
            params[key].copy_(value)


def _log_report(report: LoadReport, headed: bool) -> None:
    if report.copied_queries:
        logger.info("initialised %d entity-aware query tensors from `query`", len(report.copied_queries))
    if report.missing_keys:
        logger.warning("newly initialised (not in checkpoint): %s", ", ".join(report.missing_keys))
    heads = [k for k in report.unexpected_keys if not headed and k.startswith(_HEAD_PREFIXES)]
    if heads:  # a headed checkpoint loaded into the bare encoder: normal, like transformers
        logger.info("ignoring %d task/pretraining head tensors", len(heads))
    if len(heads) < len(report.unexpected_keys):
        logger.warning("unused checkpoint tensors: %s", ", ".join(k for k in report.unexpected_keys if k not in heads))


def _tied_keys(model: nn.Module) -> set[str]:
    """Keys that are aliases of another parameter (they are loaded through the tensor they alias)."""
    seen: dict[int, str] = {}
    aliases = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            aliases.add(name)
        else:
            seen[id(param)] = name
    return aliases


def load_pretrained(
    cls: type[LukePreTrainedModel],
    name_or_path: str | Path,
    *,
    config: LukeConfig | None = None,
    output_loading_info: bool = False,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
    **config_overrides: Any,
) -> Any:
    """Build ``cls`` from a model folder or a Hugging Face Hub repo id and load its weights.

    Args:
        cls: the model class (``LukeModel``, ``LukeForMaskedLM``, ``LukeFor*``).
        name_or_path: a local folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``,
            written here or by ``transformers``; a local folder always wins), or a Hub repo id such as
            ``"studio-ousia/luke-base"`` (see :func:`luke.hub.resolve_pretrained`).
        config: a config to use instead of the saved ``config.json``.
        output_loading_info: also return a :class:`LoadReport`.
        revision, cache_dir, local_files_only, token: for a repo id, as in ``transformers``.
        **config_overrides: config fields that override the saved config (e.g.
            ``use_entity_aware_attention=False``, ``id2label=...``).

    Returns:
        The model in eval mode, or ``(model, LoadReport)`` with ``output_loading_info=True``.

    Raises:
        CheckpointError: the name cannot be resolved (one line naming the id), the folder holds another
            kind of model (``… is a 'bert' model (BertForMaskedLM), not LUKE``) or weights that do not fit.
    """
    from luke.hub import resolve_pretrained

    folder = resolve_pretrained(
        name_or_path,
        files="model",
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
    )
    if config is None:
        if not (folder / "config.json").is_file():  # named as the caller gave it ("" is the current folder)
            raise CheckpointError(f"{str(name_or_path) or repr('')} is not a model folder (no config.json)")
        check_is_luke(folder, name_or_path)
        config = LukeConfig.from_pretrained(folder)
    for key, value in config_overrides.items():
        if not hasattr(config, key):
            raise TypeError(f"unknown option {key!r} (not a LukeConfig field)")
        setattr(config, key, value)
    config.validate()
    state = read_state_dict(folder)
    check_config_matches(config, {k: tuple(v.shape) for k, v in state.items()}, weights_file(folder))
    model = cls(config)
    report = load_state_dict(model, state)
    model.eval()
    return (model, report) if output_loading_info else model


def check_is_luke(folder: str | Path, name: str | Path | None = None) -> None:
    """Raise :class:`CheckpointError` when ``folder/config.json`` describes another kind of model than LUKE
    (mLUKE and LUKE-Japanese are ``model_type: luke``): ``NAME is a 'bert' model (BertForMaskedLM), not
    LUKE``. A missing or unreadable config is left to the config reader to report."""
    path = Path(folder) / "config.json"
    try:
        data = read_json(path, expected=dict)
    except (OSError, LukeError):
        return
    model_type = data.get("model_type")
    if model_type in (None, "luke"):
        return
    architectures = data.get("architectures")
    what = f" ({', '.join(map(str, architectures))})" if isinstance(architectures, list) and architectures else ""
    raise CheckpointError(f"{name if name is not None else folder} is a {shorten(model_type)!r} model{what}, not LUKE")


# ----------------------------------------------------------------------------------------- saving


def save_pretrained(model: LukePreTrainedModel, folder: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` (keys as ``transformers``), atomically per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]
    state = model.state_dict()
    # Aliases: `lm_head.bias` is `lm_head.decoder.bias`; the entity decoder is the entity table. The MLM
    # decoder is written even when tied, because transformers 5.x does not re-tie it on load; with
    # tie_word_embeddings false transformers ties nothing, so the aliases are written too (else it would
    # start them from random values).
    if model.config.tie_word_embeddings:
        for key in ("lm_head.bias", "entity_predictions.decoder.weight"):
            state.pop(key, None)
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state.items():
        ptr = value.untyped_storage().data_ptr()
        value = value.detach().contiguous()
        if ptr in seen:
            value = value.clone()
        seen.add(ptr)
        tensors[key] = value
    with atomic_output(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    model.config.save_pretrained(folder)


def model_class_for(config: LukeConfig, state_keys: set[str] | None = None) -> type[LukePreTrainedModel]:
    """The model class named in ``config.architectures`` (or guessed from the weights)."""
    for name in config.architectures or []:
        if name in MODEL_CLASSES:
            return MODEL_CLASSES[name]
    if state_keys and any(k.startswith(("lm_head.", "entity_predictions.")) for k in state_keys):
        return LukeForMaskedLM
    return LukeModel


# ---------------------------------------------------------------------------- word position schemes


def convert_to_roberta_positions(model: LukePreTrainedModel) -> None:
    """Turn a model with BERT-style (0-based) word positions into RoBERTa-style ones, in place.

    ``transformers``' LUKE always numbers words from ``pad_token_id + 1``; shifting the position table
    down by that offset (row ``p + pad + 1`` <- old row ``p``) gives identical outputs there. The entity
    position table (0-based word indices, not shifted) is extended with unused rows to the same size.
    """
    config = model.config
    if config.word_position_style == "roberta":
        return
    base: LukeModel = model.luke if hasattr(model, "luke") else model  # type: ignore[assignment]
    offset = config.pad_token_id + 1
    size = config.max_position_embeddings + offset
    word_old = base.embeddings.position_embeddings.weight.detach()
    word_new = torch.zeros(size, word_old.shape[1], dtype=word_old.dtype)
    word_new[offset:] = word_old
    ent_old = base.entity_embeddings.position_embeddings.weight.detach()
    ent_new = torch.zeros(size, ent_old.shape[1], dtype=ent_old.dtype)
    ent_new[: ent_old.shape[0]] = ent_old
    config.max_position_embeddings = size
    config.word_position_style = "roberta"
    base.embeddings.position_embeddings = nn.Embedding.from_pretrained(
        word_new, freeze=False, padding_idx=config.pad_token_id
    )
    base.entity_embeddings.position_embeddings = nn.Embedding.from_pretrained(ent_new, freeze=False)


def add_entity_marker_rows(model: LukePreTrainedModel, tokenizer: Any, name: str | Path, archive: str | Path) -> bool:
    """Give ``model`` word rows for the tokenizer's ``<ent>``/``<ent2>`` markers, as the original conversion
    did (spec §4.3): when the tokenizer is exactly the model's words + the two markers (ids ``V``, ``V+1``),
    the word table (and an MLM head's decoder and bias) grows by two rows copied from ``@`` and ``#``.

    A tokenizer that fits the table as it is changes nothing (False); any other size is a
    :class:`TokenizerError` naming ``name`` (the ``--tokenizer``), ``archive`` and the tokenizer to give.
    Returns whether rows were added."""
    rows, size = model.config.vocab_size, len(tokenizer)
    if size <= rows:
        return False
    markers = (tokenizer.entity_1_token_id, tokenizer.entity_2_token_id)
    if size != rows + 2 or markers != (rows, rows + 1):
        trained = str(model.config.extra.get("bert_model_name", "")) or "bert_model_name in its metadata.json"
        raise TokenizerError(
            f"--tokenizer {name}: {size - 2:,} word tokens besides <ent>/<ent2>, but the model in {archive} has "
            f"{rows:,} word rows: give the word tokenizer it was trained with ({trained})"
        )
    init_from = {}
    for marker, token, label in zip(markers, ("@", "#"), ("<ent>", "<ent2>"), strict=True):
        source = tokenizer.convert_tokens_to_ids(token)
        if isinstance(source, int) and 0 <= source < rows:
            init_from[marker] = source
        else:
            logger.warning("%s has no %r: %s starts from random values", name, token, label)
    model.resize_token_embeddings(rows + 2, init_from=init_from)
    return True


# ------------------------------------------------------------------------- BERT / RoBERTa folders


def copy_word_positions_to_entities(model: LukePreTrainedModel) -> None:
    """Entity position row p <- the word position embedding of word index p (RoBERTa-style word rows are
    offset by ``pad_token_id + 1``)."""
    base = model.luke if hasattr(model, "luke") else model
    word = base.embeddings.position_embeddings.weight
    entity = base.entity_embeddings.position_embeddings.weight
    offset = model.config.pad_token_id + 1 if model.config.word_position_style == "roberta" else 0
    n = min(entity.shape[0], word.shape[0] - offset)
    with torch.no_grad():
        entity[:n] = word[offset : offset + n]


def init_entities_from_words(model: LukePreTrainedModel, title_token_ids: dict[int, list[int]]) -> int:
    """Give a freshly initialised entity side the meaning of its titles' words: entity row i <- the mean
    word embedding of ``title_token_ids[i]``; entity positions, token types and LayerNorm <- the word
    side's.  An entity then enters the encoder like the bag of its title's words at the mention, instead of
    as noise (useful when fine-tuning with entity features from a BERT/RoBERTa start, where no pretrained
    entity table exists).  Needs ``entity_emb_size == hidden_size``.  Returns the number of rows set."""
    base = model.luke if hasattr(model, "luke") else model
    if model.config.entity_emb_size != model.config.hidden_size:
        raise ConfigError("init_entities_from_words needs entity_emb_size == hidden_size")
    words, ents = base.embeddings, base.entity_embeddings
    copy_word_positions_to_entities(model)
    done = 0
    with torch.no_grad():
        ents.token_type_embeddings.weight.copy_(words.token_type_embeddings.weight)
        ents.LayerNorm.load_state_dict(words.LayerNorm.state_dict())
        table = ents.entity_embeddings.weight
        for entity_id, ids in title_token_ids.items():
            if ids:
                table[entity_id] = words.word_embeddings.weight[ids].mean(0)
                done += 1
    return done


def title_token_ids(vocab: EntityVocab, encode: Callable[[list[str]], list[list[int]]]) -> dict[int, list[int]]:
    """``{entity id: word-piece ids of its title}`` for every non-special entity of ``vocab`` (the first title
    of an id), ``encode`` being a batch tokenizer call without special tokens — the input of
    :func:`init_entities_from_words`."""
    special = set(vocab.special_ids().values())
    titles: dict[int, str] = {}
    for (title, _), entity_id in vocab.items():
        if entity_id not in special:
            titles.setdefault(entity_id, title)
    return dict(zip(titles, encode(list(titles.values())), strict=True))


_BERT_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)


def init_from_transformers(
    folder: str | Path,
    cls: type[LukePreTrainedModel] = LukeModel,
    *,
    entity_vocab_size: int,
    entity_emb_size: int | None = 256,
    use_entity_aware_attention: bool = True,
    word_position_style: str = "roberta",
    seed: int | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
    **config_overrides: Any,
) -> tuple[LukePreTrainedModel, LoadReport]:
    """Build a LUKE model whose word side comes from a BERT or RoBERTa ``transformers`` folder, or from a
    Hugging Face Hub repo id of one (``bert-base-uncased``, ``FacebookAI/roberta-base``: read from the
    Hugging Face cache, downloaded when online; ``revision``, ``cache_dir``, ``local_files_only`` and
    ``token`` as in ``transformers``; a local folder always wins).

    The entity side (table, projection, entity positions/types, entity head) is freshly initialised;
    entity-aware queries start as copies of ``query``. BERT checkpoints number positions from 0; by
    default their position table is shifted so the model is ``transformers``-compatible (see
    ``convert_to_roberta_positions``); pass ``word_position_style="bert"`` to keep 0-based positions.
    Returns the model and a report of unused (e.g. NSP head) and newly initialised tensors. With ``seed``
    the new tensors are drawn per module from that seed (``LukePreTrainedModel.init_by_name``).
    """
    from luke.hub import resolve_pretrained

    name = folder
    hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
    folder = resolve_pretrained(folder, files="model", **hub)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json (expected a BERT/RoBERTa transformers folder)")
    src = read_json(cfg_path, expected=dict)
    model_type = src.get("model_type")
    if model_type not in ("bert", "roberta", "xlm-roberta", "camembert"):
        where = cfg_path if Path(name) == folder else f"{name} ({cfg_path})"
        raise CheckpointError(f"{where}: model_type {model_type!r} is not BERT or RoBERTa-like")
    bert_style = model_type == "bert"
    absent = [k for k in _BERT_KEYS if k not in src]
    if absent:
        raise CheckpointError(f"{cfg_path}: no {', '.join(absent)} (not a complete BERT/RoBERTa config)")
    try:
        config = LukeConfig(
            vocab_size=src["vocab_size"],
            entity_vocab_size=entity_vocab_size,
            hidden_size=src["hidden_size"],
            entity_emb_size=entity_emb_size or src["hidden_size"],
            num_hidden_layers=src["num_hidden_layers"],
            num_attention_heads=src["num_attention_heads"],
            intermediate_size=src["intermediate_size"],
            hidden_act=src.get("hidden_act", "gelu"),
            hidden_dropout_prob=src.get("hidden_dropout_prob", 0.1),
            attention_probs_dropout_prob=src.get("attention_probs_dropout_prob", 0.1),
            max_position_embeddings=src["max_position_embeddings"],
            type_vocab_size=src.get("type_vocab_size", 2),
            initializer_range=src.get("initializer_range", 0.02),
            layer_norm_eps=src.get("layer_norm_eps", 1e-12),
            use_entity_aware_attention=use_entity_aware_attention,
            pad_token_id=src.get("pad_token_id", 0 if bert_style else 1),
            bos_token_id=src.get("bos_token_id"),
            eos_token_id=src.get("eos_token_id"),
            word_position_style="bert" if bert_style else "roberta",
            extra={"bert_model_name": str(src.get("_name_or_path", name if Path(name) != folder else folder.name))},
            **config_overrides,
        )
    except ConfigError as err:
        raise ConfigError(f"{cfg_path} with the LUKE settings given: {err}") from None
    state = {}
    for key, value in read_state_dict(folder).items():
        for prefix in ("bert.", "roberta."):
            key = key.removeprefix(prefix)
        state[key] = value
    check_config_matches(config, {k: tuple(v.shape) for k, v in state.items()}, weights_file(folder))
    if seed is not None:
        torch.manual_seed(seed)
    model = cls(config)
    report = load_state_dict(
        model, state, expected_missing=("entity_embeddings.", "entity_predictions.", "classifier.", "qa_outputs.")
    )
    if seed is not None:  # the new parts start from the seed alone, whatever else the model holds
        model.init_by_name(report.fresh_keys, seed)
    if word_position_style == "roberta":
        convert_to_roberta_positions(model)
    return model, report


# ------------------------------------------------------------------------- original LUKE archives


@dataclass
class OriginalArchive:
    """An original-project model archive, loaded."""

    model: LukePreTrainedModel
    entity_vocab: Any  # luke.entity_vocab.EntityVocab
    metadata: dict[str, Any]


def load_original_archive(path: str | Path, *, use_entity_aware_attention: bool = True) -> OriginalArchive:
    """Load an original LUKE archive: a ``.tar[.gz|.bz2|.xz]`` or a folder with ``pytorch_model.bin``,
    ``metadata.json`` and ``entity_vocab.tsv`` / ``entity_vocab.jsonl`` (spec §4.2).

    The model config comes from ``metadata["model_config"]``: RoBERTa-based models keep RoBERTa
    positions (``pad_token_id=1``), BERT-based ones keep 0-based positions (convert with
    ``convert_to_roberta_positions`` before exporting to ``transformers``).
    """

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no archive at {path}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = path
        if path.is_file():
            try:
                with tarfile.open(path) as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as err:  # bz2 raises OSError
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise CheckpointError(f"{path}: not a readable tar archive ({shorten(reason, 160)})") from None
            folder = _find_archive_root(Path(tmp), path)
        try:
            metadata, entity_vocab, state = _read_archive_folder(folder, path)
        except LukeError as err:
            if folder == path:
                raise
            # name the archive and its member, never the temporary folder it was unpacked into
            raise type(err)(str(err).replace(f"{tmp}/", f"{path} member ")) from None
    if not isinstance(metadata.get("model_config"), dict) or "hidden_size" not in metadata["model_config"]:
        raise CheckpointError(f"{path}: metadata.json has no model_config object with hidden_size")
    mc = dict(metadata["model_config"])
    roberta = "roberta" in str(mc.get("bert_model_name", ""))
    known = set(LukeConfig.__dataclass_fields__) - {"extra", "architectures", "id2label", "label2id"}
    kwargs = {k: v for k, v in mc.items() if k in known}
    kwargs["entity_emb_size"] = mc.get("entity_emb_size") or mc["hidden_size"]
    kwargs["pad_token_id"] = 1 if roberta else mc.get("pad_token_id", 0)
    kwargs["word_position_style"] = "roberta" if roberta else "bert"
    kwargs["use_entity_aware_attention"] = use_entity_aware_attention
    extra = {k: v for k, v in mc.items() if k not in known and k in ("bert_model_name",)}
    try:
        config = LukeConfig(**kwargs, extra=extra)
    except ConfigError as err:
        raise ConfigError(f"{path}: metadata.json model_config: {err}") from None
    check_config_matches(config, {k: tuple(v.shape) for k, v in state.items()}, path, fewer_layers_ok=False)
    model = model_class_for(config, set(state))(config)
    report = load_state_dict(model, state)
    if report.missing_keys:
        raise CheckpointError(f"{path}: checkpoint lacks tensors: {', '.join(report.missing_keys)}")
    return OriginalArchive(model=model.eval(), entity_vocab=entity_vocab, metadata=metadata)


def _read_archive_folder(folder: Path, path: Path) -> tuple[dict[str, Any], EntityVocab, dict[str, torch.Tensor]]:
    """``metadata.json``, the entity vocabulary and the weights of an original archive's (unpacked) folder."""
    for name in ("metadata.json", LEGACY_WEIGHTS_NAME):
        if not (folder / name).is_file():
            hint = ""
            if (folder / "config.json").exists() and not (folder / "config.json").is_file():
                hint = " (and its config.json is not a readable file, so it is no transformers folder either)"
            raise CheckpointError(f"{path}: archive has no {name}{hint}")
    metadata = read_json(folder / "metadata.json", expected=dict)
    vocab_file = next((folder / n for n in ("entity_vocab.jsonl", "entity_vocab.tsv") if (folder / n).is_file()), None)
    if vocab_file is None:
        raise CheckpointError(f"{path}: archive has no entity_vocab.jsonl or entity_vocab.tsv")
    return metadata, EntityVocab.load(vocab_file), _normalise_keys(read_state_dict(folder / LEGACY_WEIGHTS_NAME))


def _find_archive_root(root: Path, archive: Path) -> Path:
    for candidate in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if (candidate / "metadata.json").is_file():
            return candidate
    raise CheckpointError(f"{archive}: archive has no metadata.json")
