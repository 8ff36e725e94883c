"""Calibrated static int8 (`featx.backends.quantize`, ``featx quantize``).

The calibrated graph must be what ``backend="onnx", dtype="int8"`` runs afterwards (and say so),
stay as close to float32 as a bound that dynamic int8 also meets, keep exactly the layers it
reports in float32, skip bad calibration files with a warning naming them, and refuse too few
inputs with a clear error. One calibration method and type per run keeps this file fast.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from featx.backends import onnx as onnx_backend
from featx.backends import quantize as quantize_mod
from featx.backends import quantize_cli
from featx.backends.quantize import MIN_INPUTS, calibrate_int8
from featx.cli import EXIT_OK, EXIT_USAGE, main
from featx.embedding import Embedder
from featx.errors import ConfigError, InputError
from featx.models import load_model

from ..engine._helpers import write_photos

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")

FAST = {"batch_size": 4, "methods": ("minmax",), "types": ("u8s8-reduced",), "timing_repeats": 1}


@pytest.fixture(autouse=True)
def graph_cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "featx-cache"
    monkeypatch.setenv("FEATX_CACHE_DIR", str(folder))
    return folder / "onnx"


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    write_photos(folder, 12)
    (folder / "img_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # kept by the walk: .png
    return folder


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _sources(embedder: Embedder, n: int) -> list:
    rng = np.random.default_rng(5)
    if embedder.modality == "image":
        from PIL import Image

        return [Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 30, 3), dtype=np.uint8)) for i in range(n)]
    rate = int(embedder.processor.sampling_rate)
    return [(rng.standard_normal(int(rate * (0.4 + 0.05 * i))) * 0.1).astype(np.float32) for i in range(n)]


def test_report_and_the_calibrated_graph_is_used(tiny_checkpoint, photos: Path, graph_cache: Path,
                                                 tmp_path: Path) -> None:
    model = tiny_checkpoint("vit")
    with pytest.warns(UserWarning, match="img_broken.png"):
        report = calibrate_int8(model, [str(photos)], report=tmp_path / "r.json", **FAST)
    assert report.calibration_inputs + report.held_out_inputs == 12 and report.held_out_inputs == 2
    assert len(report.skipped) == 1 and "img_broken.png" in report.skipped[0]
    assert (report.method, report.types) == ("minmax", "u8s8-reduced")
    assert report.reached_target and report.kept_float32 == [] and report.quantized_layers > 0
    assert set(report.items_per_s) == {"float32", "int8-dynamic", "int8-static"}
    assert all(v > 0 for v in report.items_per_s.values())
    for acc in (report.static, report.dynamic):
        assert 0.99 < acc.mean_cosine <= 1.0 + 1e-9 and acc.min_cosine <= acc.mean_cosine + 1e-12
        assert 0.0 <= acc.top5_overlap <= 1.0
    assert report.static.mean_cosine >= report.target_cosine
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(report.to_dict()))
    graph = Path(report.graph)
    assert graph.parent == graph_cache and graph.name.endswith(onnx_backend.STATIC_SUFFIX)
    assert not list(graph_cache.glob("*.tmp"))

    # later loads run the calibrated graph and say so; without it, dynamic int8 again
    ref = Embedder(model, dtype="float32", pool="mean")
    x = [ref.prepare(s) for s in _sources(ref, 4)]
    want = np.stack(ref.embed(x))
    assert load_model(model, backend="onnx", dtype="int8").featx_backend == "onnx:int8-static"
    static = Embedder(model, dtype="int8", backend="onnx", pool="mean")
    got_static = np.stack(static.embed(x))
    assert static.model.featx_backend == "onnx:int8-static"
    graph.unlink()
    dynamic = Embedder(model, dtype="int8", backend="onnx", pool="mean")
    assert dynamic.model.featx_backend == "onnx:int8"
    got_dynamic = np.stack(dynamic.embed(x))
    assert not np.array_equal(got_static, got_dynamic)
    assert _cos(want, got_static).min() > 0.99 and _cos(want, got_dynamic).min() > 0.99


@pytest.mark.parametrize("kind", ["dinov2", "clip_vision_model", "whisper", "wav2vec2"])
def test_families_close_to_float32(tiny_checkpoint, kind: str) -> None:
    model = tiny_checkpoint(kind)
    ref = Embedder(model, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is skipped, nothing is missed
        report = calibrate_int8(model, _sources(ref, 10), **FAST)
    assert (report.calibration_inputs, report.held_out_inputs) == (8, 2)
    # the bound dynamic int8 meets on these models; calibration must meet it too
    assert report.dynamic.mean_cosine > 0.99 and report.static.mean_cosine > 0.99
    q = Embedder(model, dtype="int8", backend="onnx")
    assert q.model.featx_backend == "onnx:int8-static"
    x = [ref.prepare(s) for s in _sources(ref, 3)]
    assert _cos(np.stack(ref.embed(x)), np.stack(q.embed(x))).min() > 0.99
    if kind == "dinov2":  # another image size: no calibrated graph for it, dynamic int8 with a warning
        runner = q.model.forward
        other = {"pixel_values": torch.zeros(1, 3, 28, 28)}
        with pytest.warns(UserWarning, match="other input shapes"):
            path, _ = runner.ensure_graph(other)
        assert path == runner.graph_path(other) and q.model.featx_backend == "onnx:int8"


def test_kept_layers_are_float32_in_the_graph(tiny_checkpoint, photos: Path, tmp_path: Path) -> None:
    import onnx

    model = tiny_checkpoint("vit")
    with pytest.warns(UserWarning, match="under the target"):
        report = calibrate_int8(model, [str(photos / "img_0*.png")], target_cosine=1.0, max_float_layers=2,
                                output=tmp_path / "q.onnx", **FAST)
    assert not report.reached_target and len(report.kept_float32) <= 2
    assert [c["kept_float32"] for c in report.candidates if not c["smoothed"]] == [0, 1, 2]
    graph = onnx.load(str(tmp_path / "q.onnx"))
    assert graph.SerializeToString() == onnx.load(report.graph).SerializeToString()
    _check_float32(graph, report.kept_float32, report.quantized_layers)
    # the same, asked directly: the layers excluded are float32, all other weight layers int8
    float_graph = next(Path(report.graph).parent.glob("vit-*.fp32.onnx"))
    nodes = quantize_mod._weight_matmuls(onnx.load(str(float_graph)))
    x = torch.stack([torch.from_numpy(a) for a in _pixels(model, 4)])
    reader = quantize_mod._Reader([{"pixel_values": x.numpy()}])
    out = tmp_path / "excluded.onnx"
    quantize_mod._quantize_static(float_graph, out, reader, tmp_path / "c.json", "minmax", "u8u8", nodes, nodes[:2])
    _check_float32(onnx.load(str(out)), nodes[:2], len(nodes) - 2)


def _pixels(model: Path, n: int) -> list[np.ndarray]:
    ref = Embedder(model, dtype="float32")
    return [ref.prepare(s)["pixel_values"][0] for s in _sources(ref, n)]


def _check_float32(graph, kept: list[str], quantized_layers: int) -> None:
    import onnx

    source = {o: n.input[0] for n in graph.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    weights = {t.name: t for t in graph.graph.initializer}
    nodes = {n.name: n for n in graph.graph.node if n.op_type in ("MatMul", "Gemm")}
    for name in kept:
        node = nodes[name]
        assert not set(node.input) & set(source), name
        assert onnx.numpy_helper.to_array(weights[node.input[1]]).dtype == np.float32
    quantized = [n for n in nodes.values() if set(n.input) & set(source)]
    assert len(quantized) == quantized_layers
    # only weight layers: their second input is an int8 initializer (the attention's activation x
    # activation MatMuls are never quantized)
    for node in quantized:
        stored = weights[source[node.input[1]]]
        assert onnx.numpy_helper.to_array(stored).dtype in (np.int8, np.uint8), node.name


def test_layer_errors_rank_an_outlier_layer_first(tiny_checkpoint, photos: Path) -> None:
    """A layer whose input has a channel 1000x the others loses most under per-tensor activation
    quantization: the ranking must put the layers fed by it (q/k/v of layer 0) first."""
    from safetensors.torch import load_file, save_file

    src = Path(tiny_checkpoint("vit"))
    folder = photos.parent / "outlier-vit"
    folder.mkdir()
    for f in src.iterdir():
        if f.name != "model.safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    tensors = load_file(str(src / "model.safetensors"))
    key = next(k for k in tensors if k.endswith("layer.0.layernorm_before.weight"))
    tensors[key][3] *= 1000.0
    tensors[key.replace("weight", "bias")][3] = 500.0
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.warns(UserWarning):
        report = calibrate_int8(folder, [str(photos)], target_cosine=1.0, max_float_layers=3, smooth=False, **FAST)
    # the layers kept are the best prefix of the ranking (1 to 3 of them): all must read layer 0's LayerNorm
    assert report.kept_float32 and all("layers.0/self_attn/" in n and n.split("/")[-2] in ("q_proj", "k_proj", "v_proj")
                                       for n in report.kept_float32), report.kept_float32
    assert report.static.mean_cosine > report.candidates[0]["mean_cosine"]  # keeping them helped
    assert not report.smoothed and not any(c["smoothed"] for c in report.candidates)

    # smoothing moves the outlier channel into the weights: the float32 graph computes the same
    import onnx
    import onnxruntime as ort

    float_graph = next(Path(report.graph).parent.glob("vit-*.fp32.onnx"))
    nodes = quantize_mod._weight_matmuls(onnx.load(str(float_graph)))
    feeds = [{"pixel_values": np.stack(_pixels(folder, 3))}]
    smoothed = photos.parent / "smoothed.onnx"
    assert quantize_mod._smoothed(float_graph, smoothed, feeds, nodes) >= 1
    a, b = (ort.InferenceSession(str(g)).run(None, feeds[0])[0] for g in (float_graph, smoothed))
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    gains = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(smoothed)).graph.initializer}
    gain = next(v for k, v in gains.items() if "layers.0.layer_norm1.weight" in k)
    assert np.abs(gain).max() < 100  # was 1000 in channel 3


def test_too_few_inputs(tiny_checkpoint, tmp_path: Path) -> None:
    folder = tmp_path / "few"
    write_photos(folder, MIN_INPUTS - 2)
    (folder / "bad.jpg").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="bad.jpg"), pytest.raises(InputError, match=r"at least 8 usable .* got 6"):
        calibrate_int8(tiny_checkpoint("vit"), [str(folder)], **FAST)
    with pytest.raises(ConfigError, match="method"):
        calibrate_int8(tiny_checkpoint("vit"), [str(folder)], methods=("kmeans",))
    with pytest.raises(ConfigError, match="target_cosine"):
        calibrate_int8(tiny_checkpoint("vit"), [str(folder)], target_cosine=1.5)


def test_cli_end_to_end(tiny_checkpoint, photos: Path, tmp_path: Path, capsys) -> None:
    model = tiny_checkpoint("vit")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(photos.glob("img_0*.png"))) + f"{tmp_path / 'missing.png'}\n")
    with pytest.warns(UserWarning, match="missing.png"):
        code = main(["quantize", str(model), "--calibrate", f"@{listing}", "--method", "minmax", "--types", "u8u8",
                     "--batch-size", "4", "--output", str(tmp_path / "out.onnx"), "--report", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "int8 static" in captured.out and "int8 dynamic" in captured.out and "minmax" in captured.out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["types"] == "u8u8" and report["calibration_inputs"] == 10 and (tmp_path / "out.onnx").is_file()
    assert main(["info", str(model), "--backend", "onnx", "--dtype", "int8", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["backend"] == "onnx:int8-static"
    # too few usable inputs: a usage error naming the problem
    assert main(["quantize", str(model), "--calibrate", str(photos / "img_00000.png"), "--method", "minmax"]) == EXIT_USAGE
    assert "at least 8 usable" in capsys.readouterr().err
    assert main(["quantize", str(model), "--calibrate", str(photos), "--target-cosine", "2"]) == EXIT_USAGE


def test_cli_choices_match_the_library() -> None:
    assert quantize_cli.METHODS == quantize_mod.METHODS
    assert quantize_cli.TYPES == quantize_mod.TYPES + ("s8s8",)
