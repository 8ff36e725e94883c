"""Batch assembly on the CPU: flattening inputs, per-item errors, padding, and one preallocated batch.

`assemble_numpy` rescales and normalises every prepared item (see `featx.image.plan`) straight into
its slot of one ``(N, C, H, W)`` / ``(N, H, W, C)`` array, through a lookup table for uint8 input
(`featx.image.functional.rescale_normalize`); a ragged batch becomes a list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from . import functional as F
from .layout import CHANNELS_FIRST, CHANNELS_LAST
from .options import Plan
from .plan import SOURCES, Prepared, item_layout, labelled
from .threads import Workers, map_items

__all__ = ["SOURCES", "flatten_images", "padded_sizes", "finish_into", "assemble_numpy"]


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
    layouts = []
    for index, item in enumerate(items):
        try:
            layouts.append(item_layout(item, in_format))
        except InputError as exc:
            source = "input_data_format" if exc.source == "input_data_format" else index
            raise InputError(f"image {index}: {exc}", source=source) from None
    return items, layouts


def padded_sizes(sizes: list[tuple[int, int]], plan: Plan) -> list[tuple[int, int]]:
    """Each image's output height and width: its own, or the pad target when padding."""
    if not plan.do_pad:
        return [(int(h), int(w)) for h, w in sizes]
    target = plan.pad_size or (max(int(h) for h, _ in sizes), max(int(w) for _, w in sizes))
    for i, (h, w) in enumerate(sizes):
        if h > target[0] or w > target[1]:
            raise InputError(f"image {i} is {h}x{w}, larger than pad_size {target[0]}x{target[1]}", source=i)
    return [tuple(target)] * len(sizes)  # type: ignore[list-item]


def finish_into(
    image: np.ndarray, layout: str, slot: np.ndarray | None, size: tuple[int, int], plan: Plan, out_format: str
) -> np.ndarray:
    """Rescale + normalise one image (in ``layout``) into ``slot`` (a view into the batch, in
    ``out_format``; the part beyond the image is left as it is) or into a new array of ``size``."""
    if layout == CHANNELS_FIRST:
        channels, height, width = image.shape
    else:
        height, width, channels = image.shape
    if slot is None:
        shape = (channels, *size) if out_format == CHANNELS_FIRST else (*size, channels)
        alloc = np.empty if tuple(size) == (height, width) else np.zeros
        slot = alloc(shape, plan.out_dtype(image.dtype))
    if layout == out_format:
        view = slot
    else:
        view = slot.transpose(1, 2, 0) if layout == CHANNELS_LAST else slot.transpose(2, 0, 1)
    view = view[:, :height, :width] if layout == CHANNELS_FIRST else view[:height, :width]
    scale = plan.rescale_factor if plan.do_rescale else None
    if plan.do_normalize:
        wanted = len(plan.image_mean) if isinstance(plan.image_mean, Sequence) else channels
        if wanted != channels and not plan.do_convert_rgb:
            raise InputError(
                f"the image has {channels} channel(s) but image_mean has {wanted} values; "
                "pass do_convert_rgb=True to convert grayscale, palette or RGBA images to RGB",
                source="image_mean",
            )
        F.rescale_normalize(image, scale, plan.image_mean, plan.image_std, out=view, input_data_format=layout)
    elif scale is not None:
        view[...] = F.rescale(image, scale)
    else:
        view[...] = image
    return slot


def assemble_numpy(
    prepared: list[Prepared], items: list[Any], plan: Plan, out_format: str, workers: Workers
) -> np.ndarray | list[np.ndarray]:
    """Rescale + normalise the prepared ``(H, W, C)`` items into one batch (a list when ragged), on ``workers``."""
    hwcs = [p.image for p in prepared]  # (H, W, C): the base class's pad hook keeps the layout
    sizes = padded_sizes([h.shape[:2] for h in hwcs], plan)
    dtypes = {plan.out_dtype(h.dtype) for h in hwcs}
    shapes = {(hw, h.shape[2]) for hw, h in zip(sizes, hwcs)}
    slots: list[np.ndarray | None] = [None] * len(hwcs)
    batch = None
    if len(dtypes) == 1 and len(shapes) == 1:
        ((hh, ww), cc), dtype = next(iter(shapes)), next(iter(dtypes))
        alloc = np.zeros if plan.do_pad else np.empty
        batch = alloc((len(hwcs), cc, hh, ww) if out_format == CHANNELS_FIRST else (len(hwcs), hh, ww, cc), dtype)
        slots = list(batch)

    def finish(i: int) -> np.ndarray:
        return labelled(i, items[i], lambda: finish_into(hwcs[i], CHANNELS_LAST, slots[i], sizes[i], plan, out_format))

    results = map_items(finish, list(range(len(hwcs))), workers)
    return batch if batch is not None else results
