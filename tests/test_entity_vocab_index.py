"""Large entity vocabularies through :mod:`luke.entity_index`: the same answers as the dict form, and the cache.

The index is forced on small generated files with ``LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES=0`` and the cache is
kept in a temp ``LUKE_CACHE_DIR``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

import luke.entity_index as entity_index
import luke.entity_vocab as entity_vocab_module
import luke.entity_vocab_json as entity_vocab_json
from conftest import minilm_folder
from luke.entity_index import EntityIndex, IndexCache
from luke.entity_vocab import DEFAULT_SPECIALS, EntityVocab
from luke.errors import DataError

LANGS = ["en", "ja", "de", "fr", "zh-yue"]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every file indexed, caches under a temp folder."""
    monkeypatch.setenv("LUKE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES", "0")
    monkeypatch.delenv("LUKE_ENTITY_VOCAB_CACHE", raising=False)
    return tmp_path / "cache" / "entity-vocab"


def _in_dicts(path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs) -> EntityVocab:
    with monkeypatch.context() as m:
        m.setenv("LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES", str(2**62))
        vocab = EntityVocab.load(path, **kwargs)
    assert vocab._index is None
    return vocab


def _mluke_mapping(seed: int = 0, n: int = 300) -> dict[str, int]:
    """An mLUKE-style ``{lang:Title: id}`` mapping with every case the lookups distinguish, keys out of id order."""
    rng = random.Random(seed)
    pairs = [("[PAD]", 0), ("[UNK]", 1), ("[MASK]", 2)]
    special = {
        3: ["en:Paris", "de:Paris (Begriffsklärung)"],
        4: ["fr:Paris", "ja:パリ"],  # "Paris" is ambiguous without a language
        5: ["en:Tokyo", "de:Tokyo", "ja:東京都"],  # "Tokyo": one id in two languages
        6: ["en:Star Wars: Episode IV", "ja:スター・ウォーズ"],
        7: ["en:ja:Title", "zh-yue:東京"],  # a title that looks like a lang:Title key
        8: ["en:\U0001f600 Emoji", "en:Ünïcödé"],
    }
    for entity_id, keys in special.items():
        pairs += [(key, entity_id) for key in keys]
    for entity_id in range(9, n):
        for lang in rng.sample(LANGS, rng.randint(1, 4)):
            title = rng.choice(["Kyoto", "Osaka", "Nara", "Kobe"]) + f" {entity_id}"
            pairs.append((f"{lang}:{title}", entity_id))
    pairs.append(("[MASK2]", n))
    rng.shuffle(pairs)  # ids interleaved: the loader groups the keys of an id, keeping their order
    return dict(pairs)


def _write(path: Path, mapping: dict[str, int]) -> Path:
    path.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    return path


def test_lone_surrogates_round_trip(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON may escape a lone surrogate (``\\ud800``): Python reads it into the title, and so does the index."""
    path = tmp_path / "entity_vocab.json"
    path.write_text('{"[PAD]": 0, "en:\\ud800 x": 1, "ja:\\udfff": 2}', encoding="utf-8")
    dicts = _in_dicts(path, monkeypatch)
    indexed = EntityVocab.load(path)
    assert indexed._index is not None and list(indexed.items()) == list(dicts.items())
    assert indexed.titles(1) == [("\ud800 x", "en")] and indexed["ja:\udfff"] == 2 and indexed["\ud800 x"] == 1


def _lookup(vocab: EntityVocab, query: object) -> object:
    """Every answer a lookup gives (id or the KeyError message), for comparing two vocabularies."""
    try:
        item = vocab[query]  # type: ignore[index]
    except KeyError as e:
        item = ("KeyError", str(e))
    if isinstance(query, str):
        return item, vocab.get_id(query), vocab.get_id(query, default=-7), query in vocab
    return item, vocab.get_id(query[0], query[1]), query in vocab  # type: ignore[index]


def _queries(mapping: dict[str, int], rng: random.Random) -> list[object]:
    queries: list[object] = ["Paris", "Tokyo", "ja:Title", "Title", "Nope", "xx:Paris", "en:Nope", "[MASK]"]
    for key in mapping:
        lang, _, title = key.partition(":") if ":" in key and not key.startswith("[") else ("", "", key)
        queries += [key, title, (title, lang or None), (title, rng.choice(LANGS)), (title + "?", lang or None)]
    queries += [("[MASK]", "ja"), ("[PAD]", None), ("Paris", "fr"), ("パリ", "ja"), ("東京", "zh-yue")]
    return queries


def _ids_answers(vocab: EntityVocab) -> list[object]:
    out = []
    for entity_id in [*range(len(vocab)), -1, len(vocab), "3", 2.0, True, np.int64(4)]:
        try:
            out.append((vocab.titles(entity_id), vocab.count(entity_id)))  # type: ignore[arg-type]
        except KeyError as e:
            out.append(str(e))
    return out


# ---------------------------------------------------------------------------------------------- same answers
def test_indexed_json_answers_every_lookup_like_the_dicts(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = _mluke_mapping()
    path = _write(tmp_path / "entity_vocab.json", mapping)
    dicts = _in_dicts(path, monkeypatch)
    for indexed in (EntityVocab.load(path), EntityVocab.load(path)):  # built, then from the cache
        assert indexed._index is not None and indexed.source == path
        assert len(indexed) == len(dicts) == 301
        for query in _queries(mapping, random.Random(1)):
            assert _lookup(indexed, query) == _lookup(dicts, query), query
        assert _ids_answers(indexed) == _ids_answers(dicts)
        assert list(indexed.items()) == list(dicts.items()) and list(indexed) == list(dicts)
        assert indexed.to_dict() == dicts.to_dict() == mapping
        assert indexed.special_ids() == dicts.special_ids() == {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 300}
        assert indexed == dicts and dicts == indexed
        assert repr(indexed) == repr(dicts)
    assert isinstance(indexed._index.arrays["hashes"].base, np.memmap)  # the second load mapped the cache
    # the cases spelled out
    assert indexed.get_id("Paris") is None and indexed.get_id("Paris", language="fr") == 4
    with pytest.raises(KeyError, match=r"languages \['en', 'fr'\]"):
        indexed["Paris"]
    assert indexed["Tokyo"] == 5 and indexed["ja:東京都"] == 5 and indexed[("東京都", "ja")] == 5
    assert indexed["ja:Title"] == 7  # no Japanese "Title": the plain title "ja:Title" (English) is found
    assert indexed.get_id("[MASK]", language="ja") == 2
    assert indexed.titles(8) == [("\U0001f600 Emoji", "en"), ("Ünïcödé", "en")]
    with pytest.raises(KeyError, match=r"entity 'Nope' is not in the entity vocabulary \(301 ids\)"):
        indexed["Nope"]
    # saving writes the same files
    for suffix in (".json", ".jsonl"):
        dicts.save(tmp_path / f"a{suffix}")
        indexed.save(tmp_path / f"b{suffix}")
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_indexed_jsonl_and_tsv_keep_counts(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    if suffix == ".tsv":
        source = EntityVocab.from_counts([(f"Title {i}", 1000 - i) for i in range(200)] + [("Paris", 7)])
    else:
        source = EntityVocab.from_counts([(f"Title {i}", i) for i in range(200)], language="en")
        source.add("Paris", "fr", count=5)
        source.add("Paris", "de", count=6)
    path = tmp_path / f"entity_vocab{suffix}"
    source.save(path)
    dicts = _in_dicts(path, monkeypatch)
    indexed = EntityVocab.load(path)
    assert indexed._index is not None and indexed == dicts == source
    assert _ids_answers(indexed) == _ids_answers(dicts)
    for query in ["Paris", ("Paris", "fr"), ("Paris", "en"), "Title 3", ("Title 3", "en"), "fr:Paris", "[UNK]"]:
        assert _lookup(indexed, query) == _lookup(dicts, query)
    assert indexed.count(len(indexed) - 1) == dicts.count(len(dicts) - 1) > 0


def test_multilingual_flag_is_honoured_and_part_of_the_cache_key(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "entity_vocab.json", {"[PAD]": 0, "en:Japan": 1, "Star Wars: IV": 2})
    assert EntityVocab.load(path)["en:Japan"] == 1  # not every key is lang:Title: plain titles
    assert EntityVocab.load(path).titles(1) == [("en:Japan", None)]
    with pytest.raises(DataError, match="key 'Star Wars: IV' is not of the form 'lang:title'"):
        EntityVocab.load(path, multilingual=True)
    other = _write(tmp_path / "other.json", {"[PAD]": 0, "en:Japan": 1})
    assert EntityVocab.load(other, multilingual=False).titles(1) == [("en:Japan", None)]
    assert EntityVocab.load(other).titles(1) == [("Japan", "en")]
    assert EntityVocab.load(other, multilingual=False).titles(1) == [("en:Japan", None)]


def test_add_turns_an_indexed_vocabulary_into_dicts(cache_dir: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "entity_vocab.json", _mluke_mapping(n=50))
    vocab = EntityVocab.load(path)
    assert vocab._index is not None
    assert vocab.add("Brand New", "en", count=3) == 51
    assert vocab._index is None and vocab["en:Brand New"] == 51 and vocab.count(51) == 3 and vocab["Tokyo"] == 5
    with pytest.raises(DataError, match="duplicate title 'Tokyo'"):
        vocab.add("Tokyo", "en")
    assert EntityVocab.load(path)["en:Tokyo"] == 5 and "en:Brand New" not in EntityVocab.load(path)


def test_tokenizer_with_an_indexed_vocabulary(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from luke.tokenization import LukeTokenizer

    path = _write(tmp_path / "entity_vocab.json", _mluke_mapping(n=50))
    words = minilm_folder()
    indexed = LukeTokenizer.from_pretrained(words, entity_vocab=path)
    with monkeypatch.context() as m:
        m.setenv("LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES", str(2**62))
        dicts = LukeTokenizer.from_pretrained(words, entity_vocab=path)
    assert indexed.entity_vocab._index is not None and dicts.entity_vocab._index is None
    text = "Tokyo and Paris and Nowhere"
    spans = [(0, 5), (10, 15), (20, 27)]
    for entities, language in [
        (["Tokyo", "Paris", "Nowhere"], None),
        (["ja:東京都", "fr:Paris", "[MASK]"], None),
        ([("Tokyo", "de"), ("Paris", "fr"), ("[MASK]", "ja")], None),
        (["Tokyo", "Paris", "パリ"], "ja"),
    ]:
        kwargs = {"entities": entities, "entity_spans": spans, "entity_language": language}
        assert indexed(text, **kwargs) == dicts(text, **kwargs)
        assert indexed(text, **kwargs)["entity_ids"] != [indexed.entity_unk_token_id] * 3


# ---------------------------------------------------------------------------------------------- the cache
def _folders(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir()) if cache_dir.is_dir() else []


def test_second_load_reads_the_cache_not_the_file(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "entity_vocab.json", _mluke_mapping())
    first = EntityVocab.load(path)
    (folder,) = _folders(cache_dir)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{name}.npy" for name in entity_index._ARRAYS] + ["header.json"]
    )

    def no_parsing(*args, **kwargs):
        raise AssertionError("the source file was parsed again")

    monkeypatch.setattr(entity_vocab_module, "read_text", no_parsing)
    monkeypatch.setattr(entity_vocab_module, "_read_json", no_parsing)
    monkeypatch.setattr(entity_vocab_module, "text_lines", no_parsing)
    monkeypatch.setattr(entity_vocab_module, "index_json_file", no_parsing)
    second = EntityVocab.load(path)
    assert second == first and second["ja:東京都"] == 5 and _folders(cache_dir) == [folder]


@pytest.mark.parametrize("change", ["size", "mtime"])
def test_a_changed_source_file_is_parsed_again(cache_dir: Path, tmp_path: Path, change: str) -> None:
    mapping = _mluke_mapping()
    path = _write(tmp_path / "entity_vocab.json", mapping)
    assert EntityVocab.load(path)["en:Tokyo"] == 5
    (old,) = _folders(cache_dir)
    stat = path.stat()
    if change == "size":
        mapping["en:Tokyo 2"] = mapping.pop("en:Tokyo")
    else:  # same size, same content length: only the modification time tells
        mapping["en:Tokya"] = mapping.pop("en:Tokyo")
    _write(path, mapping)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert (path.stat().st_size != stat.st_size) == (change == "size")
    vocab = EntityVocab.load(path)
    assert "en:Tokyo" not in vocab and vocab["en:Tokyo 2" if change == "size" else "en:Tokya"] == 5
    (new,) = _folders(cache_dir)  # the stale folder is gone
    assert new != old


def _truncate(folder: Path) -> None:
    path = folder / "hashes.npy"
    path.write_bytes(path.read_bytes()[:-9])


def _bad_header(folder: Path) -> None:
    (folder / "header.json").write_text("{not json", encoding="utf-8")


def _edited_header(folder: Path) -> None:  # valid JSON whose checksum no longer matches
    header = json.loads((folder / "header.json").read_text(encoding="utf-8"))
    header["languages"] = list(reversed(header["languages"]))
    (folder / "header.json").write_text(json.dumps(header), encoding="utf-8")


def _wrong_size(folder: Path) -> None:  # a valid .npy of another length
    ids = np.load(folder / "ids.npy")
    np.save(folder / "ids.npy", ids[:-1])


def _flipped_bytes(folder: Path) -> None:  # same size, other contents
    ids = np.load(folder / "ids.npy")
    np.save(folder / "ids.npy", ids[::-1].copy())


def _missing_file(folder: Path) -> None:
    (folder / "order.npy").unlink()


def _pickle_instead(folder: Path) -> None:  # never unpickled
    np.save(folder / "counts.npy", np.array([object()], dtype=object), allow_pickle=True)


@pytest.mark.parametrize(
    "damage", [_truncate, _bad_header, _edited_header, _wrong_size, _flipped_bytes, _missing_file, _pickle_instead]
)
def test_a_damaged_cache_is_rebuilt_silently(cache_dir: Path, tmp_path: Path, damage) -> None:
    mapping = _mluke_mapping()
    path = _write(tmp_path / "entity_vocab.json", mapping)
    EntityVocab.load(path)
    (folder,) = _folders(cache_dir)
    damage(folder)
    cache = IndexCache.for_source(path, path.stat(), variant=".json:None")
    assert cache is not None and cache.folder == folder and cache.open() is None
    vocab = EntityVocab.load(path)
    assert vocab.to_dict() == mapping
    assert cache.open() is not None  # rewritten


def test_an_unwritable_cache_means_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("LUKE_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be created
    monkeypatch.setenv("LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES", "0")
    path = _write(tmp_path / "entity_vocab.json", _mluke_mapping())
    vocab = EntityVocab.load(path)
    assert vocab._index is not None and vocab["ja:東京都"] == 5
    assert not isinstance(vocab._index.arrays["hashes"].base, np.memmap)

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setenv("LUKE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(entity_index, "atomic_output", read_only)
    assert EntityVocab.load(path)["fr:Paris"] == 4
    assert not (tmp_path / "cache").exists()


def test_cache_can_be_turned_off(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUKE_ENTITY_VOCAB_CACHE", "0")
    path = _write(tmp_path / "entity_vocab.json", _mluke_mapping())
    vocab = EntityVocab.load(path)
    assert vocab._index is not None and vocab["ja:東京都"] == 5  # still indexed, in memory
    assert not cache_dir.exists()


def test_the_threshold_is_the_source_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUKE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES", raising=False)
    small = _write(tmp_path / "small.json", {"[PAD]": 0, "[UNK]": 1})
    large = _write(tmp_path / "large.json", _mluke_mapping())
    assert EntityVocab.load(small)._index is None and EntityVocab.load(large)._index is None
    monkeypatch.setattr(entity_index, "INDEX_MIN_BYTES", small.stat().st_size + 1)
    assert EntityVocab.load(small)._index is None and EntityVocab.load(large)._index is not None
    assert entity_index.INDEX_MIN_BYTES < 8 * 2**20 and IndexCache  # the default is a few MB


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("suffix", "content", "message"),
    [
        (".tsv", "[PAD]\t0\nFrance\t5\nFrance\t3\n", r"v\.tsv:3: duplicate title 'France'"),
        (".tsv", "[PAD]\t0\nFrance\tmany\n", r"v\.tsv:2: count 'many' is not an integer"),
        (".jsonl", '{"id": 0, "entities": [["[PAD]", null]]}\n{"id": 1, \n', r"v\.jsonl:2: invalid JSON"),
        (
            ".jsonl",
            '{"id": 0, "entities": [["[PAD]", null]]}\n{"id": 2, "entities": [["A", null]]}\n',
            "id 1 is missing",
        ),
        (".json", '{"[PAD]": 0,\n "en:A": 1,\n "en:A": 2}', r"v\.json: duplicate title 'en:A' in JSON object"),
        (".json", '{"[PAD]": 0,\n "en:A": 1,\n "en:B": 3}', r"v\.json: entity ids are not contiguous: id 2 is missing"),
        (".json", '{"[PAD]": 0, "en:A": "1"}', "integer id, got 'en:A': '1'"),
        (".json", '{"[PAD]": 0, "en:A": -1}', "negative entity id -1"),
        (".json", '{"[PAD]": 0, "en:A": 1, "en: ": 2}', r"v\.json: entity id 2: title must be a non-empty string"),
        (".json", '{"[PAD]": 0,\n "en:A": 1,\n "en:B" 2}', r"v\.json:3: invalid JSON"),
        (".json", '{"[PAD]": 0, "en:A": 100000000000000000000000}', "id 1 is missing"),
        (".json", "[1, 2]", "expected a JSON object"),
        (".json", "{}", "the entity vocabulary is empty"),
    ],
)
def test_source_errors_are_the_same_and_nothing_is_cached(
    cache_dir: Path, tmp_path: Path, suffix: str, content: str, message: str
) -> None:
    path = tmp_path / f"v{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        EntityVocab.load(path)
    assert _folders(cache_dir) == []


# ---------------------------------------------------------------------------------------------- the fast .json reader
def _fast(path: Path, multilingual: bool | None = None) -> EntityVocab | None:
    """The vocabulary :mod:`luke.entity_vocab_json` reads from ``path`` (None: it leaves the file to json)."""
    index = entity_vocab_json.index_json_file(path, multilingual, DEFAULT_SPECIALS)
    if index is None:
        return None
    vocab = EntityVocab()
    vocab._index = index
    return vocab


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few bytes / keys / titles, so that every chunk boundary is crossed."""
    monkeypatch.setattr(entity_vocab_json, "_SCAN_CHUNK", 7)
    monkeypatch.setattr(entity_vocab_json, "_KEY_CHUNK", 3)
    monkeypatch.setattr(entity_vocab_json, "_SPAN_CHUNK", 2)
    monkeypatch.setattr(entity_index, "_HASH_CHUNK", 5)


FAST_CASES = {
    "compact": lambda m: json.dumps(m, ensure_ascii=False, separators=(",", ":")),
    "indented": lambda m: json.dumps(m, ensure_ascii=False, indent=2),
    "ascii escapes": lambda m: json.dumps(m, indent="\t"),  # \uXXXX and surrogate pairs for every non-ASCII
    "odd whitespace": lambda m: " \r\n{ " + " ,\n\t".join(f"{json.dumps(k)}\t:\r\n {v} " for k, v in m.items()) + "}\n",
}


@pytest.mark.parametrize("layout", FAST_CASES)
def test_fast_json_reader_reads_what_json_reads(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None, layout: str
) -> None:
    mapping = _mluke_mapping(n=60)
    mapping |= {  # escapes a title needs, a long language code, a title with ':' and '"'
        'en:Say "Hi": \\o/': 60,
        "en:Tab\there\nnewline \u0000 nul": 61,
        "zh-min-nan:Tâi-oân": 62,
        "be-tarask:Мінск: горад": 62,
        "en:0": 63,
    }
    path = tmp_path / "entity_vocab.json"
    path.write_text(FAST_CASES[layout](mapping), encoding="utf-8")
    fast = _fast(path)
    assert fast is not None  # the fast reader vouches for the file
    dicts = _in_dicts(path, monkeypatch)
    assert list(fast.items()) == list(dicts.items()) and fast.to_dict() == mapping
    assert fast._index.languages == ("be-tarask", "de", "en", "fr", "ja", "zh-min-nan", "zh-yue")
    for query in _queries(mapping, random.Random(2)):
        assert _lookup(fast, query) == _lookup(dicts, query), query
    assert fast["zh-min-nan:Tâi-oân"] == 62 and fast[("Мінск: горад", "be-tarask")] == 62
    assert fast['en:Say "Hi": \\o/'] == 60 and fast.titles(61) == [("Tab\there\nnewline \u0000 nul", "en")]
    for multilingual in (False, True):
        assert list(_fast(path, multilingual).items()) == list(
            _in_dicts(path, monkeypatch, multilingual=multilingual).items()
        )


def test_fast_json_reader_plain_titles(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LUKE's monolingual vocabulary: titles with ':' that are no language prefix stay whole."""
    mapping = {"[PAD]": 0, "[UNK]": 1, "Star Wars: Episode IV": 2, "en:Japan": 3, "ja:東京": 4, "Paris": 5}
    path = _write(tmp_path / "entity_vocab.json", mapping)
    fast = _fast(path)
    assert fast is not None and list(fast.items()) == list(_in_dicts(path, monkeypatch).items())
    assert fast.titles(3) == [("en:Japan", None)] and fast._index.languages == ()
    specials = _write(tmp_path / "specials.json", {"[MASK]": 0, "[UNK]": 1, "[PAD]": 2, "[MASK2]": 3})
    assert list(_fast(specials).items()) == [
        (("[MASK]", None), 0),
        (("[UNK]", None), 1),
        (("[PAD]", None), 2),
        (("[MASK2]", None), 3),
    ]


REFUSED = {
    "repeated key": ('{"[PAD]": 0, "en:A": 1, "en:A": 2}', "duplicate title 'en:A'"),
    "repeated key, escaped": ('{"[PAD]": 0, "en:A": 1, "en:\\u0041": 2}', "duplicate title 'en:A'"),
    "repeated key, one id": ('{"[PAD]": 0, "en:A": 1, "de:A": 1, "en:A": 1}', "duplicate title 'en:A'"),
    "id gap": ('{"[PAD]": 0, "en:A": 2}', "id 1 is missing"),
    "negative id": ('{"[PAD]": 0, "en:A": -1}', "negative entity id -1"),
    "float id": ('{"[PAD]": 0, "en:A": 1.0}', "integer id, got 'en:A': 1.0"),
    "exponent id": ('{"[PAD]": 0, "en:A": 1e0}', "integer id, got 'en:A': 1.0"),
    "string id": ('{"[PAD]": 0, "en:A": "1"}', "integer id, got 'en:A': '1'"),
    "bool id": ('{"[PAD]": 0, "en:A": true}', "integer id, got 'en:A': True"),
    "leading zero": ('{"[PAD]": 0, "en:A": 01}', r"invalid JSON"),
    "digits apart": ('{"[PAD]": 0, "en:A": 1 2}', r"invalid JSON"),
    "digit before ':'": ('{"[PAD]": 0 , "en:A" 3: 1}', r"invalid JSON"),
    "huge id": ('{"[PAD]": 0, "en:A": 1000000000000000000000}', "id 1 is missing"),
    "trailing comma": ('{"[PAD]": 0, "en:A": 1,}', r"invalid JSON"),
    "missing comma": ('{"[PAD]": 0 "en:A": 1}', r"invalid JSON"),
    "missing colon": ('{"[PAD]": 0, "en:A" 1}', r"invalid JSON"),
    "string value": ('{"[PAD]": 0, "en:A": "x", "en:B": 1}', "integer id"),
    "nested object": ('{"[PAD]": 0, "x": {"en:A": 1}}', "integer id"),
    "two objects": ('{"[PAD]": 0}{"en:A": 1}', r"invalid JSON"),
    "array": ('["[PAD]", 0]', "expected a JSON object"),
    "empty": ("{}", "the entity vocabulary is empty"),
    "raw newline in a key": ('{"[PAD]": 0, "en:A\nB": 1}', r"invalid JSON"),
    "bad escape": ('{"[PAD]": 0, "en:A\\x": 1}', r"invalid JSON"),
    "empty title": ('{"[PAD]": 0, "en:A": 1, "": 2}', "title must be a non-empty string"),
    "blank title": ('{"[PAD]": 0, "en:A": 1, "en: \\u3000\\t": 2}', "title must be a non-empty string"),
    "blank plain title": ('{"[PAD]": 0, "A": 1, "\\u2028": 2}', "title must be a non-empty string"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_fast_json_reader_leaves_every_error_to_json(cache_dir: Path, tmp_path: Path, case: str) -> None:
    """The fast reader vouches for none of these; the load raises the dict reader's error, and caches nothing."""
    content, message = REFUSED[case]
    path = tmp_path / "v.json"
    path.write_text(content, encoding="utf-8")
    assert _fast(path) is None
    with pytest.raises(DataError, match=message):
        EntityVocab.load(path)
    assert _folders(cache_dir) == []


def test_fast_json_reader_refuses_bad_bytes_and_lone_surrogates(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    for raw in [b'{"[PAD]": 0, "en:\xff": 1}', b'{"[PAD]": 0, "en:\xed\xa0\x80": 1}', b'{"[PAD]": 0, "en:\xe6": 1}']:
        path.write_bytes(raw)
        assert _fast(path) is None
        with pytest.raises(DataError, match="v.json"):
            EntityVocab.load(path)
    path.write_bytes(b'\xef\xbb\xbf{"[PAD]": 0}')  # a byte-order mark: json refuses it too
    assert _fast(path) is None
    path.write_text('{"[PAD]": 0, "en:\\ud800 x": 1}', encoding="utf-8")  # valid JSON the json module reads
    assert _fast(path) is None and EntityVocab.load(path).titles(1) == [("\ud800 x", "en")]


def test_fast_json_reader_multilingual_flag(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.json", {"[PAD]": 0, "en:Japan": 1, "Star Wars: IV": 2, "xx-1:Y": 3})
    assert _fast(path, True) is None  # the dict reader raises "is not of the form 'lang:title'"
    assert _fast(path).titles(1) == [("en:Japan", None)]
    for bad_code in ["EN:Japan", "e:Japan", "en_gb:Japan", "en-:Japan", "ja-Latn:x", "\u00e9n:x", "en\\u0000:x"]:
        path.write_text(f'{{"[PAD]": 0, "{bad_code}": 1, "en:B": 2}}', encoding="utf-8")
        assert _fast(path, True) is None, bad_code
        assert _fast(path).titles(1)[0][1] is None, bad_code
    path.write_text('{"en:B":0,"e:A":1}', encoding="utf-8")  # a key within 8 bytes of the end
    assert _fast(path, True) is None and _fast(path).titles(1) == [("e:A", None)]
    path.write_text('{"en:B":0,"ja:A":1}', encoding="utf-8")
    assert _fast(path, True).titles(1) == [("A", "ja")]


def test_title_hash_is_the_vectorised_hash() -> None:
    rng = random.Random(3)
    titles = ["", "a", "a\0", "東京", "\U0001f600 x", "\ud800"]
    titles += ["".join(rng.choices("ab:é東\0 ", k=rng.randint(0, 30))) for _ in range(500)]
    encoded = [title.encode("utf-8", "surrogatepass") for title in titles]
    offsets = np.cumsum([0] + [len(raw) for raw in encoded])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    for chunk in (1, 7, 1 << 12):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(entity_index, "_HASH_CHUNK", chunk)
            assert entity_index._title_hashes(blob, offsets).tolist() == list(map(entity_index.title_hash, encoded))
    assert len(set(map(entity_index.title_hash, set(encoded)))) == len(set(encoded))


def test_equal_keys_are_found_in_both_sort_paths() -> None:
    """``from_encoded`` refuses a key given twice whether it packs hashes into one sort or falls back to lexsort."""
    titles = ["A", "B", "A", "A", "C"]
    for languages, duplicate in (([0, 0, 1, 2, 0], False), ([0, 0, 1, 0, 0], True)):
        for n_languages in (3, 2**40):  # 2**40 languages leave too few hash bits: lexsort
            blob = np.frombuffer("".join(titles).encode(), dtype=np.uint8)
            codes = np.array(languages, dtype=np.int64)
            table = [f"l{i}" for i in range(max(languages) + 1)]
            hashes = entity_index._title_hashes(blob, np.arange(6))
            order, ties = entity_index._order_by_hash(hashes, codes, n_languages)
            assert sorted(order.tolist()) == list(range(5))
            assert entity_index._has_equal_titles(blob, np.arange(6), order, ties) == duplicate
            index = EntityIndex.from_encoded(blob, np.arange(6), codes, table, np.arange(5))
            assert (index is None) == duplicate
