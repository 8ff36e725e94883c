"""What every engine does around its scheduling: open the output, write rows, close the summary.

`open_output` checks the folder against the manifest (resume or refuse), repairs or drops error
rows as asked, and reads the keys already done; `shard_writer` starts numbering after the shards
there; `record` writes one input's rows and counts it; `finish` fills the summary and closes the
progress display. The local and Ray engines differ only in how inputs reach `record`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .jobs import Job
from .progress import Progress, Summary
from .state import (
    KeySet,
    load_done_keys,
    next_shard_index,
    prepare_output,
    repair_output,
)
from .writer import ShardWriter, drop_error_rows

__all__ = ["open_output", "shard_writer", "record", "finish"]


def open_output(out: str, manifest: dict[str, Any], opts: Any) -> tuple[KeySet, KeySet]:
    """Prepare ``out`` for a job with ``manifest`` (its lock already held); returns the keys
    already written and, of those, the ones written as errors."""
    prepare_output(out, manifest, overwrite=opts.overwrite)
    if opts.repair:
        repair_output(out)
    if opts.retry_failed:
        drop_error_rows(out)
    return load_done_keys(out)


def shard_writer(job: Job, out: str, manifest: dict[str, Any], opts: Any) -> ShardWriter:
    return ShardWriter(out, job.schema(), metadata=manifest, shard_size=opts.shard_size,
                       start_index=next_shard_index(out), npy=job.npy_columns())


def record(writer: ShardWriter, summary: Summary, outputs: Iterable[list[dict[str, Any]]]) -> None:
    """Write each input's rows and count it as done or failed (its first row says which)."""
    for rows in outputs:
        writer.add_rows(rows)
        if rows[0].get("error") is None:
            summary.done += 1
        else:
            summary.failed += 1


def finish(summary: Summary, writer: ShardWriter, progress: Progress, start: float) -> Summary:
    summary.rows = writer.rows_written
    summary.shards = len(writer.shards_written)
    summary.seconds = time.perf_counter() - start
    if not summary.interrupted:  # every input was seen: the exact total, whatever a count said
        progress.total = summary.done + summary.failed + summary.skipped + summary.duplicates
    if progress.mode == "bar":  # the bar's last state; log mode has the summary line
        progress.update(summary, force=True)
    progress.finish(summary)
    return summary
