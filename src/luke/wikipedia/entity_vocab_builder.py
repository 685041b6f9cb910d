"""Step 2: entity vocabulary from the link counts of a dump database.

Every link target is resolved through the redirect table, counts of targets that resolve to the same article
are summed, and only targets that are existing (non-disambiguation) articles are kept. Ids: the special
entities first, then the white-listed titles (in file order), then the rest by descending count (ties by
title, so the result is deterministic). ``min_count`` is applied *before* ids are assigned, so ids are always
contiguous (the original's ``--min-count`` could leave id gaps, spec §2.2).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from luke.entity_vocab import DEFAULT_SPECIALS, EntityVocab
from luke.errors import ConfigError, DataError, LukeError, OutputError, shorten
from luke.files import atomic_output, check_output, remove_path, temporary_path, text_lines
from luke.wikipedia.dump_db import DumpDB, normalize_title, resolve

logger = logging.getLogger(__name__)


@dataclass
class EntityVocabStats:
    """What :func:`build_entity_vocab` kept and dropped (link occurrences, not distinct titles)."""

    links: int = 0
    links_to_articles: int = 0
    links_resolved_through_redirects: int = 0
    links_dropped_not_an_article: int = 0
    distinct_entities: int = 0
    entities_below_min_count: int = 0
    white_list_titles: int = 0
    white_list_missing: int = 0
    vocab_size: int = 0


def count_entity_links(db: DumpDB) -> tuple[Counter[str], EntityVocabStats]:
    """Link counts per article title after redirect resolution, and statistics."""
    redirects = db.redirects()
    titles = db.title_set()
    counts: Counter[str] = Counter()
    stats = EntityVocabStats()
    for target, count in db.link_counts().items():
        stats.links += count
        resolved = resolve(target, redirects)
        if resolved in titles:
            counts[resolved] += count
            stats.links_to_articles += count
            if resolved != target:
                stats.links_resolved_through_redirects += count
        else:
            stats.links_dropped_not_an_article += count
    stats.distinct_entities = len(counts)
    return counts, stats


def read_white_list(path: str | os.PathLike[str]) -> list[str]:
    """Titles, one per line (blank lines and ``#`` comments ignored; a ``title<TAB>count`` line keeps the
    title). A missing, unreadable or non-UTF-8 file is a :class:`~luke.errors.DataError` naming the file
    (and line)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "white list is a folder, expected a file of titles")
    if not path.exists():
        raise DataError(path, "white list not found")
    titles = []
    for _, line in text_lines(path):
        line = line.lstrip("\ufeff").split("\t", 1)[0].strip()
        if line and not line.startswith("#"):
            titles.append(normalize_title(line))
    return titles


def build_entity_vocab(
    db: DumpDB,
    *,
    vocab_size: int,
    min_count: int = 1,
    white_list: Sequence[str] = (),
    white_list_only: bool = False,
    specials: Sequence[str] = DEFAULT_SPECIALS,
    language: str | None = None,
) -> tuple[EntityVocab, EntityVocabStats]:
    """Build an :class:`EntityVocab` of at most ``vocab_size`` ids (specials included).

    White-listed titles (resolved through redirects) come right after the specials when they are articles,
    whatever their count; then the most-linked articles with at least ``min_count`` links.
    """
    if vocab_size <= len(specials):
        raise ConfigError(f"--vocab-size must be larger than the {len(specials)} special entities")
    if min_count < 1:
        raise ConfigError("--min-count must be at least 1")
    counts, stats = count_entity_links(db)
    titles = db.title_set()
    redirects = db.redirects()
    budget = vocab_size - len(specials)
    chosen: dict[str, int] = {}
    missing: list[str] = []
    for title in white_list:
        stats.white_list_titles += 1
        resolved = resolve(title, redirects)
        if resolved not in titles:
            stats.white_list_missing += 1
            missing.append(title)
            continue
        if resolved not in chosen and len(chosen) < budget:
            chosen[resolved] = counts.get(resolved, 0)
    _report_missing_white_list(db, missing, len(white_list), white_list_only and not chosen)
    if not white_list_only:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        stats.entities_below_min_count = sum(1 for c in counts.values() if c < min_count)
        for title, count in ranked:
            if len(chosen) >= budget or count < min_count:
                break
            chosen.setdefault(title, count)
    vocab = EntityVocab.from_counts(chosen.items(), language=language, specials=specials)
    stats.vocab_size = len(vocab)
    return vocab, stats


def _report_missing_white_list(db: DumpDB, missing: list[str], total: int, fatal: bool) -> None:
    """A warning for white-listed titles that are not articles of the database (after redirects); a
    :class:`~luke.errors.ConfigError` when ``fatal`` (``--white-list-only`` and none of them is)."""
    if not missing:
        return
    examples = ", ".join(repr(shorten(title, 40)) for title in missing[:3]) + (", ..." if len(missing) > 3 else "")
    message = f"{len(missing):,} of {total:,} white-listed titles are not articles of {db.path} ({examples})"
    if fatal:
        raise ConfigError(f"--white-list-only: {message}; the vocabulary would hold only the special entities")
    logger.warning("%s; they are left out", message)


VOCAB_SUFFIXES = (".jsonl", ".tsv", ".json")


def check_vocab_output(out: str | os.PathLike[str], *, language: str | None = None) -> Path:
    """Refuse an entity vocabulary output before the work: a bad path (see :func:`luke.files.check_output`;
    an existing file is replaced), an unknown suffix, or ``language`` with the TSV format (one title without
    language per line)."""
    out = check_output(out, kind="file", overwrite=True, what="output vocabulary")
    suffix = out.suffix.lower()
    if suffix not in VOCAB_SUFFIXES:
        raise OutputError(
            f"output vocabulary {out}: unknown format {suffix or '(no suffix)'!r}; end the name with "
            ".jsonl, .tsv or .json"
        )
    if language and suffix == ".tsv":
        raise ConfigError(f"output vocabulary {out}: --language needs the .jsonl or .json format (TSV has no language)")
    return out


def save_vocab_atomically(vocab: EntityVocab, out: str | os.PathLike[str]) -> None:
    """Write ``vocab`` under a temporary name next to ``out``, then rename it into place (the format comes
    from the suffix of ``out``). Errors name ``out``, never the temporary file."""
    out = Path(out)
    with atomic_output(out) as tmp:
        staging = temporary_path(out, "staging")  # a folder, so the file inside keeps the suffix of ``out``
        remove_path(staging)
        staging.mkdir()
        try:
            vocab.save(staging / out.name)
            os.replace(staging / out.name, tmp)
        except LukeError as err:
            message = str(err).removeprefix(f"{staging / out.name}: ").replace(str(staging / out.name), str(out))
            raise OutputError(f"output vocabulary {out}: {message}") from None
        finally:
            remove_path(staging)
