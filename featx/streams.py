"""Opening inputs as byte streams: paths, bytes, file objects, data URIs and http(s) URLs.

Shared by `load_image` and `load_audio` so both read URLs with the same deadline and size cap and
name the input the same way in their errors.

Paths: only regular files are opened (symlinks to them too). A FIFO, device, socket or
directory is refused at once: reading a FIFO or /dev/zero would block or never end.

URLs are fetched as given, with no filtering of private addresses by default, like curl: a
URL naming ``localhost`` or a host on the local network is fetched. Services that fetch
user-supplied URLs should pass ``allow_private=False`` (see `featx.net`), which refuses
loopback, private, link-local, multicast and reserved addresses on every redirect hop and
connects only to the address it checked. ``timeout`` is one deadline for the whole download;
only http(s) redirects are followed, at most five.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import stat
import time
from typing import IO, Any

from .errors import InputError
from .net import fetch_url

try:  # POSIX: clear O_NONBLOCK after the checks; Windows has no FIFOs to guard against
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["open_source", "open_or_refuse", "fetch_url", "read_capped", "is_url"]

_CHUNK = 1 << 16


def is_url(src: object) -> bool:
    return isinstance(src, str) and src.startswith(("http://", "https://"))


def open_source(
    src: Any, what: str, timeout: float | None, max_bytes: int | None, allow_private: bool = True
) -> tuple[IO[bytes], str, bool] | None:
    """A binary stream for ``src``, a label naming it, and whether the caller must close it.

    ``what`` ("image", "audio file") words the errors. ``allow_private=False`` refuses URLs
    whose host is on a loopback, private, link-local, multicast or reserved address. Returns
    None for objects that are not a source at all, so the caller can explain what to pass instead.
    """
    if isinstance(src, str):
        if is_url(src):
            return io.BytesIO(fetch_url(src, timeout, max_bytes, allow_private)), src, True
        if src.startswith("data:"):
            return io.BytesIO(_decode_data_uri(src)), src[:40] + "...", True
        return _open_path(src, what), src, True
    if isinstance(src, os.PathLike):
        path = os.fspath(src)
        path = os.fsdecode(path) if isinstance(path, bytes) else path
        return _open_path(path, what), path, True
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        label = f"<{len(data)} bytes>"
        if not data:
            raise InputError("empty input: no bytes to decode", source=label)
        return io.BytesIO(data), label, True
    if hasattr(src, "read"):
        label = str(getattr(src, "name", None) or f"<{type(src).__name__}>")
        if getattr(src, "seekable", lambda: False)():
            return src, label, False
        return io.BytesIO(read_capped(src.read, max_bytes, label, deadline=None)), label, True
    return None


def open_or_refuse(
    src: Any, what: str, timeout: float | None, max_bytes: int | None, allow_private: bool, *,
    arrays: str, cannot: str,
) -> tuple[IO[bytes], str, bool]:
    """`open_source`, with an `InputError` for anything that is not a source.

    ``arrays`` is the message for a NumPy array or torch tensor (already decoded data: say where
    it goes instead); ``cannot`` the one for any other object, formatted with ``kind``, its type's name.
    """
    opened = open_source(src, what, timeout, max_bytes, allow_private=allow_private)
    if opened is not None:
        return opened
    import numpy as np

    kind = type(src).__name__
    if isinstance(src, np.ndarray) or type(src).__module__.startswith("torch"):
        raise InputError(arrays, source=f"<{kind}>")
    raise InputError(cannot.format(kind=kind), source=f"<{kind}>")


_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)
# O_NONBLOCK: opening a FIFO without a writer would block; O_NOCTTY: a terminal must not become
# our controlling one. Both matter only if the path was swapped after the first stat.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _not_regular(mode: int, path: str, what: str) -> InputError | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return InputError(f"is a directory, not an {what}", source=path)
    kind = next((name for test, name in _KINDS if test(mode)), "special file")
    return InputError(f"not a regular file ({kind}); only regular files are read", source=path)


def _open_path(path: str, what: str) -> IO[bytes]:
    """``path`` opened for reading if it is a non-empty regular file (symlinks followed)."""
    try:
        # stat first: refuse without opening, since opening some devices has side effects.
        error = _not_regular(os.stat(path).st_mode, path, what)
        if error is not None:
            raise error
        # open() with an opener keeps the path as the file's name, so decoders' messages name it
        return open(path, "rb", opener=lambda p, _flags: _open_regular(p, what))  # noqa: SIM115 - caller closes
    except FileNotFoundError:
        raise InputError("no such file", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", source=path) from exc


def _open_regular(path: str, what: str) -> int:
    fd = os.open(path, _OPEN_FLAGS)
    try:
        # fstat the descriptor we hold: the path may have been swapped since the stat above.
        info = os.fstat(fd)
        error = _not_regular(info.st_mode, path, what)
        if error is not None:
            raise error
        if info.st_size == 0:
            raise InputError("empty file (0 bytes)", source=path)
        if fcntl is not None:  # blocking reads again, as open() would give
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _decode_data_uri(uri: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InputError("only base64 data URIs ('data:image/...;base64,...') are supported", source=uri[:40])
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"invalid base64 in data URI: {exc}", source=uri[:40]) from exc
    if not data:
        raise InputError("empty data URI", source=uri[:40])
    return data


def read_capped(
    read: Any, max_bytes: int | None, label: str, deadline: float | None, timeout: float | None = None
) -> bytes:
    """Everything ``read(n)`` returns until EOF, refused past ``max_bytes`` or ``deadline``."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise InputError(f"larger than max_bytes={max_bytes}; raise max_bytes to accept it", source=label)
        if deadline is not None and time.monotonic() > deadline:
            raise InputError(f"download took longer than timeout={timeout}s", source=label)
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise InputError("empty input: no bytes to decode", source=label)
    return data
