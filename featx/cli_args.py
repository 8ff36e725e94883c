"""The ``featx`` command line's arguments: the parser, and the checks run before any model loads.

Every option has a help line that states its default. `check_job_args` and `check_inputs_for`
catch what can be caught from the arguments alone (a file as ``--output``, a missing input, an
option combination that cannot work, a folder without a file of the model's kind) so that such
mistakes fail at once instead of after loading a model.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from typing import Any

from .errors import ConfigError, InputError, install_hint
from .cli_types import BACKEND_CHOICES
from .cli_types import positive_int as _positive

__all__ = ["build_parser", "check_job_args", "check_inputs_for", "hub_kwargs", "engine_module", "ENGINES",
           "EPILOG"]

# --engine NAME -> (module, keyword). The module has run(job, specs, out, opts, **kw) -> Summary (see
# featx.engine.local); optionally add_arguments(parser) for its own options and options_from_args(args),
# whose result is passed to run() under the keyword.
ENGINES: dict[str, tuple[str, str | None]] = {
    "local": ("featx.engine.local", None),
    "ray": ("featx.engine.ray_engine", "ray_options"),
}

EPILOG = """exit status: 0 all inputs succeeded; 3 the job completed with failed inputs (see the error
column; also when they failed in an earlier run of the same job); 2 usage error (also: no inputs found);
1 other error; 130 interrupted (re-run the same command to resume)."""

_DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")
_BACKEND_HELP = ("what runs the model: torch; onnx (ONNX Runtime, float32 or --dtype int8); openvino; inductor "
                 "(torch.compile, cached; the first run compiles); auto: the fastest exact one for this machine, "
                 "see `featx info` (default: %(default)s)")
_DTYPE_HELP = ("compute dtype; auto: bfloat16 on a CPU with AVX512-BF16/AMX or a GPU that supports it, "
               "else float32; int8 (onnx backend, opt-in) (default: %(default)s)")


def engine_module(name: str) -> Any:
    """The module of the engine ``name`` (`ConfigError` when this featx version lacks it)."""
    try:
        return importlib.import_module(ENGINES[name][0])
    except ModuleNotFoundError as exc:
        if exc.name != ENGINES[name][0]:
            raise
        raise ConfigError(f"the {name} engine is not part of this featx version") from None


def _kv(text: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (``size={"height": 64, "width": 64}``); non-JSON is a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def _add_hub_options(p: argparse.ArgumentParser, what: str, revision: bool = True) -> None:
    p.add_argument("--cache-dir", metavar="DIR",
                   help=f"Hugging Face cache folder for a hub {what} (default: huggingface_hub's, "
                        "~/.cache/huggingface/hub or HF_HUB_CACHE)")
    if revision:
        p.add_argument("--revision", help=f"branch, tag or commit of a hub {what} (default: main)")


def hub_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The hub options given on the command line, as `from_pretrained` keywords."""
    return {k: getattr(args, k) for k in ("cache_dir", "revision") if getattr(args, k, None) is not None}


def _add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", metavar="INPUT",  # at least one: check_job_args (or embed's --text-file)
                   help="files, folders (recursive), globs, @list.txt (paths/URLs), or .parquet with --column")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder of Parquet shards (new, empty, or an earlier output to resume)")
    p.add_argument("-p", "--processor-option", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                   help="processor override, JSON value (repeatable), e.g. size='{\"shortest_edge\": 256}' "
                        "(default: the checkpoint's preprocessor_config.json)")
    p.add_argument("--column", help="the Parquet column holding paths/URLs or encoded bytes (default: the "
                                    "first of path, image, audio, file, filename, url, bytes)")
    p.add_argument("--extensions", help="file extensions kept in folders and globs, comma-separated; '*' = all "
                                        "(default: the image or audio extensions, by the model's modality)")
    p.add_argument("--limit", type=_positive,
                   help="take only the first N distinct inputs, done ones included (default: all)")
    p.add_argument("--workers", type=_positive, default=min(8, os.cpu_count() or 1),
                   help="decode/preprocess workers (default: CPU count, at most 8: %(default)s here)")
    p.add_argument("--worker-type", choices=("thread", "process"), default="thread",
                   help="run the workers as threads or processes; with processes a decoder crash fails "
                        "only its input, so use them for untrusted media (default: %(default)s)")
    p.add_argument("--no-private-urls", dest="allow_private_urls", action="store_false",
                   help="refuse URL inputs (and redirects) to loopback, private, link-local, multicast or "
                        "reserved addresses, e.g. for URLs your users supply (default: fetch any URL, like curl)")
    p.add_argument("--format", choices=("parquet", "npy"), default="parquet",
                   help="npy: also write .npy shards aligned with the Parquet rows, in OUT/_npy "
                        "(default: %(default)s)")
    p.add_argument("--npy-dtype", choices=("float32", "float16"), default="float32",
                   help="dtype of the .npy shards of --format npy (default: %(default)s)")
    p.add_argument("--shard-size", type=_positive, default=8192, help="rows per shard (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the output folder's shards and start over (default: resume)")
    p.add_argument("--retry-failed", action="store_true",
                   help="drop earlier error rows and retry those inputs (default: keep them)")
    p.add_argument("--repair", action="store_true",
                   help="move shards of OUT that cannot be read (truncated, corrupted) to OUT/_bad/ and compute "
                        "their inputs again (default: a damaged shard stops the job with an error)")
    p.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                   help="auto: a bar on a terminal, log lines otherwise (default: %(default)s)")


def _add_embed(sub: Any) -> None:
    embed = sub.add_parser("embed", help="embed inputs into Parquet shards", epilog=EPILOG,
                           description="Embed images or audio with a model into OUT (resumable).")
    embed.add_argument("-m", "--model", required=True,
                       help="local checkpoint folder (config.json + model.safetensors) or hub id owner/name")
    _add_hub_options(embed, "model")
    _add_job_options(embed)
    embed.add_argument("--pool", choices=("cls", "mean", "pooler", "joint", "none"),
                       help="pooling; joint: the image-text space of CLIP/SigLIP (text queries need it); none "
                            "keeps the token embeddings (default: joint for full CLIP/SigLIP checkpoints, cls "
                            "for models with a class token, else mean)")
    embed.add_argument("--normalize", action="store_true", help="L2-normalize the embeddings (default: off)")
    embed.add_argument("--batch-size", type=_positive, default=32,
                       help="inputs per model call (default: %(default)s)")
    embed.add_argument("--dtype", choices=_DTYPES, default="auto", help=_DTYPE_HELP)
    embed.add_argument("--backend", choices=BACKEND_CHOICES, default="torch", help=_BACKEND_HELP)
    embed.add_argument("--device", default="auto",
                       help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N (default: %(default)s)")
    embed.add_argument("--threads", type=_positive,
                       help="torch threads for the model on CPU (default: torch's choice, one per core)")
    embed.add_argument("--windows", action="store_true",
                       help="audio: one row per model window, with start/end sample offsets "
                            "(default: one row per file, windows averaged)")
    embed.add_argument("--tiles", metavar="RxC",
                       help="images: cut each into a grid of tiles (e.g. 2x2) and write one row per tile with "
                            "tile and box columns (default: one row per image)")
    embed.add_argument("--global-view", action="store_true",
                       help="with --tiles: also embed the whole image, as tile -1 (default: off)")
    embed.add_argument("--tile-overlap", type=float, default=0.0, metavar="FRACTION",
                       help="with --tiles: the fraction of a tile shared with its neighbour (default: 0)")
    embed.add_argument("--tokens", nargs="?", const="float32", choices=("float32", "float16"),
                       help="write each input's token array [n_tokens, dim] for an LLM (LLaVA: visual tokens in "
                            "the LLM's space), with a shape column; optionally its dtype (default: float32)")
    from .video.cli import add_video_arguments  # argparse only: PyAV is imported when decoding

    add_video_arguments(embed)
    from .text.cli import add_text_arguments

    add_text_arguments(embed)
    embed.add_argument("--engine", choices=tuple(ENGINES), default="local",
                       help=f"local: this machine; ray: a Ray cluster ({install_hint('ray')}) "
                            "(default: %(default)s)")
    add_engine_arguments(embed)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Each engine's own options (Ray's --address, --actors...), for the commands that run jobs."""
    for name in ENGINES:
        try:
            module = engine_module(name)
        except ConfigError:
            continue
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``featx`` and its subcommands."""
    parser = argparse.ArgumentParser(prog="featx", description="Images and audio into features and embeddings.",
                                     epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_embed(sub)

    feats = sub.add_parser("features", help="write preprocessed features (no model) as shards", epilog=EPILOG,
                           description="Write the processor's outputs (pixel values, log-mel, ...) into OUT.")
    feats.add_argument("--processor", required=True,
                       help="checkpoint folder, preprocessor_config.json file, or hub id owner/name")
    _add_hub_options(feats, "processor")
    _add_job_options(feats)

    search = sub.add_parser("search", help="nearest rows of an embeddings folder",
                            description="Top-k rows of OUT by cosine similarity to each query.")
    search.add_argument("output", metavar="OUT", help="an output folder of `featx embed`")
    search.add_argument("queries", nargs="*", metavar="QUERY",
                        help="an image/audio file or URL (embedded with OUT's model), or a row's path in OUT")
    search.add_argument("--text", action="append", default=[], dest="texts", metavar="TEXT",
                        help="a text query, embedded by the text tower of OUT's model (CLIP/SigLIP; OUT must hold "
                             "--pool joint embeddings); repeatable; every query is ranked on its own (default: none)")
    search.add_argument("-k", type=_positive, default=10, help="results per query (default: %(default)s)")
    search.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")
    search.add_argument("--group-by", choices=("path",),
                        help="path: the k best paths, each with its best row, e.g. a video's best frame "
                             "(default: the k best rows)")
    how = search.add_mutually_exclusive_group()
    how.add_argument("--index", action="store_const", const="index", dest="method",
                     help="use the approximate index; an error if it is missing or stale "
                          "(default: the index when fresh, else exact)")
    how.add_argument("--exact", action="store_const", const="exact", dest="method",
                     help="exact search even when an index exists (default: the index when fresh, else exact)")
    search.add_argument("--device", default="auto",
                        help="device for embedding query files: auto, cpu, cuda (default: %(default)s)")
    _add_hub_options(search, "model (OUT records which, and its revision)", revision=False)

    index = sub.add_parser("index", help="build an approximate (USearch HNSW) index beside the shards",
                           description=f"Build OUT/_index.usearch ({install_hint('index')}).")
    index.add_argument("output", metavar="OUT", help="an output folder of `featx embed`")
    index.add_argument("--connectivity", type=_positive, default=16,
                       help="HNSW graph degree (default: %(default)s)")
    index.add_argument("--expansion-add", type=_positive, default=128,
                       help="HNSW search width while building (default: %(default)s)")
    index.add_argument("--expansion-search", type=_positive, default=64,
                       help="HNSW search width while searching (default: %(default)s)")
    index.add_argument("--index-dtype", choices=("f32", "f16", "i8"), default="f32",
                       help="how the index stores vectors (default: %(default)s)")

    info = sub.add_parser("info", help="a model's type, dims, processor settings, dtype and device",
                          description="Load a model and describe it.")
    info.add_argument("model", help="local checkpoint folder or hub id owner/name")
    _add_hub_options(info, "model")
    info.add_argument("--dtype", choices=_DTYPES, default="auto", help=_DTYPE_HELP)
    info.add_argument("--backend", choices=BACKEND_CHOICES, default="torch", help=_BACKEND_HELP)
    info.add_argument("--device", default="auto",
                      help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N (default: %(default)s)")
    info.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")

    from .text.cli import add_classify_parser

    add_classify_parser(sub)

    from .serve.cli import add_serve_parser  # argparse only: FastAPI is imported when serving

    add_serve_parser(sub, kv=_kv, dtypes=_DTYPES, dtype_help=_DTYPE_HELP)
    from .live.cli import add_stream_parser

    add_stream_parser(sub, dtypes=_DTYPES, dtype_help=_DTYPE_HELP)
    from .backends.quantize_cli import add_quantize_parser

    add_quantize_parser(sub)
    return parser


def check_job_args(args: argparse.Namespace) -> None:
    """Checks of ``embed``/``features`` arguments that need no model: inputs exist, ``--output``
    can take the job, the options go together. Raises `InputError`/`ConfigError`."""
    from .engine.inputs import check_specs
    from .engine.state import check_output

    if not args.inputs:
        raise InputError("no INPUT given: name files, folders, globs or @list.txt")
    check_specs(args.inputs)
    check_output(args.output, overwrite=args.overwrite)
    pool = getattr(args, "pool", None)
    if pool == "none" and args.format == "npy":
        raise ConfigError("--format npy needs one vector per row; token embeddings (--pool none) have no "
                          "fixed shape: use --format parquet")
    if pool == "none" and getattr(args, "windows", False):
        raise ConfigError("--windows needs a pooled embedding; use --pool cls|mean|pooler")
    from .llm.cli import check_llm_args

    check_llm_args(args)


def check_inputs_for(args: argparse.Namespace, modality: str) -> frozenset[str] | None:
    """The extensions kept for ``modality``; `InputError` when the inputs hold none of them."""
    from .engine.inputs import check_has_inputs, extensions_for

    exts = extensions_for(modality, args.extensions.split(",") if args.extensions else None)
    check_has_inputs(args.inputs, column=args.column, extensions=exts, modality=modality)
    return exts
