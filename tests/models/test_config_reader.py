"""The one config reader (`parse_config`) and the one key mapper (`remap_keys`), on their own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch

from featx.errors import ConfigError, ModelLoadError
from featx.models.ast import ASTConfig
from featx.models.clip import CLIPVisionConfig, SiglipVisionConfig
from featx.models.configs import ModelConfig, ModelConfigError, parse_config, require, setting
from featx.models.keys import describe_indices, layer_count_problem, layer_indices, remap_keys
from featx.models.vit import Dinov2Config, Dinov2WithRegistersConfig, ViTConfig
from featx.models.wav2vec2 import Wav2Vec2Config
from featx.models.whisper import WhisperConfig


@dataclass(frozen=True)
class _Toy(ModelConfig):
    sections: ClassVar[tuple[str, ...]] = ("inner",)

    width: int = setting(8, max=64)
    depth: int = setting(2, min=0, max=10)
    ratio: float = setting(0.5, min=0, max=1)
    name: str = setting("a", choices=("a", "b"))
    flag: bool = False
    size: tuple[int, int] = (4, 4)
    dims: tuple[int, ...] = (1, 2)
    extra: int | None = None
    top: int = setting(3, top_level=True)

    def check(self) -> None:
        require(self.width % 2 == 0, "width", f"({self.width}) must be even")


def test_reads_types_and_defaults() -> None:
    cfg = parse_config(_Toy, {"width": 16.0, "depth": 0, "ratio": 1, "name": "b", "flag": 1, "size": [2, 3],
                              "dims": [5], "extra": None, "unknown": object()})
    assert cfg == _Toy(width=16, depth=0, ratio=1.0, name="b", flag=True, size=(2, 3), dims=(5,), extra=None)
    assert isinstance(cfg.width, int) and isinstance(cfg.ratio, float) and cfg.flag is True
    assert parse_config(_Toy, {"size": 7}).size == (7, 7)
    assert parse_config(_Toy, {"size": (2, 3), "dims": (4, 5)}).dims == (4, 5)  # tuples from Python callers
    assert parse_config(_Toy, {}) == _Toy()


def test_nested_section_and_top_level_fields() -> None:
    cfg = parse_config(_Toy, {"inner": {"width": 32, "top": 5}, "width": 2, "top": 9})
    assert cfg.width == 32 and cfg.top == 9  # fields from the section, `top` from the top level first
    assert parse_config(_Toy, {"inner": {}, "width": 4}).width == 4  # an empty section: the top level
    with pytest.raises(ModelConfigError, match=r"^inner\.width \(7\) must be even$") as err:
        parse_config(_Toy, {"inner": {"width": 7}})
    assert err.value.field == "inner.width"
    with pytest.raises(ModelConfigError, match="inner must be a JSON object, got a list of 0 items"):
        parse_config(_Toy, {"inner": []})


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("width", 65, "width must be an integer from 1 to 64, got 65"),
    ("width", float("inf"), "width must be an integer from 1 to 64, got inf"),
    ("depth", -1, "depth must be an integer from 0 to 10, got -1"),
    ("ratio", True, "ratio must be a number from 0 to 1, got true"),
    ("ratio", float("nan"), "ratio must be a number from 0 to 1, got nan"),
    ("ratio", 10**400, "ratio must be a number from 0 to 1, got an integer of about 400 digits"),
    ("name", "c", 'name must be one of "a", "b", got "c"'),
    ("flag", 2, "flag must be true or false, got 2"),
    ("flag", "true", 'flag must be true or false, got "true"'),
    ("size", [1], "size must be an integer from 1 to 1048576 or a list of two, got a list of 1 items"),
    ("dims", [1, 0], "dims must be a list of 1 to 64 integers from 1 to 1048576, got a list of 2 items"),
    ("dims", list(range(1, 66)), "dims must be a list of 1 to 64 integers from 1 to 1048576, got a list of 65 items"),
    ("extra", "x" * 50, 'extra must be an integer from 1 to 1048576 or null, got "' + "x" * 40 + '..."'),
    ("width", {"a": 1}, "width must be an integer from 1 to 64, got an object with 1 keys"),
])
def test_bad_values(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ModelConfigError) as err:
        parse_config(_Toy, {key: value})
    assert str(err.value) == expected and err.value.field == key


def test_error_is_both_kinds_and_takes_a_location() -> None:
    with pytest.raises(ModelConfigError) as err:
        parse_config(_Toy, "not a dict")  # type: ignore[arg-type]
    assert isinstance(err.value, ModelLoadError) and isinstance(err.value, ConfigError)
    located = ModelConfigError("width must be ...", field="width").at("m/config.json")
    assert str(located) == "m/config.json: width must be ..." and located.field == "width"


def test_an_unknown_field_type_is_a_bug_not_a_config_error() -> None:
    @dataclass(frozen=True)
    class Odd(ModelConfig):
        mapping: dict | None = None

    with pytest.raises(TypeError, match="cannot read a field typed"):
        parse_config(Odd, {"mapping": {}})


REFERENCE = [
    ("ViTConfig", ViTConfig), ("DeiTConfig", ViTConfig), ("Dinov2Config", Dinov2Config),
    ("Dinov2WithRegistersConfig", Dinov2WithRegistersConfig), ("CLIPVisionConfig", CLIPVisionConfig),
    ("SiglipVisionConfig", SiglipVisionConfig), ("WhisperConfig", WhisperConfig), ("ASTConfig", ASTConfig),
    ("Wav2Vec2Config", Wav2Vec2Config), ("HubertConfig", Wav2Vec2Config),
]


@pytest.mark.parametrize(("reference", "ours"), REFERENCE, ids=[r for r, _ in REFERENCE])
def test_reference_defaults_parse_to_our_defaults(reference: str, ours: type[ModelConfig]) -> None:
    """Our defaults are the reference's, and its saved config.json reads back to the same values."""
    transformers = pytest.importorskip("transformers")
    saved = json.loads(getattr(transformers, reference)().to_json_string())
    parsed = parse_config(ours, saved)
    defaults = ours()
    for name in parsed.__dataclass_fields__:
        if name in saved and name not in ("model_type", "output_hidden_size", "pooler_output_size"):
            value = getattr(parsed, name)
            expected = saved[name]
            expected = tuple(expected) if isinstance(expected, list) else expected
            if isinstance(value, tuple) and not isinstance(expected, tuple):
                expected = (expected, expected)
            assert value == expected, name
            if reference not in ("HubertConfig", "DeiTConfig"):
                assert getattr(defaults, name) == value, f"default of {name}"


def test_full_clip_and_siglip_configs_read_their_vision_section() -> None:
    transformers = pytest.importorskip("transformers")
    vision = dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, patch_size=8,
                  image_size=32)
    clip = json.loads(transformers.CLIPConfig(vision_config=vision, projection_dim=24).to_json_string())
    cfg = parse_config(CLIPVisionConfig, clip)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.patch_size, cfg.projection_dim) == (48, 3, 8, 24)
    siglip = json.loads(transformers.SiglipConfig(vision_config={**vision, "vision_use_head": False}).to_json_string())
    cfg = parse_config(SiglipVisionConfig, siglip)
    assert (cfg.hidden_size, cfg.vision_use_head, cfg.hidden_act) == (48, False, "gelu_pytorch_tanh")


def test_remap_keys_steps() -> None:
    t = torch.zeros(1)
    state = {"vit.encoder.layer.0.w": t, "encoder.layer.1.w": t, "vit.pooler.b": t, "classifier.w": t,
             "vit.embeddings.position_ids": t, "text.x": t}
    out = remap_keys(state, [("vit.", "")], keep=("encoder.", "pooler.", "embeddings."), drop=(r"position_ids$",),
                     renames=[(r"^encoder\.layer\.(\d+)\.", r"encoder.layers.\1.")])
    assert list(out) == ["encoder.layers.0.w", "encoder.layers.1.w", "pooler.b"]
    only = remap_keys({"model.encoder.a": t, "encoder.b": t, "c": t, "model.decoder.d": t},
                      [("model.encoder.", ""), ("encoder.", "")], only_prefixed=True)
    assert list(only) == ["a", "b"]
    assert remap_keys({"a": t}) == {"a": t}
    assert remap_keys({"x.a": t}, [("x.", "y.")]) == {"y.a": t}


def test_layer_counting() -> None:
    keys = [f"encoder.layers.{i}.w" for i in (0, 1, 2, 5)] + ["encoder.layers.x.w", "encoder.layer_norm.w",
                                                            "encoder.layers." + "9" * 5000 + ".w"]
    assert layer_indices(keys, "encoder.layers.") == {0, 1, 2, 5}
    assert describe_indices({0, 1, 2, 5, 7, 8}) == "0-2, 5, 7-8"
    assert describe_indices(range(0, 40, 2), limit=3) == "0, 2, 4 and 17 more runs"
    assert describe_indices(set()) == "none"
    model = [f"layers.{i}.w" for i in range(2)]
    assert layer_count_problem(model, model, "layers.", "n") is None
    assert layer_count_problem([], model, "layers.", "n") is None  # the model has no such stack
    extra = layer_count_problem(model, model + ["layers.2.w"], "layers.", "n")
    assert extra is not None and extra[1] and "declares 2 layers but the checkpoint has 3 layers" in extra[0]
    short = layer_count_problem(model, model[:1], "layers.", "n")
    assert short is not None and not short[1] and "missing layer(s) 1" in short[0]
