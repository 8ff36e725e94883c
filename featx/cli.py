"""The ``featx`` command line: embed collections into Parquet shards, search them, inspect models.

Exit status: 0 success; 1 error (model cannot load, a dependency is missing, I/O failure);
2 usage error (bad arguments, missing inputs, no input of the model's kind found, an output folder
made with other settings: all checked before the model loads where possible);
3 the job completed but some of its inputs failed (their rows carry the error), in this run or in
an earlier run whose rows were kept (``--retry-failed`` retries them); 130 interrupted by SIGINT or
SIGTERM (the rows finished so far are written; re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .cli_args import ENGINES, build_parser, check_inputs_for, check_job_args, engine_module, hub_kwargs
from .errors import ConfigError, FeatxError, InputError

__all__ = ["main", "entry", "build_parser", "model_info", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_FAILED_INPUTS",
           "EXIT_INTERRUPTED", "ENGINES"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FAILED_INPUTS = 3
EXIT_INTERRUPTED = 130


def _run_options(args: argparse.Namespace, extensions: frozenset[str] | None, batch_size: int = 32) -> Any:
    from .engine.local import RunOptions

    return RunOptions(batch_size=batch_size, workers=args.workers, worker_kind=args.worker_type,
                      shard_size=args.shard_size, limit=args.limit, overwrite=args.overwrite,
                      retry_failed=args.retry_failed, repair=args.repair, column=args.column,
                      extensions=extensions,
                      progress=args.progress)


def _job_exit(summary: Any) -> int:
    if summary.interrupted:
        return EXIT_INTERRUPTED
    # Failures recorded by an earlier run of the same inputs count too: a resumed job's status is
    # the job's, not only this process's.
    return EXIT_FAILED_INPUTS if summary.failed or summary.skipped_failed else EXIT_OK


def _model_modality(model: str, hub: dict[str, Any]) -> str | None:
    """The model's modality from its config.json alone (None: no native featx class for it)."""
    from .hub import HubOptions
    from .models.loading import read_config
    from .families import family_for

    model_type = read_config(model, HubOptions(**hub)).get("model_type")
    try:
        return family_for(model_type).modality
    except ConfigError:
        return None  # loading the model says why


def _given(options: dict[str, Any]) -> str:
    return " ".join(f"-p {k}={json.dumps(v)}" for k, v in options.items())


def _load_processor(source: str, hub: dict[str, Any], options: dict[str, Any]) -> Any:
    """The processor with the -p overrides; an error caused by them names them."""
    from .pipelines import load_processor

    try:
        return load_processor(source, **hub, **options)
    except (ConfigError, InputError) as exc:
        if not options:
            raise
        load_processor(source, **hub)  # fails on its own: not the options' fault
        raise ConfigError(f"the processor does not take {_given(options)}: {exc}") from exc


def _check_processor_options(processor: Any, modality: str | None, options: dict[str, Any]) -> None:
    """Run the processor once on a blank input, so that -p values that break it fail now."""
    import numpy as np

    try:
        if modality == "audio":
            rate = int(processor.sampling_rate)
            processor(np.zeros(rate, np.float32), sampling_rate=rate, return_tensors="np")
        else:
            from PIL import Image

            processor(Image.new("RGB", (64, 48)), return_tensors="np")
    except Exception as exc:  # noqa: BLE001 - any failure here is the options' fault
        raise ConfigError(f"the processor fails with {_given(options)}: {exc}") from exc


def _cmd_embed(args: argparse.Namespace) -> int:
    from .embedding import Embedder
    from .engine.jobs import EmbedJob
    # Everything that can be checked without the weights is checked before loading them.
    hub = hub_kwargs(args)
    from .text.cli import text_job_requested

    if text_job_requested(args, hub):  # --text-file or .txt inputs: the text tower (featx.text.cli)
        from .text.cli import cmd_embed_text

        return cmd_embed_text(args, hub)
    check_job_args(args)
    modality = _model_modality(args.model, hub)
    video = None  # a video job (featx.video.cli): videos among the inputs, or a video option
    if modality is not None:
        if args.windows and modality != "audio":
            raise ConfigError("--windows applies to audio models only")
        from .video.cli import video_plan

        video = video_plan(args, modality)
        if video is None:
            check_inputs_for(args, modality)
    options = dict(args.processor_option)
    processor = _load_processor(args.model, hub, options)  # bad -p values fail here
    if options:
        _check_processor_options(processor, modality, options)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    # On Ray only the actors run the model: the driver reads the config and processor, not the weights.
    from .llm.cli import embedder_class, llm_job  # --tokens / --tiles

    embedder = embedder_class(args, Embedder)(args.model, pool=args.pool, normalize=args.normalize, dtype=args.dtype,
                                              device=args.device, processor=processor, weights=args.engine == "local",
                                              backend=args.backend,
                                              allow_private_urls=args.allow_private_urls, **hub)
    job_options = dict(dtype=args.dtype, processor_options=options, batch_size=args.batch_size, fmt=args.format,
                       npy_dtype=args.npy_dtype, hub_options={k: v for k, v in hub.items() if k != "revision"})
    if video is not None and video.modality == embedder.modality:
        job = video.job(embedder, **job_options)
        run_options = video.run_options(_run_options(args, video.extensions, args.batch_size), args.workers)
    else:
        extensions = check_inputs_for(args, embedder.modality)
        job = llm_job(args, embedder, job_options) or EmbedJob(embedder, windows=args.windows, **job_options)
        run_options = _run_options(args, extensions, args.batch_size)
    engine = engine_module(args.engine)
    keyword = ENGINES[args.engine][1]
    extra = {keyword: engine.options_from_args(args)} if keyword and hasattr(engine, "options_from_args") else {}
    summary = engine.run(job, args.inputs, args.output, run_options, **extra)
    return _job_exit(summary)


def _cmd_features(args: argparse.Namespace) -> int:
    from .engine.jobs import FeaturesJob
    from .engine.local import run

    check_job_args(args)
    job = FeaturesJob(args.processor, processor_options=dict(args.processor_option), fmt=args.format,
                      npy_dtype=args.npy_dtype, allow_private_urls=args.allow_private_urls, **hub_kwargs(args))
    extensions = check_inputs_for(args, job.preparer.modality)
    return _job_exit(run(job, args.inputs, args.output, _run_options(args, extensions)))


def _cmd_search(args: argparse.Namespace) -> int:
    from .search import search

    results = search(args.output, args.queries, k=args.k, method=args.method or "auto",
                     device=args.device, cache_dir=args.cache_dir, group_by=args.group_by, texts=args.texts)
    if args.texts or any(h.text is not None for hits in results for h in hits):  # text queries or text rows
        from .text.cli import print_search

        print_search(args, results)
        return EXIT_OK
    if args.json:
        payload = [{"query": q, "results": [h.to_dict() for h in hits]} for q, hits in zip(args.queries, results)]
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    for q, hits in zip(args.queries, results):
        print(f"query: {q}")
        for rank, h in enumerate(hits, 1):
            where = f"  [{h.start}:{h.end}]" if h.start is not None else ""
            print(f"{rank:>4}  {h.score:.4f}  {h.where()}{where}")
    return EXIT_OK


def _cmd_index(args: argparse.Namespace) -> int:
    from .search import build_index

    meta = build_index(args.output, connectivity=args.connectivity, expansion_add=args.expansion_add,
                       expansion_search=args.expansion_search, dtype=args.index_dtype)
    print(f"featx: indexed {meta['size']} rows of dim {meta['dim']} into {args.output}/_index.usearch")
    return EXIT_OK


def model_info(model: str, *, dtype: str = "auto", device: str | None = "auto", backend: str = "torch",
               **hub: Any) -> dict[str, Any]:
    """What ``featx info`` prints: model type, dims, processor settings, dtype and device.
    ``hub``: download options (``cache_dir``, ``revision``, ...)."""
    from .embedding import Embedder
    from .pooling import default_pool

    e = Embedder(model, dtype=dtype, device=device, backend=backend, **hub)
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
        "backend": getattr(e.model, "featx_backend", "torch"),
        "device": str(e.device),
        "processor": type(processor).__name__,
        "processor_config": processor.to_dict() if hasattr(processor, "to_dict") else {},
    }


def _cmd_info(args: argparse.Namespace) -> int:
    info = model_info(args.model, dtype=args.dtype, device=args.device, backend=args.backend, **hub_kwargs(args))
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


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serve.cli import cmd_serve

    return cmd_serve(args)


_COMMANDS["serve"] = _cmd_serve


def _cmd_stream(args: argparse.Namespace) -> int:
    from .live.cli import cmd_stream

    return cmd_stream(args)


_COMMANDS["stream"] = _cmd_stream


def _cmd_classify(args: argparse.Namespace) -> int:
    from .text.cli import cmd_classify

    return cmd_classify(args)


_COMMANDS["classify"] = _cmd_classify


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .backends.quantize_cli import cmd_quantize

    return cmd_quantize(args)


_COMMANDS["quantize"] = _cmd_quantize


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
    old_sigterm = _interrupt_on_sigterm() if args.command in ("embed", "features", "classify") else None
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


def entry() -> None:
    """The ``featx`` program: `main`, then exit with its status.

    When `main` returns, the rows are written and the files closed, so the process ends at once:
    the interpreter's teardown would wait on (or abort in) worker threads still in a read or in
    native decoder threads (an interrupted job; FFmpeg's frame threads after a video job, where
    it ended in a C++ ``terminate`` and status -6), and costs about a second of torch shutdown
    for nothing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
