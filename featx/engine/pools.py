"""Worker pools that prepare inputs, built so that no input can stop or hang the job.

``pool.submit(src)`` returns a `concurrent.futures.Future` of ``preparer.prepare(src)``;
``pool.shutdown()`` cancels what has not started and returns at once, without waiting for work
in progress. The caller (the engine) creates the pool and shuts it down.

`ThreadPool`: daemon threads. A thread stuck in a blocking read cannot be killed, but it no
longer holds up the end of the job: nothing joins it, and the interpreter exits without it.
(`concurrent.futures.ThreadPoolExecutor` joins its threads at exit, so one hung download kept a
stopped job alive.)

`ProcessPool`: one spawned process per worker, each preparing one input at a time. A process
that dies (a decoder's segfault, the OOM killer) fails only the input it held, with
`WorkerDied` ("worker process died (signal 11) while decoding this input"); a new process
takes its place and the job goes on. This is how to isolate untrusted media (``--worker-type
process``). Workers ignore SIGINT and SIGTERM (the parent decides when the job stops);
`shutdown` kills them.
"""

from __future__ import annotations

import inspect
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol

from ..errors import FeatxError, InputError
from .budget import PixelBudget

__all__ = ["WorkerPool", "ThreadPool", "ProcessPool", "WorkerDied", "WorkerError", "WorkerStartError", "make_pool",
           "bind_prepare"]


class WorkerPool(Protocol):
    """What the engine needs of a pool."""

    def submit(self, src: Any) -> Future[Any]: ...

    def shutdown(self) -> None: ...


class WorkerDied(InputError):
    """The worker process preparing an input died (a crash in a decoder, or killed)."""

    def __init__(self, exitcode: int | None, source: object | None = None) -> None:
        if exitcode is None:
            how = "died"
        elif exitcode < 0:
            how = f"died (signal {-exitcode})"
        else:
            how = f"exited with status {exitcode}"
        super().__init__(f"worker process {how} while decoding this input", source=source)
        self.exitcode = exitcode


class WorkerStartError(FeatxError):
    """A worker process could not start (its preparer cannot be loaded there): every input would
    fail the same way, so the job stops."""


class WorkerError(FeatxError):
    """An error raised in a worker process that could not be sent back as itself (its text is kept)."""


def bind_prepare(preparer: Any, budget: PixelBudget | Any | None) -> Callable[[Any], Any]:
    """``preparer.prepare`` with the budget passed as ``budget=`` (when given and taken)."""
    prepare = preparer.prepare
    if budget is None:
        return prepare  # type: ignore[no-any-return]
    try:
        takes = "budget" in inspect.signature(prepare).parameters
    except (TypeError, ValueError):
        takes = False
    return (lambda src: prepare(src, budget=budget)) if takes else prepare  # type: ignore[no-any-return]


def _label(src: Any) -> str | None:
    return src if isinstance(src, str) else None


def _cancel_queued(tasks: queue.SimpleQueue[Any]) -> None:
    while True:
        try:
            task = tasks.get_nowait()
        except queue.Empty:
            return
        if task is not None:
            task[0].cancel()


class _QueuePool:
    """What both pools share: a task queue served by daemon threads, and `submit`."""

    def _serve(self, target: Callable[..., None], prefix: str, workers: int) -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=_marked(target), args=(i,), name=f"{prefix}-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def _started(self) -> Iterator[tuple[Future[Any], Any]]:
        """``(future, src)`` of each queued task this thread now runs (cancelled ones are
        skipped), until `_drain` tells the thread to stop."""
        while True:
            task = self._tasks.get()
            if task is None:
                return
            if task[0].set_running_or_notify_cancel():
                yield task

    def submit(self, src: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("submit after shutdown")
        fut: Future[Any] = Future()
        self._tasks.put((fut, src))
        return fut

    def _drain(self) -> None:
        """Cancel queued work and tell each thread to stop after what it holds."""
        _cancel_queued(self._tasks)
        for _ in self._threads:
            self._tasks.put(None)


def _marked(target: Callable[..., None]) -> Callable[..., None]:
    """``target`` run in a thread marked as a pool's: it keeps the cores busy with other inputs."""
    def run(*args: Any) -> None:
        from ..image.resample import mark_pool_thread

        mark_pool_thread()
        target(*args)

    return run


class ThreadPool(_QueuePool):
    """``workers`` daemon threads calling ``preparer.prepare`` (see the module docstring)."""

    def __init__(self, preparer: Any, workers: int, budget: PixelBudget | None = None) -> None:
        self._prepare = bind_prepare(preparer, budget)
        self._serve(self._work, "featx-prep", workers)

    def _work(self, _slot: int) -> None:
        for fut, src in self._started():
            try:
                result = self._prepare(src)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting consumer
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def shutdown(self) -> None:
        """Cancel queued work; threads finish what they hold (nobody waits for them) and stop."""
        self._closed = True
        self._drain()


# ---- processes ----------------------------------------------------------------------------------


class _ChildHold:
    """A `PixelHold` in a worker process: the parent's budget, over the worker's pipe."""

    def __init__(self, conn: Any) -> None:
        self._conn, self._taken = conn, False

    def take(self, pixels: int) -> None:
        if self._taken:
            raise RuntimeError("a PixelHold takes pixels once; use one hold per image")
        self._taken = True
        self._conn.send(("take", int(pixels)))
        self._conn.recv()  # the parent answers once the pixels fit

    def release(self) -> None:
        if self._taken:
            self._taken = False
            self._conn.send(("release", None))

    def __enter__(self) -> _ChildHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _ChildBudget:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def hold(self) -> _ChildHold:
        return _ChildHold(self._conn)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a `WorkerError` with the same text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception type can be unpicklable
        from .jobs import error_text

        return WorkerError(error_text(exc))


def _child_main(conn: Any, preparer: Any, budgeted: bool) -> None:
    """A worker process: prepare one input per message until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent stops the job and kills us
    import sys

    if "torch" in sys.modules:  # N processes each using all cores would thrash
        sys.modules["torch"].set_num_threads(1)
    prepare = bind_prepare(preparer, _ChildBudget(conn) if budgeted else None)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            src = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            message: tuple[str, Any] = ("ok", prepare(src))
        except BaseException as exc:  # noqa: BLE001 - sent back as the input's error
            message = ("error", _portable(exc))
        try:
            conn.send(message)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send(("error", WorkerError(f"cannot send the prepared input back: {exc}")))
        except (EOFError, OSError):
            return


class ProcessPool(_QueuePool):
    """``workers`` spawned processes, each run by one parent thread (see the module docstring)."""

    def __init__(self, preparer: Any, workers: int, budget: PixelBudget | None = None) -> None:
        import multiprocessing
        import multiprocessing.util

        self._ctx = multiprocessing.get_context("spawn")  # no forked torch state
        self._preparer = preparer
        self._budget = budget
        self._lock = threading.Lock()
        self._procs: dict[int, Any] = {}
        self.restarts = 0  # processes started to replace dead ones
        # At interpreter exit, before multiprocessing joins its children: ours ignore SIGTERM.
        multiprocessing.util.Finalize(self, _kill_all, args=(self._procs, self._lock), exitpriority=10)
        self._serve(self._slot, "featx-proc", workers)

    def _start(self, slot: int) -> tuple[Any, Any]:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_child_main, args=(child, self._preparer, self._budget is not None),
                                 name=f"featx-worker-{slot}", daemon=True)
        proc.start()
        child.close()
        with self._lock:
            self._procs[slot] = proc
            closed = self._closed
        if closed:  # shut down while starting
            proc.kill()
        from multiprocessing.connection import wait

        try:  # the first message says it is ready: the preparer loaded in the new process
            wait([parent, proc.sentinel])
            kind, _pid = parent.recv()
        except (EOFError, OSError):
            kind = None
        if kind != "ready":
            parent.close()
            proc.join(5)
            raise WorkerStartError(f"a worker process could not start (exit status {proc.exitcode}); "
                                   "its error is printed above")
        return proc, parent

    def _slot(self, slot: int) -> None:
        proc = conn = None
        try:
            for fut, src in self._started():
                try:
                    for _attempt in range(2):  # a process found dead while idle is replaced, not blamed
                        if proc is None or proc.exitcode is not None:
                            if conn is not None:
                                conn.close()
                            proc, conn = self._start(slot)
                        outcome = self._run_one(proc, conn, src)
                        if outcome is not None:
                            break
                        proc.join(5)
                except BaseException as exc:  # noqa: BLE001 - e.g. the process cannot start
                    fut.set_exception(exc)
                    continue
                if outcome is None or isinstance(outcome, WorkerDied):
                    conn.close()
                    proc = conn = None
                    if not self._closed:
                        self.restarts += 1
                    fut.set_exception(outcome or WorkerDied(None, source=_label(src)))
                elif outcome[0] == "ok":
                    fut.set_result(outcome[1])
                else:
                    fut.set_exception(outcome[1])
        finally:
            if conn is not None:
                conn.close()  # an idle worker reads EOF and exits

    def _run_one(self, proc: Any, conn: Any, src: Any) -> Any:
        """``("ok", arrays)``, ``("error", exc)``, `WorkerDied` when the process died while
        preparing ``src``, or None when it was dead before ``src`` reached it."""
        from multiprocessing.connection import wait

        try:
            conn.send(src)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            return "error", WorkerError(f"cannot send this input to a worker process: {exc}")
        except OSError:
            return None
        hold = self._budget.hold() if self._budget is not None else None
        try:
            while True:
                if not conn.poll():  # messages sent before a death are still read first
                    wait([conn, proc.sentinel])
                    if not conn.poll():
                        break  # the sentinel: the process is gone
                kind, value = conn.recv()
                if kind == "take":
                    assert hold is not None
                    hold.take(value)
                    conn.send(None)
                elif kind == "release":
                    assert hold is not None
                    hold.release()
                else:
                    return kind, value
        except (EOFError, OSError):
            pass  # the pipe broke: the process died
        except Exception as exc:  # noqa: BLE001 - e.g. an exception type the parent cannot unpickle
            return "error", WorkerError(f"cannot receive the prepared input: {type(exc).__name__}: {exc}")
        finally:
            if hold is not None:
                hold.release()  # also what a dead process held
        proc.join(5)
        return WorkerDied(proc.exitcode, source=_label(src))

    def shutdown(self) -> None:
        """Cancel queued work and kill the worker processes (work in progress is dropped)."""
        with self._lock:
            self._closed = True
        self._drain()
        _kill_all(self._procs, self._lock)


def _kill_all(procs: dict[int, Any], lock: threading.Lock) -> None:
    with lock:
        alive = list(procs.values())
    for proc in alive:
        if proc.exitcode is None:
            proc.kill()
    for proc in alive:
        proc.join(2)


def make_pool(kind: str, preparer: Any, workers: int, budget: PixelBudget | None = None) -> WorkerPool:
    """A `ThreadPool` (``kind="thread"``) or `ProcessPool` (``"process"``) of ``workers``."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if kind == "thread":
        return ThreadPool(preparer, workers, budget)
    if kind == "process":
        from .workers import prepare_only

        return ProcessPool(prepare_only(preparer), workers, budget)
    raise ValueError(f"worker kind must be 'thread' or 'process', not {kind!r}")
