"""Batch assembly for the image processors: flattening inputs, per-item errors, padding, output slots."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import FeatxError, InputError
from . import functional as F
from .layout import CHANNELS_FIRST, CHANNELS_LAST, infer_channel_format, is_torch
from .options import Plan

__all__ = ["SOURCES", "flatten_images", "labelled", "padded_sizes", "finish_into"]

SOURCES = (str, os.PathLike, bytes, bytearray, memoryview)  # decoded with `featx.load_image`


def flatten_images(images: Any, in_format: str | None) -> tuple[list[Any], list[str | None]]:
    """A flat list of images and each one's input layout.

    ``in_format`` (the caller's ``input_data_format``) applies to every 3-D array; without it the
    layout is inferred per image, so a batch may mix channels-last arrays, channels-first tensors
    and PIL images, as in the reference. An image whose layout is ambiguous is an error. PIL
    images, 2-D arrays and paths/bytes get ``None``.
    """
    if images is None:
        raise InputError("no images given", source="images")
    if isinstance(images, (list, tuple)):
        items: list[Any] = []
        for entry in images:
            if isinstance(entry, (list, tuple)):
                items.extend(entry)
            elif getattr(entry, "ndim", 0) == 4:
                items.extend(entry)
            else:
                items.append(entry)
    elif getattr(images, "ndim", 0) == 4:
        items = list(images)
    else:
        items = [images]
    if not items:
        raise InputError("no images given (empty list)", source="images")
    return items, [_item_format(index, item, in_format) for index, item in enumerate(items)]


def _item_format(index: int, item: Any, in_format: str | None) -> str | None:
    if isinstance(item, SOURCES) or hasattr(item, "getbands"):
        return None
    if not (isinstance(item, np.ndarray) or is_torch(item)):
        raise InputError(
            f"image {index} is a {type(item).__name__}; expected a PIL image, NumPy array, torch tensor, "
            "path, URL or bytes",
            source=index,
        )
    if item.ndim == 2:
        return None
    if item.ndim != 3:
        raise InputError(f"image {index} has shape {tuple(item.shape)}; expected 2 or 3 dims", source=index)
    if in_format is not None:
        return in_format
    try:
        return infer_channel_format(item)
    except InputError as exc:
        raise InputError(f"image {index}: {exc}", source="input_data_format") from None


def labelled(index: int, item: Any, work: Any) -> Any:
    """Run ``work``; errors name the item (its path when it has one, else its index)."""
    source = os.fspath(item) if isinstance(item, (str, os.PathLike)) else index
    try:
        return work()
    except InputError as exc:
        if exc.source in (None, "image", "size", "image_mean", "image_std"):
            raise InputError(f"image {index}: {exc}", source=source) from exc
        raise
    except FeatxError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise InputError(f"image {index} could not be processed: {exc}", source=source) from exc


def padded_sizes(sizes: list[tuple[int, int]], plan: Plan) -> list[tuple[int, int]]:
    """Each image's output height and width: its own, or the pad target when padding."""
    if not plan.do_pad:
        return [(int(h), int(w)) for h, w in sizes]
    target = plan.pad_size or (max(int(h) for h, _ in sizes), max(int(w) for _, w in sizes))
    for i, (h, w) in enumerate(sizes):
        if h > target[0] or w > target[1]:
            raise InputError(f"image {i} is {h}x{w}, larger than pad_size {target[0]}x{target[1]}", source=i)
    return [tuple(target)] * len(sizes)  # type: ignore[list-item]


def finish_into(hwc: np.ndarray, slot: np.ndarray | None, size: tuple[int, int], plan: Plan, out_format: str) -> np.ndarray:
    """Rescale + normalise one ``(H, W, C)`` image into ``slot`` (a view into the batch) or a new array."""
    height, width, channels = hwc.shape
    if slot is None:
        shape = (channels, *size) if out_format == CHANNELS_FIRST else (*size, channels)
        slot = np.zeros(shape, plan.out_dtype(hwc.dtype))
    view = slot.transpose(1, 2, 0) if out_format == CHANNELS_FIRST else slot
    view = view[:height, :width]
    scale = plan.rescale_factor if plan.do_rescale else None
    if plan.do_normalize:
        wanted = len(plan.image_mean) if isinstance(plan.image_mean, Sequence) else channels
        if wanted != channels and not plan.do_convert_rgb:
            raise InputError(
                f"the image has {channels} channel(s) but image_mean has {wanted} values; "
                "pass do_convert_rgb=True to convert grayscale, palette or RGBA images to RGB",
                source="image_mean",
            )
        F.rescale_normalize(hwc, scale, plan.image_mean, plan.image_std, out=view, input_data_format=CHANNELS_LAST)
    elif scale is not None:
        view[...] = F.rescale(hwc, scale)
    else:
        view[...] = hwc
    return slot
