"""``luke finetune``, ``luke evaluate``, ``luke predict`` and ``luke score``.

The Python API behind them is :func:`finetune` and :func:`evaluate_folder`; the commands only parse
arguments.  Hyper-parameters default to the paper's (spec §3.6) for each task.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from luke.errors import ConfigError, DataError, LukeError
from luke.finetuning.data import iter_json_records
from luke.finetuning.model_io import build_for_finetuning, load_finetuned, to_transformers
from luke.finetuning.tasks import TASKS, get_task
from luke.finetuning.tasks.base import UNSEEN_LABEL_POLICIES, Task
from luke.finetuning.trainer import Trainer, TrainingArguments, evaluate, make_accelerator

__all__ = ["register", "finetune", "evaluate_folder", "make_task"]

logger = logging.getLogger(__name__)
PREDICTION_SUFFIX = {"entity_typing": "jsonl", "relation_classification": "jsonl", "ner": "conll", "squad": "json",
                     "record": "json"}  # fmt: skip
_TASK_OPTIONS = (
    "max_seq_length",
    "max_mention_length",
    "max_entity_length",
    "dev_ratio",
    "dev_seed",
    "doc_stride",
    "max_query_length",
    "max_answer_length",
    "n_best_size",
    "mention_db",
    "entity_vocab",
    "min_link_prob",
    "no_entity",
    "entity_init",
    "no_entity_aware_attention",
)


def make_task(name: str, labels: list[str] | None = None, unseen_labels: str = "error", **options: Any) -> Task:
    """A task instance; ``options`` that are None are left out (task defaults apply)."""
    return get_task(name)(labels, unseen_labels, **{k: v for k, v in options.items() if v is not None})


def _subset(items: list, n: int | None, seed: int) -> list:
    if not n or n >= len(items):
        return items
    idx = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in idx]


def finetune(
    task_name: str,
    model_path: str | Path,
    data_dir: str | Path,
    output_dir: str | Path,
    *,
    backend: str = "luke",
    unseen_labels: str = "error",
    max_train_examples: int | None = None,
    max_dev_examples: int | None = None,
    max_test_examples: int | None = None,
    eval_splits: tuple[str, ...] = ("dev", "test"),
    keep_checkpoints: bool = False,
    task_options: dict[str, Any] | None = None,
    **training: Any,
) -> dict[str, Any]:
    """Fine-tune ``model_path`` on ``data_dir`` for ``task_name``; writes the model folder, ``results.json``
    and ``{split}_predictions.*`` into ``output_dir`` and returns the results.

    ``training`` holds :class:`TrainingArguments` fields; missing ones take the task's paper defaults.
    ``backend="transformers"`` trains the same initialisation through ``transformers``' LUKE class.
    """
    wall = time.perf_counter()
    task = make_task(task_name, None, unseen_labels, **(task_options or {}))
    defaults = task.defaults
    for key in ("learning_rate", "train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "seed",
                "select_best", "eval_batch_size"):  # fmt: skip
        if training.get(key) is None:
            training[key] = getattr(defaults, key)
    training = {k: v for k, v in training.items() if v is not None}
    args = TrainingArguments(output_dir=Path(output_dir), **training)
    if backend not in ("luke", "transformers"):
        raise ConfigError(f"--backend must be 'luke' or 'transformers', got {backend!r}")

    splits = task.load_splits(data_dir, ("train", *eval_splits))
    task.set_labels_from(splits["train"])
    for split in eval_splits:
        if split in splits:
            task.check_labels(splits[split], split)
    splits["train"] = _subset(splits["train"], max_train_examples, args.seed)
    for split, limit in (("dev", max_dev_examples), ("test", max_test_examples)):
        if split in splits:
            splits[split] = _subset(splits[split], limit, 0)
    logger.info("examples: %s", {k: len(v) for k, v in splits.items()})

    model, tokenizer = build_for_finetuning(
        model_path,
        task.model_class_name,
        list(task.labels or []),
        seed=args.seed,
        # Typing/relations: mentions are never cut (the legacy code did not truncate them).
        max_mention_length=int(task.options.get("max_mention_length", task.options.get("max_seq_length", 512))),
        keep_entity_vocab=task.keeps_entity_vocab,
        entity_vocab_path=task.options.get("entity_vocab"),
        entity_init=task.options.get("entity_init") or "random",
        entity_aware_attention=not task.options.get("no_entity_aware_attention"),
    )
    task.prepare_model(model)
    tmp = tempfile.TemporaryDirectory()
    if backend == "transformers":
        model = to_transformers(model, tmp.name, source=model_path)
        task.prepare_model(model)
    t0 = time.perf_counter()
    features = {name: task.featurize(examples, tokenizer) for name, examples in splits.items()}
    featurize_seconds = time.perf_counter() - t0
    dev = (splits["dev"], features["dev"]) if "dev" in splits else None
    trainer = Trainer(model, task, args, features["train"], tokenizer.pad_token_id, dev=dev)
    state = trainer.train()
    model = trainer.unwrapped

    out = Path(output_dir)
    acc = trainer.accelerator
    if acc.is_main_process:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        task.save(out)
    results: dict[str, Any] = {
        "task": task.name,
        "backend": backend,
        "model": str(model_path),
        "data_dir": str(data_dir),
        "labels": task.labels,
        "main_metric": task.main_metric,
        "examples": {k: len(v) for k, v in splits.items()},
        "features": {k: len(v) for k, v in features.items()},
        "training": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "task_options": task.options,
        "best_epoch": state.get("best_epoch"),
        "history": state["history"],
        "featurize_seconds": featurize_seconds,
        "train_seconds": state.get("train_seconds"),
    }
    for split in eval_splits:
        if split not in splits:
            continue
        t0 = time.perf_counter()
        reuse = trainer.final_dev_evaluation() if split == "dev" else None
        scores, preds = reuse or evaluate(
            model, task, splits[split], features[split], args.eval_batch_size, tokenizer.pad_token_id, acc,
            args.progress, desc=f"{split}",
        )  # fmt: skip
        results[split] = scores
        results[f"{split}_eval_seconds"] = time.perf_counter() - t0
        if acc.is_main_process:
            task.write_predictions(out / f"{split}_predictions.{PREDICTION_SUFFIX[task.name]}", splits[split], preds)
        logger.info("%s %s = %.4f", split, task.main_metric, scores[task.main_metric])
    results["wall_seconds"] = time.perf_counter() - wall
    if acc.is_main_process:
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    trainer.cleanup(remove_checkpoints=not keep_checkpoints)
    tmp.cleanup()
    return results


def evaluate_folder(
    task_name: str,
    model_path: str | Path,
    data_dir: str | Path,
    split: str = "test",
    *,
    output_dir: str | Path | None = None,
    eval_batch_size: int = 32,
    tokenizer_path: str | Path | None = None,
    unseen_labels: str = "error",
    max_eval_examples: int | None = None,
    progress: bool = True,
    cpu: bool = False,
    mixed_precision: str = "no",
) -> dict[str, Any]:
    """Score a fine-tuned folder on one split of ``data_dir`` (optionally writing predictions)."""
    cls = get_task(task_name)
    model, tokenizer, state = load_finetuned(model_path, cls.model_class_name, task_name, tokenizer_path)
    task = make_task(task_name, state["labels"], unseen_labels, **state.get("options", {}))
    splits = task.load_splits(data_dir, (split,))
    if split not in splits:
        raise DataError(data_dir, f"no {split} file for task {task_name}")
    task.check_labels(splits[split], split)
    examples = _subset(splits[split], max_eval_examples, 0)
    t0 = time.perf_counter()
    features = task.featurize(examples, tokenizer)
    acc = make_accelerator(cpu=cpu, mixed_precision=mixed_precision)
    model = acc.prepare_model(model, evaluation_mode=True)
    scores, preds = evaluate(model, task, examples, features, eval_batch_size, tokenizer.pad_token_id, acc, progress)
    scores = {**scores, "examples": len(examples), "seconds": time.perf_counter() - t0}
    if output_dir is not None and acc.is_main_process:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        path = Path(output_dir) / f"{split}_predictions.{PREDICTION_SUFFIX[task_name]}"
        task.write_predictions(path, examples, preds)
    return scores


# ---------------------------------------------------------------------------------------------- CLI


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=sorted(TASKS), help="the task")
    p.add_argument("--cpu", action="store_true", help="run on CPU even when a GPU is present")
    p.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"), default="no", help="autocast precision")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a model on a task (entity_typing, relation_classification, ner, squad, record)",
        description="Fine-tune LUKE on a task. Hyper-parameters default to the paper's for the task (spec §3.6). "
        "Writes the fine-tuned model folder (loads in transformers' matching class), results.json, "
        "{dev,test}_predictions.* and TensorBoard logs into --output-dir.",
    )
    _add_common(p)
    p.add_argument("--model", required=True, type=Path, help="LUKE folder, or a BERT/RoBERTa transformers folder")
    p.add_argument("--data-dir", required=True, type=Path, help="folder with the task's train/dev/test files")
    p.add_argument("--output-dir", required=True, type=Path, help="where to write the fine-tuned model and results")
    g = p.add_argument_group("hyper-parameters (default: the paper's for the task)")
    g.add_argument("--learning-rate", type=float)
    g.add_argument("--train-batch-size", type=int)
    g.add_argument("--eval-batch-size", type=int)
    g.add_argument("--gradient-accumulation-steps", type=int)
    g.add_argument("--num-train-epochs", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--warmup-ratio", type=float, default=0.06)
    g.add_argument("--weight-decay", type=float, default=0.01)
    g.add_argument("--max-grad-norm", type=float, default=0.0, help="gradient clipping (0 = none, the paper's)")
    g.add_argument("--select-best", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the best dev epoch's weights (default: yes, no for NER)")  # fmt: skip
    g.add_argument("--max-seq-length", type=int, help="maximum word tokens per input (NER window; default 512)")
    g.add_argument("--max-mention-length", type=int, help="NER: longest candidate span in subwords (default 16)")
    g.add_argument("--max-entity-length", type=int, help="NER: candidate spans per input (default 128)")
    g.add_argument("--no-entity-aware-attention", action="store_true", default=None,
                   help="fine-tune with vanilla self-attention (ablation; default: entity-aware)")  # fmt: skip
    g.add_argument("--entity-init", choices=("random", "words"),
                   help="from a BERT/RoBERTa folder: the new entity side at random (default, as the original) or "
                   "from the word side: [MASK] entity = [MASK] word, entity positions/types/LayerNorm = the words', "
                   "squad entities = mean word embedding of their title")  # fmt: skip
    g.add_argument("--dev-ratio", type=float, help="relations without a dev file: held-out share of train (0.1)")
    g.add_argument("--dev-seed", type=int, help="seed of that hold-out split (default 0)")
    q = p.add_argument_group("question answering (squad, record)")
    q.add_argument("--doc-stride", type=int, help="tokens between the starts of consecutive passage windows (128)")
    q.add_argument("--max-query-length", type=int, help="question tokens kept (squad 64, record 90)")
    q.add_argument("--max-answer-length", type=int, help="squad: longest answer in tokens at decoding (30)")
    q.add_argument("--n-best-size", type=int, help="squad: start/end candidates per window at decoding (20)")
    q.add_argument("--mention-db", type=Path, help="squad: mention dictionary (luke build-mention-db, or a TSV)")
    q.add_argument("--entity-vocab", type=Path, help="squad from a BERT/RoBERTa folder: entity vocabulary file")
    q.add_argument("--min-link-prob", type=float, help="squad: minimum link probability of a mention (0.01)")
    q.add_argument("--no-entity", action="store_true", default=None,
                   help="squad: no entity features (the paper's ablation; words only)")  # fmt: skip
    r = p.add_argument_group("run control")
    r.add_argument("--backend", choices=("luke", "transformers"), default="luke",
                   help="train our model or the same initialisation through transformers' LUKE class (squad from a "
                   "BERT/RoBERTa folder: that model's own *ForQuestionAnswering class, words only)")  # fmt: skip
    r.add_argument("--unseen-labels", choices=UNSEEN_LABEL_POLICIES, default="error",
                   help="dev/test labels missing from train: stop (error) or score them as misses (keep)")  # fmt: skip
    r.add_argument("--max-train-examples", type=int, help="train on a seeded random subset of this size")
    r.add_argument("--max-dev-examples", type=int, help="evaluate dev on a seeded subset of this size")
    r.add_argument("--max-test-examples", type=int, help="evaluate test on a seeded subset of this size")
    r.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps")
    r.add_argument("--save-steps", type=int, default=0, help="also save resumable state every N steps")
    r.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint if present")
    r.add_argument("--keep-checkpoints", action="store_true", help="keep OUTPUT/checkpoint and OUTPUT/best")
    r.add_argument("--logging-steps", type=int, default=20)
    r.add_argument("--no-tensorboard", action="store_true")
    p.set_defaults(func=_finetune)

    p = sub.add_parser("evaluate", help="score a fine-tuned model on a split of a data folder")
    _add_common(p)
    p.add_argument("--model", required=True, type=Path, help="fine-tuned model folder")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--split", default="test", choices=("train", "dev", "test"))
    p.add_argument("--output-dir", type=Path, help="also write the predictions file here")
    p.add_argument("--tokenizer", type=Path, help="tokenizer folder (default: the model folder)")
    p.add_argument("--eval-batch-size", type=int, default=32)
    p.add_argument("--unseen-labels", choices=UNSEEN_LABEL_POLICIES, default="error")
    p.add_argument("--max-eval-examples", type=int)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "predict",
        help="label raw text + spans (or answer questions) from a JSONL file with a fine-tuned model",
        description="Input JSON Lines: entity_typing {'text', 'span': [start, end]}; relation_classification "
        "{'text', 'head': [s, e], 'tail': [s, e]}; ner {'text'} or {'tokens': [...]}; squad {'question', "
        "'context', optional 'id'}; record {'passage', 'query' (with @placeholder), 'entities': [[s, e], ...], "
        "optional 'id'} (character offsets, end exclusive). Writes one JSON object per input line.",
    )
    _add_common(p)
    p.add_argument("--model", required=True, type=Path, help="fine-tuned model folder")
    p.add_argument("--input", required=True, type=Path, help="JSONL input")
    p.add_argument("--output", type=Path, help="JSONL output (default: stdout)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer folder (default: the model folder)")
    p.add_argument("--eval-batch-size", type=int, default=32)
    p.set_defaults(func=_predict)

    p = sub.add_parser(
        "split-squad",
        help="split a SQuAD file by article (fixed seed) into train.json and dev.json",
        description="Split a SQuAD v1.1 file by article with a fixed seed: --train-articles articles (default half) "
        "go to OUT_DIR/train.json, the rest to OUT_DIR/dev.json. Used to fine-tune on half of the official dev set "
        "and score the other half when train-v1.1.json is not available.",
    )
    p.add_argument("squad_file", type=Path, help="SQuAD JSON (e.g. dev-v1.1.json)")
    p.add_argument("out_dir", type=Path, help="folder for train.json and dev.json")
    p.add_argument("--train-articles", type=int, help="articles that go to train (default: half)")
    p.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
    p.set_defaults(func=_split_squad)

    p = sub.add_parser(
        "score",
        help="score a predictions file against gold data with the task's official metric",
        description="Prints JSON. entity_typing/relation_classification: a predictions JSONL (as written by "
        "finetune/evaluate) against the gold data file (or its own 'gold' fields). ner: a CoNLL file whose last "
        "column is the predicted tag, against --gold's last column or, without --gold, the column before it "
        "(conlleval style). squad/record: a JSON object {question id: answer text} against the official JSON "
        "(--gold required); prints {exact_match, f1} in percent like the official scripts.",
    )
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("--gold", type=Path, help="gold data file")
    p.add_argument("--predictions", required=True, type=Path)
    p.set_defaults(func=_score)


def _plain(value: Any) -> Any:
    """JSON-friendly option values (paths as strings)."""
    return str(value) if isinstance(value, Path) else value


def _check_file(path: Path | None, what: str) -> None:
    if path is not None and not path.is_file():
        raise LukeError(f"{what} {path} does not exist")


def _finetune(a: argparse.Namespace) -> int:
    if not a.data_dir.is_dir():
        raise LukeError(f"data directory {a.data_dir} does not exist")
    results = finetune(
        a.task,
        a.model,
        a.data_dir,
        a.output_dir,
        backend=a.backend,
        unseen_labels=a.unseen_labels,
        max_train_examples=a.max_train_examples,
        max_dev_examples=a.max_dev_examples,
        max_test_examples=a.max_test_examples,
        keep_checkpoints=a.keep_checkpoints,
        task_options={k: _plain(getattr(a, k)) for k in _TASK_OPTIONS},
        learning_rate=a.learning_rate,
        train_batch_size=a.train_batch_size,
        eval_batch_size=a.eval_batch_size,
        gradient_accumulation_steps=a.gradient_accumulation_steps,
        num_train_epochs=a.num_train_epochs,
        seed=a.seed,
        select_best=a.select_best,
        warmup_ratio=a.warmup_ratio,
        weight_decay=a.weight_decay,
        max_grad_norm=a.max_grad_norm,
        mixed_precision=a.mixed_precision,
        cpu=a.cpu,
        save_steps=a.save_steps,
        resume=a.resume,
        logging_steps=a.logging_steps,
        tensorboard=not a.no_tensorboard,
        progress=not a.no_progress,
        max_steps=a.max_steps,
    )
    summary = {k: results[k] for k in ("dev", "test") if k in results}
    print(json.dumps({"output_dir": str(a.output_dir), "main_metric": results["main_metric"], **summary}, indent=2))
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    scores = evaluate_folder(
        a.task,
        a.model,
        a.data_dir,
        a.split,
        output_dir=a.output_dir,
        eval_batch_size=a.eval_batch_size,
        tokenizer_path=a.tokenizer,
        unseen_labels=a.unseen_labels,
        max_eval_examples=a.max_eval_examples,
        progress=not a.no_progress,
        cpu=a.cpu,
        mixed_precision=a.mixed_precision,
    )
    print(json.dumps(scores, indent=2))
    return 0


def _predict(a: argparse.Namespace) -> int:
    _check_file(a.input, "input file")
    cls = get_task(a.task)
    model, tokenizer, state = load_finetuned(a.model, cls.model_class_name, a.task, a.tokenizer)
    task = make_task(a.task, state["labels"], **state.get("options", {}))
    examples = task.examples_from_raw(list(iter_json_records(a.input)), a.input)
    features = task.featurize(examples, tokenizer)
    acc = make_accelerator(cpu=a.cpu, mixed_precision=a.mixed_precision)
    model = acc.prepare_model(model, evaluation_mode=True)
    from luke.finetuning.trainer import predict_logits

    logits = predict_logits(model, task, features, a.eval_batch_size, tokenizer.pad_token_id, acc, not a.no_progress)
    predictions = task.decode(examples, features, logits)
    out = open(a.output, "w", encoding="utf-8") if a.output else sys.stdout
    try:
        for ex, pred in zip(examples, predictions, strict=True):
            out.write(json.dumps(task.format_prediction(ex, pred), ensure_ascii=False) + "\n")
    finally:
        if a.output:
            out.close()
    return 0


def _split_squad(a: argparse.Namespace) -> int:
    from luke.finetuning.tasks.squad import split_squad_by_article

    _check_file(a.squad_file, "SQuAD file")
    summary = split_squad_by_article(a.squad_file, a.out_dir, first_articles=a.train_articles, seed=a.seed)
    print(json.dumps(summary, indent=2))
    return 0


def _score(a: argparse.Namespace) -> int:
    _check_file(a.predictions, "predictions file")
    _check_file(a.gold, "gold file")
    task = make_task(a.task)
    print(json.dumps(task.score_files(a.gold, a.predictions), indent=2))
    return 0
