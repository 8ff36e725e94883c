"""The reference's public per-image methods on featx's processors: ``resize``, ``center_crop``,
``rescale``, ``normalize``, ``pad``, ``convert_to_rgb``, ``process_image``, ``fetch_images`` (from
`featx.config.ImageProcessingMixin`), ``valid_kwargs``, ConvNeXt's and Fuyu's ``resize``. Numbers against the reference's PIL backend
(which takes channels-first images) and its layout-aware functions in ``image_transforms``."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest
import torch
from PIL import Image

import featx.image.processors as P
from featx.errors import InputError
from featx.image.fuyu import FuyuImageProcessor
from featx.image.kwargs import ImagesKwargs

transformers = pytest.importorskip("transformers")
from transformers import image_transforms as T  # noqa: E402
from transformers.image_utils import SizeDict  # noqa: E402

RNG = np.random.default_rng(5)
CHW_U8 = RNG.integers(0, 256, (3, 19, 27), dtype=np.uint8)
INPUTS = {
    "chw_u8": CHW_U8,
    "chw_f32": CHW_U8.astype(np.float32) / 255,
    "chw_f64_int": CHW_U8.astype(np.float64),
}
SIZES = [
    {"height": 11, "width": 13},
    {"shortest_edge": 9},
    {"shortest_edge": 9, "longest_edge": 12},
    {"max_height": 10, "max_width": 9},
    {"height": 40, "width": 33},
]


def same(a, b) -> None:
    a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)


def layouts(chw: np.ndarray):
    """(featx input, input_data_format, from featx output to channels-first)."""
    yield chw, None, lambda x: x
    yield chw.transpose(1, 2, 0), None, lambda x: np.asarray(x).transpose(2, 0, 1)
    yield chw.transpose(1, 2, 0), "channels_last", lambda x: np.asarray(x).transpose(2, 0, 1)
    yield torch.from_numpy(np.ascontiguousarray(chw)), "channels_first", lambda x: x.numpy()


@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "+".join(s))
@pytest.mark.parametrize("resample", [None, 0, 3, Image.Resampling.LANCZOS])
def test_resize(kind, size, resample):
    ours, ref = P.ViTImageProcessor(), transformers.ViTImageProcessorPil()
    chw = INPUTS[kind]
    want = ref.resize(chw, SizeDict(**size), resample=resample)
    for image, fmt, back in layouts(chw):
        same(back(ours.resize(image, size, resample=resample, input_data_format=fmt)), want)
    # SizeDict works too, and data_format converts the layout
    same(ours.resize(chw, SizeDict(**size), resample), want)
    same(ours.resize(chw.transpose(1, 2, 0), size, resample, data_format="channels_first"), want)


def test_resize_reducing_gap_and_int_sizes():
    ours, ref = P.ViTImageProcessor(), transformers.ViTImageProcessorPil()
    for chw in (INPUTS["chw_u8"], INPUTS["chw_f32"]):
        same(ours.resize(chw, {"height": 6, "width": 8}, 1, reducing_gap=2.0), ref.resize(chw, SizeDict(height=6, width=8), 1, reducing_gap=2.0))
    # an int is a square for ViT and a shortest edge for CLIP (default_to_square), as get_size_dict reads it
    assert ours.resize(CHW_U8, 10).shape == (3, 10, 10)
    assert P.CLIPImageProcessor().resize(CHW_U8, 10).shape == (3, 10, 14)
    with pytest.raises(InputError, match="size"):
        ours.resize(CHW_U8, {"width": 3})


def test_resize_accepts_pil_and_2d():
    ours = P.ViTImageProcessor()
    hwc = CHW_U8.transpose(1, 2, 0)
    out = ours.resize(Image.fromarray(hwc), {"height": 9, "width": 7})
    same(out, T.resize(hwc, (9, 7), resample=2, input_data_format="channels_last"))
    gray = CHW_U8[0]
    same(ours.resize(gray, {"height": 9, "width": 7}), ours.resize(gray[None], {"height": 9, "width": 7})[0])


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_center_crop_rescale_normalize(kind):
    ours, ref = P.ViTImageProcessor(), transformers.ViTImageProcessorPil()
    chw = INPUTS[kind]
    mean, std = [0.1, 0.2, 0.3], [0.9, 0.5, 0.25]
    for crop in ({"height": 8, "width": 9}, {"height": 30, "width": 9}, {"height": 20, "width": 40}):
        want = ref.center_crop(chw, SizeDict(**crop))
        for image, fmt, back in layouts(chw):
            same(back(ours.center_crop(image, crop, input_data_format=fmt)), want)
    for image, fmt, back in layouts(chw):
        same(back(ours.rescale(image, 1 / 255, input_data_format=fmt)), ref.rescale(chw, 1 / 255))
        same(back(ours.normalize(image, mean, std, input_data_format=fmt)), ref.normalize(chw, mean, std))
        same(back(ours.normalize(image, 0.5, 0.25, input_data_format=fmt)), ref.normalize(chw, 0.5, 0.25))
    # the base class's layout arguments, checked against the reference's layout-aware functions
    hwc = chw.transpose(1, 2, 0)
    same(ours.rescale(hwc, 0.5, data_format="channels_first"), T.rescale(hwc, 0.5, data_format="channels_first"))
    same(ours.rescale(chw, 0.5, dtype=np.float64), T.rescale(chw, 0.5, dtype=np.float64))
    same(ours.normalize(hwc, mean, std, data_format="channels_first"), T.normalize(hwc, mean, std, data_format="channels_first"))
    same(ours.center_crop(hwc, {"height": 5, "width": 6}, data_format="channels_first"), T.center_crop(hwc, (5, 6), data_format="channels_first"))
    with pytest.raises(ValueError, match="image_mean"):
        ours.normalize(chw, [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(InputError, match="input_data_format"):
        ours.normalize(np.zeros((3, 5, 3), np.float32), mean, std)  # ambiguous: say which


def test_float16_is_kept_by_normalize():
    ours, ref = P.ViTImageProcessor(), transformers.ViTImageProcessorPil()
    chw = INPUTS["chw_f32"].astype(np.float16)
    same(ours.normalize(chw, 0.5, 0.5), ref.normalize(chw, 0.5, 0.5))


def test_pad():
    ours, ref = P.ViTImageProcessor(), transformers.ViTImageProcessorPil()
    images = [CHW_U8, CHW_U8[:, :7, :20], INPUTS["chw_f32"][:, :3, :4]]
    for kw, ref_kw in (({}, {}), ({"pad_size": {"height": 22, "width": 30}}, {"pad_size": SizeDict(height=22, width=30)})):
        for extra in ({}, {"fill_value": 7}, {"padding_mode": "reflect"}, {"padding_mode": "symmetric"}, {"padding_mode": "edge"}):
            got, got_masks = ours.pad(images, return_mask=True, **kw, **extra)
            want, want_masks = ref.pad(images, return_mask=True, **ref_kw, **extra)
            for a, b in zip(got + got_masks, want + want_masks):
                same(a, b)
    assert isinstance(ours.pad(images), list)
    with pytest.raises(InputError, match="pad_size"):
        ours.pad(images, pad_size={"height": 5, "width": 5})
    hwc = [im.transpose(1, 2, 0) for im in images[:2]]
    for a, b in zip(ours.pad(hwc, input_data_format="channels_last"), ref.pad(images[:2])):
        same(a.transpose(2, 0, 1), b)


def test_convert_to_rgb_and_process_image():
    ours, ref = P.CLIPImageProcessor(), transformers.CLIPImageProcessorPil()
    rgba = RNG.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    pil = Image.fromarray(rgba, "RGBA")
    same(ours.convert_to_rgb(pil), ref.convert_to_rgb(pil))
    same(ours.convert_to_rgb(rgba), ref.convert_to_rgb(rgba))
    same(ours.convert_to_rgb(rgba.transpose(2, 0, 1), input_data_format="channels_first"), ref.convert_to_rgb(rgba.transpose(2, 0, 1), input_data_format="channels_first"))
    for image in (pil, rgba, torch.from_numpy(rgba), Image.fromarray(rgba[..., 0])):
        for do_convert_rgb in (True, False):
            same(ours.process_image(image, do_convert_rgb=do_convert_rgb), ref.process_image(image, do_convert_rgb=do_convert_rgb))


def test_fetch_images(tmp_path):
    ours, ref = P.ViTImageProcessor(), transformers.ViTImageProcessorPil()
    rgb = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    got, want = ours.fetch_images(str(path)), ref.fetch_images(str(path))
    assert isinstance(got, Image.Image) and got.mode == want.mode and np.array_equal(np.array(got), np.array(want))
    nested = ours.fetch_images([[str(path), path], [rgb]])
    assert isinstance(nested[0][1], Image.Image) and nested[1][0] is rgb
    with pytest.raises(InputError, match="image_url_or_urls"):
        ours.fetch_images(3.5)


def test_convnext_resize():
    ours, ref = P.ConvNextImageProcessor(), transformers.ConvNextImageProcessorPil()
    for chw in (INPUTS["chw_u8"], INPUTS["chw_f32"]):
        for edge in (12, 400):
            for crop_pct in (224 / 256, 0.5):
                want = ref.resize(chw, SizeDict(shortest_edge=edge), 3, crop_pct=crop_pct)
                same(ours.resize(chw, {"shortest_edge": edge}, 3, crop_pct=crop_pct), want)
                same(ours.resize(chw.transpose(1, 2, 0), {"shortest_edge": edge}, 3, crop_pct=crop_pct, data_format="channels_first"), want)
    with pytest.raises(InputError, match="shortest_edge"):
        ours.resize(CHW_U8, {"height": 5, "width": 5})


def test_fuyu_resize_only_downscales():
    ours, ref = FuyuImageProcessor(), transformers.FuyuImageProcessorPil()
    for chw in (INPUTS["chw_u8"], INPUTS["chw_f32"]):
        for size in ({"height": 10, "width": 12}, {"height": 40, "width": 40}, {"height": 19, "width": 5}):
            want = ref.resize(chw, SizeDict(**size))
            same(ours.resize(chw, size), want)
            same(ours.resize(chw.transpose(1, 2, 0), size).transpose(2, 0, 1), want)
    same(ours.resize(CHW_U8, {"height": 10, "width": 12}, resample=3), ref.resize(CHW_U8, SizeDict(height=10, width=12), resample=3))
    assert ours.resize(CHW_U8, {"height": 1080, "width": 1920}) is CHW_U8  # fits: unchanged
    padded = ours.pad([CHW_U8], pad_size={"height": 30, "width": 30}, fill_value=1)[0]
    same(padded, transformers.FuyuImageProcessorPil().pad([CHW_U8], pad_size=SizeDict(height=30, width=30), fill_value=1)[0])


@pytest.mark.parametrize("cls", [P.ViTImageProcessor, P.ConvNextImageProcessor, FuyuImageProcessor])
def test_valid_kwargs(cls):
    ref_cls = getattr(transformers, cls.__name__ + "Pil")
    ours, ref = cls.valid_kwargs, ref_cls.valid_kwargs
    assert ours.__name__ == ref.__name__ and typing.is_typeddict(ours)
    assert set(ours.__optional_keys__) == set(ref.__optional_keys__)
    assert issubclass(ours, dict) and ImagesKwargs.__optional_keys__ <= ours.__optional_keys__
    # every key is accepted by the call; keys with no effect on the PIL route are ignored
    proc = cls()
    img = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    proc(img, disable_grouping=True, image_seq_length=3)
    with pytest.raises(TypeError, match="unexpected"):
        proc(img, not_a_kwarg=1)


def test_public_methods_and_signatures():
    ours, ref = P.ViTImageProcessor(), transformers.ViTImageProcessorPil()
    for name in ("resize", "center_crop", "rescale", "normalize", "pad", "fetch_images", "convert_to_rgb", "process_image", "preprocess"):
        assert callable(getattr(ours, name)), name
        ours_params = list(inspect.signature(getattr(ours, name)).parameters)
        ref_params = [p for p in inspect.signature(getattr(ref, name)).parameters if p not in ("args", "kwargs")]
        assert ours_params[: len(ref_params)] == ref_params or set(ref_params) <= set(ours_params) | {"image_like_kwargs"}, name
    assert ours.backend == ref.backend == "pil"
    assert "images" in inspect.signature(ours.preprocess).parameters
    assert "images" in inspect.signature(FuyuImageProcessor().preprocess).parameters
