"""The Ray engine (``featx embed ... --engine ray``): the local engine's job on a Ray cluster.

Same jobs (`featx.engine.jobs`), same shards, manifest and schema metadata (`ShardWriter`), same
resume bookkeeping (`featx.engine.state`) as `featx.engine.local`; only the scheduling differs:

    driver: walk inputs, skip done ones and duplicates -> work blocks in Ray's object store
    Ray Data: map_batches CPU tasks (decode + preprocess, processor only)
              -> map_batches actor pool (the model, loaded once per actor; GPUs with num_gpus)
    driver: rows back in completion order -> ShardWriter (atomic shards)

The driver walks all inputs before the first block runs (the dataset needs its blocks up front);
its memory holds the done-key set (8 bytes per input) and one object reference per block. Work
blocks live in Ray's object store, which spills to disk when large. Shards are written by the
driver only, so an interrupted job (even ``kill -9`` of the driver) leaves complete shards, and the
same command skips them on restart.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..errors import ConfigError, FeatxError
from .bookkeeping import finish, open_output, record, shard_writer
from .codec import pack, unpack
from .inputs import Input, describe_specs, iter_inputs
from .jobs import Job
from .local import RunOptions
from .lock import OutputLock
from .progress import Progress, Summary
from .state import (
    KeySet,
)
from .workers import FeedStats, Prepared, prepare_only, unique_inputs
from .writer import ShardWriter

__all__ = ["RayOptions", "run", "add_arguments", "options_from_args"]

_MAX_BLOCK_ROWS = 1024
_MAX_BLOCK_BYTES = 64 * 2**20


@dataclass
class RayOptions:
    """Where and how wide to run on Ray; like `RunOptions`, nothing here changes the output.

    ``actors``: model actors, an int or (min, max) to autoscale; None: one per GPU when the actors
    use GPUs, else 1. ``gpus_per_actor``: None: 1 when ``device`` allows and the cluster has GPUs,
    else 0 (fractions share a GPU). ``device``: "auto", "cpu" or "cuda". ``prepare_batch_size``:
    inputs per decode task batch (default: the job's batch size). ``threads_per_actor``: torch
    threads in each model actor (default: Ray's, one per reserved CPU).
    """

    address: str | None = None
    actors: int | tuple[int, int] | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float = 1.0
    device: str = "auto"
    prepare_batch_size: int | None = None
    threads_per_actor: int | None = None
    init_kwargs: dict[str, Any] = field(default_factory=dict)


def add_arguments(parser: Any) -> None:
    """The ``featx embed`` options of the Ray engine (used with ``--engine ray``)."""
    group = parser.add_argument_group("Ray engine (--engine ray)")
    group.add_argument("--address", help="Ray cluster address, e.g. HEAD:6379 (default: RAY_ADDRESS, else a "
                                         "cluster started on this machine with `ray start`, else a local instance)")
    group.add_argument("--actors", type=int, help="model actors (default: one per GPU, else 1)")
    group.add_argument("--gpus-per-actor", type=float, help="GPUs per model actor (default: 1 when the cluster "
                                                            "has GPUs, else 0; 0.5 puts two actors on a GPU)")
    group.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs reserved per model actor (default 1)")


def options_from_args(args: Any) -> RayOptions:
    """`RayOptions` from parsed ``featx embed`` arguments (`add_arguments` plus ``--device``)."""
    device = getattr(args, "device", "auto") or "auto"
    return RayOptions(address=getattr(args, "address", None), actors=getattr(args, "actors", None),
                      gpus_per_actor=getattr(args, "gpus_per_actor", None),
                      cpus_per_actor=getattr(args, "cpus_per_actor", 1.0) or 1.0, device=device)


# ---- Ray-side work (module-level so that workers import it) ----------------
def _prepare_task(table: Any, preparer: Any) -> Any:
    """CPU task: decode + preprocess each input of a work block (the processor only, no model)."""
    import pyarrow as pa

    from .ray_data import prepare_each

    columns = [table.column(n).to_pylist() for n in ("key", "src", "data")]
    sources = [data if data is not None else src for _, src, data in zip(*columns)]
    # inputs known to fail before decoding (a folder that cannot be listed, a text line that is
    # not UTF-8) keep their error and are not prepared
    known = table.column("error").to_pylist() if "error" in table.column_names else [None] * len(sources)
    todo = [i for i, e in enumerate(known) if e is None]
    outcomes = dict(zip(todo, prepare_each(preparer, [sources[i] for i in todo])))
    out = []
    for i, key in enumerate(columns[0]):
        arrays, error = outcomes.get(i, (None, known[i]))
        item = Input(key, "")  # the source is not needed past this point
        failure = None if error is None else _Failed(error)
        out.append(_pack_prepared(Prepared(item, arrays=arrays, error=failure)))
    return pa.table({"item": pa.array(out, pa.large_binary())})


def _pack_prepared(prepared: Prepared) -> bytes:
    error = None if prepared.error is None else str(prepared.error)
    return pack({"key": prepared.input.key, "arrays": prepared.arrays, "error": error})


def _unpack_prepared(blob: bytes) -> Prepared:
    data = unpack(blob)
    error = None if data["error"] is None else _Failed(data["error"])
    return Prepared(Input(data["key"], ""), arrays=data["arrays"], error=error)


def _rows_table(job: Any, batch: list[Prepared]) -> Any:
    import pyarrow as pa

    rows = job.rows(batch)
    return pa.table({"rows": pa.array([pack(r) for r in rows], pa.large_binary())})


def _features_task(table: Any, job: Any) -> Any:
    """A job without a model (``featx features``): prepare and make rows in the same CPU task."""
    prepared = _prepare_task(table, job.preparer)
    return _rows_table(job, [_unpack_prepared(b) for b in prepared.column("item").to_pylist()])


class _RowsActor:
    """Loads the job's model once; turns prepared inputs into output rows."""

    def __init__(self, job: Any, dtype: str, device: str, threads: int | None = None) -> None:
        import torch

        from .ray_data import actor_embedder

        if threads:
            torch.set_num_threads(threads)
        embedder = actor_embedder(job.embedder, dtype=dtype, device=device, hub=getattr(job, "hub_options", {}))
        self.job = copy.copy(job)
        self.job.embedder = self.job.preparer = embedder

    def __call__(self, table: Any) -> Any:
        return _rows_table(self.job, [_unpack_prepared(b) for b in table.column("item").to_pylist()])


class _Failed(FeatxError):
    """An input's error carried from a decode task to the model actor as its final text (an
    arbitrary exception may not pickle; a FeatxError's text goes to the error column as is)."""


# ---- driver ---------------------------------------------------------------------------------------
def _blocks(items: Iterable[Input], first_rows: int) -> Iterator[Any]:
    """Work blocks (Arrow tables key/src/data), small first (spread a small job over workers),
    growing to `_MAX_BLOCK_ROWS` so that a large job does not hold millions of references."""
    import pyarrow as pa

    keys: list[str] = []
    srcs: list[str | None] = []
    datas: list[bytes | None] = []
    errors: list[str | None] = []
    nbytes = 0
    made = 0

    def table() -> Any:
        return pa.table({"key": pa.array(keys, pa.string()), "src": pa.array(srcs, pa.string()),
                         "data": pa.array(datas, pa.large_binary()), "error": pa.array(errors, pa.string())})

    for item in items:
        keys.append(item.key)
        errors.append(item.error)
        is_bytes = isinstance(item.src, bytes)
        srcs.append(None if is_bytes else item.src)
        datas.append(item.src if is_bytes else None)
        nbytes += len(item.src)
        made += 1
        limit = min(_MAX_BLOCK_ROWS, max(first_rows, made // 64))
        if len(keys) >= limit or nbytes >= _MAX_BLOCK_BYTES:
            yield table()
            keys, srcs, datas, errors, nbytes = [], [], [], [], 0
    if keys:
        yield table()


def _resources(ray: Any, ro: RayOptions) -> tuple[float, int | tuple[int, int], str]:
    """(GPUs per actor, actors, device) from the options and the cluster."""
    if ro.device not in ("auto", "cpu", "cuda") and not ro.device.startswith("cuda"):
        raise ConfigError(f"--device for the Ray engine must be auto, cpu or cuda, not {ro.device!r}")
    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
    gpus = ro.gpus_per_actor
    if gpus is None:
        gpus = 0.0 if ro.device == "cpu" or (ro.device == "auto" and not cluster_gpus) else 1.0
    if ro.device == "cpu" and gpus:
        raise ConfigError("device cpu with GPUs per actor: drop one of them")
    if gpus and cluster_gpus < gpus:
        raise ConfigError(f"the model actors need {gpus:g} GPU(s) each but the Ray cluster has {cluster_gpus:g}")
    actors = ro.actors
    if actors is None:
        actors = max(1, int(cluster_gpus // gpus)) if gpus else 1
    # The decode tasks need a CPU beside the actors, or the job would wait forever.
    cpus = float(ray.cluster_resources().get("CPU", 0))
    fewest = actors[0] if isinstance(actors, (tuple, list)) else actors
    if cpus - fewest * ro.cpus_per_actor < 1:
        raise ConfigError(f"{fewest} model actor(s) of {ro.cpus_per_actor:g} CPUs leave no CPU for decoding on a "
                          f"Ray cluster of {cpus:g} CPUs; use fewer actors or CPUs per actor")
    return gpus, actors, "cuda" if gpus else "cpu"


def _quiet_ray_data(ray: Any) -> dict[str, Any]:
    """Turn off Ray Data's progress bars and logs below ERROR (featx prints its own progress; Ray's
    logs stay in /tmp/ray/session_latest/logs); returns the previous settings for `_restore`."""
    ctx = ray.data.DataContext.get_current()
    saved = {}
    for name in ("enable_progress_bars", "print_on_execution_start", "enable_auto_log_stats"):
        if hasattr(ctx, name):
            saved[name] = getattr(ctx, name)
            setattr(ctx, name, False)
    logger = logging.getLogger("ray.data")
    saved["_level"] = logger.level
    logger.setLevel(logging.ERROR)
    return saved


def _restore(ray: Any, saved: dict[str, Any]) -> None:
    ctx = ray.data.DataContext.get_current()
    logging.getLogger("ray.data").setLevel(saved.pop("_level"))
    for name, value in saved.items():
        setattr(ctx, name, value)


def _consume(ds: Any, writer: ShardWriter, summary: Summary, progress: Progress) -> None:
    """Write the rows of each input as they come back; a re-executed task's repeats are dropped."""
    written = KeySet()
    blocks = ds.iter_batches(batch_size=None, batch_format="pyarrow")
    try:
        for block in blocks:
            for blob in block.column("rows").to_pylist():
                rows = unpack(blob)
                if not rows or not written.add(str(rows[0]["path"])):
                    continue
                record(writer, summary, [rows])
            progress.update(summary)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:  # stop the streaming execution now, not at garbage collection
            close()


def _pipeline(ray: Any, job: Any, refs: list[Any], opts: RunOptions, ro: RayOptions,
              model: tuple[float, int | tuple[int, int], str, str] | None) -> Any:
    from .ray_data import actor_pool, decode_task_args

    ds = ray.data.from_arrow_refs(refs)
    prep_batch = ro.prepare_batch_size or opts.batch_size
    if model is None:  # no model (featx features): rows are made in the CPU tasks
        return ds.map_batches(_features_task, fn_kwargs={"job": job}, batch_format="pyarrow",
                              batch_size=prep_batch, **decode_task_args())
    gpus, actors, device, torch_dtype = model
    light = copy.copy(job)  # the job without its model: the actors load their own
    light.embedder = light.preparer = prepare_only(job.embedder)
    ds = ds.map_batches(_prepare_task, fn_kwargs={"preparer": light.preparer}, batch_format="pyarrow",
                        batch_size=prep_batch, **decode_task_args())
    return ds.map_batches(_RowsActor, fn_constructor_kwargs={"job": light, "dtype": torch_dtype, "device": device,
                                                                "threads": ro.threads_per_actor},
                          batch_format="pyarrow", batch_size=opts.batch_size, num_gpus=gpus or None,
                          num_cpus=ro.cpus_per_actor, compute=actor_pool(actors))


def run(job: Job, specs: Sequence[str], out: str, opts: RunOptions | None = None, *,
        stream: TextIO | None = None, ray_options: RayOptions | None = None) -> Summary:
    """Run ``job`` over ``specs`` into ``out`` on Ray; same contract as `featx.engine.local.run`.

    Connects to ``ray_options.address`` (default: ``RAY_ADDRESS``, else a cluster started on this
    machine, else a new local instance) unless Ray is already initialised; an instance started
    here is shut down at the end. The ``workers`` and ``worker_kind`` run options do not apply
    (Ray schedules the decode tasks over the cluster's CPUs).
    """
    from ..errors import require
    from .ray_data import init_ray, resolve_dtype_on_cluster

    ray = require("ray", "ray", "--engine ray")
    opts = opts or RunOptions()
    ro = ray_options or RayOptions()
    start = time.perf_counter()
    started = init_ray(ro.address, **ro.init_kwargs)
    saved = _quiet_ray_data(ray)
    lock: OutputLock | None = None
    try:
        manifest = {**job.manifest(), **describe_specs(specs)}
        model = None
        if getattr(job, "embedder", None) is not None:
            gpus, actors, device = _resources(ray, ro)
            torch_dtype, _ = resolve_dtype_on_cluster(job.dtype, num_gpus=gpus, num_cpus=ro.cpus_per_actor)
            model = (gpus, actors, device, torch_dtype)
            manifest.update(torch_dtype=torch_dtype, device=device)  # what the actors run, not the driver
        lock = OutputLock(out).acquire()  # the local engine's lock too: one job per OUT
        done, failed_before = open_output(out, manifest, opts)
        stats = FeedStats()
        # The local engine's bookkeeping: skip done keys and duplicates, --limit counts done ones.
        items = unique_inputs(iter_inputs(specs, column=opts.column, extensions=opts.extensions), done,
                        failed_before, stats, opts.limit, threading.Event())
        refs = []
        for table in _blocks(items, ro.prepare_batch_size or opts.batch_size):
            refs.append(ray.put(table))
            stats.fed += table.num_rows
        stats.finished = True
        writer = shard_writer(job, out, manifest, opts)
        progress = Progress(opts.progress, stream, interval=opts.progress_interval)
        progress.total = stats.fed + stats.skipped + stats.duplicates
        summary = Summary(skipped=stats.skipped, duplicates=stats.duplicates,
                          skipped_failed=stats.skipped_failed)
        failed = True
        try:
            if refs:
                _consume(_pipeline(ray, job, refs, opts, ro, model), writer, summary, progress)
            failed = False
        except KeyboardInterrupt:
            summary.interrupted = True
            failed = False
        finally:
            try:
                writer.close()  # finished rows are kept, also when the job stops early
            except Exception:
                if not failed:
                    raise
    finally:
        if lock is not None:
            lock.release()
        _restore(ray, saved)
        if started:
            ray.shutdown()
    return finish(summary, writer, progress, start)
