"""One writer per output folder: an exclusive lock on ``OUT/.featx.lock``.

Two ``featx embed`` processes on one folder would pick the same shard numbers and write inputs
twice, so a job (``embed``, ``features``, ``index``) takes ``flock(LOCK_EX | LOCK_NB)`` on the lock file
before it changes anything, and writes its pid (and host) into it. A second job refuses at once,
naming the holder. The operating system drops the lock when the holder exits, however it ends
(``kill -9`` included), so a stale lock file never blocks anyone: the file itself is left in place
(removing it would let two jobs lock two different files). Reading (``featx search``) takes no lock.

On a system without ``fcntl`` (Windows) there is no lock.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from ..errors import ConfigError, FeatxError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "OutputBusyError", "OutputNotWritableError", "OutputLock", "lock_output", "check_unlocked"]

LOCK_FILE = ".featx.lock"  # a dot name: pyarrow.dataset and pandas skip it when reading OUT
_RETRY_S = 0.5  # a short wait rides out another process's `check_unlocked` probe


class OutputBusyError(ConfigError):
    """Another process holds the output folder's lock."""


class OutputNotWritableError(FeatxError, OSError):
    """The output folder cannot be written (read-only file system, permissions)."""


def _holder(path: Path) -> str:
    """Who holds the lock, from the lock file ("pid N on host H"), or a vague phrase if unknown."""
    try:
        fields = path.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        fields = []
    if not fields or not fields[0].isdigit():
        return "another process"
    host = f" on host {fields[1]}" if len(fields) > 1 and fields[1] != socket.gethostname() else ""
    return f"pid {fields[0]}{host}"


def _busy(out: Path, path: Path) -> OutputBusyError:
    who = _holder(path)
    pid = who.split()[1] if who.startswith("pid ") else None
    stop = f" (or stop it: kill {pid})" if pid else ""
    return OutputBusyError(
        f"{out} is in use by another featx job ({who}; lock file {path}): wait for it to finish{stop}, "
        f"then run this command again; two jobs writing one folder would write inputs twice")


def _not_writable(out: Path, exc: OSError) -> OutputNotWritableError:
    reason = "read-only file system" if exc.errno == errno.EROFS else (exc.strerror or str(exc))
    error = OutputNotWritableError(
        f"cannot write to {out} ({reason}): featx writes its shards, manifest, index and lock file "
        f"there; make it writable (e.g. chmod u+w {out}) or copy it to a writable place")
    error.errno = exc.errno
    return error


class OutputLock:
    """The exclusive lock of an output folder; a context manager (``with OutputLock(out):``)."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> OutputLock:
        """Take the lock (creating ``out`` if needed); `OutputBusyError` when another process has it."""
        if self._fd is not None:
            return self
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise _not_writable(self.out, exc) from None
            raise
        if fcntl is not None:
            deadline = time.monotonic() + _RETRY_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                        os.close(fd)
                        if exc.errno in (errno.EAGAIN, errno.EACCES):
                            raise _busy(self.out, self.path) from None
                        raise
                    time.sleep(0.05)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass  # the pid is a courtesy for the error message of a second job; the lock is what counts
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (closing the file is what releases it; the file stays)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:  # a lock dropped without release() still ends with its owner
        self.release()


def lock_output(out: str | os.PathLike[str]) -> OutputLock:
    """Take the lock of ``out`` now; hold the returned object until the job ends, then ``release()``."""
    return OutputLock(out).acquire()


def check_unlocked(out: str | os.PathLike[str]) -> None:
    """Raise `OutputBusyError` when another process holds the lock of ``out``; changes nothing.

    For checks before a model loads, so that a second job on a folder fails at once."""
    path = Path(out) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # unreadable: the real lock attempt says what is wrong
    try:
        # A shared lock: it fails only while someone holds the exclusive one, and is dropped at once.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise _busy(Path(out), path) from None
        raise
    finally:
        os.close(fd)
