"""Image processor configs (defaults, save/load both ways with transformers, legacy spellings) and
call behaviour (return types, overrides, errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import featx
import featx.image.processors as P
from featx.errors import ConfigError, InputError

transformers = pytest.importorskip("transformers")

NAMES = ["ViT", "DeiT", "CLIP", "Bit", "ConvNext", "Siglip"]


def ours_cls(name):
    return getattr(P, f"{name}ImageProcessor")


def ref_cls(name):
    return getattr(transformers, f"{name}ImageProcessorPil")


def ref_options(proc) -> dict:
    """The reference's saved options, JSON-normalised, without the type key."""
    data = json.loads(proc.to_json_string())
    data.pop("image_processor_type", None)
    return data


def ours_options(proc) -> dict:
    data = json.loads(proc.to_json_string())
    data.pop("image_processor_type")
    return data


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_the_references(name, tmp_path):
    ref = ref_cls(name)()
    ours = ours_cls(name)()
    assert ours_options(ours) == ref_options(ref)
    ref.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    ours.save_pretrained(tmp_path / "ours")
    mine = json.loads((tmp_path / "ours" / "preprocessor_config.json").read_text())
    assert mine == saved  # the same file, type name included


CUSTOM = {
    "size": {"height": 100, "width": 120},
    "resample": 5,
    "do_center_crop": True,
    "crop_size": {"height": 90, "width": 80},
    "do_normalize": False,
    "image_mean": [0.1, 0.2, 0.3],
    "image_std": [0.4, 0.5, 0.6],
    "rescale_factor": 0.5,
    "do_convert_rgb": False,
}


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_featx_to_transformers(name, tmp_path):
    options = dict(CUSTOM)
    if name in ("CLIP", "Bit", "ConvNext"):
        options["size"] = {"shortest_edge": 77}
    if name == "ConvNext":
        options["crop_pct"] = 0.9
    ours = ours_cls(name)(**options)
    ours.extra_options["future_key"] = {"kept": [1, 2]}
    ours.save_pretrained(tmp_path)
    loaded = ref_cls(name).from_pretrained(tmp_path)
    got = ref_options(loaded)
    for key, value in options.items():
        assert got[key] == value, key
    assert got["future_key"] == {"kept": [1, 2]}
    # transformers' Auto class picks the matching processor from the saved type
    auto = transformers.AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    assert type(auto).__name__ == f"{name}ImageProcessorPil"


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_transformers_to_featx(name, tmp_path):
    options = dict(CUSTOM)
    if name in ("CLIP", "Bit", "ConvNext"):
        options["size"] = {"shortest_edge": 77}
    ref = ref_cls(name)(**options)
    ref.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "preprocessor_config.json").read_text())
    data["unknown_from_the_future"] = 3
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(data))
    ours = ours_cls(name).from_pretrained(tmp_path)
    assert ours_options(ours) == {k: v for k, v in data.items() if k != "image_processor_type"}
    assert ours.extra_options == {"unknown_from_the_future": 3}
    auto = featx.AutoImageProcessor.from_pretrained(tmp_path)
    assert type(auto) is ours_cls(name)
    # and back: a featx save of a transformers folder loads in transformers unchanged
    ours.save_pretrained(tmp_path / "again")
    again = ref_cls(name).from_pretrained(tmp_path / "again")
    assert ref_options(again) == ref_options(ref) | {"unknown_from_the_future": 3}


def test_legacy_spellings(tmp_path):
    legacy = {
        "feature_extractor_type": "CLIPFeatureExtractor",
        "size": 224,
        "crop_size": 200,
        "resample": 3,
        "do_center_crop": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(legacy))
    ours = featx.AutoImageProcessor.from_pretrained(tmp_path)
    ref = transformers.CLIPImageProcessorPil.from_pretrained(tmp_path)
    assert isinstance(ours, P.CLIPImageProcessor)
    assert ours.size == {"shortest_edge": 224} and ours.crop_size == {"height": 200, "width": 200}
    assert ours_options(ours)["size"] == ref_options(ref)["size"]
    assert ours_options(ours)["crop_size"] == ref_options(ref)["crop_size"]
    # ViT: an int size is a square; (h, w) lists become height/width
    assert P.ViTImageProcessor(size=32).size == {"height": 32, "width": 32}
    assert P.ViTImageProcessor.from_dict({"size": [10, 20]}).size == {"height": 10, "width": 20}
    assert P.ConvNextImageProcessor.from_dict({"size": 224}).size == {"shortest_edge": 224}
    assert P.CLIPImageProcessor.from_dict({"size": 336, "use_square_size": True}).size == {"height": 336, "width": 336}
    assert P.ViTImageProcessor(resample="bicubic").resample == 3
    with pytest.raises(ConfigError):
        P.ViTImageProcessor(size={"height": 3})
    with pytest.raises(ConfigError):
        P.ViTImageProcessor.from_dict({"size": "big"})


def test_overrides_and_unused_kwargs(tmp_path):
    P.ViTImageProcessor().save_pretrained(tmp_path)
    proc, unused = P.ViTImageProcessor.from_pretrained(tmp_path, size=64, cache_dir=None, foo=1, return_unused_kwargs=True)
    assert proc.size == {"height": 64, "width": 64} and unused == {"foo": 1}


def test_return_types_and_batching():
    proc = P.CLIPImageProcessor()
    imgs = [Image.new("RGB", (50, 40), (10, 20, 30)), np.zeros((64, 48, 3), np.uint8)]
    out = proc(imgs)
    assert isinstance(out, featx.BatchFeature) and isinstance(out.pixel_values, list) and len(out.pixel_values) == 2
    np_out = proc(imgs, return_tensors="np").pixel_values
    assert isinstance(np_out, np.ndarray) and np_out.shape == (2, 3, 224, 224) and np_out.dtype == np.float32
    pt = proc.preprocess(imgs, return_tensors="pt").pixel_values
    assert isinstance(pt, torch.Tensor) and pt.dtype == torch.float32
    assert np.array_equal(pt.numpy(), np_out)
    # without a fixed output size a mixed batch is ragged: a list, or a clear error for tensors
    ragged = proc(imgs, do_center_crop=False)
    assert ragged.pixel_values[0].shape != ragged.pixel_values[1].shape
    with pytest.raises(InputError, match="pad"):
        proc(imgs, do_center_crop=False, return_tensors="np")


def test_call_arguments_and_errors():
    proc = P.ViTImageProcessor()
    img = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(TypeError, match="unexpected"):
        proc(img, not_an_option=1)
    with pytest.raises(ConfigError, match="crop_size"):
        proc(img, do_center_crop=True)
    with pytest.raises(ConfigError, match="image_mean"):
        P.BaseImageProcessor(do_normalize=True)(img)
    with pytest.raises(InputError, match="no images"):
        proc([])
    with pytest.raises(InputError, match="image 1"):
        proc([img, {"not": "an image"}])
    with pytest.raises(InputError, match="image 1"):
        proc([img, np.zeros((30, 3, 20), np.uint8)])  # no channel axis at either end
    with pytest.raises(InputError, match="0, 1"):
        proc(np.full((20, 30, 3), 2.5, np.float32))
    with pytest.raises(InputError, match="data_format"):
        proc(img, data_format="NCHWD")
    # ConvNeXt takes crop_pct as a call argument; others do not
    conv = P.ConvNextImageProcessor(size={"shortest_edge": 32})
    assert conv(img, crop_pct=0.5, return_tensors="np").pixel_values.shape == (1, 3, 32, 32)
    with pytest.raises(TypeError):
        proc(img, crop_pct=0.5)
    with pytest.raises(ConfigError, match="shortest_edge"):
        P.ConvNextImageProcessor(size={"height": 3, "width": 3})(img)


def test_base_processor_does_nothing_by_default():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = P.BaseImageProcessor()(img, input_data_format="channels_last", return_tensors="np").pixel_values
    assert out.dtype == np.uint8 and np.array_equal(out[0], img.transpose(2, 0, 1))


def test_paths_and_bytes_are_decoded(tmp_path):
    pytest.importorskip("featx.image.io")
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    proc = P.ViTImageProcessor(size={"height": 16, "width": 16})
    from_array = proc(rgb, return_tensors="np").pixel_values
    for src in (str(path), path, path.read_bytes()):
        assert np.array_equal(proc(src, return_tensors="np").pixel_values, from_array)
    with pytest.raises(InputError) as info:
        proc([rgb, str(tmp_path / "missing.png")])
    assert "missing.png" in str(info.value)


def test_inputs_are_not_modified_and_threads_keep_order(monkeypatch):
    monkeypatch.setenv("FEATX_NUM_THREADS", "2")
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(9)]
    copies = [i.copy() for i in imgs]
    proc = P.DeiTImageProcessor(size={"height": 12, "width": 12}, crop_size={"height": 10, "width": 10})
    batch = proc(imgs, return_tensors="np").pixel_values
    assert all(np.array_equal(a, b) for a, b in zip(imgs, copies))
    for i, img in enumerate(imgs):
        assert np.array_equal(proc(img, return_tensors="np").pixel_values[0], batch[i])


def test_exported_from_featx():
    for name in NAMES:
        assert getattr(featx, f"{name}ImageProcessor") is ours_cls(name)
    assert featx.BaseImageProcessor is P.BaseImageProcessor
