"""What the two question-answering tasks (SQuAD, ReCoRD) share: their options (:class:`QaOptions`), passage
windows with the original meaning of ``doc_stride``, the ``{"data": [...]}`` file layout, and the official
predictions file ``{question id: answer text}``."""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from luke.dataclass_args import option
from luke.errors import DataError, shorten
from luke.files import read_text
from luke.finetuning.metrics import qa_scores
from luke.finetuning.options import TaskOptions

__all__ = [
    "QaOptions",
    "id_lines",
    "load_data_file",
    "load_json_file",
    "passage_windows",
    "read_prediction_file",
    "score_prediction_file",
]

logger = logging.getLogger(__name__)
_ID_FIELD = re.compile(r'"id"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class QaOptions(TaskOptions):
    """Options of the question-answering tasks (flags in the ``question answering`` group)."""

    doc_stride: int = option(128, "tokens between the starts of consecutive passage windows", group="qa", at_least=1)
    max_query_length: int = option(64, "question tokens kept", group="qa", at_least=1)


def id_lines(text: str) -> dict[str, int]:
    """Line number of the first ``"id": "..."`` field of each id in a JSON text: SQuAD and ReCoRD files are
    one JSON object, so this is how an error names the line of a question."""
    lines: dict[str, int] = {}
    line, last = 1, 0
    for m in _ID_FIELD.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        try:
            value = json.loads(f'"{m.group(1)}"')
        except json.JSONDecodeError:
            continue
        lines.setdefault(value, line)
    return lines


def passage_windows(
    tokenizer: Any,
    examples: Sequence[Any],
    queries: Sequence[str],
    query_lengths: Sequence[int],
    passages: Sequence[str],
    *,
    max_length: int,
    doc_stride: int,
    **kwargs: Any,
) -> Iterator[tuple[list[int], Any]]:
    """Tokenize (query, passage) pairs into windows of at most ``max_length`` tokens whose passage parts
    start ``doc_stride`` tokens apart (``run_squad``'s meaning; the tokenizer's ``stride`` is the overlap,
    which depends on the query length, so there is one tokenizer call per query length).

    Yields ``(example indices of the call, encoding)``.  ``kwargs`` go to the tokenizer; a callable value is
    evaluated per example index (``entity_spans=lambda i: spans[i]``).  ``examples`` (with ``qid``, ``path``
    and ``line``) only serve the error messages."""
    n_special = 4 if tokenizer.double_separator else 3
    groups: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(query_lengths):
        groups[n].append(i)
    for q_len, idx in sorted(groups.items()):
        capacity = max_length - q_len - n_special
        if capacity < 2:
            ex = examples[idx[0]]
            raise DataError(
                ex.path,
                f"question {ex.qid!r}: a {q_len}-token query leaves {capacity} passage tokens in --max-seq-length "
                f"{max_length}; lower --max-query-length or raise --max-seq-length",
                ex.line,
            )
        per_call = {k: ([v(i) for i in idx] if callable(v) else v) for k, v in kwargs.items()}
        enc = tokenizer(
            [queries[i] for i in idx],
            [passages[i] for i in idx],
            task=None,
            truncation="only_second",
            max_length=max_length,
            stride=max(0, capacity - doc_stride),
            return_overflowing_tokens=True,
            **per_call,
        )
        yield idx, enc


def load_json_file(path: str | Path) -> tuple[Any, str]:
    """(parsed JSON, raw text) of a whole-file JSON document; :class:`DataError` (with the line) otherwise."""
    path = Path(path)
    raw = read_text(path)  # missing, unreadable, non-UTF-8: DataError naming the file (and line)
    if not raw.strip():
        raise DataError(path, "the file is empty")
    try:
        return json.loads(raw), raw
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", err.lineno) from None


def load_data_file(path: str | Path, layout: str) -> tuple[list[Any], dict[str, int]]:
    """The ``data`` list of a SQuAD/ReCoRD JSON file and the line of each id (:func:`id_lines`); a file of
    another shape raises :class:`DataError` saying it expected ``layout``."""
    path = Path(path)
    doc, raw = load_json_file(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(path, f"expected {layout}")
    return doc["data"], id_lines(raw)


def read_prediction_file(path: str | Path) -> dict[str, str]:
    """A predictions file ``{question id: answer text}`` (the official SQuAD/ReCoRD format), checked."""
    path = Path(path)
    preds, _ = load_json_file(path)
    if not isinstance(preds, dict):
        raise DataError(path, "expected one JSON object {question id: answer text}")
    if not preds:
        raise DataError(path, "no predictions in the file (an empty JSON object)")
    bad = [k for k, v in preds.items() if not isinstance(v, str)]
    if bad:
        raise DataError(path, f"{len(bad)} prediction(s) are not strings (first id {shorten(bad[0])!r})")
    return preds


def score_prediction_file(gold: dict[str, list[str]], predictions: str | Path) -> dict[str, Any]:
    """Official EM/F1 of a predictions file against ``{question id: gold answers}``; questions without a
    prediction (scored 0) and predictions for unknown ids (ignored) are reported as warnings with the count
    and the first id."""
    preds = read_prediction_file(predictions)
    if gold and not any(qid in gold for qid in preds):
        raise DataError(
            predictions,
            f"none of its {len(preds)} question ids is in the gold file ({len(gold)} questions): are they "
            f"predictions for another file? (first id {shorten(next(iter(preds)))!r})",
        )
    out = qa_scores(gold, preds)
    if out["missing"]:
        logger.warning("%s: %d gold question(s) have no prediction and score 0", predictions, out["missing"])
    if out["unknown"]:
        logger.warning(
            "%s: %d prediction id(s) are not in the gold file and are ignored (first: %r)",
            predictions,
            out["unknown"],
            out["first_unknown"],
        )
    return out
