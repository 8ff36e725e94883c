"""Dynamic batching: concurrent requests' inputs run through the model together.

An input goes ``submit`` -> (optionally) ``prepare`` in the caller's worker pool (decode +
preprocess, in parallel, while the model runs) -> the ready queue -> the model thread, which
takes up to ``max_batch`` ready inputs and runs them in one call. It waits for more only while
other inputs are still being prepared, and never longer than ``max_wait_s`` after the first ready
one: a lone request never waits, while under load the batches fill up.

Backpressure: at most ``max_queue`` inputs are in flight (submitted, not yet answered); beyond
that `submit` raises `QueueFull` at once (the service answers 503 with Retry-After). An input
whose caller gave up (`Ticket.abandon`, on a request timeout) is dropped before it is prepared or
run. `close` stops new work and lets everything in flight finish (graceful shutdown).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..errors import FeatxError

__all__ = ["Batcher", "Ticket", "QueueFull", "BatcherClosed", "Abandoned", "BatchStats"]


class QueueFull(FeatxError):
    """The batcher holds ``max_queue`` inputs already: try again later."""


class BatcherClosed(FeatxError):
    """The batcher is shutting down and takes no new inputs."""


class Abandoned(FeatxError):
    """The input's caller gave up (timed out) before it ran; its work was dropped."""


@dataclass
class Ticket:
    """One submitted input: its future result and when it entered the queue."""

    payload: Any
    future: Future[Any] = field(default_factory=Future)
    submitted: float = field(default_factory=time.perf_counter)
    ready_at: float = 0.0
    abandoned: bool = False
    preparing: Future[Any] | None = field(default=None, repr=False)

    def abandon(self) -> None:
        """Drop this input's work if it has not run yet (the caller stopped waiting): preparing
        it is cancelled unless a worker has started, and it never reaches the model."""
        self.abandoned = True
        if self.preparing is not None:
            self.preparing.cancel()


@dataclass
class BatchStats:
    """One model call, for the metrics."""

    size: int
    queue_s: list[float]  # per input: submit -> batch start
    model_s: float


# run(payloads) -> one outcome per payload: its result, or the exception it raised alone
RunBatch = Callable[[list[Any]], Sequence[Any]]


class Batcher:
    """Queue + model thread (see the module docstring).

    ``run``: the model call over a list of prepared payloads. ``pool``: a `featx.engine.pools`
    pool whose ``submit(src)`` prepares one input (None: payloads are ready as given, e.g. texts);
    the caller owns it. ``on_batch``: called with a `BatchStats` after each model call.
    """

    def __init__(self, run: RunBatch, *, pool: Any = None, max_batch: int = 32, max_wait_s: float = 0.01,
                 max_queue: int = 256, on_batch: Callable[[BatchStats], None] | None = None,
                 name: str = "featx-batch") -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_s >= 0")
        self._run = run
        self._pool = pool
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._cond = threading.Condition()
        self._ready: collections.deque[Ticket] = collections.deque()
        self._preparing = 0
        self._in_flight = 0
        self._closed = False
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ---- the callers' side ---------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Inputs in flight (being prepared, waiting, or running)."""
        return self._in_flight

    def submit_many(self, payloads: Sequence[Any]) -> list[Ticket]:
        """Queue all of ``payloads`` or none: `QueueFull` when they do not fit, `BatcherClosed`
        after `close`."""
        with self._cond:
            if self._closed:
                raise BatcherClosed("the service is shutting down")
            if self._in_flight + len(payloads) > self.max_queue:
                raise QueueFull(f"{self._in_flight} inputs are queued (at most {self.max_queue}); retry later")
            self._in_flight += len(payloads)
            tickets = [Ticket(p) for p in payloads]
            if self._pool is None:
                now = time.perf_counter()
                for t in tickets:
                    t.ready_at = now
                self._ready.extend(tickets)
                self._cond.notify()
            else:
                self._preparing += len(tickets)
        if self._pool is not None:
            for t in tickets:
                self._prepare(t)
        for t in tickets:
            t.future.add_done_callback(self._done)
        return tickets

    def submit(self, payload: Any) -> Ticket:
        return self.submit_many([payload])[0]

    def _done(self, _fut: Future[Any]) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def _prepare(self, ticket: Ticket) -> None:
        try:
            fut = self._pool.submit(ticket.payload)
        except BaseException as exc:  # noqa: BLE001 - a pool shut down under us fails this input
            self._prepared(ticket, None, exc)
            return
        ticket.preparing = fut

        def ready(f: Future[Any]) -> None:
            if f.cancelled():
                self._prepared(ticket, None, Abandoned("cancelled before it was prepared"))
            elif f.exception() is not None:
                self._prepared(ticket, None, f.exception())
            else:
                self._prepared(ticket, f.result(), None)

        fut.add_done_callback(ready)

    def _prepared(self, ticket: Ticket, arrays: Any, exc: BaseException | None) -> None:
        with self._cond:
            self._preparing -= 1
            if exc is None and not ticket.abandoned:
                ticket.payload = arrays
                ticket.ready_at = time.perf_counter()
                self._ready.append(ticket)
            self._cond.notify_all()
        if exc is not None:
            _settle(ticket, exc=exc)
        elif ticket.abandoned:
            _settle(ticket, exc=Abandoned("the request timed out before this input ran"))

    # ---- the model thread ----------------------------------------------------------------------
    def _take(self) -> list[Ticket] | None:
        """The next batch (None when closed and drained)."""
        with self._cond:
            while not self._ready:
                if self._closed and self._preparing == 0:
                    return None
                self._cond.wait(0.5)
            deadline = self._ready[0].ready_at + self.max_wait_s
            # more inputs are on their way (being decoded): give them until the deadline
            while len(self._ready) < self.max_batch and self._preparing > 0:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch, len(self._ready))
            return [self._ready.popleft() for _ in range(n)]

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                break
            live = []
            for t in batch:
                if t.abandoned:
                    _settle(t, exc=Abandoned("the request timed out before this input ran"))
                else:
                    live.append(t)
            if live:
                self._run_batch(live)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _run_batch(self, batch: list[Ticket]) -> None:
        start = time.perf_counter()
        try:
            outcomes = list(self._run([t.payload for t in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"the model gave {len(outcomes)} outcomes for {len(batch)} inputs")
        except BaseException as exc:  # noqa: BLE001 - e.g. out of memory: every input of the batch fails
            outcomes = [exc] * len(batch)
        took = time.perf_counter() - start
        for t, outcome in zip(batch, outcomes):
            t.payload = None  # the arrays can go now
            if isinstance(outcome, BaseException):
                _settle(t, exc=outcome)
            else:
                _settle(t, result=outcome)
        if self._on_batch is not None:
            try:
                self._on_batch(BatchStats(len(batch), [start - t.submitted for t in batch], took))
            except Exception:  # noqa: BLE001, S110 - metrics never break serving
                pass

    # ---- shutting down --------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> bool:
        """Take no new inputs, finish those in flight, stop the model thread. Returns whether
        everything finished within ``timeout`` seconds."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _settle(ticket: Ticket, *, result: Any = None, exc: BaseException | None = None) -> None:
    if ticket.future.done():
        return
    try:
        if exc is not None:
            ticket.future.set_exception(exc)
        else:
            ticket.future.set_result(result)
    except Exception:  # noqa: BLE001, S110 - settled concurrently (InvalidStateError)
        pass
