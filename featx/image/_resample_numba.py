"""numba kernels behind `featx.image.resample`: Pillow's 8-bit fixed-point resampling, bit for bit.

Imported lazily (numba takes a noticeable fraction of a second to import). An image is a 2-D array
with one word per pixel: uint8 for 1 channel, uint16 for 2, uint32 for 4 (3-channel images are
padded to 4 by `featx.image.resample`, as Pillow stores them). Coefficients come from
`featx.image.pil_coeffs.pil_coeffs` (Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc``).

Every output byte is Pillow's ``clip8((2**21 + sum(pixel * k_int)) >> 22)`` with int32 sums: the
same integers, so the result cannot differ from Pillow's. The speed comes from the memory layout:

* the vertical pass accumulates whole contiguous rows (``W * channels`` int32 lanes: plain SIMD);
* the horizontal pass first transposes a band of up to 256 / channels rows (8x8 SIMD tiles of
  pixel words), so that each output column becomes the same contiguous multiply-add over
  ``rows * channels`` lanes, then transposes the band back.

Lane counts are passed as run-time values on purpose: with a constant trip count LLVM unrolls the
lane loop before vectorizing it and then cannot prove that the arrays do not alias.

Compiled kernels are cached in a per-user folder (`cache_dir`: ``$FEATX_CACHE_DIR/numba``, else
``$XDG_CACHE_HOME/featx/numba`` or ``~/.cache/featx/numba``), keyed by this file's content and the
numba version, so a new checkout, a virtual environment or a read-only install of the same featx
reuses them. The folder is chosen by a numba cache locator of our own, attached to these kernels
only (no environment variable is set; NUMBA_CACHE_DIR is numba's, read once at its import). When
the folder is not writable the kernels are compiled in each process instead. The first compilation
prints one line to stderr, as it takes a while.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..cache import CACHE_ENV, user_cache_root

__all__ = ["resample_rows", "premultiply", "unpremultiply", "rgb_to_rgbx", "rgbx_to_rgb", "LANES", "cache_dir",
           "CACHE_ENV"]

LANES = 256  # bytes per transposed band row: 256 // channels image rows per band


# ---- the on-disk cache of compiled kernels -------------------------------------------------------
def _source_hash() -> str:
    with open(__file__, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


_SOURCE_STAMP = _source_hash()


def cache_dir() -> Path:
    """Where the compiled kernels of this featx version are cached (`_kernel` reads it when a
    kernel is defined, i.e. at import)."""
    return user_cache_root() / "numba" / f"numba{numba.__version__}-{_SOURCE_STAMP}"


_announce_lock = threading.Lock()
_announced: list[str] = []  # the cache folder of the one compilation announced, once per process


def _announce(where: str, cached: bool = True) -> None:
    """One line on stderr the first time this process compiles a kernel (it takes 10-30 s)."""
    with _announce_lock:
        if _announced:
            return
        _announced.append(where)
    how = f"cached in {where}" if cached else f"not cached: cannot write to {where}"
    sys.stderr.write(f"featx: compiling the image resize kernels (10-30 s, once per machine and image kind; "
                     f"{how})\n")
    sys.stderr.flush()


@functools.lru_cache(maxsize=1)
def _cache_classes() -> tuple[type, type]:
    """(cache, no-cache) classes for numba dispatchers: featx's folder, and the announcement."""
    from numba.core import caching

    class Locator(caching._CacheLocator):
        def __init__(self, py_func: Any) -> None:
            self._lineno = py_func.__code__.co_firstlineno
            self._path = str(cache_dir())

        def get_cache_path(self) -> str:
            return self._path

        def get_source_stamp(self) -> Any:
            return _SOURCE_STAMP  # the folder is keyed by this file's content already

        def get_disambiguator(self) -> str:
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            self = cls(py_func)
            try:
                self.ensure_cache_path()  # creates the folder and checks that it is writable
            except OSError:
                return None
            return self

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = [Locator]

    class Cache(caching.FunctionCache):
        _impl_class = Impl

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            data = super().load_overload(sig, target_context)
            if data is None:  # not in the cache: numba compiles next
                _announce(self.cache_path)
            return data

    class NoCache(caching.NullCache):
        def load_overload(self, sig: Any, target_context: Any) -> Any:
            _announce(str(cache_dir()), cached=False)
            return None

    return Cache, NoCache


def _kernel(func: Callable[..., Any]) -> Any:
    """``njit(nogil=True)`` with featx's on-disk cache (none when its folder is not writable)."""
    dispatcher = njit(nogil=True)(func)
    try:
        cache, no_cache = _cache_classes()
    except (ImportError, AttributeError):  # numba internals changed: numba's own cache (__pycache__)
        dispatcher.enable_caching()
        return dispatcher
    try:
        dispatcher._cache = cache(dispatcher.py_func)
    except RuntimeError:  # numba found no usable locator: the folder cannot be created or written
        dispatcher._cache = no_cache()
    return dispatcher


def _mask(index: list[int]) -> ir.Constant:
    return ir.Constant(ir.VectorType(ir.IntType(32), len(index)), index)


@intrinsic
def _tile8(typingctx, S, si, sj, D, di, dj):  # noqa: ANN001, ANN202, ARG001
    """``D[di + j, dj + i] = S[si + i, sj + j]`` for an 8x8 tile, as 8 vector loads, 24 shuffles, 8 stores.

    The shuffle network (pairs, then quads, then halves: AVX2's unpack/permute pattern) does not
    depend on the element type, so this serves 1-, 2- and 4-byte pixels alike.
    """
    sig = types.void(S, si, sj, D, di, dj)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        s_ty, d_ty = signature.args[0], signature.args[3]
        src = context.make_array(s_ty)(context, builder, args[0])
        dst = context.make_array(d_ty)(context, builder, args[3])
        si_, sj_, di_, dj_ = (context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2, 4, 5))
        vec_ptr = ir.VectorType(context.get_data_type(s_ty.dtype), 8).as_pointer()

        def pointer(arr, ty, row, col):  # noqa: ANN001, ANN202
            shape = cgutils.unpack_tuple(builder, arr.shape, 2)
            strides = cgutils.unpack_tuple(builder, arr.strides, 2)
            return builder.bitcast(cgutils.get_item_pointer2(context, builder, arr.data, shape, strides, ty.layout, [row, col]), vec_ptr)

        rows = []
        for i in range(8):
            load = builder.load(pointer(src, s_ty, builder.add(si_, ir.Constant(si_.type, i)), sj_))
            load.align = 1
            rows.append(load)
        shuffle = builder.shuffle_vector
        pairs = []
        for a in range(0, 8, 2):
            pairs.append(shuffle(rows[a], rows[a + 1], _mask([0, 8, 1, 9, 4, 12, 5, 13])))
            pairs.append(shuffle(rows[a], rows[a + 1], _mask([2, 10, 3, 11, 6, 14, 7, 15])))
        quads: list = [None] * 8
        for base in (0, 4):
            for k, (x, y) in enumerate([(0, 2), (0, 2), (1, 3), (1, 3)]):
                index = [0, 1, 8, 9, 4, 5, 12, 13] if k % 2 == 0 else [2, 3, 10, 11, 6, 7, 14, 15]
                quads[base + k] = shuffle(pairs[base + x], pairs[base + y], _mask(index))
        for k in range(8):
            index = [0, 1, 2, 3, 8, 9, 10, 11] if k < 4 else [4, 5, 6, 7, 12, 13, 14, 15]
            column = shuffle(quads[k % 4], quads[k % 4 + 4], _mask(index))
            store = builder.store(column, pointer(dst, d_ty, builder.add(di_, ir.Constant(di_.type, k)), dj_))
            store.align = 1
        return context.get_dummy_value()

    return sig, codegen


@_kernel
def _tr(S, s0, ni, nj, D, d0):  # noqa: ANN001, ANN202  (numba kernels: types come from the caller)
    """``D[d0 + j, i] = S[s0 + i, j]`` for ``i < ni``, ``j < nj``: 8x8 SIMD tiles, scalar edges."""
    i8 = ni - ni % 8
    j8 = nj - nj % 8
    for ib in range(0, i8, 8):
        for jb in range(0, j8, 8):
            _tile8(S, s0 + ib, jb, D, d0 + jb, ib)
        for j in range(j8, nj):
            for i in range(8):
                D[d0 + j, ib + i] = S[s0 + ib + i, j]
    for i in range(i8, ni):
        for j in range(nj):
            D[d0 + j, i] = S[s0 + i, j]


@_kernel
def _accumulate(S, first, count, kk, acc, lanes):  # noqa: ANN001, ANN202
    """``acc[:lanes] = 2**21 + sum_k S[first + k, :lanes] * kk[k]`` (taps four at a time)."""
    for j in range(lanes):
        acc[j] = np.int32(1 << 21)
    k = 0
    while k + 4 <= count:
        w0, w1, w2, w3 = kk[k], kk[k + 1], kk[k + 2], kk[k + 3]
        r0, r1, r2, r3 = S[first + k], S[first + k + 1], S[first + k + 2], S[first + k + 3]
        for j in range(lanes):
            acc[j] += np.int32(r0[j]) * w0 + np.int32(r1[j]) * w1 + np.int32(r2[j]) * w2 + np.int32(r3[j]) * w3
        k += 4
    while k < count:
        w0 = kk[k]
        r0 = S[first + k]
        for j in range(lanes):
            acc[j] += np.int32(r0[j]) * w0
        k += 1


@_kernel
def _clip_row(acc, lanes, out):  # noqa: ANN001, ANN202
    for j in range(lanes):
        v = acc[j] >> 22
        out[j] = 0 if v < 0 else (255 if v > 255 else v)


@_kernel
def _vertical(S, s_off, ys, yc, yk, o0, o1, D):  # noqa: ANN001, ANN202
    """Rows ``o0..o1`` of the vertical pass into ``D[0 : o1 - o0]``; ``S`` row 0 is source row ``s_off``."""
    S8 = S.view(np.uint8)
    D8 = D.view(np.uint8)
    lanes = S8.shape[1]
    acc = np.empty(lanes, np.int32)
    for yy in range(o0, o1):
        _accumulate(S8, np.int64(ys[yy]) - s_off, np.int64(yc[yy]), yk[yy], acc, lanes)
        _clip_row(acc, lanes, D8[yy - o0])


@_kernel
def _horizontal(S, r0, r1, xs, xc, xk, D):  # noqa: ANN001, ANN202
    """Horizontal pass of source rows ``r0..r1`` into ``D[0 : r1 - r0]``."""
    width = S.shape[1]
    out_w = xs.shape[0]
    cs = S.itemsize
    band = LANES // cs
    T = np.empty((width, band), S.dtype)
    res = np.empty((out_w, band), S.dtype)
    T8 = T.view(np.uint8)
    res8 = res.view(np.uint8)
    acc = np.empty(band * cs, np.int32)
    for yb in range(r0, r1, band):
        rows = min(band, r1 - yb)
        lanes = rows * cs
        _tr(S, yb, rows, width, T, 0)
        for xx in range(out_w):
            _accumulate(T8, np.int64(xs[xx]), np.int64(xc[xx]), xk[xx], acc, lanes)
            _clip_row(acc, lanes, res8[xx])
        _tr(res, 0, out_w, rows, D, yb - r0)


@_kernel
def resample_rows(src, horizontal_first, xs, xc, xk, ys, yc, yk, o0, o1, out):  # noqa: ANN001, ANN201
    """Output rows ``o0..o1`` of Pillow's two-pass resample of ``src`` into ``out[0 : o1 - o0]``.

    ``src``: ``(H, W)`` pixel words, ``out``: ``(o1 - o0, Wout)`` of the same type. An axis whose size
    does not change gets no pass (as in Pillow): give it empty coefficient arrays.
    ``horizontal_first`` picks the order when both passes run; the horizontal pass then only covers
    the source rows that output rows ``o0..o1`` read, so row ranges can run on different threads.
    """
    width = src.shape[1]
    need_h = xs.shape[0] > 0
    need_v = ys.shape[0] > 0
    out_w = xs.shape[0] if need_h else width
    if need_h and need_v:
        if horizontal_first:
            first = np.int64(ys[o0])
            last = np.int64(ys[o1 - 1]) + np.int64(yc[o1 - 1])
            tmp = np.empty((last - first, out_w), src.dtype)
            _horizontal(src, first, last, xs, xc, xk, tmp)
            _vertical(tmp, first, ys, yc, yk, o0, o1, out)
        else:
            tmp = np.empty((o1 - o0, width), src.dtype)
            _vertical(src, np.int64(0), ys, yc, yk, o0, o1, tmp)
            _horizontal(tmp, np.int64(0), o1 - o0, xs, xc, xk, out)
    elif need_h:
        _horizontal(src, o0, o1, xs, xc, xk, out)
    elif need_v:
        _vertical(src, np.int64(0), ys, yc, yk, o0, o1, out)
    else:
        out[:, :] = src[o0:o1, :]
    return out


@njit(inline="always")  # inlined: ``divide`` is a constant in each kernel, so its branch goes
def _alpha_pass(src, out, cs, divide):  # noqa: ANN001, ANN202
    """Pillow's RGBA<->RGBa on pixels of ``cs`` bytes, alpha last: multiply the colours by alpha into
    ``out`` (``divide=False``), or divide them by it in place (``divide=True``, ``out`` is ``src``:
    ``min(255, 255 * c // a)``; pixels with alpha 0 or 255 stay as they are)."""
    height, row = src.shape
    for y in range(height):
        s = src[y]
        d = out[y]
        for p in range(0, row, cs):
            alpha = np.uint32(s[p + cs - 1])
            if divide:
                if alpha != 0 and alpha != 255:
                    for c in range(cs - 1):
                        v = (np.uint32(255) * np.uint32(s[p + c])) // alpha
                        d[p + c] = 255 if v > 255 else v
            else:
                for c in range(cs - 1):
                    tmp = np.uint32(s[p + c]) * alpha + np.uint32(128)
                    d[p + c] = ((tmp >> 8) + tmp) >> 8
                d[p + cs - 1] = s[p + cs - 1]
    return out


@_kernel
def premultiply(src, cs):  # noqa: ANN001, ANN201
    """A copy with the colour channels multiplied by the last (alpha) channel, as Pillow's RGBA->RGBa."""
    return _alpha_pass(src, np.empty_like(src), cs, False)


@_kernel
def unpremultiply(img, cs):  # noqa: ANN001, ANN201
    """In place: divide the colour channels by alpha, as Pillow's RGBa->RGBA (``min(255, 255 * c // a)``)."""
    return _alpha_pass(img, img, cs, True)


@njit(inline="always")  # inlined with constant pixel sizes (constant strides: vectorized)
def _repack(src, out, s_cs, d_cs):  # noqa: ANN001, ANN202
    """``(H, s_cs * W)`` bytes to ``(H, d_cs * W)``: the first ``min(s_cs, d_cs)`` bytes of each pixel,
    then padding bytes of 255."""
    height, row = src.shape
    keep = min(s_cs, d_cs)
    for y in range(height):
        s = src[y]
        d = out[y]
        for x in range(row // s_cs):
            for c in range(keep):
                d[d_cs * x + c] = s[s_cs * x + c]
            for c in range(keep, d_cs):
                d[d_cs * x + c] = 255
    return out


@_kernel
def rgb_to_rgbx(src, out):  # noqa: ANN001, ANN201
    """``(H, 3W)`` bytes to ``(H, 4W)``: add a padding byte per pixel."""
    return _repack(src, out, 3, 4)


@_kernel
def rgbx_to_rgb(src, out):  # noqa: ANN001, ANN201
    """``(H, 4W)`` bytes to ``(H, 3W)``: drop the padding byte of each pixel."""
    return _repack(src, out, 4, 3)
