"""Model utility commands: ``luke convert`` and ``luke info``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from luke.checkpoint import (
    convert_to_roberta_positions,
    load_original_archive,
    model_class_for,
    read_state_dict,
)
from luke.command_args import add_command, add_json_flag, add_paths
from luke.config import LukeConfig
from luke.errors import CheckpointError

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

    p = add_command(sub, "info", _info, _INFO)
    add_paths(p, checkpoint="model folder or original archive")
    add_json_flag(p)


def _convert(args: argparse.Namespace) -> int:
    archive = load_original_archive(args.archive, use_entity_aware_attention=not args.no_entity_aware_attention)
    model = archive.model
    convert_to_roberta_positions(model)
    out: Path = args.output_dir
    model.save_pretrained(out)
    archive.entity_vocab.save(out / "entity_vocab.json")
    if args.tokenizer is not None:
        from luke.tokenization import LukeTokenizer

        LukeTokenizer.from_pretrained(args.tokenizer, entity_vocab=archive.entity_vocab).save_pretrained(out)
    print(f"wrote {type(model).__name__} ({model.num_parameters():,} parameters) to {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    path: Path = args.checkpoint
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if path.is_dir() and (path / "config.json").is_file():
        config = LukeConfig.from_pretrained(path)
        state = read_state_dict(path)
        cls_name = model_class_for(config, set(state)).__name__
        counts = _count(state)
    else:
        archive = load_original_archive(path)
        config = archive.model.config
        cls_name = type(archive.model).__name__
        counts = _count(archive.model.state_dict())
    info = {
        "class": cls_name,
        "parameters": counts,
        "vocab_size": config.vocab_size,
        "entity_vocab_size": config.entity_vocab_size,
        "config": config.to_dict(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{path}: {cls_name}")
    for group, n in counts.items():
        print(f"  {group:<28} {n:>14,}")
    print(f"  word vocab {config.vocab_size:,}, entity vocab {config.entity_vocab_size:,}")
    print(
        f"  hidden {config.hidden_size}, layers {config.num_hidden_layers}, heads {config.num_attention_heads}, "
        f"entity emb {config.entity_emb_size}, entity-aware attention {config.use_entity_aware_attention}"
    )
    return 0


def _count(state: dict) -> dict[str, int]:
    """Parameter counts by group (tied aliases counted once)."""
    groups = {"entity table": 0, "entity-aware queries": 0, "heads": 0, "rest of encoder": 0}
    seen = set()
    for key, tensor in state.items():
        if key in ("lm_head.bias", "entity_predictions.decoder.weight") or key.endswith("position_ids"):
            continue
        ptr = (tensor.untyped_storage().data_ptr(), tensor.shape)
        if ptr in seen:
            continue
        seen.add(ptr)
        name = key.removeprefix("luke.")
        if name.startswith("entity_embeddings.entity_embeddings"):
            group = "entity table"
        elif any(q in name for q in ("w2e_query", "e2w_query", "e2e_query")):
            group = "entity-aware queries"
        elif name.startswith(("lm_head", "entity_predictions", "classifier", "qa_outputs")):
            group = "heads"
        else:
            group = "rest of encoder"
        groups[group] += tensor.numel()
    groups["total"] = sum(groups.values())
    return groups
