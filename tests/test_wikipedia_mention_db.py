"""Mention database (anchor counts, document counts, link probability) and the longest-match detector.

Expected values are counted by hand from the fixtures (the page texts are quoted next to the numbers)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from conftest import read_mention_db_records, require_shared, write_xml_dump
from luke.cli import main
from luke.entity_vocab import EntityVocab
from luke.errors import DataError, OutputError
from luke.wikipedia.dump_db import DumpDB, build_dump_db
from luke.wikipedia.mention_db import MentionDetector, build_mention_db, normalize_mention, word_spans

TINY = Path(__file__).parent / "fixtures" / "wikipedia" / "tiny-export-0.10.xml"

# Ambiguous anchors: "Paris" links to Paris (4x) and Paris, Texas (2x).
PARIS_PAGES = {
    1: ("Paris", "'''Paris''' is the capital of [[France]]."),
    2: ("Paris, Texas", "'''Paris, Texas''' is a city. It is not [[Paris]] in [[France]]."),
    3: ("France", "'''France''' has [[Paris]] as capital. A film is set in [[Paris, Texas|Paris]]. "
                  "[[Paris]] and [[Paree]]."),
    4: ("Paree", None),  # redirect to Paris
    5: ("Texas", "'''Texas''' includes [[Paris, Texas|Paris]] and [[Paris, Texas]]."),
    6: ("Seine", "The Seine flows through Paris and pre[[France]]."),
    7: ("Louvre", "The Louvre is in [[Paris|PARÍS]]."),
    8: ("Opera", "An opera house in Paris, near the [[Palais Garnier]]."),
    9: ("Cafe", "A Parisian café."),
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "tiny.sqlite"
    build_dump_db(TINY, out, progress=False)
    return out


@pytest.fixture(scope="module")
def paris_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paris")
    out = folder / "paris.sqlite"
    build_dump_db(write_xml_dump(folder / "paris.xml", PARIS_PAGES), out, progress=False)
    return out


@pytest.fixture(scope="module")
def paris_mdb(paris_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("paris-mdb") / "mentions.jsonl"
    build_mention_db(paris_db, out, progress=False)
    return out


# ------------------------------------------------------------------------------------- words / normalising


def test_normalize_mention() -> None:
    assert normalize_mention("  Beyoncé\t KNOWLES\n") == "beyonce knowles"
    assert normalize_mention("Zürich") == normalize_mention("ZURICH") == "zurich"
    assert normalize_mention("Straße") == "strasse"
    assert normalize_mention("ﬁnance") == "finance"  # NFKD compatibility unfolding
    assert normalize_mention("Ａｂｃ") == "abc"  # full-width letters
    assert normalize_mention("東京") == "東京"
    assert normalize_mention(" \t ") == ""


def test_word_spans_split_punctuation_keep_marks() -> None:
    text = "Tokyo's 2nd park-land, (東京都) 😀 e\u0301te!"
    words = [text[s:e] for s, e in word_spans(text)]
    assert words == [
        "Tokyo",
        "'",
        "s",
        "2nd",
        "park",
        "-",
        "land",
        ",",
        "(",
        "東",
        "京",
        "都",
        ")",
        "😀",
        "e\u0301te",
        "!",
    ]
    assert word_spans("") == [] and word_spans("  \n ") == []
    assert word_spans("a_b") == [(0, 1), (1, 2), (2, 3)]


# --------------------------------------------------------------------------------------------- builder


def test_tiny_fixture_counts(tiny_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    stats = build_mention_db(tiny_db, out, progress=False)
    header, records = read_mention_db_records(out)
    assert header == {"format": "luke-mention-db", "version": 1, "source": "tiny.sqlite", "max_mention_words": 20}
    # The 12 links to articles (City, Park and Former capital are not articles of the fixture).
    assert (stats["links"], stats["links_to_articles"], stats["links_dropped_not_an_article"]) == (15, 12, 3)
    assert stats["links_resolved_through_redirects"] == 2 and stats["mentions"] == 7 and stats["pages"] == 4
    assert sorted(records) == ["east asia", "edo", "japan", "kyoto", "the state of japan", "tokio", "tokyo"]
    # "Japan" is linked 3 times (twice on Kyoto, once on East Asia) and occurs in all 4 articles
    # (Tokyo: "the State of Japan", Japan, Kyoto, East Asia).
    assert records["japan"] == {
        "mention": "japan",
        "link_count": 3,
        "doc_count": 4,
        "link_prob": 0.75,
        "candidates": [["Japan", 3]],
    }
    # "Tokyo": linked on Japan and Kyoto; occurs on Tokyo ("Tokyo (東京) is"), Japan, Kyoto, not East Asia.
    assert (records["tokyo"]["link_count"], records["tokyo"]["doc_count"]) == (2, 3)
    assert records["tokyo"]["link_prob"] == pytest.approx(2 / 3)
    # "East Asia": linked on Tokyo and Japan, occurs also on East Asia itself.
    assert (records["east asia"]["link_count"], records["east asia"]["doc_count"]) == (2, 3)
    # Redirects are resolved: [[Tokio|Edo]] and [[Tokio]] both count for Tokyo.
    assert records["edo"]["candidates"] == [["Tokyo", 1]] and records["edo"]["link_prob"] == 1.0
    assert records["tokio"]["candidates"] == [["Tokyo", 1]]
    assert records["the state of japan"]["candidates"] == [["Japan", 1]]
    assert "cities" not in records and "the old capital" not in records  # targets are not articles
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # no temporary file left


def test_ambiguous_counts_whole_words_and_linked_articles(paris_mdb: Path) -> None:
    _, records = read_mention_db_records(paris_mdb)
    paris = records["paris"]
    # 6 links (France 3, Paris, Texas 1, Texas 1, Louvre "PARÍS" 1); occurs in 7 articles (not in Cafe's
    # "Parisian"), so link_prob = 6/7; candidates by descending count.
    assert paris["candidates"] == [["Paris", 4], ["Paris, Texas", 2]]
    assert (paris["link_count"], paris["doc_count"]) == (6, 7)
    assert paris["link_prob"] == pytest.approx(6 / 7)
    # "France": linked on Paris, Paris, Texas and Seine, where it is written "preFrance" (not a whole word,
    # but an article that links a mention contains it); occurs in France too.
    assert (records["france"]["link_count"], records["france"]["doc_count"]) == (3, 4)
    # Three words ("paris", ",", "texas"); in the Paris, Texas and Texas articles.
    assert (records["paris, texas"]["link_count"], records["paris, texas"]["doc_count"]) == (1, 2)
    assert records["paree"]["candidates"] == [["Paris", 1]]  # through the redirect
    assert "palais garnier" not in records  # not an article
    assert list(records) == sorted(records)


def test_max_mention_words_and_min_link_count(paris_db: Path, tmp_path: Path) -> None:
    stats = build_mention_db(paris_db, tmp_path / "a.jsonl", max_mention_words=2, min_link_count=2, progress=False)
    header, records = read_mention_db_records(tmp_path / "a.jsonl")
    assert header["max_mention_words"] == 2
    assert sorted(records) == ["france", "paris"]  # "paree" is linked once, "paris, texas" has 3 words
    assert stats["links_dropped_too_long"] == 1 and stats["mentions_below_min_link_count"] == 1
    with pytest.raises(ValueError, match="max_mention_words"):
        build_mention_db(paris_db, tmp_path / "b.jsonl", max_mention_words=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        build_mention_db(paris_db, tmp_path / "file" / "b.jsonl", progress=False)


# ------------------------------------------------------------------------------------ loading / filtering


def test_from_mention_db_drops_ambiguous_and_rare(paris_mdb: Path) -> None:
    detector = MentionDetector.from_file(paris_mdb)
    assert dict(detector.items()) == {"france": "France", "paree": "Paris", "paris, texas": "Paris, Texas"}
    assert detector.max_mention_words == 20
    # Paris has 4 of 6 links: kept once min_prior <= 2/3.
    assert MentionDetector.from_file(paris_mdb, min_prior=0.66).get("PARIS") == "Paris"
    assert "paris" not in MentionDetector.from_file(paris_mdb, min_prior=0.67)
    # link_prob: paree 1.0, paris 6/7, france 0.75, "paris, texas" 0.5.
    assert dict(MentionDetector.from_file(paris_mdb, min_link_prob=0.8, min_prior=0.5).items()) == {
        "paree": "Paris",
        "paris": "Paris",
    }
    assert len(MentionDetector.from_file(paris_mdb, min_link_prob=0.76)) == 1


def test_from_mention_db_entity_vocab_filter(paris_mdb: Path) -> None:
    vocab = EntityVocab.from_counts([("France", 3), ("Paris", 2)])
    detector = MentionDetector.from_file(paris_mdb, entity_vocab=vocab)
    assert dict(detector.items()) == {"france": "France", "paree": "Paris"}
    text = "Paris, Texas is far from France."
    assert detector.detect(text) == [(25, 31, "France")]
    assert MentionDetector.from_file(paris_mdb).detect(text) == [(0, 12, "Paris, Texas"), (25, 31, "France")]


def test_tsv_json_dict_and_save_round_trip(tmp_path: Path) -> None:
    tsv = tmp_path / "dict.tsv"
    tsv.write_text("\ufeffAspirin\tAspirin\n\nacetylsalicylic acid\tAspirin\nHead ache \t Headache\n", encoding="utf-8")
    detector = MentionDetector.from_file(tsv)
    assert dict(detector.items()) == {"aspirin": "Aspirin", "acetylsalicylic acid": "Aspirin", "head ache": "Headache"}
    obj = tmp_path / "dict.json"
    obj.write_text(json.dumps({"Aspirin": "Aspirin", "Head  Ache": "Headache"}, indent=2), encoding="utf-8")
    assert dict(MentionDetector.from_file(obj).items()) == {"aspirin": "Aspirin", "head ache": "Headache"}
    detector.save(tmp_path / "saved.tsv")
    lines = (tmp_path / "saved.tsv").read_text(encoding="utf-8").splitlines()
    assert lines == ["acetylsalicylic acid\tAspirin", "aspirin\tAspirin", "head ache\tHeadache"]
    again = MentionDetector.from_file(tmp_path / "saved.tsv")
    assert sorted(again.items()) == sorted(detector.items())


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("bad.tsv", "kyoto\tKyoto\ntokyo\tTokyo\njapan Japan\n", 3, "expected 'mention<TAB>title'"),
        ("bad2.tsv", "kyoto\tKyoto\n\n\t Tokyo\n", 3, "empty mention"),
        ("bad3.tsv", "kyoto\tKyoto\nosaka\t\n", 2, "empty title"),
        (
            "bad.jsonl",
            '{"format": "luke-mention-db", "version": 1, "source": "x", "max_mention_words": 20}\n'
            '{"mention": "kyoto", "link_count": 2, "doc_count": 3, "link_prob": 0.5, "candidates": [["Kyoto", 2]]}\n'
            '{"mention": "tokyo", "link_count": 2, "doc_count": 3, "link_prob": 0.5, "candidates": [["Tokyo", 2]\n',
            3,
            "not valid JSON",
        ),
        (
            "bad2.jsonl",
            '{"format": "luke-mention-db", "version": 1, "source": "x", "max_mention_words": 20}\n\n'
            '{"mention": "kyoto", "link_count": 2, "doc_count": 3, "link_prob": 0.5}\n',
            3,
            "'candidates'",
        ),
        (
            "bad3.jsonl",
            '{"format": "luke-mention-db", "version": 1, "source": "x", "max_mention_words": 20}\n'
            '{"mention": "kyoto", "link_count": 2, "doc_count": 3, "link_prob": 1.5, "candidates": [["Kyoto", 2]]}\n',
            2,
            "'link_prob'",
        ),
        ("bad4.jsonl", '{"format": "luke-mention-db", "version": 7}\n', 1, "unsupported mention database version"),
        ("bad.json", '{\n  "kyoto": "Kyoto",\n  "tokyo": 3\n}\n', None, "'tokyo' must be a non-empty string"),
        ("bad2.json", '{\n  "kyoto": "Kyoto",\n  "tokyo" "Tokyo"\n}\n', 3, "invalid JSON"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, name: str, content: str, line: int | None, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message)) as info:
        MentionDetector.from_file(path)
    assert info.value.line == line and info.value.path == path
    assert str(info.value).startswith(f"{path}:{line}:" if line else f"{path}:")


def test_missing_empty_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such mention dictionary file"):
        MentionDetector.from_file(tmp_path / "nope.tsv")
    (tmp_path / "empty.tsv").write_text("\n \n")
    with pytest.raises(DataError, match="empty"):
        MentionDetector.from_file(tmp_path / "empty.tsv")
    (tmp_path / "latin1.tsv").write_bytes("kyoto\tKyoto\nz\xfcrich\tZ\xfcrich\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8") as info:
        MentionDetector.from_file(tmp_path / "latin1.tsv")
    assert info.value.line == 2


# ------------------------------------------------------------------------------------------- detection


def test_longest_match_first_and_skip_past() -> None:
    detector = MentionDetector(
        {
            "New York": "New York City",
            "New York Times": "The New York Times",
            "York": "York",
            "Times Square": "Times Square",
        }
    )
    text = "The New York Times Square office is in York, not in Yorkshire."
    # "New York Times" wins over "New York"; its "Times" is consumed, so "Times Square" is not found.
    assert detector.detect(text) == [(4, 18, "The New York Times"), (39, 43, "York")]
    assert detector.detect("new   york, NEW YORK!") == [(0, 10, "New York City"), (12, 20, "New York City")]
    assert detector.detect("") == [] and detector.detect("nothing here") == []
    overlapping = MentionDetector({"a b": "AB", "b c": "BC", "c": "C"})
    assert overlapping.detect("a b c") == [(0, 3, "AB"), (4, 5, "C")]
    assert overlapping.detect("x b c") == [(2, 5, "BC")]


def test_punctuation_accents_and_cjk() -> None:
    detector = MentionDetector(
        {"U.S.": "United States", "Beyoncé": "Beyoncé", "Zurich": "Zürich", "東京": "Tokyo", "AT&T": "AT&T"}
    )
    text = "In the U.S., BEYONCE met AT&T in Zürich (東京都)."
    spans = detector.detect(text)
    assert [(text[s:e], title) for s, e, title in spans] == [
        ("U.S.", "United States"),
        ("BEYONCE", "Beyoncé"),
        ("AT&T", "AT&T"),
        ("Zürich", "Zürich"),
        ("東京", "Tokyo"),
    ]
    # Whitespace between words is part of the key: "U. S." is not "U.S."; words are never cut.
    assert detector.detect("the U. S. army") == [] and detector.detect("ATT, Zurichs") == []


def test_plain_dictionary_outside_wikipedia(tmp_path: Path) -> None:
    path = tmp_path / "drugs.tsv"
    path.write_text("aspirin\tAspirin\nacetylsalicylic acid\tAspirin\nheadache\tHeadache\nacid\tAcid\n")
    detector = MentionDetector.from_file(path)
    text = "Acetylsalicylic acid (aspirin) relieves a headache; acid alone does not."
    found = [(text[s:e], title) for s, e, title in detector.detect(text)]
    assert found == [
        ("Acetylsalicylic acid", "Aspirin"),
        ("aspirin", "Aspirin"),
        ("headache", "Headache"),
        ("acid", "Acid"),
    ]


def test_max_mention_words_limits_detection() -> None:
    mapping = {"united states of america": "United States", "united states": "United States"}
    assert MentionDetector(mapping).detect("the United States of America") == [(4, 28, "United States")]
    assert MentionDetector(mapping, max_mention_words=3).detect("the United States of America") == [
        (4, 17, "United States")
    ]
    assert len(MentionDetector({"A": "x", "a": "y", " ": "z"})) == 1  # first key wins, empty keys dropped
    assert MentionDetector({"A": "x", "a": "y"}).get("a") == "x"


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_round_trip(paris_db: Path, paris_mdb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.jsonl"
    assert main(["build-mention-db", str(paris_db), str(out), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mentions"] == 4 and summary["links"] == 12 and summary["out_file"] == str(out)
    assert out.read_text(encoding="utf-8") == paris_mdb.read_text(encoding="utf-8")
    assert MentionDetector.from_file(out, min_prior=0.5).detect("Paris, Texas or Paris?") == [
        (0, 12, "Paris, Texas"),
        (16, 21, "Paris"),
    ]
    assert main(["build-mention-db", str(paris_db), str(tmp_path / "cli2.jsonl"), "--max-mention-words", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["links_dropped_too_long"] == 1
    assert main(["build-mention-db", str(tmp_path / "missing.sqlite"), str(out)]) == 2
    assert "no such dump database" in capsys.readouterr().err
    assert main(["build-mention-db", str(paris_db), str(out / "x.jsonl"), "--no-progress"]) == 2  # parent is a file
    assert "is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build-mention-db", str(paris_db), str(out), "--max-mention-words", "0"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.jsonl", "cli2.jsonl"]


# -------------------------------------------------------------------------------------------- real dump


def test_real_dump(tmp_path: Path) -> None:
    dump = require_shared("wikipedia", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    start = time.perf_counter()
    build_dump_db(dump, tmp_path / "db.sqlite", num_workers=2, progress=False)
    stats = build_mention_db(tmp_path / "db.sqlite", tmp_path / "m.jsonl", progress=False)
    elapsed = time.perf_counter() - start
    header, records = read_mention_db_records(tmp_path / "m.jsonl")
    assert header["source"] == "db.sqlite" and stats["mentions"] == len(records) > 20
    for record in records.values():
        assert 0 < record["link_prob"] <= 1 and record["link_count"] == sum(c for _, c in record["candidates"])
        assert record["link_prob"] == pytest.approx(min(1, record["link_count"] / record["doc_count"]))
        assert record["mention"] == normalize_mention(record["mention"])
    # Independent counts for "aristotle" from the raw database: links with that anchor, and articles
    # whose lowercased text contains it (an upper bound of the whole-word count).
    db = DumpDB(tmp_path / "db.sqlite")
    links = linking_pages = containing = 0
    for page_id in db.page_ids():
        _, paragraphs = db.get_page(page_id)
        n = sum(
            p.text[x.start : x.end].lower() == "aristotle" and db.resolve_redirect(x.title) == "Aristotle"
            for p in paragraphs
            for x in p.links
        )
        links += n
        linking_pages += n > 0
        containing += any("aristotle" in p.text.lower() for p in paragraphs)
    aristotle = records["aristotle"]
    assert aristotle["candidates"] == [["Aristotle", links]] and links > 1
    assert linking_pages <= aristotle["doc_count"] <= containing
    detector = MentionDetector.from_file(tmp_path / "m.jsonl")
    text = "Aristotle wrote about Anarchism? No, but Albert Einstein read Aristotle."
    assert [text[s:e] for s, e, _ in detector.detect(text)] == [
        "Aristotle",
        "Anarchism",
        "Albert Einstein",
        "Aristotle",
    ]
    assert elapsed < 60
