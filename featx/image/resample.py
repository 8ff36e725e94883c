"""Pillow's 8-bit resize, reproduced exactly: coefficients, pass order, a CPU kernel and a torch route.

Pillow (``libImaging/Resample.c``) resizes in two separable passes. For each output pixel it
computes filter weights in double precision, normalises them, converts them to integers scaled by
2**22 (``normalize_coeffs_8bpc``) and sums ``pixel * weight`` in int32, then rounds and clips:
``clip8((2**21 + sum) >> 22)``. The intermediate image between the passes is 8-bit again.
`featx.image.pil_coeffs` rebuilds those integers with the same floating-point operations, so:

* `resize_uint8` runs numba kernels (`featx.image._resample_numba`) that do the same integer
  arithmetic several times faster than Pillow, on one or more threads (the GIL is released);
  without numba it calls Pillow itself. Both are bit-identical to ``PIL.Image.resize``.
* `resize_torch` does each pass as a float64 matrix product on any torch device: every product
  and partial sum is an integer below 2**53, so float64 is exact in any summation order.

Like Pillow, 2- and 4-channel images (LA, RGBA) are resized with premultiplied alpha, and NEAREST
is a pure gather. ``FEATX_DISABLE_NUMBA=1`` forces the Pillow route. The kernels are compiled on
first use (10-30 s once per machine and image kind, announced by one line on stderr) and cached in a
per-user folder, ``~/.cache/featx/numba`` (``$XDG_CACHE_HOME/featx``, or ``$FEATX_CACHE_DIR`` when
set; see `featx.image._resample_numba.cache_dir`); loading them in a new process takes about 0.5 s.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import InputError
from .pil_coeffs import FILTERS, horizontal_first, nearest_index, pil_coeffs, pil_weights, read_only

__all__ = ["mark_pool_thread", 
    "pil_coeffs",
    "pil_weights",
    "nearest_index",
    "horizontal_first",
    "have_kernel",
    "num_threads",
    "pil_image_array",
    "resize_uint8",
    "resize_pil_image",
    "resize_torch",
]

# ---- threads --------------------------------------------------------------------------------------
def num_threads() -> int:
    """Threads for image work: ``FEATX_NUM_THREADS``, else the CPU count (at most 8)."""
    env = os.environ.get("FEATX_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(8, os.cpu_count() or 1))


_pool_thread = threading.local()


def mark_pool_thread() -> None:
    """Say that the calling thread belongs to a pool that already keeps every core busy (featx's
    prefetch workers, image batches): resizes there run on one thread, since splitting one image
    would only add overhead. Pools call it at the start of each of their threads."""
    _pool_thread.busy = True


def _in_worker() -> bool:
    return bool(getattr(_pool_thread, "busy", False))


# ---- the CPU kernel -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _kernels() -> Any:
    if os.environ.get("FEATX_DISABLE_NUMBA", "") not in ("", "0"):
        return None
    try:
        from . import _resample_numba
    except ImportError:  # numba missing or broken: Pillow does the work, with the same numbers
        return None
    return _resample_numba


def have_kernel() -> bool:
    """Whether the numba kernel is available (else `resize_uint8` goes through Pillow)."""
    return _kernels() is not None


# An axis that keeps its size gets no pass; read-only like pil_coeffs' arrays (numba compiles one
# version per array type, so every input is passed read-only, as Pillow's exported memory is).
_NO_COEFFS = read_only(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 1), np.int32))
_WORDS = {1: np.uint8, 2: np.uint16, 4: np.uint32}  # one word per pixel
_MIN_SPLIT_WORK = 400_000  # source pixels; below this a second thread costs more than it saves
# Without a caller's executor the threads are started for this one image: split only images this
# many times larger (about 4 MP), where starting them costs a few percent at most.
_OWN_POOL_FACTOR = 10


def _run_kernel(
    src: np.ndarray, size: tuple[int, int], resample: int, threads: int, executor: Executor | None = None
) -> np.ndarray:
    """The Pillow resample of ``src`` (``(H, W)`` pixel words) as ``(out_h, out_w)`` words.

    A large image is split into row bands over ``threads`` threads: on ``executor`` when given,
    else (for a still larger image) on a pool that lives for this call only.
    """
    kern = _kernels()
    height, width = src.shape
    out_h, out_w = size
    xs, xc, xk = pil_coeffs(width, out_w, resample) if out_w != width else _NO_COEFFS
    ys, yc, yk = pil_coeffs(height, out_h, resample) if out_h != height else _NO_COEFFS
    order = horizontal_first(height, width, out_h, out_w)
    (src,) = read_only(src.view())
    out = np.empty((out_h, out_w), src.dtype)
    parts = max(1, min(threads, out_h // 16, height * width // _MIN_SPLIT_WORK))
    if executor is None and height * width < _MIN_SPLIT_WORK * _OWN_POOL_FACTOR:
        parts = 1
    if parts == 1:
        return kern.resample_rows(src, order, xs, xc, xk, ys, yc, yk, 0, out_h, out)
    bounds = [round(out_h * i / parts) for i in range(parts + 1)]

    def part(i: int) -> None:
        o0, o1 = bounds[i], bounds[i + 1]
        kern.resample_rows(src, order, xs, xc, xk, ys, yc, yk, o0, o1, out[o0:o1])

    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(ThreadPoolExecutor(parts - 1, thread_name_prefix="featx-resample",
                                                                  initializer=mark_pool_thread))
        futures = [executor.submit(part, i) for i in range(1, parts)]
        part(0)
        for i, future in enumerate(futures, start=1):
            if future.cancel():  # not started (a busy executor): do it here rather than wait
                part(i)
            else:
                future.result()
    return out


def _resize_with_pil(hwc: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc)
    out = np.array(image.resize((size[1], size[0]), resample, reducing_gap=None))
    return out[..., None] if out.ndim == 2 else out


def _check_size(size: Any) -> tuple[int, int]:
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise InputError(f"cannot resize to {height}x{width}", source="size")
    return height, width


def resize_uint8(
    hwc: np.ndarray,
    size: tuple[int, int],
    resample: int = 2,
    *,
    threads: int | None = None,
    keep: int | None = None,
    executor: Executor | None = None,
) -> np.ndarray:
    """``PIL.Image.resize(..., reducing_gap=None)`` of a uint8 ``(H, W, C)`` image, bit for bit.

    ``size`` is ``(height, width)``; ``resample`` a Pillow filter code (0-5). C is 1-4: 2 and 4 are
    taken as L+alpha / RGB+alpha and resized with premultiplied alpha, as Pillow does (other
    channel counts: resize each channel on its own). ``keep=3`` with a 4-channel input treats the
    4th byte as padding (Pillow's RGBX memory) and returns 3 channels. ``threads``: split the rows
    of a large image over this many threads (default: all cores, but 1 inside featx's worker pools),
    run on ``executor`` when given, else (images of about 4 MP and more) on a pool that lives for
    this call only.
    Returns a new C-contiguous ``(height, width, keep or C)`` array.
    """
    out_h, out_w = _check_size(size)
    if hwc.ndim != 3 or hwc.dtype != np.uint8:
        raise InputError(f"expected a uint8 (H, W, C) image, got {hwc.dtype} {hwc.shape}", source="image")
    height, width, channels = hwc.shape
    keep = channels if keep is None else keep
    if keep != channels and (keep, channels) != (3, 4):
        raise InputError(f"keep={keep} works only with 4 channels (RGB + padding byte), got {channels}", source="keep")
    alpha = channels in (2, 4) and keep == channels
    if resample == 0:  # NEAREST: a gather (no premultiplication in Pillow either)
        rows, cols = nearest_index(height, out_h), nearest_index(width, out_w)
        return np.ascontiguousarray(hwc[rows[:, None], cols[None, :], :keep])
    if resample not in FILTERS:
        raise InputError(f"no resampling filter with code {resample!r}", source="resample")
    if channels > 4 or channels == 0:
        planes = [
            resize_uint8(np.ascontiguousarray(hwc[..., c : c + 1]), size, resample, threads=threads, executor=executor)
            for c in range(channels)
        ]
        return np.concatenate(planes, axis=-1) if planes else np.zeros((out_h, out_w, 0), np.uint8)
    kern = _kernels()
    if kern is None:
        return _resize_with_pil(np.ascontiguousarray(hwc[..., :keep]), (out_h, out_w), resample)
    if (height, width) == (out_h, out_w):
        return np.array(hwc[..., :keep])
    (src,) = read_only(np.ascontiguousarray(hwc).reshape(height, width * channels).view())
    if channels == 3:  # 4 bytes per pixel, as Pillow stores RGB: one word per pixel
        src = kern.rgb_to_rgbx(src, np.empty((height, width * 4), np.uint8))
        channels = 4
    elif alpha:
        src = kern.premultiply(src, channels)
    if src.ctypes.data % channels:  # words must be aligned
        src = src.copy()
    threads = (1 if _in_worker() else num_threads()) if threads is None else max(1, int(threads))
    out = _run_kernel(src.view(_WORDS[channels]), (out_h, out_w), resample, threads, executor).view(np.uint8)
    if alpha:
        kern.unpremultiply(out, channels)
    if keep != channels:
        out = kern.rgbx_to_rgb(out, np.empty((out_h, out_w * keep), np.uint8))
    return out.reshape(out_h, out_w, keep)


# ---- PIL images -----------------------------------------------------------------------------------
def pil_image_array(image: Any) -> tuple[np.ndarray, int]:
    """``(array, channels)``: the pixels of an L/LA/RGB/RGBA PIL image as a uint8 ``(H, W, C)`` array.

    RGB and RGBA come back as a read-only view of Pillow's own memory (4 bytes per pixel, through
    the Arrow C interface) when Pillow can export it, which avoids copying a large photo; then
    ``array`` has 4 channels and ``channels`` (3 for RGB) says how many are real.
    """
    view = _pillow_memory(image)
    if view is not None:
        return view, len(image.mode)
    arr = np.asarray(image)
    arr = arr[..., None] if arr.ndim == 2 else arr
    return arr, arr.shape[-1]


def _pillow_memory(image: Any) -> np.ndarray | None:
    """A read-only ``(H, W, 4)`` view of an RGB/RGBA image's memory, or None where Pillow cannot
    export it (other modes, old Pillows, images stored in several blocks: large photos)."""
    if image.mode not in ("RGB", "RGBA") or not hasattr(image, "__arrow_c_array__"):
        return None
    try:
        import pyarrow as pa

        image.load()
        buffer = pa.array(image).buffers()[-1]
        return np.frombuffer(buffer, np.uint8).reshape(image.height, image.width, 4)
    except Exception:  # noqa: BLE001
        return None


_COPY_COSTS_MORE = 8_000_000  # pixels


def resize_pil_image(
    image: Any, size: tuple[int, int], resample: int, *, threads: int | None = None, executor: Executor | None = None
) -> np.ndarray:
    """``np.asarray(image.resize((w, h), resample, reducing_gap=None))`` as ``(h, w, C)``, faster.

    Modes L, LA, RGB and RGBA go through `resize_uint8` (``threads``, ``executor``: see there);
    other modes through Pillow itself.
    """
    out_h, out_w = _check_size(size)
    view = _pillow_memory(image) if image.mode in ("RGB", "RGBA") else None
    # An RGB(A) image Pillow cannot lend (stored in several blocks) is first copied out; past about
    # 8 MP that copy costs more than Pillow's own resize (12 MP to 224, one thread: copy 71 ms +
    # kernel 30 ms, against Pillow's 44 ms bilinear / 80 ms bicubic; at 6 MP the kernel still wins).
    if image.mode not in ("L", "LA", "RGB", "RGBA") or not have_kernel() or \
            (view is None and image.mode in ("RGB", "RGBA") and image.width * image.height > _COPY_COSTS_MORE):
        out = np.array(image.resize((out_w, out_h), resample, reducing_gap=None))
        return out[..., None] if out.ndim == 2 else out
    arr, channels = (view, len(image.mode)) if view is not None else pil_image_array(image)
    return resize_uint8(arr, (out_h, out_w), resample, threads=threads, keep=channels, executor=executor)


# ---- torch ----------------------------------------------------------------------------------------
def _resize_pass(x: Any, weights: np.ndarray, axis: int) -> Any:
    """One exact pass on float64 integer values: a matmul, then Pillow's rounding and clipping."""
    import torch

    w = torch.from_numpy(weights.copy()).to(x.device)
    out = x @ w.T if axis == -1 else w @ x
    return torch.floor((out + float(1 << 21)) * (1.0 / (1 << 22))).clamp_(0, 255)


def resize_torch(nchw: Any, size: tuple[int, int], resample: int) -> Any:
    """PIL's resize re-done with float64 matmuls on the tensor's device: the same numbers as PIL.

    ``nchw``: uint8, or integer-valued numbers in 0..255, or floats in [0, 1] (scaled by 255 and
    truncated first, as the reference does; returned as float32 in [0, 1]). Products and sums of
    8-bit pixels and 22-bit coefficients are integers below 2**53, so float64 arithmetic is exact
    in any summation order. 2- and 4-channel images (resized premultiplied by PIL) go through
    `resize_uint8` on the CPU.
    """
    import torch

    height, width = int(nchw.shape[-2]), int(nchw.shape[-1])
    scaled = False
    if nchw.dtype == torch.uint8:
        x = nchw.to(torch.float64)
    elif nchw.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int16, torch.int32, torch.int64, torch.bool):
        wide = nchw.to(torch.float64)
        if torch.allclose(wide, wide.trunc(), rtol=1e-5, atol=1e-8):
            if float(wide.min()) < 0 or float(wide.max()) > 255:
                raise InputError(f"integer-valued image has values in [{float(wide.min())}, {float(wide.max())}], outside 0..255", source="image")
            x = wide.trunc()
        elif float(wide.min()) >= 0 and float(wide.max()) <= 1:
            x, scaled = (wide * 255).to(torch.float32).to(torch.uint8).to(torch.float64), True
        else:
            raise InputError(f"float image has values in [{float(wide.min())}, {float(wide.max())}]; expected [0, 1] or 0..255", source="image")
    else:
        raise InputError(f"cannot resize a tensor of dtype {nchw.dtype}", source="image")
    if int(nchw.shape[-3]) in (2, 4) and resample != 0:
        u8 = x.to(torch.uint8).cpu().numpy().transpose(0, 2, 3, 1)
        out = torch.from_numpy(np.stack([resize_uint8(np.ascontiguousarray(im), size, resample) for im in u8]).transpose(0, 3, 1, 2))
        out = out.to(nchw.device, torch.float64)
    elif resample == 0:
        rows = torch.from_numpy(nearest_index(height, size[0]).copy()).to(x.device)
        cols = torch.from_numpy(nearest_index(width, size[1]).copy()).to(x.device)
        out = x.index_select(-2, rows).index_select(-1, cols)
    else:
        out = x
        passes = [(width, size[1], -1), (height, size[0], -2)]
        if not horizontal_first(height, width, size[0], size[1]):
            passes.reverse()
        for have, want, axis in passes:
            if have != want:
                out = _resize_pass(out, pil_weights(have, want, resample), axis)
    if scaled:
        return (out * (1 / 255)).to(torch.float32)
    return out.to(torch.uint8)
