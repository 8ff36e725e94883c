"""``ImageFeatureExtractionMixin``: the reference's legacy image utilities (``transformers.image_utils``).

Old feature extractors and remote code call these helpers; they keep the reference's signatures,
rules and numbers, quirks included: the channel axis of an array counts as first when its first
dimension is 1 or 3 (no inference, no error), ``resize`` hands a ``(w, h)`` pair straight to PIL
and returns a PIL image, ``normalize`` casts ``mean``/``std`` to the image's dtype.
One deliberate difference: ``center_crop`` of an image smaller than the crop by an odd number of
pixels returns the requested size (the reference returns one row/column short); every pixel the
reference does return is the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from . import functional as F
from .layout import CHANNELS_FIRST, CHANNELS_LAST, PILImageResampling, is_torch, to_channels_first, to_channels_last

__all__ = ["ImageFeatureExtractionMixin"]


def _is_pil(image: Any) -> bool:
    from PIL import Image

    return isinstance(image, Image.Image)


def _first_is_channel(image: Any) -> bool:
    """The reference's rule for arrays: channels-first when the first dimension is 1 or 3."""
    return image.ndim == 3 and int(image.shape[0]) in (1, 3)


class ImageFeatureExtractionMixin:
    """Utilities for preparing image features: PIL images, NumPy arrays and torch tensors."""

    def _ensure_format_supported(self, image: Any) -> None:
        if not (_is_pil(image) or isinstance(image, np.ndarray) or is_torch(image)):
            raise InputError(
                f"got a {type(image).__name__}; only PIL.Image.Image, np.ndarray and torch.Tensor are supported",
                source="image",
            )

    def to_pil_image(self, image: Any, rescale: bool | None = None) -> Any:
        """A PIL image; arrays in ``(C, H, W)`` (C 1 or 3) are moved to channels-last, and scaled by 255
        first when ``rescale`` (default: for floating arrays). The cast to uint8 truncates."""
        from PIL import Image

        self._ensure_format_supported(image)
        if is_torch(image):
            image = image.detach().cpu().numpy()
        if not isinstance(image, np.ndarray):
            return image
        if rescale is None:
            rescale = isinstance(image.flat[0], np.floating)
        if _first_is_channel(image):
            image = to_channels_last(image, CHANNELS_FIRST)
        if rescale:
            image = image * 255
        return Image.fromarray(image.astype(np.uint8))

    def convert_rgb(self, image: Any) -> Any:
        """``image.convert("RGB")`` for a PIL image (alpha dropped); arrays and tensors unchanged."""
        self._ensure_format_supported(image)
        if not _is_pil(image):
            return image
        return image.convert("RGB")

    def rescale(self, image: Any, scale: float | int) -> Any:
        """``image * scale`` in NumPy's / torch's own type promotion."""
        self._ensure_format_supported(image)
        return image * scale

    def to_numpy_array(self, image: Any, rescale: bool | None = None, channel_first: bool = True) -> np.ndarray:
        """A NumPy array, scaled to [0, 1] as float32 when ``rescale`` (default: for integer input) and,
        when ``channel_first``, with a 3-D image's last axis moved first (whatever its layout)."""
        self._ensure_format_supported(image)
        if _is_pil(image):
            image = np.array(image)
        if is_torch(image):
            image = image.detach().cpu().numpy()
        if rescale is None:
            rescale = isinstance(image.flat[0], np.integer)
        if rescale:
            image = self.rescale(image.astype(np.float32), 1 / 255.0)
        if channel_first and image.ndim == 3:
            image = to_channels_first(image, CHANNELS_LAST)
        return image

    def expand_dims(self, image: Any) -> Any:
        """A leading axis added to an array or tensor; PIL images are returned as they are."""
        self._ensure_format_supported(image)
        if _is_pil(image):
            return image
        return image.unsqueeze(0) if is_torch(image) else np.expand_dims(image, axis=0)

    def normalize(self, image: Any, mean: Any, std: Any, rescale: bool = False) -> Any:
        """``(image - mean) / std``, per channel on the first axis when it is 1 or 3 long, else on the last.

        A PIL image becomes a float32 ``(C, H, W)`` array in [0, 1] first; ``rescale`` divides arrays
        and tensors by 255 first. ``mean``/``std`` are cast to a NumPy image's dtype, as in the reference.
        """
        self._ensure_format_supported(image)
        if _is_pil(image):
            image = self.to_numpy_array(image, rescale=True)
        elif rescale:
            image = self.rescale(image.float() if is_torch(image) else image.astype(np.float32), 1 / 255.0)
        if isinstance(image, np.ndarray):
            mean = mean if isinstance(mean, np.ndarray) else np.array(mean).astype(image.dtype)
            std = std if isinstance(std, np.ndarray) else np.array(std).astype(image.dtype)
        else:
            import torch

            mean = mean if isinstance(mean, torch.Tensor) else torch.as_tensor(mean)
            std = std if isinstance(std, torch.Tensor) else torch.as_tensor(std)
        if _first_is_channel(image):
            return (image - mean[:, None, None]) / std[:, None, None]
        return (image - mean) / std

    def resize(
        self, image: Any, size: Any, resample: Any = None, default_to_square: bool = True, max_size: int | None = None
    ) -> Any:
        """A resized PIL image (arrays go through `to_pil_image` first).

        ``size``: an int (a square, or with ``default_to_square=False`` the shorter edge, the longer
        one floored and capped by ``max_size``), or a pair handed to PIL as ``(width, height)``.
        ``resample`` defaults to bilinear. An image whose shorter edge already matches is returned.
        """
        resample = PILImageResampling.BILINEAR if resample is None else resample
        self._ensure_format_supported(image)
        if not _is_pil(image):
            image = self.to_pil_image(image)
        if isinstance(size, list):
            size = tuple(size)
        if isinstance(size, int) or len(size) == 1:
            edge = size if isinstance(size, int) else size[0]
            if default_to_square:
                size = (edge, edge)
            else:
                width, height = image.size
                if min(width, height) == edge:
                    return image
                if max_size is not None and max_size <= edge:
                    raise InputError(
                        f"max_size = {max_size} must be strictly greater than the requested size for the smaller edge "
                        f"size = {edge}",
                        source="max_size",
                    )
                new_h, new_w = F.get_resize_output_size((height, width), edge, default_to_square=False, max_size=max_size)
                size = (new_w, new_h)
        return image.resize(size, resample=resample)

    def center_crop(self, image: Any, size: Any) -> Any:
        """The centre ``size`` = ``(height, width)`` (or an int). PIL images are cropped by PIL (zeros
        outside); arrays and tensors come back channels-first, zero-padded around when too small."""
        self._ensure_format_supported(image)
        if isinstance(size, list):
            size = tuple(size)
        if not isinstance(size, tuple):
            size = (size, size)
        crop_h, crop_w = int(size[0]), int(size[1])
        if _is_pil(image):
            top, left = (image.size[1] - crop_h) // 2, (image.size[0] - crop_w) // 2
            return image.crop((left, top, left + crop_w, top + crop_h))
        if image.ndim == 2:
            image = self.expand_dims(image)
        if not _first_is_channel(image):
            image = to_channels_first(image, CHANNELS_LAST)
        height, width = int(image.shape[-2]), int(image.shape[-1])
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        if pad_h or pad_w:  # the reference's placement: the odd pixel goes bottom/right
            padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
            image = F.pad(image, padding, 0, input_data_format=CHANNELS_FIRST)
        return F.center_crop(image, (crop_h, crop_w), input_data_format=CHANNELS_FIRST)

    def flip_channel_order(self, image: Any) -> Any:
        """RGB <-> BGR on the first axis; a PIL image becomes a float32 ``(C, H, W)`` array first."""
        self._ensure_format_supported(image)
        if _is_pil(image):
            image = self.to_numpy_array(image)
        if is_torch(image):
            return image.flip(0)
        return image[::-1, :, :]

    def rotate(
        self,
        image: Any,
        angle: float,
        resample: Any = None,
        expand: int | bool = 0,
        center: Any = None,
        translate: Any = None,
        fillcolor: Any = None,
    ) -> Any:
        """A copy rotated ``angle`` degrees counter-clockwise about its centre, as a PIL image."""
        resample = PILImageResampling.NEAREST if resample is None else resample
        self._ensure_format_supported(image)
        if not _is_pil(image):
            image = self.to_pil_image(image)
        return image.rotate(angle, resample=resample, expand=expand, center=center, translate=translate, fillcolor=fillcolor)
