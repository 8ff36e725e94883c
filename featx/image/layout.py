"""Geometry of image arrays: channel layout (inferred, never silently guessed), output sizes, filters.

Images are NumPy arrays or torch tensors in either layout: channels-first (``C, H, W`` / ``N, C, H, W``)
or channels-last (``H, W, C`` / ``N, H, W, C``). `layout_of` is the one place a layout is read: the
given ``input_data_format``, else inferred from the shape (an ambiguous shape is an error). The
processors call it once per image at their boundary and hand the result to every op as
``input_data_format``, so nothing is inferred twice. Internally the processors work channels-last
on the CPU (the layout of PIL and of the resize kernel) and channels-first on the torch route, and
write the requested output layout (channels-first by default, as the reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..enums import PILImageResampling
from ..errors import InputError

__all__ = [
    "CHANNELS_FIRST",
    "CHANNELS_LAST",
    "channel_format",
    "infer_channel_format",
    "layout_of",
    "channel_axis",
    "to_channels_first",
    "to_channels_last",
    "is_torch",
    "image_hw",
    "RESAMPLE",
    "PILImageResampling",
    "parse_resample",
    "resample_option",
    "get_resize_output_size",
]

CHANNELS_FIRST = "channels_first"
CHANNELS_LAST = "channels_last"
_ALIASES = {
    "channels_first": CHANNELS_FIRST,
    "first": CHANNELS_FIRST,
    "chw": CHANNELS_FIRST,
    "nchw": CHANNELS_FIRST,
    "channels_last": CHANNELS_LAST,
    "last": CHANNELS_LAST,
    "hwc": CHANNELS_LAST,
    "nhwc": CHANNELS_LAST,
}
DEFAULT_NUM_CHANNELS = (1, 3, 4)
# PIL's codes, which the reference saves in configs as `resample`.
RESAMPLE = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}
_RESAMPLE_ALIASES = {"nearest-exact": 0, "nearest_exact": 0, "antialias": 1, "linear": 2, "cubic": 3}


def is_torch(x: object) -> bool:
    """True for a torch tensor, without importing torch."""
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "permute") and hasattr(x, "device")


def channel_format(fmt: Any, argument: str = "data_format") -> str | None:
    """Canonical name of a layout: accepts the reference's strings and ``ChannelDimension`` members."""
    if fmt is None:
        return None
    value = getattr(fmt, "value", fmt)
    if isinstance(value, str) and value.lower() in _ALIASES:
        return _ALIASES[value.lower()]
    raise InputError(f"{argument} must be 'channels_first' or 'channels_last', not {fmt!r}", source=argument)


def infer_channel_format(img: Any, num_channels: tuple[int, ...] = DEFAULT_NUM_CHANNELS) -> str:
    """Tell channels-first from channels-last for a 3-D image or 4-D batch.

    Unlike the reference (which warns and assumes channels-first), a shape where both ends could
    be the channel axis, such as ``(3, 10, 3)`` or ``(1, 7, 3)``, raises `InputError` asking for
    ``input_data_format``.
    """
    shape = tuple(img.shape)
    if len(shape) == 3:
        first, last = shape[0], shape[2]
    elif len(shape) == 4:
        first, last = shape[1], shape[3]
    else:
        raise InputError(
            f"cannot infer the channel axis of an array with shape {shape}: expected 3 dims (one image) "
            "or 4 dims (a batch)",
            source="input_data_format",
        )
    is_first, is_last = first in num_channels, last in num_channels
    if is_first and is_last:
        raise InputError(
            f"the channel axis of an image with shape {shape} is ambiguous (channels-first and "
            "channels-last both fit); pass input_data_format='channels_first' or 'channels_last'",
            source="input_data_format",
        )
    if is_first:
        return CHANNELS_FIRST
    if is_last:
        return CHANNELS_LAST
    raise InputError(
        f"cannot find a channel axis with {'/'.join(map(str, num_channels))} channels in shape {shape}; "
        "pass input_data_format='channels_first' or 'channels_last'",
        source="input_data_format",
    )


def layout_of(img: Any, input_data_format: Any = None) -> str:
    """The layout of a 3-D image or 4-D batch: ``input_data_format`` when given (a canonical name is
    returned as is, without looking at the array), else `infer_channel_format`."""
    if input_data_format is CHANNELS_FIRST or input_data_format is CHANNELS_LAST:
        return input_data_format
    return channel_format(input_data_format, "input_data_format") or infer_channel_format(img)


def channel_axis(img: Any, input_data_format: Any = None) -> int:
    """Index of the channel axis (negative, so it works for images and batches)."""
    return -3 if layout_of(img, input_data_format) == CHANNELS_FIRST else -1


def _permute(img: Any, axes: tuple[int, ...]) -> Any:
    return img.permute(*axes) if is_torch(img) else np.transpose(img, axes)


def to_channels_first(img: Any, input_data_format: Any = None) -> Any:
    """A ``(C, H, W)`` / ``(N, C, H, W)`` view of ``img``; a 2-D array becomes ``(1, H, W)``."""
    if img.ndim == 2:
        return img[None]
    if img.ndim not in (3, 4):
        raise InputError(f"expected an image with 2, 3 or 4 dims, got shape {tuple(img.shape)}", source="image")
    if layout_of(img, input_data_format) == CHANNELS_FIRST:
        return img
    return _permute(img, (2, 0, 1) if img.ndim == 3 else (0, 3, 1, 2))


def to_channels_last(img: Any, input_data_format: Any = CHANNELS_FIRST) -> Any:
    """A ``(H, W, C)`` / ``(N, H, W, C)`` view; the input is channels-first unless told otherwise."""
    if img.ndim == 2:
        return img[..., None]
    if img.ndim not in (3, 4):
        raise InputError(f"expected an image with 2, 3 or 4 dims, got shape {tuple(img.shape)}", source="image")
    if layout_of(img, input_data_format) == CHANNELS_LAST:
        return img
    return _permute(img, (1, 2, 0) if img.ndim == 3 else (0, 2, 3, 1))


def image_hw(img: Any, input_data_format: Any = None) -> tuple[int, int]:
    """``(height, width)`` of an image or batch in either layout."""
    if img.ndim == 2:
        return int(img.shape[0]), int(img.shape[1])
    if layout_of(img, input_data_format) == CHANNELS_FIRST:
        return int(img.shape[-2]), int(img.shape[-1])
    return int(img.shape[-3]), int(img.shape[-2])


# ---- output sizes and filters --------------------------------------------------------------------------------------
def parse_resample(resample: Any) -> int:
    """PIL's filter code (0..5) from an int, a ``PIL.Image.Resampling``, or a name like ``"bicubic"``."""
    if resample is None:
        return RESAMPLE["bilinear"]
    value = getattr(resample, "value", resample)
    if isinstance(value, str):
        key = value.strip().lower()
        if key in RESAMPLE:
            return RESAMPLE[key]
        if key in _RESAMPLE_ALIASES:
            return _RESAMPLE_ALIASES[key]
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) <= 5:
        return int(value)
    names = ", ".join(f"{v} ({k})" for k, v in RESAMPLE.items())
    raise InputError(f"unknown resample filter {resample!r}; use one of {names}", source="resample")


def resample_option(resample: Any) -> PILImageResampling | int | None:
    """A ``resample`` option as processors store it, with the reference's types.

    ``PILImageResampling`` members and ints (e.g. read from JSON) are kept as given; names such as
    ``"bicubic"`` become members. Anything else raises `InputError` (see `parse_resample`).
    """
    if resample is None:
        return None
    code = parse_resample(resample)
    if isinstance(resample, PILImageResampling):
        return resample
    if isinstance(resample, (int, np.integer)):
        return int(resample)
    return PILImageResampling(code)


def _shortest_edge(height: int, width: int, size: int, max_size: int | None = None) -> tuple[int, int]:
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None:
        if max_size <= size:
            raise InputError(f"max_size {max_size} must be larger than the shortest edge {size}", source="size")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _with_aspect_ratio(height: int, width: int, size: int, max_size: int) -> tuple[int, int]:
    # transformers.image_transforms.get_size_with_aspect_ratio (shortest_edge + longest_edge)
    raw = None
    lo, hi = float(min(height, width)), float(max(height, width))
    if hi / lo * size > max_size:
        raw = max_size * lo / hi
        size = int(round(raw))
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    if width < height:
        return (int(raw * height / width) if raw is not None else int(size * height / width)), size
    return size, (int(raw * width / height) if raw is not None else int(size * width / height))


def get_resize_output_size(
    image_size: tuple[int, int],
    size: int | Sequence[int] | Mapping[str, int],
    *,
    default_to_square: bool = True,
    max_size: int | None = None,
) -> tuple[int, int]:
    """Target ``(height, width)`` for an image of ``image_size`` under the reference's size rules.

    ``size``: ``{"height", "width"}``; ``{"shortest_edge"}`` (short side to s, long side floored);
    ``{"shortest_edge", "longest_edge"}`` (aspect kept, long side capped); ``{"longest_edge"}``
    (long side to l); ``{"max_height", "max_width"}`` (fit inside); an int (square, or the shortest
    edge when ``default_to_square=False``, capped by ``max_size``); or ``(height, width)``.
    """
    height, width = int(image_size[0]), int(image_size[1])
    if isinstance(size, Mapping):
        keys = {k for k, v in size.items() if v is not None}
        if keys == {"height", "width"}:
            return int(size["height"]), int(size["width"])
        if keys == {"shortest_edge", "longest_edge"}:
            return _with_aspect_ratio(height, width, int(size["shortest_edge"]), int(size["longest_edge"]))
        if keys == {"shortest_edge"}:
            return _shortest_edge(height, width, int(size["shortest_edge"]))
        if keys == {"longest_edge"}:
            edge = int(size["longest_edge"])
            if height >= width:
                return edge, int(edge * width / height)
            return int(edge * height / width), edge
        if keys == {"max_height", "max_width"}:
            scale = min(size["max_height"] / height, size["max_width"] / width)
            return int(height * scale), int(width * scale)
        raise InputError(
            f"size {dict(size)} must have the keys height+width, shortest_edge, shortest_edge+longest_edge, "
            "longest_edge or max_height+max_width",
            source="size",
        )
    if isinstance(size, (int, np.integer)):
        if default_to_square:
            return int(size), int(size)
        return _shortest_edge(height, width, int(size), max_size)
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    if isinstance(size, Sequence) and len(size) == 1:
        return get_resize_output_size(image_size, int(size[0]), default_to_square=default_to_square, max_size=max_size)
    raise InputError(f"cannot read an output size from {size!r}", source="size")
