"""Fuyu's image processor: arbitrary-size images, downscaled to fit and padded to 1080x1920, then
cut into 30x30 patches with the token bookkeeping ``transformers`` returns.

Same names, options, defaults, call arguments and outputs as ``transformers.FuyuImageProcessor``
(its PIL backend ``FuyuImageProcessorPil`` in 5.x), element for element. It is a
`featx.image.processors.BaseImageProcessor` on the same plan: the shared options parser and
checks, the per-item path and the NumPy finish; Fuyu sets two hooks (`resize_plan`: downscale only,
to fit; `pad_item`: pad bottom/right to ``size`` with ``padding_value`` before rescaling) and
assembles its own output (per sample lists, plus sizes and scale factors). Differences, all on
inputs the reference mishandles: an ambiguous channel layout is an error (the reference guesses),
a 4-D batch array is read as a list of images (the reference fails), ``data_format`` is honoured
(the reference ignores it), and `patchify_image` always returns ``(batch, patches, dim)`` for 4-D
input (the PIL reference drops the batch axis when it is 1; the torch reference keeps it). The
patch helpers live in `featx.image.fuyu_patches`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..batch import BatchFeature
from ..errors import ConfigError, InputError
from ..registry import register
from . import functional as F
from .batching import finish_into
from .fuyu_patches import FuyuPatchMethods
from .kwargs import FuyuImagesKwargs
from .layout import CHANNELS_FIRST, PILImageResampling, channel_format, image_hw, is_torch, to_channels_first
from .methods import to_layout
from .options import HEIGHT_WIDTH, SIZE_KEYS, Plan, size_dict
from .plan import Prepared, item_layout, prepare_all
from .processors import BaseImageProcessor
from .threads import call_pool

__all__ = ["FuyuImageProcessor"]

_META = ("image_unpadded_heights", "image_unpadded_widths", "image_scale_factors", "image_sizes")


class _Done(NamedTuple):
    """One finished image and its sizes before and after resizing."""

    array: np.ndarray
    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]


def _fit(height: int, width: int, max_height: int, max_width: int) -> tuple[int, int]:
    scale = min(max_height / height, max_width / width)
    return int(height * scale), int(width * scale)


def _is_image(x: Any) -> bool:
    return hasattr(x, "getbands") or isinstance(x, np.ndarray) or is_torch(x)


@register("image_processor")
@dataclass(repr=False)
class FuyuImageProcessor(FuyuPatchMethods, BaseImageProcessor):
    """Downscale to fit ``size`` (only when larger), pad bottom/right, rescale and normalise.

    Call with one image, a list (one image per sample) or a list of lists (images per sample).
    Returns ``images`` (per sample, a list of ``(C, H, W)`` arrays), ``image_unpadded_heights``,
    ``image_unpadded_widths``, ``image_scale_factors`` (each ``[[v]]`` per sample, from its first
    image) and ``image_sizes`` (original ``(h, w)``). The base class's crop and batch-padding
    options are accepted and, as in the reference, have no effect.
    """

    do_resize: bool | None = True
    size: dict[str, int] | None = field(default_factory=lambda: {"height": 1080, "width": 1920})
    resample: PILImageResampling | int | None = PILImageResampling.BILINEAR
    do_pad: bool | None = True
    padding_value: float = 1.0  # on the input's scale (0..255 for uint8), before rescaling
    padding_mode: str = "constant"
    do_normalize: bool | None = True
    image_mean: float | tuple[float, ...] | None = 0.5
    image_std: float | tuple[float, ...] | None = 0.5
    do_rescale: bool | None = True
    rescale_factor: float | None = 1 / 255
    patch_size: dict[str, int] = field(default_factory=lambda: {"height": 30, "width": 30})

    model_input_names: ClassVar[list[str]] = [
        "images",
        "image_input_ids",
        "image_patches",
        "image_patch_indices_per_batch",
        "image_patch_indices_per_subsequence",
    ]
    valid_kwargs: ClassVar[type] = FuyuImagesKwargs
    size_options: ClassVar[dict[str, tuple[frozenset[str], ...]]] = {
        "size": HEIGHT_WIDTH, "crop_size": SIZE_KEYS, "pad_size": SIZE_KEYS, "patch_size": HEIGHT_WIDTH,
    }  # fmt: skip

    # ---- the plan's hooks --------------------------------------------------------------------
    def resize_plan(self, height: int, width: int, plan: Plan) -> tuple[tuple[int, int] | None, None]:
        """Downscale to fit ``size`` keeping the aspect ratio; an image that fits is left alone."""
        target_h, target_w = self._canvas(plan)
        if height <= target_h and width <= target_w:
            return None, None
        new_size = _fit(height, width, target_h, target_w)
        if min(new_size) < 1:
            raise InputError(
                f"an image of {height}x{width} fitted into {target_h}x{target_w} would be "
                f"{new_size[0]}x{new_size[1]}: too thin to resize",
                source="image",
            )
        return new_size, None

    def pad_item(self, image: Any, layout: str, plan: Plan) -> tuple[Any, str]:
        """Pad bottom/right to ``size`` with ``padding_value`` in the image's dtype (1.0 on uint8 is
        grey level 1), before rescaling, into a channels-first canvas; an image that fills (or
        exceeds) the size is left alone."""
        if not plan.do_pad:
            return image, layout
        target_h, target_w = self._canvas(plan)
        height, width = image_hw(image, layout)
        pad_h, pad_w = target_h - height, target_w - width
        if pad_h <= 0 and pad_w <= 0:
            return image, layout
        if pad_h < 0 or pad_w < 0:
            raise InputError(
                f"cannot pad an image of {height}x{width} to {target_h}x{target_w}: it is larger "
                "on one side; enable do_resize",
                source="image",
            )
        value, mode = plan.extra["padding_value"], plan.extra["padding_mode"]
        chw = to_channels_first(image, layout)  # a view: the padding copy does the transpose
        return F.pad(chw, ((0, pad_h), (0, pad_w)), value, mode=mode, input_data_format=CHANNELS_FIRST), CHANNELS_FIRST

    @staticmethod
    def _canvas(plan: Plan) -> tuple[int, int]:
        if plan.size is None:
            raise ConfigError("size must be set to resize or pad")
        return plan.size["height"], plan.size["width"]

    # ---- preprocessing -----------------------------------------------------------------------
    def __call__(self, images: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, **kwargs)

    def preprocess(
        self,
        images: Any,
        *,
        do_resize: bool | None = None,
        size: Any = None,
        resample: Any = None,
        do_pad: bool | None = None,
        padding_value: float | None = None,
        padding_mode: str | None = None,
        do_normalize: bool | None = None,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_convert_rgb: bool | None = None,
        patch_size: Any = None,  # accepted like the reference; used by the patch helpers only
        return_tensors: str | None = None,
        data_format: Any = CHANNELS_FIRST,
        input_data_format: Any = None,
        executor: Executor | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Process ``images``; every option defaults to the processor's own setting.

        Other keys of ``valid_kwargs`` (``do_center_crop``, ``device``, ...) are accepted and, as in
        the reference's PIL backend, have no effect; an input layout is inferred per image.
        ``executor``: run the images on this (thread) executor, which the caller owns.
        """
        self.check_call_kwargs(kwargs)
        given = dict(
            do_resize=do_resize, size=size, resample=resample, do_pad=do_pad, padding_value=padding_value,
            padding_mode=padding_mode, do_normalize=do_normalize, image_mean=image_mean, image_std=image_std,
            do_rescale=do_rescale, rescale_factor=rescale_factor, do_convert_rgb=do_convert_rgb,
            patch_size=patch_size, do_center_crop=False,
        )  # fmt: skip
        try:
            plan = self.call_plan(given)
        except ConfigError as exc:  # Fuyu has always reported bad call arguments as input errors
            raise InputError(str(exc)) from exc
        out_format = channel_format(data_format, "data_format") or CHANNELS_FIRST
        in_format = channel_format(input_data_format, "input_data_format")
        nested = self._nest(images)
        where = [(b, i) for b, sample in enumerate(nested) for i in range(len(sample))]
        items = [nested[b][i] for b, i in where]
        labels = [f"images[{b}][{i}]" for b, i in where]
        layouts = [self._item_layout(item, in_format, label) for item, label in zip(items, labels)]

        def finish(p: Prepared) -> _Done:
            array = finish_into(p.image, p.layout, None, image_hw(p.image, p.layout), plan, out_format)
            return _Done(array, p.original_hw, p.resized_hw)  # the padded input is freed here

        with call_pool(executor, len(items)) as workers:
            results = prepare_all(items, layouts, plan, self, workers, labels=labels, then=finish)
        return self._outputs(nested, where, results, return_tensors)

    @staticmethod
    def _item_layout(item: Any, in_format: str | None, label: str) -> str | None:
        try:
            return item_layout(item, in_format)
        except InputError as exc:
            raise InputError(str(exc), source=label) from None

    @staticmethod
    def _outputs(
        nested: list[list[Any]], where: list[tuple[int, int]], results: list[_Done], return_tensors: Any
    ) -> BatchFeature:
        """The reference's outputs: images per sample, and each sample's sizes from its first image."""
        processed: list[list[np.ndarray]] = [[] for _ in nested]
        firsts: dict[int, _Done] = {}
        for (b, i), done in zip(where, results):
            processed[b].append(done.array)
            if i == 0:
                firsts[b] = done
        samples = [firsts[b] for b in sorted(firsts)]
        values = (
            [[p.resized_hw[0]] for p in samples],
            [[p.resized_hw[1]] for p in samples],
            [[p.resized_hw[0] / p.original_hw[0]] for p in samples],
            [p.original_hw for p in samples],
        )
        result = BatchFeature({"images": processed, **dict(zip(_META, values))}, tensor_type=return_tensors)
        if getattr(return_tensors, "value", return_tensors) == "pt":
            import torch

            # The reference builds this tensor from Python floats: float32, not float64.
            result["image_scale_factors"] = result["image_scale_factors"].to(torch.float32)
        return result

    @staticmethod
    def _nest(images: Any) -> list[list[Any]]:
        """One image, a list, or a list of lists -> a list (samples) of lists (images)."""
        if _is_image(images) or isinstance(images, (str, bytes)) or hasattr(images, "__fspath__"):
            if getattr(images, "ndim", 0) == 4:  # a batch array: one sample per image
                return [[img] for img in images]
            return [[images]]
        if isinstance(images, (list, tuple)):
            if images and all(isinstance(x, (list, tuple)) for x in images):
                return [list(x) for x in images]
            nested: list[list[Any]] = []
            for x in images:
                if getattr(x, "ndim", 0) == 4:
                    nested.append(list(x))
                else:
                    nested.append([x])
            if not nested:
                raise InputError("no images given", source="images")
            return nested
        raise InputError(
            "images must be a PIL image, an array, a tensor, a path/URL, or a list of them, "
            f"not {type(images).__name__}",
            source="images",
        )

    def resize(  # type: ignore[override]
        self, image: Any, size: Any, resample: Any = None, data_format: Any = None, input_data_format: Any = None, **kwargs: Any
    ) -> Any:
        """Downscale to fit ``size`` (``{"height", "width"}``) keeping the aspect ratio (``int`` of each
        side times the smaller scale); an image that already fits is returned unchanged, as in the
        reference. ``resample`` defaults to bilinear."""
        array, fmt = self._array_and_layout(image, input_data_format)
        target = size_dict(size, keys=HEIGHT_WIDTH, error=InputError)
        height, width = image_hw(array, fmt)
        if height <= target["height"] and width <= target["width"]:
            return to_layout(array, fmt, data_format)
        new_size = _fit(height, width, target["height"], target["width"])
        return self._resize_to(array, new_size, resample, fmt, data_format)
