"""Entity disambiguation: the head (keys of transformers' LukeForMaskedLM, candidate scores equal the full
head's, loading a pretrained folder, refusing a model without an entity head), windows for long documents,
local and global inference on a tiny LUKE whose answers are set by construction (they differ), and
``luke finetune / evaluate / predict / score entity_disambiguation`` end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from luke.checkpoint import init_from_transformers
from luke.cli import main as cli_main
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, DataError
from luke.finetuning.commands import evaluate_folder, make_task
from luke.finetuning.ed_data import EdDocument, EdMention
from luke.finetuning.ed_inference import collate_windows, disambiguate, document_features
from luke.modeling import LukeForEntityClassification, LukeForEntityDisambiguation, LukeForMaskedLM
from luke.tokenization import LukeTokenizer
from test_finetuning_training import make_tiny_bert

TITLES = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"]
TEXT = "the alpha met the gamma near the zeta river and the epsilon hill ."


def _save_pretrained(folder: Path, bert: Path, titles=TITLES) -> Path:
    """A pretrained-style LUKE folder (LukeForMaskedLM + tokenizer + entity vocabulary) from a tiny BERT."""
    vocab = EntityVocab.from_counts([(t, 10 - i) for i, t in enumerate(titles)])
    tok = LukeTokenizer.from_pretrained(bert, entity_vocab=vocab)
    model, _ = init_from_transformers(
        bert, LukeForMaskedLM, entity_vocab_size=len(vocab), entity_emb_size=16, word_position_style="bert", seed=0
    )
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("ed_bert"), dropout=0.0, texts=(TEXT,))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, bert) -> Path:
    return _save_pretrained(tmp_path_factory.mktemp("ed_pretrained"), bert)


def _doc(doc_id: str = "d1", candidates=None) -> EdDocument:
    """TEXT with mentions alpha (Alpha), gamma (Gamma), zeta (NIL: no candidate), epsilon (Epsilon)."""
    spans = [(w, TEXT.index(w)) for w in ("alpha", "gamma", "zeta", "epsilon")]
    golds = ["Alpha", "Gamma", None, "Epsilon"]
    cands = candidates or [
        [("Beta", 0.6), ("Alpha", 0.4)],
        [("Gamma", 0.5), ("Delta", 0.5)],
        [],
        [("Epsilon", 0.9), ("Not In Vocab", 0.1)],
    ]
    mentions = [EdMention(s, s + len(w), g, c) for (w, s), g, c in zip(spans, golds, cands, strict=True)]
    return EdDocument(doc_id, TEXT, mentions)


# ------------------------------------------------------------------------------------------ the head


def test_keys_equal_transformers_and_candidate_scores_equal_the_full_head(pretrained):
    ours = LukeForEntityDisambiguation.from_pretrained(pretrained)
    theirs = transformers.LukeForMaskedLM.from_pretrained(str(pretrained))
    ent_keys = {k for k in theirs.state_dict() if k.startswith("entity_predictions.")}
    assert ent_keys and ent_keys <= set(ours.state_dict())
    luke_keys = {k for k in theirs.state_dict() if k.startswith("luke.")}
    assert luke_keys == {k for k in ours.state_dict() if k.startswith("luke.")}
    mlm = LukeForMaskedLM.from_pretrained(pretrained).eval()
    tok = LukeTokenizer.from_pretrained(pretrained)
    feats, counts = document_features([_doc()], tok)
    assert counts == {"mentions": 4, "with_candidates": 3, "out_of_vocab_candidates": 1, "unscorable": 0}
    batch = collate_windows(feats, tok.pad_token_id)
    with torch.no_grad():
        out = ours(**batch)
        full = mlm(**{k: v for k, v in batch.items() if not k.startswith("entity_candidate")}).entity_logits
    assert out.logits.shape == (1, 3, 2)
    expected = torch.gather(full, 2, batch["entity_candidate_ids"])
    expected = expected.masked_fill(~batch["entity_candidate_mask"], -10000.0)
    torch.testing.assert_close(out.logits, expected, rtol=1e-5, atol=1e-5)
    # the loss is the cross-entropy over the candidates; -100 takes no part
    labels = torch.tensor([[1, -100, 0]])
    with torch.no_grad():
        loss = ours(**batch, entity_labels=labels).loss
    want = torch.nn.functional.cross_entropy(out.logits[0, [0, 2]], labels[0, [0, 2]])
    torch.testing.assert_close(loss, want)


def test_transformers_folder_loads_and_lm_head_is_ignored_quietly(tmp_path, pretrained, caplog):
    theirs = transformers.LukeForMaskedLM.from_pretrained(str(pretrained))
    theirs.save_pretrained(str(tmp_path / "hf"))
    caplog.set_level("WARNING")
    model = LukeForEntityDisambiguation.from_pretrained(tmp_path / "hf")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    torch.testing.assert_close(model.entity_predictions.bias, theirs.entity_predictions.bias)
    assert model.entity_predictions.decoder.weight is model.luke.entity_embeddings.entity_embeddings.weight


def test_a_model_without_entity_head_is_refused(tmp_path, pretrained, bert, capsys):
    config = LukeForMaskedLM.from_pretrained(pretrained).config
    config.id2label = {0: "a", 1: "b"}
    LukeForEntityClassification(config).save_pretrained(tmp_path / "cls")
    with pytest.raises(CheckpointError, match=r"no masked-entity head .*LukeForEntityClassification"):
        LukeForEntityDisambiguation.from_pretrained(tmp_path / "cls")
    lite = _save_pretrained(tmp_path / "lite", bert, titles=[])
    with pytest.raises(CheckpointError, match="only the 4 special entities"):
        LukeForEntityDisambiguation.from_pretrained(lite)
    data = tmp_path / "data"
    data.mkdir()
    _write_docs(data / "train.jsonl", [_doc()])
    for cmd in (["evaluate", "entity_disambiguation", "--model", str(lite), "--data-dir", str(data), "--split",
                 "train"],
                ["finetune", "entity_disambiguation", "--model", str(bert), "--data-dir", str(data), "--output-dir",
                 str(tmp_path / "o")]):  # fmt: skip
        assert cli_main([*cmd, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and ("special entities" in err or "'bert' model" in err)


# ------------------------------------------------------------------------------------------ inference


def _set_by_construction(model: LukeForEntityDisambiguation, tok: LukeTokenizer) -> None:
    """Weights that make the answers known: mention "alpha" -> Alpha (bias 20: near certain) and "epsilon"
    (one candidate: certain), so global fixes them before "gamma", whose candidates are Gamma and Delta: with
    the others masked (local) Gamma wins by 1 logit, with Alpha and Epsilon fed in (global's last pass) Delta
    wins by 1 (Delta's row is set along the change those inputs cause in gamma's head state)."""
    vocab, head, mask = tok.entity_vocab, model.entity_predictions, tok.entity_mask_token_id
    a, b, g, d = (vocab.get_id(t) for t in ("Alpha", "Beta", "Gamma", "Delta"))
    feats, _ = document_features([_doc()], tok)
    batch = collate_windows(feats, tok.pad_token_id)
    with torch.no_grad():
        head.bias.zero_()
        head.bias[a] = 20.0
        table = model.luke.entity_embeddings.entity_embeddings.weight
        table[b] = 0.0
        states = []
        for inputs in ([mask, mask], [a, vocab.get_id("Epsilon")]):  # global fixes gamma last, after both
            ids = batch["entity_ids"].clone()
            ids[0, [0, 2]] = torch.tensor(inputs)
            out = model.luke(
                **{k: v for k, v in batch.items() if not k.startswith("entity_cand")} | {"entity_ids": ids}
            )
            states.append(head.transform(out.entity_last_hidden_state[0, 1]))
        u0, u1 = states
        w = 2 * (u1 - u0) / (u1 - u0).pow(2).sum()
        table[g] = 0.0
        table[d] = w
        head.bias[d] = -1.0 - u0 @ w  # Delta: -1 with alpha masked, +1 with Alpha as input; Gamma: 0


def test_local_and_global_answers_known_by_construction(pretrained):
    model = LukeForEntityDisambiguation.from_pretrained(pretrained).eval()
    tok = LukeTokenizer.from_pretrained(pretrained)
    _set_by_construction(model, tok)
    docs = [_doc()]
    local = disambiguate(model, tok, docs, mode="local")[0]
    glob = disambiguate(model, tok, docs, mode="global")[0]
    assert [m.predicted for m in local.mentions] == ["Alpha", "Gamma", None, "Epsilon"]
    assert [m.predicted for m in glob.mentions] == ["Alpha", "Delta", None, "Epsilon"]
    p = float(1 / (1 + np.exp(-1)))  # softmax of (1, 0) and of (0, -1)
    assert local.mentions[1].score == pytest.approx(p, abs=1e-3)
    assert glob.mentions[1].score == pytest.approx(p, abs=1e-3)
    assert local.mentions[0].score == pytest.approx(1.0, abs=1e-6)
    assert local.mentions[2].score is None and local.mentions[3].score == pytest.approx(1.0)  # one candidate
    assert docs[0].mentions[0].predicted is None  # the input documents are left as they were
    # batched with other documents and windows, the answers stay the same
    many = disambiguate(model, tok, [_doc("x"), _doc("y"), _doc("z")], mode="global", batch_size=2)
    assert all([m.predicted for m in d.mentions] == ["Alpha", "Delta", None, "Epsilon"] for d in many)


def test_global_fixes_single_candidate_mentions_without_a_pass(pretrained):
    """epsilon's only in-vocabulary candidate is Epsilon: global fixes it (probability 1) and feeds it in before
    the first pass, so the two ambiguous mentions take two passes, not three; the answers are unchanged."""
    model = LukeForEntityDisambiguation.from_pretrained(pretrained).eval()
    tok = LukeTokenizer.from_pretrained(pretrained)
    _set_by_construction(model, tok)
    calls, forward = [], model.forward

    def counting(**batch):
        calls.append(batch["entity_ids"].clone())
        return forward(**batch)

    model.forward = counting
    glob = disambiguate(model, tok, [_doc()], mode="global")[0]
    assert [m.predicted for m in glob.mentions] == ["Alpha", "Delta", None, "Epsilon"]
    assert len(calls) == 2
    assert calls[0][0, 2].item() == tok.entity_vocab.get_id("Epsilon")  # already an input at the first pass
    assert glob.mentions[3].score == 1.0
    calls.clear()
    disambiguate(model, tok, [_doc()], mode="local")
    assert len(calls) == 1


def test_long_documents_get_mention_centred_windows(pretrained):
    tok = LukeTokenizer.from_pretrained(pretrained)
    text = " ".join([TEXT] * 6)
    mentions, start = [], 0
    for _ in range(6):
        for w, title in (("alpha", "Alpha"), ("gamma", "Gamma"), ("epsilon", "Epsilon")):
            s = text.index(w, start)
            mentions.append(EdMention(s, s + len(w), title, [(title, 1.0), ("Beta", 0.5)]))
            start = s + 1
    doc = EdDocument("long", text, mentions)
    n_tokens = len(tok(text)["input_ids"])
    feats, counts = document_features([doc], tok, max_seq_length=24, max_entity_length=4)
    assert n_tokens > 24 and len(feats) > 1 and counts["with_candidates"] == 18
    scored = sorted(i for f in feats for i in f["mention_indices"])
    assert scored == list(range(18))  # every mention in exactly one window
    for f in feats:
        assert len(f["input_ids"]) <= 24 and len(f["entity_ids"]) <= 4
        for i, pos in zip(f["mention_indices"], f["entity_position_ids"], strict=True):
            words = tok.decode(f["input_ids"][pos[pos >= 0]].tolist())
            assert words == mentions[i].text_in(doc)
            assert f["candidate_titles"][list(f["mention_indices"]).index(i)][0] == mentions[i].title
    model = LukeForEntityDisambiguation.from_pretrained(pretrained)
    out = disambiguate(model, tok, [doc], max_seq_length=24, max_entity_length=4)[0]
    assert all(m.predicted in (m.title, "Beta") for m in out.mentions)


# ------------------------------------------------------------------------------------------ commands


def _write_docs(path: Path, docs: list[EdDocument]) -> Path:
    lines = []
    for d in docs:
        ents = [{"start": m.start, "end": m.end, "title": m.title, "candidates": [list(c) for c in m.candidates]}
                for m in d.mentions]  # fmt: skip
        lines.append(json.dumps({"id": d.id, "text": d.text, "entities": ents}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_finetune_evaluate_predict_score_end_to_end(pretrained, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _write_docs(data / "train.jsonl", [_doc(f"t{i}") for i in range(4)])
    _write_docs(data / "dev.jsonl", [_doc("v1")])
    _write_docs(data / "test.jsonl", [_doc("e1"), _doc("e2")])
    out = tmp_path / "out"
    args = ["finetune", "entity_disambiguation", "--model", str(pretrained), "--data-dir", str(data),
            "--output-dir", str(out), "--train-batch-size", "2", "--learning-rate", "1e-3", "--num-train-epochs", "2",
            "--max-seq-length", "32", "--inference", "local", "--no-progress", "--no-tensorboard"]  # fmt: skip
    assert cli_main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["main_metric"] == "accuracy" and results["training"]["warmup_ratio"] == 0.1
    assert results["training"]["max_grad_norm"] == 1.0
    test = results["test"]
    assert test["gold_mentions"] == 6 and test["candidates"]["out_of_vocab_candidates"] == 2
    preds = [json.loads(x) for x in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["e1", "e2"]
    assert [e["mention"] for e in preds[0]["entities"]] == ["alpha", "gamma", "zeta", "epsilon"]
    assert preds[0]["entities"][2]["title"] is None and preds[0]["entities"][3]["title"] == "Epsilon"

    # The entity table (but [MASK]) and the output bias stayed as pretrained; the encoder trained.
    start = LukeForEntityDisambiguation.from_pretrained(pretrained)
    tuned = LukeForEntityDisambiguation.from_pretrained(out)
    tok = LukeTokenizer.from_pretrained(out)
    mask = tok.entity_mask_token_id
    t0, t1 = (m.luke.entity_embeddings.entity_embeddings.weight for m in (start, tuned))
    rows = [i for i in range(t0.shape[0]) if i != mask]
    torch.testing.assert_close(t1[rows], t0[rows], rtol=0, atol=0)
    assert not torch.equal(t1[mask], t0[mask])
    torch.testing.assert_close(tuned.entity_predictions.bias, start.entity_predictions.bias, rtol=0, atol=0)
    w = "luke.encoder.layer.0.attention.self.key.weight"
    assert not torch.equal(tuned.state_dict()[w], start.state_dict()[w])

    # evaluate reproduces the test score; the pretrained folder is evaluated zero-shot
    again = evaluate_folder("entity_disambiguation", out, data, "test", progress=False)
    assert again["accuracy"] == pytest.approx(test["accuracy"]) and again["f1"] == pytest.approx(test["f1"])
    capsys.readouterr()
    rc = cli_main(["evaluate", "entity_disambiguation", "--model", str(pretrained), "--data-dir", str(data),
                   "--output-dir", str(tmp_path / "zs"), "--no-progress"])  # fmt: skip
    zero_shot = json.loads(capsys.readouterr().out)
    assert rc == 0 and zero_shot["gold_mentions"] == 6 and 0 <= zero_shot["accuracy"] <= 100
    assert (tmp_path / "zs" / "test_predictions.jsonl").is_file()

    # score: the written predictions against the gold file give the evaluated numbers
    assert cli_main(["score", "entity_disambiguation", "--gold", str(data / "test.jsonl"), "--predictions",
                     str(out / "test_predictions.jsonl")]) == 0  # fmt: skip
    scored = json.loads(capsys.readouterr().out)
    assert scored["f1"] == pytest.approx(test["f1"]) and scored["precision"] == pytest.approx(test["precision"])

    # predict: raw documents with candidates -> the same JSON Lines with titles and scores
    _write_docs(tmp_path / "in.jsonl", [_doc("p1")])
    assert cli_main(["predict", "entity_disambiguation", "--model", str(out), "--input", str(tmp_path / "in.jsonl"),
                     "--no-progress"]) == 0  # fmt: skip
    (rec,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rec["id"] == "p1" and len(rec["entities"]) == 4
    assert all(0 < e["score"] <= 1 for e in rec["entities"] if e["title"] is not None)


def test_mentions_without_candidates_need_a_source(tmp_path, pretrained):
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": "a", "text": "the alpha", "entities": [
        {"start": 4, "end": 9, "title": "Alpha"}]}) + "\n")  # fmt: skip
    task = make_task("entity_disambiguation")
    with pytest.raises(DataError, match=r"train.jsonl:1: .*--mention-db"):
        task.read(tmp_path / "train.jsonl")


def test_candidates_from_a_mention_database(tmp_path, pretrained, capsys):
    db = tmp_path / "mentions.jsonl"
    rows = [
        {"format": "luke-mention-db", "version": 1, "source": "test", "max_mention_words": 4},
        {"mention": "alpha", "link_count": 4, "doc_count": 4, "link_prob": 1.0,
         "candidates": [["Beta", 3], ["Alpha", 1]]},
        {"mention": "gamma", "link_count": 2, "doc_count": 2, "link_prob": 1.0, "candidates": [["Gamma", 2]]},
    ]  # fmt: skip
    db.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = "the alpha and the gamma and the zeta"
    record = {"id": "m", "text": text, "entities": [
        {"start": text.index(w), "end": text.index(w) + len(w), "title": t}
        for w, t in (("alpha", "Alpha"), ("gamma", "Gamma"), ("zeta", None))]}  # fmt: skip
    (tmp_path / "test.jsonl").write_text(json.dumps(record) + "\n")
    task = make_task("entity_disambiguation", mention_db=db)
    (doc,) = task.read(tmp_path / "test.jsonl")
    assert all(m.candidates is None for m in doc.mentions)  # attached when featurized (with the entity vocabulary)
    counts = task.attach_candidates([doc], LukeTokenizer.from_pretrained(pretrained).entity_vocab)
    assert [m.candidates for m in doc.mentions] == [[("Beta", 0.75), ("Alpha", 0.25)], [("Gamma", 1.0)], []]
    assert counts == {"attached": 3, "out_of_vocab_candidates": 0, "not_looked_up": 0}
    with pytest.raises(DataError, match="a mention without 'candidates'"):  # zero-shot: the task's own defaults
        evaluate_folder("entity_disambiguation", pretrained, tmp_path, "test", progress=False)
    capsys.readouterr()
    cmd = ["evaluate", "entity_disambiguation", "--model", str(pretrained), "--data-dir", str(tmp_path),
           "--mention-db", str(db), "--no-progress"]  # fmt: skip
    outputs = []
    for mode in ("local", "global"):
        assert cli_main([*cmd, "--inference", mode]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    # gamma has one candidate (so it is right); zeta none (NIL: a miss in recall); alpha is the ambiguous one
    for scores in outputs:
        assert scores["gold_mentions"] == 2 and scores["ambiguous_gold_mentions"] == 1
        assert scores["candidates"]["with_candidates"] == 2 and scores["accuracy"] >= 50.0
        assert scores["candidates"]["attached"] == 3 and scores["candidates"]["ambiguous"] == 1
        assert scores["recall"] == scores["accuracy"] and scores["precision"] >= scores["recall"]


def test_prior_baseline_and_the_candidate_counts(pretrained, tmp_path, capsys):
    """--inference prior: each mention takes its highest-prior candidate in the entity vocabulary, without a
    model pass; scored like the model (ambiguous = more than one candidate in the vocabulary)."""
    task = make_task("entity_disambiguation", inference="prior")
    tok = LukeTokenizer.from_pretrained(pretrained)
    docs = [_doc("p1")]
    docs[0].mentions[1].candidates = [("Delta", 0.2), ("Gamma", 0.7)]  # not sorted: the prior decides
    features = task.featurize(docs, tok)
    (pred,) = task.predict(None, docs, features, 8, tok.pad_token_id)  # no model: no forward pass
    assert [m.predicted for m in pred.mentions] == ["Beta", "Gamma", None, "Epsilon"]
    assert [m.score for m in pred.mentions] == [0.6, 0.7, None, 0.9]
    assert [len(m.candidates) for m in pred.mentions] == [2, 2, 0, 1]  # those it was scored among
    scores = task.score(docs, [pred])
    assert scores["accuracy"] == pytest.approx(200 / 3) and scores["precision"] == pytest.approx(200 / 3)
    assert scores["ambiguous_gold_mentions"] == 2 and scores["ambiguous_accuracy"] == 50.0
    assert scores["candidates"] == {
        "mentions": 4, "with_candidates": 3, "no_candidates": 1, "ambiguous": 2, "gold_mentions": 3,
        "gold_in_candidates": 3, "out_of_vocab_candidates": 1, "unscorable": 0, "attached": 0, "not_looked_up": 0,
    }  # fmt: skip
    # the same through `luke evaluate --inference prior` (the results table's baseline row)
    data = tmp_path / "data"
    data.mkdir()
    _write_docs(data / "test.jsonl", [_doc("e1"), _doc("e2")])
    rc = cli_main(["evaluate", "entity_disambiguation", "--model", str(pretrained), "--data-dir", str(data),
                   "--inference", "prior", "--output-dir", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["accuracy"] == pytest.approx(200 / 3) and out["ambiguous_accuracy"] == 50.0
    preds = [json.loads(x) for x in (tmp_path / "o" / "test_predictions.jsonl").read_text().splitlines()]
    assert [e["title"] for e in preds[0]["entities"]] == ["Beta", "Gamma", None, "Epsilon"]


AIDA_ROWS = [
    ("-DOCSTART- (1 EU)", "alpha", "Alpha"),
    ("-DOCSTART- (947testa CRICKET)", "gamma", "Gamma"),
    ("-DOCSTART- (1163testb SOCCER)", "epsilon", "Epsilon"),
    ("-DOCSTART- (1164testb SOCCER)", "zeta", "--NME--"),
]


def test_aida_as_one_file_is_split_by_document_id(pretrained, tmp_path, capsys):
    lines = []
    for docstart, word, title in AIDA_ROWS:
        lines += [docstart, "the", f"{word}\tB\t{word}\t{title}", "river", ""]
    data = tmp_path / "aida"
    data.mkdir()
    (data / "AIDA-YAGO2-dataset.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cands = [{"id": d.split("(")[1].rstrip(")"), "start": 4, "end": 4 + len(w), "candidates": [[t, 1.0], ["Beta", 0.5]]}
             for d, w, t in AIDA_ROWS if t != "--NME--"]  # fmt: skip
    (tmp_path / "cands.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cands))
    task = make_task("entity_disambiguation", candidates_file=tmp_path / "cands.jsonl")
    splits = task.load_splits(data)
    assert {k: [d.id for d in v] for k, v in splits.items()} == {
        "train": ["1 EU"], "dev": ["947testa CRICKET"], "test": ["1163testb SOCCER", "1164testb SOCCER"]
    }  # fmt: skip
    assert splits["train"][0].text == "the alpha river" and splits["train"][0].mentions[0].title == "Alpha"
    # a split's own file wins over the AIDA file
    _write_docs(data / "dev.jsonl", [_doc("own-dev")])
    assert [d.id for d in make_task("entity_disambiguation").load_splits(data, ("dev",))["dev"]] == ["own-dev"]
    rc = cli_main(["evaluate", "entity_disambiguation", "--model", str(pretrained), "--data-dir", str(data),
                   "--candidates-file", str(tmp_path / "cands.jsonl"), "--inference", "prior",
                   "--no-progress"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["documents"] == 2 and out["gold_mentions"] == 1 and out["accuracy"] == 100.0
    # the NIL-only document has no row in the candidates file: not looked up, NIL
    assert out["candidates"]["documents_in_file"] == 1 and out["candidates"]["not_looked_up"] == 1
    # without a training document the AIDA file cannot give train
    (data / "AIDA-YAGO2-dataset.tsv").write_text("\n".join(lines[5:]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="AIDA-YAGO2-dataset.tsv: no training document"):
        task.load_splits(data, ("train",))


def test_score_command_missing_and_unknown_documents(tmp_path, capsys):
    text = "Paris is in France."
    gold = [{"id": "d1", "text": text, "entities": [{"start": 0, "end": 5, "title": "Paris"},
                                                   {"start": 12, "end": 18, "title": "France"}]},
            {"id": "d2", "text": "Nobody here", "entities": [{"start": 0, "end": 6, "title": "Nobody (band)"}]},
            {"id": "d3", "text": "NIL", "entities": [{"start": 0, "end": 3, "title": None}]}]  # fmt: skip
    preds = [{"id": "d1", "text": text, "entities": [
                {"start": 0, "end": 5, "mention": "Paris", "title": "paris", "score": 0.9},  # normalised: right
                {"start": 12, "end": 18, "mention": "France", "title": "France_(band)", "score": 0.5}]},
             {"id": "d3", "text": "NIL", "entities": [{"start": 0, "end": 3, "mention": "NIL", "title": None}]},
             {"id": "zz", "text": "?", "entities": []}]  # fmt: skip
    for name, records in (("gold.jsonl", gold), ("preds.jsonl", preds)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    rc = cli_main(["score", "entity_disambiguation", "--gold", str(tmp_path / "gold.jsonl"), "--predictions",
                   str(tmp_path / "preds.jsonl")])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    # d2 is missing (a miss in recall); zz is unknown (ignored, reported)
    assert (out["precision"], out["recall"]) == (50.0, pytest.approx(100 / 3))
    assert out["f1"] == pytest.approx(40.0) and out["accuracy"] == pytest.approx(100 / 3)
    assert (out["missing_documents"], out["unknown_documents"], out["first_unknown_document"]) == (1, 1, "zz")
    assert cli_main(["score", "entity_disambiguation", "--predictions", str(tmp_path / "preds.jsonl")]) == 2
    assert "pass --gold FILE" in capsys.readouterr().err


def test_freeze_entity_table_flag_pair():
    from luke.cli import build_parser

    for command in ("finetune", "evaluate"):
        sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
        text = sub.choices[command].format_help()
        assert "--freeze-entity-table, --no-freeze-entity-table" in text and "--no-no-" not in text
    args = ["evaluate", "entity_disambiguation", "--model", "m", "--data-dir", "d"]
    assert build_parser().parse_args([*args, "--no-freeze-entity-table"]).freeze_entity_table is False
    assert build_parser().parse_args(args).freeze_entity_table is None  # unset: the model's own option


def test_pretrained_folder_whose_tokenizer_has_the_entity_markers_evaluates_zero_shot(bert, tmp_path, capsys):
    """What `luke pretrain` exports: the tokenizer lists <ent>/<ent2> after the word table, which has no rows
    for them (they get theirs at fine-tuning); zero-shot ED loads it all the same."""
    vocab = EntityVocab.from_counts([(t, 10 - i) for i, t in enumerate(TITLES)])
    tok = LukeTokenizer.from_pretrained(bert, entity_vocab=vocab)
    model, _ = init_from_transformers(
        bert, LukeForMaskedLM, entity_vocab_size=len(vocab), entity_emb_size=16, word_position_style="bert", seed=0
    )
    folder = tmp_path / "pretrained"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    assert len(LukeTokenizer.from_pretrained(folder)) == model.config.vocab_size + 2
    data = tmp_path / "data"
    data.mkdir()
    _write_docs(data / "test.jsonl", [_doc()])
    rc = cli_main(["evaluate", "entity_disambiguation", "--model", str(folder), "--data-dir", str(data),
                   "--inference", "local", "--no-progress"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["gold_mentions"] == 3 and out["candidates"]["with_candidates"] == 3
