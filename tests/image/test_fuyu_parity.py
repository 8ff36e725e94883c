"""FuyuImageProcessor against transformers' FuyuImageProcessorPil: element for element."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

from featx.image.fuyu import FuyuImageProcessor

transformers = pytest.importorskip("transformers")
RefFuyu = transformers.FuyuImageProcessorPil
RNG = np.random.default_rng(7)
META = ("image_unpadded_heights", "image_unpadded_widths", "image_scale_factors", "image_sizes")


@pytest.fixture(scope="module")
def ref() -> object:
    return RefFuyu()


@pytest.fixture(scope="module")
def ours() -> FuyuImageProcessor:
    return FuyuImageProcessor()


def u8(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def assert_same(r: dict, o: dict) -> None:
    """Same keys, same nesting, identical arrays (shape, dtype, every element) and metadata."""
    assert set(r) == set(o)
    assert len(r["images"]) == len(o["images"])
    for rb, ob in zip(r["images"], o["images"]):
        assert len(rb) == len(ob)
        for ra, oa in zip(rb, ob):
            assert ra.shape == oa.shape and ra.dtype == oa.dtype
            np.testing.assert_array_equal(oa, ra)
    for key in META:
        assert o[key] == r[key], key


# Sizes: smaller than 1080x1920, odd, exactly the size, one pixel over on either side, larger
# (wide, tall, both), and extreme aspect ratios.
SIZES = [(1, 1), (37, 41), (480, 640), (1080, 1920), (1081, 1920), (1080, 1921), (1201, 2503), (2000, 901), (3, 4000), (4000, 30)]


@pytest.mark.parametrize("hw", SIZES)
def test_uint8_sizes(hw: tuple[int, int], ref, ours) -> None:
    img = u8((*hw, 3))
    kw = {"input_data_format": "channels_last"}  # (1, 1, 3) and (3, 4000, 3) are ambiguous to featx
    assert_same(ref(img, **kw), ours(img, **kw))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Image.fromarray(u8((300, 2100, 3))), id="pil-rgb-large"),
        pytest.param(lambda: Image.fromarray(u8((45, 61))), id="pil-L"),
        pytest.param(lambda: Image.fromarray(u8((45, 61, 4))), id="pil-rgba"),
        pytest.param(lambda: u8((3, 40, 50)), id="numpy-chw"),
        pytest.param(lambda: u8((45, 61)), id="numpy-2d"),
        pytest.param(lambda: torch.from_numpy(u8((3, 1100, 70))), id="torch-chw-large"),
        pytest.param(lambda: RNG.random((40, 50, 3)).astype(np.float32), id="float32-small"),
        pytest.param(lambda: RNG.random((1100, 600, 3)).astype(np.float32), id="float32-large"),
        pytest.param(lambda: RNG.random((40, 50, 3)), id="float64-small"),
    ],
)
def test_input_kinds(make, ref, ours) -> None:
    img = make()
    assert_same(ref(img), ours(img))


def test_rgba_with_convert_rgb(ref, ours) -> None:
    img = Image.fromarray(u8((33, 47, 4)))
    assert_same(ref(img, do_convert_rgb=True), ours(img, do_convert_rgb=True))
    arr = u8((33, 47, 4))
    assert_same(ref(arr, do_convert_rgb=True), ours(arr, do_convert_rgb=True))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"do_rescale": False, "do_normalize": False},
        {"do_rescale": False},
        {"do_normalize": False},
        {"do_pad": False},
        {"do_resize": False, "do_pad": False},
        {"image_mean": [0.48, 0.45, 0.40], "image_std": [0.26, 0.26, 0.27]},
        {"padding_value": 0.0},
        {"padding_value": 255.0},
        {"rescale_factor": 0.5},
        {"padding_mode": "reflect", "size": {"height": 120, "width": 150}},
        {"padding_mode": "edge", "size": {"height": 120, "width": 150}},
        {"padding_mode": "symmetric", "size": {"height": 120, "width": 150}},
        {"size": {"height": 60, "width": 90}},
    ],
)
def test_switches(kwargs: dict, ref, ours) -> None:
    img = u8((70, 100, 3))  # larger than the 60x90 size, smaller than the default
    assert_same(ref(img, **kwargs), ours(img, **kwargs))


@pytest.mark.parametrize("resample", [0, 1, 2, 3, 4, 5])
def test_resample_filters(resample: int, ref, ours) -> None:
    img = u8((130, 170, 3))
    kw = {"size": {"height": 90, "width": 120}, "resample": resample}
    assert_same(ref(img, **kw), ours(img, **kw))


def test_batches_and_nesting(ref, ours) -> None:
    images = [u8((50, 70, 3)), u8((1100, 300, 3)), u8((20, 20, 3))]
    assert_same(ref(images), ours(images))
    nested = [[images[0], images[2]], [images[1]]]
    assert_same(ref(nested), ours(nested))


@pytest.mark.parametrize("return_tensors", ["np", "pt"])
def test_return_tensors(return_tensors: str, ref, ours) -> None:
    images = [u8((50, 70, 3)), u8((1200, 2000, 3))]
    r = ref(images, return_tensors=return_tensors)
    o = ours(images, return_tensors=return_tensors)
    assert set(r) == set(o)
    for key in r:
        rv, ov = r[key], o[key]
        assert type(rv) is type(ov), key
        assert tuple(rv.shape) == tuple(ov.shape) and rv.dtype == ov.dtype, key
        assert (rv == ov).all(), key


def test_save_in_featx_load_in_transformers(tmp_path: pathlib.Path) -> None:
    ours = FuyuImageProcessor(
        size={"height": 240, "width": 360}, padding_value=0.0, image_mean=[0.1, 0.2, 0.3],
        image_std=[0.3, 0.2, 0.1], resample=3, patch_size={"height": 20, "width": 20},
    )
    ours.save_pretrained(tmp_path)
    ref = RefFuyu.from_pretrained(tmp_path)
    assert (ref.size.height, ref.size.width) == (240, 360)
    assert (ref.patch_size.height, ref.patch_size.width) == (20, 20)
    assert ref.resample == 3 and ref.padding_value == 0.0 and tuple(ref.image_mean) == (0.1, 0.2, 0.3)
    img = u8((300, 200, 3))
    assert_same(ref(img), ours(img))
    # transformers writes back what we wrote; neither writes the unset do_convert_rgb.
    ref.save_pretrained(tmp_path / "again")
    theirs = json.loads((tmp_path / "again" / "preprocessor_config.json").read_text())
    assert theirs == json.loads(ours.to_json_string()) and "do_convert_rgb" not in theirs


def test_save_in_transformers_load_in_featx(tmp_path: pathlib.Path) -> None:
    ref = RefFuyu(size={"height": 300, "width": 420}, padding_value=0.5, do_normalize=False, resample=0)
    ref.save_pretrained(tmp_path)
    ours = FuyuImageProcessor.from_pretrained(tmp_path)
    assert ours.size == {"height": 300, "width": 420} and ours.resample == 0 and ours.padding_value == 0.5
    assert ours.do_normalize is False and ours.extra_options == {}
    import featx

    auto = featx.AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(auto, FuyuImageProcessor) and auto.to_dict() == ours.to_dict()
    img = RNG.random((500, 310, 3)).astype(np.float32)
    assert_same(ref(img), ours(img))


def test_patchify_image(ref, ours) -> None:
    image = RNG.standard_normal((3, 90, 120)).astype(np.float32)
    expected = ref.patchify_image(image)
    got = ours.patchify_image(image)
    assert got.shape == expected.shape == (12, 2700) and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    batch = RNG.standard_normal((2, 3, 60, 90)).astype(np.float32)
    np.testing.assert_array_equal(ours.patchify_image(batch), ref.patchify_image(batch))
    # Batch of one: the PIL reference drops the batch axis; featx keeps it like the torch reference.
    one = batch[:1]
    np.testing.assert_array_equal(ours.patchify_image(one)[0], ref.patchify_image(one))
    tensor = ours.patchify_image(torch.from_numpy(batch))
    np.testing.assert_array_equal(tensor.numpy(), ref.patchify_image(batch))
    assert ours.patchify_image(image, {"height": 45, "width": 40}).shape == (6, 45 * 40 * 3)
    np.testing.assert_array_equal(
        ours.patchify_image(image, {"height": 45, "width": 40}), ref.patchify_image(image, transformers.image_utils.SizeDict(height=45, width=40))
    )
    for h, w in [(1080, 1920), (30, 30), (60, 900)]:
        assert ours.get_num_patches(h, w) == ref.get_num_patches(h, w)


@pytest.mark.parametrize("variable_sized", [True, False])
def test_preprocess_with_tokenizer_info(variable_sized: bool, ref, ours) -> None:
    image_input = torch.from_numpy(RNG.standard_normal((2, 3, 3, 90, 120)).astype(np.float32))
    present = torch.tensor([[1, 0, 1], [1, 1, 0]])
    heights = torch.tensor([[61, 90, 30], [1, 89, 45]])
    widths = torch.tensor([[120, 7, 31], [59, 120, 60]])
    args = (image_input, present, heights, widths, 71011, 71019, variable_sized)
    r = ref.preprocess_with_tokenizer_info(*args)
    o = ours.preprocess_with_tokenizer_info(*args)
    assert set(r) == set(o)
    for key in ("image_input_ids", "image_patches", "image_patch_indices_per_batch", "image_patch_indices_per_subsequence"):
        assert len(r[key]) == len(o[key])
        for rs, os_ in zip(r[key], o[key]):
            assert len(rs) == len(os_), key
            for rt, ot in zip(rs, os_):
                assert rt.dtype == ot.dtype and rt.shape == ot.shape, key
                assert torch.equal(rt, ot), key
    assert len(r["images"]) == len(o["images"])
    for (ri,), (oi,) in zip(r["images"], o["images"]):
        np.testing.assert_array_equal(oi.numpy(), np.asarray(ri))
    if variable_sized:  # newline positions carry patch index -1
        ids = o["image_input_ids"][0][0]
        assert (o["image_patch_indices_per_subsequence"][0][0][ids == 71019] == -1).all()
        assert ids.numel() == 3 * (4 + 1)
