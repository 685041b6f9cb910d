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

from luke.errors import DataError
from luke.finetuning.data import iter_json_records, require
from luke.finetuning.metrics import multilabel_micro_f1
from luke.finetuning.tasks.base import Feature, Task, TaskDefaults, entity_features

__all__ = ["EntityTypingTask", "TypingExample", "normalize_ptb"]

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


def _check_span(start: Any, end: Any, length: int, path: Path | str, line: int | None, name: str = "span") -> None:
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        raise DataError(path, f"{name} offsets must be integers, got {start!r}, {end!r}", line)
    if not 0 <= start < end <= length:
        raise DataError(path, f"{name} ({start}, {end}) is out of range for a text of {length} characters", line)


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

    def decode(self, examples, features, logits) -> list[list[str]]:
        labels = self.labels or []
        preds: list[list[str]] = [[] for _ in examples]
        for f, row in zip(features, logits, strict=True):
            preds[f["example_index"]] = [labels[j] for j in np.flatnonzero(np.asarray(row) > 0)]
        return preds

    def score(self, examples, predictions) -> dict[str, Any]:
        return multilabel_micro_f1([ex.labels for ex in examples], predictions)

    def write_predictions(self, path, examples, predictions) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for i, (ex, pred) in enumerate(zip(examples, predictions, strict=True)):
                rec = {"index": i, "text": ex.text, "span": [ex.start, ex.end], "gold": ex.labels, "labels": pred}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def _read_prediction_labels(self, path: Path) -> list[list[str]]:
        preds = []
        for line, rec in iter_json_records(path):
            require(rec, {"labels": list}, path, line)
            preds.append([str(x) for x in rec["labels"]])
        return preds

    def score_files(self, gold, predictions) -> dict[str, Any]:
        predictions = Path(predictions)
        preds = self._read_prediction_labels(predictions)
        if gold is None:
            golds = [[str(x) for x in rec.get("gold", [])] for _, rec in iter_json_records(predictions)]
        else:
            golds = [ex.labels for ex in self.read(gold)]
        if len(golds) != len(preds):
            raise DataError(predictions, f"{len(preds)} predictions but {len(golds)} gold examples")
        return multilabel_micro_f1(golds, preds)

    def examples_from_raw(self, records, path) -> list[TypingExample]:
        out = []
        for line, rec in records:
            require(rec, {"text": str, "span": list}, path, line)
            if len(rec["span"]) != 2:
                raise DataError(path, "field 'span' must be [start, end]", line)
            _check_span(rec["span"][0], rec["span"][1], len(rec["text"]), path, line)
            out.append(TypingExample(rec["text"], rec["span"][0], rec["span"][1], [], str(path), line))
        return out

    def format_prediction(self, example: TypingExample, prediction: list[str]) -> dict[str, Any]:
        return {"text": example.text, "span": [example.start, example.end], "labels": prediction}
