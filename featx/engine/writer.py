"""Parquet shards (and aligned .npy shards), each written atomically: temp file, fsync, rename.

A shard is ``OUT/part-NNNNNN.parquet``; with ``--format npy`` its rows are also in
``OUT/_npy/part-NNNNNN.npy`` (``part-NNNNNN.<column>.npy`` for columns other than ``embedding``), rows
in the same order, error rows filled with NaN (0 for integer features). The .npy files land first and
the Parquet last, so a visible Parquet shard always has its .npy files; orphans of a crash are removed
on the next start (see `featx.engine.state`).

A failed write (a full disk: ``ENOSPC``, or the short write NumPy reports as "N requested and M
written") raises `ShardWriteError` naming the file and the reason; its temp file is removed.

Column types: ``string``/integers as given (undecodable bytes in text written as ``\\xHH``);
``fixed_size_list<float32>[dim]`` for pooled embeddings; ``list<fixed_size_list<float32>[dim]>`` for
token embeddings (``--pool none``); ``list<T>`` for flattened feature tensors. ``None`` is a null
(error rows).
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, FeatxError
from .state import NPY_DIR, read_shard, tmp_name

__all__ = ["ShardWriter", "ShardWriteError", "shard_name", "drop_error_rows", "arrow_column", "MAX_SHARD_BYTES"]

MAX_SHARD_BYTES = 256 * 2**20  # flush early when rows are large (token embeddings, pixel values)


def shard_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


class ShardWriteError(FeatxError, OSError):
    """Writing a shard (or its .npy file) failed: the message names the file and why."""


_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_NO_SPACE = re.compile(r"no space left|errno 28\b|\[errno 28\]", re.IGNORECASE)


def _write_error(exc: OSError, final: Path) -> ShardWriteError:
    text = str(exc)
    if exc.errno == errno.ENOSPC or _NO_SPACE.search(text) or _SHORT_WRITE.search(text):
        reason, code = "no space left on device", errno.ENOSPC  # a short write is a full disk (or quota)
    elif exc.errno == getattr(errno, "EDQUOT", -1):
        reason, code = "disk quota exceeded", exc.errno
    else:
        reason, code = exc.strerror or text, exc.errno
    error = ShardWriteError(
        f"{reason} while writing {final}; free some space (or choose another --output), then run the same "
        f"command again: shards already written are kept and their inputs skipped")
    error.errno = code
    return error


def _write_atomic(final: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)``, fsync, rename to ``final``; an OSError becomes `ShardWriteError` (temp removed)."""
    tmp = final.with_name(tmp_name(final.name))
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, ShardWriteError):
            raise
        raise _write_error(exc, final) from exc


def _clean_text(value: Any) -> Any:
    """A string Parquet can hold: surrogate escapes (undecodable bytes of a file name quoted in an
    error message) spelled as ``\\xHH``."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def arrow_column(values: list[Any], typ: Any) -> Any:
    """One Arrow array from Python/NumPy row values; None -> null."""
    import pyarrow as pa

    mask = np.array([v is None for v in values], dtype=bool)
    if pa.types.is_fixed_size_list(typ):
        size = typ.list_size
        vtype = typ.value_type
        flat = np.zeros((len(values), size), dtype=vtype.to_pandas_dtype())
        for i, v in enumerate(values):
            if v is not None:
                flat[i] = np.asarray(v).reshape(size)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), type=vtype), size,
                                                 mask=pa.array(mask) if mask.any() else None)
    if pa.types.is_list(typ) and pa.types.is_fixed_size_list(typ.value_type):
        size = typ.value_type.list_size
        ptype = typ.value_type.value_type.to_pandas_dtype()
        parts = [np.asarray(v, dtype=ptype).reshape(-1, size) for v in values if v is not None]
        counts = [0 if v is None else np.asarray(v).reshape(-1, size).shape[0] for v in values]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        flat = np.concatenate(parts).reshape(-1) if parts else np.zeros(0, dtype=ptype)
        inner = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=typ.value_type.value_type), size)
        return pa.ListArray.from_arrays(pa.array(offsets), inner,
                                        mask=pa.array(mask) if mask.any() else None)
    if pa.types.is_list(typ) and not pa.types.is_list(typ.value_type):
        ptype = typ.value_type.to_pandas_dtype()
        parts = [np.asarray(v, dtype=ptype).reshape(-1) for v in values if v is not None]
        counts = [0 if v is None else int(np.asarray(v).size) for v in values]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=ptype)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=typ.value_type),
                                        mask=pa.array(mask) if mask.any() else None)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        values = [_clean_text(v) for v in values]
    return pa.array(values, type=typ)


def _npy_stack(values: list[Any], dtype: np.dtype, column: str) -> np.ndarray:
    shapes = {np.asarray(v).shape for v in values if v is not None}
    if len(shapes) > 1:
        raise ConfigError(f"--format npy needs one shape per column; {column!r} has {sorted(shapes)} "
                          f"(use --format parquet)")
    shape = shapes.pop() if shapes else (0,)
    fill = np.nan if np.issubdtype(dtype, np.floating) else 0
    out = np.full((len(values), *shape), fill, dtype=dtype)
    for i, v in enumerate(values):
        if v is not None:
            out[i] = v
    return out


class ShardWriter:
    """Buffers rows and writes a shard every ``shard_size`` rows (or `MAX_SHARD_BYTES`).

    ``schema`` is a ``pyarrow.Schema``; ``metadata`` is stored as JSON under the ``featx`` key of the
    Parquet schema metadata; ``npy`` maps column names to the NumPy dtype of their .npy shards.
    Rows of one input must be added together (`add_rows`) so that a shard never splits an input.
    """

    def __init__(self, out: str | os.PathLike[str], schema: Any, *, metadata: dict[str, Any],
                 shard_size: int = 8192, start_index: int = 0,
                 npy: dict[str, np.dtype] | None = None) -> None:
        if shard_size < 1:
            raise ConfigError(f"--shard-size must be >= 1, got {shard_size}")
        self.out = Path(out)
        self.schema = schema.with_metadata({b"featx": json.dumps(metadata, sort_keys=True).encode()})
        self.shard_size = shard_size
        self.index = start_index
        self.npy = dict(npy or {})
        self._rows: dict[str, list[Any]] = {name: [] for name in schema.names}
        self._nbytes = 0
        self.rows_written = 0
        self.shards_written: list[Path] = []

    @property
    def buffered(self) -> int:
        return len(self._rows["path"])

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Add the rows of ONE input; flushes afterwards when the shard is full."""
        for row in rows:
            for name, values in self._rows.items():
                value = row.get(name)
                values.append(value)
                if isinstance(value, np.ndarray):
                    self._nbytes += value.nbytes
        if self.buffered >= self.shard_size or self._nbytes >= MAX_SHARD_BYTES:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered rows as one shard; returns its path (None when nothing was buffered)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffered:
            return None
        name = shard_name(self.index)
        stem = name.rsplit(".", 1)[0]
        if self.npy:
            folder = self.out / NPY_DIR
            folder.mkdir(exist_ok=True)
            for column, dtype in self.npy.items():
                array = _npy_stack(self._rows[column], np.dtype(dtype), column)
                fname = f"{stem}.npy" if column == "embedding" else f"{stem}.{column}.npy"
                # the temp name ends in .npy too: np.save would append it to a name without it
                _write_atomic(folder / fname, lambda tmp, a=array: np.save(tmp, a))
        arrays = [arrow_column(self._rows[f.name], f.type) for f in self.schema]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        final = self.out / name
        _write_atomic(final, lambda tmp: pq.write_table(table, tmp))
        self.rows_written += table.num_rows
        self.shards_written.append(final)
        self.index += 1
        self._rows = {n: [] for n in self._rows}
        self._nbytes = 0
        return final

    def close(self) -> None:
        self.flush()


def drop_error_rows(out: str | os.PathLike[str]) -> int:
    """Rewrite the shards of ``out`` without their error rows (for ``--retry-failed``); returns how
    many rows were dropped. Each shard's .npy files are replaced atomically first, then the Parquet:
    after a crash in between, the .npy files already hold only the kept rows (recognised by their
    row count and left alone) and the next call rewrites the Parquet to match."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .state import shard_paths

    dropped = 0
    for shard in shard_paths(out):
        table = read_shard(shard)
        keep = pc.is_null(table.column("error"))
        n_drop = table.num_rows - pc.sum(keep.cast("int64")).as_py()
        if not n_drop:
            continue
        mask = keep.to_numpy(zero_copy_only=False)
        stem = shard.name.rsplit(".", 1)[0]
        npy_dir = shard.parent / NPY_DIR
        for npy in sorted(npy_dir.glob(f"{stem}.*npy")) if npy_dir.is_dir() else []:
            array = np.load(npy)
            if array.shape[0] == table.num_rows:
                _write_atomic(npy, lambda tmp, a=array[mask]: np.save(tmp, a))
        _write_atomic(shard, lambda tmp: pq.write_table(table.filter(keep), tmp))
        dropped += n_drop
    return dropped
