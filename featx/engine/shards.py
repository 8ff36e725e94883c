"""The shards of an output folder: listing and reading them, finding and moving damaged ones, and the
keys of the inputs they hold.

The shards themselves are the record of what is done: a shard becomes visible only by an atomic rename
once complete, so after a crash or ``kill -9`` the ``path`` column of the visible shards is exactly the
set of finished inputs. There is no separate state file that could disagree with them.

Memory for resume and de-duplication: keys are kept as 64-bit BLAKE2b hashes in a sorted NumPy array
(8 bytes per input, ~80 MB for 10 million) plus a small set of recent hashes merged into it in bulk,
instead of a Python set of strings (~150 bytes per input, ~1.5 GB for 10 million). The price is a
collision probability of about n^2 / 2^65 (3e-6 for 10 million inputs), which would skip one input.

A shard that cannot be read (truncated by a full disk, a copy that stopped) raises `DamagedShardError`
naming it and the command that repairs the folder (``--repair``: `move_damaged` moves damaged shards
to ``OUT/_bad/`` so that their inputs are computed again).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, FeatxError
from .inputs import path_key

__all__ = [
    "NPY_DIR",
    "BAD_DIR",
    "SHARD_RE",
    "KeySet",
    "key_hash",
    "shard_paths",
    "next_shard_index",
    "DamagedShardError",
    "read_shard",
    "move_damaged",
    "load_done_keys",
]

NPY_DIR = "_npy"  # '_' prefix: pyarrow.dataset and pandas.read_parquet skip it when reading OUT
BAD_DIR = "_bad"  # damaged shards moved aside by --repair ('_': readers of OUT skip it)
SHARD_RE = re.compile(r"^part-(\d{6,})\.parquet$")


def shard_paths(out: str | os.PathLike[str]) -> list[Path]:
    """The complete Parquet shards of ``out``, in shard order."""
    folder = Path(out)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if SHARD_RE.match(p.name)]
    return sorted(found, key=lambda p: int(SHARD_RE.match(p.name).group(1)))  # type: ignore[union-attr]


def next_shard_index(out: str | os.PathLike[str]) -> int:
    shards = shard_paths(out)
    return int(SHARD_RE.match(shards[-1].name).group(1)) + 1 if shards else 0  # type: ignore[union-attr]


def key_hash(key: str) -> int:
    """A 64-bit hash of an input key (stable across runs and Python versions)."""
    data = key.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class KeySet:
    """A set of input keys stored as sorted 64-bit hashes: 8 bytes per key plus a small buffer."""

    def __init__(self) -> None:
        self._base = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return int(self._base.size) + len(self._recent)

    def _in_base(self, h: int) -> bool:
        if not self._base.size:
            return False
        value = np.uint64(h)
        i = int(np.searchsorted(self._base, value))
        return i < self._base.size and self._base[i] == value

    def __contains__(self, key: object) -> bool:
        h = key_hash(str(key))
        return h in self._recent or self._in_base(h)

    def add(self, key: str) -> bool:
        """Add ``key``; False when it was already there."""
        h = key_hash(key)
        if h in self._recent or self._in_base(h):
            return False
        self._recent.add(h)
        # Merge in bulk, amortised: the buffer may grow to 1/8 of the base before an O(n) merge.
        if len(self._recent) >= max(65536, self._base.size // 8):
            self._merge()
        return True

    def update(self, keys: Iterator[str] | list[str]) -> None:
        for key in keys:
            self.add(key)

    def _merge(self) -> None:
        recent = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        self._base = np.union1d(self._base, recent)
        self._recent.clear()


_LEGACY_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])")


def _legacy_keys(key: str) -> list[str]:
    """The current keys of the inputs an older featx wrote as ``key``: it spelled undecodable bytes as
    ``\\xHH`` without doubling backslashes, so ``x\\xff.jpg`` was the name with byte 0xFF or the
    literal name; both count as done (as they did then)."""
    if not _LEGACY_ESCAPE.search(key):
        return [key]
    raw = _LEGACY_ESCAPE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), key)  # surrogate escapes
    return list(dict.fromkeys([path_key(key), path_key(raw)]))


class DamagedShardError(FeatxError):
    """A shard of an output folder cannot be read; the message says how to repair the folder."""

    def __init__(self, shard: str | os.PathLike[str], reason: str, *, then: str = "") -> None:
        self.shard = Path(shard)
        self.reason = reason
        out = self.shard.parent
        from .state import repair_command  # the manifest's module, which imports this one

        try:
            command = repair_command(out)
        except (ConfigError, OSError):  # the manifest is unreadable too
            command = f"featx embed INPUT... --model MODEL --output {shlex.quote(str(out))} --repair"
        super().__init__(
            f"{self.shard} is damaged ({reason}); a full disk or an interrupted copy can do this. Run the "
            f"command that wrote {out} again with --repair, which moves damaged shards to {out / BAD_DIR}/ "
            f"and computes their inputs again:\n  {command}{then}")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def read_shard(shard: Path, columns: Sequence[str] | None = None, *, then: str = "") -> Any:
    """The ``columns`` (those of them it has; None: all) of one shard as a ``pyarrow.Table``;
    `DamagedShardError` when it cannot be read (``then``: what to run after the repair, for the message)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if columns is not None:
            names = pq.read_schema(shard).names
            columns = [c for c in columns if c in names]
        return pq.read_table(shard, columns=columns)
    except PermissionError:
        raise
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DamagedShardError(shard, _reason(exc), then=then) from None


def _damage(shard: Path, npy_format: bool) -> str | None:
    """Why ``shard`` (and its .npy files) cannot be used, or None when it reads in full."""
    try:
        table = read_shard(shard)
    except DamagedShardError as exc:
        return exc.reason
    if "path" not in table.column_names:
        return "no path column"
    stem = shard.name.rsplit(".", 1)[0]
    npys = sorted((shard.parent / NPY_DIR).glob(f"{stem}.*npy"))
    if npy_format and not npys:
        return f"its .npy file in {NPY_DIR}/ is missing"
    for npy in npys:
        try:
            rows = np.load(npy, mmap_mode="r").shape[0]
        except (OSError, ValueError) as exc:
            return f"{npy.name}: {_reason(exc)}"
        if rows != table.num_rows:
            return f"{npy.name} has {rows} rows, the shard {table.num_rows}"
    return None


def _move_aside(path: Path, bad: Path) -> Path:
    bad.mkdir(exist_ok=True)
    target, n = bad / path.name, 1
    while target.exists():
        target, n = bad / f"{path.name}.{n}", n + 1
    os.replace(path, target)
    return target


def move_damaged(folder: Path, npy_format: bool) -> list[Path]:
    """Move every shard of ``folder`` that cannot be read in full (or, with ``npy_format``, whose .npy
    files are missing or short) to ``folder/_bad/``, with its .npy files; returns where they went."""
    moved = []
    for shard in shard_paths(folder):
        reason = _damage(shard, npy_format)
        if reason is None:
            continue
        stem = shard.name.rsplit(".", 1)[0]
        for npy in sorted((folder / NPY_DIR).glob(f"{stem}.*npy")):
            _move_aside(npy, folder / BAD_DIR / NPY_DIR)
        moved.append(_move_aside(shard, folder / BAD_DIR))
        warnings.warn(f"{shard} is damaged ({reason}): moved to {moved[-1]}; its inputs are computed again",
                      stacklevel=3)  # the caller of featx.engine.state.repair_output
    return moved


def load_done_keys(out: str | os.PathLike[str]) -> tuple[KeySet, KeySet]:
    """The keys of every input already written to ``out``, and those of them written as errors.

    `DamagedShardError` when a shard cannot be read (see `repair_output`)."""
    import pyarrow.compute as pc

    done, failed = KeySet(), KeySet()
    for shard in shard_paths(out):
        table = read_shard(shard, ["path", "error"])
        meta = (table.schema.metadata or {}).get(b"featx", b"{}")
        try:
            current = json.loads(meta).get("path_keys", 1) >= 2
        except (ValueError, AttributeError, TypeError):
            current = False
        paths = table.column("path")
        failed_paths = paths.filter(pc.is_valid(table.column("error"))).to_pylist()
        for keys, target in ((paths.to_pylist(), done), (failed_paths, failed)):
            if current:
                target.update(keys)
            else:  # written before keys were exact (see _legacy_keys)
                target.update(k for key in keys for k in _legacy_keys(key))
    return done, failed
