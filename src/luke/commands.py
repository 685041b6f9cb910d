"""Model utility commands: ``luke convert`` and ``luke info``."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from luke import hub
from luke.checkpoint import (
    add_entity_marker_rows,
    check_entity_vocab_size,
    check_is_luke,
    config_contradictions,
    convert_to_roberta_positions,
    entity_vocab_contradictions,
    load_original_archive,
    model_class_for,
    read_state_dict,
    weight_shapes,
    weights_file,
)
from luke.command_args import add_command, add_json_flag, add_paths, add_revision
from luke.config import LukeConfig
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, ConfigError, LukeError, TokenizerError, shorten
from luke.files import atomic_output, check_output, read_json
from luke.finetuning.original_tasks import ORIGINAL_TASKS
from luke.kernels.cpu import cpu_info, describe

_ORIGINAL_TASK_NAMES = tuple(ORIGINAL_TASKS)
#: what may be a Hub repo id (``name`` or ``org/name``); anything else is a local path
_FILE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".bin", ".pt", ".safetensors")

_CONVERT = """convert an original LUKE model archive into a transformers-format folder

Convert an original LUKE archive (.tar.gz / .tar.bz2 / .tar.xz or a folder with pytorch_model.bin,
metadata.json and entity_vocab.tsv|jsonl) into a folder with config.json, model.safetensors and
entity_vocab.json that both luke and transformers load. BERT-based archives get their word-position table
shifted to transformers' RoBERTa-style numbering.

With --task, convert an original task checkpoint (the checkpoint file named in the original README,
given as --task-checkpoint) for entity_typing, relation_classification, ner, record or squad into a
folder that luke evaluate and luke predict use, its labels in the original code's order. ARCHIVE and
--tokenizer may be Hub repo ids.
"""

_INFO = """print a checkpoint's config, parameter counts and vocabulary sizes; --system: this machine

Print a LUKE model folder's (or original archive's) config, parameter counts and vocab sizes. With --system
(alone or beside a checkpoint), also what this CPU offers: model, the flags that matter (AVX2, AVX-512,
bf16, AMX), torch's CPU capability, oneDNN/MKL, threads, and whether bf16 runs natively or slowly (emulated).
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``luke convert`` and ``luke info`` to the ``luke`` parser."""
    p = add_command(sub, "convert", _convert, _CONVERT)
    p.add_argument("archive", help="original archive file or folder, or a Hub repo id holding one")
    add_paths(p, output_dir="folder to write")
    p.add_argument(
        "--no-entity-aware-attention",
        action="store_true",
        help="save with use_entity_aware_attention=false (default: true, queries copied from `query`)",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="the word tokenizer to save beside the model: a local folder (e.g. roberta-base files) or a Hub "
        "repo id (needed with --task)",
    )
    p.add_argument(
        "--task",
        default=None,
        help="convert an original task checkpoint for this task: " + ", ".join(_ORIGINAL_TASK_NAMES),
    )
    p.add_argument(
        "--task-checkpoint",
        type=Path,
        default=None,
        metavar="FILE",
        help="the original task checkpoint (the --checkpoint-file of the original README), with --task",
    )
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --task: the classifier's labels, one per line in row order (default: the original task "
        "code's order for its dataset: Open Entity, TACRED, CoNLL-2003)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT_DIR if it exists")
    add_revision(p, "ARCHIVE")

    p = add_command(sub, "info", _info, _INFO)
    p.add_argument(
        "checkpoint", nargs="?", default=None, help="model folder, original archive, or a Hub repo id (org/name)"
    )
    add_revision(p, "CHECKPOINT")
    p.add_argument("--system", action="store_true", help="describe this machine's CPU and torch build")
    add_json_flag(p)


def _convert(args: argparse.Namespace) -> int:
    _check_task_flags(args)
    archive = _local_or_hub(args.archive, "archive", args.revision)
    tokenizer_dir = _local_or_hub(args.tokenizer, "tokenizer") if args.tokenizer is not None else None
    inputs = [archive, tokenizer_dir, args.task_checkpoint, args.labels]
    out = check_output(args.output_dir, kind="dir", overwrite=args.overwrite, what="output folder", inputs=inputs)
    if not archive.exists():
        raise CheckpointError(f"no archive at {archive}")
    if archive.is_dir() and (archive / "config.json").is_file() and not (archive / "metadata.json").exists():
        _refuse_model_folder(archive, args.archive)
    if tokenizer_dir is not None and not tokenizer_dir.is_dir():
        raise TokenizerError(f"--tokenizer {args.tokenizer}: no such folder")
    if args.task is not None:
        return _convert_task(args, archive, tokenizer_dir, out)
    archive_data = load_original_archive(archive, use_entity_aware_attention=not args.no_entity_aware_attention)
    model = archive_data.model
    check_entity_vocab_size(archive_data.entity_vocab, model.config, archive)
    tokenizer = None
    if tokenizer_dir is not None:
        from luke.tokenization import LukeTokenizer

        tokenizer = LukeTokenizer.from_pretrained(tokenizer_dir, entity_vocab=archive_data.entity_vocab)
        add_entity_marker_rows(model, tokenizer, args.tokenizer, args.archive)
    convert_to_roberta_positions(model)
    with atomic_output(out, kind="dir") as tmp:
        model.save_pretrained(tmp)
        archive_data.entity_vocab.save(tmp / "entity_vocab.json")
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    print(f"wrote {type(model).__name__} ({model.num_parameters():,} parameters) to {out}")
    return 0


def _refuse_model_folder(folder: Path, name: str) -> None:
    """``folder`` has a ``config.json`` and no ``metadata.json``: say what it is instead of converting it."""
    check_is_luke(folder, name)  # another kind of model: "NAME is a 'bert' model (BertModel), not LUKE"
    try:
        model_type = read_json(folder / "config.json", expected=dict).get("model_type")
    except LukeError:
        model_type = None
    if model_type == "luke":
        raise CheckpointError(
            f"{name} is a transformers-format LUKE folder, not an original archive: it needs no conversion "
            f"(luke info {name} describes it)"
        )
    raise CheckpointError(
        f"{name} is not an original LUKE archive (no metadata.json) and its config.json names no model_type "
        "'luke': nothing to convert"
    )


def _check_task_flags(args: argparse.Namespace) -> None:
    """The task-checkpoint flags go together; refused combinations say which flag is missing."""
    if args.task is None:
        for flag, value in (("--task-checkpoint", args.task_checkpoint), ("--labels", args.labels)):
            if value is not None:
                raise ConfigError(f"{flag} needs --task (one of {', '.join(_ORIGINAL_TASK_NAMES)})")
        return
    if args.task not in ORIGINAL_TASKS:
        raise ConfigError(f"--task {shorten(args.task)!r}: unknown task; choose from {', '.join(ORIGINAL_TASKS)}")
    if args.task_checkpoint is None:
        raise ConfigError(f"--task {args.task} needs --task-checkpoint FILE (the original task checkpoint)")
    if not args.task_checkpoint.exists():
        raise CheckpointError(f"--task-checkpoint {args.task_checkpoint}: no such file or folder")
    if args.tokenizer is None:
        raise ConfigError(
            f"--task {args.task} needs --tokenizer: the word tokenizer the archive was trained with (a folder "
            "or a Hub repo id, e.g. roberta-large)"
        )
    if args.no_entity_aware_attention:
        raise ConfigError(
            "--no-entity-aware-attention: the original task models were fine-tuned with entity-aware attention"
        )


def _convert_task(args: argparse.Namespace, archive: Path, tokenizer_dir: Path | None, out: Path) -> int:
    """``luke convert ARCHIVE OUT --task T --task-checkpoint FILE``: a fine-tuned folder for ``luke evaluate``."""
    from luke.finetuning.original_tasks import convert_task_checkpoint, read_labels_file

    labels = read_labels_file(args.labels) if args.labels is not None else None
    model, tokenizer, task = convert_task_checkpoint(
        archive, args.task, args.task_checkpoint, tokenizer_dir, labels=labels
    )
    with atomic_output(out, kind="dir") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        task.save(tmp)
    shown = ", ".join(task.labels[:5]) + (", ..." if len(task.labels) > 5 else "")
    print(f"wrote {type(model).__name__} for {task.name} ({len(task.labels)} labels: {shown}) to {out}")
    return 0


def _local_or_hub(name: str, files: hub.Files, revision: str | None = None) -> Path:
    """``name`` as a local path when it exists or names a file (``.tar.gz``, ``.bin``, ...) or cannot be a Hub
    repo id; else the repo's snapshot folder in the Hugging Face cache (downloaded when online; ``files`` says
    which, see :mod:`luke.hub`)."""
    path = Path(name)
    if path.exists() or name.endswith(_FILE_SUFFIXES) or not hub.is_repo_id(name):
        return path
    return hub.resolve_pretrained(name, files=files, revision=revision)


def _info_location(name: str, revision: str | None) -> Path:
    """Where ``luke info NAME`` reads: a local path, or a Hub repo's snapshot folder, which holds a model
    (``config.json``) or, failing that, an original archive (``metadata.json``, what ``luke convert`` takes)."""
    try:
        return _local_or_hub(name, "model", revision)
    except CheckpointError as err:
        try:
            folder = hub.resolve_pretrained(name, files="archive", revision=revision)
        except CheckpointError:
            raise err from None
        if (folder / "metadata.json").is_file() and not (folder / "config.json").exists():
            return folder
        raise


def _info(args: argparse.Namespace) -> int:
    if args.checkpoint is None:
        if not args.system:
            raise ConfigError("give a CHECKPOINT to describe, or --system for this machine")
        if args.json:
            print(json.dumps(_system_dict(True), indent=2))
        else:
            _print_system()
        return 0
    path = _info_location(args.checkpoint, args.revision)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if path.is_dir() and not (path / "config.json").exists() and not (path / "metadata.json").exists():
        raise CheckpointError(
            f"{args.checkpoint}: neither a model folder (no config.json) nor an original LUKE archive "
            "(no metadata.json)"
        )
    contradictions: list[str] = []
    if path.is_dir() and (path / "config.json").is_file():
        check_is_luke(path, args.checkpoint)
        config = LukeConfig.from_pretrained(path)
        sizes, shapes = _folder_sizes(path)
        cls_name = model_class_for(config, set(sizes)).__name__
        contradictions = config_contradictions(config, shapes)
        vocab_file = path / "entity_vocab.json"
        if vocab_file.is_file():
            contradictions += entity_vocab_contradictions(EntityVocab.load(vocab_file), shapes, vocab_file)
    else:
        archive = load_original_archive(path)
        config = archive.model.config
        cls_name = type(archive.model).__name__
        state = archive.model.state_dict()
        sizes = _dedup_sizes(state)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        contradictions = entity_vocab_contradictions(archive.entity_vocab, shapes, path)
    counts = _count(sizes)
    weights = _weights_summary(shapes)
    info = {
        "class": cls_name,
        "parameters": counts,
        "vocab_size": config.vocab_size,
        "entity_vocab_size": config.entity_vocab_size,
        "weights": weights,
        "contradictions": contradictions,
        "config": config.to_dict(),
    }
    if args.json:
        print(json.dumps(info | _system_dict(args.system), indent=2))
        return 0
    _print_info(args.checkpoint, cls_name, counts, config, weights, contradictions)
    if args.system:
        _print_system()
    return 0


def _system_dict(wanted: bool) -> dict:
    """``{"system": ...}`` for ``luke info --system --json`` (``{}`` when not ``wanted``)."""
    return {"system": cpu_info().to_dict()} if wanted else {}


def _print_system() -> None:
    """The "machine" section of ``luke info --system``: CPU, flags, torch's view, what bf16 will be like."""
    print("machine:")
    for line in describe(cpu_info()):
        print(f"  {line}")


def _print_info(
    path: str, cls_name: str, counts: dict[str, int], config: LukeConfig, weights: dict, contradictions: list[str]
) -> None:
    print(f"{path}: {cls_name}")
    for group, n in counts.items():
        print(f"  {group:<28} {n:>14,}")
    print(f"  word vocab {config.vocab_size:,}, entity vocab {config.entity_vocab_size:,}")
    print(
        f"  hidden {config.hidden_size}, layers {config.num_hidden_layers}, heads {config.num_attention_heads}, "
        f"entity emb {config.entity_emb_size}, entity-aware attention {config.use_entity_aware_attention}"
    )
    print("  weights: " + ", ".join(f"{k} {_fmt(v)}" for k, v in weights.items()))
    for line in contradictions:
        print(f"  CONTRADICTION: {line}")


def _fmt(value: object) -> str:
    return " x ".join(f"{d:,}" for d in value) if isinstance(value, tuple | list) else f"{value:,}"


def _folder_sizes(folder: Path) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """Element counts (tied aliases once) and shapes of a folder's weights; a ``.safetensors`` file's
    header is all that is read."""
    if weights_file(folder).suffix == ".safetensors":
        shapes = weight_shapes(folder)
        return {k: math.prod(v) for k, v in shapes.items()}, shapes
    state = read_state_dict(folder)
    return _dedup_sizes(state), {k: tuple(v.shape) for k, v in state.items()}


def _dedup_sizes(state: dict) -> dict[str, int]:
    sizes, seen = {}, set()
    for key, tensor in state.items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.shape)
        if ident not in seen:
            seen.add(ident)
            sizes[key] = tensor.numel()
    return sizes


def _weights_summary(shapes: dict[str, tuple[int, ...]]) -> dict[str, object]:
    """What the weights themselves say: table shapes and the number of layers."""
    plain = {k.removeprefix("luke."): v for k, v in shapes.items()}
    out: dict[str, object] = {}
    for label, key in (
        ("word table", "embeddings.word_embeddings.weight"),
        ("entity table", "entity_embeddings.entity_embeddings.weight"),
        ("positions", "embeddings.position_embeddings.weight"),
        ("intermediate", "encoder.layer.0.intermediate.dense.weight"),
    ):
        if key in plain:
            out[label] = list(plain[key])
    layers = {int(m[1]) for k in plain if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    out["layers"] = max(layers) + 1 if layers else 0
    return out


def _count(sizes: dict[str, int]) -> dict[str, int]:
    """Parameter counts by group from ``{tensor name: elements}`` (aliases already removed)."""
    groups = {"entity table": 0, "entity-aware queries": 0, "heads": 0, "rest of encoder": 0}
    for key, n in sizes.items():
        if key in ("lm_head.bias", "entity_predictions.decoder.weight") or key.endswith("position_ids"):
            continue
        name = key.removeprefix("luke.")
        if name.startswith("entity_embeddings.entity_embeddings"):
            group = "entity table"
        elif any(q in name for q in ("w2e_query", "e2w_query", "e2e_query")):
            group = "entity-aware queries"
        elif name.startswith(("lm_head", "entity_predictions", "classifier", "qa_outputs")):
            group = "heads"
        else:
            group = "rest of encoder"
        groups[group] += n
    groups["total"] = sum(groups.values())
    return groups
