"""Mention dictionary from Wikipedia hyperlinks, and a longest-match mention detector.

The SQuAD entity features of the LUKE paper (spec §3.5) come from a *mention database*: for every anchor text
of a Wikipedia link, how often it is linked, to which articles, and in how many articles it occurs at all.
:func:`build_mention_db` computes it from a dump database; :class:`MentionDetector` turns it (or any plain
``mention → title`` dictionary, so that text outside Wikipedia can be handled, spec §7 item 10) into a fast
left-to-right longest-match detector over character spans.

Words and normalisation (shared by the builder and the detector, so they always agree):

* :func:`word_spans` splits text like BERT's ``BasicTokenizer``: maximal runs of letters/digits (with the
  combining marks attached to them) are words, every other non-space character (punctuation, symbols, each
  CJK ideograph) is a one-character word, whitespace separates.
* :func:`normalize_mention` case-folds, strips accents and collapses whitespace.

Mention database file (JSON Lines, UTF-8)::

    {"format": "luke-mention-db", "version": 1, "source": "enwiki.sqlite", "max_mention_words": 20}
    {"mention": "east asia", "link_count": 2, "doc_count": 3, "link_prob": 0.6666666666666666,
     "candidates": [["East Asia", 2]]}
    ...

one object per normalised mention, sorted by mention; ``candidates`` in descending count, then title.
``link_count`` counts links (with this anchor text) to existing articles, ``doc_count`` the articles whose
text contains the mention as a whole-word sequence (an article that links it always counts) and
``link_prob = min(1, link_count / max(doc_count, 1))``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Container, Iterator, Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from luke.errors import ConfigError, DataError, OutputError, shorten
from luke.files import atomic_output, check_output, json_lines, refuse_inputs_in_output, text_lines
from luke.wikipedia.dump_db import DumpDB, resolve

logger = logging.getLogger(__name__)

FORMAT_NAME = "luke-mention-db"
FORMAT_VERSION = 1

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MentionDetector", "build_mention_db", "normalize_mention", "word_spans"]

# CJK ideograph blocks that BERT's BasicTokenizer splits into single characters.
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # fmt: skip


def _class_ranges(ranges: list[tuple[int, int]]) -> str:
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


@functools.cache
def _word_pattern() -> re.Pattern[str]:
    """The word regex: a CJK ideograph, or a run of alphanumerics and combining marks, or one other non-space."""
    marks: list[tuple[int, int]] = []
    # Combining marks live in planes 0-1 and in the variation selectors supplement (U+E0100-E01EF).
    for code in (*range(0x20000), *range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(code))[0] == "M":
            if marks and marks[-1][1] == code - 1:
                marks[-1] = (marks[-1][0], code)
            else:
                marks.append((code, code))
    cjk = _class_ranges(list(_CJK_RANGES))
    # [^\W_] is exactly str.isalnum(); CJK ideographs are taken out of the runs.
    return re.compile(rf"[{cjk}]|(?:[^\W_{cjk}]|[{_class_ranges(marks)}])+|\S")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` (end exclusive) of the words of ``text``.

    A word is a maximal run of alphanumeric characters (``str.isalnum``) together with the combining marks
    attached to it, or any other single non-space character (punctuation, symbols, emoji, and each CJK
    ideograph, like BERT's ``BasicTokenizer``). Whitespace only separates words. Works on any text.

    >>> text = "Tokyo's 2 parks, (東京)."
    >>> [text[s:e] for s, e in word_spans(text)]
    ['Tokyo', "'", 's', '2', 'parks', ',', '(', '東', '京', ')', '.']
    """
    return [m.span() for m in _word_pattern().finditer(text)]


def _fold(text: str) -> str:
    """Character-wise part of :func:`normalize_mention`: case folding and accent stripping, spaces kept."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def normalize_mention(text: str) -> str:
    """Normalise a mention for dictionary lookup: lowercase, strip accents, collapse whitespace.

    Lowercasing is Unicode case folding (``"Straße"`` → ``"strasse"``); accents are stripped by NFKD
    decomposition and dropping the non-spacing marks (category ``Mn``, as BERT's uncased tokenizer does), so
    compatibility characters are unfolded too (``"ﬁ"`` → ``"fi"``); runs of whitespace become one space and the
    ends are stripped. ``normalize_mention(normalize_mention(x)) == normalize_mention(x)`` for ordinary text.

    >>> normalize_mention("  Beyoncé\\tKNOWLES ")
    'beyonce knowles'
    """
    return " ".join(_fold(text).split())


def _token_keys(text: str, spans: list[tuple[int, int]]) -> list[str | None]:
    """Normalised form of every word, or ``None`` where it is empty or contains whitespace after folding
    (then keys through that word are computed from the raw substring)."""
    keys: list[str | None] = []
    for start, end in spans:
        word = text[start:end]
        if word.isascii():
            keys.append(word.lower())
            continue
        folded = _fold(word)
        keys.append(folded if folded and folded.split() == [folded] else None)
    return keys


def _span_keys(
    text: str,
    spans: list[tuple[int, int]],
    tokens: list[str | None],
    first: int,
    max_words: int,
    prefixes: Container[str] | None,
) -> Iterator[tuple[int, str]]:
    """Yield ``(last, key)``: the normalised text of words ``first..last`` for growing ``last`` (at most
    ``max_words`` words), stopping before the first key that is not in ``prefixes`` (when given).

    ``key == normalize_mention(text[spans[first][0]:spans[last][1]])`` always; it is built incrementally from
    the per-word keys (words separated by whitespace are joined with one space, adjacent words directly).
    """
    key = ""
    exact = True
    stop = min(len(spans), first + max_words)
    for last in range(first, stop):
        token = tokens[last]
        if exact and token is not None:
            if last == first:
                key = token
            elif spans[last][0] > spans[last - 1][1]:
                key = f"{key} {token}"
            else:
                key += token
        else:
            exact = False
            key = normalize_mention(text[spans[first][0] : spans[last][1]])
        if prefixes is not None and key not in prefixes:
            return
        yield last, key


def _word_prefixes(mention: str) -> list[str]:
    """Keys of every leading word sequence of ``mention`` (the last one is the whole normalised mention)."""
    spans = word_spans(mention)
    return [key for _, key in _span_keys(mention, spans, _token_keys(mention, spans), 0, len(spans), None)]


def _write_atomically(out: Path, lines: Iterator[str]) -> None:
    """Write ``lines`` to ``out`` under a temporary name, renamed into place when complete."""
    with atomic_output(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line)
            f.write("\n")


# ---------------------------------------------------------------------------------------------- builder


def build_mention_db(
    dump_db_path: str | os.PathLike[str] | DumpDB,
    out_path: str | os.PathLike[str],
    *,
    max_mention_words: int = 20,
    min_link_count: int = 1,
    progress: bool = True,
    any_target: bool = False,
) -> dict[str, int]:
    """Build the mention database ``out_path`` (JSON Lines, see the module docstring) from a dump database.

    Pass 1 counts, for every link, its normalised anchor text against the redirect-resolved target; links to
    titles that are not articles of the database, with an empty anchor or an anchor of more than
    ``max_mention_words`` words are not counted. Pass 2 scans the plain text of every article for all anchor
    strings (every whole-word sequence of at most ``max_mention_words`` words, pruned by word prefixes) to count
    documents. Mentions linked fewer than ``min_link_count`` times are left out. The file is written to a
    temporary file next to ``out_path`` and renamed when complete (the path is checked before the work: a
    folder, a read-only file or a parent that cannot be written is an :class:`~luke.errors.OutputError`).
    Returns counts (links kept and dropped, pages, mentions written). ``any_target`` keeps links whose
    (redirect-resolved) target is not an article of the database: for a partial dump, whose links mostly point
    outside it.
    """
    if max_mention_words < 1:
        raise ConfigError(f"max_mention_words must be at least 1, got {max_mention_words}")
    if min_link_count < 1:
        raise ConfigError(f"min_link_count must be at least 1, got {min_link_count}")
    out = check_output(out_path, kind="file", overwrite=True, what="output mention database")
    if not isinstance(dump_db_path, DumpDB):
        refuse_inputs_in_output(out, [dump_db_path], what="output mention database")
    if out.suffix.lower() != ".jsonl":
        raise OutputError(
            f"output mention database {out}: the file is JSON Lines; end its name with .jsonl "
            f"(not {out.suffix or '(no suffix)'!r})"
        )
    if isinstance(dump_db_path, DumpDB):
        return _build_mention_db(dump_db_path, out, max_mention_words, min_link_count, progress, any_target)
    db = DumpDB(dump_db_path)
    try:
        return _build_mention_db(db, out, max_mention_words, min_link_count, progress, any_target)
    finally:
        db.close()


def _build_mention_db(
    db: DumpDB, out: Path, max_mention_words: int, min_link_count: int, progress: bool, any_target: bool = False
) -> dict[str, int]:
    page_ids = db.page_ids()
    stats: Counter[str] = Counter(pages=len(page_ids))
    candidates, prefixes = _count_links(db, page_ids, stats, max_mention_words, progress, any_target)
    doc_counts = _count_documents(db, page_ids, candidates, prefixes, max_mention_words, progress)
    stats["mentions"] = 0
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "source": Path(db.path).name,
        "max_mention_words": max_mention_words,
    }
    _write_atomically(out, _mention_lines(header, candidates, doc_counts, min_link_count, stats))
    return dict(stats)


def _count_links(
    db: DumpDB, page_ids: list[int], stats: Counter[str], max_mention_words: int, progress: bool, any_target: bool
) -> tuple[dict[str, Counter[str]], set[str]]:
    """Pass 1, anchors -> targets: the link count of every (mention, target) and the word prefixes of all
    mentions kept; the links dropped are counted in ``stats``."""
    redirects = db.redirects()
    titles = db.title_set()
    candidates: dict[str, Counter[str]] = {}
    prefixes: set[str] = set()
    anchor_keys: dict[str, str | None] = {}  # raw anchor → normalised mention (None: dropped)
    for page_id in tqdm(page_ids, desc="mention-db: links", unit="page", disable=not progress):
        _, paragraphs = db.get_page(page_id)
        for paragraph in paragraphs:
            for link in paragraph.links:
                stats["links"] += 1
                target = resolve(link.title, redirects)
                if target not in titles and not any_target:
                    stats["links_dropped_not_an_article"] += 1
                    continue
                anchor = paragraph.text[link.start : link.end]
                if anchor not in anchor_keys:
                    keys = _word_prefixes(anchor)
                    ok = bool(keys) and bool(keys[-1]) and len(keys) <= max_mention_words
                    if ok:
                        prefixes.update(keys)
                    anchor_keys[anchor] = keys[-1] if ok else None
                mention = anchor_keys[anchor]
                if mention is None:
                    stats["links_dropped_too_long" if anchor.strip() else "links_dropped_empty_anchor"] += 1
                    continue
                candidates.setdefault(mention, Counter())[target] += 1
                stats["links_to_articles"] += 1
                if target != link.title:
                    stats["links_resolved_through_redirects"] += 1
    return candidates, prefixes


def _count_documents(
    db: DumpDB,
    page_ids: list[int],
    candidates: dict[str, Counter[str]],
    prefixes: set[str],
    max_mention_words: int,
    progress: bool,
) -> Counter[str]:
    """Pass 2: the number of articles containing each mention (linked, or as a whole-word sequence)."""
    doc_counts: Counter[str] = Counter()
    for page_id in tqdm(page_ids, desc="mention-db: documents", unit="page", disable=not progress):
        _, paragraphs = db.get_page(page_id)
        found: set[str] = set()
        for paragraph in paragraphs:
            text = paragraph.text
            for link in paragraph.links:  # an article that links a mention contains it
                mention = normalize_mention(text[link.start : link.end])
                if mention in candidates:
                    found.add(mention)
            spans = word_spans(text)
            tokens = _token_keys(text, spans)
            for first in range(len(spans)):
                if tokens[first] is not None and tokens[first] not in prefixes:
                    continue  # fast path: most words start no mention
                for _, key in _span_keys(text, spans, tokens, first, max_mention_words, prefixes):
                    if key in candidates:
                        found.add(key)
        doc_counts.update(found)
    return doc_counts


def _mention_lines(
    header: dict[str, Any],
    candidates: dict[str, Counter[str]],
    doc_counts: Counter[str],
    min_link_count: int,
    stats: Counter[str],
) -> Iterator[str]:
    """The JSON lines of the file: ``header``, then one record per mention linked ``min_link_count`` times or
    more, in mention order; the mentions written and left out are counted in ``stats``."""
    yield json.dumps(header, ensure_ascii=False)
    for mention in sorted(candidates):
        counts = candidates[mention]
        link_count = sum(counts.values())
        if link_count < min_link_count:
            stats["mentions_below_min_link_count"] += 1
            continue
        doc_count = doc_counts[mention]
        record: dict[str, Any] = {
            "mention": mention,
            "link_count": link_count,
            "doc_count": doc_count,
            "link_prob": min(1.0, link_count / max(doc_count, 1)),
            "candidates": [[t, c] for t, c in sorted(counts.items(), key=lambda x: (-x[1], x[0]))],
        }
        stats["mentions"] += 1
        if len(counts) > 1:
            stats["ambiguous_mentions"] += 1
        yield json.dumps(record, ensure_ascii=False)


# --------------------------------------------------------------------------------------------- detector


class MentionDetector:
    """A ``mention → title`` dictionary with greedy left-to-right longest-match detection.

    Keys are normalised with :func:`normalize_mention` (when two keys normalise to the same string, the first
    one wins). :meth:`detect` walks the words of a text (:func:`word_spans`) from left to right; at each word it
    takes the longest word sequence (at most ``max_mention_words`` words) whose normalised text is a key,
    emits its character span and title, and continues after it; otherwise it moves one word on. Detection
    is pruned with the set of normalised word prefixes of the keys, so most positions cost one set lookup.

    Nothing here is Wikipedia-specific: any text works, with any plain dictionary — a TSV file
    (``mention<TAB>title`` per line) or a JSON object ``{mention: title}`` — or with a mention database built
    from Wikipedia links by :func:`build_mention_db` (see :meth:`from_file`).

    >>> detector = MentionDetector({"New York": "New York City", "New York Times": "The New York Times"})
    >>> detector.detect("I read the NEW YORK times in new york.")
    [(11, 25, 'The New York Times'), (29, 37, 'New York City')]
    """

    def __init__(self, mapping: Mapping[str, str], max_mention_words: int = 20) -> None:
        if max_mention_words < 1:
            raise ConfigError(f"max_mention_words must be at least 1, got {max_mention_words}")
        self.max_mention_words = max_mention_words
        self._mapping: dict[str, str] = {}
        self._prefixes: set[str] = set()
        for raw, title in mapping.items():
            self._add(raw, title)

    def _add(self, raw: str, title: str) -> bool:
        """Add an entry; returns False when its key is empty or already present."""
        keys = _word_prefixes(raw)
        if not keys or not keys[-1] or keys[-1] in self._mapping:
            return False
        self._mapping[keys[-1]] = title
        self._prefixes.update(keys)
        normalized = keys[-1]
        if normalized != raw:  # prefixes of the normalised form too (they differ only for odd characters)
            self._prefixes.update(_word_prefixes(normalized))
        return True

    # ------------------------------------------------------------------------------------------- files
    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        min_link_prob: float = 0.01,
        min_prior: float = 1.0,
        entity_vocab: Container[str] | None = None,
        max_mention_words: int | None = None,
    ) -> MentionDetector:
        """Load a mention database (JSON Lines written by :func:`build_mention_db`) or a plain dictionary.

        The format is recognised from the content: a first line that is the mention-database header; else a
        file starting with ``{`` is one JSON object ``{mention: title}``; anything else is TSV, one
        ``mention<TAB>title`` per non-empty line.

        For a mention database, a mention is kept when ``link_prob >= min_link_prob`` and its most frequent
        candidate has at least ``min_prior`` of its links; the default ``min_prior=1.0`` keeps only strings
        that always link to the same article (ambiguous strings are dropped, as in the paper). With
        ``entity_vocab`` (an :class:`luke.entity_vocab.EntityVocab`, or any container of titles) only
        entries whose title is in it are kept. ``max_mention_words`` defaults to the database header's value
        (20 for plain dictionaries).

        Raises :class:`luke.errors.DataError` (naming the file, and the line where there is one) for a
        missing, unreadable or malformed file.
        """
        path = Path(path)
        if path.is_dir():
            raise DataError(path, "is a folder, expected a mention dictionary file")
        if not path.is_file():
            raise DataError(path, "no such mention dictionary file")
        if not os.access(path, os.R_OK):
            raise DataError(path, "cannot be read (permission denied)")
        with open(path, "rb") as f:
            first, first_line = b"", 0
            for number, raw in enumerate(f, start=1):
                if raw.strip():
                    first, first_line = raw, number
                    break
        try:
            first_text = first.decode("utf-8").lstrip("\ufeff").strip()
        except UnicodeDecodeError as err:
            raise DataError(path, f"not UTF-8 text ({err.reason})", first_line) from None
        header: Any = None
        if first_text.startswith("{"):
            try:
                header = json.loads(first_text)
            except json.JSONDecodeError:
                header = None
        if isinstance(header, dict) and header.get("format") == FORMAT_NAME:
            entries, header_words = _read_mention_db(path, min_link_prob=min_link_prob, min_prior=min_prior)
            words = header_words if max_mention_words is None else max_mention_words
        elif first_text.startswith("{"):
            entries, words = _read_json_dict(path), 20 if max_mention_words is None else max_mention_words
        elif not first_text:
            raise DataError(path, "the file is empty")
        else:
            entries, words = _read_tsv(path), 20 if max_mention_words is None else max_mention_words
        detector = cls({}, max_mention_words=words)
        dropped = 0
        for mention, title in entries:
            if entity_vocab is not None and title not in entity_vocab:
                dropped += 1
                continue
            detector._add(mention, title)
        if dropped:
            logger.info("%s: dropped %d mention(s) whose title is not in the entity vocabulary", path, dropped)
        return detector

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the dictionary as TSV (``mention<TAB>title``, sorted by mention; readable by
        :meth:`from_file`). The file is replaced atomically."""
        for mention, title in self._mapping.items():
            if not title or any(c in title for c in "\t\n\r"):
                raise DataError(
                    f"title {shorten(repr(title))} of mention {shorten(repr(mention))} cannot be written as TSV"
                )
        _write_atomically(Path(path), (f"{m}\t{t}" for m, t in sorted(self._mapping.items())))

    # ---------------------------------------------------------------------------------------- lookup
    def __len__(self) -> int:
        """Number of (normalised) mentions."""
        return len(self._mapping)

    def __contains__(self, mention: object) -> bool:
        return isinstance(mention, str) and normalize_mention(mention) in self._mapping

    def get(self, mention: str, default: str | None = None) -> str | None:
        """Title of ``mention`` (normalised first), or ``default``."""
        return self._mapping.get(normalize_mention(mention), default)

    def items(self) -> Iterator[tuple[str, str]]:
        """``(normalised mention, title)`` pairs, in insertion order."""
        return iter(self._mapping.items())

    def detect(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping mentions of ``text`` as sorted ``(start, end, title)`` character spans (end exclusive),
        found left to right, longest match first at each word."""
        spans = word_spans(text)
        tokens = _token_keys(text, spans)
        mapping, prefixes = self._mapping, self._prefixes
        found: list[tuple[int, int, str]] = []
        first = 0
        while first < len(spans):
            token = tokens[first]
            if token is not None and token not in prefixes:
                first += 1
                continue
            best: tuple[int, str] | None = None
            for last, key in _span_keys(text, spans, tokens, first, self.max_mention_words, prefixes):
                title = mapping.get(key)
                if title is not None:
                    best = (last, title)
            if best is None:
                first += 1
                continue
            found.append((spans[first][0], spans[best[0]][1], best[1]))
            first = best[0] + 1
        return found

    def __repr__(self) -> str:
        return f"MentionDetector({len(self)} mentions, max_mention_words={self.max_mention_words})"


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    entries = []
    for number, line in text_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(path, f"expected 'mention<TAB>title', got {len(fields)} field(s)", number)
        mention, title = fields[0].strip(), fields[1].strip()
        if not normalize_mention(mention):
            raise DataError(path, "empty mention", number)
        if not title:
            raise DataError(path, "empty title", number)
        entries.append((mention, title))
    return entries


def _read_json_dict(path: Path) -> list[tuple[str, str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text ({err.reason})", raw[: err.start].count(b"\n") + 1) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", err.lineno) from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a JSON object {{mention: title}}, got {type(obj).__name__}")
    entries = []
    for mention, title in obj.items():
        if not isinstance(title, str) or not title.strip():
            raise DataError(
                path, f"the title of mention {shorten(repr(mention))} must be a non-empty string, got {shorten(title)}"
            )
        if not normalize_mention(mention):
            raise DataError(path, f"empty mention {shorten(repr(mention))}")
        entries.append((mention, title.strip()))
    return entries


def _read_mention_db(path: Path, *, min_link_prob: float, min_prior: float) -> tuple[list[tuple[str, str]], int]:
    entries: list[tuple[str, str]] = []
    max_words = 20
    header_seen = False
    kept = ambiguous = rare = 0
    for number, record in json_lines(path):
        if not header_seen:
            header_seen = True
            if record.get("version") != FORMAT_VERSION:
                raise DataError(path, f"unsupported mention database version {shorten(record.get('version'))}", number)
            max_words = record.get("max_mention_words", 20)
            if not isinstance(max_words, int) or isinstance(max_words, bool) or max_words < 1:
                raise DataError(
                    path, f"invalid max_mention_words {shorten(max_words)} (expected an integer >= 1)", number
                )
            continue
        mention, link_count = record.get("mention"), record.get("link_count")
        link_prob, candidates = record.get("link_prob"), record.get("candidates")
        if not isinstance(mention, str) or not mention.strip():
            raise DataError(path, "'mention' must be a non-empty string", number)
        if not isinstance(link_count, int) or isinstance(link_count, bool) or link_count < 1:
            raise DataError(path, f"'link_count' must be a positive integer, got {shorten(link_count)}", number)
        if not isinstance(link_prob, (int, float)) or isinstance(link_prob, bool) or not 0 <= link_prob <= 1:
            raise DataError(path, f"'link_prob' must be a number in [0, 1], got {shorten(link_prob)}", number)
        if (
            not isinstance(candidates, list)
            or not candidates
            or not all(
                isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and isinstance(c[1], int)
                for c in candidates
            )
        ):
            raise DataError(path, "'candidates' must be a non-empty list of [title, count] pairs", number)
        if link_prob < min_link_prob:
            rare += 1
            continue
        title, count = max(candidates, key=lambda c: c[1])
        if count / link_count < min_prior:
            ambiguous += 1
            continue
        entries.append((mention, title))
        kept += 1
    if not header_seen:  # pragma: no cover - from_file only calls this after reading the header
        raise DataError(path, "the file is empty")
    logger.info(
        "%s: kept %d mention(s); dropped %d below min_link_prob %g and %d below min_prior %g",
        path,
        kept,
        rare,
        min_link_prob,
        ambiguous,
        min_prior,
    )
    return entries, max_words
