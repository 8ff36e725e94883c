"""LlavaNextImageProcessor vs the reference's PIL backend: pixel_values (tiles + base view) and
image_sizes, over many sizes, layouts and options."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("transformers")

from featx.errors import ConfigError
from featx.image.llava_next import LlavaNextImageProcessor, patch_output_size
from featx.registry import AutoImageProcessor

PINS = [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]]
BASE = dict(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}, image_grid_pinpoints=PINS)
SIZES = [(30, 40), (50, 20), (28, 28), (100, 33), (7, 90), (61, 61), (1, 1), (300, 17), (57, 113)]


def _pair(**options):
    opts = {**BASE, **options}
    return tf.LlavaNextImageProcessorPil(**opts), LlavaNextImageProcessor(**opts)


def _compare(ref_out, out):
    assert set(out.keys()) == set(ref_out.keys())
    a, b = ref_out["pixel_values"], out["pixel_values"]
    assert type(a) is type(b)
    if isinstance(a, list) or a.dtype == object:
        assert len(a) == len(b)
        for x, y in zip(a, b):
            x, y = np.asarray(x), np.asarray(y)
            assert x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y)
    else:
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b)
    assert np.array_equal(np.asarray(ref_out["image_sizes"]), np.asarray(out["image_sizes"]))
    assert np.asarray(ref_out["image_sizes"]).dtype == np.asarray(out["image_sizes"]).dtype
    assert type(ref_out["image_sizes"]) is type(out["image_sizes"])
    assert type(ref_out["image_sizes"][0]) is type(out["image_sizes"][0])


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed + h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", SIZES)
def test_pil_images_match(size):
    from PIL import Image

    ref, ours = _pair()
    img = Image.fromarray(_rgb(*size))
    _compare(ref(img, return_tensors="np"), ours(img, return_tensors="np"))


def test_a_batch_pads_the_tile_axis():
    ref, ours = _pair()
    images = [_rgb(*s) for s in SIZES[:5]]
    _compare(ref(images, return_tensors="np"), ours(images, return_tensors="np"))
    out = ours(images, return_tensors="np")
    assert out["pixel_values"].shape[:2] == (5, 5)
    assert not out["pixel_values"][2, 3:].any()  # a square image has 2 tiles + base; the rest is padding


@pytest.mark.parametrize("options", [
    dict(do_pad=False),
    dict(do_normalize=False),
    dict(do_rescale=False, do_normalize=False),
    dict(size={"height": 28, "width": 28}),
    dict(crop_size={"height": 20, "width": 20}),  # tiles do not divide the grid: edge tiles are smaller
    dict(size={"shortest_edge": 32}, crop_size={"height": 28, "width": 28}),
    dict(resample=2),
    dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.2, 0.3, 0.4]),
    dict(image_grid_pinpoints=[[28, 28], [56, 84]]),
])
def test_options_match(options):
    ref, ours = _pair(**options)
    images = [_rgb(*s, seed=3) for s in [(30, 40), (100, 33), (28, 28)]]
    _compare(ref(images, return_tensors="np"), ours(images, return_tensors="np"))
    _compare(ref(images), ours(images))  # without return_tensors (lists when not padded)


def test_call_overrides_and_layouts():
    ref, ours = _pair()
    chw = np.ascontiguousarray(_rgb(45, 70).transpose(2, 0, 1))
    from PIL import Image

    gray = Image.fromarray(_rgb(33, 60)[..., 0])  # mode L (the reference refuses 2-D arrays)
    for item in (chw, gray):
        _compare(ref(item, return_tensors="np"), ours(item, return_tensors="np"))
    pins = [[56, 56], [28, 112]]
    _compare(ref(_rgb(20, 90), image_grid_pinpoints=pins, return_tensors="np"),
             ours(_rgb(20, 90), image_grid_pinpoints=pins, return_tensors="np"))
    _compare(ref(_rgb(20, 90), do_normalize=False, return_tensors="np"),
             ours(_rgb(20, 90), do_normalize=False, return_tensors="np"))


def test_rgba_and_palette_images_are_converted():
    from PIL import Image

    ref, ours = _pair()
    rgba = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 31, 4), dtype=np.uint8), "RGBA")
    pal = Image.fromarray(_rgb(40, 31)).convert("P")
    for img in (rgba, pal):
        _compare(ref(img, return_tensors="np"), ours(img, return_tensors="np"))


def test_float_images_in_unit_range():
    ref, ours = _pair()
    img = (_rgb(37, 53) / 255.0).astype(np.float32)
    a = ref(img, return_tensors="np")["pixel_values"]
    b = ours(img, return_tensors="np")["pixel_values"]
    assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5


def test_saved_config_round_trips_and_auto_loads(tmp_path):
    ref, ours = _pair()
    ref.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, LlavaNextImageProcessor)
    assert loaded.image_grid_pinpoints == PINS
    _compare(ref(_rgb(50, 20), return_tensors="np"), loaded(_rgb(50, 20), return_tensors="np"))
    assert ours.to_dict()["image_grid_pinpoints"] == ref.to_dict()["image_grid_pinpoints"]
    assert ours.max_tiles() == 5


def test_defaults_are_the_reference_defaults():
    ref, ours = tf.LlavaNextImageProcessorPil(), LlavaNextImageProcessor()
    for key in ("size", "crop_size", "image_grid_pinpoints", "do_pad", "resample", "image_mean", "image_std"):
        a, b = ref.to_dict()[key], ours.to_dict()[key]
        assert (list(map(list, a)) if key == "image_grid_pinpoints" else a) == b or tuple(a) == tuple(b), key


@pytest.mark.parametrize("size, target", [((30, 40), (56, 56)), ((100, 33), (84, 28)), ((7, 90), (28, 84))])
def test_patch_output_size_matches(size, target):
    from transformers.image_processing_utils import get_patch_output_size

    assert patch_output_size(size, target) == tuple(
        get_patch_output_size(np.zeros((3, *size)), target, input_data_format="channels_first"))


@pytest.mark.parametrize("bad", [[], [[28]], [[0, 28]], "x", [[28, True]]])
def test_bad_pinpoints_are_refused(bad):
    with pytest.raises(ConfigError, match="image_grid_pinpoints"):
        LlavaNextImageProcessor(image_grid_pinpoints=bad)
