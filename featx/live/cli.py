"""``featx stream``: its arguments and the command (see `featx.live.stream`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .source import PCM_FORMATS
from ..cli_types import positive_float as _positive_float
from ..cli_types import positive_int as _positive_int
from ..cli_types import BACKEND_CHOICES as BACKENDS

__all__ = ["add_stream_parser", "cmd_stream"]


def add_stream_parser(sub: Any, *, dtypes: tuple[str, ...], dtype_help: str) -> None:
    p = sub.add_parser("stream", help="embed a live audio stream window by window (JSON lines)",
                       description="Embed audio from stdin, a growing file or an http(s) URL, printing one JSON "
                                   "line per window as soon as it is complete: window, start/end (samples), "
                                   "start_s/end_s, embedding. The windows equal those of the same audio as a file.")
    p.add_argument("source", nargs="?", default="-", metavar="SOURCE",
                   help="'-' (stdin), a file, or an http(s) URL (default: stdin)")
    p.add_argument("-m", "--model", required=True, help="an audio model: local checkpoint folder or hub id")
    p.add_argument("--cache-dir", metavar="DIR", help="Hugging Face cache folder for a hub model "
                                                      "(default: huggingface_hub's)")
    p.add_argument("--revision", help="branch, tag or commit of a hub model (default: main)")
    p.add_argument("--format", choices=tuple(PCM_FORMATS),
                   help="raw PCM samples of this format (default: a container PyAV reads: WAV, FLAC, OGG, MP3, "
                        "Matroska, MPEG-TS...)")
    p.add_argument("--rate", type=_positive_int, default=16000, help="raw PCM sample rate in Hz (default: %(default)s)")
    p.add_argument("--channels", type=_positive_int, default=1,
                   help="raw PCM channels, interleaved; mixed to mono (default: %(default)s)")
    p.add_argument("--follow", action="store_true",
                   help="read SOURCE (a file) as it grows, until it has not grown for --idle-timeout seconds "
                        "(default: read to its current end)")
    p.add_argument("--idle-timeout", type=_positive_float, default=10.0,
                   help="with --follow: seconds without growth that end the stream (default: %(default)s)")
    p.add_argument("--window-s", type=_positive_float,
                   help="window length in seconds (default: the model's window, as featx embed --windows)")
    p.add_argument("--hop-s", type=_positive_float,
                   help="seconds between window starts, at most --window-s (default: equal to the window: no overlap)")
    p.add_argument("--vad", type=float, nargs="?", const=-45.0, default=None, metavar="DB",
                   help="skip windows quieter than DB dBFS RMS, i.e. silence (--vad alone: -45; default: off)")
    p.add_argument("--stats", action="store_true",
                   help="add latency_ms (last sample read -> line written) and model_ms to each line, and print a "
                        "latency summary to stderr at the end (default: off)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the windows as Parquet shards into OUT (searchable with featx search) instead of "
                        "JSON lines (default: JSON lines on stdout)")
    p.add_argument("--shard-size", type=_positive_int, default=1024,
                   help="with --output: windows per shard (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="with --output: start OUT over (default: add to it)")
    p.add_argument("--pool", choices=("cls", "mean", "pooler"),
                   help="pooling (default: the model's, as featx embed)")
    p.add_argument("--normalize", action="store_true", help="L2-normalize the embeddings (default: off)")
    p.add_argument("--dtype", choices=dtypes, default="auto", help=dtype_help)
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="what runs the model, as in `featx embed` (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--threads", type=_positive_int, help="torch threads (default: torch's choice)")


def cmd_stream(args: argparse.Namespace) -> int:
    from ..embedding import Embedder
    from .source import SourceSpec
    from .stream import StreamOptions, run_stream

    spec = SourceSpec(args.source, fmt=args.format, rate=args.rate, channels=args.channels, follow=args.follow,
                      idle_timeout=args.idle_timeout)
    opts = StreamOptions(window_s=args.window_s, hop_s=args.hop_s, vad_db=args.vad, stats=args.stats,
                         output=args.output, shard_size=args.shard_size, overwrite=args.overwrite)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    hub = {k: getattr(args, k) for k in ("cache_dir", "revision") if getattr(args, k, None) is not None}
    embedder = Embedder(args.model, pool=args.pool, normalize=args.normalize, dtype=args.dtype,
                        device=args.device, backend=args.backend, **hub)
    stats = None
    try:
        stats = run_stream(embedder, spec, opts)
    finally:
        if args.stats and stats is not None:
            print("featx: stream " + json.dumps(stats.summary()), file=sys.stderr)
    return 0
