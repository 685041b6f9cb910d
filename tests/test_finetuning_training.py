"""The fine-tuning loop and commands end to end: tiny random models on self-written fixtures (all three
tasks, transformers interchange both ways, resume, bad input), plus one short real-data run that must learn."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file

from conftest import minilm_folder, require_shared
from luke import modeling
from luke.cli import main as cli_main
from luke.entity_vocab import EntityVocab
from luke.finetuning.commands import evaluate_folder, finetune, make_task
from luke.finetuning.data import iter_json_records
from luke.finetuning.metrics import multilabel_micro_f1
from luke.tokenization import LukeTokenizer
from test_finetuning_tasks import FIXTURES

TASK_FILES = {"entity_typing": "test.json", "relation_classification": "test.jsonl", "ner": "test.txt"}
PRED_FILES = {"entity_typing": "jsonl", "relation_classification": "jsonl", "ner": "conll"}


def make_tiny_bert(folder: Path, dropout: float = 0.1, texts: tuple[str, ...] = ()) -> Path:
    """A tiny random BERT folder whose WordPiece vocabulary covers the fixture words (and ``texts``)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = set()
    for text in [p.read_text() for p in FIXTURES.rglob("*") if p.is_file()] + list(texts):
        words |= {w.lower() for w in re.findall(r"\w+|[^\w\s]", text)}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "@", "#", *sorted(words - {"@", "#"})]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def _args(task: str, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "finetune", task, "--model", str(model), "--data-dir", str(FIXTURES / task), "--output-dir", str(out),
        "--learning-rate", "1e-3", "--num-train-epochs", "2", "--no-progress", "--no-tensorboard", *extra,
    ]  # fmt: skip


def _batch(task_name: str, folder: Path):
    task = make_task(task_name, json.loads((folder / "luke_task.json").read_text())["labels"])
    tok = LukeTokenizer.from_pretrained(folder)
    examples = task.read(FIXTURES / task_name / TASK_FILES[task_name])
    feats = task.featurize(examples, tok)
    return task.collate(feats, tok.pad_token_id)


def _real_logits(batch, logits: torch.Tensor) -> torch.Tensor:
    if logits.dim() == 3:  # span classification: real entities only
        return logits[batch["entity_attention_mask"].bool()]
    return logits


@pytest.mark.parametrize("task_name", ["entity_typing", "relation_classification", "ner"])
def test_finetune_outputs_load_in_transformers_with_identical_logits(task_name, tiny_bert, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(_args(task_name, tiny_bert, out)) == 0
    results = json.loads((out / "results.json").read_text())
    metric = results["main_metric"]
    assert {"dev", "test"} <= results.keys() and 0.0 <= results["test"][metric] <= 1.0
    assert not (out / "checkpoint").exists()
    pred_file = out / f"test_predictions.{PRED_FILES[task_name]}"
    assert pred_file.is_file()

    # The folder loads in the matching transformers class with identical logits.
    cls_name = make_task(task_name).model_class_name
    ours = getattr(modeling, cls_name).from_pretrained(out).eval()
    theirs = getattr(transformers, cls_name).from_pretrained(str(out)).eval()
    batch = _batch(task_name, out)
    batch.pop("labels")
    with torch.no_grad():
        a, b = ours(**batch).logits, theirs(**batch).logits
    torch.testing.assert_close(_real_logits(batch, a), _real_logits(batch, b), rtol=1e-4, atol=1e-5)

    # `luke score` on the predictions file and `luke evaluate` on the folder reproduce the test score.
    capsys.readouterr()
    gold = FIXTURES / task_name / TASK_FILES[task_name]
    assert cli_main(["score", task_name, "--gold", str(gold), "--predictions", str(pred_file)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored[metric] == pytest.approx(results["test"][metric])
    evaluated = evaluate_folder(task_name, out, FIXTURES / task_name, "test", progress=False)
    assert evaluated[metric] == pytest.approx(results["test"][metric])


def test_entity_side_from_word_side(tiny_bert, tmp_path):
    """``--entity-init words`` for typing/relations/NER: the [MASK] (and [MASK2]) entity is the [MASK] word
    embedding, positions/types/LayerNorm are the word side's; refused for a LUKE start."""
    from luke.errors import LukeError
    from luke.finetuning.model_io import build_for_finetuning

    model, tok = build_for_finetuning(tiny_bert, "LukeForEntityPairClassification", ["a", "b"], entity_init="words")
    words, ents = model.luke.embeddings, model.luke.entity_embeddings
    mask_row = words.word_embeddings.weight[tok.convert_tokens_to_ids("[MASK]")]
    for entity_id in (tok.entity_mask_token_id, tok.entity_mask2_token_id):
        torch.testing.assert_close(ents.entity_embeddings.weight[entity_id], mask_row, rtol=0, atol=0)
    offset = model.config.pad_token_id + 1
    torch.testing.assert_close(ents.position_embeddings.weight[:8], words.position_embeddings.weight[offset:][:8])
    torch.testing.assert_close(ents.token_type_embeddings.weight, words.token_type_embeddings.weight)
    random_init, _ = build_for_finetuning(tiny_bert, "LukeForEntityPairClassification", ["a", "b"])
    assert not torch.equal(random_init.luke.entity_embeddings.entity_embeddings.weight[2], mask_row)
    out = tmp_path / "luke"
    random_init.save_pretrained(out)
    EntityVocab.from_counts([]).save(out / "entity_vocab.jsonl")
    with pytest.raises(LukeError, match="--entity-init words is for BERT/RoBERTa starts"):
        build_for_finetuning(out, "LukeForEntityClassification", ["a"], entity_init="words")


@pytest.mark.parametrize("cls", ["LukeForEntityPairClassification", "LukeForQuestionAnswering"])
def test_a_fresh_head_depends_on_the_seed_alone(cls, tiny_bert):
    """With or without entity-aware attention (three more query matrices drawn before the head), the new
    head and entity side start the same for one seed (an ablation then changes only what it names), and
    differ for another seed; the loaded word side is untouched."""
    from luke.finetuning.model_io import build_for_finetuning

    labels = ["a", "b"] if cls != "LukeForQuestionAnswering" else []
    built = {
        (aware, seed): build_for_finetuning(tiny_bert, cls, labels, seed=seed, entity_aware_attention=aware)[0]
        for aware in (True, False)
        for seed in (0, 1)
    }
    states = {k: m.state_dict() for k, m in built.items()}
    head = [k for k in states[True, 0] if k.startswith(("classifier.", "qa_outputs."))]
    new_side = [k for k in states[True, 0] if k.startswith("luke.entity_embeddings.") and "LayerNorm" not in k]
    assert head and new_side
    for key in head + new_side:
        assert torch.equal(states[True, 0][key], states[False, 0][key]), key
    assert not torch.equal(states[True, 0][head[0]], states[True, 1][head[0]])
    words = "luke.embeddings.word_embeddings.weight"
    assert torch.equal(states[True, 0][words], states[True, 1][words])


def test_predict_raw_text(tiny_bert, tmp_path, capsys):
    inputs = {
        "entity_typing": {"text": "Sam Wu visited Porto .", "span": [15, 20]},
        "relation_classification": {"text": "The fire caused smoke .", "head": [4, 8], "tail": [16, 21]},
        "ner": {"text": "Ana Silva visited Leeds."},
    }
    for task_name, record in inputs.items():
        out = tmp_path / task_name
        assert cli_main(_args(task_name, tiny_bert, out, "--num-train-epochs", "1")) == 0
        src = tmp_path / f"{task_name}.jsonl"
        src.write_text(json.dumps(record) + "\n")
        capsys.readouterr()
        assert cli_main(["predict", task_name, "--model", str(out), "--input", str(src), "--no-progress"]) == 0
        pred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        labels = json.loads((out / "luke_task.json").read_text())["labels"]
        if task_name == "entity_typing":
            assert set(pred["labels"]) <= set(labels)
        elif task_name == "relation_classification":
            assert pred["relation"] in labels
        else:
            for ent in pred["entities"]:
                assert ent["type"] in labels and record["text"][ent["start"] : ent["end"]] == ent["text"]
        bad = tmp_path / "bad.jsonl"
        bad.write_text(
            json.dumps(record) + "\n" + json.dumps({"text": "x", "span": [0, 9], "head": [0, 9], "tail": [0, 1]}) + "\n"
        )
        if task_name != "ner":
            assert cli_main(["predict", task_name, "--model", str(out), "--input", str(bad)]) == 2
            assert re.search(r"bad\.jsonl:2: .*out of range", capsys.readouterr().err)


def test_transformers_saved_model_loads_here(tiny_bert, tmp_path):
    tok = LukeTokenizer.from_pretrained(tiny_bert, entity_vocab=EntityVocab.from_counts([]))
    labels = ["NIL", "LOC", "MISC", "ORG", "PER"]
    config = transformers.LukeConfig(
        vocab_size=len(tok), entity_vocab_size=4, hidden_size=32, entity_emb_size=16, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=37, max_position_embeddings=130, type_vocab_size=2,
        pad_token_id=0, id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)},
    )  # fmt: skip
    torch.manual_seed(1)
    theirs = transformers.LukeForEntitySpanClassification(config).eval()
    theirs.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    ours = modeling.LukeForEntitySpanClassification.from_pretrained(tmp_path).eval()
    task = make_task("ner", labels)
    examples = task.read(FIXTURES / "ner" / "test.txt")
    batch = task.collate(task.featurize(examples, tok), tok.pad_token_id)
    batch.pop("labels")
    with torch.no_grad():
        torch.testing.assert_close(
            _real_logits(batch, ours(**batch).logits), _real_logits(batch, theirs(**batch).logits), rtol=1e-4, atol=1e-5
        )
    scores = evaluate_folder("ner", tmp_path, FIXTURES / "ner", "test", progress=False)
    assert 0.0 <= scores["f1"] <= 1.0 and scores["examples"] == 1


def test_bad_input_gives_clear_errors(tiny_bert, tmp_path, capsys):
    out = tmp_path / "typing"
    assert cli_main(_args("entity_typing", tiny_bert, out, "--num-train-epochs", "1")) == 0
    capsys.readouterr()
    # A model folder of the wrong task.
    rc = cli_main(["evaluate", "ner", "--model", str(out), "--data-dir", str(FIXTURES / "ner"), "--no-progress"])
    assert rc == 2 and "holds a model for entity_typing, not for task ner" in capsys.readouterr().err
    # An empty data directory.
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = cli_main(["finetune", "ner", "--model", str(tiny_bert), "--data-dir", str(empty), "--output-dir", str(out)])
    assert rc == 2 and "no training file for task ner" in capsys.readouterr().err
    # A malformed line, with file and line number.
    data = tmp_path / "data"
    data.mkdir()
    lines = (FIXTURES / "ner" / "train.txt").read_text().splitlines()
    lines[5] = "Acme NNP B-ORG"
    (data / "train.txt").write_text("\n".join(lines) + "\n")
    rc = cli_main(["finetune", "ner", "--model", str(tiny_bert), "--data-dir", str(data), "--output-dir", str(out)])
    assert rc == 2 and re.search(r"train\.txt:6: expected 4 columns", capsys.readouterr().err)
    # A dev label unseen in train: error by default, scored as a miss with --unseen-labels keep.
    (data / "train.txt").write_text((FIXTURES / "ner" / "train.txt").read_text().replace("MISC", "PER"))
    (data / "test.txt").write_text((FIXTURES / "ner" / "test.txt").read_text())
    rc = cli_main(_args("ner", tiny_bert, out, "--data-dir", str(data), "--num-train-epochs", "1"))
    assert rc == 2 and re.search(r"test\.txt:\d+: entity type 'MISC' does not occur", capsys.readouterr().err)
    rc = cli_main(_args("ner", tiny_bert, out, "--data-dir", str(data), "--num-train-epochs", "1", "--unseen-labels",
                        "keep"))  # fmt: skip
    assert rc == 0
    assert json.loads((out / "results.json").read_text())["test"]["num_gold"] == 4  # MISC kept in gold


def test_resume_matches_uninterrupted_run(tiny_bert, tmp_path):
    common = ("--train-batch-size", "1", "--gradient-accumulation-steps", "1", "--seed", "3")
    assert cli_main(_args("ner", tiny_bert, tmp_path / "a", *common)) == 0
    assert cli_main(_args("ner", tiny_bert, tmp_path / "b", *common, "--max-steps", "2", "--keep-checkpoints")) == 0
    state = json.loads((tmp_path / "b" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 2  # stopped mid-epoch (3 sentences per epoch)
    assert cli_main(_args("ner", tiny_bert, tmp_path / "b", *common, "--resume")) == 0
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-for-bit
    first = load_file(str(tmp_path / "a" / "model.safetensors"))["classifier.weight"]
    assert not torch.equal(first, torch.zeros_like(first))


def test_gradient_accumulation_and_bf16_run(tiny_bert, tmp_path):
    out = tmp_path / "bf16"
    args = _args("relation_classification", tiny_bert, out, "--mixed-precision", "bf16", "--num-train-epochs", "1")
    assert cli_main([*args, "--gradient-accumulation-steps", "3", "--train-batch-size", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["training"]["gradient_accumulation_steps"] == 3
    assert results["history"][-1]["step"] == 3  # 8 train examples, batch 1, accumulation 3 -> 3 optimiser steps


def test_two_processes_match_one_process(tmp_path):
    """DDP on CPU (torchrun, gloo): 2 processes x batch 1 give the weights and test scores of 1 process x
    batch 2 (dropout off, since each process draws its own masks)."""
    model = make_tiny_bert(tmp_path / "bert", dropout=0.0)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    runs = {}
    for name, procs, batch in (("one", 1, "2"), ("two", 2, "1")):
        args = _args("relation_classification", model, tmp_path / name, "--train-batch-size", batch,
                     "--gradient-accumulation-steps", "1", "--dev-ratio", "0.2", "--cpu")  # fmt: skip
        if procs == 1:
            cmd = [sys.executable, "-m", "luke", *args]
        else:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
                   "-m", "luke", *args]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
    assert runs["one"]["examples"] == runs["two"]["examples"] == {"train": 8, "dev": 2, "test": 3}
    assert runs["two"]["history"][-1]["step"] == runs["one"]["history"][-1]["step"] == 8  # 4 steps x 2 epochs
    a = load_file(str(tmp_path / "one" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert runs["one"]["test"]["accuracy"] == runs["two"]["test"]["accuracy"]
    assert (tmp_path / "one" / "test_predictions.jsonl").read_text() == (
        tmp_path / "two" / "test_predictions.jsonl"
    ).read_text()


# ---------------------------------------------------------------------------------------------- real data


@pytest.mark.timeout(1200)
def test_real_open_entity_short_run_learns(tmp_path):
    """MiniLM (real weights) on 768 real Open Entity training mentions for 2 epochs (96 steps, about 2-3
    minutes on 2 idle cores) must learn: the loss falls by 30 %, and on 300 real test mentions precision is far
    above the best constant answer's ("person" for every mention: P 0.37, F1 0.38) and F1 far above the
    untrained all-negative start (0).  With ``--entity-init words`` (the recommended start from BERT), measured:
    P 0.76, R 0.29, F1 0.42, loss 0.53 -> 0.29 (random entity init: P 0.72, R 0.26, F1 0.38); at this length the
    model's F1 is only just above the constant answer's, so that is not asserted."""
    data = require_shared("open_entity", "ernie_format")
    start = time.perf_counter()
    results = finetune(
        "entity_typing",
        minilm_folder(),
        data,
        tmp_path,
        max_train_examples=768,
        max_test_examples=300,
        eval_splits=("test",),
        learning_rate=2e-4,
        train_batch_size=16,
        gradient_accumulation_steps=1,
        num_train_epochs=2,
        logging_steps=8,
        select_best=False,
        progress=False,
        tensorboard=False,
        task_options={"entity_init": "words"},
    )
    losses = [h["loss"] for h in results["history"] if "loss" in h]
    print(f"real-data run: {time.perf_counter() - start:.0f} s, test {results['test']}, losses {losses}")
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] * 0.7, losses
    # The best constant answer on the same 300 test mentions ("person" everywhere; "no label" scores 0).
    gold = [r["gold"] for _, r in iter_json_records(tmp_path / "test_predictions.jsonl")]
    constant = multilabel_micro_f1(gold, [["person"]] * len(gold))
    assert results["test"]["precision"] > constant["precision"] + 0.2, (results["test"], constant)
    assert results["test"]["f1"] > 0.3, results["test"]  # the all-negative start scores 0
