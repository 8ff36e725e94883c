"""Progress of a batch job: a bar on a terminal, plain log lines otherwise, and the final summary."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Summary", "Progress"]


@dataclass
class Summary:
    """What a job did. ``done`` counts inputs embedded (or preprocessed) successfully."""

    done: int = 0
    failed: int = 0
    skipped: int = 0  # already in the output from an earlier run
    skipped_failed: int = 0  # of those, error rows of an earlier run
    duplicates: int = 0  # listed more than once in this run
    rows: int = 0
    shards: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def throughput(self) -> float:
        return (self.done + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        earlier = f", {self.skipped_failed} of them failed" if self.skipped_failed else ""
        text = (f"done {self.done}, failed {self.failed}, skipped {self.skipped} (already written{earlier})"
                f"{f', duplicates {self.duplicates}' if self.duplicates else ''}; "
                f"{self.rows} rows in {self.shards} new shards; {self.seconds:.1f} s, "
                f"{self.throughput:.1f} files/s")
        return ("interrupted: " if self.interrupted else "") + text


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``mode``: "bar" (redrawn in place), "log" (a line every ``interval`` s), "none", or "auto"
    (bar when ``stream`` is a terminal, else log). ``total`` may be set later from another thread
    (inputs are counted in the background while the job runs)."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None, interval: float = 10.0,
                 unit: str = "files") -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "log"
        if mode not in ("bar", "log", "none"):
            raise ValueError(f"progress mode must be auto, bar, log or none, not {mode!r}")
        self.mode = mode
        self.interval = interval if mode == "log" else 0.2
        self.unit = unit
        self.total: int | None = None
        self.start = time.perf_counter()
        self._last = 0.0
        self._lock = threading.Lock()
        self._width = 0

    def _work(self, s: Summary) -> int | None:
        """Inputs this run has to process (the total less those skipped), when the total is known."""
        return None if self.total is None else max(0, self.total - s.skipped - s.duplicates)

    def _eta(self, s: Summary) -> str:
        """``processed/to do [elapsed<left, rate]``; inputs skipped as already written are counted
        beside it, not in it, so a re-run reads ``0/0 (3 skipped, already written)``."""
        processed = s.done + s.failed
        elapsed = time.perf_counter() - self.start
        rate = processed / elapsed if elapsed > 0 else 0.0
        work = self._work(s)
        skipped = f" ({s.skipped} skipped, already written)" if s.skipped else ""
        if work is None:
            return f"{processed}/?{skipped} [{_clock(elapsed)}, {rate:.1f} {self.unit}/s]"
        left = f"<{_clock(max(0, work - processed) / rate)}" if rate > 0 else ""
        return f"{processed}/{work}{skipped} [{_clock(elapsed)}{left}, {rate:.1f} {self.unit}/s]"

    def update(self, s: Summary, force: bool = False) -> None:
        if self.mode == "none":
            return
        now = time.perf_counter()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        extra = f" failed {s.failed}" if s.failed else ""
        with self._lock:
            if self.mode == "bar":
                pct = ""
                work = self._work(s)
                if work is not None:
                    frac = min(1.0, (s.done + s.failed) / work) if work else 1.0
                    filled = int(frac * 24)
                    pct = f"{frac * 100:3.0f}%|{'#' * filled}{' ' * (24 - filled)}| "
                text = f"\r{pct}{self._eta(s)}{extra}"
                pad = max(0, self._width - len(text))
                self._width = len(text)
                self.stream.write(text + " " * pad)
            else:
                self.stream.write(f"featx: {self._eta(s)}{extra}\n")
            self.stream.flush()

    def finish(self, s: Summary) -> None:
        """Print the final summary (also in mode "none": the summary is the job's result)."""
        with self._lock:
            if self.mode == "bar" and self._width:
                self.stream.write("\n")
            self.stream.write(f"featx: {s.line()}\n")
            self.stream.flush()
