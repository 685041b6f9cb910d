"""Issue #18 hardening of the Wikipedia pipeline commands and the pretraining-dataset readers.

Output paths are refused before the work starts (a folder where a file belongs and the reverse, a parent
that is a file, an existing output without --overwrite), outputs appear atomically and the hidden
temporaries of killed runs are swept, and every bad input (non-UTF-8 text, a bad metadata.json, a truncated
shard, a folder given as a file) is one ``luke CMD: error: …`` line naming the real file. The tests run as
root here, so "read-only parent" is probed with a parent that is a file instead.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import require_shared
from luke.cli import main
from luke.entity_vocab import EntityVocab
from luke.errors import DatasetError, DumpError, LukeError, OutputError
from luke.wikipedia import dump_db as dump_db_module
from luke.wikipedia import mention_db as mention_db_module
from luke.wikipedia import pretraining_dataset as dataset_module
from luke.wikipedia.dump_db import DumpDB, build_dump_db
from luke.wikipedia.entity_vocab_builder import save_vocab_atomically

TINY = Path(__file__).parent / "fixtures" / "wikipedia" / "tiny-export-0.10.xml"
DEAD_PID = 2**22 + 123  # above the largest Linux pid: never a running process


def _error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The one stderr line of a failed command (rc already checked by the caller)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"luke {command}: error: "), err
    assert "Traceback" not in err and ".tmp-" not in err and ".staging-" not in err, err
    return lines[0]


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("the work started although the output path is unusable")


def _leftovers(folder: Path, name: str) -> list[Path]:
    """Fake temporaries of a killed earlier run (a dead pid) for output ``name``: a file and a folder."""
    tmp = folder / f".{name}.tmp-{DEAD_PID}"
    tmp.write_bytes(b"half-written")
    staging = folder / f".{name}.staging-{DEAD_PID}"
    staging.mkdir()
    (staging / "items.arrow").write_bytes(b"x")
    return [tmp, staging]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "db.sqlite"
    build_dump_db(TINY, path, progress=False)
    return path


# ------------------------------------------------------------------------------------------------ build-dump-db


def test_build_dump_db_refuses_bad_outputs_before_reading_the_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dump_db_module, "DumpReader", _forbidden)
    folder = tmp_path / "out.sqlite"
    folder.mkdir()
    assert main(["build-dump-db", str(TINY), str(folder), "--no-progress"]) == 2
    assert f"{folder} is a folder" in _error_line(capsys, "build-dump-db")
    parent_file = tmp_path / "file"
    parent_file.write_text("x")
    assert main(["build-dump-db", str(TINY), str(parent_file / "db.sqlite"), "--no-progress"]) == 2
    assert f"{parent_file} is a file, not a folder" in _error_line(capsys, "build-dump-db")


def test_build_dump_db_input_folder_replace_and_leftovers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "db.sqlite"
    assert main(["build-dump-db", str(tmp_path), str(out), "--no-progress"]) == 2
    assert f"{tmp_path}: is a folder" in _error_line(capsys, "build-dump-db")
    out.write_text("an older file")  # replaced, as the help says
    stale = _leftovers(tmp_path, out.name)
    alive = tmp_path / f".{out.name}.tmp-{os.getpid()}x"  # not a leftover name: kept
    alive.write_text("")
    assert main(["build-dump-db", str(TINY), str(out), "--no-progress"]) == 0
    assert len(DumpDB(out)) > 0
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, alive.name])


def test_build_dump_db_failure_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(TINY.read_text(encoding="utf-8")[:900], encoding="utf-8")
    out = tmp_path / "db.sqlite"
    _leftovers(tmp_path, out.name)  # swept even when this run fails
    assert main(["build-dump-db", str(bad), str(out), "--no-progress"]) == 2
    assert str(bad) in _error_line(capsys, "build-dump-db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xml"]


def test_dump_db_readers_name_the_file(tmp_path: Path, db: Path) -> None:
    with pytest.raises(DumpError, match="is a folder"):
        DumpDB(tmp_path)
    partial = tmp_path / "partial.sqlite"
    conn = sqlite3.connect(partial)
    conn.executescript(
        "CREATE TABLE meta (key TEXT, value TEXT);"
        "INSERT INTO meta VALUES ('format', 'luke-dump-db'), ('format_version', '1');"
    )
    conn.commit()
    conn.close()
    with pytest.raises(
        DumpError, match=r"partial.sqlite: not a complete dump database \(table\(s\) link_counts, pages"
    ):
        DumpDB(partial)
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(db.read_bytes())
    conn = sqlite3.connect(corrupt)
    page_id = conn.execute("SELECT page_id FROM pages LIMIT 1").fetchone()[0]
    conn.execute("UPDATE pages SET paragraphs = ? WHERE page_id = ?", ("[{" + "x" * 10_000, page_id))
    conn.commit()
    conn.close()
    with pytest.raises(DumpError, match=f"corrupt.sqlite: page id {page_id}: corrupt paragraphs") as info:
        DumpDB(corrupt).get_page(page_id)
    assert len(str(info.value)) < 400


# ------------------------------------------------------------------------------------------- build-entity-vocab


def test_build_entity_vocab_refuses_bad_outputs_before_the_work(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dump_db_module, "DumpDB", _forbidden)
    folder = tmp_path / "vocab.jsonl"
    folder.mkdir()
    parent_file = tmp_path / "file"
    parent_file.write_text("x")
    cases = [
        ([str(folder)], f"{folder} is a folder"),
        ([str(parent_file / "v.jsonl")], f"{parent_file} is a file, not a folder"),
        ([str(tmp_path / "vocab.txt")], "unknown format '.txt'"),
        ([str(tmp_path / "vocab.tsv"), "--language", "en"], "--language needs the .jsonl or .json format"),
    ]
    for extra, expected in cases:
        assert main(["build-entity-vocab", str(db), *extra]) == 2
        assert expected in _error_line(capsys, "build-entity-vocab")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "vocab.jsonl"]


def test_build_entity_vocab_white_list_and_input_errors(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vocab.jsonl"
    white = tmp_path / "white.txt"
    white.write_bytes(b"Kyoto\nCaf\xe9\n")
    assert main(["build-entity-vocab", str(db), str(out), "-w", str(white)]) == 2
    assert f"{white}:2: not UTF-8 text" in _error_line(capsys, "build-entity-vocab")
    assert main(["build-entity-vocab", str(db), str(out), "-w", str(tmp_path)]) == 2
    assert f"{tmp_path}: white list is a folder" in _error_line(capsys, "build-entity-vocab")
    assert main(["build-entity-vocab", str(tmp_path), str(out)]) == 2
    assert f"{tmp_path}: is a folder" in _error_line(capsys, "build-entity-vocab")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not sqlite at all" * 100)
    assert main(["build-entity-vocab", str(garbage), str(out)]) == 2
    assert f"{garbage}: not a dump database" in _error_line(capsys, "build-entity-vocab")
    assert not out.exists()


def test_build_entity_vocab_sweeps_leftovers_and_save_errors_name_the_output(tmp_path: Path, db: Path) -> None:
    out = tmp_path / "vocab.jsonl"
    stale = _leftovers(tmp_path, out.name)
    assert main(["build-entity-vocab", str(db), str(out), "--vocab-size", "7"]) == 0
    assert len(EntityVocab.load(out)) == 7
    assert not any(p.exists() for p in stale)
    vocab = EntityVocab.from_counts([("Kyoto", 3)], language="ja")
    tsv = tmp_path / "vocab.tsv"
    with pytest.raises(OutputError) as info:
        save_vocab_atomically(vocab, tsv)
    assert str(info.value).startswith(f"output vocabulary {tsv}: the TSV format")
    assert ".tmp-" not in str(info.value) and ".staging-" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.jsonl"]


# --------------------------------------------------------------------------------------------- build-mention-db


def test_build_mention_db_outputs(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "m.jsonl"
    folder.mkdir()
    parent_file = tmp_path / "file"
    parent_file.write_text("x")
    with monkeypatch.context() as m:
        m.setattr(mention_db_module, "DumpDB", _forbidden)
        assert main(["build-mention-db", str(db), str(folder), "--no-progress"]) == 2
        assert f"{folder} is a folder" in _error_line(capsys, "build-mention-db")
        assert main(["build-mention-db", str(db), str(parent_file / "m.jsonl"), "--no-progress"]) == 2
        assert f"{parent_file} is a file, not a folder" in _error_line(capsys, "build-mention-db")
    out = tmp_path / "mentions.jsonl"
    stale = _leftovers(tmp_path, out.name)
    assert main(["build-mention-db", str(db), str(out), "--no-progress"]) == 0
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "m.jsonl", "mentions.jsonl"]


def test_mention_dictionary_inputs_name_the_file(tmp_path: Path) -> None:
    from luke.errors import DataError
    from luke.wikipedia.mention_db import MentionDetector

    with pytest.raises(DataError, match="is a folder"):
        MentionDetector.from_file(tmp_path)
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes(b"\n\ncaf\xe9\tCafe\n")
    with pytest.raises(DataError, match=f"{latin1}:3: not UTF-8 text"):
        MentionDetector.from_file(latin1)
    huge = tmp_path / "huge.jsonl"
    header = {"format": "luke-mention-db", "version": 1, "max_mention_words": 20}
    record = {"mention": "x", "link_count": "9" * 50_000, "link_prob": 1.0, "candidates": [["X", 1]]}
    huge.write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"{huge}:2: 'link_count' must be a positive integer") as info:
        MentionDetector.from_file(huge)
    assert len(str(info.value)) < 300


# ------------------------------------------------------------------------------------ build-pretraining-dataset


def test_build_pretraining_dataset_refuses_bad_outputs_before_the_work(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset_module, "DumpDB", _forbidden)
    monkeypatch.setattr(dataset_module, "load_tokenizer", _forbidden)
    existing = tmp_path / "ds"
    existing.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        ([str(existing)], f"{existing} already exists; pass --overwrite"),
        ([str(a_file), "--overwrite"], f"{a_file} exists and is not a folder"),
        ([str(a_file)], f"{a_file} exists and is not a folder"),
        ([str(a_file / "ds")], f"{a_file} is a file, not a folder"),
    ]
    for extra, expected in cases:
        argv = ["build-pretraining-dataset", str(db), str(tmp_path / "tok"), str(tmp_path / "v.jsonl"), *extra]
        assert main([*argv, "--no-progress"]) == 2
        assert expected in _error_line(capsys, "build-pretraining-dataset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "file"]


def test_build_pretraining_dataset_input_errors(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokenizer = require_shared("tokenizers/roberta-base")
    out = tmp_path / "ds"
    argv = ["build-pretraining-dataset", str(db), str(tokenizer), str(tmp_path), str(out), "--no-progress"]
    assert main(argv) == 2
    assert f"{tmp_path}: entity vocabulary is a folder" in _error_line(capsys, "build-pretraining-dataset")
    vocab = tmp_path / "v.jsonl"
    vocab.write_bytes(b'{"id": 0, "entities": [["[PAD]", null]], "count": 0}\n\xff\n')
    argv = ["build-pretraining-dataset", str(db), str(tokenizer), str(vocab), str(out), "--no-progress"]
    assert main(argv) == 2
    assert str(vocab) in _error_line(capsys, "build-pretraining-dataset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.jsonl"]


def test_build_pretraining_dataset_overwrite_sweeps_leftovers(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokenizer = require_shared("tokenizers/roberta-base")
    vocab = tmp_path / "v.jsonl"
    assert main(["build-entity-vocab", str(db), str(vocab), "--vocab-size", "20"]) == 0
    out = tmp_path / "ds"
    out.mkdir()
    (out / "old.txt").write_text("replaced by --overwrite")
    stale = _leftovers(tmp_path, out.name)
    argv = ["build-pretraining-dataset", str(db), str(tokenizer), str(vocab), str(out), "--no-progress"]
    assert main([*argv, "--max-seq-length", "40", "--overwrite"]) == 0
    assert not (out / "old.txt").exists() and (out / "metadata.json").is_file()
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "v.jsonl"]
    capsys.readouterr()
    assert main(["data-stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] > 0


# ------------------------------------------------------------------------------------- data-stats and readers


def _tiny_dataset(folder: Path, pages: tuple[int, ...] = (1, 2, 3)) -> Path:
    """A small dataset folder written by hand (Arrow shard + state.json + metadata.json + vocab)."""
    import datasets

    rows = {
        "page_id": list(pages),
        "page_entity_id": [-1] * len(pages),
        "word_ids": [[5, 6, 7]] * len(pages),
        "entity_ids": [[1, 4]] * len(pages),
        "entity_position_ids": [[[0], [1, 2]]] * len(pages),
    }
    datasets.disable_progress_bars()
    datasets.Dataset.from_dict(rows, features=dataset_module.features()).save_to_disk(str(folder))
    vocab = EntityVocab.from_counts([("Kyoto", 3)])
    vocab.save(folder / "entity_vocab.jsonl")
    (folder / "tokenizer").mkdir()
    metadata = {
        "format": "luke-pretraining-dataset",
        "format_version": 1,
        "number_of_items": len(pages),
        "number_of_pages": len(pages),
        "tokenizer": {"saved_to": "tokenizer/", "sha256": "0"},
        "entity_vocab": {"file": "entity_vocab.jsonl", "size": len(vocab), "special_ids": vocab.special_ids()},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def _edit_metadata(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "metadata.json").read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    (folder / "metadata.json").write_text(json.dumps(meta))


def test_data_stats_bad_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = _tiny_dataset(tmp_path / "ds")
    assert main(["data-stats", str(ds), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entity_mentions"] == 6
    meta = ds / "metadata.json"
    probes = [
        (lambda: _edit_metadata(ds, entity_vocab=None), f"{meta}: field 'entity_vocab' is missing"),
        (lambda: _edit_metadata(ds, entity_vocab={"file": "e.jsonl", "size": "7", "special_ids": {}}),
         f"{meta}: field 'entity_vocab.size' must be an integer, got str"),
        (lambda: _edit_metadata(ds, entity_vocab={"file": "e", "size": 7, "special_ids": {"[UNK]": "1"}}),
         f"{meta}: field 'entity_vocab.special_ids.[UNK]' must be an integer"),
        (lambda: _edit_metadata(ds, number_of_items=True), f"{meta}: field 'number_of_items' must be an integer"),
        (lambda: _edit_metadata(ds, format="x" * 10_000), f"{meta}: format is xxx"),
        (lambda: meta.write_text('{"format": '), f"{meta}:1: not valid JSON"),
        (lambda: meta.write_bytes(b'{"format":\n "caf\xe9"}'), f"{meta}:2: not UTF-8 text"),
        (lambda: meta.write_text("[1, 2]"), f"{meta}: expected a JSON object at the top level"),
        (lambda: meta.unlink(), f"{ds}: not a pretraining dataset (no metadata.json)"),
    ]  # fmt: skip
    for make_bad, expected in probes:
        _tiny_dataset(ds) if not meta.exists() else None
        make_bad()
        assert main(["data-stats", str(ds)]) == 2
        line = _error_line(capsys, "data-stats")
        assert expected in line, line
        assert len(line) < 400
        meta.unlink(missing_ok=True)
        for p in sorted(ds.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        ds.rmdir()
        _tiny_dataset(ds)


def test_data_stats_bad_folders_and_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data-stats", str(tmp_path / "nope")]) == 2
    assert "dataset folder not found" in _error_line(capsys, "data-stats")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["data-stats", str(a_file)]) == 2
    assert f"{a_file}: is a file, expected a pretraining dataset folder" in _error_line(capsys, "data-stats")
    ds = _tiny_dataset(tmp_path / "ds")
    (ds / "state.json").write_text("{")
    assert main(["data-stats", str(ds)]) == 2
    assert f"{ds / 'state.json'}:1: not valid JSON" in _error_line(capsys, "data-stats")
    ds = _tiny_dataset(tmp_path / "ds2")
    shard = next(ds.glob("data-*.arrow"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert main(["data-stats", str(ds)]) == 2
    assert f"{shard}: corrupt dataset shard" in _error_line(capsys, "data-stats")
    shard.write_bytes(b"")
    assert main(["data-stats", str(ds)]) == 2
    assert f"{shard}: corrupt dataset shard" in _error_line(capsys, "data-stats")
    (ds / "dataset_info.json").write_text("{")
    assert main(["data-stats", str(ds)]) == 2
    assert f"{ds / 'dataset_info.json'}:1: not valid JSON" in _error_line(capsys, "data-stats")
    (ds / "dataset_info.json").unlink()
    assert main(["data-stats", str(ds)]) == 2
    assert f"{ds}: dataset_info.json is missing" in _error_line(capsys, "data-stats")
    state = json.loads((ds / "state.json").read_text())
    (ds / "state.json").write_text(json.dumps({**state, "_data_files": [{"filename": "../metadata.json"}]}))
    assert main(["data-stats", str(ds)]) == 2
    assert "state.json: shard names must be file names in the folder" in _error_line(capsys, "data-stats")
    (ds / "state.json").write_text(json.dumps({**state, "_data_files": []}))
    assert main(["data-stats", str(ds)]) == 2
    assert "state.json: '_data_files' lists no Arrow shards" in _error_line(capsys, "data-stats")
    (ds / "state.json").write_text(json.dumps(state))
    shard.unlink()
    assert main(["data-stats", str(ds)]) == 2
    assert f"missing dataset shard(s): {shard.name}" in _error_line(capsys, "data-stats")


def test_pretraining_dataset_reader_checks_metadata(tmp_path: Path) -> None:
    from luke.pretraining.data import PretrainingDataset

    ds = _tiny_dataset(tmp_path / "ds")
    assert len(PretrainingDataset(ds)) == 3
    _edit_metadata(ds, number_of_items="3")
    with pytest.raises(DatasetError, match="field 'number_of_items' must be an integer, got str"):
        PretrainingDataset(ds)
    _edit_metadata(ds, number_of_items=4)
    with pytest.raises(DatasetError, match="3 items in the Arrow shards but metadata.json says 4"):
        PretrainingDataset(ds)
    _edit_metadata(ds, tokenizer=None)
    with pytest.raises(DatasetError, match="field 'tokenizer' is missing"):
        PretrainingDataset(ds)
    _edit_metadata(ds, tokenizer={"saved_to": "tokenizer/"}, number_of_items=3, format_version=99)
    with pytest.raises(DatasetError, match="format_version is 99; this version of luke reads 1 only"):
        PretrainingDataset(ds)
    _edit_metadata(ds, format_version=1, max_seq_length=-1)
    with pytest.raises(DatasetError, match="field 'max_seq_length' must be a positive integer, got -1"):
        PretrainingDataset(ds)
    _edit_metadata(ds, max_seq_length=None)
    meta = json.loads((ds / "metadata.json").read_text())
    meta["entity_vocab"]["size"] = 99
    (ds / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"entity_vocab.size is 99 but .*entity_vocab.jsonl holds 5 entries"):
        PretrainingDataset(ds).entity_info()


def test_split_outputs_inside_the_input_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = _tiny_dataset(tmp_path / "ds", pages=(1, 2, 3, 4))
    before = sorted(p.name for p in ds.iterdir())
    assert main(["split-pretraining-dataset", str(ds), str(ds / "train"), str(tmp_path / "held")]) == 2
    assert "lies inside the input dataset" in _error_line(capsys, "split-pretraining-dataset")
    assert sorted(p.name for p in ds.iterdir()) == before and not (tmp_path / "held").exists()


# ------------------------------------------------------------------------------------- split-pretraining-dataset


def test_split_checks_outputs_before_the_work_and_sweeps_leftovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import luke.pretraining.data as data_module

    ds = _tiny_dataset(tmp_path / "ds", pages=(1, 2, 3, 4))
    existing = tmp_path / "exists"
    existing.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with monkeypatch.context() as m:
        m.setattr(data_module, "PretrainingDataset", _forbidden)
        for train, held, expected in [
            (existing, tmp_path / "h", f"{existing} already exists"),
            (tmp_path / "t", existing, f"{existing} already exists"),
            (a_file, tmp_path / "h", f"{a_file} exists and is not a folder"),
            (a_file / "t", tmp_path / "h", f"{a_file} is a file, not a folder"),
            (tmp_path / "same", tmp_path / "same", "are the same"),
        ]:
            assert main(["split-pretraining-dataset", str(ds), str(train), str(held), "--heldout-fraction", "0.5"]) == 2
            assert expected in _error_line(capsys, "split-pretraining-dataset")
    stale = _leftovers(tmp_path, "train") + _leftovers(tmp_path, "held")
    argv = ["split-pretraining-dataset", str(ds), str(tmp_path / "train"), str(tmp_path / "held")]
    assert main([*argv, "--heldout-fraction", "0.5"]) == 0
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "exists", "file", "held", "train"]
    assert len(data_module.PretrainingDataset(tmp_path / "train")) == 2


# -------------------------------------------------------------------------------------------- pretraining config


def test_pretraining_config_file_errors_name_the_file(tmp_path: Path) -> None:
    from luke.pretraining.config import PretrainingConfig

    with pytest.raises(LukeError, match="is a folder"):
        PretrainingConfig.load(tmp_path)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_bytes(b"dataset: a\nmodel: caf\xe9\n")
    with pytest.raises(LukeError, match=f"{cfg}:2: not UTF-8 text"):
        PretrainingConfig.load(cfg)
    cfg.write_text("dataset: a\nmodel: [unclosed\n")
    with pytest.raises(LukeError, match=f"{cfg}:3: not valid YAML"):
        PretrainingConfig.load(cfg)
    cfg_json = tmp_path / "cfg.json"
    cfg_json.write_text('{\n"dataset": }')
    with pytest.raises(LukeError, match=f"{cfg_json}:2: not valid JSON"):
        PretrainingConfig.load(cfg_json)
    with pytest.raises(LukeError) as info:
        PretrainingConfig.load(None, [f"batch_size={'9' * 5}x{'9' * 50_000}"])
    assert len(str(info.value)) < 300


# ------------------------------------------------------------------------------------------ outputs over inputs


def test_outputs_never_replace_an_input(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "dump.xml"
    dump.write_bytes(TINY.read_bytes())
    assert main(["build-dump-db", str(dump), str(dump), "--no-progress"]) == 2
    assert f"{dump} would replace the input" in _error_line(capsys, "build-dump-db")
    copy = tmp_path / "db.sqlite"
    copy.write_bytes(db.read_bytes())
    assert main(["build-mention-db", str(copy), str(copy), "--no-progress"]) == 2
    assert f"{copy} would replace the input" in _error_line(capsys, "build-mention-db")
    white = tmp_path / "white.jsonl"
    white.write_text("Kyoto\n")
    assert main(["build-entity-vocab", str(copy), str(white), "-w", str(white)]) == 2
    assert f"{white} would replace the input" in _error_line(capsys, "build-entity-vocab")
    argv = ["build-pretraining-dataset", str(copy), str(tmp_path / "tok"), str(white), str(tmp_path), "--overwrite"]
    assert main(argv) == 2
    assert "would replace the folder holding the input" in _error_line(capsys, "build-pretraining-dataset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite", "dump.xml", "white.jsonl"]
    assert dump.read_bytes() == TINY.read_bytes() and copy.read_bytes() == db.read_bytes()


def test_dump_inputs_that_are_not_dumps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    assert main(["build-dump-db", str(empty), str(tmp_path / "o.sqlite"), "--no-progress"]) == 2
    assert f"{empty}: empty file" in _error_line(capsys, "build-dump-db")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["build-dump-db", str(fifo), str(tmp_path / "o.sqlite"), "--no-progress"]) == 2
    assert f"{fifo}: not a regular file" in _error_line(capsys, "build-dump-db")


def test_build_dump_db_sqlite_failure_names_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(dump_db_module, "_store_pages", disk_full)
    out = tmp_path / "db.sqlite"
    assert main(["build-dump-db", str(TINY), str(out), "--no-progress"]) == 2
    line = _error_line(capsys, "build-dump-db")
    assert f"output database {out}: cannot be written (database or disk is full)" in line
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- issue #18: adversarial probes of the pipeline


def _tamper(db: Path, out: Path, sql: str, *params: object) -> Path:
    out.write_bytes(db.read_bytes())
    conn = sqlite3.connect(out)
    conn.execute(sql, params)
    conn.commit()
    conn.close()
    return out


def test_tampered_dump_db_rows_are_one_line_dump_errors(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows are checked where DumpDB decodes them: a wrong type or an offset outside the paragraph is a
    DumpError naming the file, page and link (it was a TypeError, or a silently wrong mention)."""
    bad = _tamper(db, tmp_path / "counts.sqlite", "UPDATE link_counts SET count = 'abc'")
    assert main(["build-entity-vocab", str(bad), str(tmp_path / "v.jsonl")]) == 2
    assert f"{bad}: table link_counts: corrupt row" in _error_line(capsys, "build-entity-vocab")
    bad = _tamper(db, tmp_path / "redirects.sqlite", "UPDATE redirects SET target = x'ff00'")
    assert main(["build-entity-vocab", str(bad), str(tmp_path / "v.jsonl")]) == 2
    assert f"{bad}: table redirects: corrupt row" in _error_line(capsys, "build-entity-vocab")
    page_id = DumpDB(db).page_ids()[0]
    probes = [
        ([{"text": "abc", "abstract": True, "links": [["Japan", True, "x"]]}], 'corrupt link ["Japan", true, "x"]'),
        ([{"text": "abc", "abstract": True, "links": [["Japan", -5, 999]]}], 'corrupt link ["Japan", -5, 999]'),
        ([{"text": "abc", "abstract": True, "links": [["Japan", 2, 1]]}], "0 <= start < end <= 3"),
        ([{"text": "abc", "abstract": True, "links": [[7, 0, 1]]}], "corrupt link [7, 0, 1]"),
        ([{"text": 5, "links": []}], "corrupt paragraph"),
        ({"text": "abc"}, "expected a JSON list, got dict"),
    ]
    for number, (paragraphs, expected) in enumerate(probes):
        sql = "UPDATE pages SET paragraphs = ? WHERE page_id = ?"
        bad = _tamper(db, tmp_path / f"p{number}.sqlite", sql, json.dumps(paragraphs), page_id)
        assert main(["build-mention-db", str(bad), str(tmp_path / "m.jsonl"), "--no-progress"]) == 2
        line = _error_line(capsys, "build-mention-db")
        assert f"{bad}: page id {page_id}" in line and expected in line, line
    assert not (tmp_path / "m.jsonl").exists() and not (tmp_path / "v.jsonl").exists()


def test_num_workers_is_capped_before_the_work(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from luke.errors import ConfigError
    from luke.wikipedia.parallel import MAX_WORKERS, ordered_map

    monkeypatch.setattr(dump_db_module, "DumpReader", _forbidden)
    monkeypatch.setattr(dataset_module, "DumpDB", _forbidden)
    too_many = str(MAX_WORKERS + 1)
    assert main(["build-dump-db", str(TINY), str(tmp_path / "o.db"), "--num-workers", too_many]) == 2
    assert f"--num-workers {MAX_WORKERS + 1} is too many" in _error_line(capsys, "build-dump-db")
    argv = ["build-pretraining-dataset", str(db), str(tmp_path / "tok"), str(tmp_path / "v.jsonl"), str(tmp_path / "d")]
    assert main([*argv, "--num-workers", "100000"]) == 2
    assert "--num-workers 100,000 is too many" in _error_line(capsys, "build-pretraining-dataset")
    with pytest.raises(ConfigError, match="at most 256 worker processes"):
        next(ordered_map(abs, [1], 100_000))
    assert list(tmp_path.iterdir()) == []


def _dump_variant(tmp_path: Path, name: str, old: str, new: str, count: int = -1) -> Path:
    text = TINY.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def test_dumps_without_pages_bad_namespaces_and_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "o.sqlite"
    no_pages = tmp_path / "no-pages.xml"
    no_pages.write_text('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10"></mediawiki>')
    assert main(["build-dump-db", str(no_pages), str(out), "--no-progress"]) == 2
    assert f"{no_pages}: no <page> in the export" in _error_line(capsys, "build-dump-db")
    bad_ns = _dump_variant(tmp_path, "ns.xml", "<ns>0</ns>", "<ns>abc</ns>", 1)
    assert main(["build-dump-db", str(bad_ns), str(out), "--no-progress"]) == 2
    line = _error_line(capsys, "build-dump-db")
    assert f"{bad_ns}: page id " in line and "<ns> must be an integer, got 'abc' (near input byte" in line
    bad_version = _dump_variant(tmp_path, "vx.xml", "0.10", "x.y")
    assert main(["build-dump-db", str(bad_version), str(out), "--no-progress"]) == 2
    assert "unknown MediaWiki export schema version 'x.y'" in _error_line(capsys, "build-dump-db")
    assert list(p.name for p in tmp_path.iterdir() if p.suffix == ".sqlite") == []
    newer = _dump_variant(tmp_path, "v99.xml", "0.10", "0.99")
    with caplog.at_level("WARNING", logger="luke.wikipedia.dump_db"):
        assert main(["build-dump-db", str(newer), str(out), "--no-progress"]) == 0
    assert "export schema 0.99 is not one of 0.9-0.11; reading it like 0.11" in caplog.text
    assert len(DumpDB(out)) > 0


def test_file_outputs_named_like_folders_and_wrong_suffixes(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder_name = f"{tmp_path}/p1/newdir/"
    cases = [
        (["build-dump-db", str(TINY), folder_name, "--no-progress"], "output database"),
        (["build-entity-vocab", str(db), folder_name], "output vocabulary"),
        (["build-mention-db", str(db), folder_name, "--no-progress"], "output mention database"),
        (["build-ed-dataset", str(db), folder_name, "--no-progress"], "output ED dataset"),
    ]
    for argv, what in cases:
        assert main(argv) == 2
        assert f"{what} {folder_name} ends with '/', which names a folder" in _error_line(capsys, argv[0])
    assert list(tmp_path.iterdir()) == []
    assert main(["build-mention-db", str(db), str(tmp_path / "m.tsv"), "--no-progress"]) == 2
    assert "m.tsv: the file is JSON Lines; end its name with .jsonl" in _error_line(capsys, "build-mention-db")
    assert list(tmp_path.iterdir()) == []


def test_white_lists_that_select_nothing(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "v.jsonl"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n")
    assert main(["build-entity-vocab", str(db), str(out), "-w", str(empty), "--white-list-only"]) == 2
    assert f"the white list ({empty}) holds no titles" in _error_line(capsys, "build-entity-vocab")
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("Nowhere Land\nAtlantis\n")
    assert main(["build-entity-vocab", str(db), str(out), "-w", str(unknown), "--white-list-only"]) == 2
    line = _error_line(capsys, "build-entity-vocab")
    assert f"2 of 2 white-listed titles are not articles of {db} ('Nowhere Land', 'Atlantis')" in line
    assert not out.exists()
    unknown.write_text("Nowhere Land\nKyoto\n")
    with caplog.at_level("WARNING", logger="luke.wikipedia.entity_vocab_builder"):
        assert main(["build-entity-vocab", str(db), str(out), "-w", str(unknown), "--white-list-only"]) == 0
    assert "1 of 2 white-listed titles are not articles" in caplog.text
    assert len(EntityVocab.load(out)) == 5  # the specials and Kyoto


def test_pretraining_options_or_inputs_that_make_no_items(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokenizer = require_shared("tokenizers/roberta-base")
    specials_only = tmp_path / "specials.jsonl"
    EntityVocab.from_counts([]).save(specials_only)
    out = tmp_path / "ds"
    argv = ["build-pretraining-dataset", str(db), str(tokenizer), str(specials_only), str(out), "--no-progress"]
    for extra, expected in [
        (["--max-seq-length", "3"], "--min-sentence-length 5 is more than the 1 tokens an item holds"),
        (["--min-sentence-length", "1000"], "--min-sentence-length 1000 is more than the 510 tokens"),
        (["--skip-unk-entities"], "item(s) without an entity mention dropped (see --include-sentences-without"),
    ]:
        assert main([*argv, *extra]) == 2
        line = _error_line(capsys, "build-pretraining-dataset")
        assert "no items" in line and expected in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["specials.jsonl"]


_SIGTERM_SCRIPT = """
import os, signal, sys, time
from luke.cli import main
from luke.wikipedia import dump_db

def fill(conn, *args):
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)

dump_db._fill_database = fill
sys.exit(main(["build-dump-db", sys.argv[1], sys.argv[2], "--no-progress"]))
"""


def test_sigterm_removes_the_partial_output(tmp_path: Path) -> None:
    """``kill PID`` of a pipeline command ends it through the atomic_output clean-up (the temporary used
    to stay behind until the next run)."""
    import subprocess
    import sys

    out = tmp_path / "out" / "db.sqlite"
    out.parent.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _SIGTERM_SCRIPT, str(TINY), str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 143, proc.stderr
    assert "luke build-dump-db: terminated (SIGTERM)" in proc.stderr
    assert list(out.parent.iterdir()) == []
