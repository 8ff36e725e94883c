"""Fitting an adaptor on pairs of (visual tokens, target embeddings), for users aligning an encoder
with their own language model.

``fit_adaptor(adaptor, inputs, targets)`` runs AdamW over shuffled mini-batches and returns the loss
of each epoch. ``loss="mse"`` regresses each output on its target (same shapes); ``"contrastive"``
mean-pools each input's tokens and each target, and trains matching pairs of a batch to score above
the others (a symmetric InfoNCE, CLIP's loss). Example::

    import torch
    from featx.adapters import LinearAdaptor, fit_adaptor

    tokens = torch.randn(256, 8, 32)            # 256 inputs, 8 visual tokens of width 32
    targets = tokens @ torch.randn(32, 16)      # what the LLM's embeddings should be
    adaptor = LinearAdaptor(32, 16)
    losses = fit_adaptor(adaptor, tokens, targets, epochs=20, lr=1e-2)
    assert losses[-1] < losses[0]
    adaptor.save("my-adaptor")                  # adaptor.safetensors + adaptor.json
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["contrastive_loss", "fit_adaptor", "mse_loss"]


def mse_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """Mean squared error over every element."""
    return torch.nn.functional.mse_loss(outputs, targets)


def contrastive_loss(outputs: Tensor, targets: Tensor, temperature: float = 0.07) -> Tensor:
    """Symmetric InfoNCE of L2-normalised pooled outputs and targets ([batch, dim] each, or
    [batch, tokens, dim], mean-pooled over the tokens)."""
    if outputs.ndim == 3:
        outputs = outputs.mean(dim=1)
    if targets.ndim == 3:
        targets = targets.mean(dim=1)
    a = torch.nn.functional.normalize(outputs, dim=-1)
    b = torch.nn.functional.normalize(targets, dim=-1)
    logits = a @ b.T / temperature
    labels = torch.arange(len(a), device=a.device)
    return (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)) / 2


def _tensor(x: Any, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().float()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float32))
    if isinstance(x, Sequence) and x and all(isinstance(i, (Tensor, np.ndarray)) for i in x):
        shapes = {tuple(i.shape) for i in x}
        if len(shapes) != 1:
            raise ConfigError(f"{name}: the items have different shapes {sorted(shapes)[:4]}; pad or pool them first")
        return torch.stack([_tensor(i, name) for i in x])
    raise ConfigError(f"{name} must be a tensor, an array or a list of equally shaped ones, got {type(x).__name__}")


def fit_adaptor(adaptor: nn.Module, inputs: Any, targets: Any, *, loss: str = "mse", epochs: int = 10,
                batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0, temperature: float = 0.07,
                seed: int | None = 0, device: str | torch.device | None = None) -> list[float]:
    """Train ``adaptor`` in place on ``inputs -> targets``; returns the mean loss of each epoch.

    ``inputs``: [n, in_dim] or [n, tokens, in_dim]; ``targets``: the same leading axes with the
    adaptor's output width for ``"mse"``, or [n, dim] / [n, tokens, dim] for ``"contrastive"``.
    """
    if loss not in ("mse", "contrastive"):
        raise ConfigError(f"loss must be 'mse' or 'contrastive', got {loss!r}")
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ConfigError("epochs and batch_size must be at least 1 and lr a positive number")
    x, y = _tensor(inputs, "inputs"), _tensor(targets, "targets")
    if len(x) != len(y) or len(x) == 0:
        raise ConfigError(f"inputs and targets must pair up: got {len(x)} inputs and {len(y)} targets")
    if loss == "contrastive" and min(batch_size, len(x)) < 2:
        raise ConfigError("the contrastive loss needs at least 2 pairs per batch")
    param = next(adaptor.parameters())
    dev = torch.device(device) if device is not None else param.device
    adaptor.to(dev)
    adaptor.train()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    optimizer = torch.optim.AdamW(adaptor.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[float] = []
    try:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            total, seen = 0.0, 0
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                if loss == "contrastive" and len(idx) < 2:
                    continue
                xb, yb = x[idx].to(dev, param.dtype), y[idx].to(dev, param.dtype)
                out = adaptor(xb)
                value = mse_loss(out, yb) if loss == "mse" else contrastive_loss(out, yb, temperature)
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                total += float(value.detach()) * len(idx)
                seen += len(idx)
            history.append(total / max(seen, 1))
    finally:
        adaptor.eval()
    return history
