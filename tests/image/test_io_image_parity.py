"""load_image against transformers.image_utils.load_image and the processors' convert_to_rgb."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from featx.image.io import load_image

image_utils = pytest.importorskip("transformers.image_utils")
image_transforms = pytest.importorskip("transformers.image_transforms")

RNG = np.random.default_rng(1)


def random_image(mode: str, size: tuple[int, int] = (9, 6)) -> Image.Image:
    """A random image of any PIL mode (P with a transparent index)."""
    w, h = size
    if mode.startswith("I;16"):
        return Image.fromarray(RNG.integers(0, 700, (h, w), dtype=np.uint16)).convert(mode)
    if mode == "I":
        return Image.fromarray(RNG.integers(-300, 700, (h, w), dtype=np.int32))
    if mode == "F":
        return Image.fromarray(RNG.uniform(-50, 400, (h, w)).astype(np.float32))
    if mode == "1":
        return Image.fromarray(RNG.integers(0, 2, (h, w), dtype=np.uint8) * 255).convert("1")
    if mode == "P":
        img = Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert("P", colors=16)
        img.info["transparency"] = 3
        return img
    bands = len(Image.new(mode, (1, 1)).getbands())
    data = RNG.integers(0, 256, (h, w, bands), dtype=np.uint8)
    return Image.frombytes(mode, (w, h), data.tobytes())


MODES = [m for m in Image.MODES if m not in ("La", "RGBa")]  # the reference cannot convert La/RGBa


@pytest.mark.parametrize("mode", MODES)
def test_pil_inputs_match_reference_for_every_mode(mode: str) -> None:
    img = random_image(mode)
    assert img.mode == mode
    ref = image_utils.load_image(img.copy())
    out = load_image(img)
    assert out.mode == ref.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


@pytest.mark.parametrize(
    "mode, fmt",
    [
        ("RGB", "PNG"), ("RGBA", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("1", "PNG"),
        ("I;16", "PNG"), ("I", "TIFF"), ("RGB", "JPEG"), ("L", "JPEG"), ("CMYK", "JPEG"), ("CMYK", "TIFF"),
        ("F", "TIFF"), ("I;16", "TIFF"), ("RGBA", "TIFF"), ("YCbCr", "JPEG"), ("RGB", "BMP"), ("P", "GIF"),
        ("RGBA", "WEBP"), ("RGB", "WEBP"), ("LA", "TIFF"),
    ],
)
def test_files_match_reference(mode: str, fmt: str, tmp_path: pathlib.Path) -> None:
    path = tmp_path / f"img.{fmt.lower()}"
    random_image(mode, (13, 8)).save(path, fmt)
    ref = image_utils.load_image(str(path))
    np.testing.assert_array_equal(np.asarray(load_image(path)), np.asarray(ref))
    np.testing.assert_array_equal(np.asarray(load_image(path.read_bytes())), np.asarray(ref))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_jpeg_matches_reference(orientation: int, tmp_path: pathlib.Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    random_image("RGB", (16, 10)).save(path, "JPEG", exif=exif.tobytes())
    ref = image_utils.load_image(str(path))
    out = load_image(str(path))
    assert out.size == ref.size
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "PA", "RGB", "L", "1", "CMYK"])
def test_white_background_matches_processor_convert_to_rgb(mode: str) -> None:
    img = random_image(mode)
    ref = image_transforms.convert_to_rgb(img.copy(), return_numpy=True)
    out = load_image(img, background=(255, 255, 255))
    np.testing.assert_array_equal(np.asarray(out), ref)


def test_gif_with_transparency_matches_reference() -> None:
    frames = [random_image("P", (8, 8)) for _ in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], transparency=3)
    data = buf.getvalue()
    ref = image_utils.load_image(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(np.asarray(load_image(data)), np.asarray(ref))
    ref_white = image_transforms.convert_to_rgb(Image.open(io.BytesIO(data)), return_numpy=True)
    np.testing.assert_array_equal(np.asarray(load_image(data, background="white")), ref_white)
