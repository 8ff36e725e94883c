"""The prefetching pool's bookkeeping (order, errors, skips, bounds), with a trivial preparer: a
model adds nothing to what these tests check (the end-to-end tests in tests/test_cli*.py use one)."""

import os
import threading
import time

import pytest

from featx.engine.inputs import Input
from featx.engine.state import KeySet
from featx.engine.workers import FeedStats, batched, prefetch
from featx.errors import InputError


class Square:
    """prepare(src) -> {"x": n*n}; "bad*" sources raise InputError; tracks concurrency."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.lock = threading.Lock()
        self.started = 0
        self.active = 0
        self.peak = 0

    def __getstate__(self):
        return {"delay": self.delay}

    def __setstate__(self, state):
        self.__init__(state["delay"])

    def prepare(self, src):
        if hasattr(self, "lock"):
            with self.lock:
                self.started += 1
                self.active += 1
                self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay)
            if str(src).startswith("bad"):
                raise InputError("cannot decode", source=src)
            return {"x": int(src) ** 2, "pid": os.getpid()}
        finally:
            if hasattr(self, "lock"):
                with self.lock:
                    self.active -= 1


def _inputs(keys):
    return [Input(str(k), str(k)) for k in keys]


def test_results_in_input_order_with_errors_as_items():
    keys = [5, 3, "bad1", 9, 1, "bad2", 7]
    got = list(prefetch(_inputs(keys), Square(), done=KeySet(), workers=3, ahead=4))
    assert [p.input.key for p in got] == [str(k) for k in keys]
    assert [p.arrays["x"] if p.error is None else None for p in got] == [25, 9, None, 81, 1, None, 49]
    assert isinstance(got[2].error, InputError) and "bad1" in str(got[2].error)


def test_skips_done_and_duplicates_and_counts_them():
    done = KeySet()
    done.update(["2", "4"])
    stats = FeedStats()
    got = list(prefetch(_inputs([1, 2, 3, 3, 4, 1, 5]), Square(), done=done, workers=2, stats=stats))
    assert [p.input.key for p in got] == ["1", "3", "5"]
    assert (stats.skipped, stats.duplicates, stats.fed) == (2, 2, 3)


def test_limit_counts_distinct_inputs_including_done_ones():
    done = KeySet()
    done.update(["1"])
    got = list(prefetch(_inputs([1, 1, 2, 3, 4]), Square(), done=done, limit=3))
    assert [p.input.key for p in got] == ["2", "3"]


def test_read_ahead_is_bounded_and_overlaps_with_the_consumer():
    prep = Square(delay=0.002)
    it = prefetch(_inputs(range(200)), prep, done=KeySet(), workers=2, ahead=8)
    first = next(it)
    time.sleep(0.3)  # the consumer is busy (the model): workers fill the read-ahead, no more
    assert first.input.key == "0"
    assert 8 <= prep.started <= 8 + 2 + 1
    assert prep.peak <= 2
    rest = list(it)
    assert len(rest) == 199 and prep.started == 200


def test_closing_early_stops_the_feeder():
    prep = Square(delay=0.001)
    it = prefetch(_inputs(range(100_000)), prep, done=KeySet(), workers=2, ahead=4)
    assert next(it).input.key == "0"
    it.close()
    started = prep.started
    time.sleep(0.2)
    assert prep.started == started < 50
    assert not [t for t in threading.enumerate() if t.name == "featx-feed"]


def test_a_broken_source_ends_the_job_with_its_error():
    def inputs():
        yield Input("1", "1")
        raise InputError("column 'x' not found", source="data.parquet")

    it = prefetch(inputs(), Square(), done=KeySet())
    assert next(it).input.key == "1"
    with pytest.raises(InputError, match="column 'x'"):
        next(it)


def test_process_workers_give_the_same_results():
    keys = [4, "bad", 2, 8, 6]
    got = list(prefetch(_inputs(keys), Square(), done=KeySet(), workers=2, kind="process", ahead=4))
    assert [p.arrays["x"] if p.error is None else "err" for p in got] == [16, "err", 4, 64, 36]
    assert {p.arrays["pid"] for p in got if p.error is None} - {os.getpid()}  # ran in other processes
    assert "cannot decode" in str(got[1].error)


def test_batched_groups_in_order():
    assert [[x for x in b] for b in batched(iter(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
