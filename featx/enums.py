"""Enums shared by processors: `PILImageResampling` (the reference's name) and `TensorType`.

``PILImageResampling`` is ``PIL.Image.Resampling`` itself, as ``transformers.image_utils``
defines it: an ``IntEnum``, so ``PILImageResampling.BICUBIC == 3`` and JSON files store ints.
"""

from __future__ import annotations

from PIL import Image

from .batch import TensorType

__all__ = ["PILImageResampling", "TensorType"]

PILImageResampling = Image.Resampling
