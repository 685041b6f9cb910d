"""``luke.wikipedia.parallel.ordered_map``: the same results in the same order with or without a pool, and the
pool is torn down when the iteration stops early."""

from __future__ import annotations

import os
import signal

import pytest

from luke.wikipedia import parallel
from luke.wikipedia.parallel import ordered_map

_STATE: dict[str, int] = {}


def _square(x: int) -> int:
    return x * x


def _init(offset: int) -> None:
    _STATE["offset"] = offset


def _add_offset(x: int) -> tuple[int, int]:
    return x + _STATE.get("offset", 0), os.getpid()


def test_in_process_and_pool_give_the_same_order() -> None:
    items = list(range(50))
    assert list(ordered_map(_square, items, 1)) == [x * x for x in items]
    assert list(ordered_map(_square, iter(items), 3, chunk_size=4)) == [x * x for x in items]


def test_initializer_runs_in_each_worker_only() -> None:
    _STATE.clear()
    results = list(ordered_map(_add_offset, range(8), 2, 1, _init, (100,)))
    assert [value for value, _ in results] == [100 + x for x in range(8)]
    assert all(pid != os.getpid() for _, pid in results)
    assert "offset" not in _STATE  # not run in this process
    assert [value for value, _ in ordered_map(_add_offset, range(3), 1, 1, _init, (100,))] == [0, 1, 2]


def test_closing_early_terminates_the_pool() -> None:
    results = ordered_map(_add_offset, range(1000), 2)
    _, worker_pid = next(results)
    results.close()
    try:
        os.kill(worker_pid, 0)
        alive = os.waitpid(worker_pid, os.WNOHANG) == (0, 0)
    except (ProcessLookupError, ChildProcessError):
        alive = False
    assert not alive


def _ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return os.waitpid(pid, os.WNOHANG) != (0, 0)
    except (ProcessLookupError, ChildProcessError):
        return True


@pytest.mark.timeout(60)
def test_a_worker_that_misses_sigterm_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that never reacts to the SIGTERM of ``Pool.terminate`` (here it ignores it; in the wild it
    can arrive before the forked worker's handler is reset, and is dropped) used to hang the pool forever."""
    monkeypatch.setattr(parallel, "KILL_AFTER", 0.5)
    results = ordered_map(_add_offset, range(1000), 2, 1, _ignore_sigterm, ())
    _, worker_pid = next(results)
    results.close()  # returns once the stragglers are killed
    assert _gone(worker_pid)


def test_a_finished_map_closes_the_pool_without_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        sent.append(sig)
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    assert list(ordered_map(_square, range(20), 2)) == [x * x for x in range(20)]
    assert signal.SIGTERM not in sent
