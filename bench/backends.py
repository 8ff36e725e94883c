"""Model-only throughput of every featx backend x dtype, against transformers and the runtimes run
directly on the same exported graph, in one run.

    python bench/backends.py [--quick] [--batch-size 16] [--photos 32] [--repeats 3]

A ViT-B/16-sized checkpoint with random weights (bench/_data, built once by bench/e2e.py's helper;
``--quick``: 4 layers instead of 12, same widths) and real photos (scikit-image's samples, JPEG)
through featx's ViT processor. Prints, per configuration: images/s, the ratio to transformers in
float32 and to featx's torch float32, and the cosine of the pooled output to torch float32 on those
photos (mean and min). Also: the matmul-bound limit of this CPU for the model (a bfloat16 and a
float32 matmul of the model's own MLP shapes, times the model's FLOPs per image), the share of it
each dtype's fastest featx configuration reaches (``inductor``: torch.compile, timed after its first
call compiled; the compile time is printed), and what
``backend="auto"`` picks here and why.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _timeit(fn: Callable[[], Any], n_images: int, repeats: int) -> float:
    fn()  # warm-up (and export/compile)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n_images / best


def _cos(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.mean()), float(c.min())


def _pixels(model: Path, n: int) -> np.ndarray:
    from e2e import make_photos

    from featx.registry import AutoProcessor

    paths = make_photos(HERE / "_data" / "photos", n)
    proc = AutoProcessor.from_pretrained(model)
    return proc([str(p) for p in paths], return_tensors="np")["pixel_values"]


def _model(quick: bool) -> Path:
    from make_checkpoint import make_checkpoint

    name = "vit-b16-4layers" if quick else "vit-b16"
    folder = HERE / "_data" / name
    if not (folder / "config.json").exists():
        make_checkpoint(folder, "vit-b16")
        if quick:
            import json

            import transformers as tf
            config = json.loads((folder / "config.json").read_text())
            config["num_hidden_layers"] = 4
            m = tf.ViTModel(tf.ViTConfig(**{k: v for k, v in config.items() if k != "architectures"}))
            m.save_pretrained(folder)
    return folder


def _featx_runs(model: Path, pixels: np.ndarray, batch: int, repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    import importlib.util

    from featx.embedding import Embedder
    from featx.models.loading import cpu_has_native_bf16

    configs = [("torch", "float32"), ("torch", "bfloat16"), ("inductor", "float32")]
    if cpu_has_native_bf16()[0]:
        configs += [("inductor", "bfloat16")]
    if importlib.util.find_spec("onnxruntime"):
        configs += [("onnx", "float32"), ("onnx", "int8")]
    if importlib.util.find_spec("openvino"):
        configs += [("openvino", "float32")]
        if cpu_has_native_bf16()[0]:
            configs += [("openvino", "bfloat16")]
    out: dict[str, tuple[float, np.ndarray]] = {}
    prepared = [{"pixel_values": pixels[i:i + 1]} for i in range(len(pixels))]
    for backend, dtype in configs:
        e = Embedder(model, dtype=dtype, backend=backend, pool="cls")
        result: list[np.ndarray] = []

        def run() -> None:
            result[:] = e.embed(prepared, batch_size=batch)

        start = time.perf_counter()
        run()  # the first call exports or compiles
        first = time.perf_counter() - start
        rate = _timeit(run, len(prepared), repeats)
        out[f"featx {backend} {dtype}"] = (rate, np.stack(result))
        print(f"  featx {backend} {dtype}: first call {first:.1f} s", file=sys.stderr, flush=True)
        gc.collect()
    return out


def _reference_runs(model: Path, pixels: np.ndarray, batch: int, repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    import transformers as tf

    out: dict[str, tuple[float, np.ndarray]] = {}
    for dtype in (torch.float32, torch.bfloat16):
        m = tf.ViTModel.from_pretrained(model, dtype=dtype, add_pooling_layer=False).eval()
        result: list[np.ndarray] = []

        @torch.inference_mode()
        def run() -> None:
            chunks = []
            for s in range(0, len(pixels), batch):
                x = torch.from_numpy(pixels[s:s + batch]).to(dtype)
                chunks.append(m(pixel_values=x).last_hidden_state[:, 0].float().numpy())
            result[:] = [np.concatenate(chunks)]

        rate = _timeit(run, len(pixels), repeats)
        out[f"transformers torch {str(dtype)[6:]}"] = (rate, result[0])
        gc.collect()
    return out


def _direct_runtime_runs(model: Path, pixels: np.ndarray, batch: int, repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    """ONNX Runtime and OpenVINO called directly on featx's exported graph (no featx in the loop)."""
    import importlib.util

    from featx.models import load_model

    out: dict[str, tuple[float, np.ndarray]] = {}
    if not importlib.util.find_spec("onnxruntime"):
        return out
    m = load_model(model, dtype="float32", backend="onnx")
    path = m.forward.graph_path({"pixel_values": torch.from_numpy(pixels[:1])})
    m(pixel_values=torch.from_numpy(pixels[:2]))  # exports if not cached
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "onnxruntime direct float32": lambda x: session.run(None, {"pixel_values": x})[0][:, 0]}
    if importlib.util.find_spec("openvino"):
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        runners["openvino direct float32"] = lambda x: np.asarray(compiled.create_infer_request().infer(
            {"pixel_values": x})[compiled.outputs[0]])[:, 0]
    for name, fn in runners.items():
        result: list[np.ndarray] = []

        def run() -> None:
            result[:] = [np.concatenate([fn(pixels[s:s + batch]) for s in range(0, len(pixels), batch)])]

        out[name] = (_timeit(run, len(pixels), repeats), result[0])
    return out


def _matmul_limit(config: dict[str, Any], tokens: int, batch: int) -> dict[str, float]:
    """img/s if the whole model ran at the speed of its own biggest matmul, per dtype."""
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    # per token per layer: qkv + out projection (4 h^2) + MLP (2 h i); attention scores and mix (2 t h)
    flops = 2 * layers * tokens * (4 * hidden * hidden + 2 * hidden * inter + 2 * tokens * hidden)
    out = {"gflop_per_image": flops / 1e9}
    for dtype in (torch.float32, torch.bfloat16):
        # weights laid out as nn.Linear keeps them ([out, in]): a plain a @ w with w [in, out] takes
        # a slow bfloat16 path on CPUs without native bfloat16 (1 GFLOP/s, against 14 for linear)
        a = torch.randn(batch * tokens, hidden, dtype=dtype)
        w = torch.randn(inter, hidden, dtype=dtype)
        torch.nn.functional.linear(a, w)
        n = 5
        start = time.perf_counter()
        for _ in range(n):
            torch.nn.functional.linear(a, w)
        rate = n * 2 * a.shape[0] * hidden * inter / (time.perf_counter() - start)
        out[f"gflops_{str(dtype)[6:]}"] = rate / 1e9
        out[f"limit_{str(dtype)[6:]}"] = rate / flops
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 layers instead of 12")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--photos", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("FEATX_CACHE_DIR", tempfile.mkdtemp(prefix="featx-bench-"))

    import json

    from featx.backends import choose_backend

    model = _model(args.quick)
    config = json.loads((model / "config.json").read_text())
    pixels = _pixels(model, args.photos)
    results: dict[str, tuple[float, np.ndarray]] = {}
    results.update(_reference_runs(model, pixels, args.batch_size, args.repeats))
    results.update(_featx_runs(model, pixels, args.batch_size, args.repeats))
    results.update(_direct_runtime_runs(model, pixels, args.batch_size, args.repeats))

    tokens = (config["image_size"] // config["patch_size"]) ** 2 + 1
    limit = _matmul_limit(config, tokens, args.batch_size)
    base_ref = results["transformers torch float32"][0]
    base_fx = results["featx torch float32"][0]
    truth = results["featx torch float32"][1]
    print(f"model: ViT-B/16 widths, {config['num_hidden_layers']} layers, random weights; {len(pixels)} photos, "
          f"batch {args.batch_size}; torch threads {torch.get_num_threads()}")
    print(f"{'configuration':34s} {'img/s':>8s} {'vs tf fp32':>10s} {'vs featx fp32':>13s} {'cos mean':>9s} {'cos min':>8s}")
    for name, (rate, vec) in results.items():
        mean, low = _cos(vec, truth)
        print(f"{name:34s} {rate:8.2f} {rate / base_ref:10.2f} {rate / base_fx:13.2f} {mean:9.5f} {low:8.5f}")
    print(f"matmul limit: {limit['gflop_per_image']:.1f} GFLOP/img; float32 {limit['gflops_float32']:.0f} GFLOP/s -> "
          f"{limit['limit_float32']:.2f} img/s; bfloat16 {limit['gflops_bfloat16']:.0f} GFLOP/s -> "
          f"{limit['limit_bfloat16']:.2f} img/s")
    for dtype in ("float32", "bfloat16"):
        ours = {k: v[0] for k, v in results.items() if k.startswith("featx") and k.endswith(dtype)}
        best = max(ours, key=ours.__getitem__)
        print(f"{dtype}: featx torch at {ours[f'featx torch {dtype}'] / limit[f'limit_{dtype}']:.0%}, best ({best}) at "
              f"{ours[best] / limit[f'limit_{dtype}']:.0%} of the {dtype} matmul limit")
    backend, dtype, why = choose_backend("auto", "auto", torch.device("cpu"))
    print(f"auto here: backend={backend} dtype={dtype} ({why})")


if __name__ == "__main__":
    main()
