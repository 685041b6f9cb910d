"""Mention dictionary from Wikipedia hyperlinks, and a longest-match mention detector.

The SQuAD entity features of the LUKE paper (spec §3.5) come from a *mention database*: for every anchor text
of a Wikipedia link, how often it is linked, to which articles, and in how many articles it occurs at all.
:func:`build_mention_db` computes it from a dump database; :class:`MentionDetector` turns it (or any plain
``mention → title`` dictionary, so that text outside Wikipedia can be handled, spec §7 item 10) into a fast
left-to-right longest-match detector over character spans. :class:`MentionCandidates` reads it for entity
disambiguation: every candidate of a mention with its prior ``p(e|m)``, and detection that keeps ambiguous
mentions.

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
``link_prob = min(1, link_count / max(doc_count, 1))``. A database built on part of the dump
(``exclude_page_ids``, e.g. without the held-out articles of an evaluation set) says how many articles it
left out in the header (``"excluded_pages": N``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from luke.errors import ConfigError, DataError, OutputError, shorten
from luke.files import atomic_output, check_output, json_lines, refuse_inputs_in_output, text_lines
from luke.wikipedia.dump_db import DumpDB, resolve

logger = logging.getLogger(__name__)

FORMAT_NAME = "luke-mention-db"
FORMAT_VERSION = 1

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MentionCandidates",
    "MentionDetector",
    "build_mention_db",
    "normalize_mention",
    "word_spans",
]

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
    exclude_page_ids: Iterable[int] | None = None,
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
    outside it. ``exclude_page_ids`` leaves those articles' text out of both passes (their titles stay link
    targets): a database of the training articles only, so that candidates for an evaluation set built from
    the held-out ones (:mod:`luke.wikipedia.ed_dataset`) leak nothing; ids that match no article of the
    database are an error when none matches (a list for another dump) and a warning otherwise.
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
    exclude = None if exclude_page_ids is None else {int(x) for x in exclude_page_ids}
    args = (out, max_mention_words, min_link_count, progress, any_target, exclude)
    if isinstance(dump_db_path, DumpDB):
        return _build_mention_db(dump_db_path, *args)
    db = DumpDB(dump_db_path)
    try:
        return _build_mention_db(db, *args)
    finally:
        db.close()


def _pages_to_count(db: DumpDB, exclude: set[int] | None) -> tuple[list[int], int]:
    """The article ids counted (all but ``exclude``) and the number excluded; excluded ids that are not
    articles of ``db`` are refused when none is (another dump's ids), logged otherwise."""
    page_ids = db.page_ids()
    if exclude is None:
        return page_ids, 0
    kept = [p for p in page_ids if p not in exclude]
    excluded = len(page_ids) - len(kept)
    if exclude and not excluded:
        raise ConfigError(
            f"none of the {len(exclude):,} page ids to exclude is an article of {db.path} "
            "(were they written for another dump database?)"
        )
    if excluded < len(exclude):
        logger.warning("%d of the page ids to exclude are not articles of %s", len(exclude) - excluded, db.path)
    return kept, excluded


def _build_mention_db(
    db: DumpDB,
    out: Path,
    max_mention_words: int,
    min_link_count: int,
    progress: bool,
    any_target: bool = False,
    exclude: set[int] | None = None,
) -> dict[str, int]:
    page_ids, excluded = _pages_to_count(db, exclude)
    stats: Counter[str] = Counter(pages=len(page_ids))
    if exclude is not None:
        stats["pages_excluded"] = excluded
    candidates, prefixes = _count_links(db, page_ids, stats, max_mention_words, progress, any_target)
    doc_counts = _count_documents(db, page_ids, candidates, prefixes, max_mention_words, progress)
    stats["mentions"] = 0
    header: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "source": Path(db.path).name,
        "max_mention_words": max_mention_words,
    }
    if exclude is not None:
        header["excluded_pages"] = excluded
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


def _longest_matches(
    text: str, prefixes: Container[str], max_words: int, lookup: Callable[[str], Any]
) -> list[tuple[int, int, Any]]:
    """Greedy left-to-right longest match: at each word, the longest word sequence (at most ``max_words``)
    whose normalised text ``key`` has ``lookup(key) is not None`` is emitted as ``(start, end, value)`` and
    the walk continues after it; otherwise it moves one word on. ``prefixes`` holds the normalised word
    prefixes of every key (pruning: most positions cost one set lookup)."""
    spans = word_spans(text)
    tokens = _token_keys(text, spans)
    found: list[tuple[int, int, Any]] = []
    first = 0
    while first < len(spans):
        token = tokens[first]
        if token is not None and token not in prefixes:
            first += 1
            continue
        best: tuple[int, Any] | None = None
        for last, key in _span_keys(text, spans, tokens, first, max_words, prefixes):
            value = lookup(key)
            if value is not None:
                best = (last, value)
        if best is None:
            first += 1
            continue
        found.append((spans[first][0], spans[best[0]][1], best[1]))
        first = best[0] + 1
    return found


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
        header, first_text = _sniff(path)
        if header is not None:
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
        return _longest_matches(text, self._prefixes, self.max_mention_words, self._mapping.get)

    def __repr__(self) -> str:
        return f"MentionDetector({len(self)} mentions, max_mention_words={self.max_mention_words})"


# ------------------------------------------------------------------------------------------- candidates


class MentionCandidates:
    """Candidate entities of a mention with their priors ``p(e|m)``, from a mention database.

    The candidate source of entity disambiguation: :meth:`candidates` gives, for any mention text
    (normalised with :func:`normalize_mention`), the titles its anchor text was linked to in Wikipedia with
    ``prior = count / link_count`` (redirects were resolved when the database was built), best first;
    :meth:`link_prob` how often the text is a link where it occurs; :meth:`detect` finds mentions in any text
    by greedy left-to-right longest match like :class:`MentionDetector`, but keeps ambiguous mentions (they
    are what disambiguation is for) and filters by link probability.

    Memory-lean for a full-Wikipedia database: besides one dict entry per mention and one string per
    distinct title, candidates live in flat arrays (title id and count); the word prefixes that prune
    detection are built on the first :meth:`detect` call only.

    >>> mc = MentionCandidates.from_records([("Paris", 6, 0.8, [["Paris", 4], ["Paris, Texas", 2]])])
    >>> mc.candidates("PARIS", k=1)
    [('Paris', 0.6666666666666666)]
    """

    def __init__(self, max_mention_words: int = 20) -> None:
        if max_mention_words < 1:
            raise ConfigError(f"max_mention_words must be at least 1, got {max_mention_words}")
        self.max_mention_words = max_mention_words
        self.stats: Counter[str] = Counter()
        self._index: dict[str, int] = {}  # normalised mention -> row
        self._link_count = array("q")  # per row
        self._link_prob = array("d")  # per row
        self._offsets = array("q", [0])  # row i's candidates: [offsets[i], offsets[i + 1])
        self._cand_title = array("q")  # per candidate: index into _titles
        self._cand_count = array("q")  # per candidate: links to it
        self._titles: list[str] = []
        self._title_ids: dict[str, int] = {}  # while loading
        self._prefixes: set[str] | None = None

    # ---------------------------------------------------------------------------------------- building
    def _add(
        self,
        mention: str,
        link_count: int,
        link_prob: float,
        candidates: Iterable[tuple[str, int]],
        entity_vocab: Container[str] | None = None,
        max_candidates: int | None = None,
    ) -> bool:
        """Add one mention (its key normalised; a key already present is a ``KeyError``); candidates outside
        ``entity_vocab`` are dropped and counted, a mention left without any is not added (returns False)."""
        key = normalize_mention(mention)
        if key in self._index:
            raise KeyError(key)
        kept = sorted(candidates, key=lambda c: (-c[1], c[0]))
        if entity_vocab is not None:
            before = len(kept)
            kept = [c for c in kept if c[0] in entity_vocab]
            self.stats["candidates_out_of_vocab"] += before - len(kept)
            if not kept:
                self.stats["mentions_without_vocab_candidates"] += 1
                return False
        if max_candidates is not None and len(kept) > max_candidates:
            self.stats["candidates_beyond_max_candidates"] += len(kept) - max_candidates
            kept = kept[:max_candidates]
        for title, count in kept:
            title_id = self._title_ids.get(title)
            if title_id is None:
                title_id = self._title_ids[title] = len(self._titles)
                self._titles.append(title)
            self._cand_title.append(title_id)
            self._cand_count.append(count)
        self._offsets.append(len(self._cand_title))
        self._index[key] = len(self._link_count)
        self._link_count.append(link_count)
        self._link_prob.append(link_prob)
        self._prefixes = None
        return True

    @classmethod
    def from_records(
        cls,
        records: Iterable[tuple[str, int, float, list[list[Any]]]],
        *,
        max_mention_words: int = 20,
        entity_vocab: Container[str] | None = None,
    ) -> MentionCandidates:
        """From ``(mention, link_count, link_prob, [[title, count], ...])`` tuples (a mention database's
        records, e.g. for tests or a database held in memory)."""
        self = cls(max_mention_words)
        for mention, link_count, link_prob, candidates in records:
            try:
                self._add(mention, link_count, link_prob, ((t, c) for t, c in candidates), entity_vocab)
            except KeyError:
                raise ValueError(f"mention {mention!r} is given twice (after normalisation)") from None
        self._title_ids = {}
        return self

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        min_link_count: int = 1,
        entity_vocab: Container[str] | None = None,
        max_mention_words: int | None = None,
        max_candidates: int | None = None,
    ) -> MentionCandidates:
        """Load a mention database written by :func:`build_mention_db` (``luke build-mention-db``).

        Mentions linked fewer than ``min_link_count`` times are left out. With ``entity_vocab`` (an
        :class:`luke.entity_vocab.EntityVocab` or any container of titles) candidates outside it are dropped
        (priors stay ``count / link_count`` over all links) and a mention left without candidates is left
        out; :attr:`stats` counts what was read, kept and dropped. ``max_mention_words`` (longest mention
        :meth:`detect` looks for) defaults to the database header's value. ``max_candidates`` keeps only the
        most frequent targets of each mention (less memory for a full-Wikipedia database; the priors of those
        kept do not change).

        A missing, unreadable or malformed file, or a plain dictionary without link counts, is a
        :class:`luke.errors.DataError` naming the file and line.
        """
        if min_link_count < 1:
            raise ConfigError(f"min_link_count must be at least 1, got {min_link_count}")
        if max_candidates is not None and max_candidates < 1:
            raise ConfigError(f"max_candidates must be at least 1, got {max_candidates}")
        path = Path(path)
        header, first_text = _sniff(path)
        if header is None:
            what = "the file is empty" if not first_text else "not a mention database (no luke-mention-db header)"
            raise DataError(path, f"{what}; candidates with priors need one written by luke build-mention-db")
        self: MentionCandidates | None = None
        for number, record in json_lines(path):
            if self is None:
                words = _header_words(path, record, number)
                self = cls(words if max_mention_words is None else max_mention_words)
                continue
            self._read_record(path, record, number, min_link_count, (entity_vocab, max_candidates))
        assert self is not None  # _sniff found the header
        self._title_ids = {}
        logger.info(
            "%s: %d mention(s) kept of %d (%d below min_link_count %d, %d without a candidate in the entity "
            "vocabulary; %d candidate(s) outside it dropped)",
            path,
            len(self),
            self.stats["mentions_read"],
            self.stats["mentions_below_min_link_count"],
            min_link_count,
            self.stats["mentions_without_vocab_candidates"],
            self.stats["candidates_out_of_vocab"],
        )
        return self

    def _read_record(
        self,
        path: Path,
        record: dict[str, Any],
        number: int,
        min_link_count: int,
        filters: tuple[Container[str] | None, int | None],
    ) -> None:
        mention, link_count, link_prob, candidates = _mention_record(path, record, number)
        self.stats["mentions_read"] += 1
        titles = [c[0] for c in candidates]
        if len(set(titles)) < len(titles):
            raise DataError(path, f"mention {shorten(repr(mention))}: a candidate title appears twice", number)
        if sum(c[1] for c in candidates) > link_count:
            raise DataError(
                path, f"mention {shorten(repr(mention))}: candidate counts add up to more than link_count", number
            )
        if link_count < min_link_count:
            self.stats["mentions_below_min_link_count"] += 1
            return
        try:
            self._add(mention, link_count, link_prob, ((t, c) for t, c in candidates), *filters)
        except KeyError:
            raise DataError(path, f"mention {shorten(repr(mention))} appears twice", number) from None

    # ------------------------------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        """Number of (normalised) mentions."""
        return len(self._index)

    def __contains__(self, mention: object) -> bool:
        return isinstance(mention, str) and normalize_mention(mention) in self._index

    def __iter__(self) -> Iterator[str]:
        """The normalised mentions, in file order."""
        return iter(self._index)

    def candidates(self, mention_text: str, k: int | None = 30) -> list[tuple[str, float]]:
        """The ``k`` most frequent targets of ``mention_text`` (normalised first) as ``(title, prior)`` pairs,
        prior descending (ties by title); ``[]`` for an unknown mention (NIL). ``k=None``: all of them."""
        if k is not None and k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        row = self._index.get(normalize_mention(mention_text))
        if row is None:
            return []
        start, end = self._offsets[row], self._offsets[row + 1]
        if k is not None:
            end = min(end, start + k)
        total = self._link_count[row]
        titles, counts = self._titles, self._cand_count
        return [(titles[self._cand_title[j]], counts[j] / total) for j in range(start, end)]

    def link_count(self, mention_text: str) -> int:
        """How often ``mention_text`` (normalised) is the anchor of a link; 0 if never."""
        row = self._index.get(normalize_mention(mention_text))
        return 0 if row is None else self._link_count[row]

    def link_prob(self, mention_text: str) -> float | None:
        """The share of the articles containing ``mention_text`` (normalised) that link it, or None for a
        mention that is not in the database."""
        row = self._index.get(normalize_mention(mention_text))
        return None if row is None else self._link_prob[row]

    def detect(
        self, text: str, *, min_link_prob: float = 0.01, max_mention_words: int | None = None
    ) -> list[tuple[int, int]]:
        """Mentions of ``text`` as sorted, non-overlapping ``(start, end)`` character spans (end exclusive):
        at each word (left to right) the longest word sequence of at most ``max_mention_words`` words (default:
        the database's) that is a mention with ``link_prob >= min_link_prob``; the walk continues after it.
        Ambiguous mentions are kept; look their candidates up with :meth:`candidates`."""
        if not 0 <= min_link_prob <= 1:
            raise ConfigError(f"min_link_prob must lie in [0, 1], got {min_link_prob}")
        words = self.max_mention_words if max_mention_words is None else max_mention_words
        if words < 1:
            raise ConfigError(f"max_mention_words must be at least 1, got {words}")
        if self._prefixes is None:
            self._prefixes = {prefix for key in self._index for prefix in _word_prefixes(key)}
        index, probs = self._index, self._link_prob

        def lookup(key: str) -> int | None:
            row = index.get(key)
            return row if row is not None and probs[row] >= min_link_prob else None

        return [(start, end) for start, end, _ in _longest_matches(text, self._prefixes, words, lookup)]

    def __repr__(self) -> str:
        return (
            f"MentionCandidates({len(self)} mentions, {len(self._cand_title)} candidates, "
            f"max_mention_words={self.max_mention_words})"
        )


def _sniff(path: Path) -> tuple[dict[str, Any] | None, str]:
    """``(header, first non-blank line)`` of a mention dictionary file; ``header`` is None unless the
    first line is a mention-database header. A missing, unreadable or non-UTF-8 file is a DataError."""
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
        return header, first_text
    return None, first_text


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
            max_words = _header_words(path, record, number)
            continue
        mention, link_count, link_prob, candidates = _mention_record(path, record, number)
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


def _header_words(path: Path, header: dict[str, Any], number: int) -> int:
    """The ``max_mention_words`` of a mention-database header (its version checked)."""
    if header.get("version") != FORMAT_VERSION:
        raise DataError(path, f"unsupported mention database version {shorten(header.get('version'))}", number)
    max_words = header.get("max_mention_words", 20)
    if not isinstance(max_words, int) or isinstance(max_words, bool) or max_words < 1:
        raise DataError(path, f"invalid max_mention_words {shorten(max_words)} (expected an integer >= 1)", number)
    return max_words


def _mention_record(path: Path, record: dict[str, Any], number: int) -> tuple[str, int, float, list[list[Any]]]:
    """``(mention, link_count, link_prob, candidates)`` of one mention-database line, checked."""
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
            isinstance(c, list)
            and len(c) == 2
            and isinstance(c[0], str)
            and isinstance(c[1], int)
            and not isinstance(c[1], bool)
            and c[1] >= 1
            for c in candidates
        )
    ):
        raise DataError(path, "'candidates' must be a non-empty list of [title, count] pairs", number)
    return mention, link_count, float(link_prob), candidates
