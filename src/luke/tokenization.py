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

The word tokenization, windows and padding are done by :class:`luke.encoding.LukeEncoder` (the encoding
core); this module holds the ``transformers``-compatible front: keyword arguments, input validation,
loading/saving, special tokens and the output format.
"""

from __future__ import annotations

import gc
import json
import logging
import operator
import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from luke.encoding import (
    PADDING_STRATEGIES,
    TASKS,
    TRUNCATION_STRATEGIES,
    EncodeOptions,
    Example,
    LukeEncoder,
    SpecialIds,
)
from luke.entity_vocab import EntityVocab, non_luke_model_type
from luke.errors import DataError, TokenizerError, error_summary, shorten
from luke.files import atomic_output, read_json, read_text, text_lines, write_text_atomic
from luke.hub import pop_hub_kwargs, resolve_pretrained

__all__ = ["LukeTokenizer", "TASKS"]

logger = logging.getLogger(__name__)

_TRUNCATION_STRATEGIES = TRUNCATION_STRATEGIES
_PADDING_STRATEGIES = PADDING_STRATEGIES
DEFAULT_MODEL_MAX_LENGTH = 512
# Settings of tokenizer_config.json that from_pretrained passes to the constructor.
_SAVED_SETTINGS = (
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
    "entity_language",
)
# Settings that are positive integers, and the largest value accepted for each (an entity or mention length
# beyond it would only allocate huge padded arrays; model_max_length is any size, like transformers').
_LENGTH_SETTINGS = {"max_entity_length": 100_000, "max_mention_length": 100_000, "model_max_length": None}
_WORD_SPECIALS = ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token")
_ENTITY_SPECIALS = ("entity_unk_token", "entity_pad_token", "entity_mask_token", "entity_mask2_token")
_TOKEN_SETTINGS = (*_WORD_SPECIALS, "entity_1_token", "entity_2_token", *_ENTITY_SPECIALS)


def _positive_int(value: Any, name: str, where: str = "") -> int:
    """``value`` as a positive integer (not a bool; at most the limit of :data:`_LENGTH_SETTINGS`), else a
    :class:`TokenizerError` naming ``where`` (a file) and the setting ``name``."""
    prefix = f"{where}: " if where else ""
    limit = _LENGTH_SETTINGS.get(name)
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1 or (limit is not None and number > limit):
        most = f" of at most {limit:,}" if limit is not None else ""
        raise TokenizerError(f"{prefix}{name} must be a positive integer{most}, got {shorten(repr(value))}")
    return number


def _check_task(task: Any, where: str = "") -> str | None:
    if task is not None and (not isinstance(task, str) or task not in TASKS):
        prefix = f"{where}: " if where else ""
        raise TokenizerError(f"{prefix}task must be null or one of {', '.join(TASKS)}, got {shorten(repr(task))}")
    return task


def _check_token(value: Any, name: str, where: str = "") -> str:
    if not isinstance(value, str) or not value:
        prefix = f"{where}: " if where else ""
        raise TokenizerError(f"{prefix}{name} must be a non-empty string (a token), got {shorten(repr(value))}")
    return value


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
        entity_language: the language of entity titles given as plain strings (mLUKE, e.g. ``"ja"``), unless a
            call passes its own; ``"lang:Title"`` strings (what ``transformers.MLukeTokenizer`` takes) and
            ``(title, language)`` pairs name their language themselves.  Without a language a plain title is
            found when the vocabulary holds it under one id only (see :meth:`EntityVocab.get_id`).

    SentencePiece folders (mLUKE, LUKE-Japanese: ``sentencepiece.bpe.model`` + ``entity_vocab.json`` with
    ``"lang:Title"`` keys + a ``tokenizer_config.json`` naming ``MLukeTokenizer``) load with XLM-R's fairseq ids
    (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, pieces + 1, ``<mask>`` last, then ``<ent>``/``<ent2>``):
    the ids of ``transformers.MLukeTokenizer`` in transformers 4 and of the released models.  transformers
    5's ``MLukeTokenizer`` differs there, and these are its bugs, not ours (tests/test_mluke_tokenizer.py):

    * it keeps the raw SentencePiece ids (``<unk>``=0, ``<s>``=1, pieces not shifted; ``<pad>``/``<mask>``
      appended after the pieces), so every word id is off by one for the released embeddings;
    * it drops SentencePiece's normalization (NFKC character map, extra-space removal) and turns
      `````` / ``''`` into ``"``, so full-width characters or double spaces give other pieces;
    * it adds the entity special tokens ``[UNK]``, ``[PAD]``, ``[MASK]``, ``[MASK2]`` to the *word*
      vocabulary (ids past the model's word embeddings) when the text contains them literally.
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
        entity_language: str | None = None,
    ) -> None:
        _check_task(task)
        if entity_language is not None and (not isinstance(entity_language, str) or not entity_language):
            raise TokenizerError(
                f"entity_language must be a language code or None, got {shorten(repr(entity_language))}"
            )
        if not isinstance(entity_vocab, EntityVocab):
            raise TypeError(f"entity_vocab must be an EntityVocab, got {type(entity_vocab).__name__}")
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.entity_vocab = entity_vocab
        self.task = task
        self.entity_language = entity_language
        self._sentencepiece_model: bytes | None = None  # the .model file of a SentencePiece tokenizer (for saving)
        self._max_entity_length = _positive_int(max_entity_length, "max_entity_length")
        self.max_mention_length = _positive_int(max_mention_length, "max_mention_length")
        self.model_max_length = _positive_int(model_max_length, "model_max_length")
        tokens = (cls_token, sep_token, pad_token, unk_token, mask_token, entity_1_token, entity_2_token)
        tokens += (entity_unk_token, entity_pad_token, entity_mask_token, entity_mask2_token)
        for name, value in zip(_TOKEN_SETTINGS, tokens, strict=True):
            if value is not None:
                _check_token(value, name)
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self._set_word_specials(vocab, [cls_token, sep_token, pad_token, unk_token, mask_token], double_separator)
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
        special = SpecialIds(
            cls=self.cls_token_id,
            sep=self.sep_token_id,
            pad=self.pad_token_id,
            entity_1=self.entity_1_token_id,
            entity_2=self.entity_2_token_id,
            entity_pad=self.entity_pad_token_id,
        )
        self._encoder = LukeEncoder(tokenizer, special, self.double_separator)

    def _set_word_specials(self, vocab: dict[str, int], names: list[str | None], double_separator: bool | None) -> None:
        """Word special tokens: the given names, else ``<s>``/``</s>``/... or ``[CLS]``/``[SEP]``/... ."""
        names, roberta_style = _word_special_names(vocab, names)
        self.cls_token, self.sep_token, self.pad_token, self.unk_token, self.mask_token = names
        for key, name in zip(_WORD_SPECIALS[:3], names[:3], strict=True):
            if name not in vocab:
                raise TokenizerError(f"{key} {shorten(repr(name))} is not in the word vocabulary")
        if double_separator is not None and not isinstance(double_separator, bool):
            raise TokenizerError(f"double_separator must be true, false or null, got {shorten(repr(double_separator))}")
        self.double_separator = roberta_style if double_separator is None else double_separator

    def _entity_special(self, name: str) -> int:
        entity_id = self.entity_vocab.get_id(name)
        if entity_id is None:
            where = f"{self.entity_vocab.source}: " if self.entity_vocab.source is not None else ""
            raise TokenizerError(
                f"{where}the entity vocabulary has no special entity {name!r} (add it with vocab.add({name!r}))"
            )
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

    @property
    def encoder(self) -> LukeEncoder:
        """The encoding core (:class:`luke.encoding.LukeEncoder`) that :meth:`__call__` hands its work to."""
        return self._encoder

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
            backend = _tokenizer_json(Path(tokenizer_json))
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
        pretrained_model_name_or_path: str | os.PathLike[str],
        *,
        entity_vocab: str | os.PathLike[str] | EntityVocab | Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> LukeTokenizer:
        """Load from a local folder or a Hugging Face Hub repo id (``studio-ousia/mluke-base``).

        Accepted folders: one written by :meth:`save_pretrained` or ``transformers.LukeTokenizer`` /
        ``MLukeTokenizer`` (``tokenizer.json`` or ``sentencepiece.bpe.model``, ``tokenizer_config.json``,
        ``entity_vocab.json``), an older transformers LUKE folder (``vocab.json``, ``merges.txt``,
        ``entity_vocab.json``), or any BERT/RoBERTa word tokenizer folder (``tokenizer.json``, ``vocab.json`` +
        ``merges.txt`` or ``vocab.txt``) together with ``entity_vocab=`` (a path, an :class:`EntityVocab` or a
        ``{title: id}`` dict).  An existing local folder always wins; anything else is a repo id, read from the
        Hugging Face cache (downloaded when online) with the hub keyword arguments ``revision``,
        ``cache_dir``, ``local_files_only`` and ``token``.  Other keyword arguments override the saved settings.
        """
        folder = _resolve_folder(pretrained_model_name_or_path, kwargs)
        config_path = folder / "tokenizer_config.json"
        config: dict[str, Any] = read_json(config_path, expected=dict) if config_path.exists() else {}
        backend, word_file, spm_model = _load_backend(folder, config, config_path)
        if entity_vocab is None:
            entity_vocab = _find_entity_vocab(folder, config, pretrained_model_name_or_path)
        entity_vocab = _as_entity_vocab(entity_vocab)
        settings = _saved_settings(config, config_path, overridden=set(kwargs))
        _check_saved_tokens(settings, set(kwargs), backend, entity_vocab, config_path, word_file)
        settings.update(kwargs)
        tokenizer = cls(backend, entity_vocab, **settings)
        tokenizer._sentencepiece_model = spm_model
        return tokenizer

    def save_pretrained(self, folder: str | os.PathLike[str]) -> list[str]:
        """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``entity_vocab.json``.

        The folder loads with :meth:`from_pretrained` and (for byte-level BPE vocabularies) with
        ``transformers.LukeTokenizer.from_pretrained``.  A SentencePiece tokenizer (mLUKE, LUKE-Japanese) is
        written in the released layout instead: ``sentencepiece.bpe.model`` (the file it was loaded from),
        ``tokenizer_config.json`` naming ``MLukeTokenizer`` and ``entity_vocab.json``, which
        ``transformers.MLukeTokenizer`` loads as it loads the released folders.  Returns the written file paths.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self._sentencepiece_model is not None:
            return self._save_sentencepiece(folder)
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
        if self.entity_language is not None:
            config["entity_language"] = self.entity_language
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return [str(folder / n) for n in ("tokenizer.json", "tokenizer_config.json", "entity_vocab.json")]

    def _save_sentencepiece(self, folder: Path) -> list[str]:
        """The released mLUKE layout (see :meth:`save_pretrained`)."""
        assert self._sentencepiece_model is not None
        with atomic_output(folder / SENTENCEPIECE_FILE) as tmp:
            Path(tmp).write_bytes(self._sentencepiece_model)
        self.entity_vocab.save(folder / "entity_vocab.json")

        def added(content: str, lstrip: bool = False) -> dict[str, Any]:  # transformers' serialized AddedToken
            return {"__type": "AddedToken", "content": content, "lstrip": lstrip, "normalized": True,
                    "rstrip": False, "single_word": False}  # fmt: skip

        config: dict[str, Any] = {
            "tokenizer_class": "MLukeTokenizer",
            "bos_token": self.cls_token,
            "eos_token": self.sep_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "mask_token": added(self.mask_token, lstrip=True),
            "task": self.task,
            "max_entity_length": self._max_entity_length,
            "max_mention_length": self.max_mention_length,
            "model_max_length": self.model_max_length,
            "entity_token_1": added(self.entity_1_token),
            "entity_token_2": added(self.entity_2_token),
            "additional_special_tokens": [self.entity_1_token, self.entity_2_token],
            "entity_unk_token": self.entity_unk_token,
            "entity_pad_token": self.entity_pad_token,
            "entity_mask_token": self.entity_mask_token,
            "entity_mask2_token": self.entity_mask2_token,
            "sp_model_kwargs": {},
        }
        if self.entity_language is not None:
            config["entity_language"] = self.entity_language
        write_text_atomic(folder / "tokenizer_config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return [str(folder / n) for n in (SENTENCEPIECE_FILE, "tokenizer_config.json", "entity_vocab.json")]

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
    ) -> Any:
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
            entity_language: language of the entity titles given as plain strings (default:
                :attr:`entity_language`); ``"lang:Title"`` strings and ``(title, language)`` pairs carry their own.

        Returns:
            a ``transformers.BatchEncoding`` with ``input_ids``, ``attention_mask``, ``token_type_ids``,
            and, when entity spans are given, ``entity_ids``, ``entity_position_ids``,
            ``entity_attention_mask``, ``entity_token_type_ids`` (+ ``entity_start_positions`` /
            ``entity_end_positions`` for ``entity_span_classification``).

        Raises:
            ValueError: on bad input, naming the example index and the problem.
        """
        # The batch allocates many small lists; the cyclic GC would rescan them repeatedly (no cycles here).
        with _gc_paused():
            task = self._call_task(task, padding_side)
            inputs = _CallInputs.from_args(text, text_pair, entity_spans, entity_spans_pair, entities, entities_pair)
            padding = _normalize_padding(padding)
            truncation, max_length = self._truncation(truncation, max_length, return_overflowing_tokens)
            options = EncodeOptions(
                task=task,
                add_special_tokens=add_special_tokens,
                padding=padding,
                truncation=truncation,
                max_length=max_length,
                max_entity_length=self._task_max_entity_length(task)
                if max_entity_length is None
                else _positive_int(max_entity_length, "max_entity_length"),
                max_mention_length=self.max_mention_length
                if max_mention_length is None
                else _positive_int(max_mention_length, "max_mention_length"),
                stride=stride,
                pad_to_multiple_of=pad_to_multiple_of,
                return_tensors=return_tensors,
                return_token_type_ids=return_token_type_ids,
                return_attention_mask=return_attention_mask,
                return_offsets_mapping=return_offsets_mapping,
                return_overflowing_tokens=return_overflowing_tokens,
                return_length=return_length,
                entity_language=self.entity_language if entity_language is None else entity_language,
            )
            return self._encode(inputs, options)

    def _call_task(self, task: str | None, padding_side: str) -> str | None:
        """The task of this call (``...``: the tokenizer's), checked together with ``padding_side``."""
        from transformers import BatchEncoding  # noqa: F401  (fail early when transformers is missing)

        if task is ...:
            task = self.task
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be None or one of {TASKS}, got {task!r}")
        if padding_side != "right":
            raise ValueError("only padding_side='right' is supported (entity positions index the word sequence)")
        return task

    def _truncation(
        self, truncation: bool | str | None, max_length: int | None, overflow: bool
    ) -> tuple[str, int | None]:
        """Truncation strategy (forced on by ``overflow``) and ``max_length`` (:attr:`model_max_length` when
        truncating without one)."""
        strategy = _normalize_truncation(truncation)
        if overflow and strategy == "do_not_truncate":
            strategy = "longest_first"
        if strategy != "do_not_truncate" and max_length is None:
            max_length = self.model_max_length
        return strategy, max_length

    def _encode(self, inputs: _CallInputs, options: EncodeOptions) -> Any:
        """Check the examples, encode them with the core and convert to the requested output format."""
        data = self._encoder.encode(self._examples(inputs, options), options)
        return _to_output(data, options, inputs.is_batch)

    def _examples(self, inputs: _CallInputs, options: EncodeOptions) -> list[Example]:
        """Check texts and spans and look up the entity ids of every example."""
        task = options.task
        n = len(inputs.texts)
        entities, entities_pair = inputs.entities, inputs.entities_pair
        if task is not None:
            entities = entities_pair = [None] * n
            if any(s is not None for s in inputs.spans_pair):
                raise ValueError(f"task {task!r} takes entity spans of the first text only (entity_spans)")
        has_entities = any(s is not None for s in inputs.spans) or any(s is not None for s in inputs.spans_pair)
        if task is not None and not has_entities:
            raise ValueError(f"task {task!r} needs entity_spans")
        examples = []
        language = options.entity_language
        columns = (inputs.texts, inputs.pairs, inputs.spans, inputs.spans_pair, entities, entities_pair)
        for i, (t, p, spans, spans_pair, ents, ents_pair) in enumerate(zip(*columns, strict=True)):
            if not isinstance(t, str):
                raise ValueError(f"example {i}: text must be a string, got {type(t).__name__}")
            if p is not None and not isinstance(p, str):
                raise ValueError(f"example {i}: text_pair must be a string, got {type(p).__name__}")
            s1 = _check_spans(spans, t, i, "entity_spans")
            if task is not None:
                _check_task_spans(task, s1, i)
            s2 = None
            if spans_pair is not None:
                if p is None:
                    raise ValueError(f"example {i}: entity_spans_pair given without text_pair")
                s2 = _check_spans(spans_pair, p, i, "entity_spans_pair")
            ids1 = self._entity_ids(task, s1, ents, i, "entities", language)
            ids2 = self._entity_ids(None, s2, ents_pair, i, "entities_pair", language)
            examples.append(Example(t, s1, ids1, p, s2, ids2))
        return examples

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


# ---------------------------------------------------------------------------------------------- helpers
def _word_special_names(vocab: Mapping[str, int], names: Sequence[str | None]) -> tuple[list[str], bool]:
    """The word special tokens (:data:`_WORD_SPECIALS` order): each given name, else ``<s>``/``</s>``/...
    when the vocabulary is RoBERTa-style or ``[CLS]``/``[SEP]``/...; and whether it is RoBERTa-style."""
    roberta_style = "<s>" in vocab and "</s>" in vocab
    defaults = ("<s>", "</s>", "<pad>", "<unk>", "<mask>")
    if not roberta_style:
        defaults = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")
    return [n if n is not None else d for n, d in zip(names, defaults, strict=True)], roberta_style


def _as_entity_vocab(value: str | os.PathLike[str] | EntityVocab | Mapping[str, int]) -> EntityVocab:
    if isinstance(value, EntityVocab):
        return value
    if isinstance(value, Mapping):
        return EntityVocab.from_dict(value)
    return EntityVocab.load(value)


def _tokenizer_json(path: Path) -> Tokenizer:
    """A ``tokenizer.json``; one that is not UTF-8 JSON or not a ``tokenizers`` file is an error naming it."""
    text = read_text(path)
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err.msg}, column {err.colno})", err.lineno) from None
    try:
        return Tokenizer.from_str(text)
    except Exception as err:  # tokenizers raises plain Exception
        raise TokenizerError(f"{path}: not a tokenizers tokenizer.json ({error_summary(err)})") from None


def _byte_level_bpe(vocab: Path, merges: Path) -> Tokenizer:
    """RoBERTa/GPT-2 byte-level BPE, configured like transformers' LukeTokenizer backend."""
    read_json(vocab, expected=dict)  # not UTF-8 / not JSON: an error naming the file and line
    for _ in text_lines(merges):
        pass
    try:
        bpe = models.BPE.from_file(str(vocab), str(merges), continuing_subword_prefix="", end_of_word_suffix="")
    except Exception as err:  # tokenizers raises plain Exception
        reason = error_summary(err)
        raise TokenizerError(f"{vocab} + {merges}: not a BPE vocabulary and merges file ({reason})") from None
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    vocab_map = tok.get_vocab()
    specials = [t for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>") if t in vocab_map]
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in specials])
    return tok


def _wordpiece(vocab_txt: Path, do_lower_case: bool | None) -> Tokenizer:
    """BERT WordPiece; ``do_lower_case=None`` guesses from the vocabulary (cased vocabs hold "The")."""
    for _ in text_lines(vocab_txt):  # not UTF-8: an error naming the file and line
        pass
    try:
        vocab = models.WordPiece.read_file(str(vocab_txt))
    except Exception as err:  # tokenizers raises plain Exception
        raise TokenizerError(f"{vocab_txt}: not a WordPiece vocabulary ({error_summary(err)})") from None
    if not vocab:
        raise TokenizerError(f"{vocab_txt}: empty WordPiece vocabulary, expected one token per line")
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


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored on exit)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class _CallInputs:
    """The positional inputs of one call, as lists with one entry per example."""

    is_batch: bool
    texts: list[Any]
    pairs: list[Any]
    spans: list[Any]
    spans_pair: list[Any]
    entities: list[Any]
    entities_pair: list[Any]

    @classmethod
    def from_args(
        cls, text: Any, text_pair: Any, spans: Any, spans_pair: Any, entities: Any, entities_pair: Any
    ) -> _CallInputs:
        """One example (``text`` a string) or a batch (``text`` a list; the other inputs lists of the same length)."""
        if isinstance(text, list | tuple):
            n = len(text)
            return cls(
                True,
                list(text),
                _batch_arg(text_pair, n, "text_pair"),
                _batch_arg(spans, n, "entity_spans"),
                _batch_arg(spans_pair, n, "entity_spans_pair"),
                _batch_arg(entities, n, "entities"),
                _batch_arg(entities_pair, n, "entities_pair"),
            )
        if isinstance(text, str):
            return cls(False, [text], [text_pair], [spans], [spans_pair], [entities], [entities_pair])
        raise ValueError(f"text must be a string or a list of strings, got {type(text).__name__}")


def _to_output(data: dict[str, Any], options: EncodeOptions, is_batch: bool) -> Any:
    """The core's arrays/lists as a ``BatchEncoding`` of lists, NumPy arrays or PyTorch tensors."""
    from transformers import BatchEncoding

    return_tensors = options.return_tensors
    batched_out = is_batch or options.return_overflowing_tokens or return_tensors is not None
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


def _resolve_folder(name_or_path: str | os.PathLike[str], kwargs: dict[str, Any]) -> Path:
    """The tokenizer folder of a local path or Hub repo id (hub keyword arguments are taken out of ``kwargs``)."""
    hub_kwargs = pop_hub_kwargs(kwargs)
    return resolve_pretrained(name_or_path, files="tokenizer", **hub_kwargs)


def _load_backend(folder: Path, config: dict[str, Any], config_path: Path) -> tuple[Tokenizer, Path, bytes | None]:
    """The word tokenizer of a folder (``tokenizer.json``, ``sentencepiece.bpe.model``, ``vocab.json`` +
    ``merges.txt`` or ``vocab.txt``), the file its vocabulary came from, and the SentencePiece model's bytes
    when it is one.  A folder whose ``tokenizer_config.json`` names ``MLukeTokenizer`` (mLUKE, LUKE-Japanese)
    is read from its SentencePiece model even beside a ``tokenizer.json``: transformers 5 writes that file
    with the raw SentencePiece ids, not the fairseq ids the models were trained with."""
    spm = folder / SENTENCEPIECE_FILE
    mluke = config.get("tokenizer_class") == "MLukeTokenizer"
    if spm.exists() and (mluke or not (folder / "tokenizer.json").exists()):
        backend, data = _sentencepiece(spm)
        return backend, spm, data
    if (folder / "tokenizer.json").exists():
        return _tokenizer_json(folder / "tokenizer.json"), folder / "tokenizer.json", None
    if (folder / "vocab.json").exists() and (folder / "merges.txt").exists():
        return _byte_level_bpe(folder / "vocab.json", folder / "merges.txt"), folder / "vocab.json", None
    if (folder / "vocab.txt").exists():
        lower = config.get("do_lower_case")
        if lower is not None and not isinstance(lower, bool):
            got = shorten(repr(lower))
            raise TokenizerError(f"{config_path}: do_lower_case must be true, false or null, got {got}")
        return _wordpiece(folder / "vocab.txt", lower), folder / "vocab.txt", None
    raise TokenizerError(
        f"{folder}: no tokenizer.json, {SENTENCEPIECE_FILE}, vocab.json + merges.txt or vocab.txt found"
    )


def load_word_backend(folder: str | os.PathLike[str]) -> tuple[Tokenizer, dict[str, str]]:
    """The word tokenizer of a local tokenizer folder exactly as :class:`LukeTokenizer` reads it (same
    files, same ids: the fairseq ids for a SentencePiece model), with padding and truncation off, and its
    special tokens by role (``cls_token``, ``sep_token``, ``pad_token``, ``unk_token``, ``mask_token``):
    those ``tokenizer_config.json`` names, else the defaults of the vocabulary's style; roles whose token
    is not in the vocabulary are left out.  Used where a plain ``tokenizers`` word tokenizer is wanted
    (the pretraining dataset builder)."""
    folder = Path(folder)
    config_path = folder / "tokenizer_config.json"
    config: dict[str, Any] = read_json(config_path, expected=dict) if config_path.is_file() else {}
    backend, _, _ = _load_backend(folder, config, config_path)
    backend.no_padding()
    backend.no_truncation()
    vocab = backend.get_vocab(with_added_tokens=True)
    saved = []
    for key in _WORD_SPECIALS:
        value = config.get(key)
        value = value.get("content") if isinstance(value, dict) else value  # a serialized AddedToken
        saved.append(value if isinstance(value, str) and value in vocab else None)
    names, _ = _word_special_names(vocab, saved)
    return backend, {key: name for key, name in zip(_WORD_SPECIALS, names, strict=True) if name in vocab}


def _find_entity_vocab(folder: Path, config: dict[str, Any], name: str | os.PathLike[str]) -> Path | dict[str, int]:
    """The entity vocabulary of a folder (``name``: what the caller called it): inline in
    ``tokenizer_config.json`` or an ``entity_vocab.*`` file."""
    if isinstance(config.get("entity_vocab"), dict):
        return config["entity_vocab"]
    for file in ("entity_vocab.json", "entity_vocab.jsonl", "entity_vocab.tsv"):
        if (folder / file).exists():
            return folder / file
    kind = non_luke_model_type(folder)
    if kind is not None:  # e.g. a BERT repo: say what it is rather than only what is missing
        raise TokenizerError(
            f"{name} is a {kind!r} model, not LUKE, and has no entity vocabulary: pass "
            "entity_vocab=path_or_EntityVocab to use its word tokenizer with LUKE entities"
        )
    raise TokenizerError(
        f"{folder}: no entity vocabulary found (entity_vocab.json/.jsonl/.tsv or 'entity_vocab' in "
        "tokenizer_config.json); pass entity_vocab=path_or_EntityVocab"
    )


def _saved_settings(config: dict[str, Any], path: Path, overridden: set[str] = frozenset()) -> dict[str, Any]:
    """Constructor keyword arguments from a ``tokenizer_config.json`` (ours or transformers'), each checked
    (unless a keyword argument in ``overridden`` replaces it): a bad value is a :class:`TokenizerError`
    naming ``path``, the key and what was expected."""

    def content(value: Any) -> Any:  # a serialized AddedToken {"content": "<s>", ...}
        return value["content"] if isinstance(value, dict) and "content" in value else value

    read: dict[str, tuple[str, Any]] = {}  # argument -> (its key in the file, value)
    for key in _SAVED_SETTINGS:
        if config.get(key) is not None:
            read[key] = (key, content(config[key]))
    for key, legacy in (("entity_1_token", "entity_token_1"), ("entity_2_token", "entity_token_2")):
        name = key if config.get(key) is not None else legacy
        if config.get(name) is not None:
            read[key] = (name, content(config[name]))
    max_len = config.get("model_max_length")
    # transformers writes a huge number (int(1e30)) for "no limit": that one means the default
    no_limit = isinstance(max_len, int | float) and not isinstance(max_len, bool) and max_len >= 1e6
    if max_len is not None and not no_limit:
        read["model_max_length"] = ("model_max_length", max_len)
    settings: dict[str, Any] = {}
    for argument, (key, value) in read.items():
        if argument in overridden:
            continue
        if argument in _LENGTH_SETTINGS:
            value = _positive_int(value, key, str(path))
        elif argument == "task":
            _check_task(value, str(path))
        elif argument == "entity_language" and (not isinstance(value, str) or not value):
            raise TokenizerError(f"{path}: entity_language must be a language code or null, got {shorten(repr(value))}")
        elif argument == "double_separator" and not isinstance(value, bool):
            raise TokenizerError(f"{path}: double_separator must be true, false or null, got {shorten(repr(value))}")
        elif argument in _TOKEN_SETTINGS:
            _check_token(value, key, str(path))
        settings[argument] = value
    if "double_separator" not in read and config.get("special_tokens_pattern") == "cls_double_sep":
        settings["double_separator"] = True
    return settings


def _check_saved_tokens(
    settings: dict[str, Any],
    overridden: set[str],
    backend: Tokenizer,
    entity_vocab: EntityVocab,
    config_path: Path,
    word_file: Path,
) -> None:
    """The special tokens a folder names (or the defaults) exist in its vocabularies; else a
    :class:`TokenizerError` naming the file that is wrong: ``tokenizer_config.json`` for a token it names,
    the word vocabulary file for a default token it lacks. Keyword arguments are checked by ``__init__``."""
    vocab = backend.get_vocab(with_added_tokens=True)
    names, _ = _word_special_names(vocab, [settings.get(k) for k in _WORD_SPECIALS])
    for key, name in zip(_WORD_SPECIALS[:3], names[:3], strict=True):
        if key in overridden or name in vocab:
            continue
        if key in settings:
            raise TokenizerError(
                f"{config_path}: {key} {shorten(repr(name))} is not in the word vocabulary ({word_file})"
            )
        raise TokenizerError(
            f"{word_file}: the word vocabulary has no {name!r} token ({key}; expected [CLS]/[SEP]/[PAD] or "
            f"<s>/</s>/<pad>, {len(vocab):,} tokens)"
        )
    source = entity_vocab.source if entity_vocab.source is not None else "the entity vocabulary given"
    for key in _ENTITY_SPECIALS[:3]:
        name = settings.get(key)
        if key in overridden or name is None or entity_vocab.get_id(name) is not None:
            continue
        raise TokenizerError(f"{config_path}: {key} {shorten(repr(name))} is not in the entity vocabulary ({source})")


# ---------------------------------------------------------------------------------------------- sentencepiece
SENTENCEPIECE_FILE = "sentencepiece.bpe.model"
# SentencePiece piece types (sentencepiece_model.proto).
_SPM_NORMAL, _SPM_UNKNOWN, _SPM_CONTROL, _SPM_USER_DEFINED, _SPM_UNUSED, _SPM_BYTE = 1, 2, 3, 4, 5, 6
_FLOAT = struct.Struct("<f")


@dataclass
class _SpmModel:
    """What a SentencePiece ``.model`` says that the conversion needs (field defaults: the proto's)."""

    pieces: list[tuple[str, float, int]]
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    model_type: int = 1  # 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR
    byte_fallback: bool = False
    split_digits: bool = False
    treat_whitespace_as_suffix: bool = False


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError(f"malformed varint at byte {pos}")


def _proto_fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of a protobuf message in ``buf[start:end]``: an int for varints,
    ``(start, end)`` for length-delimited fields, raw bytes for fixed-width ones."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field_number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value = (pos, pos + size)
            pos += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value = buf[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {pos}")
        if pos > end or field_number == 0:
            raise ValueError(f"truncated or malformed protobuf message at byte {pos}")
        yield field_number, wire, value


def _parse_sentencepiece(buf: bytes) -> _SpmModel:
    """Read a SentencePiece ``ModelProto`` (no ``protobuf``/``sentencepiece`` needed); ``ValueError`` when the
    bytes are not one."""
    pieces: list[tuple[str, float, int]] = []
    model = _SpmModel(pieces)
    unpack = _FLOAT.unpack
    for number, wire, value in _proto_fields(buf, 0, len(buf)):
        if number == 1 and wire == 2:  # pieces
            piece, score, kind = None, 0.0, _SPM_NORMAL
            for n, w, v in _proto_fields(buf, *value):
                if n == 1 and w == 2:
                    piece = buf[v[0] : v[1]].decode("utf-8")
                elif n == 2 and w == 5:
                    score = unpack(v)[0]
                elif n == 3 and w == 0:
                    kind = v
            if not piece:
                raise ValueError(f"piece {len(pieces)} has no text")
            pieces.append((piece, score, kind))
        elif number == 2 and wire == 2:  # trainer_spec
            for n, w, v in _proto_fields(buf, *value):
                if w == 0 and n in (3, 22, 24, 25, 35):
                    name = {3: "model_type", 24: "treat_whitespace_as_suffix", 25: "split_digits", 35: "byte_fallback"}
                    if n != 22:
                        setattr(model, name[n], v if n == 3 else bool(v))
        elif number == 3 and wire == 2:  # normalizer_spec
            for n, w, v in _proto_fields(buf, *value):
                if n == 2 and w == 2:
                    model.precompiled_charsmap = bytes(buf[v[0] : v[1]])
                elif w == 0 and n in (3, 4, 5):
                    name = {3: "add_dummy_prefix", 4: "remove_extra_whitespaces", 5: "escape_whitespaces"}[n]
                    setattr(model, name, bool(v))
        elif wire not in (0, 1, 2, 5):
            raise ValueError(f"unexpected field {number}")
    if not pieces:
        raise ValueError("no pieces")
    return model


def _check_xlmr_layout(model: _SpmModel) -> str | None:
    """Why ``model`` cannot be converted with XLM-R's fairseq ids, or ``None`` when it can."""
    if model.model_type != 1:
        kind = {2: "BPE", 3: "WORD", 4: "CHAR"}.get(model.model_type, str(model.model_type))
        return f"a {kind} sentencepiece model; only unigram models (XLM-R, mLUKE, LUKE-Japanese) are supported"
    if model.treat_whitespace_as_suffix or not model.escape_whitespaces:
        return "a sentencepiece model with unsupported whitespace settings (treat_whitespace_as_suffix, no escaping)"
    head = [(p, t) for p, _, t in model.pieces[:3]]
    expected = [("<s>", _SPM_CONTROL), ("</s>", _SPM_CONTROL)]
    if len(model.pieces) < 4 or head[0][1] != _SPM_UNKNOWN or head[1:] != expected:
        return f"pieces 0-2 are {head}, expected XLM-R's <unk>, <s>, </s> (the fairseq id layout needs them)"
    clash = sorted({p for p, _, _ in model.pieces[3:]} & {"<s>", "<pad>", "</s>", "<unk>", "<mask>"})
    if clash:
        return f"the pieces include {clash}, which the fairseq id layout adds itself"
    return None


def _sentencepiece(path: Path) -> tuple[Tokenizer, bytes]:
    """A SentencePiece unigram model (XLM-R's ``sentencepiece.bpe.model``) as a ``tokenizers`` Unigram
    tokenizer with XLM-R's fairseq ids, and the file's bytes (for :meth:`LukeTokenizer.save_pretrained`).

    fairseq ids: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, every other piece its sentencepiece id + 1,
    ``<mask>`` last — the ids mLUKE / LUKE-Japanese were trained with (``MLukeTokenizer`` in transformers 4,
    ``XLMRobertaTokenizer``).  The text pipeline follows SentencePiece's own normalizer spec (its precompiled
    NFKC character map, extra-whitespace removal, the ``▁`` dummy prefix), so the pieces are those of
    ``SentencePieceProcessor.encode``.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise TokenizerError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        model = _parse_sentencepiece(data)
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as err:
        raise TokenizerError(f"{path}: not a sentencepiece model ({error_summary(err)})") from None
    reason = _check_xlmr_layout(model)
    if reason is not None:
        raise TokenizerError(f"{path}: {reason}")
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(piece, score) for piece, score, _ in model.pieces[3:]]
    vocab.append(("<mask>", 0.0))
    try:
        tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=model.byte_fallback))
        steps = [normalizers.Precompiled(model.precompiled_charsmap)] if model.precompiled_charsmap else []
    except Exception as err:  # tokenizers raises plain Exception
        raise TokenizerError(f"{path}: not a usable sentencepiece model ({error_summary(err)})") from None
    if model.remove_extra_whitespaces:  # only spaces: SentencePiece leaves newlines alone
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    steps.append(normalizers.Replace(" ", "▁"))
    if model.add_dummy_prefix:  # Metaspace skips the prefix when the text starts with "▁"; SentencePiece doesn't
        steps.append(normalizers.Replace(Regex(r"\A▁"), "▁▁"))
    tok.normalizer = normalizers.Sequence(steps)
    scheme = "always" if model.add_dummy_prefix else "never"
    pre: list[Any] = [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=False)]
    if model.split_digits:
        pre.append(pre_tokenizers.Digits(individual_digits=True))
    tok.pre_tokenizer = pre[0] if len(pre) == 1 else pre_tokenizers.Sequence(pre)
    if model.byte_fallback:
        tok.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
    else:
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)
    specials = [AddedToken(t, normalized=False) for t in ("<s>", "<pad>", "</s>", "<unk>")]
    specials.append(AddedToken("<mask>", lstrip=True, normalized=False))  # "a <mask>": the space goes with it
    tok.add_special_tokens(specials)
    return tok, data
