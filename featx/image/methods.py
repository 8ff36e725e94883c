"""The reference's public per-image methods, shared by every featx image processor.

``resize``, ``center_crop``, ``rescale``, ``normalize``, ``pad``, ``convert_to_rgb`` and
``process_image`` take the reference's arguments and give the numbers of its
PIL backend (``XImageProcessorPil``). They follow the reference base class's layout contract:
``input_data_format`` is inferred when not given (an ambiguous shape is an error, where the
reference guesses) and the result keeps the input's layout unless ``data_format`` says otherwise.
The reference's PIL backend instead takes every image as channels-first; for channels-first
input both agree. NumPy arrays, torch tensors and PIL images (read as ``(H, W, C)``) are accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError
from . import functional as F
from .kwargs import ImagesKwargs
from .layout import (
    CHANNELS_FIRST,
    CHANNELS_LAST,
    PILImageResampling,
    channel_format,
    image_hw,
    is_torch,
    layout_of,
    to_channels_first,
    to_channels_last,
)
from .options import as_size_mapping, size_dict

__all__ = ["ImageProcessingMethods", "to_layout"]


def _is_pil(image: Any) -> bool:
    return hasattr(image, "getbands")


def _as_array(image: Any) -> Any:
    """PIL images become ``(H, W[, C])`` arrays; arrays and tensors pass through."""
    if _is_pil(image):
        return np.asarray(image)
    if isinstance(image, np.ndarray) or is_torch(image):
        return image
    raise InputError(f"expected a NumPy array, torch tensor or PIL image, got {type(image).__name__}", source="image")


def _layout(image: Any, input_data_format: Any, pil: bool = False) -> str | None:
    """The input's layout: given, ``channels_last`` for a PIL image, else inferred; ``None`` for 2-D."""
    if image.ndim == 2:
        return None
    if image.ndim != 3:
        raise InputError(f"expected one image with 2 or 3 dims, got shape {tuple(image.shape)}", source="image")
    if pil:
        return CHANNELS_LAST
    return layout_of(image, input_data_format)


def to_layout(image: Any, fmt: str | None, data_format: Any) -> Any:
    """``image`` (in layout ``fmt``) in ``data_format``; ``None`` keeps it as it is."""
    target = channel_format(data_format, "data_format")
    if target is None or fmt is None or target == fmt or image.ndim == 2:
        return image
    return to_channels_first(image, fmt) if target == CHANNELS_FIRST else to_channels_last(image, fmt)


def _crop_hw(size: Any) -> tuple[int, int]:
    size = as_size_mapping(size)
    if isinstance(size, Mapping):
        if size.get("height") is None or size.get("width") is None:
            raise InputError(f"size must have 'height' and 'width', got {dict(size)}", source="size")
        return int(size["height"]), int(size["width"])
    resolved = size_dict(size, param_name="size")
    assert resolved is not None
    return resolved["height"], resolved["width"]


class ImageProcessingMethods:
    """Mixed into the processors, before `featx.config.ImageProcessingMixin` (which adds saving,
    loading and ``fetch_images``)."""

    valid_kwargs: ClassVar[type] = ImagesKwargs

    @property
    def backend(self) -> str:
        """``"pil"``: featx gives the numbers of the reference's PIL backend."""
        return "pil"

    def to_dict(self) -> dict[str, Any]:
        """Options as stored, with the reference's Python types (tuples, ``PILImageResampling``), less
        the options that are ``None`` where the class default is ``None``, as the reference leaves out."""
        out: dict[str, Any] = super().to_dict()  # type: ignore[misc]
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
            if f.init and getattr(self, f.name) is None and default is None:
                out.pop(f.name, None)
        return out

    @staticmethod
    def _array_and_layout(image: Any, input_data_format: Any) -> tuple[Any, str | None]:
        """``(array, layout)`` of one image: PIL images are ``channels_last``, others given or inferred."""
        pil = _is_pil(image)
        array = _as_array(image)
        return array, _layout(array, input_data_format, pil)

    # ---- inputs --------------------------------------------------------------------------------
    def convert_to_rgb(self, image: Any, input_data_format: Any = None) -> Any:
        """Three channels with transparency composited onto white; a PIL image comes back as ``(H, W, 3)``."""
        if _is_pil(image):
            return np.array(F.convert_rgb(image))
        return F.convert_rgb(image, input_data_format=input_data_format)

    def process_image(self, image: Any, do_convert_rgb: bool | None = None, input_data_format: Any = None, **kwargs: Any) -> np.ndarray:
        """One PIL image, array or tensor as a channels-first NumPy array (RGB-converted if asked)."""
        pil = _is_pil(image)
        if is_torch(image):
            image = image.detach().cpu().numpy()
        elif not (pil or isinstance(image, np.ndarray)):
            raise InputError(f"unsupported image type {type(image).__name__}", source="image")
        if do_convert_rgb:
            image = self.convert_to_rgb(image, input_data_format=CHANNELS_LAST if pil else input_data_format)
        elif pil:
            image = np.array(image)
        if image.ndim == 2:
            return image[None]
        fmt = _layout(image, input_data_format, pil=pil)
        return np.asarray(to_channels_first(image, fmt))

    # ---- per-image operations ------------------------------------------------------------------
    def resize(
        self,
        image: Any,
        size: Any,
        resample: Any = None,
        reducing_gap: int | None = None,
        data_format: Any = None,
        input_data_format: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Resize to ``size`` (a size dict or ``SizeDict``: height+width, shortest_edge[+longest_edge],
        max_height+max_width; an int or ``(h, w)``). ``resample`` defaults to bilinear, as in the reference."""
        pil = _is_pil(image)
        image = _as_array(image)
        fmt = _layout(image, input_data_format, pil)
        size = as_size_mapping(size)
        square = getattr(type(self), "default_to_square", True)
        target = F.get_resize_output_size(image_hw(image, fmt), size, default_to_square=square)
        return self._resize_to(image, target, resample, fmt, data_format, reducing_gap)

    def _resize_to(
        self, image: Any, target: tuple[int, int], resample: Any, fmt: str | None, data_format: Any, reducing_gap: int | None = None
    ) -> Any:
        code = F.parse_resample(PILImageResampling.BILINEAR if resample is None else resample)
        if reducing_gap is not None:
            out = _resize_reducing_gap(image, target, code, fmt, reducing_gap)
        else:
            out = F.resize(image, target, code, input_data_format=fmt)
        return to_layout(out, fmt, data_format)

    def center_crop(self, image: Any, size: Any, data_format: Any = None, input_data_format: Any = None, **kwargs: Any) -> Any:
        """Crop the centre ``size["height"] x size["width"]``; a smaller image is zero-padded first."""
        pil = _is_pil(image)
        image = _as_array(image)
        fmt = _layout(image, input_data_format, pil)
        return to_layout(F.center_crop(image, _crop_hw(size), input_data_format=fmt), fmt, data_format)

    def rescale(self, image: Any, scale: float, data_format: Any = None, input_data_format: Any = None, **kwargs: Any) -> Any:
        """``image * scale`` in float64, returned as ``dtype`` (float32 unless ``dtype=`` says otherwise)."""
        pil = _is_pil(image)
        image = _as_array(image)
        dtype = kwargs.get("dtype", np.float32)
        if is_torch(image) or np.dtype(dtype) == np.float32:
            out = F.rescale(image, scale)
        else:
            out = (np.asarray(image).astype(np.float64) * scale).astype(dtype)
        if data_format is None:
            return out
        return to_layout(out, _layout(image, input_data_format, pil), data_format)

    def normalize(
        self, image: Any, mean: Any, std: Any, data_format: Any = None, input_data_format: Any = None, **kwargs: Any
    ) -> Any:
        """``(image - mean) / std`` per channel; integers become float32, float dtypes are kept."""
        pil = _is_pil(image)
        image = _as_array(image)
        fmt = _layout(image, input_data_format, pil)
        return to_layout(F.normalize(image, mean, std, input_data_format=fmt), fmt, data_format)

    def pad(
        self,
        images: Any,
        pad_size: Any = None,
        fill_value: float = 0,
        padding_mode: str = "constant",
        return_mask: bool = False,
        input_data_format: Any = CHANNELS_FIRST,
        **kwargs: Any,
    ) -> Any:
        """Pad images bottom/right to ``pad_size`` (default: the largest height and width among them).

        ``images``: channels-first images, as in the reference (or say ``input_data_format``); a
        list gives a list, one image gives one. ``return_mask``: also int64 ``(H, W)`` masks, 1 on
        the original pixels.
        """
        single = not isinstance(images, (list, tuple))
        batch = [_as_array(images)] if single else [_as_array(im) for im in images]
        fmts = [_layout(im, input_data_format) for im in batch]
        sizes = [image_hw(im, fmt) for im, fmt in zip(batch, fmts)]
        if pad_size is not None:
            target = _crop_hw(size_dict(pad_size, param_name="pad_size"))
        elif sizes:
            target = (max(h for h, _ in sizes), max(w for _, w in sizes))
        else:
            return ([], []) if return_mask else []
        padded, masks = [], []
        for index, (im, fmt, (h, w)) in enumerate(zip(batch, fmts, sizes)):
            if h > target[0] or w > target[1]:
                raise InputError(f"image {index} is {h}x{w}, larger than pad_size {target[0]}x{target[1]}", source="pad_size")
            if (h, w) != target:
                value = fill_value if fill_value is not None else 0
                im = F.pad(im, ((0, target[0] - h), (0, target[1] - w)), value, mode=padding_mode, input_data_format=fmt)
            padded.append(im)
            mask = np.zeros(target, np.int64)
            mask[:h, :w] = 1
            masks.append(mask)
        if single:
            return (padded[0], masks[0]) if return_mask else padded[0]
        return (padded, masks) if return_mask else padded


def _resize_reducing_gap(image: Any, size: tuple[int, int], code: int, fmt: str | None, gap: float) -> Any:
    """The reference's resize with PIL's ``reducing_gap`` (a box reduction first): through Pillow itself."""
    from PIL import Image

    torch_in = is_torch(image)
    arr = image.detach().cpu().numpy() if torch_in else np.asarray(image)
    hwc = arr[..., None] if arr.ndim == 2 else to_channels_last(arr, fmt)
    u8, scaled = F.to_uint8_for_pil(hwc)
    pil = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)
    out = np.array(pil.resize((size[1], size[0]), code, reducing_gap=gap))
    out = out[..., None] if out.ndim == 2 else out
    if scaled:
        out = (out.astype(np.float64) * (1 / 255)).astype(np.float32)
    out = out[..., 0] if arr.ndim == 2 else (out if fmt == CHANNELS_LAST else to_channels_first(out, CHANNELS_LAST))
    if torch_in:
        import torch

        return torch.from_numpy(np.ascontiguousarray(out)).to(image.device)
    return out

