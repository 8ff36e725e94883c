"""FuyuImageProcessor on its own: options, layout, errors, patch helpers (no reference needed)."""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

from featx.errors import InputError
from featx.image.fuyu import FuyuImageProcessor
from featx.registry import AutoImageProcessor, lookup

RNG = np.random.default_rng(3)


def u8(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def proc() -> FuyuImageProcessor:
    return FuyuImageProcessor()


def test_defaults_and_saved_keys() -> None:
    d = FuyuImageProcessor().to_dict()
    assert d["size"] == {"height": 1080, "width": 1920} and d["patch_size"] == {"height": 30, "width": 30}
    assert d["resample"] == 2 and d["padding_value"] == 1.0 and d["padding_mode"] == "constant"
    assert d["image_mean"] == 0.5 and d["image_std"] == 0.5 and d["rescale_factor"] == 1 / 255
    assert d["image_processor_type"] == "FuyuImageProcessor"
    json.dumps(d)


def test_option_spellings_are_normalised() -> None:
    p = FuyuImageProcessor(size=720, patch_size=(20, 40), resample="bicubic", image_mean=(0.1, 0.2, 0.3))
    assert p.size == {"height": 720, "width": 720} and p.patch_size == {"height": 20, "width": 40}
    assert p.resample == 3 and p.image_mean == (0.1, 0.2, 0.3)
    assert FuyuImageProcessor(resample=Image.Resampling.LANCZOS).resample == 1
    assert FuyuImageProcessor.from_dict({"size": [100, 200], "foo": 1}).extra_options == {"foo": 1}


def test_registered_and_found_by_auto(tmp_path: pathlib.Path) -> None:
    assert lookup("image_processor", "FuyuImageProcessor") is FuyuImageProcessor
    assert lookup("image_processor", "FuyuImageProcessorPil") is FuyuImageProcessor
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 60, "width": 90}}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "fuyu"}))
    p = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(p, FuyuImageProcessor) and p.size == {"height": 60, "width": 90}


def test_outputs_by_hand(proc: FuyuImageProcessor) -> None:
    img = u8((40, 50, 3))
    out = proc(img)
    (pixels,) = out["images"][0]
    assert pixels.shape == (3, 1080, 1920) and pixels.dtype == np.float32
    expected = ((img.transpose(2, 0, 1).astype(np.float64) / 255).astype(np.float32) - np.float32(0.5)) / np.float32(0.5)
    np.testing.assert_array_equal(pixels[:, :40, :50], expected)
    pad = np.float32((np.float32(1 / 255) - np.float32(0.5)) / np.float32(0.5))
    assert (pixels[:, 40:] == pad).all() and (pixels[:, :, 50:] == pad).all()
    assert abs(pad - (-0.99216)) < 1e-5
    assert out["image_unpadded_heights"] == [[40]] and out["image_unpadded_widths"] == [[50]]
    assert out["image_scale_factors"] == [[1.0]] and out["image_sizes"] == [(40, 50)]


def test_downscale_only_when_larger(proc: FuyuImageProcessor) -> None:
    out = proc(u8((1200, 2500, 3)))
    assert out["image_unpadded_heights"] == [[921]] and out["image_unpadded_widths"] == [[1920]]
    assert out["image_scale_factors"] == [[921 / 1200]]
    out = proc(u8((1080, 1920, 3)))
    assert out["image_scale_factors"] == [[1.0]]


def test_sources_give_the_same_pixels(proc: FuyuImageProcessor, tmp_path: pathlib.Path) -> None:
    img = u8((30, 45, 3))
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    base = proc(img)["images"][0][0]
    for src in (str(path), path, buf.getvalue(), Image.fromarray(img), torch.from_numpy(img.transpose(2, 0, 1).copy())):
        np.testing.assert_array_equal(proc(src)["images"][0][0], base)


def test_batch_array_is_a_list_of_samples(proc: FuyuImageProcessor) -> None:
    batch = u8((2, 3, 20, 30))
    out = proc(batch, return_tensors="np")
    assert out["images"].shape == (2, 1, 3, 1080, 1920)
    np.testing.assert_array_equal(out["images"][1, 0], proc(batch[1])["images"][0][0])


def test_data_format_channels_last(proc: FuyuImageProcessor) -> None:
    img = u8((20, 30, 3))
    first = proc(img)["images"][0][0]
    last = proc(img, data_format="channels_last")["images"][0][0]
    assert last.shape == (1080, 1920, 3)
    np.testing.assert_array_equal(last, first.transpose(1, 2, 0))


def test_return_tensors_pt_dtypes(proc: FuyuImageProcessor) -> None:
    out = proc([u8((20, 30, 3)), u8((25, 30, 3))], return_tensors="pt")
    assert out["images"].shape == (2, 1, 3, 1080, 1920) and out["images"].dtype == torch.float32
    assert out["image_scale_factors"].dtype == torch.float32
    assert out["image_sizes"].dtype == torch.int64 and out["image_sizes"].tolist() == [[20, 30], [25, 30]]


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda p: p(u8((3, 20, 3))), "input_data_format"),
        (lambda p: p(u8((20, 30, 5))), "input_data_format"),
        (lambda p: p(u8((1100, 100, 3)), do_resize=False), "larger on one side"),
        (lambda p: p(u8((4000, 3, 3)), input_data_format="channels_last"), "too thin"),
        (lambda p: p(u8((20, 30, 3)), image_mean=[0.5, 0.5]), "image_mean"),
        (lambda p: p(u8((20, 30, 3)), size={"height": 10}), "height"),
        (lambda p: p(u8((20, 30, 3)), padding_mode="wrap"), "padding mode"),
        (lambda p: p(np.full((1100, 20, 3), 7.5, np.float32)), "values"),
        (lambda p: p([]), "no images"),
        (lambda p: p(42), "images must be"),
        (lambda p: p(u8((20, 30, 3)), data_format="xyz"), "data_format"),
    ],
)
def test_errors(call, pattern: str, proc: FuyuImageProcessor) -> None:
    with pytest.raises(InputError, match=pattern):
        call(proc)


def test_error_names_the_image(proc: FuyuImageProcessor) -> None:
    with pytest.raises(InputError, match=r"images\[1\]\[0\]") as info:
        proc([u8((20, 30, 3)), u8((3, 20, 3))])
    assert info.value.source == "images[1][0]"


def test_unknown_arguments_are_refused(proc: FuyuImageProcessor) -> None:
    with pytest.raises(TypeError):
        proc(u8((20, 30, 3)), foo=1)


def test_patchify_image_layout(proc: FuyuImageProcessor) -> None:
    image = np.arange(2 * 60 * 90, dtype=np.float32).reshape(2, 60, 90)
    patches = proc.patchify_image(image)
    assert patches.shape == (6, 30 * 30 * 2)
    # Patch 4 is row 1, column 1; flattened in (ph, pw, C) order.
    expected = image[:, 30:60, 30:60].transpose(1, 2, 0).reshape(-1)
    np.testing.assert_array_equal(patches[4], expected)
    assert proc.patchify_image(image[None]).shape == (1, 6, 1800)
    np.testing.assert_array_equal(proc.patchify_image(torch.from_numpy(image)).numpy(), patches)


def test_patch_helper_errors(proc: FuyuImageProcessor) -> None:
    with pytest.raises(InputError, match="divisible by 30"):
        proc.get_num_patches(1080, 1921)
    with pytest.raises(InputError, match="divisible by 30"):
        proc.get_num_patches(1, 30)
    with pytest.raises(InputError, match="do not cover"):
        proc.patchify_image(np.zeros((3, 61, 90), np.float32))
    with pytest.raises(InputError, match="expected an image"):
        proc.patchify_image(np.zeros((61, 90), np.float32))
    assert proc.get_num_patches(1080, 1920) == 36 * 64
    assert proc.get_num_patches(20, 40, {"height": 10, "width": 20}) == 4


def test_tokenizer_info_by_hand(proc: FuyuImageProcessor) -> None:
    image_input = torch.zeros(1, 2, 3, 60, 90)
    out = proc.preprocess_with_tokenizer_info(
        image_input, torch.tensor([[1, 1]]), torch.tensor([[31, 60]]), torch.tensor([[61, 20]]), 5, 9, True
    )
    ids = out["image_input_ids"][0]
    # First image: unpadded 31x61 -> 60x90 crop (2 rows x 3 patches), a newline after each row.
    assert ids[0].tolist() == [5, 5, 5, 9, 5, 5, 5, 9]
    assert out["image_patch_indices_per_subsequence"][0][0].tolist() == [0, 1, 2, -1, 3, 4, 5, -1]
    # Second image: 60x20 -> 60x30 (2 rows x 1 patch); per-batch numbering continues after 6.
    assert ids[1].tolist() == [5, 9, 5, 9]
    assert out["image_patch_indices_per_batch"][0][1].tolist() == [6, -1, 7, -1]
    assert out["image_patches"][0][1].shape == (2, 2700)
    fixed = proc.preprocess_with_tokenizer_info(
        image_input, torch.tensor([[0, 1]]), torch.tensor([[31, 60]]), torch.tensor([[61, 20]]), 5, 9, False
    )
    assert fixed["image_input_ids"][0][0].numel() == 0 and fixed["image_input_ids"][0][1].tolist() == [5] * 6
