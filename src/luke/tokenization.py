"""A fast LUKE tokenizer on top of the Rust ``tokenizers`` library.

:class:`LukeTokenizer` mirrors the call signature of ``transformers.LukeTokenizer`` (same argument
names, same output keys, same ids) but

* works with any fast word tokenizer: RoBERTa byte-level BPE (``vocab.json`` + ``merges.txt``), BERT
  WordPiece (``vocab.txt``) or any ``tokenizer.json`` (e.g. XLM-R SentencePiece for mLUKE);
* returns character offsets (``return_offsets_mapping=True``) in the original text;
* truncates and pads words *and* entities correctly in batches (``max_length``, ``max_entity_length``,
  ``max_mention_length``), dropping entities whose mention was truncated away;
* splits long documents into sliding windows (``return_overflowing_tokens=True``, ``stride``) where every
  window carries exactly the entities inside it, with re-based positions;
* encodes a whole batch with one call into the Rust tokenizer.

Word/entity alignment follows ``transformers``: the text is split at every span boundary (a space right
before a boundary belongs to the following piece) and every piece is tokenized separately, so entity
spans always fall on token boundaries.  When every boundary already is a pre-token boundary of the whole
text (the usual case), the whole text is tokenized once, which gives identical tokens faster.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from luke.entity_vocab import EntityVocab

__all__ = ["LukeTokenizer", "TASKS"]

logger = logging.getLogger(__name__)

TASKS = ("entity_classification", "entity_pair_classification", "entity_span_classification")
_TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
_PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
DEFAULT_MODEL_MAX_LENGTH = 512

# One example after word tokenization: per segment (ids, offsets, entity token spans, entity ids,
# original entity indices).
_Segment = tuple[list[int], list[tuple[int, int]] | None, list[tuple[int, int]], list[int], list[int]]
# One encoded window: ids, offsets, token types, entity ids, entity token spans (with special-token shift,
# end exclusive), number of entities of the first text, original entity indices, number of dropped entities.
_Row = tuple[
    list[int], list[tuple[int, int]] | None, list[int] | None, list[int], list[tuple[int, int]], int, list[int], int
]


def _normalize_strategy(value: bool | str | None, name: str, on: str, off: str, allowed: Sequence[str]) -> str:
    """``True``/``False``/``None``/enum/string -> one of ``allowed`` (``on`` for True, ``off`` for False/None)."""
    if value is True:
        return on
    if value is False or value is None:
        return off
    value = str(getattr(value, "value", value))
    if value not in allowed:
        raise ValueError(f"{name} must be True, False or one of {allowed}, got {value!r}")
    return value


def _normalize_padding(padding: bool | str) -> str:
    return _normalize_strategy(padding, "padding", "longest", "do_not_pad", _PADDING_STRATEGIES)


def _normalize_truncation(truncation: bool | str | None) -> str:
    return _normalize_strategy(truncation, "truncation", "longest_first", "do_not_truncate", _TRUNCATION_STRATEGIES)


class LukeTokenizer:
    """Fast LUKE tokenizer (words via Rust ``tokenizers``, entities via :class:`EntityVocab`).

    Build it with :meth:`from_pretrained` (a folder written by :meth:`save_pretrained` or by
    ``transformers.LukeTokenizer``, or a plain BERT/RoBERTa tokenizer folder plus ``entity_vocab=``),
    :meth:`from_files`, or directly from a ``tokenizers.Tokenizer``.

    Args:
        tokenizer: the word tokenizer (its padding/truncation settings are switched off; special tokens
            are added by this class).
        entity_vocab: the entity vocabulary.
        task: default task (``None`` or one of :data:`TASKS`); can be overridden per call.
        max_entity_length: default entity sequence length (``transformers`` uses 32; the
            ``entity_classification`` / ``entity_pair_classification`` tasks use 1 / 2).
        max_mention_length: length of each entity's position-id row (−1 padded).
        cls_token, sep_token, pad_token, unk_token, mask_token: word special tokens; inferred from the
            vocabulary (``<s>``/``</s>``/``<pad>`` or ``[CLS]``/``[SEP]``/``[PAD]``) when omitted.
        entity_1_token, entity_2_token: the marker tokens, added to the word vocabulary as special tokens.
        double_separator: ``<s> A </s></s> B </s>`` (RoBERTa) instead of ``[CLS] A [SEP] B [SEP]`` with
            token type 1 for B (BERT); inferred when omitted.
        model_max_length: the ``max_length`` used when truncating without an explicit ``max_length``.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        entity_vocab: EntityVocab,
        *,
        task: str | None = None,
        max_entity_length: int = 32,
        max_mention_length: int = 30,
        cls_token: str | None = None,
        sep_token: str | None = None,
        pad_token: str | None = None,
        unk_token: str | None = None,
        mask_token: str | None = None,
        entity_1_token: str = "<ent>",
        entity_2_token: str = "<ent2>",
        double_separator: bool | None = None,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        entity_unk_token: str = "[UNK]",
        entity_pad_token: str = "[PAD]",
        entity_mask_token: str = "[MASK]",
        entity_mask2_token: str = "[MASK2]",
    ) -> None:
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be None or one of {TASKS}, got {task!r}")
        if not isinstance(entity_vocab, EntityVocab):
            raise TypeError(f"entity_vocab must be an EntityVocab, got {type(entity_vocab).__name__}")
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.entity_vocab = entity_vocab
        self.task = task
        self._max_entity_length = int(max_entity_length)
        self.max_mention_length = int(max_mention_length)
        self.model_max_length = int(model_max_length)

        vocab = tokenizer.get_vocab(with_added_tokens=True)
        roberta_style = "<s>" in vocab and "</s>" in vocab
        defaults = (
            ("<s>", "</s>", "<pad>", "<unk>", "<mask>")
            if roberta_style
            else ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")
        )
        names = [cls_token, sep_token, pad_token, unk_token, mask_token]
        names = [n if n is not None else d for n, d in zip(names, defaults, strict=True)]
        self.cls_token, self.sep_token, self.pad_token, self.unk_token, self.mask_token = names
        for name in (self.cls_token, self.sep_token, self.pad_token):
            if name not in vocab:
                raise ValueError(f"special token {name!r} is not in the word vocabulary")
        self.double_separator = roberta_style if double_separator is None else bool(double_separator)

        self.entity_1_token, self.entity_2_token = entity_1_token, entity_2_token
        missing = [t for t in (entity_1_token, entity_2_token) if t not in vocab]
        if missing:
            tokenizer.add_special_tokens(
                [AddedToken(t, single_word=False, lstrip=False, rstrip=False, normalized=False) for t in missing]
            )
        self.cls_token_id = tokenizer.token_to_id(self.cls_token)
        self.sep_token_id = tokenizer.token_to_id(self.sep_token)
        self.pad_token_id = tokenizer.token_to_id(self.pad_token)
        self.entity_1_token_id = tokenizer.token_to_id(entity_1_token)
        self.entity_2_token_id = tokenizer.token_to_id(entity_2_token)

        self.entity_unk_token, self.entity_pad_token = entity_unk_token, entity_pad_token
        self.entity_mask_token, self.entity_mask2_token = entity_mask_token, entity_mask2_token
        self.entity_unk_token_id = self._entity_special(entity_unk_token)
        self.entity_pad_token_id = self._entity_special(entity_pad_token)
        self.entity_mask_token_id = self._entity_special(entity_mask_token)
        self.entity_mask2_token_id = entity_vocab.get_id(entity_mask2_token)

        pre = json.loads(tokenizer.to_str()).get("pre_tokenizer") or {}
        pre_types = {pre.get("type")} | {p.get("type") for p in pre.get("pretokenizers", [])}
        # Whole-text tokenization equals piecewise tokenization at pre-token boundaries for these.
        self._whole_text_ok = bool(pre_types & {"ByteLevel", "BertPreTokenizer"}) and pre_types <= {
            "ByteLevel",
            "BertPreTokenizer",
            "Sequence",
        }
        self._byte_level = "ByteLevel" in pre_types
        self._py_bpe = _PyByteLevelBPE(tokenizer) if _PyByteLevelBPE.applies_to(tokenizer) else None

    def _entity_special(self, name: str) -> int:
        entity_id = self.entity_vocab.get_id(name)
        if entity_id is None:
            raise ValueError(f"the entity vocabulary has no special entity {name!r} (add it with vocab.add({name!r}))")
        return entity_id

    # ------------------------------------------------------------------------------------ properties
    @property
    def max_entity_length(self) -> int:
        """Default entity length for :attr:`task` (1 / 2 for the classification tasks, like transformers)."""
        return self._task_max_entity_length(self.task)

    def _task_max_entity_length(self, task: str | None) -> int:
        if task == "entity_classification":
            return 1
        if task == "entity_pair_classification":
            return 2
        return self._max_entity_length

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tokenizer

    def __len__(self) -> int:
        """Word vocabulary size including added tokens (``<ent>``, ``<ent2>``)."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        """The word vocabulary including added tokens."""
        return self._tokenizer.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Word token(s) → id(s) (``None`` for unknown tokens)."""
        if isinstance(tokens, str):
            return self._tokenizer.token_to_id(tokens)
        return [self._tokenizer.token_to_id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Word id(s) → token(s)."""
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        return [self._tokenizer.id_to_token(int(i)) for i in ids]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Decode word ids to text."""
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def __repr__(self) -> str:
        return (
            f"LukeTokenizer(vocab_size={len(self)}, entity_vocab_size={len(self.entity_vocab)}, task={self.task!r}, "
            f"max_entity_length={self.max_entity_length}, max_mention_length={self.max_mention_length})"
        )

    # ------------------------------------------------------------------------------------ loading / saving
    @classmethod
    def from_files(
        cls,
        *,
        entity_vocab: str | os.PathLike[str] | EntityVocab | Mapping[str, int],
        vocab: str | os.PathLike[str] | None = None,
        merges: str | os.PathLike[str] | None = None,
        vocab_txt: str | os.PathLike[str] | None = None,
        tokenizer_json: str | os.PathLike[str] | None = None,
        do_lower_case: bool | None = None,
        **kwargs: Any,
    ) -> LukeTokenizer:
        """Build from word-vocabulary files: ``vocab`` + ``merges`` (byte-level BPE), ``vocab_txt``
        (WordPiece; ``do_lower_case`` guessed from the vocabulary when omitted) or ``tokenizer_json``."""
        if tokenizer_json is not None:
            backend = Tokenizer.from_file(str(tokenizer_json))
        elif vocab is not None and merges is not None:
            backend = _byte_level_bpe(Path(vocab), Path(merges))
        elif vocab_txt is not None:
            backend = _wordpiece(Path(vocab_txt), do_lower_case)
        else:
            raise ValueError("give tokenizer_json, vocab + merges (BPE) or vocab_txt (WordPiece)")
        return cls(backend, _as_entity_vocab(entity_vocab), **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike[str],
        *,
        entity_vocab: str | os.PathLike[str] | EntityVocab | Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> LukeTokenizer:
        """Load from a local folder.

        Accepted folders: one written by :meth:`save_pretrained` or ``transformers.LukeTokenizer``
        (``tokenizer.json`` + ``tokenizer_config.json`` [+ ``entity_vocab.json``]), an older transformers
        LUKE folder (``vocab.json``, ``merges.txt``, ``entity_vocab.json``), or any BERT/RoBERTa word
        tokenizer folder (``tokenizer.json``, ``vocab.json`` + ``merges.txt`` or ``vocab.txt``) together
        with ``entity_vocab=`` (a path, an :class:`EntityVocab` or a ``{title: id}`` dict).  Keyword
        arguments override the saved settings.  The Hugging Face Hub is never contacted.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a local folder (this tokenizer never downloads from the Hub)")
        config: dict[str, Any] = {}
        if (folder / "tokenizer_config.json").exists():
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        if (folder / "tokenizer.json").exists():
            backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        elif (folder / "vocab.json").exists() and (folder / "merges.txt").exists():
            backend = _byte_level_bpe(folder / "vocab.json", folder / "merges.txt")
        elif (folder / "vocab.txt").exists():
            backend = _wordpiece(folder / "vocab.txt", config.get("do_lower_case"))
        else:
            raise ValueError(f"{folder}: no tokenizer.json, vocab.json + merges.txt or vocab.txt found")

        if entity_vocab is None:
            if isinstance(config.get("entity_vocab"), dict):
                entity_vocab = config["entity_vocab"]
            else:
                for name in ("entity_vocab.json", "entity_vocab.jsonl", "entity_vocab.tsv"):
                    if (folder / name).exists():
                        entity_vocab = folder / name
                        break
        if entity_vocab is None:
            raise ValueError(
                f"{folder}: no entity vocabulary found (entity_vocab.json/.jsonl/.tsv or 'entity_vocab' in "
                "tokenizer_config.json); pass entity_vocab=path_or_EntityVocab"
            )

        settings: dict[str, Any] = {}
        for key in (
            "task",
            "max_entity_length",
            "max_mention_length",
            "cls_token",
            "sep_token",
            "pad_token",
            "unk_token",
            "mask_token",
            "entity_unk_token",
            "entity_pad_token",
            "entity_mask_token",
            "entity_mask2_token",
            "double_separator",
        ):
            value = config.get(key)
            if isinstance(value, dict):  # serialized AddedToken
                value = value.get("content")
            if value is not None:
                settings[key] = value
        for key, legacy in (("entity_1_token", "entity_token_1"), ("entity_2_token", "entity_token_2")):
            value = config.get(key, config.get(legacy))
            if isinstance(value, dict):
                value = value.get("content")
            if value is not None:
                settings[key] = value
        if "double_separator" not in settings and config.get("special_tokens_pattern") == "cls_double_sep":
            settings["double_separator"] = True
        max_len = config.get("model_max_length")
        if isinstance(max_len, int) and 0 < max_len < 1_000_000:
            settings["model_max_length"] = max_len
        settings.update(kwargs)
        return cls(backend, _as_entity_vocab(entity_vocab), **settings)

    def save_pretrained(self, folder: str | os.PathLike[str]) -> list[str]:
        """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``entity_vocab.json``.

        The folder loads with :meth:`from_pretrained` and (for byte-level BPE vocabularies) with
        ``transformers.LukeTokenizer.from_pretrained``.  Returns the written file paths.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        backend = Tokenizer.from_str(self._tokenizer.to_str())
        if self.double_separator:
            backend.post_processor = processors.RobertaProcessing(
                (self.sep_token, self.sep_token_id), (self.cls_token, self.cls_token_id), trim_offsets=True
            )
        else:
            backend.post_processor = processors.BertProcessing(
                (self.sep_token, self.sep_token_id), (self.cls_token, self.cls_token_id)
            )
        backend.save(str(folder / "tokenizer.json"))
        self.entity_vocab.save(folder / "entity_vocab.json")
        config: dict[str, Any] = {
            "tokenizer_class": "LukeTokenizer",
            "backend": "tokenizers",
            "task": self.task,
            "max_entity_length": self._max_entity_length,
            "max_mention_length": self.max_mention_length,
            "model_max_length": self.model_max_length,
            "bos_token": self.cls_token,
            "eos_token": self.sep_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "mask_token": self.mask_token,
            "entity_1_token": self.entity_1_token,
            "entity_2_token": self.entity_2_token,
            "extra_special_tokens": [self.entity_1_token, self.entity_2_token],
            "entity_unk_token": self.entity_unk_token,
            "entity_pad_token": self.entity_pad_token,
            "entity_mask_token": self.entity_mask_token,
            "entity_mask2_token": self.entity_mask2_token,
            "add_prefix_space": False,
            "double_separator": self.double_separator,
            "special_tokens_pattern": "cls_double_sep" if self.double_separator else "cls_sep",
            "token_type_ids_pattern": "all_zeros" if self.double_separator else "bert_style",
        }
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return [str(folder / n) for n in ("tokenizer.json", "tokenizer_config.json", "entity_vocab.json")]

    # ------------------------------------------------------------------------------------ encoding
    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        entity_spans: Sequence[tuple[int, int]] | Sequence[Sequence[tuple[int, int]]] | None = None,
        entity_spans_pair: Sequence[tuple[int, int]] | Sequence[Sequence[tuple[int, int]]] | None = None,
        entities: Sequence[Any] | None = None,
        entities_pair: Sequence[Any] | None = None,
        *,
        task: str | None = ...,  # type: ignore[assignment]
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        max_entity_length: int | None = None,
        max_mention_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        padding_side: str = "right",
        return_tensors: str | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        return_offsets_mapping: bool = False,
        return_overflowing_tokens: bool = False,
        return_length: bool = False,
        entity_language: str | None = None,
    ):
        """Tokenize one example (``text`` a string) or a batch (``text`` a list of strings).

        Args:
            text, text_pair: the text(s) and optional second text(s).
            entity_spans, entity_spans_pair: character spans ``(start, end)`` (end exclusive) of the
                mentions in ``text`` / ``text_pair`` (a list of lists for a batch).
            entities, entities_pair: the entity of each span: a title, a ``(title, language)`` pair, or
                ``None`` for ``[MASK]``; unknown titles give ``[UNK]``.  Omitted: ``[MASK]`` for every
                span.  Ignored by the task modes (which use ``[MASK]``/``[MASK2]``, like transformers).
            task: override the tokenizer's task for this call.
            padding: ``True``/``"longest"`` (longest in the batch, words and entities),
                ``"max_length"`` (``max_length`` words, ``max_entity_length`` entities) or ``False``.
            truncation: ``True``/``"longest_first"``, ``"only_first"``, ``"only_second"`` or ``False``.
                Entities whose mention no longer fits are dropped; extra entities beyond
                ``max_entity_length`` are dropped from the end.
            max_length: maximum number of word tokens including special tokens (defaults to
                :attr:`model_max_length` when truncating).
            max_entity_length: maximum number of entities (default: :attr:`max_entity_length`).
            max_mention_length: width of ``entity_position_ids`` rows (default: :attr:`max_mention_length`).
            stride: with ``return_overflowing_tokens``, the number of tokens shared by consecutive windows.
            return_overflowing_tokens: split long inputs into windows of ``max_length`` tokens; adds
                ``overflow_to_sample_mapping`` (window → example) and ``entity_indices`` (window entity →
                index of its span in the example, −1 for padding).
            return_offsets_mapping: add ``offset_mapping`` (character offsets in the text each token came
                from; ``(0, 0)`` for special tokens, zero-width for ``<ent>``/``<ent2>`` markers).
            return_tensors: ``"pt"`` (PyTorch), ``"np"`` (NumPy) or ``None`` (lists).
            entity_language: language used to look up entity titles given as plain strings.

        Returns:
            a ``transformers.BatchEncoding`` with ``input_ids``, ``attention_mask``, ``token_type_ids``,
            and, when entity spans are given, ``entity_ids``, ``entity_position_ids``,
            ``entity_attention_mask``, ``entity_token_type_ids`` (+ ``entity_start_positions`` /
            ``entity_end_positions`` for ``entity_span_classification``).

        Raises:
            ValueError: on bad input, naming the example index and the problem.
        """
        # The batch allocates many small lists; the cyclic GC would rescan them repeatedly (no cycles here).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._call(
                text,
                text_pair,
                entity_spans,
                entity_spans_pair,
                entities,
                entities_pair,
                task=task,
                add_special_tokens=add_special_tokens,
                padding=padding,
                truncation=truncation,
                max_length=max_length,
                max_entity_length=max_entity_length,
                max_mention_length=max_mention_length,
                stride=stride,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_tensors=return_tensors,
                return_token_type_ids=return_token_type_ids,
                return_attention_mask=return_attention_mask,
                return_offsets_mapping=return_offsets_mapping,
                return_overflowing_tokens=return_overflowing_tokens,
                return_length=return_length,
                entity_language=entity_language,
            )
        finally:
            if gc_was_enabled:
                gc.enable()

    def _call(
        self,
        text,
        text_pair,
        entity_spans,
        entity_spans_pair,
        entities,
        entities_pair,
        *,
        task,
        add_special_tokens,
        padding,
        truncation,
        max_length,
        max_entity_length,
        max_mention_length,
        stride,
        pad_to_multiple_of,
        padding_side,
        return_tensors,
        return_token_type_ids,
        return_attention_mask,
        return_offsets_mapping,
        return_overflowing_tokens,
        return_length,
        entity_language,
    ):
        from transformers import BatchEncoding

        if task is ...:
            task = self.task
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be None or one of {TASKS}, got {task!r}")
        if padding_side != "right":
            raise ValueError("only padding_side='right' is supported (entity positions index the word sequence)")
        is_batch = isinstance(text, list | tuple)
        if is_batch:
            texts = list(text)
            n = len(texts)
            pairs = _batch_arg(text_pair, n, "text_pair")
            spans = _batch_arg(entity_spans, n, "entity_spans")
            spans_pair = _batch_arg(entity_spans_pair, n, "entity_spans_pair")
            ents = _batch_arg(entities, n, "entities")
            ents_pair = _batch_arg(entities_pair, n, "entities_pair")
        elif isinstance(text, str):
            texts, pairs = [text], [text_pair]
            spans, spans_pair = [entity_spans], [entity_spans_pair]
            ents, ents_pair = [entities], [entities_pair]
            n = 1
        else:
            raise ValueError(f"text must be a string or a list of strings, got {type(text).__name__}")

        padding_strategy = _normalize_padding(padding)
        truncation_strategy = _normalize_truncation(truncation)
        if return_overflowing_tokens and truncation_strategy == "do_not_truncate":
            truncation_strategy = "longest_first"
        if truncation_strategy != "do_not_truncate" and max_length is None:
            max_length = self.model_max_length
        if padding_strategy == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        if max_entity_length is None:
            max_entity_length = self._task_max_entity_length(task)
        mention_len = self.max_mention_length if max_mention_length is None else int(max_mention_length)
        if mention_len < 1:
            raise ValueError(f"max_mention_length must be >= 1, got {mention_len}")
        if stride < 0:
            raise ValueError(f"stride must be >= 0, got {stride}")
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        if task is not None:
            ents = [None] * n
            ents_pair = [None] * n
            if any(s is not None for s in spans_pair):
                raise ValueError(f"task {task!r} takes entity spans of the first text only (entity_spans)")

        # ---- validation and entity ids
        has_entities = any(s is not None for s in spans) or any(s is not None for s in spans_pair)
        if task is not None and not has_entities:
            raise ValueError(f"task {task!r} needs entity_spans")
        first_spans: list[list[tuple[int, int]] | None] = []
        second_spans: list[list[tuple[int, int]] | None] = []
        first_ids: list[list[int]] = []
        second_ids: list[list[int]] = []
        for i in range(n):
            t = texts[i]
            if not isinstance(t, str):
                raise ValueError(f"example {i}: text must be a string, got {type(t).__name__}")
            p = pairs[i]
            if p is not None and not isinstance(p, str):
                raise ValueError(f"example {i}: text_pair must be a string, got {type(p).__name__}")
            s1 = _check_spans(spans[i], t, i, "entity_spans")
            if task is not None:
                _check_task_spans(task, s1, i)
            s2 = None
            if spans_pair[i] is not None:
                if p is None:
                    raise ValueError(f"example {i}: entity_spans_pair given without text_pair")
                s2 = _check_spans(spans_pair[i], p, i, "entity_spans_pair")
            first_spans.append(s1)
            second_spans.append(s2)
            first_ids.append(self._entity_ids(task, s1, ents[i], i, "entities", entity_language))
            second_ids.append(self._entity_ids(None, s2, ents_pair[i], i, "entities_pair", entity_language))

        # ---- word tokenization (one Rust batch call, plus a second one for the rare fallback pieces)
        seg1 = self._tokenize_segments(texts, first_spans, first_ids, return_offsets_mapping)
        seg2: list[_Segment | None] = [None] * n
        pair_idx = [i for i in range(n) if pairs[i] is not None]
        if pair_idx:
            encoded = self._tokenize_segments(
                [pairs[i] for i in pair_idx],
                [second_spans[i] for i in pair_idx],
                [second_ids[i] for i in pair_idx],
                return_offsets_mapping,
            )
            for i, seg in zip(pair_idx, encoded, strict=True):
                seg2[i] = seg
        if task in ("entity_classification", "entity_pair_classification"):
            seg1 = [self._insert_markers(task, seg) for seg in seg1]

        # ---- windows / truncation, special tokens
        n_special_single = 2 if add_special_tokens else 0
        n_special_pair = (4 if self.double_separator else 3) if add_special_tokens else 0
        rows: list[_Row] = []
        sample_map: list[int] = []
        for i in range(n):
            a, b = seg1[i], seg2[i]
            views = self._views(
                i,
                len(a[0]),
                None if b is None else len(b[0]),
                n_special_pair if b is not None else n_special_single,
                truncation_strategy,
                max_length,
                stride,
                return_overflowing_tokens,
            )
            for view in views:
                rows.append(self._assemble(a, b, view, add_special_tokens, max_entity_length))
                sample_map.append(i)

        # ---- padding and output
        data = self._collate(
            rows,
            has_entities=has_entities,
            task=task,
            padding=padding_strategy,
            max_length=max_length,
            max_entity_length=max_entity_length,
            mention_len=mention_len,
            pad_to_multiple_of=pad_to_multiple_of,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
            return_overflowing=return_overflowing_tokens,
            as_arrays=return_tensors is not None or padding_strategy != "do_not_pad",
        )
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_map
        batched_out = is_batch or return_overflowing_tokens or return_tensors is not None
        if return_tensors is None:
            data = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in data.items()}
            if "offset_mapping" in data:
                data["offset_mapping"] = [[tuple(o) for o in row] for row in data["offset_mapping"]]
        elif return_tensors == "pt":
            import numpy as np
            import torch

            data = {k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in data.items()}
        else:
            import numpy as np

            data = {k: np.asarray(v, dtype=np.int64) for k, v in data.items()}
        if not batched_out:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data)

    # ---------------------------------------------------------------- step helpers
    def _entity_ids(
        self,
        task: str | None,
        spans: list[tuple[int, int]] | None,
        entities: Sequence[Any] | None,
        index: int,
        name: str,
        language: str | None,
    ) -> list[int]:
        if spans is None:
            if entities is not None:
                raise ValueError(f"example {index}: {name} given without entity spans")
            return []
        if task == "entity_pair_classification":
            if self.entity_mask2_token_id is None:
                raise ValueError(
                    "entity_pair_classification needs a [MASK2] entity; the entity vocabulary has none "
                    "(add it with tokenizer.entity_vocab.add('[MASK2]') before building the tokenizer)"
                )
            return [self.entity_mask_token_id, self.entity_mask2_token_id]
        if task is not None or entities is None:
            return [self.entity_mask_token_id] * len(spans)
        if isinstance(entities, str) or len(entities) != len(spans):
            got = "a string" if isinstance(entities, str) else f"{len(entities)} entities"
            raise ValueError(f"example {index}: {name} must have one entry per span ({len(spans)} spans), got {got}")
        out = []
        vocab = self.entity_vocab
        for e in entities:
            if e is None:
                out.append(self.entity_mask_token_id)
            elif isinstance(e, str):
                out.append(vocab.get_id(e, language, self.entity_unk_token_id))
            elif isinstance(e, tuple | list) and len(e) == 2:
                out.append(vocab.get_id(e[0], e[1], self.entity_unk_token_id))
            else:
                raise ValueError(f"example {index}: {name} entries must be titles or (title, language), got {e!r}")
        return out

    def _tokenize_segments(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]] | None],
        entity_ids: list[list[int]],
        need_offsets: bool,
    ) -> list[_Segment]:
        """Word-tokenize texts so that span boundaries are token boundaries (see the module docstring)."""
        out: list[_Segment | None] = [None] * len(texts)
        split_points: list[list[tuple[int, int]]] = []
        for t, sp in zip(texts, spans, strict=True):
            points = []
            if sp:
                for pos in sorted({p for s in sp for p in s}):
                    adj = pos - 1 if pos > 0 and t[pos - 1] == " " else pos
                    points.append((pos, adj))
            split_points.append(points)

        rust: list[int] = []
        py = self._py_bpe
        for k, t in enumerate(texts):
            if py is not None and py.eligible(t):
                ids, offsets, char_to_tok = py.encode_pieces(t, split_points[k], need_offsets)
                sp = spans[k] or []
                token_spans = [(char_to_tok[s], char_to_tok[e]) for s, e in sp]
                if offsets is not None:
                    offsets = self._trim(t, offsets, 0)
                out[k] = (ids, offsets, token_spans, entity_ids[k], list(range(len(sp))))
            else:
                rust.append(k)
        if rust:
            self._tokenize_rust(texts, spans, entity_ids, split_points, rust, out)
            if not need_offsets:
                for k in rust:
                    out[k] = (out[k][0], None, *out[k][2:])  # type: ignore[index]
        return out  # type: ignore[return-value]

    def _tokenize_rust(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]] | None],
        entity_ids: list[list[int]],
        split_points: list[list[tuple[int, int]]],
        todo: list[int],
        out: list[_Segment | None],
    ) -> None:
        tok = self._tokenizer
        slow: list[int] = []
        if self._whole_text_ok:
            encodings = tok.encode_batch([texts[k] for k in todo], add_special_tokens=False)
            for k, enc in zip(todo, encodings, strict=True):
                ids = enc.ids
                offsets = enc.offsets
                points = split_points[k]
                sp = spans[k] or []
                if not points:
                    out[k] = (ids, self._trim(texts[k], offsets, 0), [], entity_ids[k], [])
                    continue
                word_ids = enc.word_ids
                char_to_tok: dict[int, int] = {}
                ok = True
                j = 0
                n_tok = len(ids)
                for pos, adj in points:
                    while j < n_tok and offsets[j][0] < adj:
                        j += 1
                    if j > 0 and (offsets[j - 1][1] > adj or (j < n_tok and word_ids[j] == word_ids[j - 1])):
                        ok = False
                        break
                    char_to_tok[pos] = j
                if not ok:
                    slow.append(k)
                    continue
                token_spans = [(char_to_tok[s], char_to_tok[e]) for s, e in sp]
                out[k] = (ids, self._trim(texts[k], offsets, 0), token_spans, entity_ids[k], list(range(len(sp))))
        else:
            slow = list(todo)
        if not slow:
            return
        pieces: list[str] = []
        plan = []
        for k in slow:
            t = texts[k]
            cur = 0
            piece_plan: list[Any] = []
            for pos, adj in split_points[k]:
                if adj != cur:
                    pieces.append(t[cur:adj])
                    piece_plan.append(cur)
                    cur = adj
                piece_plan.append(("mark", pos))
            pieces.append(t[cur:])
            piece_plan.append(cur)
            plan.append(piece_plan)
        encodings = tok.encode_batch(pieces, add_special_tokens=False)
        e_iter = iter(encodings)
        for k, piece_plan in zip(slow, plan, strict=True):
            ids: list[int] = []
            offsets: list[tuple[int, int]] = []
            char_to_tok = {}
            for item in piece_plan:
                if isinstance(item, tuple):
                    char_to_tok[item[1]] = len(ids)
                    continue
                enc = next(e_iter)
                ids.extend(enc.ids)
                offsets.extend(self._trim(texts[k], enc.offsets, item))
            sp = spans[k] or []
            token_spans = [(char_to_tok[s], char_to_tok[e]) for s, e in sp]
            out[k] = (ids, offsets, token_spans, entity_ids[k], list(range(len(sp))))

    def _trim(self, text: str, offsets: list[tuple[int, int]], shift: int) -> list[tuple[int, int]]:
        """Shift offsets into the full text and drop leading spaces from byte-level tokens (``ĠLos``)."""
        if not self._byte_level:
            return offsets if shift == 0 else [(s + shift, e + shift) for s, e in offsets]
        out = []
        for s, e in offsets:
            s += shift
            e += shift
            while s < e and text[s] == " ":
                s += 1
            out.append((s, e))
        return out

    def _insert_markers(self, task: str, seg: _Segment) -> _Segment:
        """Insert ``<ent>`` (and ``<ent2>``) around the task spans, as transformers does."""
        ids, offsets, spans, ent_ids, ent_idx = seg
        markers = (self.entity_1_token_id, self.entity_2_token_id)
        # At one token position: closing markers of non-empty spans, then empty spans (open, close), then
        # opening markers of non-empty spans.
        events = []
        for k, (s, e) in enumerate(spans):
            empty = s == e
            events.append((s, 1 if empty else 3, True, k))
            events.append((e, 2 if empty else 0, False, k))
        events.sort()
        new_ids: list[int] = []
        new_offsets: list[tuple[int, int]] | None = None if offsets is None else []
        new_spans = [[0, 0] for _ in spans]
        cur = 0
        n_ids = len(ids)
        for pos, _, is_open, k in events:
            new_ids += ids[cur:pos]
            if new_offsets is not None:
                new_offsets += offsets[cur:pos]
                if is_open and pos < n_ids:
                    char = offsets[pos][0]
                else:
                    char = offsets[pos - 1][1] if pos > 0 else 0
                new_offsets.append((char, char))
            cur = pos
            if is_open:
                new_spans[k][0] = len(new_ids)
            new_ids.append(markers[k])
            if not is_open:
                new_spans[k][1] = len(new_ids)
        new_ids += ids[cur:]
        if new_offsets is not None:
            new_offsets += offsets[cur:]
        return new_ids, new_offsets, [(s, e) for s, e in new_spans], ent_ids, ent_idx

    def _views(
        self,
        index: int,
        len_a: int,
        len_b: int | None,
        n_special: int,
        truncation: str,
        max_length: int | None,
        stride: int,
        overflow: bool,
    ) -> list[tuple[int, int, int, int]]:
        """Token windows ``(a_start, a_end, b_start, b_end)`` of one example."""
        lb = 0 if len_b is None else len_b
        total = len_a + lb + n_special
        if truncation == "do_not_truncate" or max_length is None or total <= max_length:
            return [(0, len_a, 0, lb)]
        budget = max_length - n_special
        if len_b is not None and truncation == "longest_first":
            if overflow:
                raise ValueError(
                    f"example {index}: return_overflowing_tokens with a text pair needs truncation='only_first' or "
                    "'only_second' (which text to split into windows)"
                )
            # remove tokens one by one from the longer sequence (ties: from the second), like transformers
            remove = total - max_length
            a, b = len_a, lb
            diff = abs(a - b)
            first = min(diff, remove)
            if a > b:
                a -= first
            else:
                b -= first
            remove -= first
            b -= (remove + 1) // 2
            a -= remove // 2
            if a < 0 or b < 0:
                raise ValueError(f"example {index}: max_length={max_length} is too small for the special tokens")
            return [(0, a, 0, b)]
        window_second = len_b is not None and truncation != "only_first"
        if len_b is None and truncation == "only_second":
            window_second = False
        other = len_a if window_second else lb
        size = budget - other
        long_len = lb if window_second else len_a
        if size <= 0:
            raise ValueError(
                f"example {index}: max_length={max_length} leaves no room for the "
                f"{'second' if window_second else 'first'} text ({other} tokens in the other text + {n_special} "
                "special tokens)"
            )
        if not overflow:
            starts = [0]
        else:
            if stride >= size:
                raise ValueError(f"example {index}: stride={stride} must be smaller than the window size {size}")
            starts = [0]
            while starts[-1] + size < long_len:
                starts.append(starts[-1] + size - stride)
        views = []
        for s in starts:
            e = min(s + size, long_len)
            views.append((0, len_a, s, e) if window_second else (s, e, 0, lb))
        return views

    def _assemble(
        self,
        a: _Segment,
        b: _Segment | None,
        view: tuple[int, int, int, int],
        add_special_tokens: bool,
        max_entity_length: int,
    ) -> _Row:
        """Add special tokens to one window and keep the entities that lie inside it (re-based)."""
        a0, a1, b0, b1 = view
        a_ids, a_off, a_spans, a_ent, a_idx = a
        full_a = a0 == 0 and a1 == len(a_ids)
        if add_special_tokens:
            ids = [self.cls_token_id, *(a_ids if full_a else a_ids[a0:a1]), self.sep_token_id]
            shift_a = 1 - a0
        else:
            ids = a_ids[a0:a1]
            shift_a = -a0
        offsets = None
        if a_off is not None:
            offsets = [*((0, 0),) * add_special_tokens, *a_off[a0:a1], *((0, 0),) * add_special_tokens]
        if full_a:
            ent_ids = list(a_ent)
            ent_spans = [(s + shift_a, e + shift_a) for s, e in a_spans]
            ent_idx = a_idx
        else:
            ent_ids, ent_spans, ent_idx = [], [], []
            for (s, e), eid, k in zip(a_spans, a_ent, a_idx, strict=True):
                if s >= a0 and e <= a1:
                    ent_spans.append((s + shift_a, e + shift_a))
                    ent_ids.append(eid)
                    ent_idx.append(k)
        n_first = len(ent_ids)
        n_all = len(a_spans)
        types = None
        if b is not None:
            b_ids, b_off, b_spans, b_ent, b_idx = b
            n_all += len(b_spans)
            ent_idx = list(ent_idx)
            if add_special_tokens and self.double_separator:
                ids.append(self.sep_token_id)
                if offsets is not None:
                    offsets.append((0, 0))
            len_first = len(ids)
            shift_b = len_first - b0
            ids += b_ids[b0:b1]
            if offsets is not None:
                offsets += b_off[b0:b1]
            if add_special_tokens:
                ids.append(self.sep_token_id)
                if offsets is not None:
                    offsets.append((0, 0))
            if not self.double_separator:
                types = [0] * len_first + [1] * (len(ids) - len_first)
            for (s, e), eid, k in zip(b_spans, b_ent, b_idx, strict=True):
                if s >= b0 and e <= b1:
                    ent_spans.append((s + shift_b, e + shift_b))
                    ent_ids.append(eid)
                    ent_idx.append(k)
        if len(ent_ids) > max_entity_length:
            ent_ids = ent_ids[:max_entity_length]
            ent_spans = ent_spans[:max_entity_length]
            ent_idx = ent_idx[:max_entity_length]
            n_first = min(n_first, max_entity_length)
        return ids, offsets, types, ent_ids, ent_spans, n_first, ent_idx, n_all - len(ent_ids)

    def _collate(
        self,
        rows: list[_Row],
        *,
        has_entities: bool,
        task: str | None,
        padding: str,
        max_length: int | None,
        max_entity_length: int,
        mention_len: int,
        pad_to_multiple_of: int | None,
        return_token_type_ids: bool,
        return_attention_mask: bool,
        return_offsets_mapping: bool,
        return_length: bool,
        return_overflowing: bool,
        as_arrays: bool,
    ) -> dict[str, Any]:
        """Pad the rows; NumPy arrays when ``as_arrays`` (needs equal lengths after padding), else lists."""
        n_rows = len(rows)
        lengths = [len(r[0]) for r in rows]
        n_ents = [len(r[3]) for r in rows]
        if padding == "max_length":
            word_len = max(max_length, *lengths) if rows else max_length
            ent_len = max(max_entity_length, *n_ents) if rows else max_entity_length
        elif padding == "longest":
            word_len = max(lengths, default=0)
            ent_len = max(n_ents, default=0)
        else:
            word_len = ent_len = None
        if pad_to_multiple_of and word_len is not None:
            word_len = -(-word_len // pad_to_multiple_of) * pad_to_multiple_of
            ent_len = -(-ent_len // pad_to_multiple_of) * pad_to_multiple_of
        dropped = sum(r[7] for r in rows)
        if dropped and not return_overflowing:
            logger.warning("%d entities were dropped because their mention was truncated away", dropped)

        if word_len is None and as_arrays:
            if len(set(lengths)) > 1 or (has_entities and len(set(n_ents)) > 1):
                raise ValueError(
                    "cannot return tensors for examples of different lengths without padding; use padding=True"
                )
            word_len = lengths[0] if rows else 0
            ent_len = n_ents[0] if rows else 0
        if word_len is None:
            return self._collate_lists(
                rows,
                has_entities,
                task,
                mention_len,
                return_token_type_ids,
                return_attention_mask,
                return_offsets_mapping,
                return_length,
                return_overflowing,
            )

        import numpy as np

        lens = np.asarray(lengths, dtype=np.int64)
        row_idx = np.repeat(np.arange(n_rows), lens)
        starts = np.cumsum(lens) - lens
        col_idx = np.arange(int(lens.sum())) - np.repeat(starts, lens)
        input_ids = np.full((n_rows, word_len), self.pad_token_id, dtype=np.int64)
        input_ids[row_idx, col_idx] = list(chain.from_iterable(r[0] for r in rows))
        data: dict[str, Any] = {"input_ids": input_ids}
        arange_w = np.arange(word_len)
        if return_attention_mask:
            data["attention_mask"] = (arange_w[None, :] < lens[:, None]).astype(np.int64)
        if return_token_type_ids:
            types = np.zeros((n_rows, word_len), dtype=np.int64)
            for i, r in enumerate(rows):
                if r[2] is not None:
                    types[i, : len(r[2])] = r[2]
            data["token_type_ids"] = types
        if return_offsets_mapping:
            offsets = np.zeros((n_rows, word_len, 2), dtype=np.int64)
            offsets[row_idx, col_idx] = np.asarray(
                list(chain.from_iterable(r[1] for r in rows)), dtype=np.int64
            ).reshape(-1, 2)
            data["offset_mapping"] = offsets
        if return_length:
            data["length"] = lens
        if has_entities:
            elens = np.asarray(n_ents, dtype=np.int64)
            e_row = np.repeat(np.arange(n_rows), elens)
            e_starts = np.cumsum(elens) - elens
            e_col = np.arange(int(elens.sum())) - np.repeat(e_starts, elens)
            entity_ids = np.full((n_rows, ent_len), self.entity_pad_token_id, dtype=np.int64)
            entity_ids[e_row, e_col] = list(chain.from_iterable(r[3] for r in rows))
            data["entity_ids"] = entity_ids
            spans = np.asarray(list(chain.from_iterable(r[4] for r in rows)), dtype=np.int64).reshape(-1, 2)
            arange_m = np.arange(mention_len)
            pos = spans[:, :1] + arange_m[None, :]
            pos[arange_m[None, :] >= (spans[:, 1:] - spans[:, :1])] = -1
            positions = np.full((n_rows, ent_len, mention_len), -1, dtype=np.int64)
            positions[e_row, e_col] = pos
            data["entity_position_ids"] = positions
            if return_attention_mask:
                data["entity_attention_mask"] = (np.arange(ent_len)[None, :] < elens[:, None]).astype(np.int64)
            if return_token_type_ids:
                etypes = np.zeros((n_rows, ent_len), dtype=np.int64)
                if not self.double_separator:
                    for i, r in enumerate(rows):
                        etypes[i, r[5] : len(r[3])] = 1
                data["entity_token_type_ids"] = etypes
            if task == "entity_span_classification":
                start = np.zeros((n_rows, ent_len), dtype=np.int64)
                end = np.zeros((n_rows, ent_len), dtype=np.int64)
                start[e_row, e_col] = spans[:, 0]
                end[e_row, e_col] = spans[:, 1] - 1
                data["entity_start_positions"] = start
                data["entity_end_positions"] = end
            if return_overflowing:
                idx = np.full((n_rows, ent_len), -1, dtype=np.int64)
                idx[e_row, e_col] = list(chain.from_iterable(r[6] for r in rows))
                data["entity_indices"] = idx
        return data

    def _collate_lists(
        self,
        rows: list[_Row],
        has_entities: bool,
        task: str | None,
        mention_len: int,
        return_token_type_ids: bool,
        return_attention_mask: bool,
        return_offsets_mapping: bool,
        return_length: bool,
        return_overflowing: bool,
    ) -> dict[str, Any]:
        """Unpadded output as Python lists."""
        data: dict[str, Any] = {"input_ids": [r[0] for r in rows]}
        if return_attention_mask:
            data["attention_mask"] = [[1] * len(r[0]) for r in rows]
        if return_token_type_ids:
            data["token_type_ids"] = [r[2] if r[2] is not None else [0] * len(r[0]) for r in rows]
        if return_offsets_mapping:
            data["offset_mapping"] = [r[1] for r in rows]
        if return_length:
            data["length"] = [len(r[0]) for r in rows]
        if has_entities:
            data["entity_ids"] = [r[3] for r in rows]
            positions = []
            for r in rows:
                row_pos = []
                for s, e in r[4]:
                    p = list(range(s, min(e, s + mention_len)))
                    p += [-1] * (mention_len - len(p))
                    row_pos.append(p)
                positions.append(row_pos)
            data["entity_position_ids"] = positions
            if return_attention_mask:
                data["entity_attention_mask"] = [[1] * len(r[3]) for r in rows]
            if return_token_type_ids:
                one = 0 if self.double_separator else 1
                data["entity_token_type_ids"] = [[0] * r[5] + [one] * (len(r[3]) - r[5]) for r in rows]
            if task == "entity_span_classification":
                data["entity_start_positions"] = [[s for s, _ in r[4]] for r in rows]
                data["entity_end_positions"] = [[e - 1 for _, e in r[4]] for r in rows]
            if return_overflowing:
                data["entity_indices"] = [list(r[6]) for r in rows]
        return data


# GPT-2 / RoBERTa pre-tokenization regex restricted to ASCII text (\p{L} = [A-Za-z], \p{N} = [0-9]).
_GPT2_ASCII = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""", re.ASCII)
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e\t\n\r]")


class _PyByteLevelBPE:
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
        self, text: str, points: list[tuple[int, int]], need_offsets: bool
    ) -> tuple[list[int], list[tuple[int, int]] | None, dict[int, int]]:
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
        offsets: list[tuple[int, int]] = []
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


# ---------------------------------------------------------------------------------------------- helpers
def _as_entity_vocab(value: str | os.PathLike[str] | EntityVocab | Mapping[str, int]) -> EntityVocab:
    if isinstance(value, EntityVocab):
        return value
    if isinstance(value, Mapping):
        return EntityVocab.from_dict(value)
    return EntityVocab.load(value)


def _byte_level_bpe(vocab: Path, merges: Path) -> Tokenizer:
    """RoBERTa/GPT-2 byte-level BPE, configured like transformers' LukeTokenizer backend."""
    tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges), continuing_subword_prefix="", end_of_word_suffix=""))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    vocab_map = tok.get_vocab()
    specials = [t for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>") if t in vocab_map]
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in specials])
    return tok


def _wordpiece(vocab_txt: Path, do_lower_case: bool | None) -> Tokenizer:
    """BERT WordPiece; ``do_lower_case=None`` guesses from the vocabulary (cased vocabs hold "The")."""
    vocab = models.WordPiece.read_file(str(vocab_txt))
    if do_lower_case is None:
        do_lower_case = not any(re.fullmatch(r"[A-Z][a-z]+", t) for t in list(vocab)[:5000])
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=do_lower_case
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    specials = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t in vocab]
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in specials])
    return tok


def _batch_arg(value: Any, n: int, name: str) -> list[Any]:
    if value is None:
        return [None] * n
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list with one entry per example when text is a list")
    if len(value) != n:
        raise ValueError(f"{name} has {len(value)} entries but there are {n} examples")
    return list(value)


def _check_spans(spans: Any, text: str, index: int, name: str) -> list[tuple[int, int]] | None:
    if spans is None:
        return None
    if isinstance(spans, str) or not isinstance(spans, list | tuple):
        raise ValueError(f"example {index}: {name} must be a list of (start, end) character spans")
    out = []
    n = len(text)
    for k, span in enumerate(spans):
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise ValueError(f"example {index}: {name}[{k}] must be a (start, end) pair, got {span!r}")
        s, e = span
        if not (isinstance(s, int) and isinstance(e, int)) or isinstance(s, bool) or isinstance(e, bool):
            try:
                s, e = int(s), int(e)  # numpy integers
            except (TypeError, ValueError):
                raise ValueError(f"example {index}: {name}[{k}] must hold integers, got {span!r}") from None
        if s > e:
            raise ValueError(f"example {index}: {name}[{k}] = ({s}, {e}) is reversed (start > end)")
        if s < 0 or e > n:
            raise ValueError(f"example {index}: {name}[{k}] = ({s}, {e}) is out of range for a text of {n} characters")
        if s == e:
            raise ValueError(f"example {index}: {name}[{k}] = ({s}, {e}) is empty")
        out.append((s, e))
    return out


def _check_task_spans(task: str, spans: list[tuple[int, int]] | None, index: int) -> None:
    n = 0 if spans is None else len(spans)
    if task == "entity_classification" and n != 1:
        raise ValueError(f"example {index}: task 'entity_classification' needs exactly 1 entity span, got {n}")
    if task == "entity_pair_classification":
        if n != 2:
            raise ValueError(
                f"example {index}: task 'entity_pair_classification' needs exactly 2 entity spans (head, tail), got {n}"
            )
        (s1, e1), (s2, e2) = spans  # type: ignore[misc]
        if s1 < e2 and s2 < e1:
            raise ValueError(
                f"example {index}: task 'entity_pair_classification' spans ({s1}, {e1}) and ({s2}, {e2}) overlap; "
                "the <ent>/<ent2> markers need disjoint spans"
            )
    if task == "entity_span_classification" and n == 0:
        raise ValueError(f"example {index}: task 'entity_span_classification' needs at least 1 entity span")
