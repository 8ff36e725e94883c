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
from typing import Any, TextIO

from ..errors import InputError
from .budget import DEFAULT_PIXELS_IN_FLIGHT, PixelBudget
from .interrupts import StopSignals
from .lock import OutputLock
from .pools import make_pool
from .progress import Progress, Summary
from .sources import count_inputs, describe_specs, iter_inputs
from .state import load_done_keys, next_shard_index, prepare_output, repair_output
from .workers import FeedStats, Prepared, batched, prefetch
from .writer import ShardWriter, drop_error_rows

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
    ahead: int | None = None
    max_pixels_in_flight: int | None = DEFAULT_PIXELS_IN_FLIGHT  # decoded pixels held by all workers at once


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


def run(job: Any, specs: Sequence[str], out: str, opts: RunOptions | None = None,
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


def _run_locked(job: Any, specs: Sequence[str], out: str, opts: RunOptions, *, stream: TextIO | None) -> Summary:
    start = time.perf_counter()
    manifest = {**job.manifest(), **describe_specs(specs)}
    prepare_output(out, manifest, overwrite=opts.overwrite)
    if opts.repair:
        repair_output(out)
    if opts.retry_failed:
        drop_error_rows(out)
    done, failed_before = load_done_keys(out)
    writer = ShardWriter(out, job.schema(), metadata=manifest, shard_size=opts.shard_size,
                         start_index=next_shard_index(out), npy=job.npy_columns())
    progress = Progress(opts.progress, stream, interval=opts.progress_interval)
    _count_in_background(specs, opts, progress)
    stats = FeedStats()
    summary = Summary()
    ahead = opts.ahead or max(2 * opts.batch_size, 4 * opts.workers)
    budget = PixelBudget(opts.max_pixels_in_flight) if opts.max_pixels_in_flight else None
    pool = make_pool(opts.worker_kind, job.preparer, opts.workers, budget)  # shut down below, not joined
    items = prefetch(iter_inputs(specs, column=opts.column, extensions=opts.extensions), job.preparer,
                     done=done, failed=failed_before, ahead=ahead, limit=opts.limit, stats=stats, pool=pool)
    signals = StopSignals()  # a stop signal never lands halfway through writing rows
    failed = True
    try:
        signals.install()
        for batch in batched(_with_listing_errors(items), opts.batch_size):
            outputs = job.rows(batch)  # the model: a signal stops it at once
            with signals.deferred():
                for rows in outputs:
                    writer.add_rows(rows)
                    if rows[0].get("error") is None:
                        summary.done += 1
                    else:
                        summary.failed += 1
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
    summary.rows = writer.rows_written
    summary.shards = len(writer.shards_written)
    summary.seconds = time.perf_counter() - start
    if not summary.interrupted:  # every input was seen: the exact total, whatever the count thread did
        progress.total = summary.done + summary.failed + summary.skipped + summary.duplicates
    if progress.mode == "bar":  # the bar's last state; log mode has the summary line
        progress.update(summary, force=True)
    progress.finish(summary)
    return summary
