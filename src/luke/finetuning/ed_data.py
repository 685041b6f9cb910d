"""Entity disambiguation data: documents with mention spans, their candidates and gold titles.

One in-memory form for every source — our JSON Lines, AIDA-CoNLL, documents built from a Wikipedia dump,
raw text whose mentions were detected — so that the task (:mod:`luke.finetuning.tasks.entity_disambiguation`),
``luke link`` and ``luke score entity_disambiguation`` share it.

Our JSON Lines format, one document per line (character offsets, ``end`` exclusive)::

    {"id": "doc-1", "text": "Paris is the capital of France.",
     "entities": [{"start": 0, "end": 5, "title": "Paris"},
                  {"start": 24, "end": 30, "title": "France",
                   "candidates": [["France", 0.93], ["France national football team", 0.04]]}]}

``title`` null (or absent) = the mention's entity is not in the knowledge base (NIL); ``candidates``
(optional) are ``[title, prior]`` pairs that replace the ones a candidate source would give. A document
without ``id`` is named after its line (``"line-7"``). Predictions use the same form, each entity with
``mention`` (its text) and ``score`` beside ``title``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from luke.errors import DataError, shorten
from luke.finetuning.data import iter_json_records
from luke.wikipedia.dump_db import normalize_title

__all__ = [
    "EdMention",
    "EdDocument",
    "normalize_title",
    "read_jsonl",
    "document_from_record",
    "document_record",
    "write_jsonl",
]


@dataclass
class EdMention:
    """One mention: ``text[start:end]`` of its document.

    ``title`` is the gold entity (None: NIL / not in the knowledge base; always None for raw text);
    ``candidates`` are ``(title, prior)`` pairs, best first (None: not looked up yet; ``[]``: no candidate,
    the mention is NIL). Predictions fill ``predicted`` (None: NIL) and ``score``."""

    start: int
    end: int
    title: str | None = None
    candidates: list[tuple[str, float]] | None = None
    predicted: str | None = None
    score: float | None = None

    def text_in(self, document: EdDocument) -> str:
        return document.text[self.start : self.end]


@dataclass
class EdDocument:
    """A document: its ``id``, ``text`` and ``mentions`` (sorted by start, never overlapping); ``path`` and
    ``line`` say where it was read (for error messages)."""

    id: str
    text: str
    mentions: list[EdMention] = field(default_factory=list)
    path: Path | None = None
    line: int | None = None


def _candidates(value: Any, path: Path, line: int, index: int) -> list[tuple[str, float]]:
    if not isinstance(value, list):
        raise DataError(path, f"entities[{index}].candidates must be a list of [title, prior] pairs", line)
    out = []
    for c in value:
        ok = isinstance(c, list | tuple) and len(c) == 2 and isinstance(c[0], str) and c[0].strip()
        if not ok or not isinstance(c[1], int | float) or isinstance(c[1], bool):
            raise DataError(
                path, f"entities[{index}].candidates: expected [title, prior] pairs, got {shorten(c)}", line
            )
        out.append((c[0], float(c[1])))
    return out


def document_from_record(record: Any, path: Path, line: int, *, require_entities: bool = True) -> EdDocument:
    """An :class:`EdDocument` from one JSON object of our format; a malformed one is a :class:`DataError`
    naming ``path`` and ``line`` and what is wrong (overlapping mentions included). With
    ``require_entities=False`` (raw text for ``luke link``) ``entities`` may be absent."""
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line)
    text = record.get("text")
    if not isinstance(text, str):
        raise DataError(path, "field 'text' must be a string" if "text" in record else "missing field 'text'", line)
    doc_id = record.get("id", f"line-{line}")
    if not isinstance(doc_id, str | int) or isinstance(doc_id, bool):
        raise DataError(path, f"field 'id' must be a string, got {type(doc_id).__name__}", line)
    entities = record.get("entities")
    if entities is None and not require_entities:
        entities = []
    if not isinstance(entities, list):
        raise DataError(path, "field 'entities' must be a list" if "entities" in record else "missing 'entities'", line)
    mentions = []
    for i, e in enumerate(entities):
        if not isinstance(e, dict):
            raise DataError(path, f"entities[{i}] must be an object, got {type(e).__name__}", line)
        start, end = e.get("start"), e.get("end")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)):
            raise DataError(path, f"entities[{i}]: 'start' and 'end' must be integer character offsets", line)
        if not 0 <= start < end <= len(text):
            raise DataError(path, f"entities[{i}] = [{start}, {end}] is out of range for {len(text)} characters", line)
        title = e.get("title")
        if title is not None and (not isinstance(title, str) or not title.strip()):
            raise DataError(path, f"entities[{i}].title must be a non-empty string or null, got {shorten(title)}", line)
        cands = _candidates(e["candidates"], path, line, i) if e.get("candidates") is not None else None
        mentions.append(EdMention(start, end, title, cands))
    mentions.sort(key=lambda m: (m.start, m.end))
    for a, b in zip(mentions, mentions[1:], strict=False):
        if b.start < a.end:
            raise DataError(
                path, f"overlapping mentions [{a.start}, {a.end}] and [{b.start}, {b.end}] in document {doc_id}", line
            )
    return EdDocument(str(doc_id), text, mentions, path, line)


def read_jsonl(path: str | Path, *, require_entities: bool = True) -> list[EdDocument]:
    """Documents of a JSON Lines (or JSON array) file in our format (see the module docstring); document ids
    must be unique."""
    path = Path(path)
    docs, seen = [], {}
    for line, record in iter_json_records(path):
        doc = document_from_record(record, path, line, require_entities=require_entities)
        if doc.id in seen:
            raise DataError(path, f"document id {shorten(doc.id)!r} already used on line {seen[doc.id]}", line)
        seen[doc.id] = line
        docs.append(doc)
    return docs


def document_record(doc: EdDocument, *, predictions: bool = False) -> dict[str, Any]:
    """The JSON object of ``doc``: gold titles, or with ``predictions`` the predicted ones with ``mention``
    and ``score`` (NIL mentions keep ``title: null``)."""
    entities = []
    for m in doc.mentions:
        if predictions:
            score = None if m.score is None else round(float(m.score), 6)
            entities.append(
                {"start": m.start, "end": m.end, "mention": m.text_in(doc), "title": m.predicted, "score": score}
            )
        else:
            entities.append({"start": m.start, "end": m.end, "title": m.title})
    return {"id": doc.id, "text": doc.text, "entities": entities}


def write_jsonl(path: str | Path, docs: Iterable[EdDocument], *, predictions: bool = False) -> None:
    """Write ``docs`` as JSON Lines (atomically)."""
    from luke.files import write_text_atomic

    lines = [json.dumps(document_record(d, predictions=predictions), ensure_ascii=False) for d in docs]
    write_text_atomic(Path(path), "".join(line + "\n" for line in lines))


def mention_count(docs: Sequence[EdDocument]) -> int:
    return sum(len(d.mentions) for d in docs)
