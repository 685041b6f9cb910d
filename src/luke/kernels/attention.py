"""Entity-aware attention kernels for CPU, and the dispatch between them.

``entity_aware_attention`` computes what ``luke.modeling.attention_reference`` defines (softmax attention
where words and entities query with different projections, keys and values shared) by one of five paths:

* ``"split_key"`` (``SplitKeyAttention``): two fused CPU flash-attention calls, "to-word" queries against
  word keys and "to-entity" queries against entity keys, merged exactly through the log-sum-exp, with a
  backward that reuses the fused backward on the merged output: no N x N matrix is stored. Inference and
  training without attention dropout.
* ``"dense"`` (``DenseAttention``): CPU training with attention-probability dropout, which the fused
  kernel cannot do: the probabilities materialised once, a cache-sized chunk of heads at a time
  (``head_chunks``), softmax, dropout and the whole backward in place per chunk, with the cheap mask of
  ``luke.kernels.dropout``. Under bf16 autocast it runs on fp32 copies of q, k and v (autocast's softmax
  dtype) and casts the output back; vanilla attention with dropout takes it too.
* ``"sdpa"``: vanilla attention (one query for all keys) through ``F.scaled_dot_product_attention``.
* ``"stacked"``: entity-aware attention on other devices (CUDA) as ONE ``F.scaled_dot_product_attention``
  call: the two queries side by side (head dim 2d), each key placed in the half that its kind meets
  (word keys in the first d columns, entity keys in the last d, zeros elsewhere), so that
  ``[q_tw, q_te] . [k_w, 0] = q_tw . k_w`` and ``[q_tw, q_te] . [0, k_e] = q_te . k_e``: the fused kernel
  (with its own attention dropout) sees exactly the split-key scores, and no N x N matrix is stored.
* ``"reference"``: ``attention_reference`` itself, when the probabilities are requested.

Why: these are parts (1) and (3) of "where the speed comes from" in ``docs/benchmarks.md``; there is no
separate on/off measurement of them. ``benchmarks/bench_model.py`` (base size, 2 threads) measures the whole
model against ``transformers``: 1.65-1.73x the inference speed at 4x(512+64) with 88 vs 328 MiB peak memory,
1.47-1.54x the training speed with 2458 vs 4138 MiB. Chunking the dense path and multiplying its mask as
``uint8`` moved NER fine-tuning from about 1.7x to 2.5x the speed of ``transformers``
(``benchmarks/bench_finetuning.py``); ``benchmarks/profile_step.py --kernels`` times the pieces (one 375x375
head, 100 times: probabilities x bool mask 39.2 ms, x the mask viewed as ``uint8`` 5.6 ms).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from luke.kernels.dropout import dropout_keep_mask, fast_dropout
from luke.kernels.layout import TokenLayout


def _cpu_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float):
    """Fused CPU attention returning (output (B,h,Nq,d), log-sum-exp (B,h,Nq) in fp32)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=mask, scale=scale)


def head_chunks(S: int, scores: int) -> list[slice]:
    """Slices of the S = B*h attention heads (``scores`` = Nq * N per head), each about 128K scores (at
    least one head): a chunk's score matrix, mask and gradient stay in cache while they are worked on, and
    short sequences still run as few, large batched products. (Scaling the chunk with the thread count was
    tried and measured worse.)"""
    c = max(1, (1 << 17) // scores)
    return [slice(i, min(i + c, S)) for i in range(0, S, c)]


class DenseAttention(torch.autograd.Function):
    """Materialised split-key attention with attention-probability dropout, for training.

    Same function as ``attention_reference`` (``q_te is q_tw`` gives vanilla attention), written for the
    CPU's memory system rather than for autograd. The (B, h, N, N) probabilities are computed a chunk of
    heads at a time (``head_chunks``): the two key halves' scores are written straight into the chunk, softmax
    runs in place, the chunk's dropout mask is drawn and applied through a reused buffer and multiplied by
    V while all of it is in cache; the backward walks the same chunks, so no second (B, h, N, N) tensor
    (dropped probabilities, their gradient) ever exists. Saved: probabilities (4 bytes per score) and the
    bool mask (1 byte).
    """

    @staticmethod
    def forward(ctx, q_tw, q_te, k, v, mask, num_words, scale, p):  # type: ignore[override]
        B, h, Nq, d = q_tw.shape  # Nq = N, or fewer queries (entities only) against all N keys
        N = k.shape[2]
        S, L = B * h, num_words
        # (S, N, d) contiguous copies (small next to the N x N work): heads flatten into one batch dimension.
        qf_tw = q_tw.reshape(S, Nq, d)
        qf_te = qf_tw if q_te is q_tw else q_te.reshape(S, Nq, d)
        kf, vf = k.reshape(S, N, d), v.reshape(S, N, d)
        qs_tw = qf_tw * scale
        qs_te = qs_tw if qf_te is qf_tw else qf_te * scale
        kt = kf.transpose(-1, -2)  # (S, d, N)
        mask = mask.expand(B, h, 1, N).reshape(S, 1, N)
        probs = q_tw.new_empty(S, Nq, N)
        keep = torch.empty(S, Nq, N, dtype=torch.bool) if p > 0 else None
        out = q_tw.new_empty(S, Nq, d)
        chunks, kscale = head_chunks(S, Nq * N), 1.0
        # dropped probabilities, reused by every chunk (the last one may be shorter)
        buf = probs.new_empty(chunks[0].stop, Nq, N) if keep is not None else None
        for j in chunks:
            P = probs[j]  # (c, Nq, N), contiguous
            torch.matmul(qs_tw[j], kt[j, :, :L], out=P[..., :L])  # to-word scores
            torch.matmul(qs_te[j], kt[j, :, L:], out=P[..., L:])  # to-entity scores
            torch.softmax(P.add_(mask[j]), dim=-1, out=P)
            if keep is None:
                torch.matmul(P, vf[j], out=out[j])
                continue
            _, kscale = dropout_keep_mask(P.shape, p, P.device, out=keep[j])
            dropped = torch.mul(
                P, keep[j].view(torch.uint8), out=buf[: P.shape[0]]
            )  # uint8: bool->float casts are slow
            torch.matmul(dropped, vf[j], out=out[j])
        if kscale != 1.0:
            out.mul_(kscale)
        ctx.save_for_backward(qf_tw, qf_te, kf, vf, probs, keep)
        ctx.num_words, ctx.scale, ctx.kscale = L, scale, kscale
        return out.view(B, h, Nq, d)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        q_tw, q_te, k, v, probs, keep = ctx.saved_tensors  # (S, Nq, d), ..., (S, N, d), (S, Nq, N)
        L, (S, Nq, d), N = ctx.num_words, q_tw.shape, k.shape[1]
        g = (grad_out * ctx.kscale).reshape(S, Nq, d)
        dq_tw, dq_te = torch.empty_like(q_tw), torch.empty_like(q_te)
        dk, dv = torch.empty_like(k), torch.empty_like(v)
        vt = v.transpose(-1, -2)
        chunks = head_chunks(S, Nq * N)
        d_p_buf, buf = (probs.new_empty(chunks[0].stop, Nq, N) for _ in range(2))  # reused; the last may be shorter
        for j in chunks:
            P = probs[j]  # (c, Nq, N)
            c = P.shape[0]
            d_p = torch.matmul(g[j], vt[j], out=d_p_buf[:c])  # d(dropped probs)
            if keep is None:
                torch.matmul(P.transpose(-1, -2), g[j], out=dv[j])
            else:
                kj = keep[j].view(torch.uint8)
                dropped = torch.mul(P, kj, out=buf[:c])
                torch.matmul(dropped.transpose(-1, -2), g[j], out=dv[j])
                d_p.mul_(kj)
            # softmax backward, in place: d_scores = P * (d_p - rowsum(d_p * P)); the scale comes at the end
            d_s = torch.ops.aten._softmax_backward_data.out(d_p, P, -1, P.dtype, grad_input=d_p)
            torch.matmul(d_s[..., :L], k[j, :L], out=dq_tw[j])
            torch.matmul(d_s[..., L:], k[j, L:], out=dq_te[j])
            torch.matmul(d_s[..., :L].transpose(-1, -2), q_tw[j], out=dk[j, :L])
            torch.matmul(d_s[..., L:].transpose(-1, -2), q_te[j], out=dk[j, L:])
        shape, kv_shape, scale = grad_out.shape, (*grad_out.shape[:2], N, d), ctx.scale
        dq_tw, dq_te, dk = dq_tw.mul_(scale).view(shape), dq_te.mul_(scale).view(shape), dk.mul_(scale).view(kv_shape)
        return dq_tw, dq_te, dk, dv.view(kv_shape), None, None, None, None


class SplitKeyAttention(torch.autograd.Function):
    """Exact softmax attention over [word keys ; entity keys] with a different query per key type.

    Forward: ``(O1, L1) = attn(q_tw, K_w, V_w)``, ``(O2, L2) = attn(q_te, K_e, V_e)``;
    ``L = logaddexp(L1, L2)``, ``O = exp(L1 - L) O1 + exp(L2 - L) O2`` equals softmax over all N keys.
    Backward: each half's fused backward, fed with the *merged* (O, L), gives exactly the gradient of
    the full softmax restricted to that half (the same identity blockwise/ring attention uses), so no
    N x N matrix is ever stored. Masks are additive with ``finfo.min`` (never -inf: a fully masked half
    must yield a huge negative LSE, not NaN), so an example without entities merges to its word half.
    """

    @staticmethod
    def forward(ctx, q_tw, q_te, k_w, v_w, k_e, v_e, mask_w, mask_e, scale):  # type: ignore[override]
        o_w, lse_w = _cpu_flash(q_tw, k_w, v_w, mask_w, scale)
        o_e, lse_e = _cpu_flash(q_te, k_e, v_e, mask_e, scale)
        lse = torch.logaddexp(lse_w, lse_e)  # (B, h, N) fp32
        # In place: the partial outputs are not needed afterwards (the backward uses the merged ones).
        out = o_w.mul_(torch.exp(lse_w - lse).unsqueeze(-1)).add_(o_e.mul_(torch.exp(lse_e - lse).unsqueeze(-1)))
        ctx.save_for_backward(q_tw, q_te, k_w, v_w, k_e, v_e, mask_w, mask_e, out, lse)
        ctx.scale = scale
        return out  # (B, h, N, d)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        q_tw, q_te, k_w, v_w, k_e, v_e, mask_w, mask_e, out, lse = ctx.saved_tensors
        bwd = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward
        grad_out = grad_out.contiguous()
        dq_tw, dk_w, dv_w = bwd(grad_out, q_tw, k_w, v_w, out, lse, 0.0, False, attn_mask=mask_w, scale=ctx.scale)
        dq_te, dk_e, dv_e = bwd(grad_out, q_te, k_e, v_e, out, lse, 0.0, False, attn_mask=mask_e, scale=ctx.scale)
        return dq_tw, dq_te, dk_w, dv_w, dk_e, dv_e, None, None, None


def attention_path(
    entity_aware: bool, dropout_active: bool, on_cpu: bool, exact_dtype: bool, output_attentions: bool
) -> str:
    """The kernel that ``entity_aware_attention`` uses: ``"dense"``, ``"reference"``, ``"split_key"``,
    ``"stacked"`` or ``"sdpa"`` (see the module docstring). ``exact_dtype``: fp32 or fp64 (not bf16 under autocast)."""
    if dropout_active and on_cpu and not output_attentions:
        # The fused CPU kernel has no dropout: materialise the probabilities, frugally (in fp32 under bf16
        # autocast, as autocast runs softmax in fp32).
        return "dense"
    if output_attentions:
        return "reference"
    if entity_aware and not on_cpu:
        return "stacked"  # one fused kernel of the device, attention dropout included
    return "split_key" if entity_aware else "sdpa"


def entity_aware_attention(
    q_tw: torch.Tensor,
    q_te: torch.Tensor | None,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: TokenLayout,
    *,
    dropout_p: float,
    training: bool,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax attention of padded per-head queries over all N keys of ``layout`` (padded keys masked).

    ``q_tw`` (B, h, Nq, d): the queries that meet word keys; ``q_te`` the same rows' queries that meet
    entity keys, or None for vanilla attention (``q_tw`` meets every key). ``k``, ``v``: (B, h, N, d), the
    words' keys first. Nq is N, or E when only the entities query. Attention-probability dropout with
    ``dropout_p`` applies when ``training``. Returns the output (B, h, Nq, d) and, with
    ``output_attentions``, the probabilities (B, h, Nq, N). Equals ``luke.modeling.attention_reference``.
    """
    L = layout.num_words
    # Additive mask in the compute dtype (bf16 under autocast), built in that dtype so finfo.min
    # cannot round to -inf (see SplitKeyAttention).
    mask = torch.zeros(layout.keep.shape, dtype=k.dtype, device=k.device)
    mask.masked_fill_(~layout.keep, torch.finfo(k.dtype).min)  # (B, 1, 1, N)
    scale = 1.0 / math.sqrt(k.shape[-1])
    dropout_active = training and dropout_p > 0
    exact_dtype = k.dtype in (torch.float32, torch.float64)
    path = attention_path(q_te is not None, dropout_active, k.device.type == "cpu", exact_dtype, output_attentions)
    if path == "dense":
        if not exact_dtype:  # bf16 autocast: the N x N work in fp32 (autocast's softmax dtype), output back
            with torch.autocast(k.device.type, enabled=False):
                out, _ = entity_aware_attention(
                    q_tw.float(),
                    None if q_te is None else q_te.float(),
                    k.float(),
                    v.float(),
                    layout,
                    dropout_p=dropout_p,
                    training=training,
                )
            return out.to(k.dtype), None
        return DenseAttention.apply(q_tw, q_tw if q_te is None else q_te, k, v, mask, L, scale, dropout_p), None
    if path == "reference":
        from luke.modeling import attention_reference  # the definition (luke.modeling imports this module)

        dropout = _probs_dropout(dropout_p) if dropout_active else None
        out, probs = attention_reference(q_tw, q_te, k, v, mask, L, scale, dropout)
        return out, (probs if output_attentions else None)
    if path == "stacked":
        return stacked_attention(q_tw, q_te, k, v, mask, L, scale, dropout_p if dropout_active else 0.0), None
    if path == "split_key":
        kw, ke, vw, ve = k[:, :, :L], k[:, :, L:], v[:, :, :L], v[:, :, L:]
        return SplitKeyAttention.apply(q_tw, q_te, kw, vw, ke, ve, mask[..., :L], mask[..., L:], scale), None
    p = dropout_p if dropout_active else 0.0
    return F.scaled_dot_product_attention(q_tw, k, v, attn_mask=mask, dropout_p=p, scale=scale), None


def stacked_attention(
    q_tw: torch.Tensor,
    q_te: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    num_words: int,
    scale: float,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Entity-aware attention as one ``F.scaled_dot_product_attention`` call (the ``"stacked"`` path).

    Queries (B, h, Nq, d) become ``[q_tw, q_te]`` (B, h, Nq, 2d); keys (B, h, N, d) become (B, h, N, 2d)
    with word keys in the first d columns and entity keys in the last d (zeros in the other half), so every
    score is the one ``attention_reference`` computes; values keep head dim d. The key half that is zero
    costs one more d-wide product per score; in exchange the device's fused kernel runs (memory-efficient
    attention on CUDA: no (B, h, Nq, N) tensor, dropout inside the kernel). Returns (B, h, Nq, d).
    """
    is_word = (torch.arange(k.shape[2], device=k.device) < num_words).to(k.dtype).unsqueeze(-1)  # (N, 1)
    keys = torch.cat([k * is_word, k * (1 - is_word)], dim=-1)  # (B, h, N, 2d)
    queries = torch.cat([q_tw, q_te], dim=-1)  # (B, h, Nq, 2d)
    return F.scaled_dot_product_attention(queries, keys, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)


def _probs_dropout(p: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda probs: fast_dropout(probs, p)
