"""Thumbnails of image rows, only for files under the output folder's recorded inputs.

A row's ``path`` is data (it may come from a Parquet list, a ``@list`` file or a damaged shard),
so it is never opened as given: it is resolved against the job's working directory, every
symlink and ``..`` is followed to the real path (`os.path.realpath`), and that real path must be
one of the recorded input files or lie inside one of the recorded input folders (or a
``--thumbnail-root``). A symlink pointing out of those folders, an absolute path elsewhere or a
path climbing out with ``..`` is refused. URLs are never fetched for thumbnails.
"""

from __future__ import annotations

import collections
import glob
import io
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["Thumbnails", "recorded_roots", "resolve_row_file", "NotAllowed"]


class NotAllowed(InputError):
    """The row's file is outside the recorded inputs (or is not a local regular file)."""


def recorded_roots(manifest: dict[str, Any]) -> list[Path]:
    """The real paths of the folders and files ``manifest`` records as the job's inputs (for a
    glob, the folder before its first wildcard; URLs and ``@list`` files give none)."""
    roots: list[Path] = []
    for spec in manifest.get("inputs", []) or []:
        absolute = str(spec.get("absolute", "")) if isinstance(spec, dict) else ""
        if not absolute or absolute.startswith(("http://", "https://", "@")):
            continue
        parts = Path(absolute).parts
        magic = [i for i, part in enumerate(parts) if glob.has_magic(part)]
        if magic:
            if magic[0] == 0:
                continue
            absolute = str(Path(*parts[: magic[0]]))
        roots.append(Path(os.path.realpath(absolute)))
    return roots


def resolve_row_file(path: str, working_dir: str | None, roots: Iterable[Path]) -> Path:
    """The real path of a row's file when it is allowed (see the module docstring), else `NotAllowed`."""
    if not path or path.startswith(("http://", "https://", "data:")) or "\x00" in path:
        raise NotAllowed("no thumbnail for this row: it is not a local file", source=path[:80])
    candidate = path if os.path.isabs(path) else os.path.join(working_dir or os.getcwd(), path)
    real = Path(os.path.realpath(candidate))
    for root in roots:
        if real == root or (root.is_dir() and real.is_relative_to(root)):
            if not real.is_file():
                raise NotAllowed("no thumbnail for this row: its file is gone", source=path)
            return real
    raise NotAllowed("no thumbnail for this row: its file is outside the recorded inputs", source=path)


class Thumbnails:
    """JPEG thumbnails (longest side ``size``), made on demand and kept in an LRU cache."""

    def __init__(self, size: int = 256, cache_entries: int = 1024) -> None:
        self.size = int(size)
        self.cache_entries = int(cache_entries)
        self._cache: collections.OrderedDict[tuple[str, int, int], bytes] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.made = 0  # thumbnails decoded (cache misses), for tests and metrics

    def get(self, real: Path) -> bytes:
        """The thumbnail of the (already allowed) file ``real``; `InputError` if it is no image."""
        from ..image.io import load_image

        st = real.stat()
        key = (str(real), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        image = load_image(str(real), draft=(self.size, self.size))
        image.thumbnail((self.size, self.size))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85)
        data = buf.getvalue()
        with self._lock:
            self.made += 1
            self._cache[key] = data
            while len(self._cache) > self.cache_entries:
                self._cache.popitem(last=False)
        return data
