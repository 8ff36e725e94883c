"""Cosine search over an embeddings folder written by ``featx embed``.

Exact search streams the shards one at a time (memory: one shard plus k candidates per query) and
scores with one matrix product per shard. ``build_index`` writes an approximate USearch HNSW index
beside the shards (``OUT/_index.usearch`` + ``OUT/_index.json``); `search` uses it when it is present
and still matches the shards (a shard added or rewritten since makes it stale: exact search is used
and a warning says to rebuild). Scores are cosine similarities in [-1, 1] either way.

A query is a row's ``path`` in the folder (its stored embedding; mean of its windows for per-window
audio rows) or a file/URL, embedded with the model and options the folder's manifest records.

A folder with no embedding at all (no shards, or only error rows) is an error (`NoEmbeddingsError`),
as is a damaged shard (`featx.engine.state.DamagedShardError`, which names the repair command). When
the index returns fewer than k rows for a query (HNSW can miss rows, e.g. among many near-duplicates)
while the folder holds k, that query is answered by exact search.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, FeatxError, InputError, ModelLoadError
from .engine.lock import OutputLock, OutputNotWritableError
from .engine.state import MANIFEST, read_manifest, read_shard, shard_paths, tmp_name, write_json_atomic

__all__ = ["Hit", "search", "group_by_path", "exact_search", "index_search", "build_index", "load_embeddings",
           "resolve_queries", "count_rows", "NoEmbeddingsError", "INDEX_FILE", "INDEX_META"]

INDEX_FILE = "_index.usearch"
INDEX_META = "_index.json"


@dataclass
class Hit:
    """One search result: the row's path, cosine score, and window offsets for per-window rows;
    ``frame``/``time_s`` for video frame rows, ``start_s``/``end_s`` for a video's audio windows."""

    path: str
    score: float
    window: int | None = None
    start: int | None = None
    end: int | None = None
    frame: int | None = None
    time_s: float | None = None
    start_s: float | None = None
    end_s: float | None = None
    #: the row's text, for rows of text lines (``featx embed --text-file``)
    text: str | None = None

    def where(self) -> str:
        """``path@12.50s`` for a video frame (``path@1.00-2.00s`` for a sound-track window), else the path."""
        if self.time_s is not None:
            return f"{self.path}@{self.time_s:.2f}s"
        if self.start_s is not None:
            return f"{self.path}@{self.start_s:.2f}-{self.end_s:.2f}s"
        return self.path

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("path", "score")}


def _manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    manifest = read_manifest(out)
    if manifest is None:
        raise ConfigError(f"{out} is not a featx output folder (no {out}/_featx.json)")
    if manifest.get("kind") != "embeddings":
        raise ConfigError(f"{out} holds {manifest.get('kind')}, not embeddings: nothing to search")
    if manifest.get("pool") == "none":
        raise ConfigError(f"{out} holds token embeddings (--pool none); search needs one vector per row")
    return manifest


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class NoEmbeddingsError(FeatxError):
    """The output folder holds no embedding to search or index (no rows, or only error rows)."""


def _then_index(out: str | os.PathLike[str]) -> str:
    return f"\nthen, if you use the index: featx index {out}" if (Path(out) / INDEX_FILE).is_file() else ""


def _read(shard: Path, columns: Sequence[str]) -> Any:
    """The ``columns`` of ``shard`` that it has (`DamagedShardError` when it cannot be read)."""
    return read_shard(shard, list(columns), then=_then_index(shard.parent))


def count_rows(out: str | os.PathLike[str]) -> tuple[int, int]:
    """(rows with an embedding, all rows) of ``out``; reads only the ``error`` column."""
    valid = total = 0
    for shard in shard_paths(out):
        errors = read_shard(shard, ["error"], then=_then_index(out)).column("error")
        total += len(errors)
        valid += errors.null_count
    return valid, total


def _require_embeddings(out: str | os.PathLike[str]) -> int:
    """The number of rows with an embedding; `NoEmbeddingsError` when there is none."""
    valid, total = count_rows(out)
    if not total:
        raise NoEmbeddingsError(f"{out} has no embeddings: no rows were written yet "
                                f"(run `featx embed INPUT... --output {out}` first)")
    if not valid:
        raise NoEmbeddingsError(f"{out} has no embeddings: all {total} rows are errors (their error "
                                f"column says why; fix the inputs and rerun the embed command with "
                                f"--retry-failed)")
    return valid


def _shard_arrays(shard: Path, dim: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """(table, row numbers of valid rows, their embeddings [n, dim] float32) of one shard."""
    table = _read(shard, ("path", "embedding", *_PART_COLUMNS))
    col = table.column("embedding").combine_chunks()
    values = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid)
    return table, rows, np.ascontiguousarray(values[rows], dtype=np.float32)


def load_embeddings(out: str | os.PathLike[str]) -> Iterator[tuple[Path, Any, np.ndarray, np.ndarray]]:
    """Per shard: (shard path, table, valid row numbers, embeddings). Error rows are left out."""
    manifest = _manifest(out)
    for shard in shard_paths(out):
        table, rows, emb = _shard_arrays(shard, int(manifest["dim"]))
        yield shard, table, rows, emb


def _cosine(score: float) -> float:
    """A cosine similarity clipped to [-1, 1] (float rounding gives 1.0000002 for a row's own vector)."""
    return min(1.0, max(-1.0, score))


#: per-part columns a hit reports when the rows have them (audio windows, video frames)
_PART_COLUMNS = ("window", "start", "end", "frame", "time_s", "start_s", "end_s", "text")


def _hit(table: Any, row: int, score: float) -> Hit:
    hit = Hit(path=table.column("path")[row].as_py(), score=float(score))
    for name in _PART_COLUMNS:
        if name in table.column_names:
            setattr(hit, name, table.column(name)[row].as_py())
    return hit


def _best_per_path(table: Any, rows: np.ndarray, scores: np.ndarray, k: int) -> list[Hit]:
    """The best-scoring row of each of the ``k`` best paths among ``rows`` (``scores``: theirs)."""
    paths = table.column("path").to_numpy(zero_copy_only=False)
    seen: set[str] = set()
    hits = []
    for j in np.argsort(-scores, kind="stable"):
        path = paths[rows[j]]
        if path not in seen:
            seen.add(path)
            hits.append(_hit(table, int(rows[j]), scores[j]))
            if len(hits) == k:
                break
    return hits


def group_by_path(hits: list[Hit], k: int) -> list[Hit]:
    """The best hit of each path, best first, at most ``k`` (``hits`` best first)."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.path not in best or hit.score > best[hit.path].score:
            best[hit.path] = hit
    return sorted(best.values(), key=lambda h: -h.score)[:k]


def exact_search(out: str | os.PathLike[str], queries: np.ndarray, k: int = 10,
                 group_by: str | None = None) -> list[list[Hit]]:
    """Top-``k`` rows by cosine similarity for each query vector ([q, dim]), best first;
    ``group_by="path"``: the top ``k`` paths, each with its best row (e.g. a video's best frame)."""
    q = _unit(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
    best: list[list[Hit]] = [[] for _ in range(len(q))]
    for _, table, rows, emb in load_embeddings(out):
        if not len(rows):
            continue
        scores = np.clip(q @ _unit(emb).T, -1.0, 1.0)  # [q, n]; rounding can step past +-1
        if group_by == "path":
            for i in range(len(q)):
                best[i] = group_by_path(best[i] + _best_per_path(table, rows, scores[i], k), k)
            continue
        kk = min(k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        for i in range(len(q)):
            best[i].extend(_hit(table, int(rows[j]), scores[i, j]) for j in top[i])
            best[i] = sorted(best[i], key=lambda h: -h.score)[:k]
    return best


def _fingerprint(out: str | os.PathLike[str]) -> list[list[Any]]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in shard_paths(out)]


def build_index(out: str | os.PathLike[str], *, connectivity: int = 16, expansion_add: int = 128,
                expansion_search: int = 64, dtype: str = "f32") -> dict[str, Any]:
    """Build the USearch index of ``out``'s valid rows; returns the index description it stores.

    Keys are global row numbers (shard order, then row order); ``_index.json`` maps them back to
    shards and records the shards' names, sizes and mtimes to detect a stale index. Holds ``out``'s
    lock (`featx.engine.lock`) while it works; `NoEmbeddingsError` when there is nothing to index."""
    usearch = require_usearch()
    manifest = _manifest(out)
    with OutputLock(out):
        _require_embeddings(out)
        return _build_index(usearch, out, manifest, connectivity=connectivity, expansion_add=expansion_add,
                            expansion_search=expansion_search, dtype=dtype)


def _build_index(usearch: Any, out: str | os.PathLike[str], manifest: dict[str, Any], *, connectivity: int,
                 expansion_add: int, expansion_search: int, dtype: str) -> dict[str, Any]:
    index = usearch.Index(ndim=int(manifest["dim"]), metric="cos", dtype=dtype, connectivity=connectivity,
                          expansion_add=expansion_add, expansion_search=expansion_search)
    shards, first = [], 0
    for shard, table, rows, emb in load_embeddings(out):
        if len(rows):
            index.add((rows + first).astype(np.uint64), emb)
        shards.append([shard.name, table.num_rows, first])
        first += table.num_rows
    folder = Path(out)
    tmp = folder / tmp_name(INDEX_FILE)
    try:
        index.save(str(tmp))
        os.replace(tmp, folder / INDEX_FILE)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise OutputNotWritableError(f"cannot write the index {folder / INDEX_FILE} ({exc}); make {out} "
                                     f"writable, or free some space, and run `featx index {out}` again") from exc
    meta = {"shards": shards, "fingerprint": _fingerprint(out), "size": len(index), "dim": int(manifest["dim"]),
            "dtype": dtype, "connectivity": connectivity, "expansion_search": expansion_search}
    write_json_atomic(folder / INDEX_META, meta)
    return meta


def require_usearch() -> Any:
    from .errors import require

    return require("usearch.index", "index", purpose="featx index")


def _index_meta(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(out) / INDEX_META
    if not path.is_file() or not (Path(out) / INDEX_FILE).is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def index_state(out: str | os.PathLike[str]) -> str:
    """The index's state: "fresh", "stale" (shards changed since it was built) or "missing"."""
    meta = _index_meta(out)
    if meta is None:
        return "missing"
    return "fresh" if meta["fingerprint"] == _fingerprint(out) else "stale"


def index_search(out: str | os.PathLike[str], queries: np.ndarray, k: int = 10) -> list[list[Hit]]:
    """Approximate top-``k`` with the stored index (`ConfigError` when missing or stale); a query
    for which the index finds fewer than ``k`` rows while the folder has them is searched exactly,
    and so is every query when ``k`` is half the rows or more."""
    state = index_state(out)
    if state != "fresh":
        raise ConfigError(f"{out}: the index is {state}; run `featx index {out}`")
    usearch = require_usearch()
    meta = _index_meta(out)
    assert meta is not None
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if 2 * k >= int(meta["size"]):
        # most of the rows are asked for: a graph walk gains nothing over reading them all, and
        # it may swap rows at the tail; the exact answer costs the same
        return exact_search(out, q, k)
    index = usearch.Index.restore(str(Path(out) / INDEX_FILE))
    index.expansion_search = max(int(meta.get("expansion_search", 64)), 2 * k)  # not kept by save()
    matches = index.search(q, k)
    keys = np.atleast_2d(matches.keys)
    dist = np.atleast_2d(matches.distances)
    # one query gives a Matches (no .counts), several a BatchMatches
    counts = np.atleast_1d(getattr(matches, "counts", len(matches.keys)))
    starts = np.array([s[2] for s in meta["shards"]])
    tables: dict[int, Any] = {}
    results: list[list[Hit]] = []
    for i in range(len(q)):
        hits = []
        for key, d in zip(keys[i][: counts[i]], dist[i][: counts[i]]):
            s = int(np.searchsorted(starts, int(key), side="right") - 1)
            if s not in tables:
                tables[s] = _read(Path(out) / meta["shards"][s][0], ("path", *_PART_COLUMNS))
            hits.append(_hit(tables[s], int(key) - int(starts[s]), _cosine(1.0 - float(d))))
        results.append(hits)
    short = [i for i in range(len(q)) if int(counts[i]) < min(k, int(meta["size"]))]
    if short:  # HNSW missed rows (many near-duplicates do this): these queries are answered exactly
        for i, hits in zip(short, exact_search(out, q[short], k)):
            results[i] = hits
    return results


def resolve_queries(out: str | os.PathLike[str], queries: Sequence[str], *, device: str | None = "auto",
                    cache_dir: str | None = None) -> np.ndarray:
    """Query vectors [q, dim]: a row's stored embedding when the query is a ``path`` in ``out``,
    else the query file/URL embedded with the folder's model and options (a hub model is looked
    up in ``cache_dir``, default huggingface_hub's cache)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    manifest = _manifest(out)
    dim = int(manifest["dim"])
    sums = {q: np.zeros(dim, np.float64) for q in queries}
    counts = dict.fromkeys(queries, 0)
    wanted = pa.array(list(dict.fromkeys(queries)), pa.string())
    for _, table, rows, emb in load_embeddings(out):
        paths = table.column("path").take(pa.array(rows, pa.int64())) if len(rows) else None
        if paths is None:
            continue
        hits = np.flatnonzero(pc.is_in(paths, value_set=wanted).to_numpy(zero_copy_only=False))
        for j in hits:
            key = paths[int(j)].as_py()
            sums[key] += emb[j]
            counts[key] += 1
    missing = [q for q in queries if not counts[q]]
    if missing:
        for q in missing:
            if not (q.startswith(("http://", "https://")) or os.path.isfile(q)):
                raise InputError(f"query {q!r} is neither a row of {out} nor a readable file", source=q)
        from .engine.jobs import embedder_from_manifest

        try:
            embedder = embedder_from_manifest(manifest, device=device, cache_dir=cache_dir)
        except ModelLoadError as exc:
            raise ModelLoadError(f"cannot load the model {out} was embedded with, to embed the query "
                                 f"{missing[0]!r} (model {manifest['model']!r}, recorded in "
                                 f"{Path(out) / MANIFEST}): {exc}") from exc
        for q, vec in zip(missing, embedder.embed([embedder.prepare(q) for q in missing])):
            sums[q] = vec.astype(np.float64)
            counts[q] = 1
    return np.stack([sums[q] / counts[q] for q in queries]).astype(np.float32)


def search(out: str | os.PathLike[str], queries: Sequence[str], k: int = 10, *, method: str = "auto",
           device: str | None = "auto", cache_dir: str | None = None, group_by: str | None = None,
           texts: Sequence[str] = ()) -> list[list[Hit]]:
    """Top-``k`` hits per query, scores clipped to [-1, 1]. ``method``: "exact", "index" (error if
    missing/stale), or "auto" (the index when fresh, else exact; a stale index gives a warning).
    ``device`` embeds query files ("auto": CUDA when available); ``cache_dir``: see `resolve_queries`.
    ``group_by="path"``: the ``k`` best paths, each with its best row (a video's best frame).
    ``texts``: text queries, embedded by the text tower of OUT's model (`featx.text.search`); each
    query, file or text, is ranked on its own: the results are ``queries``' lists, then ``texts``'."""
    if k < 1:
        raise ConfigError(f"-k must be >= 1, got {k}")
    if group_by not in (None, "path"):
        raise ConfigError(f"group_by must be None or 'path', not {group_by!r}")
    manifest = _manifest(out)
    if not queries and not texts:
        raise InputError("no query: give a file, a row's path or a text")
    if texts:
        from .text.search import check_text_search

        check_text_search(out, manifest, cache_dir=cache_dir)
    _require_embeddings(out)
    parts = [resolve_queries(out, queries, device=device, cache_dir=cache_dir)] if queries else []
    if texts:
        from .text.search import text_queries

        parts.append(text_queries(out, manifest, texts, device=device, cache_dir=cache_dir))
    vectors = np.concatenate(parts)
    if method == "auto":
        state = index_state(out)
        if state == "stale":
            warnings.warn(f"{out}: the index is older than the shards; using exact search "
                          f"(rebuild with `featx index {out}`)", stacklevel=2)
        method = "index" if state == "fresh" else "exact"
    if group_by is not None:
        return _grouped_search(out, vectors, k, method)
    if method == "index":
        return index_search(out, vectors, k)
    if method == "exact":
        return exact_search(out, vectors, k)
    raise ConfigError(f"search method must be auto, exact or index, not {method!r}")


def _grouped_search(out: str | os.PathLike[str], vectors: np.ndarray, k: int, method: str) -> list[list[Hit]]:
    """`search` grouped by path: exact, or the index asked for more rows than ``k`` (many rows
    share a path), answered exactly for a query where that still gives fewer than ``k`` paths."""
    if method == "exact":
        return exact_search(out, vectors, k, group_by="path")
    if method != "index":
        raise ConfigError(f"search method must be auto, exact or index, not {method!r}")
    results = [group_by_path(hits, k) for hits in index_search(out, vectors, 16 * k)]
    short = [i for i, hits in enumerate(results) if len(hits) < k]
    if short:
        for i, hits in zip(short, exact_search(out, vectors[short], k, group_by="path")):
            results[i] = hits
    return results
