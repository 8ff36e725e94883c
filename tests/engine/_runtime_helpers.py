"""Preparers and a local HTTP server for tests/engine/test_hardening_runtime.py.

The preparers are module-level classes so that worker processes (spawned) can import and unpickle
them: a crash injected here happens in the worker, not in the test process.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any


class CrashOn:
    """``prepare(src)`` kills its own process with SIGSEGV for sources ending in ``suffix``; other
    sources go to ``inner.prepare`` (or give ``{"x": int(src)**2, "pid": ...}``)."""

    def __init__(self, inner: Any = None, suffix: str = "crash") -> None:
        self.inner = inner
        self.suffix = suffix

    def __getattr__(self, name: str) -> Any:  # the wrapped preparer's processor, modality...
        if name in ("inner", "suffix") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def prepare(self, src: Any, *, budget: Any = None) -> Any:
        if str(src).endswith(self.suffix):
            os.kill(os.getpid(), signal.SIGSEGV)  # as a decoder's segfault would
            time.sleep(10)  # pragma: no cover - the signal ends the process first
        if self.inner is not None:
            return self.inner.prepare(src, budget=budget)
        return {"x": int(src) ** 2, "pid": os.getpid()}


class Unloadable:
    """A preparer that cannot be unpickled in a worker process (its state raises)."""

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        raise RuntimeError("this preparer cannot be loaded in a worker")

    def prepare(self, src: Any) -> Any:  # pragma: no cover - never reached in a worker
        return {}


class TimedLoad:
    """Loads an image under the budget's hold and reports when its pixels were alive (monotonic
    clock, the same for all processes of the machine): decoded at ``t0``, released after ``t1``."""

    def __init__(self, hold_s: float = 0.05) -> None:
        self.hold_s = hold_s

    def prepare(self, src: Any, *, budget: Any = None) -> Any:
        from featx.image.io import load_image

        hold = budget.hold() if budget is not None else contextlib.nullcontext()
        with hold as h:
            image = load_image(src, pixel_budget=h)
            t0 = time.monotonic()
            time.sleep(self.hold_s)  # "preprocessing"
            t1 = time.monotonic()
            pixels = image.size[0] * image.size[1]
            del image
        return {"t0": t0, "t1": t1, "pixels": pixels}


def max_overlap(intervals: list[tuple[float, float, int]]) -> int:
    """The largest sum of ``pixels`` over intervals ``(t0, t1, pixels)`` alive at one moment."""
    events = sorted([(t0, 1, n) for t0, _, n in intervals] + [(t1, 0, n) for _, t1, n in intervals])
    alive = peak = 0
    for _, starts, n in events:  # at equal times, ends (0) sort before starts (1)
        alive += n if starts else -n
        peak = max(peak, alive)
    return peak


@contextlib.contextmanager
def http_server(routes: dict[str, bytes], stall: dict[str, threading.Event]) -> Iterator[tuple[str, dict]]:
    """A 127.0.0.1 server thread: ``routes`` path -> body. A path in ``stall`` answers nothing until
    its event is set (then closes the connection, or serves its body if it has one by then).
    Yields the base URL and ``seen`` (path -> threading.Event set when the path is first asked for)."""
    seen: dict[str, threading.Event] = {path: threading.Event() for path in {*routes, *stall}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path in seen:
                seen[self.path].set()
            if self.path in stall:
                stall[self.path].wait(60)
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a stopped job)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        for event in stall.values():
            event.set()
        server.shutdown()
        server.server_close()
