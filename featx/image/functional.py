"""Image operations on NumPy arrays and torch tensors, single images and batches.

Every function takes ``(C, H, W)`` / ``(H, W, C)`` images or ``(N, C, H, W)`` / ``(N, H, W, C)``
batches and returns the same layout, type and device. Each op reads the layout once, with
`featx.image.layout.layout_of`: the given ``input_data_format`` (the processors always pass it,
resolved per image at their boundary), else inferred (an ambiguous shape is an error); helpers
inside an op receive it as known. Inputs are never modified. ``convert_rgb`` lives in
`featx.image.colour`; `map_threads` in `featx.image.threads` (no pool outlives a call).

Numbers match the ``transformers`` PIL backend: `resize` gives Pillow's 8-bit result bit for bit
(float input in [0, 1] is scaled by 255 and truncated first, as in the reference) through
`featx.image.resample`: a numba kernel on the CPU (Pillow itself when numba is missing) and float64
matrix products for torch tensors on an accelerator. `rescale` multiplies in float64 and casts to
float32, `normalize` works in the image's float dtype. ``backend="torch"`` runs the torch route on
any device, ``backend="pil"`` forces the CPU route.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from ..errors import InputError
from .colour import convert_rgb
from .layout import (
    RESAMPLE,
    CHANNELS_FIRST,
    CHANNELS_LAST,
    channel_format,
    get_resize_output_size,
    image_hw,
    infer_channel_format,
    is_torch,
    layout_of,
    parse_resample,
    to_channels_first,
    to_channels_last,
)
from .resample import num_threads
from .resample import pil_weights  # noqa: F401  (kept importable from here)
from .resample import resize_pil_image, resize_torch, resize_uint8
from .threads import map_threads


__all__ = [
    "RESAMPLE",
    "parse_resample",
    "get_resize_output_size",
    "resize",
    "resize_hwc",
    "pil_resize",
    "to_uint8_for_pil",
    "rescale",
    "normalize",
    "rescale_normalize",
    "center_crop",
    "pad",
    "convert_rgb",
    "infer_channel_format",
    "to_channels_first",
    "to_channels_last",
    "map_threads",
    "num_threads",
]


# ---- resize -------------------------------------------------------------------------------------
def to_uint8_for_pil(hwc: np.ndarray) -> tuple[np.ndarray, bool]:
    """The reference's ``to_pil_image`` cast: ``(uint8 array, was_scaled_by_255)``."""
    if hwc.dtype == np.uint8:
        return hwc, False
    if hwc.dtype.kind not in "biuf":
        raise InputError(f"cannot resize an image of dtype {hwc.dtype}", source="image")
    if np.allclose(hwc, hwc.astype(int)):
        if np.all(hwc >= 0) and np.all(hwc <= 255):
            return hwc.astype(np.uint8), False
        raise InputError(
            f"integer-valued image has values in [{hwc.min()}, {hwc.max()}], outside 0..255", source="image"
        )
    if np.all(hwc >= 0) and np.all(hwc <= 1):
        # float64 * 255 -> float32 -> truncating uint8 cast, as the reference does
        return (hwc.astype(np.float64) * 255).astype(np.float32).astype(np.uint8), True
    raise InputError(
        f"float image has values in [{np.nanmin(hwc)}, {np.nanmax(hwc)}]; expected [0, 1] or 0..255", source="image"
    )


def pil_resize(
    image: Any, size: tuple[int, int], resample: int, *, threads: int | None = None, executor: Executor | None = None
) -> np.ndarray:
    """Resize a PIL image exactly as the reference does; returns an ``(H, W, C)`` uint8 array.

    ``threads`` / ``executor``: how a large image's rows may be split (see `featx.image.resample.resize_uint8`).
    """
    return resize_pil_image(image, size, resample, threads=threads, executor=executor)


def resize_hwc(
    hwc: np.ndarray, size: tuple[int, int], resample: int, *, threads: int | None = None, executor: Executor | None = None
) -> np.ndarray:
    """The reference's resize of one ``(H, W, C)`` array: through uint8 (see `to_uint8_for_pil`),
    Pillow's arithmetic, and back to float32 in [0, 1] when the input was scaled."""
    u8, scaled = to_uint8_for_pil(hwc)
    out = resize_uint8(u8, size, resample, threads=threads, executor=executor)
    if scaled:
        out = (out.astype(np.float64) * (1 / 255)).astype(np.float32)
    return out


def resize(
    img: Any,
    size: tuple[int, int] | Mapping[str, int] | int,
    resample: Any = 2,
    *,
    input_data_format: Any = None,
    backend: str = "auto",
) -> Any:
    """Resize to ``size`` = ``(height, width)`` (or a size dict / int, see `get_resize_output_size`).

    uint8 stays uint8; float input in [0, 1] comes back float32 in [0, 1] (quantised to 1/255 as in
    the reference); integer-valued float input comes back uint8. ``backend``: ``"auto"`` (the CPU
    route for NumPy and CPU tensors, torch for accelerator tensors), ``"pil"`` (the CPU route: the
    numba kernel, or Pillow without numba; same numbers) or ``"torch"``.
    """
    if backend not in ("auto", "pil", "torch"):
        raise InputError(f"backend must be 'auto', 'pil' or 'torch', not {backend!r}", source="backend")
    code = parse_resample(resample)
    squeeze = img.ndim == 2
    fmt = CHANNELS_LAST if squeeze else layout_of(img, input_data_format)
    x = img[..., None] if squeeze else img
    if not isinstance(size, tuple) or len(size) != 2:
        size = get_resize_output_size(image_hw(x, fmt), size)
    size = (int(size[0]), int(size[1]))
    if is_torch(x):
        use_torch = backend == "torch" or (backend == "auto" and x.device.type != "cpu")
        if use_torch:
            nchw = to_channels_first(x if x.ndim == 4 else x[None], fmt)
            out = resize_torch(nchw, size, code)
            out = out if x.ndim == 4 else out[0]
            out = to_channels_last(out) if fmt == CHANNELS_LAST else out
            return out[..., 0] if squeeze else out
        import torch

        result = resize(x.detach().cpu().numpy(), size, code, input_data_format=fmt, backend="pil")
        tensor = torch.from_numpy(np.ascontiguousarray(result)).to(x.device)
        return tensor[..., 0] if squeeze else tensor
    x = np.asarray(x)
    hwc = to_channels_last(x, fmt)
    if hwc.ndim == 3:
        out = resize_hwc(hwc, size, code)
    else:
        outs = map_threads(lambda im: resize_hwc(im, size, code, threads=1), list(hwc))
        if len({o.dtype for o in outs}) > 1:
            raise InputError("batch mixes integer-valued and [0, 1] float images; resize them one by one", source="image")
        out = np.stack(outs) if outs else np.zeros((0, *size, hwc.shape[-1]), np.uint8)
    if squeeze:
        return out[..., 0]
    return out if fmt == CHANNELS_LAST else to_channels_first(out, CHANNELS_LAST)


# ---- rescale / normalize ------------------------------------------------------------------------
def rescale(img: Any, scale: float) -> Any:
    """``img * scale`` computed in float64 and returned as float32 (the reference's rounding)."""
    if is_torch(img):
        import torch

        wide = torch.float32 if img.device.type == "mps" else torch.float64
        return (img.to(wide) * scale).to(torch.float32)
    return (np.asarray(img).astype(np.float64) * scale).astype(np.float32)


def _per_channel(values: Any, channels: int, name: str) -> list[float]:
    if isinstance(values, (int, float, np.integer, np.floating)):
        return [float(values)] * channels
    values = [float(v) for v in values]
    if len(values) != channels:
        raise InputError(f"{name} has {len(values)} values but the image has {channels} channels", source=name)
    return values


def _channel_shape(img: Any, fmt: str | None) -> tuple[int, tuple[int, ...]]:
    """(number of channels, broadcast shape of a per-channel vector) in the known layout ``fmt``."""
    if img.ndim == 2:
        return 1, (1, 1)
    if fmt == CHANNELS_FIRST:
        return int(img.shape[-3]), (-1, 1, 1)
    return int(img.shape[-1]), (-1,)


def normalize(img: Any, mean: Any, std: Any, *, input_data_format: Any = None) -> Any:
    """``(img - mean) / std`` per channel; integers become float32, float dtypes are kept."""
    channels, shape = _channel_shape(img, _layout(img, input_data_format))
    mean = _per_channel(mean, channels, "image_mean")
    std = _per_channel(std, channels, "image_std")
    if is_torch(img):
        import torch

        x = img if img.is_floating_point() else img.to(torch.float32)
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).reshape(shape)
        return (x - m) / s
    x = np.asarray(img)
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
    return (x - np.array(mean, dtype=x.dtype).reshape(shape)) / np.array(std, dtype=x.dtype).reshape(shape)


@functools.lru_cache(maxsize=64)
def _lut(scale: float, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(C, 256) float32: every uint8 value rescaled and normalised the reference's way."""
    levels = (np.arange(256, dtype=np.float64) * scale).astype(np.float32)
    lut = (levels[None, :] - np.array(mean, np.float32)[:, None]) / np.array(std, np.float32)[:, None]
    lut.setflags(write=False)
    return lut


def rescale_normalize(
    img: Any,
    scale: float | None,
    mean: Any,
    std: Any,
    out: Any = None,
    *,
    input_data_format: Any = None,
) -> Any:
    """`normalize` (`rescale` (img)) in one pass, optionally written into ``out``.

    ``scale=None`` skips the rescale; ``mean=std=None`` skips the normalisation. uint8 images go
    through a 256-entry table per channel, so the result is bit-identical to the two-step path.
    ``out`` must have the result's shape (and, for NumPy, a float dtype); it is returned.
    """
    if mean is None and std is None:
        result = rescale(img, scale) if scale is not None else img
        return _write(result, out)
    fmt = _layout(img, input_data_format)
    channels, shape = _channel_shape(img, fmt)
    mean_l = tuple(_per_channel(mean, channels, "image_mean"))
    std_l = tuple(_per_channel(std, channels, "image_std"))
    if scale is not None and getattr(img, "dtype", None) == np.uint8 and not is_torch(img):
        return _apply_lut(np.asarray(img), _lut(float(scale), mean_l, std_l), shape, out)
    if scale is not None and is_torch(img) and img.device.type == "cpu" and str(img.dtype) == "torch.uint8":
        import torch

        lut = _lut(float(scale), mean_l, std_l)
        if out is None:
            return torch.from_numpy(_apply_lut(img.numpy(), lut, shape, None))
        _apply_lut(img.numpy(), lut, shape, out.numpy())
        return out
    x = rescale(img, scale) if scale is not None else img
    return _write(normalize(x, mean_l, std_l, input_data_format=fmt), out)


def _write(result: Any, out: Any) -> Any:
    if out is None:
        return result
    if tuple(out.shape) != tuple(result.shape):
        raise InputError(f"out has shape {tuple(out.shape)}, the result has {tuple(result.shape)}", source="out")
    out[...] = result
    return out


def _apply_lut(u8: np.ndarray, lut: np.ndarray, shape: tuple[int, ...], out: np.ndarray | None) -> np.ndarray:
    if out is None:
        out = np.empty(u8.shape, np.float32)
    elif tuple(out.shape) != u8.shape:
        raise InputError(f"out has shape {tuple(out.shape)}, the image has {u8.shape}", source="out")
    axis = u8.ndim - 3 if shape == (-1, 1, 1) else u8.ndim - 1
    for c in range(lut.shape[0]):
        index = (slice(None),) * axis + (c,)
        dst = out[index]
        if dst.flags.c_contiguous and dst.dtype == np.float32:
            np.take(lut[c], u8[index], out=dst, mode="clip")  # uint8 indices are always in range
        else:
            dst[...] = lut[c][u8[index]]
    return out


def _layout(img: Any, input_data_format: Any) -> str | None:
    """The op's one layout lookup (``None`` for a 2-D image, which has no channel axis)."""
    return None if img.ndim == 2 else layout_of(img, input_data_format)


# ---- crop / pad ---------------------------------------------------------------------------------
def _hw_axes(img: Any, fmt: str | None) -> tuple[int, int]:
    if img.ndim == 2:
        return 0, 1
    return (img.ndim - 2, img.ndim - 1) if fmt == CHANNELS_FIRST else (img.ndim - 3, img.ndim - 2)


def _crop_size(size: Any) -> tuple[int, int]:
    if isinstance(size, Mapping):
        if size.get("height") is None or size.get("width") is None:
            raise InputError(f"crop size {dict(size)} needs 'height' and 'width'", source="crop_size")
        return int(size["height"]), int(size["width"])
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    return int(size[0]), int(size[1])


def center_crop(img: Any, size: Any, *, input_data_format: Any = None) -> Any:
    """Crop the centre ``(height, width)``; a smaller image is zero-padded, the odd pixel top/left.

    Returns a view when nothing needs padding.
    """
    crop_h, crop_w = _crop_size(size)
    ah, aw = _hw_axes(img, _layout(img, input_data_format))
    height, width = int(img.shape[ah]), int(img.shape[aw])
    if crop_h <= height and crop_w <= width:
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        index = [slice(None)] * img.ndim
        index[ah], index[aw] = slice(top, top + crop_h), slice(left, left + crop_w)
        return img[tuple(index)]
    src, dst = [slice(None)] * img.ndim, [slice(None)] * img.ndim
    for axis, have, want in ((ah, height, crop_h), (aw, width, crop_w)):
        if want > have:
            off = (want - have + 1) // 2
            dst[axis] = slice(off, off + have)
        else:
            off = (have - want) // 2
            src[axis] = slice(off, off + want)
    shape = list(img.shape)
    shape[ah], shape[aw] = crop_h, crop_w
    if is_torch(img):
        import torch

        out = torch.zeros(shape, dtype=img.dtype, device=img.device)
    else:
        out = np.zeros(shape, dtype=np.asarray(img).dtype)
    out[tuple(dst)] = img[tuple(src)]
    return out


def _padding(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 2, (int(padding),) * 2  # type: ignore[return-value]
    padding = tuple(padding)
    if len(padding) == 1 and isinstance(padding[0], (int, np.integer)):
        return _padding(padding[0])
    if len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
        pair = (int(padding[0]), int(padding[1]))
        return pair, pair
    if len(padding) == 2 and all(isinstance(p, Iterable) and len(tuple(p)) == 2 for p in padding):
        (t, b), (l, r) = padding
        return (int(t), int(b)), (int(l), int(r))
    raise InputError(f"padding must be an int, (before, after) or ((top, bottom), (left, right)), not {padding!r}", source="padding")


def pad(
    img: Any,
    padding: Any,
    value: float | Sequence[float] = 0.0,
    *,
    mode: str = "constant",
    input_data_format: Any = None,
) -> Any:
    """Pad height and width: ``padding`` = ``((top, bottom), (left, right))``, ``(before, after)`` or int.

    ``mode``: ``"constant"`` (``value``, a scalar or one per channel), ``"reflect"``,
    ``"replicate"`` (``"edge"``) or ``"symmetric"``, as in the reference.
    """
    (top, bottom), (left, right) = _padding(padding)
    if min(top, bottom, left, right) < 0:
        raise InputError(f"padding must not be negative, got {padding!r}", source="padding")
    fmt = _layout(img, input_data_format)
    ah, aw = _hw_axes(img, fmt)
    height, width = int(img.shape[ah]), int(img.shape[aw])
    torch_in = is_torch(img)
    if mode == "constant":
        shape = list(img.shape)
        shape[ah], shape[aw] = height + top + bottom, width + left + right
        if torch_in:
            import torch

            out = torch.empty(shape, dtype=img.dtype, device=img.device)
        else:
            out = np.empty(shape, dtype=np.asarray(img).dtype)
        if isinstance(value, (int, float, np.integer, np.floating)):
            out[...] = value
        else:
            channels, vshape = _channel_shape(img, fmt)
            vals = np.array(_per_channel(value, channels, "value")).reshape(vshape)
            out[...] = torch.as_tensor(vals, dtype=out.dtype, device=out.device) if torch_in else vals
        index = [slice(None)] * img.ndim
        index[ah], index[aw] = slice(top, top + height), slice(left, left + width)
        out[tuple(index)] = img
        return out
    np_mode = {"reflect": "reflect", "replicate": "edge", "edge": "edge", "symmetric": "symmetric"}.get(mode)
    if np_mode is None:
        raise InputError(f"unknown padding mode {mode!r}; use constant, reflect, replicate or symmetric", source="mode")
    rows = np.pad(np.arange(height), (top, bottom), mode=np_mode)
    cols = np.pad(np.arange(width), (left, right), mode=np_mode)
    if torch_in:
        import torch

        out = img.index_select(ah, torch.from_numpy(rows).to(img.device))
        return out.index_select(aw, torch.from_numpy(cols).to(img.device))
    return np.take(np.take(np.asarray(img), rows, axis=ah), cols, axis=aw)
