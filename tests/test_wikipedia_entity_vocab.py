"""Step 2 (build-entity-vocab): counts after redirects, article targets only, specials, contiguous ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from luke.cli import main
from luke.entity_vocab import EntityVocab
from luke.wikipedia.dump_db import DumpDB, build_dump_db
from luke.wikipedia.entity_vocab_builder import build_entity_vocab, count_entity_links

TINY = Path(__file__).parent / "fixtures" / "wikipedia" / "tiny-export-0.10.xml"
SPECIALS = ["[PAD]", "[UNK]", "[MASK]", "[MASK2]"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> DumpDB:
    out = tmp_path_factory.mktemp("db") / "tiny.sqlite"
    build_dump_db(TINY, out, progress=False)
    return DumpDB(out)


def test_counts_after_redirect_resolution(db: DumpDB) -> None:
    counts, stats = count_entity_links(db)
    # Tokyo: 2 direct links + 2 through the redirect "Tokio"; City/Park/Former capital are not articles.
    assert counts == {"Japan": 4, "Tokyo": 4, "East Asia": 2, "Kyoto": 2}
    assert (stats.links, stats.links_to_articles, stats.links_resolved_through_redirects) == (15, 12, 2)
    assert stats.links_dropped_not_an_article == 3


def test_specials_first_then_by_count_ids_contiguous(db: DumpDB) -> None:
    vocab, stats = build_entity_vocab(db, vocab_size=100)
    assert [vocab.titles(i)[0][0] for i in range(len(vocab))] == SPECIALS + ["Japan", "Tokyo", "East Asia", "Kyoto"]
    assert [vocab.count(i) for i in range(len(vocab))] == [0, 0, 0, 0, 4, 4, 2, 2]
    assert (vocab.pad_id, vocab.unk_id, vocab.mask_id, vocab.mask2_id) == (0, 1, 2, 3)
    assert stats.vocab_size == 8


def test_vocab_size_includes_specials_and_min_count_leaves_no_gap(db: DumpDB, tmp_path: Path) -> None:
    vocab, _ = build_entity_vocab(db, vocab_size=6)
    assert len(vocab) == 6 and "Tokyo" in vocab and "East Asia" not in vocab
    vocab, stats = build_entity_vocab(db, vocab_size=100, min_count=3)
    assert len(vocab) == 6 and stats.entities_below_min_count == 2
    vocab.save(tmp_path / "v.jsonl")
    ids = [json.loads(line)["id"] for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert ids == list(range(6))


def test_white_list_first_resolved_and_only(db: DumpDB) -> None:
    vocab, stats = build_entity_vocab(db, vocab_size=100, white_list=["Kyoto", "Tokio", "Nowhere"])
    assert [vocab.titles(i)[0][0] for i in range(4, len(vocab))] == ["Kyoto", "Tokyo", "Japan", "East Asia"]
    assert stats.white_list_missing == 1
    vocab, _ = build_entity_vocab(db, vocab_size=100, white_list=["Kyoto"], white_list_only=True)
    assert len(vocab) == 5


def test_invalid_sizes(db: DumpDB) -> None:
    with pytest.raises(ValueError, match="--vocab-size"):
        build_entity_vocab(db, vocab_size=4)
    with pytest.raises(ValueError, match="--min-count"):
        build_entity_vocab(db, vocab_size=10, min_count=0)


def test_cli_writes_loadable_jsonl_atomically(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path = tmp_path / "db.sqlite"
    build_dump_db(TINY, db_path, progress=False)
    white = tmp_path / "white.txt"
    white.write_text("# comment\nkyoto\n")
    out = tmp_path / "vocab.jsonl"
    argv = ["build-entity-vocab", str(db_path), str(out), "--vocab-size", "7", "-w", str(white)]
    assert main(argv) == 0
    assert "7 ids; links 15: 12 to articles (2 via redirects), 3 dropped" in capsys.readouterr().out
    vocab = EntityVocab.load(out)
    assert vocab["Kyoto"] == 4 and vocab["Japan"] == 5 and len(vocab) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite", "vocab.jsonl", "white.txt"]
    # a parent that is a file is refused; a missing parent folder is created (luke.files.atomic_output)
    assert main(["build-entity-vocab", str(db_path), str(white / "v.jsonl"), "--vocab-size", "9"]) == 2
    assert main(["build-entity-vocab", str(db_path), str(out), "-w", str(tmp_path / "missing.txt")]) == 2
