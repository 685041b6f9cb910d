"""Pretraining data from a Wikipedia dump.

Three steps, each a ``luke`` sub-command (see ``docs/pretraining-data.md``):

1. :func:`luke.wikipedia.dump_db.build_dump_db` — MediaWiki XML dump → SQLite "dump database" of plain
   paragraphs with link annotations and the redirect table.
2. :func:`luke.wikipedia.entity_vocab_builder.build_entity_vocab` — link counts after redirect resolution →
   entity vocabulary (JSONL).
3. :func:`luke.wikipedia.pretraining_dataset.build_pretraining_dataset` — sentences, link-aligned
   tokenisation, greedy packing → sharded Arrow dataset (``datasets.save_to_disk``) + ``metadata.json``.

For SQuAD's entity features, :func:`luke.wikipedia.mention_db.build_mention_db` (``luke build-mention-db``)
turns the same dump database into a mention dictionary (anchor text → linked articles, link probability),
which :class:`luke.wikipedia.mention_db.MentionDetector` uses to find mentions in any text. For entity
disambiguation, :class:`luke.wikipedia.mention_db.MentionCandidates` reads it as candidates with priors
p(e|m), and :func:`luke.wikipedia.ed_dataset.build_ed_dataset` (``luke build-ed-dataset``) turns held-out
articles into an evaluation set whose gold titles are their link targets (the mention database built with
``--exclude-pages-from`` the same articles, so nothing leaks).
"""

from luke.wikipedia.dump_db import DumpDB, DumpError, Paragraph, WikiLink, build_dump_db, parse_wikitext

__all__ = ["DumpDB", "DumpError", "Paragraph", "WikiLink", "build_dump_db", "parse_wikitext"]
