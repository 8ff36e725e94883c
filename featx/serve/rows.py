"""The searchable rows of an output folder, held in memory, and their reload (``--watch``).

A `Rows` snapshot is read with `featx.search.load_embeddings` (the same shards, row order and
validity as ``featx search``); queries are scored with one matrix product over unit vectors,
like `featx.search.exact_search`, so the scores are the same. Snapshots are immutable: a reload
builds a new one and swaps it in, so a request in progress finishes on the snapshot it started
with and no request is dropped.

Row ids are global row numbers (shards in order, then rows; error rows count), the numbering of
the ANN index (`featx.search.build_index`): stable while shards are only added.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import search as _search
from ..engine.state import read_manifest, read_shard, shard_paths
from ..errors import ConfigError, InputError

__all__ = ["Rows", "RowsHolder", "PASSTHROUGH", "load_rows", "fingerprint"]

# Row columns returned with a hit when a shard has them: audio windows, video frames and sound-track
# windows, text lines; and whatever else `featx.search` returns with its hits.
PASSTHROUGH = tuple(dict.fromkeys(("window", "start", "end", "frame", "time_s", "start_s", "end_s", "text",
                                   *getattr(_search, "_PART_COLUMNS", ()))))


def fingerprint(out: str | os.PathLike[str]) -> tuple[tuple[str, int, int], ...]:
    """The shards' names, sizes and mtimes: changes when a shard is added or rewritten."""
    found = []
    for p in shard_paths(out):
        try:
            st = p.stat()
        except FileNotFoundError:  # replaced while we looked: the next poll sees the new one
            continue
        found.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(found)


@dataclass(frozen=True)
class Rows:
    """One snapshot: the valid rows' unit vectors, ids, paths and pass-through columns."""

    out: str
    manifest: dict[str, Any]
    ids: np.ndarray  # int64 [n]
    paths: Any  # pyarrow string array [n]
    vectors: np.ndarray  # float32 [n, dim], unit length
    extra: dict[str, list[Any]] = field(default_factory=dict)
    total: int = 0  # all rows, error rows included
    stamp: tuple[tuple[str, int, int], ...] = ()

    @property
    def count(self) -> int:
        return int(len(self.ids))

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def search(self, query: np.ndarray, k: int, prefix: str | None = None) -> list[dict[str, Any]]:
        """Top-``k`` rows by cosine similarity to ``query`` ([dim]), best first; ``prefix``
        keeps rows whose path starts with it."""
        import pyarrow.compute as pc

        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise InputError(f"the query vector has {q.shape[0]} values, the rows {self.dim}")
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        candidates = np.arange(self.count)
        if prefix:
            keep = pc.starts_with(self.paths, pattern=prefix).to_numpy(zero_copy_only=False)
            candidates = np.flatnonzero(keep)
        if not len(candidates):
            return []
        vectors = self.vectors if len(candidates) == self.count else self.vectors[candidates]
        scores = np.clip(vectors @ q, -1.0, 1.0)
        kk = min(k, len(scores))
        top = np.argpartition(-scores, kk - 1)[:kk]
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = []
        for j in top:
            i = int(candidates[j])
            hit: dict[str, Any] = {"id": int(self.ids[i]), "path": self.paths[i].as_py(), "score": float(scores[j])}
            for name, values in self.extra.items():
                if values[i] is not None:
                    hit[name] = values[i]
            hits.append(hit)
        return hits

    def path_of(self, row_id: int) -> str | None:
        """The ``path`` of the valid row ``row_id`` (None when there is no such row)."""
        pos = int(np.searchsorted(self.ids, row_id))
        if pos < self.count and int(self.ids[pos]) == row_id:
            return str(self.paths[pos].as_py())
        return None


def load_rows(out: str | os.PathLike[str]) -> Rows:
    """Read ``out``'s valid rows into a `Rows` snapshot (`ConfigError` if it holds no embeddings)."""
    import pyarrow as pa

    from ..search import load_embeddings

    stamp = fingerprint(out)
    manifest = read_manifest(out)
    if manifest is None:
        raise ConfigError(f"{out} is not a featx output folder (no {out}/_featx.json)")
    ids, paths, blocks = [], [], []
    extra: dict[str, list[Any]] = {name: [] for name in PASSTHROUGH}
    first = 0
    for shard, table, rows, emb in load_embeddings(out):
        ids.append(rows.astype(np.int64) + first)
        index = pa.array(rows, pa.int64())
        paths.append(table.column("path").take(index).combine_chunks().cast(pa.string()))
        columns = {name: table.column(name) for name in PASSTHROUGH if name in table.column_names}
        missing = [name for name in PASSTHROUGH if name not in columns]
        if missing:  # e.g. video rows' frame/time_s, which load_embeddings does not read
            others = read_shard(shard, missing)
            columns.update({name: others.column(name) for name in others.column_names})
        for name in PASSTHROUGH:
            extra[name].extend(columns[name].take(index).to_pylist() if name in columns else [None] * len(rows))
        blocks.append(emb)
        first += table.num_rows
    dim = int(manifest["dim"])
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return Rows(out=os.fspath(out), manifest=manifest,
                ids=np.concatenate(ids) if ids else np.zeros(0, np.int64),
                paths=pa.concat_arrays(paths) if paths else pa.array([], pa.string()),
                vectors=np.ascontiguousarray(vectors),
                extra={k: v for k, v in extra.items() if any(x is not None for x in v)},
                total=first, stamp=stamp)


class RowsHolder:
    """The current `Rows` of ``out``; with ``watch_s`` a thread reloads them when shards change.

    ``on_reload`` is called with each new snapshot (after the swap). A reload that fails (a
    shard being repaired) keeps the old snapshot and is retried at the next poll.
    """

    def __init__(self, out: str | os.PathLike[str], *, watch_s: float | None = None,
                 on_reload: Callable[[Rows], None] | None = None) -> None:
        self.out = os.fspath(out)
        self.current = load_rows(out)
        self.last_error: str | None = None
        self._on_reload = on_reload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if watch_s:
            self._thread = threading.Thread(target=self._watch, args=(float(watch_s),), name="featx-watch",
                                            daemon=True)
            self._thread.start()

    def reload_if_changed(self) -> bool:
        """Reload when the shards differ from the snapshot's; returns whether it did."""
        if fingerprint(self.out) == self.current.stamp:
            return False
        try:
            fresh = load_rows(self.out)
        except Exception as exc:  # noqa: BLE001 - keep serving the old rows; say why in /healthz
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.last_error = None
        self.current = fresh  # one reference assignment: readers see the old or the new snapshot
        if self._on_reload is not None:
            self._on_reload(fresh)
        return True

    def _watch(self, every: float) -> None:
        while not self._stop.wait(every):
            self.reload_if_changed()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

