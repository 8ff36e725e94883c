"""Cutting images into patches and putting them back, on NumPy arrays and torch tensors.

Images are ``(H, W)``, ``(C, H, W)`` or batched ``(N, C, H, W)``. Patches come out in raster
order (row by row) with the image's leading layout kept: ``(L, ph, pw)``, ``(L, C, ph, pw)`` or
``(N, L, C, ph, pw)``, where ``L`` is the number of patches.

- `patchify` / `unpatchify`: a regular grid with ``step`` <= ``patch_size`` that covers the
  image exactly (``(H - ph) % step == 0``); overlapping pixels are read back from one patch, so
  the round trip is exact for every dtype.
- `extract_patches` / `merge_patches`: a grid with ``overlap`` whose last row/column is aligned
  to the border, so any image at least one patch large is covered; indices are
  ``(x_start, x_end, y_start, y_end)``. Merging averages (a running mean: exact when the
  overlapping values agree), takes the maximum, or lets later patches overwrite earlier ones.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "patchify",
    "unpatchify",
    "grid_shape",
    "patch_indices",
    "extract_patches",
    "merge_patches",
    "PatchIndex",
]

Array = TypeVar("Array", np.ndarray, "torch.Tensor")
Pair = Union[int, Sequence[int]]
PatchIndex = tuple[int, int, int, int]  # (x_start, x_end, y_start, y_end)
MergeMode = Literal["avg", "max", "overwrite"]


# ---- argument checks -------------------------------------------------------------------------


def _pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise InputError(f"{name} must be an int or a (height, width) pair of ints, got {value!r}", source=name)
    if min(pair) < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value!r}", source=name)
    return pair


def _is_torch(x: object) -> bool:
    return type(x).__module__.startswith("torch")


def _as_nchw(image: Any) -> tuple[Any, int]:
    """View ``image`` as NCHW; returns it with the original ndim (2, 3 or 4)."""
    if not isinstance(image, np.ndarray) and not _is_torch(image):
        raise InputError(f"expected a NumPy array or a torch tensor, got {type(image).__name__}", source="image")
    ndim = image.ndim
    if ndim == 2:
        return image[None, None], ndim
    if ndim == 3:
        return image[None], ndim
    if ndim == 4:
        return image, ndim
    raise InputError(
        f"expected an image of shape (H, W), (C, H, W) or (N, C, H, W), got {tuple(image.shape)}", source="image"
    )


def _patches_as_5d(patches: Any) -> tuple[Any, int]:
    """View patches as (N, L, C, ph, pw); returns it with the image ndim they came from."""
    if not isinstance(patches, np.ndarray) and not _is_torch(patches):
        raise InputError(f"expected a NumPy array or a torch tensor, got {type(patches).__name__}", source="patches")
    if patches.ndim == 3:
        return patches[None, :, None], 2
    if patches.ndim == 4:
        return patches[None], 3
    if patches.ndim == 5:
        return patches, 4
    raise InputError(
        f"expected patches of shape (L, ph, pw), (L, C, ph, pw) or (N, L, C, ph, pw), got {tuple(patches.shape)}",
        source="patches",
    )


def _restore(image: Any, ndim: int) -> Any:
    return image[0, 0] if ndim == 2 else image[0] if ndim == 3 else image


def _restore_patches(patches: Any, ndim: int) -> Any:
    return patches[0, :, 0] if ndim == 2 else patches[0] if ndim == 3 else patches


def _own(out: Any, source: Any) -> Any:
    """``out`` as a new contiguous array/tensor, never a view of ``source``."""
    if _is_torch(out):
        out = out.contiguous()
        if out.untyped_storage().data_ptr() == source.untyped_storage().data_ptr():
            out = out.clone()
        return out
    out = np.ascontiguousarray(out)
    return out.copy() if np.may_share_memory(out, source) else out


# ---- regular grids ---------------------------------------------------------------------------


def grid_shape(image_size: Pair, patch_size: Pair, step: Pair | None = None) -> tuple[int, int]:
    """``(rows, cols)`` of the patch grid; an error unless the grid covers the image exactly."""
    h, w = _pair(image_size, "image_size", 1)
    ph, pw = _pair(patch_size, "patch_size", 1)
    sh, sw = _pair(step, "step", 1) if step is not None else (ph, pw)
    if sh > ph or sw > pw:
        raise InputError(
            f"step {(sh, sw)} is larger than patch_size {(ph, pw)}: the gaps could not be rebuilt", source="step"
        )
    if ph > h or pw > w:
        raise InputError(f"patch_size {(ph, pw)} is larger than the image {(h, w)}", source="patch_size")
    if (h - ph) % sh or (w - pw) % sw:
        raise InputError(
            f"patches {(ph, pw)} with step {(sh, sw)} do not cover an image of {(h, w)} exactly: "
            "(size - patch) must be a multiple of step; pad or crop the image, or use extract_patches "
            "(which aligns the last patch to the border)",
            source="step",
        )
    return (h - ph) // sh + 1, (w - pw) // sw + 1


def patchify(image: Array, patch_size: Pair, step: Pair | None = None) -> Array:
    """Cut ``image`` into ``patch_size`` patches every ``step`` pixels (default: no overlap).

    Returns a new array/tensor (same type, dtype and device) of shape ``(L, ph, pw)``,
    ``(L, C, ph, pw)`` or ``(N, L, C, ph, pw)``; patches are in raster order.
    """
    x, ndim = _as_nchw(image)
    n, c, h, w = x.shape
    ph, pw = _pair(patch_size, "patch_size", 1)
    sh, sw = _pair(step, "step", 1) if step is not None else (ph, pw)
    rows, cols = grid_shape((h, w), (ph, pw), (sh, sw))
    if _is_torch(x):
        grid = x.unfold(2, ph, sh).unfold(3, pw, sw)  # (N, C, rows, cols, ph, pw), a view
        out = grid.permute(0, 2, 3, 1, 4, 5).reshape(n, rows * cols, c, ph, pw)
    else:
        windows = np.lib.stride_tricks.sliding_window_view(x, (ph, pw), axis=(2, 3))
        grid = windows[:, :, ::sh, ::sw]  # (N, C, rows, cols, ph, pw), a view
        out = grid.transpose(0, 2, 3, 1, 4, 5).reshape(n, rows * cols, c, ph, pw)
    return _own(_restore_patches(out, ndim), image)


def unpatchify(patches: Array, image_size: Pair, step: Pair | None = None) -> Array:
    """Rebuild the image `patchify` cut; ``image_size`` is ``(H, W)``, ``step`` as given there.

    Where patches overlap each pixel is read from the last patch starting at or before it, so
    the round trip is exact for any dtype. To blend overlapping predictions use `merge_patches`.
    """
    p, ndim = _patches_as_5d(patches)
    n, length, c, ph, pw = p.shape
    h, w = _pair(image_size, "image_size", 1)
    sh, sw = _pair(step, "step", 1) if step is not None else (ph, pw)
    rows, cols = grid_shape((h, w), (ph, pw), (sh, sw))
    if length != rows * cols:
        raise InputError(
            f"got {length} patches but an image of {(h, w)} with patch {(ph, pw)} and step {(sh, sw)} "
            f"has {rows}x{cols} = {rows * cols}",
            source="patches",
        )
    torch_in = _is_torch(p)
    grid = p.reshape(n, rows, cols, c, ph, pw)
    grid = grid.permute(0, 3, 1, 4, 2, 5) if torch_in else grid.transpose(0, 3, 1, 4, 2, 5)  # N C rows ph cols pw
    if (sh, sw) == (ph, pw):
        out = grid.reshape(n, c, h, w)
    else:
        ry, oy = _owner(h, ph, sh, rows)
        rx, ox = _owner(w, pw, sw, cols)
        if torch_in:
            import torch

            ry, oy, rx, ox = (torch.as_tensor(a, device=p.device) for a in (ry, oy, rx, ox))
        out = grid[:, :, ry[:, None], oy[:, None], rx[None, :], ox[None, :]]
    return _own(_restore(out, ndim), patches)


def _owner(size: int, patch: int, step: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel along one axis: the grid index of a patch holding it, and the offset inside."""
    pos = np.arange(size)
    index = np.minimum(pos // step, count - 1)
    return index, pos - index * step


# ---- border-aligned grids with overlap -------------------------------------------------------


def _starts(size: int, patch: int, overlap: int) -> list[int]:
    starts = list(range(0, size - patch + 1, patch - overlap))
    if starts[-1] != size - patch:
        starts.append(size - patch)  # the last patch is aligned to the border
    return starts


def patch_indices(image_size: Pair, patch_size: Pair, overlap: Pair = 0) -> list[PatchIndex]:
    """``(x_start, x_end, y_start, y_end)`` of every patch, in raster order, covering the image."""
    h, w = _pair(image_size, "image_size", 1)
    ph, pw = _pair(patch_size, "patch_size", 1)
    oh, ow = _pair(overlap, "overlap", 0)
    if oh >= ph or ow >= pw:
        raise InputError(f"overlap {(oh, ow)} must be smaller than patch_size {(ph, pw)}", source="overlap")
    if ph > h or pw > w:
        raise InputError(f"patch_size {(ph, pw)} is larger than the image {(h, w)}; pad it first", source="patch_size")
    return [(x, x + pw, y, y + ph) for y in _starts(h, ph, oh) for x in _starts(w, pw, ow)]


def extract_patches(image: Array, patch_size: Pair, overlap: Pair = 0) -> tuple[Array, list[PatchIndex]]:
    """Patches on a grid with ``overlap`` pixels of overlap, the last ones aligned to the border.

    Returns the patches (layout as `patchify`) and their ``(x_start, x_end, y_start, y_end)``.
    """
    x, ndim = _as_nchw(image)
    n, c, h, w = x.shape
    ph, pw = _pair(patch_size, "patch_size", 1)
    indices = patch_indices((h, w), (ph, pw), overlap)
    ys = np.array(sorted({i[2] for i in indices}))
    xs = np.array(sorted({i[0] for i in indices}))
    if _is_torch(x):
        import torch

        windows = x.unfold(2, ph, 1).unfold(3, pw, 1)  # every position, a view
        rows, cols = torch.as_tensor(ys, device=x.device), torch.as_tensor(xs, device=x.device)
        grid = windows[:, :, rows[:, None], cols[None, :]]
        out = grid.permute(0, 2, 3, 1, 4, 5).reshape(n, len(indices), c, ph, pw)
    else:
        windows = np.lib.stride_tricks.sliding_window_view(x, (ph, pw), axis=(2, 3))
        grid = windows[:, :, ys[:, None], xs[None, :]]
        out = grid.transpose(0, 2, 3, 1, 4, 5).reshape(n, len(indices), c, ph, pw)
    return _own(_restore_patches(out, ndim), image), indices


def merge_patches(
    patches: Array,
    indices: Sequence[PatchIndex],
    image_size: Pair | None = None,
    mode: MergeMode = "avg",
) -> Array:
    """Rebuild an image from patches placed at ``indices`` (``(x_start, x_end, y_start, y_end)``).

    ``image_size`` ``(H, W)`` defaults to the extent of the indices. ``mode``: ``"avg"`` (running
    mean; integers are rounded back), ``"max"``, or ``"overwrite"`` (later patches win). Every
    pixel must be covered by at least one patch.
    """
    if mode not in ("avg", "max", "overwrite"):
        raise InputError(f"mode must be 'avg', 'max' or 'overwrite', got {mode!r}", source="mode")
    p, ndim = _patches_as_5d(patches)
    n, length, c, ph, pw = p.shape
    boxes = [tuple(int(v) for v in box) for box in indices]
    if any(len(box) != 4 for box in boxes):
        raise InputError("each index must be (x_start, x_end, y_start, y_end)", source="indices")
    if len(boxes) != length:
        raise InputError(f"got {length} patches but {len(boxes)} indices", source="indices")
    if not boxes:
        raise InputError("no patches to merge", source="patches")
    if image_size is None:
        h, w = max(b[3] for b in boxes), max(b[1] for b in boxes)
    else:
        h, w = _pair(image_size, "image_size", 1)
    for i, (x0, x1, y0, y1) in enumerate(boxes):
        if (x1 - x0, y1 - y0) != (pw, ph) or x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise InputError(
                f"index {i} {(x0, x1, y0, y1)} is not a {pw}x{ph} box inside the {w}x{h} image", source="indices"
            )
    torch_in = _is_torch(p)
    xp: Any
    if torch_in:
        import torch as xp

        count = xp.zeros((h, w), dtype=xp.int64, device=p.device)
    else:
        xp = np
        count = np.zeros((h, w), dtype=np.int64)
    floating = p.is_floating_point() if torch_in else np.issubdtype(p.dtype, np.floating)
    work_dtype = p.dtype if floating else xp.float64
    out = _empty(xp, (n, c, h, w), work_dtype if mode == "avg" else p.dtype, p, mode)
    for i, (x0, x1, y0, y1) in enumerate(boxes):
        region = out[:, :, y0:y1, x0:x1]
        patch = p[:, i]
        count[y0:y1, x0:x1] += 1
        if mode == "overwrite":
            region[...] = patch
        elif mode == "max":
            region[...] = xp.maximum(region, patch)
        else:
            # A running mean: exact when overlapping values agree, unlike sum / count.
            k = count[y0:y1, x0:x1]
            if torch_in:
                region += (patch.to(work_dtype) - region) / k.to(work_dtype)
            else:
                region += (patch.astype(work_dtype) - region) / k.astype(work_dtype)
    if bool((count == 0).any()):
        missing = int((count == 0).sum())
        raise InputError(f"the patches leave {missing} pixels of the {w}x{h} image uncovered", source="indices")
    if mode == "avg" and not floating:
        out = out.round().to(p.dtype) if torch_in else np.rint(out).astype(p.dtype)
    return _restore(out, ndim)


def _empty(xp: Any, shape: tuple[int, ...], dtype: Any, like: Any, mode: str) -> Any:
    if mode != "max":
        return xp.zeros(shape, dtype=dtype, device=like.device) if xp is not np else np.zeros(shape, dtype=dtype)
    if xp is np:
        low = -np.inf if np.issubdtype(dtype, np.floating) else (False if dtype == np.bool_ else np.iinfo(dtype).min)
        return np.full(shape, low, dtype=dtype)
    if dtype.is_floating_point:
        low: Any = float("-inf")
    elif dtype == xp.bool:
        low = False
    else:
        low = xp.iinfo(dtype).min
    return xp.full(shape, low, dtype=dtype, device=like.device)
