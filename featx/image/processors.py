"""Image processors with the reference's names, options, defaults and call arguments.

One pipeline (`BaseImageProcessor`): convert to RGB -> channel layout (inferred once, never guessed)
-> resize -> centre crop -> rescale + normalise fused -> output layout. ViT, DeiT, CLIP, BiT,
ConvNeXt and SigLIP are that pipeline with other defaults; ConvNeXt only changes the resize rule.

A batch is one pass: each item is decoded, converted, resized and cropped on a thread pool (PIL
releases the GIL), then written straight into one preallocated float32 batch through a per-channel
lookup table (uint8 input) that gives the reference's float64-rescale-then-float32-normalise values
bit for bit. Torch tensors on an accelerator (or ``device="cuda"``) are processed there with torch
ops and stay on that device (resize within about 1/255 of PIL, see `featx.image.functional`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..batch import BatchFeature
from ..config import ConfigMixin
from ..errors import ConfigError, InputError
from ..registry import register
from . import functional as F
from .batching import SOURCES, finish_into, flatten_images, labelled, padded_sizes
from .layout import (
    CHANNELS_FIRST,
    CHANNELS_LAST,
    channel_format,
    is_torch,
    to_channels_first,
    to_channels_last,
)
from .options import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    Plan,
    normalize_size_options,
    resolve_plan,
    size_dict,
)

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
class BaseImageProcessor(ConfigMixin):
    """The shared pipeline; options left ``None`` switch a step off, as in the reference base class."""

    do_resize: bool | None = None
    size: dict[str, int] | None = None
    resample: int | None = None
    do_center_crop: bool | None = None
    crop_size: dict[str, int] | None = None
    do_rescale: bool | None = None
    rescale_factor: float | None = 1 / 255
    do_normalize: bool | None = None
    image_mean: float | list[float] | None = None
    image_std: float | list[float] | None = None
    do_convert_rgb: bool | None = None
    do_pad: bool | None = None
    pad_size: dict[str, int] | None = None

    type_key: ClassVar[str] = "image_processor_type"
    nested_key: ClassVar[str] = "image_processor"
    default_to_square: ClassVar[bool] = True
    model_input_names: ClassVar[list[str]] = ["pixel_values"]

    def __post_init__(self) -> None:
        square = type(self).default_to_square
        self.size = size_dict(self.size, default_to_square=square)
        self.crop_size = size_dict(self.crop_size, param_name="crop_size")
        self.pad_size = size_dict(self.pad_size, param_name="pad_size")
        if self.resample is not None:
            self.resample = F.parse_resample(self.resample)
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            if isinstance(value, (tuple, list, np.ndarray)):
                setattr(self, name, [float(v) for v in value])

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Accept legacy spellings: int ``size``/``crop_size`` and CLIP's ``use_square_size``."""
        return normalize_size_options(options, cls.default_to_square)

    def to_dict(self) -> dict[str, Any]:
        """Options as the reference saves them: ``None`` options whose default is ``None`` are left out."""
        out = super().to_dict()
        for f in dataclasses.fields(self):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
            if out.get(f.name, 0) is None and default is None:
                del out[f.name]
        return out

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
        ``input_data_format`` the input layout (inferred once from the first array if not given;
        an ambiguous shape is an error). ``device``: process on this torch device.
        """
        unknown = sorted(set(kwargs) - set(self.option_names()))
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
        items, in_format = flatten_images(images, in_format)
        if _wants_torch(items, device):
            data = self._process_torch(items, plan, in_format, out_format, device)
        else:
            data = self._process(items, plan, in_format, out_format)
        if return_tensors is None and not isinstance(data, list):
            data = list(data)
        return BatchFeature({"pixel_values": data}, tensor_type=return_tensors)

    def _plan(self, given: dict[str, Any], default_to_square: bool | None) -> Plan:
        opts = {name: getattr(self, name) for name in self.option_names()}
        opts.update({k: v for k, v in given.items() if v is not None})
        square = type(self).default_to_square if default_to_square is None else default_to_square
        known = {f.name for f in dataclasses.fields(BaseImageProcessor)}
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

    def _process(self, items: list[Any], plan: Plan, in_format: str | None, out_format: str) -> Any:
        def prepare(pair: tuple[int, Any]) -> np.ndarray:
            index, item = pair
            return labelled(index, item, lambda: self._prepare(item, index, plan, in_format))

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

    # ---- the accelerator route ---------------------------------------------------------------
    def _prepare_torch(self, item: Any, plan: Plan, in_format: str | None, device: Any) -> Any:
        """One item as a ``(C, H, W)`` tensor on ``device``, converted, resized and cropped there."""
        import torch

        if isinstance(item, SOURCES):
            from .io import load_image  # noqa: PLC0415

            item = load_image(item)
        if hasattr(item, "getbands"):
            arr = np.array(F.convert_rgb(item) if plan.do_convert_rgb else item)
            tensor = torch.from_numpy(arr).to(device)
            tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        else:
            tensor = item if is_torch(item) else torch.from_numpy(np.ascontiguousarray(item))
            tensor = tensor.to(device)
            tensor = tensor[None] if tensor.ndim == 2 else to_channels_first(tensor, in_format)
            if plan.do_convert_rgb:
                tensor = F.convert_rgb(tensor, input_data_format=CHANNELS_FIRST)
        crop = None
        if plan.do_resize:
            target, crop = self.resize_plan(int(tensor.shape[-2]), int(tensor.shape[-1]), plan)
            tensor = F.resize(tensor, target, plan.resample, input_data_format=CHANNELS_FIRST, backend="torch")
        if crop is not None:
            tensor = F.center_crop(tensor, crop, input_data_format=CHANNELS_FIRST)
        if plan.do_center_crop and plan.crop_size is not None:
            tensor = F.center_crop(tensor, plan.crop_size, input_data_format=CHANNELS_FIRST)
        return tensor

    def _process_torch(self, items: list[Any], plan: Plan, in_format: str | None, out_format: str, device: Any) -> Any:
        import torch

        if device is None:
            device = next(item.device for item in items if is_torch(item) and item.device.type != "cpu")
        device = torch.device(device)
        chws = [labelled(i, item, lambda: self._prepare_torch(item, plan, in_format, device)) for i, item in enumerate(items)]
        sizes = padded_sizes([tuple(t.shape[-2:]) for t in chws], plan)
        scale = plan.rescale_factor if plan.do_rescale else None
        outs = []
        for t, (hh, ww) in zip(chws, sizes):
            if plan.do_normalize:
                t = F.rescale_normalize(t, scale, plan.image_mean, plan.image_std, input_data_format=CHANNELS_FIRST)
            elif scale is not None:
                t = F.rescale(t, scale)
            if plan.do_pad:
                t = F.pad(t, ((0, hh - t.shape[-2]), (0, ww - t.shape[-1])), input_data_format=CHANNELS_FIRST)
            outs.append(t.permute(1, 2, 0) if out_format == CHANNELS_LAST else t)
        if len({(o.shape, o.dtype) for o in outs}) == 1:
            return torch.stack(outs)
        return outs


def _wants_torch(items: list[Any], device: Any) -> bool:
    """Whether to take the torch route: a non-CPU ``device``, or (without one) a tensor on an accelerator."""
    if device is not None:
        return str(device) != "cpu"
    return any(is_torch(item) and item.device.type != "cpu" for item in items)


# ---- the model families ---------------------------------------------------------------------------
@register("image_processor")
@dataclass(repr=False)
class ViTImageProcessor(BaseImageProcessor):
    """ViT: 224x224 bilinear, mean/std 0.5."""

    do_resize: bool | None = True
    size: dict[str, int] | None = _default({"height": 224, "width": 224})
    resample: int | None = 2
    do_rescale: bool | None = True
    do_normalize: bool | None = True
    image_mean: float | list[float] | None = _default(IMAGENET_STANDARD_MEAN)
    image_std: float | list[float] | None = _default(IMAGENET_STANDARD_STD)


@register("image_processor")
@dataclass(repr=False)
class DeiTImageProcessor(ViTImageProcessor):
    """DeiT: 256x256 bicubic, then a 224x224 centre crop."""

    size: dict[str, int] | None = _default({"height": 256, "width": 256})
    resample: int | None = 3
    do_center_crop: bool | None = True
    crop_size: dict[str, int] | None = _default({"height": 224, "width": 224})


@register("image_processor")
@dataclass(repr=False)
class CLIPImageProcessor(BaseImageProcessor):
    """CLIP: shortest edge 224 bicubic, 224x224 centre crop, OpenAI mean/std, RGB conversion."""

    do_resize: bool | None = True
    size: dict[str, int] | None = _default({"shortest_edge": 224})
    resample: int | None = 3
    do_center_crop: bool | None = True
    crop_size: dict[str, int] | None = _default({"height": 224, "width": 224})
    do_rescale: bool | None = True
    do_normalize: bool | None = True
    image_mean: float | list[float] | None = _default(OPENAI_CLIP_MEAN)
    image_std: float | list[float] | None = _default(OPENAI_CLIP_STD)
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

    resample: int | None = 3
    do_convert_rgb: bool | None = True

    default_to_square: ClassVar[bool] = False


@register("image_processor")
@dataclass(repr=False)
class ConvNextImageProcessor(ViTImageProcessor):
    """ConvNeXt: shortest edge 384 bicubic; below 384 resize to s/crop_pct and crop s x s, else warp."""

    size: dict[str, int] | None = _default({"shortest_edge": 384})
    resample: int | None = 3
    crop_pct: float | None = 224 / 256

    default_to_square: ClassVar[bool] = False

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
