"""The per-item path every image processor runs, on the CPU (NumPy, exact) or a torch device.

``decode -> working image (RGB conversion, known layout) -> resize (hook) -> crop -> pad (hook)``;
rescale and normalise follow in the batch assembly (`featx.image.batching` for NumPy,
`featx.image.torch_route` for torch), which writes each item straight into its output slot.

A processor supplies two hooks (`ItemSteps`): ``resize_plan(height, width, plan)`` gives the size
to resize to (``None``: keep) and a centre crop to take after it (ConvNeXt's ``crop_pct`` rule,
Fuyu's downscale-to-fit), and ``pad_item(image, layout, plan)`` may pad an item before rescaling
(Fuyu pads to its canvas with ``padding_value``, channels-first: the copy that pads also
transposes, so the finish reads contiguous planes). The layout of each item is resolved once, before
this path (`item_layout`), and passed to every op; the working layout is channels-last on the CPU
(PIL's and the resize kernel's) and channels-first on the torch route.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from ..errors import FeatxError, InputError
from . import functional as F
from .layout import CHANNELS_FIRST, CHANNELS_LAST, infer_channel_format, is_torch, to_channels_first, to_channels_last
from .options import Plan
from .threads import Workers, map_items

__all__ = [
    "SOURCES",
    "Prepared",
    "ItemSteps",
    "item_layout",
    "decode",
    "working_image",
    "prepare_item",
    "prepare_all",
    "labelled",
]

R = TypeVar("R")

SOURCES = (str, os.PathLike, bytes, bytearray, memoryview)  # decoded with `featx.load_image`
PIL_NATIVE = ("RGB", "L", "LA", "RGBA")  # PIL modes resized from Pillow's memory, as the reference


@dataclass
class Prepared:
    """One item after resize, crop and pad: ``image`` in ``layout`` (NumPy on the CPU, ``(H, W, C)``
    unless a pad hook says otherwise; ``(C, H, W)`` torch on a device), with its size before
    (``original_hw``) and after resizing."""

    image: Any
    layout: str
    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]


class ItemSteps(Protocol):
    """The hooks a processor gives the per-item path."""

    def resize_plan(self, height: int, width: int, plan: Plan) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """``(resize_to or None, then_crop_to or None)`` for an image of this size."""

    def pad_item(self, image: Any, layout: str, plan: Plan) -> tuple[Any, str]:
        """``(image, layout)``: the item padded (or not) before rescaling, in either layout."""


def item_layout(item: Any, in_format: str | None) -> str | None:
    """An item's input layout: ``in_format`` for 3-D arrays when given, else inferred; ``None`` for PIL
    images, 2-D arrays and paths/bytes. Raises `InputError` (without naming the item) otherwise."""
    if isinstance(item, SOURCES) or hasattr(item, "getbands"):
        return None
    if not (isinstance(item, np.ndarray) or is_torch(item)):
        raise InputError(
            f"got a {type(item).__name__}; expected a PIL image, NumPy array, torch tensor, path, URL or bytes",
            source="image",
        )
    if item.ndim == 2:
        return None
    if item.ndim != 3:
        raise InputError(f"shape {tuple(item.shape)} is not an image; expected 2 or 3 dims", source="image")
    return in_format or infer_channel_format(item)


def decode(item: Any) -> Any:
    """Paths, URLs and bytes become PIL images (`featx.load_image`); anything else is returned."""
    if isinstance(item, SOURCES):
        from .io import load_image  # noqa: PLC0415  (decoding is optional for array users)

        return load_image(item)
    return item


def working_image(item: Any, layout: str | None, do_convert_rgb: bool, device: Any = None) -> tuple[Any, str]:
    """``(image, layout)`` to work on: on the CPU an RGB-or-L-like PIL image (resized from Pillow's
    memory) or an ``(H, W, C)`` array; on ``device`` a ``(C, H, W)`` tensor. Converted to RGB if asked."""
    if device is not None:
        return _device_image(item, layout, do_convert_rgb, device), CHANNELS_FIRST
    if hasattr(item, "getbands"):
        image = F.convert_rgb(item) if do_convert_rgb else item
        return (image if image.mode in PIL_NATIVE else _hwc(np.asarray(image))), CHANNELS_LAST
    arr = item.detach().cpu().numpy() if is_torch(item) else np.asarray(item)
    if arr.ndim not in (2, 3):
        raise InputError(f"expected a 2-D or 3-D image, got shape {arr.shape}")
    hwc = arr[..., None] if arr.ndim == 2 else to_channels_last(arr, layout)
    if do_convert_rgb:
        hwc = F.convert_rgb(hwc, input_data_format=CHANNELS_LAST)
    return hwc, CHANNELS_LAST


def _device_image(item: Any, layout: str | None, do_convert_rgb: bool, device: Any) -> Any:
    import torch

    if hasattr(item, "getbands"):
        tensor = torch.from_numpy(np.array(F.convert_rgb(item) if do_convert_rgb else item)).to(device)
        return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    tensor = item if is_torch(item) else torch.from_numpy(np.ascontiguousarray(item))
    tensor = tensor.to(device)
    tensor = tensor[None] if tensor.ndim == 2 else to_channels_first(tensor, layout)
    return F.convert_rgb(tensor, input_data_format=CHANNELS_FIRST) if do_convert_rgb else tensor


def _hwc(arr: np.ndarray) -> np.ndarray:
    return arr[..., None] if arr.ndim == 2 else arr


def _hw(image: Any, layout: str) -> tuple[int, int]:
    if hasattr(image, "getbands"):
        return int(image.height), int(image.width)
    if layout == CHANNELS_FIRST:
        return int(image.shape[-2]), int(image.shape[-1])
    return int(image.shape[0]), int(image.shape[1])


def _resize(
    image: Any, target: tuple[int, int], plan: Plan, device: Any, threads: int | None, executor: Executor | None
) -> Any:
    if hasattr(image, "getbands"):
        return F.pil_resize(image, target, plan.resample, threads=threads, executor=executor)
    if device is not None:
        return F.resize(image, target, plan.resample, input_data_format=CHANNELS_FIRST, backend="torch")
    return F.resize_hwc(image, target, plan.resample, threads=threads, executor=executor)


def prepare_item(
    item: Any,
    layout: str | None,
    plan: Plan,
    steps: ItemSteps,
    *,
    device: Any = None,
    threads: int | None = None,
    executor: Executor | None = None,
) -> Prepared:
    """Decode, convert, resize, crop and pad one item (its input ``layout`` already resolved).

    ``device``: work there with torch ops (else NumPy on the CPU). ``threads`` / ``executor``: how
    one large image's resize may split its rows (``None``: the kernel's default, on a pool of its
    own; ``threads=1`` when items already run in parallel).
    """
    image, layout = working_image(decode(item), layout, plan.do_convert_rgb, device)
    original = _hw(image, layout)
    target, crop = steps.resize_plan(*original, plan) if plan.do_resize else (None, None)
    if target is not None:
        image = _resize(image, target, plan, device, threads, executor)
    if hasattr(image, "getbands"):
        image = _hwc(np.asarray(image))
    resized = _hw(image, layout)
    if crop is not None:
        image = F.center_crop(image, crop, input_data_format=layout)
    if plan.do_center_crop and plan.crop_size is not None:
        image = F.center_crop(image, plan.crop_size, input_data_format=layout)
    image, layout = steps.pad_item(image, layout, plan)
    return Prepared(image, layout, original, resized)


def labelled(index: int, item: Any, work: Callable[[], R], label: str | None = None) -> R:
    """Run ``work``; errors name the item: ``label`` when given (also as the error's ``source``),
    else ``image <index>`` with the item's path (or index) as the source."""
    source = label or (os.fspath(item) if isinstance(item, (str, os.PathLike)) else index)
    try:
        return work()
    except InputError as exc:
        if label is not None:
            raise InputError(str(exc), source=label) from exc
        if exc.source in (None, "image", "size", "image_mean", "image_std"):
            raise InputError(f"image {index}: {exc}", source=source) from exc
        raise
    except FeatxError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise InputError(f"{label or f'image {index}'} could not be processed: {exc}", source=source) from exc


def prepare_all(
    items: list[Any],
    layouts: list[str | None],
    plan: Plan,
    steps: ItemSteps,
    workers: Workers,
    *,
    device: Any = None,
    labels: list[str] | None = None,
    then: Callable[[Prepared], Any] | None = None,
) -> list[Any]:
    """`prepare_item` for every item on ``workers``, in order; ``then`` runs on each result in the
    same task. Errors name the item (``labels``, see `labelled`). Items run in parallel resize on
    one thread each; a single item may split its rows over the workers' executor."""
    parallel = workers.parallel and len(items) > 1
    threads, rows_pool = (1, None) if parallel else (None, workers.executor)

    def one(i: int) -> Any:
        def work() -> Any:
            prepared = prepare_item(
                items[i], layouts[i], plan, steps, device=device, threads=threads, executor=rows_pool
            )
            return prepared if then is None else then(prepared)

        return labelled(i, items[i], work, None if labels is None else labels[i])

    return map_items(one, list(range(len(items))), workers)
