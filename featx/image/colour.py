"""Colour conversion as the reference does it: to RGB, with transparency composited onto white.

Works on PIL images, NumPy arrays and torch tensors in either layout (see `featx.image.layout`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .layout import CHANNELS_FIRST, channel_format, is_torch, layout_of

__all__ = ["convert_rgb"]


def _pil_to_rgb(image: Any) -> Any:
    from PIL import Image

    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def convert_rgb(img: Any, *, input_data_format: Any = None) -> Any:
    """Three channels, as the reference converts: transparency is composited onto white.

    PIL images come back as RGB PIL images (the input itself when already plain RGB). Arrays and
    tensors: 1 channel is repeated, 4 channels (RGBA) are blended onto white, others are unchanged;
    a 2-D array gets a channel axis in ``input_data_format`` (channels-first by default).
    """
    if hasattr(img, "getbands"):
        return _pil_to_rgb(img)
    if img.ndim == 2:
        fmt = channel_format(input_data_format, "input_data_format") or CHANNELS_FIRST
        img = img[None] if fmt == CHANNELS_FIRST else img[..., None]
    else:
        fmt = layout_of(img, input_data_format)
    axis = -3 if fmt == CHANNELS_FIRST else -1
    channels = int(img.shape[axis])
    if is_torch(img):
        import torch

        x = torch.movedim(img, axis, -1)
        if channels == 1:
            rgb = x.expand(*x.shape[:-1], 3)
        elif channels == 4:
            rgb = _blend_white_torch(x)
        else:
            return img
        return torch.movedim(rgb.contiguous(), -1, axis)
    x = np.moveaxis(np.asarray(img), axis, -1)
    if channels == 1:
        rgb = np.repeat(x, 3, axis=-1)
    elif channels == 4:
        if np.issubdtype(x.dtype, np.floating) and (x.min() < 0.0 or x.max() > 1.0):
            raise InputError(f"RGBA float image has values in [{x.min()}, {x.max()}], outside [0, 1]", source="image")
        white = 255 if np.issubdtype(x.dtype, np.integer) else 1.0
        alpha = x[..., 3:4] / white
        blended = alpha * x[..., :3] + (1 - alpha) * white
        rgb = np.round(blended).astype(x.dtype) if white == 255 else blended.astype(x.dtype)
    else:
        return img
    return np.moveaxis(rgb, -1, axis)


def _blend_white_torch(x: Any) -> Any:
    import torch

    if x.is_floating_point():
        if float(x.min()) < 0.0 or float(x.max()) > 1.0:
            raise InputError("RGBA float image has values outside [0, 1]", source="image")
        alpha = x[..., 3:4]
        return (alpha * x[..., :3] + (1 - alpha) * 1.0).to(x.dtype)
    alpha = x[..., 3:4].to(torch.float64) / 255
    return torch.round(alpha * x[..., :3].to(torch.float64) + (1 - alpha) * 255).to(x.dtype)
