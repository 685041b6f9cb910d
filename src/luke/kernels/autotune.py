"""Which backend runs an encoder product, chosen by measuring both on this machine (issue #21, item 1).

Whether oneDNN's blocked GEMM (weight re-laid out per call) beats MKL's sgemm (``F.linear``) depends on the
CPU (AVX2 only, AVX-512, AVX-512 with bf16, AMX), the product's shape, the dtype and the thread count: on
the 2-vCPU AVX2 VM of ``docs/benchmarks.md`` oneDNN gained 5-10 % from about 768 rows per thread and lost
below; on an AVX-512 EPYC it ran one large product 2.5x faster than MKL. So no constant decides: for each
*product class* — rows rounded down to a power of two, in and out features, dtype, bias or not, torch
thread count — ``LinearAutotuner.choose`` times both candidates once (``measure``: a warm-up call each,
then calls alternating between the backends, at least ``TIMED_CALLS`` and about ``TIMED_SECONDS`` each, on
random rows of the class's size with the layer's own weight; the fastest call counts) and keeps the faster
backend for the rest of the process. Products
with fewer than ``MIN_TUNED_ROWS`` rows are not timed (small products: any gain would be tiny, and such
row counts vary most, each a new class to time) and stay on MKL.

On-disk cache: the choices are also kept in ``$LUKE_CACHE_DIR/linear-backend/<key>.json`` (default
``~/.cache/luke/linear-backend``, or under ``$XDG_CACHE_HOME``), one JSON file per machine key — CPU model,
CPU flags, torch version, oneDNN/MKL availability — written atomically, so a later process on the same
machine does not time again. A file that cannot be read or parsed, or that names another machine, is
ignored with a warning (and replaced at the next choice).

Environment (read at every call):

* ``LUKE_LINEAR_BACKEND=auto|mkl|onednn``: ``auto`` (the default) measures as above; ``mkl`` runs every
  product on ``F.linear``; ``onednn`` runs every product that oneDNN can take there (no tuning). This
  replaces ``ONEDNN_MIN_ROWS_PER_THREAD`` (the fixed rows-per-thread threshold before #21).
* ``LUKE_LINEAR_TUNE_CACHE=0``: no on-disk cache (choices are still measured and kept per process).

Only inference products are tuned: with autograd enabled (every training step) ``EncoderLinear`` is plain
``nn.Linear`` (MKL); sending training products through the tuner needs a custom autograd Function (a
later step of #21). Whichever backend is chosen, results equal ``F.linear``'s up to float rounding.
``benchmarks/bench_model.py`` measures the whole model; the cache file lists every choice with its times.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from luke.errors import ConfigError
from luke.files import env_switch, luke_cache_home, write_text_atomic

BACKEND_ENV = "LUKE_LINEAR_BACKEND"
CACHE_ENV = "LUKE_LINEAR_TUNE_CACHE"
BACKENDS = ("mkl", "onednn")
#: products with fewer rows are not timed and run on MKL
MIN_TUNED_ROWS = 128
WARM_CALLS = 1
#: timed calls per backend: at least TIMED_CALLS, more (up to MAX_TIMED_CALLS) until each has run TIMED_SECONDS
TIMED_CALLS = 3
TIMED_SECONDS = 0.05
MAX_TIMED_CALLS = 25
CACHE_FORMAT = 1
#: the products of a layer y = x W^T + b (x: (rows, in), W: (out, in)) that are tuned separately:
#: "infer" the product without autograd; in training, "forward" the same product with autograd on,
#: "grad_input" dy W ((rows, out) by (out, in)) and "grad_weight" dy^T x ((out, rows) by (rows, in))
KINDS = ("infer", "forward", "grad_input", "grad_weight")


@dataclass(frozen=True)
class ProductClass:
    """The products that share one choice: ``rows`` is the input's row count rounded down to a power of two."""

    rows: int
    in_features: int
    out_features: int
    dtype: str
    bias: bool
    threads: int
    kind: str = "infer"

    def label(self) -> str:
        """A short stable name (the on-disk cache's key)."""
        bias = "bias" if self.bias else "nobias"
        label = f"{self.rows}x{self.in_features}->{self.out_features}/{self.dtype}/{bias}/t{self.threads}"
        return label if self.kind == "infer" else f"{label}/{self.kind}"


def rows_bucket(rows: int) -> int:
    """``rows`` rounded down to a power of two (``rows`` >= 1)."""
    return 1 << (max(rows, 1).bit_length() - 1)


def product_class(rows: int, weight: torch.Tensor, bias: torch.Tensor | None, kind: str = "infer") -> ProductClass:
    """The class of the ``kind`` product of a layer with ``weight`` (out, in) over ``rows`` tokens, at the
    current torch thread count (``KINDS`` says which product each kind is)."""
    if kind not in KINDS:
        raise ValueError(f"product kind {kind!r}: expected one of {', '.join(KINDS)}")
    out_features, in_features = weight.shape
    dtype = str(weight.dtype).removeprefix("torch.")
    has_bias = bias is not None and kind in ("infer", "forward")
    return ProductClass(rows_bucket(rows), in_features, out_features, dtype, has_bias, torch.get_num_threads(), kind)


def requested_backend() -> str:
    """``LUKE_LINEAR_BACKEND`` (``auto`` when unset); ConfigError for any other value than auto/mkl/onednn."""
    value = os.environ.get(BACKEND_ENV, "").strip().lower() or "auto"
    if value not in ("auto", *BACKENDS):
        raise ConfigError(f"{BACKEND_ENV}={value!r}: expected auto, mkl or onednn")
    return value


def disk_cache_enabled() -> bool:
    """Whether choices are read from and written to disk (``LUKE_LINEAR_TUNE_CACHE=0`` turns that off)."""
    return env_switch(CACHE_ENV)


def cache_dir() -> Path:
    """``$LUKE_CACHE_DIR/linear-backend`` (default ``~/.cache/luke/linear-backend``, or under ``$XDG_CACHE_HOME``)."""
    return luke_cache_home() / "linear-backend"


def machine_key() -> dict[str, object]:
    """What the choices depend on besides the product class: CPU model and flags, torch version, backends."""
    from luke.kernels.cpu import cpu_info  # cpu imports linear, which imports this module

    info = cpu_info()
    return {
        "cpu": info.model,
        "flags": list(info.flags) if info.flags_known else None,
        "torch": torch.__version__,
        "onednn": info.onednn,
        "mkl": info.mkl,
    }


def measure(cls: ProductClass, weight: torch.Tensor, bias: torch.Tensor | None) -> dict[str, float]:
    """Seconds of one product of class ``cls`` with ``weight``/``bias`` on each backend (oneDNN: re-layout
    included, as ``EncoderLinear`` pays it per call): ``WARM_CALLS`` each, then rounds in which the backends
    alternate (order flipped every round, so both see the same machine drift) — at least ``TIMED_CALLS``, and
    until each backend has run ``TIMED_SECONDS`` (at most ``MAX_TIMED_CALLS``) — of which the fastest call
    counts: on a machine shared with other jobs, slower calls measure the neighbours (a descheduled thread
    stalls the whole product), not the backend. A backend that raises RuntimeError (this build cannot run the
    product) gets ``math.inf``."""
    products = candidates(cls, weight, bias)
    times: dict[str, list[float]] = {}
    with torch.no_grad():
        for backend, product in products.items():
            try:
                for _ in range(WARM_CALLS):
                    product()
                times[backend] = []
            except RuntimeError:
                pass
        order, round_ = list(times), 0
        while order and (round_ < TIMED_CALLS or min(sum(times[b]) for b in order) < TIMED_SECONDS):
            if round_ >= MAX_TIMED_CALLS:
                break
            for backend in order if round_ % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                products[backend]()
                times[backend].append(time.perf_counter() - t0)
            round_ += 1
    return {b: min(times[b]) if times.get(b) else math.inf for b in BACKENDS}


def candidates(
    cls: ProductClass, weight: torch.Tensor, bias: torch.Tensor | None
) -> dict[str, Callable[[], torch.Tensor]]:
    """One product of class ``cls`` per backend, on random inputs of the class's size, exactly as
    ``luke.kernels.linear`` runs it (oneDNN: the re-layout of the operand included)."""
    from luke.kernels.linear import grad_input_product, grad_weight_product, onednn_product, onednn_relayout

    generator = torch.Generator().manual_seed(0)  # never the global RNG: tuning must not shift seeded draws

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=weight.dtype)

    if cls.kind in ("infer", "forward"):
        x = rand(cls.rows, cls.in_features)
        return {
            "mkl": lambda: F.linear(x, weight, bias),
            "onednn": lambda: onednn_product(x, onednn_relayout(weight, cls.rows), bias),
        }
    dy = rand(cls.rows, cls.out_features)
    if cls.kind == "grad_input":
        return {b: (lambda b=b: grad_input_product(dy, weight, b)) for b in BACKENDS}
    x = rand(cls.rows, cls.in_features)
    return {b: (lambda b=b: grad_weight_product(dy, x, b)) for b in BACKENDS}


#: ``timer(cls, weight, bias) -> {backend: seconds}`` (a missing or infinite time: the backend cannot run it)
Timer = Callable[[ProductClass, torch.Tensor, torch.Tensor | None], dict[str, float]]


class LinearAutotuner:
    """Per-process (and optionally on-disk) choice of backend per product class; thread-safe.

    ``timer(cls, weight, bias) -> {backend: seconds}`` measures the candidates (default ``measure``; tests
    inject timings). ``use_disk``: None follows ``LUKE_LINEAR_TUNE_CACHE`` at each use; True/False force it."""

    def __init__(self, timer: Timer | None = None, use_disk: bool | None = None) -> None:
        self.timer = timer or measure
        self.use_disk = use_disk
        self._choices: dict[ProductClass, str] = {}
        self._times: dict[ProductClass, dict[str, float]] = {}
        self._disk: dict[str, dict[str, object]] | None = None
        self._lock = threading.Lock()

    def choose(self, rows: int, weight: torch.Tensor, bias: torch.Tensor | None, kind: str = "infer") -> str:
        """``mkl`` or ``onednn`` for the ``kind`` product (``KINDS``) of a layer with ``weight`` over ``rows``
        tokens, one that oneDNN can take (the caller checks that): the forced backend of
        ``LUKE_LINEAR_BACKEND``, else MKL below ``MIN_TUNED_ROWS`` rows, else the class's measured choice
        (measured now if this is the class's first product)."""
        forced = requested_backend()
        if forced != "auto":
            return forced
        if rows < MIN_TUNED_ROWS:
            return "mkl"
        cls = product_class(rows, weight, bias, kind)
        choice = self._choices.get(cls)
        if choice is not None:
            return choice
        with self._lock:
            if cls not in self._choices:
                self._decide(cls, weight, bias)
            return self._choices[cls]

    def _decide(self, cls: ProductClass, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        disk = self._disk_choices()
        stored = disk.get(cls.label()) if disk is not None else None
        if isinstance(stored, dict) and stored.get("backend") in BACKENDS:
            self._choices[cls] = str(stored["backend"])
            return
        measured = self.timer(cls, weight, bias)
        times = {b: float(measured.get(b, math.inf)) for b in BACKENDS}
        self._times[cls] = times
        self._choices[cls] = min(BACKENDS, key=lambda b: times[b])
        if disk is not None:
            ms = {b: round(t * 1e3, 4) if math.isfinite(t) else None for b, t in times.items()}
            disk[cls.label()] = {"backend": self._choices[cls], "ms": ms}
            self._save(disk)

    def decisions(self) -> dict[str, dict[str, object]]:
        """Every class decided in this process: label -> {"backend", "ms" (the times measured here; empty
        when the choice came from the disk cache)}."""
        return {
            cls.label(): {"backend": b, "ms": {k: v * 1e3 for k, v in self._times.get(cls, {}).items()}}
            for cls, b in self._choices.items()
        }

    def cache_path(self) -> Path:
        """This machine's cache file (whether or not the disk cache is on)."""
        key = json.dumps(machine_key(), sort_keys=True)
        return cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"

    def _disk_on(self) -> bool:
        return disk_cache_enabled() if self.use_disk is None else self.use_disk

    def _disk_choices(self) -> dict[str, dict[str, object]] | None:
        """The disk cache's choices (read once per process), or None when the disk cache is off."""
        if not self._disk_on():
            return None
        if self._disk is None:
            self._disk = self._load()
        return self._disk

    def _load(self) -> dict[str, dict[str, object]]:
        path = self.cache_path()
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            valid = (
                isinstance(data, dict)
                and data.get("format") == CACHE_FORMAT
                and data.get("machine") == machine_key()
                and isinstance(data.get("choices"), dict)
            )
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            data, valid = None, False
            reason = str(e)
        else:
            reason = "not a backend cache of this machine (format, machine key or choices do not match)"
        if not valid:
            warnings.warn(f"{path}: ignoring the linear-backend cache: {reason}", RuntimeWarning, stacklevel=2)
            return {}
        return dict(data["choices"])

    def _save(self, choices: dict[str, dict[str, object]]) -> None:
        path = self.cache_path()
        text = json.dumps({"format": CACHE_FORMAT, "machine": machine_key(), "choices": choices}, indent=1)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text + "\n")
        except OSError as e:  # a read-only home: keep the choices in memory
            warnings.warn(f"{path}: cannot write the linear-backend cache: {e}", RuntimeWarning, stacklevel=2)


#: the tuner ``EncoderLinear`` asks (read at every call; tests replace it with one that has injected timings)
TUNER = LinearAutotuner()
