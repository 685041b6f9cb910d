"""Cloze-style QA over entities: ReCoRD (``luke finetune record``), spec §3.4 and §9.

Data: the official ReCoRD v1.0 JSON (``train.json``, ``dev.json``, ``test.json``): ``data[].passage.text``,
``data[].passage.entities[{start, end}]`` and ``data[].qas[{id, query, answers[{start, end, text}]}]``,
with **inclusive** ``end`` offsets (converted to end-exclusive here).  One example per question; its
candidates are the passage's entity spans (identical spans listed twice are kept once).

Input layout.  We follow ``transformers``' marker tokens instead of the legacy ``[PLACEHOLDER]`` /
``[ENTITY]`` / ``[HIGHLIGHT]`` words (spec §8: "pick one and document it"):

* query: newlines become spaces; the ``@placeholder`` is replaced by the tokenizer's ``<ent2>`` marker
  (:attr:`LukeTokenizer.entity_2_token`, an added special token, so the raw string is one token); the
  whitespace before it is dropped (``followed by<ent2> a week``), so byte-level BPE tokenizers do not emit
  a lone-space token.  At most ``max_query_length`` (90) query tokens are kept, cut at token boundaries
  around the placeholder (the placeholder is always kept, unlike the legacy cut of the right end).
* passage: every candidate mention is wrapped as ``<ent> mention<ent>`` (``<ent>`` =
  :attr:`LukeTokenizer.entity_1_token`; the whitespace before the opening marker is dropped and one space
  put after it, so the mention is tokenized with a prefix space like the legacy code did).  Each
  ``@highlight`` line marker (with the whitespace around it) becomes the plain separator ``"; "`` — there
  is no third marker token; the highlights read as a list of clauses.
* sequence: ``[CLS] query [SEP] passage-window [SEP]`` (BERT: token type 1 for the passage) or
  ``<s> query </s></s> passage-window </s>`` (RoBERTa, token types 0), as the tokenizer builds pairs.
  Long passages are cut into windows of ``max_seq_length − len(query) − specials`` tokens whose starts are
  ``doc_stride`` (128) tokens apart (the legacy meaning; the tokenizer's ``stride`` is the overlap, so it is
  converted per query length).  Windows without a fully contained candidate are dropped.
* entities: entity 0 is a ``[MASK]`` on the ``<ent2>`` token (the placeholder); entities 1.. are one
  ``[MASK]`` per candidate inside the window, positions covering ``<ent> mention <ent>`` (at most
  ``max_mention_length`` = 30 tokens).  Label 1 iff the candidate's span equals one of the answer spans.

Head: :class:`luke.modeling.LukeForEntitySpanQA` (``Linear(2H, 1)`` on [placeholder; candidate], BCE).
Decoding: per question the candidate with the highest logit across all its windows; the answer is its
surface text in the original passage.  Metric: official ReCoRD EM/F1 (SQuAD normalisation, max over
the gold answers) in percent; questions without answers (allowed in dev/test) score 0, and they are
skipped with a warning in training.

Defaults (spec §3.6): lr 1e-5, batch 1 × accumulation 4, 2 epochs, seed 4, best dev EM kept.  The paper
ran 8 GPUs × batch 1 × accumulation 4 (= 32 per update); on one device pass
``--gradient-accumulation-steps 32`` (or launch on 8 processes) to match it.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from luke.errors import ConfigError, DataError, shorten
from luke.files import write_text_atomic
from luke.finetuning.data import check_text_span, int_pair, require
from luke.finetuning.metrics import qa_scores
from luke.finetuning.tasks.base import IGNORE_INDEX, Feature, Task, TaskDefaults, _pad_stack, sigmoid
from luke.finetuning.tasks.qa import QaOptions, load_data_file, passage_windows, score_prediction_file

__all__ = ["RecordTask", "RecordExample", "RecordPrediction", "mark_passage", "mark_query"]

logger = logging.getLogger(__name__)

PLACEHOLDER = "@placeholder"
HIGHLIGHT_SEPARATOR = "; "
_HIGHLIGHT = re.compile(r"\s*@highlight\s*")
ANSWER_LABEL = "answer"


@dataclass
class RecordExample:
    """One ReCoRD question (character offsets, end exclusive, into the original ``passage``)."""

    qid: str
    passage: str
    query: str
    candidates: list[tuple[int, int]]
    answers: list[tuple[int, int]] = field(default_factory=list)
    answer_texts: list[str] = field(default_factory=list)
    passage_id: str | None = None
    path: str = ""
    line: int | None = None


@dataclass
class RecordPrediction:
    """The chosen candidate of one question (``span`` None and ``text`` empty when it had no window), its
    logit and probability (sigmoid: each candidate is scored on its own, as trained), and the ``top_k`` best
    candidates, best first (``{"answer", "answer_span", "score", "probability"}``)."""

    text: str
    span: tuple[int, int] | None = None
    logit: float | None = None
    probability: float | None = None
    n_best: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- layout
def mark_query(query: str, marker: str) -> tuple[str, tuple[int, int]]:
    """The query with newlines as spaces and its first ``@placeholder`` replaced by ``marker`` (the
    whitespace before it dropped); returns the text and the marker's character span."""
    query = query.replace("\r", " ").replace("\n", " ")
    i = query.index(PLACEHOLDER)
    left = query[:i].rstrip()
    return left + marker + query[i + len(PLACEHOLDER) :], (len(left), len(left) + len(marker))


def mark_passage(
    text: str, candidates: Sequence[tuple[int, int]], marker: str, separator: str = HIGHLIGHT_SEPARATOR
) -> tuple[str, list[tuple[int, int]]]:
    """Wrap every candidate span as ``marker mention marker`` and replace ``@highlight`` line markers by
    ``separator``; returns the new text and each candidate's marker-to-marker span in it.

    Nested or equal-start candidates nest their markers (the outer one opens first and closes last);
    an ``@highlight`` that overlaps a candidate is left as it is."""
    opens: dict[int, list[int]] = defaultdict(list)
    closes: dict[int, list[int]] = defaultdict(list)
    for k, (s, e) in enumerate(candidates):
        opens[s].append(k)
        closes[e].append(k)
    regions: dict[int, int] = {}
    for m in _HIGHLIGHT.finditer(text):
        if not any(s < m.end() and m.start() < e for s, e in candidates):
            regions[m.start()] = m.end()
    buf: list[str] = []
    n = 0
    cur = 0
    new = [[0, 0] for _ in candidates]

    def rstrip() -> None:
        nonlocal n
        while buf:
            last = buf[-1].rstrip()
            n -= len(buf[-1]) - len(last)
            if last:
                buf[-1] = last
                return
            buf.pop()

    for p in sorted(set(opens) | set(closes) | set(regions)):
        if p < cur:  # inside a replaced region (only possible for empty spans, which are rejected)
            continue
        buf.append(text[cur:p])
        n += p - cur
        cur = p
        for k in sorted(closes.get(p, ()), key=lambda k: -candidates[k][0]):  # inner (later start) first
            buf.append(marker)
            n += len(marker)
            new[k][1] = n
        if p in regions:
            sep = "" if p == 0 or regions[p] == len(text) else separator
            buf.append(sep)
            n += len(sep)
            cur = regions[p]
        for k in sorted(opens.get(p, ()), key=lambda k: -candidates[k][1]):  # outer (later end) first
            rstrip()
            new[k][0] = n
            buf.append(marker + " ")
            n += len(marker) + 1
    buf.append(text[cur:])
    return "".join(buf), [(s, e) for s, e in new]


# ---------------------------------------------------------------------------------------------- reading
class _Lines:
    """Line numbers of the questions and passages of a ReCoRD file (by id)."""

    def __init__(self, lines: dict[str, int]) -> None:
        self._lines = lines

    def of(self, qid: Any) -> int | None:
        return self._lines.get(qid) if isinstance(qid, str) else None


def _int_pair(obj: Any, path: Path, line: int | None, what: str) -> tuple[int, int]:
    if not isinstance(obj, dict):
        raise DataError(path, f"{what} must be an object with 'start' and 'end', got {type(obj).__name__}", line)
    for key in ("start", "end"):
        if key not in obj:
            raise DataError(path, f"{what}: missing field {key!r}", line)
        if not isinstance(obj[key], int) or isinstance(obj[key], bool):
            raise DataError(path, f"{what}: field {key!r} must be an integer, got {shorten(obj[key])}", line)
    return obj["start"], obj["end"]


def _require(obj: Any, fields: dict[str, type], path: Path, line: int | None, where: str) -> None:
    """Like :func:`luke.finetuning.data.require`, naming the passage / question in the message."""
    if not isinstance(obj, dict):
        raise DataError(path, f"{where}: expected a JSON object, got {type(obj).__name__}", line)
    for name, kind in fields.items():
        if not isinstance(obj.get(name), kind):
            problem = "missing field" if name not in obj else f"non-{kind.__name__} field"
            raise DataError(path, f"{where}: {problem} {name!r}", line)


def _check_inclusive(s: int, e: int, text: str, path: Path, line: int | None, what: str) -> None:
    """An inclusive character span ``[s, e]`` must lie in ``text``."""
    if not 0 <= s <= e < len(text):
        raise DataError(
            path, f"{what}: [{s}, {e}] (inclusive) is out of range for a passage of {len(text)} characters", line
        )


def _check_query(query: str, path: Path | str, line: int | None, qid: str) -> None:
    if PLACEHOLDER not in query:
        raise DataError(path, f"question {qid}: the query has no {PLACEHOLDER!r}", line)


# ---------------------------------------------------------------------------------------------- task
@dataclass(frozen=True)
class RecordOptions(QaOptions):
    """ReCoRD options: longer queries and candidate mentions than SQuAD's defaults."""

    max_query_length: int = 90
    max_mention_length: int = 30


class RecordTask(Task):
    """ReCoRD cloze QA over the passage's entities (``luke finetune record``; see the module docstring).

    Options: :class:`RecordOptions`.  Defaults: batch 1 × accumulation 4 (the paper had 8 GPUs × 1 × 4 = 32)."""

    name = "record"
    model_class_name = "LukeForEntitySpanQA"
    defaults = TaskDefaults(train_batch_size=1, gradient_accumulation_steps=4, num_train_epochs=2, seed=4)
    main_metric = "exact_match"
    label_kind = "entity"
    label_keys = ("labels",)
    options_class = RecordOptions
    options: RecordOptions
    prediction_suffix = "json"
    raw_input = "{'passage', 'query' (with @placeholder), 'entities': [[s, e], ...], optional 'id'}"

    # ------------------------------------------------------------------------------------------ data
    def read(self, path: str | Path) -> list[RecordExample]:
        """Questions of an official ReCoRD JSON file (one :class:`RecordExample` each)."""
        path = Path(path)
        data, by_id = load_data_file(path, "the ReCoRD layout {'data': [{'passage': ..., 'qas': [...]}]}")
        lines = _Lines(by_id)
        out: list[RecordExample] = []
        seen: set[str] = set()
        for n, item in enumerate(data):
            pid = item.get("id") if isinstance(item, dict) else None
            where = f"passage {pid}" if pid is not None else f"data[{n}]"
            pline = lines.of(pid)
            _require(item, {"passage": dict, "qas": list}, path, pline, where)
            passage = item["passage"]
            for key, kind in (("text", str), ("entities", list)):
                if not isinstance(passage.get(key), kind):
                    raise DataError(path, f"{where}: missing or non-{kind.__name__} field 'passage.{key}'", pline)
            text = passage["text"]
            candidates: list[tuple[int, int]] = []
            for k, ent in enumerate(passage["entities"]):
                s, e = _int_pair(ent, path, pline, f"{where} entity {k}")
                _check_inclusive(s, e, text, path, pline, f"{where} entity {k}")
                if not text[s : e + 1].strip():
                    raise DataError(path, f"{where} entity {k}: [{s}, {e}] covers only whitespace", pline)
                candidates.append((s, e + 1))
            candidates = sorted(set(candidates))
            if not candidates:
                raise DataError(path, f"{where}: the passage has no entities (no answer candidates)", pline)
            for qa in item["qas"]:
                qid = qa.get("id") if isinstance(qa, dict) else None
                line = lines.of(qid) or pline
                _require(qa, {"id": str, "query": str}, path, line, f"{where} question {qid}")
                _check_query(qa["query"], path, line, qid)
                if qid in seen:
                    raise DataError(path, f"question id {qid} occurs twice", line)
                seen.add(qid)
                answers = qa.get("answers", [])
                if not isinstance(answers, list):
                    raise DataError(path, f"question {qid}: field 'answers' must be a list", line)
                spans, texts = [], []
                for k, ans in enumerate(answers):
                    s, e = _int_pair(ans, path, line, f"question {qid} answer {k}")
                    if not isinstance(ans.get("text"), str):
                        raise DataError(path, f"question {qid} answer {k}: missing string field 'text'", line)
                    _check_inclusive(s, e, text, path, line, f"question {qid} answer {k}")
                    if text[s : e + 1] != ans["text"]:
                        raise DataError(
                            path,
                            f"question {qid} answer {k}: text {shorten(ans['text'])!r} does not match the passage "
                            f"text {shorten(text[s : e + 1])!r} at [{s}, {e}]",
                            line,
                        )
                    if not ans["text"].strip():
                        raise DataError(path, f"question {qid} answer {k}: the answer is only whitespace", line)
                    spans.append((s, e + 1))
                    texts.append(ans["text"])
                out.append(
                    RecordExample(
                        qid, text, qa["query"], candidates, spans, texts, None if pid is None else str(pid),
                        str(path), line,
                    )
                )  # fmt: skip
        return out

    def load_splits(self, data_dir: str | Path, splits: Sequence[str] = ("train", "dev", "test")) -> dict[str, list]:
        """As :meth:`Task.load_splits`; training questions without answers are left out (with a warning)."""
        out = super().load_splits(data_dir, splits)
        if "train" in out:
            kept = [ex for ex in out["train"] if ex.answers]
            dropped = [ex for ex in out["train"] if not ex.answers]
            if dropped:
                logger.warning(
                    "train: skipped %d question(s) without answers (first: %s)", len(dropped), dropped[0].qid
                )
            if not kept:
                raise DataError(data_dir, "no training question has an answer")
            out["train"] = kept
        return out

    def gold_labels(self, example: RecordExample) -> list[str]:
        """The one fixed label (candidates are scored, not classified)."""
        return [ANSWER_LABEL]

    def build_labels(self, train: Sequence[Any]) -> list[str]:
        return [ANSWER_LABEL]

    # ------------------------------------------------------------------------------------------ features
    def featurize(self, examples: Sequence[RecordExample], tokenizer: Any) -> list[Feature]:
        """Windows of every question (see the module docstring); each feature has ``candidate_indices``
        (index into ``example.candidates`` of entities 1..) and float ``labels`` (1 = an answer span)."""
        o = self.options
        max_len, doc_stride, max_query, mention_len = (
            o.max_seq_length,
            o.doc_stride,
            o.max_query_length,
            o.max_mention_length,
        )
        if doc_stride < 1 or max_query < 1 or mention_len < 1:
            raise ConfigError("doc_stride, max_query_length and max_mention_length must be >= 1")
        if not examples:
            return []
        ent1, ent2 = tokenizer.entity_1_token, tokenizer.entity_2_token
        queries, ph_spans, passages, cand_spans = [], [], [], []
        marked: dict[tuple[str, tuple], tuple[str, list[tuple[int, int]]]] = {}
        for ex in examples:
            _check_query(ex.query, ex.path, ex.line, ex.qid)
            q, span = mark_query(ex.query, ent2)
            queries.append(q)
            ph_spans.append(span)
            key = (ex.passage, tuple(ex.candidates))  # questions of one passage share the marked text
            if key not in marked:
                marked[key] = mark_passage(ex.passage, ex.candidates, ent1)
            passages.append(marked[key][0])
            cand_spans.append(marked[key][1])

        q_lens = self._truncate_queries(tokenizer, queries, ph_spans, max_query)
        feats: list[Feature] = []
        windows = passage_windows(
            tokenizer, examples, queries, q_lens, passages, max_length=max_len, doc_stride=doc_stride,
            max_mention_length=mention_len, entity_spans=lambda i: [ph_spans[i]],
            entity_spans_pair=lambda i: cand_spans[i],
            max_entity_length=1 + max(len(c) for c in cand_spans),
        )  # fmt: skip
        for idx, enc in windows:
            for w, local in enumerate(enc["overflow_to_sample_mapping"]):
                i = idx[local]
                ex = examples[i]
                ent_idx = enc["entity_indices"][w]
                positions = enc["entity_position_ids"][w]
                input_ids = enc["input_ids"][w]
                if not ent_idx or input_ids[positions[0][0]] != tokenizer.entity_2_token_id:
                    raise AssertionError(f"question {ex.qid}: entity 0 of a window is not the placeholder")
                cands = ent_idx[1:]
                if not cands:
                    continue  # no candidate fully inside this window
                answers = set(ex.answers)
                labels = np.array([1.0 if ex.candidates[k] in answers else 0.0 for k in cands], np.float32)
                feats.append(
                    {
                        # compact dtypes (ReCoRD has ~100k questions x windows); collate makes int64 tensors
                        "input_ids": np.asarray(input_ids, np.int32),
                        "token_type_ids": np.asarray(enc["token_type_ids"][w], np.int8),
                        "entity_ids": np.asarray(enc["entity_ids"][w], np.int32),
                        "entity_token_type_ids": np.asarray(enc["entity_token_type_ids"][w], np.int8),
                        "entity_position_ids": np.asarray(positions, np.int16).reshape(len(ent_idx), mention_len),
                        "candidate_indices": np.asarray(cands, np.int64),
                        "labels": labels,
                        "example_index": i,
                        "window": w,
                    }
                )
        feats.sort(key=lambda f: (f["example_index"], f["window"]))
        for f in feats:
            del f["window"]
        return feats

    @staticmethod
    def _truncate_queries(
        tokenizer: Any, queries: list[str], ph_spans: list[tuple[int, int]], max_query: int
    ) -> list[int]:
        """Cut queries longer than ``max_query`` tokens (in place, at token boundaries, keeping the
        placeholder); returns each query's token count."""

        def encode(idx: list[int]) -> Any:
            return tokenizer(
                [queries[i] for i in idx],
                entity_spans=[[ph_spans[i]] for i in idx],
                task=None,
                add_special_tokens=False,
                return_offsets_mapping=True,
                max_entity_length=1,
                max_mention_length=1,
            )

        enc = encode(list(range(len(queries))))
        lengths = [len(ids) for ids in enc["input_ids"]]
        long = [i for i, n in enumerate(lengths) if n > max_query]
        if not long:
            return lengths
        for i in long:
            n, offsets = lengths[i], enc["offset_mapping"][i]
            p = enc["entity_position_ids"][i][0][0]
            a = 0 if p < max_query else min(p - max_query // 2, n - max_query)
            start, end = offsets[a][0], offsets[a + max_query - 1][1]
            s, e = ph_spans[i]
            queries[i] = queries[i][start:end]
            ph_spans[i] = (s - start, e - start)
        again = encode(long)
        for j, i in enumerate(long):
            lengths[i] = len(again["input_ids"][j])
        logger.info("cut %d question(s) to --max-query-length %d tokens", len(long), max_query)
        return lengths

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, torch.Tensor]:
        """Pad into ``input_ids``, ``attention_mask``, ``token_type_ids``, ``entity_ids``,
        ``entity_attention_mask``, ``entity_token_type_ids``, ``entity_position_ids`` (B, E, M; −1 padded)
        and float ``labels`` (B, E − 1; −100 padded)."""
        words = [f["input_ids"] for f in features]
        ents = [f["entity_ids"] for f in features]
        batch: dict[str, np.ndarray] = {
            "input_ids": _pad_stack(words, pad_token_id),
            "attention_mask": _pad_stack([np.ones(len(w), np.int64) for w in words], 0),
            "token_type_ids": _pad_stack([f["token_type_ids"] for f in features], 0),
            "entity_ids": _pad_stack(ents, 0),
            "entity_attention_mask": _pad_stack([np.ones(len(e), np.int64) for e in ents], 0),
            "entity_token_type_ids": _pad_stack([f["entity_token_type_ids"] for f in features], 0),
        }
        E = batch["entity_ids"].shape[1]
        M = max(int((f["entity_position_ids"] >= 0).sum(-1).max(initial=1)) for f in features)
        pos = np.full((len(features), E, M), -1, np.int64)
        for i, f in enumerate(features):
            p = f["entity_position_ids"][:, :M]
            pos[i, : p.shape[0]] = p
        batch["entity_position_ids"] = pos
        if "labels" in features[0]:
            batch["labels"] = _pad_stack([f["labels"] for f in features], IGNORE_INDEX, np.float32)
        return {k: torch.from_numpy(v) for k, v in batch.items()}

    def trim_logits(self, row: np.ndarray, feature: Feature) -> np.ndarray:
        """The feature's candidate logits (one per entity after the placeholder)."""
        return row[: len(feature["entity_ids"]) - 1]

    # ------------------------------------------------------------------------------------------ outputs
    def decode(
        self, examples: Sequence[RecordExample], features: Sequence[Feature], logits: Sequence[np.ndarray]
    ) -> list[RecordPrediction]:
        """Per question the candidate with the highest logit over all its windows (empty answer if none)."""
        found: list[dict[int, float]] = [{} for _ in examples]  # candidate index -> its best logit
        for f, row in zip(features, logits, strict=True):
            best = found[f["example_index"]]
            for j in np.argsort(-np.asarray(row), kind="stable"):  # best first: ties go to the first, as argmax
                c = int(f["candidate_indices"][j])
                best[c] = max(best.get(c, -np.inf), float(row[j]))
        out = []
        for ex, best in zip(examples, found, strict=True):
            ranked = sorted(best.items(), key=lambda item: -item[1])[: max(1, self.top_k)]
            probs = sigmoid(np.array([logit for _, logit in ranked])).tolist()
            listed = [
                {"answer": ex.passage[slice(*ex.candidates[c])], "answer_span": list(ex.candidates[c]), "score": logit,
                 "probability": p} for (c, logit), p in zip(ranked, probs, strict=True)
            ]  # fmt: skip
            if not ranked:
                out.append(RecordPrediction(""))
                continue
            s, e = ex.candidates[ranked[0][0]]
            out.append(RecordPrediction(ex.passage[s:e], (s, e), ranked[0][1], probs[0], listed))
        return out

    @staticmethod
    def _text(prediction: Any) -> str:
        return prediction.text if isinstance(prediction, RecordPrediction) else str(prediction)

    def score(self, examples: Sequence[RecordExample], predictions: Sequence[Any]) -> dict[str, Any]:
        """Official ReCoRD EM/F1 (percent) over all questions (those without answers score 0)."""
        gold = {ex.qid: ex.answer_texts for ex in examples}
        preds = {ex.qid: self._text(p) for ex, p in zip(examples, predictions, strict=True)}
        return qa_scores(gold, preds)

    def write_predictions(
        self, path: str | Path, examples: Sequence[RecordExample], predictions: Sequence[Any]
    ) -> None:
        """A JSON object ``{question id: answer text}`` (the official evaluation script's input)."""
        preds = {ex.qid: self._text(p) for ex, p in zip(examples, predictions, strict=True)}
        write_text_atomic(path, json.dumps(preds, indent=1, ensure_ascii=False) + "\n")

    def score_files(self, gold: str | Path | None, predictions: str | Path) -> dict[str, Any]:
        """Score a ``{id: text}`` predictions file against a ReCoRD JSON gold file (required)."""
        predictions = Path(predictions)
        if gold is None:
            raise DataError(predictions, "record predictions carry no gold answers; pass --gold FILE (ReCoRD JSON)")
        golds = {ex.qid: ex.answer_texts for ex in self.read(gold)}
        return score_prediction_file(golds, predictions)

    def examples_from_raw(self, records: Sequence[tuple[int, Any]], path: Path) -> list[RecordExample]:
        """``luke predict`` input: ``{"passage", "query" (with @placeholder), "entities": [[start, end], ...]
        (end exclusive), optional "id"}`` per line."""
        out = []
        for line, rec in records:
            require(rec, {"passage": str, "query": str, "entities": list}, path, line)
            qid = rec.get("id", f"line-{line}")
            if not isinstance(qid, str | int) or isinstance(qid, bool):
                raise DataError(
                    path, f"field 'id' must be a string or an integer, got {shorten(json.dumps(qid))}", line
                )
            qid = str(qid)
            _check_query(rec["query"], path, line, qid)
            text = rec["passage"]
            spans = []
            for k, span in enumerate(rec["entities"]):
                start, end = int_pair(span, path, line, f"entities[{k}]")
                check_text_span(text, start, end, path, line, f"entities[{k}]")
                spans.append((start, end))
            spans = sorted(set(spans))
            if not spans:
                raise DataError(path, "no entities (no answer candidates)", line)
            out.append(RecordExample(qid, text, rec["query"], spans, [], [], None, str(path), line))
        return out

    def format_prediction(self, example: RecordExample, prediction: Any) -> dict[str, Any]:
        """``{"id", "query", "answer", "answer_span": [start, end] (end exclusive) or null, "score": its logit,
        "probability", "n_best": [{"answer", "answer_span", "score", "probability"}, ...]}``."""
        span = prediction.span if isinstance(prediction, RecordPrediction) else None
        out: dict[str, Any] = {
            "id": example.qid,
            "query": example.query,
            "answer": self._text(prediction),
            "answer_span": list(span) if span is not None else None,
        }
        if isinstance(prediction, RecordPrediction):
            out |= {"score": prediction.logit, "probability": prediction.probability, "n_best": prediction.n_best}
        return out
