"""The keyword arguments image processors take, as ``TypedDict`` classes (the reference's ``valid_kwargs``).

Each processor class names its set in ``valid_kwargs``; ``preprocess`` accepts exactly these keys
plus the processor's own options, and ``typing.Unpack[ImagesKwargs]`` types a wrapper's
``**kwargs``. Keys the PIL route has no use for (``disable_grouping``, ``image_seq_length``) are
accepted and ignored, as the reference's PIL backend does.
"""

from __future__ import annotations

from typing import Any, TypedDict

from ..enums import PILImageResampling

__all__ = ["ImagesKwargs", "ConvNextImageProcessorKwargs", "FuyuImagesKwargs", "kwarg_names"]

SizeLike = int | list[int] | tuple[int, ...] | dict[str, int] | None


class ImagesKwargs(TypedDict, total=False):
    """Options every image processor's ``preprocess`` / ``__call__`` accepts."""

    do_convert_rgb: bool | None
    do_resize: bool | None
    size: SizeLike
    default_to_square: bool | None
    crop_size: SizeLike
    resample: PILImageResampling | int | str | None
    do_rescale: bool | None
    rescale_factor: float | None
    do_normalize: bool | None
    image_mean: float | list[float] | tuple[float, ...] | None
    image_std: float | list[float] | tuple[float, ...] | None
    do_pad: bool | None
    pad_size: SizeLike
    do_center_crop: bool | None
    data_format: Any
    input_data_format: Any
    device: Any
    return_tensors: Any
    disable_grouping: bool | None
    image_seq_length: int | None


class ConvNextImageProcessorKwargs(ImagesKwargs, total=False):
    """ConvNeXt adds ``crop_pct``: the share of the image kept when ``shortest_edge`` < 384."""

    crop_pct: float


class FuyuImagesKwargs(ImagesKwargs, total=False):
    """Fuyu adds its patch size and the padding value / mode."""

    patch_size: dict[str, int] | None
    padding_value: float
    padding_mode: str


def kwarg_names(kwargs_class: type) -> frozenset[str]:
    """All keys of a ``TypedDict`` class, inherited ones included."""
    return frozenset(getattr(kwargs_class, "__required_keys__", set())) | frozenset(
        getattr(kwargs_class, "__optional_keys__", set())
    )
