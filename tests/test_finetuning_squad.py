"""SQuAD 1.1: official scoring (real leaderboard files), reader errors, windows / max context / labels,
n-best decoding, Wikipedia-link entity features, and the fine-tuning commands end to end (tiny random BERT),
including a run that must learn."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from conftest import minilm_folder, require_shared
from luke.cli import main as cli_main
from luke.entity_vocab import EntityVocab
from luke.errors import DataError, LukeError
from luke.finetuning.commands import evaluate_folder, finetune, make_task
from luke.finetuning.metrics import answer_exact_match, answer_f1, normalize_answer, qa_scores
from luke.finetuning.model_io import build_for_finetuning
from luke.finetuning.tasks.squad import SquadExample, SquadTask, read_squad, split_squad_by_article
from luke.modeling import LukeForQuestionAnswering
from luke.tokenization import LukeTokenizer
from test_finetuning_tasks import FIXTURES
from test_finetuning_training import make_tiny_bert

SQUAD_FIXTURE = FIXTURES / "squad"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert_squad"))


@pytest.fixture(scope="module")
def bert_tokenizer(tiny_bert) -> LukeTokenizer:
    return LukeTokenizer.from_pretrained(tiny_bert, entity_vocab=EntityVocab.from_counts([]))


def _write(path: Path, articles: list[dict]) -> Path:
    path.write_text(json.dumps({"version": "1.1", "data": articles}, indent=1))
    return path


def _article(context: str, qas: list[tuple[str, str, list[tuple[int, str]]]], title: str = "T") -> dict:
    questions = [
        {"id": qid, "question": q, "answers": [{"answer_start": s, "text": t} for s, t in answers]}
        for qid, q, answers in qas
    ]
    return {"title": title, "paragraphs": [{"context": context, "qas": questions}]}


# ------------------------------------------------------------------------------------------ scoring


@pytest.mark.parametrize(
    "name, em, f1",
    [("bert_large_ensemble_google", 86.206, 92.196), ("logistic_regression_baseline_stanford", 40.142, 50.982)],
)
def test_official_leaderboard_predictions_score_their_published_numbers(name, em, f1, capsys, caplog):
    gold = require_shared("squad1.1", "dev-v1.1.json")
    preds = require_shared("squad1.1", "reference_predictions_dev", f"{name}.json")
    with caplog.at_level(logging.WARNING):
        assert cli_main(["score", "squad", "--gold", str(gold), "--predictions", str(preds)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"exact_match", "f1"}
    assert round(out["exact_match"], 3) == em and round(out["f1"], 3) == f1
    if name.startswith("logistic"):  # 13 dev ids missing (scored 0), 28 extra ids (ignored): both reported
        assert "13 gold question(s) have no prediction" in caplog.text
        assert "28 prediction id(s) are not in the gold file" in caplog.text


def test_answer_normalisation_and_official_semantics():
    assert normalize_answer("The  Quick, brown-fox!") == "quick brownfox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("Théâtre") == "théâtre"  # only ASCII punctuation is removed; no accent folding
    assert answer_exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert answer_f1("the cat sat", "cat sat down") == pytest.approx(0.8)  # P = 2/2, R = 2/3
    assert answer_f1("dog", "cat") == 0.0
    gold = {"a": ["Paris", "the city of Paris"], "b": ["1850"], "c": ["red"]}
    scores = qa_scores(gold, {"a": "city of Paris", "b": "in 1850", "zz": "x"})
    # a: EM 1 (second gold), b: EM 0 F1 2/3, c: missing -> 0; means over all 3 gold questions
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert (scores["missing"], scores["unknown"], scores["first_unknown"]) == (1, 1, "zz")


def test_score_rejects_bad_prediction_files(tmp_path, capsys):
    gold = SQUAD_FIXTURE / "dev.json"
    bad = tmp_path / "preds.json"
    bad.write_text(json.dumps(["not", "an", "object"]))
    assert cli_main(["score", "squad", "--gold", str(gold), "--predictions", str(bad)]) == 2
    assert "expected one JSON object" in capsys.readouterr().err
    bad.write_text(json.dumps({"d1": 1402, "d2": "cheese", "d3": None}))
    assert cli_main(["score", "squad", "--gold", str(gold), "--predictions", str(bad)]) == 2
    assert "2 prediction(s) are not strings (first id 'd1')" in capsys.readouterr().err
    assert cli_main(["score", "squad", "--predictions", str(bad)]) == 2
    assert "--gold" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ reading


def test_reader_reads_the_real_dev_set():
    examples = read_squad(require_shared("squad1.1", "dev-v1.1.json"))
    assert len(examples) == 10570 and len({ex.qid for ex in examples}) == 10570
    assert sum(len(ex.answers) for ex in examples) / len(examples) == pytest.approx(3.29, abs=0.01)
    for ex in examples[:500]:
        for start, text in ex.answers:
            assert ex.context[start : start + len(text)] == text


def test_reader_errors_name_count_first_id_and_line(tmp_path):
    ctx = "Alpha beta gamma delta."
    path = _write(
        tmp_path / "bad.json",
        [_article(ctx, [("ok", "Q?", [(6, "beta")]), ("q2", "Q?", [(0, "beta")]), ("q3", "Q?", [(1, "gamma")])])],
    )
    with pytest.raises(DataError, match=r"2 answer\(s\) whose text does not match .*first: question 'q2'") as err:
        read_squad(path)
    assert err.value.line is not None and '"q2"' in path.read_text().splitlines()[err.value.line - 1]

    path = _write(tmp_path / "empty.json", [_article("   ", [("e1", "Q?", [])])])
    with pytest.raises(DataError, match=r"empty context \(first question id 'e1'\)"):
        read_squad(path)
    path = _write(tmp_path / "dup.json", [_article(ctx, [("x", "Q?", [(6, "beta")]), ("x", "Q2?", [(6, "beta")])])])
    with pytest.raises(DataError, match="duplicate question id 'x'"):
        read_squad(path)
    (tmp_path / "broken.json").write_text('{"data": [\n{"title": "x",\n}')
    with pytest.raises(DataError, match=r"broken.json:3: invalid JSON"):
        read_squad(tmp_path / "broken.json")

    # Training questions need answers (count and first id); in dev they are kept and score 0.
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "train.json", [_article(ctx, [("a", "Q?", [(6, "beta")]), ("n1", "Q?", []), ("n2", "Q?", [])])])
    with pytest.raises(DataError, match=r"2 training question\(s\) without answers \(first: 'n1'\)"):
        SquadTask().load_splits(data, ("train",))


def test_split_by_article_is_seeded_and_disjoint(tmp_path):
    src = require_shared("squad1.1", "dev-v1.1.json")
    a = split_squad_by_article(src, tmp_path / "a", seed=0)
    b = split_squad_by_article(src, tmp_path / "b", seed=0)
    c = split_squad_by_article(src, tmp_path / "c", seed=1)
    assert a["train"]["titles"] == b["train"]["titles"] != c["train"]["titles"]
    assert a["train"]["articles"] == a["dev"]["articles"] == 24
    assert not set(a["train"]["titles"]) & set(a["dev"]["titles"])
    assert a["train"]["questions"] + a["dev"]["questions"] == 10570
    assert len(read_squad(tmp_path / "a" / "dev.json")) == a["dev"]["questions"]


# ------------------------------------------------------------------------------------------ features


LONG_CONTEXT = (
    "The old mill stood by the river for many years and the miller sold flour to every village nearby . "
    "In the spring the water was high and the wheel turned fast , so the miller worked from dawn to dusk . "
    "Later a storm broke the wheel in 1887 and the mill was never used again by anyone in the valley . "
    "Today the building is a small museum about bread , flour and the river ."
)


def _long_examples() -> list[SquadExample]:
    def ex(qid, q, answer):
        return SquadExample(qid, q, LONG_CONTEXT, [(LONG_CONTEXT.index(answer), answer)])

    return [
        ex("m1", "When did the storm break the wheel of the old mill by the river?", "1887"),
        ex("m2", "What did the miller sell?", "flour"),
        ex("m3", "What is the building today?", "a small museum about bread"),
    ]


def test_windows_stride_labels_and_max_context(tiny_bert):
    tok = LukeTokenizer.from_pretrained(tiny_bert, entity_vocab=EntityVocab.from_counts([]))
    examples = _long_examples()
    task = SquadTask(max_seq_length=40, doc_stride=12, max_query_length=8)
    feats = task.featurize(examples, tok)
    full = tok.backend_tokenizer.encode(LONG_CONTEXT, add_special_tokens=False).offsets
    index_of = {tuple(o): i for i, o in enumerate(full)}
    for i, ex in enumerate(examples):
        windows = [f for f in feats if f["example_index"] == i]
        assert len(windows) >= 3
        starts = []
        for f in windows:
            assert len(f["input_ids"]) <= 40
            assert f["context_start"] <= 8 + 2  # the question is cut to 8 tokens
            ctx = f["offsets"][f["context_start"] : f["context_end"]]
            starts.append(index_of[tuple(ctx[0])])
            s, e = f["start_positions"], f["end_positions"]
            a_start, text = ex.answers[0]
            inside = ctx[0, 0] <= a_start and a_start + len(text) <= ctx[-1, 1]
            if inside:
                assert ex.context[f["offsets"][s, 0] : f["offsets"][e, 1]] == text
            else:
                assert s == e == 0
        assert any(f["start_positions"] > 0 for f in windows)
        assert np.all(np.diff(starts)[:-1] == 12)  # window starts doc_stride tokens apart (the last may be less)
        # Every passage token is "max context" in exactly one window.
        owners: dict[int, int] = {}
        for w, f in enumerate(windows):
            for p in range(f["context_start"], f["context_end"]):
                if f["max_context"][p]:
                    key = index_of[tuple(f["offsets"][p])]
                    assert key not in owners
                    owners[key] = w
        assert sorted(owners) == list(range(len(full)))


def test_decoding_picks_the_best_valid_span_across_windows(tiny_bert):
    tok = LukeTokenizer.from_pretrained(tiny_bert, entity_vocab=EntityVocab.from_counts([]))
    examples = _long_examples()[:1]
    task = SquadTask(max_seq_length=40, doc_stride=12, max_answer_length=3)
    feats = task.featurize(examples, tok)

    def logits_for(f, starts, ends):
        row = np.full((len(f["input_ids"]), 2), -100.0, np.float32)  # everything else: hopeless
        for p, value in starts:
            row[p, 0] = value
        for p, value in ends:
            row[p, 1] = value
        return row

    # Window 0: the best start/end pair is too long (a0..a0+5), a strong start lies after the strong end
    # (a0+6 vs a0+5) and so pairs only with a too-distant end, and the only valid span, a0+10..a0+10,
    # scores 2 + 2.  Window 1: a valid span scoring 3 + 3, which must win.
    f0, f1 = feats[0], feats[1]
    a0 = f0["context_start"]
    a1 = int(np.flatnonzero(f1["max_context"])[0])
    logits = [logits_for(f, [], []) for f in feats]
    logits[0] = logits_for(f0, [(a0, 50.0), (a0 + 6, 40.0), (a0 + 10, 2.0)], [(a0 + 5, 50.0), (a0 + 10, 2.0)])
    logits[1] = logits_for(f1, [(a1, 3.0)], [(a1 + 1, 3.0)])
    (pred,) = task.decode(examples, feats, logits)
    expected = LONG_CONTEXT[f1["offsets"][a1, 0] : f1["offsets"][a1 + 1, 1]]
    assert pred.text == expected and pred.score == pytest.approx(6.0)
    assert LONG_CONTEXT[pred.start : pred.end] == pred.text


def test_answers_are_cut_from_the_original_context(tiny_bert):
    tok = LukeTokenizer.from_pretrained(tiny_bert, entity_vocab=EntityVocab.from_counts([]))
    context = "Kessel  is   a VILLAGE,\tknown for its cheese."
    ex = SquadExample("x", "What is Kessel?", context, [(15, "VILLAGE")])
    task = SquadTask()
    (f,) = task.featurize([ex], tok)
    row = np.zeros((len(f["input_ids"]), 2), np.float32)
    row[f["start_positions"], 0] = row[f["end_positions"], 1] = 5.0
    (pred,) = task.decode([ex], [f], [row])
    assert pred.text == "VILLAGE" and (pred.start, pred.end) == (15, 22)


def test_oracle_logits_recover_real_answers():
    """Featurisation and decoding agree on real data: logits that point at each window's label give back
    the gold answer for almost every question (misses: answers inside a word piece, e.g. '8' of '18', and
    answers whose start has its max context in a window that cuts the answer off, as in ``run_squad``)."""
    tok = LukeTokenizer.from_pretrained(minilm_folder(), entity_vocab=EntityVocab.from_counts([]))
    examples = read_squad(require_shared("squad1.1", "dev-v1.1.json"))[:400]
    task = SquadTask(max_seq_length=128, doc_stride=48)
    feats = task.featurize(examples, tok)
    assert len(feats) > 1.5 * len(examples)  # most questions need several windows at this length
    logits = []
    for f in feats:
        row = np.zeros((len(f["input_ids"]), 2), np.float32)
        if f["start_positions"] > 0:
            row[f["start_positions"], 0] = row[f["end_positions"], 1] = 10.0
        logits.append(row)
    scores = task.score(examples, task.decode(examples, feats, logits))
    assert scores["exact_match"] >= 97.0


# ------------------------------------------------------------------------------------------ entities


def test_entity_features_from_a_plain_dictionary(tmp_path, tiny_bert):
    (tmp_path / "mentions.tsv").write_text("harbour town\tHarbour Town\nkessel\tKessel\nmill road\tMill Road\n")
    vocab = EntityVocab.from_counts([("Harbour Town", 5), ("Kessel", 3)])  # no "Mill Road"
    tok = LukeTokenizer.from_pretrained(tiny_bert, entity_vocab=vocab)
    ex = read_squad(SQUAD_FIXTURE / "train.json")
    task = SquadTask(mention_db=str(tmp_path / "mentions.tsv"), min_link_prob=0.0)
    feats = task.featurize(ex, tok)
    f = next(x for x in feats if ex[x["example_index"]].qid == "t2")  # "Who founded Harbour Town?"
    titles = [vocab.titles(int(i))[0][0] for i in f["entity_ids"]]
    assert titles == ["Harbour Town", "Harbour Town", "Kessel"]  # question, then passage mentions
    assert f["entity_token_type_ids"].tolist() == [0, 1, 1]
    for eid, pos in zip(f["entity_ids"], f["entity_position_ids"], strict=True):
        words = tok.decode(f["input_ids"][pos[pos >= 0]].tolist())
        assert words == vocab.titles(int(eid))[0][0].lower()
    mill = next(x for x in feats if ex[x["example_index"]].qid == "t5")
    assert len(mill["entity_ids"]) == 0  # "Mill Road" is not in the entity vocabulary
    batch = task.collate([mill], tok.pad_token_id)
    assert "entity_ids" not in batch  # a batch without any entity is words-only
    batch = task.collate([f, mill], tok.pad_token_id)
    assert batch["entity_ids"].shape == (2, 3) and batch["entity_attention_mask"][1].sum() == 0

    no_entity = SquadTask(mention_db=str(tmp_path / "mentions.tsv"), no_entity=True).featurize(ex, tok)
    assert all(len(x["entity_ids"]) == 0 for x in no_entity)
    assert [x["input_ids"].tolist() for x in no_entity] == [x["input_ids"].tolist() for x in feats]

    specials_only = LukeTokenizer.from_pretrained(tiny_bert, entity_vocab=EntityVocab.from_counts([]))
    with pytest.raises(LukeError, match="entity features need an entity vocabulary"):
        SquadTask(mention_db=str(tmp_path / "mentions.tsv")).featurize(ex, specials_only)


# ------------------------------------------------------------------------------------------ end to end


def test_finetune_squad_with_entities_end_to_end(tiny_bert, tmp_path, capsys):
    (tmp_path / "mentions.tsv").write_text("harbour town\tHarbour Town\nkessel\tKessel\nharbour\tHarbour Town\n")
    EntityVocab.from_counts([("Harbour Town", 5), ("Kessel", 3)]).save(tmp_path / "vocab.jsonl")
    out = tmp_path / "out"
    args = ["finetune", "squad", "--model", str(tiny_bert), "--data-dir", str(SQUAD_FIXTURE), "--output-dir",
            str(out), "--learning-rate", "1e-3", "--num-train-epochs", "2", "--train-batch-size", "2",
            "--gradient-accumulation-steps", "1", "--max-seq-length", "40", "--doc-stride", "8", "--no-progress",
            "--no-tensorboard", "--entity-vocab", str(tmp_path / "vocab.jsonl"), "--mention-db",
            str(tmp_path / "mentions.tsv")]  # fmt: skip
    assert cli_main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["main_metric"] == "f1" and results["features"]["train"] > results["examples"]["train"]
    preds = json.loads((out / "test_predictions.json").read_text())
    assert set(preds) == {"d1", "d2", "d3"}
    context = read_squad(SQUAD_FIXTURE / "test.json")[0].context
    assert all(p in context for p in preds.values())

    # The entity table stayed frozen (equal to the seeded initial one); the rest trained.
    model = LukeForQuestionAnswering.from_pretrained(out).eval()
    initial, _ = build_for_finetuning(
        tiny_bert, "LukeForQuestionAnswering", ["start", "end"], seed=SquadTask.defaults.seed,
        keep_entity_vocab=True, entity_vocab_path=tmp_path / "vocab.jsonl",
    )  # fmt: skip
    table = model.luke.entity_embeddings.entity_embeddings.weight
    assert table.shape[0] == 6
    torch.testing.assert_close(table, initial.luke.entity_embeddings.entity_embeddings.weight, rtol=0, atol=0)
    assert not torch.equal(model.qa_outputs.weight, initial.qa_outputs.weight)

    # The folder loads in transformers.LukeForQuestionAnswering with identical start/end logits.
    theirs = transformers.LukeForQuestionAnswering.from_pretrained(str(out)).eval()
    tok = LukeTokenizer.from_pretrained(out)
    state = json.loads((out / "luke_task.json").read_text())
    task = make_task("squad", **state["options"])
    examples = task.read(SQUAD_FIXTURE / "test.json")
    feats = task.featurize(examples, tok)
    assert any(len(f["entity_ids"]) for f in feats)
    batch = task.collate(feats, tok.pad_token_id)
    for key in task.label_keys:
        batch.pop(key)
    with torch.no_grad():
        a, b = model(**batch), theirs(**batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(a.start_logits[real], b.start_logits[real], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a.end_logits[real], b.end_logits[real], rtol=1e-4, atol=1e-5)

    # `luke score` and `luke evaluate` reproduce the test score; `luke predict` answers raw questions.
    capsys.readouterr()
    gold = SQUAD_FIXTURE / "test.json"
    assert cli_main(["score", "squad", "--gold", str(gold), "--predictions", str(out / "test_predictions.json")]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(results["test"]["f1"])
    evaluated = evaluate_folder("squad", out, SQUAD_FIXTURE, "test", progress=False)
    assert evaluated["f1"] == pytest.approx(results["test"]["f1"])
    raw = tmp_path / "raw.jsonl"
    raw.write_text(
        json.dumps({"id": "r1", "question": "Who lives in Kessel?", "context": "Ada lives in Kessel."}) + "\n"
    )
    assert cli_main(["predict", "squad", "--model", str(out), "--input", str(raw), "--no-progress"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    rec = json.loads(line)
    assert rec["id"] == "r1" and rec["answer"] == "Ada lives in Kessel."[rec["answer_start"] : rec["answer_end"]]


def _synthetic(n: int, seed: int) -> list[dict]:
    """Questions whose answer is the place after 'to' in a sentence with a random amount of filler."""
    rng = random.Random(seed)
    people = ["baker", "farmer", "teacher", "sailor", "doctor", "painter"]
    places = ["lisbon", "oslo", "quito", "lima", "dakar", "hanoi", "perth", "cork"]
    filler = ["yesterday", "quietly", "after", "lunch", "again", "slowly", "finally", "early"]
    articles = []
    for i in range(n):
        who, where = rng.choice(people), rng.choice(places)
        pre = " ".join(rng.choice(filler) for _ in range(rng.randint(0, 6)))
        post = " ".join(rng.choice(filler) for _ in range(rng.randint(0, 6)))
        context = f"{pre} the {who} went to {where} {post} .".strip()
        start = context.index(f" to {where}") + 4
        articles.append(_article(context, [(f"s{i}", f"where did the {who} go ?", [(start, where)])], f"A{i}"))
    return articles


def test_squad_fine_tuning_learns(tmp_path):
    data = tmp_path / "synthetic"
    data.mkdir()
    train, dev = _synthetic(96, 0), _synthetic(32, 1)
    _write(data / "train.json", train)
    _write(data / "dev.json", dev)
    texts = tuple(p["context"] + " " + p["qas"][0]["question"] for a in train + dev for p in a["paragraphs"])
    bert = make_tiny_bert(tmp_path / "bert", dropout=0.0, texts=texts)
    results = finetune(
        "squad", bert, data, tmp_path / "out", eval_splits=("dev",), learning_rate=3e-3, num_train_epochs=12,
        train_batch_size=8, gradient_accumulation_steps=1, progress=False, tensorboard=False,
        task_options={"max_seq_length": 64},
    )  # fmt: skip
    # Chance: ~1 / 15 passage tokens; the model must find the place after "to".
    assert results["dev"]["exact_match"] >= 70.0, results["dev"]
    losses = [h["loss"] for h in results["history"] if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]


def test_transformers_bert_qa_baseline_runs_on_the_same_features(tiny_bert, tmp_path):
    results = finetune(
        "squad", tiny_bert, SQUAD_FIXTURE, tmp_path / "bert", backend="transformers", eval_splits=("dev",),
        learning_rate=1e-3, num_train_epochs=1, train_batch_size=4, gradient_accumulation_steps=1, progress=False,
        tensorboard=False, task_options={"max_seq_length": 64, "no_entity": True},
    )  # fmt: skip
    assert 0.0 <= results["dev"]["f1"] <= 100.0
    cfg = json.loads((tmp_path / "bert" / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["architectures"] == ["BertForQuestionAnswering"]


def test_entity_side_from_title_words(tiny_bert, tmp_path):
    EntityVocab.from_counts([("Harbour Town", 5), ("Kessel", 3)]).save(tmp_path / "vocab.jsonl")
    kw = dict(keep_entity_vocab=True, entity_vocab_path=tmp_path / "vocab.jsonl")
    model, tok = build_for_finetuning(
        tiny_bert, "LukeForQuestionAnswering", ["start", "end"], entity_init="words", **kw
    )
    words, ents = model.luke.embeddings, model.luke.entity_embeddings
    for title in ("Harbour Town", "Kessel"):
        ids = tok.backend_tokenizer.encode(title, add_special_tokens=False).ids
        row = ents.entity_embeddings.weight[tok.entity_vocab.get_id(title)]
        torch.testing.assert_close(row, words.word_embeddings.weight[ids].mean(0))
    offset = model.config.pad_token_id + 1  # RoBERTa-style word positions after the BERT conversion
    torch.testing.assert_close(
        ents.position_embeddings.weight[:5], words.position_embeddings.weight[offset : offset + 5]
    )
    torch.testing.assert_close(ents.LayerNorm.weight, words.LayerNorm.weight)
    random_init, _ = build_for_finetuning(tiny_bert, "LukeForQuestionAnswering", ["start", "end"], **kw)
    assert not torch.equal(random_init.luke.entity_embeddings.entity_embeddings.weight, ents.entity_embeddings.weight)
    with pytest.raises(LukeError, match="--entity-init"):
        build_for_finetuning(tiny_bert, "LukeForQuestionAnswering", ["start", "end"], entity_init="glove", **kw)


def test_vanilla_attention_ablation(tiny_bert, tmp_path):
    results = finetune(
        "squad", tiny_bert, SQUAD_FIXTURE, tmp_path / "vanilla", eval_splits=("dev",), learning_rate=1e-3,
        num_train_epochs=1, train_batch_size=4, gradient_accumulation_steps=1, progress=False, tensorboard=False,
        task_options={"max_seq_length": 64, "no_entity_aware_attention": True},
    )  # fmt: skip
    assert 0.0 <= results["dev"]["f1"] <= 100.0
    cfg = json.loads((tmp_path / "vanilla" / "config.json").read_text())
    assert cfg["use_entity_aware_attention"] is False
    model = LukeForQuestionAnswering.from_pretrained(tmp_path / "vanilla")
    assert not any("w2e_query" in name for name, _ in model.named_parameters())
