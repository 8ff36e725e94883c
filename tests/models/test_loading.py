"""Safe checkpoint loading, dtype choice and the errors of `featx.models.load_model`."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import featx
from featx.errors import ConfigError, ModelLoadError
from featx.hub import HubOptions
from featx.models import load_model, loading, read_config, resolve_dtype, supported_model_types
from featx.models.loading import load_state_dict

_REAL_CPU_FLAGS = loading.cpu_flags  # taken at import, before the suite fakes the CPU


class _Exploit:
    """A pickle payload that leaves a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything calls torch.load or pickle.load(s)."""

    def refuse(*args, **kwargs):
        raise AssertionError("featx tried to unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def _copy(src: Path, dst: Path, *, drop_weights: bool = False) -> Path:
    shutil.copytree(src, dst)
    if drop_weights:
        for f in dst.glob("model*.safetensors*"):
            f.unlink()
    return dst


def test_read_config_and_state_dict(checkpoint):
    ckpt = checkpoint("vit")
    config = read_config(ckpt.path)
    assert config["model_type"] == "vit" and config["hidden_size"] == 32
    state = load_state_dict(ckpt.path)
    assert set(state) == set(load_file(ckpt.path / "model.safetensors"))
    # a direct path to the weights file works too, and read_config finds the config next to it
    assert set(load_state_dict(ckpt.path / "model.safetensors")) == set(state)
    assert read_config(ckpt.path / "model.safetensors")["model_type"] == "vit"


def test_sharded_state_dict_equals_single_file(checkpoint):
    single = load_state_dict(checkpoint("vit").path)
    sharded_path = checkpoint("vit", max_shard_size="20KB").path
    assert len(list(sharded_path.glob("*.safetensors"))) > 1
    sharded = load_state_dict(sharded_path)
    assert sharded.keys() == single.keys()
    assert all(torch.equal(sharded[k], single[k]) for k in single)
    assert set(load_state_dict(sharded_path / "model.safetensors.index.json")) == set(single)


def test_shard_index_cannot_escape_the_folder(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit", max_shard_size="20KB").path, tmp_path / "evil")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    key = next(iter(index["weight_map"]))
    index["weight_map"][key] = "../outside.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="unexpected shard"):
        load_state_dict(folder)


def test_missing_shard_tensor_is_an_error(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit", max_shard_size="20KB").path, tmp_path / "partial")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["encoder.layer.9.extra.weight"] = next(iter(index["weight_map"].values()))
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="lack 1 tensors"):
        load_state_dict(folder)


def test_pickle_only_checkpoint_is_refused_without_unpickling(checkpoint, tmp_path, no_unpickling):
    folder = _copy(checkpoint("vit").path, tmp_path / "bin-only", drop_weights=True)
    marker = tmp_path / "pwned"
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump(_Exploit(marker), fh)
    with pytest.raises(ModelLoadError) as err:
        load_model(folder)
    message = str(err.value)
    assert "pytorch_model.bin" in message and "pickle" in message and "arbitrary code" in message
    assert "save_pretrained" in message and "safe_serialization=True" in message
    assert not marker.exists()
    for name in ("pytorch_model.bin", "weights.pt", "last.ckpt"):
        shutil.copy(folder / "pytorch_model.bin", tmp_path / name)
        with pytest.raises(ModelLoadError, match="pickle"):
            load_state_dict(tmp_path / name)
    assert not marker.exists()


def test_folder_without_weights(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit").path, tmp_path / "empty", drop_weights=True)
    with pytest.raises(ModelLoadError, match="neither model.safetensors nor"):
        load_model(folder)


def test_corrupt_safetensors(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit").path, tmp_path / "corrupt")
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelLoadError, match="cannot read the safetensors file"):
        load_model(folder)


def test_unsupported_model_type_names_supported_ones(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit").path, tmp_path / "other")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "beit"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError) as err:
        load_model(folder)
    message = str(err.value)
    assert "'beit'" in message and "fallback='transformers'" in message
    for name in ("vit", "deit", "dinov2", "clip", "siglip"):
        assert name in message and name in supported_model_types()
    config.pop("model_type")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="no model_type"):
        load_model(folder)


def test_transformers_fallback_is_explicit_and_safe(tmp_path, pixels):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ref = transformers.BeitModel(
        transformers.BeitConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                                image_size=32, patch_size=8)
    ).eval()
    ref.save_pretrained(tmp_path / "beit", safe_serialization=True)
    model = load_model(tmp_path / "beit", dtype="float32", fallback="transformers")
    x = pixels(1)
    with torch.no_grad():
        out = model(pixel_values=x)
        expected = ref(pixel_values=x)
    assert torch.allclose(out.last_hidden_state, expected.last_hidden_state, atol=1e-5)
    assert model.modality == "image" and model.hidden_size == 32
    with pytest.raises(ConfigError, match="fallback"):
        load_model(tmp_path / "beit", fallback="timm")


def test_missing_encoder_weights_are_listed(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit").path, tmp_path / "missing")
    state = load_file(folder / "model.safetensors")
    for key in [k for k in state if k.startswith("encoder.layer.1.")]:
        del state[key]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ModelLoadError) as err:
        load_model(folder)
    assert "lacks 16 weights" in str(err.value) and "encoder.layers.1." in str(err.value)


def test_config_that_does_not_fit_the_weights(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit").path, tmp_path / "wrong-config")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 48
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="do not match its config"):
        load_model(folder)


def test_extra_encoder_weights_warn(checkpoint, tmp_path):
    folder = _copy(checkpoint("vit").path, tmp_path / "extra")
    state = load_file(folder / "model.safetensors")
    state["encoder.layer.0.surprise.weight"] = torch.zeros(2)
    save_file(state, folder / "model.safetensors")
    with pytest.warns(UserWarning, match="unused"):
        load_model(folder)


def test_load_model_attributes_and_options(checkpoint):
    path = checkpoint("vit").path
    model = featx.load_model(path)
    assert model.featx_dtype_reason.startswith("auto: ")
    assert model.name_or_path == os.fspath(path)
    assert model.config["model_type"] == "vit"
    assert next(model.parameters()).device.type == "cpu"
    expected, _ = resolve_dtype("auto", "cpu")
    assert next(model.parameters()).dtype == expected
    assert not any(p.requires_grad and p.is_meta for p in model.parameters())
    with pytest.raises(TypeError, match="unexpected arguments: colour"):
        load_model(path, colour="red")
    # hub options are accepted for local folders too
    assert load_model(path, dtype="float32", revision="main", local_files_only=True).config["hidden_size"] == 32


def test_hub_id_offline_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        load_model("someone/not-a-cached-model", cache_dir=tmp_path)
    message = str(err.value)
    assert "offline" in message and "someone/not-a-cached-model" in message
    with pytest.raises(ModelLoadError, match="offline"):
        load_state_dict("someone/not-a-cached-model", HubOptions(cache_dir=tmp_path))


def test_resolve_dtype_explicit():
    assert resolve_dtype("float32")[0] is torch.float32
    assert resolve_dtype("bf16")[0] is torch.bfloat16
    assert resolve_dtype("torch.float16")[0] is torch.float16
    dtype, reason = resolve_dtype(torch.bfloat16)
    assert dtype is torch.bfloat16 and "asked for" in reason
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_dtype("int8")
    with pytest.raises(ConfigError, match="floating point"):
        resolve_dtype(torch.int64)


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_resolve_dtype_auto_on_cpu(monkeypatch, native, expected):
    monkeypatch.setattr(loading, "cpu_has_native_bf16", lambda: (native, "test flags"))
    dtype, reason = resolve_dtype("auto", "cpu")
    assert dtype is expected
    assert reason.startswith("auto: ") and "test flags" in reason
    assert resolve_dtype(None)[0] is expected


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_resolve_dtype_auto_on_cuda(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    dtype, reason = resolve_dtype("auto", "cuda")
    assert dtype is expected and "CUDA" in reason


def test_cpu_bf16_detection_reads_cpuinfo():
    # the real reader, not the one the suite's `fake_cpu` fixture put in its place
    flags = _REAL_CPU_FLAGS()
    native, why = loading.cpu_has_native_bf16(flags)
    assert isinstance(native, bool) and why
    if Path("/proc/cpuinfo").is_file():
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        assert flags is not None and "fpu" in flags
        assert native == ("avx512_bf16" in text or "amx_bf16" in text)


@pytest.mark.parametrize(("flags", "native"), [
    ({"avx2", "fma"}, False),
    ({"avx2", "avx512f", "avx512_vnni"}, False),  # AVX-512 without its bfloat16 extension
    ({"avx2", "avx512f", "avx512_bf16"}, True),
    ({"avx2", "amx_tile", "amx_bf16"}, True),
    (set(), False),
])
def test_cpu_bf16_detection_from_flags(flags, native):
    got, why = loading.cpu_has_native_bf16(frozenset(flags))
    assert got is native and why


def test_cpu_bf16_detection_without_cpuinfo_asks_onednn(monkeypatch):
    monkeypatch.setattr(loading, "cpu_flags", lambda: None)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert loading.cpu_has_native_bf16() == (True, "oneDNN bf16 support (AVX512)")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert loading.cpu_has_native_bf16()[0] is False


@pytest.mark.parametrize(("cpu", "expected"), [("bf16", torch.bfloat16), ("avx2", torch.float32)])
def test_auto_dtype_follows_the_cpu_flags(checkpoint, monkeypatch, cpu, expected):
    from ..conftest import FAKE_CPUS

    monkeypatch.setattr(loading, "cpu_flags", lambda: FAKE_CPUS[cpu])
    dtype, reason = resolve_dtype("auto", "cpu")
    assert dtype is expected and reason.startswith("auto: ")
    model = load_model(checkpoint("vit").path)
    assert next(model.parameters()).dtype is expected and model.featx_dtype_reason == reason
    assert next(load_model(checkpoint("vit").path, dtype="float32").parameters()).dtype is torch.float32


def test_loading_never_initialises_on_cpu_first(checkpoint, monkeypatch):
    """The model is built on the meta device, so no random init runs before the weights arrive."""
    path = checkpoint("clip").path
    calls = []
    real = torch.nn.init.kaiming_uniform_

    def spy(tensor, *args, **kwargs):
        calls.append(tensor.device.type)
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(path)
    assert calls and set(calls) == {"meta"}
