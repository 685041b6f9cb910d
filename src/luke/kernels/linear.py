"""The encoder's linear layers at inference: oneDNN for large CPU products, one reused FFN block.

``EncoderLinear`` is ``nn.Linear`` (same parameters and state-dict keys) whose large fp32 CPU inference
products run on oneDNN's blocked GEMM instead of MKL's sgemm. On the 2-vCPU AVX2 dev VM of
``docs/benchmarks.md``, ``benchmarks/profile_step.py --onednn-ab infer-512 --iters 8`` (our base-size
4x(512+64) inference step with the oneDNN path on vs off, interleaved) gave 1.085x, 1.108x and
(``--iters 6``) 1.095x with two threads and 1.002x with one; at 8x(128+16) no clear gain was measured,
which is what the row threshold encodes.

``shared_ffn_block`` lets every layer of one inference forward write its (T, intermediate) FFN activation
into the same block instead of allocating (and, on CPU, page-faulting) a fresh one per layer; part (4) of
"where the speed comes from" in ``docs/benchmarks.md`` (``benchmarks/bench_model.py`` measures the whole).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

ONEDNN_MIN_ROWS_PER_THREAD = 768
"""Rows per torch thread from which ``EncoderLinear`` runs CPU inference products through oneDNN
(``math.inf`` turns that off; read at every call). See ``EncoderLinear`` for why there is a threshold."""


def _onednn_linear_ops():
    """(weight re-layout, linear) from the oneDNN build of torch (the ops inductor's CPU backend uses), or
    None where this torch lacks them."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight, torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


_ONEDNN = _onednn_linear_ops()


def onednn_available() -> bool:
    """Whether this torch has the oneDNN linear ops (``onednn_relayout`` / ``onednn_product`` work)."""
    return _ONEDNN is not None


def onednn_relayout(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight`` (out, in) re-laid out for oneDNN's blocked GEMM, for products with ``rows`` input rows."""
    assert _ONEDNN is not None, "oneDNN linear ops unavailable (check onednn_available())"
    return _ONEDNN[0](weight, rows)


def onednn_product(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ W.T + bias`` on oneDNN, ``packed`` being ``onednn_relayout(W, x.shape[0])`` (no autograd)."""
    assert _ONEDNN is not None, "oneDNN linear ops unavailable (check onednn_available())"
    return _ONEDNN[1](x, packed, bias, "none", [], "")


class EncoderLinear(nn.Linear):
    """``nn.Linear`` (same parameters, same state-dict keys) whose large CPU inference products use oneDNN.

    Without autograd, in fp32 on CPU (not under autocast), for a contiguous (T, in) input with at least
    ``ONEDNN_MIN_ROWS_PER_THREAD`` rows per torch thread, the weight is re-laid out for oneDNN's blocked
    GEMM on every call and the product runs there. Nothing is cached: no memory is held, and a weight that
    changed is always the one used. On the 2-vCPU AVX2 machine of ``docs/benchmarks.md`` this makes the
    base-size 4x(512+64) forward about 5-10 % faster with two threads than MKL's sgemm (which ``nn.Linear``
    uses; ``benchmarks/profile_step.py --onednn-ab``); with fewer rows
    the per-call re-layout is not paid back and it is slower, hence the threshold (it scales with the thread
    count because the re-layout does not shrink when the product is split across threads). Results equal
    ``nn.Linear``'s to float rounding (another summation order). Everything else, including every training
    step, is plain ``nn.Linear``.
    """

    def uses_onednn(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` takes the oneDNN product (see the class docstring for the conditions)."""
        return (
            _ONEDNN is not None
            and not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and x.dim() == 2
            and x.shape[0] >= ONEDNN_MIN_ROWS_PER_THREAD * torch.get_num_threads()
            and x.is_contiguous()
            and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled("cpu")
        )

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``out`` (inference only, (T, out_features)): where an MKL product is written, so that a caller can
        reuse one block across layers. A oneDNN product cannot write into a given tensor and ignores it."""
        if self.uses_onednn(x):
            return onednn_product(x, onednn_relayout(self.weight, x.shape[0]), self.bias)
        if out is not None and not torch.is_grad_enabled():
            if self.bias is None:
                return torch.mm(x, self.weight.t(), out=out)
            return torch.addmm(self.bias, x, self.weight.t(), out=out)
        return super().forward(x)


_FFN_BLOCK: ContextVar[torch.Tensor | None] = ContextVar("luke_ffn_block", default=None)


@contextmanager
def shared_ffn_block(x: torch.Tensor, dense: EncoderLinear | None) -> Iterator[None]:
    """Within this context (one encoder forward over the packed tokens ``x`` (T, H)), ``ffn_block(T)``
    hands out one (T, ``dense.out_features``) block for every layer's FFN activation: only without
    autograd, outside autocast, and when ``x`` has the weight's dtype; otherwise it hands out None. A
    context variable, so concurrent forwards (threads, tasks) never share a block."""
    block = None
    if dense is not None and not torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type):
        block = x.new_empty(x.shape[0], dense.out_features) if x.dtype == dense.weight.dtype else None
    token = _FFN_BLOCK.set(block)
    try:
        yield
    finally:
        _FFN_BLOCK.reset(token)


def ffn_block(rows: int) -> torch.Tensor | None:
    """The first ``rows`` rows of the block of the enclosing ``shared_ffn_block``, or None (no block)."""
    block = _FFN_BLOCK.get()
    return None if block is None else block[:rows]
