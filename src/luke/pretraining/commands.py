"""``luke pretrain``, ``evaluate-pretraining``, ``plot-training`` and ``split-pretraining-dataset``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from luke.command_args import (
    add_command,
    add_json_flag,
    add_model_name,
    add_no_progress,
    add_paths,
    add_revision,
    hub_kwargs,
    seed,
)
from luke.errors import CheckpointError, DatasetError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the pretraining commands to the ``luke`` parser."""
    _add_pretrain(sub)
    _add_evaluate(sub)
    _add_plot(sub)
    _add_split(sub)


# ------------------------------------------------------------------------------------------------ pretrain


_PRETRAIN = """pretrain LUKE (masked words + masked entities, two stages) on a pretraining dataset

Train LukeForMaskedLM on a dataset from `luke build-pretraining-dataset`, starting from a BERT/RoBERTa
transformers folder (word side) or a LUKE folder. CONFIG is a YAML or JSON file; KEY=VALUE arguments override it
(dotted paths, e.g. stages.0.max_steps=100 optimizer.bias_correction=false). For several processes, start it
with `accelerate launch -m luke pretrain ...` or `torchrun --nproc_per_node N -m luke pretrain ...`. See
docs/pretraining.md for the configuration keys and a worked example.
"""


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "pretrain", _pretrain, _PRETRAIN)
    add_paths(p, config="YAML or JSON config file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint in output_dir")


def _pretrain(args: argparse.Namespace) -> int:
    from luke.files import check_output
    from luke.pretraining.config import PretrainingConfig
    from luke.pretraining.trainer import Trainer

    config = PretrainingConfig.load(args.config, args.overrides)
    check_output(config.output_dir, kind="dir", exist_ok=True, what="output_dir")  # before any work
    result = Trainer(config, resume=args.resume).run()
    if result:
        print(json.dumps(result, indent=2))
    return 0


# ----------------------------------------------------------------------------------------- evaluate-pretraining


_EVALUATE = """held-out masked-word and masked-entity loss/accuracy of a LUKE model on a pretraining dataset

Mask the dataset once (fixed seed, the training masking rules) and report MLM and masked-entity loss and
accuracy, and the accuracy of always predicting the most frequent masked entity. See docs/pretraining.md for
the configuration keys and a worked example.
"""


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "evaluate-pretraining", _evaluate, _EVALUATE)
    add_model_name(p, "model", "LUKE model folder (e.g. OUTPUT/final of luke pretrain)")
    add_paths(p, dataset="pretraining dataset folder")
    add_revision(p)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--train-dataset", type=Path, default=None,
                   help="the training dataset: also report the accuracy of always predicting its most frequent "
                   "entity (the baseline)")  # fmt: skip
    p.add_argument("--max-items", type=int, default=None, help="evaluate only the first N items")
    p.add_argument("--seed", type=seed, default=0, help="masking seed (default 0)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    add_json_flag(p, help="print JSON")
    add_no_progress(p, help=None)


def _evaluate(args: argparse.Namespace) -> int:
    from luke.checkpoint import check_is_luke
    from luke.hub import resolve_pretrained
    from luke.modeling import LukeForMaskedLM
    from luke.pretraining.data import PretrainingDataset
    from luke.pretraining.trainer import check_model_matches_dataset, evaluate

    folder = resolve_pretrained(args.model, files="model", **hub_kwargs(args))
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{args.model}: not a model folder (no config.json)")
    check_is_luke(folder, args.model)
    dataset = PretrainingDataset(args.dataset)
    model = LukeForMaskedLM.from_pretrained(folder)
    if model.config.entity_vocab_size != len(dataset.entity_vocab):
        raise DatasetError(
            f"{args.dataset} has {len(dataset.entity_vocab)} entities but the model has entity_vocab_size "
            f"{model.config.entity_vocab_size}: different entity vocabularies"
        )
    check_model_matches_dataset(folder, dataset, model.config.vocab_size)
    train = PretrainingDataset(args.train_dataset) if args.train_dataset else None
    if train is not None and train.entity_vocab.to_dict() != dataset.entity_vocab.to_dict():
        raise DatasetError(f"{args.train_dataset} and {args.dataset} have different entity vocabularies")
    options = {"batch_size": args.batch_size, "seed": args.seed, "max_items": args.max_items}
    result = evaluate(
        model, dataset, **options, precision=args.precision, progress=not args.no_progress, train_dataset=train
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:32s} {value:.4f}" if isinstance(value, float) else f"{key:32s} {value}")
    return 0


# ------------------------------------------------------------------------------------------------ plot-training


_PLOT = """PNG of the training and held-out curves of a luke pretrain output folder

Read RUN_DIR/metrics.jsonl and write a PNG of losses and accuracies (needs matplotlib).
"""


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "plot-training", _plot, _PLOT)
    add_paths(p, run_dir=None)
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default RUN_DIR/training_curves.png)")


def _plot(args: argparse.Namespace) -> int:
    from luke.files import check_output
    from luke.pretraining.plot import plot_training

    out = args.out if args.out is not None else args.run_dir / "training_curves.png"
    check_output(
        out,
        kind="file",
        overwrite=True,
        what="--out" if args.out is not None else "output",
        inputs=[Path(args.run_dir) / "metrics.jsonl"],
    )
    print(f"wrote {plot_training(args.run_dir, out)}")
    return 0


# ------------------------------------------------------------------------------------ split-pretraining-dataset


_SPLIT = """split a pretraining dataset by article into train and held-out datasets

Hold out a random share of articles (page ids): two complete dataset folders.
"""


def _add_split(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "split-pretraining-dataset", _split, _SPLIT)
    add_paths(p, dataset=None, train_out=None, heldout_out=None)
    p.add_argument("--heldout-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=seed, default=0)


def _split(args: argparse.Namespace) -> int:
    from luke.pretraining.data import split_by_page

    train, held = split_by_page(args.dataset, args.train_out, args.heldout_out, args.heldout_fraction, args.seed)
    print(f"train: {train} items -> {args.train_out}; held-out: {held} items -> {args.heldout_out}")
    return 0
