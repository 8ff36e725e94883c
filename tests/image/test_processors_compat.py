"""What the reference's own image-processor test mixin (``tests/test_image_processing_common.py``)
checks, run on featx's classes and compared with the reference's PIL classes: properties, JSON
round trips (string, file, folder), init without parameters, PIL / NumPy / torch inputs single and
batched, batched == one by one, casting via ``BatchFeature.to``, 4-channel input with
``input_data_format``; plus ``to_dict()`` keeping the reference's Python types."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import featx.image.processors as P
from featx.image.fuyu import FuyuImageProcessor

transformers = pytest.importorskip("transformers")

NAMES = ["ViT", "DeiT", "CLIP", "Bit", "ConvNext", "Siglip"]
ALL = [*NAMES, "Fuyu"]
RNG = np.random.default_rng(2024)
# small outputs keep the tests fast; the options are the ones the reference's testers pass
SMALL = {
    "ViT": {"size": {"height": 18, "width": 18}},
    "DeiT": {"size": {"height": 20, "width": 20}, "crop_size": {"height": 18, "width": 18}},
    "CLIP": {"size": {"shortest_edge": 20}, "crop_size": {"height": 18, "width": 18}},
    "Bit": {"size": {"shortest_edge": 20}, "crop_size": {"height": 18, "width": 18}},
    "ConvNext": {"size": {"shortest_edge": 20}, "crop_pct": 0.875},
    "Siglip": {"size": {"height": 18, "width": 18}},
    "Fuyu": {"size": {"height": 60, "width": 90}},
}


def ours_cls(name: str):
    return FuyuImageProcessor if name == "Fuyu" else getattr(P, f"{name}ImageProcessor")


def ref_cls(name: str):
    return getattr(transformers, f"{name}ImageProcessorPil")


def images(kind: str, n: int = 3, channels: int = 3) -> list:
    """Images of different sizes (up to 40 px) as the reference's tester makes them."""
    out = []
    for i in range(n):
        hwc = RNG.integers(0, 256, (24 + 5 * i, 40 - 4 * i, channels), dtype=np.uint8)
        if kind == "pil":
            out.append(Image.fromarray(hwc))
        elif kind == "numpy":
            out.append(hwc)
        else:
            out.append(torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1))))
    return out


def pixels(name: str, result) -> list[np.ndarray]:
    """Per-image outputs as arrays (Fuyu: each sample's first image)."""
    values = [s[0] for s in result["images"]] if name == "Fuyu" else list(result["pixel_values"])
    return [v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in values]


def assert_same(a: list[np.ndarray], b: list[np.ndarray], tol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
        assert float(np.abs(x.astype(np.float64) - y).max(initial=0)) <= tol


# ---- properties and saving -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_properties(name):
    proc = ours_cls(name)(**SMALL[name])
    for attr in ("do_resize", "size", "resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std",
                 "model_input_names", "valid_kwargs", "preprocess", "resize", "rescale", "normalize", "center_crop",
                 "pad", "fetch_images", "to_dict", "to_json_string", "to_json_file", "save_pretrained"):  # fmt: skip
        assert hasattr(proc, attr), attr
    if name != "Fuyu":
        assert hasattr(proc, "do_center_crop") and hasattr(proc, "crop_size") and hasattr(proc, "do_convert_rgb")
    assert proc.model_input_names == ref_cls(name).model_input_names


@pytest.mark.parametrize("name", ALL)
def test_init_without_params(name):
    assert ours_cls(name)() is not None
    assert ours_cls(name)().to_json_string() == ref_cls(name)().to_json_string()


@pytest.mark.parametrize("name", ALL)
def test_to_json_string(name):
    proc = ours_cls(name)(**SMALL[name])
    saved = json.loads(proc.to_json_string())
    for key, value in SMALL[name].items():
        assert saved[key] == value
    assert saved == json.loads(ref_cls(name)(**SMALL[name]).to_json_string())


@pytest.mark.parametrize("name", ALL)
def test_to_json_file_round_trip(name, tmp_path):
    first = ours_cls(name)(**SMALL[name])
    path = tmp_path / "processor.json"
    first.to_json_file(path)
    second = ours_cls(name).from_json_file(path)
    assert second.to_dict() == first.to_dict()
    ref_cls(name)(**SMALL[name]).to_json_file(tmp_path / "ref.json")
    assert path.read_text() == (tmp_path / "ref.json").read_text()  # byte for byte


@pytest.mark.parametrize("name", ALL)
def test_from_and_save_pretrained(name, tmp_path):
    first = ours_cls(name)(**SMALL[name])
    saved = first.save_pretrained(tmp_path / "ours")
    assert [p.rsplit("/", 1)[-1] for p in saved] == ["preprocessor_config.json"]
    second = ours_cls(name).from_pretrained(tmp_path / "ours")
    assert second.to_dict() == first.to_dict()
    ref_cls(name)(**SMALL[name]).save_pretrained(tmp_path / "ref")
    assert (tmp_path / "ours" / "preprocessor_config.json").read_text() == (tmp_path / "ref" / "preprocessor_config.json").read_text()


# ---- to_dict keeps the reference's Python types -------------------------------------------------------
def _types(proc) -> dict[str, type]:
    return {key: type(value) for key, value in proc.to_dict().items()}


@pytest.mark.parametrize("name", ALL)
def test_to_dict_types_match_the_reference(name, tmp_path):
    ours, ref = ours_cls(name), ref_cls(name)
    config = json.loads(ref().to_json_string())
    ref().save_pretrained(tmp_path)
    kwargs = {"resample": 3, "image_mean": [0.1, 0.2, 0.3], "image_std": 0.25, "size": 32}
    cases = {
        "defaults": (ours(), ref()),
        "from_dict": (ours.from_dict(dict(config)), ref.from_dict(dict(config))),
        "from_pretrained": (ours.from_pretrained(tmp_path), ref.from_pretrained(tmp_path)),
        "kwargs": (ours(**kwargs), ref(**kwargs)),
        "enum": (ours(resample=Image.Resampling.LANCZOS, image_mean=(0.5, 0.5, 0.5)), ref(resample=Image.Resampling.LANCZOS, image_mean=(0.5, 0.5, 0.5))),
    }
    for label, (o, r) in cases.items():
        assert _types(o) == _types(r), label
        assert o.to_dict() == r.to_dict(), label
        assert o.to_json_string() == r.to_json_string(), label
    default = ours().to_dict()
    assert isinstance(default["resample"], Image.Resampling)
    assert isinstance(ours().resample, Image.Resampling) and ours.from_dict(dict(config)).resample == config["resample"]


def test_to_dict_is_a_copy():
    proc = P.CLIPImageProcessor()
    data = proc.to_dict()
    data["size"]["shortest_edge"] = 1
    assert proc.size == {"shortest_edge": 224}


# ---- calls ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("kind", ["pil", "numpy", "torch"])
def test_call_single_and_batched(name, kind):
    ours, ref = ours_cls(name)(**SMALL[name]), ref_cls(name)(**SMALL[name])
    batch = images(kind)
    single_ours = ours(batch[0], return_tensors="pt")
    single_ref = ref(batch[0], return_tensors="pt")
    assert_same(pixels(name, single_ours), pixels(name, single_ref))
    if name != "Fuyu":
        assert tuple(single_ours.pixel_values.shape) == tuple(single_ref.pixel_values.shape)
        assert single_ours.pixel_values.shape[0] == 1
    batched = ours(batch, return_tensors="pt")
    assert_same(pixels(name, batched), pixels(name, ref(batch, return_tensors="pt")))
    if name != "Fuyu":
        assert tuple(batched.pixel_values.shape) == (3, *single_ours.pixel_values.shape[1:])
    # batched == one by one
    one_by_one = [pixels(name, ours(image, return_tensors="pt"))[0] for image in batch]
    assert_same(pixels(name, batched), one_by_one, tol=0.0)


@pytest.mark.parametrize("name", ALL)
def test_four_channels_with_input_data_format(name):
    """The reference's ``test_call_numpy_4_channels``: channels-first RGBA arrays, layout given."""
    ours, ref = ours_cls(name)(**SMALL[name]), ref_cls(name)(**SMALL[name])
    batch = [np.ascontiguousarray(im.transpose(2, 0, 1)) for im in images("numpy", channels=4)]
    kw = {"input_data_format": "channels_first", "image_mean": 0.0, "image_std": 1.0}
    assert_same(pixels(name, ours(batch[0], return_tensors="pt", **kw)), pixels(name, ref(batch[0], return_tensors="pt", **kw)))
    assert_same(pixels(name, ours(batch, **kw)), pixels(name, ref(batch, **kw)))


@pytest.mark.parametrize("name", NAMES)
def test_cast_dtype_device(name):
    """The reference's ``test_cast_dtype_device``: floating tensors are cast, integer ones only moved."""
    proc = ours_cls(name)(**SMALL[name])
    batch = images("torch")
    encoding = proc(batch, return_tensors="pt").to(torch.float16)
    assert encoding.pixel_values.device == torch.device("cpu") and encoding.pixel_values.dtype == torch.float16
    encoding = proc(batch, return_tensors="pt").to("cpu", torch.bfloat16)
    assert encoding.pixel_values.device == torch.device("cpu") and encoding.pixel_values.dtype == torch.bfloat16
    encoding = proc(batch, return_tensors="pt")
    encoding.update({"input_ids": torch.LongTensor([[1, 2, 3], [4, 5, 6]])})
    encoding = encoding.to(torch.float16)
    assert encoding.pixel_values.dtype == torch.float16 and encoding.input_ids.dtype == torch.long
    expected = ref_cls(name)(**SMALL[name])(batch, return_tensors="pt").to(torch.bfloat16).pixel_values
    assert torch.equal(proc(batch, return_tensors="pt").to(torch.bfloat16).pixel_values, expected)
