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
from conftest import minilm_folder
from luke.entity_index import IndexCache
from luke.entity_vocab import EntityVocab
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
