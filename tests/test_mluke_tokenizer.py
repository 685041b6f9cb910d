"""mLUKE / LUKE-Japanese tokenizer folders (SentencePiece) and mLUKE entity vocabularies.

Every test builds an XLM-R-like folder around a tiny SentencePiece unigram model trained during the test on
our own sentences (Latin, CJK, mixed scripts): ``sentencepiece.bpe.model``, ``tokenizer_config.json`` naming
``MLukeTokenizer`` (as the released folders do) and ``entity_vocab.json`` with ``lang:Title`` keys whose
titles in several languages share one id.  Our fast tokenizer is compared with ``transformers.MLukeTokenizer``
on the same folder and with ``sentencepiece`` itself.

transformers 5's ``MLukeTokenizer`` keeps the raw SentencePiece ids (``<unk>``=0, ``<s>``=1, pieces not
shifted) instead of XLM-R's fairseq ids that mLUKE was trained with; we keep the fairseq ids (documented in
``LukeTokenizer``'s docstring), so its ids are compared through their tokens (:func:`fairseq`), and
:func:`test_fairseq_ids_where_transformers_5_differs` pins the difference down.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import sentencepiece as spm  # a dev dependency (pyproject.toml): trains the tiny models

from luke.entity_vocab import EntityVocab
from luke.errors import LukeError, TokenizerError
from luke.tokenization import LukeTokenizer

SENTENCES = [
    "Tokyo is the capital of Japan and its largest city.",
    "東京都は日本の首都であり、最大の都市です。",
    "Beyoncé performed in Los Angeles, California, last summer.",
    "パリはフランスの首都です。 Paris is the capital of France.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "北京是中国的首都。Berlin ist die Hauptstadt von Deutschland.",
    "Café owners in Zürich sell 1,234.56 francs of coffee every morning!",
    "大阪と京都は関西にある。Osaka and Kyoto are in Kansai.",
    "Москва — столица России. Moscow is the capital of Russia.",
]
ENTITY_VOCAB = {
    "[PAD]": 0,
    "[UNK]": 1,
    "[MASK]": 2,
    "en:Tokyo": 3,
    "ja:東京都": 3,
    "en:Japan": 4,
    "ja:日本": 4,
    "en:Paris": 5,
    "fr:Paris": 5,
    "ja:パリ": 5,
    "en:Kyoto": 6,
    "ja:京都": 7,  # a title in one language only
    "en:Mercury (planet)": 8,
    "en:Mercury (element)": 9,
    "de:Merkur": 8,
    "[MASK2]": 10,
}
CONFIG = {
    "tokenizer_class": "MLukeTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": {"__type": "AddedToken", "content": "<mask>", "lstrip": True, "normalized": True,
                   "rstrip": False, "single_word": False},
    "task": None,
    "max_entity_length": 32,
    "max_mention_length": 30,
    "entity_token_1": {"__type": "AddedToken", "content": "<ent>", "lstrip": False, "normalized": True,
                       "rstrip": False, "single_word": False},
    "entity_token_2": {"__type": "AddedToken", "content": "<ent2>", "lstrip": False, "normalized": True,
                       "rstrip": False, "single_word": False},
    "additional_special_tokens": ["<ent>", "<ent2>"],
    "model_max_length": 512,
    "sp_model_kwargs": {},
}  # fmt: skip

# (text, spans, entities) with entity titles of ENTITY_VOCAB; spans on and off word boundaries.
EXAMPLES = [
    ("Tokyo is the capital of Japan.", [(0, 5), (24, 29)], ["en:Tokyo", "ja:日本"]),
    ("東京都は日本の首都です。", [(0, 3), (4, 6)], ["ja:東京都", "en:Japan"]),
    ("パリはフランスの首都です。 Paris is in France.", [(0, 2), (14, 19)], ["ja:パリ", "fr:Paris"]),
    ("Beyoncé sang in Kyoto and Osaka, 大阪と京都.", [(16, 21), (37, 39)], ["en:Kyoto", "ja:京都"]),
    ("The capital of Russia is Москва, not Berlin.", [(25, 31), (37, 43)], ["en:Unknown", "de:Merkur"]),
]


def train_model(vocab_size: int = 180) -> bytes:
    """A tiny SentencePiece unigram model in XLM-R's layout (<unk>=0, <s>=1, </s>=2, no <pad>)."""
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 10),
        model_writer=out,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return out.getvalue()


@pytest.fixture(scope="module")
def spm_model() -> bytes:
    return train_model()


def write_folder(folder: Path, model: bytes, config: dict | None = None, vocab: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sentencepiece.bpe.model").write_bytes(model)
    (folder / "tokenizer_config.json").write_text(json.dumps(config or CONFIG))
    (folder / "entity_vocab.json").write_text(json.dumps(vocab or ENTITY_VOCAB, ensure_ascii=False))
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, spm_model: bytes) -> Path:
    return write_folder(tmp_path_factory.mktemp("mluke"), spm_model)


@pytest.fixture(scope="module")
def ours(folder: Path) -> LukeTokenizer:
    return LukeTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def hf(folder: Path):
    from transformers import MLukeTokenizer

    return MLukeTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def processor(folder: Path):
    return spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.bpe.model"))


def fairseq(hf, ours: LukeTokenizer, ids: list) -> list:
    """transformers 5's ids → the fairseq ids of the same tokens (nested lists kept)."""
    if ids and isinstance(ids[0], list):
        return [fairseq(hf, ours, row) for row in ids]
    return [ours.convert_tokens_to_ids(t) for t in hf.convert_ids_to_tokens(ids)]


def assert_same(hf, ours: LukeTokenizer, expected, got) -> None:
    for key in expected:
        want = fairseq(hf, ours, expected[key]) if key == "input_ids" else expected[key]
        have = got[key].tolist() if hasattr(got[key], "tolist") else got[key]
        assert have == want, key
    assert set(got) - set(expected) <= {"offset_mapping"}


# ---------------------------------------------------------------------------------------------- word ids
def test_fairseq_ids_where_transformers_5_differs(ours: LukeTokenizer, hf, processor) -> None:
    n = processor.get_piece_size()
    assert [ours.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [0, 1, 2, 3, n + 1]
    assert [ours.convert_tokens_to_ids(t) for t in ("<ent>", "<ent2>")] == [n + 2, n + 3]
    for piece_id in range(3, n):
        assert ours.convert_tokens_to_ids(processor.id_to_piece(piece_id)) == piece_id + 1
    # transformers 5 keeps SentencePiece's ids: <s> is 1, not 0, and every piece is one lower
    assert hf.convert_tokens_to_ids("<s>") == 1 and hf.convert_tokens_to_ids(processor.id_to_piece(5)) == 5
    assert hf.convert_tokens_to_ids("<ent>") == n + 2  # the markers agree


@pytest.mark.parametrize(
    "text",
    [
        *SENTENCES,
        "ＡＢＣ　full-width ① and  two  spaces ",  # NFKC and extra spaces: SentencePiece normalizes them
        "Zürich ``quoted'' text",  # transformers 5 turns `` and '' into "
        "見知らぬ文字: 𠮷野家 ☃",  # unknown characters
        "",
    ],
)
def test_pieces_are_sentencepiece_pieces(ours: LukeTokenizer, processor, text: str) -> None:
    enc = ours(text, add_special_tokens=False)
    expected = [i + 1 if i else 3 for i in processor.encode(text)]  # <unk> (0) is fairseq 3
    assert enc["input_ids"] == expected


# ---------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize(
    "task", [None, "entity_classification", "entity_pair_classification", "entity_span_classification"]
)
@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_same_as_transformers_single(ours: LukeTokenizer, hf, task: str | None, index: int) -> None:
    text, spans, entities = EXAMPLES[index]
    spans = spans[:1] if task == "entity_classification" else spans
    hf.task = task
    try:
        kwargs = {"entities": entities} if task is None else {}
        expected = hf(text, entity_spans=spans, return_token_type_ids=True, **kwargs)
    finally:
        hf.task = None
    got = ours(text, entity_spans=spans, task=task, **kwargs)
    assert_same(hf, ours, expected, got)


@pytest.mark.parametrize("task", [None, "entity_span_classification"])
def test_same_as_transformers_batch_padded(ours: LukeTokenizer, hf, task: str | None) -> None:
    texts = [" ".join(SENTENCES)] + [e[0] for e in EXAMPLES]
    spans = [[(0, 5)]] + [e[1] for e in EXAMPLES]
    entities = [["en:Tokyo"]] + [e[2] for e in EXAMPLES]
    hf.task = task
    try:
        ent = {"entities": entities} if task is None else {}
        expected = hf(texts, entity_spans=spans, return_token_type_ids=True, padding=True, **ent)
    finally:
        hf.task = None
    got = ours(texts, entity_spans=spans, task=task, padding=True, **ent)
    assert_same(hf, ours, expected, got)


@pytest.mark.parametrize(
    "task", [None, "entity_classification", "entity_pair_classification", "entity_span_classification"]
)
def test_long_text_truncation(ours: LukeTokenizer, task: str | None) -> None:
    """transformers 5's MLukeTokenizer cannot truncate (AttributeError: no truncate_sequences), so a
    truncated encoding is checked against our untruncated one: the first tokens, ``</s>``, and only the
    entities whose mention is still inside."""
    text = " ".join(SENTENCES)
    tail = text.index("Moscow")
    spans = [(0, 5), (tail, tail + 6)][: 1 if task == "entity_classification" else 2]
    full = ours(text, entity_spans=spans, task=task)
    cut = ours(text, entity_spans=spans, task=task, truncation=True, max_length=24)
    assert cut["input_ids"] == full["input_ids"][:23] + [ours.sep_token_id]
    assert cut["entity_position_ids"] == full["entity_position_ids"][:1]
    assert cut["entity_ids"] == full["entity_ids"][:1]


def test_same_as_transformers_pair(ours: LukeTokenizer, hf) -> None:
    (t1, s1, e1), (t2, s2, e2) = EXAMPLES[0], EXAMPLES[1]
    expected = hf(t1, t2, entity_spans=s1, entity_spans_pair=s2, entities=e1, entities_pair=e2,
                  return_token_type_ids=True)  # fmt: skip
    got = ours(t1, t2, entity_spans=s1, entity_spans_pair=s2, entities=e1, entities_pair=e2)
    assert_same(hf, ours, expected, got)


def test_offsets_point_at_the_text(ours: LukeTokenizer) -> None:
    for text, spans, _ in EXAMPLES:
        enc = ours(text, entity_spans=spans, task="entity_pair_classification", return_offsets_mapping=True)
        for token, (s, e) in zip(ours.convert_ids_to_tokens(enc["input_ids"]), enc["offset_mapping"], strict=True):
            if token in ("<s>", "</s>", "<ent>", "<ent2>"):
                assert s == e
            else:
                assert text[s:e] == token.lstrip("▁"), (token, text[s:e])


def test_windows_carry_their_entities(ours: LukeTokenizer) -> None:
    text = " ".join(SENTENCES)
    start = text.index("東京都")
    enc = ours(text, entity_spans=[(0, 5), (start, start + 3)], entities=["en:Tokyo", "ja:東京都"],
               return_overflowing_tokens=True, max_length=40, stride=8)  # fmt: skip
    assert len(enc["input_ids"]) > 2
    found = [ids for ids in enc["entity_ids"]]
    assert found[0] == [3, 3] or found[0] == [3]
    assert all(set(ids) <= {3} for ids in found)
    assert sum(len(ids) for ids in found) >= 2


# ---------------------------------------------------------------------------------------------- entities
def test_lang_title_lookups(folder: Path) -> None:
    vocab = EntityVocab.load(folder / "entity_vocab.json")
    assert vocab["ja:東京都"] == vocab["en:Tokyo"] == 3
    assert vocab.get_id("東京都", "ja") == 3 and vocab[("Paris", "fr")] == 5
    assert "ja:東京都" in vocab and "ja:Tokyo" not in vocab and ("Tokyo", "ja") not in vocab
    assert vocab["Paris"] == 5  # several languages, one id
    assert vocab.get_id("Paris", "de") is None  # a language names where to look
    assert vocab.get_id("ja:京都", "en") == 7  # "lang:Title" names its own language
    assert vocab.get_id("[MASK]", "ja") == 2
    with pytest.raises(KeyError, match="Mercury"):
        vocab["Mercury"]  # noqa: B018  (not a title of its own)
    with pytest.raises(KeyError):
        vocab["xx:東京都"]  # noqa: B018


def test_entity_language_convenience(folder: Path, ours: LukeTokenizer) -> None:
    text, spans = "Paris and 京都", [(0, 5), (10, 12)]
    assert ours(text, entity_spans=spans, entities=["fr:Paris", "ja:京都"])["entity_ids"] == [5, 7]
    assert ours(text, entity_spans=spans, entities=["Paris", "京都"], entity_language="ja")["entity_ids"] == [1, 7]
    assert ours(text, entity_spans=spans, entities=["Paris", ("京都", "ja")], entity_language="en")["entity_ids"] == [
        5,
        7,
    ]
    ja = LukeTokenizer.from_pretrained(folder, entity_language="ja")
    assert ja(text, entity_spans=spans, entities=["パリ", "京都"])["entity_ids"] == [5, 7]
    assert ja(text, entity_spans=spans, entities=["パリ", "京都"], entity_language="en")["entity_ids"] == [1, 1]
    with pytest.raises(TokenizerError, match="entity_language"):
        LukeTokenizer.from_pretrained(folder, entity_language="")


def test_entity_vocab_from_pretrained(folder: Path, tmp_path: Path) -> None:
    vocab = EntityVocab.from_pretrained(folder)
    assert vocab["ja:日本"] == 4 and vocab.source == folder / "entity_vocab.json"
    only_jsonl = tmp_path / "jsonl"
    only_jsonl.mkdir()
    vocab.save(only_jsonl / "entity_vocab.jsonl")
    assert EntityVocab.from_pretrained(only_jsonl) == vocab
    with pytest.raises(LukeError, match="no entity vocabulary"):
        EntityVocab.from_pretrained(tmp_path / "jsonl" / "..")


# ---------------------------------------------------------------------------------------------- files
def test_save_round_trip_and_transformers_loads_it(ours: LukeTokenizer, hf, tmp_path: Path) -> None:
    from transformers import MLukeTokenizer

    ours.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "entity_vocab.json",
        "sentencepiece.bpe.model",
        "tokenizer_config.json",
    ]
    again = LukeTokenizer.from_pretrained(tmp_path)
    theirs = MLukeTokenizer.from_pretrained(str(tmp_path))
    for text, spans, entities in EXAMPLES:
        assert again(text, entity_spans=spans, entities=entities) == ours(text, entity_spans=spans, entities=entities)
        assert theirs(text, entity_spans=spans, entities=entities) == hf(text, entity_spans=spans, entities=entities)
    assert theirs.get_vocab() == hf.get_vocab()


def test_repo_id_through_the_hub_cache(folder: Path, hf_cache) -> None:
    hf_cache.add("studio-ousia/mluke-tiny", folder)
    tok = LukeTokenizer.from_pretrained("studio-ousia/mluke-tiny", local_files_only=True)
    text, spans, entities = EXAMPLES[1]
    assert tok(text, entity_spans=spans, entities=entities)["entity_ids"] == [3, 4]
    assert EntityVocab.from_pretrained("studio-ousia/mluke-tiny")["ja:東京都"] == 3
    with pytest.raises(LukeError, match="studio-ousia/not-there"):
        LukeTokenizer.from_pretrained("studio-ousia/not-there")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x0a\xff\xff\xff\xff\x0f garbage", "not a sentencepiece model"),
        (b"", "not a sentencepiece model"),
        (b"\x07", "not a sentencepiece model"),
    ],
)
def test_corrupt_model_is_one_line_naming_the_file(folder: Path, tmp_path: Path, content: bytes, message: str) -> None:
    bad = write_folder(tmp_path / "bad", b"")
    (bad / "sentencepiece.bpe.model").write_bytes(content)
    with pytest.raises(TokenizerError, match=message) as err:
        LukeTokenizer.from_pretrained(bad)
    assert str(bad / "sentencepiece.bpe.model") in str(err.value) and "\n" not in str(err.value)


def test_truncated_and_non_xlmr_models_are_refused(spm_model: bytes, tmp_path: Path) -> None:
    cut = write_folder(tmp_path / "cut", spm_model[: len(spm_model) // 2])
    with pytest.raises(TokenizerError, match="sentencepiece.bpe.model: not a sentencepiece model"):
        LukeTokenizer.from_pretrained(cut)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(SENTENCES * 10), model_writer=out, vocab_size=120,
                                   model_type="bpe", hard_vocab_limit=False, minloglevel=2)  # fmt: skip
    bpe = write_folder(tmp_path / "bpe", out.getvalue())
    with pytest.raises(TokenizerError, match="only unigram"):
        LukeTokenizer.from_pretrained(bpe)


def test_folder_without_word_files_names_sentencepiece(tmp_path: Path) -> None:
    (tmp_path / "entity_vocab.json").write_text(json.dumps(ENTITY_VOCAB))
    with pytest.raises(TokenizerError, match="sentencepiece.bpe.model"):
        LukeTokenizer.from_pretrained(tmp_path)


def test_word_cache_path_equals_rust_piecewise(folder: Path) -> None:
    """The Python word-cache path (PySentencePiece) gives the ids and offsets of the Rust tokenizer run piece
    by piece, on random texts mixing scripts, NFKC-affected characters, combining marks and spacing."""
    import random

    from luke.encoding import PySentencePiece

    fast = LukeTokenizer.from_pretrained(folder)
    slow = LukeTokenizer.from_pretrained(folder)
    assert isinstance(fast.encoder.py_bpe, PySentencePiece)
    slow.encoder.py_bpe = None
    rng = random.Random(7)
    pool = list("abcdefg xyzTKé東京都日本のはパリ .,!ＡＢ①ﬁ\u0301\u00a0´ ") + ["  ", "Tokyo", "Москва", "\t", "\u200b"]
    taken = 0
    for _ in range(300):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 30)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, 2 * rng.randint(0, 3)) // 2 * 2))
        spans = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=True) if a < b] or None
        taken += fast.encoder.py_bpe.eligible(text)
        a = fast(text, entity_spans=spans, return_offsets_mapping=True)
        b = slow(text, entity_spans=spans, return_offsets_mapping=True)
        assert a == b, (text, spans)
    assert taken > 100
