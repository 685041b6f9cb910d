"""Tests for :mod:`luke.encoding`, the encoding core behind :class:`luke.tokenization.LukeTokenizer`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA, require_shared
from luke.encoding import EncodeOptions, Example, LukeEncoder, Segment, Window
from luke.tokenization import LukeTokenizer

ROBERTA = SHARED_DATA / "tokenizers" / "roberta-base"
BERT_CASED = SHARED_DATA / "tokenizers" / "bert" / "bert-base-cased-vocab.txt"
ENTITY_VOCAB = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3, "Germany": 4}


def _require(path: Path) -> Path:
    return require_shared(str(path.relative_to(SHARED_DATA)))


@pytest.fixture(scope="module")
def roberta() -> LukeTokenizer:
    _require(ROBERTA)
    return LukeTokenizer.from_files(
        vocab=ROBERTA / "vocab.json", merges=ROBERTA / "merges.txt", entity_vocab=ENTITY_VOCAB
    )


@pytest.fixture(scope="module")
def bert() -> LukeTokenizer:
    return LukeTokenizer.from_files(vocab_txt=_require(BERT_CASED), entity_vocab=ENTITY_VOCAB)


def _open_entity(limit: int) -> tuple[list[str], list[list[tuple[int, int]]]]:
    path = _require(SHARED_DATA / "open_entity" / "ernie_format" / "dev.json")
    texts, spans = [], []
    for ex in json.loads(path.read_text(encoding="utf-8"))[:limit]:
        texts.append(ex["sent"])
        spans.append([(ex["start"], ex["end"])] + [(s, e) for _, s, e, _ in ex["ents"]])
    return texts, spans


def _assert_same(core: dict, front: dict) -> None:
    assert list(core) == list(front)
    for key, value in front.items():
        np.testing.assert_array_equal(np.asarray(core[key]), np.asarray(value), err_msg=key)


# ---------------------------------------------------------------------------------------------- the seam
@pytest.mark.parametrize("which", ["roberta", "bert"])
def test_core_with_options_equals_the_tokenizer(which: str, request: pytest.FixtureRequest) -> None:
    tok: LukeTokenizer = request.getfixturevalue(which)
    texts, spans = _open_entity(80)
    mask = tok.entity_mask_token_id
    examples = [Example(t, s, [mask] * len(s)) for t, s in zip(texts, spans, strict=True)]
    options = EncodeOptions(
        padding="longest", max_entity_length=tok.max_entity_length, return_tensors="np", return_offsets_mapping=True
    )
    core = tok.encoder.encode(examples, options)
    front = tok(texts, entity_spans=spans, padding=True, return_tensors="np", return_offsets_mapping=True)
    _assert_same(core, front)


def test_core_task_pairs_and_windows_equal_the_tokenizer(roberta: LukeTokenizer) -> None:
    texts, spans = _open_entity(40)
    pairs = texts[1:] + texts[:1]
    first = [[s[0]] for s in spans]
    mask = roberta.entity_mask_token_id
    examples = [Example(t, s, [mask], p) for t, s, p in zip(texts, first, pairs, strict=True)]
    options = EncodeOptions(
        task="entity_classification",
        padding="longest",
        truncation="only_second",
        max_length=96,
        max_entity_length=1,
        stride=4,
        return_tensors="np",
        return_overflowing_tokens=True,
    )
    core = roberta.encoder.encode(examples, options)
    front = roberta(
        texts,
        pairs,
        entity_spans=first,
        task="entity_classification",
        padding=True,
        truncation="only_second",
        max_length=96,
        stride=4,
        return_tensors="np",
        return_overflowing_tokens=True,
    )
    _assert_same(core, front)
    assert len(core["overflow_to_sample_mapping"]) > len(texts)


def test_core_without_padding_returns_lists(roberta: LukeTokenizer) -> None:
    examples = [Example("Paris is nice", [(0, 5)], [4]), Example("Go", None, [])]
    data = roberta.encoder.encode(examples, EncodeOptions())
    assert isinstance(data["input_ids"], list) and len(data["input_ids"]) == 2
    front = roberta(["Paris is nice", "Go"], entity_spans=[[(0, 5)], None], entities=[["Germany"], None])
    assert data["input_ids"] == front["input_ids"]
    assert data["entity_ids"] == front["entity_ids"] == [[4], []]
    assert data["entity_position_ids"] == front["entity_position_ids"]


# ---------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "bogus"}, "task must be"),
        ({"padding": True}, "padding must be one of"),
        ({"truncation": "yes"}, "truncation must be one of"),
        ({"padding": "max_length"}, r"padding='max_length' needs max_length"),
        ({"max_mention_length": 0}, "max_mention_length must be >= 1"),
        ({"stride": -1}, "stride must be >= 0"),
        ({"return_tensors": "tf"}, "return_tensors must be"),
    ],
)
def test_options_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncodeOptions(**kwargs)


def test_options_are_frozen_and_know_their_output_kind() -> None:
    options = EncodeOptions()
    with pytest.raises(AttributeError):
        options.padding = "longest"  # type: ignore[misc]
    assert not options.as_arrays
    assert EncodeOptions(return_tensors="pt").as_arrays and EncodeOptions(padding="longest").as_arrays


# ---------------------------------------------------------------------------------------------- steps
def test_segments_put_span_boundaries_on_tokens(roberta: LukeTokenizer, bert: LukeTokenizer) -> None:
    text = "Beyoncé lives in Los Angeles."
    for encoder in (roberta.encoder, bert.encoder):
        (seg,) = encoder.tokenize_segments([text], [[(17, 28)]], [[2]], True)
        assert isinstance(seg, Segment) and seg.entity_ids == [2] and seg.entity_indices == [0]
        (s, e) = seg.spans[0]
        assert seg.offsets[s][0] == 17 and seg.offsets[e - 1][1] == 28
        (plain,) = encoder.tokenize_segments([text], [[(17, 28)]], [[2]], False)
        assert plain.offsets is None and plain.ids == seg.ids


def test_markers_wrap_the_spans(roberta: LukeTokenizer) -> None:
    encoder = roberta.encoder
    (seg,) = encoder.tokenize_segments(["a b c d"], [[(2, 3), (6, 7)]], [[2, 3]], True)
    n_before = len(seg.ids)
    encoder.insert_markers(seg)
    marked = seg
    e1, e2 = encoder.special.entity_1, encoder.special.entity_2
    (s1, t1), (s2, t2) = marked.spans
    assert marked.ids[s1] == e1 and marked.ids[t1 - 1] == e1
    assert marked.ids[s2] == e2 and marked.ids[t2 - 1] == e2
    assert len(marked.ids) == n_before + 4 and len(marked.offsets) == len(marked.ids)


def test_windows(roberta: LukeTokenizer) -> None:
    encoder = roberta.encoder
    assert encoder.windows(0, 10, None, 2, EncodeOptions()) == [Window(0, 10, 0, 0)]
    # longest_first takes from the longer text first, like transformers
    options = EncodeOptions(truncation="longest_first", max_length=14)
    assert encoder.windows(0, 12, 4, 4, options) == [Window(0, 6, 0, 4)]
    options = EncodeOptions(truncation="only_first", max_length=8, stride=2, return_overflowing_tokens=True)
    assert encoder.windows(0, 12, None, 2, options) == [Window(0, 6, 0, 0), Window(4, 10, 0, 0), Window(8, 12, 0, 0)]
    with pytest.raises(ValueError, match="example 3: stride=6 must be smaller than the window size 6"):
        encoder.windows(
            3,
            12,
            None,
            2,
            EncodeOptions(truncation="only_first", max_length=8, stride=6, return_overflowing_tokens=True),
        )


def test_assemble_keeps_the_entities_inside_the_window(roberta: LukeTokenizer) -> None:
    encoder = roberta.encoder
    seg = Segment(list(range(100, 110)), None, [(1, 3), (6, 8)], [7, 8], [0, 1])
    row = encoder.assemble(seg, None, Window(4, 9, 0, 0), EncodeOptions())
    sp = encoder.special
    assert row.ids == [sp.cls, 104, 105, 106, 107, 108, sp.sep]
    assert row.entity_ids == [8] and row.entity_spans == [(3, 5)] and row.entity_indices == [1]
    assert row.n_first == 1 and row.n_dropped == 1 and row.token_types is None
    # the pair gets token types (BERT layout) and its own entities after the first text's
    pair = Segment([200, 201], None, [(0, 1)], [9], [0])
    bert_like = LukeEncoder(roberta.backend_tokenizer, sp, double_separator=False)
    row = bert_like.assemble(seg, pair, Window(0, 10, 0, 2), EncodeOptions(max_entity_length=2))
    assert row.token_types == [0] * 12 + [1] * 3
    assert row.entity_ids == [7, 8] and row.n_first == 2 and row.n_dropped == 1
