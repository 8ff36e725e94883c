"""`featx.image.resample` against Pillow itself: bit-exact 8-bit resizing over random and extreme
sizes, all six filters, 1-4 channels, both pass orders, threads, PIL images of every mode, the
no-numba fallback and the torch route."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featx.errors import InputError
from featx.image import resample as RS
from featx.image.pil_coeffs import pil_picks_order

FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def pil_resize(hwc: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """The reference: ``PIL.Image.resize`` on the image as the reference builds it from an array."""
    image = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc)
    out = np.asarray(image.resize((size[1], size[0]), resample, reducing_gap=None))
    return out[..., None] if out.ndim == 2 else out


def random_image(rng: np.random.Generator, height: int, width: int, channels: int) -> np.ndarray:
    img = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    if channels in (2, 4) and rng.random() < 0.5:  # alpha with the special values 0 and 255
        img[..., -1] = rng.choice(np.array([0, 1, 128, 254, 255], np.uint8), size=(height, width))
    if rng.random() < 0.2:  # flat areas and saturated values exercise the clipping
        img[: height // 2] = rng.choice(np.array([0, 255], np.uint8))
    return img


def random_side(rng: np.random.Generator) -> int:
    r = rng.random()
    if r < 0.25:
        return int(rng.integers(1, 6))
    if r < 0.85:
        return int(rng.integers(6, 160))
    return int(rng.integers(160, 700))


@pytest.mark.parametrize("seed", range(6))
def test_random_sizes_filters_and_channels_match_pillow(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for case in range(50):
        channels = int(rng.integers(1, 5))
        height, width, out_h, out_w = (random_side(rng) for _ in range(4))
        resample = int(rng.integers(0, 6))
        img = random_image(rng, height, width, channels)
        got = RS.resize_uint8(img, (out_h, out_w), resample, threads=int(rng.integers(1, 3)))
        want = pil_resize(img, (out_h, out_w), resample)
        assert got.shape == want.shape and got.dtype == np.uint8, (case, img.shape, (out_h, out_w), resample)
        assert np.array_equal(got, want), (case, img.shape, (out_h, out_w), resample)


EXTREME = [
    ((1, 1), (1, 1)),
    ((1, 1), (4000, 3)),
    ((1, 1), (3, 4000)),
    ((4000, 3), (1, 1)),
    ((3, 4000), (1, 1)),
    ((4000, 3), (3, 4000)),
    ((3, 4000), (4000, 3)),
    ((4000, 3), (224, 224)),
    ((2, 4000), (224, 3)),
    ((1, 2000), (1, 7)),
    ((2000, 1), (7, 1)),
    ((7, 1), (2000, 1)),
    ((5, 5), (5, 5)),
    ((5, 9), (5, 2)),  # one pass only: width
    ((9, 5), (2, 5)),  # one pass only: height
    ((640, 480), (224, 298)),
    ((97, 1033), (1033, 97)),
]


@pytest.mark.parametrize("resample", FILTERS.values(), ids=FILTERS.keys())
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_extreme_sizes_and_ratios_match_pillow(resample: int, channels: int) -> None:
    rng = np.random.default_rng(100 * resample + channels)
    for (height, width), size in EXTREME:
        img = random_image(rng, height, width, channels)
        got = RS.resize_uint8(img, size, resample)
        assert np.array_equal(got, pil_resize(img, size, resample)), ((height, width), size)


def test_both_pass_orders_match_pillow() -> None:
    """Around Pillow's switch to vertical-first (height shrinks by > 2x the width's shrink)."""
    rng = np.random.default_rng(7)
    orders = set()
    for in_w, out_w in [(40, 30), (50, 51), (33, 7), (20, 20)]:
        for in_h in (60, 97, 150):
            for diff in (-1, 0, 1):
                out_h = max(1, in_h - 2 * (in_w - out_w) + diff)
                for resample in (1, 2, 3, 5):
                    img = random_image(rng, in_h, in_w, 3)
                    orders.add(RS.horizontal_first(in_h, in_w, out_h, out_w))
                    got = RS.resize_uint8(img, (out_h, out_w), resample)
                    assert np.array_equal(got, pil_resize(img, (out_h, out_w), resample)), ((in_h, in_w), (out_h, out_w), resample)
    assert orders == {True, False} or not pil_picks_order()


def test_pass_order_matters_and_is_chosen_like_pillow() -> None:
    """The probe that tells the orders apart: only one of them gives Pillow's pixel."""
    img = np.array([[25, 105], [143, 112]], np.uint8)[..., None]
    got = RS.resize_uint8(img, (1, 6), 2)
    assert np.array_equal(got, pil_resize(img, (1, 6), 2))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_rows_split_over_threads_match_pillow(channels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RS, "_MIN_SPLIT_WORK", 1)  # split even small images
    rng = np.random.default_rng(channels)
    for size in [(64, 50), (33, 90), (200, 17), (17, 200)]:
        for resample in (1, 2, 3, 4):
            img = random_image(rng, 150, 120, channels)
            for threads in (2, 3, 5):
                got = RS.resize_uint8(img, size, resample, threads=threads)
                assert np.array_equal(got, pil_resize(img, size, resample)), (size, resample, threads)


def test_non_contiguous_unaligned_and_strided_inputs() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (61, 83 * 4 + 1), dtype=np.uint8)
    unaligned = base[:, 1:].reshape(61, 83, 4)  # data pointer not a multiple of 4
    assert unaligned.ctypes.data % 4 != 0
    strided = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)[::2, ::3]
    for img in (unaligned, strided, np.asfortranarray(strided)):
        for resample in (1, 2, 3):
            got = RS.resize_uint8(img, (20, 31), resample)
            assert np.array_equal(got, pil_resize(np.ascontiguousarray(img), (20, 31), resample))


def test_input_is_not_modified_and_output_is_fresh() -> None:
    img = np.random.default_rng(4).integers(0, 256, (30, 40, 4), dtype=np.uint8)
    before = img.copy()
    out = RS.resize_uint8(img, (30, 40), 2)  # same size: a copy, as Pillow returns
    out[...] = 0
    RS.resize_uint8(img, (17, 23), 3)
    assert np.array_equal(img, before)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "I;16", "F", "CMYK"])
def test_pil_images_of_every_mode(mode: str) -> None:
    rng = np.random.default_rng(5)
    rgba = Image.fromarray(random_image(rng, 57, 91, 4))
    image = rgba.convert(mode) if mode != "I;16" else Image.fromarray(rng.integers(0, 65535, (57, 91), dtype=np.uint16))
    for size, resample in [((20, 33), 2), ((120, 13), 3), ((57, 91), 1), ((9, 9), 0), ((40, 40), 4), ((31, 50), 5)]:
        want = np.asarray(image.resize((size[1], size[0]), resample, reducing_gap=None))
        want = want[..., None] if want.ndim == 2 else want
        got = RS.resize_pil_image(image, size, resample)
        assert got.dtype == want.dtype and np.array_equal(got, want), (mode, size, resample)


def test_rgb_pil_image_is_read_without_a_copy() -> None:
    image = Image.fromarray(np.random.default_rng(6).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    arr, channels = RS.pil_image_array(image)
    assert channels == 3 and arr.shape[:2] == (40, 50)
    assert np.array_equal(arr[..., :3], np.asarray(image))
    if arr.shape[-1] == 4:  # Pillow's own memory, exported through Arrow
        assert not arr.flags.writeable


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_large_pil_images_pillow_cannot_lend_take_the_cheaper_route(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above 8 MP an image Pillow cannot export goes to Pillow's resize (cheaper than copying it
    out); below, the copy and the kernel. Same numbers either way."""
    rng = np.random.default_rng(7)
    small = Image.fromarray(random_image(rng, 31, 47, len(mode)))
    large = small.resize((3500, 2400), 2)  # 8.4 MP
    calls: list[tuple[int, ...]] = []
    kernel = RS.resize_uint8
    monkeypatch.setattr(RS, "resize_uint8", lambda arr, *a, **k: calls.append(arr.shape) or kernel(arr, *a, **k))
    monkeypatch.setattr(RS, "_pillow_memory", lambda image: None)  # as for a multi-block image
    for image, routed in ((large, False), (small, True)):
        calls.clear()
        for size, resample in (((224, 224), 2), ((200, 300), 3)):
            want = np.asarray(image.resize((size[1], size[0]), resample, reducing_gap=None))
            assert np.array_equal(RS.resize_pil_image(image, size, resample), want), (image.size, size)
        assert bool(calls) == routed


def test_without_numba_pillow_gives_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RS, "_kernels", lambda: None)
    assert not RS.have_kernel()
    rng = np.random.default_rng(8)
    for channels in (1, 2, 3, 4, 5):
        img = random_image(rng, 37, 45, channels)
        got = RS.resize_uint8(img, (20, 60), 3)
        want = np.concatenate([pil_resize(img[..., c : c + 1], (20, 60), 3) for c in range(5)], -1) if channels == 5 else pil_resize(img, (20, 60), 3)
        assert np.array_equal(got, want)
    image = Image.fromarray(random_image(rng, 37, 45, 3))
    assert np.array_equal(RS.resize_pil_image(image, (20, 60), 2), np.asarray(image.resize((60, 20), 2, reducing_gap=None)))


def test_more_than_four_channels_are_resized_one_by_one() -> None:
    img = np.random.default_rng(9).integers(0, 256, (33, 21, 6), dtype=np.uint8)
    got = RS.resize_uint8(img, (10, 40), 2)
    want = np.concatenate([pil_resize(img[..., c : c + 1], (10, 40), 2) for c in range(6)], -1)
    assert np.array_equal(got, want)


def test_coefficients_are_pillows_fixed_point() -> None:
    first, count, weights = RS.pil_coeffs(33, 7, 2)
    dense = RS.pil_weights(33, 7, 2)
    assert weights.dtype == np.int32 and not weights.flags.writeable
    for o in range(7):
        row = np.zeros(33)
        row[first[o] : first[o] + count[o]] = weights[o, : count[o]]
        assert np.array_equal(row, dense[o])
        assert abs(int(weights[o].sum()) - (1 << 22)) <= count[o]  # normalised, each tap rounded
    assert RS.nearest_index(10, 4).tolist() == [1, 3, 6, 8]


def test_torch_route_matches_pillow() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    for channels in (1, 3, 4):
        img = random_image(rng, 45, 70, channels)
        nchw = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        for size, resample in [((20, 33), 2), ((90, 13), 3), ((45, 20), 1), ((8, 9), 0)]:
            got = RS.resize_torch(nchw, size, resample)[0].permute(1, 2, 0).numpy()
            assert np.array_equal(got, pil_resize(img, size, resample)), (channels, size, resample)


def test_bad_arguments_raise_clear_errors() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(InputError, match="cannot resize to"):
        RS.resize_uint8(img, (0, 3), 2)
    with pytest.raises(InputError, match="uint8"):
        RS.resize_uint8(img.astype(np.float32), (2, 3), 2)
    with pytest.raises(InputError, match="filter"):
        RS.resize_uint8(img, (2, 3), 9)
    with pytest.raises(InputError, match="keep"):
        RS.resize_uint8(img, (2, 3), 2, keep=2)
