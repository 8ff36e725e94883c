"""`PixelBudget`: a cap on the decoded image pixels held at once by all of a job's workers.

An image near the pixel cap (an 82 MP WebP) takes about 1.6 GB from decode to the end of
preprocessing; N workers decoding such images together would take N times that. The engine creates
one budget per job and passes it down (`featx.engine.pools` -> ``prepare(src, budget=...)`` ->
``load_image(..., pixel_budget=hold)``). Each input takes a `PixelHold`; `load_image` takes the
image's declared size from it once the header is read (before decoding), and the pixels go back
when the hold ends, after preprocessing. Waiters are served first come, first served, and an
image larger than the whole budget waits until it is alone, then runs.

Process workers use the same budget, held by the parent process: a worker asks over its pipe
(see `featx.engine.pools`), and a worker that dies gives back what it held.

`pixels_for_memory` and `read_ahead` size a job's budget and its queue of prepared inputs by the
memory the machine has free, so a small machine (or container) does not hold more than it can.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from types import TracebackType

__all__ = ["PixelBudget", "PixelHold", "DEFAULT_PIXELS_IN_FLIGHT", "available_memory", "pixels_for_memory",
           "read_ahead"]

# Two images at load_image's default cap (about 89.5 MP each, a few GB decoded): ordinary photos
# (12-50 MP) never wait, N workers on near-cap images no longer multiply the peak by N.
DEFAULT_PIXELS_IN_FLIGHT = 2 * int(1024 * 1024 * 1024 // 4 // 3)
# Peak bytes per decoded pixel from decode to the end of preprocessing (about 1.6 GB for 89.5 MP:
# the RGB decode, Pillow's RGBX copy, the resize's intermediate rows).
PEAK_BYTES_PER_PIXEL = 18
# Never below one 24 MP photo: smaller budgets would only serialise ordinary photos.
MIN_PIXELS_IN_FLIGHT = 24_000_000
MEMORY_SHARE = 0.25  # of the memory available at the start, for decoded pixels in flight
QUEUE_SHARE = 0.125  # of it, for prepared inputs waiting for the model


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``, within a cgroup v2 limit), or None."""
    found = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            used = int(fh.read().strip())
        if limit != "max" and found is not None:
            found = min(found, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return found


def pixels_for_memory(available: int | None = None) -> int:
    """The pixel budget for a job: `DEFAULT_PIXELS_IN_FLIGHT`, less where a quarter of the
    ``available`` memory (default: measured now) cannot hold that many pixels at their peak, but
    never under `MIN_PIXELS_IN_FLIGHT`."""
    available = available_memory() if available is None else available
    if available is None:
        return DEFAULT_PIXELS_IN_FLIGHT
    fits = int(available * MEMORY_SHARE) // PEAK_BYTES_PER_PIXEL
    return max(MIN_PIXELS_IN_FLIGHT, min(DEFAULT_PIXELS_IN_FLIGHT, fits))


def read_ahead(batch_size: int, workers: int, item_bytes: int | None = None, available: int | None = None) -> int:
    """How many prepared inputs may wait for the model: two batches (one ready while the model runs
    the other) and four per worker, fewer where ``item_bytes`` each (one input's prepared arrays,
    when known) would take more than an eighth of the ``available`` memory, never under one batch
    plus one per worker (below that the model would wait for the workers)."""
    wanted = max(2 * batch_size, 4 * workers)
    floor = batch_size + workers
    if not item_bytes:
        return wanted
    available = available_memory() if available is None else available
    if available is None:
        return wanted
    fits = int(available * QUEUE_SHARE) // max(1, int(item_bytes))
    return max(floor, min(wanted, fits))


class PixelBudget:
    """At most ``max_pixels`` decoded pixels in flight (one image larger than that runs alone).

    Thread-safe; create it in the caller that starts the workers and pass it down."""

    def __init__(self, max_pixels: int) -> None:
        if int(max_pixels) < 1:
            raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
        self.max_pixels = int(max_pixels)
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()  # waiters, first come first served
        self._in_flight = 0
        self.peak = 0  # the most pixels held at once (for tests and measurements)

    @property
    def in_flight(self) -> int:
        """Pixels held now."""
        with self._cond:
            return self._in_flight

    def _fits(self, pixels: int) -> bool:
        return self._in_flight == 0 or self._in_flight + pixels <= self.max_pixels

    def acquire(self, pixels: int) -> None:
        """Wait until ``pixels`` fit (or nothing else is held), then hold them."""
        pixels = max(0, int(pixels))
        me = object()
        with self._cond:
            self._queue.append(me)
            try:
                while self._queue[0] is not me or not self._fits(pixels):
                    self._cond.wait()
            finally:
                self._queue.remove(me)
                self._cond.notify_all()  # the next in line may fit too (or may now be first)
            self._in_flight += pixels
            self.peak = max(self.peak, self._in_flight)

    def release(self, pixels: int) -> None:
        """Give back ``pixels`` taken with `acquire`."""
        with self._cond:
            self._in_flight -= max(0, int(pixels))
            if self._in_flight < 0:
                self._in_flight = 0
                raise RuntimeError("PixelBudget.release: more pixels released than acquired")
            self._cond.notify_all()

    def hold(self) -> PixelHold:
        """A hold for one input: ``with budget.hold() as h: load_image(src, pixel_budget=h); ...``."""
        return PixelHold(self)


class PixelHold:
    """The pixels one input holds: taken once (by `load_image`), given back when the hold ends."""

    def __init__(self, budget: PixelBudget) -> None:
        self._budget = budget
        self.pixels = 0
        self._taken = False

    def take(self, pixels: int) -> None:
        """Wait for ``pixels`` from the budget; once per hold (one image), so no hold waits for
        more while holding some, which could deadlock two workers."""
        if self._taken:
            raise RuntimeError("a PixelHold takes pixels once; use one hold per image")
        self._taken = True
        self._budget.acquire(pixels)
        self.pixels = max(0, int(pixels))

    def release(self) -> None:
        """Give the pixels back (also done on leaving the ``with`` block)."""
        pixels, self.pixels = self.pixels, 0
        if pixels:
            self._budget.release(pixels)

    def __enter__(self) -> PixelHold:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
