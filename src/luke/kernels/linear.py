"""The encoder's linear layers at inference: the faster GEMM backend per product, one reused FFN block.

``EncoderLinear`` is ``nn.Linear`` (same parameters and state-dict keys) whose CPU inference products run on
whichever of MKL's sgemm (``F.linear``) and oneDNN's blocked GEMM (weight re-laid out per call) is faster on
this machine for the product's class; ``luke.kernels.autotune`` measures that once per class and process
(``LUKE_LINEAR_BACKEND=auto|mkl|onednn`` forces it; see that module). Before issue #21 a fixed threshold of
768 rows per thread decided, tuned on the 2-vCPU AVX2 VM of ``docs/benchmarks.md``, where
``benchmarks/profile_step.py --onednn-ab infer-512 --iters 8`` (oneDNN vs MKL, interleaved) gave 1.085x,
1.108x and 1.095x with two threads and 1.002x with one; on an AVX-512 CPU oneDNN wins far more (issue #21).

``shared_ffn_block`` lets every layer of one inference forward write its (T, intermediate) FFN activation
into the same block instead of allocating (and, on CPU, page-faulting) a fresh one per layer; part (4) of
"where the speed comes from" in ``docs/benchmarks.md`` (``benchmarks/bench_model.py`` measures the whole).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from luke.kernels import autotune


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


def _onednn_bf16() -> bool:
    """Whether oneDNN runs bf16 products natively here (otherwise bf16 products stay on ``F.linear``)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: the dtypes whose products oneDNN may take (bf16 only where oneDNN has it natively)
ONEDNN_DTYPES = (torch.float32, torch.bfloat16) if _ONEDNN is not None and _onednn_bf16() else (torch.float32,)


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


def grad_input_product(dy: torch.Tensor, weight: torch.Tensor, backend: str) -> torch.Tensor:
    """``dy @ W`` ((rows, out) by (out, in)): a linear layer's input gradient, on ``backend`` (oneDNN: the
    product is a linear layer with weight W^T, re-laid out here)."""
    if backend == "onednn":
        return onednn_product(dy, onednn_relayout(weight.t().contiguous(), dy.shape[0]), None)
    return dy.mm(weight)


def grad_weight_product(dy: torch.Tensor, x: torch.Tensor, backend: str) -> torch.Tensor:
    """``dy^T @ x`` ((out, rows) by (rows, in)): a linear layer's weight gradient, on ``backend`` (oneDNN:
    the product is a linear layer over dy^T's rows with weight x^T, both laid out here)."""
    if backend == "onednn":
        return onednn_product(dy.t().contiguous(), onednn_relayout(x.t().contiguous(), dy.shape[1]), None)
    return dy.t().mm(x)


class TunedLinearFunction(torch.autograd.Function):
    """``F.linear`` for training whose three products (forward, input gradient, weight gradient) each run
    on the backend the tuner chose for its class (``luke.kernels.autotune.KINDS``). Inputs: x (rows, in)
    contiguous, weight (out, in), bias (out) or None, all fp32 on CPU (``EncoderLinear`` checks)."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        if autotune.TUNER.choose(x.shape[0], weight, bias, "forward") == "onednn":
            return onednn_product(x, onednn_relayout(weight, x.shape[0]), bias)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        dy = dy.contiguous()
        rows = dy.shape[0]
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = grad_input_product(dy, weight, autotune.TUNER.choose(rows, weight, None, "grad_input"))
        if ctx.needs_input_grad[1]:
            dw = grad_weight_product(dy, x, autotune.TUNER.choose(rows, weight, None, "grad_weight"))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.sum(0)
        return dx, dw, db


class EncoderLinear(nn.Linear):
    """``nn.Linear`` (same parameters, same state-dict keys) whose CPU inference products run on the backend
    measured fastest here.

    Without autograd, on CPU (not under autocast), for a contiguous (T, in) input whose dtype is the weight's
    and one oneDNN takes (``ONEDNN_DTYPES``: fp32, and bf16 where oneDNN has it natively),
    ``luke.kernels.autotune.TUNER`` picks MKL (``F.linear``) or oneDNN (the weight re-laid out for oneDNN's
    blocked GEMM on every call: nothing cached, no memory held, a weight that changed is always the one used)
    by timing both once per product class (rows rounded down to a power of two, shape, dtype, bias, threads);
    ``LUKE_LINEAR_BACKEND=mkl|onednn`` forces one. With autograd (training, fp32, not under autocast) the
    layer runs ``TunedLinearFunction``: the forward product and both backward products (input and weight
    gradients) are tuned the same way, each as its own class. Results equal ``nn.Linear``'s to float rounding
    (another summation order). Everything else (bf16 autocast, other devices, small products) is plain
    ``nn.Linear``.
    """

    def onednn_eligible(self, x: torch.Tensor) -> bool:
        """Whether oneDNN could run ``forward(x)`` (the conditions of the class docstring, without the choice)."""
        return (
            _ONEDNN is not None
            and not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dtype in ONEDNN_DTYPES
            and self.weight.dtype == x.dtype
            and (self.bias is None or self.bias.dtype == x.dtype)
            and x.dim() == 2
            and x.is_contiguous()
            and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled("cpu")
        )

    def backend(self, x: torch.Tensor) -> str:
        """``"onednn"`` or ``"mkl"``: the backend ``forward(x)`` uses (may time both, once per product class)."""
        if not self.onednn_eligible(x):
            return "mkl"
        return autotune.TUNER.choose(x.shape[0], self.weight, self.bias)

    def uses_onednn(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` takes the oneDNN product."""
        return self.backend(x) == "onednn"

    def trains_tuned(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` runs ``TunedLinearFunction`` (autograd on, fp32 on CPU, not under
        autocast, a contiguous (T, in) input, oneDNN available, no backend forced to MKL)."""
        return (
            _ONEDNN is not None
            and torch.is_grad_enabled()
            and (x.requires_grad or self.weight.requires_grad)
            and x.device.type == "cpu"
            and x.dtype == self.weight.dtype == torch.float32
            and (self.bias is None or self.bias.dtype == torch.float32)
            and x.dim() == 2
            and x.is_contiguous()
            and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled("cpu")
            and autotune.requested_backend() != "mkl"
        )

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``out`` (inference only, (T, out_features)): where an MKL product is written, so that a caller can
        reuse one block across layers. A oneDNN product cannot write into a given tensor and ignores it."""
        if self.trains_tuned(x):
            return TunedLinearFunction.apply(x, self.weight, self.bias)
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
