"""Task metrics, implemented here (no downloads, no `evaluate`).

* :func:`micro_prf` — micro precision/recall/F1 from counts.
* :func:`multilabel_micro_f1` — Open Entity: micro P/R/F1 over (example, label) pairs.
* :func:`relation_micro_f1` — TACRED: micro P/R/F1 ignoring the negative class (``no_relation``).
* :func:`semeval_official_f1` — SemEval-2010 Task 8 official score: macro-F1 over the 9 relation types,
  (9+1)-way, directionality taken into account, ``Other`` excluded.
* :func:`span_f1` and :func:`tags_to_spans` — entity-level P/R/F1 (CoNLL/``conlleval`` chunk semantics).
* :func:`normalize_answer`, :func:`answer_exact_match`, :func:`answer_f1`, :func:`qa_scores` — the official
  SQuAD v1.1 evaluation semantics, also the official ReCoRD metric.
* :func:`ed_prf` — entity disambiguation / linking: strong-match P/R/F1 and in-KB accuracy (percentages).

Scores are fractions in [0, 1], except :func:`qa_scores`, which reports percentages like the official
SQuAD/ReCoRD scripts, and :func:`ed_prf`, which reports them like the ED literature.
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from luke.errors import DataError, shorten
from luke.wikipedia.dump_db import normalize_title

__all__ = [
    "answer_exact_match",
    "answer_f1",
    "ed_prf",
    "micro_prf",
    "multilabel_micro_f1",
    "normalize_answer",
    "qa_scores",
    "relation_micro_f1",
    "semeval_official_f1",
    "span_f1",
    "tags_to_spans",
]

logger = logging.getLogger(__name__)

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
        raise DataError(f"{len(gold)} gold examples but {len(predicted)} predictions")
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
        raise DataError(f"{len(gold)} gold examples but {len(predicted)} predictions")
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


def _count_by_type(
    pairs: Iterable[tuple[Iterable[tuple[str, object]], Iterable[tuple[str, object]]]],
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(correct, predicted, gold) counts per type over ``(gold items, predicted items)`` pairs; an item is
    ``(type, key)`` and is correct when the same item is among the gold ones."""
    correct: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for g, p in pairs:
        g, p = set(g), set(p)
        n_gold.update(t for t, _ in g)
        n_pred.update(t for t, _ in p)
        correct.update(t for t, _ in g & p)
    return correct, n_pred, n_gold


def semeval_official_f1(gold: Sequence[str], predicted: Sequence[str], other: str = "Other") -> dict[str, float]:
    """Official SemEval-2010 Task 8 score (the scorer's "(9+1)-way, directionality taken into account").

    For each relation type R (direction stripped, ``other`` excluded): correct = predictions equal to the
    gold label including direction; P = correct / #predicted with type R (either direction, so a wrong
    direction costs precision and recall); R = correct / #gold of type R; F1 per type; the result is the
    unweighted mean over the types seen in gold or predictions.  Also returns the per-type F1s.
    """
    if len(gold) != len(predicted):
        raise DataError(f"{len(gold)} gold examples but {len(predicted)} predictions")
    # One item per example: (direction-free type, full label); a prediction is correct when equal to the gold label.
    correct, n_pred, n_gold = _count_by_type(
        ([(_relation_type(g), g)], [(_relation_type(p), p)]) for g, p in zip(gold, predicted, strict=True)
    )
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
        raise DataError(f"{len(gold)} gold sentences but {len(predicted)} predicted sentences")
    correct, n_pred, n_gold = _count_by_type(
        ([(s[2], s) for s in g], [(s[2], s) for s in p]) for g, p in zip(gold, predicted, strict=True)
    )
    out: dict = micro_prf(sum(correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    out["per_type_f1"] = {t: micro_prf(correct[t], n_pred[t], n_gold[t])["f1"] for t in sorted(n_gold | n_pred)}
    out["num_gold"], out["num_predicted"], out["num_correct"] = (
        sum(n_gold.values()),
        sum(n_pred.values()),
        sum(correct.values()),
    )
    return out


# ------------------------------------------------------------------------------------------ QA (SQuAD, ReCoRD)

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, drop ASCII punctuation, replace the words a/an/the by a space,
    collapse whitespace (in that order, as the official script)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def answer_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised strings (bag of tokens)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    p, r = overlap / len(pred), overlap / len(ref)
    return 2 * p * r / (p + r)


def qa_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float | int | list]:
    """Official SQuAD v1.1 / ReCoRD scores: per question the max over its gold answers (duplicates
    included) of EM and F1, averaged over *all* gold questions and reported as percentages.

    A question without a prediction scores 0 (``missing`` counts them); predictions for ids that are not in
    ``gold`` are ignored (``unknown`` counts them, ``first_unknown`` names one)."""
    em = f1 = 0.0
    missing = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            missing += 1
            continue
        pred = predictions[qid]
        em += max((answer_exact_match(pred, a) for a in answers), default=0.0)
        f1 += max((answer_f1(pred, a) for a in answers), default=0.0)
    n = len(gold)
    unknown = [qid for qid in predictions if qid not in gold]
    return {
        "exact_match": 100.0 * em / n if n else 0.0,
        "f1": 100.0 * f1 / n if n else 0.0,
        "total": n,
        "missing": missing,
        "unknown": len(unknown),
        "first_unknown": unknown[0] if unknown else None,
    }


# ------------------------------------------------------------------------------------------ entity disambiguation


def _ed_title(title: str | None) -> str | None:
    """A title as ED scoring compares it: Wikipedia-normalised (``_`` -> space, first letter upper-cased)."""
    if title is None:
        return None
    return normalize_title(title) or title.strip()


def _by_id(docs: Sequence[Any], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in docs:
        if d.id in out:
            raise DataError(f"document id {shorten(d.id)!r} appears twice in the {what}")
        out[d.id] = d
    return out


def _ed_counts(gold: Any, predicted: Any | None, totals: dict[str, list[int]]) -> bool:
    """Add one document's (correct, predicted, gold) counts to ``totals[""]`` and, for mentions with more than
    one candidate, ``totals["ambiguous_"]``; True when some mention's candidates are known."""
    golds = {(m.start, m.end): m for m in gold.mentions}
    preds = {} if predicted is None else {(m.start, m.end): m for m in predicted.mentions}
    known = False
    for span in sorted(golds.keys() | preds.keys()):
        g, p = golds.get(span), preds.get(span)
        g_title = _ed_title(g.title) if g is not None else None
        p_title = _ed_title(p.predicted) if p is not None else None
        candidates = p.candidates if p is not None and p.candidates is not None else getattr(g, "candidates", None)
        known = known or candidates is not None
        for name in ("", "ambiguous_") if candidates is not None and len(candidates) > 1 else ("",):
            t = totals[name]
            t[0] += g_title is not None and g_title == p_title
            t[1] += p_title is not None
            t[2] += g_title is not None
    return known


def ed_prf(gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
    """Entity disambiguation / linking scores of ``predicted`` documents against ``gold`` ones (both
    :class:`~luke.finetuning.ed_data.EdDocument`: gold titles in ``mention.title``, predictions in
    ``mention.predicted``; None = NIL), strong match: same document id, same span, same title after Wikipedia
    title normalisation.

    ``precision`` = correct / predicted mentions with a title; ``recall`` = correct / gold mentions with a
    title; ``f1``; ``accuracy`` = the in-KB accuracy of ED papers (correct / gold mentions with a title, i.e.
    the recall when the mentions are the gold ones) — all in percent. A gold document missing from the
    predictions counts as misses (``missing_documents``); predicted documents not in gold are ignored
    (``unknown_documents``, ``first_unknown_document``). When candidates are known (on the predicted mentions,
    else the gold ones), the same scores on the ambiguous mentions (more than one candidate) come as
    ``ambiguous_*``."""
    gold_docs, pred_docs = _by_id(gold, "gold documents"), _by_id(predicted, "predicted documents")
    totals = {"": [0, 0, 0], "ambiguous_": [0, 0, 0]}
    known = False
    for doc_id, g in gold_docs.items():
        known = _ed_counts(g, pred_docs.get(doc_id), totals) or known
    unknown = [i for i in pred_docs if i not in gold_docs]
    missing = sum(i not in pred_docs for i in gold_docs)
    if unknown:
        logger.warning("%d predicted document(s) are not in the gold data (first: %r); ignored", len(unknown),
                       unknown[0])  # fmt: skip
    if missing:
        logger.warning("%d gold document(s) have no prediction (scored as misses)", missing)
    out: dict[str, Any] = {}
    for name in ("", "ambiguous_") if known else ("",):
        correct, n_pred, n_gold = totals[name]
        scores = micro_prf(correct, n_pred, n_gold)
        out |= {f"{name}{k}": 100.0 * v for k, v in scores.items()}
        out[f"{name}accuracy"] = 100.0 * correct / n_gold if n_gold else 0.0
        out |= {f"{name}gold_mentions": n_gold, f"{name}predicted_mentions": n_pred, f"{name}correct": correct}
    out |= {"documents": len(gold_docs), "missing_documents": missing, "unknown_documents": len(unknown),
            "first_unknown_document": unknown[0] if unknown else None}  # fmt: skip
    return out
