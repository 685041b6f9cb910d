"""Red-team findings of issue #19 on ``luke predict`` / ``luke evaluate`` / ``luke.pipeline`` and the
``from_pretrained`` errors: a tokenizer of another vocabulary is refused, a folder without ``config.json``
or a BERT repo is named for what it is, ``device="cuda"`` without a GPU and ``pipe(None)`` are one-line
errors, evaluating a released model on labels it does not have says so, and an input's ``id`` survives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

import luke
from luke.cli import main as cli_main
from luke.errors import CheckpointError, ConfigError, DataError, TokenizerError
from test_released_finetuned import (
    FIXTURES,
    NER_INPUTS,
    RELATION_INPUTS,
    TYPING_INPUTS,
    add_released,
    bpe,  # noqa: F401 (fixture)
    released_folder,
    run_predict,
)

OPEN_ENTITY = "luke-large-finetuned-open-entity"


def _predict_error(capsys, tmp_path: Path, repo: str, *extra: str) -> str:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(TYPING_INPUTS[0]) + "\n")
    capsys.readouterr()
    rc = cli_main(["predict", "entity_typing", "--model", repo, "--input", str(src), "--cpu", "--no-progress", *extra])
    captured = capsys.readouterr()
    assert rc == 2 and not captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("luke predict: error:"), captured.err
    return lines[0]


def _small_tokenizer(folder: Path) -> Path:
    """A LUKE tokenizer folder with another (smaller) byte-level BPE vocabulary."""
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True)
    texts = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.rglob("*")) if p.is_file()]
    bpe_tok = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe_tok.train_from_iterator(texts, vocab_size=300, min_frequency=1, special_tokens=specials, show_progress=False)
    bpe_tok.model.save(str(folder))
    (folder / "entity_vocab.json").write_text(json.dumps({"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LukeTokenizer"}))
    return folder


# ------------------------------------------------------------------------------ P5: the tokenizer must fit
def test_a_tokenizer_of_another_vocabulary_is_refused(hf_cache, bpe, tmp_path, capsys):  # noqa: F811
    repo = add_released(hf_cache, tmp_path, bpe, OPEN_ENTITY)
    other = _small_tokenizer(tmp_path / "other-tok")
    hf_cache.add("org/other-tokenizer", other)
    for name in (str(other), "org/other-tokenizer"):
        err = _predict_error(capsys, tmp_path, repo, "--tokenizer", name)
        assert f"the tokenizer {name} has" in err and repo in err and "vocab_size" in err
    with pytest.raises(TokenizerError, match=r"org/other-tokenizer .* but the model studio-ousia/"):
        luke.pipeline("entity_typing", model=repo, tokenizer="org/other-tokenizer", device="cpu")
    # a bigger one (more words than the word table) is refused too
    big = tmp_path / "big-tok"
    tok = transformers.LukeTokenizer.from_pretrained(str(bpe), task="entity_classification")
    tok.add_tokens(["<x1>", "<x2>", "<x3>", "<x4>"])
    tok.save_pretrained(big)
    err = _predict_error(capsys, tmp_path, repo, "--tokenizer", str(big))
    assert f"has {len(tok)} word tokens but the model {repo} has {len(tok) - 4} word embeddings" in err
    assert run_predict(capsys, "entity_typing", repo, TYPING_INPUTS[:1], tmp_path, "--tokenizer", repo)  # its own


def _padded(folder: Path, extra_rows: int) -> Path:
    """``folder``'s model with ``extra_rows`` more word embeddings than its tokenizer has words (a table padded
    to a round size, as the released checkpoints are)."""
    cls = getattr(transformers, json.loads((folder / "config.json").read_text())["architectures"][0])
    model = cls.from_pretrained(str(folder))
    model.resize_token_embeddings(model.config.vocab_size + extra_rows)
    (folder / "pytorch_model.bin").unlink()
    model.save_pretrained(folder)
    return folder


def test_a_padded_word_table_keeps_its_own_tokenizer_only(hf_cache, bpe, tmp_path, capsys):  # noqa: F811
    folder = _padded(released_folder(tmp_path / "padded", OPEN_ENTITY, bpe), 4)
    repo = "studio-ousia/" + OPEN_ENTITY
    hf_cache.add(repo, folder)
    assert (
        json.loads((folder / "config.json").read_text())["vocab_size"]
        == len(luke.LukeTokenizer.from_pretrained(folder)) + 4
    )
    ours = run_predict(capsys, "entity_typing", repo, TYPING_INPUTS, tmp_path)
    assert run_predict(capsys, "entity_typing", repo, TYPING_INPUTS, tmp_path, "--tokenizer", repo) == ours
    assert luke.pipeline(model=repo, device="cpu")(TYPING_INPUTS) == ours
    copy = tmp_path / "tok-copy"
    luke.LukeTokenizer.from_pretrained(folder).save_pretrained(copy)
    assert str(copy) in _predict_error(capsys, tmp_path, repo, "--tokenizer", str(copy))  # not the model's folder


def test_its_own_tokenizer_with_more_words_than_the_table_is_refused(hf_cache, bpe, tmp_path, capsys):  # noqa: F811
    folder = released_folder(tmp_path / "grown", OPEN_ENTITY, bpe)
    tok = transformers.LukeTokenizer.from_pretrained(str(folder))
    tok.add_tokens(["<y1>", "<y2>"])
    tok.save_pretrained(folder)
    hf_cache.add("studio-ousia/" + OPEN_ENTITY, folder)
    err = _predict_error(capsys, tmp_path, "studio-ousia/" + OPEN_ENTITY)
    assert "its own tokenizer has" in err and "vocab_size" in err


# ------------------------------------------------------------------------------ P6: what a name is
def test_a_folder_without_config_is_not_a_model_folder(tmp_path, monkeypatch):
    empty = tmp_path / "sub" / "empty"
    empty.mkdir(parents=True)
    for load in (luke.LukeModel.from_pretrained, luke.LukeConfig.from_pretrained):
        with pytest.raises(CheckpointError, match=r"empty is not a model folder \(no config.json\)$"):
            load(empty)
    monkeypatch.chdir(empty)
    for name in ("", ".."):
        for load in (luke.LukeModel.from_pretrained, luke.LukeConfig.from_pretrained):
            with pytest.raises(CheckpointError, match=r"is not a model folder \(no config.json\)$"):
                load(name)


def _bert_repo(hf_cache) -> str:
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 32, "vocab_size": 8}
    vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n.\n"
    weights = {"pytorch_model.bin": b"not read: the config says what the repo is"}
    hf_cache.add("google/bert-tiny", {"config.json": json.dumps(config), "vocab.txt": vocab, **weights})
    return "google/bert-tiny"


def test_a_bert_repo_is_named_for_what_it_is(hf_cache):
    repo = _bert_repo(hf_cache)
    with pytest.raises(TokenizerError, match=r"^google/bert-tiny is a 'bert' model, not LUKE.*entity_vocab="):
        luke.LukeTokenizer.from_pretrained(repo)
    with pytest.raises(DataError, match=r"^google/bert-tiny is a 'bert' model, not LUKE"):
        luke.EntityVocab.from_pretrained(repo)
    with pytest.raises(CheckpointError, match=r"^google/bert-tiny is a 'bert' model, not LUKE") as err:
        luke.pipeline(model=repo)
    assert "snapshots" not in str(err.value)
    vocab = luke.EntityVocab.from_counts([])
    assert len(luke.LukeTokenizer.from_pretrained(repo, entity_vocab=vocab)) == 8 + 2  # the way out works (+ markers)


# ------------------------------------------------------------------------------ P7 + pipe(None)
def test_pipeline_device_and_input_errors(hf_cache, bpe, tmp_path, monkeypatch):  # noqa: F811
    repo = add_released(hf_cache, tmp_path, bpe, OPEN_ENTITY)
    pipe = luke.pipeline(model=repo, device="cpu")
    for bad in (None, 5):
        with pytest.raises(DataError, match=r"^input:1: expected an input"):
            pipe(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^device='cuda' but no CUDA device is available"):
        luke.pipeline(model=repo, device="cuda")
    with pytest.raises(ConfigError, match="no CUDA device"):
        luke.Pipeline(pipe.task, pipe.model, pipe.tokenizer, device="cuda")


# ------------------------------------------------------------------------------ minor: labels and ids
def test_evaluate_names_labels_the_model_does_not_have(hf_cache, bpe, tmp_path, capsys):  # noqa: F811
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-tacred")
    data = tmp_path / "tacred"
    data.mkdir()
    row = {"token": "Ana Silva works for Acme Corp .".split(), "subj_start": 0, "subj_end": 1, "obj_start": 4,
           "obj_end": 5, "relation": "per:made_up"}  # fmt: skip
    (data / "test.json").write_text(json.dumps([row]))
    capsys.readouterr()
    rc = cli_main(["evaluate", "relation_classification", "--model", repo, "--data-dir", str(data), "--cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "'per:made_up' is not among the model's labels (" in err[0] and "training data" not in err[0]


@pytest.mark.parametrize(
    ("name", "task", "records"),
    [
        (OPEN_ENTITY, "entity_typing", TYPING_INPUTS),
        ("luke-large-finetuned-tacred", "relation_classification", RELATION_INPUTS),
        ("luke-large-finetuned-conll-2003", "ner", NER_INPUTS),
    ],
)
def test_an_input_id_comes_back(name, task, records, hf_cache, bpe, tmp_path, capsys):  # noqa: F811
    repo = add_released(hf_cache, tmp_path, bpe, name)
    with_ids = [{**r, "id": k} for k, r in enumerate(records[:1])] + [{**records[1], "id": "b", "note": 1}]
    plain = run_predict(capsys, task, repo, records[:2], tmp_path)
    ours = run_predict(capsys, task, repo, with_ids, tmp_path)
    assert [list(r)[0] for r in ours] == ["id", "id"] and [r["id"] for r in ours] == [0, "b"]
    assert [{k: v for k, v in r.items() if k != "id"} for r in ours] == plain  # nothing else changes
    assert luke.pipeline(task, model=repo, device="cpu")(with_ids[1])["id"] == "b"
    shutil.rmtree(tmp_path / name)
