"""Fuyu's image processor: arbitrary-size images, downscaled to fit and padded to 1080x1920, then
cut into 30x30 patches with the token bookkeeping ``transformers`` returns.

Same names, options, defaults, call arguments and outputs as ``transformers.FuyuImageProcessor``
(its PIL backend ``FuyuImageProcessorPil`` in 5.x), element for element. Differences, all on
inputs the reference mishandles: an ambiguous channel layout is an error (the reference guesses),
a 4-D batch array is read as a list of images (the reference fails), ``data_format`` is honoured
(the reference ignores it), and `patchify_image` always returns ``(batch, patches, dim)`` for 4-D
input (the PIL reference drops the batch axis when it is 1; the torch reference keeps it). The
patch helpers live in `featx.image.fuyu_patches`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..batch import BatchFeature
from ..config import ImageProcessingMixin
from ..errors import InputError
from ..registry import register
from . import functional as F
from .fuyu_patches import FuyuPatchMethods
from .fuyu_patches import fuyu_size_dict as _size_dict
from .kwargs import FuyuImagesKwargs, kwarg_names
from .layout import CHANNELS_FIRST, CHANNELS_LAST, PILImageResampling, channel_format, image_hw, is_torch, resample_option
from .methods import ImageProcessingMethods, to_layout
from .options import stat_option

__all__ = ["FuyuImageProcessor"]


def _fit(height: int, width: int, max_height: int, max_width: int) -> tuple[int, int]:
    scale = min(max_height / height, max_width / width)
    return int(height * scale), int(width * scale)


def _is_image(x: Any) -> bool:
    return hasattr(x, "getbands") or isinstance(x, np.ndarray) or is_torch(x)


@register("image_processor")
@dataclass(repr=False)
class FuyuImageProcessor(FuyuPatchMethods, ImageProcessingMethods, ImageProcessingMixin):
    """Downscale to fit ``size`` (only when larger), pad bottom/right, rescale and normalise.

    Call with one image, a list (one image per sample) or a list of lists (images per sample).
    Returns ``images`` (per sample, a list of ``(C, H, W)`` arrays), ``image_unpadded_heights``,
    ``image_unpadded_widths``, ``image_scale_factors`` (each ``[[v]]`` per sample, from its first
    image) and ``image_sizes`` (original ``(h, w)``).
    """

    do_resize: bool = True
    size: dict[str, int] = field(default_factory=lambda: {"height": 1080, "width": 1920})
    resample: PILImageResampling | int = PILImageResampling.BILINEAR
    do_pad: bool = True
    padding_value: float = 1.0  # on the input's scale (0..255 for uint8), before rescaling
    padding_mode: str = "constant"
    do_normalize: bool = True
    image_mean: float | tuple[float, ...] = 0.5
    image_std: float | tuple[float, ...] = 0.5
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    patch_size: dict[str, int] = field(default_factory=lambda: {"height": 30, "width": 30})
    do_convert_rgb: bool | None = None

    model_input_names: ClassVar[list[str]] = [
        "images",
        "image_input_ids",
        "image_patches",
        "image_patch_indices_per_batch",
        "image_patch_indices_per_subsequence",
    ]
    valid_kwargs: ClassVar[type] = FuyuImagesKwargs

    def __post_init__(self) -> None:
        options = self.normalize_options(dict(self.__dict__))
        for key in ("size", "patch_size", "resample", "image_mean", "image_std"):
            setattr(self, key, options[key])

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Int/pair sizes become dicts, resample names become ``PILImageResampling`` members (members and
        ints are kept), mean/std sequences become tuples: the reference's types."""
        out = dict(options)
        for key in ("size", "patch_size"):
            if out.get(key) is not None:
                out[key] = _size_dict(out[key], key)
        if out.get("resample") is not None:
            out["resample"] = resample_option(out["resample"])
        for key in ("image_mean", "image_std"):
            if key in out:
                out[key] = stat_option(out[key])
        return out

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
        **kwargs: Any,
    ) -> BatchFeature:
        """Process ``images``; every option defaults to the processor's own setting.

        Other keys of ``valid_kwargs`` (``do_center_crop``, ``device``, ...) are accepted and, as in
        the reference's PIL backend, have no effect; an input layout is inferred per image.
        """
        unknown = sorted(set(kwargs) - kwarg_names(self.valid_kwargs))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {', '.join(unknown)}")
        opts = self.normalize_options(
            {
                "do_resize": self.do_resize if do_resize is None else do_resize,
                "size": self.size if size is None else size,
                "resample": self.resample if resample is None else resample,
                "do_pad": self.do_pad if do_pad is None else do_pad,
                "padding_value": self.padding_value if padding_value is None else padding_value,
                "padding_mode": self.padding_mode if padding_mode is None else padding_mode,
                "do_normalize": self.do_normalize if do_normalize is None else do_normalize,
                "image_mean": self.image_mean if image_mean is None else image_mean,
                "image_std": self.image_std if image_std is None else image_std,
                "do_rescale": self.do_rescale if do_rescale is None else do_rescale,
                "rescale_factor": self.rescale_factor if rescale_factor is None else rescale_factor,
                "do_convert_rgb": self.do_convert_rgb if do_convert_rgb is None else do_convert_rgb,
            }
        )
        out_format = channel_format(data_format, "data_format") or CHANNELS_FIRST
        in_format = channel_format(input_data_format, "input_data_format")
        if opts["do_rescale"] and opts["rescale_factor"] is None:
            raise InputError("do_rescale needs rescale_factor", source="rescale_factor")
        if opts["do_normalize"] and (opts["image_mean"] is None or opts["image_std"] is None):
            raise InputError("do_normalize needs image_mean and image_std", source="image_mean")

        nested = self._nest(images)
        flat = [(b, i, img) for b, batch in enumerate(nested) for i, img in enumerate(batch)]
        results = F.map_threads(lambda item: self._process_one(item[2], item[:2], opts, in_format), flat)
        processed: list[list[np.ndarray]] = [[] for _ in nested]
        original: dict[int, tuple[int, int]] = {}
        resized: dict[int, tuple[int, int]] = {}
        for (b, i, _), (array, orig_hw, new_hw) in zip(flat, results):
            processed[b].append(F.to_channels_last(array) if out_format == CHANNELS_LAST else array)
            if i == 0:  # like the reference, a sample's sizes come from its first image
                original[b], resized[b] = orig_hw, new_hw
        samples = sorted(original)
        data = {
            "images": processed,
            "image_unpadded_heights": [[resized[b][0]] for b in samples],
            "image_unpadded_widths": [[resized[b][1]] for b in samples],
            "image_scale_factors": [[resized[b][0] / original[b][0]] for b in samples],
            "image_sizes": [original[b] for b in samples],
        }
        result = BatchFeature(data, tensor_type=return_tensors)
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

    def _process_one(
        self, image: Any, where: tuple[int, int], opts: dict[str, Any], in_format: str | None
    ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """One image -> (processed CHW array, original (h, w), resized (h, w))."""
        label = f"images[{where[0]}][{where[1]}]"
        try:
            chw = self._to_chw(image, opts["do_convert_rgb"], in_format)
            height, width = int(chw.shape[-2]), int(chw.shape[-1])
            target_h, target_w = opts["size"]["height"], opts["size"]["width"]
            if opts["do_resize"] and (height > target_h or width > target_w):
                new_size = _fit(height, width, target_h, target_w)
                if min(new_size) < 1:
                    raise InputError(
                        f"an image of {height}x{width} fitted into {target_h}x{target_w} would be "
                        f"{new_size[0]}x{new_size[1]}: too thin to resize",
                        source="image",
                    )
                chw = F.resize(chw, new_size, opts["resample"], input_data_format=CHANNELS_FIRST)
            new_hw = (int(chw.shape[-2]), int(chw.shape[-1]))
            if opts["do_pad"]:
                chw = self._pad(chw, target_h, target_w, opts["padding_value"], opts["padding_mode"])
            scale = opts["rescale_factor"] if opts["do_rescale"] else None
            if opts["do_normalize"]:
                chw = F.rescale_normalize(
                    chw, scale, opts["image_mean"], opts["image_std"], input_data_format=CHANNELS_FIRST
                )
            elif scale is not None:
                chw = F.rescale(chw, scale)
            return chw, (height, width), new_hw
        except InputError as exc:
            raise InputError(str(exc), source=label) from exc

    @staticmethod
    def _to_chw(image: Any, do_convert_rgb: bool | None, in_format: str | None) -> np.ndarray:
        if isinstance(image, (str, bytes, bytearray, memoryview)) or hasattr(image, "__fspath__"):
            from .io import load_image

            image = load_image(image)  # the reference fetches URLs the same way: RGB
        if hasattr(image, "getbands"):  # PIL
            if do_convert_rgb:
                image = F.convert_rgb(image)
            array = np.asarray(image)
            return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
        if is_torch(image):
            image = image.detach().cpu().numpy()
        if not isinstance(image, np.ndarray):
            raise InputError(f"unsupported image type {type(image).__name__}", source="image")
        if image.ndim == 2:
            image = image[None]
            fmt = CHANNELS_FIRST
        elif image.ndim == 3:
            fmt = in_format or F.infer_channel_format(image)
        else:
            raise InputError(f"expected an image of 2 or 3 dims, got shape {image.shape}", source="image")
        chw = F.to_channels_first(image, fmt)
        if do_convert_rgb:
            chw = F.convert_rgb(chw, input_data_format=CHANNELS_FIRST)
        return np.asarray(chw)

    def resize(  # type: ignore[override]
        self, image: Any, size: Any, resample: Any = None, data_format: Any = None, input_data_format: Any = None, **kwargs: Any
    ) -> Any:
        """Downscale to fit ``size`` (``{"height", "width"}``) keeping the aspect ratio (``int`` of each
        side times the smaller scale); an image that already fits is returned unchanged, as in the
        reference. ``resample`` defaults to bilinear."""
        array, fmt = self._array_and_layout(image, input_data_format)
        target = _size_dict(size, "size")
        height, width = image_hw(array, fmt)
        if height <= target["height"] and width <= target["width"]:
            return to_layout(array, fmt, data_format)
        new_size = _fit(height, width, target["height"], target["width"])
        return self._resize_to(array, new_size, resample, fmt, data_format)

    @staticmethod
    def _pad(chw: np.ndarray, target_h: int, target_w: int, value: float, mode: str) -> np.ndarray:
        pad_h, pad_w = target_h - chw.shape[-2], target_w - chw.shape[-1]
        if pad_h <= 0 and pad_w <= 0:
            return chw  # the reference leaves images that already fill (or exceed) the size alone
        if pad_h < 0 or pad_w < 0:
            raise InputError(
                f"cannot pad an image of {chw.shape[-2]}x{chw.shape[-1]} to {target_h}x{target_w}: it is larger "
                "on one side; enable do_resize",
                source="image",
            )
        # Filled in the image's dtype, as np.pad does: 1.0 on uint8 is grey level 1.
        return F.pad(chw, ((0, pad_h), (0, pad_w)), value, mode=mode, input_data_format=CHANNELS_FIRST)
