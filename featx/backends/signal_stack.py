"""Keeping a thread's alternate signal stack across calls into a native library that changes it.

OpenVINO's CPU plugin (seen with 2026.4) points the calling thread's alternate signal stack
(``sigaltstack``) at memory of its own when it compiles a model, and does not put the previous one
back. Once that memory is freed (the compiled model released), the thread's signal stack dangles.
CPython installs its signal handlers with ``SA_ONSTACK``, so the next SIGINT or SIGTERM delivered to
that thread cannot be handled: the kernel kills the process with SIGSEGV instead of running the
handler (a Ctrl-C, or the engine's stop signal, after an ``--backend openvino`` job). `kept_signal_stack`
wraps each such call and restores the stack that was there before (faulthandler's, or none).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

__all__ = ["kept_signal_stack", "current_signal_stack"]


class _Stack(ctypes.Structure):  # Linux's stack_t
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@lru_cache(maxsize=1)
def _sigaltstack() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sigaltstack
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.POINTER(_Stack), ctypes.POINTER(_Stack)]
    fn.restype = ctypes.c_int
    return fn


def current_signal_stack() -> tuple[int, int, int] | None:
    """``(address, flags, size)`` of this thread's alternate signal stack; None off Linux."""
    fn = _sigaltstack()
    if fn is None:
        return None
    old = _Stack()
    if fn(None, ctypes.byref(old)) != 0:
        return None
    return (old.ss_sp or 0, old.ss_flags, old.ss_size)


@contextmanager
def kept_signal_stack() -> Iterator[None]:
    """Run the block, then give this thread back the alternate signal stack it had before."""
    fn = _sigaltstack()
    old = _Stack()
    if fn is None or fn(None, ctypes.byref(old)) != 0:
        yield
        return
    try:
        yield
    finally:
        # SS_ONSTACK is a report ("running on it now"), not a flag sigaltstack accepts.
        old.ss_flags &= ~1
        fn(ctypes.byref(old), None)
