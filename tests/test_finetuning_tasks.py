"""Fine-tuning tasks without training: readers (fixtures + real data), features, decoding, metrics."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import minilm_folder, require_shared
from luke.entity_vocab import EntityVocab
from luke.errors import DataError
from luke.finetuning.data import iter_json_records
from luke.finetuning.metrics import (
    multilabel_micro_f1,
    relation_micro_f1,
    semeval_official_f1,
    span_f1,
    spans_to_tags,
    tags_to_spans,
)
from luke.finetuning.tasks import EntityTypingTask, NerTask, RelationClassificationTask
from luke.finetuning.tasks.ner import enumerate_spans, greedy_decode
from luke.tokenization import LukeTokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "finetuning"


@pytest.fixture(scope="module")
def tokenizer() -> LukeTokenizer:
    return LukeTokenizer.from_pretrained(minilm_folder(), entity_vocab=EntityVocab.from_counts([]))


# ---------------------------------------------------------------------------------------------- metrics


def test_tags_to_spans_iob1_iob2_and_round_trip():
    assert tags_to_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]) == [
        (0, 1, "PER"),
        (3, 3, "LOC"),
        (4, 4, "LOC"),
        (5, 5, "ORG"),
    ]
    # IOB1: I- starts a chunk; B- only separates adjacent chunks of one type; a type change closes a chunk.
    assert tags_to_spans(["I-PER", "I-PER", "B-PER", "I-LOC", "O", "I-MISC"]) == [
        (0, 1, "PER"),
        (2, 2, "PER"),
        (3, 3, "LOC"),
        (5, 5, "MISC"),
    ]
    spans = [(0, 1, "PER"), (2, 2, "PER"), (4, 6, "ORG")]
    assert tags_to_spans(spans_to_tags(spans, 8, "IOB2")) == spans
    iob1 = spans_to_tags(spans, 8, "IOB1")
    assert iob1 == ["I-PER", "I-PER", "B-PER", "O", "I-ORG", "I-ORG", "I-ORG", "O"]
    assert tags_to_spans(iob1) == spans


def _random_tags(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]) for _ in range(n)]


def test_span_f1_equals_seqeval():
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(0)
    for _ in range(30):
        gold = [_random_tags(rng, rng.randint(1, 12)) for _ in range(rng.randint(1, 15))]
        pred = [_random_tags(rng, len(s)) for s in gold]
        ours = span_f1([tags_to_spans(s) for s in gold], [tags_to_spans(s) for s in pred])
        assert ours["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
        assert ours["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
        assert ours["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-12)


def test_relation_and_multilabel_metrics():
    gold = ["no_relation", "per:title", "org:founded", "no_relation"]
    pred = ["per:title", "per:title", "no_relation", "no_relation"]
    m = relation_micro_f1(gold, pred, "no_relation")
    assert (m["precision"], m["recall"]) == (0.5, 0.5) and m["accuracy"] == 0.5
    m = multilabel_micro_f1([["person"], ["place", "location"], []], [["person"], ["place"], ["event"]])
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)


def test_semeval_official_score_counts_wrong_direction_as_error():
    gold = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e1,e2)", "Other", "Other"]
    pred = ["Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)", "Other", "Component-Whole(e1,e2)", "Other"]
    m = semeval_official_f1(gold, pred)
    # Cause-Effect: 1 correct of 2 predicted, 2 gold -> P=R=F=0.5; Component-Whole: 0 correct -> 0.
    assert m["per_type_f1"] == {"Cause-Effect": 0.5, "Component-Whole": 0.0}
    assert m["f1"] == pytest.approx(0.25)
    # Other never counts as a relation type.
    assert semeval_official_f1(["Other"], ["Other"])["f1"] == 0.0


# ---------------------------------------------------------------------------------------------- decoding


def _greedy_reference(sent, start, end, score):
    order = sorted(range(len(score)), key=lambda i: (-score[i], i))
    taken: dict[int, list[tuple[int, int]]] = {}
    out = []
    for i in order:
        spans = taken.setdefault(int(sent[i]), [])
        if all(end[i] < s or e < start[i] for s, e in spans):
            spans.append((start[i], end[i]))
            out.append(i)
    return sorted(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 9), st.integers(0, 3), st.integers(0, 6)), max_size=60))
def test_greedy_decode_equals_sequential_reference(cands):
    sent = np.array([c[0] for c in cands], np.int64)
    start = np.array([c[1] for c in cands], np.int64)
    end = start + np.array([c[2] for c in cands], np.int64)
    score = np.array([c[3] for c in cands], np.float64)  # many ties on purpose
    assert greedy_decode(sent, start, end, score).tolist() == _greedy_reference(sent, start, end, score)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=25), st.integers(1, 8))
def test_enumerate_spans_equals_brute_force(lengths, max_len):
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = np.cumsum(lengths)
    i, j = enumerate_spans(starts, ends, max_len)
    expected = [(a, b) for a in range(len(lengths)) for b in range(a, len(lengths)) if ends[b] - starts[a] <= max_len]
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == expected


# ---------------------------------------------------------------------------------------------- readers: errors


def test_json_records_know_their_lines(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('[\n  {"a": 1},\n\n  {"a": 2}, {"a": 3}\n]\n')
    assert [line for line, _ in iter_json_records(p)] == [2, 4, 4]
    p.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert [line for line, _ in iter_json_records(p)] == [1, 3]
    p.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match=r"a\.json:2: invalid JSON"):
        list(iter_json_records(p))
    p.write_text('[\n{"a": 1},\n{"a": oops}\n]')
    with pytest.raises(DataError, match=r"a\.json:3: invalid JSON"):
        list(iter_json_records(p))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"sent": "ab cd", "start": 3, "end": 9, "labels": []}, r"t\.json:2: span \(3, 9\) is out of range"),
        ({"sent": "ab cd", "start": 0, "labels": []}, r"t\.json:2: missing field 'end'"),
        ({"sent": "ab cd", "start": 0, "end": 2, "labels": "person"}, r"t\.json:2: field 'labels' must be list"),
    ],
)
def test_typing_reader_errors(tmp_path, record, message):
    p = tmp_path / "t.json"
    p.write_text("[\n" + json.dumps(record) + "\n]\n")
    with pytest.raises(DataError, match=message):
        EntityTypingTask().read(p)


def test_relation_reader_errors(tmp_path):
    p = tmp_path / "train.jsonl"
    good = {"relation": "Other", "token": ["a", "b", "c"], "subj_start": 0, "subj_end": 0, "obj_start": 2, "obj_end": 2}
    p.write_text(json.dumps(good) + "\n" + json.dumps(good | {"obj_end": 3}) + "\n")
    with pytest.raises(DataError, match=r"train\.jsonl:2: obj span \[2, 3\] \(inclusive\) is out of range"):
        RelationClassificationTask().read(p)
    p.write_text(json.dumps(good | {"obj_start": 0, "obj_end": 1}) + "\n")
    with pytest.raises(DataError, match=r"train\.jsonl:1: subject \[0, 0\] and object \[0, 1\] overlap"):
        RelationClassificationTask().read(p)


def test_conll_reader_errors(tmp_path):
    p = tmp_path / "train.txt"
    p.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP X-BAD\n")
    with pytest.raises(DataError, match=r"train\.txt:4: invalid tag 'X-BAD'"):
        NerTask().read(p)
    p.write_text("EU NNP B-NP B-ORG\nrejects B-VP O\n")
    with pytest.raises(DataError, match=r"train\.txt:2: expected 4 columns"):
        NerTask().read(p)


def test_empty_or_missing_data(tmp_path):
    with pytest.raises(DataError, match="no training file for task ner"):
        NerTask().load_splits(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        EntityTypingTask().load_splits(tmp_path / "nope")
    (tmp_path / "train.json").write_text("")
    with pytest.raises(DataError, match=r"train\.json: the file is empty"):
        EntityTypingTask().load_splits(tmp_path)


def test_unseen_labels_policy():
    task = EntityTypingTask()
    splits = task.load_splits(FIXTURES / "entity_typing")
    task.set_labels_from(splits["train"])
    task.check_labels(splits["dev"], "dev")  # all dev labels occur in train
    bad = splits["dev"][:1]
    bad[0].labels = ["spaceship"]
    with pytest.raises(DataError, match=r"dev\.json:\d+: label 'spaceship' does not occur in the training data"):
        task.check_labels(bad, "dev")
    EntityTypingTask(task.labels, unseen_labels="keep").check_labels(bad, "dev")  # kept, only a warning


# ---------------------------------------------------------------------------------------------- fixtures -> features


def test_typing_features_cover_markers(tokenizer):
    task = EntityTypingTask()
    splits = task.load_splits(FIXTURES / "entity_typing")
    task.set_labels_from(splits["train"])
    assert "-LRB-" not in splits["train"][3].text and splits["train"][3].text[splits["train"][3].start :] == (
        "Kenya ) last week ."
    )
    feats = task.featurize(splits["train"], tokenizer)
    ent = tokenizer.entity_1_token_id
    for f, ex in zip(feats, splits["train"], strict=True):
        pos = f["entity_position_ids"][0]
        pos = pos[pos >= 0]
        assert f["input_ids"][pos[0]] == ent and f["input_ids"][pos[-1]] == ent
        assert f["entity_ids"].tolist() == [tokenizer.entity_mask_token_id]
        assert sorted(task.labels[i] for i in np.flatnonzero(f["labels"])) == sorted(ex.labels)
    batch = task.collate(feats[:4], tokenizer.pad_token_id)
    assert batch["labels"].dtype.is_floating_point and batch["labels"].shape == (4, len(task.labels))


def test_relation_holdout_labels_and_markers(tokenizer):
    task = RelationClassificationTask(dev_ratio=0.2, dev_seed=0)
    splits = task.load_splits(FIXTURES / "relation_classification")
    assert len(splits["dev"]) == 2 and len(splits["train"]) == 8 and task.labels[0] == "Other"
    again = RelationClassificationTask(dev_ratio=0.2, dev_seed=0).load_splits(FIXTURES / "relation_classification")
    assert [e.text for e in again["dev"]] == [e.text for e in splits["dev"]]
    assert task.is_semeval and task.main_metric == "semeval_f1"
    feats = task.featurize(splits["train"], tokenizer)
    for f in feats:
        ids = f["input_ids"]
        for row, marker in zip(f["entity_position_ids"], (tokenizer.entity_1_token_id, tokenizer.entity_2_token_id),
                               strict=True):  # fmt: skip
            pos = row[row >= 0]
            assert ids[pos[0]] == marker and ids[pos[-1]] == marker
        assert f["entity_ids"].tolist() == [tokenizer.entity_mask_token_id, tokenizer.entity_mask2_token_id]


def test_ner_features_and_oracle_decoding_on_fixture(tokenizer):
    task = NerTask(max_seq_length=12, max_mention_length=4, max_entity_length=5)
    docs = task.read(FIXTURES / "ner" / "train.txt")
    task.set_labels_from(docs)
    assert task.labels == ["NIL", "LOC", "MISC", "ORG", "PER"]
    feats = task.featurize(docs, tokenizer)
    assert all(len(f["input_ids"]) <= 12 and len(f["entity_ids"]) <= 5 for f in feats)
    # Oracle logits (gold label wins) decode to the gold spans: features, decoding and metric agree.
    logits = [np.eye(len(task.labels))[f["labels"]] * 5.0 for f in feats]
    preds = task.decode(docs, feats, logits)
    assert task.score(docs, preds)["f1"] == 1.0


# ---------------------------------------------------------------------------------------------- real data


def test_real_conll_reader_counts_and_oracle_f1(tokenizer):
    folder = require_shared("conll2003")
    task = NerTask()
    docs = task.read(folder / "valid.txt")
    sentences = [s for d in docs for s in d.sentences]
    assert (len(docs), len(sentences)) == (216, 3250)
    assert sum(len(tags_to_spans(t)) for d in docs for t in d.tags) == 5942
    task.labels = ["NIL", "LOC", "MISC", "ORG", "PER"]
    sub = docs[:25]
    feats = task.featurize(sub, tokenizer)
    assert max(len(f["input_ids"]) for f in feats) <= 512
    assert max(len(f["entity_ids"]) for f in feats) <= 128
    # Every sentence's subwords are inside its window, candidates span <= 16 subwords.
    widths = np.concatenate([f["entity_end_positions"] - f["entity_start_positions"] + 1 for f in feats])
    assert widths.max() <= 16
    logits = [np.eye(5)[f["labels"]] * 3.0 for f in feats]
    preds = task.decode(sub, feats, logits)
    assert task.score(sub, preds)["f1"] == 1.0
    # Our span F1 equals seqeval on imperfect predictions from real data.
    from seqeval.metrics import f1_score

    rng = np.random.default_rng(0)
    noisy = [lg + rng.normal(0, 1.5, lg.shape) for lg in logits]
    preds = task.decode(sub, feats, noisy)
    ours = task.score(sub, preds)["f1"]
    gold_tags = [t for d in sub for t in d.tags]
    pred_tags = [spans_to_tags(p.spans, len(t)) for p, t in zip(preds, gold_tags, strict=True)]
    assert 0.2 < ours < 1.0
    assert ours == pytest.approx(f1_score(gold_tags, pred_tags), abs=1e-12)


def test_real_open_entity_semeval_tacred_readers(tokenizer):
    oe = require_shared("open_entity", "ernie_format")
    task = EntityTypingTask()
    splits = task.load_splits(oe)
    assert {k: len(v) for k, v in splits.items()} == {"train": 1998, "dev": 1998, "test": 1998}
    task.set_labels_from(splits["train"])
    assert len(task.labels) == 9
    assert all(ex.text[ex.start : ex.end].strip() == ex.text[ex.start : ex.end] for ex in splits["test"][:200])

    task = RelationClassificationTask()
    splits = task.load_splits(require_shared("semeval2010_task8"))
    assert (len(splits["train"]), len(splits["dev"]), len(splits["test"])) == (7200, 800, 2717)
    assert task.labels[0] == "Other" and len(task.labels) == 19
    task.check_labels(splits["test"], "test")

    task = RelationClassificationTask()
    splits = task.load_splits(require_shared("tacred_sample"))
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "dev": 20, "test": 20}
    task.set_labels_from(splits["train"])
    assert task.labels == ["no_relation", "org:city_of_headquarters"]
    with pytest.raises(DataError, match=r"dev\.json:\d+: label '.+' does not occur in the training data"):
        task.check_labels(splits["dev"], "dev")
    feats = task.featurize(splits["train"], tokenizer)  # subject after object in some examples
    for f, ex in zip(feats, splits["train"], strict=True):
        first = f["entity_position_ids"][0]
        assert f["input_ids"][first[0]] == tokenizer.entity_1_token_id
        subj_first = ex.subj[0] < ex.obj[0]
        assert (first[0] < f["entity_position_ids"][1][0]) == subj_first
