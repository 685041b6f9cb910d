"""Entity disambiguation from Wikipedia: candidates with priors from the mention database
(MentionCandidates), a mention database without held-out articles, and the evaluation set builder
(build-ed-dataset). Expected values are counted by hand from the fixture dump below."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import read_mention_db_records, write_xml_dump
from luke.cli import main
from luke.errors import ConfigError, DataError, DumpError, OutputError
from luke.finetuning.ed_data import read_jsonl
from luke.wikipedia.dump_db import DumpDB, Paragraph, WikiLink, build_dump_db
from luke.wikipedia.ed_dataset import article_document, build_ed_dataset, read_page_ids
from luke.wikipedia.mention_db import MentionCandidates, MentionDetector, build_mention_db

# "Paris" links to Paris 4x (France, Paris, Texas, Seine twice) and to Paris, Texas 3x (France, Texas, Film).
PAGES = {
    1: ("Paris", "'''Paris''' is the capital of [[France]].\n\nIt lies on the [[Seine|river Seine]] in "
                 "[[Île-de-France]]."),
    2: ("Paris, Texas", "'''Paris, Texas''' is a city in [[Texas]]. It is not [[Paris]]."),
    3: ("France", "'''France''' has [[Paris]] as capital. A film: [[Paris, Texas|Paris]]. Also [[Paree]]."),
    4: ("Paree", None),  # redirect to Paris
    5: ("Texas", "'''Texas''' includes [[Paris, Texas|Paris]] and [[Paris, Texas]]."),
    6: ("Seine", "The Seine flows through [[Paris]] and [[Paris]] to [[France]]."),
    7: ("Film", "A [[Paris, Texas|Paris]] film is set in [[Texas]]."),
    8: ("Opera", "An opera in Paris near the [[Palais Garnier]]."),
    9: ("Cafe", "A café in Paris and Paris."),
}  # fmt: skip

# Articles (page id -> text as stored) and the links of each: (anchor text, gold title after redirects).
TEXT_1 = "Paris is the capital of France.\n\nIt lies on the river Seine in Île-de-France."
LINKS_3 = [("Paris", "Paris"), ("Paris", "Paris, Texas"), ("Paree", "Paris")]


@pytest.fixture(scope="module")
def dump_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ed-dump")
    out = folder / "ed.sqlite"
    build_dump_db(write_xml_dump(folder / "ed.xml", PAGES), out, progress=False)
    return out


@pytest.fixture(scope="module")
def mention_db(dump_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ed-mdb") / "mentions.jsonl"
    build_mention_db(dump_db, out, progress=False)
    return out


def mention_db_plain(dump_db: Path, folder: Path) -> Path:
    build_mention_db(dump_db, folder / "plain.jsonl", progress=False)
    return folder / "plain.jsonl"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------------------ candidates


def test_candidates_priors_exact(mention_db: Path) -> None:
    mc = MentionCandidates.from_file(mention_db)
    # france, paree, paris, "paris, texas", "river seine", texas (Île-de-France, Palais Garnier: not articles).
    assert len(mc) == 6 and sorted(mc) == ["france", "paree", "paris", "paris, texas", "river seine", "texas"]
    assert mc.candidates("PARIS") == [("Paris", 4 / 7), ("Paris, Texas", 3 / 7)]
    assert mc.candidates("  paris ", k=1) == [("Paris", 4 / 7)]
    assert mc.candidates("Paris", k=None) == mc.candidates("Paris", k=30)
    assert mc.candidates("Paree") == [("Paris", 1.0)]  # through the redirect
    assert mc.candidates("Île-de-France") == [] and mc.candidates("Lyon") == []  # NIL
    # "paris" occurs in 8 articles (Paris, Paris Texas, France, Texas, Seine, Film, Opera, Cafe), linked 7 times.
    assert mc.link_prob("Paris") == pytest.approx(7 / 8) and mc.link_count("paris") == 7
    # "france": linked on Paris and Seine; occurs there and in France (and in "Île-de-France" on Paris).
    assert mc.link_prob("France") == pytest.approx(2 / 3)
    assert mc.link_prob("Lyon") is None and mc.link_count("Lyon") == 0
    assert "PAREE" in mc and "Lyon" not in mc and 3 not in mc
    assert mc.stats["mentions_read"] == 6 and mc.max_mention_words == 20
    with pytest.raises(ValueError, match="k must be at least 1"):
        mc.candidates("paris", k=0)


def test_candidates_filters(mention_db: Path) -> None:
    mc = MentionCandidates.from_file(mention_db, entity_vocab={"Paris", "France"})
    # Priors stay count / link_count over all links; mentions left without a candidate are dropped.
    assert mc.candidates("paris") == [("Paris", 4 / 7)]
    assert sorted(mc) == ["france", "paree", "paris"]
    assert mc.stats["candidates_out_of_vocab"] == 4  # Paris, Texas (twice), Seine, Texas
    assert mc.stats["mentions_without_vocab_candidates"] == 3
    assert sorted(MentionCandidates.from_file(mention_db, min_link_count=2)) == ["france", "paris", "texas"]
    capped = MentionCandidates.from_file(mention_db, max_candidates=1)
    assert capped.candidates("paris") == [("Paris", 4 / 7)] and capped.stats["candidates_beyond_max_candidates"] == 1
    with pytest.raises(ConfigError, match="min_link_count"):
        MentionCandidates.from_file(mention_db, min_link_count=0)


def test_detect_keeps_ambiguous_and_filters_by_link_prob(mention_db: Path) -> None:
    mc = MentionCandidates.from_file(mention_db)
    text = "Paris, Texas is far from PARIS and paree; Texas."
    # Longest match first ("paris, texas", link_prob 1/2), ambiguous "paris" kept.
    assert [text[s:e] for s, e in mc.detect(text)] == ["Paris, Texas", "PARIS", "paree", "Texas"]
    # Above 1/2, "paris, texas" is not a mention: the shorter "Paris" (7/8) is, then "Texas" (2/3).
    assert [text[s:e] for s, e in mc.detect(text, min_link_prob=0.6)] == ["Paris", "Texas", "PARIS", "paree", "Texas"]
    assert [text[s:e] for s, e in mc.detect(text, min_link_prob=0.9)] == ["paree"]
    assert mc.detect(text, max_mention_words=1)[0] == (0, 5)
    assert mc.detect("") == [] and mc.detect("nothing to see") == []
    # The single-title detector drops ambiguous "paris" by default; candidates keep it.
    assert "paris" not in MentionDetector.from_file(mention_db)
    with pytest.raises(ConfigError, match="min_link_prob"):
        mc.detect(text, min_link_prob=1.5)


def test_from_records_and_repr() -> None:
    mc = MentionCandidates.from_records(
        [("New York", 10, 0.5, [["New York City", 8], ["New York (state)", 2]]), ("York", 4, 0.2, [["York", 4]])],
        max_mention_words=3,
    )
    assert mc.candidates("new  york") == [("New York City", 0.8), ("New York (state)", 0.2)]
    assert mc.detect("In New York and York.") == [(3, 11), (16, 20)]
    assert mc.detect("In New York and York.", min_link_prob=0.3) == [(3, 11)]
    assert repr(mc) == "MentionCandidates(2 mentions, 3 candidates, max_mention_words=3)"
    with pytest.raises(ValueError, match="given twice"):
        MentionCandidates.from_records([("a", 1, 1.0, [["A", 1]]), ("A", 1, 1.0, [["A", 1]])])


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ('{"mention": "a", "link_count": 1, "link_prob": 1, "candidates": [["A", 1]]}\n', 2, "appears twice"),
        ('{"mention": "b", "link_count": 1, "link_prob": 1, "candidates": [["B", 2]]}\n', 2, "add up to more"),
        ('{"mention": "b", "link_count": 2, "link_prob": 1, "candidates": [["B", 1], ["B", 1]]}\n', 2, "twice"),
        ('{"mention": "b", "link_count": 2, "link_prob": 2, "candidates": [["B", 1]]}\n', 2, "'link_prob' must be"),
        ('{"mention": "b", "link_count": 2, "link_prob": 1, "candidates": [["B", 0]]}\n', 2, "'candidates' must"),
        ("not json\n", 2, "not valid JSON"),
    ],
)
def test_malformed_mention_db(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "m.jsonl"
    header = '{"format": "luke-mention-db", "version": 1, "max_mention_words": 20}\n'
    first = '{"mention": "a", "link_count": 1, "link_prob": 1, "candidates": [["A", 1]]}\n'
    path.write_text(header + first + content, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message)) as info:
        MentionCandidates.from_file(path)
    assert str(info.value).startswith(f"{path}:{line + 1}:")


def test_not_a_mention_db(tmp_path: Path) -> None:
    (tmp_path / "d.tsv").write_text("paris\tParis\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a mention database .*luke build-mention-db"):
        MentionCandidates.from_file(tmp_path / "d.tsv")
    (tmp_path / "e.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="the file is empty"):
        MentionCandidates.from_file(tmp_path / "e.jsonl")
    with pytest.raises(DataError, match="no such mention dictionary file"):
        MentionCandidates.from_file(tmp_path / "missing.jsonl")


# --------------------------------------------------------------------------------------- excluding pages


def test_exclude_pages_removes_their_anchors(dump_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    stats = build_mention_db(dump_db, out, exclude_page_ids=[7], progress=False)
    header, records = read_mention_db_records(out)
    assert header["excluded_pages"] == 1 and stats["pages_excluded"] == 1 and stats["pages"] == 7
    # Film's "Paris" -> Paris, Texas and "Texas" -> Texas are gone; Film no longer counts as a document.
    assert records["paris"]["candidates"] == [["Paris", 4], ["Paris, Texas", 2]]
    assert (records["paris"]["link_count"], records["paris"]["doc_count"]) == (6, 7)
    assert records["texas"] == {
        "mention": "texas",
        "link_count": 1,
        "doc_count": 2,
        "link_prob": 0.5,
        "candidates": [["Texas", 1]],
    }
    mc = MentionCandidates.from_file(out)
    assert mc.candidates("Paris") == [("Paris", 4 / 6), ("Paris, Texas", 2 / 6)]
    # Excluding every page that links "river seine" removes the mention; titles stay valid targets.
    build_mention_db(dump_db, tmp_path / "b.jsonl", exclude_page_ids={1, 99}, progress=False)
    _, records = read_mention_db_records(tmp_path / "b.jsonl")
    assert "river seine" not in records and records["paris"]["candidates"][0] == ["Paris", 4]
    assert "excluded_pages" not in read_mention_db_records(mention_db_plain(dump_db, tmp_path))[0]
    with pytest.raises(ConfigError, match="none of the 2 page ids to exclude is an article"):
        build_mention_db(dump_db, tmp_path / "c.jsonl", exclude_page_ids=[98, 99], progress=False)
    assert not (tmp_path / "c.jsonl").exists()


def test_read_page_ids(tmp_path: Path) -> None:
    dataset = tmp_path / "heldout"
    dataset.mkdir()
    meta = {"number_of_items": 3, "split": {"part": "heldout", "heldout_page_ids": [7, 3, 7]}}
    (dataset / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    assert read_page_ids(dataset) == [3, 7] == read_page_ids(dataset / "metadata.json")
    (tmp_path / "ids.txt").write_text("# held out\n7\n\n 3  # France\n", encoding="utf-8")
    assert read_page_ids(tmp_path / "ids.txt") == [3, 7]
    (tmp_path / "ids.json").write_text("[1, 2]", encoding="utf-8")
    assert read_page_ids(tmp_path / "ids.json") == [1, 2]
    (tmp_path / "bad.txt").write_text("7\nseven\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'bad.txt'}:2: expected a page id")):
        read_page_ids(tmp_path / "bad.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no page ids"):
        read_page_ids(tmp_path / "empty.txt")
    (tmp_path / "nosplit").mkdir()
    (tmp_path / "nosplit" / "metadata.json").write_text('{"number_of_items": 3}', encoding="utf-8")
    with pytest.raises(DataError, match="no split.heldout_page_ids"):
        read_page_ids(tmp_path / "nosplit")
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(DataError, match="without metadata.json"):
        read_page_ids(tmp_path / "empty-folder")
    with pytest.raises(DataError, match="missing.txt"):
        read_page_ids(tmp_path / "missing.txt")


# ------------------------------------------------------------------------------------------- ED dataset


def test_ed_dataset_offsets_and_gold(dump_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ed.jsonl"
    stats = build_ed_dataset(dump_db, out, page_ids=[1, 3, 7, 9], progress=False)
    documents = _lines(out)
    # Cafe (9) has no link; documents in page-id order.
    assert [d["id"] for d in documents] == ["Paris", "France", "Film"]
    assert stats["documents"] == 3 and stats["pages"] == 4 and stats["pages_without_links"] == 1
    assert stats["mentions"] == 8 and stats["links_resolved_through_redirects"] == 1
    paris, france, film = documents
    assert paris["text"] == TEXT_1 and set(paris) == {"id", "text", "entities"}
    assert paris["entities"] == [
        {"start": 24, "end": 30, "title": "France"},
        {"start": 48, "end": 59, "title": "Seine"},
        {"start": 63, "end": 76, "title": "Île-de-France"},  # not an article: kept
    ]
    assert [paris["text"][e["start"] : e["end"]] for e in paris["entities"]] == [
        "France",
        "river Seine",
        "Île-de-France",
    ]
    assert [(france["text"][e["start"] : e["end"]], e["title"]) for e in france["entities"]] == LINKS_3
    assert [(film["text"][e["start"] : e["end"]], e["title"]) for e in film["entities"]] == [
        ("Paris", "Paris, Texas"),
        ("Texas", "Texas"),
    ]
    # The ED reader of the fine-tuning side reads it as is.
    docs = read_jsonl(out)
    assert [(m.start, m.end, m.title) for m in docs[0].mentions][1] == (48, 59, "Seine")
    # Links to titles that are not articles dropped on request.
    stats = build_ed_dataset(dump_db, out, page_ids=[1], articles_only=True, progress=False)
    assert [e["title"] for e in _lines(out)[0]["entities"]] == ["France", "Seine"]
    assert stats["links_dropped_not_an_article"] == 1


def test_ed_dataset_selection(dump_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    stats = build_ed_dataset(dump_db, out, exclude_page_ids=[1, 2], max_documents=3, progress=False)
    assert [d["id"] for d in _lines(out)] == ["France", "Texas", "Seine"] and stats["documents"] == 3
    build_ed_dataset(dump_db, out, progress=False)
    assert [d["id"] for d in _lines(out)] == ["Paris", "Paris, Texas", "France", "Texas", "Seine", "Film", "Opera"]
    with pytest.raises(ConfigError, match="none of the 1 page ids is an article"):
        build_ed_dataset(dump_db, out, page_ids=[4], progress=False)  # a redirect is no article
    with pytest.raises(ConfigError, match="every selected page id is excluded"):
        build_ed_dataset(dump_db, out, page_ids=[1], exclude_page_ids=[1], progress=False)
    with pytest.raises(OutputError, match="end its name with .jsonl"):
        build_ed_dataset(dump_db, tmp_path / "ed.json", progress=False)
    with pytest.raises(ConfigError, match="max_documents"):
        build_ed_dataset(dump_db, out, max_documents=0, progress=False)
    with pytest.raises(DumpError, match="no such dump database"):
        build_ed_dataset(tmp_path / "missing.sqlite", tmp_path / "x.jsonl", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]


def test_article_document_trims_anchors_and_refuses_overlaps(dump_db: Path) -> None:
    db = DumpDB(dump_db)
    try:
        paragraphs = [
            Paragraph("Visit  Paree  now.", [WikiLink("Paree", 5, 14), WikiLink("Texas", 17, 18)]),
            Paragraph("  "),  # blank paragraphs are left out
            Paragraph("Bye.", [WikiLink("Nowhere", 3, 4)]),
        ]
        stats: Counter[str] = Counter()
        doc = article_document(db, "T", paragraphs, stats)
        assert doc["text"] == "Visit  Paree  now.\n\nBye."
        assert doc["entities"] == [
            {"start": 7, "end": 12, "title": "Paris"},
            {"start": 17, "end": 18, "title": "Texas"},
            {"start": 23, "end": 24, "title": "Nowhere"},
        ]
        assert stats["links"] == 3
        blank = [Paragraph("a   b", [WikiLink("X", 1, 4)])]
        assert article_document(db, "T", blank, stats)["entities"] == []
        assert stats["links_dropped_empty_anchor"] == 1
        overlapping = [Paragraph("New York City", [WikiLink("New York", 0, 8), WikiLink("York", 4, 13)])]
        with pytest.raises(DumpError, match="page 'T': overlapping links"):
            article_document(db, "T", overlapping, stats)
    finally:
        db.close()


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_held_out_evaluation_set(dump_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "heldout"
    dataset.mkdir()
    (dataset / "metadata.json").write_text(json.dumps({"split": {"heldout_page_ids": [3, 7]}}), encoding="utf-8")
    mdb, ed = tmp_path / "train-mentions.jsonl", tmp_path / "heldout.jsonl"
    assert (
        main(["build-mention-db", str(dump_db), str(mdb), "--exclude-pages-from", str(dataset), "--no-progress"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["pages_excluded"] == 2 and summary["pages"] == 6
    assert main(["build-ed-dataset", str(dump_db), str(ed), "--pages-from", str(dataset), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["documents"], summary["mentions"], summary["out_file"]) == (2, 5, str(ed))
    # No held-out link counted: France's and Film's three "Paris" links are gone from the priors.
    mc = MentionCandidates.from_file(mdb)
    assert mc.candidates("Paris") == [("Paris", 3 / 4), ("Paris, Texas", 1 / 4)]
    assert "paree" not in mc  # only France links it
    gold = [(d["text"][e["start"] : e["end"]], e["title"]) for d in _lines(ed) for e in d["entities"]]
    assert gold == [*LINKS_3, ("Paris", "Paris, Texas"), ("Texas", "Texas")]
    ids = tmp_path / "ids.txt"
    ids.write_text("3\n", encoding="utf-8")
    assert main(["build-ed-dataset", str(dump_db), str(ed), "--page-ids", str(ids), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 1


def _error(capsys: pytest.CaptureFixture[str], command: str = "build-ed-dataset") -> str:
    """The one stderr line of a failed command: ``luke COMMAND: error: ...``, no traceback."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"luke {command}: error: "), lines
    return lines[0]


def test_cli_errors(dump_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ed.jsonl"
    bad = tmp_path / "ids.txt"
    bad.write_text("3\n3.5\n", encoding="utf-8")
    assert main(["build-ed-dataset", str(dump_db), str(out), "--page-ids", str(bad)]) == 2
    assert f"{bad}:2: expected a page id" in _error(capsys)
    assert main(["build-mention-db", str(dump_db), str(tmp_path / "m.jsonl"), "--exclude-pages-from", str(bad)]) == 2
    assert f"{bad}:2:" in _error(capsys, "build-mention-db")
    assert main(["build-ed-dataset", str(dump_db), str(out), "--pages-from", str(tmp_path)]) == 2
    assert "without metadata.json" in _error(capsys)
    assert main(["build-ed-dataset", str(dump_db), str(bad), "--page-ids", str(bad)]) == 2
    assert "would replace the input" in _error(capsys)
    assert main(["build-ed-dataset", str(tmp_path / "no.sqlite"), str(out)]) == 2
    assert "no such dump database" in _error(capsys)
    assert main(["build-ed-dataset", str(dump_db), str(tmp_path / "ed.txt"), "--no-progress"]) == 2
    assert "end its name with .jsonl" in _error(capsys)
    with pytest.raises(SystemExit):  # one source of page ids
        main(["build-ed-dataset", str(dump_db), str(out), "--page-ids", str(bad), "--pages-from", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["build-ed-dataset", str(dump_db), str(out), "--max-documents", "0"])
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.txt"]
