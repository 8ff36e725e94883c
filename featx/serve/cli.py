"""``featx serve``'s arguments (added to the ``featx`` parser) and the command itself."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ConfigError, install_hint
from ..cli_types import positive_int as _positive
from ..cli_types import duration as _seconds
from ..cli_types import BACKEND_CHOICES as BACKENDS

__all__ = ["add_serve_parser", "config_from_args", "cmd_serve"]

TOKEN_ENV = "FEATX_SERVE_TOKEN"


def add_serve_parser(sub: Any, *, kv: Any, dtypes: tuple[str, ...], dtype_help: str) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand; ``kv`` parses ``-p key=value`` like ``featx embed``."""
    p = sub.add_parser(
        "serve", help="an HTTP service: embeddings, search over OUT, and a web page",
        description=f"Serve embeddings (and search over OUT) over HTTP, with a web page at / ({install_hint('serve')}).")
    p.add_argument("output", nargs="?", metavar="OUT",
                   help="an output folder of `featx embed` to search (model and options from its manifest); "
                        "without it, embeddings only (then --model is needed)")
    p.add_argument("-m", "--model", help="checkpoint folder or hub id (default: the one OUT records)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; 0.0.0.0 exposes the service to the network (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"require 'Authorization: Bearer TOKEN' on every route but /healthz (default: ${TOKEN_ENV} "
                        "if set, else no auth)")
    p.add_argument("--max-batch", type=_positive, default=32,
                   help="inputs per model call at most (default: %(default)s)")
    p.add_argument("--max-wait-ms", type=_seconds, default=10.0,
                   help="how long a batch waits for inputs still being decoded (default: %(default)s)")
    p.add_argument("--max-queue", type=_positive, default=256,
                   help="inputs in flight at most; beyond it requests get 503 + Retry-After (default: %(default)s)")
    p.add_argument("--max-body-bytes", type=_positive, default=32 * 1024 * 1024,
                   help="request bodies larger than this get 413 (default: %(default)s)")
    p.add_argument("--max-inputs", type=_positive, default=256,
                   help="inputs per /v1/embeddings request at most (default: %(default)s)")
    p.add_argument("--timeout", type=_seconds, default=60.0, dest="request_timeout",
                   help="seconds a request may take; then 504 and its work is dropped (default: %(default)s)")
    p.add_argument("--workers", type=_positive, default=min(8, os.cpu_count() or 1),
                   help="decode/preprocess threads (default: CPU count, at most 8: %(default)s here)")
    p.add_argument("--allow-urls", action="store_true",
                   help="accept http(s) URL inputs, fetched like load_image (default: refused)")
    p.add_argument("--allow-private-urls", action="store_true",
                   help="with --allow-urls, also fetch loopback/private/link-local addresses (default: refused)")
    p.add_argument("--watch", action="store_true",
                   help="reload OUT's rows when shards are added or rewritten (default: off)")
    p.add_argument("--watch-interval", type=_seconds, default=2.0,
                   help="seconds between --watch checks (default: %(default)s)")
    p.add_argument("--thumbnail-root", action="append", default=[], metavar="DIR",
                   help="another folder whose files may get thumbnails (default: only OUT's recorded inputs)")
    p.add_argument("--no-text", dest="text", action="store_false",
                   help="do not load the model's text tower (default: load it when the model has one)")
    p.add_argument("--dtype", choices=dtypes, help=dtype_help.replace("%(default)s", "OUT's, else auto"))
    p.add_argument("--backend", choices=BACKENDS,
                   help="what runs the model, as in `featx embed` (default: OUT's, else torch)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--pool", help="pooling without OUT, as in `featx embed` (default: the model's; with OUT: OUT's)")
    p.add_argument("--normalize", action="store_true", help="L2-normalize vectors, without OUT (default: off)")
    p.add_argument("-p", "--processor-option", action="append", type=kv, default=[], metavar="KEY=VALUE",
                   help="processor override without OUT, JSON value (repeatable) (default: none)")
    p.add_argument("--threads", type=_positive,
                   help="torch threads for the model on CPU (default: torch's choice, one per core)")
    p.add_argument("--cache-dir", metavar="DIR", help="Hugging Face cache folder for a hub model "
                                                      "(default: huggingface_hub's)")
    p.add_argument("--revision", help="branch, tag or commit of a hub model (default: main, or OUT's)")
    return p


def _same_model(source: Any) -> Any:
    """A model source as compared with OUT's: a local folder by its real path."""
    from ..hub import recorded_source

    if not isinstance(source, str):
        return source
    recorded = recorded_source(source)
    return os.path.realpath(recorded) if os.path.isabs(recorded) else recorded


def config_from_args(args: argparse.Namespace) -> Any:
    """The `featx.serve.ServeConfig` of parsed arguments; `ConfigError` for options that clash."""
    from ..engine.state import read_manifest
    from .service import ServeConfig

    if args.output is not None:
        manifest = read_manifest(args.output)
        if manifest is None:
            raise ConfigError(f"{args.output} is not a featx output folder (no {args.output}/_featx.json)")
        clashing = [name for name, given in (("--pool", args.pool), ("--normalize", args.normalize),
                                             ("-p", args.processor_option)) if given]
        if clashing:
            raise ConfigError(f"{', '.join(clashing)} cannot be given with OUT: the model's options are the ones "
                              f"{args.output} was embedded with (its _featx.json)")
        if args.model is not None:
            if _same_model(args.model) != _same_model(manifest.get("model")):
                raise ConfigError(f"--model {args.model} is not the model {args.output} was embedded with "
                                  f"({manifest.get('model')}); leave --model out to use that one")
    elif args.model is None:
        raise ConfigError("featx serve needs OUT (an output folder of `featx embed`) or --model")
    if args.allow_private_urls and not args.allow_urls:
        raise ConfigError("--allow-private-urls needs --allow-urls")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, not {args.port}")
    return ServeConfig(out=args.output, model=args.model, dtype=args.dtype, backend=args.backend,
                       device=args.device, pool=args.pool,
                       normalize=args.normalize, processor_options=dict(args.processor_option),
                       cache_dir=args.cache_dir, revision=args.revision, host=args.host, port=args.port,
                       token=args.token or None, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                       max_queue=args.max_queue, workers=args.workers, max_body_bytes=args.max_body_bytes,
                       max_inputs=args.max_inputs, request_timeout_s=args.request_timeout,
                       allow_urls=args.allow_urls, allow_private_urls=args.allow_private_urls, watch=args.watch,
                       watch_interval_s=args.watch_interval or 2.0, thumbnail_roots=list(args.thumbnail_root),
                       text=args.text)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``featx serve`` until stopped."""
    from .server import serve

    config = config_from_args(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return serve(config)
