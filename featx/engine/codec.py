"""Plain-data bytes for what engine stages hand each other (prepared arrays, output rows).

JSON for the structure plus one ``.npz`` for the arrays, read back with ``allow_pickle=False``:
nothing passed between processes is ever unpickled by featx.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

__all__ = ["pack", "unpack"]

_ND = "__featx_nd__"


def pack(obj: Any) -> bytes:
    """Bytes for nested dicts/lists of str, numbers, bools, None and NumPy arrays."""
    arrays: list[np.ndarray] = []

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            arrays.append(value)
            return {_ND: len(arrays) - 1}
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        raise TypeError(f"cannot pack a {type(value).__name__}")

    header = json.dumps(encode(obj)).encode()
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return len(header).to_bytes(8, "little") + header + buffer.getvalue()


def unpack(blob: bytes) -> Any:
    """The value `pack` was given (tuples come back as lists)."""
    size = int.from_bytes(blob[:8], "little")
    structure = json.loads(blob[8 : 8 + size])
    with np.load(io.BytesIO(blob[8 + size :]), allow_pickle=False) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {_ND}:
                return arrays[value[_ND]]
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(structure)
