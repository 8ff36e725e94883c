"""Pillow's resampling coefficients, rebuilt exactly: its filters, the fixed-point weights and the pass order.

Pillow (``libImaging/Resample.c``) computes, for each output pixel of a pass, filter weights in double
precision, normalises them and converts them to integers scaled by 2**22 (``normalize_coeffs_8bpc``).
`pil_coeffs` rebuilds those integers with the same floating-point operations in the same order, so
the kernels of `featx.image.resample` that sum with them give Pillow's bytes. `horizontal_first`
says which pass Pillow runs first (it matters: the image is 8-bit again in between).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from ..errors import InputError

__all__ = [
    "pil_coeffs",
    "pil_weights",
    "nearest_index",
    "horizontal_first",
    "pil_picks_order",
    "read_only",
    "FILTERS",
    "PRECISION_BITS",
]

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit images


# ---- Pillow's filters -----------------------------------------------------------------------------
# Written with the same operations in the same order as Resample.c, so that the fixed-point
# coefficients come out identical.
_F54, _F46 = float(np.float32(0.54)), float(np.float32(0.46))  # C float literals 0.54f, 0.46f


def _filter_box(x: np.ndarray) -> np.ndarray:
    return np.where((x > -0.5) & (x <= 0.5), 1.0, 0.0)


def _filter_bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _filter_bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _libm(fn: Callable[[float], float], x: np.ndarray) -> np.ndarray:
    # the C library's sin/cos, as Pillow calls them (NumPy's SIMD versions may differ in the last bit)
    return np.fromiter((fn(v) for v in x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


def _sinc(x: np.ndarray) -> np.ndarray:
    px = x * math.pi
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0.0, 1.0, _libm(math.sin, px) / px)


def _filter_lanczos(x: np.ndarray) -> np.ndarray:
    return np.where((-3.0 <= x) & (x < 3.0), _sinc(x) * _sinc(x / 3), 0.0)


def _filter_hamming(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    px = x * math.pi
    with np.errstate(divide="ignore", invalid="ignore"):
        value = _libm(math.sin, px) / px * (_F54 + _F46 * _libm(math.cos, px))
    return np.where(x == 0.0, 1.0, np.where(x >= 1.0, 0.0, value))


FILTERS = {4: (_filter_box, 0.5), 2: (_filter_bilinear, 1.0), 5: (_filter_hamming, 1.0),
            3: (_filter_bicubic, 2.0), 1: (_filter_lanczos, 3.0)}  # fmt: skip


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for arr in arrays:
        arr.setflags(write=False)
    return arrays


@functools.lru_cache(maxsize=256)
def pil_coeffs(in_size: int, out_size: int, resample: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's coefficients for one axis: ``(first, count, weights)``.

    Output pixel ``o`` reads input pixels ``first[o] : first[o] + count[o]`` with int32 weights
    ``weights[o, :count[o]]`` (scaled by 2**22; zero-padded to the longest row).
    """
    if resample not in FILTERS:
        raise InputError(f"no resampling filter with code {resample!r}", source="resample")
    filt, base_support = FILTERS[resample]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = base_support * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    first = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    count = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64) - first
    taps = np.arange(ksize)[None, :]
    valid = taps < count[:, None]
    w = np.where(valid, filt(((taps + first[:, None]).astype(np.float64) - center[:, None] + 0.5) * (1.0 / filterscale)), 0.0)
    total = np.zeros(out_size)
    for j in range(ksize):  # left to right, as the C loop adds them
        total += w[:, j]
    w = np.divide(w, total[:, None], out=w.copy(), where=(total != 0.0)[:, None])
    fixed = np.trunc(np.where(w < 0, -0.5 + w * (1 << PRECISION_BITS), 0.5 + w * (1 << PRECISION_BITS)))
    width = max(int(count.max(initial=0)), 1)
    weights = np.ascontiguousarray(fixed[:, :width], dtype=np.int32)
    return read_only(first.astype(np.int32), np.maximum(count, 0).astype(np.int32), weights)  # type: ignore[return-value]


@functools.lru_cache(maxsize=128)
def pil_weights(in_size: int, out_size: int, resample: int) -> np.ndarray:
    """Pillow's 8-bit resampling matrix ``(out_size, in_size)``: integer coefficients scaled by 2**22.

    Output pixel ``o`` of one pass is ``clip(floor((sum_i w[o, i] * x[i] + 2**21) / 2**22), 0, 255)``.
    """
    first, count, weights = pil_coeffs(in_size, out_size, resample)
    matrix = np.zeros((out_size, in_size))
    taps = np.arange(weights.shape[1])[None, :]
    valid = taps < count[:, None]
    rows = np.broadcast_to(np.arange(out_size)[:, None], valid.shape)[valid]
    matrix[rows, (taps + first[:, None])[valid]] = weights[valid]
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=256)
def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Source index of each output pixel for NEAREST, as Pillow's ``ImagingScaleAffine`` picks it."""
    # start at scale / 2 and keep adding scale (accumulated, not multiplied)
    scale = in_size / out_size
    steps = np.full(out_size, scale)
    steps[0] = 0.0 + scale * 0.5
    index = np.minimum(np.cumsum(steps).astype(np.int64), in_size - 1)
    index.setflags(write=False)
    return index


@functools.lru_cache(maxsize=1)
def pil_picks_order() -> bool:
    """Whether this Pillow picks the pass order (12 and newer) or always goes horizontal first."""
    from PIL import Image

    probe = Image.fromarray(np.array([[25, 105], [143, 112]], np.uint8)).resize((6, 1), 2)
    return np.asarray(probe)[0, 2] == 92  # vertical first gives 92, horizontal first 93


def horizontal_first(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Whether Pillow runs the horizontal pass first for this resize (it matters: 8-bit in between)."""
    if not pil_picks_order():
        return True
    # Pillow >= 12 runs the vertical pass first when the height shrinks by more than twice as many
    # pixels as the width (checked against Pillow on many sizes in tests/image/test_resample.py)
    return not (in_h > out_h and (in_h - out_h) > (in_w - out_w) * 2)
