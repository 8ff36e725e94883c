"""Read-ahead and the decoded-pixel budget sized by memory (featx.engine.budget), and the prefetch
queue shrinking once prepared inputs turn out big."""

from __future__ import annotations

import threading
import time

import numpy as np

from featx.engine import budget as B
from featx.engine.inputs import Input
from featx.engine.local import RunOptions
from featx.engine.shards import KeySet
from featx.engine.workers import prefetch

GB = 1024**3


def test_pixel_budget_follows_the_memory_available(monkeypatch):
    assert B.pixels_for_memory(64 * GB) == B.DEFAULT_PIXELS_IN_FLIGHT  # plenty: the default
    two = B.pixels_for_memory(2 * GB)  # a quarter of 2 GB at 18 bytes per pixel
    assert two == int(2 * GB * B.MEMORY_SHARE) // B.PEAK_BYTES_PER_PIXEL < B.DEFAULT_PIXELS_IN_FLIGHT
    assert B.pixels_for_memory(100 * 1024 * 1024) == B.MIN_PIXELS_IN_FLIGHT  # never below one big photo
    monkeypatch.setattr(B, "available_memory", lambda: None)  # unknown (not Linux): the default
    assert B.pixels_for_memory() == B.DEFAULT_PIXELS_IN_FLIGHT


def test_available_memory_is_a_plausible_number():
    got = B.available_memory()
    assert got is None or 0 <= got < 1 << 50


def test_read_ahead_by_batch_workers_and_item_size():
    assert B.read_ahead(16, 2) == 32 and B.read_ahead(4, 8) == 32
    assert B.read_ahead(16, 2, item_bytes=600_000, available=8 * GB) == 32  # 224x224 pixels: no limit
    # 115 MB per input (an hour of audio in Whisper windows) on 1 GB free: one batch plus the workers
    assert B.read_ahead(16, 2, item_bytes=115_000_000, available=GB) == 18
    assert B.read_ahead(16, 2, item_bytes=5_000_000, available=GB) == 26  # an eighth of 1 GB / 5 MB


def test_run_options_size_the_budget_by_memory_by_default():
    assert RunOptions().max_pixels_in_flight == "auto" and RunOptions().ahead is None


class Big:
    """Prepares 1 MB per input, instantly; counts the inputs started."""

    def __init__(self) -> None:
        self.started = 0
        self.lock = threading.Lock()

    def prepare(self, src, budget=None):
        with self.lock:
            self.started += 1
        return {"x": np.zeros(1 << 20, np.uint8)}


def _most_in_flight(ahead_for) -> int:
    prep = Big()
    inputs = [Input(key=str(i), src=str(i)) for i in range(60)]
    worst = 0
    for i, item in enumerate(prefetch(inputs, prep, done=KeySet(), workers=2, ahead=16, ahead_for=ahead_for)):
        assert item.error is None
        time.sleep(0.01)  # a slow model: the feeder fills the queue meanwhile
        if i >= 20:  # the first inputs were submitted before any size was known; the queue drains by then
            worst = max(worst, prep.started - (i + 1))
    return worst


def test_prefetch_queue_shrinks_for_big_items():
    seen = []

    def ahead_for(nbytes: int) -> int:
        seen.append(nbytes)
        return 2

    assert _most_in_flight(None) >= 10  # without it the feeder runs 16 ahead
    assert _most_in_flight(ahead_for) <= 4  # two waiting, plus the one being handed over and one submitted
    assert seen and seen[0] == 1 << 20
