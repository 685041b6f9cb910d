"""``luke link`` and its Python API (:class:`luke.EntityLinker`, :func:`luke.link`): raw text -> mentions of a
mention database we write here -> candidates -> entity disambiguation with a tiny model whose answers are set
by construction (local and global differ), plain-text and JSON Lines input, standard input and output, and
the one-line errors (missing model, model without an entity head, bad mention database, bad input)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch

import luke
from luke.cli import main as cli_main
from luke.config import LukeConfig
from luke.errors import CheckpointError, ConfigError, DataError
from luke.finetuning.linking import EntityLinker, read_link_input
from luke.modeling import LukeForEntityClassification, LukeForEntityDisambiguation
from luke.tokenization import LukeTokenizer
from luke.wikipedia.mention_db import MentionCandidates
from test_entity_disambiguation import TEXT, _save_pretrained, _set_by_construction
from test_finetuning_training import make_tiny_bert

# TEXT = "the alpha met the gamma near the zeta river and the epsilon hill ."
LOCAL = ["Alpha", "Gamma", "Epsilon"]  # what the constructed weights answer (see _set_by_construction)
GLOBAL = ["Alpha", "Delta", "Epsilon"]  # Alpha and Epsilon fed back first turn gamma into Delta
MENTIONS = ["alpha", "gamma", "epsilon"]
HEADER = {"format": "luke-mention-db", "version": 1, "source": "test", "max_mention_words": 4}
ROWS = [  # sorted by mention, as build-mention-db writes them
    {"mention": "alpha", "link_count": 5, "doc_count": 5, "link_prob": 1.0, "candidates": [["Beta", 3], ["Alpha", 2]]},
    {"mention": "epsilon", "link_count": 10, "doc_count": 10, "link_prob": 1.0,
     "candidates": [["Epsilon", 9], ["Not In Vocab", 1]]},
    {"mention": "gamma", "link_count": 2, "doc_count": 4, "link_prob": 0.5, "candidates": [["Delta", 1], ["Gamma", 1]]},
    {"mention": "near", "link_count": 1, "doc_count": 1000, "link_prob": 0.001, "candidates": [["Beta", 1]]},
    {"mention": "zeta", "link_count": 3, "doc_count": 3, "link_prob": 1.0, "candidates": [["Zeta River", 3]]},
]  # fmt: skip


def _write_db(path: Path, rows=ROWS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in [HEADER, *rows]))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A LukeForEntityDisambiguation folder (+ tokenizer) with the weights of ``_set_by_construction``."""
    root = tmp_path_factory.mktemp("link")
    bert = make_tiny_bert(root / "bert", dropout=0.0, texts=(TEXT,))
    pretrained = _save_pretrained(root / "pretrained", bert)
    ed = LukeForEntityDisambiguation.from_pretrained(pretrained).eval()
    tok = LukeTokenizer.from_pretrained(pretrained)
    _set_by_construction(ed, tok)
    ed.save_pretrained(root / "ed")
    tok.save_pretrained(root / "ed")
    return root / "ed"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return _write_db(tmp_path_factory.mktemp("link_db") / "mentions.jsonl")


def _titles(record: dict) -> list[str]:
    return [e["title"] for e in record["entities"]]


# ------------------------------------------------------------------------------------------ the API


def test_api_links_the_titles_set_by_construction(model, db):
    local = EntityLinker.from_pretrained(model, db, inference="local", device="cpu")
    out = local(TEXT)
    assert out["text"] == TEXT and _titles(out) == LOCAL
    assert [e["mention"] for e in out["entities"]] == MENTIONS
    assert [(e["start"], e["end"]) for e in out["entities"]] == [(TEXT.index(w), TEXT.index(w) + len(w)) for w in
                                                                 MENTIONS]  # fmt: skip
    assert out["entities"][2]["score"] == pytest.approx(1.0)  # one candidate in the vocabulary
    assert all(0 < e["score"] <= 1 for e in out["entities"])
    # zeta: its only target is outside the entity vocabulary, so it is no mention; "near": link_prob too low
    assert local.mentions.stats["mentions_without_vocab_candidates"] == 1
    assert local.mentions.stats["candidates_out_of_vocab"] == 2
    assert local.counts == {"documents": 1, "mentions": 3, "linked": 3, "out_of_vocab_candidates": 0,
                            "unscorable": 0}  # fmt: skip

    glob = EntityLinker.from_pretrained(model, db)  # global is the default
    assert glob.inference == "global"
    many = glob([TEXT, {"id": "d2", "text": TEXT, "source": "x"}, "nothing to link here", TEXT], progress=False)
    assert [_titles(r) for r in many] == [GLOBAL, GLOBAL, [], GLOBAL]
    assert many[1]["id"] == "d2" and many[1]["source"] == "x" and many[2]["entities"] == []
    assert glob([]) == []

    # luke.link / luke.EntityLinker are the package's API
    assert luke.EntityLinker is EntityLinker
    assert _titles(luke.link([TEXT], model=model, mention_db=db, inference="local")[0]) == LOCAL


def test_link_probability_threshold_and_an_unfiltered_database(model, db, caplog):
    linker = EntityLinker.from_pretrained(model, db, inference="local", min_link_prob=0.6)
    assert _titles(linker(TEXT)) == ["Alpha", "Epsilon"]  # gamma's link probability is 0.5
    linker = EntityLinker.from_pretrained(model, db, inference="local", min_link_prob=0.0)
    assert [e["mention"] for e in linker(TEXT)["entities"]] == ["alpha", "gamma", "near", "epsilon"]

    # A database loaded without the vocabulary filter: zeta is detected, has no candidate the model knows,
    # and is left out (counted and logged).
    full = EntityLinker(linker.model, linker.tokenizer, MentionCandidates.from_file(db), inference="local")
    caplog.set_level("INFO", logger="luke.finetuning.linking")
    out = full(TEXT)
    assert _titles(out) == LOCAL
    assert full.counts["mentions"] == 4 and full.counts["linked"] == 3 and full.counts["out_of_vocab_candidates"] == 2
    assert "1 of 4 detected mention(s) left out" in caplog.text

    # only the best candidate kept: alpha -> Beta, gamma -> Delta (first by title on a tie)
    top1 = EntityLinker.from_pretrained(model, db, inference="local", max_candidates=1)
    assert _titles(top1(TEXT)) == ["Beta", "Delta", "Epsilon"]


def test_options_of_a_fine_tuned_folder_are_the_defaults(model, db, tmp_path):
    folder = tmp_path / "tuned"
    folder.mkdir()
    for f in model.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "luke_task.json").write_text(json.dumps({"task": "entity_disambiguation",
                                                       "options": {"inference": "local"}}))  # fmt: skip
    assert _titles(EntityLinker.from_pretrained(folder, db)(TEXT)) == LOCAL
    assert _titles(EntityLinker.from_pretrained(folder, db, inference="global")(TEXT)) == GLOBAL


def test_bf16_links_under_autocast(model, db, tmp_path, monkeypatch, caplog):
    """mixed_precision="bf16" (API and --mixed-precision) runs the windows under bf16 autocast, says what
    bf16 is on this CPU in the log, and finds the same mentions (gamma's two candidates score almost alike in
    this constructed model, so bf16 rounding may pick either; the clear ones must stay)."""
    from luke.finetuning import ed_inference

    seen = []
    original = ed_inference.run_windows

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return original(*args, **kwargs)

    monkeypatch.setattr(ed_inference, "run_windows", spy)
    caplog.set_level("INFO", logger="luke.training")
    linker = EntityLinker.from_pretrained(model, db, inference="local", mixed_precision="bf16")
    out = linker(TEXT)
    assert [e["mention"] for e in out["entities"]] == MENTIONS and seen == [True]
    assert _titles(out)[::2] == LOCAL[::2] and _titles(out)[1] in ("Gamma", "Delta")
    assert "bf16 on CPU" in caplog.text
    assert _titles(EntityLinker.from_pretrained(model, db, inference="local")(TEXT)) == LOCAL and seen[-1] is False
    out_file = tmp_path / "out.jsonl"
    src = tmp_path / "in.txt"
    src.write_text(TEXT + "\n")
    args = ["link", "--model", str(model), "--mention-db", str(db), "--input", str(src), "--output", str(out_file)]
    assert cli_main([*args, "--no-progress", "--inference", "local", "--mixed-precision", "bf16"]) == 0
    assert _titles(_lines(out_file.read_text())[0])[::2] == LOCAL[::2] and seen[-1] is True
    with pytest.raises(ConfigError, match="mixed_precision"):
        EntityLinker.from_pretrained(model, db, mixed_precision="fp8")


def test_api_errors(model, db, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        EntityLinker.from_pretrained(tmp_path / "none", db)
    with pytest.raises(DataError, match="no such mention database"):
        EntityLinker.from_pretrained(model, tmp_path / "none.jsonl")
    with pytest.raises(ConfigError, match="inference"):
        EntityLinker.from_pretrained(model, db, inference="both")
    with pytest.raises(ConfigError, match="device"):
        EntityLinker.from_pretrained(model, db, device="tpu")
    with pytest.raises(ConfigError, match="min_link_prob"):
        EntityLinker.from_pretrained(model, db, min_link_prob=2)
    other = _write_db(tmp_path / "other.jsonl", [ROWS[-1]])
    with pytest.raises(DataError, match=r"other.jsonl: none of its 1 mention\(s\) has a candidate"):
        EntityLinker.from_pretrained(model, other)
    linker = EntityLinker.from_pretrained(model, db)
    with pytest.raises(DataError, match=r"^input:2: missing field 'text'"):
        linker([TEXT, {"id": "x"}])
    with pytest.raises(DataError, match=r"^input:1: expected a text"):
        linker(None)


# ------------------------------------------------------------------------------------------ the command


def _lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines()]


def test_command_plain_lines_and_json_lines(model, db, tmp_path, capsys):
    plain = tmp_path / "in.txt"
    plain.write_text(f"{TEXT}\n\n   \nno entity here\n")
    out = tmp_path / "out.jsonl"
    base = ["link", "--model", str(model), "--mention-db", str(db), "--no-progress"]
    assert cli_main([*base, "--input", str(plain), "--output", str(out), "--inference", "local"]) == 0
    recs = _lines(out.read_text())
    assert [r["id"] for r in recs] == ["line-1", "line-4"] and recs[0]["text"] == TEXT
    assert _titles(recs[0]) == LOCAL and recs[1]["entities"] == []

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 7, "text": TEXT, "meta": {"a": 1}}) + "\n\n" + json.dumps({"text": TEXT}) + "\n")
    assert cli_main([*base, "--input", str(src), "--output", str(out)]) == 0  # global; overwrites the output
    recs = _lines(out.read_text())
    assert recs[0]["id"] == 7 and recs[0]["meta"] == {"a": 1} and "id" not in recs[1]
    assert [_titles(r) for r in recs] == [GLOBAL, GLOBAL]
    assert read_link_input(src)[1] == "jsonl" and read_link_input(plain)[1] == "text"


def test_command_reads_stdin_and_writes_stdout(model, db, monkeypatch, capsys):
    data = (json.dumps({"id": "s", "text": TEXT}) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    base = ["link", "--model", str(model), "--mention-db", str(db), "--no-progress", "--inference", "local"]
    assert cli_main([*base, "--input", "-", "--output", "-"]) == 0
    (rec,) = _lines(capsys.readouterr().out)
    assert rec["id"] == "s" and _titles(rec) == LOCAL
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"{TEXT}\n".encode()), encoding="utf-8"))
    assert cli_main(base) == 0  # the defaults are - and -
    (rec,) = _lines(capsys.readouterr().out)
    assert rec["id"] == "line-1" and _titles(rec) == LOCAL


def _one_line_error(capsys, *parts: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("luke link: error: ") and "\n" not in err, err
    for part in parts:
        assert part in err, err


def test_command_errors(model, db, tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": TEXT}) + "\n")
    base = ["link", "--mention-db", str(db), "--input", str(src), "--no-progress"]
    assert cli_main([*base, "--model", str(tmp_path / "no-model")]) == 2
    _one_line_error(capsys, "no-model", "does not exist")

    # a model without a masked-entity head (an entity-classification model), and a -lite style table
    config = LukeConfig.from_pretrained(model)
    config.id2label = {0: "a", 1: "b"}
    LukeForEntityClassification(config).save_pretrained(tmp_path / "cls")
    LukeTokenizer.from_pretrained(model).save_pretrained(tmp_path / "cls")
    assert cli_main([*base, "--model", str(tmp_path / "cls")]) == 2
    _one_line_error(capsys, "no masked-entity head", "LukeForEntityClassification")

    # a bad mention database line, a missing database
    bad_db = tmp_path / "bad_db.jsonl"
    bad_db.write_text(json.dumps(HEADER) + "\n" + json.dumps(ROWS[0]) + "\n" + '{"mention": "x", "link_count": 0}\n')
    assert cli_main(["link", "--model", str(model), "--mention-db", str(bad_db), "--input", str(src)]) == 2
    _one_line_error(capsys, f"{bad_db}:3:", "link_count")
    assert (
        cli_main(["link", "--model", str(model), "--mention-db", str(tmp_path / "no.jsonl"), "--input", str(src)]) == 2
    )
    _one_line_error(capsys, "no.jsonl", "no such mention database")

    # bad input lines: JSON Lines (told by the first line) with a broken or text-less line, bad UTF-8, stdin
    ok = ["link", "--model", str(model), "--mention-db", str(db), "--no-progress"]
    for content, where, what in (
        (json.dumps({"text": "a"}) + "\n{oops\n", ":2:", "not valid JSON"),
        (json.dumps({"text": "a"}) + "\n\n" + json.dumps({"id": 1}) + "\n", ":3:", "missing field 'text'"),
        (json.dumps({"text": "a"}) + "\n[1]\n", ":2:", "expected a JSON object"),
        (json.dumps({"text": 5}) + "\n", ":1:", "'text' must be a string"),
    ):
        src.write_text(content)
        assert cli_main([*ok, "--input", str(src)]) == 2
        _one_line_error(capsys, f"{src}{where}", what)
    src.write_bytes(b"fine\n\xff\xfe\n")
    assert cli_main([*ok, "--input", str(src)]) == 2
    _one_line_error(capsys, f"{src}:2:", "UTF-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"text": "a"}\n{"id": 2}\n'), encoding="utf-8"))
    assert cli_main(ok) == 2
    _one_line_error(capsys, "<stdin>:2:", "missing field 'text'")

    # missing input file, a folder as output, the output over an input, a bad option
    assert cli_main([*ok, "--input", str(tmp_path / "none.txt")]) == 2
    _one_line_error(capsys, "none.txt", "no such file")
    src.write_text(TEXT + "\n")
    (tmp_path / "folder").mkdir()
    assert cli_main([*ok, "--input", str(src), "--output", str(tmp_path / "folder")]) == 2
    _one_line_error(capsys, "is a folder")
    assert cli_main([*ok, "--input", str(src), "--output", str(src)]) == 2
    _one_line_error(capsys, "would replace the input")
    assert cli_main([*ok, "--input", str(src), "--min-link-prob", "1.5"]) == 2
    _one_line_error(capsys, "--min-link-prob")
    assert cli_main([*ok, "--input", str(src), "--batch-size", "0"]) == 2
    _one_line_error(capsys, "--batch-size")
