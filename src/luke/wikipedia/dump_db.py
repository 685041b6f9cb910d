"""Step 1: stream a MediaWiki ``pages-articles`` XML dump into an SQLite "dump database".

The reader streams the XML (bz2-compressed or plain) with :func:`xml.etree.ElementTree.iterparse`, matching tags
by local name so every export schema (0.9–0.11, with or without ``<siteinfo>``) works; another numbered
schema version is read the same way with a warning, a version that is not a number is refused. Namespace-0 articles are
kept, redirects are recorded, disambiguation pages and other namespaces are dropped. Wikitext is parsed with
``mwparserfromhell`` in worker processes and rendered to plain paragraphs with link annotations.

Database schema (``meta.format`` = ``luke-dump-db``, ``meta.format_version`` = ``1``)::

    meta(key TEXT PRIMARY KEY, value TEXT)                 -- format, source file, counts, siteinfo
    pages(page_id INTEGER PRIMARY KEY, title TEXT UNIQUE NOT NULL,
          paragraphs TEXT NOT NULL)                        -- JSON list, see below
    redirects(title TEXT PRIMARY KEY, target TEXT NOT NULL)  -- target as written (normalised), unresolved
    link_counts(title TEXT PRIMARY KEY, count INTEGER NOT NULL)  -- raw link targets over all pages

``paragraphs`` is a JSON list of ``{"text": str, "abstract": bool, "links": [[title, start, end], ...]}``;
``start``/``end`` are Python string (Unicode code point) offsets into ``text`` and
``text[start:end]`` is the anchor text. Link titles are normalised (first letter upper-cased, underscores →
spaces, ``#section`` dropped) but *not* redirect-resolved; use :meth:`DumpDB.resolve_redirect`.
"""

from __future__ import annotations

import bz2
import html
import json
import logging
import os
import re
import sqlite3
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from tqdm import tqdm

from luke.errors import DumpError, OutputError, shorten
from luke.files import atomic_output, check_output, refuse_inputs_in_output
from luke.wikipedia.parallel import check_num_workers, ordered_map

logger = logging.getLogger(__name__)

FORMAT_NAME = "luke-dump-db"
FORMAT_VERSION = "1"

# Namespace names (and aliases) of English Wikipedia; merged with the dump's <siteinfo> when present.
_NAMESPACE_NAMES = (
    "Media", "Special", "Talk", "User", "Wikipedia", "File", "MediaWiki", "Template", "Help", "Category",
    "Portal", "Draft", "TimedText", "Module", "Book", "Education Program", "Gadget", "Gadget definition",
    "Topic", "Image", "WP", "Project", "WT", "CAT", "H", "MOS", "P", "T", "WikiProject",
)  # fmt: skip
DEFAULT_NAMESPACES = frozenset(
    [name.lower() for name in _NAMESPACE_NAMES] + [f"{name.lower()} talk" for name in _NAMESPACE_NAMES]
)
# Interwiki prefixes that are not language codes.
INTERWIKI_PREFIXES = frozenset(
    "wikt wiktionary w wikipedia commons c s wikisource q wikiquote b wikibooks n wikinews v wikiversity voy "
    "wikivoyage d wikidata m meta species wikispecies mw mediawikiwiki foundation wmf phab mediazilla "
    "bugzilla doi outreach incubator".split()
)
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")

DISAMBIGUATION_TEMPLATES = frozenset(
    (
        "disambiguation", "disambig", "disamb", "dab", "dab page", "geodis", "hndis", "hndis-cleanup",
        "hospitaldis", "mathdis", "numberdis", "roaddis", "schooldis", "shipindex", "mil-unit-dis",
        "letter disambiguation", "disambiguation cleanup", "human name disambiguation",
        "species latin name disambiguation", "place name disambiguation",
    )
)  # fmt: skip

# Tags whose content is not prose (dropped with everything inside).
DROPPED_TAGS = frozenset(
    "ref references table math chem ce gallery timeline score syntaxhighlight source imagemap graph "
    "templatedata mapframe maplink hiero inputbox categorytree includeonly noinclude indicator section "
    "pre code caption".split()
)
# Section headings whose sections hold citations, not prose.
SKIPPED_SECTIONS = frozenset(
    (
        "references", "notes", "footnotes", "external links", "further reading", "bibliography", "sources",
        "citations", "works cited", "notes and references", "references and notes", "explanatory notes",
    )
)  # fmt: skip
# Templates that render (part of) their arguments as text: name -> positional parameter to render.
TEXT_TEMPLATES = {"nowrap": 1, "nobr": 1, "nobreak": 1, "small": 1, "smaller": 1, "em": 1, "strong": 1,
                  "sic": 1, "lang": 2, "transl": 2, "nihongo": 1, "big": 1, "sc": 1, "smallcaps": 1}  # fmt: skip
_CONVERT_RANGE = frozenset({"to", "-", "–", "and", "or", "by", "x", "&", "+"})
_BEHAVIOUR_SWITCH = re.compile(r"__[A-Z]+__")
_WHITESPACE = re.compile(r"\s+")
_STYLE_QUOTES = re.compile(r"'{2,}")
_OPEN_PAREN_TAIL = re.compile(r"\( ?$")
_EMPTY_PARENS_TAIL = re.compile(r" ?\([\s,;:]*$")
_REDIRECT_TEXT = re.compile(r"^\s*#redirect\s*:?\s*\[\[([^\]|]+)", re.IGNORECASE)


@dataclass(frozen=True)
class WikiLink:
    """A link to ``title`` whose anchor text is ``paragraph.text[start:end]`` (code point offsets)."""

    title: str
    start: int
    end: int


@dataclass
class Paragraph:
    """A paragraph of plain text; ``abstract`` is true for paragraphs before the first section heading."""

    text: str
    links: list[WikiLink] = field(default_factory=list)
    abstract: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "abstract": self.abstract, "links": [[x.title, x.start, x.end] for x in self.links]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Paragraph:
        return cls(obj["text"], [WikiLink(t, s, e) for t, s, e in obj["links"]], bool(obj["abstract"]))


# ------------------------------------------------------------------------------------------------ titles


def normalize_title(title: str) -> str:
    """Normalise a link target or page title like MediaWiki: decode entities/percent-escapes, ``_`` → space,
    collapse whitespace, drop ``#section``, upper-case the first letter. Returns ``""`` for a same-page link."""
    if "&" in title:
        title = html.unescape(title)
    if "%" in title:
        title = urllib.parse.unquote(title)
    title = title.split("#", 1)[0]
    title = _WHITESPACE.sub(" ", title.replace("_", " ")).strip()
    if title.startswith(":"):
        title = title[1:].lstrip()
    if not title:
        return ""
    first = title[0].upper()
    return (first if len(first) == 1 else title[0]) + title[1:]


def is_entity_target(target: str, namespaces: frozenset[str] = DEFAULT_NAMESPACES) -> bool:
    """Whether the (raw) link target names an article rather than a file, category, other namespace,
    interwiki or interlanguage page."""
    raw = target.strip()
    if raw.startswith(":"):
        raw = raw[1:].lstrip()
    prefix, sep, _ = raw.partition(":")
    if not sep:
        return True
    key = _WHITESPACE.sub(" ", prefix.replace("_", " ")).strip().lower()
    if key in namespaces or key in INTERWIKI_PREFIXES:
        return False
    # Interlanguage links are written with a lowercase language code: [[fr:Anarchisme]].
    return not (prefix == prefix.lower() and _LANGUAGE_CODE.match(key) is not None)


# --------------------------------------------------------------------------------------- wikitext → text


class _Builder:
    """Accumulates normalised text and link spans, cutting paragraphs at newlines."""

    def __init__(self) -> None:
        self.paragraphs: list[Paragraph] = []
        self.parts: list[str] = []
        self.length = 0
        self.links: list[WikiLink] = []
        self.abstract = True
        self.last_is_space = True  # at paragraph start, leading whitespace is dropped

    def text(self, text: str) -> None:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if i:
                self.flush()
            self._append(line)

    def _append(self, line: str) -> None:
        if not line:
            return
        line = _WHITESPACE.sub(" ", line.replace("\xa0", " "))
        if self.last_is_space and line.startswith(" "):
            line = line[1:]
        if not line:
            return
        if line[0] in ",;:" and self.parts and _OPEN_PAREN_TAIL.search(self.parts[-1]):
            line = line[1:].lstrip(" ")  # "( ; 東京)" left by a dropped pronunciation template
            if not line:
                return
        if line[0] == ")" and self._drop_empty_parens():
            line = line[1:]
            if self.last_is_space and line.startswith(" "):
                line = line[1:]
            if not line:
                return
        self.parts.append(line)
        self.length += len(line)
        self.last_is_space = line.endswith(" ")

    def _drop_empty_parens(self) -> bool:
        """Remove a trailing ``(`` left empty by dropped templates (``Anarchism ( ; ) is``); the caller then
        drops the closing parenthesis. Returns whether something was removed."""
        tail = "".join(self.parts[-8:])
        m = _EMPTY_PARENS_TAIL.search(tail)
        if m is None:
            return False
        new_len = self.length - (len(tail) - m.start())
        if self.links and self.links[-1].end > new_len:
            return False
        current = "".join(self.parts)[:new_len]
        self.parts = [current] if current else []
        self.length = new_len
        self.last_is_space = not current or current.endswith(" ")
        return True

    def link(self, title: str, anchor: str) -> None:
        anchor = _WHITESPACE.sub(" ", anchor.replace("\xa0", " ")).strip()
        if not anchor:
            return
        if not self.last_is_space and self.parts and self.parts[-1][-1:] == " ":
            self.last_is_space = True
        start = self.length
        self.parts.append(anchor)
        self.length += len(anchor)
        self.last_is_space = False
        if title:
            self.links.append(WikiLink(title, start, self.length))

    def extend_last_link(self, trail: str) -> None:
        """MediaWiki link trail: ``[[dog]]s`` links the whole word ``dogs``."""
        last = self.links[-1]
        self.parts.append(trail)
        self.length += len(trail)
        self.links[-1] = WikiLink(last.title, last.start, self.length)
        self.last_is_space = False

    def flush(self) -> None:
        text = "".join(self.parts)
        stripped = text.rstrip()
        if stripped:
            links = [x for x in self.links if x.end <= len(stripped)]
            self.paragraphs.append(Paragraph(stripped, links, self.abstract))
        self.parts = []
        self.length = 0
        self.links = []
        self.last_is_space = True


@dataclass
class _Context:
    namespaces: frozenset[str]
    link_trail: re.Pattern[str] = re.compile(r"^[a-z]+")


def _plain(nodes: Iterable[Any], ctx: _Context) -> str:
    """Render nodes to plain text without link annotations (used for anchor texts)."""
    sub = _Builder()
    _render(nodes, sub, ctx, annotate=False)
    sub.flush()
    return " ".join(p.text for p in sub.paragraphs)


def _template_text(node: Template, ctx: _Context, builder: _Builder, annotate: bool) -> None:
    name = _WHITESPACE.sub(" ", str(node.name).replace("_", " ")).strip().lower()
    if name in ("convert", "cvt"):
        params = [str(p.value).strip() for p in node.params if not p.showkey]
        if len(params) >= 4 and params[1] in _CONVERT_RANGE:
            builder.text(" ".join(params[:4]))
        elif len(params) >= 2:
            builder.text(f"{params[0]} {params[1]}")
        return
    position = TEXT_TEMPLATES.get(name)
    if position is None and name.startswith("lang-"):
        position = 1
    if position is None:
        return
    for param in node.params:
        if not param.showkey and str(param.name).strip() == str(position):
            _render(param.value.nodes, builder, ctx, annotate)
            return


def _render(nodes: Iterable[Any], builder: _Builder, ctx: _Context, annotate: bool = True) -> None:
    skip_level = 0  # > 0 while inside a skipped section (References, External links, ...)
    nodes = list(nodes)
    i = 0
    while i < len(nodes):
        node = nodes[i]
        i += 1
        if isinstance(node, Heading):
            builder.flush()
            builder.abstract = False
            if skip_level and node.level <= skip_level:
                skip_level = 0
            if not skip_level and _plain(node.title.nodes, ctx).strip().lower() in SKIPPED_SECTIONS:
                skip_level = node.level
            continue
        if skip_level:
            continue
        if isinstance(node, Text):
            value = str(node.value)
            if "__" in value:
                value = _BEHAVIOUR_SWITCH.sub("", value)
            if "''" in value:
                value = _STYLE_QUOTES.sub("", value)
            builder.text(value)
        elif isinstance(node, Wikilink):
            raw_target = str(node.title)
            if not is_entity_target(raw_target, ctx.namespaces):
                if raw_target.strip().startswith(":"):  # [[:Category:X]] is a visible link
                    builder.text(_plain(node.text.nodes, ctx) if node.text is not None else raw_target[1:])
                continue
            title = normalize_title(raw_target)
            anchor = _plain(node.text.nodes, ctx) if node.text is not None else raw_target.lstrip(":")
            if node.text is None:  # MediaWiki shows an unpiped target with underscores as spaces
                anchor = (html.unescape(anchor) if "&" in anchor else anchor).replace("_", " ")
            builder.link(title if annotate else "", anchor)
            if annotate and title and i < len(nodes) and isinstance(nodes[i], Text) and builder.links:
                trail = ctx.link_trail.match(str(nodes[i].value))
                if trail and builder.links[-1].end == builder.length:
                    builder.extend_last_link(trail.group(0))
                    nodes[i] = Text(str(nodes[i].value)[trail.end() :])
        elif isinstance(node, Tag):
            tag = str(node.tag).strip().lower()
            if tag in DROPPED_TAGS:
                continue
            if tag == "br":
                builder.text(" ")
            elif tag == "nowiki":
                if node.contents is not None:
                    builder.text(str(node.contents))
            elif node.contents is not None and not node.self_closing:
                _render(node.contents.nodes, builder, ctx, annotate)
        elif isinstance(node, Template):
            _template_text(node, ctx, builder, annotate)
        elif isinstance(node, HTMLEntity):
            builder.text(node.normalize())
        elif isinstance(node, ExternalLink):
            if node.title is not None:
                builder.text(_plain(node.title.nodes, ctx))
        elif isinstance(node, (Comment, Argument)):
            continue
        else:  # unknown node types: keep their text
            builder.text(str(node))


def parse_wikitext(text: str, namespaces: frozenset[str] = DEFAULT_NAMESPACES) -> list[Paragraph]:
    """Turn an article's wikitext into plain paragraphs with link annotations.

    Templates, tables, references, comments, File/Image/Category/interlanguage links and citation sections
    (References, External links, ...) are removed; bold/italic and other formatting keep their text (and
    their links). Every newline ends a paragraph; whitespace runs collapse to one space.
    """
    # Bold/italic quotes are stripped from text nodes instead of being parsed into tags (16% faster).
    wikicode = mwparserfromhell.parse(text, skip_style_tags=True)
    builder = _Builder()
    _render(wikicode.nodes, builder, _Context(namespaces))
    builder.flush()
    return builder.paragraphs


def is_disambiguation(title: str, wikicode_text: str) -> bool:
    """Whether a page is a disambiguation page (by title suffix or a disambiguation template)."""
    if title.endswith("(disambiguation)"):
        return True
    if "{{" not in wikicode_text:
        return False
    for name in re.findall(r"\{\{\s*([^|{}\n]+?)\s*[|}]", wikicode_text):
        if _WHITESPACE.sub(" ", name.replace("_", " ")).strip().lower() in DISAMBIGUATION_TEMPLATES:
            return True
    return False


# --------------------------------------------------------------------------------------------- XML input


@dataclass
class RawPage:
    """One ``<page>`` of the dump, before wikitext parsing."""

    page_id: int
    title: str
    namespace: int
    redirect: str | None
    text: str


class _CountingReader:
    """File wrapper that remembers how many (compressed) bytes have been read, for progress and errors."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        self.position += n or 0
        return n

    def readable(self) -> bool:
        return True


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


class DumpReader:
    """Stream the pages of a MediaWiki XML export (``.bz2`` or plain, detected from the magic bytes).

    After iteration, :attr:`siteinfo` holds the site name, language and namespace names (when present), and
    :attr:`position` the number of input bytes consumed so far (for progress bars).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise DumpError(self.path, "is a folder, expected a pages-articles XML dump file")
        if not self.path.exists():
            raise DumpError(self.path, "no such file")
        if not self.path.is_file():
            raise DumpError(self.path, "not a regular file, expected a pages-articles XML dump file")
        if not os.access(self.path, os.R_OK):
            raise DumpError(self.path, "not readable (permission denied)")
        self.size = self.path.stat().st_size
        if self.size == 0:
            raise DumpError(self.path, "empty file, expected a pages-articles XML dump")
        self.siteinfo: dict[str, Any] = {}
        self.namespaces: frozenset[str] = DEFAULT_NAMESPACES
        self._counter: _CountingReader | None = None
        self.last_page_id: int | None = None
        self.pages_read = 0

    @property
    def position(self) -> int:
        return self._counter.position if self._counter else 0

    def _where(self) -> str:
        after = f"after page id {self.last_page_id}" if self.last_page_id is not None else "before the first page"
        return f"near input byte {self.position:,} ({after})"

    def __iter__(self) -> Iterator[RawPage]:
        with open(self.path, "rb") as raw:
            magic = raw.read(3)
            raw.seek(0)
            self._counter = _CountingReader(raw)
            stream: Any = bz2.BZ2File(self._counter) if magic == b"BZh" else self._counter
            try:
                yield from self._parse(stream)
            except ET.ParseError as err:
                line, column = err.position
                raise DumpError(
                    f"{self.path}: malformed XML at line {line}, column {column} {self._where()}: {err}"
                ) from None
            except EOFError as err:
                raise DumpError(f"{self.path}: truncated compressed stream {self._where()}: {err}") from None
            except OSError as err:
                raise DumpError(f"{self.path}: cannot read {self._where()}: {err}") from None

    def _parse(self, stream: IO[bytes]) -> Iterator[RawPage]:
        context = ET.iterparse(stream, events=("start", "end"))
        root: ET.Element | None = None
        for event, elem in context:
            name = _local(elem.tag)
            if event == "start":
                if root is None:
                    root = elem
                    if name != "mediawiki":
                        raise DumpError(f"{self.path}: not a MediaWiki XML export (root element <{name}>)")
                    self._check_schema(elem)
                continue
            if name == "siteinfo":
                self._read_siteinfo(elem)
                root.clear()  # type: ignore[union-attr]
            elif name == "page":
                self.pages_read += 1
                page = self._read_page(elem)
                root.clear()  # type: ignore[union-attr]
                if page is not None:
                    self.last_page_id = page.page_id
                    yield page
        if root is None:
            raise DumpError(f"{self.path}: empty input")
        if self.pages_read == 0:
            raise DumpError(self.path, "no <page> in the export; expected a pages-articles dump")

    def _check_schema(self, root: ET.Element) -> None:
        """Export schemas 0.9-0.11 are read; another numbered version is read the same way with a warning
        (the page elements used here have not changed since 0.3); a version that is not a number is an error."""
        uri = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
        m = re.search(r"export-([^/]*)/?$", uri)
        version = root.get("version") or (m.group(1) if m else None)
        if version is None:
            return
        if not re.fullmatch(r"0\.\d{1,3}", version):
            raise DumpError(
                self.path, f"unknown MediaWiki export schema version {shorten(version)!r} (expected 0.9-0.11)"
            )
        if not 9 <= int(version[2:]) <= 11:
            logger.warning(
                "%s: MediaWiki export schema %s is not one of 0.9-0.11; reading it like 0.11", self.path, version
            )

    def _read_siteinfo(self, elem: ET.Element) -> None:
        for key in ("sitename", "dbname", "base", "generator", "case"):
            child = _child(elem, key)
            if child is not None and child.text:
                self.siteinfo[key] = child.text
        namespaces = _child(elem, "namespaces")
        if namespaces is not None:
            names = {ns.text.strip().lower() for ns in namespaces if ns.text and ns.get("key") != "0"}
            self.siteinfo["namespaces"] = sorted(names)
            self.namespaces = DEFAULT_NAMESPACES | frozenset(names)

    def _read_page(self, elem: ET.Element) -> RawPage | None:
        title_el, id_el, ns_el = _child(elem, "title"), _child(elem, "id"), _child(elem, "ns")
        if title_el is None or id_el is None or not (id_el.text or "").strip().isdigit():
            raise DumpError(f"{self.path}: <page> without <title> or numeric <id> {self._where()}")
        title = (title_el.text or "").strip()
        page_id = int(id_el.text.strip())  # type: ignore[union-attr]
        ns_text = (ns_el.text or "").strip() if ns_el is not None else ""
        if ns_text and not re.fullmatch(r"-?[0-9]{1,9}", ns_text):
            raise DumpError(
                f"{self.path}: page id {page_id} ({shorten(title)!r}): <ns> must be an integer, got "
                f"{shorten(ns_text)!r} (near input byte {self.position:,})"
            )
        if ns_text:
            namespace = int(ns_text)
        else:  # very old exports have no <ns>: infer it from the title prefix
            namespace = 0 if is_entity_target(title, self.namespaces) else -99
        revision = _child(elem, "revision")
        text_el = _child(revision, "text") if revision is not None else None
        text = (text_el.text or "") if text_el is not None else ""
        redirect_el = _child(elem, "redirect")
        redirect = redirect_el.get("title") if redirect_el is not None else None
        if redirect is None:
            m = _REDIRECT_TEXT.match(text)
            redirect = m.group(1) if m else None
        return RawPage(page_id, title, namespace, redirect, text)


# ------------------------------------------------------------------------------------------------- build


def _process_page(job: tuple[int, str, str, frozenset[str]]) -> tuple[int, str, str | None, list[str]]:
    """Worker: parse one article. Returns (page_id, title, paragraphs JSON or None if dropped, link targets)."""
    page_id, title, text, namespaces = job
    try:
        if is_disambiguation(title, text):
            return page_id, title, None, []
        paragraphs = parse_wikitext(text, namespaces)
    except Exception as err:  # pragma: no cover - parser bugs must name the page
        raise DumpError(f"page id {page_id} ({title!r}): cannot parse wikitext: {err!r}") from err
    payload = json.dumps([p.to_json() for p in paragraphs], ensure_ascii=False, separators=(",", ":"))
    return page_id, title, payload, [x.title for p in paragraphs for x in p.links]


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE pages (page_id INTEGER PRIMARY KEY, title TEXT UNIQUE NOT NULL, paragraphs TEXT NOT NULL);
        CREATE TABLE redirects (title TEXT PRIMARY KEY, target TEXT NOT NULL);
        CREATE TABLE link_counts (title TEXT PRIMARY KEY, count INTEGER NOT NULL);
        """
    )


def build_dump_db(
    dump_file: str | os.PathLike[str],
    out_file: str | os.PathLike[str],
    *,
    num_workers: int = 1,
    chunk_size: int = 2,
    progress: bool = True,
) -> dict[str, int]:
    """Build the dump database ``out_file`` from ``dump_file``; returns the counts stored in ``meta``.

    The output path is checked before the dump is read (a folder, a read-only file or a parent that cannot
    be written is an :class:`~luke.errors.OutputError`); an existing database is replaced. The database is
    written under a temporary name next to ``out_file`` and renamed only once complete, so an interrupted or
    failed run never leaves a complete-looking database behind (leftovers of killed runs are swept).
    """
    check_num_workers(num_workers)
    out = check_output(out_file, kind="file", overwrite=True, what="output database")
    refuse_inputs_in_output(out, [dump_file], what="output database")
    reader = DumpReader(dump_file)
    stats: Counter[str] = Counter()
    with atomic_output(out) as tmp:
        try:
            conn = sqlite3.connect(tmp)
        except sqlite3.Error as err:
            raise OutputError(f"output database {out}: cannot be created ({err})") from None
        try:
            _fill_database(conn, reader, stats, num_workers, chunk_size, progress)
            conn.commit()
        except sqlite3.Error as err:  # disk full, I/O error: name the real output, never the temporary
            raise OutputError(f"output database {out}: cannot be written ({err})") from None
        finally:
            conn.close()
    return dict(stats)


def _fill_database(
    conn: sqlite3.Connection, reader: DumpReader, stats: Counter[str], num_workers: int, chunk_size: int, progress: bool
) -> None:
    """Create the schema and store the pages, redirects, link counts and ``meta`` of the dump."""
    redirects: dict[str, str] = {}
    _create_schema(conn)
    jobs = _article_jobs(reader, stats, redirects)
    results = ordered_map(_process_page, jobs, num_workers, chunk_size)
    link_counts = _store_pages(conn, results, reader, stats, progress)
    conn.executemany("INSERT INTO redirects VALUES (?, ?)", sorted(redirects.items()))
    stats["redirects"] = len(redirects)
    stats["articles"] = conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
    conn.executemany("INSERT INTO link_counts VALUES (?, ?)", sorted(link_counts.items()))
    stats["distinct_link_targets"] = len(link_counts)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "source": reader.path.name,
        "siteinfo": json.dumps(reader.siteinfo, ensure_ascii=False, sort_keys=True),
        **{f"count.{k}": str(v) for k, v in sorted(stats.items())},
    }
    conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))


def _article_jobs(
    reader: DumpReader, stats: Counter[str], redirects: dict[str, str]
) -> Iterator[tuple[int, str, str, frozenset[str]]]:
    """The ``_process_page`` jobs of the dump's articles; counts the other pages in ``stats`` and collects
    the redirects into ``redirects`` on the way (it may run in a pool's feeder thread: no SQLite here)."""
    for page in reader:
        stats["pages_read"] += 1
        if page.namespace != 0:
            stats["non_article_pages"] += 1
        elif page.redirect is not None:
            target = normalize_title(page.redirect)
            source = normalize_title(page.title)
            if target and source and target != source:
                redirects[source] = target
            else:
                stats["invalid_redirects"] += 1
        else:
            yield page.page_id, normalize_title(page.title), page.text, reader.namespaces


def _store_pages(
    conn: sqlite3.Connection,
    results: Generator[tuple[int, str, str | None, list[str]], None, None],
    reader: DumpReader,
    stats: Counter[str],
    progress: bool,
) -> Counter[str]:
    """Insert the processed pages in batches (disambiguation pages are counted, not stored); return the
    link count of every target title."""
    link_counts: Counter[str] = Counter()
    batch: list[tuple[int, str, str]] = []
    with tqdm(total=reader.size, unit="B", unit_scale=True, desc="build-dump-db", disable=not progress) as bar:
        try:
            for page_id, title, payload, targets in results:
                if payload is None:
                    stats["disambiguation_pages"] += 1
                else:
                    batch.append((page_id, title, payload))
                    link_counts.update(targets)
                    stats["links"] += len(targets)
                if len(batch) >= 256:
                    stats["duplicate_titles"] += _insert_pages(conn, batch)
                    batch = []
                bar.update(reader.position - bar.n)
        finally:
            results.close()
        stats["duplicate_titles"] += _insert_pages(conn, batch)
        bar.update(reader.position - bar.n)
    return link_counts


def _insert_pages(conn: sqlite3.Connection, batch: list[tuple[int, str, str]]) -> int:
    before = conn.total_changes
    conn.executemany("INSERT OR IGNORE INTO pages VALUES (?, ?, ?)", batch)
    inserted = conn.total_changes - before
    if inserted != len(batch):
        logger.warning("skipped %d page(s) with a duplicate id or title", len(batch) - inserted)
    return len(batch) - inserted


# -------------------------------------------------------------------------------------------------- read


class DumpDB:
    """Read-only access to a dump database built by :func:`build_dump_db`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise DumpError(self.path, "is a folder, expected a dump database file (from build-dump-db)")
        if not self.path.is_file():
            raise DumpError(f"{self.path}: no such dump database")
        if not os.access(self.path, os.R_OK):
            raise DumpError(self.path, "cannot be read (permission denied)")
        try:
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            tables = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as err:
            raise DumpError(f"{self.path}: not a dump database ({err})") from None
        missing = sorted({"pages", "redirects", "link_counts"} - tables)
        if missing:
            raise DumpError(self.path, f"not a complete dump database (table(s) {', '.join(missing)} missing)")
        if meta.get("format") != FORMAT_NAME:
            raise DumpError(f"{self.path}: not a dump database (meta.format = {meta.get('format')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DumpError(f"{self.path}: unsupported dump database version {meta.get('format_version')!r}")
        self.meta = meta
        self._redirects: dict[str, str] | None = None

    def __len__(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]

    def close(self) -> None:
        self.conn.close()

    def page_ids(self) -> list[int]:
        """All article page ids, ascending."""
        return [r[0] for r in self.conn.execute("SELECT page_id FROM pages ORDER BY page_id")]

    def titles(self) -> list[str]:
        """All article titles, in page id order."""
        return [r[0] for r in self.conn.execute("SELECT title FROM pages ORDER BY page_id")]

    def title_set(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT title FROM pages")}

    def get_page(self, page_id: int) -> tuple[str, list[Paragraph]]:
        """``(title, paragraphs)`` of an article; ``KeyError`` if there is none with that id."""
        row = self.conn.execute("SELECT title, paragraphs FROM pages WHERE page_id = ?", (page_id,)).fetchone()
        if row is None:
            raise KeyError(page_id)
        return row[0], self._paragraphs(row[1], f"page id {page_id}")

    def get_paragraphs(self, title: str) -> list[Paragraph]:
        row = self.conn.execute("SELECT paragraphs FROM pages WHERE title = ?", (title,)).fetchone()
        if row is None:
            raise KeyError(title)
        return self._paragraphs(row[0], f"page {shorten(title)!r}")

    def _paragraphs(self, payload: str, where: str) -> list[Paragraph]:
        try:
            value = json.loads(payload)
        except (ValueError, TypeError) as err:
            raise DumpError(self.path, f"{where}: corrupt paragraphs ({shorten(str(err))})") from None
        if not isinstance(value, list):
            raise DumpError(self.path, f"{where}: corrupt paragraphs (expected a JSON list, got {_kind(value)})")
        return [self._paragraph(obj, f"{where}, paragraph {i}") for i, obj in enumerate(value, 1)]

    def _paragraph(self, obj: Any, where: str) -> Paragraph:
        """One stored paragraph, its types and link offsets checked (a tampered or foreign database is a
        :class:`DumpError`, never a ``TypeError`` or a silently wrong anchor later)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not isinstance(obj.get("links"), list):
            raise DumpError(
                self.path,
                f"{where}: corrupt paragraph (expected {{text: string, links: list, abstract}}): "
                f"{shorten(json.dumps(obj, ensure_ascii=False))}",
            )
        text = obj["text"]
        links = []
        for link in obj["links"]:
            ok = isinstance(link, list) and len(link) == 3 and isinstance(link[0], str)
            ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in link[1:])
            if not ok or not 0 <= link[1] < link[2] <= len(text):
                raise DumpError(
                    self.path,
                    f"{where}: corrupt link {shorten(json.dumps(link, ensure_ascii=False))} (expected "
                    f"[title, start, end] with 0 <= start < end <= {len(text)}, the paragraph's length)",
                )
            links.append(WikiLink(link[0], link[1], link[2]))
        return Paragraph(text, links, bool(obj.get("abstract")))

    def redirects(self) -> dict[str, str]:
        """Redirect source title → target title (unresolved, as stored)."""
        if self._redirects is None:
            redirects = {}
            for title, target in self.conn.execute("SELECT title, target FROM redirects"):
                if not isinstance(title, str) or not isinstance(target, str):
                    raise DumpError(
                        self.path,
                        f"table redirects: corrupt row ({shorten(title)}, {shorten(target)}); expected two titles",
                    )
                redirects[title] = target
            self._redirects = redirects
        return self._redirects

    def resolve_redirect(self, title: str, max_hops: int = 5) -> str:
        """Follow redirects (up to ``max_hops``, cycles stop) and return the final title."""
        return resolve(title, self.redirects(), max_hops)

    def link_counts(self) -> dict[str, int]:
        """Raw (unresolved) link target → number of links, over all stored articles."""
        counts = {}
        for title, count in self.conn.execute("SELECT title, count FROM link_counts"):
            if not isinstance(title, str) or not isinstance(count, int) or count < 0:
                raise DumpError(
                    self.path,
                    f"table link_counts: corrupt row ({shorten(title)!s}, {shorten(count)!s}); "
                    "expected a title and a count >= 0",
                )
            counts[title] = count
        return counts


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def resolve(title: str, redirects: dict[str, str], max_hops: int = 5) -> str:
    """Follow ``redirects`` from ``title`` for at most ``max_hops`` steps (double redirects exist)."""
    seen = {title}
    for _ in range(max_hops):
        target = redirects.get(title)
        if target is None or target in seen:
            break
        seen.add(target)
        title = target
    return title
