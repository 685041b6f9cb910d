"""``luke predict`` writes scores beside its decisions, for every task, and they agree with the decisions:
probabilities in [0, 1], the decision is the best-scored choice, the alternatives (``top`` / ``n_best``) are
sorted and their count follows ``--top-k``; today's fields are kept.

Models: the released-layout folders of ``test_released_finetuned`` (typing, relations, NER; local folders
here) and tiny QA folders (SQuAD: ``transformers.LukeForQuestionAnswering``; ReCoRD: our
``LukeForEntitySpanQA`` with its ``luke_task.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from luke import LukeConfig, LukeTokenizer
from luke.cli import main as cli_main
from luke.finetuning.tasks.record import RecordTask
from luke.modeling import LukeForEntitySpanQA
from test_released_finetuned import (
    NER_INPUTS,
    OPEN_ENTITY,
    RELATION_INPUTS,
    TACRED,
    TYPING_INPUTS,
    bpe,  # noqa: F401 (fixture)
    released_folder,
    run_predict,
)

PASSAGE = "Sam Wu visited Porto in May. Acme Corp opened a store in Leeds."
SQUAD_INPUTS = [
    {"id": "q1", "question": "Who visited Porto?", "context": PASSAGE},
    {"id": "q2", "question": "What opened a store?", "context": PASSAGE},
]
RECORD_INPUTS = [
    {"id": "r1", "passage": PASSAGE, "query": "@placeholder opened a store.",
     "entities": [[0, 6], [15, 20], [29, 38], [57, 62]]},
]  # fmt: skip


def _tiny(**kwargs) -> dict:
    return dict(entity_vocab_size=4, hidden_size=32, entity_emb_size=16, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=37, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                pad_token_id=1, bos_token_id=0, eos_token_id=2, **kwargs)  # fmt: skip


def _randomize(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(5)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def squad_model(bpe, tmp_path_factory) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("squad")
    tokenizer = transformers.LukeTokenizer.from_pretrained(str(bpe))
    tokenizer.save_pretrained(folder)
    config = transformers.LukeConfig(vocab_size=len(tokenizer), num_labels=2, **_tiny())
    _randomize(transformers.LukeForQuestionAnswering(config)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def record_model(bpe, tmp_path_factory) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("record")
    tokenizer = LukeTokenizer.from_pretrained(bpe)
    config = LukeConfig(vocab_size=len(tokenizer), id2label={0: "answer"}, **_tiny())
    _randomize(LukeForEntitySpanQA(config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    RecordTask(["answer"]).save(folder)
    return folder


def _folder(tmp_path: Path, base: Path, name: str) -> str:
    return str(released_folder(tmp_path / name, name, base))


def test_typing_writes_each_label_probability(bpe, tmp_path, capsys):  # noqa: F811
    model = _folder(tmp_path, bpe, "luke-large-finetuned-open-entity")
    for out, rec in zip(
        run_predict(capsys, "entity_typing", model, TYPING_INPUTS, tmp_path), TYPING_INPUTS, strict=True
    ):
        assert out["text"] == rec["text"] and out["span"] == rec["span"]  # today's fields
        assert list(out["scores"]) == OPEN_ENTITY and all(0.0 <= p <= 1.0 for p in out["scores"].values())
        assert out["labels"] == [label for label, p in out["scores"].items() if p > 0.5]


def test_relations_write_the_top_k(bpe, tmp_path, capsys):  # noqa: F811
    model = _folder(tmp_path, bpe, "luke-large-finetuned-tacred")
    for k in (1, 3):
        for out in run_predict(capsys, "relation_classification", model, RELATION_INPUTS, tmp_path, "--top-k", str(k)):
            assert len(out["top"]) == k and out["top"][0] == {"relation": out["relation"], "score": out["score"]}
    everything = run_predict(capsys, "relation_classification", model, RELATION_INPUTS, tmp_path, "--top-k", "100")
    for out, rec in zip(everything, RELATION_INPUTS, strict=True):
        assert (out["head"], out["tail"]) == (rec["head"], rec["tail"])
        scores = [t["score"] for t in out["top"]]
        assert sorted(t["relation"] for t in out["top"]) == sorted(TACRED)  # every relation once
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0)
        assert out["relation"] == out["top"][0]["relation"]


def test_ner_writes_each_entity_score(bpe, tmp_path, capsys):  # noqa: F811
    model = _folder(tmp_path, bpe, "luke-large-finetuned-conll-2003")
    outs = run_predict(capsys, "ner", model, NER_INPUTS, tmp_path)
    entities = [e for out in outs for e in out["entities"]]
    assert entities
    for out in outs:
        spans = [(e["start"], e["end"]) for e in out["entities"]]
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))  # sorted, no overlaps
        for e in out["entities"]:
            assert e["text"] == out["text"][e["start"] : e["end"]] and e["type"] != "NIL"
            assert 1 / 5 < e["score"] <= 1.0  # the argmax of 5 classes


def test_squad_writes_the_answer_probability_and_the_n_best(squad_model, tmp_path, capsys):
    outs = run_predict(capsys, "squad", str(squad_model), SQUAD_INPUTS, tmp_path, "--top-k", "20")
    for out, rec in zip(outs, SQUAD_INPUTS, strict=True):
        assert out["id"] == rec["id"] and out["answer"] == PASSAGE[out["answer_start"] : out["answer_end"]]
        best = out["n_best"]
        assert best[0] == {"answer": out["answer"], "answer_start": out["answer_start"],
                           "answer_end": out["answer_end"], "score": out["score"],
                           "probability": out["probability"]}  # fmt: skip
        scores = [c["score"] for c in best]
        probs = np.array([c["probability"] for c in best])
        assert scores == sorted(scores, reverse=True) and len(best) > 1
        assert ((probs >= 0) & (probs <= 1)).all() and probs.sum() == pytest.approx(1.0)  # all 20 listed
        np.testing.assert_allclose(probs, np.exp(scores) / np.exp(scores).sum(), rtol=1e-9)
        assert len({(c["answer_start"], c["answer_end"]) for c in best}) == len(best)  # each span once
    shorter = run_predict(capsys, "squad", str(squad_model), SQUAD_INPUTS, tmp_path, "--top-k", "2")
    assert [o["n_best"] for o in shorter] == [o["n_best"][:2] for o in outs]


def test_record_writes_the_answer_probability_and_the_n_best(record_model, tmp_path, capsys):
    (out,) = run_predict(capsys, "record", str(record_model), RECORD_INPUTS, tmp_path)
    candidates = {tuple(span) for span in RECORD_INPUTS[0]["entities"]}
    assert out["answer"] == PASSAGE[slice(*out["answer_span"])]  # today's fields
    best = out["n_best"]
    assert {tuple(c["answer_span"]) for c in best} == candidates  # every candidate once (4 < top-k 5)
    assert best[0]["answer_span"] == out["answer_span"] and best[0]["score"] == out["score"]
    scores = [c["score"] for c in best]
    assert scores == sorted(scores, reverse=True)
    for c in best + [out]:
        assert c["probability"] == pytest.approx(1 / (1 + np.exp(-c["score"])))


def test_top_k_must_be_positive(bpe, tmp_path, capsys):  # noqa: F811
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(RELATION_INPUTS[0]) + "\n")
    rc = cli_main(["predict", "relation_classification", "--model", str(tmp_path / "m"), "--input", str(src),
                   "--top-k", "0"])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("luke predict: error:") and "--top-k" in err[0]
