"""End-to-end: the whole `featx embed` command vs featx's model alone and the transformers pipeline.

    python bench/e2e.py [--quick] [--images N] [--arch vit-b16|vit-b16-4layers] [--backend torch]
                        [--batch-size 16] [--workers N] [--threads N] [--repeat 3] [--skip-reference]

Builds (once, cached in bench/_data/) 240 JPEG photos from scikit-image's sample images at sizes from
300x200 to 4032x3024, and a ViT-B/16-sized checkpoint with random weights (``--arch vit-b16-4layers``:
the same widths with 4 layers, a third of the model time, for quick runs). Then, in one run, over the
same files:
  - featx's model alone on ready tensors, at the backend/dtype ``--backend``/"auto" picks and at
    torch float32 (images/s the model can take);
  - the whole `featx embed` command in a subprocess at the same backend and dtype "auto" (start-up,
    decoding, preprocessing, writing included; worker/thread counts featx's own unless given);
  - start-up: the wall time of the same command on one small photo at batch 1 (imports, config,
    weights, the resize kernels' first load, one decode), less one image of model time;
  - the transformers "image-feature-extraction" pipeline at float32 (its default) and bfloat16.
Prints images/s and the ratios against the targets of issue 15 part 4: the whole command >= 85% of
the model-only throughput, start-up <= 2 s. ``--repeat`` keeps the best of N runs of each featx
measurement (the machine is shared; the reference runs once).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "_data"
sys.path.insert(0, str(ROOT))  # featx from this checkout, also when not installed
SIZES = [(300, 200), (4032, 3024), (640, 480), (3024, 4032), (800, 600), (1024, 768), (1280, 720),
         (1600, 1200), (1080, 1920), (1920, 1080), (2048, 1536), (3000, 2000)]
FOUR_LAYERS = dict(hidden_size=768, num_hidden_layers=4, num_attention_heads=12, intermediate_size=3072,
                   image_size=224, patch_size=16)


def make_photos(folder: Path, n: int) -> list[Path]:
    """``n`` JPEG photos cycling through SIZES (so any prefix spans small to 12 MP), cached."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:04d}.jpg" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
             "colorwheel"]
    sources = [np.asarray(getattr(data, name)())[..., :3] for name in names]
    rng = np.random.default_rng(0)
    for i, path in enumerate(paths):
        if path.exists():
            continue
        w, h = SIZES[i % len(SIZES)]
        src = Image.fromarray(sources[i % len(sources)]).resize((w, h), Image.BICUBIC)
        arr = np.asarray(src).astype(np.int16) + rng.integers(-6, 7, (h, w, 1), dtype=np.int16)  # sensor-ish noise
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
    return paths


def make_model(arch: str) -> Path:
    folder = DATA / arch
    if (folder / "model.safetensors").is_file() and (folder / "preprocessor_config.json").is_file():
        return folder
    sys.path.insert(0, str(HERE))
    from make_checkpoint import ARCHS, make_checkpoint

    ARCHS.setdefault("vit-b16-4layers", FOUR_LAYERS)
    return make_checkpoint(folder, arch)


def reference(model: Path, paths: list[Path], dtype: str, batch_size: int) -> float:
    """images/s of the transformers pipeline (model loading excluded)."""
    import torch
    import transformers as tf

    proc = tf.ViTImageProcessorPil.from_pretrained(model)
    pipe = tf.pipeline("image-feature-extraction", model=str(model), image_processor=proc, device="cpu",
                       dtype=getattr(torch, dtype))
    pipe([str(paths[0])], batch_size=1, pool=True)  # warm-up
    start = time.perf_counter()
    out = pipe([str(p) for p in paths], batch_size=batch_size, pool=True)
    elapsed = time.perf_counter() - start
    assert len(out) == len(paths)
    return len(paths) / elapsed


def model_only(model: Path, n: int, batch_size: int, backend: str, dtype: str, threads: int | None,
               repeat: int) -> tuple[float, str]:
    """images/s of featx's model on ready pixel tensors (best of ``repeat``), and what ran."""
    import torch

    from featx.embedding import Embedder

    if threads:
        torch.set_num_threads(threads)
    e = Embedder(str(model), dtype=dtype, backend=backend)
    x = torch.randn(batch_size, 3, 224, 224).to(e.torch_dtype)
    best = 0.0
    with torch.inference_mode():
        e.model(pixel_values=x)  # warm-up
        for _ in range(repeat):
            done, start = 0, time.perf_counter()
            while done < n:
                e.model(pixel_values=x)
                done += batch_size
            best = max(best, done / (time.perf_counter() - start))
    what = f"{getattr(e.model, 'featx_backend', 'torch')} {str(e.torch_dtype).replace('torch.', '')}"
    return best, what


def featx_cli(model: Path, photos: Path, n: int, args: argparse.Namespace) -> tuple[float, float, str]:
    """(images/s of the whole `featx embed` command, seconds to its first progress line, summary)."""
    out = Path(tempfile.mkdtemp(prefix="featx-e2e-"))
    try:
        cmd = [sys.executable, "-m", "featx", "embed", str(photos), "--model", str(model), "--output",
               str(out / "emb"), "--pool", "pooler", "--batch-size", str(args.batch_size), "--limit", str(n),
               "--backend", args.backend, "--progress", "log"]
        for flag in ("workers", "threads"):
            if getattr(args, flag):
                cmd += [f"--{flag}", str(getattr(args, flag))]
        cmd += args.extra
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        first, lines = None, []
        for line in proc.stderr:
            lines.append(line.rstrip())
            if first is None and "/" in line and line.startswith("featx: ") and "[" in line:
                first = time.perf_counter() - start
        code = proc.wait()
        elapsed = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"featx embed failed ({code}):\n" + "\n".join(lines))
        return n / elapsed, first if first is not None else elapsed, lines[-1]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def startup(model: Path, photo: Path, args: argparse.Namespace, model_rate: float) -> float:
    """Seconds from process start to the first batch: `featx embed` on one small photo, less the
    model's time for it."""
    folder = Path(tempfile.mkdtemp(prefix="featx-e2e-one-"))
    try:
        shutil.copy(photo, folder / photo.name)
        one = argparse.Namespace(**{**vars(args), "batch_size": 1})
        rate, _, _ = featx_cli(model, folder, 1, one)
        return max(0.0, 1 / rate - 1 / model_rate)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="48 photos (a smoke run)")
    parser.add_argument("--images", type=int, help="number of photos (default 240, 48 with --quick)")
    parser.add_argument("--arch", choices=("vit-b16", "vit-b16-4layers"), default="vit-b16")
    parser.add_argument("--backend", default="torch", help="featx backend for both featx runs (default torch)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, help="featx embed --workers (default: featx's choice)")
    parser.add_argument("--threads", type=int, help="featx embed --threads (default: featx's choice)")
    parser.add_argument("--repeat", type=int, default=1, help="best of N for each featx measurement")
    parser.add_argument("--skip-reference", action="store_true", help="no transformers runs")
    parser.add_argument("--skip-bf16-reference", action="store_true")
    parser.add_argument("extra", nargs="*", help="more `featx embed` arguments (after --)")
    args = parser.parse_args()
    n = args.images or (48 if args.quick else 240)

    import os

    import torch

    photos_dir = DATA / "photos"
    paths = make_photos(photos_dir, n)
    model = make_model(args.arch)
    # featx embeds the folder with --limit n: the folder walk is sorted, so it takes these same files
    mp = sum(int(np.prod(SIZES[i % len(SIZES)])) for i in range(n)) / n / 1e6
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"featx e2e: {n} JPEG photos ({mp:.1f} MP on average, 300x200..4032x3024), {args.arch} random weights, "
          f"batch {args.batch_size}, {os.cpu_count()} CPUs, load average {load:.2f}, best of {args.repeat}")

    results: dict[str, float] = {}
    rate, what = model_only(model, max(n, 2 * args.batch_size), args.batch_size, args.backend, "auto",
                            args.threads, args.repeat)
    results["model"] = rate
    print(f"  featx model only, {args.backend}/auto ({what}):{rate:9.2f} images/s", flush=True)
    rate32, what32 = model_only(model, max(n, 2 * args.batch_size), args.batch_size, "torch", "float32",
                                args.threads, args.repeat)
    print(f"  featx model only, torch float32 ({what32}):{rate32:9.2f} images/s", flush=True)
    best, first, summary = 0.0, float("inf"), ""
    for _ in range(args.repeat):
        r, f, s = featx_cli(model, photos_dir, n, args)
        if r > best:
            best, summary = r, s
        first = min(first, f)
    print(f"  featx embed, whole command ({args.backend}/auto):{best:9.2f} images/s   [{summary}]", flush=True)
    start = min(startup(model, paths[0], args, results["model"]) for _ in range(args.repeat))
    print(f"  start-up to the first batch: {start:.2f} s (one 300x200 photo, less its model time); "
          f"first progress line of the whole run after {first:.2f} s", flush=True)
    if not args.skip_reference:
        for dtype in ("float32",) + (() if args.skip_bf16_reference else ("bfloat16",)):
            results[f"ref {dtype}"] = reference(model, paths, dtype, args.batch_size)
            print(f"  transformers pipeline, {dtype}:{results[f'ref {dtype}']:9.2f} images/s", flush=True)
    print("ratios:")
    print(f"  featx embed / featx model only:  {best / results['model']:.2f}  (target >= 0.85)")
    print(f"  start-up to first batch:         {start:.2f} s (target <= 2 s warm)")
    for key in ("ref float32", "ref bfloat16"):
        if key in results:
            print(f"  featx embed / transformers {key[4:]}: {best / results[key]:.2f}x")


if __name__ == "__main__":
    main()
