"""Dynamic masking and batching of pretraining items (spec §2.6).

Masking is a pure function of ``(item, item index, seed, epoch)``: the random generator of an item is
``numpy.random.default_rng([seed, epoch, index])``, so a run is reproducible whatever the number of
processes, data-loader workers or restarts, and every epoch sees a new mask (RoBERTa-style dynamic
masking).

Per item:

* **Entities** (done first): ``max(1, round(n × masked_entity_prob))`` mention slots are chosen uniformly
  without replacement; their label is the original id (``[UNK]`` included) and their input id is always the
  entity ``[MASK]`` id. Items without mentions have no entity target.
* **Words**: the budget is ``max(1, round(n_words × masked_lm_prob))``. Candidate units are whole words
  (a WordPiece token starting with ``##``, or a byte-level BPE token that does not start with ``Ġ`` and is
  not punctuation, continues the previous word), or single tokens with ``whole_word_masking: false``. Units
  are visited in random order; a unit that would overflow the budget is skipped. Each chosen unit draws one
  number ``p``: ``p < 1 - random - unmasked`` → every token becomes ``[MASK]``; the next ``random`` share →
  every token becomes a random non-special token; otherwise the tokens are kept. If nothing fits (a single
  word longer than the budget), one random token is masked with ``[MASK]``.
* Labels are the original ids at chosen positions and ``-100`` everywhere else ([CLS]/[SEP] included).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from luke.errors import DatasetError, TokenizerError, shorten
from luke.pretraining.config import MaskingConfig

IGNORE_INDEX = -100
_PUNCTUATION = set(string.punctuation)


@dataclass
class WordVocabInfo:
    """What masking needs to know about the word tokenizer."""

    vocab_size: int
    cls_id: int
    sep_id: int
    pad_id: int
    mask_id: int
    continuation: np.ndarray  # (V,) bool: the token continues the previous word
    random_ids: np.ndarray  # ids a "random word" replacement draws from (no special tokens)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, vocab_size: int | None = None) -> WordVocabInfo:
        """Build from a ``transformers`` fast tokenizer: BERT WordPiece (``##`` marks a continuation),
        SentencePiece (mLUKE / XLM-R: ``▁`` marks a word start) or byte-level BPE (``Ġ`` marks one); a
        piece that starts with punctuation starts a unit of its own in the last two."""
        vocab = tokenizer.get_vocab()
        size = max(vocab_size or 0, max(vocab.values()) + 1)
        tokens = [""] * size
        for token, index in vocab.items():
            tokens[index] = token
        backend = tokenizer.backend_tokenizer
        model_type = type(backend.model).__name__
        pre_tokenizer = json.dumps(json.loads(backend.to_str()).get("pre_tokenizer"))
        word_start = "▁" if model_type == "Unigram" or '"Metaspace"' in pre_tokenizer else "Ġ"
        continuation = np.zeros(size, dtype=bool)
        for index, token in enumerate(tokens):
            if not token:
                continue
            if model_type == "WordPiece":
                continuation[index] = token.startswith("##")
            else:
                continuation[index] = not token.startswith(word_start) and token[0] not in _PUNCTUATION
        special = set(tokenizer.all_special_ids)
        for index, token in enumerate(tokens):
            if token.startswith("[unused") or (token.startswith("<") and token.endswith(">")) or not token:
                special.add(index)
        continuation[list(special)] = False
        random_ids = np.array([i for i in range(size) if i not in special], dtype=np.int64)
        for name in ("cls_token_id", "sep_token_id", "pad_token_id", "mask_token_id"):
            if getattr(tokenizer, name, None) is None:
                raise TokenizerError(f"the tokenizer has no {name.removesuffix('_id')} (needed for pretraining)")
        return cls(
            vocab_size=size,
            cls_id=tokenizer.cls_token_id,
            sep_id=tokenizer.sep_token_id,
            pad_id=tokenizer.pad_token_id,
            mask_id=tokenizer.mask_token_id,
            continuation=continuation,
            random_ids=random_ids,
        )


@dataclass
class EntityVocabInfo:
    """Special entity ids (resolved by name, never assumed)."""

    pad_id: int
    mask_id: int
    size: int | None = None  # the vocabulary size, when known: entity ids of an item are checked against it


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator that decides the masking of item ``index`` in ``epoch``."""
    return np.random.default_rng([seed, epoch, index])


def word_units(word_ids: np.ndarray, continuation: np.ndarray, whole_word: bool) -> list[np.ndarray]:
    """Positions grouped into masking units (whole words, or single tokens)."""
    n = len(word_ids)
    if not whole_word or n == 0:
        return [np.array([i]) for i in range(n)]
    starts = np.flatnonzero(~continuation[word_ids])
    if n and (len(starts) == 0 or starts[0] != 0):
        starts = np.concatenate([[0], starts])
    bounds = np.append(starts, n)
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def mask_item(
    item: dict[str, Any],
    index: int,
    *,
    seed: int,
    epoch: int,
    masking: MaskingConfig,
    words: WordVocabInfo,
    entities: EntityVocabInfo,
) -> dict[str, np.ndarray]:
    """Mask one dataset item; returns unpadded numpy arrays with [CLS]/[SEP] added.

    Keys: ``input_ids``, ``labels`` (L+2), ``entity_ids``, ``entity_labels`` (E), ``entity_position_ids``
    (E, M_item), 0-based over ``input_ids`` (shifted by one for [CLS]), padded with -1.
    """
    rng = item_rng(seed, epoch, index)
    word_ids = np.asarray(item["word_ids"], dtype=np.int64)
    entity_ids = np.asarray(item["entity_ids"], dtype=np.int64)
    mentions = item["entity_position_ids"]
    _check_item(word_ids, entity_ids, mentions, index, words, entities)

    # ---- entities: always [MASK]
    n_ent = len(entity_ids)
    entity_labels = np.full(n_ent, IGNORE_INDEX, dtype=np.int64)
    masked_entities = entity_ids.copy()
    if n_ent and masking.masked_entity_prob > 0:
        k = max(1, round(n_ent * masking.masked_entity_prob))
        chosen = rng.choice(n_ent, size=min(k, n_ent), replace=False)
        entity_labels[chosen] = entity_ids[chosen]
        masked_entities[chosen] = entities.mask_id

    # ---- words: whole-word 80/10/10
    n = len(word_ids)
    labels = np.full(n, IGNORE_INDEX, dtype=np.int64)
    masked_words = word_ids.copy()
    if n and masking.masked_lm_prob > 0:
        budget = max(1, round(n * masking.masked_lm_prob))
        units = word_units(word_ids, words.continuation, masking.whole_word_masking)
        mask_share = 1.0 - masking.random_word_prob - masking.unmasked_word_prob
        done = 0
        for u in rng.permutation(len(units)):
            unit = units[u]
            if done + len(unit) > budget:
                continue
            p = rng.random()
            labels[unit] = word_ids[unit]
            if p < mask_share:
                masked_words[unit] = words.mask_id
            elif p < mask_share + masking.random_word_prob:
                masked_words[unit] = words.random_ids[rng.integers(len(words.random_ids), size=len(unit))]
            done += len(unit)
            if done == budget:
                break
        if done == 0:
            i = int(rng.integers(n))
            labels[i] = word_ids[i]
            masked_words[i] = words.mask_id

    width = max([len(m) for m in mentions], default=1)
    positions = np.full((n_ent, max(width, 1)), -1, dtype=np.int64)
    for e, mention in enumerate(mentions):
        positions[e, : len(mention)] = np.asarray(mention, dtype=np.int64) + 1  # +1 for [CLS]
    return {
        "input_ids": np.concatenate([[words.cls_id], masked_words, [words.sep_id]]),
        "labels": np.concatenate([[IGNORE_INDEX], labels, [IGNORE_INDEX]]),
        "entity_ids": masked_entities,
        "entity_labels": entity_labels,
        "entity_position_ids": positions,
    }


def _check_item(
    word_ids: np.ndarray,
    entity_ids: np.ndarray,
    mentions: Any,
    index: int,
    words: WordVocabInfo,
    entities: EntityVocabInfo,
) -> None:
    """A dataset item whose ids do not fit the vocabularies (a damaged or foreign dataset) is a
    :class:`DatasetError` rather than an index error deep in the model."""
    where = f"dataset item {index} (0-based)"
    if len(word_ids) and (word_ids.min() < 0 or word_ids.max() >= words.vocab_size):
        bad = int(word_ids.max() if word_ids.max() >= words.vocab_size else word_ids.min())
        raise DatasetError(f"{where}: word id {bad} is outside the tokenizer's vocabulary (size {words.vocab_size})")
    if len(entity_ids) and (entity_ids.min() < 0 or (entities.size is not None and entity_ids.max() >= entities.size)):
        bad = int(entity_ids.min() if entity_ids.min() < 0 else entity_ids.max())
        raise DatasetError(f"{where}: entity id {bad} is outside the entity vocabulary (size {entities.size})")
    if len(mentions) != len(entity_ids):
        raise DatasetError(f"{where}: {len(entity_ids)} entities but {len(mentions)} entity position lists")
    for mention in mentions:
        positions = np.asarray(mention, dtype=np.int64)
        if len(positions) == 0 or positions.min() < 0 or positions.max() >= len(word_ids):
            raise DatasetError(
                f"{where}: entity positions {shorten(positions.tolist())} are not word positions of the item "
                f"(0 to {len(word_ids) - 1})"
            )


def collate(examples: list[dict[str, np.ndarray]], *, word_pad_id: int, entity_pad_id: int) -> dict[str, torch.Tensor]:
    """Pad masked items to the longest in the batch (at least one entity slot and one mention position)."""
    B = len(examples)
    L = max(len(x["input_ids"]) for x in examples)
    E = max(1, max(len(x["entity_ids"]) for x in examples))
    M = max(1, max(x["entity_position_ids"].shape[1] for x in examples))
    input_ids = np.full((B, L), word_pad_id, dtype=np.int64)
    labels = np.full((B, L), IGNORE_INDEX, dtype=np.int64)
    attention = np.zeros((B, L), dtype=np.int64)
    entity_ids = np.full((B, E), entity_pad_id, dtype=np.int64)
    entity_labels = np.full((B, E), IGNORE_INDEX, dtype=np.int64)
    entity_attention = np.zeros((B, E), dtype=np.int64)
    positions = np.full((B, E, M), -1, dtype=np.int64)
    for b, x in enumerate(examples):
        n, e = len(x["input_ids"]), len(x["entity_ids"])
        input_ids[b, :n] = x["input_ids"]
        labels[b, :n] = x["labels"]
        attention[b, :n] = 1
        entity_ids[b, :e] = x["entity_ids"]
        entity_labels[b, :e] = x["entity_labels"]
        entity_attention[b, :e] = 1
        p = x["entity_position_ids"]
        positions[b, :e, : p.shape[1]] = p
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention),
        "labels": torch.from_numpy(labels),
        "entity_ids": torch.from_numpy(entity_ids),
        "entity_attention_mask": torch.from_numpy(entity_attention),
        "entity_position_ids": torch.from_numpy(positions),
        "entity_labels": torch.from_numpy(entity_labels),
    }
