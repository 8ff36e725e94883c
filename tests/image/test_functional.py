"""Properties of the image functional core: no mutation, dtype/shape kept, batched == one by one,
NumPy == torch; plus the size rules, layout inference and the approximate torch resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import featx.image.functional as F
from featx.errors import InputError
from featx.image.layout import image_hw, infer_channel_format, to_channels_first, to_channels_last

RNG = np.random.default_rng(1234)
MEAN, STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def f01(*shape: int) -> np.ndarray:
    return RNG.random(shape).astype(np.float32)


# Each op: (name, fn(img, fmt)). The image is channels-first (C, H, W) or a batch (N, C, H, W).
OPS = {
    "resize_bilinear": lambda x, fmt: F.resize(x, (9, 13), 2, input_data_format=fmt),
    "resize_lanczos": lambda x, fmt: F.resize(x, (20, 7), "lanczos", input_data_format=fmt),
    "rescale": lambda x, fmt: F.rescale(x, 1 / 255),
    "normalize": lambda x, fmt: F.normalize(x, MEAN, STD, input_data_format=fmt),
    "rescale_normalize": lambda x, fmt: F.rescale_normalize(x, 1 / 255, MEAN, STD, input_data_format=fmt),
    "center_crop_small": lambda x, fmt: F.center_crop(x, (5, 6), input_data_format=fmt),
    "center_crop_pad": lambda x, fmt: F.center_crop(x, (20, 25), input_data_format=fmt),
    "pad_constant": lambda x, fmt: F.pad(x, ((1, 2), (3, 0)), 7, input_data_format=fmt),
    "pad_reflect": lambda x, fmt: F.pad(x, ((1, 2), (3, 0)), mode="reflect", input_data_format=fmt),
    "pad_symmetric": lambda x, fmt: F.pad(x, 2, mode="symmetric", input_data_format=fmt),
    "convert_rgb": lambda x, fmt: F.convert_rgb(x, input_data_format=fmt),
}


def _np(x):
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dtype", ["uint8", "float01"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_op_properties(op, dtype, channels):
    make = u8 if dtype == "uint8" else f01
    batch = make(3, channels, 11, 16)
    if op == "convert_rgb" and channels == 4 and dtype == "float01":
        batch = batch.clip(0, 1)
    keep = batch.copy()
    fn = OPS[op]
    if op in ("normalize", "rescale_normalize") and channels != 3:
        with pytest.raises(InputError, match="channels"):
            fn(batch, "channels_first")
        return
    out = fn(batch, "channels_first")
    assert np.array_equal(batch, keep), "input was modified"
    # batched == one by one
    singles = [fn(img, "channels_first") for img in batch]
    assert np.array_equal(np.stack([_np(s) for s in singles]), _np(out))
    # channels-last gives the same numbers, transposed
    last = fn(np.ascontiguousarray(batch.transpose(0, 2, 3, 1)), "channels_last")
    assert np.array_equal(_np(last).transpose(0, 3, 1, 2), _np(out))
    # numpy == torch, device and type kept
    tin = torch.from_numpy(batch.copy())
    tout = fn(tin, "channels_first")
    assert isinstance(tout, torch.Tensor) and tout.device == tin.device
    assert torch.equal(tin, torch.from_numpy(keep))
    assert str(tout.dtype).replace("torch.", "") == str(out.dtype)
    assert np.array_equal(tout.numpy(), _np(out))
    # dtype and layout rules
    if op.startswith(("center_crop", "pad", "convert")):
        assert out.dtype == batch.dtype
    if op.startswith("resize"):
        assert out.dtype == batch.dtype
        assert out.shape[:2] == batch.shape[:2]
    if op in ("rescale", "rescale_normalize"):
        assert out.dtype == np.float32
    if op == "normalize":
        assert out.dtype == np.float32  # uint8 -> float32, float32 kept
    if op == "convert_rgb":
        assert out.shape[1] == (3 if channels in (1, 4) else channels)


def test_normalize_keeps_float_dtypes():
    for dtype in (np.float16, np.float64):
        x = f01(3, 4, 5).astype(dtype)
        assert F.normalize(x, 0.5, 0.5, input_data_format="channels_first").dtype == dtype
        assert F.normalize(torch.from_numpy(x), 0.5, 0.5, input_data_format="channels_first").dtype == torch.from_numpy(x).dtype


def test_rescale_normalize_matches_two_steps_and_writes_out():
    for img in (u8(3, 7, 9), f01(3, 7, 9), u8(3, 7, 9).astype(np.int64)):
        two = F.normalize(F.rescale(img, 1 / 255), MEAN, STD, input_data_format="channels_first")
        out = np.full(img.shape, np.nan, np.float32)
        got = F.rescale_normalize(img, 1 / 255, MEAN, STD, out=out, input_data_format="channels_first")
        assert got is out and np.array_equal(out, two)
    # skipping either step
    img = u8(3, 4, 5)
    assert np.array_equal(F.rescale_normalize(img, None, 0.5, 0.5), F.normalize(img, 0.5, 0.5))
    assert np.array_equal(F.rescale_normalize(img, 0.1, None, None), F.rescale(img, 0.1))
    with pytest.raises(InputError, match="shape"):
        F.rescale_normalize(img, 1 / 255, MEAN, STD, out=np.zeros((3, 4, 6), np.float32))


def test_resize_float_quirks_follow_reference():
    # float [0, 1] is scaled by 255 and truncated, resized as uint8, then divided by 255
    x = np.full((3, 4, 4), 0.999, np.float32)
    out = F.resize(x, (2, 2), 2, input_data_format="channels_first")
    assert out.dtype == np.float32 and np.allclose(out, 254 / 255)
    # integer-valued floats are taken as 0..255 and come back uint8
    ints = np.full((3, 4, 4), 7.0)
    assert F.resize(ints, (2, 2), input_data_format="channels_first").dtype == np.uint8
    with pytest.raises(InputError, match="0, 1"):
        F.resize(np.full((3, 4, 4), 3.5), (2, 2), input_data_format="channels_first")
    with pytest.raises(InputError, match="0..255"):
        F.resize(np.full((3, 4, 4), 300.0), (2, 2), input_data_format="channels_first")


def test_resize_2d_size_rules_and_errors():
    img = u8(3, 10, 20)
    assert F.resize(img[0], (5, 6)).shape == (5, 6)
    assert F.resize(img, {"shortest_edge": 5}, input_data_format="channels_first").shape == (3, 5, 10)
    with pytest.raises(InputError, match="resample"):
        F.resize(img, (5, 5), 9, input_data_format="channels_first")
    with pytest.raises(InputError, match="backend"):
        F.resize(img, (5, 5), backend="cv2", input_data_format="channels_first")
    with pytest.raises(InputError, match="resize to"):
        F.resize(img, (0, 5), input_data_format="channels_first")


@pytest.mark.parametrize(
    ("hw", "size", "kw", "expected"),
    [
        ((480, 640), {"shortest_edge": 224}, {}, (224, 298)),
        ((640, 480), {"shortest_edge": 224}, {}, (298, 224)),
        ((3, 4000), {"shortest_edge": 8}, {}, (8, 10666)),
        ((100, 200), {"height": 5, "width": 7}, {}, (5, 7)),
        ((100, 200), {"max_height": 50, "max_width": 50}, {}, (25, 50)),
        ((100, 200), {"max_height": 200, "max_width": 500}, {}, (200, 400)),
        ((100, 300), {"longest_edge": 60}, {}, (20, 60)),
        ((480, 640), {"shortest_edge": 800, "longest_edge": 1000}, {}, (750, 1000)),
        ((480, 640), {"shortest_edge": 480, "longest_edge": 1000}, {}, (480, 640)),
        ((480, 640), 224, {}, (224, 224)),
        ((480, 640), 224, {"default_to_square": False}, (224, 298)),
        ((480, 1640), 224, {"default_to_square": False, "max_size": 300}, (87, 300)),
        ((480, 640), (10, 20), {}, (10, 20)),
        ((480, 640), [30], {}, (30, 30)),
    ],
)
def test_get_resize_output_size(hw, size, kw, expected):
    assert F.get_resize_output_size(hw, size, **kw) == expected


def test_size_rules_match_reference():
    from transformers.image_transforms import get_resize_output_image_size, get_size_with_aspect_ratio

    for h, w in [(1, 1), (1, 7), (3, 4000), (4000, 3), (479, 641), (224, 225), (999, 1000)]:
        img = np.zeros((1, h, w), np.uint8)
        for s in (1, 7, 224, 384):
            ref = get_resize_output_image_size(img, s, default_to_square=False, input_data_format="channels_first")
            assert F.get_resize_output_size((h, w), {"shortest_edge": s}) == tuple(ref)
            for longest in (s + 1, 2 * s, 1333):
                ref = get_size_with_aspect_ratio((h, w), s, longest)
                got = F.get_resize_output_size((h, w), {"shortest_edge": s, "longest_edge": longest})
                assert got == tuple(ref)


def test_parse_resample():
    from PIL import Image

    assert [F.parse_resample(n) for n in ("nearest", "LANCZOS", "bilinear", "bicubic", "box", "hamming")] == list(range(6))
    assert F.parse_resample(Image.Resampling.BICUBIC) == 3 and F.parse_resample(None) == 2
    for bad in (6, -1, True, "area", 2.5):
        with pytest.raises(InputError):
            F.parse_resample(bad)


def test_channel_inference_refuses_ambiguity():
    assert infer_channel_format(np.zeros((3, 10, 20))) == "channels_first"
    assert infer_channel_format(np.zeros((10, 20, 3))) == "channels_last"
    assert infer_channel_format(np.zeros((2, 10, 20, 4))) == "channels_last"
    for shape in [(3, 10, 3), (1, 7, 3), (1, 1, 1), (4, 5, 4), (2, 3, 8, 1)]:
        with pytest.raises(InputError, match="input_data_format"):
            infer_channel_format(np.zeros(shape))
    with pytest.raises(InputError, match="input_data_format"):
        infer_channel_format(np.zeros((5, 10, 20)))
    with pytest.raises(InputError, match="ambiguous"):
        F.resize(np.zeros((3, 10, 3), np.uint8), (4, 4))
    # explicit layouts always work, torch views too
    x = torch.zeros(3, 10, 3)
    assert tuple(to_channels_first(x, "channels_last").shape) == (3, 3, 10)
    assert tuple(to_channels_last(x, "channels_first").shape) == (10, 3, 3)
    assert to_channels_first(np.zeros((4, 5))).shape == (1, 4, 5)
    assert image_hw(np.zeros((7, 8, 3))) == (7, 8)


def test_center_crop_padding_placement():
    img = np.arange(1, 7, dtype=np.uint8).reshape(1, 2, 3)
    out = F.center_crop(img, (5, 4), input_data_format="channels_first")
    # 3 extra rows: 2 on top, 1 below; 1 extra column: on the left
    expected = np.zeros((1, 5, 4), np.uint8)
    expected[0, 2:4, 1:4] = img[0]
    assert np.array_equal(out, expected)
    view = F.center_crop(img, (1, 1), input_data_format="channels_first")
    assert view.base is not None and view[0, 0, 0] == 2


def test_pad_matches_numpy_modes():
    img = u8(2, 5, 6)
    for mode, np_mode in (("reflect", "reflect"), ("replicate", "edge"), ("symmetric", "symmetric")):
        got = F.pad(img, ((1, 3), (2, 0)), mode=mode, input_data_format="channels_first")
        assert np.array_equal(got, np.pad(img, ((0, 0), (1, 3), (2, 0)), mode=np_mode))
    got = F.pad(img, (1, 2), value=[5, 9], input_data_format="channels_first")
    assert got.shape == (2, 8, 9) and got[0, 0, 0] == 5 and got[1, -1, -1] == 9
    with pytest.raises(InputError, match="mode"):
        F.pad(img, 1, mode="wrap", input_data_format="channels_first")
    with pytest.raises(InputError, match="negative"):
        F.pad(img, -1, input_data_format="channels_first")


def test_convert_rgb_matches_reference():
    from transformers.image_transforms import convert_to_rgb

    rgba = u8(9, 7, 4)
    ref = convert_to_rgb(rgba, return_numpy=True, input_data_format="channels_last")
    assert np.array_equal(F.convert_rgb(rgba, input_data_format="channels_last"), ref)
    fl = f01(9, 7, 4)
    ref = convert_to_rgb(fl, return_numpy=True, input_data_format="channels_last")
    assert np.array_equal(F.convert_rgb(fl, input_data_format="channels_last"), ref)
    gray = u8(9, 7)
    assert F.convert_rgb(gray).shape == (3, 9, 7)
    assert F.convert_rgb(gray, input_data_format="channels_last").shape == (9, 7, 3)
    with pytest.raises(InputError, match="outside"):
        F.convert_rgb(fl * 2, input_data_format="channels_last")
    from PIL import Image

    pil = Image.fromarray(rgba, "RGBA")
    ref = convert_to_rgb(pil, return_numpy=True)
    assert np.array_equal(np.asarray(F.convert_rgb(pil)), ref)
    rgb = Image.fromarray(rgba[..., :3])
    assert F.convert_rgb(rgb) is rgb


@pytest.mark.parametrize("resample", [0, 1, 2, 3, 4, 5])
def test_torch_backend_matches_pil_exactly(resample):
    """The accelerator route (float64 matmuls, run here on CPU) reproduces PIL bit for bit."""
    rng = np.random.default_rng(resample)
    shapes = [((1, 1), (5, 3)), ((1, 7), (1, 2)), ((37, 53), (17, 24)), ((37, 53), (80, 120)),
              ((40, 9), (7, 30)), ((90, 40), (11, 39)), ((5, 300), (50, 20)), ((64, 64), (64, 20))]  # fmt: skip
    for channels in (1, 2, 3, 4):
        for (h, w), size in shapes:
            img = torch.from_numpy(rng.integers(0, 256, (channels, h, w), dtype=np.uint8))
            exact = F.resize(img, size, resample, input_data_format="channels_first", backend="pil")
            fast = F.resize(img, size, resample, input_data_format="channels_first", backend="torch")
            assert fast.dtype == torch.uint8 and torch.equal(fast, exact), (channels, (h, w), size)
            f = img.float() / 255
            exact_f = F.resize(f, size, resample, input_data_format="channels_first", backend="pil")
            fast_f = F.resize(f, size, resample, input_data_format="channels_first", backend="torch")
            assert fast_f.dtype == exact_f.dtype and torch.equal(fast_f, exact_f)
    batch = torch.from_numpy(rng.integers(0, 256, (2, 3, 21, 34), dtype=np.uint8))
    assert torch.equal(
        F.resize(batch, (9, 8), resample, input_data_format="channels_first", backend="torch"),
        F.resize(batch, (9, 8), resample, input_data_format="channels_first", backend="pil"),
    )


def test_pil_weights_are_pillows_fixed_point_rows():
    w = F.pil_weights(33, 7, 2)
    assert w.shape == (7, 33) and np.all(w == np.round(w))
    assert np.all(np.abs(w.sum(1) - (1 << 22)) <= 2)  # each row sums to ~1.0 in 2**22 units


def test_map_threads_keeps_order(monkeypatch):
    monkeypatch.setenv("FEATX_NUM_THREADS", "2")
    assert F.map_threads(lambda x: x * x, list(range(50))) == [x * x for x in range(50)]
