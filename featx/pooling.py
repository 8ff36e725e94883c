"""Pooling token embeddings into one vector per input."""

from __future__ import annotations

from typing import Any

import torch

from .errors import ConfigError

__all__ = ["POOLINGS", "default_pool", "pool_output", "check_pool", "pooled_dim"]

#: "joint": the joint image-text space of contrastive checkpoints (CLIP's projections, SigLIP's
#: pooling heads), the reference's ``get_image_features``/``get_text_features``
POOLINGS = ("cls", "mean", "pooler", "joint", "none")


def _joint_dim(model: Any) -> int | None:
    return getattr(model, "joint_dim", None) if getattr(model, "joint_field", None) else None


def _pooler_usable(model: Any) -> bool:
    return bool(getattr(model, "has_pooler", False)) and not getattr(model, "pooler_is_random", False)


def default_pool(model: Any) -> str:
    """The pooling a user most likely wants, as the model's family says (``model.featx_family``).

    A family's "pooler" falls back to "mean" when the checkpoint has no usable pooler weights.
    Models without a family (the transformers fallback): an image model's class token where it
    has one, else its pooler, else the mean.
    """
    spec = getattr(model, "featx_family", None)
    if spec is not None:
        config = getattr(model, "config", None)
        pool = spec.default_pool_for(config.get("model_type") if isinstance(config, dict) else None)
        if pool == "joint" and _joint_dim(model) is None:
            pool = spec.default_pool  # a full checkpoint saved without its projection
        if pool == "pooler" and not _pooler_usable(model):
            return "mean"
        return str(pool)
    image = getattr(model, "modality", "image") == "image"
    if image and getattr(model, "num_prefix_tokens", 0) > 0:
        return "cls"
    return "pooler" if image and _pooler_usable(model) else "mean"


def check_pool(model: Any, pool: str) -> str:
    """Validate ``pool`` for ``model``; errors say which poolings it supports."""
    if pool not in POOLINGS:
        raise ConfigError(f"pool must be one of {', '.join(POOLINGS)}, not {pool!r}")
    if pool == "pooler":
        if getattr(model, "pooler_is_random", False):
            raise ConfigError(
                "this checkpoint has no pooler weights (a classifier checkpoint loaded as a bare encoder), "
                "so its pooler would be randomly initialised noise; use pool='cls' or pool='mean'"
            )
        if not getattr(model, "has_pooler", False):
            raise ConfigError(f"{type(model).__name__} has no pooler; use pool='cls' or pool='mean'")
    if pool == "cls" and getattr(model, "num_prefix_tokens", 0) == 0:
        raise ConfigError(f"{type(model).__name__} has no class token; use pool='mean' or 'pooler'")
    if pool == "joint" and _joint_dim(model) is None:
        raise ConfigError(f"{getattr(model, 'name_or_path', type(model).__name__)} has no joint image-text "
                          "space (pool='joint' needs a CLIP/SigLIP checkpoint with its projection or pooling "
                          "head); use pool='cls', 'mean' or 'pooler'")
    return pool


def pooled_dim(model: Any, pool: str, hidden_size: int) -> int:
    """The width of ``pool``'s vectors: the joint space's for "joint", else ``hidden_size``."""
    return int(_joint_dim(model) or hidden_size) if pool == "joint" else hidden_size


def pool_output(model: Any, output: Any, pool: str) -> torch.Tensor:
    """[batch, hidden] (or the full [batch, tokens, hidden] for ``"none"``) from a model output.

    Mean pooling skips the class/distillation/register tokens and the padding positions given by
    the output's ``attention_mask`` (already at the output's token rate).
    """
    hidden = output.last_hidden_state
    if pool == "none":
        return hidden
    if pool == "pooler":
        return output.pooler_output
    if pool == "joint":
        return getattr(output, model.joint_field)
    if pool == "cls":
        return hidden[:, 0]
    skip = int(getattr(model, "num_prefix_tokens", 0))
    tokens = hidden[:, skip:].float()
    mask = getattr(output, "attention_mask", None)
    if mask is None:
        return tokens.mean(dim=1)
    mask = mask[:, -tokens.shape[1]:].to(tokens.device, tokens.dtype).unsqueeze(-1)
    return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
