"""config.json values featx refuses: every family, every size field, each kind of bad value.

Each bad config must fail fast (under a second, before anything is built) with a `ModelConfigError`
(a `ModelLoadError` and a `ConfigError`) that names the field and the config.json it came from.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from featx.errors import ConfigError, ModelLoadError
from featx.models import ModelConfigError, load_model

BAD_VALUES = [-1, 0, 1e9, "12", None, 12.5, True]

# family -> (checkpoint builder, name, nested section, the size/count fields of its config)
FAMILIES: dict[str, tuple[str, str, str | None, list[str]]] = {
    "vit": ("checkpoint", "vit", None, ["hidden_size", "num_hidden_layers", "num_attention_heads",
                                        "intermediate_size", "image_size", "patch_size", "num_channels"]),
    "dinov2": ("checkpoint", "dinov2", None, ["hidden_size", "num_hidden_layers", "num_attention_heads",
                                              "image_size", "patch_size", "num_channels"]),
    "clip": ("checkpoint", "clip", "vision_config", ["hidden_size", "num_hidden_layers", "num_attention_heads",
                                                     "intermediate_size", "image_size", "patch_size"]),
    "siglip": ("checkpoint", "siglip", "vision_config", ["hidden_size", "num_hidden_layers",
                                                         "num_attention_heads", "intermediate_size", "patch_size"]),
    "whisper": ("tiny_checkpoint", "whisper", None, ["d_model", "encoder_layers", "encoder_attention_heads",
                                                     "encoder_ffn_dim", "num_mel_bins", "max_source_positions"]),
    "ast": ("tiny_checkpoint", "audio-spectrogram-transformer", None,
            ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "patch_size",
             "frequency_stride", "time_stride", "max_length", "num_mel_bins"]),
    "wav2vec2": ("tiny_checkpoint", "wav2vec2", None, ["hidden_size", "num_hidden_layers", "num_attention_heads",
                                                       "intermediate_size", "num_conv_pos_embeddings"]),
}
LAYERS = {"whisper": "encoder_layers"}  # the others count their layers in num_hidden_layers
HIDDEN = {"whisper": "d_model"}


@pytest.fixture
def family_folder(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``family_folder("vit")`` -> the family's tiny saved checkpoint."""

    def get(family: str) -> Path:
        fixture, name, _, _ = FAMILIES[family]
        made = request.getfixturevalue(fixture)(name)
        return made.path if hasattr(made, "path") else Path(made)

    return get


def _edited(src: Path, dst: Path, edit: Callable[[dict[str, Any]], Any] | None = None, text: str | None = None) -> Path:
    """A copy of checkpoint ``src`` (weights linked, not copied) with its config.json edited or replaced."""
    dst.mkdir()
    for item in src.iterdir():
        if item.name != "config.json":
            (dst / item.name).symlink_to(item)
    if text is None:
        config = json.loads((src / "config.json").read_text())
        edit(config)  # type: ignore[misc]
        text = json.dumps(config)
    (dst / "config.json").write_text(text)
    return dst


def _set(section: str | None, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        (config[section] if section else config)[field] = value

    return edit


def _fails_fast(folder: Path, error: type[Exception] = ModelConfigError) -> Exception:
    start = time.perf_counter()
    with pytest.raises(error) as err:
        load_model(folder, dtype="float32")
    elapsed = time.perf_counter() - start
    # a guard against hanging or building the whole model, not a speed claim (0.1-1 s seen)
    assert elapsed < 10.0, f"took {elapsed:.2f} s"
    assert isinstance(err.value, ModelLoadError)
    return err.value


@pytest.mark.parametrize(("family", "field"), [(f, x) for f, spec in FAMILIES.items() for x in spec[3]])
def test_bad_size_values_name_the_field(family_folder, tmp_path: Path, family: str, field: str) -> None:
    src = family_folder(family)
    section = FAMILIES[family][2]
    name = f"{section}.{field}" if section else field
    for i, value in enumerate(BAD_VALUES):
        folder = _edited(src, tmp_path / f"bad{i}", _set(section, field, value))
        exc = _fails_fast(folder)
        assert isinstance(exc, ModelConfigError) and isinstance(exc, ConfigError)
        assert exc.field == name, (value, str(exc))
        assert str(exc).startswith(f"{folder}/config.json: {name} must be "), str(exc)
        shown = {None: "null", True: "true", "12": '"12"'}.get(value, str(value))  # type: ignore[arg-type]
        assert str(exc).endswith(f"got {shown}"), str(exc)


def test_message_reads_like_the_issue(family_folder, tmp_path: Path) -> None:
    folder = _edited(family_folder("vit"), tmp_path / "v", _set(None, "num_hidden_layers", -1))
    assert str(_fails_fast(folder)) == (
        f"{folder}/config.json: num_hidden_layers must be an integer from 1 to 1000, got -1"
    )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_hidden_size_must_divide_by_the_heads(family_folder, tmp_path: Path, family: str) -> None:
    section = FAMILIES[family][2]
    hidden = HIDDEN.get(family, "hidden_size")
    folder = _edited(family_folder(family), tmp_path / "odd", _set(section, hidden, 30))  # 4 heads
    exc = _fails_fast(folder)
    assert exc.field == (f"{section}.{hidden}" if section else hidden)  # type: ignore[attr-defined]
    assert "divisible by" in str(exc) and "(30)" in str(exc)


@pytest.mark.parametrize(("family", "field", "value", "named"), [
    ("vit", "patch_size", 0, "patch_size"),
    ("vit", "image_size", 4, "patch_size"),  # smaller than the patches
    ("vit", "patch_size", [8, 0], "patch_size"),
    ("vit", "image_size", [32, 32, 32], "image_size"),
    ("vit", "layer_norm_eps", -1e-5, "layer_norm_eps"),
    ("vit", "hidden_act", "mish2", "hidden_act"),
    ("vit", "qkv_bias", "yes", "qkv_bias"),
    ("vit", "hidden_size", 10**400, "hidden_size"),
    ("dinov2", "mlp_ratio", 0, "mlp_ratio"),
    ("dinov2", "layerscale_value", "1", "layerscale_value"),
    ("clip", "image_size", 4, "vision_config.patch_size"),
    ("clip", "hidden_act", None, "vision_config.hidden_act"),
    ("ast", "num_mel_bins", 8, "num_mel_bins"),  # fewer mel bins than a patch is tall
    ("whisper", "activation_function", 3, "activation_function"),
    ("wav2vec2", "conv_kernel", [10], "conv_dim"),
    ("wav2vec2", "conv_stride", [5, 0], "conv_stride"),
    ("wav2vec2", "conv_dim", [], "conv_dim"),
    ("wav2vec2", "num_conv_pos_embedding_groups", 5, "num_conv_pos_embedding_groups"),
    ("wav2vec2", "feat_extract_norm", "batch", "feat_extract_norm"),
])
def test_other_bad_values(family_folder, tmp_path: Path, family: str, field: str, value: Any, named: str) -> None:
    section = FAMILIES[family][2]
    folder = _edited(family_folder(family), tmp_path / "bad", _set(section, field, value))
    exc = _fails_fast(folder)
    assert exc.field == named and named in str(exc)  # type: ignore[attr-defined]


def test_clip_projection_dim_at_the_top_level_and_a_bad_section(family_folder, tmp_path: Path) -> None:
    folder = _edited(family_folder("clip"), tmp_path / "proj", _set(None, "projection_dim", "16"))
    assert _fails_fast(folder).field == "projection_dim"  # type: ignore[attr-defined]
    folder = _edited(family_folder("clip"), tmp_path / "section", _set(None, "vision_config", [1, 2]))
    exc = _fails_fast(folder)
    assert exc.field == "vision_config" and "JSON object" in str(exc)  # type: ignore[attr-defined]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_huge_layer_count_fails_before_building(family_folder, tmp_path: Path, monkeypatch, family: str) -> None:
    section = FAMILIES[family][2]
    folder = _edited(family_folder(family), tmp_path / "huge", _set(section, LAYERS.get(family, "num_hidden_layers"),
                                                                      10**9))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a module was built before the config was checked")

    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)
    _fails_fast(folder)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_config_with_fewer_layers_than_the_checkpoint(family_folder, tmp_path: Path, family: str) -> None:
    """Today's silent truncation (the extra layers were only warned about) is an error naming both counts."""
    section, field = FAMILIES[family][2], LAYERS.get(family, "num_hidden_layers")
    folder = _edited(family_folder(family), tmp_path / "fewer", _set(section, field, 1))
    message = str(_fails_fast(folder, ModelLoadError))
    assert f"config.json's {field} declares 1 layer but the checkpoint has 2 layers" in message
    assert "leave out layer(s) 1" in message and str(folder) in message


@pytest.mark.parametrize("family", list(FAMILIES))
def test_config_with_more_layers_than_the_checkpoint(family_folder, tmp_path: Path, family: str) -> None:
    section, field = FAMILIES[family][2], LAYERS.get(family, "num_hidden_layers")
    folder = _edited(family_folder(family), tmp_path / "more", _set(section, field, 3))
    message = str(_fails_fast(folder, ModelLoadError))
    assert "lacks" in message and "weights" in message
    assert f"config.json's {field} declares 3 layers but the checkpoint has 2 layers" in message
    assert "missing layer(s) 2" in message


def test_wav2vec2_conv_layers_are_counted_too(family_folder, tmp_path: Path) -> None:
    folder = _edited(family_folder("wav2vec2"), tmp_path / "conv", lambda c: c.update(
        conv_dim=c["conv_dim"][:1], conv_kernel=c["conv_kernel"][:1], conv_stride=c["conv_stride"][:1]))
    message = str(_fails_fast(folder, ModelLoadError))
    assert "config.json's conv_dim declares 1 layer but the checkpoint has 2 layers" in message


def test_deeply_nested_json(family_folder, tmp_path: Path) -> None:
    depth = 100_000
    for i, text in enumerate(["[" * depth + "]" * depth,
                              '{"model_type": "vit", "x": ' + "[" * depth + "]" * depth + "}"]):
        folder = _edited(family_folder("vit"), tmp_path / f"deep{i}", text=text)
        exc = _fails_fast(folder)
        assert "config.json is nested too deeply" in str(exc) and str(folder) in str(exc)


@pytest.mark.parametrize(("text", "match"), [
    ('{"model_type": "vit", ', "cannot read the model config"),
    ('{"model_type": "vit", "hidden_size": ' + "7" * 5000 + "}", "cannot read the model config"),
    ("[1, 2]", "not a JSON object"),
    (b"\xff\xfe{}", "cannot read the model config"),
])
def test_unreadable_json(family_folder, tmp_path: Path, text: str | bytes, match: str) -> None:
    folder = _edited(family_folder("vit"), tmp_path / "broken", text="")
    (folder / "config.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    assert match in str(_fails_fast(folder))


def test_huge_config_file_is_refused(family_folder, tmp_path: Path) -> None:
    from featx.models.loading import MAX_CONFIG_BYTES

    padding = " " * (MAX_CONFIG_BYTES + 1)
    folder = _edited(family_folder("vit"), tmp_path / "big", text='{"model_type": "vit"' + padding + "}")
    assert "larger than 16 MiB" in str(_fails_fast(folder))


def test_valid_edits_still_load(family_folder, tmp_path: Path) -> None:
    """Integral floats, 0/1 booleans, unknown keys and explicit defaults are accepted as before."""
    def edit(config: dict[str, Any]) -> None:
        config.update(hidden_size=32.0, qkv_bias=1, image_size=[32, 32], something_new={"a": [1]},
                      pooler_output_size=None)

    model = load_model(_edited(family_folder("vit"), tmp_path / "ok", edit), dtype="float32")
    assert model.hidden_size == 32 and isinstance(model.hidden_size, int)
    assert model.pooler.dense.out_features == 32


def test_unpickles_with_its_field() -> None:
    import pickle

    exc = ModelConfigError("x/config.json: hidden_size must be ...", field="hidden_size")
    copy = pickle.loads(pickle.dumps(exc))
    assert str(copy) == str(exc) and copy.field == "hidden_size" and isinstance(copy, ModelLoadError)


def test_fixture_checkpoints_have_two_layers(family_folder) -> None:
    """The layer-count tests above assume it."""
    for family, (_, _, section, _) in FAMILIES.items():
        config = json.loads((family_folder(family) / "config.json").read_text())
        assert (config[section] if section else config)[LAYERS.get(family, "num_hidden_layers")] == 2, family


def test_edited_copy_leaves_the_source_alone(family_folder, tmp_path: Path) -> None:
    src = family_folder("vit")
    before = (src / "config.json").read_text()
    _edited(src, tmp_path / "copy", _set(None, "hidden_size", -1))
    assert (src / "config.json").read_text() == before
    shutil.rmtree(tmp_path / "copy")
    assert (src / "model.safetensors").is_file()
