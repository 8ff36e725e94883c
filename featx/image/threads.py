"""Concurrency for image work, always owned by a caller: no pool is cached or started at import.

A processor call (or `map_threads`) runs its items on the ``executor`` it is given; without one it
opens a short-lived ``ThreadPoolExecutor`` for that call only (threads start on first use and are
joined when the call returns), or runs serially when there is one item or one thread. The calling
thread always takes items too, so a call needs one pool thread fewer, and it never waits for a
helper task that has not started: a busy (even the same) executor cannot deadlock a call. PIL,
NumPy and the numba resize kernel release the GIL, so threads scale. ``FEATX_NUM_THREADS`` sets
how many threads a call uses (default: the CPU count, at most 8).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from .resample import mark_pool_thread, num_threads

__all__ = ["THREAD_PREFIX", "Workers", "SERIAL", "num_threads", "call_pool", "map_items", "map_threads"]

T = TypeVar("T")
R = TypeVar("R")

# Threads of featx's short-lived pools are named so (for debuggers and stack dumps); they mark
# themselves with `mark_pool_thread`, so the resize kernel splits no rows inside them.
THREAD_PREFIX = "featx-image"


@dataclass(frozen=True)
class Workers:
    """Where a call's items run: the calling thread plus ``helpers`` tasks on ``executor``."""

    executor: Executor | None
    helpers: int = 0

    @property
    def parallel(self) -> bool:
        return self.executor is not None and self.helpers > 0


SERIAL = Workers(None, 0)


@contextlib.contextmanager
def call_pool(executor: Executor | None, items: int, threads: int | None = None) -> Iterator[Workers]:
    """The `Workers` of one call over ``items`` items with ``threads`` threads (default `num_threads`):
    the caller's ``executor`` (left running), else a pool opened for this call, else serial."""
    workers = min(threads or num_threads(), items)
    if workers <= 1:
        yield Workers(executor, 0)  # a single item may still split its rows on the caller's executor
    elif executor is not None:
        yield Workers(executor, workers - 1)
    else:
        with ThreadPoolExecutor(max_workers=workers - 1, thread_name_prefix=THREAD_PREFIX,
                                initializer=mark_pool_thread) as pool:
            yield Workers(pool, workers - 1)


def map_items(fn: Callable[[T], R], items: Sequence[T], workers: Workers) -> list[R]:
    """``[fn(x) for x in items]`` in order, shared by the calling thread and ``workers.helpers`` tasks.

    On an error no new item is started, the items under way finish, and the error of the earliest
    failing item is raised (as ``Executor.map`` would).
    """
    if not workers.parallel or len(items) <= 1:
        return [fn(x) for x in items]
    assert workers.executor is not None
    results: list[Any] = [None] * len(items)
    errors: dict[int, BaseException] = {}
    counter, lock, stop = itertools.count(), threading.Lock(), threading.Event()

    def drain() -> None:
        while not stop.is_set():
            with lock:
                index = next(counter)
            if index >= len(items):
                return
            try:
                results[index] = fn(items[index])
            except BaseException as exc:  # noqa: BLE001  (re-raised in the calling thread)
                errors[index] = exc
                stop.set()

    helpers = [workers.executor.submit(drain) for _ in range(min(workers.helpers, len(items) - 1))]
    drain()
    for future in helpers:
        if not future.cancel():  # started: wait for the item it holds
            future.result()
    if errors:
        raise errors[min(errors)]
    return results


def map_threads(fn: Callable[[T], R], items: Sequence[T], executor: Executor | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on ``executor``, else on a pool that lives for this call only."""
    with call_pool(executor, len(items)) as workers:
        return map_items(fn, items, workers)
