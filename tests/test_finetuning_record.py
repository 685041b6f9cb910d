"""ReCoRD (``luke finetune record``): reader, input layout, windows, decoding, scoring, and tiny end-to-end
runs (the framework round trip, and a synthetic set that a tiny random model must learn)."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, require_shared
from luke.cli import main as cli_main
from luke.entity_vocab import EntityVocab
from luke.errors import DataError
from luke.finetuning.commands import evaluate_folder, finetune
from luke.finetuning.tasks import TASKS
from luke.finetuning.tasks.record import RecordExample, RecordPrediction, RecordTask, mark_passage, mark_query
from luke.tokenization import LukeTokenizer
from test_finetuning_training import make_tiny_bert

FIXTURE = Path(__file__).parent / "fixtures" / "finetuning" / "record"
SYNTH_NAMES = ["alice", "bruno", "carla", "dmitri", "elena", "farid", "greta", "hugo", "irina", "jonas"]
SYNTH_WORDS = ["met", "in", "the", "park", "winner", "smiled", "talked", "with", "later", "won", "race", "."]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread, and do not slow down under CPU contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    shared = [p.read_text() for p in SHARED_DATA.glob("record/*.json")]  # the shared fixture's words too
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), texts=(" ".join(SYNTH_NAMES + SYNTH_WORDS), *shared))


@pytest.fixture(scope="module")
def roberta_tokenizer() -> LukeTokenizer:
    folder = require_shared("tokenizers", "roberta-base")
    return LukeTokenizer.from_files(
        vocab=folder / "vocab.json", merges=folder / "merges.txt", entity_vocab=EntityVocab.from_counts([])
    )


@pytest.fixture(scope="module")
def bert_tokenizer(tiny_bert: Path) -> LukeTokenizer:
    return LukeTokenizer.from_files(vocab_txt=tiny_bert / "vocab.txt", entity_vocab=EntityVocab.from_counts([]))


@pytest.fixture(params=["roberta", "bert"])
def tokenizer(request) -> LukeTokenizer:
    return request.getfixturevalue(f"{request.param}_tokenizer")


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def _doc(text: str, entities: list[tuple[int, int]], qas: list[dict]) -> dict:
    """A one-passage ReCoRD document (``entities`` inclusive, as in the official files)."""
    return {
        "version": "1.0",
        "data": [
            {
                "id": "p1",
                "passage": {"text": text, "entities": [{"start": s, "end": e} for s, e in entities]},
                "qas": qas,
            }
        ],
    }


def _line_of(path: Path, qid: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if f'"id": "{qid}"' in line)


# ---------------------------------------------------------------------------------------------- reader
def test_registered_with_paper_defaults():
    assert TASKS["record"] is RecordTask
    d = RecordTask.defaults
    assert (d.learning_rate, d.train_batch_size, d.gradient_accumulation_steps, d.num_train_epochs, d.seed) == (
        1e-5, 1, 4, 2, 4,
    )  # fmt: skip
    assert RecordTask.main_metric == "exact_match" and RecordTask.model_class_name == "LukeForEntitySpanQA"


def test_reader_on_the_real_fixture():
    path = require_shared("record", "record_fixture_2passages.json")
    examples = RecordTask().read(path)
    assert len(examples) == 2
    assert [len(ex.candidates) for ex in examples] == [21, 10]  # no identical spans to merge in this file
    first, second = examples
    assert first.passage.startswith("Tracy Morgan") and first.candidates[0] == (0, 12)
    assert first.answer_texts == ["Tracy Morgan", "Morgan", "Morgan", "Morgan", "Morgan"]
    assert all(first.passage[s:e] == t for (s, e), t in zip(first.answers, first.answer_texts, strict=True))
    assert second.answer_texts == ["China"] and "@placeholder" in second.query
    for ex in examples:
        assert ex.line == _line_of(path, ex.qid)
        assert all(0 <= s < e <= len(ex.passage) for s, e in ex.candidates)


def test_reader_dedupes_identical_spans_and_converts_inclusive_ends(tmp_path):
    text = "Ann met Bob. Ann left."
    qa = {"id": "q1", "query": "@placeholder left.", "answers": [{"start": 13, "end": 15, "text": "Ann"}]}
    path = _write(tmp_path / "d.json", _doc(text, [(8, 10), (0, 2), (8, 10), (13, 15)], [qa]))
    (ex,) = RecordTask().read(path)
    assert ex.candidates == [(0, 3), (8, 11), (13, 16)]
    assert ex.answers == [(13, 16)] and ex.passage_id == "p1"


@pytest.mark.parametrize(
    "entities, qa, message",
    [
        ([(0, 40)], {"id": "q7", "query": "@placeholder left.", "answers": []}, r"passage p1 entity 0: \[0, 40\]"),
        (
            [(0, 2)],
            {"id": "q7", "query": "@placeholder left.", "answers": [{"start": 8, "end": 10, "text": "Ann"}]},
            r"question q7 answer 0: text 'Ann' does not match the passage text 'Bob'",
        ),
        (
            [(0, 2)],
            {"id": "q7", "query": "@placeholder left.", "answers": [{"start": 8, "end": 99, "text": "Bob"}]},
            r"question q7 answer 0: \[8, 99\] \(inclusive\) is out of range",
        ),
        (
            [(0, 2)],
            {"id": "q7", "query": "Somebody left.", "answers": []},
            "question q7: the query has no '@placeholder'",
        ),
        ([], {"id": "q7", "query": "@placeholder left.", "answers": []}, "passage p1: the passage has no entities"),
        ([(0, 2)], {"id": "q7", "answers": []}, "missing field 'query'"),
    ],
)
def test_reader_errors_name_the_id_and_line(tmp_path, entities, qa, message):
    path = _write(tmp_path / "bad.json", _doc("Ann met Bob. Ann left.", entities, [qa]))
    with pytest.raises(DataError, match=message) as info:
        RecordTask().read(path)
    expected = _line_of(path, "q7") if "question" in message or "query" in message else _line_of(path, "p1")
    assert info.value.line == expected
    assert str(info.value).startswith(f"{path}:{expected}:")


def test_training_skips_questions_without_answers(caplog):
    with caplog.at_level(logging.WARNING):
        splits = RecordTask().load_splits(FIXTURE, ("train", "dev"))
    assert [ex.qid for ex in splits["train"]] == ["fixture-q1", "fixture-q2", "fixture-q3"]
    assert len(splits["dev"]) == 2
    assert "skipped 1 question(s) without answers (first: fixture-q4)" in caplog.text


# ---------------------------------------------------------------------------------------------- layout
def test_marking_query_and_passage():
    assert mark_query("Before @placeholder's\nvisit", "<ent2>") == ("Before<ent2>'s visit", (6, 12))
    text = "Ann met Bob.\n@highlight\nBob (Ann) left"
    cands = [(0, 3), (8, 11), (24, 27), (29, 32)]
    new, spans = mark_passage(text, cands, "<ent>")
    assert new == "<ent> Ann<ent> met<ent> Bob<ent>.;<ent> Bob<ent> (<ent> Ann<ent>) left"
    assert [new[s:e] for s, e in spans] == ["<ent> Ann<ent>", "<ent> Bob<ent>", "<ent> Bob<ent>", "<ent> Ann<ent>"]
    nested, spans = mark_passage("New York City", [(0, 13), (0, 8)], "<ent>")
    assert [nested[s:e] for s, e in spans] == ["<ent><ent> New York<ent> City<ent>", "<ent> New York<ent>"]


def _norm(s: str) -> str:
    return "".join(s.replace("##", "").split()).lower()


def test_features_windows_positions_and_labels(tokenizer):
    path = require_shared("record", "record_fixture_2passages.json")
    task = RecordTask(max_seq_length=64, doc_stride=16)
    examples = task.read(path)
    feats = task.featurize(examples, tokenizer)
    ent1, ent2 = tokenizer.entity_1_token_id, tokenizer.entity_2_token_id
    per_example = {0: 0, 1: 0}
    for f in feats:
        ex = examples[f["example_index"]]
        ids = f["input_ids"]
        pos = f["entity_position_ids"]
        assert len(ids) <= 64 and len(f["entity_ids"]) == len(f["candidate_indices"]) + 1 >= 2
        assert (ids == ent2).sum() == 1  # the placeholder marker
        assert list(pos[0][pos[0] >= 0]) == [int(np.flatnonzero(ids == ent2)[0])]  # entity 0 = placeholder
        assert f["entity_token_type_ids"][0] == 0
        if not tokenizer.double_separator:  # BERT: the passage has token type 1, so do its entities
            assert set(f["entity_token_type_ids"][1:]) == {1}
            assert f["token_type_ids"][-1] == 1 and f["token_type_ids"][0] == 0
        for row, k, label in zip(pos[1:], f["candidate_indices"], f["labels"], strict=True):
            p = row[row >= 0]
            assert list(p) == list(range(p[0], p[-1] + 1))
            assert ids[p[0]] == ent1 and ids[p[-1]] == ent1  # markers + mention, never cut by the window
            s, e = ex.candidates[k]
            assert _norm(tokenizer.decode(ids[p[1:-1]].tolist())) == _norm(ex.passage[s:e])
            assert label == float((s, e) in ex.answers)
        per_example[f["example_index"]] += 1
    assert per_example[0] >= 2 and per_example[1] >= 2  # long passages need several windows
    for i, ex in enumerate(examples):  # every candidate is in some window
        seen = {int(k) for f in feats if f["example_index"] == i for k in f["candidate_indices"]}
        assert seen == set(range(len(ex.candidates)))
    assert any(f["labels"].sum() > 0 for f in feats if f["example_index"] == 0)


def test_windows_without_candidates_are_dropped(roberta_tokenizer):
    filler = " ".join(["word"] * 60)
    text = f"Ann met Bob. {filler} Cid left."
    start = text.index("Cid")
    ex = RecordExample("q", text, "@placeholder left.", [(0, 3), (8, 11), (start, start + 3)], [(start, start + 3)])
    feats = RecordTask(max_seq_length=24, doc_stride=8).featurize([ex], roberta_tokenizer)
    # query "<ent2> left ." = 3 tokens: windows of 24 - 4 - 3 = 17 passage tokens, starting 8 tokens apart
    marked, spans = mark_passage(text, ex.candidates, "<ent>")
    n_tokens = len(roberta_tokenizer(marked, entity_spans=spans, add_special_tokens=False)["input_ids"])
    n_windows = 1 + -(-(n_tokens - 17) // 8)
    assert n_windows >= 6 and 2 <= len(feats) < n_windows
    assert {int(k) for f in feats for k in f["candidate_indices"]} == {0, 1, 2}
    assert all(f["labels"][list(f["candidate_indices"]).index(2)] == 1.0 for f in feats if 2 in f["candidate_indices"])


def test_doc_stride_is_the_step_between_windows(roberta_tokenizer):
    text = " ".join(["Ann met Bob."] * 12)
    cands = [(m.start(), m.end()) for m in re.finditer("Ann|Bob", text)]
    ex = RecordExample("q", text, "@placeholder left.", cands, [])
    feats = RecordTask(max_seq_length=32, doc_stride=10).featurize([ex], roberta_tokenizer)
    assert len(feats) >= 3
    sep = roberta_tokenizer.sep_token_id
    windows = [f["input_ids"].tolist() for f in feats]
    passages = [w[w.index(sep) + 2 : -1] for w in windows]  # after "</s></s>", before the last "</s>"
    assert all(len(p) == 32 - 4 - 3 for p in passages[:-1])
    for a, b in zip(passages, passages[1:], strict=False):
        assert a[10:] == b[: len(a) - 10]


def test_long_queries_are_cut_around_the_placeholder(roberta_tokenizer):
    query = " ".join(f"w{i}" for i in range(40)) + " @placeholder " + " ".join(f"v{i}" for i in range(40))
    ex = RecordExample("q", "Ann met Bob.", query, [(0, 3), (8, 11)], [(0, 3)])
    (f,) = RecordTask(max_query_length=10).featurize([ex], roberta_tokenizer)
    sep = roberta_tokenizer.sep_token_id
    q_len = f["input_ids"].tolist().index(sep) - 1
    assert 9 <= q_len <= 11  # cut at token boundaries; re-tokenizing the cut text may move it by one
    assert (f["input_ids"][: q_len + 1] == roberta_tokenizer.entity_2_token_id).sum() == 1


def test_collate_pads_and_trims(bert_tokenizer):
    task = RecordTask(max_seq_length=64, doc_stride=16)
    examples = task.read(FIXTURE / "train.json")
    feats = task.featurize(examples, bert_tokenizer)
    batch = task.collate(feats[:3], bert_tokenizer.pad_token_id)
    B, L = batch["input_ids"].shape
    E = batch["entity_ids"].shape[1]
    assert batch["labels"].shape == (B, E - 1) and batch["labels"].dtype == torch.float32
    assert batch["entity_position_ids"].shape[:2] == (B, E)
    for i, f in enumerate(feats[:3]):
        n = len(f["entity_ids"])
        assert batch["entity_attention_mask"][i].sum() == n
        assert torch.all(batch["labels"][i, n - 1 :] == -100)
        assert torch.all(batch["entity_position_ids"][i, n:] == -1)
        assert batch["token_type_ids"][i, : len(f["input_ids"])].tolist() == f["token_type_ids"].tolist()
        assert task.trim_logits(np.arange(E - 1, dtype=np.float32), f).shape == (n - 1,)


# ---------------------------------------------------------------------------------------------- decode / score
def _examples() -> list[RecordExample]:
    text = "Ann met Bob and Cid. Bob left."
    cands = [(0, 3), (8, 11), (16, 19), (21, 24)]
    return [
        RecordExample("a", text, "@placeholder left.", cands, [(8, 11), (21, 24)], ["Bob", "Bob"]),
        RecordExample("b", text, "@placeholder met Bob.", cands, [(0, 3)], ["Ann"]),
        RecordExample("c", text, "@placeholder came.", cands, [], []),
    ]


def _feature(i: int, cands: list[int]) -> dict:
    return {"example_index": i, "candidate_indices": np.array(cands), "entity_ids": np.ones(len(cands) + 1)}


def test_decode_takes_the_argmax_across_windows():
    task = RecordTask()
    examples = _examples()
    features = [_feature(0, [0, 1]), _feature(0, [1, 2]), _feature(1, [2, 3]), _feature(1, [0])]
    logits = [np.array([0.5, 2.0]), np.array([1.0, 3.0]), np.array([4.0, -1.0]), np.array([3.9])]
    preds = task.decode(examples, features, logits)
    assert [p.text for p in preds] == ["Cid", "Cid", ""]
    assert preds[0].span == (16, 19) and preds[0].logit == 3.0 and preds[2].span is None
    out = task.format_prediction(examples[0], preds[0])
    assert {k: out[k] for k in ("id", "query", "answer", "answer_span")} == {
        "id": "a", "query": "@placeholder left.", "answer": "Cid", "answer_span": [16, 19]
    }  # fmt: skip
    # Scores beside the decision: the chosen logit, its sigmoid, and the n-best (each candidate's best window).
    assert out["score"] == 3.0 and out["probability"] == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert [(c["answer"], c["score"]) for c in out["n_best"]] == [("Cid", 3.0), ("Bob", 2.0), ("Ann", 0.5)]


def test_scores_count_every_question(tmp_path, caplog):
    task = RecordTask()
    examples = _examples()
    scores = task.score(examples, [RecordPrediction("Bob"), RecordPrediction("Ann Smith"), RecordPrediction("Cid")])
    assert scores["total"] == 3 and scores["exact_match"] == pytest.approx(100 / 3)  # "c" has no answer: 0
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    gold = _write(tmp_path / "dev.json", _doc("Ann met Bob.", [(0, 2), (8, 10)], [
        {"id": "q1", "query": "@placeholder met Bob.", "answers": [{"start": 0, "end": 2, "text": "Ann"}]},
        {"id": "q2", "query": "Ann met @placeholder.", "answers": [{"start": 8, "end": 10, "text": "Bob"}]},
    ]))  # fmt: skip
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"q1": "ann", "zz": "Bob", "yy": "x"}))
    with caplog.at_level(logging.WARNING):
        scores = task.score_files(gold, preds)
    assert scores["exact_match"] == 50.0 and scores["missing"] == 1 and scores["unknown"] == 2
    assert "2 prediction id(s) are not in the gold file" in caplog.text and "(first: 'zz')" in caplog.text
    with pytest.raises(DataError, match="pass --gold"):
        task.score_files(None, preds)
    preds.write_text(json.dumps({"q1": ["Ann"]}))
    with pytest.raises(DataError, match=r"1 prediction\(s\) are not strings \(first id 'q1'\)"):
        task.score_files(gold, preds)


def test_predict_input_records(tmp_path):
    task = RecordTask()
    (ex,) = task.examples_from_raw(
        [(1, {"passage": "Ann met Bob.", "query": "@placeholder met Bob.", "entities": [[8, 11], [0, 3]], "id": "x"})],
        tmp_path / "in.jsonl",
    )
    assert ex.qid == "x" and ex.candidates == [(0, 3), (8, 11)] and ex.answers == []
    with pytest.raises(DataError, match=r"in.jsonl:3: entities\[0\] = \[8, 13\] is out of range"):
        task.examples_from_raw([(3, {"passage": "Ann met Bob.", "query": "@placeholder", "entities": [[8, 13]]})],
                               tmp_path / "in.jsonl")  # fmt: skip
    with pytest.raises(DataError, match="the query has no '@placeholder'"):
        task.examples_from_raw([(2, {"passage": "Ann", "query": "who", "entities": [[0, 3]]})], tmp_path / "in.jsonl")


# ---------------------------------------------------------------------------------------------- end to end
def test_finetune_score_evaluate_predict_round_trip(tiny_bert, tmp_path, capsys):
    out = tmp_path / "out"
    opts = {"max_seq_length": 64, "doc_stride": 16}
    results = finetune(
        "record", tiny_bert, FIXTURE, out, task_options=opts, num_train_epochs=2, learning_rate=1e-3,
        train_batch_size=2, gradient_accumulation_steps=1, progress=False, tensorboard=False,
    )  # fmt: skip
    assert results["examples"] == {"train": 3, "dev": 2}
    assert results["features"]["train"] > 3  # passage A needs several windows at 64 tokens
    assert json.loads((out / "results.json").read_text())["dev"] == results["dev"]
    preds = json.loads((out / "dev_predictions.json").read_text())
    assert set(preds) == {"fixture-q5", "fixture-q6"} and all(isinstance(v, str) and v for v in preds.values())
    capsys.readouterr()
    assert cli_main(["score", "record", "--gold", str(FIXTURE / "dev.json"), "--predictions",
                     str(out / "dev_predictions.json")]) == 0  # fmt: skip
    scored = json.loads(capsys.readouterr().out)
    assert scored["exact_match"] == results["dev"]["exact_match"] and scored["f1"] == results["dev"]["f1"]
    again = evaluate_folder("record", out, FIXTURE, "dev", progress=False)
    assert again["exact_match"] == results["dev"]["exact_match"] and again["f1"] == pytest.approx(results["dev"]["f1"])
    raw = tmp_path / "in.jsonl"
    raw.write_text(json.dumps({"passage": "Ellen Park met Lopez in Chicago.", "query": "@placeholder met Lopez.",
                               "entities": [[0, 10], [15, 20], [24, 31]]}) + "\n")  # fmt: skip
    assert cli_main(["predict", "record", "--model", str(out), "--input", str(raw), "--output",
                     str(tmp_path / "o.jsonl"), "--no-progress"]) == 0  # fmt: skip
    rec = json.loads((tmp_path / "o.jsonl").read_text())
    assert rec["id"] == "line-1" and rec["answer"] in {"Ellen Park", "Lopez", "Chicago"}
    assert "Ellen Park met Lopez in Chicago."[slice(*rec["answer_span"])] == rec["answer"]


def _synthetic(n: int, seed: int) -> dict:
    """Passages of shuffled sentences; the answer is always the name right after "winner"."""
    rng = random.Random(seed)
    data = []
    for i in range(n):
        a, b, c, d = rng.sample(SYNTH_NAMES, 4)
        sentences = [f"{a} met {b} in the park.", f"the winner {c} smiled.", f"later {d} talked with {a}."]
        rng.shuffle(sentences)
        text = " ".join(sentences)
        entities = []
        for name in (a, b, c, d):
            for m in re.finditer(rf"\b{name}\b", text):
                entities.append((m.start(), m.end() - 1))
        answers = [{"start": s, "end": e, "text": c} for s, e in entities if text[s : e + 1] == c]
        qa = {"id": f"s{seed}-{i}", "query": "@placeholder won the race.", "answers": answers}
        data.append({"id": f"p{seed}-{i}", "passage": {"text": text, "entities": [{"start": s, "end": e} for s, e in
                     entities]}, "qas": [qa]})  # fmt: skip
    return {"version": "1.0", "data": data}


def test_tiny_model_learns_a_synthetic_cloze_rule(tiny_bert, tmp_path):
    """Four names (five mentions) per question, so chance EM is about 25 % (the untrained model gets 19 %): the
    model must find the name after "winner".  It reaches 100 % on train and held-out questions in ~6 epochs."""
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "train.json", _synthetic(48, seed=1))
    _write(data / "dev.json", _synthetic(48, seed=2))  # held-out questions of the same kind
    out = tmp_path / "out"
    results = finetune(
        "record", tiny_bert, data, out, task_options={"max_seq_length": 48}, num_train_epochs=10,
        learning_rate=3e-3, train_batch_size=8, gradient_accumulation_steps=1, seed=0, select_best=False,
        warmup_ratio=0.1, progress=False, tensorboard=False,
    )  # fmt: skip
    assert results["dev"]["exact_match"] >= 75.0, results["history"]
    assert evaluate_folder("record", out, data, "train", progress=False)["exact_match"] >= 75.0
