"""The seam between the model and its kernels (luke.kernels): which attention path the dispatcher takes,
that every path computes ``attention_reference``, the token layout, the shared FFN block and the oneDNN
switch."""

from __future__ import annotations

import math

import pytest
import torch

from luke import kernels
from luke.kernels import TokenLayout, attention_path, entity_aware_attention, fast_dropout
from luke.modeling import attention_reference

B, h, L, E, d = 3, 2, 9, 4, 8


@pytest.mark.parametrize(
    "entity_aware,dropout_active,on_cpu,exact_dtype,output_attentions,expected",
    [
        (True, False, True, True, False, "split_key"),  # inference (or training without attention dropout)
        (False, False, True, True, False, "sdpa"),
        (True, True, True, True, False, "dense"),  # CPU training with attention dropout
        (False, True, True, True, False, "dense"),
        (True, True, True, False, False, "dense"),  # bf16 autocast with attention dropout: dense in fp32
        (False, True, True, False, False, "dense"),
        (True, False, True, True, True, "reference"),  # probabilities requested
        (False, True, True, True, True, "reference"),
        (True, False, False, True, False, "stacked"),  # another device (CUDA): one fused kernel
        (True, True, False, True, False, "stacked"),  # ... with attention dropout inside the kernel
        (True, True, False, False, False, "stacked"),  # ... and under bf16 autocast
        (True, True, False, True, True, "reference"),  # ... unless the probabilities are requested
        (False, True, False, True, False, "sdpa"),
    ],
)
def test_attention_path(entity_aware, dropout_active, on_cpu, exact_dtype, output_attentions, expected):
    assert attention_path(entity_aware, dropout_active, on_cpu, exact_dtype, output_attentions) == expected


def _layout() -> TokenLayout:
    """Example 0 has padded words, example 1 padded entities, example 2 no entities."""
    words, ents = torch.ones(B, L, dtype=torch.long), torch.ones(B, E, dtype=torch.long)
    words[0, 6:] = 0
    ents[1, 2:] = 0
    ents[2] = 0
    return TokenLayout.build(words, ents)


def _inputs(layout: TokenLayout, entity_rows_only: bool = False):
    """Padded per-head q_tw, q_te, k, v in float64, as the model builds them (zeros at padding)."""
    g = torch.Generator().manual_seed(0)
    T, Tw = layout.rows.numel(), layout.num_word_rows
    queries = layout.entity_rows if entity_rows_only else layout
    Tq = T - Tw if entity_rows_only else T
    q_tw, q_te = (queries.heads(torch.randn(Tq, h * d, generator=g, dtype=torch.float64), num_heads=h) for _ in "12")
    k, v = (layout.heads(torch.randn(T, h * d, generator=g, dtype=torch.float64), num_heads=h) for _ in "12")
    return [t.requires_grad_(True) for t in (q_tw, q_te, k, v)]


def _mask(layout: TokenLayout) -> torch.Tensor:
    return torch.zeros(layout.keep.shape, dtype=torch.float64).masked_fill_(
        ~layout.keep, torch.finfo(torch.float64).min
    )


@pytest.mark.parametrize(
    "vanilla,training,output_attentions,entity_rows_only,expected",
    [
        (False, False, False, False, "split_key"),
        (True, False, False, False, "sdpa"),
        (False, True, False, False, "dense"),
        (True, True, False, False, "dense"),
        (False, False, True, False, "reference"),
        (False, False, False, True, "split_key"),  # the entity heads' last layer: entity queries only
        (False, True, False, True, "dense"),
    ],
)
def test_every_path_computes_attention_reference(
    vanilla, training, output_attentions, entity_rows_only, expected, monkeypatch
):
    """Output, probabilities and gradients of the path the dispatcher picks equal ``attention_reference``'s,
    with attention dropout: the dense path's one chunk draws the same mask as the reference's dropout."""
    taken = []
    monkeypatch.setattr(kernels.attention, "attention_path", lambda *a: taken.append(attention_path(*a)) or taken[-1])
    layout = _layout()
    q_tw, q_te, k, v = _inputs(layout, entity_rows_only)
    q_te_arg = None if vanilla else q_te
    p = 0.3 if training else 0.1
    torch.manual_seed(7)
    out, probs = entity_aware_attention(
        q_tw, q_te_arg, k, v, layout, dropout_p=p, training=training, output_attentions=output_attentions
    )
    assert taken == [expected]
    torch.manual_seed(7)
    dropout = (lambda x: fast_dropout(x, p)) if training else None
    ref, ref_probs = attention_reference(q_tw, q_te_arg, k, v, _mask(layout), L, 1 / math.sqrt(d), dropout)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    if output_attentions:
        torch.testing.assert_close(probs, ref_probs, atol=1e-12, rtol=0)
    else:
        assert probs is None
    inputs = (q_tw, k, v) if vanilla else (q_tw, q_te, k, v)
    grad = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("vanilla", [False, True])
@pytest.mark.parametrize("entity_rows_only", [False, True])
def test_dense_path_over_many_chunks_computes_attention_reference(vanilla, entity_rows_only, monkeypatch):
    """Real shapes split the heads into many chunks (one head each at a few hundred tokens); the shapes above
    fit one chunk. Forced to one head per chunk, without dropout (whose draws depend on the chunking), the
    dense path's output and gradients equal ``attention_reference``'s."""
    original = kernels.attention.head_chunks
    seen = []
    monkeypatch.setattr(kernels.attention, "head_chunks", lambda S, scores: seen.append(S) or original(S, 1 << 17))
    monkeypatch.setattr(kernels.attention, "attention_path", lambda *a: "dense")
    layout = _layout()
    q_tw, q_te, k, v = _inputs(layout, entity_rows_only)
    q_te_arg = None if vanilla else q_te
    out, _ = entity_aware_attention(q_tw, q_te_arg, k, v, layout, dropout_p=1e-12, training=True)
    assert seen and original(seen[0], 1 << 17) == [slice(i, i + 1) for i in range(seen[0])]  # one head per chunk
    ref, _ = attention_reference(q_tw, q_te_arg, k, v, _mask(layout), L, 1 / math.sqrt(d))
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    inputs = (q_tw, k, v) if vanilla else (q_tw, q_te, k, v)
    grad = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("vanilla", [False, True])
def test_bf16_dropout_attention_runs_dense_in_fp32(vanilla, monkeypatch):
    """Under bf16 autocast, training with attention dropout takes the dense kernel on fp32 copies (autocast's
    softmax dtype): the output is bf16 and equals the fp32 reference with the same dropout draw, rounded;
    gradients reach the bf16 inputs."""
    taken = []
    monkeypatch.setattr(kernels.attention, "attention_path", lambda *a: taken.append(attention_path(*a)) or taken[-1])
    layout = _layout()
    q_tw, q_te, k, v = (t.detach().to(torch.bfloat16).requires_grad_() for t in _inputs(layout))
    q_te_arg = None if vanilla else q_te
    torch.manual_seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = entity_aware_attention(q_tw, q_te_arg, k, v, layout, dropout_p=0.3, training=True)
    assert taken == ["dense", "dense"] and out.dtype == torch.bfloat16
    torch.manual_seed(3)
    f32 = [t.detach().float() for t in (q_tw, q_te, k, v)]
    mask = torch.zeros(layout.keep.shape).masked_fill_(~layout.keep, torch.finfo(torch.float32).min)
    ref, _ = attention_reference(
        f32[0], None if vanilla else f32[1], f32[2], f32[3], mask, L, 1 / math.sqrt(d), lambda x: fast_dropout(x, 0.3)
    )
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    out.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in (q_tw, k, v))


@pytest.mark.parametrize("entity_rows_only", [False, True])
def test_stacked_path_computes_attention_reference(entity_rows_only, monkeypatch):
    """The device path (one SDPA call over side-by-side queries and half-zero keys), forced on CPU: output
    and gradients equal ``attention_reference``'s; in training its attention dropout is on (outputs differ
    from eval and between draws), in eval it is off."""
    monkeypatch.setattr(kernels.attention, "attention_path", lambda *a: "stacked")
    layout = _layout()
    q_tw, q_te, k, v = _inputs(layout, entity_rows_only)
    out, probs = entity_aware_attention(q_tw, q_te, k, v, layout, dropout_p=0.1, training=False)
    assert probs is None
    ref, _ = attention_reference(q_tw, q_te, k, v, _mask(layout), L, 1 / math.sqrt(d))
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    grad = torch.randn_like(out)
    inputs = (q_tw, q_te, k, v)
    for a, b in zip(torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    drawn = [entity_aware_attention(q_tw, q_te, k, v, layout, dropout_p=0.5, training=True)[0] for _ in "12"]
    assert not torch.allclose(drawn[0], ref) and not torch.equal(drawn[0], drawn[1])


def test_token_layout_packs_and_unpacks():
    layout = _layout()
    assert layout.num_word_rows == 6 + 2 * L and layout.rows.numel() == layout.num_word_rows + E + 2
    x = torch.randn(B, L + E, 5)
    packed = layout.pack(x)
    back = layout.unpack(packed)
    keep = layout.keep[:, 0, 0]
    assert torch.equal(back[keep], x[keep]) and not back[~keep].any()
    assert torch.equal(layout.unpack(packed[:10], packed[10:]), back)  # in consecutive parts
    assert torch.equal(layout.entity_rows.unpack(packed[layout.num_word_rows :]), back[:, L:])
    rows = torch.randn(packed.shape[0], h * d)
    assert layout.heads(rows, num_heads=h).shape == (B, h, L + E, d)
    assert torch.equal(layout.from_heads(layout.heads(rows, num_heads=h)), rows)


def test_shared_ffn_block_only_without_autograd():
    dense = kernels.EncoderLinear(4, 6)
    x = torch.randn(5, 4)
    assert kernels.ffn_block(5) is None  # no enclosing encoder forward
    with torch.no_grad(), kernels.shared_ffn_block(x, dense):
        a, b = kernels.ffn_block(5), kernels.ffn_block(3)
        assert a.shape == (5, 6) and b.shape == (3, 6) and a.data_ptr() == b.data_ptr()
        with kernels.shared_ffn_block(x.double(), dense):  # another dtype than the weight's: none
            assert kernels.ffn_block(5) is None
        assert kernels.ffn_block(5).data_ptr() == a.data_ptr()
    assert kernels.ffn_block(5) is None
    with kernels.shared_ffn_block(x, dense):  # autograd on: fresh tensors
        assert kernels.ffn_block(5) is None
    with torch.no_grad(), kernels.shared_ffn_block(x, None):  # no layers, or gradient checkpointing
        assert kernels.ffn_block(5) is None


def test_linear_backend_is_read_at_call_time(monkeypatch):
    if kernels.linear._ONEDNN is None:
        pytest.skip("torch without oneDNN's linear ops: EncoderLinear is plain nn.Linear")
    layer, x = kernels.EncoderLinear(4, 4), torch.randn(2, 4)
    with torch.no_grad():
        monkeypatch.setenv("LUKE_LINEAR_BACKEND", "onednn")
        assert layer.uses_onednn(x)
        monkeypatch.setenv("LUKE_LINEAR_BACKEND", "mkl")
        assert not layer.uses_onednn(x)
