"""Step 1 (build-dump-db): wikitext → paragraphs/links, XML streaming, redirects, errors, real dumps."""

from __future__ import annotations

import bz2
import sqlite3
from pathlib import Path

import pytest

from conftest import require_shared
from luke.cli import main
from luke.wikipedia.dump_db import (
    DumpDB,
    DumpError,
    build_dump_db,
    is_entity_target,
    normalize_title,
    parse_wikitext,
)

FIXTURES = Path(__file__).parent / "fixtures" / "wikipedia"
TINY = FIXTURES / "tiny-export-0.10.xml"


def shared(relative: str) -> Path:
    """A file under shared/data: skipped locally when absent, a failure under CI."""
    return require_shared(relative)


def spans(paragraph):
    return [(x.title, paragraph.text[x.start : x.end]) for x in paragraph.links]


# ---------------------------------------------------------------------------------------------- wikitext


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("east_Asia#Geography", "East Asia"),
        ("  tokyo  tower ", "Tokyo tower"),
        (":Foo", "Foo"),
        ("AT&amp;T", "AT&T"),
        ("Caf%C3%A9", "Café"),
        ("#History", ""),
        ("ärzte", "Ärzte"),
    ],
)
def test_normalize_title(raw: str, expected: str) -> None:
    assert normalize_title(raw) == expected


@pytest.mark.parametrize(
    ("target", "is_entity"),
    [
        ("Tokyo", True),
        ("Star Wars: Episode IV", True),
        ("File:X.jpg", False),
        ("Image:X.jpg", False),
        ("category:Foo", False),
        (":Category:Foo", False),
        ("fr:Tokyo", False),
        ("zh-min-nan:Tokyo", False),
        ("wikt:dog", False),
        ("Template:Foo", False),
    ],
)
def test_is_entity_target(target: str, is_entity: bool) -> None:
    assert is_entity_target(target) is is_entity


def test_piped_link_inside_bold_and_link_trail() -> None:
    (p,) = parse_wikitext("'''[[Japan|the State of Japan]]''' has many [[park]]s and [[Dog]]-friendly places.")
    assert p.text == "the State of Japan has many parks and Dog-friendly places."
    assert spans(p) == [("Japan", "the State of Japan"), ("Park", "parks"), ("Dog", "Dog")]
    assert p.abstract


def test_nested_templates_refs_tables_files_categories_are_removed() -> None:
    text = (
        "{{Infobox|a={{b|{{c|d}}}}}}\n"
        "X is a [[y_z#Sec|Y]].<ref>{{cite web|title=[[Not a link]]}}</ref><ref name=a/> End.\n"
        "{| class=wikitable\n| [[Cell]] || 2\n|}\n"
        "[[File:A.jpg|thumb|A [[caption link]]]] [[Image:B.png]] [[Category:Things]] [[de:X]]"
    )
    paragraphs = parse_wikitext(text)
    assert [p.text for p in paragraphs] == ["X is a Y. End."]
    assert spans(paragraphs[0]) == [("Y z", "Y")]


def test_unicode_outside_bmp_offsets_are_code_points() -> None:
    (p,) = parse_wikitext("😀 and 𝐀 then [[Kyoto|京都]] 🎌 [[Osaka]]")
    assert p.text == "😀 and 𝐀 then 京都 🎌 Osaka"
    assert [(x.start, x.end) for x in p.links] == [(13, 15), (18, 23)]
    assert spans(p) == [("Kyoto", "京都"), ("Osaka", "Osaka")]


def test_headings_split_abstract_and_citation_sections_are_skipped() -> None:
    text = "Intro [[A]].\n== History ==\nBody [[B]].\n=== Sub ===\nMore.\n== References ==\n* [[C]]\n== Later ==\nL."
    paragraphs = parse_wikitext(text)
    assert [(p.text, p.abstract) for p in paragraphs] == [
        ("Intro A.", True),
        ("Body B.", False),
        ("More.", False),
        ("L.", False),
    ]


def test_visible_category_link_and_same_page_link_keep_text_without_entity() -> None:
    (p,) = parse_wikitext("See [[:Category:Cities|city lists]] and [[#History|this section]].")
    assert p.text == "See city lists and this section."
    assert p.links == []


def test_empty_parentheses_from_dropped_templates_are_removed() -> None:
    (p,) = parse_wikitext("'''Tokyo''' ({{IPAc-en|t}}; {{lang-ja|東京}}) is [[Japan|big]].")
    assert p.text == "Tokyo (東京) is big."
    assert spans(p) == [("Japan", "big")]
    (p,) = parse_wikitext("'''A''' ({{IPAc-en|a}}) is a [[letter]].")
    assert p.text == "A is a letter."
    assert spans(p) == [("Letter", "letter")]


def test_text_templates_and_entities() -> None:
    (p,) = parse_wikitext("It is {{convert|5|km}} long,&nbsp;{{nowrap|[[New York]] City}} &amp; more.")
    assert p.text == "It is 5 km long, New York City & more."
    assert spans(p) == [("New York", "New York")]


# --------------------------------------------------------------------------------------------- the dump


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("db") / "tiny.sqlite"
    build_dump_db(TINY, out, progress=False)
    return out


def test_tiny_dump_pages_redirects_and_exact_paragraphs(tiny_db: Path) -> None:
    db = DumpDB(tiny_db)
    assert db.titles() == ["Tokyo", "Japan", "Kyoto", "East Asia"]  # disambiguation + template dropped
    assert db.redirects() == {"Tokio": "Tokyo"}
    assert db.resolve_redirect("Tokio") == "Tokyo"
    assert db.meta["count.pages_read"] == "7"
    assert db.meta["count.disambiguation_pages"] == "1"
    assert db.meta["count.non_article_pages"] == "1"
    title, paragraphs = db.get_page(10)
    assert title == "Tokyo"
    assert [(p.text, p.abstract) for p in paragraphs] == [
        (
            "Tokyo (東京) is the capital of the State of Japan and the largest cities in East Asia. It has many parks.",
            True,
        ),
        ("The emoji 😀 and 𝐀 are outside the BMP, and Kyoto is the old capital.", True),
        ("Tokyo was formerly named Edo. See also city lists and this section.", False),
    ]
    assert [spans(p) for p in paragraphs] == [
        [("Japan", "the State of Japan"), ("City", "cities"), ("East Asia", "East Asia"), ("Park", "parks")],
        [("Kyoto", "Kyoto"), ("Former capital", "the old capital")],
        [("Tokio", "Edo")],
    ]
    assert [(x.start, x.end) for x in paragraphs[1].links] == [(43, 48), (52, 67)]
    assert db.link_counts() == {
        "City": 1,
        "East Asia": 2,
        "Former capital": 1,
        "Japan": 4,
        "Kyoto": 2,
        "Park": 1,
        "Tokio": 2,
        "Tokyo": 2,
    }
    db.close()


def test_bz2_and_schema_0_11_without_siteinfo(tmp_path: Path, tiny_db: Path) -> None:
    xml = TINY.read_text(encoding="utf-8")
    start, end = xml.index("<siteinfo>"), xml.index("</siteinfo>") + len("</siteinfo>")
    xml = xml[:start] + xml[end:]
    xml = xml.replace("export-0.10/", "export-0.11/").replace('version="0.10"', 'version="0.11"')
    dump = tmp_path / "enwiki-0.11.xml.bz2"
    dump.write_bytes(bz2.compress(xml.encode("utf-8")))
    build_dump_db(dump, tmp_path / "b.sqlite", progress=False)
    a, b = DumpDB(tiny_db), DumpDB(tmp_path / "b.sqlite")
    assert b.titles() == a.titles()
    assert b.redirects() == a.redirects()
    assert [b.get_page(i) for i in b.page_ids()] == [a.get_page(i) for i in a.page_ids()]


def test_output_identical_for_any_worker_count(tmp_path: Path) -> None:
    build_dump_db(TINY, tmp_path / "w1.sqlite", num_workers=1, progress=False)
    build_dump_db(TINY, tmp_path / "w2.sqlite", num_workers=2, chunk_size=1, progress=False)
    assert (tmp_path / "w1.sqlite").read_bytes() == (tmp_path / "w2.sqlite").read_bytes()


def test_schema_is_queryable_with_plain_sqlite(tiny_db: Path) -> None:
    conn = sqlite3.connect(tiny_db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"meta", "pages", "redirects", "link_counts"}
    (n,) = conn.execute("SELECT COUNT(*) FROM pages, json_each(pages.paragraphs)").fetchone()
    assert n == 7  # Tokyo 3, Japan 2, Kyoto 1, East Asia 1


# ------------------------------------------------------------------------------------------- bad input


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_truncated_bz2_reports_offset_and_leaves_nothing(tmp_path: Path) -> None:
    data = bz2.compress(TINY.read_bytes())
    dump = tmp_path / "cut.xml.bz2"
    dump.write_bytes(data[: len(data) // 2])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(DumpError, match=r"truncated compressed stream near input byte [\d,]+"):
        build_dump_db(dump, out_dir / "db.sqlite", progress=False)
    assert _leftovers(out_dir) == []


def test_malformed_xml_reports_line_and_last_page(tmp_path: Path) -> None:
    xml = TINY.read_text(encoding="utf-8").replace("<title>Kyoto</title>", "<title>Kyoto</titel>")
    dump = tmp_path / "bad.xml"
    dump.write_text(xml, encoding="utf-8")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(DumpError, match=r"malformed XML at line \d+, column \d+ .*after page id 12"):
        build_dump_db(dump, out_dir / "db.sqlite", num_workers=2, progress=False)
    assert _leftovers(out_dir) == []


def test_not_a_mediawiki_export(tmp_path: Path) -> None:
    dump = tmp_path / "x.xml"
    dump.write_text("<html><body/></html>")
    with pytest.raises(DumpError, match="not a MediaWiki XML export"):
        build_dump_db(dump, tmp_path / "db.sqlite", progress=False)


def test_cli_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build-dump-db", str(tmp_path / "missing.xml.bz2"), str(tmp_path / "db.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "missing.xml.bz2: no such file" in err and err.count("\n") == 1
    unreadable = tmp_path / "dir.xml"
    unreadable.mkdir()
    assert main(["build-dump-db", str(unreadable), str(tmp_path / "db.sqlite")]) == 2
    not_db = tmp_path / "not.sqlite"
    not_db.write_text("hello")
    assert main(["build-entity-vocab", str(not_db), str(tmp_path / "v.jsonl"), "--vocab-size", "10"]) == 2
    assert "not a dump database" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite").exists() and not (tmp_path / "v.jsonl").exists()


def test_cli_build_dump_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "db.sqlite"
    assert main(["build-dump-db", str(TINY), str(out), "--num-workers", "1", "--no-progress"]) == 0
    assert "4 articles, 1 redirects, 15 links" in capsys.readouterr().out
    assert DumpDB(out).titles() == ["Tokyo", "Japan", "Kyoto", "East Asia"]


# ------------------------------------------------------------------------------------------- real dumps


@pytest.mark.parametrize(
    ("name", "articles", "redirects"),
    [
        ("enwiki-pages-articles-sample.xml.bz2", 2, 1),
        ("tiny_dump.xml.bz2", 6, 64),
    ],
)
def test_real_dumps(tmp_path: Path, name: str, articles: int, redirects: int) -> None:
    dump = shared(f"wikipedia/{name}")
    build_dump_db(dump, tmp_path / "db.sqlite", num_workers=2, progress=False)
    db = DumpDB(tmp_path / "db.sqlite")
    assert len(db) + int(db.meta.get("count.disambiguation_pages", 0)) == articles
    assert len(db.redirects()) == redirects
    n_links = 0
    for page_id in db.page_ids():
        _, paragraphs = db.get_page(page_id)
        for p in paragraphs:
            for link in p.links:
                anchor = p.text[link.start : link.end]
                assert anchor == anchor.strip() and anchor, (page_id, link)
                assert link.title and "#" not in link.title and "_" not in link.title
                n_links += 1
    assert n_links > 100


def test_real_dump_anchor_texts(tmp_path: Path) -> None:
    dump = shared("wikipedia/enwiki-pages-articles-sample.xml.bz2")
    build_dump_db(dump, tmp_path / "db.sqlite", progress=False)
    db = DumpDB(tmp_path / "db.sqlite")
    assert db.redirects() == {"AccessibleComputing": "Computer accessibility"}
    first = db.get_paragraphs("Computer accessibility")[0]
    assert first.abstract and first.text.startswith("In human–computer interaction, computer accessibility")
    assert ("Human–computer interaction", "human–computer interaction") in spans(first)
