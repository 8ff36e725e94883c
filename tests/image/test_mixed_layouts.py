"""A batch may mix layouts: a channels-last array, a channels-first tensor, a PIL image and a grayscale
image in one list. The layout is inferred per image (as the reference does), on the NumPy route and
on the torch route; an explicit ``input_data_format`` applies to every array; an ambiguous image is
an error naming ``input_data_format`` (the reference warns and guesses)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import featx.image.processors as P
from featx.errors import InputError
from featx.image.fuyu import FuyuImageProcessor

transformers = pytest.importorskip("transformers")

RNG = np.random.default_rng(77)
NAMES = ["ViT", "CLIP", "ConvNext", "Siglip", "Bit"]
SMALL = {
    "ViT": {"size": {"height": 20, "width": 24}},
    "CLIP": {"size": {"shortest_edge": 18}, "crop_size": {"height": 16, "width": 17}},
    "ConvNext": {"size": {"shortest_edge": 20}},
    "Siglip": {"size": {"height": 16, "width": 16}},
    "Bit": {"size": {"shortest_edge": 20}, "crop_size": {"height": 18, "width": 18}},
}


def u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def mixed() -> tuple[list, list]:
    """(featx's batch, the reference's batch): the same images; the reference needs gray as (H, W, 1)."""
    hwc = u8(21, 30, 3)
    chw = torch.from_numpy(RNG.random((3, 25, 17)).astype(np.float32))
    pil = Image.fromarray(u8(18, 23, 3))
    gray = u8(22, 19)
    return [hwc, chw, pil, gray], [hwc, chw, pil, gray[..., None]]


def pair(name: str):
    return getattr(P, f"{name}ImageProcessor")(**SMALL[name]), getattr(transformers, f"{name}ImageProcessorPil")(**SMALL[name])


def assert_close(ours, ref) -> None:
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        b = np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        assert float(np.abs(a.astype(np.float64) - b).max()) <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_mixed_batch_matches_reference(name):
    ours, ref = pair(name)
    batch, ref_batch = mixed()
    # without RGB conversion a 1-channel image needs a scalar mean/std (both refuse 3 values)
    kw = {} if ours.do_convert_rgb else {"image_mean": 0.5, "image_std": 0.5}
    assert_close(ours(batch, **kw).pixel_values, ref(ref_batch, **kw).pixel_values)
    assert_close(ours(ref_batch, **kw).pixel_values, ref(ref_batch, **kw).pixel_values)
    # any order: nothing depends on the first image any more
    order = [3, 1, 0, 2]
    assert_close(ours([batch[i] for i in order], **kw).pixel_values, ref([ref_batch[i] for i in order], **kw).pixel_values)


@pytest.mark.parametrize("name", ["ViT", "CLIP", "ConvNext"])
def test_mixed_batch_on_the_torch_route(name, monkeypatch):
    """The accelerator route (forced onto the CPU) infers per image too."""
    monkeypatch.setattr(P, "_wants_torch", lambda items, device: True)
    ours, ref = pair(name)
    batch, ref_batch = mixed()
    kw = {} if ours.do_convert_rgb else {"image_mean": 0.5, "image_std": 0.5}
    out = ours(batch, device="cpu", **kw).pixel_values
    assert all(isinstance(t, torch.Tensor) for t in out)
    assert_close(out, ref(ref_batch, **kw).pixel_values)


def test_fuyu_mixed_batch_matches_reference():
    ours, ref = FuyuImageProcessor(size={"height": 40, "width": 60}), transformers.FuyuImageProcessorPil(size={"height": 40, "width": 60})
    batch, ref_batch = mixed()
    got, want = ours(batch), ref(ref_batch)
    for key in ("image_unpadded_heights", "image_unpadded_widths", "image_scale_factors", "image_sizes"):
        assert [list(map(float, np.ravel(x))) for x in got[key]] == [list(map(float, np.ravel(x))) for x in want[key]], key
    assert_close([s[0] for s in got["images"]], [s[0] for s in want["images"]])


def test_explicit_layout_applies_to_every_array():
    ours, ref = pair("ViT")
    tricky = u8(3, 7, 3)  # either layout fits: the given one is used
    for fmt, images in (("channels_first", [u8(3, 20, 30), tricky]), ("channels_last", [u8(20, 30, 3), tricky])):
        out = ours(images, input_data_format=fmt).pixel_values
        assert_close(out, ref(images, input_data_format=fmt).pixel_values)
        assert_close(out[1:], ref([tricky], input_data_format=fmt).pixel_values)
    # PIL images and 2-D arrays ignore it, as in the reference
    pil = Image.fromarray(u8(12, 14, 3))
    out = ours([pil, u8(12, 14)], input_data_format="channels_first", image_mean=0.5, image_std=0.5).pixel_values
    assert out[0].shape == (3, 20, 24) and out[1].shape == (1, 20, 24)


@pytest.mark.parametrize("route", ["numpy", "torch"])
def test_ambiguous_image_still_asks_for_input_data_format(route, monkeypatch):
    if route == "torch":
        monkeypatch.setattr(P, "_wants_torch", lambda items, device: True)
    proc = P.CLIPImageProcessor(**SMALL["CLIP"])
    tricky = u8(3, 4, 3)
    kw = {"device": "cpu"} if route == "torch" else {}
    with pytest.raises(InputError, match="input_data_format") as info:
        proc([u8(20, 30, 3), tricky], **kw)
    assert "image 1" in str(info.value)
    with pytest.raises(InputError, match="input_data_format"):
        proc(torch.from_numpy(np.stack([tricky, tricky])), **kw)  # a 4-D batch of ambiguous images
    # with the layout given, it is processed like the reference does
    ref = transformers.CLIPImageProcessorPil(**SMALL["CLIP"])
    for fmt in ("channels_first", "channels_last"):
        assert_close(proc([tricky], input_data_format=fmt, **kw).pixel_values, ref([tricky], input_data_format=fmt).pixel_values)


def test_fuyu_ambiguous_image_is_an_error():
    with pytest.raises(InputError, match="input_data_format|ambiguous"):
        FuyuImageProcessor()([u8(20, 30, 3), u8(3, 5, 3)])


def test_neither_end_is_a_channel_axis():
    with pytest.raises(InputError, match="image 1"):
        P.ViTImageProcessor()([u8(20, 30, 3), u8(30, 7, 20)])
