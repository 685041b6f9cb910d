"""The worker pool of the pipeline steps: an ordered map over a fork pool that is always torn down."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

from luke.errors import ConfigError

T = TypeVar("T")
MAX_WORKERS = 256  # the same ceiling as the DataLoader workers of `luke pretrain`
R = TypeVar("R")
KILL_AFTER = 10.0  # seconds a terminated pool worker gets before SIGKILL (see _terminate)


def check_num_workers(num_workers: int) -> None:
    """:class:`~luke.errors.ConfigError` for a worker count no machine can run (``--num-workers 100000``
    would fork until the system refuses): at most :data:`MAX_WORKERS`."""
    if num_workers > MAX_WORKERS:
        raise ConfigError(
            f"--num-workers {num_workers:,} is too many: at most {MAX_WORKERS} worker processes "
            f"(this machine has {os.cpu_count() or 1} CPUs)"
        )


def ordered_map(
    func: Callable[[T], R],
    items: Iterable[T],
    num_workers: int,
    chunk_size: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Generator[R, None, None]:
    """``func`` of every item, in order: in this process if ``num_workers <= 1`` (``initializer`` is not
    run), otherwise by ``num_workers`` forked processes that each run ``initializer(*initargs)`` first.

    With a pool, ``items`` is consumed by the pool's feeder thread, and the pool is terminated when the
    iteration ends, fails or is closed: ``close()`` the generator when stopping early.
    """
    check_num_workers(num_workers)
    if num_workers <= 1:
        yield from map(func, items)
        return
    pool = multiprocessing.get_context("fork").Pool(num_workers, initializer, initargs)
    finished = False
    try:
        yield from pool.imap(func, items, chunksize=chunk_size)
        finished = True
    finally:
        if finished:
            pool.close()  # the workers leave through the task queue's sentinels: no signal involved
        else:
            _terminate(pool)
        pool.join()


def _terminate(pool: Any) -> None:
    """``pool.terminate()``, with SIGKILL for a worker still alive after :data:`KILL_AFTER` seconds.

    ``terminate`` sends SIGTERM and waits for every worker without a time limit. A SIGTERM that reaches a
    worker forked a moment before, while it still has the parent's Python handler, is swallowed (CPython
    clears a child's pending Python-level signals after fork), and the pool then waits forever — seen as a
    hung test run. By the time the timer fires, ``terminate`` holds the task queue's lock, so killing a
    worker cannot leave that lock taken."""
    workers = list(getattr(pool, "_pool", ()))  # the Pool's worker processes (a private list, stable for years)

    def kill_stragglers() -> None:
        for proc in workers:
            try:
                if proc.exitcode is None:
                    proc.kill()
            except (OSError, ValueError):  # already reaped or closed
                pass

    timer = threading.Timer(KILL_AFTER, kill_stragglers)
    timer.daemon = True
    timer.start()
    try:
        pool.terminate()
    finally:
        timer.cancel()
