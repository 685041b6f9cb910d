"""luke.kernels.autotune: EncoderLinear's backend chosen by (injected) timings, cached per process and on disk,
forced by LUKE_LINEAR_BACKEND; results equal F.linear's whichever backend runs."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import count_onednn_products
from luke import kernels
from luke.errors import ConfigError
from luke.kernels import autotune
from luke.kernels.linear import ONEDNN_DTYPES, EncoderLinear

ROWS = 200  # above MIN_TUNED_ROWS, bucket 128


class FakeTimer:
    """Injected timings: ``seconds`` (backend -> seconds, for every class); records the classes timed."""

    def __init__(self, **seconds):
        self.seconds = seconds
        self.calls = []

    def __call__(self, cls, weight, bias):
        if any(isinstance(v, Exception) for v in self.seconds.values()):
            raise next(v for v in self.seconds.values() if isinstance(v, Exception))
        self.calls.extend((backend, cls) for backend in self.seconds)
        return dict(self.seconds)


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A private cache folder, no forced backend, the disk cache on; returns a function installing a tuner
    with the given timer (and returning that timer)."""
    if kernels.linear._ONEDNN is None:
        pytest.fail("this torch lacks oneDNN's linear ops: EncoderLinear would be plain nn.Linear")
    monkeypatch.setenv("LUKE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(autotune.BACKEND_ENV, raising=False)
    monkeypatch.delenv(autotune.CACHE_ENV, raising=False)

    def install(timer, use_disk=None):
        monkeypatch.setattr(autotune, "TUNER", autotune.LinearAutotuner(timer=timer, use_disk=use_disk))
        return timer

    return install


@pytest.fixture
def onednn_calls(monkeypatch):
    """Count EncoderLinear's oneDNN products (their input shapes)."""
    return count_onednn_products(monkeypatch)


def _tolerance(dtype):
    return {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}


@pytest.mark.parametrize("winner", ["mkl", "onednn"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_faster_backend_runs_and_equals_linear(winner, bias, dtype, env, onednn_calls):
    timer = env(FakeTimer(mkl=2.0 if winner == "onednn" else 1.0, onednn=1.0 if winner == "onednn" else 2.0))
    layer = EncoderLinear(16, 24, bias=bias).to(dtype)
    x = torch.randn(ROWS, 16, dtype=dtype)
    ref = F.linear(x.double(), layer.weight.double(), None if layer.bias is None else layer.bias.double())
    with torch.no_grad():
        y = layer(x)
    expected = winner if dtype in ONEDNN_DTYPES else "mkl"  # bf16 goes to oneDNN only where it is native
    assert y.dtype == dtype
    torch.testing.assert_close(y.double(), ref, **_tolerance(dtype))
    assert onednn_calls == ([(ROWS, 16)] if expected == "onednn" else [])
    assert len(timer.calls) == (2 if dtype in ONEDNN_DTYPES else 0)


def test_one_timing_per_product_class(env, monkeypatch):
    timer = env(FakeTimer(mkl=2.0, onednn=1.0), use_disk=False)
    layer = EncoderLinear(16, 24)
    with torch.no_grad():
        assert layer.backend(torch.randn(ROWS, 16)) == "onednn"
        assert len(timer.calls) == 2
        assert layer.backend(torch.randn(255, 16)) == "onednn"  # same bucket (128)
        assert EncoderLinear(16, 24).backend(torch.randn(130, 16)) == "onednn"  # another layer, same class
        assert len(timer.calls) == 2
        timer.seconds = {"mkl": 1.0, "onednn": 2.0}
        assert layer.backend(torch.randn(256, 16)) == "mkl"  # next bucket: timed again
        assert EncoderLinear(16, 32).backend(torch.randn(ROWS, 16)) == "mkl"  # other shape
        assert EncoderLinear(16, 24, bias=False).backend(torch.randn(ROWS, 16)) == "mkl"  # no bias
        assert len(timer.calls) == 8
        saved = torch.get_num_threads()
        torch.set_num_threads(saved + 1)
        try:
            assert layer.backend(torch.randn(ROWS, 16)) == "mkl"  # other thread count: timed again
        finally:
            torch.set_num_threads(saved)
        assert len(timer.calls) == 10
        assert layer.backend(torch.randn(ROWS, 16)) == "onednn"  # the first decision stands
    classes = {cls.label() for _, cls in timer.calls}
    assert f"128x16->24/float32/bias/t{saved}" in classes and f"256x16->24/float32/bias/t{saved}" in classes
    assert set(autotune.TUNER.decisions()) == classes


def test_untimed_products_stay_on_mkl(env, onednn_calls):
    timer = env(FakeTimer(mkl=2.0, onednn=1.0))
    layer = EncoderLinear(16, 24)
    x = torch.randn(ROWS, 16)
    with torch.no_grad():
        assert layer.backend(x[: autotune.MIN_TUNED_ROWS - 1]) == "mkl"  # too small to time
        assert layer.backend(torch.randn(16, ROWS).t()) == "mkl"  # not contiguous
        assert layer.double().backend(x.double()) == "mkl"  # fp64: oneDNN does not take it
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert layer.float()(x).dtype == torch.bfloat16  # autocast keeps nn.Linear's bf16 product
    assert timer.calls == [] and onednn_calls == []


@pytest.mark.parametrize("onednn", [math.inf, None])
def test_a_backend_that_cannot_run_is_never_chosen(onednn, env):
    timer = env(FakeTimer(mkl=5.0) if onednn is None else FakeTimer(mkl=5.0, onednn=onednn), use_disk=False)
    with torch.no_grad():
        assert EncoderLinear(16, 24).backend(torch.randn(ROWS, 16)) == "mkl"
    assert timer.calls


def test_measure_times_both_backends_without_the_global_rng():
    weight, bias = torch.randn(24, 16), torch.randn(24)
    cls = autotune.product_class(ROWS, weight, bias)
    assert cls.rows == 128 and (cls.in_features, cls.out_features, cls.dtype) == (16, 24, "float32")
    state = torch.get_rng_state()
    times = autotune.measure(cls, weight, bias)
    assert set(times) == set(autotune.BACKENDS) and all(0 < t < 10 for t in times.values())
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched


def test_measure_gives_a_failing_backend_infinity(monkeypatch):
    relayout, _ = kernels.linear._ONEDNN

    def broken(*args):
        raise RuntimeError("no oneDNN kernel for this")

    monkeypatch.setattr(kernels.linear, "_ONEDNN", (relayout, broken))
    weight = torch.randn(24, 16)
    times = autotune.measure(autotune.product_class(ROWS, weight, None), weight, None)
    assert times["onednn"] == math.inf and 0 < times["mkl"] < 10


@pytest.mark.parametrize("forced", ["mkl", "onednn"])
def test_the_environment_forces_a_backend(forced, env, monkeypatch, onednn_calls):
    timer = env(FakeTimer(mkl=1.0, onednn=1.0))
    monkeypatch.setenv(autotune.BACKEND_ENV, forced.upper())
    layer = EncoderLinear(16, 24)
    x = torch.randn(7, 16)  # below MIN_TUNED_ROWS: forcing applies all the same
    with torch.no_grad():
        y = layer(x)
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
    assert onednn_calls == ([(7, 16)] if forced == "onednn" else [])
    assert layer(x).requires_grad and len(onednn_calls) == (2 if forced == "onednn" else 0)  # training too
    assert timer.calls == []
    assert not autotune.TUNER.cache_path().exists()


def test_a_bad_backend_name_is_a_config_error(env, monkeypatch):
    env(FakeTimer(mkl=1.0, onednn=2.0))
    monkeypatch.setenv(autotune.BACKEND_ENV, "blas")
    with torch.no_grad(), pytest.raises(ConfigError, match="LUKE_LINEAR_BACKEND='blas'"):
        EncoderLinear(16, 24)(torch.randn(ROWS, 16))


def test_the_disk_cache_is_reused_by_another_process(env):
    env(FakeTimer(mkl=2.0, onednn=1.0))
    with torch.no_grad():
        assert EncoderLinear(16, 24).backend(torch.randn(ROWS, 16)) == "onednn"
    path = autotune.TUNER.cache_path()
    assert path.parent == autotune.cache_dir() and path.is_file()
    data = json.loads(path.read_text())
    assert data["machine"] == autotune.machine_key()
    [(label, entry)] = data["choices"].items()
    assert label.startswith("128x16->24/float32/bias/") and entry == {
        "backend": "onednn",
        "ms": {"mkl": 2000.0, "onednn": 1000.0},
    }
    second = env(FakeTimer(mkl=AssertionError("timed again"), onednn=AssertionError("timed again")))
    with torch.no_grad():
        assert EncoderLinear(16, 24).backend(torch.randn(ROWS, 16)) == "onednn"
    assert second.calls == []
    assert autotune.TUNER.decisions() == {label: {"backend": "onednn", "ms": {}}}


def test_another_machine_key_times_again(env, monkeypatch):
    env(FakeTimer(mkl=2.0, onednn=1.0))
    with torch.no_grad():
        EncoderLinear(16, 24).backend(torch.randn(ROWS, 16))
    old = autotune.TUNER.cache_path()
    key = autotune.machine_key() | {"torch": "0.0.0"}
    monkeypatch.setattr(autotune, "machine_key", lambda: key)
    timer = env(FakeTimer(mkl=1.0, onednn=2.0))
    assert autotune.TUNER.cache_path() != old
    with torch.no_grad():
        assert EncoderLinear(16, 24).backend(torch.randn(ROWS, 16)) == "mkl"
    assert len(timer.calls) == 2 and json.loads(autotune.TUNER.cache_path().read_text())["machine"] == key


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '{"format": 1, "machine": {"cpu": "another"}, "choices": {}}',
        '{"format": 99, "machine": null, "choices": {}}',
    ],
)
def test_a_corrupt_or_foreign_cache_is_ignored_with_a_warning(text, env):
    tuner = env(FakeTimer(mkl=1.0, onednn=2.0))
    path = autotune.TUNER.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="ignoring the linear-backend cache"):
        assert EncoderLinear(16, 24).backend(torch.randn(ROWS, 16)) == "mkl"
    assert len(tuner.calls) == 2
    assert json.loads(path.read_text())["choices"]  # replaced by a valid cache


def test_the_disk_cache_can_be_turned_off(env, monkeypatch):
    monkeypatch.setenv(autotune.CACHE_ENV, "0")
    tuner = env(FakeTimer(mkl=2.0, onednn=1.0))
    with torch.no_grad():
        assert EncoderLinear(16, 24).backend(torch.randn(ROWS, 16)) == "onednn"
    assert not autotune.cache_dir().exists() and len(tuner.calls) == 2


@pytest.mark.parametrize(("seconds", "expected"), [(0.0, 3), (1e9, 5)])
def test_measure_makes_at_least_timed_calls_and_at_most_the_cap(seconds, expected, monkeypatch, onednn_calls):
    monkeypatch.setattr(autotune, "TIMED_CALLS", 3)
    monkeypatch.setattr(autotune, "TIMED_SECONDS", seconds)
    monkeypatch.setattr(autotune, "MAX_TIMED_CALLS", 5)
    weight = torch.randn(24, 16)
    autotune.measure(autotune.product_class(ROWS, weight, None), weight, None)
    assert len(onednn_calls) == autotune.WARM_CALLS + expected


class KindTimer(FakeTimer):
    """Injected timings per product kind: ``winners`` maps a kind to the backend that wins its classes."""

    def __init__(self, winners):
        super().__init__()
        self.winners = winners

    def __call__(self, cls, weight, bias):
        self.calls.append((cls.kind, cls))
        return {b: 1.0 if b == self.winners[cls.kind] else 2.0 for b in autotune.BACKENDS}


TRAINING_KINDS = ("forward", "grad_input", "grad_weight")


@pytest.mark.parametrize(
    "winners",
    [
        dict(zip(TRAINING_KINDS, c, strict=True))
        for c in [("mkl",) * 3, ("onednn",) * 3, ("onednn", "mkl", "onednn"), ("mkl", "onednn", "mkl")]
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_training_products_run_where_tuned_and_equal_linear(winners, bias, env, onednn_calls):
    """With autograd, the forward product and both gradient products are timed as their own classes and run
    on their winner; output and all three gradients equal nn.Linear's (fp64 reference)."""
    timer = env(KindTimer(winners), use_disk=False)
    layer = EncoderLinear(16, 24, bias=bias)
    x = torch.randn(ROWS, 16, requires_grad=True)
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    assert sorted(kind for kind, _ in timer.calls) == sorted(TRAINING_KINDS)
    assert {cls.label() for _, cls in timer.calls} == set(autotune.TUNER.decisions())
    assert all(cls.label().endswith("/" + kind) for kind, cls in timer.calls)
    # oneDNN products, by their input's shape: forward x (rows, in), grad_input dy (rows, out), grad_weight dy^T
    shapes = {"forward": (ROWS, 16), "grad_input": (ROWS, 24), "grad_weight": (24, ROWS)}
    assert onednn_calls == [shapes[k] for k in TRAINING_KINDS if winners[k] == "onednn"]
    xd, wd = x.detach().double().requires_grad_(), layer.weight.detach().double().requires_grad_()
    bd = layer.bias.detach().double().requires_grad_() if bias else None
    ref = F.linear(xd, wd, bd)
    ref.backward(dy.double())
    tol = {"atol": 1e-5, "rtol": 1e-5}
    torch.testing.assert_close(y.double(), ref, **tol)
    torch.testing.assert_close(x.grad.double(), xd.grad, **tol)
    torch.testing.assert_close(layer.weight.grad.double(), wd.grad, **tol)
    if bias:
        torch.testing.assert_close(layer.bias.grad.double(), bd.grad, **tol)


def test_training_path_follows_weight_updates_and_frozen_inputs(env, onednn_calls):
    """Nothing is cached across steps: after a fused AdamW step (which does not bump the weight's version
    counter) the next forward uses the new weight; a frozen weight gets no gradient product."""
    env(KindTimer(dict.fromkeys(TRAINING_KINDS, "onednn")), use_disk=False)
    torch.manual_seed(0)
    layer, twin = EncoderLinear(16, 24), torch.nn.Linear(16, 24)
    twin.load_state_dict(layer.state_dict())
    opts = [torch.optim.AdamW(m.parameters(), lr=0.1, fused=True) for m in (layer, twin)]
    x = torch.randn(ROWS, 16)
    for _ in range(3):
        for m, opt in zip((layer, twin), opts, strict=True):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    torch.testing.assert_close(layer.weight, twin.weight, atol=1e-5, rtol=1e-5)
    onednn_calls.clear()
    layer.requires_grad_(False)
    xg = x.clone().requires_grad_()
    layer(xg).sum().backward()
    assert onednn_calls == [(ROWS, 16), (ROWS, 24)]  # forward and grad_input; no weight gradient
    torch.testing.assert_close(xg.grad, torch.ones(ROWS, 24) @ layer.weight, atol=1e-5, rtol=1e-5)


def test_training_outside_fp32_cpu_stays_plain(env, onednn_calls):
    timer = env(KindTimer(dict.fromkeys(TRAINING_KINDS, "onednn")), use_disk=False)
    layer = EncoderLinear(16, 24)
    x = torch.randn(ROWS, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layer.trains_tuned(x) and layer(x).dtype == torch.bfloat16
    assert not layer.double().trains_tuned(x.double())
    assert not layer.float().trains_tuned(torch.randn(16, ROWS, requires_grad=True).t())  # not contiguous
    assert not layer.requires_grad_(False).trains_tuned(torch.randn(ROWS, 16))  # nothing needs a gradient
    assert timer.calls == [] and onednn_calls == []


@pytest.mark.parametrize("kind", autotune.KINDS)
def test_measure_times_every_product_kind(kind):
    weight, bias = torch.randn(24, 16), torch.randn(24)
    cls = autotune.product_class(ROWS, weight, bias, kind)
    assert cls.bias == (kind in ("infer", "forward"))
    times = autotune.measure(cls, weight, bias)
    assert set(times) == set(autotune.BACKENDS) and all(0 < t < 10 for t in times.values())
    with pytest.raises(ValueError, match="product kind"):
        autotune.product_class(ROWS, weight, bias, "sideways")
