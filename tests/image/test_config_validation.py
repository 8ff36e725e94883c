"""Bad image processor configs fail when the processor is built (constructor, ``from_dict``,
``from_pretrained``) with a `ConfigError` naming the field and the value, never once per image;
the configs the reference's checkpoints ship keep loading."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import featx
import featx.image.processors as P
from featx.errors import ConfigError, InputError
from featx.image.fuyu import FuyuImageProcessor

CLASSES = [
    P.BaseImageProcessor,
    P.ViTImageProcessor,
    P.DeiTImageProcessor,
    P.CLIPImageProcessor,
    P.BitImageProcessor,
    P.ConvNextImageProcessor,
    P.SiglipImageProcessor,
    FuyuImageProcessor,
]

# (config, a pattern the message must match): wrong for every class.
BAD = [
    ({"image_std": [0.5] * 5}, r"^preprocessor_config\.json: image_std must have 1 or 3 values, got 5$"),
    ({"image_mean": [0.1, 0.2]}, r"image_mean must have 1 or 3 values, got 2"),
    ({"image_std": [0, 0, 0]}, r"image_std must not be 0"),
    ({"image_std": 0}, r"image_std must not be 0"),
    ({"image_std": [0.5, 0.0, 0.5]}, r"image_std must not be 0"),
    ({"image_mean": [float("nan")] * 3}, r"image_mean must hold finite numbers"),
    ({"image_std": float("inf")}, r"image_std must hold finite numbers"),
    ({"image_mean": "0.5"}, r"image_mean must be a number or a list of numbers, got '0.5'"),
    ({"image_mean": [0.1, "a", 0.2]}, r"image_mean must hold finite numbers"),
    ({"image_mean": True}, r"image_mean"),
    ({"rescale_factor": "x"}, r"rescale_factor must be a finite number, got 'x'"),
    ({"rescale_factor": 0}, r"rescale_factor must be a positive number, got 0"),
    ({"rescale_factor": -1 / 255}, r"rescale_factor must be a positive number"),
    ({"rescale_factor": float("nan")}, r"rescale_factor must be a finite number"),
    ({"rescale_factor": True}, r"rescale_factor"),
    ({"size": 0}, r"size must be an integer from 1 to 16384, got 0"),
    ({"size": -5}, r"size must be an integer from 1 to 16384, got -5"),
    ({"size": 100000}, r"size must be an integer from 1 to 16384, got 100000"),
    ({"size": {"height": 0, "width": 224}}, r"size\['height'\] must be an integer from 1 to 16384, got 0"),
    ({"size": {"height": 224, "width": 22.5}}, r"size\['width'\] must be an integer"),
    ({"size": {"height": "224", "width": 224}}, r"size\['height'\] must be an integer"),
    ({"size": [224, -1]}, r"size must be an integer"),
    ({"size": "big"}, r"size must be an int, \(height, width\) or a dict"),
    ({"crop_size": {"height": 20000, "width": 224}}, r"crop_size\['height'\] must be an integer from 1 to 16384"),
    ({"crop_size": 0}, r"crop_size must be an integer"),
    ({"pad_size": {"height": -1, "width": 3}}, r"pad_size\['height'\]"),
    ({"resample": 9}, r"resample: unknown resample filter 9"),
    ({"resample": "cubicx"}, r"resample: unknown resample filter 'cubicx'"),
    ({"resample": 2.5}, r"resample"),
    ({"do_resize": "yes"}, r"do_resize must be true or false, got 'yes'"),
    ({"do_normalize": 2}, r"do_normalize must be true or false, got 2"),
    ({"do_convert_rgb": "false"}, r"do_convert_rgb must be true or false"),
]


def _bad_ids(case: tuple) -> str:
    return json.dumps(case[0], default=str)[:40]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", BAD, ids=[_bad_ids(c) for c in BAD])
def test_bad_config_fails_at_the_constructor_and_from_dict(cls, case):
    config, pattern = case
    with pytest.raises(ConfigError, match=pattern):
        cls(**config)
    with pytest.raises(ConfigError, match=pattern):
        cls.from_dict(config)


@pytest.mark.parametrize("cls", [P.ViTImageProcessor, P.CLIPImageProcessor, FuyuImageProcessor], ids=lambda c: c.__name__)
def test_bad_config_fails_at_from_pretrained_and_auto(cls, tmp_path: pathlib.Path):
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"image_processor_type": cls.__name__, "image_std": [0.5] * 5})
    )
    message = r"^preprocessor_config\.json: image_std must have 1 or 3 values, got 5$"
    with pytest.raises(ConfigError, match=message):
        cls.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=message):
        featx.AutoImageProcessor.from_pretrained(tmp_path)


def test_the_error_is_not_an_input_error():
    """A job records input errors per row and stops on config errors: a bad config is the latter."""
    with pytest.raises(ConfigError) as info:
        P.ViTImageProcessor(image_std=[0.5] * 5)
    assert not isinstance(info.value, InputError)


@pytest.mark.parametrize(
    "cls, config, pattern",
    [
        # one list of values for mean and another for std: no channel count fits both
        (P.ViTImageProcessor, {"image_mean": [1]}, r"image_mean has 1 value\(s\) but image_std has 3"),
        (P.BaseImageProcessor, {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5]}, r"image_mean has 3 value\(s\) but image_std has 1"),
        # RGB conversion makes every image 3-channel
        (P.CLIPImageProcessor, {"image_mean": [0.5], "image_std": [0.5]}, r"image_mean must have 3 values when do_convert_rgb is true"),
        (P.ConvNextImageProcessor, {"crop_pct": 0}, r"crop_pct must be a number in \(0, 1\], got 0"),
        (P.ConvNextImageProcessor, {"crop_pct": 1.5}, r"crop_pct must be a number in \(0, 1\], got 1.5"),
        (P.ConvNextImageProcessor, {"crop_pct": "0.9"}, r"crop_pct"),
        (FuyuImageProcessor, {"size": {"height": 1080}}, r"size must have 'height' and 'width'"),
        (FuyuImageProcessor, {"size": {"shortest_edge": 224}}, r"size must have 'height' and 'width'"),
        (FuyuImageProcessor, {"patch_size": {"height": 0, "width": 30}}, r"patch_size\['height'\] must be an integer"),
        (FuyuImageProcessor, {"padding_value": "white"}, r"padding_value must be a finite number, got 'white'"),
        (FuyuImageProcessor, {"padding_value": None}, r"padding_value must be a finite number, got None"),
        (FuyuImageProcessor, {"padding_mode": "wrap"}, r"unknown padding mode 'wrap'"),
    ],
)
def test_class_specific_checks(cls, config, pattern):
    with pytest.raises(ConfigError, match=pattern):
        cls(**config)
    with pytest.raises(ConfigError, match=pattern):
        cls.from_dict(config)


# Configs as the reference's checkpoints ship them (legacy spellings included) and edge values.
VALID = [
    (P.ViTImageProcessor, {"feature_extractor_type": "ViTFeatureExtractor", "do_normalize": True, "do_resize": True,
                           "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 224}),
    (P.CLIPImageProcessor, {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                            "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
                            "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}),
    (P.BitImageProcessor, {"crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
                           "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
                           "image_processor_type": "BitImageProcessor", "image_std": [0.229, 0.224, 0.225], "resample": 3,
                           "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 256}}),
    (P.ConvNextImageProcessor, {"crop_pct": 0.875, "do_normalize": True, "do_resize": True, "feature_extractor_type": "ConvNextFeatureExtractor",
                                "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224}),
    (P.ConvNextImageProcessor, {"crop_pct": 1, "size": {"shortest_edge": 384}}),
    (P.ConvNextImageProcessor, {"crop_pct": None}),
    (P.SiglipImageProcessor, {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
                              "image_processor_type": "SiglipImageProcessor", "image_std": [0.5, 0.5, 0.5], "processor_class": "SiglipProcessor",
                              "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"height": 224, "width": 224}}),
    (P.DeiTImageProcessor, {"crop_size": 224, "do_center_crop": True, "size": 256, "resample": 3}),
    (FuyuImageProcessor, {"do_normalize": True, "do_pad": True, "do_rescale": True, "do_resize": True, "image_mean": 0.5,
                          "image_processor_type": "FuyuImageProcessor", "image_std": 0.5, "padding_mode": "constant", "padding_value": 1.0,
                          "patch_size": {"height": 30, "width": 30}, "processor_class": "FuyuProcessor", "resample": 2,
                          "rescale_factor": 0.00392156862745098, "size": {"height": 1080, "width": 1920}}),
    # edge values: int scalars, one value per channel for a grayscale model, the size bounds, no steps at all
    (P.ViTImageProcessor, {"image_mean": 0, "image_std": 1, "rescale_factor": 1}),
    (P.ViTImageProcessor, {"image_mean": [0.5], "image_std": [0.25]}),
    (P.ViTImageProcessor, {"size": {"height": 1, "width": 16384}, "resample": "bicubic"}),
    (P.ViTImageProcessor, {"size": {"shortest_edge": 800, "longest_edge": 1333}}),
    (P.ViTImageProcessor, {"size": {"height": 224.0, "width": 224}}),
    (P.BaseImageProcessor, {"do_rescale": False, "rescale_factor": None, "image_mean": None, "image_std": None, "resample": None}),
    (P.CLIPImageProcessor, {"size": 336, "use_square_size": True}),
    (P.ViTImageProcessor, {"unknown_future_key": [1, 2, 3, 4, 5], "crop_pct": 0}),  # not options: kept, not checked
]


@pytest.mark.parametrize("cls, config", VALID, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(VALID)])
def test_valid_configs_load_and_run(cls, config, tmp_path: pathlib.Path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    proc = cls.from_pretrained(tmp_path)
    assert isinstance(proc, cls)
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    if isinstance(proc, FuyuImageProcessor):
        assert proc(image)["images"][0][0].shape == (3, 1080, 1920)
        return
    if not (isinstance(proc.image_mean, tuple) and len(proc.image_mean) == 1):
        size = proc.size or {}
        if max(size.values(), default=0) <= 2048:  # keep the test fast
            assert len(proc(image).pixel_values) == 1


def test_valid_configs_load_in_the_reference_too(tmp_path: pathlib.Path):
    transformers = pytest.importorskip("transformers")
    for cls, config in VALID[:9]:
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
        getattr(transformers, cls.__name__ + "Pil").from_pretrained(tmp_path)
        cls.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"image_std": [0.5, 0, 0.5]}, r"image_std must not be 0"),
        ({"rescale_factor": "x"}, r"rescale_factor must be a finite number"),
        ({"size": 0}, r"size must be an integer from 1 to 16384"),
        ({"resample": 42}, r"unknown resample filter 42"),
    ],
)
def test_call_arguments_are_checked_the_same_way(overrides, pattern):
    image = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ConfigError, match=pattern):
        P.ViTImageProcessor()(image, **overrides)
    # Fuyu reports bad call arguments as input errors, as it always has
    with pytest.raises(InputError, match=pattern):
        FuyuImageProcessor()(image, **overrides)


def test_options_set_after_construction_are_checked_at_the_call():
    proc = P.ViTImageProcessor()
    proc.image_std = (0.5, 0.0, 0.5)
    with pytest.raises(ConfigError, match="image_std must not be 0"):
        proc(np.zeros((20, 30, 3), np.uint8))
