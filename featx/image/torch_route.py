"""The accelerator route of the image processors: decode and convert on the CPU, then resize, crop,
rescale, normalise and pad with torch ops on the target device (resize within about 1/255 of PIL,
see `featx.image.functional`). Results stay on that device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import functional as F
from .batching import SOURCES, labelled, padded_sizes
from .layout import CHANNELS_FIRST, CHANNELS_LAST, is_torch, to_channels_first
from .options import Plan

__all__ = ["wants_torch", "prepare_torch", "process_torch"]

# ``(height, width, plan) -> (resize_to, then_crop_to)``: the processor's resize rule.
ResizePlan = Callable[[int, int, Plan], "tuple[tuple[int, int], tuple[int, int] | None]"]


def wants_torch(items: list[Any], device: Any) -> bool:
    """Whether to take the torch route: a non-CPU ``device``, or (without one) a tensor on an accelerator."""
    if device is not None:
        return str(device) != "cpu"
    return any(is_torch(item) and item.device.type != "cpu" for item in items)


def prepare_torch(resize_plan: ResizePlan, item: Any, plan: Plan, in_format: str | None, device: Any) -> Any:
    """One item as a ``(C, H, W)`` tensor on ``device``, converted, resized and cropped there."""
    import torch

    if isinstance(item, SOURCES):
        from .io import load_image  # noqa: PLC0415

        item = load_image(item)
    if hasattr(item, "getbands"):
        arr = np.array(F.convert_rgb(item) if plan.do_convert_rgb else item)
        tensor = torch.from_numpy(arr).to(device)
        tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    else:
        tensor = item if is_torch(item) else torch.from_numpy(np.ascontiguousarray(item))
        tensor = tensor.to(device)
        tensor = tensor[None] if tensor.ndim == 2 else to_channels_first(tensor, in_format)
        if plan.do_convert_rgb:
            tensor = F.convert_rgb(tensor, input_data_format=CHANNELS_FIRST)
    crop = None
    if plan.do_resize:
        target, crop = resize_plan(int(tensor.shape[-2]), int(tensor.shape[-1]), plan)
        tensor = F.resize(tensor, target, plan.resample, input_data_format=CHANNELS_FIRST, backend="torch")
    if crop is not None:
        tensor = F.center_crop(tensor, crop, input_data_format=CHANNELS_FIRST)
    if plan.do_center_crop and plan.crop_size is not None:
        tensor = F.center_crop(tensor, plan.crop_size, input_data_format=CHANNELS_FIRST)
    return tensor

def process_torch(
    resize_plan: ResizePlan, items: list[Any], plan: Plan, formats: list[str | None], out_format: str, device: Any
) -> Any:
    """The whole batch with torch ops on ``device`` (default: the first accelerator tensor's device)."""
    import torch

    if device is None:
        device = next(item.device for item in items if is_torch(item) and item.device.type != "cpu")
    device = torch.device(device)
    chws = [labelled(i, item, lambda: prepare_torch(resize_plan, item, plan, formats[i], device)) for i, item in enumerate(items)]
    sizes = padded_sizes([tuple(t.shape[-2:]) for t in chws], plan)
    scale = plan.rescale_factor if plan.do_rescale else None
    outs = []
    for t, (hh, ww) in zip(chws, sizes):
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
