"""Tests for :mod:`luke.tokenization` (real vocabularies and data from ../shared/data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED_DATA, require_shared
from luke.entity_vocab import EntityVocab
from luke.tokenization import LukeTokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = SHARED_DATA
ROBERTA = DATA / "tokenizers" / "roberta-base"
BERT_CASED = DATA / "tokenizers" / "bert" / "bert-base-cased-vocab.txt"
BERT_UNCASED = DATA / "tokenizers" / "bert" / "bert-base-uncased-vocab.txt"
ENTITY_VOCAB = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3, "United States": 4, "Germany": 5, "EU": 6}
TASKS = [None, "entity_classification", "entity_pair_classification", "entity_span_classification"]
N_REAL = 300  # examples per data set compared with transformers


def _require(path: Path) -> Path:
    return require_shared(str(path.relative_to(SHARED_DATA)))


# ---------------------------------------------------------------------------------------------- data
def _open_entity(limit: int | None = None) -> list[tuple[str, list[tuple[int, int]]]]:
    out = []
    for split in ("train", "dev", "test"):
        path = _require(DATA / "open_entity" / "ernie_format" / f"{split}.json")
        for ex in json.loads(path.read_text(encoding="utf-8")):
            # the typed mention plus the linked entity mentions of the sentence
            spans = [(ex["start"], ex["end"])] + [(s, e) for _, s, e, _ in ex["ents"]]
            out.append((ex["sent"], spans))
    return out[:limit]


def _semeval(limit: int | None = None) -> list[tuple[str, list[tuple[int, int]]]]:
    out = []
    for split in ("train", "test"):
        with open(_require(DATA / "semeval2010_task8" / f"{split}.jsonl"), encoding="utf-8") as f:
            for line in f:
                ex = json.loads(line)
                tokens = ex["token"]
                starts, pos = [], 0
                for tok in tokens:
                    starts.append(pos)
                    pos += len(tok) + 1
                subj = (starts[ex["subj_start"]], starts[ex["subj_end"]] + len(tokens[ex["subj_end"]]))
                obj = (starts[ex["obj_start"]], starts[ex["obj_end"]] + len(tokens[ex["obj_end"]]))
                out.append((" ".join(tokens), [subj, obj]))
    return out[:limit]


def _conll(limit: int | None = None) -> list[tuple[str, list[tuple[int, int]], list[str]]]:
    """CoNLL-2003 sentences with their gold entity character spans and surface strings."""
    out: list[tuple[str, list[tuple[int, int]], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if not words or words[0] == "-DOCSTART-":
            return
        text = " ".join(words)
        starts, pos = [], 0
        for w in words:
            starts.append(pos)
            pos += len(w) + 1
        spans, cur = [], None
        for i, tag in enumerate([*tags, "O"]):
            if cur is not None and not tag.startswith("I-"):
                spans.append((starts[cur], starts[i - 1] + len(words[i - 1])))
                cur = None
            if tag.startswith("B-"):
                cur = i
        if spans:
            out.append((text, spans, [text[s:e] for s, e in spans]))

    with open(_require(DATA / "conll2003" / "valid.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                flush()
                words, tags = [], []
                if limit is not None and len(out) >= limit:
                    break
                continue
            words.append(parts[0])
            tags.append(parts[-1])
    flush()
    return out[:limit]


def _disjoint_pair(spans: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    for a in spans:
        for b in spans:
            if a != b and (a[1] <= b[0] or b[1] <= a[0]):
                return [a, b]
    return None


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ours() -> LukeTokenizer:
    _require(ROBERTA)
    return LukeTokenizer.from_files(
        vocab=ROBERTA / "vocab.json", merges=ROBERTA / "merges.txt", entity_vocab=ENTITY_VOCAB
    )


def _hf(task: str | None = None, **kwargs):
    from transformers import LukeTokenizer as HFLukeTokenizer

    _require(ROBERTA)
    return HFLukeTokenizer(
        vocab=str(ROBERTA / "vocab.json"),
        merges=str(ROBERTA / "merges.txt"),
        entity_vocab=dict(ENTITY_VOCAB),
        task=task,
        **kwargs,
    )


@pytest.fixture(scope="module")
def hf_tokenizers() -> dict:
    return {task: _hf(task) for task in TASKS}


def _examples_for(task: str | None) -> list[tuple[str, list[tuple[int, int]], list[str] | None]]:
    oe = _open_entity(N_REAL)
    se = _semeval(N_REAL)
    co = _conll(N_REAL)
    if task == "entity_classification":
        return (
            [(t, s[:1], None) for t, s in oe] + [(t, s[:1], None) for t, s in se] + [(t, s[:1], None) for t, s, _ in co]
        )
    if task == "entity_pair_classification":
        out = [(t, s, None) for t, s in se]
        for t, s, *_ in [*oe, *co]:
            pair = _disjoint_pair(sorted(set(s)))
            if pair is not None:
                out.append((t, pair, None))
        return out
    if task == "entity_span_classification":
        return [(t, s, None) for t, s in oe] + [(t, s, None) for t, s in se] + [(t, s, None) for t, s, _ in co]
    # plain mode with entity titles (known, unknown and None)
    return (
        [(t, s, None) for t, s in oe]
        + [(t, s, None) for t, s in se]
        + [(t, s, [x if x in ENTITY_VOCAB else x.upper() for x in titles]) for t, s, titles in co]
    )


# ---------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("task", TASKS)
def test_same_ids_as_transformers_single(ours: LukeTokenizer, hf_tokenizers: dict, task: str | None) -> None:
    """Example by example, unpadded: identical to transformers.LukeTokenizer on real sentences and spans."""
    hf = hf_tokenizers[task]
    examples = _examples_for(task)
    assert len(examples) >= 300
    for i, (text, spans, titles) in enumerate(examples):
        kwargs = {"entities": titles} if titles is not None else {}
        expected = hf(text, entity_spans=spans, return_token_type_ids=True, **kwargs)
        got = ours(text, entity_spans=spans, task=task, **kwargs)
        for key in expected:
            assert got[key] == expected[key], (i, key, text, spans)
        if task != "entity_span_classification":
            assert "entity_start_positions" not in got


@pytest.mark.parametrize("task", TASKS)
def test_same_ids_as_transformers_batched(ours: LukeTokenizer, hf_tokenizers: dict, task: str | None) -> None:
    """Batched with padding=True and PyTorch tensors: identical tensors."""
    hf = hf_tokenizers[task]
    examples = _examples_for(task)
    texts = [t for t, _, _ in examples]
    spans = [s for _, s, _ in examples]
    if task is None:
        # transformers' batch padding ignores max_entity_length (see test_batch_padding_honours_max_entity_length)
        kwargs = {"max_entity_length": 32}
    else:
        kwargs = {}
    expected = hf(texts, entity_spans=spans, padding=True, return_tensors="pt", return_token_type_ids=True, **kwargs)
    got = ours(texts, entity_spans=spans, task=task, padding=True, return_tensors="pt")
    for key in expected:
        assert isinstance(got[key], torch.Tensor)
        assert got[key].shape == expected[key].shape, key
        assert torch.equal(got[key], expected[key]), key


def test_text_pair_same_as_transformers(ours: LukeTokenizer, hf_tokenizers: dict) -> None:
    hf = hf_tokenizers[None]
    oe = _open_entity(100)
    for (t1, s1), (t2, s2) in zip(oe[::2], oe[1::2], strict=False):
        expected = hf(t1, t2, entity_spans=s1, entity_spans_pair=s2, return_token_type_ids=True)
        got = ours(t1, t2, entity_spans=s1, entity_spans_pair=s2)
        for key in expected:
            assert got[key] == expected[key], key
        plain = hf(t1, t2)
        assert ours(t1, t2)["input_ids"] == plain["input_ids"]


def test_fast_paths_agree_with_rust_piecewise(ours: LukeTokenizer) -> None:
    """The Python byte-level path and the whole-text Rust path equal piecewise Rust tokenization."""
    slow = LukeTokenizer.from_files(
        vocab=ROBERTA / "vocab.json", merges=ROBERTA / "merges.txt", entity_vocab=ENTITY_VOCAB
    )
    slow.encoder.py_bpe = None
    slowest = LukeTokenizer.from_files(
        vocab=ROBERTA / "vocab.json", merges=ROBERTA / "merges.txt", entity_vocab=ENTITY_VOCAB
    )
    slowest.encoder.py_bpe = None
    slowest.encoder.whole_text_ok = False
    examples = [(t, s) for t, s in _open_entity()] + [(t, s) for t, s in _semeval(3000)]
    texts = [t for t, _ in examples]
    spans = [s for _, s in examples]
    results = [
        tok(texts, entity_spans=spans, return_offsets_mapping=True, padding=True, return_tensors="pt")
        for tok in (ours, slow, slowest)
    ]
    for key in results[0]:
        assert torch.equal(results[0][key], results[1][key]), key
        assert torch.equal(results[0][key], results[2][key]), key


def test_readme_example(ours: LukeTokenizer) -> None:
    text = "Beyoncé lives in Los Angeles."
    enc = ours(text, entity_spans=[(17, 28)], entities=["Los Angeles"], return_offsets_mapping=True)
    tokens = ours.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["<s>", "Bey", "on", "cÃ©", "Ġlives", "Ġin", "ĠLos", "ĠAngeles", ".", "</s>"]
    assert enc["entity_ids"] == [ENTITY_VOCAB["[UNK]"]]
    assert enc["entity_position_ids"][0][:3] == [6, 7, -1] and len(enc["entity_position_ids"][0]) == 30
    assert enc["offset_mapping"][6] == (17, 20) and enc["offset_mapping"][0] == (0, 0)
    enc = ours(text, entity_spans=[(17, 28)], task="entity_classification", return_offsets_mapping=True)
    assert ours.convert_ids_to_tokens(enc["input_ids"])[6:10] == ["<ent>", "ĠLos", "ĠAngeles", "<ent>"]
    assert enc["entity_position_ids"][0][:5] == [6, 7, 8, 9, -1]
    assert enc["offset_mapping"][6] == (17, 17) and enc["offset_mapping"][9] == (28, 28)
    assert len(ours) == 50267  # roberta-base 50265 + <ent>, <ent2>


# ---------------------------------------------------------------------------------------------- transformers bugs
def test_no_state_leak_between_calls(ours: LukeTokenizer) -> None:
    """transformers bug (notes §3.1): a padding/truncating call leaves state on the Rust backend that corrupts
    the next entity encoding (pads inserted inside the sequence). Ours has no such state."""
    text = "Beyoncé lives in Los Angeles."
    before = ours(text, entity_spans=[(17, 28)])
    ours(["x", "longer text here"], padding="max_length", max_length=12)
    ours(["a much longer text that will be truncated"], truncation=True, max_length=4)
    after = ours(text, entity_spans=[(17, 28)])
    assert after == before
    assert ours.pad_token_id not in after["input_ids"]

    hf = _hf()
    hf_before = hf(text, entity_spans=[(17, 28)])
    hf(["x", "longer text here"], padding="max_length", max_length=12)
    hf_after = hf(text, entity_spans=[(17, 28)])
    assert hf_before["input_ids"] == before["input_ids"]
    # documents the upstream bug; if transformers fixes it, this line tells us
    assert hf_after["input_ids"] != hf_before["input_ids"]


def test_truncation_with_entities_works(ours: LukeTokenizer) -> None:
    """transformers bug (notes §3.2): truncation=True with entities raises AttributeError (truncate_sequences is
    gone). Ours truncates words, drops entities whose mention was cut, truncates entities to max_entity_length."""
    text = "Beyoncé lives in Los Angeles and Paris and Berlin."
    spans = [(0, 7), (17, 28), (33, 38), (43, 49)]
    with pytest.raises(AttributeError):
        _hf()(text, entity_spans=spans, truncation=True, max_length=8)
    enc = ours(text, entity_spans=spans, truncation=True, max_length=9)
    assert len(enc["input_ids"]) == 9 and enc["input_ids"][-1] == ours.sep_token_id
    full = ours(text, entity_spans=spans)
    # "Beyoncé" (tokens 1-3) fits, "Los Angeles" (tokens 6-7) fits exactly, the rest are dropped
    assert enc["entity_position_ids"] == full["entity_position_ids"][:2]
    enc = ours(text, entity_spans=spans, truncation=True, max_length=8)
    assert enc["entity_position_ids"] == full["entity_position_ids"][:1]  # mention cut in half: dropped
    enc = ours(text, entity_spans=spans, truncation=True, max_entity_length=3)
    assert enc["entity_position_ids"] == full["entity_position_ids"][:3]


def test_batch_padding_honours_max_entity_length(ours: LukeTokenizer) -> None:
    """transformers bug (notes §3.3): batched padding='max_length' ignores max_entity_length (pads entities to
    32). Ours pads entities to max_entity_length."""
    texts = ["Beyoncé lives in Los Angeles.", "Paris is in France."]
    spans = [[(0, 7), (17, 28)], [(0, 5)]]
    enc = ours(texts, entity_spans=spans, padding="max_length", max_length=16, max_entity_length=4, return_tensors="pt")
    assert enc["input_ids"].shape == (2, 16)
    assert enc["entity_ids"].shape == (2, 4) and enc["entity_position_ids"].shape == (2, 4, 30)
    assert enc["entity_attention_mask"].tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]
    assert enc["entity_ids"][1, 1:].tolist() == [ENTITY_VOCAB["[PAD]"]] * 3
    hf = _hf()(texts, entity_spans=spans, padding="max_length", max_length=16, max_entity_length=4)
    assert len(hf["entity_ids"][0]) == 32  # the upstream bug


def test_entity_specials_not_added_as_word_tokens(ours: LukeTokenizer) -> None:
    """transformers bug (found here, v5.24): the entity special tokens [UNK]/[PAD]/[MASK]/[MASK2] are also
    registered as *word* special tokens, so len(tokenizer) is 50271 instead of 50267 and a literal "[MASK]" in
    a text becomes word id 50269, outside the embedding matrix of luke-base (vocab_size 50267)."""
    hf = _hf()
    assert len(hf) == 50271
    assert len(ours) == 50267
    ids = ours("a [MASK] b")["input_ids"]
    assert max(ids) < 50265


# ---------------------------------------------------------------------------------------------- behaviour
def test_entity_titles_and_languages(ours: LukeTokenizer) -> None:
    text = "Germany and the United States"
    enc = ours(text, entity_spans=[(0, 7), (16, 29), (8, 11)], entities=["Germany", "United States", None])
    assert enc["entity_ids"] == [5, 4, 2]
    enc = ours(text, entity_spans=[(0, 7)], entities=["Nowhere"])
    assert enc["entity_ids"] == [1]
    enc = ours(text, entity_spans=[(0, 7)])
    assert enc["entity_ids"] == [2]
    vocab = EntityVocab([(0, [("[PAD]", None)], 0), (1, [("[UNK]", None)], 0), (2, [("[MASK]", None)], 0)])
    vocab.add("Deutschland", "de")
    vocab.add("Germany", "en")
    tok = LukeTokenizer(ours.backend_tokenizer, vocab)
    assert tok(text, entity_spans=[(0, 7)], entities=[("Deutschland", "de")])["entity_ids"] == [3]
    assert tok(text, entity_spans=[(0, 7)], entities=["Germany"], entity_language="en")["entity_ids"] == [4]
    assert tok(text, entity_spans=[(0, 7)], entities=["Germany"], entity_language="de")["entity_ids"] == [1]
    with pytest.raises(ValueError, match=r"MASK2"):
        tok(text, entity_spans=[(0, 7), (16, 29)], task="entity_pair_classification")


def test_span_classification_positions(ours: LukeTokenizer) -> None:
    text = "EU rejects German call to boycott British lamb ."
    spans = [(0, 2), (11, 17), (34, 41), (0, 17)]  # overlapping spans are fine in this mode
    enc = ours(text, entity_spans=spans, task="entity_span_classification")
    assert enc["entity_start_positions"] == [1, 3, 7, 1]
    assert enc["entity_end_positions"] == [1, 3, 7, 3]
    for (s, e), pos in zip(spans, enc["entity_position_ids"], strict=True):
        assert ours.decode(enc["input_ids"][p] for p in pos if p >= 0).strip() == text[s:e]


def test_max_mention_length_cuts_positions(ours: LukeTokenizer) -> None:
    text = "one two three four five six"
    enc = ours(text, entity_spans=[(0, 27)], max_mention_length=3)
    assert enc["entity_position_ids"] == [[1, 2, 3]]


def test_bert_wordpiece_real_vocab() -> None:
    """BERT WordPiece (bert-base-cased/uncased vocab.txt): same ids as BertTokenizerFast, markers added."""
    from transformers import BertTokenizerFast

    for path, lower in ((BERT_CASED, False), (BERT_UNCASED, True)):
        _require(path)
        tok = LukeTokenizer.from_files(vocab_txt=path, entity_vocab=ENTITY_VOCAB)
        ref = BertTokenizerFast(vocab=str(path), do_lower_case=lower)
        assert len(tok) == ref.vocab_size + 2
        assert tok.convert_tokens_to_ids("<ent>") == ref.vocab_size
        for text, spans, _ in _conll(50):
            enc = tok(text, entity_spans=spans, return_offsets_mapping=True)
            assert enc["input_ids"] == ref(text)["input_ids"], text  # CoNLL spans are on word boundaries
            assert enc["input_ids"][0] == ref.cls_token_id and enc["input_ids"][-1] == ref.sep_token_id
            for (s, e), pos in zip(spans, enc["entity_position_ids"], strict=True):
                toks = [p for p in pos if p >= 0]
                assert toks and all(s <= enc["offset_mapping"][p][0] < enc["offset_mapping"][p][1] <= e for p in toks)
        enc = tok("Paris is nice .", "It is in France .", entity_spans=[(0, 5)], entity_spans_pair=[(9, 15)])
        ref_pair = ref("Paris is nice .", "It is in France .")
        assert enc["input_ids"] == ref_pair["input_ids"]
        assert enc["token_type_ids"] == ref_pair["token_type_ids"]
        assert enc["entity_token_type_ids"] == [0, 1]
        enc = tok("Paris is in France .", entity_spans=[(0, 5), (12, 18)], task="entity_pair_classification")
        assert tok.convert_ids_to_tokens(enc["input_ids"])[1] == "<ent>"
        assert tok.convert_ids_to_tokens(enc["input_ids"])[6] == "<ent2>"


def test_batch_lists_and_single_shapes(ours: LukeTokenizer) -> None:
    texts = ["Beyoncé lives in Los Angeles.", "Paris."]
    enc = ours(texts, entity_spans=[[(17, 28)], [(0, 5)]])
    assert isinstance(enc["input_ids"], list) and len(enc["input_ids"][0]) != len(enc["input_ids"][1])
    enc = ours(texts, entity_spans=[[(17, 28)], [(0, 5)]], padding=True)
    assert len(enc["input_ids"][0]) == len(enc["input_ids"][1])
    with pytest.raises(ValueError, match="padding=True"):
        ours(texts, entity_spans=[[(17, 28)], [(0, 5)]], return_tensors="pt")
    single = ours(texts[0], entity_spans=[(17, 28)], return_tensors="pt")
    assert single["input_ids"].shape[0] == 1 and single["entity_position_ids"].shape == (1, 1, 30)
    assert ours(texts, padding=True, return_tensors="pt")["input_ids"].shape == (2, 10)
    enc = ours(texts, entity_spans=[[(17, 28)], [(0, 5)]], padding=True, pad_to_multiple_of=8, return_tensors="np")
    assert enc["input_ids"].shape == (2, 16) and enc["entity_ids"].shape == (2, 8)


# ---------------------------------------------------------------------------------------------- windows
def test_sliding_windows_carry_their_entities(ours: LukeTokenizer) -> None:
    words = [f"w{i}" for i in range(60)]
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(60)]
    spans = [(starts[i], starts[i] + len(words[i])) for i in range(0, 60, 7)]
    full = ours(text, entity_spans=spans, return_offsets_mapping=True)
    n_tokens = len(full["input_ids"]) - 2
    enc = ours(
        text,
        entity_spans=spans,
        max_length=20,
        stride=5,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        return_tensors="pt",
    )
    assert enc["overflow_to_sample_mapping"].tolist() == [0] * enc["input_ids"].shape[0]
    covered = set()
    for w in range(enc["input_ids"].shape[0]):
        offsets = enc["offset_mapping"][w].tolist()
        ids = enc["input_ids"][w].tolist()
        real = [k for k in range(len(ids)) if enc["attention_mask"][w, k] and offsets[k] != [0, 0]]
        covered.update(tuple(offsets[k]) for k in real)
        window_chars = (offsets[real[0]][0], offsets[real[-1]][1])
        expected = [j for j, (s, e) in enumerate(spans) if window_chars[0] <= s and e <= window_chars[1]]
        got = [j for j in enc["entity_indices"][w].tolist() if j >= 0]
        assert got == expected
        for slot, j in enumerate(got):
            pos = [p for p in enc["entity_position_ids"][w, slot].tolist() if p >= 0]
            assert len(pos) == len([p for p in full["entity_position_ids"][j] if p >= 0])
            assert all(spans[j][0] <= offsets[p][0] and offsets[p][1] <= spans[j][1] for p in pos)
    assert len(covered) == n_tokens


def test_windows_with_pair_only_second(ours: LukeTokenizer) -> None:
    question = "Where does Beyoncé live?"
    context = " ".join(["She lives in Los Angeles."] * 20)
    spans = [(i * 26 + 13, i * 26 + 24) for i in range(20)]
    enc = ours(
        [question],
        [context],
        entity_spans=[[(11, 18)]],
        entity_spans_pair=[spans],
        max_length=40,
        stride=8,
        truncation="only_second",
        return_overflowing_tokens=True,
        padding=True,
        return_tensors="pt",
    )
    n = enc["input_ids"].shape[0]
    assert n > 1 and enc["input_ids"].shape[1] == 40
    for w in range(n):
        ids = enc["input_ids"][w].tolist()
        # the question (and its entity) is in every window
        assert ids[:8] == enc["input_ids"][0, :8].tolist()
        assert enc["entity_indices"][w, 0].item() == 0
        for slot in range(1, enc["entity_ids"].shape[1]):
            if enc["entity_attention_mask"][w, slot]:
                pos = [p for p in enc["entity_position_ids"][w, slot].tolist() if p >= 0]
                assert ours.decode([ids[p] for p in pos]).strip() == "Los Angeles"


def test_pair_windows_need_a_strategy(ours: LukeTokenizer) -> None:
    with pytest.raises(ValueError, match="only_first"):
        ours("a " * 30, "b " * 30, max_length=20, return_overflowing_tokens=True, truncation=True)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"entity_spans": [[(0, 4)], [(3, 99)]]}, r"example 1: entity_spans\[0\] = \(3, 99\) is out of range"),
        ({"entity_spans": [[(0, 4)], [(5, 2)]]}, r"example 1: entity_spans\[0\] = \(5, 2\) is reversed"),
        ({"entity_spans": [[(0, 4)], [(2, 2)]]}, r"example 1: entity_spans\[0\] = \(2, 2\) is empty"),
        ({"entity_spans": [[(0, 4)], [(-1, 2)]]}, r"example 1: .* out of range"),
        ({"entity_spans": [[(0, 4)], ["ab"]]}, r"example 1: entity_spans\[0\] must be a \(start, end\) pair"),
        (
            {"entity_spans": [[(0, 4)], [(0, 4), (5, 9)]], "task": "entity_classification"},
            r"example 1: task 'entity_classification' needs exactly 1 entity span, got 2",
        ),
        (
            {"entity_spans": [[(0, 4), (5, 9)], [(0, 4)]], "task": "entity_pair_classification"},
            r"example 1: task 'entity_pair_classification' needs exactly 2",
        ),
        (
            {"entity_spans": [[(0, 4), (5, 9)], [(0, 6), (5, 9)]], "task": "entity_pair_classification"},
            r"example 1: .*overlap",
        ),
        ({"entity_spans": [[(0, 4)], [(0, 4)]], "entities": [["A"], ["A", "B"]]}, r"example 1: entities must have"),
        ({"entity_spans": [[(0, 4)]]}, r"entity_spans has 1 entries but there are 2 examples"),
        ({"task": "entity_classification"}, r"needs entity_spans"),
        ({"task": "bogus"}, r"task must be"),
    ],
)
def test_bad_input_errors(ours: LukeTokenizer, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ours(["Paris is nice", "Berlin is big"], **kwargs)


# ---------------------------------------------------------------------------------------------- save / load
def test_save_load_round_trip_and_transformers_interop(ours: LukeTokenizer, tmp_path: Path) -> None:
    from transformers import LukeTokenizer as HFLukeTokenizer

    text, spans = "Beyoncé lives in Los Angeles.", [(0, 7), (17, 28)]
    ours.save_pretrained(tmp_path / "ours")
    again = LukeTokenizer.from_pretrained(tmp_path / "ours")
    assert again(text, entity_spans=spans) == ours(text, entity_spans=spans)
    assert len(again) == len(ours) and again.entity_vocab == ours.entity_vocab
    # transformers loads our folder
    hf = HFLukeTokenizer.from_pretrained(tmp_path / "ours")
    expected = hf(text, entity_spans=spans)
    got = ours(text, entity_spans=spans)
    for key in expected:
        assert got[key] == expected[key], key
    assert hf("plain text")["input_ids"] == ours("plain text")["input_ids"]
    # we load a folder saved by transformers, including its task setting
    _hf("entity_classification").save_pretrained(tmp_path / "hf")
    from_hf = LukeTokenizer.from_pretrained(tmp_path / "hf")
    assert from_hf.task == "entity_classification" and from_hf.max_entity_length == 1
    expected = _hf("entity_classification")(text, entity_spans=[(17, 28)])
    got = from_hf(text, entity_spans=[(17, 28)])
    for key in expected:
        assert got[key] == expected[key], key
    assert from_hf.entity_vocab.pad_id == 0 and from_hf.entity_vocab.mask2_id == 3


def test_from_pretrained_word_tokenizer_folder(tmp_path: Path) -> None:
    """A plain RoBERTa folder (vocab.json + merges.txt) and a BERT folder (vocab.txt) plus an entity vocab."""
    import shutil

    roberta = tmp_path / "roberta"
    roberta.mkdir()
    for name in ("vocab.json", "merges.txt"):
        os.symlink(_require(ROBERTA / name), roberta / name)
    fixture = _require(DATA / "luke_fixtures" / "enwiki_20181220_entvocab_100.tsv")
    tok = LukeTokenizer.from_pretrained(roberta, entity_vocab=fixture)
    assert tok.entity_vocab.pad_id == 0 and len(tok.entity_vocab) == 103
    enc = tok("Germany and France", entity_spans=[(0, 7), (12, 18)], entities=["Germany", "France"])
    assert enc["entity_ids"] == [tok.entity_vocab["Germany"], tok.entity_vocab["France"]]
    bert = tmp_path / "bert"
    bert.mkdir()
    shutil.copy(_require(BERT_UNCASED), bert / "vocab.txt")
    tok = LukeTokenizer.from_pretrained(bert, entity_vocab=ENTITY_VOCAB)
    assert tok.convert_ids_to_tokens(tok("Hello world")["input_ids"]) == ["[CLS]", "hello", "world", "[SEP]"]
    tok.save_pretrained(tmp_path / "bert_luke")
    assert LukeTokenizer.from_pretrained(tmp_path / "bert_luke")("Hello world") == tok("Hello world")
    with pytest.raises(ValueError, match="no entity vocabulary"):
        LukeTokenizer.from_pretrained(roberta)
    with pytest.raises(ValueError, match="no such folder"):
        LukeTokenizer.from_pretrained(tmp_path / "studio-ousia-luke-base-missing")


# ---------------------------------------------------------------------------------------------- properties
_ALPHABET = st.sampled_from(list("abcXYZ019 .,'-é日 ") + ["  ", "don't", "U.S.", "Los Angeles"])


@st.composite
def _text_and_spans(draw):
    text = "".join(draw(st.lists(_ALPHABET, min_size=1, max_size=40)))
    n = len(text)
    spans = []
    for _ in range(draw(st.integers(0, 5))):
        s = draw(st.integers(0, n - 1))
        e = draw(st.integers(s + 1, n))
        spans.append((s, e))
    return text, spans


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_text_and_spans())
def test_property_positions_inside_spans(ours: LukeTokenizer, example) -> None:
    """Every entity position points at a token whose offsets lie inside its span (markers: zero width)."""
    text, spans = example
    if not spans:
        return
    for task in (None, "entity_span_classification"):
        enc = ours(text, entity_spans=spans, task=task, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        for (s, e), pos in zip(spans, enc["entity_position_ids"], strict=True):
            for p in pos:
                if p >= 0:
                    # a leading space of the span is attached to the previous piece: tokens start at s or later
                    assert s <= offsets[p][0] and offsets[p][1] <= e, (text, (s, e), offsets[p])
    enc = ours(text, entity_spans=spans[:1], task="entity_classification", return_offsets_mapping=True)
    s, e = spans[0]
    pos = [p for p in enc["entity_position_ids"][0] if p >= 0]
    assert enc["input_ids"][pos[0]] == ours.entity_1_token_id and enc["input_ids"][pos[-1]] == ours.entity_1_token_id
    assert all(s <= enc["offset_mapping"][p][0] and enc["offset_mapping"][p][1] <= e for p in pos)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_text_and_spans(), st.integers(6, 16), st.integers(0, 3))
def test_property_windows_cover_every_token(ours: LukeTokenizer, example, max_length: int, stride: int) -> None:
    """Windows cover every token; each window has exactly the entities inside it, positions re-based."""
    text, spans = example
    task = "entity_span_classification" if spans else None
    full = ours(text, entity_spans=spans or None, task=task)
    body = full["input_ids"][1:-1]
    enc = ours(
        text,
        entity_spans=spans or None,
        task=task,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
    )
    seen: list[int] = []
    position = 0
    for w, ids in enumerate(enc["input_ids"]):
        assert len(ids) <= max_length
        window = ids[1:-1]
        # the window continues the previous one with `stride` overlapping tokens
        start = 0 if w == 0 else position - stride
        assert window == body[start : start + len(window)]
        seen.extend(range(start, start + len(window)))
        position = start + len(window)
        if spans:
            inside = [
                j
                for j in range(len(spans))
                if start + 1 <= full["entity_start_positions"][j]
                and full["entity_end_positions"][j] + 1 <= start + 1 + len(window)
            ]
            n = len(inside)
            assert enc["entity_indices"][w][:n] == inside and all(x == -1 for x in enc["entity_indices"][w][n:])
            for slot, j in enumerate(inside):
                shifted = [p - start if p >= 0 else -1 for p in full["entity_position_ids"][j]]
                assert enc["entity_position_ids"][w][slot] == shifted
                assert enc["entity_start_positions"][w][slot] == full["entity_start_positions"][j] - start
    assert set(seen) == set(range(len(body)))
    assert position == len(body)
