"""Issue #18 (hardening), the model side: absurd configs refused before allocation, tampered weight files,
vocabulary size mismatches, `luke convert` outputs and leftovers, `luke info` contradictions, and files that
are not UTF-8. Every failure is one luke.errors line naming the file (never a traceback, never minutes of
allocation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from luke import modeling
from luke.checkpoint import load_original_archive
from luke.cli import main as cli_main
from luke.config import LukeConfig
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, ConfigError, DataError, LukeError, TokenizerError
from luke.tokenization import LukeTokenizer
from test_checkpoint import _write_original_archive
from test_modeling import TINY, tiny_config


def _one_line_error(capsys, command: str, *names: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith(f"luke {command}: error:"), err
    for name in names:
        assert name in err, (name, err)
    return err


def _tiny_folder(folder: Path, **config_changes) -> Path:
    """A LukeModel folder whose config.json then gets ``config_changes`` written into it."""
    modeling.LukeModel(tiny_config()).save_pretrained(folder)
    if config_changes:
        data = json.loads((folder / "config.json").read_text())
        data.update(config_changes)
        (folder / "config.json").write_text(json.dumps(data))
    return folder


# ------------------------------------------------------------------------------------------ absurd configs

ABSURD = [
    (dict(num_hidden_layers=1_000_000, hidden_size=768, num_attention_heads=12), "GiB"),
    (dict(vocab_size=10**12), "GiB"),
    (dict(entity_vocab_size=10**11), "GiB"),
    (dict(num_attention_heads=0), "num_attention_heads must be a positive integer, got 0"),
    (dict(hidden_size=-32), "hidden_size must be a positive integer, got -32"),
    (dict(vocab_size=-1), "vocab_size must be a positive integer"),
    (dict(intermediate_size=0), "intermediate_size must be a positive integer"),
    (dict(max_position_embeddings=-5), "max_position_embeddings must be a positive integer"),
    (dict(type_vocab_size=0), "type_vocab_size must be a positive integer"),
    (dict(num_hidden_layers=2.0), "num_hidden_layers must be a positive integer, got 2.0"),
    (dict(hidden_size=32.5), "hidden_size must be a positive integer"),
    (dict(num_hidden_layers=True), "num_hidden_layers must be a positive integer, got True"),
    (dict(vocab_size="99"), "vocab_size must be a positive integer"),
    (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be a probability in \[0, 1\)"),
    (dict(attention_probs_dropout_prob=-0.1), "attention_probs_dropout_prob must be a probability"),
    (dict(classifier_dropout="0.1"), "classifier_dropout must be a probability"),
    (dict(hidden_dropout_prob=float("nan")), "hidden_dropout_prob must be a probability"),
    (dict(layer_norm_eps=0), "layer_norm_eps must be a positive number"),
    (dict(pad_token_id=99), r"pad_token_id must be a word id in \[0, vocab_size = 99\)"),
    (dict(pad_token_id=-1), "pad_token_id must be a word id"),
    (dict(eos_token_id=1000), "eos_token_id must be a word id"),
    (dict(pad_token_id=70), "max_position_embeddings .64. must be larger than pad_token_id"),
    (dict(use_entity_aware_attention="yes"), "use_entity_aware_attention must be true or false"),
    (dict(id2label={"first": "A"}), "id2label keys must be integer ids"),
]


@pytest.mark.parametrize(("changes", "message"), ABSURD, ids=[next(iter(c)) for c, _ in ABSURD])
def test_absurd_config_is_refused_before_allocation(changes, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**changes)


@pytest.mark.parametrize(
    ("changes", "message"), ABSURD[:4] + ABSURD[9:10], ids=["layers", "vocab", "ents", "heads", "float"]
)
def test_absurd_config_json_names_the_file(tmp_path, capsys, changes, message):
    folder = _tiny_folder(tmp_path / "m", **changes)
    with pytest.raises(ConfigError, match=message) as err:
        modeling.LukeModel.from_pretrained(folder)
    assert str(folder / "config.json") in str(err.value)
    assert cli_main(["info", str(folder)]) == 2
    _one_line_error(capsys, "info", str(folder / "config.json"))


def test_memory_limit_is_overridable(monkeypatch):
    monkeypatch.setenv("LUKE_MAX_MODEL_BYTES", "1000")
    with pytest.raises(ConfigError, match="over the limit of 0.0 GiB; set LUKE_MAX_MODEL_BYTES"):
        tiny_config()
    monkeypatch.setenv("LUKE_MAX_MODEL_BYTES", "lots")
    with pytest.raises(ConfigError, match="LUKE_MAX_MODEL_BYTES=lots"):
        tiny_config()
    monkeypatch.setenv("LUKE_MAX_MODEL_BYTES", "1GiB")
    assert tiny_config().vocab_size == 99
    monkeypatch.delenv("LUKE_MAX_MODEL_BYTES")
    with pytest.raises(ConfigError, match=r"entity_vocab_size 8, entity_emb_size 1,000,000,000, hidden_size"):
        LukeConfig(vocab_size=99, entity_vocab_size=8, entity_emb_size=10**9, hidden_size=32, num_attention_heads=4)


def test_overrides_are_validated_too(tmp_path):
    folder = _tiny_folder(tmp_path / "m")
    with pytest.raises(ConfigError, match="num_attention_heads must be a positive integer"):
        modeling.LukeModel.from_pretrained(folder, num_attention_heads=0)


# --------------------------------------------------------------------- config against the weights' shapes


def test_million_layers_over_two_is_refused_before_building(tmp_path, capsys, monkeypatch):
    folder = _tiny_folder(tmp_path / "m", num_hidden_layers=1_000_000)
    built = []
    monkeypatch.setattr(modeling.LukeModel, "__init__", lambda self, config: built.append(config))
    with pytest.raises(CheckpointError, match="num_hidden_layers 1,000,000 but the weights hold 2"):
        modeling.LukeModel.from_pretrained(folder)
    assert not built


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(vocab_size=50_000), r"word_embeddings\.weight has shape \(99, 32\) in the weights"),
        (dict(entity_vocab_size=7), r"entity_embeddings\.entity_embeddings\.weight has shape \(10, 6\)"),
        (dict(intermediate_size=64), r"intermediate\.dense\.weight has shape \(37, 32\)"),
        (dict(max_position_embeddings=128), r"position_embeddings\.weight has shape \(64, 32\)"),
    ],
)
def test_config_contradicting_weights_is_refused_before_building(tmp_path, monkeypatch, changes, message):
    folder = _tiny_folder(tmp_path / "m", **changes)
    built = []
    monkeypatch.setattr(modeling.LukeModel, "__init__", lambda self, config: built.append(config))
    with pytest.raises(CheckpointError, match=message):
        modeling.LukeModel.from_pretrained(folder)
    assert not built


def test_info_reports_weight_shapes_and_contradictions(tmp_path, capsys, monkeypatch):
    folder = _tiny_folder(tmp_path / "m", num_hidden_layers=1_000_000, vocab_size=500)
    EntityVocab.from_counts([("A", 1)]).save(folder / "entity_vocab.json")  # 5 entries, table has 10 rows
    import safetensors.torch

    def no_tensor_reads(*args, **kwargs):
        raise AssertionError("info read the tensors")

    monkeypatch.setattr(safetensors.torch, "load_file", no_tensor_reads)
    monkeypatch.setattr("luke.checkpoint.load_file", no_tensor_reads)
    assert cli_main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["weights"]["word table"] == [99, 32] and info["weights"]["layers"] == 2
    text = " | ".join(info["contradictions"])
    assert "num_hidden_layers 1,000,000 but the weights hold 2" in text
    assert "word_embeddings.weight has shape (99, 32)" in text and "(500, 32)" in text
    assert "has 5 entries but the entity table has 10 rows" in text
    assert cli_main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("CONTRADICTION:") == 3 and "word table 99 x 32" in out


def test_info_of_a_consistent_folder_has_no_contradictions(tmp_path, capsys):
    folder = _tiny_folder(tmp_path / "m")
    assert cli_main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["contradictions"] == [] and info["weights"]["entity table"] == [10, 6]


# -------------------------------------------------------------------------------- tampered weight files


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


SAFETENSORS_DAMAGE = {
    "half": lambda p: _truncate(p, 0.5),
    "header-only": lambda p: _truncate(p, 0.02),
    "seven-bytes": lambda p: p.write_bytes(b"\x01" * 7),
    "empty": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(b"this is not a safetensors file at all, just text\n" * 20),
    "huge-header-length": lambda p: p.write_bytes((10**15).to_bytes(8, "little") + b"{}"),
    "header-not-json": lambda p: p.write_bytes((5).to_bytes(8, "little") + b"\xff\xfe{[x"),
    "header-list": lambda p: p.write_bytes((2).to_bytes(8, "little") + b"[]"),
    "bad-offsets": lambda p: p.write_bytes(
        (len(b := b'{"a":{"dtype":"F32","shape":[2],"data_offsets":"x"}}')).to_bytes(8, "little") + b
    ),
}


@pytest.mark.parametrize("damage", list(SAFETENSORS_DAMAGE))
def test_tampered_safetensors_names_the_file(tmp_path, capsys, damage):
    folder = _tiny_folder(tmp_path / "m")
    weights = folder / "model.safetensors"
    SAFETENSORS_DAMAGE[damage](weights)
    with pytest.raises(CheckpointError, match=str(weights)):
        modeling.LukeModel.from_pretrained(folder)
    assert cli_main(["info", str(folder)]) == 2
    _one_line_error(capsys, "info", str(weights))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", r"config\.json:1: not valid JSON"),
        (b"[1, 2]", r"config\.json: expected a JSON object at the top level, got list"),
        (b'{"hidden_size": "\xff"}', r"config\.json:1: not UTF-8 text"),
        (b'"a string"', r"config\.json: expected a JSON object"),
    ],
)
def test_bad_config_json_names_the_file(tmp_path, capsys, content, message):
    folder = _tiny_folder(tmp_path / "m")
    (folder / "config.json").write_bytes(content)
    with pytest.raises(DataError, match=message):
        modeling.LukeModel.from_pretrained(folder)
    assert cli_main(["info", str(folder)]) == 2
    _one_line_error(capsys, "info", str(folder / "config.json"))


# --------------------------------------------------------------------------- entity and word vocabularies


@pytest.mark.parametrize("name", ["v.tsv", "v.jsonl", "v.json"])
def test_empty_entity_vocab_is_a_data_error(tmp_path, name):
    path = tmp_path / name
    path.write_text("{}" if name.endswith(".json") else "")
    with pytest.raises(DataError, match=f"{path}: the entity vocabulary is empty"):
        EntityVocab.load(path)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("v.tsv", b"[PAD]\t0\n[UNK]\t0\nCaf\xe9\t3\n", 3),
        ("v.jsonl", b'{"id": 0, "entities": [["[PAD]", null]]}\n{"id": 1, "entities": [["\xff", null]]}\n', 2),
        ("v.json", b'{\n "[PAD]": 0,\n "Caf\xe9": 1\n}\n', 3),
    ],
)
def test_non_utf8_entity_vocab_names_file_and_line(tmp_path, name, content, line):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"{path}:{line}: not UTF-8"):
        EntityVocab.load(path)


def test_missing_special_entity_names_the_file(tmp_path):
    path = tmp_path / "v.tsv"
    path.write_text("[PAD]\t0\nA\t3\n")
    vocab = EntityVocab.load(path)
    with pytest.raises(DataError, match=rf"{path}: the entity vocabulary \(2 ids\) has no special entity '\[UNK\]'"):
        _ = vocab.unk_id


def _wordpiece_folder(folder: Path, n_words: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(n_words - 5)]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    return folder


def _entity_vocab() -> EntityVocab:
    return EntityVocab.from_counts([("A", 1)])


@pytest.mark.parametrize(
    ("files", "bad", "error"),
    [
        ({"vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nb\xe9b\xe9\n"}, "vocab.txt:5", DataError),
        ({"vocab.json": b'{"<s>": 0,\n "\xff": 1}', "merges.txt": b"#version: 0.2\n"}, "vocab.json:2", DataError),
        (
            {"vocab.json": b'{"<s>": 0, "</s>": 1, "<pad>": 2}', "merges.txt": b"#v\na b\n\xfe c\n"},
            "merges.txt:3",
            DataError,
        ),
        ({"tokenizer.json": b'{"version": "1.0",\n\n "x": "\xc3"}'}, "tokenizer.json:3", DataError),
        ({"tokenizer.json": b'{"version": "1.0", "model": 5}'}, "tokenizer.json", TokenizerError),
        ({"tokenizer.json": b'{"version": '}, "tokenizer.json:1", DataError),
        ({"vocab.txt": b"[CLS]\n", "tokenizer_config.json": b"{oops"}, "tokenizer_config.json:1", DataError),
    ],
    ids=[
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "tokenizer.json-utf8",
        "tokenizer.json-model",
        "tokenizer.json-cut",
        "tokenizer_config",
    ],
)
def test_bad_tokenizer_files_name_file_and_line(tmp_path, files, bad, error):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(error, match=str(tmp_path / bad)):
        LukeTokenizer.from_pretrained(tmp_path, entity_vocab=_entity_vocab())


# ---------------------------------------------------------------------------------------------- convert


def _archive(tmp_path: Path, entities: int | None = None) -> Path:
    src = tmp_path / "src"
    _write_original_archive(src, roberta=False)
    if entities is not None:
        titles = ["[PAD]", "[UNK]", "[MASK]"] + [f"Entity {i}" for i in range(entities - 3)]
        (src / "entity_vocab.tsv").write_text("".join(f"{t}\t1\n" for t in titles))
    return src


def _no_output(tmp_path: Path, name: str = "out") -> None:
    assert not (tmp_path / name).exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]


@pytest.mark.parametrize("entities", [9, 11, 4])
def test_convert_refuses_entity_vocab_of_another_size(tmp_path, capsys, entities):
    src = _archive(tmp_path, entities)
    assert cli_main(["convert", str(src), str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "convert", f"has {entities} entries", "entity table has 10 rows")
    _no_output(tmp_path)


def test_convert_refuses_a_tokenizer_larger_than_the_word_table(tmp_path, capsys):
    src = _archive(tmp_path)
    tok = _wordpiece_folder(tmp_path / "tok", 98)  # + <ent>, <ent2> = 100 > 99 rows
    assert cli_main(["convert", str(src), str(tmp_path / "out"), "--tokenizer", str(tok)]) == 2
    _one_line_error(capsys, "convert", "98 word tokens besides <ent>/<ent2>", "has 99 word rows", str(tok))
    _no_output(tmp_path)
    tok = _wordpiece_folder(tmp_path / "tok2", 97)  # 99 tokens: fits
    assert cli_main(["convert", str(src), str(tmp_path / "out"), "--tokenizer", str(tok)]) == 0
    assert len(LukeTokenizer.from_pretrained(tmp_path / "out")) == 99


def test_convert_missing_tokenizer_leaves_no_output(tmp_path, capsys):
    src = _archive(tmp_path)
    assert cli_main(["convert", str(src), str(tmp_path / "out"), "--tokenizer", str(tmp_path / "nonexistent")]) == 2
    _one_line_error(capsys, "convert", "nonexistent")
    _no_output(tmp_path)


def test_convert_failing_tokenizer_leaves_no_output(tmp_path, capsys):
    src = _archive(tmp_path)
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_bytes(b'{"model": 3}')
    assert cli_main(["convert", str(src), str(tmp_path / "out"), "--tokenizer", str(tok)]) == 2
    _one_line_error(capsys, "convert", str(tok / "tokenizer.json"))
    _no_output(tmp_path)


def test_convert_output_paths_are_checked_before_work(tmp_path, capsys, monkeypatch):
    src = _archive(tmp_path)
    loads = []
    monkeypatch.setattr("luke.commands.load_original_archive", lambda *a, **k: loads.append(a))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [
        (tmp_path / "afile", "exists and is not a folder"),
        (tmp_path / "adir", "already exists; pass --overwrite"),
        (tmp_path / "afile" / "out", "is a file, not a folder"),
    ]
    for out, message in cases:
        assert cli_main(["convert", str(src), str(out)]) == 2
        _one_line_error(capsys, "convert", str(out), message)
    assert not loads


def test_convert_overwrite_replaces_the_folder(tmp_path, capsys):
    src = _archive(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert cli_main(["convert", str(src), str(out), "--overwrite"]) == 0
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_archive_whose_config_contradicts_its_weights(tmp_path, capsys):
    src = _archive(tmp_path)
    meta = json.loads((src / "metadata.json").read_text())
    meta["model_config"]["num_hidden_layers"] = 1_000_000
    (src / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="num_hidden_layers 1,000,000 but the weights hold 2"):
        load_original_archive(src)
    meta["model_config"]["num_attention_heads"] = 0
    (src / "metadata.json").write_text(json.dumps(meta))
    assert cli_main(["convert", str(src), str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "convert", "metadata.json", "num_attention_heads")
    (src / "metadata.json").write_bytes(b"\xff\xfe")
    with pytest.raises(LukeError, match=r"metadata\.json:1: not UTF-8"):
        load_original_archive(src)


def test_info_of_archive_with_vocab_mismatch_is_flagged(tmp_path, capsys):
    src = _archive(tmp_path, entities=8)
    assert cli_main(["info", str(src), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert any("has 8 entries but the entity table has 10 rows" in c for c in info["contradictions"])
    assert TINY["entity_vocab_size"] == 10


def test_config_from_dict_rejects_non_objects():
    with pytest.raises(ConfigError, match="must be a JSON object"):
        LukeConfig.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'extra' must be an object"):
        LukeConfig.from_dict({"extra": 3})


# ------------------------------------------------------------------------- BERT/RoBERTa start folders


def _tiny_bert(folder: Path, **changes) -> Path:
    import transformers

    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(folder)
    if changes:
        data = json.loads((folder / "config.json").read_text())
        data.update(changes)
        (folder / "config.json").write_text(json.dumps(data))
    return folder


def test_bert_start_config_contradicting_weights(tmp_path, monkeypatch):
    from luke.checkpoint import init_from_transformers

    folder = _tiny_bert(tmp_path / "bert", num_hidden_layers=1_000_000)
    built = []
    monkeypatch.setattr(modeling.LukeModel, "__init__", lambda self, config: built.append(config))
    with pytest.raises(CheckpointError, match="num_hidden_layers 1,000,000 but the weights hold 2"):
        init_from_transformers(folder, entity_vocab_size=10, entity_emb_size=8)
    assert not built


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (dict(num_attention_heads=0), ConfigError, "num_attention_heads must be a positive integer"),
        (dict(vocab_size=None), CheckpointError, "no vocab_size"),
        (dict(hidden_dropout_prob=2), ConfigError, "hidden_dropout_prob must be a probability"),
    ],
)
def test_bert_start_bad_config_names_the_file(tmp_path, changes, error, message):
    from luke.checkpoint import init_from_transformers

    folder = _tiny_bert(tmp_path / "bert", **changes)
    if changes.get("vocab_size", 0) is None:
        data = json.loads((folder / "config.json").read_text())
        del data["vocab_size"]
        (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(error, match=message) as err:
        init_from_transformers(folder, entity_vocab_size=10, entity_emb_size=8)
    assert str(folder / "config.json") in str(err.value)


def test_bert_start_entity_settings_are_validated(tmp_path):
    from luke.checkpoint import init_from_transformers

    folder = _tiny_bert(tmp_path / "bert")
    with pytest.raises(ConfigError, match="entity_vocab_size must be a positive integer, got 0"):
        init_from_transformers(folder, entity_vocab_size=0, entity_emb_size=8)
    (folder / "config.json").write_bytes(b"\xff{")
    with pytest.raises(DataError, match=r"config\.json:1: not UTF-8"):
        init_from_transformers(folder, entity_vocab_size=10, entity_emb_size=8)


def test_tokenizer_entity_vocab_without_unk_names_the_file(tmp_path):
    tok = _wordpiece_folder(tmp_path / "tok", 20)
    (tok / "entity_vocab.tsv").write_text("[PAD]\t0\n[MASK]\t0\nA\t1\n")
    with pytest.raises(ValueError, match=rf"{tok / 'entity_vocab.tsv'}: the entity vocabulary has no special"):
        LukeTokenizer.from_pretrained(tok)


def test_empty_pytorch_bin_says_so(tmp_path, capsys):
    folder = _tiny_folder(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"")
    assert cli_main(["info", str(folder)]) == 2
    _one_line_error(capsys, "info", str(folder / "pytorch_model.bin"), "the file is empty")


# ------------------------------------------------------------------------- original archives


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_convert_damaged_tar_archive_is_one_line(tmp_path, capsys, damage):
    import tarfile

    from test_checkpoint import _write_original_archive

    _write_original_archive(tmp_path / "src", False)
    archive = tmp_path / "luke.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src", arcname="luke")
    data = archive.read_bytes()
    archive.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"\x1f\x8b" + b"x" * 64}[damage])
    assert cli_main(["convert", str(archive), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("luke convert: error:") and "luke.tar.gz" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["luke.tar.gz", "src"]


def test_convert_never_writes_over_its_archive(tmp_path, capsys):
    from test_checkpoint import _write_original_archive

    _write_original_archive(tmp_path / "src", False)
    before = sorted(p.name for p in (tmp_path / "src").iterdir())
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "src")
    for out in (tmp_path / "src", link):
        assert cli_main(["convert", str(tmp_path / "src"), str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "would replace the input" in err, err
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == before


def test_tampered_pytorch_bin_is_one_quiet_line_without_unsafe_advice(tmp_path, capsys):
    import pickle
    import warnings

    from test_checkpoint import _write_original_archive
    from test_reliability_checkpoints import Evil

    _write_original_archive(tmp_path / "src", False)
    marker = tmp_path / "marker"
    (tmp_path / "src" / "pytorch_model.bin").write_bytes(pickle.dumps(Evil(marker)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli_main(["convert", str(tmp_path / "src"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pytorch_model.bin" in err and "could run code" in err, err
    assert "weights_only` set to `False" not in err and "False" not in err
    assert [str(w.message) for w in caught] == [] and not marker.exists()


def test_archive_errors_name_the_archive_member_not_a_temporary_folder(tmp_path, capsys):
    import io
    import tarfile

    from test_checkpoint import _write_original_archive

    _write_original_archive(tmp_path / "src", False)
    archive = tmp_path / "dup.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src", arcname="luke")
        info = tarfile.TarInfo("luke/metadata.json")
        info.size = len(b"{garbage")
        tar.addfile(info, io.BytesIO(b"{garbage"))  # a second member of the same name wins on extraction
    assert cli_main(["convert", str(archive), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{archive} member luke/metadata.json:1: not valid JSON" in err and "/tmp" not in err.replace(
        str(tmp_path), ""
    ), err


def test_info_on_a_folder_whose_config_json_is_a_folder(tmp_path, capsys):
    (tmp_path / "model" / "config.json").mkdir(parents=True)
    assert cli_main(["info", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.json is not a readable file" in err, err


def test_info_on_an_empty_folder_says_it_is_neither_model_nor_archive(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli_main(["info", str(tmp_path / "empty")]) == 2
    err = _one_line_error(capsys, "info", str(tmp_path / "empty"), "neither a model folder (no config.json)")
    assert "nor an original LUKE archive (no metadata.json)" in err
