"""Step 3 (build-pretraining-dataset) and data-stats: alignment, packing, determinism, errors, round trip."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import require_shared
from luke.cli import main
from luke.entity_vocab import EntityVocab
from luke.wikipedia.dump_db import build_dump_db
from luke.wikipedia.entity_vocab_builder import build_entity_vocab
from luke.wikipedia.pretraining_dataset import (
    DatasetOptions,
    TokenizerError,
    _segments,
    build_pretraining_dataset,
    dataset_stats,
    load_tokenizer,
)
from luke.wikipedia.sentence_splitter import get_sentence_splitter, utf16_to_codepoint_offsets

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = Path(__file__).parent / "fixtures" / "wikipedia" / "tiny-export-0.10.xml"


def shared(relative: str) -> Path:
    """A file under shared/data: skipped locally when absent, a failure under CI."""
    return require_shared(relative)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(dump db, roberta-base tokenizer folder, entity vocab) for the tiny fixture dump."""
    tmp = tmp_path_factory.mktemp("inputs")
    build_dump_db(TINY, tmp / "db.sqlite", progress=False)
    from luke.wikipedia.dump_db import DumpDB

    vocab, _ = build_entity_vocab(DumpDB(tmp / "db.sqlite"), vocab_size=100)
    vocab.save(tmp / "vocab.jsonl")
    return tmp / "db.sqlite", shared("tokenizers/roberta-base"), tmp / "vocab.jsonl"


def _rows(out: Path) -> list[dict]:
    import datasets

    return list(datasets.load_from_disk(str(out)))


def _dir_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_segments_cut_at_links_with_prefix_spaces() -> None:
    text = "Studio Ousia (SO) developed AI in Tokyo."
    links = [(5, 0, 12), (6, 14, 16), (7, 28, 30)]
    segments, mentions = _segments(text, 0, len(text), links)
    assert segments == [" Studio Ousia", " (", "SO", ") developed", " AI", " in Tokyo."]
    assert mentions == [(5, 0), (6, 2), (7, 4)]


def test_items_decode_to_anchor_texts(inputs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    db, tokenizer_dir, vocab_path = inputs
    out = tmp_path / "ds"
    options = DatasetOptions(max_seq_length=40, seed=3)
    meta = build_pretraining_dataset(db, tokenizer_dir, vocab_path, out, options, progress=False)
    tokenizer = load_tokenizer(out / "tokenizer")
    vocab = EntityVocab.load(out / "entity_vocab.jsonl")
    rows = _rows(out)
    assert len(rows) == meta["number_of_items"] == 5
    decoded = {}
    for row in rows:
        assert 5 <= len(row["word_ids"]) <= 38
        assert len(row["entity_ids"]) == len(row["entity_position_ids"]) >= 1
        for entity_id, positions in zip(row["entity_ids"], row["entity_position_ids"], strict=True):
            assert positions == list(range(positions[0], positions[-1] + 1))
            anchor = tokenizer.decode([row["word_ids"][i] for i in positions]).strip()
            decoded.setdefault(row["page_id"], []).append((vocab.titles(entity_id)[0][0], anchor))
    assert decoded[13] == [("Japan", "Japan"), ("Japan", "Japan"), ("Tokyo", "Tokyo")]
    assert decoded[12] == [("East Asia", "East Asia"), ("Tokyo", "Tokio"), ("Kyoto", "Kyoto"), ("Tokyo", "Tokyo")]
    assert decoded[10][:4] == [
        ("Japan", "the State of Japan"),
        ("[UNK]", "cities"),
        ("East Asia", "East Asia"),
        ("[UNK]", "parks"),
    ]
    assert ("Tokyo", "Edo") in decoded[10]
    text = tokenizer.decode(next(r for r in rows if r["page_id"] == 12)["word_ids"])
    assert text == (
        " Japan is an island country in East Asia. Its capital is Tokio and Kyoto was the capital before."
        " Japan has a population of about 125 million. Its largest city is Tokyo."
    )
    page_entity = {r["page_id"]: r["page_entity_id"] for r in rows}
    assert page_entity[12] == vocab["Japan"] and page_entity[13] == vocab["Kyoto"]
    stats = dataset_stats(out)
    assert stats["items"] == 5 and stats["entity_mentions"] == 15 and stats["unk_mentions"] == 3
    assert stats["tokens"] == sum(len(r["word_ids"]) for r in rows)
    assert stats["entity_coverage"] == pytest.approx(12 / 15)


def test_skip_unk_limits_and_mention_truncation(inputs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    db, tokenizer_dir, vocab_path = inputs
    options = DatasetOptions(max_seq_length=20, max_entity_length=2, max_mention_length=2, include_unk_entities=False)
    build_pretraining_dataset(db, tokenizer_dir, vocab_path, tmp_path / "ds", options, progress=False)
    rows = _rows(tmp_path / "ds")
    assert rows
    for row in rows:
        assert len(row["word_ids"]) <= 18 and 1 <= len(row["entity_ids"]) <= 2
        assert 1 not in row["entity_ids"]  # [UNK]
        assert all(1 <= len(p) <= 2 for p in row["entity_position_ids"])
    assert any(len(p) == 2 for r in rows for p in r["entity_position_ids"])


def test_byte_identical_across_worker_counts_and_seed_changes_order(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    db, tokenizer_dir, vocab_path = inputs
    options = DatasetOptions(max_seq_length=40, seed=7)
    build_pretraining_dataset(db, tokenizer_dir, vocab_path, tmp_path / "w1", options, progress=False)
    build_pretraining_dataset(
        db, tokenizer_dir, vocab_path, tmp_path / "w2", options, num_workers=2, chunk_size=1, progress=False
    )
    assert _dir_bytes(tmp_path / "w1") == _dir_bytes(tmp_path / "w2")
    orders = set()
    for seed in range(4):
        out = tmp_path / f"s{seed}"
        build_pretraining_dataset(
            db, tokenizer_dir, vocab_path, out, DatasetOptions(max_seq_length=40, seed=seed), progress=False
        )
        orders.add(tuple(r["page_id"] for r in _rows(out)))
    assert len(orders) > 1


def test_bert_wordpiece_vocab_file(inputs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    db, _, vocab_path = inputs
    vocab_file = shared("tokenizers/bert/bert-base-uncased-vocab.txt")
    build_pretraining_dataset(db, vocab_file, vocab_path, tmp_path / "ds", progress=False)
    tokenizer = load_tokenizer(tmp_path / "ds" / "tokenizer")
    row = next(r for r in _rows(tmp_path / "ds") if r["page_id"] == 13)
    assert (
        tokenizer.decode(row["word_ids"])
        == "kyoto is a city in japan. it was the capital of japan until tokyo took over."
    )
    anchors = [tokenizer.decode([row["word_ids"][i] for i in p]) for p in row["entity_position_ids"]]
    assert anchors == ["japan", "japan", "tokyo"]


def test_tokenizer_folder_errors(tmp_path: Path) -> None:
    roberta = shared("tokenizers/roberta-base")
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(roberta / "vocab.json", broken / "vocab.json")
    with pytest.raises(TokenizerError, match="missing merges.txt"):
        load_tokenizer(broken)
    with pytest.raises(TokenizerError, match="not found"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(TokenizerError, match=r"pass the file itself"):
        load_tokenizer(shared("tokenizers/bert"))


def test_bad_inputs_leave_no_output(inputs: tuple[Path, Path, Path], tmp_path: Path, capsys) -> None:
    db, tokenizer_dir, vocab_path = inputs
    empty_tok = tmp_path / "tok"
    empty_tok.mkdir()
    out = tmp_path / "ds"
    assert main(["build-pretraining-dataset", str(db), str(empty_tok), str(vocab_path), str(out)]) == 2
    assert (
        "no tokenizer.json, sentencepiece.bpe.model, vocab.json + merges.txt or vocab.txt found"
        in capsys.readouterr().err
    )
    assert main(["build-pretraining-dataset", str(db), str(tokenizer_dir), str(tmp_path / "v.jsonl"), str(out)]) == 2
    assert "entity vocabulary not found" in capsys.readouterr().err
    argv = ["build-pretraining-dataset", str(db), str(tokenizer_dir), str(vocab_path), str(out)]
    assert main([*argv, "--max-seq-length", "2"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
    out.mkdir()
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err


def test_round_trip_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokenizer_dir = shared("tokenizers/roberta-base")
    db, vocab, out = tmp_path / "db.sqlite", tmp_path / "vocab.jsonl", tmp_path / "ds"
    assert main(["build-dump-db", str(TINY), str(db), "--num-workers", "2", "--no-progress"]) == 0
    assert main(["build-entity-vocab", str(db), str(vocab), "--vocab-size", "1000"]) == 0
    argv = ["build-pretraining-dataset", str(db), str(tokenizer_dir), str(vocab), str(out), "--no-progress"]
    assert main([*argv, "--max-seq-length", "512", "--seed", "1", "--num-workers", "2"]) == 0
    capsys.readouterr()
    assert main(["data-stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["items"] == 4 and stats["pages"] == 4 and stats["entity_mentions"] == 15
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["arguments"]["seed"] == 1 and meta["entity_vocab"]["size"] == 8
    assert meta["tokenizer"]["class"] == "TokenizersBackend" and meta["word_ids_have_special_tokens"] is False
    assert main(["data-stats", str(out)]) == 0
    assert "entity coverage     80.00% of mentions" in capsys.readouterr().out


def test_pysbd_spans_and_utf16_table() -> None:
    split = get_sentence_splitter("pysbd")
    text = "Mr. Smith went to Washington D.C. yesterday. He saw 😀 the U.S. president.  Yes."
    assert [text[a:b] for a, b in split(text)] == [
        "Mr. Smith went to Washington D.C. yesterday.",
        "He saw 😀 the U.S. president.",
        "Yes.",
    ]
    assert utf16_to_codepoint_offsets("a😀b") == [0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown sentence splitter"):
        get_sentence_splitter("opennlp")


def test_real_sample_dump_end_to_end(tmp_path: Path) -> None:
    dump = shared("wikipedia/enwiki-pages-articles-sample.xml.bz2")
    tokenizer_dir = shared("tokenizers/roberta-base")
    build_dump_db(dump, tmp_path / "db.sqlite", progress=False)
    from luke.wikipedia.dump_db import DumpDB

    vocab, _ = build_entity_vocab(DumpDB(tmp_path / "db.sqlite"), vocab_size=1000)
    vocab.save(tmp_path / "v.jsonl")
    build_pretraining_dataset(
        tmp_path / "db.sqlite", tokenizer_dir, tmp_path / "v.jsonl", tmp_path / "ds", progress=False
    )
    stats = dataset_stats(tmp_path / "ds")
    assert stats["items"] > 5 and stats["entity_mentions"] > 50
    tokenizer = load_tokenizer(tokenizer_dir)
    for row in _rows(tmp_path / "ds"):
        assert len(row["word_ids"]) <= 510
        for positions in row["entity_position_ids"]:
            assert tokenizer.decode([row["word_ids"][i] for i in positions]).strip()


def test_saved_padding_in_tokenizer_json_is_ignored(inputs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """The real MiniLM tokenizer.json pads every encoding to 128 tokens; the builder must encode pieces
    as they are (a regression: items used to fill up with [PAD] ids and short budgets produced nothing)."""
    from conftest import minilm_folder

    db, _, vocab_path = inputs
    folder = minilm_folder()
    options = DatasetOptions(max_seq_length=64, include_sentences_without_entities=True)
    build_pretraining_dataset(db, folder, vocab_path, tmp_path / "ds", options, progress=False)
    rows = _rows(tmp_path / "ds")
    assert rows
    pad_id = 0  # [PAD] in the BERT uncased vocabulary
    assert all(pad_id not in row["word_ids"] for row in rows)


def _sentencepiece_on(texts: list[str]) -> bytes:
    """A tiny SentencePiece unigram model in XLM-R's layout (<unk>=0, <s>=1, </s>=2) trained on ``texts``."""
    import io

    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts * 5), model_writer=out, vocab_size=120, model_type="unigram",
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    return out.getvalue()


def test_sentencepiece_repo_gives_luke_tokenizer_fairseq_ids(inputs, tmp_path, hf_cache, capsys) -> None:
    """An mLUKE-style Hub repo (sentencepiece.bpe.model, MLukeTokenizer config) builds a dataset whose word
    ids are the fairseq ids LukeTokenizer gives (SentencePiece id + 1), not the raw SentencePiece ids."""
    import sentencepiece as spm

    from luke.tokenization import LukeTokenizer
    from luke.wikipedia.dump_db import DumpDB
    from test_mluke_tokenizer import CONFIG, ENTITY_VOCAB, write_folder

    db, _, vocab_path = inputs
    texts = [p.text for title in DumpDB(db).titles() for p in DumpDB(db).get_paragraphs(title)]
    model = _sentencepiece_on(texts)
    hf_cache.add("org/mluke-tiny", write_folder(tmp_path / "mluke", model, config=CONFIG, vocab=ENTITY_VOCAB))
    ours = LukeTokenizer.from_pretrained("org/mluke-tiny")
    raw = spm.SentencePieceProcessor(model_proto=model)
    out = tmp_path / "ds"
    args = ["build-pretraining-dataset", str(db), "org/mluke-tiny", str(vocab_path), str(out), "--no-progress"]
    assert main(args) == 0, capsys.readouterr().err
    built = load_tokenizer(out / "tokenizer")
    for text in texts:
        want = [i + 1 for i in raw.encode(text)]
        assert ours.backend_tokenizer.encode(text, add_special_tokens=False).ids == want
        assert built(text, add_special_tokens=False)["input_ids"] == want
    rows = _rows(out)
    row = next(r for r in rows if r["page_id"] == 13)
    first = ours.backend_tokenizer.encode("Kyoto is a city in", add_special_tokens=False).ids  # the first segment
    assert row["word_ids"][: len(first)] == first == [i + 1 for i in raw.encode("Kyoto is a city in")]
    for row in rows:
        for positions in row["entity_position_ids"]:
            assert ours.decode([row["word_ids"][i] for i in positions]).strip()
    assert max(i for r in rows for i in r["word_ids"]) < len(ours) - 2  # no <ent>/<ent2>, no raw ids past <mask>
    # A segment glued to a link ("[[Tokyo]].") has no word-start piece of its own: the ids are those of the
    # whole text, not "▁Tokyo ▁ ." (SentencePiece puts "▁" before every text it encodes).
    row = next(r for r in rows if raw.decode([i - 1 for i in r["word_ids"]]).endswith("largest city is Tokyo."))
    assert [raw.id_to_piece(i - 1) for i in row["word_ids"][-2:]] == ["▁Tokyo", "."]  # page 12; "Tokyo" is a link
    for row in rows:
        whole = raw.encode(raw.decode([i - 1 for i in row["word_ids"]]))
        assert row["word_ids"] == [i + 1 for i in whole]


def test_tokenizer_errors_name_the_repo_id(inputs, tmp_path, hf_cache, capsys) -> None:
    db, _, vocab_path = inputs
    snapshot = hf_cache.add("org/no-tokenizer", {"config.json": "{}"})
    args = ["build-pretraining-dataset", str(db), "org/no-tokenizer", str(vocab_path), str(tmp_path / "ds")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("luke build-pretraining-dataset: error: org/no-tokenizer: no tokenizer.json"), err
    assert str(snapshot) not in err and len(err.splitlines()) == 1
