"""Batch assembly on a torch device: each item goes through the shared per-item path
(`featx.image.plan.prepare_item` with ``device=``: decoded and converted on the CPU, then resized and
cropped with torch ops, resize within about 1/255 of PIL, see `featx.image.functional`), then is
rescaled, normalised and padded there. Results stay on that device.
"""

from __future__ import annotations

from typing import Any

from . import functional as F
from .layout import CHANNELS_FIRST, CHANNELS_LAST, is_torch
from .options import Plan
from .plan import Prepared
from .batching import padded_sizes

__all__ = ["wants_torch", "torch_device", "assemble_torch"]


def wants_torch(items: list[Any], device: Any) -> bool:
    """Whether to take the torch route: a non-CPU ``device``, or (without one) a tensor on an accelerator."""
    if device is not None:
        return str(device) != "cpu"
    return any(is_torch(item) and item.device.type != "cpu" for item in items)


def torch_device(items: list[Any], device: Any) -> Any:
    """``device`` as a ``torch.device``; without one, the first accelerator tensor's device."""
    import torch

    if device is None:
        device = next(item.device for item in items if is_torch(item) and item.device.type != "cpu")
    return torch.device(device)


def assemble_torch(prepared: list[Prepared], plan: Plan, out_format: str) -> Any:
    """Rescale, normalise and pad the prepared ``(C, H, W)`` tensors; one stacked tensor when they agree."""
    import torch

    sizes = padded_sizes([p.image.shape[-2:] for p in prepared], plan)
    scale = plan.rescale_factor if plan.do_rescale else None
    outs = []
    for p, (hh, ww) in zip(prepared, sizes):
        t = p.image
        if plan.do_normalize:
            t = F.rescale_normalize(t, scale, plan.image_mean, plan.image_std, input_data_format=CHANNELS_FIRST)
        elif scale is not None:
            t = F.rescale(t, scale)
        if plan.do_pad:
            t = F.pad(t, ((0, hh - t.shape[-2]), (0, ww - t.shape[-1])), input_data_format=CHANNELS_FIRST)
        outs.append(t.permute(1, 2, 0) if out_format == CHANNELS_LAST else t)
    if len({(o.shape, o.dtype) for o in outs}) == 1:
        return torch.stack(outs)
    return outs
