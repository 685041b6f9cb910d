"""The LUKE encoding core: validated texts + entity spans → word ids, entity ids and entity position ids.

:class:`LukeEncoder` knows nothing about ``transformers``-style keyword arguments: it takes a list of
:class:`Example` records (texts, character spans, entity ids, already checked) and one frozen
:class:`EncodeOptions`, and returns a dict of padded NumPy arrays or Python lists.  The argument handling
(``True``/``False`` strategies, defaults, input validation, tensors) lives in :mod:`luke.tokenization`.

Pipeline of :meth:`LukeEncoder.encode`:

1. word tokenization so that every span boundary is a token boundary (:class:`Segment` per text);
2. ``<ent>``/``<ent2>`` markers for the classification tasks;
3. windows / truncation (:class:`Window`) and special tokens, keeping the entities inside each window
   (:class:`Row` per window);
4. padding / collation.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from tokenizers import Tokenizer

__all__ = [
    "PADDING_STRATEGIES",
    "TASKS",
    "TRUNCATION_STRATEGIES",
    "EncodeOptions",
    "Example",
    "LukeEncoder",
    "Row",
    "Segment",
    "SpecialIds",
    "Window",
]

# The dropped-entities warning keeps the logger name it has always had.
logger = logging.getLogger("luke.tokenization")

TASKS = ("entity_classification", "entity_pair_classification", "entity_span_classification")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
_MARKER_TASKS = ("entity_classification", "entity_pair_classification")

Span = tuple[int, int]


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """Resolved options of one encoding call (strategies as strings, defaults already applied).

    Built by :meth:`luke.tokenization.LukeTokenizer.__call__` from its keyword arguments; build it directly
    to call :meth:`LukeEncoder.encode` without the argument handling.  ``max_length=None`` means no limit.
    """

    task: str | None = None
    add_special_tokens: bool = True
    padding: str = "do_not_pad"
    truncation: str = "do_not_truncate"
    max_length: int | None = None
    max_entity_length: int = 32
    max_mention_length: int = 30
    stride: int = 0
    pad_to_multiple_of: int | None = None
    return_tensors: str | None = None
    return_token_type_ids: bool = True
    return_attention_mask: bool = True
    return_offsets_mapping: bool = False
    return_overflowing_tokens: bool = False
    return_length: bool = False
    entity_language: str | None = None

    def __post_init__(self) -> None:
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task must be None or one of {TASKS}, got {self.task!r}")
        if self.padding not in PADDING_STRATEGIES:
            raise ValueError(f"padding must be one of {PADDING_STRATEGIES}, got {self.padding!r}")
        if self.truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation must be one of {TRUNCATION_STRATEGIES}, got {self.truncation!r}")
        if self.padding == "max_length" and self.max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        if self.max_mention_length < 1:
            raise ValueError(f"max_mention_length must be >= 1, got {self.max_mention_length}")
        if self.stride < 0:
            raise ValueError(f"stride must be >= 0, got {self.stride}")
        if self.return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {self.return_tensors!r}")

    @property
    def as_arrays(self) -> bool:
        """Whether the output is NumPy arrays (tensors requested or padding on) rather than lists."""
        return self.return_tensors is not None or self.padding != "do_not_pad"


@dataclass(slots=True)
class Example:
    """One checked input: a text (and optional second text) with character spans and their entity ids."""

    text: str
    spans: list[Span] | None = None
    entity_ids: list[int] = field(default_factory=list)
    pair: str | None = None
    pair_spans: list[Span] | None = None
    pair_entity_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Segment:
    """One text after word tokenization."""

    ids: list[int]
    offsets: list[Span] | None  # character offsets per token (None unless requested)
    spans: list[Span]  # entity token spans, end exclusive
    entity_ids: list[int]
    entity_indices: list[int]  # index of each entity's span in the input


@dataclass(slots=True)
class Window:
    """Token window of one example: ``[a_start, a_end)`` of the first text, ``[b_start, b_end)`` of the second."""

    a_start: int
    a_end: int
    b_start: int
    b_end: int


@dataclass(slots=True)
class Row:
    """One encoded window with special tokens, before padding."""

    ids: list[int]
    offsets: list[Span] | None
    token_types: list[int] | None  # None: all zeros
    entity_ids: list[int]
    entity_spans: list[Span]  # token spans in ``ids``, end exclusive
    n_first: int  # number of entities of the first text
    entity_indices: list[int]
    n_dropped: int  # entities of the example that are not in this window


@dataclass(frozen=True, slots=True)
class SpecialIds:
    """Word ids of the special tokens and the entity padding id."""

    cls: int
    sep: int
    pad: int
    entity_1: int
    entity_2: int
    entity_pad: int


# ---------------------------------------------------------------------------------------------- encoder
class LukeEncoder:
    """Encodes :class:`Example` records with a word tokenizer (see :mod:`luke.tokenization` for the rules).

    Args:
        tokenizer: the word tokenizer, with padding and truncation switched off and the marker tokens added.
        special: the special token ids.
        double_separator: ``<s> A </s></s> B </s>`` (RoBERTa) instead of ``[CLS] A [SEP] B [SEP]`` with token
            type 1 for B (BERT).
    """

    def __init__(self, tokenizer: Tokenizer, special: SpecialIds, double_separator: bool) -> None:
        self.tokenizer = tokenizer
        self.special = special
        self.double_separator = double_separator
        pre = json.loads(tokenizer.to_str()).get("pre_tokenizer") or {}
        pre_types = {pre.get("type")} | {p.get("type") for p in pre.get("pretokenizers", [])}
        # Whole-text tokenization equals piecewise tokenization at pre-token boundaries for these.
        self.whole_text_ok = bool(pre_types & {"ByteLevel", "BertPreTokenizer"}) and pre_types <= {
            "ByteLevel",
            "BertPreTokenizer",
            "Sequence",
        }
        self.byte_level = "ByteLevel" in pre_types
        # SentencePiece (Metaspace): "▁ca" covers the space before "ca", and a lone "▁" (the dummy prefix of a
        # word the model splits, e.g. "▁" "J" "ap") is aligned with the next character: both are trimmed.
        self.metaspace = "Metaspace" in pre_types
        vocab = tokenizer.get_vocab(with_added_tokens=False) if self.metaspace else {}
        self.space_ids = frozenset(i for t, i in vocab.items() if t and not t.strip("▁"))
        self.py_bpe: PyByteLevelBPE | PySentencePiece | None = None
        if PyByteLevelBPE.applies_to(tokenizer):
            self.py_bpe = PyByteLevelBPE(tokenizer)
        elif PySentencePiece.applies_to(tokenizer):
            self.py_bpe = PySentencePiece(tokenizer, self.space_ids)

    def encode(self, examples: Sequence[Example], options: EncodeOptions) -> dict[str, Any]:
        """Encode a batch: ``input_ids``, masks, entity arrays, ... (NumPy arrays when
        ``options.as_arrays``, else lists) plus ``overflow_to_sample_mapping`` with overflowing windows.

        Raises:
            ValueError: when a window cannot hold the text (``max_length`` / ``stride`` too small) or
                tensors are requested for unpadded examples of different lengths.
        """
        first, second = self._segments(examples, options)
        rows: list[Row] = []
        sample_map: list[int] = []
        n_single = 2 if options.add_special_tokens else 0
        n_pair = (4 if self.double_separator else 3) if options.add_special_tokens else 0
        windows, assemble = self.windows, self.assemble
        for i, (a, b) in enumerate(zip(first, second, strict=True)):
            len_b = None if b is None else len(b.ids)
            for window in windows(i, len(a.ids), len_b, n_single if b is None else n_pair, options):
                rows.append(assemble(a, b, window, options))
                sample_map.append(i)
        has_entities = any(ex.spans is not None or ex.pair_spans is not None for ex in examples)
        data = self.collate(rows, has_entities, options)
        if options.return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_map
        return data

    def _segments(
        self, examples: Sequence[Example], options: EncodeOptions
    ) -> tuple[list[Segment], list[Segment | None]]:
        """Word-tokenize the first texts and the second texts (markers inserted for the task)."""
        need_offsets = options.return_offsets_mapping
        first = self.tokenize_segments(
            [ex.text for ex in examples],
            [ex.spans for ex in examples],
            [ex.entity_ids for ex in examples],
            need_offsets,
        )
        second: list[Segment | None] = [None] * len(examples)
        pair_idx = [i for i, ex in enumerate(examples) if ex.pair is not None]
        if pair_idx:
            encoded = self.tokenize_segments(
                [examples[i].pair for i in pair_idx],  # type: ignore[misc]
                [examples[i].pair_spans for i in pair_idx],
                [examples[i].pair_entity_ids for i in pair_idx],
                need_offsets,
            )
            for i, seg in zip(pair_idx, encoded, strict=True):
                second[i] = seg
        if options.task in _MARKER_TASKS:
            for seg in first:
                self.insert_markers(seg)
        return first, second

    # ------------------------------------------------------------------------------------ word tokenization
    def tokenize_segments(
        self,
        texts: list[str],
        spans: list[list[Span] | None],
        entity_ids: list[list[int]],
        need_offsets: bool,
    ) -> list[Segment]:
        """Word-tokenize texts so that span boundaries are token boundaries.

        The text is split at every span boundary (a space right before a boundary belongs to the following
        piece) and every piece is tokenized separately; plain-ASCII byte-level BPE text and most SentencePiece
        text take a Python path with a word cache (:class:`PyByteLevelBPE`, :class:`PySentencePiece`), other
        text one batched Rust call on the whole texts when that gives the same tokens, and piecewise Rust calls
        otherwise.
        """
        batch = _TextBatch(texts, spans, entity_ids)
        rust: list[int] = []
        py = self.py_bpe
        points, finish = batch.points, batch.finish
        trim = self.byte_level
        for k, t in enumerate(texts):
            done = py.encode_pieces(t, points[k], need_offsets) if py is not None and py.eligible(t) else None
            if done is None:
                rust.append(k)
                continue
            ids, offsets, char_to_tok = done
            if offsets is not None and trim:
                offsets = self.trim(t, offsets, 0)
            finish(k, ids, offsets, char_to_tok)
        if rust:
            slow = self._tokenize_whole(batch, rust) if self.whole_text_ok else rust
            if slow:
                self._tokenize_piecewise(batch, slow, need_offsets)
            if not need_offsets:
                for k in rust:
                    batch.out[k].offsets = None  # type: ignore[union-attr]
        return batch.out  # type: ignore[return-value]

    def _tokenize_whole(self, batch: _TextBatch, todo: list[int]) -> list[int]:
        """Tokenize whole texts in one Rust call; returns the texts whose span boundaries split a word."""
        slow: list[int] = []
        texts = batch.texts
        encodings = self.tokenizer.encode_batch([texts[k] for k in todo], add_special_tokens=False)
        for k, enc in zip(todo, encodings, strict=True):
            offsets = enc.offsets
            points = batch.points[k]
            char_to_tok = _boundary_tokens(offsets, enc.word_ids, points) if points else {}
            if char_to_tok is None:
                slow.append(k)
                continue
            batch.finish(k, enc.ids, self.trim(texts[k], offsets, 0, enc.ids), char_to_tok)
        return slow

    def _tokenize_piecewise(self, batch: _TextBatch, todo: list[int], need_offsets: bool = True) -> None:
        """Tokenize the pieces between span boundaries (one Rust call for all pieces of all texts)."""
        pieces: list[str] = []
        texts = batch.texts
        plans = [_Pieces.plan(texts[k], batch.points[k], pieces) for k in todo]
        e_iter = iter(self.tokenizer.encode_batch(pieces, add_special_tokens=False))
        for k, plan in zip(todo, plans, strict=True):
            ids: list[int] = []
            offsets: list[Span] = []
            tokens_before = [0]
            for start in plan.starts:
                enc = next(e_iter)
                ids.extend(enc.ids)
                if need_offsets:
                    offsets.extend(self.trim(texts[k], enc.offsets, start, enc.ids))
                tokens_before.append(len(ids))
            batch.finish(k, ids, offsets, {pos: tokens_before[n] for pos, n in plan.marks.items()})

    def trim(self, text: str, offsets: list[Span], shift: int, ids: list[int] | None = None) -> list[Span]:
        """Shift offsets into the full text and drop leading spaces from byte-level tokens (``ĠLos``) and
        SentencePiece tokens (``▁Los``); a SentencePiece token of ``▁`` only becomes zero-width."""
        if self.metaspace:
            return self._trim_metaspace(text, offsets, shift, ids)
        if not self.byte_level:
            return offsets if shift == 0 else [(s + shift, e + shift) for s, e in offsets]
        out = []
        for s, e in offsets:
            s += shift
            e += shift
            while s < e and text[s] == " ":
                s += 1
            out.append((s, e))
        return out

    def _trim_metaspace(self, text: str, offsets: list[Span], shift: int, ids: list[int] | None) -> list[Span]:
        out = []
        space_ids = self.space_ids
        for k, (s, e) in enumerate(offsets):
            s += shift
            e += shift
            if ids is not None and ids[k] in space_ids:
                out.append((e, e) if text[s:e].isspace() else (s, s))
                continue
            while s < e and text[s].isspace():
                s += 1
            out.append((s, e))
        return out

    def insert_markers(self, seg: Segment) -> None:
        """Insert ``<ent>`` (and ``<ent2>``) around the task spans of ``seg`` (in place), as transformers does."""
        ids, offsets = seg.ids, seg.offsets
        markers = (self.special.entity_1, self.special.entity_2)
        # At one token position: closing markers of non-empty spans, then empty spans (open, close), then
        # opening markers of non-empty spans.
        events = []
        for k, (s, e) in enumerate(seg.spans):
            empty = s == e
            events.append((s, 1 if empty else 3, True, k))
            events.append((e, 2 if empty else 0, False, k))
        events.sort()
        new_ids: list[int] = []
        new_offsets: list[Span] | None = None if offsets is None else []
        new_spans = [[0, 0] for _ in seg.spans]
        cur = 0
        n_ids = len(ids)
        for pos, _, is_open, k in events:
            new_ids += ids[cur:pos]
            if new_offsets is not None:
                new_offsets += offsets[cur:pos]  # type: ignore[index]
                if is_open and pos < n_ids:
                    char = offsets[pos][0]  # type: ignore[index]
                else:
                    char = offsets[pos - 1][1] if pos > 0 else 0  # type: ignore[index]
                new_offsets.append((char, char))
            cur = pos
            if is_open:
                new_spans[k][0] = len(new_ids)
            new_ids.append(markers[k])
            if not is_open:
                new_spans[k][1] = len(new_ids)
        new_ids += ids[cur:]
        if new_offsets is not None:
            new_offsets += offsets[cur:]  # type: ignore[index]
        seg.ids, seg.offsets, seg.spans = new_ids, new_offsets, [(s, e) for s, e in new_spans]

    # ------------------------------------------------------------------------------------ windows
    def windows(
        self, index: int, len_a: int, len_b: int | None, n_special: int, options: EncodeOptions
    ) -> list[Window]:
        """Token windows of example ``index`` (one unless ``options.return_overflowing_tokens``)."""
        lb = 0 if len_b is None else len_b
        total = len_a + lb + n_special
        truncation, max_length, overflow = options.truncation, options.max_length, options.return_overflowing_tokens
        if truncation == "do_not_truncate" or max_length is None or total <= max_length:
            return [Window(0, len_a, 0, lb)]
        if len_b is not None and truncation == "longest_first":
            if overflow:
                raise ValueError(
                    f"example {index}: return_overflowing_tokens with a text pair needs truncation='only_first' or "
                    "'only_second' (which text to split into windows)"
                )
            return [_longest_first(index, len_a, lb, total - max_length, max_length)]
        window_second = len_b is not None and truncation != "only_first"
        other = len_a if window_second else lb
        size = max_length - n_special - other
        long_len = lb if window_second else len_a
        if size <= 0:
            raise ValueError(
                f"example {index}: max_length={max_length} leaves no room for the "
                f"{'second' if window_second else 'first'} text ({other} tokens in the other text + {n_special} "
                "special tokens)"
            )
        starts = [0]
        if overflow:
            if options.stride >= size:
                raise ValueError(
                    f"example {index}: stride={options.stride} must be smaller than the window size {size}"
                )
            while starts[-1] + size < long_len:
                starts.append(starts[-1] + size - options.stride)
        if window_second:
            return [Window(0, len_a, s, min(s + size, long_len)) for s in starts]
        return [Window(s, min(s + size, long_len), 0, lb) for s in starts]

    def assemble(self, a: Segment, b: Segment | None, window: Window, options: EncodeOptions) -> Row:
        """Add special tokens to one window and keep the entities that lie inside it (re-based)."""
        add = options.add_special_tokens
        a0, a1 = window.a_start, window.a_end
        full_a = a0 == 0 and a1 == len(a.ids)
        if add:
            ids = [self.special.cls, *(a.ids if full_a else a.ids[a0:a1]), self.special.sep]
            shift = 1 - a0
        else:
            ids = a.ids[a0:a1]
            shift = -a0
        offsets = None
        if a.offsets is not None:
            offsets = [*((0, 0),) * add, *a.offsets[a0:a1], *((0, 0),) * add]
        n_all = len(a.spans)
        if full_a:
            ent_spans = [(s + shift, e + shift) for s, e in a.spans]
            row = Row(ids, offsets, None, list(a.entity_ids), ent_spans, 0, a.entity_indices, 0)
        else:
            row = Row(ids, offsets, None, [], [], 0, [], 0)
            _keep_entities(row, a, a0, a1, shift)
        row.n_first = len(row.entity_ids)
        if b is not None:
            n_all += len(b.spans)
            row.entity_indices = list(row.entity_indices)
            self._append_second(row, b, window, add)
        max_entities = options.max_entity_length
        if len(row.entity_ids) > max_entities:
            row.entity_ids = row.entity_ids[:max_entities]
            row.entity_spans = row.entity_spans[:max_entities]
            row.entity_indices = row.entity_indices[:max_entities]
            row.n_first = min(row.n_first, max_entities)
        row.n_dropped = n_all - len(row.entity_ids)
        return row

    def _append_second(self, row: Row, b: Segment, window: Window, add_special_tokens: bool) -> None:
        """Append the second text's window (separators, token types, its entities) to ``row``."""
        ids, offsets = row.ids, row.offsets
        if add_special_tokens and self.double_separator:
            ids.append(self.special.sep)
            if offsets is not None:
                offsets.append((0, 0))
        len_first = len(ids)
        b0, b1 = window.b_start, window.b_end
        ids += b.ids[b0:b1]
        if offsets is not None:
            offsets += b.offsets[b0:b1]  # type: ignore[index]
        if add_special_tokens:
            ids.append(self.special.sep)
            if offsets is not None:
                offsets.append((0, 0))
        if not self.double_separator:
            row.token_types = [0] * len_first + [1] * (len(ids) - len_first)
        _keep_entities(row, b, b0, b1, len_first - b0)

    # ------------------------------------------------------------------------------------ padding
    def collate(self, rows: list[Row], has_entities: bool, options: EncodeOptions) -> dict[str, Any]:
        """Pad the rows; NumPy arrays when ``options.as_arrays`` (needs equal lengths after padding), else lists."""
        lengths = [len(r.ids) for r in rows]
        n_ents = [len(r.entity_ids) for r in rows]
        word_len, ent_len = _padded_lengths(lengths, n_ents, options)
        dropped = sum(r.n_dropped for r in rows)
        if dropped and not options.return_overflowing_tokens:
            logger.warning("%d entities were dropped because their mention was truncated away", dropped)
        if word_len is None and options.as_arrays:
            if len(set(lengths)) > 1 or (has_entities and len(set(n_ents)) > 1):
                raise ValueError(
                    "cannot return tensors for examples of different lengths without padding; use padding=True"
                )
            word_len = lengths[0] if rows else 0
            ent_len = n_ents[0] if rows else 0
        if word_len is None:
            return self._collate_lists(rows, has_entities, options)
        import numpy as np

        data = self._pad_words(rows, np.asarray(lengths, dtype=np.int64), word_len, options)
        if has_entities:
            data.update(self._pad_entities(rows, np.asarray(n_ents, dtype=np.int64), ent_len, options))  # type: ignore[arg-type]
        return data

    def _pad_words(self, rows: list[Row], lens: Any, word_len: int, options: EncodeOptions) -> dict[str, Any]:
        import numpy as np

        n_rows = len(rows)
        input_ids, index = _pad_ids([r.ids for r in rows], lens, word_len, self.special.pad)
        data: dict[str, Any] = {"input_ids": input_ids}
        if options.return_attention_mask:
            data["attention_mask"] = _length_mask(lens, word_len)
        if options.return_token_type_ids:
            types = np.zeros((n_rows, word_len), dtype=np.int64)
            for i, r in enumerate(rows):
                if r.token_types is not None:
                    types[i, : len(r.token_types)] = r.token_types
            data["token_type_ids"] = types
        if options.return_offsets_mapping:
            offsets = np.asarray(
                list(chain.from_iterable(r.offsets for r in rows)),  # type: ignore[arg-type]
                dtype=np.int64,
            ).reshape(-1, 2)
            data["offset_mapping"] = _scatter((n_rows, word_len, 2), 0, index, offsets)
        if options.return_length:
            data["length"] = lens
        return data

    def _pad_entities(self, rows: list[Row], elens: Any, ent_len: int, options: EncodeOptions) -> dict[str, Any]:
        import numpy as np

        n_rows = len(rows)
        entity_ids, index = _pad_ids([r.entity_ids for r in rows], elens, ent_len, self.special.entity_pad)
        data: dict[str, Any] = {"entity_ids": entity_ids}
        spans = np.asarray(list(chain.from_iterable(r.entity_spans for r in rows)), dtype=np.int64).reshape(-1, 2)
        arange_m = np.arange(options.max_mention_length)
        pos = spans[:, :1] + arange_m[None, :]
        pos[arange_m[None, :] >= (spans[:, 1:] - spans[:, :1])] = -1
        data["entity_position_ids"] = _scatter((n_rows, ent_len, options.max_mention_length), -1, index, pos)
        if options.return_attention_mask:
            data["entity_attention_mask"] = _length_mask(elens, ent_len)
        if options.return_token_type_ids:
            etypes = np.zeros((n_rows, ent_len), dtype=np.int64)
            if not self.double_separator:
                for i, r in enumerate(rows):
                    etypes[i, r.n_first : len(r.entity_ids)] = 1
            data["entity_token_type_ids"] = etypes
        if options.task == "entity_span_classification":
            data["entity_start_positions"] = _scatter((n_rows, ent_len), 0, index, spans[:, 0])
            data["entity_end_positions"] = _scatter((n_rows, ent_len), 0, index, spans[:, 1] - 1)
        if options.return_overflowing_tokens:
            indices = list(chain.from_iterable(r.entity_indices for r in rows))
            data["entity_indices"] = _scatter((n_rows, ent_len), -1, index, indices)
        return data

    def _collate_lists(self, rows: list[Row], has_entities: bool, options: EncodeOptions) -> dict[str, Any]:
        """Unpadded output as Python lists."""
        data: dict[str, Any] = {"input_ids": [r.ids for r in rows]}
        if options.return_attention_mask:
            data["attention_mask"] = [[1] * len(r.ids) for r in rows]
        if options.return_token_type_ids:
            data["token_type_ids"] = [r.token_types if r.token_types is not None else [0] * len(r.ids) for r in rows]
        if options.return_offsets_mapping:
            data["offset_mapping"] = [r.offsets for r in rows]
        if options.return_length:
            data["length"] = [len(r.ids) for r in rows]
        if not has_entities:
            return data
        data["entity_ids"] = [r.entity_ids for r in rows]
        mention_len = options.max_mention_length
        positions = []
        for r in rows:
            row_pos = []
            for s, e in r.entity_spans:
                p = list(range(s, min(e, s + mention_len)))
                p += [-1] * (mention_len - len(p))
                row_pos.append(p)
            positions.append(row_pos)
        data["entity_position_ids"] = positions
        if options.return_attention_mask:
            data["entity_attention_mask"] = [[1] * len(r.entity_ids) for r in rows]
        if options.return_token_type_ids:
            one = 0 if self.double_separator else 1
            data["entity_token_type_ids"] = [[0] * r.n_first + [one] * (len(r.entity_ids) - r.n_first) for r in rows]
        if options.task == "entity_span_classification":
            data["entity_start_positions"] = [[s for s, _ in r.entity_spans] for r in rows]
            data["entity_end_positions"] = [[e - 1 for _, e in r.entity_spans] for r in rows]
        if options.return_overflowing_tokens:
            data["entity_indices"] = [list(r.entity_indices) for r in rows]
        return data


# ---------------------------------------------------------------------------------------------- helpers
def _split_points(text: str, spans: list[Span] | None) -> list[Span]:
    """``(boundary, split position)`` per span boundary: a space before a boundary goes with the next piece."""
    points = []
    if spans:
        for pos in sorted({p for s in spans for p in s}):
            adj = pos - 1 if pos > 0 and text[pos - 1] == " " else pos
            points.append((pos, adj))
    return points


@dataclass(slots=True)
class _TextBatch:
    """Texts being word-tokenized: their spans, entity ids and split points, and the segments done so far."""

    texts: list[str]
    spans: list[list[Span] | None]
    entity_ids: list[list[int]]
    points: list[list[Span]] = field(init=False)
    out: list[Segment | None] = field(init=False)

    def __post_init__(self) -> None:
        self.points = [_split_points(t, sp) for t, sp in zip(self.texts, self.spans, strict=True)]
        self.out = [None] * len(self.texts)

    def finish(self, k: int, ids: list[int], offsets: list[Span] | None, char_to_tok: dict[int, int]) -> None:
        """Store text ``k``'s segment; ``char_to_tok`` maps each span boundary to its token index."""
        sp = self.spans[k] or []
        token_spans = [(char_to_tok[s], char_to_tok[e]) for s, e in sp]
        self.out[k] = Segment(ids, offsets, token_spans, self.entity_ids[k], list(range(len(sp))))


def _boundary_tokens(offsets: list[Span], word_ids: list[int | None], points: list[Span]) -> dict[int, int] | None:
    """Token index of each boundary in a whole-text encoding; ``None`` when a boundary splits a word."""
    char_to_tok: dict[int, int] = {}
    j = 0
    n_tok = len(offsets)
    for pos, adj in points:
        while j < n_tok and offsets[j][0] < adj:
            j += 1
        if j > 0 and (offsets[j - 1][1] > adj or (j < n_tok and word_ids[j] == word_ids[j - 1])):
            return None
        char_to_tok[pos] = j
    return char_to_tok


@dataclass(slots=True)
class _Pieces:
    """How one text is cut at its boundaries: the start of each piece, and per boundary the pieces before it."""

    starts: list[int]
    marks: dict[int, int]

    @classmethod
    def plan(cls, text: str, points: list[Span], pieces: list[str]) -> _Pieces:
        """Cut ``text`` at ``points``, appending the pieces to ``pieces``."""
        starts: list[int] = []
        marks: dict[int, int] = {}
        cur = 0
        for pos, adj in points:
            if adj != cur:
                pieces.append(text[cur:adj])
                starts.append(cur)
                cur = adj
            marks[pos] = len(starts)
        pieces.append(text[cur:])
        starts.append(cur)
        return cls(starts, marks)


def _longest_first(index: int, len_a: int, len_b: int, remove: int, max_length: int) -> Window:
    """Remove tokens one by one from the longer sequence (ties: from the second), like transformers."""
    a, b = len_a, len_b
    first = min(abs(a - b), remove)
    if a > b:
        a -= first
    else:
        b -= first
    remove -= first
    b -= (remove + 1) // 2
    a -= remove // 2
    if a < 0 or b < 0:
        raise ValueError(f"example {index}: max_length={max_length} is too small for the special tokens")
    return Window(0, a, 0, b)


def _keep_entities(row: Row, seg: Segment, start: int, end: int, shift: int) -> None:
    """Append to ``row`` the entities of ``seg`` inside tokens ``[start, end)``, shifted by ``shift``."""
    for (s, e), eid, k in zip(seg.spans, seg.entity_ids, seg.entity_indices, strict=True):
        if s >= start and e <= end:
            row.entity_spans.append((s + shift, e + shift))
            row.entity_ids.append(eid)
            row.entity_indices.append(k)


def _padded_lengths(lengths: list[int], n_ents: list[int], options: EncodeOptions) -> tuple[int | None, int | None]:
    """Word and entity lengths after padding (``None``: no padding)."""
    max_length, max_entities = options.max_length, options.max_entity_length
    if options.padding == "max_length":
        word_len = max(max_length, *lengths) if lengths else max_length
        ent_len = max(max_entities, *n_ents) if n_ents else max_entities
    elif options.padding == "longest":
        word_len = max(lengths, default=0)
        ent_len = max(n_ents, default=0)
    else:
        return None, None
    multiple = options.pad_to_multiple_of
    if multiple:
        word_len = -(-word_len // multiple) * multiple  # type: ignore[operator]
        ent_len = -(-ent_len // multiple) * multiple
    return word_len, ent_len


def _pad_ids(seqs: list[list[int]], lengths: Any, width: int, fill: int) -> tuple[Any, tuple[Any, Any]]:
    """``seqs`` padded to ``width`` with ``fill`` (int64 array), and the index of the real entries."""
    index = _ragged_index(lengths)
    return _scatter((len(seqs), width), fill, index, list(chain.from_iterable(seqs))), index


def _scatter(shape: tuple[int, ...], fill: int, index: tuple[Any, Any], values: Any) -> Any:
    """An int64 array of ``shape`` filled with ``fill`` and ``values`` at ``index``."""
    import numpy as np

    out = np.full(shape, fill, dtype=np.int64)
    out[index] = values
    return out


def _length_mask(lengths: Any, width: int) -> Any:
    """``1`` for the first ``lengths[i]`` positions of each row of ``width``, ``0`` after."""
    import numpy as np

    return (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)


def _ragged_index(lengths: Any) -> tuple[Any, Any]:
    """Row and column index of every element of rows with the given lengths (NumPy)."""
    import numpy as np

    row_idx = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    col_idx = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    return row_idx, col_idx


# ---------------------------------------------------------------------------------------------- fast BPE
# GPT-2 / RoBERTa pre-tokenization regex restricted to ASCII text (\p{L} = [A-Za-z], \p{N} = [0-9]).
_GPT2_ASCII = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""", re.ASCII)
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e\t\n\r]")


class PyByteLevelBPE:
    """Byte-level BPE for plain ASCII text: the GPT-2 pre-tokenizer in Python plus a word cache.

    Each pre-token is BPE-encoded once by the Rust tokenizer and cached, so tokenizing a sentence costs a
    regex scan and a few dict look-ups instead of a call into Rust per piece.  Only used for texts
    without non-ASCII or control characters and without added-token strings (``<s>``, ``<ent>``, ...);
    other texts go through the Rust tokenizer.  Results are identical (tested on the real data sets).
    """

    MAX_CACHE = 1_000_000

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._cache = _WordCache(tokenizer, self.MAX_CACHE)
        added = sorted((t.content for t in tokenizer.get_added_tokens_decoder().values()), key=len, reverse=True)
        self._added = re.compile("|".join(re.escape(t) for t in added)) if added else None

    @staticmethod
    def applies_to(tokenizer: Tokenizer) -> bool:
        """Whether the tokenizer is a plain byte-level BPE (RoBERTa/GPT-2 style, no normalizer)."""
        spec = json.loads(tokenizer.to_str())
        pre = spec.get("pre_tokenizer") or {}
        model = spec.get("model") or {}
        return (
            spec.get("normalizer") is None
            and pre.get("type") == "ByteLevel"
            and not pre.get("add_prefix_space")
            and pre.get("use_regex", True)
            and model.get("type") == "BPE"
            and not model.get("dropout")
            and not model.get("continuing_subword_prefix")
            and not model.get("end_of_word_suffix")
        )

    def eligible(self, text: str) -> bool:
        """Whether ``text`` can take the Python path."""
        if not text.isascii() or _NOT_PLAIN_ASCII.search(text):
            return False
        return self._added is None or self._added.search(text) is None

    def encode_pieces(
        self, text: str, points: list[Span], need_offsets: bool
    ) -> tuple[list[int], list[Span] | None, dict[int, int]]:
        """Encode ``text`` piecewise, split at the adjusted points; returns ids, offsets, char→token map."""
        cache = self._cache
        ids: list[int] = []
        char_to_tok: dict[int, int] = {}
        if not need_offsets:
            findall = _GPT2_ASCII.findall
            getitem = cache.__getitem__
            cur = 0
            for pos, adj in points:
                if adj != cur:
                    for entry in map(getitem, findall(text, cur, adj)):
                        ids += entry[0]
                    cur = adj
                char_to_tok[pos] = len(ids)
            for entry in map(getitem, findall(text, cur)):
                ids += entry[0]
            return ids, None, char_to_tok
        finditer = _GPT2_ASCII.finditer
        offsets: list[Span] = []
        cur = 0
        for pos, adj in [*points, (None, len(text))]:
            if adj != cur:
                for m in finditer(text, cur, adj):
                    entry = cache[m.group()]
                    ids += entry[0]
                    p = m.start()
                    for n in entry[1]:
                        offsets.append((p, p + n))
                        p += n
                cur = adj
            if pos is not None:
                char_to_tok[pos] = len(ids)
        return ids, offsets, char_to_tok


class _WordCache(dict):
    """``word → (ids, token lengths)``, filled from the Rust tokenizer on a miss."""

    def __init__(self, tokenizer: Tokenizer, max_size: int) -> None:
        super().__init__()
        self._tokenizer = tokenizer
        self._max_size = max_size

    def __missing__(self, word: str) -> tuple[list[int], list[int]]:
        enc = self._tokenizer.encode(word, add_special_tokens=False)
        entry = (enc.ids, [e - s for s, e in enc.offsets])
        if len(self) >= self._max_size:
            self.clear()
        self[word] = entry
        return entry


# ---------------------------------------------------------------------------------------------- fast SentencePiece
# Text the word cache may take: no whitespace but the space, no "▁" (SentencePiece's own space mark).
_NOT_PLAIN_SPM = re.compile(r"[^\S ]|▁")


class PySentencePiece:
    """SentencePiece (XLM-R unigram, as :func:`luke.tokenization._sentencepiece` builds it) with a word cache.

    SentencePiece strips and collapses spaces, puts ``▁`` before every word and — when no piece holds a ``▁``
    after its first character (``split_by_whitespace``, true for XLM-R) — segments every ``▁word``
    independently.  So a piece of text is the concatenation of its space-separated words, each encoded once by
    the Rust tokenizer and cached.  Words whose normalization could reach across a space (NFKC turning a
    character into a space, control/format characters, a leading combining mark) are not cached: their text
    goes to the Rust tokenizer, as does text with other whitespace, ``▁`` or added-token strings.
    """

    MAX_CACHE = 1_000_000

    def __init__(self, tokenizer: Tokenizer, space_ids: frozenset[int]) -> None:
        self._tokenizer = tokenizer
        self._space_ids = space_ids
        self._cache: dict[str, tuple[list[int], list[Span]] | None] = {}
        added = sorted((t.content for t in tokenizer.get_added_tokens_decoder().values()), key=len, reverse=True)
        self._added = re.compile("|".join(re.escape(t) for t in added)) if added else None

    @staticmethod
    def applies_to(tokenizer: Tokenizer) -> bool:
        """Whether the tokenizer is a SentencePiece unigram model converted by ``luke`` whose pieces never
        span a space."""
        spec = json.loads(tokenizer.to_str())
        norm = spec.get("normalizer") or {}
        steps = [n.get("type") for n in norm.get("normalizers", [])]
        patterns = [(n.get("pattern") or {}).get("Regex") or (n.get("pattern") or {}).get("String") for n in
                    norm.get("normalizers", [])]  # fmt: skip
        pre = spec.get("pre_tokenizer") or {}
        model = spec.get("model") or {}
        if steps and steps[0] == "Precompiled":
            steps, patterns = steps[1:], patterns[1:]
        if not (
            steps == ["Replace"] * 4
            and patterns == [r"\A +| +\z", " {2,}", " ", r"\A▁"]
            and pre.get("type") == "Metaspace"
            and pre.get("prepend_scheme") == "always"
            and model.get("type") == "Unigram"
        ):
            return False
        return not any("▁" in piece[1:] for piece, _ in model.get("vocab", []))

    def eligible(self, text: str) -> bool:
        """Whether ``text`` can take the Python path."""
        if _NOT_PLAIN_SPM.search(text):
            return False
        return self._added is None or self._added.search(text) is None

    def _word(self, word: str) -> tuple[list[int], list[Span]] | None:
        """``(ids, offsets within the word)`` of ``▁word``, or ``None`` when the word is not cacheable."""
        import unicodedata

        normalized = unicodedata.normalize("NFKC", word)
        if (
            not normalized
            or any(c.isspace() for c in normalized)
            or unicodedata.category(word[0]).startswith("M")
            or any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp") for c in word)
        ):
            entry = None
        else:
            enc = self._tokenizer.encode(word, add_special_tokens=False)
            space = self._space_ids
            entry = (
                enc.ids,
                [(s, s) if i in space else (s, e) for i, (s, e) in zip(enc.ids, enc.offsets, strict=True)],
            )
        if len(self._cache) >= self.MAX_CACHE:
            self._cache.clear()
        self._cache[word] = entry
        return entry

    def encode_pieces(
        self, text: str, points: list[Span], need_offsets: bool
    ) -> tuple[list[int], list[Span] | None, dict[int, int]] | None:
        """Encode ``text`` piecewise, split at the adjusted points; ids, offsets, char→token map (``None``:
        a word of ``text`` needs the Rust tokenizer)."""
        cache = self._cache
        ids: list[int] = []
        offsets: list[Span] | None = [] if need_offsets else None
        char_to_tok: dict[int, int] = {}
        cur = 0
        for pos, adj in [*points, (None, len(text))]:
            if adj != cur:
                if offsets is None:
                    for word in text[cur:adj].split():
                        entry = cache[word] if word in cache else self._word(word)
                        if entry is None:
                            return None
                        ids += entry[0]
                else:
                    for m in _WORD.finditer(text, cur, adj):
                        word = m.group()
                        entry = cache[word] if word in cache else self._word(word)
                        if entry is None:
                            return None
                        ids += entry[0]
                        p = m.start()
                        offsets += [(p + s, p + e) for s, e in entry[1]]
                cur = adj
            if pos is not None:
                char_to_tok[pos] = len(ids)
        return ids, offsets, char_to_tok


_WORD = re.compile(r"[^ ]+")
