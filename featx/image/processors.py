"""Image processors with the reference's names, options, defaults and call arguments.

All of them, Fuyu included (`featx.image.fuyu`), run one plan (`featx.image.plan`):
options resolved once per call (`call_plan`: the call's arguments over the processor's own,
normalised and checked), each image's layout resolved once at the boundary, one per-item path
(decode -> RGB -> resize -> crop -> pad) over the functional ops, and a batch assembly that differs
only by backend: one preallocated NumPy batch written through a per-channel lookup table (uint8
input; bit for bit the reference's float64-rescale-then-float32-normalise), or torch tensors that
stay on their device (`featx.image.torch_route`). Subclasses change two hooks: `resize_plan`
(ConvNeXt's ``crop_pct`` rule, Fuyu's downscale-to-fit) and `pad_item` (Fuyu's canvas). The
reference's per-image methods come from `ImageProcessingMethods`.

Items run on the caller's ``executor`` when one is passed, else on a thread pool opened for the
call only (``FEATX_NUM_THREADS`` threads; PIL, NumPy and the resize kernel release the GIL).
Options are checked when the processor is built (`featx.image.validation`): a bad config raises
`featx.ConfigError` before any image is read.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..batch import BatchFeature
from ..config import ImageProcessingMixin
from ..errors import ConfigError, InputError
from ..registry import register
from . import functional as F
from .batching import assemble_numpy, flatten_images
from .kwargs import ConvNextImageProcessorKwargs, ImagesKwargs, kwarg_names
from .layout import CHANNELS_FIRST, CHANNELS_LAST, PILImageResampling, channel_format, image_hw
from .methods import ImageProcessingMethods
from .options import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    SIZE_KEYS,
    STAT_PRESETS,
    Plan,
    merge_options,
    normalize_image_options,
    resolve_plan,
    size_dict,
)
from .plan import prepare_all
from .threads import SERIAL, call_pool
from .torch_route import assemble_torch, torch_device
from .torch_route import wants_torch as _wants_torch

__all__ = [
    "field_default",
    "BaseImageProcessor",
    "ViTImageProcessor",
    "DeiTImageProcessor",
    "CLIPImageProcessor",
    "BitImageProcessor",
    "ConvNextImageProcessor",
    "SiglipImageProcessor",
    "size_dict",
    *STAT_PRESETS,
]

SizeKeys = tuple[frozenset[str], ...]


def field_default(value: Any) -> Any:
    """A dataclass field defaulting to a fresh copy of ``value`` (a dict or list option)."""
    return field(default_factory=lambda: copy.deepcopy(value))


def _stored_options(processor: BaseImageProcessor) -> dict[str, Any]:
    return {name: getattr(processor, name) for name in processor.option_names()}


@register("image_processor")
@dataclass(repr=False)
class BaseImageProcessor(ImageProcessingMethods, ImageProcessingMixin):
    """The shared plan; options left ``None`` switch a step off, as in the reference base class.

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
    # The size options and the key sets each may have.
    size_options: ClassVar[dict[str, SizeKeys]] = {"size": SIZE_KEYS, "crop_size": SIZE_KEYS, "pad_size": SIZE_KEYS}

    def __post_init__(self) -> None:
        for name, value in self.normalize_options(_stored_options(self)).items():
            setattr(self, name, value)

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The reference's types for the options given (legacy spellings accepted: int ``size`` /
        ``crop_size``, CLIP's ``use_square_size``), checked: a bad value raises `ConfigError`.
        Keys that are not options (kept as extras) are passed through unchecked."""
        names = {*cls.option_names(), "use_square_size"}
        given = {k: v for k, v in options.items() if k in names}
        normalized = normalize_image_options(given, default_to_square=cls.default_to_square, size_keys=cls.size_options)
        return {**{k: v for k, v in options.items() if k not in names}, **normalized}

    # ---- the plan of one call ----------------------------------------------------------------
    def call_plan(self, given: Mapping[str, Any], default_to_square: bool | None = None) -> Plan:
        """The one place a call's options are resolved: ``given`` (``None`` = the processor's own)
        laid over the stored options, normalised and checked (`ConfigError`), frozen into a `Plan`."""
        square = type(self).default_to_square if default_to_square is None else default_to_square
        merged = merge_options(_stored_options(self), given)
        opts = normalize_image_options(
            merged, default_to_square=square, size_keys=self.size_options, where=None, stat_lengths=None
        )
        return resolve_plan(opts, _KNOWN_OPTIONS)

    def resize_plan(self, height: int, width: int, plan: Plan) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """Hook: ``(resize_to, then_crop_to)`` for an image of this size (``None``: skip the step)."""
        assert plan.size is not None
        return F.get_resize_output_size((height, width), plan.size), None

    def pad_item(self, image: Any, layout: str, plan: Plan) -> tuple[Any, str]:
        """Hook: ``(image, layout)`` of one item after resize and crop, before rescaling; the base
        class leaves it as it is (``do_pad`` pads the normalised batch, with zeros)."""
        return image, layout

    def check_call_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        """Refuse call arguments that are neither options nor keys of ``valid_kwargs``."""
        unknown = sorted(set(kwargs) - set(self.option_names()) - kwarg_names(self.valid_kwargs))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {', '.join(unknown)}")

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
        executor: Executor | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Preprocess one image or a batch into ``{"pixel_values": ...}``.

        ``images``: PIL images, NumPy arrays / torch tensors (2-D grayscale, 3-D either layout,
        4-D batches), lists of these, or paths/bytes/URLs (decoded with `featx.load_image`).
        Any option can be overridden for this call. ``data_format`` is the output layout;
        ``input_data_format`` the input layout of every array (if not given, inferred per image, so
        a batch may mix layouts; an ambiguous shape is an error). ``device``: process on this torch
        device. ``executor``: run the images on this (thread) executor, which the caller owns; by
        default a pool is opened for this call only. Other keys of ``valid_kwargs``
        (``disable_grouping``, ``image_seq_length``) are ignored.
        """
        self.check_call_kwargs(kwargs)
        given = dict(
            do_resize=do_resize, size=size, resample=resample, do_center_crop=do_center_crop,
            crop_size=crop_size, do_rescale=do_rescale, rescale_factor=rescale_factor,
            do_normalize=do_normalize, image_mean=image_mean, image_std=image_std,
            do_convert_rgb=do_convert_rgb, do_pad=do_pad, pad_size=pad_size, **kwargs,
        )  # fmt: skip
        plan = self.call_plan(given, default_to_square)
        out_format = channel_format(data_format, "data_format") or CHANNELS_FIRST
        items, layouts = flatten_images(images, channel_format(input_data_format, "input_data_format"))
        target = torch_device(items, device) if _wants_torch(items, device) else None
        if target is not None:  # torch ops on the device, one item after another
            data = assemble_torch(prepare_all(items, layouts, plan, self, SERIAL, device=target), plan, out_format)
        else:
            with call_pool(executor, len(items)) as workers:
                prepared = prepare_all(items, layouts, plan, self, workers)
                data = assemble_numpy(prepared, items, plan, out_format, workers)
        if return_tensors is None and not isinstance(data, list):
            data = list(data)
        return BatchFeature({"pixel_values": data}, tensor_type=return_tensors)


# Call arguments the reference's PIL backend accepts and ignores; with the base options, the keys
# a `Plan` has fields for (the others, such as ConvNeXt's crop_pct, go to ``Plan.extra``).
_IGNORED_KWARGS = {"disable_grouping", "image_seq_length"}
_KNOWN_OPTIONS = {f.name for f in dataclasses.fields(BaseImageProcessor)} | _IGNORED_KWARGS


# ---- the model families ---------------------------------------------------------------------------
@register("image_processor")
@dataclass(repr=False)
class ViTImageProcessor(BaseImageProcessor):
    """ViT: 224x224 bilinear, mean/std 0.5."""

    do_resize: bool | None = True
    size: dict[str, int] | None = field_default({"height": 224, "width": 224})
    resample: PILImageResampling | int | None = PILImageResampling.BILINEAR
    do_rescale: bool | None = True
    do_normalize: bool | None = True
    image_mean: float | tuple[float, ...] | None = tuple(IMAGENET_STANDARD_MEAN)
    image_std: float | tuple[float, ...] | None = tuple(IMAGENET_STANDARD_STD)


@register("image_processor")
@dataclass(repr=False)
class DeiTImageProcessor(ViTImageProcessor):
    """DeiT: 256x256 bicubic, then a 224x224 centre crop."""

    size: dict[str, int] | None = field_default({"height": 256, "width": 256})
    resample: PILImageResampling | int | None = PILImageResampling.BICUBIC
    do_center_crop: bool | None = True
    crop_size: dict[str, int] | None = field_default({"height": 224, "width": 224})


@register("image_processor")
@dataclass(repr=False)
class CLIPImageProcessor(BaseImageProcessor):
    """CLIP: shortest edge 224 bicubic, 224x224 centre crop, OpenAI mean/std, RGB conversion."""

    do_resize: bool | None = True
    size: dict[str, int] | None = field_default({"shortest_edge": 224})
    resample: PILImageResampling | int | None = PILImageResampling.BICUBIC
    do_center_crop: bool | None = True
    crop_size: dict[str, int] | None = field_default({"height": 224, "width": 224})
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

    size: dict[str, int] | None = field_default({"shortest_edge": 384})
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
        edge = size_dict(size, default_to_square=False, error=InputError) or {}
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
