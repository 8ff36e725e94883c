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
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..batch import BatchFeature
from ..config import ConfigMixin
from ..errors import ConfigError, FeatxError, InputError
from ..registry import register
from . import functional as F
from .layout import (
    CHANNELS_FIRST,
    CHANNELS_LAST,
    channel_format,
    infer_channel_format,
    is_torch,
    to_channels_first,
    to_channels_last,
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

IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5]
IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5]
IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

_SIZE_KEYS = (
    {"height", "width"},
    {"shortest_edge"},
    {"shortest_edge", "longest_edge"},
    {"longest_edge"},
    {"max_height", "max_width"},
)
_PIL_NATIVE = ("RGB", "L", "LA", "RGBA")  # modes the reference's array round trip leaves unchanged
_SOURCES = (str, os.PathLike, bytes, bytearray, memoryview)


def _default(value: Any) -> Any:
    return field(default_factory=lambda: copy.deepcopy(value))


def size_dict(size: Any, *, default_to_square: bool = True, param_name: str = "size") -> dict[str, int] | None:
    """The reference's ``get_size_dict``: an int, ``(h, w)`` or dict becomes a size dict."""
    if size is None:
        return None
    if isinstance(size, Mapping):
        out = {str(k): int(v) for k, v in size.items() if v is not None}
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        out = {"height": int(size), "width": int(size)} if default_to_square else {"shortest_edge": int(size)}
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        out = {"height": int(size[0]), "width": int(size[1])}
    else:
        raise ConfigError(f"{param_name} must be an int, (height, width) or a dict, not {size!r}")
    if set(out) not in _SIZE_KEYS:
        allowed = ", ".join("+".join(sorted(k)) for k in _SIZE_KEYS)
        raise ConfigError(f"{param_name} {out} must have one of these key sets: {allowed}")
    return out


@dataclass(frozen=True)
class _Plan:
    """The options of one call, resolved against the processor's own."""

    do_resize: bool
    size: dict[str, int] | None
    resample: int
    do_center_crop: bool
    crop_size: tuple[int, int] | None
    do_rescale: bool
    rescale_factor: float | None
    do_normalize: bool
    image_mean: Any
    image_std: Any
    do_convert_rgb: bool
    do_pad: bool
    pad_size: tuple[int, int] | None
    extra: dict[str, Any]

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        if self.do_rescale:
            return np.dtype(np.float32)
        if self.do_normalize and not np.issubdtype(dtype, np.floating):
            return np.dtype(np.float32)
        return np.dtype(dtype)


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
        options = dict(options)
        if options.pop("use_square_size", False) and isinstance(options.get("size"), (int, dict)):
            edge = options["size"] if isinstance(options["size"], int) else options["size"].get("shortest_edge")
            if edge is not None:
                options["size"] = {"height": int(edge), "width": int(edge)}
        if "size" in options:
            options["size"] = size_dict(options["size"], default_to_square=cls.default_to_square)
        for key in ("crop_size", "pad_size"):
            if key in options:
                options[key] = size_dict(options[key], param_name=key)
        return options

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
        items, in_format = _flatten(images, in_format)
        if _wants_torch(items, device):
            data = self._process_torch(items, plan, in_format, out_format, device)
        else:
            data = self._process(items, plan, in_format, out_format)
        if return_tensors is None and not isinstance(data, list):
            data = list(data)
        return BatchFeature({"pixel_values": data}, tensor_type=return_tensors)

    def _plan(self, given: dict[str, Any], default_to_square: bool | None) -> _Plan:
        opts = {name: getattr(self, name) for name in self.option_names()}
        opts.update({k: v for k, v in given.items() if v is not None})
        square = type(self).default_to_square if default_to_square is None else default_to_square
        opts["size"] = size_dict(opts["size"], default_to_square=square)
        crop = size_dict(opts["crop_size"], param_name="crop_size")
        pad = size_dict(opts["pad_size"], param_name="pad_size")
        if opts["do_rescale"] and opts["rescale_factor"] is None:
            raise ConfigError("rescale_factor must be set when do_rescale is True")
        if opts["do_normalize"] and (opts["image_mean"] is None or opts["image_std"] is None):
            raise ConfigError("image_mean and image_std must both be set when do_normalize is True")
        if opts["do_center_crop"] and crop is None:
            raise ConfigError("crop_size must be set when do_center_crop is True")
        if opts["do_resize"] and opts["size"] is None:
            raise ConfigError("size must be set when do_resize is True")
        if opts["do_center_crop"] and set(crop or {}) != {"height", "width"}:
            raise ConfigError(f"crop_size must have 'height' and 'width', got {crop}")
        if opts["do_pad"] and pad is not None and set(pad) != {"height", "width"}:
            raise ConfigError(f"pad_size must have 'height' and 'width', got {pad}")
        known = {f.name for f in dataclasses.fields(BaseImageProcessor)}
        return _Plan(
            do_resize=bool(opts["do_resize"]),
            size=opts["size"],
            resample=F.parse_resample(opts["resample"]),
            do_center_crop=bool(opts["do_center_crop"]),
            crop_size=(crop["height"], crop["width"]) if crop and "height" in crop else None,
            do_rescale=bool(opts["do_rescale"]),
            rescale_factor=opts["rescale_factor"],
            do_normalize=bool(opts["do_normalize"]),
            image_mean=opts["image_mean"],
            image_std=opts["image_std"],
            do_convert_rgb=bool(opts["do_convert_rgb"]),
            do_pad=bool(opts["do_pad"]),
            pad_size=(pad["height"], pad["width"]) if pad and "height" in pad else None,
            extra={k: v for k, v in opts.items() if k not in known},
        )

    def resize_plan(self, height: int, width: int, plan: _Plan) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """``(resize_to, then_crop_to)`` for an image of this size; subclasses change the rule."""
        assert plan.size is not None
        return F.get_resize_output_size((height, width), plan.size), None

    # ---- the exact CPU route -----------------------------------------------------------------
    def _prepare(self, item: Any, index: int, plan: _Plan, in_format: str | None) -> np.ndarray:
        """Decode, convert, resize and crop one item; returns ``(H, W, C)`` before rescaling."""
        if isinstance(item, _SOURCES):
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
    def _crop(hwc: np.ndarray, crop: tuple[int, int] | None, plan: _Plan) -> np.ndarray:
        if crop is not None:
            hwc = F.center_crop(hwc, crop, input_data_format=CHANNELS_LAST)
        if plan.do_center_crop and plan.crop_size is not None:
            hwc = F.center_crop(hwc, plan.crop_size, input_data_format=CHANNELS_LAST)
        return hwc

    def _process(self, items: list[Any], plan: _Plan, in_format: str | None, out_format: str) -> Any:
        def prepare(pair: tuple[int, Any]) -> np.ndarray:
            index, item = pair
            return _labelled(index, item, lambda: self._prepare(item, index, plan, in_format))

        hwcs = F.map_threads(prepare, list(enumerate(items)))
        sizes = _padded_sizes([h.shape[:2] for h in hwcs], plan)
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
            return _labelled(i, items[i], lambda: _finish(hwcs[i], slots[i], sizes[i], plan, out_format))

        results = F.map_threads(finish, list(range(len(hwcs))))
        return batch if batch is not None else results

    # ---- the accelerator route ---------------------------------------------------------------
    def _prepare_torch(self, item: Any, plan: _Plan, in_format: str | None, device: Any) -> Any:
        """One item as a ``(C, H, W)`` tensor on ``device``, converted, resized and cropped there."""
        import torch

        if isinstance(item, _SOURCES):
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

    def _process_torch(self, items: list[Any], plan: _Plan, in_format: str | None, out_format: str, device: Any) -> Any:
        import torch

        if device is None:
            device = next(item.device for item in items if is_torch(item) and item.device.type != "cpu")
        device = torch.device(device)
        chws = [_labelled(i, item, lambda: self._prepare_torch(item, plan, in_format, device)) for i, item in enumerate(items)]
        sizes = _padded_sizes([tuple(t.shape[-2:]) for t in chws], plan)
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


def _padded_sizes(sizes: list[tuple[int, int]], plan: _Plan) -> list[tuple[int, int]]:
    """Each image's output height and width: its own, or the pad target when padding."""
    if not plan.do_pad:
        return [(int(h), int(w)) for h, w in sizes]
    target = plan.pad_size or (max(int(h) for h, _ in sizes), max(int(w) for _, w in sizes))
    for i, (h, w) in enumerate(sizes):
        if h > target[0] or w > target[1]:
            raise InputError(f"image {i} is {h}x{w}, larger than pad_size {target[0]}x{target[1]}", source=i)
    return [tuple(target)] * len(sizes)  # type: ignore[list-item]


def _finish(hwc: np.ndarray, slot: np.ndarray | None, size: tuple[int, int], plan: _Plan, out_format: str) -> np.ndarray:
    """Rescale + normalise one ``(H, W, C)`` image into ``slot`` (a view into the batch) or a new array."""
    height, width, channels = hwc.shape
    if slot is None:
        shape = (channels, *size) if out_format == CHANNELS_FIRST else (*size, channels)
        slot = np.zeros(shape, plan.out_dtype(hwc.dtype))
    view = slot.transpose(1, 2, 0) if out_format == CHANNELS_FIRST else slot
    view = view[:height, :width]
    scale = plan.rescale_factor if plan.do_rescale else None
    if plan.do_normalize:
        wanted = len(plan.image_mean) if isinstance(plan.image_mean, Sequence) else channels
        if wanted != channels and not plan.do_convert_rgb:
            raise InputError(
                f"the image has {channels} channel(s) but image_mean has {wanted} values; "
                "pass do_convert_rgb=True to convert grayscale, palette or RGBA images to RGB",
                source="image_mean",
            )
        F.rescale_normalize(hwc, scale, plan.image_mean, plan.image_std, out=view, input_data_format=CHANNELS_LAST)
    elif scale is not None:
        view[...] = F.rescale(hwc, scale)
    else:
        view[...] = hwc
    return slot


def _labelled(index: int, item: Any, work: Any) -> Any:
    """Run ``work``; errors name the item (its path when it has one, else its index)."""
    source = os.fspath(item) if isinstance(item, (str, os.PathLike)) else index
    try:
        return work()
    except InputError as exc:
        if exc.source in (None, "image", "size", "image_mean", "image_std"):
            raise InputError(f"image {index}: {exc}", source=source) from exc
        raise
    except FeatxError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise InputError(f"image {index} could not be processed: {exc}", source=source) from exc


def _flatten(images: Any, in_format: str | None) -> tuple[list[Any], str | None]:
    """A flat list of images and the input layout (inferred once, from the first array)."""
    if images is None:
        raise InputError("no images given", source="images")
    if isinstance(images, (list, tuple)):
        items: list[Any] = []
        for entry in images:
            if isinstance(entry, (list, tuple)):
                items.extend(entry)
            elif getattr(entry, "ndim", 0) == 4:
                in_format = in_format or infer_channel_format(entry)
                items.extend(entry)
            else:
                items.append(entry)
    elif getattr(images, "ndim", 0) == 4:
        in_format = in_format or infer_channel_format(images)
        items = list(images)
    else:
        items = [images]
    if not items:
        raise InputError("no images given (empty list)", source="images")
    first_format = in_format
    for index, item in enumerate(items):
        if isinstance(item, _SOURCES) or hasattr(item, "getbands"):
            continue
        if not (isinstance(item, np.ndarray) or is_torch(item)):
            raise InputError(
                f"image {index} is a {type(item).__name__}; expected a PIL image, NumPy array, torch tensor, "
                "path, URL or bytes",
                source=index,
            )
        if item.ndim == 3:
            if in_format is None:
                try:
                    in_format = infer_channel_format(item)
                except InputError as exc:
                    raise InputError(f"image {index}: {exc}", source="input_data_format") from None
            elif first_format is None and int(item.shape[0 if in_format == CHANNELS_FIRST else 2]) not in (1, 3, 4):
                raise InputError(
                    f"image {index} has shape {tuple(item.shape)}, which is not {in_format} like the first "
                    "image; pass input_data_format",
                    source="input_data_format",
                )
        elif item.ndim != 2:
            raise InputError(f"image {index} has shape {tuple(item.shape)}; expected 2 or 3 dims", source=index)
    return items, in_format


def _wants_torch(items: list[Any], device: Any) -> bool:
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

    def resize_plan(self, height: int, width: int, plan: _Plan) -> tuple[tuple[int, int], tuple[int, int] | None]:
        edge = (plan.size or {}).get("shortest_edge")
        if edge is None:
            raise ConfigError(f"ConvNextImageProcessor needs size with 'shortest_edge', got {plan.size}")
        if edge < 384:
            crop_pct = plan.extra.get("crop_pct")
            crop_pct = 224 / 256 if crop_pct is None else float(crop_pct)
            target = F.get_resize_output_size((height, width), int(edge / crop_pct), default_to_square=False)
            return target, (edge, edge)
        return (edge, edge), None
