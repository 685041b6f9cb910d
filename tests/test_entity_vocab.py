"""Tests for :mod:`luke.entity_vocab`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED_DATA, require_shared
from luke.entity_vocab import EntityVocab
from luke.errors import DataError

DATA = SHARED_DATA
FIXTURE = DATA / "luke_fixtures" / "enwiki_20181220_entvocab_100.tsv"


def _require(path: Path) -> Path:
    return require_shared(str(path.relative_to(SHARED_DATA)))


@pytest.fixture(scope="module")
def real_vocab() -> EntityVocab:
    return EntityVocab.load(_require(FIXTURE))


def test_real_tsv_fixture(real_vocab: EntityVocab) -> None:
    assert len(real_vocab) == 103
    assert (real_vocab.pad_id, real_vocab.unk_id, real_vocab.mask_id) == (0, 1, 2)
    assert real_vocab.mask2_id is None
    assert real_vocab["Race and ethnicity in the United States Census"] == 3
    assert real_vocab["United States"] == 4
    assert real_vocab.count(4) == 261500
    assert real_vocab.titles(5) == [("Association football", None)]
    assert "France" in real_vocab and "Frankreich" not in real_vocab
    assert real_vocab.get_id("Frankreich") is None
    assert real_vocab.get_id("Frankreich", default=1) == 1


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl", ".json"])
def test_round_trip_real_fixture(real_vocab: EntityVocab, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"vocab{suffix}"
    real_vocab.save(out)
    loaded = EntityVocab.load(out)
    assert [loaded.titles(i) for i in range(len(loaded))] == [real_vocab.titles(i) for i in range(103)]
    if suffix != ".json":  # the transformers format has no counts
        assert loaded == real_vocab
    if suffix == ".tsv":
        assert out.read_bytes() == FIXTURE.read_bytes()


def test_from_counts_contract() -> None:
    vocab = EntityVocab.from_counts([("Japan", 10), ("Tokyo", 5)], language="en")
    assert len(vocab) == 6
    assert (vocab.pad_id, vocab.unk_id, vocab.mask_id, vocab.mask2_id) == (0, 1, 2, 3)
    assert vocab.get_id("Japan", language="en") == 4
    assert vocab["Japan"] == 4  # unique title: language optional
    assert vocab.get_id("Japan", language="ja") is None
    assert vocab.get_id("[MASK]", language="ja") == 2  # specials have no language
    assert vocab.count(4) == 10 and vocab.count(0) == 0
    custom = EntityVocab.from_counts([("A", 1)], specials=("[MASK]", "[UNK]", "[PAD]", "[MASK2]"))
    assert (custom.mask_id, custom.unk_id, custom.pad_id, custom.mask2_id) == (0, 1, 2, 3)


def test_lite_vocab_specials_resolved_by_name(tmp_path: Path) -> None:
    path = tmp_path / "entity_vocab.json"
    path.write_text(json.dumps({"[MASK]": 0, "[UNK]": 1, "[PAD]": 2, "[MASK2]": 3}))
    vocab = EntityVocab.load(path)
    assert (vocab.mask_id, vocab.unk_id, vocab.pad_id, vocab.mask2_id) == (0, 1, 2, 3)


def test_multilingual_jsonl_and_mluke_json(tmp_path: Path) -> None:
    lines = [
        {"id": 0, "entities": [["[PAD]", None]], "count": 0},
        {"id": 1, "entities": [["[UNK]", None]], "count": 0},
        {"id": 2, "entities": [["[MASK]", "en"], ["[MASK]", "ja"]], "count": 0},
        {"id": 3, "entities": [["Japan", "en"], ["日本", "ja"]], "count": 30},
        {"id": 4, "entities": [["Tokyo", "en"], ["東京", "ja"], ["Tokyo", "de"]], "count": 9},
    ]
    src = tmp_path / "v.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    vocab = EntityVocab.load(src)
    assert len(vocab) == 5
    assert vocab.mask_id == 2 and vocab.mask2_id is None
    assert vocab.get_id("日本", language="ja") == 3
    assert vocab["Tokyo"] == 4 and vocab[("Tokyo", "de")] == 4
    assert vocab.titles(3) == [("Japan", "en"), ("日本", "ja")]
    assert vocab.count(4) == 9
    # JSONL round trip
    vocab.save(tmp_path / "w.jsonl")
    assert EntityVocab.load(tmp_path / "w.jsonl") == vocab
    # mLUKE transformers JSON: lang:title keys
    vocab.save(tmp_path / "entity_vocab.json")
    raw = json.loads((tmp_path / "entity_vocab.json").read_text(encoding="utf-8"))
    assert raw["en:Japan"] == 3 and raw["ja:日本"] == 3 and raw["[PAD]"] == 0 and raw["en:[MASK]"] == 2
    again = EntityVocab.load(tmp_path / "entity_vocab.json")
    assert again.get_id("東京", language="ja") == 4 and again.get_id("[MASK]", language="en") == 2
    # TSV cannot represent several titles per id
    with pytest.raises(ValueError, match="TSV"):
        vocab.save(tmp_path / "v.tsv")


def test_mluke_style_json_specials_without_prefix(tmp_path: Path) -> None:
    path = tmp_path / "entity_vocab.json"
    data = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "en:Star Wars: Episode IV": 3, "ja:日本": 4, "[MASK2]": 5}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    vocab = EntityVocab.load(path)
    assert vocab.get_id("Star Wars: Episode IV", language="en") == 3
    assert vocab.mask2_id == 5
    # a monolingual vocab whose titles contain colons is not mistaken for mLUKE
    mono = EntityVocab.from_dict({"[PAD]": 0, "Star Wars: Episode IV": 1, "Japan": 2})
    assert mono["Star Wars: Episode IV"] == 1


def test_ambiguous_title_needs_language() -> None:
    vocab = EntityVocab([(0, [("[PAD]", None)], 0), (1, [("Paris", "en")], 1), (2, [("Paris", "fr")], 1)])
    assert vocab.get_id("Paris") is None
    with pytest.raises(KeyError, match="languages"):
        vocab["Paris"]
    assert vocab.get_id("Paris", language="fr") == 2


def test_add_mask2() -> None:
    vocab = EntityVocab.from_counts([("A", 3)], specials=("[PAD]", "[UNK]", "[MASK]"))
    assert vocab.mask2_id is None
    assert vocab.add("[MASK2]") == 4
    assert vocab.mask2_id == 4
    with pytest.raises(ValueError, match="duplicate"):
        vocab.add("A")


def test_missing_special_raises() -> None:
    vocab = EntityVocab.from_counts([("A", 3)], specials=("[UNK]",))
    with pytest.raises(DataError, match=r"no special entity .\[PAD\]"):
        _ = vocab.pad_id


# ---------------------------------------------------------------------------------------------- errors
def test_tsv_errors(tmp_path: Path) -> None:
    p = tmp_path / "v.tsv"
    p.write_text("[PAD]\t0\nFrance\t5\nFrance\t3\n")
    with pytest.raises(ValueError, match=r"v\.tsv:3: duplicate title 'France'"):
        EntityVocab.load(p)
    p.write_text("[PAD]\t0\nFrance 5\n")
    with pytest.raises(ValueError, match=r"v\.tsv:2: expected 'title<TAB>count'"):
        EntityVocab.load(p)
    p.write_text("[PAD]\t0\nFrance\tmany\n")
    with pytest.raises(ValueError, match=r"v\.tsv:2: count 'many' is not an integer"):
        EntityVocab.load(p)
    p.write_text("[PAD]\t0\n\nFrance\t1\n")
    with pytest.raises(ValueError, match=r"v\.tsv:2: empty line"):
        EntityVocab.load(p)


def test_jsonl_errors(tmp_path: Path) -> None:
    p = tmp_path / "v.jsonl"
    p.write_text('{"id": 0, "entities": [["[PAD]", null]], "count": 0}\n{"id": 2, "entities": [["A", null]]}\n')
    with pytest.raises(ValueError, match="id 1 is missing"):
        EntityVocab.load(p)
    p.write_text('{"id": 0, "entities": [["[PAD]", null]], "count": 0}\n{"id": 1, "entities": [["[PAD]", null]]}\n')
    with pytest.raises(ValueError, match=r"v\.jsonl:2: duplicate title '\[PAD\]'"):
        EntityVocab.load(p)
    p.write_text('{"id": 0, "entities": [["[PAD]", null]], "count": 0}\n{"id": 1, "entities": [["A"]]}\n')
    with pytest.raises(ValueError, match=r"v\.jsonl:2: each entity must be a \[title, language\] pair"):
        EntityVocab.load(p)
    p.write_text('{"id": 0, "entities": [["[PAD]", null]], "count": 0}\n{"id": 1, \n')
    with pytest.raises(ValueError, match=r"v\.jsonl:2: invalid JSON"):
        EntityVocab.load(p)
    p.write_text('{"id": 0, "entities": [["[PAD]", null]]}\n{"id": 0, "entities": [["B", null]]}\n')
    with pytest.raises(ValueError, match=r"v\.jsonl:2: duplicate entity id 0"):
        EntityVocab.load(p)
    p.write_text('{"id": "zero", "entities": []}\n')
    with pytest.raises(ValueError, match=r"v\.jsonl:1: 'id' must be an integer"):
        EntityVocab.load(p)


def test_json_errors(tmp_path: Path) -> None:
    p = tmp_path / "entity_vocab.json"
    p.write_text('{"[PAD]": 0, "A": 1, "A": 2}')
    with pytest.raises(ValueError, match="duplicate title 'A'"):
        EntityVocab.load(p)
    p.write_text('{"[PAD]": 0, "A": 2}')
    with pytest.raises(ValueError, match="id 1 is missing"):
        EntityVocab.load(p)
    p.write_text('{"[PAD]": 0, "A": "1"}')
    with pytest.raises(ValueError, match="integer id"):
        EntityVocab.load(p)
    p.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        EntityVocab.load(p)
    with pytest.raises(ValueError, match="unknown entity vocabulary format"):
        EntityVocab.load(tmp_path / "vocab.txt")


def test_blank_titles_are_refused_with_file_and_line(tmp_path: Path) -> None:
    """Issue #18: a title of only whitespace is not a title (it was accepted and matched nothing)."""
    tsv = tmp_path / "v.tsv"
    tsv.write_text("[PAD]\t0\n   \t3\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{tsv}:2: entity id 1: title must be a non-empty string"):
        EntityVocab.load(tsv)
    jsonl = tmp_path / "v.jsonl"
    lines = [{"id": 0, "entities": [["[PAD]", None]], "count": 0}, {"id": 1, "entities": [["\t ", None]], "count": 0}]
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with pytest.raises(DataError, match=rf"{jsonl}:2: entity id 1: title must be a non-empty string"):
        EntityVocab.load(jsonl)
    with pytest.raises(DataError, match="not only whitespace"):
        EntityVocab.from_counts([(" ", 1)])


def test_negative_count_is_refused(tmp_path) -> None:
    path = tmp_path / "entity_vocab.tsv"
    path.write_text("[PAD]\t0\n[UNK]\t0\n[MASK]\t0\nKyoto\t-3\n")
    with pytest.raises(DataError, match=r"entity_vocab.tsv:4: entity id 3: count must be a non-negative integer"):
        EntityVocab.load(path)
