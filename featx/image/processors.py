"""Image processors with the reference's names, options, defaults and call arguments.

One pipeline (`BaseImageProcessor`): convert to RGB -> channel layout (per image: given, or inferred
where unambiguous, never guessed) -> resize -> centre crop -> rescale + normalise fused -> output
layout. ViT, DeiT, CLIP, BiT, ConvNeXt and SigLIP are that pipeline with other defaults; ConvNeXt
only changes the resize rule. The reference's per-image methods come from `ImageProcessingMethods`.

A batch is one pass: each item is decoded, converted, resized and cropped on a thread pool (PIL
releases the GIL), then written straight into one preallocated float32 batch through a per-channel
lookup table (uint8 input) that gives the reference's float64-rescale-then-float32-normalise values
bit for bit. Torch tensors on an accelerator (or ``device="cuda"``) are processed there with torch
ops and stay on that device (`featx.image.torch_route`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..batch import BatchFeature
from ..config import ImageProcessingMixin
from ..errors import ConfigError, InputError
from ..registry import register
from . import functional as F
from .batching import SOURCES, finish_into, flatten_images, labelled, padded_sizes
from .kwargs import ConvNextImageProcessorKwargs, ImagesKwargs, kwarg_names
from .layout import (
    CHANNELS_FIRST,
    CHANNELS_LAST,
    PILImageResampling,
    channel_format,
    image_hw,
    is_torch,
    resample_option,
    to_channels_last,
)
from .methods import ImageProcessingMethods
from .options import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    Plan,
    as_size_mapping,
    normalize_size_options,
    resolve_plan,
    size_dict,
    stat_option,
)
from .torch_route import process_torch
from .torch_route import wants_torch as _wants_torch

__all__ = [
    "BaseImageProcessor",
    "ViTImageProcessor",
    "DeiTImageProcessor",
    "CLIPImageProcessor",
    "BitImageProcessor",
    "ConvNextImageProcessor",
    "SiglipImageProcessor",
    "size_dict",
    "IMAGENET_STANDARD_MEAN",
    "IMAGENET_STANDARD_STD",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
]

_PIL_NATIVE = ("RGB", "L", "LA", "RGBA")  # modes the reference's array round trip leaves unchanged


def _default(value: Any) -> Any:
    return field(default_factory=lambda: copy.deepcopy(value))


@register("image_processor")
@dataclass(repr=False)
class BaseImageProcessor(ImageProcessingMethods, ImageProcessingMixin):
    """The shared pipeline; options left ``None`` switch a step off, as in the reference base class.

    Options are stored with the reference's types: ``resample`` as given (a ``PILImageResampling``
    member, or an int as read from JSON), ``image_mean`` / ``image_std`` sequences as tuples.
    """

    do_resize: bool | None = None
    size: dict[str, int] | None = None
    resample: PILImageResampling | int | None = None
    do_center_crop: bool | None = None
    crop_size: dict[str, int] | None = None
    do_rescale: bool | None = None
    rescale_factor: float | None = 1 / 255
    do_normalize: bool | None = None
    image_mean: float | tuple[float, ...] | None = None
    image_std: float | tuple[float, ...] | None = None
    do_convert_rgb: bool | None = None
    do_pad: bool | None = None
    pad_size: dict[str, int] | None = None

    type_key: ClassVar[str] = "image_processor_type"
    nested_key: ClassVar[str] = "image_processor"
    default_to_square: ClassVar[bool] = True
    model_input_names: ClassVar[list[str]] = ["pixel_values"]
    valid_kwargs: ClassVar[type] = ImagesKwargs

    def __post_init__(self) -> None:
        square = type(self).default_to_square
        self.size = size_dict(self.size, default_to_square=square)
        self.crop_size = size_dict(self.crop_size, param_name="crop_size")
        self.pad_size = size_dict(self.pad_size, param_name="pad_size")
        self.resample = resample_option(self.resample)
        self.image_mean = stat_option(self.image_mean)
        self.image_std = stat_option(self.image_std)

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Accept legacy spellings: int ``size``/``crop_size`` and CLIP's ``use_square_size``."""
        return normalize_size_options(options, cls.default_to_square)

    # ---- the call ----------------------------------------------------------------------------
    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)

    def preprocess(
        self,
        images: Any,
        return_tensors: str | None = None,
        do_resize: bool | None = None,
        size: Any = None,
        resample: Any = None,
        do_center_crop: bool | None = None,
        crop_size: Any = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_normalize: bool | None = None,
        image_mean: Any = None,
        image_std: Any = None,
        do_convert_rgb: bool | None = None,
        data_format: Any = CHANNELS_FIRST,
        input_data_format: Any = None,
        do_pad: bool | None = None,
        pad_size: Any = None,
        default_to_square: bool | None = None,
        device: Any = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Preprocess one image or a batch into ``{"pixel_values": ...}``.

        ``images``: PIL images, NumPy arrays / torch tensors (2-D grayscale, 3-D either layout,
        4-D batches), lists of these, or paths/bytes/URLs (decoded with `featx.load_image`).
        Any option can be overridden for this call. ``data_format`` is the output layout;
        ``input_data_format`` the input layout of every array (if not given, inferred per image, so
        a batch may mix layouts; an ambiguous shape is an error). ``device``: process on this torch
        device. Other keys of ``valid_kwargs`` (``disable_grouping``, ``image_seq_length``) are ignored.
        """
        unknown = sorted(set(kwargs) - set(self.option_names()) - kwarg_names(self.valid_kwargs))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {', '.join(unknown)}")
        given = dict(
            do_resize=do_resize, size=size, resample=resample, do_center_crop=do_center_crop,
            crop_size=crop_size, do_rescale=do_rescale, rescale_factor=rescale_factor,
            do_normalize=do_normalize, image_mean=image_mean, image_std=image_std,
            do_convert_rgb=do_convert_rgb, do_pad=do_pad, pad_size=pad_size, **kwargs,
        )  # fmt: skip
        plan = self._plan(given, default_to_square)
        out_format = channel_format(data_format, "data_format") or CHANNELS_FIRST
        in_format = channel_format(input_data_format, "input_data_format")
        items, formats = flatten_images(images, in_format)
        if _wants_torch(items, device):
            data = process_torch(self.resize_plan, items, plan, formats, out_format, device)
        else:
            data = self._process(items, plan, formats, out_format)
        if return_tensors is None and not isinstance(data, list):
            data = list(data)
        return BatchFeature({"pixel_values": data}, tensor_type=return_tensors)

    def _plan(self, given: dict[str, Any], default_to_square: bool | None) -> Plan:
        opts = {name: getattr(self, name) for name in self.option_names()}
        opts.update({k: v for k, v in given.items() if v is not None})
        square = type(self).default_to_square if default_to_square is None else default_to_square
        known = {f.name for f in dataclasses.fields(BaseImageProcessor)} | _IGNORED_KWARGS
        return resolve_plan(opts, square, known)

    def resize_plan(self, height: int, width: int, plan: Plan) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """``(resize_to, then_crop_to)`` for an image of this size; subclasses change the rule."""
        assert plan.size is not None
        return F.get_resize_output_size((height, width), plan.size), None

    # ---- the exact CPU route -----------------------------------------------------------------
    def _prepare(self, item: Any, index: int, plan: Plan, in_format: str | None) -> np.ndarray:
        """Decode, convert, resize and crop one item; returns ``(H, W, C)`` before rescaling."""
        if isinstance(item, SOURCES):
            from .io import load_image  # noqa: PLC0415  (decoding is optional for array users)

            item = load_image(item)
        if hasattr(item, "getbands"):  # PIL
            image = F.convert_rgb(item) if plan.do_convert_rgb else item
            if image.mode in _PIL_NATIVE:
                if plan.do_resize:
                    target, crop = self.resize_plan(image.height, image.width, plan)
                    hwc = F.pil_resize(image, target, plan.resample)
                    return self._crop(hwc, crop, plan)
                hwc = np.asarray(image)
                return self._crop(hwc[..., None] if hwc.ndim == 2 else hwc, None, plan)
            hwc = np.asarray(image)
        else:
            arr = item.detach().cpu().numpy() if is_torch(item) else np.asarray(item)
            if arr.ndim == 2:
                hwc = arr[..., None]
            elif arr.ndim == 3:
                hwc = to_channels_last(arr, in_format)
            else:
                raise InputError(f"expected a 2-D or 3-D image, got shape {arr.shape}")
            if plan.do_convert_rgb:
                hwc = F.convert_rgb(hwc, input_data_format=CHANNELS_LAST)
        hwc = hwc[..., None] if hwc.ndim == 2 else hwc
        crop = None
        if plan.do_resize:
            target, crop = self.resize_plan(hwc.shape[0], hwc.shape[1], plan)
            hwc = F._resize_hwc_exact(hwc, target, plan.resample)
        return self._crop(hwc, crop, plan)

    @staticmethod
    def _crop(hwc: np.ndarray, crop: tuple[int, int] | None, plan: Plan) -> np.ndarray:
        if crop is not None:
            hwc = F.center_crop(hwc, crop, input_data_format=CHANNELS_LAST)
        if plan.do_center_crop and plan.crop_size is not None:
            hwc = F.center_crop(hwc, plan.crop_size, input_data_format=CHANNELS_LAST)
        return hwc

    def _process(self, items: list[Any], plan: Plan, formats: list[str | None], out_format: str) -> Any:
        def prepare(pair: tuple[int, Any]) -> np.ndarray:
            index, item = pair
            return labelled(index, item, lambda: self._prepare(item, index, plan, formats[index]))

        hwcs = F.map_threads(prepare, list(enumerate(items)))
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
            return labelled(i, items[i], lambda: finish_into(hwcs[i], slots[i], sizes[i], plan, out_format))

        results = F.map_threads(finish, list(range(len(hwcs))))
        return batch if batch is not None else results


_IGNORED_KWARGS = {"disable_grouping", "image_seq_length"}  # accepted like the reference's PIL backend


# ---- the model families ---------------------------------------------------------------------------
@register("image_processor")
@dataclass(repr=False)
class ViTImageProcessor(BaseImageProcessor):
    """ViT: 224x224 bilinear, mean/std 0.5."""

    do_resize: bool | None = True
    size: dict[str, int] | None = _default({"height": 224, "width": 224})
    resample: PILImageResampling | int | None = PILImageResampling.BILINEAR
    do_rescale: bool | None = True
    do_normalize: bool | None = True
    image_mean: float | tuple[float, ...] | None = tuple(IMAGENET_STANDARD_MEAN)
    image_std: float | tuple[float, ...] | None = tuple(IMAGENET_STANDARD_STD)


@register("image_processor")
@dataclass(repr=False)
class DeiTImageProcessor(ViTImageProcessor):
    """DeiT: 256x256 bicubic, then a 224x224 centre crop."""

    size: dict[str, int] | None = _default({"height": 256, "width": 256})
    resample: PILImageResampling | int | None = PILImageResampling.BICUBIC
    do_center_crop: bool | None = True
    crop_size: dict[str, int] | None = _default({"height": 224, "width": 224})


@register("image_processor")
@dataclass(repr=False)
class CLIPImageProcessor(BaseImageProcessor):
    """CLIP: shortest edge 224 bicubic, 224x224 centre crop, OpenAI mean/std, RGB conversion."""

    do_resize: bool | None = True
    size: dict[str, int] | None = _default({"shortest_edge": 224})
    resample: PILImageResampling | int | None = PILImageResampling.BICUBIC
    do_center_crop: bool | None = True
    crop_size: dict[str, int] | None = _default({"height": 224, "width": 224})
    do_rescale: bool | None = True
    do_normalize: bool | None = True
    image_mean: float | tuple[float, ...] | None = tuple(OPENAI_CLIP_MEAN)
    image_std: float | tuple[float, ...] | None = tuple(OPENAI_CLIP_STD)
    do_convert_rgb: bool | None = True

    default_to_square: ClassVar[bool] = False


@register("image_processor")
@dataclass(repr=False)
class BitImageProcessor(CLIPImageProcessor):
    """BiT (and DINOv2 checkpoints): CLIP's pipeline and defaults."""


@register("image_processor")
@dataclass(repr=False)
class SiglipImageProcessor(ViTImageProcessor):
    """SigLIP: 224x224 bicubic, mean/std 0.5, RGB conversion."""

    resample: PILImageResampling | int | None = PILImageResampling.BICUBIC
    do_convert_rgb: bool | None = True

    default_to_square: ClassVar[bool] = False


@register("image_processor")
@dataclass(repr=False)
class ConvNextImageProcessor(ViTImageProcessor):
    """ConvNeXt: shortest edge 384 bicubic; below 384 resize to s/crop_pct and crop s x s, else warp."""

    size: dict[str, int] | None = _default({"shortest_edge": 384})
    resample: PILImageResampling | int | None = PILImageResampling.BICUBIC
    crop_pct: float | None = 224 / 256

    default_to_square: ClassVar[bool] = False
    valid_kwargs: ClassVar[type] = ConvNextImageProcessorKwargs

    def resize(  # type: ignore[override]
        self,
        image: Any,
        size: Any,
        resample: Any = None,
        crop_pct: float = 224 / 256,
        reducing_gap: int | None = None,
        data_format: Any = None,
        input_data_format: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The reference's ConvNeXt resize: for ``shortest_edge`` s < 384 resize the short side to
        ``int(s / crop_pct)`` and centre-crop s x s; otherwise warp to s x s."""
        array, fmt = self._array_and_layout(image, input_data_format)
        edge = size_dict(as_size_mapping(size), default_to_square=False) or {}
        if "shortest_edge" not in edge:
            raise InputError(f"ConvNeXt's resize needs size with 'shortest_edge', got {size}", source="size")
        s = edge["shortest_edge"]
        if s >= 384:
            return self._resize_to(array, (s, s), resample, fmt, data_format, reducing_gap)
        target = F.get_resize_output_size(image_hw(array, fmt), int(s / crop_pct), default_to_square=False)
        out = self._resize_to(array, target, resample, fmt, None, reducing_gap)
        return self.center_crop(out, {"height": s, "width": s}, data_format, fmt or CHANNELS_LAST)

    def resize_plan(self, height: int, width: int, plan: Plan) -> tuple[tuple[int, int], tuple[int, int] | None]:
        edge = (plan.size or {}).get("shortest_edge")
        if edge is None:
            raise ConfigError(f"ConvNextImageProcessor needs size with 'shortest_edge', got {plan.size}")
        if edge < 384:
            crop_pct = plan.extra.get("crop_pct")
            crop_pct = 224 / 256 if crop_pct is None else float(crop_pct)
            target = F.get_resize_output_size((height, width), int(edge / crop_pct), default_to_square=False)
            return target, (edge, edge)
        return (edge, edge), None
