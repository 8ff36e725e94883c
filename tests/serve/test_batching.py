"""The dynamic batcher: batch sizes, waiting, backpressure, abandoned work, errors, draining."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from featx.serve.batching import Abandoned, Batcher, BatcherClosed, QueueFull


class Recorder:
    """A model call that records its batches; ``gate`` holds it until set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list] = []
        self.gate = gate

    def __call__(self, payloads):
        self.batches.append(list(payloads))
        if self.gate is not None:
            self.gate.wait(10)
        return [p * 10 if isinstance(p, int) else ValueError(f"bad {p!r}") for p in payloads]


class ManualPool:
    """A worker pool whose preparations finish when the test says so."""

    def __init__(self) -> None:
        self.pending: list[tuple[Future, object]] = []
        self.lock = threading.Lock()

    def submit(self, src):
        fut: Future = Future()
        with self.lock:
            self.pending.append((fut, src))
        return fut

    def finish(self, n=None, fail=False):
        with self.lock:
            todo, self.pending = (self.pending[:n], self.pending[n:]) if n is not None else (self.pending, [])
        for fut, src in todo:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(ValueError("cannot decode")) if fail else fut.set_result(src)


def test_a_burst_is_cut_into_batches_of_max_batch():
    gate = threading.Event()
    run = Recorder(gate)
    b = Batcher(run, max_batch=4, max_wait_s=0.0)
    first = b.submit(0)  # occupies the model while the rest queue up
    assert _wait(lambda: len(run.batches) == 1)
    tickets = b.submit_many(list(range(1, 11)))
    gate.set()
    assert [t.future.result(5) for t in tickets] == [i * 10 for i in range(1, 11)]
    assert first.future.result(5) == 0
    assert [len(x) for x in run.batches] == [1, 4, 4, 2]
    assert b.close(5)


@pytest.mark.parametrize("max_batch", [1, 3, 32])
def test_every_input_gets_its_own_result_in_any_batching(max_batch):
    run = Recorder()
    b = Batcher(run, max_batch=max_batch, max_wait_s=0.001)
    results = {}

    def client(c):
        for i in range(20):
            results[(c, i)] = b.submit(c * 100 + i).future.result(10)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {(c, i): (c * 100 + i) * 10 for c in range(6) for i in range(20)}
    assert max(len(x) for x in run.batches) <= max_batch
    assert b.depth == 0 and b.close(5)


def test_a_lone_input_does_not_wait_for_max_wait():
    run = Recorder()
    b = Batcher(run, max_batch=32, max_wait_s=5.0)
    start = time.perf_counter()
    assert b.submit(1).future.result(10) == 10
    assert time.perf_counter() - start < 2.0
    b.close(5)


def test_the_batch_waits_for_inputs_still_being_prepared_until_max_wait():
    pool = ManualPool()
    run = Recorder()
    b = Batcher(run, pool=pool, max_batch=8, max_wait_s=0.5)
    tickets = b.submit_many([1, 2, 3])
    pool.finish(1)  # one ready, two still decoding: the batch waits for them
    time.sleep(0.1)
    pool.finish()
    assert [t.future.result(5) for t in tickets] == [10, 20, 30]
    assert [len(x) for x in run.batches] == [3]
    # ... but not longer than max_wait
    more = b.submit_many([4, 5])
    pool.finish(1)
    started = time.perf_counter()
    assert more[0].future.result(5) == 40
    assert 0.3 < time.perf_counter() - started < 3.0
    pool.finish()
    assert more[1].future.result(5) == 50
    b.close(5)


def test_a_full_queue_refuses_the_whole_request_and_frees_up():
    gate = threading.Event()
    b = Batcher(Recorder(gate), max_batch=2, max_queue=3)
    held = b.submit_many([1, 2])
    with pytest.raises(QueueFull, match="at most 3"):
        b.submit_many([3, 4])  # all or nothing
    assert b.depth == 2
    third = b.submit(3)
    with pytest.raises(QueueFull):
        b.submit(4)
    gate.set()
    assert [t.future.result(5) for t in (*held, third)] == [10, 20, 30]
    assert _wait(lambda: b.depth == 0)
    assert b.submit(5).future.result(5) == 50
    b.close(5)


def test_abandoned_inputs_never_reach_the_model():
    gate = threading.Event()
    run = Recorder(gate)
    b = Batcher(run, max_batch=4)
    busy = b.submit(1)
    assert _wait(lambda: len(run.batches) == 1)
    dropped = b.submit_many([2, 3])
    kept = b.submit(4)
    for t in dropped:
        t.abandon()
    gate.set()
    assert busy.future.result(5) == 10 and kept.future.result(5) == 40
    for t in dropped:
        with pytest.raises(Abandoned):
            t.future.result(5)
    assert [p for batch in run.batches for p in batch] == [1, 4]
    b.close(5)


def test_abandoned_inputs_are_not_prepared_either():
    pool = ManualPool()
    b = Batcher(Recorder(), pool=pool)
    (t,) = b.submit_many([7])
    t.abandon()
    assert pool.pending[0][0].cancelled()
    with pytest.raises(Abandoned):
        t.future.result(5)
    assert _wait(lambda: b.depth == 0)
    b.close(5)


def test_errors_stay_with_their_input():
    pool = ManualPool()
    run = Recorder()
    b = Batcher(run, pool=pool, max_wait_s=0.2)
    tickets = b.submit_many([1, "x", 3])
    pool.finish(1, fail=True)  # input 1 cannot be decoded
    pool.finish()
    with pytest.raises(ValueError, match="cannot decode"):
        tickets[0].future.result(5)
    with pytest.raises(ValueError, match="bad 'x'"):
        tickets[1].future.result(5)
    assert tickets[2].future.result(5) == 30
    b.close(5)


def test_a_failing_model_call_fails_its_batch_only():
    calls = []

    def run(payloads):
        calls.append(payloads)
        if len(calls) == 1:
            raise MemoryError("out of memory")
        return [p for p in payloads]

    b = Batcher(run)
    with pytest.raises(MemoryError):
        b.submit(1).future.result(5)
    assert b.submit(2).future.result(5) == 2
    b.close(5)


def test_close_finishes_the_work_in_flight_then_refuses_more():
    gate = threading.Event()
    run = Recorder(gate)
    b = Batcher(run, max_batch=2)
    tickets = b.submit_many([1, 2, 3, 4, 5])
    closer = threading.Thread(target=b.close, args=(10,))
    closer.start()
    time.sleep(0.1)
    with pytest.raises(BatcherClosed):
        b.submit(6)
    gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert [t.future.result(0) for t in tickets] == [10, 20, 30, 40, 50]


def test_settings_are_checked():
    with pytest.raises(ValueError):
        Batcher(Recorder(), max_batch=0)
    with pytest.raises(ValueError):
        Batcher(Recorder(), max_queue=0)


def _wait(check, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.005)
    return False
