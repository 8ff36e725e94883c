"""How one input becomes several output rows: audio windows, video frames, image tiles.

A preparer returns arrays with a leading *part* axis (one entry per window, frame or tile). The
arrays that go into the model are the model's inputs; arrays whose key starts with `ROW_PREFIX`
(and the audio windows' historical ``"offsets"``) are per-part row metadata that never reach the
model. A `Parts` names the extra columns its rows carry and reads them from that metadata, so
`featx.engine.jobs.EmbedJob` writes one row per part without knowing what the parts are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..families.spec import ROW_PREFIX, is_model_key, model_keys


__all__ = ["ROW_PREFIX", "Parts", "AUDIO_WINDOWS", "is_model_key", "model_keys", "register_parts", "parts_named"]


@dataclass(frozen=True)
class Parts:
    """One row per part of an input.

    ``fields``: the extra columns as (name, Arrow type name: ``"int32"``, ``"int64"``,
    ``"float64"``, ``"string"``, ``"list<float64>"`` or ``"bool"``); ``columns(arrays, i)`` gives part ``i``'s
    values for them from the prepared arrays. ``name`` is what the manifest records.
    """

    name: str
    fields: tuple[tuple[str, str], ...]
    columns: Callable[[Mapping[str, np.ndarray], int], dict[str, Any]]

    def arrow_fields(self) -> list[Any]:
        import pyarrow as pa

        types = {"int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(), "string": pa.string(),
                 "list<float64>": pa.list_(pa.float64()), "bool": pa.bool_()}
        return [pa.field(name, types[kind]) for name, kind in self.fields]


def _window_columns(arrays: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
    offsets = arrays.get("offsets")
    start = int(offsets[i][0]) if offsets is not None else None
    end = int(offsets[i][1]) if offsets is not None else None
    return {"window": i, "start": start, "end": end}


#: audio windows: sample offsets of each window (``featx embed --windows``)
AUDIO_WINDOWS = Parts("windows", (("window", "int32"), ("start", "int64"), ("end", "int64")), _window_columns)

_REGISTRY: dict[str, Parts] = {AUDIO_WINDOWS.name: AUDIO_WINDOWS}


def register_parts(parts: Parts) -> Parts:
    """Make ``parts`` known by name (engines that rebuild a job from its manifest look it up)."""
    _REGISTRY[parts.name] = parts
    return parts


def parts_named(name: str) -> Parts:
    """The registered `Parts` called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no row parts named {name!r}; known: {sorted(_REGISTRY)}") from None
