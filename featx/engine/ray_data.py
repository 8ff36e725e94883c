"""Ray Data integration: embeddings of a ``ray.data.Dataset`` across a cluster (public as `featx.ray`).

`embed` adds two stages to a dataset: plain CPU tasks that decode and preprocess each row with the
processor alone (no model is loaded there), then a pool of actors that each load the model once
(on a GPU with ``num_gpus``) and embed batches. A row that cannot be decoded or embedded gets its
error message in the ``error`` column and a null ``embedding``; it never fails its block.

The helpers below (`weightless_embedder`, `actor_pool`, `resolve_dtype_on_cluster`, `init_ray`) are
shared with the ``--engine ray`` batch job (`featx.engine.ray_engine`), which imports them from
here; `featx.ray` re-exports this module. Ray is an optional extra: ``pip install 'featx[ray]'``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError, error_text, require
from .codec import pack, unpack
from .inputs import DATA_COLUMNS, LOCATOR_COLUMNS, guess_source_column

# The public names, re-exported as `featx.ray`; `prepare_each` and `actor_embedder` are for the
# ``--engine ray`` job (`featx.engine.ray_engine`), which imports them by name.
__all__ = [
    "embed",
    "weightless_embedder",
    "actor_pool",
    "resolve_dtype_on_cluster",
    "init_ray",
    "decode_task_args",
    "source_values",
    "pick_column",
    "SOURCE_COLUMNS",
]

# Columns searched, in order, for the input when ``column`` is not given: the data first
# (read_binary_files gives both "bytes" and "path"; decoding the bytes avoids a second read).
SOURCE_COLUMNS = (*DATA_COLUMNS, *LOCATOR_COLUMNS)
_PREPARED = "__featx_prepared"  # internal column between the CPU tasks and the model actors
_OUTPUT = ("embedding", "error")


def _ray() -> Any:
    return require("ray", "ray", "the Ray engine")


def init_ray(address: str | None = None, **kwargs: Any) -> bool:
    """Connect to (or start) Ray unless already connected; True when this call started it.

    ``address=None`` follows Ray: ``RAY_ADDRESS``, else a cluster started on this machine with
    ``ray start``, else a new local instance.
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    kwargs.setdefault("logging_level", logging.WARNING)
    kwargs.setdefault("include_dashboard", False)
    ray.init(address=address, **kwargs)
    return True


def actor_pool(concurrency: int | tuple[int, int]) -> Any:
    """``ray.data.ActorPoolStrategy`` for a fixed pool (int) or an autoscaling one ((min, max))."""
    ray = _ray()
    if isinstance(concurrency, (tuple, list)):
        if len(concurrency) != 2 or not 1 <= int(concurrency[0]) <= int(concurrency[1]):
            raise ConfigError(f"concurrency must be an int or (min, max) with 1 <= min <= max, got {concurrency}")
        return ray.data.ActorPoolStrategy(min_size=int(concurrency[0]), max_size=int(concurrency[1]))
    if int(concurrency) < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    return ray.data.ActorPoolStrategy(size=int(concurrency))


# Memory reserved per decode task (Ray counts the worker process: ~300 MB with torch and the
# processors imported, measured by Ray's memory monitor, plus 36 MB for a decoded 12 MP photo, its
# resize and the prepared arrays of one batch). Also keeps the decode tasks' remote args different from the model
# actors', which is what stops Ray Data from fusing the two stages into the actors (decoding would
# then run in the actors, one at a time, instead of across the cluster's CPUs).
DECODE_TASK_MEMORY = 512 * 2**20


def decode_task_args() -> dict[str, Any]:
    """Ray remote args of the decode tasks (see `DECODE_TASK_MEMORY`)."""
    return {"num_cpus": 1, "memory": DECODE_TASK_MEMORY}


def _probe_dtype(dtype: str, device: str) -> tuple[str, str]:
    from ..models import resolve_dtype

    resolved, reason = resolve_dtype(dtype, device)
    return str(resolved).replace("torch.", ""), reason


def resolve_dtype_on_cluster(dtype: str, *, num_gpus: float = 0, num_cpus: float = 1) -> tuple[str, str]:
    """The concrete dtype (and why) that ``dtype`` means on a worker with these resources.

    "auto" depends on the hardware (bfloat16 on GPUs and CPUs that support it), so it is resolved
    once, on a worker like the model actors, and every actor then uses the same dtype.
    """
    ray = _ray()
    if dtype != "auto":
        return _probe_dtype(dtype, "cpu")
    if num_gpus and ray.cluster_resources().get("GPU", 0) < num_gpus:
        raise ConfigError(f"asked for {num_gpus} GPU(s) per model actor, but the Ray cluster has "
                          f"{ray.cluster_resources().get('GPU', 0):g} GPUs")
    device = "cuda" if num_gpus else "cpu"
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus or 0)(_probe_dtype)
    return tuple(ray.get(task.remote(dtype, device)))  # type: ignore[return-value]


def weightless_embedder(
    model: str | os.PathLike[str],
    *,
    pool: str | None = None,
    normalize: bool = False,
    dtype: str = "auto",
    revision: str | None = None,
    **kwargs: Any,
) -> Any:
    """An `Embedder` without weights, for a Ray driver or CPU task.

    It reads config.json and the preprocessor config only, so it can prepare inputs, validate the
    pooling and describe the job (``dim``, ``modality``, ...) for a model only the actors load.
    ``torch_dtype``/``device`` describe this machine's CPU; the engine replaces them with what the
    actors run. ``kwargs``: processor overrides and hub options.
    """
    from ..embedding import Embedder

    return Embedder(model, pool=pool, normalize=normalize, dtype=dtype, revision=revision, weights=False, **kwargs)


# ---- reading a source column -------------------------------------------------------------------
def pick_column(names: list[str], column: str | None) -> str:
    """The column holding the inputs: ``column``, else the first of `SOURCE_COLUMNS` present."""
    if column is not None:
        if column not in names:
            raise ConfigError(f"column {column!r} not in the dataset (columns: {names})")
        return column
    guess = guess_source_column(names, data_first=True)
    if guess is None:
        raise ConfigError(f"cannot tell which column holds the inputs (columns: {names}); pass column=")
    return guess


def source_values(table: Any, name: str) -> list[Any]:
    """Python values of one column: str paths, bytes, ndarrays (Ray tensor columns), dicts."""
    import pyarrow as pa

    col = table.column(name)
    if isinstance(col.type, pa.ExtensionType):  # read_images' tensor columns
        values: list[Any] = []
        for chunk in col.chunks:
            array = chunk.to_numpy(zero_copy_only=False)
            values.extend(array[i] for i in range(len(array)))
        return values
    return col.to_pylist()


def _source(value: Any, row: int) -> Any:
    """What ``Embedder.prepare`` reads for one cell; empty cells fail on that row only."""
    if isinstance(value, dict):  # Hugging Face datasets' Image/Audio struct
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("array") is not None:
            return value
        value = value.get("path")
    if value is None or (isinstance(value, (str, bytes)) and not value):
        raise InputError("empty input cell", source=f"row {row}")
    return value


def _prepare_batch(table: Any, preparer: Any, column: str | None) -> Any:
    """CPU task: decode + preprocess each row; arrays go on as .npz bytes, errors as text."""
    import pyarrow as pa


    clash = [n for n in (*_OUTPUT, _PREPARED) if n in table.column_names]
    if clash:
        raise ConfigError(f"the dataset already has column(s) {clash}; rename or drop them before featx.ray.embed")
    values = source_values(table, pick_column(table.column_names, column))
    blobs: list[bytes | None] = []
    errors: list[str | None] = []
    for arrays, error in prepare_each(preparer, values, _source):
        blobs.append(None if arrays is None else pack(arrays))
        errors.append(error)
    return table.append_column(_PREPARED, pa.array(blobs, pa.large_binary())).append_column(
        "error", pa.array(errors, pa.string()))


def prepare_each(preparer: Any, values: Iterable[Any],
                 to_source: Callable[[Any, int], Any] = lambda value, _row: value) -> Iterator[tuple[Any, str | None]]:
    """(arrays, None) or (None, error text) per value, in order: the decode side of both Ray paths
    (``featx.ray.embed`` and ``--engine ray``); one bad input never fails its block."""
    for row, value in enumerate(values):
        try:
            yield preparer.prepare(to_source(value, row)), None
        except Exception as exc:  # noqa: BLE001 - one bad input becomes its row's error
            yield None, error_text(exc)


def actor_embedder(light: Any, *, dtype: str, device: str, hub: dict[str, Any]) -> Any:
    """The `Embedder` a model actor runs, loaded from the driver's weightless one (same
    processor, pooling and revision; a local model folder by its absolute path, since actors need
    not share the driver's working directory)."""
    from ..embedding import Embedder
    from ..hub import recorded_source

    hub = {k: v for k, v in hub.items() if k != "revision"}
    # the driver's class (a text tower's embedder loads the text tower)
    make = type(light) if isinstance(light, Embedder) else Embedder
    return make(recorded_source(light.model_id), pool=light.pool, normalize=light.normalize, dtype=dtype,
                    device=device, processor=light.processor, revision=light.revision,
                backend=getattr(light, "backend", "torch"), **hub)


class _EmbedActor:
    """The model, loaded once per actor; embeds the rows the CPU tasks prepared."""

    def __init__(self, preparer: Any, pool: str, normalize: bool, dtype: str, device: str,
                 batch_size: int, hub: dict[str, Any]) -> None:
        from .jobs import EmbedJob

        light = preparer.with_options(pool=pool, normalize=normalize)
        self.job = EmbedJob(actor_embedder(light, dtype=dtype, device=device, hub=hub), batch_size=batch_size)

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        from .inputs import Input
        from .workers import Prepared
        from .writer import arrow_column

        blobs = table.column(_PREPARED).to_pylist()
        errors = table.column("error").to_pylist()
        vectors: list[np.ndarray | None] = [None] * len(blobs)
        ok = [i for i, blob in enumerate(blobs) if blob is not None]
        if ok:
            batch = [Prepared(Input(str(i), ""), arrays=unpack(blobs[i])) for i in ok]
            for i, rows in zip(ok, self.job.rows(batch)):
                vectors[i], errors[i] = rows[0].get("embedding"), rows[0].get("error")
        typ = self.job.schema().field("embedding").type
        table = table.drop_columns([_PREPARED, "error"])
        return table.append_column("embedding", arrow_column(vectors, typ)).append_column(
            "error", pa.array(errors, pa.string()))


def embed(
    dataset: Any,
    model: str | os.PathLike[str],
    *,
    pool: str | None = None,
    normalize: bool = False,
    batch_size: int = 32,
    dtype: str = "auto",
    num_gpus: float = 0,
    concurrency: int | tuple[int, int] = 1,
    column: str | None = None,
    num_cpus: float = 1,
    prepare_batch_size: int | None = None,
    revision: str | None = None,
    **options: Any,
) -> Any:
    """``dataset`` with ``embedding`` (float32 [dim], null on error) and ``error`` columns added.

    ``dataset`` has a column of paths/URLs, encoded bytes or decoded images: ``column``, else the
    first of "bytes", "image", "audio", "path", "file", "filename", "url" (so the output of
    ``ray.data.read_binary_files(..., include_paths=True)`` or ``read_images(..., include_paths=True)``
    works as is). ``concurrency`` model actors (an int, or (min, max) to autoscale) with ``num_gpus``
    GPUs and ``num_cpus`` CPUs each embed ``batch_size`` rows at a time; decoding runs in CPU tasks
    over ``prepare_batch_size`` rows (default ``batch_size``). ``pool="none"`` gives
    [tokens, dim] per row. ``dtype="auto"`` is resolved by each actor for its device; name a dtype
    on a mixed cluster. ``options``: processor overrides and hub options. Lazy like any Ray
    Dataset: nothing runs until it is consumed. Prefer ``read_binary_files`` over ``read_images``:
    Ray's image reader fails the whole block on an undecodable file, featx's decoder fails one row.
    """
    _ray()
    if not hasattr(dataset, "map_batches"):
        raise ConfigError(f"featx.ray.embed takes a ray.data.Dataset, not {type(dataset).__name__}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    from ..hub import HubOptions

    hub = {k: options[k] for k in options if k in HubOptions.__dataclass_fields__}
    if revision is not None:
        hub["revision"] = revision
    preparer = weightless_embedder(model, pool=pool, normalize=normalize, dtype=dtype, **hub,
                                   **{k: v for k, v in options.items() if k not in hub})
    prepared = dataset.map_batches(
        _prepare_batch,
        fn_kwargs={"preparer": preparer, "column": column},
        batch_format="pyarrow",
        batch_size=prepare_batch_size or batch_size,
        **decode_task_args(),
    )
    return prepared.map_batches(
        _EmbedActor,
        fn_constructor_kwargs={"preparer": preparer, "pool": preparer.pool, "normalize": bool(normalize),
                               "dtype": str(dtype), "device": "cuda" if num_gpus else "cpu",
                               "batch_size": batch_size, "hub": hub},
        batch_format="pyarrow",
        batch_size=batch_size,
        num_gpus=num_gpus or None,
        num_cpus=num_cpus,
        compute=actor_pool(concurrency),
    )
