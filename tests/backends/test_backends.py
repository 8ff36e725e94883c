"""Runtime backends (`featx.backends`): the same encoder through ONNX Runtime and OpenVINO.

Parity is against featx's own torch float32 model on the same prepared inputs (itself tested
against transformers), within 1e-4; the graph cache is keyed by weights and input signature and
reused across loads; "auto" picks by CPU kind (faked flags) and by what is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from featx.backends import apply_backend, choose_backend
from featx.backends import onnx as onnx_backend
from featx.embedding import Embedder
from featx.errors import ConfigError, DependencyError
from featx.models import load_model
from featx.pooling import default_pool

pytest.importorskip("onnxruntime")

OPENVINO_KINDS = ("vit", "siglip_vision_model", "whisper", "wav2vec2")
KINDS = ("vit", "dinov2", "clip_vision_model", "siglip_vision_model", "whisper", "audio-spectrogram-transformer",
         "wav2vec2", "wav2vec2-group")


@pytest.fixture(autouse=True)
def graph_cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "featx-cache"
    monkeypatch.setenv("FEATX_CACHE_DIR", str(folder))
    return folder / "onnx"


def _inputs(embedder: Embedder, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    if embedder.modality == "image":
        from PIL import Image

        return [embedder.prepare(Image.fromarray(rng.integers(0, 256, (20 + 9 * i, 31, 3), dtype=np.uint8)))
                for i in range(3)]
    rate = int(embedder.processor.sampling_rate)
    # different lengths: raw-waveform models get a dynamic time axis
    return [embedder.prepare(rng.standard_normal(int(rate * s)).astype(np.float32) * 0.1) for s in (0.4, 0.7, 1.1)]


# OpenVINO runs the same exported graph: one model per kind of input is enough there.
@pytest.mark.parametrize("backend,kind", [("onnx", k) for k in KINDS] + [("openvino", k) for k in OPENVINO_KINDS])
def test_parity_with_torch(tiny_checkpoint, kind: str, backend: str) -> None:
    model = tiny_checkpoint(kind)
    reference = Embedder(model, dtype="float32", pool="mean")
    other = Embedder(model, dtype="float32", pool="mean", backend=backend)
    assert other.model.featx_backend == f"{backend}:float32"
    prepared = _inputs(reference, np.random.default_rng(0))
    for batch in (prepared[:1], prepared):  # batch 1 and 3 run the same graph
        want = reference.embed(batch, batch_size=len(batch))
        got = other.embed(batch, batch_size=len(batch))
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)
    for pool in ("none", default_pool(reference.model)):
        a = reference.with_options(pool=pool).embed(prepared[:2], batch_size=2)
        b = other.with_options(pool=pool).embed(prepared[:2], batch_size=2)
        for w, g in zip(a, b):
            np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


def test_graph_cached_and_reused(tiny_checkpoint, graph_cache: Path, monkeypatch) -> None:
    model = tiny_checkpoint("vit")
    e = Embedder(model, dtype="float32", backend="onnx")
    x = _inputs(e, np.random.default_rng(1))
    first = e.embed(x)
    files = sorted(graph_cache.glob("*.onnx"))
    assert len(files) == 1 and not list(graph_cache.glob("*.tmp"))

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "_export", no_export)
    again = Embedder(model, dtype="float32", backend="onnx").embed(x)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    # other weights: another graph
    changed = load_model(model, dtype="float32")
    with torch.no_grad():
        next(changed.parameters()).add_(1.0)
    runner = onnx_backend.OnnxRunner(changed)
    inputs = {"pixel_values": torch.zeros(1, *x[0]["pixel_values"].shape[1:])}
    assert runner.graph_path(inputs) != files[0]


def test_failed_export_leaves_no_file(tiny_checkpoint, graph_cache: Path, monkeypatch) -> None:
    def broken(*a, **k):
        raise RuntimeError("export broke")

    monkeypatch.setattr(torch.onnx, "export", broken)
    e = Embedder(tiny_checkpoint("dinov2"), dtype="float32", backend="onnx")
    with pytest.raises(RuntimeError, match="export broke"):
        e.embed(_inputs(e, np.random.default_rng(2))[:1])
    assert not [p for p in graph_cache.glob("dinov2-*")]


def test_int8_close_to_float32(tiny_checkpoint) -> None:
    model = tiny_checkpoint("vit")
    ref = Embedder(model, dtype="float32", pool="mean")
    q = Embedder(model, dtype="int8", pool="mean", backend="onnx")
    assert q.model.featx_backend == "onnx:int8"
    x = _inputs(ref, np.random.default_rng(3))
    a, b = np.stack(ref.embed(x)), np.stack(q.embed(x))
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.98, cos
    assert not np.array_equal(a, b)  # it did quantize


def _pretend(monkeypatch, kind: str) -> None:
    from featx.models import loading

    from ..conftest import FAKE_CPUS

    monkeypatch.setattr(loading, "cpu_flags", lambda: FAKE_CPUS[kind])


@pytest.mark.parametrize("fake_cpu", ["bf16", "avx2"])
def test_auto_choice_by_cpu(fake_cpu: str, monkeypatch) -> None:
    _pretend(monkeypatch, fake_cpu)
    cpu = torch.device("cpu")
    backend, dtype, why = choose_backend("auto", "auto", cpu)
    if fake_cpu == "bf16":
        assert (backend, dtype) == ("torch", "auto") and "bfloat16" in why
    else:
        assert (backend, dtype) == ("openvino", "float32") and "OpenVINO" in why
    assert choose_backend("auto", "float16", cpu)[0] == "torch"
    assert choose_backend("auto", "int8", cpu)[:2] == ("onnx", "int8")
    assert choose_backend("auto", "auto", torch.device("cuda"))[0] == "torch"


def test_auto_never_needs_a_missing_extra(monkeypatch) -> None:
    _pretend(monkeypatch, "avx2")
    real = importlib.util.find_spec
    missing: set[str] = {"openvino"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    backend, dtype, why = choose_backend("auto", "auto", torch.device("cpu"))
    assert backend == "onnx" and "ONNX Runtime" in why
    missing.add("onnxruntime")
    backend, dtype, why = choose_backend("auto", "auto", torch.device("cpu"))
    assert backend == "torch" and "is installed here" in why and "neither" in why


def test_bad_arguments(tiny_checkpoint, monkeypatch) -> None:
    with pytest.raises(ConfigError, match="backend must be one of"):
        load_model(tiny_checkpoint("vit"), dtype="float32", backend="tensorrt")
    with pytest.raises(ConfigError, match="int8 runs on the onnx backend"):
        load_model(tiny_checkpoint("vit"), dtype="int8", backend="openvino")
    m = load_model(tiny_checkpoint("vit"), dtype="bfloat16")
    with pytest.raises(ConfigError, match="float32 model"):
        apply_backend(m, "onnx", "float32")
    import featx.errors

    def missing(module, extra, purpose=None):
        raise DependencyError(f"{module!r} is needed: {featx.errors.install_hint(extra)}")

    monkeypatch.setattr(onnx_backend, "require", missing)
    with pytest.raises(DependencyError, match=r"featx\[onnx\]"):
        load_model(tiny_checkpoint("vit"), dtype="float32", backend="onnx")


def test_hidden_states_refused(tiny_checkpoint) -> None:
    m = load_model(tiny_checkpoint("vit"), dtype="float32", backend="onnx")
    with pytest.raises(ConfigError, match="hidden states"):
        m(pixel_values=torch.zeros(1, 3, 32, 32), output_hidden_states=True)
