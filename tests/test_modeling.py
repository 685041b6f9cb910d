"""Model numerics: parity with transformers' LUKE on identical weights, the fused split-key attention
against the plain formulation, entity embedding semantics, and input validation."""

from __future__ import annotations

import pytest
import torch
import transformers

from conftest import count_onednn_products
from luke import kernels, modeling
from luke.config import LukeConfig
from luke.modeling import LukeForMaskedLM, LukeModel, attention_reference

TINY = dict(
    vocab_size=99,
    entity_vocab_size=10,
    hidden_size=32,
    entity_emb_size=6,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
    layer_norm_eps=1e-5,
)


def tiny_config(**overrides) -> LukeConfig:
    return LukeConfig(**(TINY | overrides))


def make_batch(B=3, L=11, E=4, M=5, pad=1, seed=0, with_entities=True):
    """A padded batch: example 0 has padded words, example 1 padded entities, example 2 no entities."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, TINY["vocab_size"], (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    ids[0, 7:], mask[0, 7:] = pad, 0
    batch = dict(input_ids=ids, attention_mask=mask, token_type_ids=torch.randint(0, 2, (B, L), generator=g))
    if with_entities:
        ent = torch.randint(1, TINY["entity_vocab_size"], (B, E), generator=g)
        emask = torch.ones(B, E, dtype=torch.long)
        pos = torch.full((B, E, M), -1)
        for b in range(B):
            for e in range(E):
                start = int(torch.randint(1, 6, (1,), generator=g))
                length = int(torch.randint(1, 4, (1,), generator=g))
                pos[b, e, :length] = torch.arange(start, start + length)
        emask[1, 2:] = 0
        ent[1, 2:] = 0
        pos[1, 2:] = -1
        emask[2, :] = 0
        batch |= dict(
            entity_ids=ent,
            entity_attention_mask=emask,
            entity_position_ids=pos,
            entity_token_type_ids=torch.randint(0, 2, (B, E), generator=g),
        )
    return batch


def assert_close_real(ours, ref, mask, atol=1e-5):
    """Compare hidden states on real tokens only: ours are exactly zero at padding positions (the encoder
    never computes them), transformers' are arbitrary values there."""
    keep = mask.bool()
    torch.testing.assert_close(ours[keep], ref[keep], atol=atol, rtol=0)
    assert ours[~keep].abs().max() == 0 if (~keep).any() else True


def hf_pair(entity_aware: bool, head: str = "LukeModel", dtype=torch.float32):
    hf = getattr(transformers, head)(transformers.LukeConfig(use_entity_aware_attention=entity_aware, **TINY))
    ours_cls = {"LukeModel": LukeModel, "LukeForMaskedLM": LukeForMaskedLM}[head]
    ours = ours_cls(tiny_config(use_entity_aware_attention=entity_aware))
    report = modeling_load(ours, hf.state_dict())
    assert not report.missing_keys and not report.unexpected_keys
    return hf.to(dtype).eval(), ours.to(dtype).eval()


def modeling_load(model, state):
    from luke.checkpoint import load_state_dict

    return load_state_dict(model, state)


@pytest.mark.parametrize("entity_aware", [True, False])
@pytest.mark.parametrize("with_entities", [True, False])
def test_luke_model_matches_transformers(entity_aware, with_entities):
    hf, ours = hf_pair(entity_aware)
    batch = make_batch(with_entities=with_entities)
    with torch.no_grad():
        a = hf(**batch, output_hidden_states=True)
        b = ours(**batch, output_hidden_states=True)
    assert_close_real(b.last_hidden_state, a.last_hidden_state, batch["attention_mask"])
    torch.testing.assert_close(b.pooler_output, a.pooler_output, atol=1e-5, rtol=0)
    assert len(b.hidden_states) == TINY["num_hidden_layers"] + 1
    assert_close_real(b.hidden_states[1], a.hidden_states[1], batch["attention_mask"])
    if with_entities:
        emask = batch["entity_attention_mask"]
        assert_close_real(b.entity_last_hidden_state, a.entity_last_hidden_state, emask)
        assert_close_real(b.entity_hidden_states[-1], a.entity_hidden_states[-1], emask)
    else:
        assert b.entity_last_hidden_state is None


@pytest.mark.parametrize("entity_aware", [True, False])
def test_gradients_match_transformers(entity_aware):
    """fp64 so the comparison measures the formulation, not fp32 rounding (which at random init is
    ~1e-2 relative even between two runs of the same fp32 model on a cancellation-prone loss)."""
    hf, ours = hf_pair(entity_aware, dtype=torch.float64)
    batch = make_batch()
    g = torch.Generator().manual_seed(1)
    # Loss weights are zero at padding positions: only real tokens' states are defined outputs.
    w_word = torch.randn(3, 11, 32, generator=g, dtype=torch.float64) * batch["attention_mask"][..., None]
    w_ent = torch.randn(3, 4, 32, generator=g, dtype=torch.float64) * batch["entity_attention_mask"][..., None]
    for model in (hf, ours):
        out = model(**batch)
        ((out.last_hidden_state * w_word).sum() + (out.entity_last_hidden_state * w_ent).sum()).backward()
    hf_grads = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        ref = hf_grads[name].grad
        if ref is None:
            assert p.grad is None or p.grad.abs().max() == 0, name
            continue
        torch.testing.assert_close(p.grad, ref, atol=1e-10, rtol=1e-8, msg=name)


@pytest.mark.parametrize("entity_aware", [True, False])
def test_fp32_gradients_close_to_transformers(entity_aware):
    hf, ours = hf_pair(entity_aware)
    batch = make_batch()
    w = torch.randn(3, 11, 32) * batch["attention_mask"][..., None]
    w_ent = batch["entity_attention_mask"][..., None].float()
    for model in (hf, ours):
        out = model(**batch)
        ((out.last_hidden_state * w).sum() + (out.entity_last_hidden_state * w_ent).sum()).backward()
    hf_grads = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        if hf_grads[name].grad is not None:
            torch.testing.assert_close(p.grad, hf_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_masked_lm_matches_transformers():
    hf, ours = hf_pair(True, head="LukeForMaskedLM")
    batch = make_batch()
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, 2] = 5
    entity_labels = torch.full_like(batch["entity_ids"], -100)
    entity_labels[0, 0] = 3
    with torch.no_grad():
        a = hf(**batch, labels=labels, entity_labels=entity_labels)
        b = ours(**batch, labels=labels, entity_labels=entity_labels)
    for name in ("logits", "entity_logits", "loss", "mlm_loss", "mep_loss"):
        x, y = getattr(b, name), getattr(a, name)
        if name in ("logits", "entity_logits"):  # compare real tokens (padding rows differ, see above)
            keep = batch["attention_mask" if name == "logits" else "entity_attention_mask"].bool()
            x, y = x[keep], y[keep]
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=name)


def test_entity_aware_with_copied_queries_equals_vanilla():
    vanilla = LukeModel(tiny_config(use_entity_aware_attention=False)).eval()
    aware = LukeModel(tiny_config(use_entity_aware_attention=True)).eval()
    report = modeling_load(aware, vanilla.state_dict())
    assert len(report.copied_queries) == 2 * 3 * TINY["num_hidden_layers"]
    batch = make_batch()
    with torch.no_grad():
        a, b = vanilla(**batch), aware(**batch)
    assert_close_real(b.last_hidden_state, a.last_hidden_state, batch["attention_mask"], atol=1e-6)
    assert_close_real(b.entity_last_hidden_state, a.entity_last_hidden_state, batch["entity_attention_mask"], atol=1e-6)


def _random_attention_inputs(dtype, B=2, h=3, L=9, E=4, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = L + E
    q_tw, q_te, k, v = (torch.randn(B, h, N, d, generator=g, dtype=dtype, requires_grad=True) for _ in range(4))
    keep = torch.ones(B, 1, 1, N, dtype=torch.bool)
    keep[0, ..., 6:L] = False  # padded words
    keep[1, ..., L:] = False  # an example with no entities at all
    mask = torch.zeros(keep.shape, dtype=dtype).masked_fill_(~keep, torch.finfo(dtype).min)
    return q_tw, q_te, k, v, mask, L


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_split_key_attention_matches_plain_formulation(dtype, tol):
    q_tw, q_te, k, v, mask, L = _random_attention_inputs(dtype)
    scale = 8**-0.5
    fast = kernels.attention.SplitKeyAttention.apply(
        q_tw, q_te, k[:, :, :L], v[:, :, :L], k[:, :, L:], v[:, :, L:], mask[..., :L], mask[..., L:], scale
    )
    ref, _ = attention_reference(q_tw, q_te, k, v, mask, L, scale)
    torch.testing.assert_close(fast, ref, atol=tol, rtol=0)
    grad = torch.randn_like(fast)
    fast_grads = torch.autograd.grad(fast, (q_tw, q_te, k, v), grad)
    ref_grads = torch.autograd.grad(ref, (q_tw, q_te, k, v), grad)
    for name, a, b in zip(("q_tw", "q_te", "k", "v"), fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=0, msg=name)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_dropout_keep_mask_is_bernoulli_in_every_lane_and_reproducible(p):
    """The mask comes from the four 16-bit lanes of uniform 64-bit integers: every lane must keep with the
    same probability 1 - round(p * 32768) / 32768, and the rescale must invert it; ``out=`` gives the same."""
    n = 1 << 22
    torch.manual_seed(3)
    keep, kscale = kernels.dropout_keep_mask((n // 1024, 1024), p, torch.device("cpu"))
    assert keep.dtype == torch.bool and keep.shape == (n // 1024, 1024)
    p_eff = round(p * 32768) / 32768
    assert kscale == pytest.approx(1 / (1 - p_eff), rel=1e-12)
    per_lane = keep.reshape(-1, 4).double().mean(0)  # 2**20 draws per lane: std < 5e-4
    torch.testing.assert_close(per_lane, torch.full((4,), 1 - p_eff, dtype=torch.float64), atol=2.5e-3, rtol=0)
    # neighbouring decisions are not correlated (a lane bug would repeat or mirror bits)
    k = keep.reshape(-1).double()
    assert abs(((k[1:] - (1 - p_eff)) * (k[:-1] - (1 - p_eff))).mean().item()) < 1e-3
    torch.manual_seed(3)
    again, _ = kernels.dropout_keep_mask((n // 1024, 1024), p, torch.device("cpu"))
    assert torch.equal(keep, again)
    torch.manual_seed(3)
    out = torch.empty(n // 1024, 1024, dtype=torch.bool)
    assert kernels.dropout_keep_mask(out.shape, p, torch.device("cpu"), out=out)[0] is out
    assert torch.equal(out, keep)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keep_mask_is_the_documented_threshold_of_the_drawn_lanes(p):
    """Bit-exact: keep iff the signed 16-bit lane x >= 2t - 32768 (t = round(p * 32768)) of the uniform 64-bit
    integers ``random_(int64 min, None)`` draws, in memory order, for an odd size too."""
    t = round(p * 32768)
    for n in (4 * 1000, 4 * 1000 + 3):
        torch.manual_seed(5)
        lanes = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(2**63), None).view(torch.int16)[:n]
        torch.manual_seed(5)
        keep, _ = kernels.dropout_keep_mask((n,), p, torch.device("cpu"))
        assert torch.equal(keep, lanes >= 2 * t - 32768)
        assert lanes.min() < 2 * t - 32768 <= lanes.max()  # both branches were exercised


def test_dropout_keep_mask_edges():
    keep, kscale = kernels.dropout_keep_mask((7, 5), 1.0, torch.device("cpu"))
    assert not keep.any() and kscale == 0.0
    keep, kscale = kernels.dropout_keep_mask((3, 3, 3), 1e-9, torch.device("cpu"))  # odd size, rounds to p = 0
    assert keep.all() and kscale == 1.0


def test_fast_dropout_train_and_eval():
    drop = kernels.FastDropout(0.2)
    x = torch.rand(64, 512, dtype=torch.float64) + 1.0
    assert drop.eval()(x) is x
    x.requires_grad_(True)
    y = drop.train()(x)
    scale = 1 / (1 - round(0.2 * 32768) / 32768)
    kept = y != 0
    assert 0.75 < kept.double().mean().item() < 0.85
    torch.testing.assert_close(y[kept], x[kept] * scale)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, kept.double() * scale)


@pytest.mark.parametrize("vanilla", [False, True])
@pytest.mark.parametrize("p", [0.0, 0.3])
# 2 x 3 heads; N = 13: one chunk of all 6; N = 170: chunks of 4 and 2; N = 264: one head each
@pytest.mark.parametrize("L,E", [(9, 4), (150, 20), (250, 14)])
@pytest.mark.parametrize("entity_queries", [False, True])
def test_dense_attention_matches_plain_formulation_with_the_same_mask(vanilla, p, L, E, entity_queries, monkeypatch):
    """The training path (chunked materialised probabilities, in-place softmax, dropout) against autograd
    through ``attention_reference`` fed the same keep mask: forward and all gradients, in float64. Also with
    only the entities' queries against all keys (the entity heads' last layer)."""
    q_tw, q_te, k, v, mask, L = _random_attention_inputs(torch.float64, L=L, E=E)
    if entity_queries:
        q_tw, q_te = (q[:, :, L:].detach().clone().requires_grad_(True) for q in (q_tw, q_te))
    q_te_arg = q_tw if vanilla else q_te
    scale = 8**-0.5
    drawn = []  # the chunks' masks, in drawing order
    draw = kernels.dropout_keep_mask
    monkeypatch.setattr(
        kernels.attention, "dropout_keep_mask", lambda *a, **kw: drawn.append(draw(*a, **kw)) or drawn[-1]
    )
    fast = kernels.attention.DenseAttention.apply(q_tw, q_te_arg, k, v, mask, L, scale, p)
    if p:
        B, h, Nq, _ = q_tw.shape
        N = k.shape[2]
        chunks = kernels.attention.head_chunks(B * h, Nq * N)
        if not entity_queries:
            assert len({m.shape for m, _ in drawn}) == (2 if L == 150 else 1)
        assert len(drawn) == len(chunks)
        keep = torch.empty(B * h, Nq, N, dtype=torch.bool)
        for j, (m, _) in zip(chunks, drawn, strict=True):
            keep[j] = m
        keep = keep.view(B, h, Nq, N)
        assert 0.6 < keep.double().mean().item() < 0.8
        kscale = drawn[0][1]
        ref, _ = attention_reference(q_tw, None if vanilla else q_te, k, v, mask, L, scale, lambda x: x * keep * kscale)
    else:
        ref, _ = attention_reference(q_tw, None if vanilla else q_te, k, v, mask, L, scale)
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=0)
    grad = torch.randn_like(fast)
    inputs = (q_tw, k, v) if vanilla else (q_tw, q_te, k, v)
    fast_grads = torch.autograd.grad(fast, inputs, grad)
    ref_grads = torch.autograd.grad(ref, inputs, grad)
    for a, b in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_training_step_uses_dense_attention_and_is_reproducible(monkeypatch):
    """Train mode with attention dropout goes through DenseAttention on CPU (entity-aware and vanilla
    layers), and the same seed gives the same loss and gradients."""
    calls = []
    original = kernels.attention.DenseAttention.apply
    monkeypatch.setattr(kernels.attention.DenseAttention, "apply", lambda *a: calls.append(1) or original(*a))
    model = LukeForMaskedLM(tiny_config(attention_probs_dropout_prob=0.2, hidden_dropout_prob=0.2)).train()
    batch = make_batch()
    labels = batch["input_ids"].clone()
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        loss = model(**batch, labels=labels).loss
        (g,) = torch.autograd.grad(loss, model.luke.encoder.layer[0].attention.self.w2e_query.weight)
        results.append((loss.detach(), g))
    assert calls and len(calls) == 2 * TINY["num_hidden_layers"]
    torch.testing.assert_close(results[0][0], results[1][0], atol=0, rtol=0)
    torch.testing.assert_close(results[0][1], results[1][1], atol=0, rtol=0)
    assert results[0][1].abs().sum() > 0


def test_model_fast_path_equals_reference_path_with_grads():
    """The whole model through the fused path vs output_attentions=True (which uses the plain path)."""
    model = LukeModel(tiny_config()).eval()
    batch = make_batch()
    fast = model(**batch)
    ref = model(**batch, output_attentions=True)
    assert ref.attentions[0].shape == (3, 4, 15, 15)
    torch.testing.assert_close(fast.last_hidden_state, ref.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.entity_last_hidden_state, ref.entity_last_hidden_state, atol=1e-5, rtol=0)
    g1 = torch.autograd.grad(
        fast.entity_last_hidden_state.sum(), model.encoder.layer[0].attention.self.e2e_query.weight
    )
    g2 = torch.autograd.grad(ref.entity_last_hidden_state.sum(), model.encoder.layer[0].attention.self.e2e_query.weight)
    torch.testing.assert_close(g1[0], g2[0], atol=1e-5, rtol=1e-4)


def test_entity_embedding_averages_valid_positions_only():
    config = tiny_config(hidden_dropout_prob=0.0)
    emb = modeling.LukeEntityEmbeddings(config).eval()
    pos_table = emb.position_embeddings.weight
    ids = torch.tensor([[1, 2, 3]])
    positions = torch.tensor([[[2, 3, -1], [4, -1, -1], [-1, -1, -1]]])
    types = torch.zeros_like(ids)
    out = emb(ids, positions, types)
    base = emb.entity_embedding_dense(emb.entity_embeddings(ids)) + emb.token_type_embeddings(types)
    expected_pos = torch.stack([(pos_table[2] + pos_table[3]) / 2, pos_table[4], torch.zeros_like(pos_table[0])])
    torch.testing.assert_close(out, emb.LayerNorm(base + expected_pos[None]))


def test_bf16_autocast_runs_and_is_close():
    model = LukeModel(tiny_config()).eval()
    batch = make_batch()
    with torch.no_grad():
        ref = model(**batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(**batch)
    assert (low.last_hidden_state.float() - ref.last_hidden_state).abs().max() < 0.1
    assert torch.isfinite(low.entity_last_hidden_state.float()).all()


def test_training_mode_with_attention_dropout_backpropagates():
    model = LukeForMaskedLM(tiny_config()).train()
    batch = make_batch()
    labels = batch["input_ids"].clone()
    out = model(**batch, labels=labels)
    out.loss.backward()
    assert model.luke.encoder.layer[0].attention.self.w2e_query.weight.grad.abs().sum() > 0
    # MLM decoder and word embeddings are one tensor.
    assert model.lm_head.decoder.weight is model.luke.embeddings.word_embeddings.weight
    assert model.entity_predictions.decoder.weight is model.luke.entity_embeddings.entity_embeddings.weight


def test_bert_style_positions_are_zero_based():
    model = LukeModel(tiny_config(word_position_style="bert", pad_token_id=0)).eval()
    ids = torch.tensor([[5, 6, 7, 0]])
    assert model.embeddings.make_position_ids(ids).tolist() == [[0, 1, 2, 3]]
    roberta = LukeModel(tiny_config()).eval()
    assert roberta.embeddings.make_position_ids(torch.tensor([[5, 6, 7, 1]])).tolist() == [[2, 3, 4, 1]]


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda b: b.update(entity_ids=b["entity_ids"] + 100), "entity_vocab_size"),
        (lambda b: b["entity_position_ids"].__setitem__((0, 0, 0), 11), "entity_position_ids"),
        (lambda b: b.update(entity_position_ids=b["entity_position_ids"][:, :2]), "entity_position_ids"),
        (lambda b: b.update(attention_mask=b["attention_mask"][:, :3]), "attention_mask"),
        (lambda b: b.update(input_ids=b["input_ids"] + 1000), "vocab_size"),
        (lambda b: b.pop("entity_position_ids"), "entity_position_ids is required"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    model = LukeModel(tiny_config()).eval()
    batch = make_batch()
    change(batch)
    with pytest.raises(ValueError, match=message):
        model(**batch)


def test_too_long_sequence_is_rejected():
    model = LukeModel(tiny_config(max_position_embeddings=10)).eval()
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.full((1, 9), 5))


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        tiny_config(hidden_size=30)


def test_resize_token_embeddings_keeps_rows_and_ties():
    model = LukeForMaskedLM(tiny_config()).eval()
    old = model.luke.embeddings.word_embeddings.weight.detach().clone()
    old_bias = model.lm_head.decoder.bias.detach().clone()
    model.resize_token_embeddings(101, init_from={99: 5, 100: 7})
    w = model.luke.embeddings.word_embeddings.weight
    assert w.shape == (101, 32) and model.config.vocab_size == 101
    assert torch.equal(w[:99], old) and torch.equal(w[99], old[5]) and torch.equal(w[100], old[7])
    assert model.lm_head.decoder.weight is w and model.lm_head.bias is model.lm_head.decoder.bias
    assert torch.equal(model.lm_head.decoder.bias[99], old_bias[5])
    out = model(torch.tensor([[0, 99, 100, 2]]))
    assert out.logits.shape == (1, 4, 101)


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu", "silu"])
def test_inference_ffn_buffer_gives_the_same_states(act):
    """Under no_grad the encoder's layers share one FFN block and apply the activation in place: the
    states must equal the autograd-enabled (fresh tensors) forward exactly."""
    model = LukeModel(tiny_config(hidden_act=act, num_hidden_layers=3)).eval()
    batch = make_batch()
    ref = model(**batch, output_hidden_states=True)
    with torch.no_grad():
        fast = model(**batch, output_hidden_states=True)
    torch.testing.assert_close(fast.last_hidden_state, ref.last_hidden_state, atol=0, rtol=0)
    torch.testing.assert_close(fast.entity_last_hidden_state, ref.entity_last_hidden_state, atol=0, rtol=0)
    for a, b in zip(fast.hidden_states, ref.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def _spy_onednn(monkeypatch, min_rows):
    """Route EncoderLinear's oneDNN products through a counter and make the backend tuner choose oneDNN (by
    injected timings) for every product of at least ``min_rows`` rows; returns the list of their input shapes."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("torch built without oneDNN: EncoderLinear is plain nn.Linear")
    if kernels.linear._ONEDNN is None:
        pytest.fail("this torch build has oneDNN but not the linear ops EncoderLinear uses")
    calls = count_onednn_products(monkeypatch)
    monkeypatch.delenv(kernels.autotune.BACKEND_ENV, raising=False)
    monkeypatch.setattr(kernels.autotune, "MIN_TUNED_ROWS", min_rows)
    timings = {"mkl": 2.0, "onednn": 1.0}
    tuner = kernels.autotune.LinearAutotuner(timer=lambda *_: timings, use_disk=False)
    monkeypatch.setattr(kernels.autotune, "TUNER", tuner)
    return calls


@pytest.mark.parametrize("bias", [True, False])
def test_encoder_linear_takes_onednn_for_large_inference_products_only(bias, monkeypatch):
    rows = 5 * torch.get_num_threads()
    calls = _spy_onednn(monkeypatch, rows)
    torch.manual_seed(0)
    layer = kernels.EncoderLinear(16, 24, bias=bias)
    x = torch.randn(rows, 16)
    ref = torch.nn.functional.linear(x, layer.weight, layer.bias)
    with torch.no_grad():
        y = layer(x)
        assert calls == [(rows, 16)]
        torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
        layer(x[:-1])  # fewer rows than the tuner times: MKL
        layer(torch.randn(16, rows).t())  # not contiguous
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16  # autocast keeps nn.Linear's bf16 product
    y = layer(x)  # autograd: the training path (TunedLinearFunction), here on oneDNN too
    assert y.requires_grad
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    assert calls == [(rows, 16)] * 2


@pytest.mark.parametrize("bias", [True, False])
def test_encoder_linear_writes_mkl_products_into_out(bias):
    layer = kernels.EncoderLinear(16, 24, bias=bias)
    x, out = torch.randn(3, 16), torch.empty(3, 24)
    with torch.no_grad():
        y = layer(x, out=out)
    assert y.data_ptr() == out.data_ptr()
    torch.testing.assert_close(y, torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-6, rtol=1e-6)


def test_encoder_linear_fp64_input_is_not_sent_to_onednn(monkeypatch):
    calls = _spy_onednn(monkeypatch, 1)
    layer = kernels.EncoderLinear(8, 8).double()
    with torch.no_grad():
        layer(torch.randn(40, 8, dtype=torch.float64))
    assert calls == []


@pytest.mark.parametrize("entity_aware", [True, False])
def test_model_inference_through_onednn_products_equals_the_plain_forward(entity_aware, monkeypatch):
    """With the tuner choosing oneDNN for every product, every encoder product of an inference forward goes
    through oneDNN (including the FFN's, which then skips the shared buffer): states equal the nn.Linear
    forward's to float rounding, and transformers' as closely as the plain path does."""
    hf, ours = hf_pair(entity_aware)
    batch = make_batch()
    with torch.no_grad():
        plain = ours(**batch, output_hidden_states=True)
        calls = _spy_onednn(monkeypatch, 1)
        fast = ours(**batch, output_hidden_states=True)
        ref = hf(**batch)
    # per layer: query, key, value (+ w2e/e2w/e2e queries), attention output, FFN in and out
    assert len(calls) == TINY["num_hidden_layers"] * (9 if entity_aware else 6)
    for a, b in zip(fast.hidden_states, plain.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert_close_real(fast.last_hidden_state, ref.last_hidden_state, batch["attention_mask"])
    assert_close_real(fast.entity_last_hidden_state, ref.entity_last_hidden_state, batch["entity_attention_mask"])


@pytest.mark.parametrize("entity_aware", [True, False])
def test_model_training_through_onednn_products_equals_the_plain_step(entity_aware, monkeypatch):
    """With the tuner choosing oneDNN for every training product (forward, input and weight gradients), a
    training step's loss and every parameter's gradient equal the nn.Linear (MKL) step's to float rounding."""
    _, ours = hf_pair(entity_aware)
    ours.train()
    for module in ours.modules():  # dropout off: both steps must compute the same function
        if hasattr(module, "p"):
            module.p = 0.0
    batch = make_batch()

    def step():
        ours.zero_grad(set_to_none=True)
        out = ours(**batch)
        loss = out.last_hidden_state.pow(2).mean() + out.entity_last_hidden_state.pow(2).mean()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}

    monkeypatch.setenv(kernels.autotune.BACKEND_ENV, "mkl")
    plain_loss, plain = step()
    calls = _spy_onednn(monkeypatch, 1)
    fast_loss, fast = step()
    per_layer = 9 if entity_aware else 6  # encoder products per layer, each with forward, dx, dW
    assert len(calls) == TINY["num_hidden_layers"] * per_layer * 3
    torch.testing.assert_close(fast_loss, plain_loss, atol=1e-6, rtol=1e-6)
    assert fast.keys() == plain.keys()
    for name in plain:
        torch.testing.assert_close(fast[name], plain[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("entity_aware", [True, False])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_entity_states_only_equals_the_full_forward(entity_aware, mode):
    """``entity_states_only`` (last layer computes the entity rows alone; used by the entity task heads)
    gives the same entity states and gradients as the full forward, in every attention path: the fused
    split-key path (eval) and the materialised dropout path (train, attention dropout drawn with the same
    seed over fewer queries, so compared with dropout probability 0 and, separately, checked to run)."""
    config = tiny_config(use_entity_aware_attention=entity_aware, hidden_dropout_prob=0.0)
    config.attention_probs_dropout_prob = 0.0
    model = LukeModel(config).double()
    model.train(mode == "train")
    batch = make_batch()
    full = model(**batch)
    fast = model(**batch, entity_states_only=True)
    assert fast.last_hidden_state is None and fast.pooler_output is None
    assert fast.entity_last_hidden_state.shape == full.entity_last_hidden_state.shape == (3, 4, 32)
    torch.testing.assert_close(fast.entity_last_hidden_state, full.entity_last_hidden_state, atol=1e-12, rtol=0)
    named = {n: p for n, p in model.named_parameters() if "layer.1." in n or "layer.0.attention.self" in n}
    weights = torch.randn_like(full.entity_last_hidden_state)
    g_full = torch.autograd.grad((full.entity_last_hidden_state * weights).sum(), list(named.values()))
    g_fast = torch.autograd.grad(
        (fast.entity_last_hidden_state * weights).sum(), list(named.values()), allow_unused=True
    )
    # entity-aware: the last layer's word queries (query, w2e_query) meet no entity output
    unused = (
        {"encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.w2e_query"} if entity_aware else set()
    )
    for name, a, b in zip(named, g_full, g_fast, strict=True):
        if name.rsplit(".", 1)[0] in unused:
            assert b is None, name
        else:
            torch.testing.assert_close(b, a, atol=1e-12, rtol=0, msg=name)
    # with output_hidden_states (or no entities) everything is computed
    assert model(**batch, entity_states_only=True, output_hidden_states=True).last_hidden_state is not None
    words_only = {k: v for k, v in batch.items() if not k.startswith("entity")}
    assert model(**words_only, entity_states_only=True).last_hidden_state is not None
    if mode == "train":  # the dropout path with fewer queries than keys runs and is seeded
        model.encoder.layer[-1].attention.self.dropout.p = 0.3
        outs = []
        for _ in range(2):
            torch.manual_seed(0)
            outs.append(model(**batch, entity_states_only=True).entity_last_hidden_state)
        torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)
        assert not torch.allclose(outs[0], fast.entity_last_hidden_state)


def test_entity_heads_compute_entity_rows_only_in_the_last_layer(monkeypatch):
    """Typing and relation heads ask for entity states only; the span head (NER) needs word states."""
    from luke.modeling import LukeForEntityClassification, LukeForEntityPairClassification

    seen = []
    original = LukeModel.forward
    monkeypatch.setattr(
        LukeModel, "forward", lambda self, *a, **kw: seen.append(kw["entity_states_only"]) or original(self, *a, **kw)
    )
    batch = make_batch()
    for cls in (LukeForEntityClassification, LukeForEntityPairClassification):
        model = cls(tiny_config(id2label={0: "a", 1: "b", 2: "c"})).eval()
        assert model(**batch).logits.shape == (3, 3)
    assert seen == [True, True]


@pytest.mark.parametrize("entity_aware", [True, False])
def test_entity_heads_name_their_unused_parameters(entity_aware):
    """What the trainer freezes: the pooler, plus the last layer's word queries when that layer computes
    entity rows only (entity-aware attention); every other parameter gets a gradient."""
    from luke.modeling import LukeForEntityPairClassification, LukeForEntitySpanClassification

    config = tiny_config(id2label={0: "a", 1: "b"}, use_entity_aware_attention=entity_aware)
    model = LukeForEntityPairClassification(config).train()
    unused = model.unused_parameter_names()
    expected = {"luke.pooler.dense.weight", "luke.pooler.dense.bias"}
    if entity_aware:
        expected |= {
            f"luke.encoder.layer.1.attention.self.{q}.{w}" for q in ("query", "w2e_query") for w in ("weight", "bias")
        }
    assert set(unused) == expected
    model(**make_batch(), labels=torch.tensor([0, 1, 0])).loss.backward()
    for name, param in model.named_parameters():
        assert (param.grad is None) == (name in expected), name
    span = LukeForEntitySpanClassification(config)
    assert set(span.unused_parameter_names()) == {"luke.pooler.dense.weight", "luke.pooler.dense.bias"}
