"""Windows of a live stream, given out as soon as their last sample arrives.

The windows are those of `featx.audio.chunk` over the whole audio with
``chunk_length_s=window_s`` and ``stride_length_s=(window_s - hop_s, 0)``: each window is
``window_s`` long (rounded to whole samples) and starts ``hop_s`` after the previous one; the last
one (the stream ended inside it) is cut at the end. `featx.audio.chunk` waits for one sample
past a window to know whether it is the last; a live stream cannot wait, and for these windows
it need not: a full window is the same whether or not the audio goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..audio.chunking import window_params
from ..errors import ConfigError

__all__ = ["LiveWindow", "LiveWindows", "window_sizes"]


@dataclass(frozen=True)
class LiveWindow:
    """Window ``index`` of samples ``[start, end)``; ``read_at``: when its last sample was read."""

    index: int
    start: int
    end: int
    samples: np.ndarray
    read_at: float
    is_last: bool = False


def window_sizes(window_s: float, hop_s: float | None, rate: int) -> tuple[int, int]:
    """(window, hop) in samples, rounded as `featx.audio.chunking.window_params` rounds them."""
    hop_s = window_s if hop_s is None else hop_s
    if not hop_s > 0 or hop_s > window_s:
        raise ConfigError(f"--hop-s must be > 0 and at most --window-s ({window_s}), not {hop_s}")
    size, left, right = window_params(window_s, (window_s - hop_s, 0), rate)
    return size, size - left - right


class LiveWindows:
    """Feed blocks with `push`; it yields each window once complete. `finish` yields the last,
    short window when the stream ends inside one."""

    def __init__(self, size: int, hop: int) -> None:
        self.size, self.hop = size, hop
        self._buf = np.empty(0, np.float32)
        self._buf_start = 0  # sample offset of _buf[0]
        self._next = 0  # start of the next window
        self._seen = 0  # samples received
        self._index = 0

    def needed(self) -> int:
        """Samples still missing before the next window is complete."""
        return max(1, self._next + self.size - self._seen)

    def push(self, samples: np.ndarray, read_at: float) -> Iterator[LiveWindow]:
        if samples.size:
            self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
            self._seen += samples.size
        while self._seen >= self._next + self.size:
            lo = self._next - self._buf_start
            yield LiveWindow(self._index, self._next, self._next + self.size, self._buf[lo:lo + self.size].copy(),
                             read_at)
            self._index += 1
            self._next += self.hop
            drop = self._next - self._buf_start
            self._buf = self._buf[drop:]
            self._buf_start = self._next

    def finish(self, read_at: float) -> Iterator[LiveWindow]:
        # chunk() makes a short last window when samples remain past the last full window's start,
        # and when the stream is shorter than one window
        full_end = self._next - self.hop + self.size if self._index else 0
        if self._seen > self._next and (self._seen > full_end or self._index == 0):
            lo = self._next - self._buf_start
            yield LiveWindow(self._index, self._next, self._seen, self._buf[lo:].copy(), read_at, True)
