"""Entity typing on Open Entity (ERNIE JSON release): multi-label, BCE, predict logit > 0, micro P/R/F1.

Input layout (spec §3.1, with ``transformers``' marker names): ``[CLS] left <ent> mention <ent> right
[SEP]``; one ``[MASK]`` entity whose positions cover the mention *and both markers*.  The legacy code
also appended a padding entity (an APEX work-around); it changes nothing and is not added here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from luke.errors import DataError, shorten
from luke.files import atomic_output
from luke.finetuning.data import check_text_span, int_pair, iter_json_records, match_predictions, require
from luke.finetuning.metrics import multilabel_micro_f1
from luke.finetuning.tasks.base import Feature, Task, TaskDefaults, entity_features, sigmoid

__all__ = ["EntityTypingTask", "TypingExample", "TypingPrediction", "normalize_ptb"]

_PTB = {"-LRB-": "(", "-LCB-": "(", "-LSB-": "(", "-RRB-": ")", "-RCB-": ")", "-RSB-": ")"}


def normalize_ptb(text: str) -> str:
    """Replace PTB bracket tokens (``-LRB-`` …) by brackets, as the original reader does."""
    for token, char in _PTB.items():
        text = text.replace(token, char)
    return text


@dataclass
class TypingExample:
    """One mention: ``text[start:end]`` is the mention (character offsets, end exclusive)."""

    text: str
    start: int
    end: int
    labels: list[str] = field(default_factory=list)
    path: str = ""
    line: int | None = None


@dataclass
class TypingPrediction:
    """The predicted types (probability above 0.5, i.e. logit > 0) and every label's probability."""

    labels: list[str]
    scores: dict[str, float] = field(default_factory=dict)


def _labels(prediction: TypingPrediction | list[str]) -> list[str]:
    return prediction.labels if isinstance(prediction, TypingPrediction) else list(prediction)


def _check_span(start: Any, end: Any, length: int, path: Path | str, line: int | None, name: str = "span") -> None:
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        raise DataError(path, f"{name} offsets must be integers, got {start!r}, {end!r}", line)
    if not 0 <= start < end <= length:
        raise DataError(path, f"{name} ({start}, {end}) is out of range for a text of {length} characters", line)


def _plain_offset(value: Any) -> Any:
    """An offset of a predictions file as a key part (a JSON ``true`` never equals the offset 1)."""
    return ("bool", value) if isinstance(value, bool) else value


class EntityTypingTask(Task):
    """Open Entity typing (``luke finetune entity_typing``)."""

    name = "entity_typing"
    model_class_name = "LukeForEntityClassification"
    defaults = TaskDefaults(gradient_accumulation_steps=2, seed=12)
    label_kind = "multilabel"
    raw_input = "{'text', 'span': [start, end]}"

    def read(self, path: str | Path) -> list[TypingExample]:
        path = Path(path)
        out = []
        for line, rec in iter_json_records(path):
            require(rec, {"sent": str, "start": int, "end": int, "labels": list}, path, line)
            text, start, end = rec["sent"], rec["start"], rec["end"]
            _check_span(start, end, len(text), path, line)
            if not text[start:end].strip():
                raise DataError(path, f"the mention [{start}, {end}] covers only whitespace", line)
            if not all(isinstance(x, str) for x in rec["labels"]):
                raise DataError(path, "field 'labels' must be a list of strings", line)
            left, mention, right = (normalize_ptb(t) for t in (text[:start], text[start:end], text[end:]))
            out.append(
                TypingExample(
                    left + mention + right, len(left), len(left) + len(mention), list(rec["labels"]), str(path), line
                )
            )
        return out

    def gold_labels(self, example: TypingExample) -> list[str]:
        return example.labels

    def featurize(self, examples: Sequence[TypingExample], tokenizer: Any) -> list[Feature]:
        enc = tokenizer(
            [ex.text for ex in examples],
            entity_spans=[[(ex.start, ex.end)] for ex in examples],
            task="entity_classification",
        )
        label2id = self.label2id
        labels = []
        for ex in examples:
            multi_hot = np.zeros(len(label2id), np.float32)
            multi_hot[[label2id[label] for label in ex.labels if label in label2id]] = 1.0
            labels.append(multi_hot)
        return entity_features(enc, examples, self.options.max_seq_length, labels)

    def decode(self, examples, features, logits) -> list[TypingPrediction]:
        labels = self.labels or []
        preds = [TypingPrediction([]) for _ in examples]
        for f, row in zip(features, logits, strict=True):
            row = np.asarray(row)
            scores = dict(zip(labels, sigmoid(row).tolist(), strict=True))
            preds[f["example_index"]] = TypingPrediction([labels[j] for j in np.flatnonzero(row > 0)], scores)
        return preds

    def score(self, examples, predictions) -> dict[str, Any]:
        return multilabel_micro_f1([ex.labels for ex in examples], [_labels(p) for p in predictions])

    def write_predictions(self, path, examples, predictions) -> None:
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for i, (ex, pred) in enumerate(zip(examples, predictions, strict=True)):
                rec = {
                    "index": i,
                    "text": ex.text,
                    "span": [ex.start, ex.end],
                    "gold": ex.labels,
                    "labels": _labels(pred),
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def _read_predictions(self, path: Path) -> list[tuple[int, dict[str, Any]]]:
        """The records of a predictions file, each checked: ``labels`` (and ``gold`` when present) are
        lists of strings; an empty file is an error."""
        records = list(iter_json_records(path))
        if not records:
            raise DataError(path, "no predictions in the file")
        for line, rec in records:
            require(rec, {"labels": list}, path, line)
            for key in ("labels", "gold"):
                value = rec.get(key, [])
                if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                    raise DataError(path, f"field {key!r} must be a list of strings, got {shorten(value)}", line)
        return records

    def score_files(self, gold, predictions) -> dict[str, Any]:
        """Score a predictions JSONL against a gold data file (matched by text and span; unmatched ones
        are counted) or, without ``gold``, against the records' own ``gold`` fields."""
        predictions = Path(predictions)
        records = self._read_predictions(predictions)
        if gold is None:
            missing = next((line for line, rec in records if "gold" not in rec), None)
            if missing is not None:
                raise DataError(predictions, "no 'gold' field in this prediction; pass --gold FILE", missing)
            out = multilabel_micro_f1([rec["gold"] for _, rec in records], [rec["labels"] for _, rec in records])
            return {**out, "matched": len(records), "unmatched_gold": 0, "unmatched_predictions": 0}
        examples = self.read(gold)
        keyed = all(isinstance(rec.get("text"), str) and isinstance(rec.get("span"), list) for _, rec in records)
        if keyed:
            pred_keys = [(rec["text"], *map(_plain_offset, rec["span"])) for _, rec in records]
        elif len(records) != len(examples):  # no text to match by: in order, one per example
            raise DataError(predictions, f"{len(records)} predictions but {len(examples)} gold examples in {gold}")
        else:
            pred_keys = [(ex.text, ex.start, ex.end) for ex in examples]
        matched, counts = match_predictions(
            [(ex.text, ex.start, ex.end) for ex in examples], pred_keys, predictions, gold
        )
        preds = [records[j][1]["labels"] if j is not None else [] for j in matched]
        return {**multilabel_micro_f1([ex.labels for ex in examples], preds), **counts}

    def examples_from_raw(self, records, path) -> list[TypingExample]:
        out = []
        for line, rec in records:
            require(rec, {"text": str, "span": list}, path, line)
            start, end = int_pair(rec["span"], path, line, "field 'span'")
            check_text_span(rec["text"], start, end, path, line, "span")
            out.append(TypingExample(rec["text"], start, end, [], str(path), line))
        return out

    def format_prediction(self, example: TypingExample, prediction: TypingPrediction | list[str]) -> dict[str, Any]:
        """``{"text", "span", "labels": [predicted types], "scores": {label: probability}}``."""
        out = {"text": example.text, "span": [example.start, example.end], "labels": _labels(prediction)}
        if isinstance(prediction, TypingPrediction):
            out["scores"] = prediction.scores
        return out
