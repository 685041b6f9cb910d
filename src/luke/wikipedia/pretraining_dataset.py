"""Step 3: the pretraining dataset — sentences, link-aligned tokenisation, greedy packing, Arrow shards.

Per page (spec §2.4, with the improvements noted):

1. Links are resolved through the redirect table and mapped to entity ids; links to entities outside the
   vocabulary become ``[UNK]`` (``include_unk_entities``, default) or are skipped (the anchor stays as text).
2. Each paragraph is split into sentences (character spans; pysbd or ICU). Sentences that a link crosses are
   merged, so no link is lost to a wrong sentence boundary.
3. Each sentence is tokenised as segments cut at link boundaries, so an entity span always starts and ends on
   a token boundary. A segment gets a leading space (RoBERTa ``Ġ``) when whitespace precedes it or it starts
   the sentence.
4. Sentences with fewer than ``min_sentence_length`` or more than ``max_seq_length - 2`` tokens are dropped;
   the rest are packed greedily, in order, while the item stays within ``max_seq_length - 2`` tokens and
   ``max_entity_length`` mentions (the original truncated mentions instead). An item is kept if it has at
   least one mention (or always, with ``include_sentences_without_entities``).

Items (one Arrow row each; ids *without* CLS/SEP, positions 0-based over ``word_ids``):

``page_id`` int64 (Wikipedia page id), ``page_entity_id`` int32 (entity id of the page title, −1 if none),
``word_ids`` list<int32>, ``entity_ids`` list<int32>, ``entity_position_ids`` list<list<int32>> (per mention
its token positions, at most ``max_mention_length``, unpadded).

Pages are shuffled with ``random.Random(seed)`` and processed in that order by any number of workers;
results are consumed in page order, so the output is byte-identical whatever the worker count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from luke.entity_vocab import EntityVocab
from luke.errors import ConfigError, DataError, DatasetError, TokenizerError, shorten
from luke.files import atomic_output, check_output, read_json, refuse_inputs_in_output, remove_path, temporary_path
from luke.wikipedia.dump_db import DumpDB, Paragraph, resolve
from luke.wikipedia.parallel import ordered_map
from luke.wikipedia.sentence_splitter import SentenceSplitter, get_sentence_splitter

logger = logging.getLogger(__name__)

FORMAT_NAME = "luke-pretraining-dataset"
FORMAT_VERSION = 1
EXCLUDED_TITLE_PREFIXES = ("image:", "file:", "category:")


@dataclass
class DatasetOptions:
    """Options of :func:`build_pretraining_dataset` (all recorded in ``metadata.json``)."""

    max_seq_length: int = 512
    max_entity_length: int = 128
    max_mention_length: int = 30
    min_sentence_length: int = 5
    include_unk_entities: bool = True
    include_sentences_without_entities: bool = False
    abstract_only: bool = False
    sentence_splitter: str = "pysbd"
    language: str = "en"
    seed: int = 0
    max_num_documents: int | None = None

    def validate(self) -> None:
        """Raise :class:`~luke.errors.ConfigError` naming the first option out of range."""
        if self.max_seq_length < 3:
            raise ConfigError("--max-seq-length must be at least 3 (CLS, SEP and one token)")
        for name in ("max_entity_length", "max_mention_length", "min_sentence_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_num_documents is not None and self.max_num_documents < 1:
            raise ConfigError("--max-num-documents must be at least 1")
        if self.min_sentence_length > self.max_seq_length - 2:
            raise ConfigError(
                f"no items could be made: --min-sentence-length {self.min_sentence_length} is more than the "
                f"{self.max_seq_length - 2} tokens an item holds (--max-seq-length {self.max_seq_length} - 2)"
            )


def features() -> Any:
    """The ``datasets.Features`` of an item."""
    import datasets

    int32 = datasets.Value("int32")
    return datasets.Features(
        {
            "page_id": datasets.Value("int64"),
            "page_entity_id": int32,
            "word_ids": datasets.Sequence(int32),
            "entity_ids": datasets.Sequence(int32),
            "entity_position_ids": datasets.Sequence(datasets.Sequence(int32)),
        }
    )


# -------------------------------------------------------------------------------------------- tokenizer


def tokenizer_location(
    path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
) -> Path:
    """Where the tokenizer ``path`` is: the local file or folder itself when it exists (or when ``path``
    cannot be a Hub repo id), else the repo's snapshot folder in the Hugging Face cache, downloaded when
    online (see :func:`luke.hub.resolve_pretrained`; a repo that cannot be had is one
    :class:`~luke.errors.CheckpointError` line naming the id)."""
    from luke.hub import is_repo_id, resolve_pretrained

    p = Path(path)
    if p.exists() or not is_repo_id(path):
        return p
    hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
    return resolve_pretrained(str(path), files="tokenizer", **hub)


def load_tokenizer(path: str | os.PathLike[str], **hub_kwargs: Any) -> Any:
    """Load a fast ``transformers`` tokenizer from a local folder (every word tokenizer folder
    :class:`~luke.tokenization.LukeTokenizer` reads: ``tokenizer.json``, a SentencePiece model with the
    fairseq ids of mLUKE / XLM-R, ``vocab.json`` + ``merges.txt``, or ``vocab.txt``), from a WordPiece
    ``*vocab.txt`` file (lower-cased when the file name contains ``uncased``), or from a Hugging Face Hub
    repo id (``roberta-base``, ``org/name``: read from the Hugging Face cache, downloaded when online;
    ``hub_kwargs`` are ``revision``, ``cache_dir``, ``local_files_only``, ``token``). An existing local
    path always wins. A file of the folder that is not UTF-8 or not JSON is a ``FILE:LINE`` error naming
    that file; errors name the repo id, not its snapshot folder in the cache."""
    return _load_tokenizer_at(tokenizer_location(path, **hub_kwargs), path)


def _load_tokenizer_at(p: Path, name: str | os.PathLike[str]) -> Any:
    """:func:`load_tokenizer` of the folder or file ``p`` that :func:`tokenizer_location` found for ``name``;
    errors name ``name`` (the repo id) where ``p`` is its snapshot folder in the Hugging Face cache."""
    from luke.errors import LukeError

    if not p.exists():
        raise TokenizerError(f"{p}: tokenizer folder not found")
    try:
        return _wordpiece_file(p) if p.is_file() else _tokenizer_folder(p)
    except LukeError as err:
        if p == Path(name):
            raise
        err.args = (str(err).replace(str(p), str(name)),)
        raise err from None


def _wordpiece_file(p: Path) -> Any:
    from transformers import BertTokenizer

    from luke.files import text_lines

    if not p.name.endswith("vocab.txt"):
        raise TokenizerError(f"{p}: expected a tokenizer folder or a WordPiece vocab.txt file")
    if not sum(1 for _, line in text_lines(p) if line.strip()):  # read whole: a bad byte is FILE:LINE
        raise TokenizerError(f"{p}: empty WordPiece vocabulary, expected one token per line")
    try:
        return BertTokenizer(vocab=str(p), do_lower_case="uncased" in p.name.lower())
    except Exception as err:
        raise TokenizerError(f"{p}: cannot load WordPiece vocabulary: {shorten(str(err), 200)}") from None


def _tokenizer_folder(p: Path) -> Any:
    """The word tokenizer of a folder, read as :class:`~luke.tokenization.LukeTokenizer` reads it (same files,
    same ids: the fairseq ids for a SentencePiece model), as a ``transformers`` fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    from luke.tokenization import load_word_backend

    for name in ("special_tokens_map.json", "added_tokens.json"):  # transformers would name only the folder
        if (p / name).is_file():
            read_json(p / name, expected=dict)
    try:
        backend, specials = load_word_backend(p)
    except TokenizerError as err:
        if not str(err).startswith(f"{p}: no tokenizer.json"):
            raise
        names = {x.name for x in p.iterdir()}
        vocab_files = sorted(n for n in names if n.endswith("vocab.txt"))
        hint = ""
        if "vocab.json" in names or "merges.txt" in names:
            hint = f" (it has {'vocab.json' if 'vocab.json' in names else 'merges.txt'} but is missing "
            hint += f"{'merges.txt' if 'vocab.json' in names else 'vocab.json'})"
        elif vocab_files:
            hint = f" (pass the file itself, e.g. {p / vocab_files[0]})"
        raise TokenizerError(f"{err}{hint}") from None
    return PreTrainedTokenizerFast(tokenizer_object=backend, **specials)


# -------------------------------------------------------------------------------------------- per page


@dataclass
class _Sentence:
    word_ids: list[int]
    mentions: list[tuple[int, int, int]]  # (entity id, token start, token end), sentence-relative


class PageProcessor:
    """Turns one page of a :class:`DumpDB` into dataset items (used in-process or once per worker)."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        tokenizer_json: str,
        vocab: EntityVocab,
        options: DatasetOptions,
    ) -> None:
        from tokenizers import Tokenizer

        self.db = DumpDB(db_path)
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        # A tokenizer.json may carry saved padding/truncation (sentence-transformers' MiniLM pads every
        # encoding to 128): pieces must be encoded as they are.
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        # A segment glued to the text before it ("[[Japan]]." -> "."; "[[Japan]]ese" -> "ese") must not get
        # the word-start marker a SentencePiece / prefix-space tokenizer puts on every text it encodes.
        glued = _without_prefix_space(tokenizer_json)
        self.glued_tokenizer = self.tokenizer if glued is None else Tokenizer.from_str(glued)
        if glued is not None:
            self.glued_tokenizer.no_padding()
            self.glued_tokenizer.no_truncation()
        self.vocab = vocab
        self.options = options
        self.splitter: SentenceSplitter = get_sentence_splitter(options.sentence_splitter, options.language)
        self.max_num_tokens = options.max_seq_length - 2

    def _redirects(self, titles: set[str]) -> dict[str, str]:
        """Redirects among ``titles`` (and their targets, for double redirects), from the database."""
        found: dict[str, str] = {}
        pending = set(titles)
        for _ in range(5):
            if not pending:
                break
            keys = sorted(pending)
            pending = set()
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                query = f"SELECT title, target FROM redirects WHERE title IN ({','.join('?' * len(chunk))})"
                for title, target in self.db.conn.execute(query, chunk):
                    found[title] = target
                    if target not in found:
                        pending.add(target)
        return found

    def process(self, page_id: int) -> tuple[list[dict[str, Any]], Counter[str]]:
        stats: Counter[str] = Counter()
        title, paragraphs = self.db.get_page(page_id)
        if self.options.abstract_only:
            paragraphs = [p for p in paragraphs if p.abstract]
        redirects = self._redirects({x.title for p in paragraphs for x in p.links})
        unk_id = self.vocab.unk_id
        sentences: list[_Sentence] = []
        texts: list[str] = []
        layouts: list[tuple[int, list[tuple[int, int, int]]]] = []  # (n segments, [(entity, seg from, seg to)])
        for paragraph in paragraphs:
            links = self._entity_links(paragraph, redirects, unk_id, stats)
            for start, end, sent_links in self._sentences(paragraph.text, links, stats):
                segments, mention_segments = _segments(paragraph.text, start, end, sent_links)
                layouts.append((len(segments), mention_segments))
                texts.extend(segments)
        encodings = self._encode_segments(texts)
        cursor = 0
        for n_segments, mention_segments in layouts:
            ids_per_segment = [encodings[cursor + k].ids for k in range(n_segments)]
            cursor += n_segments
            offsets = [0]
            for ids in ids_per_segment:
                offsets.append(offsets[-1] + len(ids))
            word_ids = [i for ids in ids_per_segment for i in ids]
            mentions = []
            for entity_id, seg in mention_segments:
                if offsets[seg] < offsets[seg + 1]:
                    mentions.append((entity_id, offsets[seg], offsets[seg + 1]))
                else:
                    stats["links_without_tokens"] += 1
            if len(word_ids) < self.options.min_sentence_length:
                stats["sentences_too_short"] += 1
                stats["mentions_in_dropped_sentences"] += len(mentions)
            elif len(word_ids) > self.max_num_tokens:
                stats["sentences_too_long"] += 1
                stats["mentions_in_dropped_sentences"] += len(mentions)
            else:
                stats["sentences"] += 1
                sentences.append(_Sentence(word_ids, mentions))
        page_entity_id = self.vocab.get_id(title, default=None)
        items = self._pack(page_id, -1 if page_entity_id is None else page_entity_id, sentences, stats)
        stats["pages"] += 1
        return items, stats

    def _encode_segments(self, texts: list[str]) -> list[Any]:
        """Encode the segments of :func:`_segments`: those after whitespace (they start with a space) as
        they are, those glued to the text before them without a word-start marker."""
        if self.glued_tokenizer is self.tokenizer:
            return self.tokenizer.encode_batch(texts, add_special_tokens=False) if texts else []
        spaced = [i for i, t in enumerate(texts) if t.startswith(" ")]
        glued = [i for i, t in enumerate(texts) if not t.startswith(" ")]
        encodings: list[Any] = [None] * len(texts)
        for tokenizer, indices in ((self.tokenizer, spaced), (self.glued_tokenizer, glued)):
            if indices:
                batch = tokenizer.encode_batch([texts[i] for i in indices], add_special_tokens=False)
                for i, encoding in zip(indices, batch, strict=True):
                    encodings[i] = encoding
        return encodings

    def _entity_links(
        self, paragraph: Paragraph, redirects: dict[str, str], unk_id: int, stats: Counter[str]
    ) -> list[tuple[int, int, int]]:
        links = []
        last_end = 0
        for link in sorted(paragraph.links, key=lambda x: (x.start, x.end)):
            stats["links"] += 1
            if link.start < last_end:
                stats["links_overlapping"] += 1
                continue
            entity_id = self.vocab.get_id(resolve(link.title, redirects), default=None)
            if entity_id is None:
                if not self.options.include_unk_entities:
                    stats["links_skipped_unknown"] += 1
                    continue
                entity_id = unk_id
                stats["links_unknown_as_unk"] += 1
            links.append((entity_id, link.start, link.end))
            last_end = link.end
        return links

    def _sentences(
        self, text: str, links: list[tuple[int, int, int]], stats: Counter[str]
    ) -> Iterator[tuple[int, int, list[tuple[int, int, int]]]]:
        spans = self.splitter(text)
        # merge sentences that a link crosses
        merged: list[list[int]] = []
        link_index = 0
        for start, end in spans:
            if merged and link_index < len(links) and links[link_index][1] < merged[-1][1] < links[link_index][2]:
                merged[-1][1] = end
                stats["sentence_boundaries_inside_links"] += 1
            else:
                merged.append([start, end])
            while link_index < len(links) and links[link_index][2] <= merged[-1][1]:
                link_index += 1
        link_index = 0
        for start, end in merged:
            inside = []
            while link_index < len(links) and links[link_index][1] < end:
                link = links[link_index]
                if link[1] >= start and link[2] <= end:
                    inside.append(link)
                else:
                    stats["links_outside_sentences"] += 1
                link_index += 1
            yield start, end, inside

    def _pack(
        self, page_id: int, page_entity_id: int, sentences: list[_Sentence], stats: Counter[str]
    ) -> list[dict[str, Any]]:
        opts = self.options
        items: list[dict[str, Any]] = []
        word_ids: list[int] = []
        mentions: list[tuple[int, int, int]] = []

        def emit() -> None:
            if word_ids and (mentions or opts.include_sentences_without_entities):
                items.append(
                    {
                        "page_id": page_id,
                        "page_entity_id": page_entity_id,
                        "word_ids": list(word_ids),
                        "entity_ids": [m[0] for m in mentions],
                        "entity_position_ids": [
                            list(range(s, min(e, s + opts.max_mention_length))) for _, s, e in mentions
                        ],
                    }
                )
                stats["items"] += 1
                stats["tokens"] += len(word_ids)
                stats["mentions"] += len(mentions)
                stats["unk_mentions"] += sum(1 for m in mentions if m[0] == self.vocab.unk_id)
                stats["mentions_truncated"] += sum(1 for _, s, e in mentions if e - s > opts.max_mention_length)
            elif word_ids:
                stats["items_without_entities_dropped"] += 1

        for sentence in sentences:
            sentence_mentions = sentence.mentions
            if len(sentence_mentions) > opts.max_entity_length:
                stats["mentions_over_max_entity_length"] += len(sentence_mentions) - opts.max_entity_length
                sentence_mentions = sentence_mentions[: opts.max_entity_length]
            if word_ids and (
                len(word_ids) + len(sentence.word_ids) > self.max_num_tokens
                or len(mentions) + len(sentence_mentions) > opts.max_entity_length
            ):
                emit()
                word_ids, mentions = [], []
            offset = len(word_ids)
            word_ids.extend(sentence.word_ids)
            mentions.extend((e, s + offset, t + offset) for e, s, t in sentence_mentions)
        emit()
        return items


def _without_prefix_space(tokenizer_json: str) -> str | None:
    """``tokenizer_json`` with its word-start prefix turned off (a ``Metaspace`` pre-tokenizer's
    ``prepend_scheme`` set to ``never``, a ``ByteLevel`` one's ``add_prefix_space`` to false), or None when it
    adds none (WordPiece, RoBERTa's byte-level BPE): the tokenizer for segments glued to the text before."""
    data = json.loads(tokenizer_json)
    changed = False

    def visit(node: Any) -> None:
        nonlocal changed
        if isinstance(node, list):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind == "Metaspace":
                if node.get("prepend_scheme", "always") != "never" or node.get("add_prefix_space"):
                    node["prepend_scheme"] = "never"
                    node.pop("add_prefix_space", None)
                    changed = True
            elif kind == "ByteLevel" and node.get("add_prefix_space"):
                node["add_prefix_space"] = False
                changed = True
            for key in ("pretokenizers", "pre_tokenizers"):
                visit(node.get(key))

    visit(data.get("pre_tokenizer"))
    return json.dumps(data) if changed else None


def _segments(
    text: str, start: int, end: int, links: Sequence[tuple[int, int, int]]
) -> tuple[list[str], list[tuple[int, int]]]:
    """Cut ``text[start:end]`` at link boundaries into segments to tokenise separately.

    Returns the segment strings (with a leading space when whitespace precedes them or they start the
    sentence, so byte-level BPE gets its ``Ġ``) and ``(entity id, segment index)`` per link.
    """
    segments: list[str] = []
    mention_segments: list[tuple[int, int]] = []

    def add(a: int, b: int) -> bool:
        piece = text[a:b]
        stripped = piece.lstrip()
        lead = len(piece) - len(stripped)
        stripped = stripped.rstrip()
        if not stripped:
            return False
        at = a + lead
        space = at == start or text[at - 1].isspace()
        segments.append(" " + stripped if space else stripped)
        return True

    cursor = start
    for entity_id, link_start, link_end in links:
        add(cursor, link_start)
        if add(link_start, link_end):
            mention_segments.append((entity_id, len(segments) - 1))
        cursor = link_end
    add(cursor, end)
    return segments, mention_segments


_WORKER: PageProcessor | None = None


def _init_worker(source: _ItemSource) -> None:
    global _WORKER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER = source.processor()


def _work(page_id: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    assert _WORKER is not None
    return _WORKER.process(page_id)


# ------------------------------------------------------------------------------------------------ build


def select_pages(db: DumpDB, options: DatasetOptions) -> list[int]:
    """Page ids to process, shuffled with ``random.Random(seed)`` (deterministic)."""
    rows = db.conn.execute("SELECT page_id, title FROM pages ORDER BY page_id").fetchall()
    page_ids = [pid for pid, title in rows if not title.lower().startswith(EXCLUDED_TITLE_PREFIXES)]
    random.Random(options.seed).shuffle(page_ids)
    if options.max_num_documents is not None:
        page_ids = page_ids[: options.max_num_documents]
    return page_ids


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_pretraining_dataset(
    dump_db: str | os.PathLike[str],
    tokenizer_path: str | os.PathLike[str],
    entity_vocab_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: DatasetOptions | None = None,
    *,
    num_workers: int = 1,
    chunk_size: int = 4,
    num_shards: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    tokenizer_revision: str | None = None,
) -> dict[str, Any]:
    """Build the dataset in ``out_dir`` and return its metadata (also written to ``metadata.json``).

    ``tokenizer_path`` is a local tokenizer folder or ``*vocab.txt`` file, or a Hugging Face Hub repo id
    (at ``tokenizer_revision``), see :func:`load_tokenizer`.

    Everything is written to a temporary folder next to ``out_dir`` that is renamed into place only when
    complete (leftovers of killed runs are swept). ``out_dir`` must not exist unless ``overwrite``; the path is
    checked before the work starts.
    """
    options = options or DatasetOptions()
    options.validate()
    out = check_output(out_dir, kind="dir", overwrite=overwrite, what="output folder")
    tokenizer_dir = tokenizer_location(tokenizer_path, revision=tokenizer_revision)
    refuse_inputs_in_output(out, [dump_db, tokenizer_dir, entity_vocab_path], what="output folder")
    db = DumpDB(dump_db)
    tokenizer = _load_tokenizer_at(tokenizer_dir, tokenizer_path)
    vocab_path = Path(entity_vocab_path)
    if vocab_path.is_dir():
        raise DataError(vocab_path, "entity vocabulary is a folder, expected a file")
    if not vocab_path.is_file():
        raise DataError(vocab_path, "entity vocabulary not found")
    vocab = EntityVocab.load(vocab_path)
    get_sentence_splitter(options.sentence_splitter, options.language)  # fail early if unavailable
    tokenizer_json = tokenizer.backend_tokenizer.to_str()
    page_ids = select_pages(db, options)
    try:
        with atomic_output(out, "dir") as work:
            source = _ItemSource(str(db.path), tokenizer_json, vocab, options)
            stats = _write_and_save_items(out, work, source, page_ids, num_workers, chunk_size, num_shards, progress)
            tokenizer.save_pretrained(str(work / "tokenizer"))
            (work / f"entity_vocab{vocab_path.suffix}").write_bytes(vocab_path.read_bytes())
            metadata = _metadata(source, stats, len(page_ids), db, tokenizer, tokenizer_path, entity_vocab_path)
            text = json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
            (work / "metadata.json").write_text(text, encoding="utf-8")
    finally:
        db.close()
    return metadata


def _write_and_save_items(
    out: Path,
    work: Path,
    source: _ItemSource,
    page_ids: list[int],
    num_workers: int,
    chunk_size: int,
    num_shards: int | None,
    progress: bool,
) -> Counter[str]:
    """Process the pages into one Arrow file in a staging folder beside ``out`` (removed afterwards), then
    save it as the shards of the ``datasets`` folder ``work``; return the summed page stats."""
    staging = temporary_path(out, "staging")
    remove_path(staging)
    staging.mkdir()
    try:
        items = staging / "items.arrow"
        stats = _write_items(items, source, page_ids, num_workers, chunk_size, progress)
        _refuse_no_items(stats, source.options, len(page_ids))
        _save_shards(items, work, num_shards or max(1, -(-stats["tokens"] // 50_000_000)), progress)
    finally:
        remove_path(staging)
    return stats


def _refuse_no_items(stats: Counter[str], options: DatasetOptions, num_pages: int) -> None:
    """:class:`~luke.errors.ConfigError` for a run that made no item (the output is not kept), with the
    likely cause: the sentences were all too short or too long for the options, or had no entity."""
    if stats["items"]:
        return
    causes = []
    if stats["sentences_too_short"]:
        too_short = stats["sentences_too_short"]
        causes.append(f"{too_short:,} shorter than --min-sentence-length {options.min_sentence_length}")
    if stats["sentences_too_long"]:
        causes.append(
            f"{stats['sentences_too_long']:,} longer than --max-seq-length {options.max_seq_length} - 2 = "
            f"{options.max_seq_length - 2} tokens"
        )
    if stats["items_without_entities_dropped"]:
        causes.append(
            f"{stats['items_without_entities_dropped']:,} item(s) without an entity mention dropped "
            "(see --include-sentences-without-entities)"
        )
    why = "; ".join(causes) if causes else "the pages hold no text"
    raise ConfigError(f"no items: {num_pages:,} page(s) gave {stats['sentences']:,} usable sentence(s) ({why})")


@dataclass
class _ItemSource:
    """What a :class:`PageProcessor` is built from (in this process, or once in each worker)."""

    db_path: str
    tokenizer_json: str
    vocab: EntityVocab
    options: DatasetOptions

    def processor(self) -> PageProcessor:
        return PageProcessor(self.db_path, self.tokenizer_json, self.vocab, self.options)


def _processed_pages(
    source: _ItemSource, page_ids: list[int], num_workers: int, chunk_size: int
) -> Iterator[tuple[list[dict[str, Any]], Counter[str]]]:
    """``PageProcessor.process`` of every page, in ``page_ids`` order (in a fork pool if ``num_workers > 1``)."""
    if num_workers <= 1:
        yield from map(source.processor().process, page_ids)
        return
    yield from ordered_map(_work, page_ids, num_workers, chunk_size, _init_worker, (source,))


def _write_items(
    path: Path, source: _ItemSource, page_ids: list[int], num_workers: int, chunk_size: int, progress: bool
) -> Counter[str]:
    """Process the pages and write their items to the Arrow file ``path``; return the summed page stats."""
    from datasets.arrow_writer import ArrowWriter

    stats: Counter[str] = Counter()
    writer = ArrowWriter(features=features(), path=str(path))
    results = _processed_pages(source, page_ids, num_workers, chunk_size)
    with tqdm(total=len(page_ids), unit="page", desc="build-pretraining-dataset", disable=not progress) as bar:
        try:
            for items, page_stats in results:
                stats.update(page_stats)
                for item in items:
                    writer.write(item)
                bar.update(1)
                bar.set_postfix(items=stats["items"], refresh=False)
        finally:
            results.close()
    writer.finalize()
    return stats


def _save_shards(items: Path, out: Path, num_shards: int, progress: bool) -> None:
    """Save the Arrow file ``items`` as a ``datasets`` folder ``out`` of ``num_shards`` shards (fewer if
    there are fewer rows); the fingerprint is the file's hash, so equal items give equal files."""
    import datasets
    from datasets.table import MemoryMappedTable

    table = MemoryMappedTable.from_file(str(items))
    fingerprint = _sha256_file(items)[:16]
    dataset = datasets.Dataset(table, info=datasets.DatasetInfo(features=features()), fingerprint=fingerprint)
    was_disabled = datasets.are_progress_bars_disabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        dataset.save_to_disk(str(out), num_shards=min(num_shards, max(1, len(dataset))))
    finally:
        if not progress and not was_disabled:
            datasets.enable_progress_bars()


def _metadata(
    source: _ItemSource,
    stats: Counter[str],
    number_of_pages: int,
    db: DumpDB,
    tokenizer: Any,
    tokenizer_path: str | os.PathLike[str],
    entity_vocab_path: str | os.PathLike[str],
) -> dict[str, Any]:
    """The content of ``metadata.json``."""
    options, vocab, vocab_path = source.options, source.vocab, Path(entity_vocab_path)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "number_of_items": stats["items"],
        "number_of_pages": number_of_pages,
        "counts": dict(sorted(stats.items())),
        "max_seq_length": options.max_seq_length,
        "max_entity_length": options.max_entity_length,
        "max_mention_length": options.max_mention_length,
        "min_sentence_length": options.min_sentence_length,
        "word_ids_have_special_tokens": False,
        "tokenizer": {
            "class": type(tokenizer).__name__,
            "source": str(tokenizer_path),
            "vocab_size": len(tokenizer),
            "sha256": hashlib.sha256(source.tokenizer_json.encode("utf-8")).hexdigest(),
            "saved_to": "tokenizer/",
        },
        "entity_vocab": {
            "source": str(entity_vocab_path),
            "file": f"entity_vocab{vocab_path.suffix}",
            "size": len(vocab),
            "sha256": _sha256_file(vocab_path),
            "special_ids": vocab.special_ids(),
        },
        "dump_db": {
            "source": db.meta.get("source"),
            "counts": {k[6:]: int(v) for k, v in sorted(db.meta.items()) if k.startswith("count.")},
        },
        "arguments": asdict(options),
    }


# ---------------------------------------------------------------------------------------------- reading

# metadata.json fields that readers rely on: dotted key -> type (bool is never accepted for int)
METADATA_FIELDS: dict[str, type] = {
    "number_of_items": int,
    "number_of_pages": int,
    "tokenizer": dict,
    "tokenizer.saved_to": str,
    "entity_vocab": dict,
    "entity_vocab.file": str,
    "entity_vocab.size": int,
    "entity_vocab.special_ids": dict,
}
_TYPE_NAMES = {int: "an integer", str: "a string", dict: "a JSON object"}


def read_metadata(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``metadata.json`` of a dataset folder written by :func:`build_pretraining_dataset`.

    A missing folder or file, bad UTF-8 or JSON, another ``format``, or a field of :data:`METADATA_FIELDS`
    missing or of the wrong type is a :class:`~luke.errors.DatasetError` naming the file (and line)."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise DatasetError(path, "is a file, expected a pretraining dataset folder (from build-pretraining-dataset)")
    if not path.is_dir():
        raise DatasetError(path, "dataset folder not found")
    meta_path = path / "metadata.json"
    if not meta_path.is_file():
        raise DatasetError(path, "not a pretraining dataset (no metadata.json)")
    try:
        metadata = read_json(meta_path, dict)
    except DatasetError:
        raise
    except DataError as err:
        raise DatasetError(str(err)) from None
    if metadata.get("format") != FORMAT_NAME:
        raise DatasetError(meta_path, f"format is {shorten(metadata.get('format'))}, expected {FORMAT_NAME!r}")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise DatasetError(
            meta_path, f"format_version is {shorten(version)}; this version of luke reads {FORMAT_VERSION} only"
        )
    for key in ("max_seq_length", "max_entity_length", "max_mention_length"):
        value = metadata.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise DatasetError(meta_path, f"field {key!r} must be a positive integer, got {shorten(value)}")
    for key, expected in METADATA_FIELDS.items():
        value: Any = metadata
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            raise DatasetError(meta_path, f"field {key!r} is missing (expected {_TYPE_NAMES[expected]})")
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise DatasetError(
                meta_path, f"field {key!r} must be {_TYPE_NAMES[expected]}, got {type(value).__name__} {shorten(value)}"
            )
        if expected is int and value < 0:
            raise DatasetError(meta_path, f"field {key!r} must be >= 0, got {value}")
    special_ids = metadata["entity_vocab"]["special_ids"]
    for name, value in special_ids.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise DatasetError(
                meta_path, f"field 'entity_vocab.special_ids.{shorten(name)}' must be an integer, got {shorten(value)}"
            )
    return metadata


def load_arrow(folder: str | os.PathLike[str]) -> Any:
    """The ``datasets.Dataset`` saved in ``folder``; a missing shard or one that cannot be read (truncated,
    not Arrow) is a :class:`~luke.errors.DatasetError` naming it."""
    import datasets

    path = Path(folder)
    state_path = path / "state.json"
    if not state_path.is_file():
        raise DatasetError(path, "state.json is missing (an incomplete copy of the dataset?)")
    try:
        state = read_json(state_path, dict)
    except DataError as err:
        raise DatasetError(str(err)) from None
    files = state.get("_data_files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("filename"), str) for f in files
    ):
        raise DatasetError(state_path, "'_data_files' must be a list of {\"filename\": ...} objects")
    names = [f["filename"] for f in files]
    if not names:
        raise DatasetError(state_path, "'_data_files' lists no Arrow shards (an incomplete copy of the dataset?)")
    odd = [name for name in names if Path(name).name != name or name in ("", ".", "..")]
    if odd:
        raise DatasetError(state_path, f"shard names must be file names in the folder, got {shorten(odd[0])}")
    missing = [name for name in names if not (path / name).is_file()]
    if missing:
        raise DatasetError(path, f"missing dataset shard(s): {shorten(', '.join(missing), 200)}")
    info_path = path / "dataset_info.json"
    if not info_path.is_file():
        raise DatasetError(path, "dataset_info.json is missing (an incomplete copy of the dataset?)")
    try:
        read_json(info_path, dict)
    except DataError as err:
        raise DatasetError(str(err)) from None
    try:
        return datasets.load_from_disk(str(path))
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatasetError(
            _broken_shard(path, names) or path,
            f"corrupt dataset shard(s) (cannot read the Arrow data: {shorten(first, 200)})",
        ) from None


def _broken_shard(folder: Path, names: list[str]) -> Path | None:
    """The first of the Arrow files ``names`` in ``folder`` that cannot be read whole (truncated, not Arrow)."""
    import pyarrow as pa

    for name in names:
        try:
            with pa.memory_map(str(folder / name)) as source:
                pa.ipc.open_stream(source).read_all()
        except Exception:
            return folder / name
    return None


# ------------------------------------------------------------------------------------------------ stats


def dataset_stats(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Items, tokens, entity mentions and entity coverage of a built dataset (computed from the Arrow
    data, not copied from ``metadata.json``)."""
    import pyarrow.compute as pc

    metadata = read_metadata(out_dir)
    dataset = load_arrow(out_dir)
    table = dataset.data.table
    if not {"word_ids", "entity_ids", "page_id"} <= set(table.column_names):
        raise DatasetError(Path(out_dir), f"the Arrow data lacks columns (has {', '.join(table.column_names)})")
    word_lengths = pc.list_value_length(table.column("word_ids"))
    entity_ids = pc.list_flatten(table.column("entity_ids"))
    unk_id = metadata["entity_vocab"]["special_ids"].get("[UNK]")
    items = dataset.num_rows
    tokens = int(pc.sum(word_lengths).as_py() or 0)
    mentions = len(entity_ids)
    unk = int(pc.sum(pc.equal(entity_ids, unk_id)).as_py() or 0) if mentions and unk_id is not None else 0
    distinct = len(pc.unique(entity_ids)) if mentions else 0
    return {
        "items": items,
        "pages": len(pc.unique(table.column("page_id"))) if items else 0,
        "tokens": tokens,
        "tokens_per_item": tokens / items if items else 0.0,
        "entity_mentions": mentions,
        "entity_mentions_per_item": mentions / items if items else 0.0,
        "unk_mentions": unk,
        "entity_coverage": (mentions - unk) / mentions if mentions else 0.0,
        "distinct_entities": distinct - (1 if unk else 0),
        "entity_vocab_size": metadata["entity_vocab"]["size"],
        "shards": len(dataset.cache_files),
    }
