"""Task metrics, implemented here (no downloads, no `evaluate`).

* :func:`micro_prf` — micro precision/recall/F1 from counts.
* :func:`multilabel_micro_f1` — Open Entity: micro P/R/F1 over (example, label) pairs.
* :func:`relation_micro_f1` — TACRED: micro P/R/F1 ignoring the negative class (``no_relation``).
* :func:`semeval_official_f1` — SemEval-2010 Task 8 official score: macro-F1 over the 9 relation types,
  (9+1)-way, directionality taken into account, ``Other`` excluded.
* :func:`span_f1` and :func:`tags_to_spans` — entity-level P/R/F1 (CoNLL/``conlleval`` chunk semantics).

All scores are fractions in [0, 1]; commands print them as they are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "micro_prf",
    "multilabel_micro_f1",
    "relation_micro_f1",
    "semeval_official_f1",
    "span_f1",
    "tags_to_spans",
]

Span = tuple[int, int, str]  # (first word, last word inclusive, type)


def micro_prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    """Precision, recall, F1 from counts (0 where a denominator is 0)."""
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def multilabel_micro_f1(gold: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]]) -> dict[str, float]:
    """Micro P/R/F1 over all (example, label) pairs (Open Entity / ERNIE / LUKE)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold examples but {len(predicted)} predictions")
    correct = n_pred = n_gold = 0
    for g, p in zip(gold, predicted, strict=True):
        g, p = set(g), set(p)
        correct += len(g & p)
        n_pred += len(p)
        n_gold += len(g)
    return micro_prf(correct, n_pred, n_gold)


def relation_micro_f1(gold: Sequence[str], predicted: Sequence[str], negative: str | None) -> dict[str, float]:
    """TACRED micro P/R/F1: precision over predictions != ``negative``, recall over gold != ``negative``."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold examples but {len(predicted)} predictions")
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p and g != negative)
    n_pred = sum(1 for p in predicted if p != negative)
    n_gold = sum(1 for g in gold if g != negative)
    out = micro_prf(correct, n_pred, n_gold)
    out["accuracy"] = sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold) if gold else 0.0
    return out


_DIRECTED = re.compile(r"^(.+)\((e[12]),(e[12])\)$")


def _relation_type(label: str) -> str:
    m = _DIRECTED.match(label)
    return m.group(1) if m else label


def semeval_official_f1(gold: Sequence[str], predicted: Sequence[str], other: str = "Other") -> dict[str, float]:
    """Official SemEval-2010 Task 8 score (the scorer's "(9+1)-way, directionality taken into account").

    For each relation type R (direction stripped, ``other`` excluded): correct = predictions equal to the
    gold label including direction; P = correct / #predicted with type R (either direction, so a wrong
    direction costs precision and recall); R = correct / #gold of type R; F1 per type; the result is the
    unweighted mean over the types seen in gold or predictions.  Also returns the per-type F1s.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold examples but {len(predicted)} predictions")
    correct: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        tg, tp = _relation_type(g), _relation_type(p)
        n_gold[tg] += 1
        n_pred[tp] += 1
        if g == p:
            correct[tg] += 1
    types = sorted((set(n_gold) | set(n_pred)) - {other})
    per_type = {t: micro_prf(correct[t], n_pred[t], n_gold[t]) for t in types}
    n = len(types)
    return {
        "precision": sum(v["precision"] for v in per_type.values()) / n if n else 0.0,
        "recall": sum(v["recall"] for v in per_type.values()) / n if n else 0.0,
        "f1": sum(v["f1"] for v in per_type.values()) / n if n else 0.0,
        "per_type_f1": {t: v["f1"] for t, v in per_type.items()},
    }


def _split_tag(tag: str) -> tuple[str, str]:
    if tag in ("O", "", "-X-"):
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESLU":
        return tag[0], tag[2:]
    return "I", tag  # a bare type, as some files write


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Chunks of one sentence, ``conlleval`` semantics: works for IOB1, IOB2 (and IOBES/BILOU prefixes).

    A chunk starts at ``B-``/``S-``, or at an ``I-`` that does not continue a chunk of the same type; it
    ends before ``O``, ``B-``/``S-``, a different type, or after ``E-``/``S-``.
    """
    spans: list[Span] = []
    start, kind = -1, ""
    for i, tag in enumerate(tags):
        prefix, typ = _split_tag(tag)
        if kind and (prefix in ("O", "B", "S", "U") or typ != kind):
            spans.append((start, i - 1, kind))
            kind = ""
        if prefix != "O" and not kind:
            start, kind = i, typ
        if kind and prefix in ("E", "S", "L", "U"):
            spans.append((start, i, kind))
            kind = ""
    if kind:
        spans.append((start, len(tags) - 1, kind))
    return spans


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str = "IOB2") -> list[str]:
    """Tags of one sentence from non-overlapping spans, ``IOB2`` (every chunk starts with ``B-``) or
    ``IOB1`` (``B-`` only where the previous word ends a chunk of the same type)."""
    tags = ["O"] * length
    for start, end, typ in sorted(spans):
        for i in range(start, end + 1):
            tags[i] = f"I-{typ}"
        if scheme == "IOB2" or (start > 0 and tags[start - 1] == f"I-{typ}"):
            tags[start] = f"B-{typ}"
    return tags


def span_f1(gold: Sequence[Iterable[Span]], predicted: Sequence[Iterable[Span]]) -> dict[str, float]:
    """Entity-level micro P/R/F1 over sentences: a predicted chunk counts iff its (start, end, type) is a
    gold chunk of the same sentence.  Also returns per-type F1 and the counts."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted sentences")
    correct: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        g, p = set(g), set(p)
        for s in g:
            n_gold[s[2]] += 1
        for s in p:
            n_pred[s[2]] += 1
        for s in g & p:
            correct[s[2]] += 1
    out: dict = micro_prf(sum(correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    out["per_type_f1"] = {t: micro_prf(correct[t], n_pred[t], n_gold[t])["f1"] for t in sorted(n_gold | n_pred)}
    out["num_gold"], out["num_predicted"], out["num_correct"] = (
        sum(n_gold.values()),
        sum(n_pred.values()),
        sum(correct.values()),
    )
    return out
