"""The ``featx`` command line: embed collections into Parquet shards, search them, inspect models.

Exit status: 0 success; 1 error (model cannot load, a dependency is missing, I/O failure);
2 usage error (bad arguments, missing inputs, an output folder made with other settings);
3 the job completed but some of its inputs failed (their rows carry the error), in this run or in
an earlier run whose rows were kept (``--retry-failed`` retries them); 130 interrupted by SIGINT or
SIGTERM (the rows finished so far are written; re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError, FeatxError, InputError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_FAILED_INPUTS",
           "EXIT_INTERRUPTED", "ENGINES"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FAILED_INPUTS = 3
EXIT_INTERRUPTED = 130

# --engine NAME -> (module, keyword). The module has run(job, specs, out, opts, **kw) -> Summary (see
# featx.engine.local); optionally add_arguments(parser) for its own options and options_from_args(args),
# whose result is passed to run() under the keyword.
ENGINES: dict[str, tuple[str, str | None]] = {
    "local": ("featx.engine.local", None),
    "ray": ("featx.engine.ray_engine", "ray_options"),
}


def _engine_module(name: str) -> Any:
    try:
        return importlib.import_module(ENGINES[name][0])
    except ModuleNotFoundError as exc:
        if exc.name != ENGINES[name][0]:
            raise
        raise ConfigError(f"the {name} engine is not part of this featx version") from None

_EPILOG = """exit status: 0 all inputs succeeded; 3 the job completed with failed inputs (see the error
column; also when they failed in an earlier run of the same job); 2 usage error; 1 other error;
130 interrupted (re-run the same command to resume)."""


def _kv(text: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (``size={"height": 64, "width": 64}``); non-JSON is a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files, folders (recursive), globs, @list.txt (paths/URLs), or .parquet with --column")
    p.add_argument("-o", "--output", required=True, help="output folder of Parquet shards")
    p.add_argument("-p", "--processor-option", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                   help="processor override, JSON value (repeatable), e.g. size='{\"shortest_edge\": 256}'")
    p.add_argument("--column", help="the Parquet column holding paths/URLs or encoded bytes")
    p.add_argument("--extensions", help="file extensions kept in folders and globs (comma-separated; '*' = all)")
    p.add_argument("--limit", type=_positive, help="take only the first N distinct inputs (done ones count)")
    p.add_argument("--workers", type=_positive, default=min(8, os.cpu_count() or 1),
                   help="decode/preprocess workers (default: CPU count, at most 8)")
    p.add_argument("--worker-type", choices=("thread", "process"), default="thread",
                   help="workers as threads (default) or processes")
    p.add_argument("--format", choices=("parquet", "npy"), default="parquet",
                   help="npy: also write .npy shards aligned with the Parquet rows (OUT/_npy)")
    p.add_argument("--npy-dtype", choices=("float32", "float16"), default="float32")
    p.add_argument("--shard-size", type=_positive, default=8192, help="rows per shard (default 8192)")
    p.add_argument("--overwrite", action="store_true", help="delete the output folder's shards and start over")
    p.add_argument("--retry-failed", action="store_true", help="drop earlier error rows and retry those inputs")
    p.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                   help="auto: a bar on a terminal, log lines otherwise")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featx", description="Images and audio into features and embeddings.",
                                     epilog=_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = sub.add_parser("embed", help="embed inputs into Parquet shards", epilog=_EPILOG,
                           description="Embed images or audio with a model into OUT (resumable).")
    embed.add_argument("-m", "--model", required=True, help="local folder or hub id")
    embed.add_argument("--revision", help="hub revision of the model")
    _add_job_options(embed)
    embed.add_argument("--pool", choices=("cls", "mean", "pooler", "none"),
                       help="pooling (default: cls for models with a class token, else mean)")
    embed.add_argument("--normalize", action="store_true", help="L2-normalize the embeddings")
    embed.add_argument("--batch-size", type=_positive, default=32)
    embed.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    embed.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N")
    embed.add_argument("--threads", type=_positive,
                       help="torch threads for the model on CPU (default: torch's choice, one per core)")
    embed.add_argument("--windows", action="store_true",
                       help="audio: one row per model window (with start/end sample offsets)")
    embed.add_argument("--engine", choices=tuple(ENGINES), default="local",
                       help="local (this machine, default) or ray (a Ray cluster; pip install 'featx[ray]')")
    for name in ENGINES:
        try:
            module = _engine_module(name)
        except ConfigError:
            continue
        if hasattr(module, "add_arguments"):
            module.add_arguments(embed)

    feats = sub.add_parser("features", help="write preprocessed features (no model) as shards", epilog=_EPILOG)
    feats.add_argument("--processor", required=True, help="folder, preprocessor JSON or hub id")
    _add_job_options(feats)

    search = sub.add_parser("search", help="nearest rows of an embeddings folder")
    search.add_argument("output", metavar="OUT")
    search.add_argument("queries", nargs="+", metavar="QUERY", help="an image/audio file or URL, or a row's path")
    search.add_argument("-k", type=_positive, default=10)
    search.add_argument("--json", action="store_true", help="machine-readable output")
    how = search.add_mutually_exclusive_group()
    how.add_argument("--index", action="store_const", const="index", dest="method",
                     help="use the approximate index (error if missing or stale)")
    how.add_argument("--exact", action="store_const", const="exact", dest="method",
                     help="exact search even when an index exists")
    search.add_argument("--device", default="auto", help="device for embedding query files")

    index = sub.add_parser("index", help="build an approximate (USearch HNSW) index beside the shards")
    index.add_argument("output", metavar="OUT")
    index.add_argument("--connectivity", type=_positive, default=16)
    index.add_argument("--expansion-add", type=_positive, default=128)
    index.add_argument("--expansion-search", type=_positive, default=64)
    index.add_argument("--index-dtype", choices=("f32", "f16", "i8"), default="f32")

    info = sub.add_parser("info", help="a model's type, dims, processor settings, dtype and device")
    info.add_argument("model")
    info.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    info.add_argument("--device", default="auto")
    info.add_argument("--json", action="store_true")
    return parser


def _run_options(args: argparse.Namespace, modality: str, batch_size: int = 32) -> Any:
    from .engine.local import RunOptions
    from .engine.sources import extensions_for

    exts = args.extensions.split(",") if args.extensions else None
    return RunOptions(batch_size=batch_size, workers=args.workers, worker_kind=args.worker_type,
                      shard_size=args.shard_size, limit=args.limit, overwrite=args.overwrite,
                      retry_failed=args.retry_failed, column=args.column,
                      extensions=extensions_for(modality, exts), progress=args.progress)


def _job_exit(summary: Any) -> int:
    if summary.interrupted:
        return EXIT_INTERRUPTED
    # Failures recorded by an earlier run of the same inputs count too: a resumed job's status is
    # the job's, not only this process's.
    return EXIT_FAILED_INPUTS if summary.failed or summary.skipped_failed else EXIT_OK


def _cmd_embed(args: argparse.Namespace) -> int:
    from .embedding import Embedder
    from .engine.jobs import EmbedJob
    from .engine.sources import check_specs

    check_specs(args.inputs)  # before loading the model: a typo'd path fails fast
    options = dict(args.processor_option)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    # On Ray only the actors run the model: the driver reads the config and processor, not the weights.
    embedder = Embedder(args.model, pool=args.pool, normalize=args.normalize, dtype=args.dtype,
                        device=args.device, revision=args.revision, weights=args.engine == "local", **options)
    job = EmbedJob(embedder, dtype=args.dtype, processor_options=options, batch_size=args.batch_size,
                   windows=args.windows, fmt=args.format, npy_dtype=args.npy_dtype)
    engine = _engine_module(args.engine)
    keyword = ENGINES[args.engine][1]
    extra = {keyword: engine.options_from_args(args)} if keyword and hasattr(engine, "options_from_args") else {}
    summary = engine.run(job, args.inputs, args.output, _run_options(args, embedder.modality, args.batch_size),
                         **extra)
    return _job_exit(summary)


def _cmd_features(args: argparse.Namespace) -> int:
    from .engine.jobs import FeaturesJob
    from .engine.local import run
    from .engine.sources import check_specs

    check_specs(args.inputs)
    job = FeaturesJob(args.processor, processor_options=dict(args.processor_option), fmt=args.format,
                      npy_dtype=args.npy_dtype)
    return _job_exit(run(job, args.inputs, args.output, _run_options(args, job.preparer.modality)))


def _cmd_search(args: argparse.Namespace) -> int:
    from .search import search

    results = search(args.output, args.queries, k=args.k, method=args.method or "auto",
                     device=args.device)
    if args.json:
        payload = [{"query": q, "results": [h.to_dict() for h in hits]} for q, hits in zip(args.queries, results)]
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    for q, hits in zip(args.queries, results):
        print(f"query: {q}")
        for rank, h in enumerate(hits, 1):
            where = f"  [{h.start}:{h.end}]" if h.start is not None else ""
            print(f"{rank:>4}  {h.score:.4f}  {h.path}{where}")
    return EXIT_OK


def _cmd_index(args: argparse.Namespace) -> int:
    from .search import build_index

    meta = build_index(args.output, connectivity=args.connectivity, expansion_add=args.expansion_add,
                       expansion_search=args.expansion_search, dtype=args.index_dtype)
    print(f"featx: indexed {meta['size']} rows of dim {meta['dim']} into {args.output}/_index.usearch")
    return EXIT_OK


def model_info(model: str, *, dtype: str = "auto", device: str | None = "auto") -> dict[str, Any]:
    """What ``featx info`` prints: model type, dims, processor settings, dtype and device."""
    from .embedding import Embedder
    from .pooling import default_pool

    e = Embedder(model, dtype=dtype, device=device)
    config = getattr(e.model, "config", {}) or {}
    processor = e.processor
    return {
        "model": e.model_id,
        "model_type": config.get("model_type"),
        "architecture": type(e.model).__name__,
        "modality": e.modality,
        "dim": e.dim,
        "layers": config.get("num_hidden_layers", config.get("encoder_layers")),
        "input": e.input_name,
        "has_pooler": bool(getattr(e.model, "has_pooler", False)),
        "prefix_tokens": int(getattr(e.model, "num_prefix_tokens", 0)),
        "default_pool": default_pool(e.model),
        "parameters": sum(p.numel() for p in e.model.parameters()),
        "dtype": str(e.torch_dtype).replace("torch.", ""),
        "dtype_reason": e.dtype_reason,
        "device": str(e.device),
        "processor": type(processor).__name__,
        "processor_config": processor.to_dict() if hasattr(processor, "to_dict") else {},
    }


def _cmd_info(args: argparse.Namespace) -> int:
    info = model_info(args.model, dtype=args.dtype, device=args.device)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return EXIT_OK
    processor_config = info.pop("processor_config")
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    print("processor settings:")
    for key, value in processor_config.items():
        print(f"  {key}: {json.dumps(value, default=str)}")
    return EXIT_OK


_COMMANDS = {"embed": _cmd_embed, "features": _cmd_features, "search": _cmd_search, "index": _cmd_index,
             "info": _cmd_info}


def _interrupt_on_sigterm() -> Any:
    """SIGTERM (batch schedulers, ``kill``) stops a job like Ctrl-C: finished rows are written."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    import signal

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    old_sigterm = _interrupt_on_sigterm() if args.command in ("embed", "features") else None
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *a, **k: f"featx: warning: {message}\n"  # type: ignore
    try:
        return _COMMANDS[args.command](args)
    except (ConfigError, InputError) as exc:
        print(f"featx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FeatxError as exc:
        print(f"featx: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("featx: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `featx search ... | head`
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:
        print(f"featx: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.formatwarning = previous
        if old_sigterm is not None:
            signal.signal(signal.SIGTERM, old_sigterm)
