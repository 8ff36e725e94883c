"""Opening inputs as byte streams: paths, bytes, file objects, data URIs and http(s) URLs.

Shared by `load_image` and `load_audio` so both read URLs with the same deadline and size cap and
name the input the same way in their errors.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import time
import urllib.error
import urllib.request
from typing import IO, Any

from .errors import FeatxError, InputError

__all__ = ["open_source", "fetch_url", "read_capped", "is_url"]

_CHUNK = 1 << 16


def is_url(src: object) -> bool:
    return isinstance(src, str) and src.startswith(("http://", "https://"))


def open_source(
    src: Any, what: str, timeout: float | None, max_bytes: int | None
) -> tuple[IO[bytes], str, bool] | None:
    """A binary stream for ``src``, a label naming it, and whether the caller must close it.

    ``what`` ("image", "audio file") words the errors. Returns None for objects that are not a
    source at all, so the caller can explain what to pass instead.
    """
    if isinstance(src, str):
        if is_url(src):
            return io.BytesIO(fetch_url(src, timeout, max_bytes)), src, True
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


def _open_path(path: str, what: str) -> IO[bytes]:
    if os.path.isdir(path):
        raise InputError(f"is a directory, not an {what}", source=path)
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise InputError("no such file", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", source=path) from exc
    if os.fstat(fp.fileno()).st_size == 0:
        fp.close()
        raise InputError("empty file (0 bytes)", source=path)
    return fp


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


def fetch_url(url: str, timeout: float | None, max_bytes: int | None) -> bytes:
    """GET ``url`` with a total deadline and a size cap (checked on Content-Length and while reading)."""
    from . import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"featx/{__version__}"})
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if max_bytes is not None and length and length.isdigit() and int(length) > max_bytes:
                raise InputError(
                    f"Content-Length {int(length)} is larger than max_bytes={max_bytes}; raise max_bytes to accept it",
                    source=url,
                )
            # read1 returns whatever arrived, so a server dripping bytes still meets the deadline.
            read = getattr(response, "read1", response.read)
            return read_capped(read, max_bytes, url, deadline, timeout)
    except FeatxError:
        raise
    except urllib.error.HTTPError as exc:
        raise InputError(f"HTTP error {exc.code} {exc.reason}", source=url) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise InputError(f"no answer within timeout={timeout}s", source=url) from exc
        raise InputError(f"cannot fetch: {reason}", source=url) from exc
    except TimeoutError as exc:
        raise InputError(f"no answer within timeout={timeout}s", source=url) from exc
    except (OSError, ValueError) as exc:  # connection reset, bad URL, http.client errors
        raise InputError(f"cannot fetch: {type(exc).__name__}: {exc}", source=url) from exc
