"""Fast CPU kernels behind ``luke.modeling``: what the model calls, not what it means.

``luke.modeling`` reads as the model; the engineering that makes it fast on CPU lives here:

* ``attention``: ``entity_aware_attention`` (the dispatch between the fused split-key kernel, the chunked
  materialised dropout kernel, ``F.scaled_dot_product_attention`` and the reference formulation);
* ``dropout``: ``dropout_keep_mask``, ``fast_dropout``, ``FastDropout`` (cheaper CPU dropout masks);
* ``linear``: ``EncoderLinear`` (CPU inference products on MKL or oneDNN, whichever ``autotune`` measured
  faster for the product's class; ``LUKE_LINEAR_BACKEND=auto|mkl|onednn``) and ``shared_ffn_block`` /
  ``ffn_block`` (one FFN activation block per inference forward);
* ``autotune``: ``LinearAutotuner`` (times the backends once per product class; per-process and on-disk cache);
* ``layout``: ``TokenLayout`` (the encoder computes packed real tokens, no padding);
* ``cpu``: ``cpu_info`` (the CPU's model and flags, torch's capability, native bf16 or not) and ``gemm_peaks``
  (one large product's GFLOP/s on MKL, oneDNN and bf16), printed by ``luke info --system`` and the benchmarks.

Each module says what it beats, by how much (numbers from ``docs/benchmarks.md``) and which command
measures it. Every kernel computes what the plain formulation in ``luke.modeling`` computes.
"""

from luke.kernels.attention import attention_path, entity_aware_attention
from luke.kernels.cpu import CpuInfo, cpu_info, gemm_peaks
from luke.kernels.dropout import FastDropout, dropout_keep_mask, fast_dropout
from luke.kernels.layout import TokenLayout
from luke.kernels.linear import EncoderLinear, ffn_block, shared_ffn_block

__all__ = [
    "CpuInfo",
    "EncoderLinear",
    "FastDropout",
    "TokenLayout",
    "attention_path",
    "cpu_info",
    "dropout_keep_mask",
    "entity_aware_attention",
    "fast_dropout",
    "gemm_peaks",
    "ffn_block",
    "shared_ffn_block",
]
