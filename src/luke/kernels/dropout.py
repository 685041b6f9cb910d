"""Cheap dropout masks for CPU training.

``dropout_keep_mask`` draws a Bernoulli keep mask from 16-bit lanes of uniform integers instead of
``torch.bernoulli_`` (what ``nn.Dropout`` uses, ~10 ns per element on CPU). Attention dropout draws
B*h*N*N decisions per layer, the largest non-matmul cost of a training step: on the 2-vCPU dev VM of
``docs/benchmarks.md``, one base-size layer's attention-dropout mask at 4x(512+64) takes 171.6 ms with
``bernoulli_`` and 50.4 ms here (3.4x), measured by ``benchmarks/profile_step.py --kernels --threads 1``.
``fast_dropout``/``FastDropout`` apply the same masks to hidden states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout_keep_mask(
    shape: tuple[int, ...], p: float, device: torch.device, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, float]:
    """A Bernoulli(1 - p) keep mask of ``shape`` (bool) and the matching rescale factor ``1 / (1 - p)``.

    Each decision is one signed 16-bit lane of uniform 64-bit integers drawn from torch's default
    generator (so ``torch.manual_seed`` and saved RNG states reproduce it), about 3x cheaper than
    ``bernoulli_``. The drop probability is quantised to ``round(p * 32768) / 32768`` (0.1 -> 0.1000061)
    and the rescale uses that exact value, so the expectation of the output is preserved. ``out`` (a
    contiguous bool tensor of ``shape``) receives the mask instead of a new tensor. Other devices use
    ``bernoulli_``.
    """
    keep = torch.empty(shape, dtype=torch.bool, device=device) if out is None else out
    if device.type != "cpu":
        return keep.bernoulli_(1.0 - p), 1.0 / (1.0 - p)
    t = round(p * 32768)
    if t >= 32768:  # p ~ 1: drop everything (as F.dropout does)
        return keep.fill_(False), 0.0
    n = keep.numel()
    # random_(int64 min, None) draws all 64 bits uniformly: four uniform signed 16-bit lanes x per draw.
    x = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(2**63), None).view(torch.int16)[:n]
    # keep iff x >= 2t - 32768 (P = 1 - t/32768), computed as the sign of (x >> 1) - (t - 16384), which
    # cannot overflow int16: four vectorised int16 passes, faster than torch.ge's (scalar) bool output
    # (benchmarks/profile_step.py --kernels).
    x.bitwise_right_shift_(1).sub_(t - 16384).bitwise_right_shift_(15).add_(1)  # 1 keep, 0 drop
    keep.view(torch.uint8).copy_(x.view(keep.shape))
    return keep, 32768 / (32768 - t)


def fast_dropout(x: torch.Tensor, p: float, training: bool = True, inplace: bool = False) -> torch.Tensor:
    """``F.dropout(x, p, training, inplace)``, with the mask from ``dropout_keep_mask`` for fp32/fp64
    tensors on CPU (not in place); other devices and dtypes get ``F.dropout`` unchanged."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or inplace:
        return F.dropout(x, p, training, inplace)  # (a bf16 mask could not hold the rescale factor exactly)
    keep, kscale = dropout_keep_mask(x.shape, p, x.device)
    return x * keep.view(torch.uint8).to(x.dtype).mul_(kscale)  # (casts from uint8 are vectorised, from bool not)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training-mode mask comes from ``dropout_keep_mask`` (same ``p`` semantics,
    ~3x cheaper mask; other devices and eval mode behave exactly as ``nn.Dropout``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training, self.inplace)
