"""The local engine: one process, worker threads (or processes) preparing ahead of the model.

Flow: sources (lazy) -> skip done/duplicates -> prepare in workers (bounded read-ahead) -> batches ->
job.rows (the model) -> ShardWriter (atomic shards). Memory is bounded by the read-ahead, one shard
of rows and the done-key set (8 bytes per input, see `featx.engine.state`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from ..errors import InputError
from .bookkeeping import finish, open_output, record, shard_writer
from .budget import PixelBudget, available_memory, pixels_for_memory, read_ahead
from .inputs import count_inputs, describe_specs, iter_inputs
from .interrupts import StopSignals
from .jobs import Job
from .lock import OutputLock
from .pools import make_pool
from .progress import Progress, Summary
from .workers import FeedStats, Prepared, batched, prefetch

__all__ = ["RunOptions", "run"]


@dataclass
class RunOptions:
    """How to run a job; none of these change its output (so none are identity fields)."""

    batch_size: int = 16
    workers: int = 2
    worker_kind: str = "thread"
    shard_size: int = 8192
    limit: int | None = None
    overwrite: bool = False
    retry_failed: bool = False
    repair: bool = False  # move damaged shards to OUT/_bad/ and compute their inputs again
    column: str | None = None
    extensions: frozenset[str] | None = None
    progress: str = "auto"
    progress_interval: float = 10.0
    ahead: int | None = None  # prepared inputs waiting for the model (None: by batch, workers and memory)
    # decoded pixels held by all workers at once ("auto": by the memory available, see
    # featx.engine.budget.pixels_for_memory; None: no cap)
    max_pixels_in_flight: int | str | None = "auto"


def _count_in_background(specs: Sequence[str], opts: RunOptions, progress: Progress) -> None:
    def count() -> None:
        try:
            total = count_inputs(specs, column=opts.column, extensions=opts.extensions)
        except Exception:  # noqa: BLE001 - the count only feeds the ETA; the job reports real errors
            return
        progress.total = min(total, opts.limit) if opts.limit is not None else total

    if progress.mode != "none":
        threading.Thread(target=count, name="featx-count", daemon=True).start()


def _with_listing_errors(items: Iterator[Prepared]) -> Iterator[Prepared]:
    """An input that failed before decoding (a folder that cannot be listed) gets its own error."""
    for p in items:
        yield Prepared(p.input, error=InputError(p.input.error)) if p.input.error is not None else p


def run(job: Job, specs: Sequence[str], out: str, opts: RunOptions | None = None,
        *, stream: TextIO | None = None) -> Summary:
    """Run ``job`` (see `featx.engine.jobs`) over the inputs ``specs`` into the folder ``out``.

    Returns the `Summary`; raises `featx.ConfigError` when ``out`` holds another job's output. A
    KeyboardInterrupt (SIGINT; SIGTERM where the caller made it raise one, as the CLI does) writes
    the rows finished so far and returns with ``interrupted`` set, without waiting for workers
    stuck in a blocking read (worker processes are killed). The job holds ``out``'s lock
    (`featx.engine.lock`): while another process writes ``out``, it refuses with `ConfigError`.
    """
    with OutputLock(out):
        return _run_locked(job, specs, out, opts or RunOptions(), stream=stream)


def _run_locked(job: Job, specs: Sequence[str], out: str, opts: RunOptions, *, stream: TextIO | None) -> Summary:
    start = time.perf_counter()
    manifest = {**job.manifest(), **describe_specs(specs)}
    done, failed_before = open_output(out, manifest, opts)
    writer = shard_writer(job, out, manifest, opts)
    progress = Progress(opts.progress, stream, interval=opts.progress_interval)
    _count_in_background(specs, opts, progress)
    stats = FeedStats()
    summary = Summary()
    available = available_memory()
    ahead = opts.ahead or read_ahead(opts.batch_size, opts.workers)
    # without a fixed read-ahead, the queue shrinks once prepared inputs turn out big (long audio)
    ahead_for = None if opts.ahead else (lambda b: read_ahead(opts.batch_size, opts.workers, b, available))
    pixels = pixels_for_memory(available) if opts.max_pixels_in_flight == "auto" else opts.max_pixels_in_flight
    budget = PixelBudget(int(pixels)) if pixels else None
    pool = make_pool(opts.worker_kind, job.preparer, opts.workers, budget)  # shut down below, not joined
    items = prefetch(iter_inputs(specs, column=opts.column, extensions=opts.extensions), job.preparer,
                     done=done, failed=failed_before, ahead=ahead, limit=opts.limit, stats=stats, pool=pool,
                     ahead_for=ahead_for)
    signals = StopSignals()  # a stop signal never lands halfway through writing rows
    failed = True
    try:
        signals.install()
        for batch in batched(_with_listing_errors(items), opts.batch_size):
            outputs = job.rows(batch)  # the model: a signal stops it at once
            with signals.deferred():
                record(writer, summary, outputs)
                summary.skipped, summary.duplicates = stats.skipped, stats.duplicates
                summary.skipped_failed = stats.skipped_failed
                progress.update(summary)
        failed = False
    except KeyboardInterrupt:
        summary.interrupted = True
        failed = False
    finally:
        with signals.finishing():  # a second signal does not cut the last shard short
            items.close()
            pool.shutdown()
            try:
                writer.close()  # finished rows are kept, also when the job stops early
            except Exception:
                if not failed:
                    raise
    summary.skipped, summary.duplicates = stats.skipped, stats.duplicates
    summary.skipped_failed = stats.skipped_failed
    return finish(summary, writer, progress, start)
