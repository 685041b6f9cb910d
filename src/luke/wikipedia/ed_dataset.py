"""An entity-disambiguation evaluation set from a dump database: Wikipedia articles with their links as gold.

:func:`build_ed_dataset` (``luke build-ed-dataset``) writes one JSON Lines document per article, in the
format of :mod:`luke.finetuning.ed_data` (written here as plain dicts: ``wikipedia/`` does not import
``finetuning/``)::

    {"id": "Paris", "text": "Paris is the capital of France.\\n\\nIt ...",
     "entities": [{"start": 24, "end": 30, "title": "France"}, ...]}

``id`` is the article title, ``text`` the article's plain paragraphs (as stored by ``build-dump-db``) joined
with a blank line (``"\\n\\n"``), and every link is a mention: ``text[start:end]`` is its anchor text
(surrounding whitespace trimmed) and ``title`` its target with redirects followed. Links to titles that are
not articles of the database are kept (they are in the knowledge base when the entity vocabulary has them)
unless ``articles_only``. Articles without links are left out.

Which articles: the held-out articles of a split pretraining dataset (``luke split-pretraining-dataset``
stores their ids as ``split.heldout_page_ids`` in both parts' ``metadata.json``), a file of page ids, or all
articles but some. Build the mention database that gives the candidates on the other articles only
(``luke build-mention-db --exclude-pages-from`` the same dataset), so that no gold link of the evaluation set
is counted in the priors. :func:`read_page_ids` reads either source of ids.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from luke.errors import ConfigError, DataError, DumpError, OutputError, shorten
from luke.files import atomic_output, check_output, read_json, refuse_inputs_in_output, text_lines
from luke.wikipedia.dump_db import DumpDB, Paragraph, resolve

logger = logging.getLogger(__name__)

__all__ = ["article_document", "build_ed_dataset", "read_page_ids"]

PARAGRAPH_SEPARATOR = "\n\n"


# ------------------------------------------------------------------------------------------------ page ids


def read_page_ids(path: str | os.PathLike[str]) -> list[int]:
    """Page ids from ``path``, sorted and unique: a pretraining dataset folder split by
    ``luke split-pretraining-dataset`` (its ``metadata.json``'s ``split.heldout_page_ids``: the held-out
    articles, the same in the train and the held-out part), such a ``metadata.json``, a JSON list of ids, or a
    text file with one id per line (blank lines and ``#`` comments skipped). Anything else is a
    :class:`~luke.errors.DataError` naming the file (and the line)."""
    path = Path(path)
    if path.is_dir():
        meta = path / "metadata.json"
        if not meta.is_file():
            raise DataError(path, "is a folder without metadata.json; expected a pretraining dataset folder")
        return _heldout_ids(meta, read_json(meta, dict))
    if path.suffix.lower() == ".json":
        value = read_json(path, (dict, list))
        return _heldout_ids(path, value) if isinstance(value, dict) else _checked_ids(path, value, "the list")
    ids = []
    for number, line in text_lines(path):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ids.append(int(text))
        except ValueError:
            raise DataError(path, f"expected a page id (an integer), got {shorten(repr(text))}", number) from None
    if not ids:
        raise DataError(path, "holds no page ids (one integer per line expected)")
    return sorted(set(ids))


def _heldout_ids(path: Path, metadata: dict[str, Any]) -> list[int]:
    split = metadata.get("split")
    if not isinstance(split, dict) or "heldout_page_ids" not in split:
        raise DataError(
            path,
            "has no split.heldout_page_ids: not the metadata of a dataset split by luke split-pretraining-dataset",
        )
    return _checked_ids(path, split["heldout_page_ids"], "split.heldout_page_ids")


def _checked_ids(path: Path, value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        raise DataError(path, f"{what} must be a list of integer page ids, got {shorten(value)}")
    if not value:
        raise DataError(path, f"{what} is empty")
    return sorted(set(value))


# -------------------------------------------------------------------------------------------- documents


def article_document(
    db: DumpDB,
    title: str,
    paragraphs: list[Paragraph],
    stats: Counter[str],
    *,
    articles: set[str] | None = None,
) -> dict[str, Any]:
    """The JSON object of one article (see the module docstring); links are counted in ``stats``. With
    ``articles`` (the titles of the database's articles) links to other titles are dropped."""
    redirects = db.redirects()
    parts: list[str] = []
    entities: list[dict[str, Any]] = []
    offset = 0
    for paragraph in paragraphs:
        text = paragraph.text
        if not text.strip():
            continue
        if parts:
            offset += len(PARAGRAPH_SEPARATOR)
        last_end = 0
        for link in sorted(paragraph.links, key=lambda x: (x.start, x.end)):
            stats["links"] += 1
            anchor = text[link.start : link.end]
            start = link.start + len(anchor) - len(anchor.lstrip())
            end = link.end - (len(anchor) - len(anchor.rstrip()))
            if start >= end:
                stats["links_dropped_empty_anchor"] += 1
                continue
            if start < last_end:
                raise DumpError(
                    db.path,
                    f"page {shorten(repr(title))}: overlapping links at characters {start}-{end} of a paragraph",
                )
            target = resolve(link.title, redirects)
            if articles is not None and target not in articles:
                stats["links_dropped_not_an_article"] += 1
                continue
            stats["links_resolved_through_redirects"] += target != link.title
            entities.append({"start": offset + start, "end": offset + end, "title": target})
            last_end = end
        parts.append(text)
        offset += len(text)
    return {"id": title, "text": PARAGRAPH_SEPARATOR.join(parts), "entities": entities}


def _selected_pages(db: DumpDB, page_ids: Iterable[int] | None, exclude: Iterable[int] | None) -> list[int]:
    """Article ids to read, ascending: ``page_ids`` (those that are articles of ``db``; none is an error),
    or all, minus ``exclude``."""
    all_ids = db.page_ids()
    if page_ids is None:
        selected = all_ids
    else:
        wanted = {int(x) for x in page_ids}
        selected = [p for p in all_ids if p in wanted]
        if wanted and not selected:
            raise ConfigError(
                f"none of the {len(wanted):,} page ids is an article of {db.path} "
                "(were they written for another dump database?)"
            )
        if len(selected) < len(wanted):
            logger.warning(
                "%d of the %d page ids are not articles of %s", len(wanted) - len(selected), len(wanted), db.path
            )
    if exclude is not None:
        excluded = {int(x) for x in exclude}
        selected = [p for p in selected if p not in excluded]
    if not selected:
        raise ConfigError(f"no article of {db.path} is left to read (every selected page id is excluded)")
    return selected


def build_ed_dataset(
    dump_db_path: str | os.PathLike[str] | DumpDB,
    out_path: str | os.PathLike[str],
    *,
    page_ids: Iterable[int] | None = None,
    exclude_page_ids: Iterable[int] | None = None,
    max_documents: int | None = None,
    articles_only: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Write the entity-disambiguation documents (JSON Lines, see the module docstring) of the articles
    ``page_ids`` (default: all) minus ``exclude_page_ids`` of a dump database, in page-id order, at most
    ``max_documents`` of them (articles without links do not count). ``articles_only`` drops links whose
    target is not an article of the database. The output path is checked before the work and the file
    appears only when complete. Returns counts: pages read, documents and mentions written, links dropped,
    links resolved through redirects, distinct gold titles."""
    if max_documents is not None and max_documents < 1:
        raise ConfigError(f"max_documents must be at least 1, got {max_documents}")
    out = check_output(out_path, kind="file", overwrite=True, what="output ED dataset")
    if out.suffix.lower() != ".jsonl":
        raise OutputError(
            f"output ED dataset {out}: the file is JSON Lines; end its name with .jsonl "
            f"(not {out.suffix or '(no suffix)'!r})"
        )
    if isinstance(dump_db_path, DumpDB):
        db = dump_db_path
    else:
        refuse_inputs_in_output(out, [dump_db_path], what="output ED dataset")
        db = DumpDB(dump_db_path)
    try:
        selected = _selected_pages(db, page_ids, exclude_page_ids)
        stats: Counter[str] = Counter(documents=0, mentions=0)
        articles = db.title_set() if articles_only else None
        lines = _document_lines(db, selected, stats, articles, max_documents, progress)
        with atomic_output(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
        return dict(stats)
    finally:
        if db is not dump_db_path:
            db.close()


def _document_lines(
    db: DumpDB,
    page_ids: list[int],
    stats: Counter[str],
    articles: set[str] | None,
    max_documents: int | None,
    progress: bool,
) -> Iterator[str]:
    titles: set[str] = set()
    bar = tqdm(page_ids, desc="ed-dataset", unit="page", disable=not progress)
    for page_id in bar:
        if max_documents is not None and stats["documents"] >= max_documents:
            break
        title, paragraphs = db.get_page(page_id)
        stats["pages"] += 1
        document = article_document(db, title, paragraphs, stats, articles=articles)
        if not document["entities"]:
            stats["pages_without_links"] += 1
            continue
        stats["documents"] += 1
        stats["mentions"] += len(document["entities"])
        stats["characters"] += len(document["text"])
        titles.update(e["title"] for e in document["entities"])
        yield json.dumps(document, ensure_ascii=False)
    bar.close()
    stats["distinct_titles"] = len(titles)
