"""Decode + preprocess in parallel workers, ahead of the model, in bounded memory.

A feeder thread walks the inputs (skipping done ones and duplicates) and submits each to a pool of
threads or processes; the futures go, in input order, into a bounded queue that the model loop
drains. So workers keep preparing while the model runs, at most ``ahead`` inputs are in flight, and
results come back in input order (a deterministic output, whatever the workers' timing).

Threads are the default: PIL decoding, resizing and NumPy release the GIL, and results need no
copying. Processes (``kind="process"``) help when a processor is Python-heavy, and isolate the
decoders: a process that crashes fails only the input it held (see `featx.engine.pools`). The
caller may create the pool (and a `featx.engine.budget.PixelBudget`) itself and pass it in.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .budget import PixelBudget
from .pools import WorkerPool, WorkerStartError, make_pool
from .inputs import Input
from .shards import KeySet

__all__ = ["Prepared", "FeedStats", "prefetch", "prepare_only", "batched", "unique_inputs"]

_END = object()


@dataclass
class Prepared:
    """An input and either its prepared arrays or the error that preparing it raised."""

    input: Input
    arrays: Any = None
    error: BaseException | None = None


@dataclass
class FeedStats:
    """Counts kept by the feeder thread (read by the progress display)."""

    fed: int = 0
    skipped: int = 0  # already in the output
    skipped_failed: int = 0  # of those, written as error rows
    duplicates: int = 0  # seen earlier in this run
    finished: bool = False
    error: BaseException | None = field(default=None, repr=False)


def prepare_only(preparer: Any) -> Any:
    """A copy of an `Embedder`-like object without its model, cheap to pickle into processes.

    ``Embedder.prepare`` reads only the processor and modality settings, never the model."""
    make = getattr(preparer, "preparer", None)
    return make() if callable(make) else preparer


def unique_inputs(inputs: Iterable[Input], done: KeySet, failed: KeySet | None, stats: FeedStats,
                  limit: int | None, stop: threading.Event) -> Iterator[Input]:
    """Inputs not yet written and not seen before in this run; ``limit`` counts distinct inputs,
    done ones included, so re-running with the same --limit is a no-op."""
    seen = KeySet()  # this run's keys; 8 bytes each like ``done``
    for item in inputs:
        if stop.is_set() or (limit is not None and len(seen) >= limit):
            return
        if not seen.add(item.key):
            stats.duplicates += 1
        elif len(done) and item.key in done:
            stats.skipped += 1
            if failed is not None and len(failed) and item.key in failed:
                stats.skipped_failed += 1
        else:
            yield item




def prefetch(
    inputs: Iterable[Input],
    preparer: Any,
    *,
    done: KeySet,
    failed: KeySet | None = None,
    workers: int = 2,
    kind: str = "thread",
    ahead: int = 64,
    limit: int | None = None,
    stats: FeedStats | None = None,
    pool: WorkerPool | None = None,
    budget: PixelBudget | None = None,
    ahead_for: Callable[[int], int] | None = None,
) -> Iterator[Prepared]:
    """Yield `Prepared` items in input order, preparing up to ``ahead`` of them in advance.

    ``done`` holds keys to skip (already written), ``failed`` those of them written as errors
    (counted in ``stats.skipped_failed``). ``pool``: the caller's `featx.engine.pools` pool (it
    shuts it down); without one, a pool of ``workers`` of ``kind`` sharing ``budget`` is made here
    and shut down at the end. ``ahead_for``: the read-ahead for prepared inputs of the largest
    size seen so far in bytes (`featx.engine.budget.read_ahead`), capped at ``ahead``: fewer inputs
    wait when they turn out big. Closing the generator (or an exception in the consumer) stops the
    feeder and cancels pending work without waiting for work in progress.
    """
    stats = stats if stats is not None else FeedStats()
    own_pool = pool is None
    runner: WorkerPool = pool if pool is not None else make_pool(kind, preparer, workers, budget)
    futures: queue.Queue[Any] = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()
    waiting = [max(1, ahead)]  # lowered by the consumer (ahead_for) once it sees the inputs' size
    biggest = 0

    def put(item: Any) -> bool:
        while not stop.is_set():
            # lowered below the queue's own bound: wait here (a full queue blocks in put instead)
            if item is not _END and waiting[0] < ahead and futures.qsize() >= waiting[0]:
                stop.wait(0.01)
                continue
            try:
                futures.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def feed() -> None:
        try:
            for item in unique_inputs(inputs, done, failed, stats, limit, stop):
                fut = runner.submit(item.src)
                if not put((item, fut)):
                    fut.cancel()
                    return
                stats.fed += 1
        except BaseException as exc:  # a broken source (bad --column, unreadable list) ends the job
            stats.error = exc
        finally:
            stats.finished = True
            put(_END)

    feeder = threading.Thread(target=feed, name="featx-feed", daemon=True)
    feeder.start()
    try:
        while True:
            entry = futures.get()
            if entry is _END:
                break
            item, fut = entry
            try:
                arrays = fut.result()
            except WorkerStartError:  # no worker process can start: every input would fail too
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of one input becomes its error row
                yield Prepared(item, error=exc)
                continue
            if ahead_for is not None:
                size = _nbytes(arrays)
                if size > biggest:
                    biggest = size
                    waiting[0] = max(1, min(ahead, int(ahead_for(size))))
            yield Prepared(item, arrays=arrays)
        if stats.error is not None:
            raise stats.error
    finally:
        stop.set()
        while True:  # unblock the feeder and drop queued work
            try:
                entry = futures.get_nowait()
            except queue.Empty:
                break
            if entry is not _END:
                entry[1].cancel()
        feeder.join(timeout=1)  # a daemon thread: one stuck reading its inputs is left behind
        if own_pool:
            runner.shutdown()


def _nbytes(arrays: Any) -> int:
    """Bytes of one input's prepared arrays (a dict of arrays, or one array)."""
    values = arrays.values() if isinstance(arrays, dict) else [arrays]
    return sum(int(getattr(v, "nbytes", 0)) for v in values)


def batched(items: Iterator[Prepared], size: int) -> Iterator[list[Prepared]]:
    """Group consecutive items into lists of ``size`` (the last may be shorter)."""
    batch: list[Prepared] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

