"""Relation classification: TACRED JSON and the SemEval-2010 Task 8 stand-in (TACRED-style fields).

Input layout (``transformers``' convention, spec §3.7; the legacy code used ``[HEAD]``/``[TAIL]`` and two
identical ``[MASK]`` rows): ``<ent>`` around the subject, ``<ent2>`` around the object, in text order;
entities ``[MASK]`` (subject) and ``[MASK2]`` (object), each covering its marker-to-marker span.  Head:
bias-free ``Linear(2H, C)`` on [subject; object].  Labels: the negative class (``no_relation``, or
``Other`` for SemEval) first, then the other training labels sorted.

Metrics: TACRED micro-F1 excluding the negative class; when the labels look like SemEval's
(``Type(e1,e2)``), also the official SemEval score (``semeval_f1``: macro-F1 over the 9 relation types,
directionality taken into account, ``Other`` excluded) — it is then the main metric.

A data folder without a dev file (SemEval) gets a dev set held out from train: ``dev_ratio`` of it,
chosen by a fixed seed (``dev_seed``), so every run sees the same split.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from luke.dataclass_args import option
from luke.errors import DataError
from luke.files import atomic_output
from luke.finetuning.data import check_text_span, int_pair, iter_json_records, match_predictions, require
from luke.finetuning.metrics import relation_micro_f1, semeval_official_f1
from luke.finetuning.tasks.base import (
    IGNORE_INDEX,
    Feature,
    Task,
    TaskDefaults,
    TaskOptions,
    entity_features,
    softmax,
)

__all__ = ["RelationClassificationTask", "RelationExample", "RelationPrediction"]

logger = logging.getLogger(__name__)
NEGATIVE_LABELS = ("no_relation", "Other")


@dataclass
class RelationExample:
    """A sentence with a subject and an object mention (character offsets, end exclusive)."""

    text: str
    subj: tuple[int, int]
    obj: tuple[int, int]
    relation: str | None = None
    path: str = ""
    line: int | None = None


@dataclass
class RelationPrediction:
    """The predicted relation, its probability and the ``top_k`` most probable relations (best first)."""

    relation: str
    score: float = 0.0
    top: list[tuple[str, float]] = field(default_factory=list)


def _relation(prediction: RelationPrediction | str) -> str:
    return prediction.relation if isinstance(prediction, RelationPrediction) else prediction


def _spans_from_tokens(tokens: list[str], spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Join tokens with single spaces; inclusive token spans -> character spans."""
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t) + 1
    text = " ".join(tokens)
    return text, [(starts[s], starts[e] + len(tokens[e])) for s, e in spans]


@dataclass(frozen=True)
class RelationOptions(TaskOptions):
    """Relation classification options: the dev set held out from train when there is no dev file."""

    dev_ratio: float = option(0.1, "held-out share of train when there is no dev file (0 = none)", at_least=0, below=1)
    dev_seed: int = option(0, "seed of that hold-out split", at_least=0)


class RelationClassificationTask(Task):
    """TACRED-style relation classification (``luke finetune relation_classification``)."""

    name = "relation_classification"
    model_class_name = "LukeForEntityPairClassification"
    defaults = TaskDefaults(train_batch_size=4, gradient_accumulation_steps=8, num_train_epochs=5, seed=42)
    split_files = {
        "train": ("train.json", "train.jsonl"),
        "dev": ("dev.json", "dev.jsonl"),
        "test": ("test.json", "test.jsonl"),
    }
    options_class = RelationOptions
    options: RelationOptions
    raw_input = "{'text', 'head': [s, e], 'tail': [s, e]}"

    def read(self, path: str | Path) -> list[RelationExample]:
        path = Path(path)
        out = []
        fields = {"token": list, "subj_start": int, "subj_end": int, "obj_start": int, "obj_end": int}
        for line, rec in iter_json_records(path):
            require(rec, fields | {"relation": str}, path, line)
            tokens = rec["token"]
            if not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
                raise DataError(path, "field 'token' must be a non-empty list of non-blank strings", line)
            spans = []
            for who in ("subj", "obj"):
                s, e = rec[f"{who}_start"], rec[f"{who}_end"]
                if not 0 <= s <= e < len(tokens):
                    raise DataError(
                        path, f"{who} span [{s}, {e}] (inclusive) is out of range for {len(tokens)} tokens", line
                    )
                spans.append((s, e))
            if spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]:
                raise DataError(path, f"subject {list(spans[0])} and object {list(spans[1])} overlap", line)
            text, (subj, obj) = _spans_from_tokens(tokens, spans)
            out.append(RelationExample(text, subj, obj, rec["relation"], str(path), line))
        return out

    def load_splits(self, data_dir, splits=("train", "dev", "test")) -> dict[str, list]:
        out = super().load_splits(data_dir, splits)
        if "dev" in splits and "dev" not in out and "train" in out:
            ratio, seed = self.options.dev_ratio, self.options.dev_seed
            train = out["train"]
            if ratio > 0 and len(train) > 1:
                # The label set comes from the full train file, so a held-out label is never "unseen".
                self.set_labels_from(train)
                order = list(range(len(train)))
                random.Random(seed).shuffle(order)
                n_dev = max(1, int(round(len(train) * ratio)))
                dev_ids = set(order[:n_dev])
                out["dev"] = [ex for i, ex in enumerate(train) if i in dev_ids]
                out["train"] = [ex for i, ex in enumerate(train) if i not in dev_ids]
                logger.info("no dev file: held out %d of %d training examples (seed %d)", n_dev, len(train), seed)
        return out

    def gold_labels(self, example: RelationExample) -> list[str]:
        return [example.relation] if example.relation is not None else []

    def build_labels(self, train) -> list[str]:
        labels = sorted({ex.relation for ex in train})
        negative = self.negative_label(labels)
        return ([negative] if negative else []) + [x for x in labels if x != negative]

    def set_labels_from(self, train) -> None:
        if self.labels is None:
            super().set_labels_from(train)
            negative = self.negative_label(self.labels or [])
            if negative is not None and self.labels == [negative]:
                logger.warning(
                    "%s: every training example has the relation %r: the model can only learn to predict it",
                    getattr(train[0], "path", "train") if train else "train", negative,
                )  # fmt: skip

    @staticmethod
    def negative_label(labels: Sequence[str]) -> str | None:
        for name in NEGATIVE_LABELS:
            if name in labels:
                return name
        return None

    @property
    def is_semeval(self) -> bool:
        return bool(self.labels) and any(label.endswith(("(e1,e2)", "(e2,e1)")) for label in self.labels or ())

    @property
    def main_metric(self) -> str:  # type: ignore[override]
        return "semeval_f1" if self.is_semeval else "f1"

    def featurize(self, examples: Sequence[RelationExample], tokenizer: Any) -> list[Feature]:
        enc = tokenizer(
            [ex.text for ex in examples],
            entity_spans=[[ex.subj, ex.obj] for ex in examples],
            task="entity_pair_classification",
        )
        label2id = self.label2id
        labels = [IGNORE_INDEX if ex.relation is None else label2id.get(ex.relation, IGNORE_INDEX) for ex in examples]
        return entity_features(enc, examples, self.options.max_seq_length, labels)

    def decode(self, examples, features, logits) -> list[RelationPrediction]:
        labels = self.labels or []
        preds = [RelationPrediction("") for _ in examples]
        for f, row in zip(features, logits, strict=True):
            probs = softmax(row)
            order = np.argsort(-np.asarray(row), kind="stable")[: max(1, self.top_k)]  # ties: the first, as argmax
            top = [(labels[j], float(probs[j])) for j in order]
            preds[f["example_index"]] = RelationPrediction(top[0][0], top[0][1], top)
        return preds

    def _score(self, gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
        labels = sorted(set(gold) | set(self.labels or ()))
        out = relation_micro_f1(gold, predicted, self.negative_label(labels))
        if any(x.endswith(("(e1,e2)", "(e2,e1)")) for x in labels):
            official = semeval_official_f1(gold, predicted, other=self.negative_label(labels) or "Other")
            out["semeval_f1"] = official["f1"]
            out["semeval_precision"], out["semeval_recall"] = official["precision"], official["recall"]
            out["semeval_per_type_f1"] = official["per_type_f1"]
        return out

    def score(self, examples, predictions) -> dict[str, Any]:
        return self._score([ex.relation for ex in examples], [_relation(p) for p in predictions])

    def write_predictions(self, path, examples, predictions) -> None:
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for i, (ex, pred) in enumerate(zip(examples, predictions, strict=True)):
                rec = {"index": i, "text": ex.text, "head": list(ex.subj), "tail": list(ex.obj), "gold": ex.relation,
                       "relation": _relation(pred)}  # fmt: skip
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    @staticmethod
    def _key(rec: dict[str, Any]) -> tuple | None:
        """(text, head, tail) of a prediction record, or None when it does not carry them."""
        if not isinstance(rec.get("text"), str) or not all(isinstance(rec.get(k), list) for k in ("head", "tail")):
            return None
        return (
            rec["text"],
            *(tuple(("bool", x) if isinstance(x, bool) else x for x in rec[k]) for k in ("head", "tail")),
        )

    def score_files(self, gold, predictions) -> dict[str, Any]:
        """Score a predictions JSONL against a gold data file (matched by text and spans; unmatched ones
        are counted) or, without ``gold``, against the records' own ``gold`` fields."""
        predictions = Path(predictions)
        records = list(iter_json_records(predictions))
        if not records:
            raise DataError(predictions, "no predictions in the file")
        for line, rec in records:
            require(rec, {"relation": str}, predictions, line)
            if gold is None and not isinstance(rec.get("gold"), str):
                raise DataError(predictions, "no string 'gold' field in this prediction; pass --gold FILE", line)
        preds = [rec["relation"] for _, rec in records]
        if gold is None:
            golds = [rec["gold"] for _, rec in records]
            counts = {"matched": len(records), "unmatched_gold": 0, "unmatched_predictions": 0}
        else:
            examples = self.read(gold)
            gold_keys = [(ex.text, ex.subj, ex.obj) for ex in examples]
            pred_keys = [self._key(rec) for _, rec in records]
            if any(k is None for k in pred_keys):  # no text to match by: in order, one per example
                if len(records) != len(examples):
                    raise DataError(
                        predictions, f"{len(records)} predictions but {len(examples)} gold examples in {gold}"
                    )
                pred_keys = gold_keys
            matched, counts = match_predictions(gold_keys, pred_keys, predictions, gold)
            golds = [ex.relation for ex in examples]
            miss = self.negative_label(sorted(set(golds) | set(preds) | set(self.labels or ()))) or ""
            preds = [preds[j] if j is not None else miss for j in matched]  # no prediction: a miss
        if self.labels is None:
            self.labels = self.build_labels([RelationExample("", (0, 1), (0, 1), g) for g in golds])
        return {**self._score(golds, preds), **counts}

    def examples_from_raw(self, records, path) -> list[RelationExample]:
        out = []
        for line, rec in records:
            require(rec, {"text": str, "head": list, "tail": list}, path, line)
            spans = []
            for key in ("head", "tail"):
                start, end = int_pair(rec[key], path, line, f"field {key!r}")
                check_text_span(rec["text"], start, end, path, line, key)
                spans.append((start, end))
            (s1, e1), (s2, e2) = spans
            if s1 < e2 and s2 < e1:
                raise DataError(path, f"head [{s1}, {e1}] and tail [{s2}, {e2}] overlap", line)
            out.append(RelationExample(rec["text"], spans[0], spans[1], None, str(path), line))
        return out

    def format_prediction(self, example: RelationExample, prediction: RelationPrediction | str) -> dict[str, Any]:
        """``{"text", "head", "tail", "relation", "score": its probability, "top": [{"relation", "score"}, ...]}``
        (the ``top_k`` most probable relations, best first)."""
        out: dict[str, Any] = {"text": example.text, "head": list(example.subj), "tail": list(example.obj),
                               "relation": _relation(prediction)}  # fmt: skip
        if isinstance(prediction, RelationPrediction):
            out["score"] = prediction.score
            out["top"] = [{"relation": r, "score": p} for r, p in prediction.top]
        return out
