"""What this CPU offers for the encoder's products, and how fast its GEMM backends run here.

Decisions such as "bf16 is emulated and slow" or "oneDNN beats MKL above N rows" depend on the CPU
(AVX2 only, AVX-512, AVX-512 with bf16, AMX) and on torch's build; issue #21. ``cpu_info`` says what the
machine is (``luke info --system`` and ``benchmarks/bench_model.py`` print it); ``gemm_peaks`` measures
one large product on each backend, the peak against which ``bench_model.py`` reports its GFLOP/s.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from luke.kernels.linear import onednn_available, onednn_product, onednn_relayout

#: the CPU flags that matter for torch's CPU products (x86 names as in /proc/cpuinfo; ARM's as well)
RELEVANT_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "bf16",
)
#: flags that give the CPU native bf16 products (without them torch emulates bf16 in fp32, several times slower)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU and torch's view of it. ``flags`` holds the ``RELEVANT_FLAGS`` the CPU has;
    ``flags_known`` is False where no flag list could be read (then ``native_bf16`` is False, unknown)."""

    model: str
    flags: tuple[str, ...]
    flags_known: bool
    native_bf16: bool
    torch_capability: str
    onednn: bool
    mkl: bool
    threads: int
    logical_cpus: int | None

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-ready dict."""
        return asdict(self) | {"flags": list(self.flags)}


def parse_cpu_text(text: str) -> tuple[str, set[str] | None]:
    """(model name, set of all flags) from ``/proc/cpuinfo`` or ``lscpu`` text; the flag set is None when the
    text has no flag line. Only the first processor's lines are read (all cores of a machine match)."""
    model, flags = "", None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value
        elif key in ("flags", "features") and flags is None:
            flags = set(value.split())
    return model, flags


def _read_cpu_text() -> str:
    """/proc/cpuinfo, else ``lscpu``'s output, else ''; never raises."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        pass
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_info(text: str | None = None) -> CpuInfo:
    """What this CPU offers. ``text``: ``/proc/cpuinfo`` or ``lscpu`` output to parse instead of this machine's
    (tests inject other CPUs). Best effort: where nothing can be read (not Linux), the model is
    ``platform.processor()`` and the flags are unknown; never raises."""
    model, all_flags = parse_cpu_text(_read_cpu_text() if text is None else text)
    flags = tuple(f for f in RELEVANT_FLAGS if all_flags and f in all_flags)
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = "unknown"
    return CpuInfo(
        model=model or platform.processor() or platform.machine() or "unknown",
        flags=flags,
        flags_known=all_flags is not None,
        native_bf16=any(f in flags for f in BF16_FLAGS),
        torch_capability=capability,
        onednn=torch.backends.mkldnn.is_available() and onednn_available(),
        mkl=torch.backends.mkl.is_available(),
        threads=torch.get_num_threads(),
        logical_cpus=os.cpu_count(),
    )


def bf16_verdict(info: CpuInfo) -> str:
    """One line on what bf16 will be like on this CPU."""
    if info.native_bf16:
        return "native (" + ", ".join(f for f in BF16_FLAGS if f in info.flags) + "): bf16 products run in hardware"
    if not info.flags_known:
        return "unknown (the CPU flags could not be read): bf16 may be emulated and slow"
    return (
        "emulated: this CPU has no avx512_bf16 or amx_bf16, so bf16 will be slow (several times slower than fp32); "
        "use fp32 here"
    )


def describe(info: CpuInfo) -> list[str]:
    """Human-readable lines: CPU, flags, torch's view, bf16."""
    cpus = f" ({info.logical_cpus} logical CPUs)" if info.logical_cpus else ""
    return [
        f"CPU: {info.model}{cpus}",
        ("flags: " + (" ".join(info.flags) or "none of interest")) if info.flags_known else "flags: unknown",
        f"torch {torch.__version__}: CPU capability {info.torch_capability}, oneDNN {_yes(info.onednn)}, "
        f"MKL {_yes(info.mkl)}, {info.threads} thread{'' if info.threads == 1 else 's'}",
        "bf16: " + bf16_verdict(info),
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@dataclass(frozen=True)
class GemmPeak:
    """One backend's measured rate: ``gflops`` None when it was not measured (``note`` says why);
    ``note`` also marks an emulated bf16 rate."""

    backend: str
    gflops: float | None
    note: str = ""


def gemm_peaks(
    threads: int | None = None,
    size: tuple[int, int, int] = (4096, 1024, 4096),
    seconds: float = 1.0,
    emulated_bf16: bool = False,
) -> dict[str, GemmPeak]:
    """GFLOP/s of one (rows, in) x (in, out) product ``size`` (2·rows·in·out FLOPs; default the 4096x1024 by
    1024x4096 product of issue #21) on three backends: ``fp32-mkl`` (``F.linear``, MKL's sgemm, what training
    uses), ``fp32-onednn`` (weight re-laid out once, then the product ``EncoderLinear`` runs) and ``bf16``
    (``F.linear`` on bf16 tensors; on a CPU without native bf16 not measured unless ``emulated_bf16``, and then
    noted as emulated). Each backend: one warm-up call, then calls for about ``seconds``; the fastest call
    counts (a peak: on a shared machine the slow calls measure the neighbours). ``threads``: torch threads
    during the measurement (default: the current setting, restored afterwards)."""
    rows, k, n = size
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = torch.randn(rows, k, generator=g), torch.randn(n, k, generator=g), torch.randn(n, generator=g)
        flops = 2.0 * rows * k * n
        out = {"fp32-mkl": GemmPeak("fp32-mkl", _rate(lambda: F.linear(x, w, b), flops, seconds))}
        if onednn_available() and torch.backends.mkldnn.enabled:
            packed = onednn_relayout(w, rows)
            out["fp32-onednn"] = GemmPeak("fp32-onednn", _rate(lambda: onednn_product(x, packed, b), flops, seconds))
        else:
            out["fp32-onednn"] = GemmPeak("fp32-onednn", None, "oneDNN linear ops not available in this torch")
        native = cpu_info().native_bf16
        if native or emulated_bf16:
            xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
            rate = _rate(lambda: F.linear(xb, wb, bb), flops, seconds)
            out["bf16"] = GemmPeak("bf16", rate, "" if native else "emulated (no native bf16 on this CPU)")
        else:
            out["bf16"] = GemmPeak("bf16", None, "skipped: no native bf16 on this CPU (emulated, slow)")
        return out
    finally:
        torch.set_num_threads(saved)


def _rate(product, flops: float, seconds: float) -> float:
    """GFLOP/s of the fastest call of ``product`` (after one warm-up) over about ``seconds``, at least 3 calls."""
    best, spent, calls = math.inf, 0.0, 0
    with torch.no_grad():
        product()
        while calls < 3 or spent < seconds:
            t0 = time.perf_counter()
            product()
            dt = time.perf_counter() - t0
            best, spent, calls = min(best, dt), spent + dt, calls + 1
    return flops / best / 1e9


def describe_peaks(peaks: dict[str, GemmPeak]) -> str:
    """One line: each backend's GFLOP/s or why it is missing."""
    parts = []
    for p in peaks.values():
        rate = f"{p.gflops:,.0f} GFLOP/s" if p.gflops is not None else "-"
        parts.append(f"{p.backend} {rate}" + (f" ({p.note})" if p.note else ""))
    return "; ".join(parts)


def machine_report(device: str = "cpu", peaks: bool = True) -> tuple[list[str], dict[str, float | None]]:
    """The lines a benchmark prints at its top (the CPU from :func:`describe`, then the GEMM peaks measured at
    the current thread count, or why they were not) and the peaks as ``{backend: GFLOP/s or None}``."""
    lines = describe(cpu_info())
    if device != "cpu" or not peaks:
        lines.append("GEMM peaks: not measured" + (" (--no-peaks)" if device == "cpu" else f" (device {device})"))
        return lines, {}
    measured = gemm_peaks()
    n = torch.get_num_threads()
    lines.append(f"GEMM peaks, 4096x1024 by 1024x4096, {n} thread{'' if n == 1 else 's'}: {describe_peaks(measured)}")
    return lines, {name: p.gflops for name, p in measured.items()}
