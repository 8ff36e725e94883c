"""The ``featx embed`` options of this package: ``--tokens`` (`featx.llm.jobs.TokensJob`) and
``--tiles RxC [--global-view] [--tile-overlap F]`` (one row per tile, `featx.image.tiles`)."""

from __future__ import annotations

import argparse
import copy
from typing import Any

from ..errors import ConfigError

__all__ = ["check_llm_args", "embedder_class", "llm_job"]


def check_llm_args(args: argparse.Namespace) -> None:
    """Checks that need no model: the options go together."""
    tokens, tiles = getattr(args, "tokens", None), getattr(args, "tiles", None)
    if tiles is not None:
        from ..image.tiles import parse_grid

        parse_grid(tiles)
        if not 0 <= getattr(args, "tile_overlap", 0.0) < 1:
            raise ConfigError(f"--tile-overlap must be from 0 (inclusive) to 1 (exclusive), got {args.tile_overlap}")
        if getattr(args, "pool", None) == "none":
            raise ConfigError("--tiles writes one vector per tile; use --pool cls|mean|pooler (or --tokens without --tiles)")
        if getattr(args, "windows", False):
            raise ConfigError("--tiles applies to images, --windows to audio")
    elif getattr(args, "global_view", False) or getattr(args, "tile_overlap", 0.0):
        raise ConfigError("--global-view and --tile-overlap go with --tiles RxC")
    if tokens is not None:
        if tiles is not None or getattr(args, "windows", False):
            raise ConfigError("--tokens writes one token array per input; it does not combine with --tiles or --windows")
        if getattr(args, "pool", None) is not None or getattr(args, "normalize", False):
            raise ConfigError("--tokens writes the tokens themselves; --pool and --normalize do not apply")


def embedder_class(args: argparse.Namespace, default: type) -> type:
    """`featx.llm.TokenEmbedder` for ``--tokens``, else ``default``."""
    if getattr(args, "tokens", None) is not None:
        from .tokens import TokenEmbedder

        return TokenEmbedder
    return default


def llm_job(args: argparse.Namespace, embedder: Any, job_options: dict[str, Any]) -> Any:
    """The job for ``--tokens`` or ``--tiles``; None when neither is given."""
    if getattr(args, "tokens", None) is not None:
        from .jobs import TokensJob

        return TokensJob(embedder, tokens_dtype=args.tokens,
                         **{k: v for k, v in job_options.items() if k != "npy_dtype"})
    if getattr(args, "tiles", None) is not None:
        from ..engine.jobs import EmbedJob
        from ..image.tiles import TILES, TiledImageFamily, parse_grid

        if embedder.modality != "image":
            raise ConfigError(f"--tiles applies to image models; {args.model} is an {embedder.modality} model")
        tiled = copy.copy(embedder)
        tiled.family = TiledImageFamily(name=f"{embedder.family.name}-tiles", model_types=(), processor="",
                                        grid=parse_grid(args.tiles),
                                        overlap=float(args.tile_overlap), global_view=bool(args.global_view))
        return EmbedJob(tiled, parts=TILES, **job_options)
    return None
