"""Dynamic masking (exact rules and statistics), collation, the item stream, AdamW and the LR schedules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import minilm_folder
from luke.pretraining.collator import IGNORE_INDEX, EntityVocabInfo, WordVocabInfo, collate, mask_item, word_units
from luke.pretraining.config import MaskingConfig
from luke.pretraining.data import StreamLayout
from luke.pretraining.optim import LukeAdamW
from luke.training import WarmupSchedule, parameter_groups

ENT = EntityVocabInfo(pad_id=0, mask_id=2)


@pytest.fixture(scope="module")
def bert() -> tuple[object, WordVocabInfo]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_folder()), local_files_only=True)
    return tokenizer, WordVocabInfo.from_tokenizer(tokenizer)


def _item(tokenizer, text: str, n_entities: int = 0) -> dict:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return {
        "word_ids": ids,
        "entity_ids": [10 + i for i in range(n_entities)],
        "entity_position_ids": [[i % len(ids), (i + 1) % len(ids)] for i in range(n_entities)],
    }


TEXT = (
    "The unbelievably photogenic anarchist philosopher Proudhon wrote extensively about mutualism, "
    "property and the organisation of credit in nineteenth-century France, which influenced syndicalism."
)


def test_vocab_info_marks_wordpiece_continuations(bert) -> None:
    tokenizer, info = bert
    assert info.continuation[tokenizer.convert_tokens_to_ids("##s")]
    assert not info.continuation[tokenizer.convert_tokens_to_ids("the")]
    assert not info.continuation[tokenizer.mask_token_id]
    assert tokenizer.mask_token_id not in set(info.random_ids.tolist())
    assert tokenizer.cls_token_id not in set(info.random_ids.tolist())
    assert tokenizer.convert_tokens_to_ids("[unused5]") not in set(info.random_ids.tolist())


def test_byte_level_bpe_continuations(shared_data: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(shared_data / "tokenizers" / "roberta-base"), local_files_only=True)
    info = WordVocabInfo.from_tokenizer(tok)
    ids = tok(" photogenic Proudhon, ok", add_special_tokens=False)["input_ids"]
    units = word_units(np.array(ids), info.continuation, True)
    pieces = [tok.decode([ids[i] for i in unit]) for unit in units]
    assert pieces == [" photogenic", " Proudhon", ",", " ok"]


def test_sentencepiece_continuations(tmp_path: Path) -> None:
    """mLUKE / XLM-R SentencePiece pieces: "▁" starts a word, anything else continues it (punctuation aside),
    so whole-word masking takes "▁Tok" + "yo" together."""
    from luke.wikipedia.pretraining_dataset import load_tokenizer
    from test_mluke_tokenizer import write_folder
    from test_wikipedia_pretraining_dataset import _sentencepiece_on

    texts = ["Tokyo is the capital of Japan.", "Kyoto was the capital, said Tokunaga.", "Tokyoites like Tokyo."]
    tok = load_tokenizer(write_folder(tmp_path / "spm", _sentencepiece_on(texts)))
    info = WordVocabInfo.from_tokenizer(tok)
    text = "Tokyoites said Tokunaga, ok."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    assert len(pieces) > len(text.split()) + 2, pieces  # some words are several pieces
    units = word_units(np.array(ids), info.continuation, True)
    words = ["".join(pieces[i] for i in unit) for unit in units]
    assert "".join(words).replace("▁", " ").strip() == "Tokyoites said Tokunaga, ok."
    assert words[:3] == ["▁Tokyoites", "▁said", "▁Tokunaga"], words
    assert all(w.startswith("▁") or w[0] in ",." for w in words), words
    assert not info.continuation[tok.mask_token_id] and tok.mask_token_id not in set(info.random_ids.tolist())


def test_exact_rules_on_one_item(bert) -> None:
    tokenizer, info = bert
    item = _item(tokenizer, TEXT, n_entities=9)
    n = len(item["word_ids"])
    out = mask_item(item, 3, seed=1, epoch=0, masking=MaskingConfig(), words=info, entities=ENT)
    assert out["input_ids"][0] == tokenizer.cls_token_id and out["input_ids"][-1] == tokenizer.sep_token_id
    assert out["labels"][0] == IGNORE_INDEX and out["labels"][-1] == IGNORE_INDEX
    chosen = out["labels"][1:-1] != IGNORE_INDEX
    assert chosen.sum() == max(1, round(n * 0.15))  # the budget is filled exactly here
    assert (out["labels"][1:-1][chosen] == np.array(item["word_ids"])[chosen]).all()
    unchanged = ~chosen
    assert (out["input_ids"][1:-1][unchanged] == np.array(item["word_ids"])[unchanged]).all()
    # whole words: a chosen unit is chosen entirely
    for unit in word_units(np.array(item["word_ids"]), info.continuation, True):
        assert len(set(chosen[unit].tolist())) == 1
    # entities: max(1, round(9 * 0.15)) = 1, always [MASK], labels = original ids
    ent_chosen = out["entity_labels"] != IGNORE_INDEX
    assert ent_chosen.sum() == 1
    assert (out["entity_ids"][ent_chosen] == ENT.mask_id).all()
    assert (out["entity_labels"][ent_chosen] == np.array(item["entity_ids"])[ent_chosen]).all()
    assert (out["entity_ids"][~ent_chosen] == np.array(item["entity_ids"])[~ent_chosen]).all()
    # positions are shifted by one for [CLS]
    assert out["entity_position_ids"].tolist() == [[p + 1 for p in m] for m in item["entity_position_ids"]]


def test_pure_function_of_item_seed_epoch(bert) -> None:
    tokenizer, info = bert
    item = _item(tokenizer, TEXT, n_entities=20)
    kw = dict(masking=MaskingConfig(), words=info, entities=ENT)
    a = mask_item(item, 5, seed=0, epoch=0, **kw)
    b = mask_item(dict(item), 5, seed=0, epoch=0, **kw)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other_epoch = mask_item(item, 5, seed=0, epoch=1, **kw)
    other_seed = mask_item(item, 5, seed=1, epoch=0, **kw)
    assert not np.array_equal(a["labels"], other_epoch["labels"])
    assert not np.array_equal(a["labels"], other_seed["labels"])


@settings(max_examples=60, deadline=None)
@given(
    n_words=st.integers(1, 60),
    n_ent=st.integers(0, 30),
    seed=st.integers(0, 2**31),
    prob=st.sampled_from([0.15, 0.5]),
)
def test_properties_any_item(n_words: int, n_ent: int, seed: int, prob: float) -> None:
    size = 50
    continuation = np.zeros(size, dtype=bool)
    continuation[25:] = True  # ids >= 25 continue a word
    info = WordVocabInfo(size, 1, 2, 0, 3, continuation, np.arange(5, size))
    rng = np.random.default_rng(seed)
    item = {
        "word_ids": rng.integers(5, size, n_words).tolist(),
        "entity_ids": rng.integers(1, 40, n_ent).tolist(),
        "entity_position_ids": [[0]] * n_ent,
    }
    masking = MaskingConfig(masked_lm_prob=prob, masked_entity_prob=prob)
    out = mask_item(item, seed % 97, seed=seed, epoch=seed % 3, masking=masking, words=info, entities=ENT)
    n_masked = int((out["labels"] != IGNORE_INDEX).sum())
    assert 1 <= n_masked <= max(1, round(n_words * prob)) or n_masked == 1
    if n_ent:
        assert int((out["entity_labels"] != IGNORE_INDEX).sum()) == max(1, round(n_ent * prob))
        assert (out["entity_ids"][out["entity_labels"] != IGNORE_INDEX] == ENT.mask_id).all()
    else:
        assert len(out["entity_labels"]) == 0
    changed = out["input_ids"][1:-1] != np.array(item["word_ids"])
    assert not (changed & (out["labels"][1:-1] == IGNORE_INDEX)).any()  # only chosen positions change


def test_statistics_80_10_10_whole_words_15_percent(bert) -> None:
    tokenizer, info = bert
    item = _item(tokenizer, TEXT)
    ids = np.array(item["word_ids"])
    units = word_units(ids, info.continuation, True)
    assert any(len(u) > 1 for u in units)  # the text has multi-piece words
    unit_of = {int(p): i for i, u in enumerate(units) for p in u}
    kinds: Counter[str] = Counter()
    fraction = []
    masking = MaskingConfig()
    for index in range(3000):
        out = mask_item(item, index, seed=7, epoch=0, masking=masking, words=info, entities=ENT)
        labels, inputs = out["labels"][1:-1], out["input_ids"][1:-1]
        chosen = np.flatnonzero(labels != IGNORE_INDEX)
        fraction.append(len(chosen) / len(ids))
        for u in {unit_of[int(p)] for p in chosen}:
            pos = units[u]
            if (inputs[pos] == tokenizer.mask_token_id).all():
                kinds["mask"] += 1
            elif (inputs[pos] == ids[pos]).all():
                kinds["keep"] += 1  # (a random draw equal to the original is counted here: rare)
            else:
                kinds["random"] += 1
                assert (inputs[pos] != tokenizer.mask_token_id).all()
    total = sum(kinds.values())
    # 3 sigma bounds for binomial shares over ~20k units
    assert abs(kinds["mask"] / total - 0.8) < 0.015, kinds
    assert abs(kinds["random"] / total - 0.1) < 0.012, kinds
    assert abs(kinds["keep"] / total - 0.1) < 0.012, kinds
    assert abs(np.mean(fraction) - round(len(ids) * 0.15) / len(ids)) < 0.01
    # every position gets masked at a similar rate (no positional bias beyond whole-word packing)
    per_position = np.zeros(len(ids))
    for index in range(3000):
        per_position += (
            mask_item(item, index, seed=8, epoch=0, masking=masking, words=info, entities=ENT)["labels"][1:-1]
            != IGNORE_INDEX
        )
    rate = per_position / 3000
    assert rate.min() > 0.05 and rate.max() < 0.3


def test_entity_statistics_uniform_choice(bert) -> None:
    tokenizer, info = bert
    item = _item(tokenizer, TEXT, n_entities=20)  # round(20 * 0.15) = 3 per item
    hits = np.zeros(20)
    for index in range(4000):
        out = mask_item(item, index, seed=3, epoch=0, masking=MaskingConfig(), words=info, entities=ENT)
        assert (out["entity_labels"] != IGNORE_INDEX).sum() == 3
        hits += out["entity_labels"] != IGNORE_INDEX
    expected = 4000 * 3 / 20  # 600 per slot, sd ~ 22.6
    assert np.abs(hits - expected).max() < 5 * 22.6


def test_subword_masking_option(bert) -> None:
    tokenizer, info = bert
    item = _item(tokenizer, TEXT)
    units = word_units(np.array(item["word_ids"]), info.continuation, False)
    assert len(units) == len(item["word_ids"])


def test_collate_pads_everything(bert) -> None:
    tokenizer, info = bert
    a = mask_item(_item(tokenizer, TEXT, 3), 0, seed=0, epoch=0, masking=MaskingConfig(), words=info, entities=ENT)
    b = mask_item(
        _item(tokenizer, "short text here", 0), 1, seed=0, epoch=0, masking=MaskingConfig(), words=info, entities=ENT
    )
    batch = collate([a, b], word_pad_id=tokenizer.pad_token_id, entity_pad_id=ENT.pad_id)
    L = len(a["input_ids"])
    assert batch["input_ids"].shape == (2, L)
    assert batch["attention_mask"][1].sum() == len(b["input_ids"])
    assert (batch["labels"][1, len(b["input_ids"]) :] == IGNORE_INDEX).all()
    assert batch["entity_ids"].shape == (2, 3) and batch["entity_attention_mask"][1].sum() == 0
    assert (batch["entity_labels"][1] == IGNORE_INDEX).all()
    assert (batch["entity_position_ids"][1] == -1).all()
    assert batch["entity_position_ids"].shape[2] == 2


def test_stream_layout_same_global_batches_for_any_split() -> None:
    one = StreamLayout(num_items=10, batch_size=4, accumulation=1, world_size=1, seed=3)
    two = StreamLayout(num_items=10, batch_size=4, accumulation=2, world_size=2, seed=3)
    for step in range(6):
        whole = one.items(one.positions(step, 0, 0))
        split = [p for micro in range(2) for rank in range(2) for p in two.items(two.positions(step, micro, rank))]
        assert sorted(whole) == sorted(split)
    epoch0 = [i for i, e in one.items(np.arange(10))]
    assert sorted(epoch0) == list(range(10))  # an epoch visits every item once
    assert [e for _, e in one.items(np.arange(8, 12))] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="divisible"):
        StreamLayout(10, 6, 2, 2, 0).check()


@pytest.mark.parametrize("bias_correction", [True, False])
def test_adamw_matches_reference(bias_correction: bool) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3))
    ref = [p.detach().clone() for p in model.parameters()]
    groups = parameter_groups(model, 0.1)
    assert len(groups[1]["params"]) == 3  # the three biases (the LayerNorm here is not named "LayerNorm")
    ours = LukeAdamW(groups, lr=1e-2, betas=(0.9, 0.98), eps=1e-6, bias_correction=bias_correction)
    # reference: a plain re-implementation of the formulas
    m = [torch.zeros_like(p) for p in ref]
    v = [torch.zeros_like(p) for p in ref]
    decays = [0.1 if p in [id(q) for q in groups[0]["params"]] else 0.0 for p in map(id, model.parameters())]
    for step in range(1, 6):
        x = torch.randn(4, 6)
        model.zero_grad()
        model(x).pow(2).sum().backward()
        grads = [p.grad.detach().clone() for p in model.parameters()]
        ours.step()
        for i, g in enumerate(grads):
            ref[i] = ref[i] * (1 - 1e-2 * decays[i])
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.98 * v[i] + 0.02 * g * g
            if bias_correction:
                update = (m[i] / (1 - 0.9**step)) / ((v[i] / (1 - 0.98**step)).sqrt() + 1e-6)
            else:
                update = m[i] / (v[i].sqrt() + 1e-6)
            ref[i] = ref[i] - 1e-2 * update
        for p, r in zip(model.parameters(), ref, strict=True):
            torch.testing.assert_close(p.detach(), r, atol=1e-6, rtol=1e-5)


def test_adamw_with_bias_correction_equals_torch() -> None:
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a = LukeAdamW(a.parameters(), lr=1e-2, weight_decay=0.01, eps=1e-8)
    opt_b = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.01, eps=1e-8)
    for _ in range(5):
        x = torch.randn(8, 4)
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-6)


def test_schedules() -> None:
    linear = WarmupSchedule(4, 10)
    assert [round(linear(s), 4) for s in range(10)] == [0.25, 0.5, 0.75, 1.0, 1.0, 0.8333, 0.6667, 0.5, 0.3333, 0.1667]
    constant = WarmupSchedule(2, 10, "warmup_constant")
    assert [constant(s) for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    assert WarmupSchedule(0, 4)(0) == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"word_ids": [10**6, 2000]}, r"dataset item 7 \(0-based\): word id 1000000 is outside"),
        ({"word_ids": [-5, 2000]}, "word id -5 is outside"),
        ({"entity_ids": [500]}, r"entity id 500 is outside the entity vocabulary \(size 20\)"),
        ({"entity_ids": [-1]}, "entity id -1 is outside"),
        ({"entity_position_ids": [[0], [1]]}, "1 entities but 2 entity position lists"),
        ({"entity_position_ids": [[400]]}, r"entity positions \[400\] are not word positions of the item \(0 to 1\)"),
        ({"entity_position_ids": [[]]}, "are not word positions"),
    ],
)
def test_items_that_do_not_fit_the_vocabularies_are_dataset_errors(bert, change, message) -> None:
    from luke.errors import DatasetError

    _, words = bert
    item = {"word_ids": [2000, 2001], "entity_ids": [5], "entity_position_ids": [[0, 1]], **change}
    with pytest.raises(DatasetError, match=message):
        mask_item(
            item, 7, seed=0, epoch=0, masking=MaskingConfig(), words=words,
            entities=EntityVocabInfo(pad_id=0, mask_id=2, size=20),
        )  # fmt: skip
