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
from luke.errors import ConfigError
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
    title)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: white list not found")
    titles = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("\t", 1)[0].strip()
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
    for title in white_list:
        stats.white_list_titles += 1
        resolved = resolve(title, redirects)
        if resolved not in titles:
            stats.white_list_missing += 1
            continue
        if resolved not in chosen and len(chosen) < budget:
            chosen[resolved] = counts.get(resolved, 0)
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


def save_vocab_atomically(vocab: EntityVocab, out: str | os.PathLike[str]) -> None:
    """Write ``vocab`` to a temporary file next to ``out`` (same suffix), then rename it into place."""
    out = Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: output directory does not exist")
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    try:
        vocab.save(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
