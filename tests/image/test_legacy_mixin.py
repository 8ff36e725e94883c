"""``ImageFeatureExtractionMixin``: the reference's legacy utilities, same signatures and results
(``transformers.image_utils.ImageFeatureExtractionMixin``), PIL / NumPy / torch inputs."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from featx.errors import InputError
from featx.image.mixin import ImageFeatureExtractionMixin

image_utils = pytest.importorskip("transformers.image_utils")
RefMixin = image_utils.ImageFeatureExtractionMixin

RNG = np.random.default_rng(11)
HWC = RNG.integers(0, 256, (7, 8, 3), dtype=np.uint8)
CHW_F = RNG.random((3, 7, 8))
INPUTS = {
    "hwc_u8": HWC,
    "chw_f64": CHW_F,
    "hwc_f32": HWC.astype(np.float32) / 255,
    "pil": Image.fromarray(HWC),
    "pil_rgba": Image.fromarray(RNG.integers(0, 256, (7, 8, 4), dtype=np.uint8), "RGBA"),
    "torch_chw": torch.from_numpy(CHW_F),
}
ours, ref = ImageFeatureExtractionMixin(), RefMixin()


def same(a, b) -> None:
    if isinstance(b, Image.Image):
        assert isinstance(a, Image.Image) and (a.mode, a.size) == (b.mode, b.size)
        np.testing.assert_array_equal(np.array(a), np.array(b))
        return
    assert type(a) is type(b)
    a, b = (x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in (a, b))
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)


def both(name: str, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # uint8 mean/std casts divide by zero in both
        return getattr(ours, name)(*args, **kwargs), getattr(ref, name)(*args, **kwargs)


def test_same_signatures():
    for name in ("to_pil_image", "to_numpy_array", "convert_rgb", "normalize", "resize", "center_crop", "flip_channel_order", "expand_dims", "rescale", "rotate"):
        assert list(inspect.signature(getattr(ours, name)).parameters) == list(inspect.signature(getattr(ref, name)).parameters), name


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_conversions(kind):
    image = INPUTS[kind]
    if kind != "pil_rgba":
        same(*both("to_pil_image", image))
        same(*both("to_pil_image", image, rescale=False))
    for kw in ({}, {"rescale": True}, {"rescale": False}, {"channel_first": False}):
        same(*both("to_numpy_array", image, **kw))
    same(*both("convert_rgb", image))
    if not isinstance(image, Image.Image):
        same(*both("expand_dims", image))
        same(*both("rescale", image, 0.5))
    else:
        assert ours.expand_dims(image) is image


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_normalize(kind):
    image = INPUTS[kind]
    if kind == "pil_rgba":
        return  # 4 channels: both fail on a 3-value mean
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.3, 0.1]
    same(*both("normalize", image, mean, std))
    same(*both("normalize", image, np.array(mean), np.array(std)))
    if not isinstance(image, Image.Image):
        same(*both("normalize", image, mean, std, rescale=True))


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_resize_and_rotate(kind):
    image = INPUTS[kind]
    if kind == "pil_rgba" or (kind == "torch_chw"):
        image = image if kind == "pil_rgba" else image.float()
    for args, kw in (((5,), {}), ((5,), {"default_to_square": False}), ((5,), {"default_to_square": False, "max_size": 6}),
                     (((4, 9),), {"resample": 3}), (([11],), {"default_to_square": False}), ((7,), {"default_to_square": False})):  # fmt: skip
        same(*both("resize", image, *args, **kw))
    same(*both("rotate", image, 30))
    same(*both("rotate", image, 45, resample=Image.Resampling.BILINEAR, expand=1, fillcolor=None))
    with pytest.raises(ValueError, match="max_size"):
        ours.resize(image, 5, default_to_square=False, max_size=4)


@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("size", [(4, 6), 5, (7, 12), (9, 10), (11, 3), (2, 2)])
def test_center_crop(kind, size):
    same(*both("center_crop", INPUTS[kind], size))


@pytest.mark.parametrize("size", [(8, 8), (10, 9)])
def test_center_crop_odd_padding_returns_the_requested_size(size):
    """The reference returns a row/column short here; featx the requested size, with the same pixels."""
    image = INPUTS["chw_f64"]
    got, want = both("center_crop", image, size)
    assert got.shape == (3, *size)
    np.testing.assert_array_equal(got[:, : want.shape[1], : want.shape[2]], want)
    assert not got[:, want.shape[1] :].any() and not got[:, :, want.shape[2] :].any()


def test_flip_channel_order():
    for kind in ("chw_f64", "pil"):
        same(*both("flip_channel_order", INPUTS[kind]))
    flipped = ours.flip_channel_order(INPUTS["torch_chw"])  # the reference cannot slice a tensor backwards
    assert torch.equal(flipped, INPUTS["torch_chw"].flip(0))


def test_unsupported_input():
    with pytest.raises(InputError, match="image"):
        ours.to_pil_image([1, 2, 3])
    with pytest.raises(ValueError):
        ours.normalize("x", 0, 1)
