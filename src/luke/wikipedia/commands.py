"""``luke build-dump-db``, ``build-entity-vocab``, ``build-pretraining-dataset``, ``data-stats``,
``build-mention-db`` and ``build-ed-dataset``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from luke.command_args import (
    add_command,
    add_int_options,
    add_json_flag,
    add_model_name,
    add_no_progress,
    add_num_workers,
    add_paths,
    add_revision,
    positive_int,
    timed,
)
from luke.dataclass_args import values_from_namespace
from luke.errors import ConfigError

_DB_HELP = "database written by build-dump-db"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the Wikipedia pretraining-data commands to the ``luke`` parser."""
    _add_build_dump_db(sub)
    _add_build_entity_vocab(sub)
    _add_build_pretraining_dataset(sub)
    _add_data_stats(sub)
    _add_build_mention_db(sub)
    _add_build_ed_dataset(sub)


def _add_file_output(parser: argparse.ArgumentParser, help: str) -> None:
    """The ``out_file`` positional, kept as typed (a ``Path`` would drop the ``/`` of ``out/``, which names
    a folder and is refused by the library)."""
    parser.add_argument("out_file", help=help)


# ------------------------------------------------------------------------------------------------ build-dump-db


_BUILD_DUMP_DB = """step 1: Wikipedia XML dump -> SQLite database of paragraphs with links and redirects

Stream a MediaWiki pages-articles XML dump (.bz2 or plain; export schema 0.9-0.11, with or without
<siteinfo>; another numbered schema version is read the same way with a warning) and store every
namespace-0 article as plain paragraphs with link annotations (character offsets of the anchor text,
normalised target title), plus the redirect table and raw link counts, in an SQLite file.
Disambiguation pages, other namespaces, templates, tables, references and File/Category/interlanguage
links are dropped. The file appears only when complete. See
docs/pretraining-data.md for the formats and a worked example.
"""


def _add_build_dump_db(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "build-dump-db", _build_dump_db, _BUILD_DUMP_DB)
    add_paths(p, dump_file="pages-articles XML dump (.xml.bz2, .bz2 or plain .xml)")
    _add_file_output(p, "SQLite database to write (replaced if it exists)")
    add_num_workers(p, "processes parsing wikitext")
    p.add_argument("--chunk-size", type=positive_int, default=2, help="pages per task sent to a worker (default: 2)")
    add_no_progress(p)


def _build_dump_db(args: argparse.Namespace) -> int:
    from luke.wikipedia.dump_db import build_dump_db

    stats, seconds = timed(
        build_dump_db,
        args.dump_file,
        args.out_file,
        num_workers=args.num_workers,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
    )
    print(
        f"wrote {args.out_file}: {stats.get('articles', 0):,} articles, {stats.get('redirects', 0):,} redirects, "
        f"{stats.get('links', 0):,} links ({stats.get('disambiguation_pages', 0):,} disambiguation and "
        f"{stats.get('non_article_pages', 0):,} non-article pages dropped) in {seconds:.1f} s"
    )
    return 0


# ------------------------------------------------------------------------------------------------ build-entity-vocab


_BUILD_ENTITY_VOCAB = """step 2: dump database -> entity vocabulary (JSONL) of the most-linked articles

Count links per target article after redirect resolution (targets must be existing articles) and write
an entity vocabulary: special entities [PAD] [UNK] [MASK] [MASK2] first, then white-listed titles, then
articles by descending link count. Ids are contiguous. The format is chosen from the suffix of OUT
(.jsonl recommended; .tsv and .json also work). See docs/pretraining-data.md for the formats and a
worked example.
"""


def _add_build_entity_vocab(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "build-entity-vocab", _build_entity_vocab, _BUILD_ENTITY_VOCAB)
    add_paths(p, dump_db=_DB_HELP)
    _add_file_output(p, "vocabulary file to write (.jsonl, .tsv or .json)")
    p.add_argument(
        "--vocab-size", type=int, default=1_000_000, help="maximum number of ids, specials included (default: 1M)"
    )
    p.add_argument("--min-count", type=int, default=1, help="drop entities linked fewer times (default: 1)")
    p.add_argument(
        "-w",
        "--white-list",
        type=Path,
        action="append",
        default=[],
        help="file of titles (one per line) to include first, whatever their count; may be repeated",
    )
    p.add_argument("--white-list-only", action="store_true", help="include only white-listed titles")
    p.add_argument("--language", default=None, help="language code stored with every title (mLUKE style)")


def _build_entity_vocab(args: argparse.Namespace) -> int:
    from luke.files import refuse_inputs_in_output
    from luke.wikipedia.dump_db import DumpDB
    from luke.wikipedia.entity_vocab_builder import (
        build_entity_vocab,
        check_vocab_output,
        read_white_list,
        save_vocab_atomically,
    )

    out = check_vocab_output(args.out_file, language=args.language)  # before the work
    refuse_inputs_in_output(out, [args.dump_db, *args.white_list], what="output vocabulary")
    if args.white_list_only and not args.white_list:
        raise ConfigError("--white-list-only needs at least one --white-list file")
    db = DumpDB(args.dump_db)
    white_list = [title for path in args.white_list for title in read_white_list(path)]
    if args.white_list_only and not white_list:
        files = ", ".join(str(path) for path in args.white_list)
        raise ConfigError(f"--white-list-only: the white list ({files}) holds no titles (only blank or # lines)")
    vocab, stats = build_entity_vocab(
        db,
        vocab_size=args.vocab_size,
        min_count=args.min_count,
        white_list=white_list,
        white_list_only=args.white_list_only,
        language=args.language,
    )
    save_vocab_atomically(vocab, args.out_file)
    print(
        f"wrote {args.out_file}: {stats.vocab_size:,} ids; links {stats.links:,}: "
        f"{stats.links_to_articles:,} to articles ({stats.links_resolved_through_redirects:,} via redirects), "
        f"{stats.links_dropped_not_an_article:,} dropped (target not an article); "
        f"{stats.distinct_entities:,} distinct linked articles"
    )
    return 0


# ------------------------------------------------------------------------------------ build-pretraining-dataset


_BUILD_PRETRAINING_DATASET = """step 3: dump database + tokenizer + entity vocab -> packed Arrow dataset

Split paragraphs into sentences, tokenise them so that link spans never cut a token, map links to entity
ids, pack consecutive sentences of a page greedily into items of at most MAX_SEQ_LENGTH-2 tokens, and
save the items as sharded Arrow files (datasets.save_to_disk) with metadata.json, the tokenizer and a
copy of the entity vocabulary. Word ids have no CLS/SEP and entity positions are 0-based over them.
Same inputs and --seed give byte-identical output whatever --num-workers. See docs/pretraining-data.md
for the formats and a worked example.
"""


def _add_build_pretraining_dataset(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "build-pretraining-dataset", _build_pretraining_dataset, _BUILD_PRETRAINING_DATASET)
    add_paths(p, dump_db=_DB_HELP)
    add_model_name(
        p,
        "tokenizer",
        "local tokenizer folder (tokenizer.json, sentencepiece.bpe.model as in mLUKE, vocab.json + merges.txt, "
        "or vocab.txt: what LukeTokenizer reads), a WordPiece "
        "*vocab.txt file (lower-cased if its name contains 'uncased')",
    )
    add_paths(
        p,
        entity_vocab="entity vocabulary written by build-entity-vocab",
        out_dir="output folder (must not exist, unless --overwrite)",
    )
    add_revision(p, "the tokenizer")
    add_int_options(
        p,
        ("--max-seq-length", 512, "model sequence length incl. CLS/SEP (512)"),
        ("--max-entity-length", 128, "maximum mentions per item (128)"),
        ("--max-mention-length", 30, "maximum tokens per mention (30)"),
        ("--min-sentence-length", 5, "drop sentences with fewer tokens (5)"),
    )
    _add_unk_entity_switch(p)
    p.add_argument(
        "--include-sentences-without-entities", action="store_true", help="also keep items that have no entity mention"
    )
    p.add_argument("--abstract-only", action="store_true", help="use only paragraphs before the first heading")
    p.add_argument(
        "--sentence-splitter",
        choices=("pysbd", "icu"),
        default="pysbd",
        help="pysbd (pure Python, default) or icu (needs PyICU); no JVM either way",
    )
    p.add_argument("--language", default="en", help="language for the sentence splitter (default: en)")
    p.add_argument("--seed", type=int, default=0, help="seed of the page shuffle (default: 0)")
    p.add_argument("--max-num-documents", type=int, default=None, help="use only the first N shuffled pages")
    add_num_workers(p, "worker processes", "; does not change the output")
    p.add_argument("--num-shards", type=positive_int, default=None, help="Arrow shards (default: one per 50M tokens)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    add_no_progress(p)


def _add_unk_entity_switch(parser: argparse.ArgumentParser) -> None:
    """``--include-unk-entities`` (default) / ``--skip-unk-entities`` -> ``args.include_unk_entities``."""
    unk = parser.add_mutually_exclusive_group()
    unk.add_argument(
        "--include-unk-entities",
        dest="include_unk_entities",
        action="store_true",
        default=True,
        help="keep links to entities outside the vocabulary as [UNK] (default)",
    )
    unk.add_argument(
        "--skip-unk-entities",
        dest="include_unk_entities",
        action="store_false",
        help="drop links to entities outside the vocabulary (their anchor text stays)",
    )


def _build_pretraining_dataset(args: argparse.Namespace) -> int:
    from luke.wikipedia.parallel import check_num_workers
    from luke.wikipedia.pretraining_dataset import DatasetOptions, build_pretraining_dataset

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    options = DatasetOptions(**values_from_namespace(args, dataclasses.fields(DatasetOptions), skip_none=False))
    check_num_workers(args.num_workers)  # before the work (the pool is made after the inputs are read)
    meta, seconds = timed(
        build_pretraining_dataset,
        args.dump_db,
        args.tokenizer,
        args.entity_vocab,
        args.out_dir,
        options,
        num_workers=args.num_workers,
        num_shards=args.num_shards,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        tokenizer_revision=args.revision,
    )
    counts = meta["counts"]
    print(
        f"wrote {args.out_dir}: {meta['number_of_items']:,} items, {counts.get('tokens', 0):,} tokens, "
        f"{counts.get('mentions', 0):,} entity mentions from {meta['number_of_pages']:,} pages in {seconds:.1f} s"
    )
    return 0


# ------------------------------------------------------------------------------------------------ data-stats


_DATA_STATS = """print items, tokens, entity mentions and entity coverage of a pretraining dataset

Read a folder written by build-pretraining-dataset and print the number of items, tokens, entity
mentions (per item), [UNK] mentions and entity coverage (share of mentions with a known entity),
computed from the Arrow data.
"""


def _add_data_stats(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "data-stats", _data_stats, _DATA_STATS)
    add_paths(p, out_dir="folder written by build-pretraining-dataset")
    add_json_flag(p)


def _data_stats(args: argparse.Namespace) -> int:
    from luke.wikipedia.pretraining_dataset import dataset_stats

    stats = dataset_stats(args.out_dir)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"items               {stats['items']:,}")
    print(f"pages               {stats['pages']:,}")
    print(f"tokens              {stats['tokens']:,} ({stats['tokens_per_item']:.1f} per item)")
    print(f"entity mentions     {stats['entity_mentions']:,} ({stats['entity_mentions_per_item']:.2f} per item)")
    print(f"[UNK] mentions      {stats['unk_mentions']:,}")
    print(f"entity coverage     {stats['entity_coverage']:.2%} of mentions have a known entity")
    print(f"distinct entities   {stats['distinct_entities']:,} of {stats['entity_vocab_size']:,} in the vocabulary")
    print(f"shards              {stats['shards']}")
    return 0


# ------------------------------------------------------------------------------------------------ build-mention-db


_BUILD_MENTION_DB = """dump database -> mention dictionary (anchor text -> linked articles, link probability), JSONL

Count every link's normalised anchor text (lowercased, accents stripped) against its redirect-resolved
target article, and the number of articles whose text contains the anchor as a whole-word sequence;
write one JSON line per mention with link_count, doc_count, link_prob = min(1, link_count / doc_count)
and the candidate titles, after a header line. MentionDetector.from_file reads it (and plain TSV/JSON
dictionaries) to find entity mentions in any text; MentionCandidates.from_file reads it as the candidate
source of entity disambiguation (prior p(e|m) = count / link_count). With --exclude-pages-from the
held-out articles of a split pretraining dataset (or the ids of a file) are not counted, so that an
evaluation set built from them by build-ed-dataset does not leak into the priors. The file appears only
when complete.
"""

_EXCLUDE_HELP = (
    "leave these articles out: a pretraining dataset folder split by split-pretraining-dataset (its "
    "held-out articles, metadata.json split.heldout_page_ids; either part), its metadata.json, or a text "
    "file of page ids (one per line)"
)


def _add_build_mention_db(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "build-mention-db", _build_mention_db, _BUILD_MENTION_DB)
    add_paths(p, dump_db=_DB_HELP)
    _add_file_output(p, "mention database to write (.jsonl; replaced if it exists)")
    add_int_options(
        p,
        ("--max-mention-words", 20, "ignore anchors longer than this (words, 20)"),
        ("--min-link-count", 1, "drop mentions linked fewer times (1)"),
        type=positive_int,
    )
    p.add_argument(
        "--any-target",
        action="store_true",
        help="also keep links to titles that are not articles of the database (partial dumps)",
    )
    p.add_argument("--exclude-pages-from", type=Path, metavar="DATASET_OR_FILE", default=None, help=_EXCLUDE_HELP)
    add_no_progress(p)


def _page_ids(path: Path | None, out_file: str) -> list[int] | None:
    """The page ids of ``path`` (read_page_ids), after refusing an output that would replace it."""
    if path is None:
        return None
    from luke.files import refuse_inputs_in_output
    from luke.wikipedia.ed_dataset import read_page_ids

    refuse_inputs_in_output(out_file, [path])
    return read_page_ids(path)


def _build_mention_db(args: argparse.Namespace) -> int:
    from luke.wikipedia.mention_db import build_mention_db

    exclude = _page_ids(args.exclude_pages_from, args.out_file)
    stats, seconds = timed(
        build_mention_db,
        dump_db_path=args.dump_db,
        out_path=args.out_file,
        max_mention_words=args.max_mention_words,
        min_link_count=args.min_link_count,
        progress=not args.no_progress,
        any_target=args.any_target,
        exclude_page_ids=exclude,
    )
    print(json.dumps({"out_file": str(args.out_file), **stats, "seconds": round(seconds, 1)}))
    return 0


# ------------------------------------------------------------------------------------------------ build-ed-dataset


_BUILD_ED_DATASET = """dump database -> entity-disambiguation documents (JSONL): articles with their links as gold

Write one JSON line per article, {"id": title, "text": ..., "entities": [{"start", "end", "title"}]}, the
format luke finetune/evaluate entity_disambiguation and luke score entity_disambiguation read: text is the
article's plain paragraphs joined by a blank line, every link is a mention (character offsets, end
exclusive; text[start:end] is the anchor text) whose gold title is the link target with redirects
followed. Articles without links are skipped. Choose the articles with --pages-from (the held-out articles
of a split pretraining dataset: an evaluation set nothing was pretrained on), --page-ids, or all of them
minus --exclude-pages-from (a training set). The mention database that gives the candidates should
leave the same articles out (build-mention-db with --exclude-pages-from the same dataset), so that no gold
link is counted in the priors. The file appears only when complete.
"""


def _add_build_ed_dataset(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "build-ed-dataset", _build_ed_dataset, _BUILD_ED_DATASET)
    add_paths(p, dump_db=_DB_HELP)
    _add_file_output(p, "JSON Lines file to write (.jsonl; replaced if it exists)")
    pages = p.add_mutually_exclusive_group()
    pages.add_argument(
        "--pages-from",
        type=Path,
        metavar="DATASET",
        default=None,
        help="the held-out articles of a pretraining dataset folder split by split-pretraining-dataset "
        "(metadata.json split.heldout_page_ids; either part), or that metadata.json",
    )
    pages.add_argument(
        "--page-ids", type=Path, metavar="FILE", default=None, help="text file of page ids, one per line"
    )
    p.add_argument("--exclude-pages-from", type=Path, metavar="DATASET_OR_FILE", default=None, help=_EXCLUDE_HELP)
    p.add_argument(
        "--max-documents",
        type=positive_int,
        metavar="N",
        default=None,
        help="write at most N documents (in page-id order)",
    )
    p.add_argument(
        "--articles-only",
        action="store_true",
        help="drop links whose target is not an article of the database (default: keep them)",
    )
    add_no_progress(p)


def _build_ed_dataset(args: argparse.Namespace) -> int:
    from luke.wikipedia.ed_dataset import build_ed_dataset

    pages = _page_ids(args.pages_from or args.page_ids, args.out_file)
    exclude = _page_ids(args.exclude_pages_from, args.out_file)
    stats, seconds = timed(
        build_ed_dataset,
        args.dump_db,
        args.out_file,
        page_ids=pages,
        exclude_page_ids=exclude,
        max_documents=args.max_documents,
        articles_only=args.articles_only,
        progress=not args.no_progress,
    )
    print(json.dumps({"out_file": str(args.out_file), **stats, "seconds": round(seconds, 1)}))
    return 0
