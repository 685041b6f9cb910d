"""Entity disambiguation data (luke.finetuning.ed_data): the AIDA-CoNLL reader, the dispatch between our JSON
Lines and AIDA, candidates files (ours and the deep-ed TSV), attach_candidates and its counts, and the scorer
(metrics.ed_prf, ed_data.score_files). Every fixture is written here; expected offsets are counted by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from luke.errors import DataError
from luke.finetuning.ed_data import (
    CandidatesFile,
    EdDocument,
    EdMention,
    aida_split,
    attach_candidates,
    read_aida,
    read_candidates_file,
    read_documents,
    read_predictions,
    score_files,
)
from luke.finetuning.metrics import ed_prf

T = "\t"
URL = "http://en.wikipedia.org/wiki/"

# Three documents: train ("1 EU"), testa, testb; NIL mentions, multi-token mentions, a percent-encoded URL,
# a YAGO name without URL (\u escape), a blank line right after -DOCSTART- and two blank lines in a row.
AIDA_ROWS = [
    "-DOCSTART- (1 EU)",
    f"EU{T}B{T}EU{T}--NME--",
    "rejects",
    f"German{T}B{T}German{T}Germany{T}{URL}Germany{T}11867{T}/m/0345h",
    "call",
    ".",
    "",
    f"Peter{T}B{T}Peter Blackburn{T}--NME--",
    f"Blackburn{T}I{T}Peter Blackburn{T}--NME--",
    "",
    "-DOCSTART- (947testa CRICKET)",
    "",
    f"LEICESTERSHIRE{T}B{T}LEICESTERSHIRE{T}Leicestershire_County_Cricket_Club{T}"
    f"{URL}Leicestershire_County_Cricket_Club{T}10587",
    "TAKE",
    "OVER",
    "",
    "",
    f"Sao{T}B{T}Sao Paulo{T}S\\u00e3o_Paulo{T}{URL}S%C3%A3o_Paulo{T}390875",
    f"Paulo{T}I{T}Sao Paulo{T}S\\u00e3o_Paulo{T}{URL}S%C3%A3o_Paulo{T}390875",
    f"Zurich{T}B{T}Zurich{T}Z\\u00fcrich",
    f"Zurich{T}B{T}Zurich{T}Z\\u00fcrich",
    "",
    "-DOCSTART- (1163testb SOCCER)",
    f"JAPAN{T}B{T}JAPAN{T}Japan_national_football_team{T}{URL}Japan_national_football_team{T}1{T}/m/x",
    "GET",
    f"LUCKY{T}B{T}LUCKY{T}--NME--",
    "WIN",
    "",
]
DOC1_TEXT = "EU rejects German call .\nPeter Blackburn"
DOC2_TEXT = "LEICESTERSHIRE TAKE OVER\nSao Paulo Zurich Zurich"
DOC3_TEXT = "JAPAN GET LUCKY WIN"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def aida(tmp_path: Path) -> Path:
    return _write(tmp_path / "aida.tsv", AIDA_ROWS)


def _spans(doc: EdDocument) -> list[tuple[str, str | None]]:
    return [(m.text_in(doc), m.title) for m in doc.mentions]


# ------------------------------------------------------------------------------------------ AIDA


def test_read_aida_text_offsets_titles_and_nil(aida: Path) -> None:
    docs = read_aida(aida)
    assert [d.id for d in docs] == ["1 EU", "947testa CRICKET", "1163testb SOCCER"]
    assert [d.text for d in docs] == [DOC1_TEXT, DOC2_TEXT, DOC3_TEXT]
    assert [(m.start, m.end, m.title) for m in docs[0].mentions] == [
        (0, 2, None),
        (11, 17, "Germany"),
        (25, 40, None),
    ]
    assert _spans(docs[1]) == [
        ("LEICESTERSHIRE", "Leicestershire County Cricket Club"),
        ("Sao Paulo", "São Paulo"),  # from the percent-encoded URL
        ("Zurich", "Zürich"),  # from the YAGO name (\u escape), no URL
        ("Zurich", "Zürich"),  # a second B row right after: a second mention
    ]
    assert _spans(docs[2]) == [("JAPAN", "Japan national football team"), ("LUCKY", None)]
    assert all(m.candidates is None for d in docs for m in d.mentions)
    assert docs[1].path == aida and docs[1].line == 11


def test_aida_split_by_document_id(aida: Path) -> None:
    assert aida_split("947testa CRICKET") == "testa"
    assert aida_split("1163testb SOCCER") == "testb"
    assert aida_split("1 EU") == "train"
    assert aida_split("") == "train"
    assert [d.id for d in read_aida(aida, split="testb")] == ["1163testb SOCCER"]
    assert [d.id for d in read_aida(aida, split="train")] == ["1 EU"]
    with pytest.raises(ValueError, match="split"):
        read_aida(aida, split="dev")


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        (["EU"], 1, "before the first '-DOCSTART- (id)'"),
        (["-DOCSTART- -X- O O"], 1, "expected '-DOCSTART- (document id)'"),
        (["-DOCSTART- ()"], 1, "expected '-DOCSTART- (document id)'"),
        (["-DOCSTART- (1 A)", f"EU{T}B"], 2, "2 tab-separated columns"),
        (["-DOCSTART- (1 A)", f"EU{T}B{T}EU"], 2, "3 tab-separated columns"),
        (["-DOCSTART- (1 A)", f"EU{T}X{T}EU{T}--NME--"], 2, "column 2 must be B or I"),
        (["-DOCSTART- (1 A)", f"{T}B{T}EU{T}--NME--"], 2, "empty token"),
        (["-DOCSTART- (1 A)", f"EU{T}B{T} {T}--NME--"], 2, "full mention"),
        (["-DOCSTART- (1 A)", f"EU{T}B{T}EU{T} "], 2, "column 4"),
        (["-DOCSTART- (1 A)", "the", f"EU{T}I{T}EU{T}--NME--"], 3, "continues no mention"),
        (["-DOCSTART- (1 A)", f"A{T}B{T}A B{T}--NME--", "", f"B{T}I{T}A B{T}--NME--"], 4, "continues no mention"),
        (["-DOCSTART- (1 A)", f"A{T}B{T}A B{T}--NME--", f"B{T}I{T}A C{T}--NME--"], 3, "differs from the one it"),
        (["-DOCSTART- (1 A)", f"A{T}B{T}A B{T}X{T}{URL}X{T}1", f"B{T}I{T}A B{T}Y{T}{URL}Y{T}2"], 3, "line 2"),
        (["-DOCSTART- (1 A)", f"EU{T}B{T}EU{T}EU{T}www.example.org/EU{T}1"], 2, "must be a Wikipedia URL"),
        (["-DOCSTART- (1 A)", f"EU{T}B{T}EU{T}EU{T}{URL}EU{T}x1"], 2, "page id"),
        (["-DOCSTART- (1 A)", f"EU{T}B{T}EU{T}EU{T}{URL}EU{T}1{T}m{T}extra{T}more"], 2, "9 tab-separated"),
        (["-DOCSTART- (1 A)", "x", "-DOCSTART- (1 A)"], 3, "already used on line 1"),
    ],
)
def test_read_aida_malformed_rows(tmp_path: Path, rows: list[str], line: int, message: str) -> None:
    path = _write(tmp_path / "bad.tsv", rows)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        read_aida(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert err.value.line == line


def test_read_aida_without_documents(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no '-DOCSTART- \\(id\\)' line"):
        read_aida(_write(tmp_path / "empty.tsv", ["", ""]))


def test_read_documents_dispatches_on_content(tmp_path: Path, aida: Path) -> None:
    record = {"id": "d", "text": "Paris and Texas", "entities": [{"start": 0, "end": 5, "title": "Paris"}]}
    jsonl = tmp_path / "data.tsv"  # the name says TSV, the content is JSON Lines
    jsonl.write_text("\n" + json.dumps(record) + "\n", encoding="utf-8")
    assert _spans(read_documents(jsonl)[0]) == [("Paris", "Paris")]
    assert [d.id for d in read_documents(aida)] == ["1 EU", "947testa CRICKET", "1163testb SOCCER"]
    with pytest.raises(DataError, match=r"other.txt:2: expected entity disambiguation documents"):
        read_documents(_write(tmp_path / "other.txt", ["", "Paris is nice"]))
    with pytest.raises(DataError, match="empty"):
        read_documents(_write(tmp_path / "blank.jsonl", ["  "]))
    bad = _write(tmp_path / "bad.jsonl", [json.dumps(record), '{"id": "e", "text": 3, "entities": []}'])
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'text' must be a string"):
        read_documents(bad)


# ------------------------------------------------------------------------------------------ candidates files


def _deep_ed_row(doc: str, mention: str, candidates: list[str], gold: str = "-1") -> str:
    return T.join([doc, doc, mention, "left context", "right context", "CANDIDATES", *candidates, "GT:", gold])


DEEP_ED_ROWS = [
    # "1 EU": deep-ed leaves out NIL mentions; the document is named by its first word only
    _deep_ed_row("1", "German", ["11867,0.8,Germany", "99,0.2,German language"], "1,11867,0.8,Germany"),
    _deep_ed_row("947testa CRICKET", "LEICESTERSHIRE", ["1,0.6,Leicestershire", "2,0.4,Leicestershire_CCC"]),
    _deep_ed_row("947testa CRICKET", "Sao Paulo", ["3,0.3,Paris, Texas", "4,0.7,São Paulo"]),  # comma in a title
    _deep_ed_row("947testa CRICKET", "Zurich", ["EMPTYCAND"]),
    _deep_ed_row("947testa CRICKET", "ZURICH", ["5,1.0,Zürich"]),  # the second Zurich, matched in order
    _deep_ed_row("2 OTHER", "Paris", ["6,1,Paris"]),  # a document not in the data: ignored
]


def test_deep_ed_candidates_file(tmp_path: Path, aida: Path) -> None:
    source = read_candidates_file(_write(tmp_path / "aida_testA.csv", DEEP_ED_ROWS))
    assert isinstance(source, CandidatesFile) and source.kind == "deep-ed" and len(source) == 6
    assert source.candidates("são paulo") == []  # accents differ: no row
    assert source.candidates("sao-paulo", 1) == [("Paris, Texas", 0.3)]  # file order, not yet sorted
    docs = read_aida(aida)
    counts = attach_candidates(docs, source, k=30)
    assert [m.candidates for m in docs[0].mentions] == [[], [("Germany", 0.8), ("German language", 0.2)], []]
    assert [m.candidates for m in docs[1].mentions] == [
        [("Leicestershire", 0.6), ("Leicestershire CCC", 0.4)],
        [("São Paulo", 0.7), ("Paris, Texas", 0.3)],  # sorted by prior
        [],
        [("Zürich", 1.0)],
    ]
    assert [m.candidates for m in docs[2].mentions] == [None, None]  # testb is not in this file
    assert counts == {
        "mentions": 9, "attached": 7, "with_candidates": 4, "no_candidates": 3, "not_looked_up": 2,
        "ambiguous": 3, "gold_mentions": 6, "gold_in_candidates": 3, "dropped_out_of_vocab": 0,
        "documents_in_file": 2, "unmatched_rows": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (T.join(["d", "d", "m", "l", "r", "CANDS", "1,0.5,A", "GT:", "-1"]), "the deep-ed layout"),
        (T.join(["d", "d", "m", "l", "r", "CANDIDATES", "1,0.5,A", "2,0.5,B", "-1"]), "no 'GT:' column"),
        (T.join(["d", "d", "m", "l", "r", "CANDIDATES", "1,0.5,A", "GT:", "-1", "x"]), "2 columns after 'GT:'"),
        (T.join(["d", "d", "m", "l", "r", "CANDIDATES", "1,0.5", "GT:", "-1"]), "expected WIKI_ID,PRIOR,TITLE"),
        (T.join(["d", "d", "m", "l", "r", "CANDIDATES", "1,high,A", "GT:", "-1"]), "'1,high,A'"),
        (T.join(["d", "d", "m", "l", "r", "CANDIDATES", "1,-0.1,A", "GT:", "-1"]), "WIKI_ID,PRIOR,TITLE"),
        (T.join(["d", "d", " ", "l", "r", "CANDIDATES", "1,0.5,A", "GT:", "-1"]), "empty document name"),
    ],
)
def test_deep_ed_malformed_rows(tmp_path: Path, row: str, message: str) -> None:
    good = _deep_ed_row("d", "m", ["1,0.5,A"])
    path = _write(tmp_path / "cands.csv", [good, row])
    with pytest.raises(DataError, match=message) as err:
        read_candidates_file(path)
    assert str(err.value).startswith(f"{path}:2: ")


def test_jsonl_candidates_file(tmp_path: Path, aida: Path) -> None:
    doc = "1163testb SOCCER"
    records = [
        {"id": doc, "start": 0, "end": 5, "candidates": [["Japan", 0.5], ["Japan_national_football_team", 0.4]]},
        {"id": doc, "start": 10, "end": 15, "candidates": []},
        {"id": doc, "start": 6, "end": 9, "candidates": [["Get", 1]], "mention": "GET"},  # GET is no mention
    ]
    path = tmp_path / "cands.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    source = read_candidates_file(path)
    assert source.kind == "jsonl" and len(source) == 3
    assert source.candidates("get") == [("Get", 1.0)]
    docs = read_aida(aida, split="testb")
    counts = attach_candidates(docs, source, k=1)
    assert [m.candidates for m in docs[0].mentions] == [[("Japan", 0.5)], []]  # k=1
    assert counts["unmatched_rows"] == 1 and counts["gold_in_candidates"] == 0 and counts["attached"] == 2
    attach_candidates(docs, source, k=2, overwrite=True)
    assert docs[0].mentions[0].candidates == [("Japan", 0.5), ("Japan national football team", 0.4)]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "d", "start": 0, "candidates": []}, "missing field\\(s\\) 'end'"),
        ({"id": True, "start": 0, "end": 1, "candidates": []}, "field 'id' must be a string"),
        ({"id": "d", "start": 2, "end": 1, "candidates": []}, "0 <= start < end"),
        ({"id": "d", "start": 0, "end": 1.5, "candidates": []}, "character offsets"),
        ({"id": "d", "start": 0, "end": 1, "candidates": [["A"]]}, "candidates: expected \\[title, prior\\] pairs"),
        ({"id": "d", "start": 0, "end": 1, "candidates": [["A", "0.5"]]}, "expected \\[title, prior\\]"),
        ({"id": "d", "start": 0, "end": 1, "candidates": {"A": 1}}, "must be a list"),
        ({"id": "d", "start": 0, "end": 1, "candidates": [], "mention": 3}, "'mention' must be a string"),
        ({"id": "a", "start": 0, "end": 1, "candidates": []}, "already given on line 1"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_jsonl_candidates_malformed(tmp_path: Path, record: object, message: str) -> None:
    path = tmp_path / "cands.jsonl"
    first = {"id": "a", "start": 0, "end": 1, "candidates": [["A", 1.0]]}
    path.write_text(json.dumps(first) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        read_candidates_file(path)
    assert str(err.value).startswith(f"{path}:2: ")


def test_candidates_file_that_fits_no_document(tmp_path: Path, aida: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        read_candidates_file(_write(tmp_path / "blank.csv", [""]))
    with pytest.raises(DataError, match=r"plain.txt:1: expected candidates as JSON Lines"):
        read_candidates_file(_write(tmp_path / "plain.txt", ["Paris 0.5"]))
    docs = read_aida(aida)
    other = read_candidates_file(_write(tmp_path / "other.csv", [_deep_ed_row("77 X", "m", ["1,1,A"])]))
    with pytest.raises(DataError, match="none of the 3 documents .* has candidates in this file"):
        attach_candidates(docs, other)
    wrong = read_candidates_file(_write(tmp_path / "wrong.csv", [_deep_ed_row("1 EU", "Berlin", ["1,1,Berlin"])]))
    with pytest.raises(DataError, match=r"wrong.csv:1: none of its 1 rows for these documents matches a mention"):
        attach_candidates(docs, wrong)


# ------------------------------------------------------------------------------------------ attach_candidates


class _Source:
    """A candidate source by mention text (the interface of MentionCandidates)."""

    def __init__(self, table: dict[str, list[tuple[str, float]]]) -> None:
        self.table, self.calls = table, []

    def candidates(self, mention_text: str, k: int = 30) -> list[tuple[str, float]]:
        self.calls.append((mention_text, k))
        return self.table.get(mention_text, [])[:k]


def test_attach_candidates_normalises_resolves_filters_and_counts() -> None:
    text = "paris and texas and nowhere and Lyon"
    docs = [
        EdDocument("d1", text, [
            EdMention(0, 5, "Paris"),
            EdMention(10, 15, "paris,_Texas"),  # gold compared after normalisation
            EdMention(20, 27, None),  # NIL, no candidate
            EdMention(32, 36, "Lyon", candidates=[("Lyon", 1.0)]),  # given in the file: kept, not looked up
        ]),
    ]  # fmt: skip
    source = _Source({
        "paris": [("paris", 0.5), ("Paree", 0.2), ("Paris,_Texas", 0.2), ("Paris (film)", 0.1)],
        "texas": [("Texas", 0.7), ("Paris, Texas", 0.3)],
    })  # fmt: skip
    vocab = {"Paris", "Texas", "Paris, Texas", "Lyon"}
    counts = attach_candidates(docs, source, k=4, entity_vocab=vocab, redirects={"Paree": "Paris"})
    assert source.calls == [("paris", 4), ("texas", 4), ("nowhere", 4)]
    m = docs[0].mentions
    # "Paree" redirects to Paris: priors added (0.5 + 0.2); "Paris (film)" is not in the vocabulary
    assert m[0].candidates == [("Paris", pytest.approx(0.7)), ("Paris, Texas", 0.2)]
    assert m[1].candidates == [("Texas", 0.7), ("Paris, Texas", 0.3)]
    assert m[2].candidates == [] and m[3].candidates == [("Lyon", 1.0)]
    assert counts == {
        "mentions": 4, "attached": 3, "with_candidates": 3, "no_candidates": 1, "not_looked_up": 0,
        "ambiguous": 2, "gold_mentions": 3, "gold_in_candidates": 3, "dropped_out_of_vocab": 1,
    }  # fmt: skip
    # nothing left to look up; overwrite redoes all, with a callable for redirects and without a vocabulary
    source.calls.clear()
    assert attach_candidates(docs, source)["attached"] == 0 and source.calls == []
    counts = attach_candidates(docs, source, k=1, redirects=lambda t: {"Paree": "Paris (film)"}.get(t), overwrite=True)
    assert m[0].candidates == [("Paris", 0.5)] and m[3].candidates == []  # "Lyon" is not in the source
    assert counts["attached"] == 4 and counts["ambiguous"] == 0 and counts["gold_in_candidates"] == 1
    with pytest.raises(ValueError, match="k must be"):
        attach_candidates(docs, source, k=0)


# ------------------------------------------------------------------------------------------ scoring


def _doc(doc_id: str, *mentions: tuple[int, int, str | None], predicted: bool = False, text: str = "x" * 40):
    out = [EdMention(s, e, None if predicted else t, predicted=t if predicted else None) for s, e, t in mentions]
    return EdDocument(doc_id, text, out)


def test_ed_prf_strong_match_nil_and_normalisation() -> None:
    gold = [
        _doc("a", (0, 5, "Paris"), (6, 10, "new_York_City"), (11, 15, None), (16, 20, "Lyon")),
        _doc("b", (0, 3, "Texas")),
    ]
    pred = [
        _doc("a", (0, 5, "paris"), (6, 10, "New York City"), (11, 15, None), (16, 20, "Lyon_(film)"),
             (21, 25, "Rome"), predicted=True),  # a span not in gold costs precision
        _doc("b", (0, 4, "Texas"), predicted=True),  # another span: not a match
    ]  # fmt: skip
    out = ed_prf(gold, pred)
    # correct 2 (Paris, New York City); predicted with a title 5 (NIL not counted); gold with a title 4
    assert out["correct"] == 2 and out["predicted_mentions"] == 5 and out["gold_mentions"] == 4
    assert out["precision"] == pytest.approx(40.0) and out["recall"] == pytest.approx(50.0)
    assert out["f1"] == pytest.approx(2 * 40 * 50 / 90) and out["accuracy"] == pytest.approx(50.0)
    assert out["documents"] == 2 and out["missing_documents"] == 0 and out["unknown_documents"] == 0
    assert "ambiguous_f1" not in out  # no candidates known
    # a NIL gold mention predicted as an entity: a wrong prediction, not a gold mention
    out = ed_prf([_doc("a", (0, 5, None))], [_doc("a", (0, 5, "Paris"), predicted=True)])
    assert (out["correct"], out["predicted_mentions"], out["gold_mentions"]) == (0, 1, 0)
    assert out["precision"] == 0.0 and out["recall"] == 0.0 and out["f1"] == 0.0


def test_ed_prf_missing_unknown_and_ambiguous() -> None:
    gold = [_doc("a", (0, 5, "Paris")), _doc("b", (0, 3, "Texas"), (4, 8, "Lyon"))]
    gold[1].mentions[0].candidates = [("Texas", 0.6), ("Texas (band)", 0.4)]
    gold[1].mentions[1].candidates = [("Lyon", 1.0)]
    pred = [_doc("b", (0, 3, "Texas"), (4, 8, "Lyon"), predicted=True), _doc("zzz", (0, 2, "X"), predicted=True),
            _doc("yyy", predicted=True)]  # fmt: skip
    out = ed_prf(gold, pred)
    assert out["missing_documents"] == 1  # "a": its mention is a miss
    assert out["unknown_documents"] == 2 and out["first_unknown_document"] == "zzz"  # ignored
    assert (out["correct"], out["predicted_mentions"], out["gold_mentions"]) == (2, 2, 3)
    assert out["precision"] == pytest.approx(100.0) and out["recall"] == pytest.approx(200 / 3)
    assert out["ambiguous_gold_mentions"] == 1 and out["ambiguous_accuracy"] == pytest.approx(100.0)
    with pytest.raises(DataError, match="appears twice in the predicted documents"):
        ed_prf(gold, [pred[0], pred[0]])
    empty = ed_prf(gold, [])
    assert empty["recall"] == 0.0 and empty["precision"] == 0.0 and empty["missing_documents"] == 2


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_score_files_jsonl_and_aida_gold(tmp_path: Path, aida: Path) -> None:
    text = "Paris is in France."
    gold = _jsonl(tmp_path / "gold.jsonl", [
        {"id": "d1", "text": text, "entities": [{"start": 0, "end": 5, "title": "Paris"},
                                               {"start": 12, "end": 18, "title": "France"}]},
        {"id": "d2", "text": "Nobody", "entities": [{"start": 0, "end": 6, "title": None}]},
    ])  # fmt: skip
    preds = _jsonl(tmp_path / "preds.jsonl", [
        {"id": "d1", "text": text, "entities": [
            {"start": 0, "end": 5, "mention": "Paris", "title": "paris", "score": 0.9},
            {"start": 12, "end": 18, "mention": "France", "title": "France_national_team", "score": 0.5}]},
        {"id": "d9", "text": "?", "entities": []},
    ])  # fmt: skip
    out = score_files(gold, preds)
    assert (out["precision"], out["recall"], out["f1"]) == (50.0, 50.0, 50.0)
    assert out["unknown_documents"] == 1 and out["first_unknown_document"] == "d9"
    assert [m.predicted for m in read_predictions(preds)[0].mentions] == ["paris", "France_national_team"]
    # an empty predictions file: every gold document is missing
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    out = score_files(gold, empty)
    assert out["f1"] == 0.0 and out["missing_documents"] == 2 and out["gold_mentions"] == 2
    # AIDA gold: predictions written from the AIDA documents themselves
    docs = read_aida(aida)
    records = [{"id": d.id, "text": d.text, "entities": [
        {"start": m.start, "end": m.end, "title": m.title and m.title.replace(" ", "_")} for m in d.mentions]}
        for d in docs[:2]]  # fmt: skip
    out = score_files(aida, _jsonl(tmp_path / "aida_preds.jsonl", records))
    assert out["precision"] == 100.0 and out["gold_mentions"] == 6 and out["correct"] == 5  # testb missing
    bad = _jsonl(tmp_path / "bad.jsonl", [{"id": "d1", "text": text, "entities": [{"start": 0, "end": 99}]}])
    with pytest.raises(DataError, match=r"bad.jsonl:1: entities\[0\] = \[0, 99\] is out of range"):
        score_files(gold, bad)


def test_task_reads_aida_with_a_deep_ed_candidates_file(tmp_path: Path, aida: Path) -> None:
    """The task's reader goes through read_documents and attach_candidates (deep-ed rows matched in order)."""
    from luke.finetuning.tasks.entity_disambiguation import EntityDisambiguationTask

    rows = [
        *DEEP_ED_ROWS,
        _deep_ed_row("1163testb SOCCER", "JAPAN", ["1,0.5,Japan", "2,0.5,Japan_national_football_team"]),
    ]
    task = EntityDisambiguationTask(candidates_file=_write(tmp_path / "cands.csv", rows), max_candidates=1)
    docs = task.read(aida)
    assert [d.text for d in docs] == [DOC1_TEXT, DOC2_TEXT, DOC3_TEXT]
    counts = task.attach_candidates(docs)  # what featurize does, with the tokenizer's entity vocabulary
    assert counts["attached"] == 9 and counts["not_looked_up"] == 0 and counts["documents_in_file"] == 3
    assert [[m.candidates for m in d.mentions] for d in docs] == [
        [[], [("Germany", 0.8)], []],
        [[("Leicestershire", 0.6)], [("São Paulo", 0.7)], [], [("Zürich", 1.0)]],
        [[("Japan", 0.5)], []],  # LUCKY (NIL) has no row: no candidate
    ]
