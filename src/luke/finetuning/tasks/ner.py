"""Named entity recognition as span classification (CoNLL-2003; spec §3.3).

* Input: CoNLL column files (word first, tag last; IOB1 or IOB2; ``-DOCSTART-`` lines separate documents,
  blank lines sentences).  Each document is tokenized once (each word separately, so spans fall on word
  boundaries).
* Document context: every sentence is encoded inside a window of at most ``max_seq_length`` tokens: the
  budget left after the sentence is split in half; a side with less context takes what it has and the
  other side gets the rest.  A sentence longer than the window is cut into word-aligned pieces.
* Candidates: every word-aligned span inside the sentence of at most ``max_mention_length`` subwords is a
  ``[MASK]`` entity (positions = its subwords), enumerated with NumPy for the whole sentence at once;
  label = gold type or ``NIL`` (0).  Candidates are split into ``ceil(n / max_entity_length)`` near-equal
  chunks, one feature each.  (The legacy padding entity for one-candidate sentences is not added.)
* Head: ``Linear(3H, C)`` on [start word; end word; entity] (``LukeForEntitySpanClassification``).
* Decoding: per candidate (max logit, argmax); non-``NIL`` ones are accepted greedily by descending
  score unless they overlap an accepted span of the same sentence.  :func:`greedy_decode` does this for
  all sentences at once: each round accepts the best remaining candidate of every sentence and removes
  whatever overlaps it, so the number of rounds is the largest number of entities in one sentence.
* Metric: entity-level micro P/R/F1 per sentence (:func:`luke.finetuning.metrics.span_f1`), equal to
  ``seqeval``/``conlleval`` (checked in the tests).  Gold entities longer than ``max_mention_length``
  subwords can never be predicted; they stay in the gold data (counted as misses) and are reported.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from luke.errors import ConfigError, DataError, shorten
from luke.files import atomic_output, text_lines
from luke.finetuning.data import require
from luke.finetuning.metrics import Span, span_f1, spans_to_tags, tags_to_spans
from luke.finetuning.options import EntityCapOptions
from luke.finetuning.tasks.base import Feature, Task, TaskDefaults, TaskOptions, softmax

__all__ = ["NerTask", "NerDocument", "NerPrediction", "greedy_decode", "read_conll", "enumerate_spans"]

logger = logging.getLogger(__name__)
NIL = "NIL"
_TAG = re.compile(r"^(O|[BIESLU][-_].+)$")
_WORD = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")


@dataclass
class NerDocument:
    """One document: its sentences (lists of words) and, for labelled data, their tags."""

    sentences: list[list[str]]
    tags: list[list[str]] | None = None
    path: str = ""
    lines: list[int] = field(default_factory=list)  # line of each sentence's first word
    offsets: list[list[tuple[int, int]]] | None = None  # character offsets of words (raw-text input)
    text: str | None = None


@dataclass
class NerPrediction:
    """The entities of one sentence, ``(first word, last word, type)`` sorted, and each one's probability
    (softmax over the span's classes, ``NIL`` included)."""

    spans: list[Span] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def _spans(prediction: NerPrediction | list[Span]) -> list[Span]:
    return prediction.spans if isinstance(prediction, NerPrediction) else list(prediction)


def read_conll(path: str | Path) -> list[tuple[list[list[list[str]]], list[int]]]:
    """Parse a CoNLL column file into documents of sentences of rows (column lists), with the line of
    each sentence's first row.  ``-DOCSTART-`` starts a new document; a file without it is one document."""
    path = Path(path)
    docs: list[tuple[list[list[list[str]]], list[int]]] = []
    sents: list[list[list[str]]] = []
    lines: list[int] = []
    sent: list[list[str]] = []
    width = None

    def close_sentence() -> None:
        nonlocal sent
        if sent:
            sents.append(sent)
            sent = []

    for number, raw in text_lines(path):  # missing, unreadable, non-UTF-8: DataError with file and line
        cols = raw.split()
        if not cols:
            close_sentence()
            continue
        if cols[0] == "-DOCSTART-":
            close_sentence()
            if sents:
                docs.append((sents, lines))
            sents, lines = [], []
            continue
        if len(cols) < 2:
            raise DataError(path, f"expected at least 2 columns (word ... tag), got {shorten(raw.strip())!r}", number)
        if width is None:
            width = len(cols)
        elif len(cols) != width:
            raise DataError(path, f"expected {width} columns like the lines before, got {len(cols)}", number)
        if not _TAG.match(cols[-1]):
            raise DataError(path, f"invalid tag {shorten(cols[-1])!r} (expected O, B-X, I-X, ...)", number)
        if not sent:
            lines.append(number)
        sent.append(cols)
    close_sentence()
    if sents:
        docs.append((sents, lines))
    return docs


@lru_cache(maxsize=256)
def _triu(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n)
    return i.astype(np.int64), j.astype(np.int64)


def enumerate_spans(word_starts: np.ndarray, word_ends: np.ndarray, max_mention_length: int):
    """All word spans (i, j), i <= j, whose subwords ``word_starts[i] .. word_ends[j]-1`` number at most
    ``max_mention_length``.  Returns (i, j) index arrays, ordered by start then end."""
    i, j = _triu(len(word_starts))
    keep = (word_ends[j] - word_starts[i]) <= max_mention_length
    return i[keep], j[keep]


def greedy_decode(sentence: np.ndarray, start: np.ndarray, end: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the accepted candidates: by descending score, a candidate is accepted unless it overlaps
    (shares a word with) an already accepted one of the same sentence.  Ties go to the earlier candidate.

    Vectorised over sentences: each round accepts the best remaining candidate of every sentence at once
    (they cannot conflict) and drops all candidates overlapping it.
    """
    n = len(score)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((np.arange(n), -np.asarray(score, np.float64)))
    sent, st, en = np.asarray(sentence)[order], np.asarray(start)[order], np.asarray(end)[order]
    _, sent = np.unique(sent, return_inverse=True)  # dense sentence ids
    n_sent = int(sent.max()) + 1
    alive = np.arange(n)
    accepted = []
    while alive.size:
        _, first = np.unique(sent[alive], return_index=True)  # best alive candidate of each sentence
        pick = alive[first]
        accepted.append(pick)
        acc_start = np.full(n_sent, -1, np.int64)
        acc_end = np.full(n_sent, -2, np.int64)
        acc_start[sent[pick]], acc_end[sent[pick]] = st[pick], en[pick]
        s = sent[alive]
        overlap = (st[alive] <= acc_end[s]) & (acc_start[s] <= en[alive])
        alive = alive[~overlap]
    return np.sort(order[np.concatenate(accepted)])


@dataclass(frozen=True)
class NerOptions(TaskOptions, EntityCapOptions):
    """NER options: candidate spans of at most 16 subwords, 128 per feature."""

    max_mention_length: int = 16


class NerTask(Task):
    """CoNLL-2003 NER as span classification (``luke finetune ner``)."""

    name = "ner"
    model_class_name = "LukeForEntitySpanClassification"
    defaults = TaskDefaults(gradient_accumulation_steps=2, num_train_epochs=5, seed=35, select_best=False)
    split_files = {
        "train": ("train.txt", "eng.train", "train.conll"),
        "dev": ("valid.txt", "dev.txt", "eng.testa", "dev.conll"), "test": ("test.txt", "eng.testb", "test.conll"),
    }  # fmt: skip
    options_class = NerOptions
    options: NerOptions
    prediction_suffix = "conll"
    raw_input = "{'text'} or {'tokens': [...]}"
    label_kind = "entity"

    def read(self, path: str | Path) -> list[NerDocument]:
        out = []
        for sents, lines in read_conll(path):
            out.append(
                NerDocument(
                    [[row[0] for row in s] for s in sents], [[row[-1] for row in s] for s in sents], str(path), lines
                )
            )
        return out

    def gold_labels(self, example: NerDocument) -> list[str]:
        return sorted({span[2] for tags in example.tags or [] for span in tags_to_spans(tags)})

    def build_labels(self, train) -> list[str]:
        return [NIL] + super().build_labels(train)

    def set_labels_from(self, train) -> None:
        super().set_labels_from(train)
        if self.labels == [NIL]:
            logger.warning(
                "%s: the training data has no entity (every tag is O): the model can only learn to predict none",
                train[0].path if train else "train",
            )

    def check_labels(self, examples, split) -> None:
        known = set(self.labels or ())
        for doc in examples:
            for k, tags in enumerate(doc.tags or []):
                for span in tags_to_spans(tags):
                    if span[2] not in known:
                        if self.unseen_labels == "error":
                            raise DataError(
                                doc.path,
                                f"entity type {shorten(span[2])!r} {self.unseen_reason()}; pass "
                                "--unseen-labels keep to score such entities as misses",
                                doc.lines[k] + span[0] if doc.lines else None,
                            )
                        why = self._unseen_short()
                        logger.warning("%s: entity type %r %s is kept as unpredictable", split, shorten(span[2]), why)
                        known.add(span[2])

    # --------------------------------------------------------------------------------------- features
    def featurize(self, examples: Sequence[NerDocument], tokenizer: Any) -> list[Feature]:
        max_len, max_mention = self.options.max_seq_length, self.options.max_mention_length
        max_entities = self.options.max_entity_length
        if max_len < 3 or max_mention < 1 or max_entities < 1:
            raise ConfigError("max_seq_length must be >= 3, max_mention_length and max_entity_length >= 1")
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        mask_id = tokenizer.entity_mask_token_id
        unk_id = tokenizer.convert_tokens_to_ids(tokenizer.unk_token)
        unk_id = cls_id if unk_id is None else unk_id
        label2id = self.label2id if self.labels else {}
        backend = tokenizer.backend_tokenizer
        # Byte-level BPE (RoBERTa): every word with its leading space, as in running text (spec §3.3).
        prefix = " " if getattr(getattr(tokenizer, "encoder", None), "byte_level", False) else ""
        vocab = sorted({w for doc in examples for s in doc.sentences for w in s})
        encoded = backend.encode_batch([prefix + w for w in vocab], add_special_tokens=False)
        pieces = {w: (e.ids or [unk_id]) for w, e in zip(vocab, encoded, strict=True)}
        feats: list[Feature] = []
        uncovered = 0
        sentence_index = 0
        budget = max_len - 2
        for doc in examples:
            words = [w for s in doc.sentences for w in s]
            lens = np.fromiter((len(pieces[w]) for w in words), np.int64, len(words))
            wstart = np.concatenate([[0], np.cumsum(lens)])  # subword offset of each word (+ end)
            doc_ids = np.fromiter((t for w in words for t in pieces[w]), np.int64, int(wstart[-1]))
            total = int(wstart[-1])
            first_word = 0
            for k, sent in enumerate(doc.sentences):
                a, b = first_word, first_word + len(sent)
                first_word = b
                gold = tags_to_spans(doc.tags[k]) if doc.tags is not None else []
                label_matrix = np.zeros((len(sent), len(sent)), np.int64)
                for gs, ge, typ in gold:
                    label_matrix[gs, ge] = label2id.get(typ, 0)
                    if wstart[a + ge + 1] - wstart[a + gs] > max_mention:
                        uncovered += 1
                # Word-aligned pieces of at most `budget` subwords (one piece unless the sentence is huge).
                cuts, pa = [], a
                while pa < b:
                    pb = int(np.searchsorted(wstart, wstart[pa] + budget, side="right")) - 1
                    pb = min(max(pb, pa + 1), b)
                    cuts.append((pa, pb))
                    pa = pb
                for pa, pb in cuts:
                    ta, tb = int(wstart[pa]), int(wstart[pb])
                    room = max(budget - (tb - ta), 0)
                    right = min(total - tb, room - min(ta, room // 2))
                    left = min(ta, room - right)
                    w0, w1 = ta - left, tb + right
                    input_ids = np.concatenate([[cls_id], doc_ids[w0:w1][:budget], [sep_id]]).astype(np.int64)
                    i, j = enumerate_spans(wstart[pa:pb], wstart[pa + 1 : pb + 1], max_mention)
                    if len(i) == 0:
                        continue
                    starts = wstart[pa + i] - w0 + 1
                    ends = wstart[pa + j + 1] - w0  # last subword (inclusive), +1 for [CLS] -1 for end
                    si, sj = i + (pa - a), j + (pa - a)  # word indices in the sentence
                    labels = label_matrix[si, sj]
                    n_chunks = -(-len(i) // max_entities)
                    for part in np.array_split(np.arange(len(i)), n_chunks):
                        feats.append(
                            {
                                "input_ids": input_ids,
                                "entity_ids": np.full(len(part), mask_id, np.int64),
                                "entity_start_positions": starts[part],
                                "entity_end_positions": ends[part],
                                "labels": labels[part],
                                "example_index": sentence_index,
                                "span_start": si[part],
                                "span_end": sj[part],
                            }
                        )
                sentence_index += 1
        if uncovered:
            logger.warning(
                "%d gold entities are longer than max_mention_length=%d subwords and can never be predicted",
                uncovered,
                max_mention,
            )
        return feats

    # --------------------------------------------------------------------------------------- outputs
    @staticmethod
    def sentence_list(examples: Sequence[NerDocument]) -> list[tuple[NerDocument, int]]:
        return [(doc, k) for doc in examples for k in range(len(doc.sentences))]

    def decode(self, examples, features, logits) -> list[NerPrediction]:
        n_sent = sum(len(doc.sentences) for doc in examples)
        found: list[list[tuple[Span, float]]] = [[] for _ in range(n_sent)]
        if not features:
            return [NerPrediction() for _ in found]
        labels = self.labels or []
        sent = np.concatenate([np.full(len(f["span_start"]), f["example_index"]) for f in features])
        start = np.concatenate([f["span_start"] for f in features])
        end = np.concatenate([f["span_end"] for f in features])
        lg = np.concatenate([np.asarray(x)[: len(f["span_start"])] for f, x in zip(features, logits, strict=True)])
        label, score = lg.argmax(-1), lg.max(-1)
        keep = np.flatnonzero(label != 0)
        accepted = keep[greedy_decode(sent[keep], start[keep], end[keep], score[keep])]
        probs = softmax(lg[accepted]).max(-1) if len(accepted) else np.zeros(0)
        for idx, prob in zip(accepted, probs.tolist(), strict=True):
            found[int(sent[idx])].append(((int(start[idx]), int(end[idx]), labels[int(label[idx])]), prob))
        return [NerPrediction(*map(list, zip(*sorted(f), strict=True))) if f else NerPrediction() for f in found]

    def score(self, examples, predictions) -> dict[str, Any]:
        gold = [tags_to_spans(doc.tags[k]) if doc.tags else [] for doc, k in self.sentence_list(examples)]
        return span_f1(gold, [_spans(p) for p in predictions])

    @staticmethod
    def _scheme(examples: Sequence[NerDocument]) -> str:
        """``IOB1`` if some gold chunk starts with ``I-`` (the original CoNLL files), else ``IOB2``."""
        for doc in examples:
            for tags in doc.tags or []:
                prev = "O"
                for tag in tags:
                    if tag.startswith("I-") and prev[2:] != tag[2:]:
                        return "IOB1"
                    prev = tag
        return "IOB2"

    def write_predictions(self, path, examples, predictions) -> None:
        """CoNLL file ``word gold predicted`` (like ``conlleval`` input), predicted in the gold's scheme."""
        scheme = self._scheme(examples)
        it = iter(predictions)
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for doc in examples:
                f.write("-DOCSTART- O O\n\n")
                for k, sent in enumerate(doc.sentences):
                    pred = spans_to_tags(_spans(next(it)), len(sent), scheme)
                    gold = doc.tags[k] if doc.tags else ["O"] * len(sent)
                    f.writelines(f"{w} {g} {p}\n" for w, g, p in zip(sent, gold, pred, strict=True))
                    f.write("\n")

    def score_files(self, gold, predictions) -> dict[str, Any]:
        """Score a CoNLL predictions file (predicted tags in the last column, gold in the one before, as
        ``conlleval``), or against the last column of a separate ``gold`` CoNLL file."""
        pred_docs = read_conll(predictions)
        pred_sents = [s for sents, _ in pred_docs for s in sents]
        pred_lines = [n for _, lines in pred_docs for n in lines]
        if not pred_sents:
            raise DataError(predictions, "no predictions in the file (no sentence)")
        if gold is None:
            if any(len(row) < 3 for s in pred_sents for row in s):
                raise DataError(predictions, "without --gold the file needs 3+ columns (word ... gold predicted)")
            gold_tags = [[row[-2] for row in s] for s in pred_sents]
        else:
            gold_sents = [s for sents, _ in read_conll(gold) for s in sents]
            if not gold_sents:
                raise DataError(gold, "no sentence in the gold file")
            if len(gold_sents) != len(pred_sents):
                raise DataError(predictions, f"{len(pred_sents)} sentences but the gold file has {len(gold_sents)}")
            for gs, ps, line in zip(gold_sents, pred_sents, pred_lines, strict=True):
                if [r[0] for r in gs] != [r[0] for r in ps]:
                    raise DataError(predictions, "words differ from the gold file in the sentence starting here", line)
            gold_tags = [[row[-1] for row in s] for s in gold_sents]
        return span_f1([tags_to_spans(t) for t in gold_tags], [tags_to_spans([r[-1] for r in s]) for s in pred_sents])

    def examples_from_raw(self, records, path) -> list[NerDocument]:
        out = []
        for line, rec in records:
            if isinstance(rec, dict) and "tokens" in rec:
                words = rec["tokens"]
                if not isinstance(words, list):
                    got = shorten(json.dumps(words))
                    raise DataError(path, f"field 'tokens' must be a list of strings, got {got}", line)
                bad = next((t for t in words if not isinstance(t, str) or not t.strip()), None)
                if not words or bad is not None:
                    got = f"got {shorten(json.dumps(bad))}" if words else "got an empty list"
                    raise DataError(path, f"field 'tokens' must be a non-empty list of non-blank strings, {got}", line)
                text = " ".join(words)
                if "text" in rec and rec["text"] != text:
                    raise DataError(
                        path,
                        f"fields 'text' and 'tokens' disagree: 'text' is {shorten(json.dumps(rec['text']))}, the "
                        f"tokens joined by spaces are {shorten(json.dumps(text))}; give one of them",
                        line,
                    )
                offsets, pos = [], 0
                for w in words:
                    offsets.append((pos, pos + len(w)))
                    pos += len(w) + 1
            else:
                require(rec, {"text": str}, path, line)
                text = rec["text"]
                matches = list(_WORD.finditer(text))
                if not matches:
                    raise DataError(path, "the text has no words", line)
                words = [m.group() for m in matches]
                offsets = [m.span() for m in matches]
            out.append(NerDocument([words], None, str(path), [line], [offsets], text))
        return out

    def format_prediction(self, example: NerDocument, prediction: NerPrediction | list[Span]) -> dict[str, Any]:
        """``{"text", "entities": [{"start", "end", "text", "type", "score": its probability}, ...]}``."""
        offsets = example.offsets[0] if example.offsets else []
        text = example.text or " ".join(example.sentences[0])
        scores = prediction.scores if isinstance(prediction, NerPrediction) else []
        entities = []
        for k, (s, e, typ) in enumerate(_spans(prediction)):
            cs, ce = offsets[s][0], offsets[e][1]
            entity: dict[str, Any] = {"start": cs, "end": ce, "text": text[cs:ce], "type": typ}
            if scores:
                entity["score"] = scores[k]
            entities.append(entity)
        return {"text": text, "entities": entities}
