"""``luke finetune``, ``luke evaluate``, ``luke predict`` and ``luke score``.

The Python API behind them is :func:`finetune` and :func:`evaluate_folder`; the commands only parse
arguments.  Hyper-parameters default to the paper's (spec §3.6) for each task.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from luke.command_args import add_command, add_revision
from luke.dataclass_args import add_arguments, flag_fields, from_mapping, values_from_namespace
from luke.errors import ConfigError, DataError, LukeError
from luke.files import check_output, write_text_atomic
from luke.finetuning.data import iter_json_records
from luke.finetuning.model_io import TASK_FILE, build_for_finetuning, load_finetuned, model_folder, to_transformers
from luke.finetuning.options import (
    TaskDefaults,
    TrainingArguments,
    add_task_arguments,
    add_training_arguments,
    applicable_options,
    task_option_fields,
)
from luke.finetuning.tasks import TASKS, get_task
from luke.finetuning.tasks.base import UNSEEN_LABEL_POLICIES, Task
from luke.finetuning.trainer import Trainer, evaluate, make_accelerator

__all__ = ["register", "finetune", "evaluate_folder", "make_task", "load_task_model", "predict_records"]

logger = logging.getLogger(__name__)


def make_task(name: str, labels: list[str] | None = None, unseen_labels: str = "error", **options: Any) -> Task:
    """A task instance; ``options`` that are None are left out (task defaults apply)."""
    return get_task(name)(labels, unseen_labels, **options)


def _subset(items: list, n: int | None, seed: int) -> list:
    if not n or n >= len(items):
        return items
    idx = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in idx]


def _training_arguments(task: Task, output_dir: str | Path, training: dict[str, Any]) -> TrainingArguments:
    """``training`` with the task's paper defaults (:class:`TaskDefaults`) where a value is missing."""
    for f in dataclasses.fields(TaskDefaults):
        if training.get(f.name) is None:
            training[f.name] = getattr(task.defaults, f.name)
    return TrainingArguments(output_dir=Path(output_dir), **{k: v for k, v in training.items() if v is not None})


def _load_examples(
    task: Task, data_dir: str | Path, eval_splits: tuple[str, ...], limits: dict[str, int | None], seed: int
) -> dict[str, list]:
    """The splits' examples (labels from train, checked on the others), cut to seeded subsets of ``limits``."""
    splits = task.load_splits(data_dir, ("train", *eval_splits))
    task.set_labels_from(splits["train"])
    for split in eval_splits:
        if split in splits:
            task.check_labels(splits[split], split)
    for split, limit in limits.items():
        if split in splits:
            splits[split] = _subset(splits[split], limit, seed if split == "train" else 0)
    logger.info("examples: %s", {k: len(v) for k, v in splits.items()})
    return splits


def _build_model(
    task: Task, model_path: str | Path, backend: str, seed: int, tmp_dir: str, revision: str | None = None
) -> tuple[Any, Any]:
    """The model to train (through ``transformers``' class with ``backend="transformers"``) and its tokenizer."""
    labels = list(task.labels or [])
    model, tokenizer = build_for_finetuning(
        model_path, task.model_class_name, labels, seed=seed, revision=revision, **task.model_settings()
    )
    task.prepare_model(model)
    if backend == "transformers":
        model = to_transformers(model, tmp_dir, source=model_folder(model_path, revision=revision))
        task.prepare_model(model)
    return model, tokenizer


def _evaluate_splits(
    trainer: Trainer, task: Task, splits: dict[str, list], features: dict[str, list], args: TrainingArguments,
    pad_token_id: int, eval_splits: tuple[str, ...],
) -> dict[str, Any]:  # fmt: skip
    """Scores (and timings) of each evaluation split; predictions files are written into ``args.output_dir``."""
    results: dict[str, Any] = {}
    model, acc = trainer.unwrapped, trainer.accelerator
    for split in (s for s in eval_splits if s in splits):
        t0 = time.perf_counter()
        reuse = trainer.final_dev_evaluation() if split == "dev" else None
        scores, preds = reuse or evaluate(
            model, task, splits[split], features[split], args.eval_batch_size, pad_token_id, acc, args.progress,
            desc=f"{split}",
        )  # fmt: skip
        results[split] = scores
        results[f"{split}_eval_seconds"] = time.perf_counter() - t0
        if acc.is_main_process:
            path = Path(args.output_dir) / f"{split}_predictions.{task.prediction_suffix}"
            task.write_predictions(path, splits[split], preds)
        logger.info("%s %s = %.4f", split, task.main_metric, scores[task.main_metric])
    return results


def _check_outputs(
    task: Task | type[Task], output_dir: str | Path, splits: tuple[str, ...], results: bool = True, inputs: tuple = ()
) -> None:
    """Refuse an output folder (and the files it will get) that cannot be written, or that would replace one
    of ``inputs`` (the model or data folder), before any work."""
    check_output(output_dir, kind="dir", exist_ok=True, what="--output-dir", inputs=inputs)
    names = [f"{split}_predictions.{task.prediction_suffix}" for split in splits]
    for name in (["results.json"] if results else []) + names:
        check_output(Path(output_dir) / name, kind="file", overwrite=True, what="output file")


def _check_limit(flag: str, value: int | None, note: str = " (leave it out to use every example)") -> None:
    """A ``--max-*-examples`` value: None (all examples) or a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{flag} must be at least 1{note}, got {value!r}")


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
    revision: str | None = None,
    **training: Any,
) -> dict[str, Any]:
    """Fine-tune ``model_path`` on ``data_dir`` for ``task_name``; writes the model folder, ``results.json``
    and ``{split}_predictions.*`` into ``output_dir`` and returns the results.

    ``task_options`` holds fields of the task's :attr:`~luke.finetuning.tasks.base.Task.options_class`;
    ``training`` holds :class:`TrainingArguments` fields; missing ones take the task's paper defaults.
    ``backend="transformers"`` trains the same initialisation through ``transformers``' LUKE class.
    ``revision``: the branch, tag or commit of ``model_path`` when it is a Hub repo id.
    """
    wall = time.perf_counter()
    task = make_task(task_name, None, unseen_labels, **(task_options or {}))
    args = _training_arguments(task, output_dir, training)
    if backend not in ("luke", "transformers"):
        raise ConfigError(f"--backend must be 'luke' or 'transformers', got {backend!r}")
    _check_outputs(task, output_dir, eval_splits, inputs=(model_path, data_dir))
    for flag, limit in (("train", max_train_examples), ("dev", max_dev_examples), ("test", max_test_examples)):
        _check_limit(f"--max-{flag}-examples", limit)
    limits = {"train": max_train_examples, "dev": max_dev_examples, "test": max_test_examples}
    splits = _load_examples(task, data_dir, eval_splits, limits, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = _build_model(task, model_path, backend, args.seed, tmp, revision)
        t0 = time.perf_counter()
        features = {name: task.featurize(examples, tokenizer) for name, examples in splits.items()}
        featurize_seconds = time.perf_counter() - t0
        dev = (splits["dev"], features["dev"]) if "dev" in splits else None
        trainer = Trainer(model, task, args, features["train"], tokenizer.pad_token_id, dev=dev)
        state = trainer.train()
        out = Path(output_dir)
        if trainer.accelerator.is_main_process:
            trainer.unwrapped.save_pretrained(out)
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
            # output_dir first, as when it was the first field of TrainingArguments
            "training": {
                "output_dir": str(args.output_dir),
                **{k: v for k, v in vars(args).items() if k != "output_dir"},
            },
            "task_options": task.given_options,
            "best_epoch": state.get("best_epoch"),
            "history": state["history"],
            "featurize_seconds": featurize_seconds,
            "train_seconds": state.get("train_seconds"),
        }
        results |= _evaluate_splits(trainer, task, splits, features, args, tokenizer.pad_token_id, eval_splits)
        results["wall_seconds"] = time.perf_counter() - wall
        if trainer.accelerator.is_main_process:
            write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
        trainer.cleanup(remove_checkpoints=not keep_checkpoints)
    return results


def load_task_model(
    task_name: str,
    model_path: str | Path,
    tokenizer_path: str | Path | None = None,
    unseen_labels: str = "error",
    task_options: dict[str, Any] | None = None,
    **hub_kwargs: Any,
) -> tuple[Task, Any, Any]:
    """(task, model, tokenizer) of a fine-tuned folder or Hub repo id (``hub_kwargs``: ``revision``,
    ``cache_dir``, ``local_files_only``, ``token``).  Its ``luke_task.json`` options are checked: an option
    of another task (old files may hold them) is ignored with a warning, an unknown one or a bad value raises
    :class:`ConfigError` naming the file.  A ``transformers`` folder without that file (the released
    ``studio-ousia/luke-large-finetuned-*``) gets its labels from ``config.id2label`` and the task's defaults.
    ``task_options`` (e.g. ``luke evaluate --inference local``) override the saved options."""
    cls = get_task(task_name)
    loaded = cls.load_model(model_path, tokenizer_path, **hub_kwargs)  # None: a fine-tuned folder of the task
    model, tokenizer, state = loaded or load_finetuned(
        model_path, cls.model_class_name, task_name, tokenizer_path, **hub_kwargs
    )
    where = str(Path(state.get("folder", model_path)) / TASK_FILE)
    options = state.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: 'options' must be a JSON object, got {type(options).__name__}")
    options = applicable_options(cls, options, TASKS.values(), where)
    from_mapping(cls.options_class, options, where)  # the values' errors name the file
    options = {**options, **(task_options or {})}
    task = cls(state["labels"], unseen_labels, **options)
    task.labels_from_model = True
    return task, model, tokenizer


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
    revision: str | None = None,
    task_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a fine-tuned folder or Hub repo id (at ``revision``) on one split of ``data_dir`` (optionally
    writing predictions); ``task_options`` override the options the folder was trained with."""
    _check_limit("--max-eval-examples", max_eval_examples)
    _check_limit("--eval-batch-size", eval_batch_size, "")
    if output_dir is not None:
        _check_outputs(get_task(task_name), output_dir, (split,), results=False)
    task, model, tokenizer = load_task_model(
        task_name, model_path, tokenizer_path, unseen_labels, task_options, revision=revision
    )
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
        task.write_predictions(Path(output_dir) / f"{split}_predictions.{task.prediction_suffix}", examples, preds)
    return scores


def predict_records(
    task: Task,
    model: Any,
    tokenizer: Any,
    records: list[tuple[int, Any]],
    path: str | Path,
    *,
    batch_size: int = 32,
    accelerator: Any = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """``luke predict`` without files: the output record of each input record ``(line, object)`` (the task's
    raw input, see ``Task.raw_input``), through the task's own reader, featurisation and decoding; errors
    name ``path`` and the line.  ``model`` is in evaluation mode (on ``accelerator``'s device when given).
    An input's ``"id"`` field comes back as the first field of its output record (SQuAD and ReCoRD records
    always have one: the input's, else one made from the line)."""
    examples = task.examples_from_raw(records, Path(path))
    features = task.featurize(examples, tokenizer)
    predictions = task.predict(model, examples, features, batch_size, tokenizer.pad_token_id, accelerator, progress)
    outputs = [task.format_prediction(ex, pred) for ex, pred in zip(examples, predictions, strict=True)]
    for k, ((_, record), out) in enumerate(zip(records, outputs, strict=True)):
        if isinstance(record, dict) and "id" in record and "id" not in out:
            outputs[k] = {"id": record["id"], **out}
    return outputs


# ---------------------------------------------------------------------------------------------- CLI


def _parser(sub: argparse._SubParsersAction, name: str, func: Any, help: str, description: str = "") -> Any:
    """A sub-command whose parsed arguments go to ``func`` (one-line ``help``, ``description`` for its --help)."""
    return add_command(sub, name, func, f"{help}\n\n{description}" if description else help)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=sorted(TASKS), help="the task")
    add_training_arguments(p, "common")


def _add_unseen_labels(p: Any, help: str | None = None) -> None:
    p.add_argument("--unseen-labels", choices=UNSEEN_LABEL_POLICIES, default="error", help=help)


_ED_DATA = (
    " (entity_disambiguation: {split}.jsonl or {split}.tsv, else one AIDA-YAGO2-dataset.tsv split by document id: "
    "train, dev = testa, test = testb)"
)
_MODEL_HELP = "fine-tuned model folder or Hub repo id (e.g. studio-ousia/luke-large-finetuned-open-entity)"


def _add_inference(p: argparse.ArgumentParser) -> None:
    """The flags ``evaluate`` and ``predict`` share after their own: tokenizer folder and batch size, and the
    task options (unset unless given: the model's ``luke_task.json`` ones apply)."""
    p.add_argument("--tokenizer", help="tokenizer folder or Hub repo id (default: the model's)")
    add_revision(p, "--model")
    eval_batch_size = [f for f in dataclasses.fields(TrainingArguments) if f.name == "eval_batch_size"]
    add_arguments(p, TrainingArguments, eval_batch_size)
    g = p.add_argument_group("task options (default: those the model was fine-tuned with)")
    add_task_arguments({"": g, "qa": g}, TASKS.values())


def _given_task_options(a: argparse.Namespace, command: str) -> dict[str, Any]:
    given = {name: getattr(a, name, None) for name in task_option_fields(TASKS.values())}
    return applicable_options(get_task(a.task), given, TASKS.values(), f"luke {command}")


def _register_finetune(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "finetune",
        _finetune,
        f"fine-tune a model on a task ({', '.join(TASKS)})",
        "Fine-tune LUKE on a task. Hyper-parameters default to the paper's for the task (spec §3.6). "
        "Writes the fine-tuned model folder (loads in transformers' matching class), results.json, "
        "{dev,test}_predictions.* and TensorBoard logs into --output-dir.",
    )
    _add_common(p)
    p.add_argument("--model", required=True, help="LUKE folder or Hub repo id, or a BERT/RoBERTa transformers folder")
    add_revision(p, "--model")
    p.add_argument(
        "--data-dir", required=True, type=Path, help=f"folder with the task's train/dev/test files{_ED_DATA}"
    )
    add_training_arguments(p, "main")
    g = p.add_argument_group("hyper-parameters (default: the paper's for the task)")
    add_training_arguments(g, "", TASKS.values())
    qa_tasks = [t.name for t in TASKS.values() if flag_fields(t.options_class, "qa")]
    add_task_arguments(
        {"": g, "qa": p.add_argument_group(f"question answering ({', '.join(qa_tasks)})")}, TASKS.values()
    )
    r = p.add_argument_group("run control")
    r.add_argument("--backend", choices=("luke", "transformers"), default="luke",
                   help="train our model or the same initialisation through transformers' LUKE class (squad from a "
                   "BERT/RoBERTa folder: that model's own *ForQuestionAnswering class, words only)")  # fmt: skip
    _add_unseen_labels(r, "dev/test labels missing from train: stop (error) or score them as misses (keep)")
    r.add_argument("--max-train-examples", type=int, help="train on a seeded random subset of this size")
    r.add_argument("--max-dev-examples", type=int, help="evaluate dev on a seeded subset of this size")
    r.add_argument("--max-test-examples", type=int, help="evaluate test on a seeded subset of this size")
    r.add_argument("--keep-checkpoints", action="store_true", help="keep OUTPUT/checkpoint and OUTPUT/best")
    add_training_arguments(r, "run")


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = _parser(sub, "evaluate", _evaluate, "score a fine-tuned model on a split of a data folder")
    _add_common(p)
    p.add_argument("--model", required=True, help=_MODEL_HELP)
    p.add_argument("--data-dir", required=True, type=Path, help=f"folder with the task's split files{_ED_DATA}")
    p.add_argument("--split", default="test", choices=("train", "dev", "test"))
    p.add_argument("--output-dir", type=Path, help="also write the predictions file here")
    _add_inference(p)
    _add_unseen_labels(p)
    p.add_argument("--max-eval-examples", type=int)


def _register_predict(sub: argparse._SubParsersAction) -> None:
    inputs = "; ".join(f"{name} {cls.raw_input}" for name, cls in TASKS.items())
    p = _parser(
        sub,
        "predict",
        _predict,
        "label raw text + spans (or answer questions) from a JSONL file with a fine-tuned model",
        f"Input JSON Lines: {inputs} (character offsets, end exclusive). Writes one JSON object per input line: "
        "the decision and its scores (entity_typing: labels + scores {label: probability}; "
        "relation_classification: relation + score + top [{relation, score}]; ner: entities with a score each; "
        "squad/record: answer + score + probability + n_best).",
    )
    _add_common(p)
    p.add_argument("--model", required=True, help=_MODEL_HELP)
    p.add_argument("--input", required=True, type=Path, help="JSONL input")
    p.add_argument("--output", type=Path, help="JSONL output (default: stdout)")
    p.add_argument("--top-k", type=int, default=5,
                   help="alternatives listed: relations (top), squad/record answers (n_best) (default 5)")  # fmt: skip
    _add_inference(p)


_SPLIT_SQUAD = (
    "Split a SQuAD v1.1 file by article with a fixed seed: --train-articles articles (default half) go to "
    "OUT_DIR/train.json, the rest to OUT_DIR/dev.json. Used to fine-tune on half of the official dev set and score "
    "the other half when train-v1.1.json is not available."
)
_SCORE = (
    "Prints JSON. entity_typing/relation_classification: a predictions JSONL (as written by finetune/evaluate) "
    "against the gold data file, matched by text and spans (counts of unmatched ones are printed; none matching is "
    "an error), or against its own 'gold' fields. ner: a CoNLL file whose last column is the predicted "
    "tag, against --gold's last column or, without --gold, the column before it (conlleval style). squad/record: a "
    "JSON object {question id: answer text} against the official JSON (--gold required); prints {exact_match, f1} "
    "in percent like the official scripts. entity_disambiguation: predictions JSONL {id, text, entities: [{start, "
    "end, title}]} against gold JSONL or AIDA-CoNLL (--gold required), strong match (document id, span, normalised "
    "title); prints {precision, recall, f1, accuracy, ...} in percent; missing documents count as misses, unknown "
    "ones are counted and ignored."
)


def _register_split_squad(sub: argparse._SubParsersAction) -> None:
    text = "split a SQuAD file by article (fixed seed) into train.json and dev.json"
    p = _parser(sub, "split-squad", _split_squad, text, _SPLIT_SQUAD)
    p.add_argument("squad_file", type=Path, help="SQuAD JSON (e.g. dev-v1.1.json)")
    p.add_argument("out_dir", type=Path, help="folder for train.json and dev.json")
    p.add_argument("--train-articles", type=int, help="articles that go to train (default: half)")
    p.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")


def _register_score(sub: argparse._SubParsersAction) -> None:
    text = "score a predictions file against gold data with the task's official metric"
    p = _parser(sub, "score", _score, text, _SCORE)
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("--gold", type=Path, help="gold data file")
    p.add_argument("--predictions", required=True, type=Path)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``finetune``, ``evaluate``, ``predict``, ``split-squad`` and ``score``."""
    for add in (_register_finetune, _register_evaluate, _register_predict, _register_split_squad, _register_score):
        add(sub)


def _check_file(path: Path | None, what: str) -> None:
    if path is not None and path.is_dir():
        raise LukeError(f"{what} {path} is a folder, expected a file")
    if path is not None and not path.is_file():
        raise LukeError(f"{what} {path} does not exist")


def _finetune(a: argparse.Namespace) -> int:
    if not a.data_dir.is_dir():
        raise LukeError(f"data directory {a.data_dir} does not exist")
    training = values_from_namespace(a, flag_fields(TrainingArguments))
    del training["output_dir"]
    given = {name: getattr(a, name) for name in task_option_fields(TASKS.values())}
    results = finetune(
        a.task, a.model, a.data_dir, a.output_dir, backend=a.backend, unseen_labels=a.unseen_labels,
        max_train_examples=a.max_train_examples, max_dev_examples=a.max_dev_examples,
        max_test_examples=a.max_test_examples, keep_checkpoints=a.keep_checkpoints, revision=a.revision,
        task_options=applicable_options(get_task(a.task), given, TASKS.values(), "luke finetune"), **training,
    )  # fmt: skip
    summary = {k: results[k] for k in ("dev", "test") if k in results}
    print(json.dumps({"output_dir": str(a.output_dir), "main_metric": results["main_metric"], **summary}, indent=2))
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    scores = evaluate_folder(
        a.task, a.model, a.data_dir, a.split, output_dir=a.output_dir, eval_batch_size=a.eval_batch_size,
        tokenizer_path=a.tokenizer, unseen_labels=a.unseen_labels, max_eval_examples=a.max_eval_examples,
        progress=a.progress, cpu=a.cpu, mixed_precision=a.mixed_precision, revision=a.revision,
        task_options=_given_task_options(a, "evaluate"),
    )  # fmt: skip
    print(json.dumps(scores, indent=2))
    return 0


def _predict(a: argparse.Namespace) -> int:
    _check_limit("--eval-batch-size", a.eval_batch_size, "")
    _check_limit("--top-k", a.top_k, "")
    _check_file(a.input, "input file")
    if a.output is not None:
        check_output(a.output, kind="file", overwrite=True, what="--output", inputs=[a.input, Path(a.model)])
    records = list(iter_json_records(a.input))
    if not records:
        raise DataError(a.input, "no input records in the file")
    options = _given_task_options(a, "predict")
    task, model, tokenizer = load_task_model(a.task, a.model, a.tokenizer, task_options=options, revision=a.revision)
    task.top_k = a.top_k
    acc = make_accelerator(cpu=a.cpu, mixed_precision=a.mixed_precision)
    model = acc.prepare_model(model, evaluation_mode=True)
    outputs = predict_records(
        task, model, tokenizer, records, a.input, batch_size=a.eval_batch_size, accelerator=acc, progress=a.progress
    )
    lines = (json.dumps(out, ensure_ascii=False) + "\n" for out in outputs)
    if a.output is None:
        sys.stdout.writelines(lines)
    else:
        write_text_atomic(a.output, "".join(lines))
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
