"""Model utility commands: ``luke convert`` and ``luke info``."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from luke.checkpoint import (
    check_entity_vocab_size,
    config_contradictions,
    convert_to_roberta_positions,
    entity_vocab_contradictions,
    load_original_archive,
    model_class_for,
    read_state_dict,
    weight_shapes,
    weights_file,
)
from luke.command_args import add_command, add_json_flag, add_paths
from luke.config import LukeConfig
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, TokenizerError
from luke.files import atomic_output, check_output

_CONVERT = """convert an original LUKE model archive into a transformers-format folder

Convert an original LUKE archive (.tar.gz / .tar.bz2 / .tar.xz or a folder with pytorch_model.bin,
metadata.json and entity_vocab.tsv|jsonl) into a folder with config.json, model.safetensors and
entity_vocab.json that both luke and transformers load. BERT-based archives get their word-position table
shifted to transformers' RoBERTa-style numbering.
"""

_INFO = """print a checkpoint's config, parameter counts and vocabulary sizes

Print a LUKE model folder's (or original archive's) config, parameter counts and vocab sizes.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``luke convert`` and ``luke info`` to the ``luke`` parser."""
    p = add_command(sub, "convert", _convert, _CONVERT)
    add_paths(p, archive="original archive file or folder", output_dir="folder to write")
    p.add_argument(
        "--no-entity-aware-attention",
        action="store_true",
        help="save with use_entity_aware_attention=false (default: true, queries copied from `query`)",
    )
    p.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="a local transformers tokenizer folder (e.g. roberta-base files) to save beside the model",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT_DIR if it exists")

    p = add_command(sub, "info", _info, _INFO)
    add_paths(p, checkpoint="model folder or original archive")
    add_json_flag(p)


def _convert(args: argparse.Namespace) -> int:
    inputs = [args.archive, args.tokenizer]
    out = check_output(args.output_dir, kind="dir", overwrite=args.overwrite, what="output folder", inputs=inputs)
    if not args.archive.exists():
        raise CheckpointError(f"no archive at {args.archive}")
    if args.tokenizer is not None and not args.tokenizer.is_dir():
        raise TokenizerError(f"--tokenizer {args.tokenizer}: no such folder")
    archive = load_original_archive(args.archive, use_entity_aware_attention=not args.no_entity_aware_attention)
    model = archive.model
    check_entity_vocab_size(archive.entity_vocab, model.config, args.archive)
    tokenizer = None
    if args.tokenizer is not None:
        from luke.tokenization import LukeTokenizer

        tokenizer = LukeTokenizer.from_pretrained(args.tokenizer, entity_vocab=archive.entity_vocab)
        if len(tokenizer) > model.config.vocab_size:
            raise TokenizerError(
                f"--tokenizer {args.tokenizer}: {len(tokenizer):,} word tokens (with <ent> and <ent2>) but the "
                f"model's word table has {model.config.vocab_size:,} rows"
            )
    convert_to_roberta_positions(model)
    with atomic_output(out, kind="dir") as tmp:
        model.save_pretrained(tmp)
        archive.entity_vocab.save(tmp / "entity_vocab.json")
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    print(f"wrote {type(model).__name__} ({model.num_parameters():,} parameters) to {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    path: Path = args.checkpoint
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    contradictions: list[str] = []
    if path.is_dir() and (path / "config.json").is_file():
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
        print(json.dumps(info, indent=2))
        return 0
    _print_info(path, cls_name, counts, config, weights, contradictions)
    return 0


def _print_info(
    path: Path, cls_name: str, counts: dict[str, int], config: LukeConfig, weights: dict, contradictions: list[str]
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
