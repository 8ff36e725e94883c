"""Text queries over an embeddings folder: ``featx search OUT --text "a dog on a beach"``.

The text is embedded by the text tower of the model OUT records, so OUT must hold joint-space
embeddings (``--pool joint``, the default for full CLIP/SigLIP checkpoints) of a model with a text
tower; anything else is refused with what to re-embed with.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelLoadError

__all__ = ["check_text_search", "text_queries"]


def check_text_search(out: str | os.PathLike[str], manifest: dict[str, Any], *, cache_dir: str | None = None) -> None:
    """Raise `ConfigError` unless ``out`` (with ``manifest``) can answer text queries."""
    from ..families import text_family_for
    from ..hub import HubOptions
    from ..models.loading import read_config

    model = manifest.get("model")
    try:
        model_type = read_config(model, HubOptions(revision=manifest.get("revision"), cache_dir=cache_dir)).get("model_type")
    except ModelLoadError as exc:
        raise ModelLoadError(f"cannot read the config of {model!r}, the model {out} was embedded with: {exc}") from exc
    text_family_for(model_type, f"{out} was embedded with {model}, which")
    pool = manifest.get("pool")
    if pool != "joint":
        raise ConfigError(
            f"{out} holds --pool {pool} embeddings, which text cannot be compared with: text queries need the "
            f"joint image-text space. Re-embed with --pool joint (the default for this model), e.g. "
            f"`featx embed INPUT... --model {model} --pool joint --output NEW_OUT`")


def text_queries(out: str | os.PathLike[str], manifest: dict[str, Any], texts: Sequence[str], *,
                 device: str | None = "auto", cache_dir: str | None = None) -> np.ndarray:
    """[len(texts), dim] unit vectors of ``texts`` in ``out``'s joint space."""
    from .embed import load_text_embedder

    check_text_search(out, manifest, cache_dir=cache_dir)
    hub = {"cache_dir": cache_dir} if cache_dir else {}
    embedder = load_text_embedder(manifest["model"], dtype=manifest.get("dtype", "auto"), device=device,
                                  revision=manifest.get("revision"), **hub)
    if embedder.dim != int(manifest["dim"]):
        raise ConfigError(f"{out} holds {manifest['dim']}-dim embeddings but the text tower of "
                          f"{manifest['model']} gives {embedder.dim}-dim ones")
    return embedder.embed(list(texts))
