"""featx image processors against the transformers PIL backend: same shapes, dtypes, and values
within 1e-5, over sizes, filters, switches, input kinds and layouts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

import featx.image.processors as P
from featx.errors import InputError

transformers = pytest.importorskip("transformers")

NAMES = ["ViT", "DeiT", "CLIP", "Bit", "ConvNext", "Siglip"]
RNG = np.random.default_rng(20240607)
TOL = 1e-5


def pair(name: str, **options):
    ours = getattr(P, f"{name}ImageProcessor")(**options)
    ref = getattr(transformers, f"{name}ImageProcessorPil")(**options)
    return ours, ref


def photo(h: int, w: int, channels: int = 3) -> np.ndarray:
    """Smooth-ish content with noise, so every filter's taps matter."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 7 + yy * 3 + 40 * c) % 256 for c in range(channels)], -1).astype(np.float64)
    noise = RNG.integers(-40, 40, (h, w, channels))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def run(proc, images, **kw):
    try:
        return proc(images, **kw).pixel_values
    except Exception as exc:  # noqa: BLE001  (the reference raises assorted types; both must fail)
        return exc


def assert_same(ours_proc, ref_proc, images, ref_images=None, **kw):
    ours = run(ours_proc, images, **kw)
    ref = run(ref_proc, images if ref_images is None else ref_images, **kw)
    if isinstance(ref, Exception) or isinstance(ours, Exception):
        assert isinstance(ours, Exception) and isinstance(ref, Exception), (ours, ref)
        return 0.0
    assert len(ours) == len(ref)
    worst = 0.0
    for a, b in zip(ours, ref):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        if a.size:
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
    assert worst <= TOL, worst
    return worst


SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3), (5, 8), (17, 31), (32, 32), (33, 64), (225, 224), (3, 4000), (4000, 3)]


@pytest.mark.parametrize("name", NAMES)
def test_size_sweep_pil(name):
    ours, ref = pair(name)
    small_edge = {"shortest_edge": 12}
    for h, w in SHAPES:
        img = Image.fromarray(photo(h, w))
        if "shortest_edge" in (ours.size or {}) and max(h, w) / min(h, w) > 100:
            # keep the reference's output small: it would make a 224 x 298666 image
            kw = {"size": small_edge, "crop_size": {"height": 9, "width": 8}} if name != "ConvNext" else {}
            assert_same(ours, ref, img, **kw)
        else:
            assert_same(ours, ref, img)


@pytest.mark.parametrize("resample", [0, 1, 2, 3, 4, 5])
def test_every_filter_up_and_down(resample):
    images = [photo(37, 53), photo(9, 14), photo(120, 61)]
    for name, opts in (("ViT", {"size": {"height": 24, "width": 19}}),
                       ("CLIP", {"size": {"shortest_edge": 20}, "crop_size": {"height": 17, "width": 18}}),
                       ("ConvNext", {"size": {"shortest_edge": 30}})):  # fmt: skip
        ours, ref = pair(name, resample=resample, **opts)
        assert_same(ours, ref, [Image.fromarray(i) for i in images])
        assert_same(ours, ref, images[0])
        assert_same(ours, ref, images, resample=Image.Resampling(resample), size={"height": 50, "width": 70})


@pytest.mark.parametrize("switches", list(itertools.product([True, False], repeat=4)))
def test_do_switches(switches):
    do_resize, do_center_crop, do_rescale, do_normalize = switches
    ours, ref = pair("CLIP", size={"shortest_edge": 16}, crop_size={"height": 15, "width": 11})
    kw = dict(do_resize=do_resize, do_center_crop=do_center_crop, do_rescale=do_rescale, do_normalize=do_normalize)
    u8 = [photo(21, 30), photo(25, 19)]
    assert_same(ours, ref, u8, **kw)
    floats = [u.astype(np.float32) / 255 for u in u8]
    assert_same(ours, ref, floats, **kw)
    out = ours(u8, **kw).pixel_values
    expected = np.uint8 if not (do_rescale or do_normalize) else np.float32
    assert all(o.dtype == expected for o in out)


def test_custom_mean_std_and_rescale():
    images = [photo(30, 41), photo(12, 12)]
    for mean, std, factor in ((0.3, 0.2, 1 / 255), ([0.1, 0.2, 0.3], [0.9, 0.8, 0.7], 1 / 127.5), ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], 0.5)):
        ours, ref = pair("ViT", image_mean=mean, image_std=std, rescale_factor=factor, size={"height": 13, "width": 17})
        assert_same(ours, ref, images)
        ours, ref = pair("ViT", size={"height": 13, "width": 17})
        assert_same(ours, ref, images, image_mean=mean, image_std=std, rescale_factor=factor)


def test_input_kinds_and_layouts():
    hwc = photo(29, 38)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    f01 = hwc.astype(np.float32) / 255
    for name in ("ViT", "CLIP", "ConvNext"):
        ours, ref = pair(name, size={"height": 16, "width": 20} if name == "ViT" else {"shortest_edge": 18})
        cases = [
            Image.fromarray(hwc), hwc, chw, torch.from_numpy(hwc), torch.from_numpy(chw),
            f01, np.ascontiguousarray(f01.transpose(2, 0, 1)), f01.astype(np.float64), torch.from_numpy(f01),
            hwc.astype(np.float64),  # integer-valued floats: taken as 0..255
            np.stack([hwc, hwc[::-1]]), np.stack([chw, chw[:, ::-1]]), torch.from_numpy(np.stack([chw, chw])),
            [hwc, photo(40, 31), photo(8, 9)], [Image.fromarray(hwc), photo(17, 60)], [[hwc], [photo(30, 30)]],
        ]  # fmt: skip
        for images in cases:
            assert_same(ours, ref, images)


def test_pil_modes():
    rgba = photo(23, 34, 4)
    rgba[..., 3] = RNG.integers(0, 256, rgba.shape[:2])
    base = Image.fromarray(rgba, "RGBA")
    modes = {m: base.convert(m) for m in ("RGB", "L", "LA", "RGBA", "P", "CMYK", "I", "F", "1", "YCbCr", "HSV", "RGBa")}
    palette = base.convert("RGB").convert("P")
    palette.info["transparency"] = 3
    modes["P+transparency"] = palette
    modes["I;16"] = Image.fromarray(RNG.integers(0, 256, (23, 34)).astype(np.uint16))
    modes["I;16 wide"] = Image.fromarray(RNG.integers(0, 60000, (23, 34)).astype(np.uint16))
    modes["F01"] = Image.fromarray(RNG.random((23, 34)).astype(np.float32))
    for name in ("CLIP", "ViT", "Siglip"):
        ours, ref = pair(name)
        for label, img in modes.items():
            assert_same(ours, ref, img)
            assert_same(ours, ref, [img, modes["RGB"]])


def test_grayscale_and_rgba_arrays():
    gray = photo(25, 31, 1)
    rgba = photo(25, 31, 4)
    ours, ref = pair("CLIP", size={"shortest_edge": 14}, crop_size={"height": 12, "width": 12})
    # a 2-D array is one grayscale image for featx; the reference needs the (H, W, 1) form
    assert_same(ours, ref, gray[..., 0], ref_images=gray)
    assert_same(ours, ref, gray)
    assert_same(ours, ref, rgba)
    assert_same(ours, ref, rgba.astype(np.float32) / 255)
    assert_same(ours, ref, [gray, rgba, photo(20, 20)])
    vit, vref = pair("ViT")
    with pytest.raises(InputError, match="do_convert_rgb"):
        vit(gray)
    assert isinstance(run(vref, gray), ValueError)
    assert_same(vit, vref, gray, image_mean=0.5, image_std=0.5)


@pytest.mark.parametrize(
    ("size", "crop_pct"), [({"shortest_edge": 224}, None), ({"shortest_edge": 100}, 0.95), ({"shortest_edge": 384}, None), ({"shortest_edge": 400}, 0.5)]
)
def test_convnext_crop_pct_rule(size, crop_pct):
    opts = {"size": size} if crop_pct is None else {"size": size, "crop_pct": crop_pct}
    ours, ref = pair("ConvNext", **opts)
    images = [photo(300, 420), photo(97, 64)]
    assert_same(ours, ref, images)
    assert_same(ours, ref, images, crop_pct=0.7)
    assert_same(ours, ref, images, do_resize=False)


def test_pad_mixed_sizes():
    ours, ref = pair("ViT", do_resize=False)
    images = [photo(10, 13), photo(7, 20), photo(6, 5)]
    assert_same(ours, ref, images, do_pad=True)
    assert_same(ours, ref, images, do_pad=True, pad_size={"height": 12, "width": 21})
    out = ours(images, do_pad=True, return_tensors="np").pixel_values
    assert out.shape == (3, 3, 10, 20) and out.dtype == np.float32


def test_output_layout_and_explicit_input_layout():
    ours, ref = pair("ViT", size={"height": 12, "width": 10})
    img = photo(20, 30)
    last = ours(img, data_format="channels_last", return_tensors="np").pixel_values
    first = ref(img, return_tensors="np").pixel_values
    assert np.array_equal(last, first.transpose(0, 2, 3, 1))
    # ambiguous shapes: featx asks, the reference guesses; with the layout given both agree
    tricky = photo(3, 40)  # (3, 40, 3): channels could be first or last
    with pytest.raises(InputError, match="input_data_format"):
        ours(tricky)
    for fmt in ("channels_last", "channels_first"):
        assert_same(ours, ref, tricky, input_data_format=fmt)
    assert_same(ours, ref, photo(1, 1), input_data_format="channels_last")


def test_accelerator_route_matches_reference(monkeypatch):
    """The torch route (what a CUDA tensor takes), forced onto the CPU, gives the reference's numbers."""
    monkeypatch.setattr(P, "_wants_torch", lambda items, device: True)
    rgba = photo(26, 33, 4)
    for name in ("ViT", "CLIP", "ConvNext", "DeiT"):
        ours, ref = pair(name)
        cases = [
            (torch.from_numpy(photo(40, 57)), None),
            ([torch.from_numpy(np.ascontiguousarray(photo(21, 30).transpose(2, 0, 1))), Image.fromarray(photo(50, 20))], None),
            (torch.from_numpy(photo(33, 20).astype(np.float32) / 255), None),
            (rgba, None),
        ]
        for images, ref_images in cases:
            out = run(ours, images, device="cpu")
            ref_out = run(ref, images if ref_images is None else ref_images)
            if isinstance(out, Exception) or isinstance(ref_out, Exception):
                assert isinstance(out, Exception) and isinstance(ref_out, Exception), (out, ref_out)
                continue
            assert all(isinstance(t, torch.Tensor) for t in out)
            for a, b in zip(out, ref_out):
                assert tuple(a.shape) == b.shape and str(a.dtype) == f"torch.{b.dtype}"
                assert float(np.abs(a.numpy() - b).max()) <= TOL
        batch = ours(torch.from_numpy(np.stack([photo(30, 30)] * 2)), device="cpu", return_tensors="pt").pixel_values
        assert isinstance(batch, torch.Tensor) and batch.shape[0] == 2
