"""Extractive question answering: SQuAD 1.1, with Wikipedia-link entity features (spec §3.5).

Features follow the usual recipe: ``[CLS] question [SEP] passage-window [SEP]`` (RoBERTa: ``<s> q </s></s>
p </s>``), the question cut to ``max_query_length`` tokens, the passage split into windows of at most
``max_seq_length`` tokens whose starts are ``doc_stride`` passage tokens apart (the original
``run_squad`` meaning of the stride; ``transformers``' ``run_qa`` passes it as the overlap instead), and
"max context" bookkeeping: a token seen by several windows counts as a possible answer start only in the
window where it has the most context on both sides.  The answer of a window is labelled by its character
span through the tokenizer's offsets; a window that does not contain it points at the first token.

Decoding: per window the ``n_best_size`` best starts and ends (passage tokens only), every pair with
``start <= end`` and at most ``max_answer_length`` tokens, scored by start + end logit; the best pair over
all windows of a question wins, and its text is cut from the *original* context with the offsets (never
detokenised sub-words).

Entity features: a :class:`~luke.wikipedia.mention_db.MentionDetector` (``--mention-db``: a dictionary from
``luke build-mention-db`` or any plain ``mention<TAB>title`` file) finds mentions in the question and the
passage by longest match; those whose title is in the model's entity vocabulary become entities with their
real ids (no ``[MASK]``), positioned on their sub-words, segment 0 (question) or 1 (passage; 0 for RoBERTa).
The entity table is frozen during fine-tuning.  ``--no-entity`` (or no ``--mention-db``) gives no entities,
the ablation of the paper.

Scoring is the official SQuAD v1.1 script's (:func:`luke.finetuning.metrics.qa_scores`): percentages, max
over gold answers, questions without a prediction count as 0.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from luke.dataclass_args import option
from luke.errors import ConfigError, DataError, shorten
from luke.files import check_output, write_text_atomic
from luke.finetuning.metrics import qa_scores
from luke.finetuning.options import EntityCapOptions
from luke.finetuning.tasks.base import Feature, Task, TaskDefaults, collate_features, softmax
from luke.finetuning.tasks.qa import (
    QaOptions,
    id_lines,
    load_data_file,
    load_json_file,
    passage_windows,
    score_prediction_file,
)

__all__ = ["SquadTask", "SquadOptions", "SquadExample", "SquadPrediction", "read_squad", "split_squad_by_article"]

logger = logging.getLogger(__name__)
_SPECIAL_ENTITIES = ("[PAD]", "[UNK]", "[MASK]", "[MASK2]")


@dataclass
class SquadExample:
    """One question on one context; ``answers`` are ``(char start, text)`` pairs (empty for raw input)."""

    qid: str
    question: str
    context: str
    answers: list[tuple[int, str]] = field(default_factory=list)
    title: str = ""
    path: str = ""
    line: int | None = None


@dataclass
class SquadPrediction:
    """The decoded answer: its text (cut from the context), character span, score (start + end logit) and
    probability (softmax over the question's n-best answers), and the ``top_k`` best answers, best first
    (``{"answer", "answer_start", "answer_end", "score", "probability"}``)."""

    text: str
    start: int = -1
    end: int = -1
    score: float = float("-inf")
    probability: float = 0.0
    n_best: list[dict[str, Any]] = field(default_factory=list)


def read_squad(path: str | Path) -> list[SquadExample]:
    """Read a SQuAD v1.1 JSON file into examples, checking it thoroughly.

    Raises :class:`DataError` (file, line of the question) for a malformed record, an empty context or a
    duplicate id; for answers whose offsets do not match the context text it names the count and the first
    offending id.  Questions without answers are kept (they score 0; training refuses them)."""
    path = Path(path)
    articles, lines = load_data_file(path, 'a SQuAD JSON object {"version": ..., "data": [...]}')
    return squad_examples(articles, lines, path)


def squad_examples(articles: list[Any], lines: dict[str, int], path: Path) -> list[SquadExample]:
    """The examples of the ``data`` list of a SQuAD file (``lines``: :func:`id_lines` of its text), checked as
    :func:`read_squad` says."""
    out: list[SquadExample] = []
    seen: set[str] = set()
    mismatched: list[str] = []
    for a, article in enumerate(articles):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(path, f"data[{a}] has no 'paragraphs' list")
        title = str(article.get("title", ""))
        for p, para in enumerate(article["paragraphs"]):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str):
                raise DataError(path, f"{where} has no 'context' string")
            context = para["context"]
            qas = para.get("qas")
            if not isinstance(qas, list):
                raise DataError(path, f"{where} has no 'qas' list")
            if not context.strip():
                first = next((q.get("id") for q in qas if isinstance(q, dict)), None)
                raise DataError(path, f"{where} has an empty context (first question id {first!r})")
            for q in qas:
                if not isinstance(q, dict) or not isinstance(q.get("id"), str):
                    raise DataError(path, f"{where}: a question without an 'id' string")
                qid = q["id"]
                line = lines.get(qid)
                if qid in seen:
                    raise DataError(path, f"duplicate question id {qid!r}", line)
                seen.add(qid)
                if not isinstance(q.get("question"), str) or not q["question"].strip():
                    raise DataError(path, f"question {qid!r} has no 'question' text", line)
                answers = []
                for ans in q.get("answers") or []:
                    if not (isinstance(ans, dict) and isinstance(ans.get("text"), str)):
                        raise DataError(path, f"question {qid!r}: answers need a 'text' string", line)
                    start, text = ans.get("answer_start"), ans["text"]
                    if not isinstance(start, int) or isinstance(start, bool):
                        raise DataError(path, f"question {qid!r}: answer_start must be an integer, got "
                                        f"{shorten(json.dumps(start))}", line)  # fmt: skip
                    if not text.strip():
                        raise DataError(path, f"question {qid!r}: an answer text is empty or only whitespace", line)
                    if not 0 <= start <= len(context) - len(text):
                        raise DataError(
                            path, f"question {qid!r}: answer_start {start} with a {len(text)}-character answer is "
                            f"out of range for a context of {len(context)} characters", line,
                        )  # fmt: skip
                    if context[start : start + len(text)] != text:
                        mismatched.append(qid)
                        continue
                    answers.append((start, ans["text"]))
                out.append(SquadExample(qid, q["question"], context, answers, title, str(path), line))
    if mismatched:
        first = mismatched[0]
        raise DataError(
            path,
            f"{len(mismatched)} answer(s) whose text does not match the context at answer_start "
            f"(first: question {first!r})",
            lines.get(first),
        )
    return out


def _article_questions(article: Any, a: int, path: Path) -> int:
    """The number of questions of ``data[a]`` of a SQuAD file; :class:`DataError` for an article without
    the ``paragraphs`` / ``qas`` lists ``split-squad`` needs."""
    if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
        raise DataError(path, f"data[{a}] has no 'paragraphs' list")
    n = 0
    for p, para in enumerate(article["paragraphs"]):
        if not isinstance(para, dict) or not isinstance(para.get("qas"), list):
            raise DataError(path, f"data[{a}].paragraphs[{p}] has no 'qas' list")
        n += len(para["qas"])
    return n


def split_squad_by_article(
    path: str | Path, out_dir: str | Path, *, first_articles: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Split a SQuAD file by article with a fixed seed into ``out_dir/train.json`` and ``out_dir/dev.json``
    (``first_articles`` articles, default half, go to train).  Returns what went where.

    Everything is checked before anything is written (the output paths, every article's ``paragraphs``
    and ``qas``); each file is written whole under a temporary name and renamed into place."""
    path, out_dir = Path(path), Path(out_dir)
    check_output(out_dir, kind="dir", exist_ok=True, what="output folder")
    for name in ("train", "dev"):
        check_output(out_dir / f"{name}.json", kind="file", overwrite=True, what="output file", inputs=[path])
    data, raw = load_json_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list) or len(data["data"]) < 2:
        raise DataError(path, "expected a SQuAD JSON object with at least two articles")
    articles = data["data"]
    questions = [_article_questions(article, a, path) for a, article in enumerate(articles)]
    squad_examples(articles, id_lines(raw), path)  # what is copied passes the reader's checks
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    n = len(articles) // 2 if first_articles is None else first_articles
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n < len(articles):
        raise ConfigError(
            f"--train-articles must be between 1 and {len(articles) - 1} (the file has {len(articles)} articles), "
            f"got {n!r}"
        )
    parts = {"train": sorted(order[:n]), "dev": sorted(order[n:])}
    summary: dict[str, Any] = {"source": str(path), "seed": seed}
    texts = {}
    for name, idx in parts.items():
        chosen = [articles[i] for i in idx]
        texts[name] = json.dumps({"version": data.get("version", "1.1"), "data": chosen}, ensure_ascii=False)
        summary[name] = {"articles": len(chosen), "questions": sum(questions[i] for i in idx),
                         "titles": [a.get("title", "") for a in chosen]}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        write_text_atomic(out_dir / f"{name}.json", text)
    return summary


@dataclass(frozen=True)
class SquadOptions(QaOptions, EntityCapOptions):
    """SQuAD options: decoding and the entity features (mention dictionary)."""

    max_answer_length: int = option(30, "longest answer in tokens at decoding", group="qa", at_least=1)
    n_best_size: int = option(20, "start/end candidates per window at decoding", group="qa", at_least=1)
    mention_db: Path | None = option(None, "mention dictionary (luke build-mention-db, or a TSV)", group="qa")
    entity_vocab: Path | None = option(None, "entity vocabulary file for a BERT/RoBERTa start", group="qa")
    min_link_prob: float = option(0.01, "minimum link probability of a mention", group="qa", at_least=0, at_most=1)
    no_entity: bool = option(False, "no entity features (the paper's ablation; words only)", group="qa")


class SquadTask(Task):
    """SQuAD 1.1 extractive QA (``luke finetune squad``); see the module docstring."""

    name = "squad"
    model_class_name = "LukeForQuestionAnswering"
    # Paper: 8 GPUs x batch 2 x accumulation 3 = 48, lr 15e-6, 2 epochs, seed 14, final weights.
    defaults = TaskDefaults(learning_rate=15e-6, gradient_accumulation_steps=24, num_train_epochs=2, seed=14,
                            select_best=False)  # fmt: skip
    split_files = {"train": ("train-v1.1.json", "train.json"), "dev": ("dev-v1.1.json", "dev.json"),
                   "test": ("test-v1.1.json", "test.json")}  # fmt: skip
    options_class = SquadOptions
    options: SquadOptions
    prediction_suffix = "json"
    raw_input = "{'question', 'context', optional 'id'}"
    main_metric = "f1"
    label_kind = "span"
    label_keys = ("start_positions", "end_positions")
    keeps_entity_vocab = True

    def __init__(self, labels=None, unseen_labels: str = "error", **options: Any) -> None:
        super().__init__(["start", "end"], unseen_labels, **options)
        self._detector: Any = None

    # ------------------------------------------------------------------------------------------ data
    def read(self, path: str | Path) -> list[SquadExample]:
        return read_squad(path)

    def load_splits(self, data_dir, splits=("train", "dev", "test")) -> dict[str, list]:
        out = super().load_splits(data_dir, splits)
        if "train" in out:  # training questions need an answer
            unanswered = [ex for ex in out["train"] if not ex.answers]
            if unanswered:
                first = unanswered[0]
                raise DataError(
                    first.path,
                    f"{len(unanswered)} training question(s) without answers (first: {first.qid!r}); SQuAD 2.0 "
                    "unanswerable questions are not supported",
                    first.line,
                )
        return out

    def gold_labels(self, example: SquadExample) -> list[str]:
        return []

    def build_labels(self, train) -> list[str]:
        return ["start", "end"]

    def set_labels_from(self, train) -> None:
        self.labels = ["start", "end"]

    def check_labels(self, examples, split) -> None:
        """Answers are spans, not labels: nothing can be unseen."""

    # ------------------------------------------------------------------------------------------ options
    @property
    def use_entities(self) -> bool:
        return not self.options.no_entity and self.options.mention_db is not None

    def model_settings(self) -> dict[str, Any]:
        """As :meth:`Task.model_settings`, with the entity vocabulary of a BERT/RoBERTa start (``--entity-vocab``)."""
        return {**super().model_settings(), "entity_vocab_path": self.options.entity_vocab}

    def detector(self, entity_vocab: Any) -> Any:
        """The mention detector of ``--mention-db``, restricted to ``entity_vocab`` (loaded once)."""
        if self._detector is None:
            from luke.wikipedia.mention_db import MentionDetector

            if len(entity_vocab) <= len(_SPECIAL_ENTITIES):
                raise ConfigError(
                    "entity features need an entity vocabulary: start from a LUKE folder, or pass --entity-vocab "
                    "FILE (e.g. from luke build-entity-vocab) with a BERT/RoBERTa folder; or use --no-entity"
                )

            path = Path(self.options.mention_db or "")
            if not path.is_file():
                raise DataError(path, "mention dictionary not found (--mention-db)")
            self._detector = MentionDetector.from_file(
                path, min_link_prob=self.options.min_link_prob, entity_vocab=entity_vocab
            )
            logger.info("mention dictionary %s: %d mentions in the entity vocabulary", path, len(self._detector))
        return self._detector

    def prepare_model(self, model: Any) -> None:
        """Freeze the entity table (spec §3.5: the pretrained entity embeddings are kept as they are)."""
        luke = getattr(model, "luke", None)
        if luke is not None:
            luke.entity_embeddings.entity_embeddings.weight.requires_grad_(False)

    # ------------------------------------------------------------------------------------------ features
    def _mentions(self, texts: Sequence[str], tokenizer: Any) -> list[list[tuple[int, int, str]]]:
        if not self.use_entities:
            return [[] for _ in texts]
        detector = self.detector(tokenizer.entity_vocab)
        cache: dict[str, list[tuple[int, int, str]]] = {}
        return [cache[t] if t in cache else cache.setdefault(t, detector.detect(t)) for t in texts]

    def _cut_questions(self, examples: Sequence[SquadExample], tokenizer: Any) -> tuple[list[str], list[int]]:
        """Questions cut to ``max_query_length`` tokens (at a token's end offset), and their token counts."""
        limit = self.options.max_query_length
        out, lengths = [], []
        for ex, enc in zip(examples, tokenizer.backend_tokenizer.encode_batch(
            [ex.question for ex in examples], add_special_tokens=False
        ), strict=True):  # fmt: skip
            q = ex.question
            out.append(q[: enc.offsets[limit - 1][1]] if len(enc.ids) > limit else q)
            lengths.append(min(len(enc.ids), limit))
        return out, lengths

    def featurize(self, examples: Sequence[SquadExample], tokenizer: Any) -> list[Feature]:
        o = self.options
        max_len, doc_stride, max_entities = o.max_seq_length, o.doc_stride, o.max_entity_length
        questions, q_lengths = self._cut_questions(examples, tokenizer)
        q_mentions = self._mentions(questions, tokenizer)
        c_mentions = self._mentions([ex.context for ex in examples], tokenizer)
        features: list[Feature] = []
        windows = passage_windows(
            tokenizer, examples, questions, q_lengths, [ex.context for ex in examples],
            max_length=max_len, doc_stride=doc_stride, max_entity_length=max_entities, return_offsets_mapping=True,
            entity_spans=lambda i: [(s, e) for s, e, _ in q_mentions[i]],
            entity_spans_pair=lambda i: [(s, e) for s, e, _ in c_mentions[i]],
            entities=lambda i: [t for _, _, t in q_mentions[i]],
            entities_pair=lambda i: [t for _, _, t in c_mentions[i]],
        )  # fmt: skip
        for idx, enc in windows:
            for w, local in enumerate(enc["overflow_to_sample_mapping"]):
                features.append(self._window_feature(examples, idx[local], enc, w, tokenizer))
        _mark_max_context(features)
        return features

    def _window_feature(self, examples, i: int, enc: Any, w: int, tokenizer: Any) -> Feature:
        ids = np.asarray(enc["input_ids"][w], np.int64)
        offsets = np.asarray(enc["offset_mapping"][w], np.int64).reshape(-1, 2)
        sep = int(np.flatnonzero(ids == tokenizer.sep_token_id)[0])
        ctx_start = sep + (2 if tokenizer.double_separator else 1)
        ctx_end = len(ids) - 1  # exclusive: the final separator
        feat: Feature = {
            "input_ids": ids,
            "token_type_ids": np.asarray(enc["token_type_ids"][w], np.int64),
            "example_index": i,
            "context_start": ctx_start,
            "context_end": ctx_end,
            "offsets": offsets,
        }
        if "entity_ids" in enc:
            ents = np.asarray(enc["entity_ids"][w], np.int64)
            feat["entity_ids"] = ents
            feat["entity_position_ids"] = np.asarray(enc["entity_position_ids"][w], np.int64).reshape(
                len(ents), tokenizer.max_mention_length
            )
            types = np.asarray(enc["entity_token_type_ids"][w], np.int64)
            feat["entity_token_type_ids"] = types if not tokenizer.double_separator else np.zeros_like(types)
        else:
            feat["entity_ids"] = np.zeros(0, np.int64)
            feat["entity_position_ids"] = np.zeros((0, 1), np.int64)
            feat["entity_token_type_ids"] = np.zeros(0, np.int64)
        ex = examples[i]
        start_pos = end_pos = 0
        if ex.answers:
            a_start, text = ex.answers[0]
            a_end = a_start + len(text)
            ctx = offsets[ctx_start:ctx_end]
            if len(ctx) and ctx[0, 0] <= a_start and a_end <= ctx[-1, 1]:
                start_pos = ctx_start + int(np.flatnonzero(ctx[:, 1] > a_start)[0])
                end_pos = ctx_start + int(np.flatnonzero(ctx[:, 0] < a_end)[-1])
        feat["start_positions"], feat["end_positions"] = start_pos, end_pos
        return feat

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, torch.Tensor]:
        return collate_features(features, pad_token_id, "span")

    # ------------------------------------------------------------------------------------------ outputs
    def output_logits(self, outputs: Any) -> torch.Tensor:
        return torch.stack([outputs.start_logits, outputs.end_logits], dim=-1)  # (B, L, 2)

    def trim_logits(self, row: np.ndarray, feature: Feature) -> np.ndarray:
        return row[: len(feature["input_ids"])]

    def decode(self, examples, features, logits) -> list[SquadPrediction]:
        n_best, max_answer = self.options.n_best_size, self.options.max_answer_length
        found: list[dict[tuple[int, int], float]] = [{} for _ in examples]  # (char start, end) -> best score
        for f, row in zip(features, logits, strict=True):
            a, b = f["context_start"], f["context_end"]
            start_scores, end_scores = row[a:b, 0], row[a:b, 1]
            starts = np.argsort(-np.where(f["max_context"][a:b], start_scores, -np.inf), kind="stable")[:n_best]
            starts = starts[f["max_context"][a:b][starts]]
            ends = np.argsort(-end_scores, kind="stable")[:n_best]
            if not len(starts):
                continue
            total = start_scores[starts][:, None] + end_scores[ends][None, :]  # (n_best, n_best)
            length = ends[None, :] - starts[:, None]
            total = np.where((length >= 0) & (length < max_answer), total, -np.inf).ravel()
            answers = found[f["example_index"]]
            for k in np.argsort(-total, kind="stable")[:n_best]:  # the best pairs (ties: the first, as argmax)
                if total[k] == -np.inf:
                    break
                s_tok, e_tok = a + int(starts[k // len(ends)]), a + int(ends[k % len(ends)])
                span = (int(f["offsets"][s_tok, 0]), int(f["offsets"][e_tok, 1]))
                answers[span] = max(answers.get(span, -np.inf), float(total[k]))
        return [self._prediction(ex.context, answers, n_best) for ex, answers in zip(examples, found, strict=True)]

    def _prediction(self, context: str, answers: dict[tuple[int, int], float], n_best: int) -> SquadPrediction:
        """The best of a question's candidate answers, with the softmax over its ``n_best`` best ones."""
        if not answers:
            return SquadPrediction("")
        ranked = sorted(answers.items(), key=lambda item: -item[1])[:n_best]  # stable: the first seen on ties
        probs = softmax(np.array([score for _, score in ranked])).tolist()
        listed = [{"answer": context[s:e], "answer_start": s, "answer_end": e, "score": score, "probability": p}
                  for ((s, e), score), p in zip(ranked, probs, strict=True)]  # fmt: skip
        (s, e), score = ranked[0]
        return SquadPrediction(context[s:e], s, e, score, probs[0], listed[: max(1, self.top_k)])

    def _gold(self, examples: Sequence[SquadExample]) -> dict[str, list[str]]:
        return {ex.qid: [text for _, text in ex.answers] for ex in examples}

    def score(self, examples, predictions) -> dict[str, Any]:
        out = qa_scores(self._gold(examples), {ex.qid: p.text for ex, p in zip(examples, predictions, strict=True)})
        return {"exact_match": out["exact_match"], "f1": out["f1"], "total": out["total"]}

    def write_predictions(self, path, examples, predictions) -> None:
        """The official format: one JSON object ``{question id: answer text}``."""
        preds = {ex.qid: p.text for ex, p in zip(examples, predictions, strict=True)}
        write_text_atomic(path, json.dumps(preds, ensure_ascii=False, indent=1) + "\n")

    def score_files(self, gold, predictions) -> dict[str, Any]:
        """``luke score squad --gold dev-v1.1.json --predictions preds.json``: the official script's output
        (``exact_match``, ``f1`` in percent); missing and unknown ids are reported as warnings."""
        if gold is None:
            raise DataError(predictions, "scoring SQuAD needs the gold data file: pass --gold dev-v1.1.json")
        out = score_prediction_file(self._gold(read_squad(gold)), predictions)
        return {"exact_match": out["exact_match"], "f1": out["f1"]}

    def examples_from_raw(self, records, path) -> list[SquadExample]:
        out = []
        for line, rec in records:
            if not isinstance(rec, dict):
                raise DataError(path, "expected a JSON object {'question': ..., 'context': ...}", line)
            for key in ("question", "context"):
                if not isinstance(rec.get(key), str) or not rec[key].strip():
                    raise DataError(path, f"field {key!r} must be a non-empty string", line)
            qid = rec.get("id", str(line))
            if not isinstance(qid, str) or not qid:  # SQuAD ids are strings; an integer would come back as one
                raise DataError(path, f"field 'id' must be a non-empty string, got {shorten(json.dumps(qid))}", line)
            out.append(SquadExample(qid, rec["question"], rec["context"], [], "", str(path), line))
        return out

    def format_prediction(self, example: SquadExample, prediction: SquadPrediction) -> dict[str, Any]:
        return {
            "id": example.qid,
            "question": example.question,
            "answer": prediction.text,
            "answer_start": prediction.start,
            "answer_end": prediction.end,
            "score": prediction.score,
            "probability": prediction.probability,
            "n_best": prediction.n_best,
        }


def _mark_max_context(features: list[Feature]) -> None:
    """Set ``max_context`` (L,) on every feature: a passage token is "max context" in the window where
    min(tokens left of it, tokens right of it) + 0.01 * window length is largest (``run_squad``'s rule; the
    first such window on ties).  Tokens are identified across windows by their character offsets."""
    if not features:
        return
    keys, scores, owner, where = [], [], [], []
    for n, f in enumerate(features):
        a, b = f["context_start"], f["context_end"]
        length = b - a
        p = np.arange(length)
        offs = f["offsets"][a:b]
        keys.append(np.stack([np.full(length, f["example_index"]), offs[:, 0], offs[:, 1]], axis=1))
        scores.append(np.minimum(p, length - 1 - p) + 0.01 * length)
        owner.append(np.full(length, n))
        where.append(p + a)
    key, score = np.concatenate(keys), np.concatenate(scores)
    owner_arr, where_arr = np.concatenate(owner), np.concatenate(where)
    # Sort by token, then best score first, then earliest window; the first row of each token wins.
    order = np.lexsort((owner_arr, -score, key[:, 2], key[:, 1], key[:, 0]))
    k = key[order]
    first = np.ones(len(order), bool)
    first[1:] = np.any(k[1:] != k[:-1], axis=1)
    win = order[first]
    for f in features:
        f["max_context"] = np.zeros(len(f["input_ids"]), bool)
    for n, pos in zip(owner_arr[win].tolist(), where_arr[win].tolist(), strict=True):
        features[n]["max_context"][pos] = True
