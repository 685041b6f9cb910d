"""The worker pool of the pipeline steps: an ordered map over a fork pool that is always torn down."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


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
    if num_workers <= 1:
        yield from map(func, items)
        return
    pool = multiprocessing.get_context("fork").Pool(num_workers, initializer, initargs)
    try:
        yield from pool.imap(func, items, chunksize=chunk_size)
    finally:
        pool.terminate()
        pool.join()
