"""Issue #18: a tokenizer folder with bad settings or bad files is refused at load with one line that names
the file (tokenizer_config.json, vocab.txt, tokenizer.json), the key and what was expected."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import minilm_folder
from luke.errors import DataError, DatasetError, TokenizerError
from luke.tokenization import LukeTokenizer

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat"]
ENTITIES = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3, "Cat": 4}
TEXT, SPANS = "the cat sat", [(4, 7)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder written by save_pretrained (tokenizer.json, tokenizer_config.json, entity_vocab.json)."""
    root = tmp_path_factory.mktemp("tok")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    LukeTokenizer.from_files(vocab_txt=root / "vocab.txt", entity_vocab=ENTITIES).save_pretrained(root / "saved")
    return root / "saved"


def _with_config(saved: Path, tmp_path: Path, **changes: object) -> Path:
    folder = tmp_path / "tok"
    shutil.copytree(saved, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.update(changes)
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------ numbers in tokenizer_config.json
@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_entity_length", -1, "got -1"),
        ("max_entity_length", 0, "got 0"),
        ("max_mention_length", 0, "got 0"),
        ("max_entity_length", "x", "got 'x'"),
        ("max_entity_length", True, "got True"),
        ("max_mention_length", 2.5, "got 2.5"),
        ("max_mention_length", [3], r"got \[3\]"),
        ("max_mention_length", 10**12, "at most 100,000"),
        ("model_max_length", 0, "got 0"),
        ("model_max_length", "512", "got '512'"),
    ],
)
def test_bad_number_in_config_names_file_and_key(saved, tmp_path, key, value, expected) -> None:
    folder = _with_config(saved, tmp_path, **{key: value})
    with pytest.raises(TokenizerError) as err:
        LukeTokenizer.from_pretrained(folder)
    message = _one_line(err)
    assert re.match(rf"{re.escape(str(folder / 'tokenizer_config.json'))}: {key} must be a positive integer", message)
    assert re.search(expected, message)


def test_long_bad_value_is_cut(saved, tmp_path) -> None:
    folder = _with_config(saved, tmp_path, max_entity_length="9" * 5000)
    with pytest.raises(TokenizerError) as err:
        LukeTokenizer.from_pretrained(folder)
    assert len(_one_line(err)) < 400 and "5,002 characters" in str(err.value)


def test_model_max_length_checked_but_transformers_no_limit_is_the_default(saved, tmp_path) -> None:
    folder = _with_config(saved, tmp_path, model_max_length=-5, max_mention_length=None)
    with pytest.raises(TokenizerError, match="model_max_length must be a positive integer, got -5"):
        LukeTokenizer.from_pretrained(folder)
    folder = _with_config(saved, tmp_path / "b", model_max_length=int(1e30), max_mention_length=None)
    tokenizer = LukeTokenizer.from_pretrained(folder)
    assert tokenizer.model_max_length == 512 and tokenizer.max_mention_length == 30


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_entity_length": -1}, "max_entity_length must be a positive integer"),
        ({"max_mention_length": 0}, "max_mention_length must be a positive integer"),
        ({"max_mention_length": True}, "max_mention_length must be a positive integer"),
        ({"model_max_length": "5"}, "model_max_length must be a positive integer"),
        ({"task": "bogus"}, "task must be null or one of"),
        ({"pad_token": "<<nope>>"}, "pad_token '<<nope>>' is not in the word vocabulary"),
        ({"pad_token": 5}, "pad_token must be a non-empty string"),
        ({"double_separator": "no"}, "double_separator must be true, false or null"),
    ],
)
def test_bad_keyword_names_the_argument(saved, kwargs, expected) -> None:
    with pytest.raises(TokenizerError, match=f"^{re.escape(expected)}"):
        LukeTokenizer.from_pretrained(saved, **kwargs)


def test_keyword_replaces_a_bad_saved_value(saved, tmp_path) -> None:
    folder = _with_config(saved, tmp_path, max_entity_length=-1)
    with pytest.raises(TokenizerError, match="max_entity_length"):
        LukeTokenizer.from_pretrained(folder)
    tokenizer = LukeTokenizer.from_pretrained(folder, max_entity_length=4)
    assert tokenizer(TEXT, entity_spans=SPANS)["entity_ids"] == [2]


def test_no_entity_is_dropped_silently_per_call(saved) -> None:
    tokenizer = LukeTokenizer.from_pretrained(saved)
    for value in (-1, 0, "x"):
        with pytest.raises(TokenizerError, match="max_entity_length must be a positive integer"):
            tokenizer(TEXT, entity_spans=SPANS, max_entity_length=value)
    with pytest.raises(TokenizerError, match="max_mention_length must be a positive integer"):
        tokenizer(TEXT, entity_spans=SPANS, max_mention_length="x")


# ------------------------------------------------------------------------ other settings
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"task": "bogus"}, "task must be null or one of entity_classification, .*got 'bogus'"),
        ({"task": 5}, "task must be null or one of .*got 5"),
        ({"pad_token": "<<nope>>"}, r"pad_token '<<nope>>' is not in the word vocabulary \(.*tokenizer\.json\)"),
        ({"pad_token": 5}, "pad_token must be a non-empty string .*got 5"),
        ({"cls_token": {"content": "<<zz>>"}}, "cls_token '<<zz>>' is not in the word vocabulary"),
        ({"sep_token": {"special": True}}, "sep_token must be a non-empty string"),
        ({"entity_1_token": 7}, "entity_1_token must be a non-empty string .*got 7"),
        ({"entity_unk_token": "NOPE"}, r"entity_unk_token 'NOPE' is not in the entity vocabulary \(.*entity_vocab"),
        ({"double_separator": "no"}, "double_separator must be true, false or null, got 'no'"),
    ],
)
def test_bad_setting_in_config_names_file_and_key(saved, tmp_path, changes, expected) -> None:
    folder = _with_config(saved, tmp_path, **changes)
    with pytest.raises(TokenizerError) as err:
        LukeTokenizer.from_pretrained(folder)
    message = _one_line(err)
    assert message.startswith(f"{folder / 'tokenizer_config.json'}: ")
    assert re.search(expected, message), message


def _wordpiece_folder(tmp_path: Path, vocab: str, config: str | None = None) -> Path:
    folder = tmp_path / "wp"
    folder.mkdir()
    (folder / "vocab.txt").write_text(vocab, encoding="utf-8")
    (folder / "entity_vocab.json").write_text(json.dumps(ENTITIES), encoding="utf-8")
    if config is not None:
        (folder / "tokenizer_config.json").write_text(config, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("vocab", "expected"),
    [
        ("", "empty WordPiece vocabulary, expected one token per line"),
        ("[PAD]\n[SEP]\nthe\n", r"the word vocabulary has no '\[CLS\]' token"),
    ],
)
def test_vocab_txt_without_specials_names_the_file(tmp_path, vocab, expected) -> None:
    folder = _wordpiece_folder(tmp_path, vocab)
    with pytest.raises(TokenizerError) as err:
        LukeTokenizer.from_pretrained(folder)
    assert re.match(rf"{re.escape(str(folder / 'vocab.txt'))}: {expected}", _one_line(err))


def test_do_lower_case_must_be_a_bool(tmp_path) -> None:
    folder = _wordpiece_folder(tmp_path, "\n".join(WORDS), json.dumps({"do_lower_case": "yes"}))
    with pytest.raises(TokenizerError, match=rf"^{re.escape(str(folder))}/tokenizer_config.json: do_lower_case"):
        LukeTokenizer.from_pretrained(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "pad_token": "[PAD]"}))
    assert LukeTokenizer.from_pretrained(folder)("The cat")["input_ids"] == [2, 5, 6, 3]


def test_missing_entity_special_is_a_tokenizer_error(tmp_path) -> None:
    folder = _wordpiece_folder(tmp_path, "\n".join(WORDS))
    (folder / "entity_vocab.json").write_text(json.dumps({"[PAD]": 0, "[UNK]": 1}), encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"entity_vocab.json: the entity vocabulary has no special entity"):
        LukeTokenizer.from_pretrained(folder)


# ------------------------------------------------------------------------ the pretraining dataset's tokenizer
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from luke.wikipedia.dump_db import DumpDB, build_dump_db
    from luke.wikipedia.entity_vocab_builder import build_entity_vocab
    from luke.wikipedia.pretraining_dataset import DatasetOptions, build_pretraining_dataset

    root = tmp_path_factory.mktemp("ds")
    dump = Path(__file__).parent / "fixtures" / "wikipedia" / "tiny-export-0.10.xml"
    build_dump_db(dump, root / "db.sqlite", progress=False)
    vocab, _ = build_entity_vocab(DumpDB(root / "db.sqlite"), vocab_size=100)
    vocab.save(root / "vocab.jsonl")
    options = DatasetOptions(max_seq_length=48, max_entity_length=8, min_sentence_length=2)
    tok = minilm_folder()
    build_pretraining_dataset(root / "db.sqlite", tok, root / "vocab.jsonl", root / "ds", options, progress=False)
    return root / "ds"


def _broken_copy(dataset: Path, tmp_path: Path, name: str, content: bytes) -> Path:
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    (ds / "tokenizer" / name).write_bytes(content)
    return ds


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("tokenizer.json", b"{bad", r"tokenizer\.json:1: not valid JSON"),
        ("tokenizer.json", b'{\n  "a": 1,\n  "b": \xff\n}', r"tokenizer\.json:3: not UTF-8"),
        ("tokenizer.json", b'{"model": 5}', r"tokenizer\.json: not a tokenizers tokenizer\.json"),
        ("tokenizer_config.json", b"[1]", r"tokenizer_config\.json: expected a JSON object"),
    ],
)
def test_dataset_tokenizer_file_is_named(dataset, tmp_path, name, content, expected) -> None:
    from luke.pretraining.data import PretrainingDataset
    from luke.wikipedia.pretraining_dataset import load_tokenizer

    ds = _broken_copy(dataset, tmp_path, name, content)
    with pytest.raises((DataError, TokenizerError), match=f"^{re.escape(str(ds / 'tokenizer'))}/{expected}"):
        load_tokenizer(ds / "tokenizer")
    with pytest.raises(DatasetError, match=f"{re.escape(str(ds / 'tokenizer'))}/{expected}"):
        _ = PretrainingDataset(ds).tokenizer


def test_evaluate_pretraining_names_the_tokenizer_file(dataset, tmp_path, capsys) -> None:
    from luke.cli import main
    from luke.config import LukeConfig
    from luke.entity_vocab import EntityVocab
    from luke.modeling import LukeForMaskedLM

    ds = _broken_copy(dataset, tmp_path, "tokenizer.json", b"{bad")
    n_entities = len(EntityVocab.load(ds / "entity_vocab.jsonl"))
    config = LukeConfig(
        vocab_size=30524,
        entity_vocab_size=n_entities,
        hidden_size=32,
        entity_emb_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    LukeForMaskedLM(config).save_pretrained(tmp_path / "model")
    capsys.readouterr()
    rc = main(["evaluate-pretraining", str(tmp_path / "model"), str(ds), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "\n" not in err and err.startswith("luke evaluate-pretraining: error: ")
    assert f"{ds / 'tokenizer' / 'tokenizer.json'}:1: not valid JSON" in err
