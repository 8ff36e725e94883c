"""Stopping a job on SIGINT/SIGTERM without tearing a shard: the interrupt waits out critical sections.

Python delivers a signal to the main thread as a call of its handler, at any bytecode: a
KeyboardInterrupt raised halfway through adding a batch's rows to the shard writer could leave a
row half-added, or a shard written but not counted (and then written again). `StopSignals` keeps
what each signal does (the ``featx`` command line makes SIGTERM raise KeyboardInterrupt, Python
makes SIGINT do so; a SIGTERM left at its default still kills the process) and only changes
*when*: inside ``with stop.deferred():`` the handler's call waits until the block ends. Only the
first signal is delivered; later ones, while the job writes what it has, are noted and dropped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["StopSignals"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


class StopSignals:
    """Wraps the Python-level handlers of SIGINT and SIGTERM while installed (main thread only)."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._depth = 0
        self._pending: tuple[Any, int, FrameType | None] | None = None
        self.delivered = False
        self.received: int | None = None  # the first signal seen

    def install(self) -> StopSignals:
        """Wrap the current handlers (a no-op outside the main thread, or for default ones)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in _SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):  # SIG_DFL kills, SIG_IGN ignores: not ours to change
                self._previous[signum] = handler
                signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        """Put the wrapped handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self.delivered or self._pending is not None:
            return  # already stopping
        handler = self._previous.get(signum)
        if handler is None:
            return
        if self._depth:
            self._pending = (handler, signum, frame)
            return
        self.delivered = True
        handler(signum, frame)

    @contextmanager
    def deferred(self, deliver: bool = True) -> Iterator[None]:
        """A critical section: a signal arriving inside takes effect when it ends (``deliver=False``:
        never; the job is finishing anyway)."""
        self._depth += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            self._depth -= 1
            pending, self._pending = (self._pending, None) if self._depth == 0 else (None, self._pending)
            if pending is not None and ok and deliver and not self.delivered:
                self.delivered = True
                handler, signum, frame = pending
                handler(signum, frame)

    @contextmanager
    def finishing(self) -> Iterator[None]:
        """The job's last steps (the final shard): signals are dropped, then the handlers restored."""
        try:
            with self.deferred(deliver=False):
                yield
        finally:
            self.uninstall()
