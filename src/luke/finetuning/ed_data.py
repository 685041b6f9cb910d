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

Also here: :func:`read_aida` (AIDA-CoNLL TSV; :func:`aida_split` tells train / testa / testb by document id),
:func:`read_documents` (either format, by content), :func:`read_candidates_file` (candidates per mention: our
JSON Lines or the deep-ed TSV of the standard ED releases), :func:`attach_candidates` (candidates from a
source, normalised, redirect-resolved, filtered by the entity vocabulary, with counts) and
:func:`score_files` (``luke score entity_disambiguation``; the metric is
:func:`luke.finetuning.metrics.ed_prf`). Every malformed line is a :class:`~luke.errors.DataError` naming the
file and line.
"""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from luke.errors import DataError, shorten
from luke.files import text_lines
from luke.finetuning.data import iter_json_records
from luke.wikipedia.dump_db import normalize_title
from luke.wikipedia.dump_db import resolve as resolve_redirect

__all__ = [
    "EdMention",
    "EdDocument",
    "normalize_title",
    "read_jsonl",
    "document_from_record",
    "document_record",
    "write_jsonl",
    "mention_count",
    "read_documents",
    "read_aida",
    "aida_split",
    "AIDA_SPLITS",
    "CandidateRow",
    "CandidatesFile",
    "read_candidates_file",
    "attach_candidates",
    "read_predictions",
    "score_files",
]

logger = logging.getLogger(__name__)


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


def _candidates(value: Any, path: Path, line: int, what: str) -> list[tuple[str, float]]:
    """``value`` as ``(title, prior)`` pairs (``what`` names the field in messages)."""
    if not isinstance(value, list):
        raise DataError(path, f"{what} must be a list of [title, prior] pairs", line)
    out = []
    for c in value:
        ok = isinstance(c, list | tuple) and len(c) == 2 and isinstance(c[0], str) and c[0].strip()
        if not ok or not isinstance(c[1], int | float) or isinstance(c[1], bool) or not math.isfinite(c[1]):
            raise DataError(path, f"{what}: expected [title, prior] pairs, got {shorten(c)}", line)
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
        cands = (
            _candidates(e["candidates"], path, line, f"entities[{i}].candidates")
            if e.get("candidates") is not None
            else None
        )
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


def _first_line(path: Path) -> tuple[int, str] | None:
    """The first non-blank line of ``path`` (number, text), or None for a blank file."""
    lines = text_lines(path)
    try:
        for number, raw in lines:
            if raw.strip():
                return number, raw
        return None
    finally:
        lines.close()


def read_documents(path: str | Path) -> list[EdDocument]:
    """Documents of ``path``, our JSON Lines (a first line starting with ``{`` or ``[``) or AIDA-CoNLL TSV
    (a first line ``-DOCSTART- (id)``), told apart by the content, not the name."""
    path = Path(path)
    first = _first_line(path)
    if first is None:
        raise DataError(path, "the file is empty")
    number, raw = first
    if raw.lstrip().startswith(("{", "[")):
        return read_jsonl(path)
    if raw.startswith(_DOCSTART):
        return read_aida(path)
    raise DataError(
        path, f"expected entity disambiguation documents as JSON Lines ('{{\"id\", \"text\", \"entities\"}}') "
        f"or AIDA-CoNLL TSV ('-DOCSTART- (id)' first), got {shorten(raw)}", number,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ AIDA-CoNLL

_DOCSTART = "-DOCSTART-"
_NIL = "--NME--"
_DOCSTART_ID = re.compile(r"^-DOCSTART-\s*\((.*)\)\s*$")
_WIKI_URL = re.compile(r"^https?://[^/\s]+/wiki/(\S+)$")
_YAGO_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})")
_AIDA_ROW = "TOKEN alone or TOKEN<TAB>B|I<TAB>MENTION<TAB>TITLE|--NME--[<TAB>URL<TAB>WIKI ID[<TAB>FREEBASE ID]]"
AIDA_SPLITS = ("train", "testa", "testb")


def aida_split(doc_id: str) -> str:
    """The AIDA-CoNLL split of a document, by its id: ``"testa"`` (development, e.g. ``"947testa CRICKET"``),
    ``"testb"`` (test, ``"1163testb SOCCER"``), ``"train"`` for any other id (``"1 EU"``)."""
    words = doc_id.split(maxsplit=1)
    first = words[0] if words else ""
    for split in ("testa", "testb"):
        if first.endswith(split):
            return split
    return "train"


def _aida_title(fields: list[str], path: Path, line: int) -> str | None:
    """The gold title of a mention row: None for ``--NME--``; else from the Wikipedia URL (column 5) when
    there is one, else from the YAGO name (``\\uXXXX`` escapes decoded); ``_`` -> space."""
    name = fields[3].strip()
    if name == _NIL:
        return None
    if not name:
        raise DataError(path, "column 4 (the entity) is empty; expected a YAGO/Wikipedia title or --NME--", line)
    if len(fields) >= 5:
        match = _WIKI_URL.match(fields[4].strip())
        if match is None:
            url = shorten(fields[4])
            raise DataError(
                path, f"column 5 must be a Wikipedia URL (http://en.wikipedia.org/wiki/TITLE), got {url}", line
            )
        if len(fields) >= 6 and not fields[5].strip().isdigit():
            raise DataError(path, f"column 6 must be the Wikipedia page id (digits), got {shorten(fields[5])}", line)
        title = urllib.parse.unquote(match.group(1))
    else:
        title = _YAGO_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)
    title = title.replace("_", " ").strip()
    if not title:
        raise DataError(path, f"empty entity title in {shorten(fields[3])}", line)
    return title


class _AidaBuilder:
    """One AIDA document being read: its text grows token by token (single spaces in a sentence, ``\\n``
    between sentences) and its mentions with it."""

    def __init__(self, doc_id: str, path: Path, line: int) -> None:
        self.doc = EdDocument(doc_id, "", [], path, line)
        self.parts: list[str] = []
        self.length = 0
        self.in_sentence = False
        self.open: tuple[EdMention, str, int] | None = None  # the mention an I row may continue: (m, full, line)

    def end_sentence(self) -> None:
        self.in_sentence, self.open = False, None

    def add_token(self, token: str) -> tuple[int, int]:
        sep = " " if self.in_sentence else ("\n" if self.length else "")
        self.parts += [sep, token]
        start = self.length + len(sep)
        self.length = start + len(token)
        self.in_sentence = True
        return start, self.length

    def add_row(self, fields: list[str], path: Path, line: int) -> None:
        token = fields[0]
        if not token.strip():
            raise DataError(path, f"empty token (column 1); expected {_AIDA_ROW}", line)
        if len(fields) == 1:
            self.add_token(token)
            self.open = None
            return
        if not 4 <= len(fields) <= 7:
            raise DataError(path, f"{len(fields)} tab-separated columns; expected {_AIDA_ROW}", line)
        tag, full = fields[1].strip(), fields[2]
        if tag not in ("B", "I"):
            raise DataError(path, f"column 2 must be B or I, got {shorten(fields[1])}", line)
        if not full.strip():
            raise DataError(path, "column 3 (the full mention) is empty", line)
        title = _aida_title(fields, path, line)
        if tag == "I":
            self._continue(token, full, title, path, line)
            return
        start, end = self.add_token(token)
        mention = EdMention(start, end, title)
        self.doc.mentions.append(mention)
        self.open = (mention, full, line)

    def _continue(self, token: str, full: str, title: str | None, path: Path, line: int) -> None:
        if self.open is None:
            raise DataError(path, "an I row that continues no mention (the row before is not B or I of one)", line)
        mention, open_full, open_line = self.open
        if full != open_full or title != mention.title:
            raise DataError(
                path, f"this I row's mention {shorten(full)!r} -> {shorten(title)!r} differs from the one it "
                f"continues (line {open_line}: {shorten(open_full)!r} -> {shorten(mention.title)!r})", line,
            )  # fmt: skip
        _, mention.end = self.add_token(token)

    def finish(self) -> EdDocument:
        self.doc.text = "".join(self.parts)
        return self.doc


def _docstart_id(raw: str, path: Path, line: int) -> str:
    match = _DOCSTART_ID.match(raw.strip())
    doc_id = match.group(1).strip() if match else ""
    if not doc_id:
        raise DataError(path, f"expected '-DOCSTART- (document id)', got {shorten(raw)}", line)
    return doc_id


def read_aida(path: str | Path, *, split: str | None = None) -> list[EdDocument]:
    """Documents of an AIDA-CoNLL TSV file (the layout of ``AIDA-YAGO2-dataset.tsv``).

    ``-DOCSTART- (947testa CRICKET)`` starts a document (its id is the text in parentheses); a row is a
    token alone or ``token<TAB>B|I<TAB>full mention<TAB>YAGO title|--NME--[<TAB>Wikipedia URL<TAB>page
    id[<TAB>Freebase id]]``; a blank line ends a sentence. The text is the tokens joined by single spaces,
    sentences joined by ``"\\n"``, with mention offsets into it; ``--NME--`` is NIL (title None); titles
    come from the URL (else the YAGO name) with ``_`` as a space. ``split`` (``"train"``, ``"testa"``,
    ``"testb"``) keeps the documents of one split (:func:`aida_split`). A malformed row is a
    :class:`DataError` naming the file and line."""
    if split is not None and split not in AIDA_SPLITS:
        raise ValueError(f"split must be one of {AIDA_SPLITS} or None, got {split!r}")
    path = Path(path)
    builders: list[_AidaBuilder] = []
    seen: dict[str, int] = {}
    current: _AidaBuilder | None = None
    for line, raw in text_lines(path):
        if raw.startswith(_DOCSTART):
            doc_id = _docstart_id(raw, path, line)
            if doc_id in seen:
                raise DataError(path, f"document id {shorten(doc_id)!r} already used on line {seen[doc_id]}", line)
            seen[doc_id] = line
            current = _AidaBuilder(doc_id, path, line)
            builders.append(current)
        elif not raw.strip():
            if current is not None:
                current.end_sentence()
        elif current is None:
            raise DataError(path, "a token row before the first '-DOCSTART- (id)' line", line)
        else:
            current.add_row(raw.split("\t"), path, line)
    if not builders:
        raise DataError(path, "no '-DOCSTART- (id)' line: not an AIDA-CoNLL file")
    docs = [b.finish() for b in builders]
    return docs if split is None else [d for d in docs if aida_split(d.id) == split]


# ------------------------------------------------------------------------------------------ candidates files


@dataclass
class CandidateRow:
    """The candidates a file gives one mention: by span (``start``/``end``, our JSON Lines) or by mention
    text in document order (``mention``, the deep-ed TSV); ``line`` is where the row is."""

    line: int
    candidates: list[tuple[str, float]]
    start: int | None = None
    end: int | None = None
    mention: str | None = None


def _mention_key(text: str) -> str:
    """Mention texts compare case-folded, without punctuation or spaces (files tokenise differently)."""
    return re.sub(r"\W+", "", text.casefold())


class CandidatesFile:
    """Candidates per mention read from a file (:func:`read_candidates_file`), a candidate source for
    :func:`attach_candidates`. ``rows`` maps a document id to its rows in file order. A document of the
    data is found by its id, or (deep-ed names documents ``"947testa CRICKET"`` or ``"947testa"``) by the id's
    first word when only one document of the file starts so."""

    def __init__(self, path: Path, kind: str, rows: dict[str, list[CandidateRow]]) -> None:
        self.path, self.kind, self.rows = path, kind, rows
        firsts: dict[str, list[str]] = {}
        for doc_id in rows:
            firsts.setdefault(_first_word(doc_id), []).append(doc_id)
        self._by_first_word = {w: ids[0] for w, ids in firsts.items() if len(ids) == 1 and w}

    def __len__(self) -> int:
        """Number of rows (mentions)."""
        return sum(len(r) for r in self.rows.values())

    def document_rows(self, doc_id: str) -> list[CandidateRow] | None:
        """The rows of a document, or None when the file has none for it."""
        if doc_id in self.rows:
            return self.rows[doc_id]
        name = self._by_first_word.get(_first_word(doc_id))
        return None if name is None else self.rows[name]

    def match_document(self, doc: EdDocument) -> tuple[list[list[tuple[str, float]]], list[CandidateRow]] | None:
        """``(candidates of each mention of doc, rows that matched no mention)``, or None when the file has no row
        for ``doc``. Rows match by span, or (deep-ed) by mention text in order; a mention of a document of the
        file without a row has no candidate (``[]``: NIL — deep-ed leaves out NIL mentions)."""
        rows = self.document_rows(doc.id)
        if rows is None:
            return None
        out: list[list[tuple[str, float]]] = [[] for _ in doc.mentions]
        unmatched = []
        if self.kind == "jsonl":
            index = {(m.start, m.end): i for i, m in enumerate(doc.mentions)}
            for row in rows:
                i = index.get((row.start, row.end))
                if i is None:
                    unmatched.append(row)
                else:
                    out[i] = list(row.candidates)
            return out, unmatched
        keys = [_mention_key(m.text_in(doc)) for m in doc.mentions]
        j = 0
        for row in rows:
            key = _mention_key(row.mention or "")
            i = next((i for i in range(j, len(keys)) if keys[i] == key), None)
            if i is None:
                unmatched.append(row)
            else:
                out[i], j = list(row.candidates), i + 1
        return out, unmatched

    def candidates(self, mention_text: str, k: int | None = 30) -> list[tuple[str, float]]:
        """The shared candidate-source call: the candidates of the first row whose mention text (deep-ed, or a
        JSON Lines row's optional ``mention``) equals ``mention_text`` up to case and punctuation; ``[]`` if
        none."""
        if not hasattr(self, "_by_mention"):
            self._by_mention: dict[str, list[tuple[str, float]]] = {}
            for rows in self.rows.values():
                for row in rows:
                    if row.mention is not None:
                        self._by_mention.setdefault(_mention_key(row.mention), row.candidates)
        found = self._by_mention.get(_mention_key(mention_text), [])
        return list(found if k is None else found[:k])


def _first_word(text: str) -> str:
    words = text.split(maxsplit=1)
    return words[0] if words else ""


def _deep_ed_row(raw: str, path: Path, line: int) -> tuple[str, CandidateRow]:
    """One row of the deep-ed TSV: ``doc<TAB>doc<TAB>mention<TAB>left context<TAB>right context<TAB>CANDIDATES
    <TAB>wikiid,prior,title<TAB>...<TAB>GT:<TAB>gold`` (``EMPTYCAND`` for no candidate; a title may contain
    commas)."""
    fields = raw.rstrip().split("\t")
    if len(fields) < 8 or fields[5] != "CANDIDATES":
        raise DataError(
            path, "expected DOC<TAB>DOC<TAB>MENTION<TAB>LEFT<TAB>RIGHT<TAB>CANDIDATES<TAB>id,prior,title<TAB>...<TAB>"
            f"GT:<TAB>GOLD (the deep-ed layout), got {len(fields)} columns: {shorten(raw)}", line,
        )  # fmt: skip
    if "GT:" not in fields[6:]:
        raise DataError(path, "no 'GT:' column after the candidates", line)
    gt = fields.index("GT:", 6)
    if len(fields) > gt + 2:
        raise DataError(path, f"{len(fields) - gt - 1} columns after 'GT:', expected one", line)
    doc_id, mention = fields[0].strip(), fields[2]
    if not doc_id or not mention.strip():
        raise DataError(path, "empty document name (column 1) or mention (column 3)", line)
    candidates = []
    for entry in fields[6:gt]:
        if entry == "EMPTYCAND":
            continue
        parts = entry.split(",", 2)
        try:
            prior = float(parts[1]) if len(parts) == 3 else math.nan
        except ValueError:
            prior = math.nan
        if not math.isfinite(prior) or prior < 0 or not parts[2].strip():
            raise DataError(path, f"candidate {shorten(entry)!r}: expected WIKI_ID,PRIOR,TITLE", line)
        candidates.append((parts[2].strip(), prior))
    return doc_id, CandidateRow(line, candidates, mention=mention)


def _jsonl_candidate_row(record: Any, path: Path, line: int) -> tuple[str, CandidateRow]:
    """``{"id", "start", "end", "candidates": [[title, prior], ...]}`` (optional ``"mention"``)."""
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line)
    missing = [k for k in ("id", "start", "end", "candidates") if k not in record]
    if missing:
        raise DataError(path, f"missing field(s) {', '.join(map(repr, missing))}; expected {_CANDIDATE_RECORD}", line)
    doc_id, start, end = record["id"], record["start"], record["end"]
    if not isinstance(doc_id, str | int) or isinstance(doc_id, bool):
        raise DataError(path, f"field 'id' must be a string, got {type(doc_id).__name__}", line)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not 0 <= start < end:
        raise DataError(path, f"'start' and 'end' must be character offsets with 0 <= start < end, got "
                        f"{shorten(start)}, {shorten(end)}", line)  # fmt: skip
    mention = record.get("mention")
    if mention is not None and not isinstance(mention, str):
        raise DataError(path, f"field 'mention' must be a string, got {type(mention).__name__}", line)
    candidates = _candidates(record["candidates"], path, line, "candidates")
    return str(doc_id), CandidateRow(line, candidates, start, end, mention)


_CANDIDATE_RECORD = '{"id", "start", "end", "candidates": [[title, prior], ...]}'


def read_candidates_file(path: str | Path) -> CandidatesFile:
    """Candidates per mention from a file, a source for :func:`attach_candidates`. Two layouts, told apart by
    the content: JSON Lines ``{"id", "start", "end", "candidates": [[title, prior], ...]}`` (document id and
    character span of the mention, optional ``"mention"`` text), and the TSV of Ganea & Hofmann's deep-ed
    (``aida_testB.csv`` and the WNED sets: one mention per row, matched to the document's mentions in order by
    their text). A malformed row is a :class:`DataError` naming the file and line."""
    path = Path(path)
    first = _first_line(path)
    if first is None:
        raise DataError(path, "the candidates file is empty")
    if first[1].lstrip().startswith(("{", "[")):
        kind, parsed = "jsonl", (_jsonl_candidate_row(r, path, n) for n, r in iter_json_records(path))
    elif "\tCANDIDATES\t" in first[1]:
        kind, parsed = "deep-ed", (_deep_ed_row(raw, path, n) for n, raw in text_lines(path) if raw.strip())
    else:
        raise DataError(
            path, f"expected candidates as JSON Lines ({_CANDIDATE_RECORD}) or the deep-ed TSV (DOC<TAB>DOC<TAB>"
            f"MENTION<TAB>...<TAB>CANDIDATES<TAB>...), got {shorten(first[1])}", first[0],
        )  # fmt: skip
    rows: dict[str, list[CandidateRow]] = {}
    spans: dict[tuple[str, int, int], int] = {}
    for doc_id, row in parsed:
        if row.start is not None:
            key = (doc_id, row.start, row.end)
            if key in spans:
                raise DataError(path, f"candidates for [{row.start}, {row.end}] of document {shorten(doc_id)!r} "
                                f"already given on line {spans[key]}", row.line)  # fmt: skip
            spans[key] = row.line
        rows.setdefault(doc_id, []).append(row)
    return CandidatesFile(path, kind, rows)


# ------------------------------------------------------------------------------------------ attaching candidates


def _resolver(redirects: Any) -> Callable[[str], str]:
    """``redirects`` as a function title -> final title: None (no redirects), a mapping (followed over a few
    hops), an object with ``resolve_redirect`` (a :class:`~luke.wikipedia.dump_db.DumpDB`) or a callable."""
    if redirects is None:
        return lambda title: title
    if hasattr(redirects, "resolve_redirect"):
        return redirects.resolve_redirect
    if isinstance(redirects, Mapping):
        return lambda title: resolve_redirect(title, redirects)  # type: ignore[arg-type]
    if callable(redirects):
        return lambda title: redirects(title) or title
    raise TypeError(f"redirects must be a mapping, a callable or None, got {type(redirects).__name__}")


def _clean_candidates(
    raw: Iterable[tuple[str, float]], k: int, resolve: Callable[[str], str], entity_vocab: Any, counts: dict
) -> list[tuple[str, float]]:
    """Titles normalised and redirect-resolved (priors of titles that become one are added), best first,
    those outside ``entity_vocab`` dropped (counted), the first ``k``."""
    merged: dict[str, float] = {}
    for title, prior in raw:
        found = normalize_title(title)
        found = normalize_title(resolve(found)) if found else ""
        if found:
            merged[found] = merged.get(found, 0.0) + float(prior)
    ranked = sorted(merged.items(), key=lambda c: -c[1])
    if entity_vocab is not None:
        kept = [c for c in ranked if c[0] in entity_vocab]
        counts["dropped_out_of_vocab"] += len(ranked) - len(kept)
        ranked = kept
    return ranked[:k]


def _lookups(docs: Sequence[EdDocument], source: Any, k: int, overwrite: bool, counts: dict) -> list[list[Any]]:
    """For each document, the raw candidates of each mention from ``source`` (None: the source has none, or
    the mention has candidates and ``overwrite`` is false)."""
    if not hasattr(source, "match_document"):
        return [
            [source.candidates(m.text_in(d), k) if overwrite or m.candidates is None else None for m in d.mentions]
            for d in docs
        ]
    out: list[list[Any]] = []
    unmatched: list[CandidateRow] = []
    for d in docs:
        found = source.match_document(d)
        if found is None:
            out.append([None] * len(d.mentions))
            continue
        counts["documents_in_file"] += 1
        counts["file_rows"] += len(source.document_rows(d.id) or ())
        out.append(found[0])
        unmatched += found[1]
    counts["unmatched_rows"] = len(unmatched)
    if docs and not counts["documents_in_file"] and len(source):
        raise DataError(source.path, f"none of the {len(docs)} documents (ids like {shorten(docs[0].id)!r}) has "
                        f"candidates in this file (ids like {shorten(next(iter(source.rows)))!r})")  # fmt: skip
    if unmatched and len(unmatched) == counts["file_rows"]:
        raise DataError(
            source.path, f"none of its {len(unmatched)} rows for these documents matches a mention (same span, or "
            "mention text in order): candidates for another file?", unmatched[0].line,
        )  # fmt: skip
    if unmatched:
        logger.warning("%s: %d candidate rows match no mention (first: line %d); ignored",
                       source.path, len(unmatched), unmatched[0].line)  # fmt: skip
    return out


def attach_candidates(
    docs: Sequence[EdDocument],
    source: Any,
    *,
    k: int = 30,
    entity_vocab: Any = None,
    redirects: Any = None,
    overwrite: bool = False,
) -> dict[str, int]:
    """Fill the ``candidates`` of the mentions that have none (all of them with ``overwrite``) from
    ``source``: anything with ``candidates(mention_text, k) -> [(title, prior), ...]`` (e.g.
    :class:`~luke.wikipedia.mention_db.MentionCandidates`), or a :class:`CandidatesFile` (matched per mention).

    Titles are normalised (:func:`normalize_title`) and resolved through ``redirects`` (a mapping, a callable,
    a ``DumpDB``); candidates not in ``entity_vocab`` (anything supporting ``in``) are dropped; at most ``k``
    remain, best prior first. A mention a source has nothing for keeps ``candidates=None``; ``[]`` = NIL.

    Returns counts over all mentions of ``docs``: ``mentions``, ``attached`` (filled now), ``with_candidates``,
    ``no_candidates`` (``[]``), ``not_looked_up`` (still None), ``ambiguous`` (more than one candidate),
    ``gold_mentions`` (a gold title), ``gold_in_candidates`` (their title among the candidates: the recall of
    the candidates), ``dropped_out_of_vocab`` (candidates removed); for a candidates file also
    ``documents_in_file`` and ``unmatched_rows`` (rows matching no mention, ignored with a warning)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    resolve = _resolver(redirects)
    counts = dict.fromkeys(("mentions", "attached", "with_candidates", "no_candidates", "not_looked_up",
                            "ambiguous", "gold_mentions", "gold_in_candidates", "dropped_out_of_vocab"), 0)  # fmt: skip
    if hasattr(source, "match_document"):
        counts |= {"documents_in_file": 0, "file_rows": 0, "unmatched_rows": 0}
    todo = [d for d in docs if any(overwrite or m.candidates is None for m in d.mentions)]
    for doc, found in zip(todo, _lookups(todo, source, k, overwrite, counts), strict=True):
        for mention, raw in zip(doc.mentions, found, strict=True):
            if raw is not None and (overwrite or mention.candidates is None):
                mention.candidates = _clean_candidates(raw, k, resolve, entity_vocab, counts)
                counts["attached"] += 1
    for doc in docs:
        for m in doc.mentions:
            n = None if m.candidates is None else len(m.candidates)
            counts["mentions"] += 1
            counts["with_candidates"] += bool(n)
            counts["no_candidates"] += n == 0
            counts["not_looked_up"] += n is None
            counts["ambiguous"] += (n or 0) > 1
            if m.title is not None:
                counts["gold_mentions"] += 1
                gold = normalize_title(resolve(normalize_title(m.title)))
                counts["gold_in_candidates"] += any(normalize_title(t) == gold for t, _ in m.candidates or ())
    counts.pop("file_rows", None)
    return counts


# ------------------------------------------------------------------------------------------ scoring


def read_predictions(path: str | Path) -> list[EdDocument]:
    """Predicted documents (our JSON Lines, each entity's ``title`` the prediction, null = NIL) with the
    titles in ``mention.predicted``; an empty file is no prediction at all."""
    path = Path(path)
    if _first_line(path) is None:
        return []
    docs = read_jsonl(path)
    for doc in docs:
        for m in doc.mentions:
            m.predicted, m.title = m.title, None
    return docs


def score_files(gold: str | Path, predictions: str | Path) -> dict[str, Any]:
    """``luke score entity_disambiguation --gold G --predictions P``: :func:`luke.finetuning.metrics.ed_prf`
    of a predictions file (our JSON Lines, as ``luke link`` / ``luke predict`` write it) against a gold file
    (our JSON Lines or AIDA-CoNLL TSV)."""
    from luke.finetuning.metrics import ed_prf

    gold_docs = read_documents(gold)
    predicted = read_predictions(predictions)
    by_id = {d.id: d for d in gold_docs}
    differ = [p.id for p in predicted if p.id in by_id and p.text != by_id[p.id].text]
    if differ:
        logger.warning("%s: %d document(s) have another text than in %s (first: %r); their spans may not match",
                       predictions, len(differ), gold, differ[0])  # fmt: skip
    return ed_prf(gold_docs, predicted)
