"""End-to-end: `featx embed` over a folder of photos vs the transformers pipeline, in one run.

    python bench/e2e.py [--quick] [--images N] [--batch-size 16] [--workers N]

Builds (once, cached in bench/_data/) 240 JPEG photos from scikit-image's sample images at sizes from
300x200 to 4032x3024, and a ViT-B/16-sized checkpoint with random weights (transformers ViTModel(ViTConfig())
saved as safetensors). Then times, over the same files:
  - the transformers "image-feature-extraction" pipeline at batch 16, float32 (its default) and bfloat16;
  - featx's model alone on ready tensors (images/s the model can take at featx's dtype);
  - the whole `featx embed` command in a subprocess (start-up, decoding, writing included), with
    thread and with process workers.
and prints images/s and the ratios. Targets (issue 5): featx >= 3x the reference default, >= 1.2x its
bfloat16 run, and the whole command >= 80% of featx's model-only throughput. Numbers on a shared
machine are noisy; take the best of a few runs when comparing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "_data"
SIZES = [(300, 200), (4032, 3024), (640, 480), (3024, 4032), (800, 600), (1024, 768), (1280, 720),
         (1600, 1200), (1080, 1920), (1920, 1080), (2048, 1536), (3000, 2000)]


def make_photos(folder: Path, n: int) -> list[Path]:
    """``n`` JPEG photos cycling through SIZES (so any prefix spans small to 12 MP), cached."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
             "colorwheel"]
    sources = [np.asarray(getattr(data, name)())[..., :3] for name in names]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"photo_{i:04d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        w, h = SIZES[i % len(SIZES)]
        src = Image.fromarray(sources[i % len(sources)]).resize((w, h), Image.BICUBIC)
        arr = np.asarray(src).astype(np.int16) + rng.integers(-6, 7, (h, w, 1), dtype=np.int16)  # sensor-ish noise
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
    return paths


def make_model(folder: Path) -> Path:
    sys.path.insert(0, str(HERE))
    from make_checkpoint import make_checkpoint

    return make_checkpoint(folder, "vit-b16")


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


def model_only(model: Path, n: int, batch_size: int) -> tuple[float, str]:
    """images/s of featx's model on ready pixel tensors, at the dtype featx picks ("auto")."""
    import torch

    from featx.models import load_model

    m = load_model(model, dtype="auto")
    dtype = next(m.parameters()).dtype
    x = torch.randn(batch_size, 3, 224, 224).to(dtype)
    with torch.inference_mode():
        m(pixel_values=x)  # warm-up
        done, start = 0, time.perf_counter()
        while done < n:
            m(pixel_values=x)
            done += batch_size
        elapsed = time.perf_counter() - start
    return done / elapsed, str(dtype).replace("torch.", "")


def featx_cli(model: Path, photos: Path, n: int, batch_size: int, workers: int, kind: str) -> tuple[float, str]:
    """images/s of the whole `featx embed` command (process start-up included)."""
    out = Path(tempfile.mkdtemp(prefix="featx-e2e-"))
    try:
        cmd = [sys.executable, "-m", "featx", "embed", str(photos), "--model", str(model), "--output",
               str(out / "emb"), "--pool", "pooler", "--batch-size", str(batch_size), "--workers", str(workers),
               "--worker-type", kind, "--limit", str(n), "--progress", "none"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"featx embed failed ({proc.returncode}):\n{proc.stderr}")
        return n / elapsed, proc.stderr.strip().splitlines()[-1]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="24 photos (a smoke run)")
    parser.add_argument("--images", type=int, help="number of photos (default 240, 24 with --quick)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-bf16-reference", action="store_true")
    args = parser.parse_args()
    n = args.images or (24 if args.quick else 240)

    import torch

    photos_dir = DATA / "photos"
    paths = make_photos(photos_dir, n)
    model = make_model(DATA / "vit-b16")
    # featx embeds the folder with --limit n: the folder walk is sorted, so it takes these same files
    mp = sum(int(np.prod(SIZES[i % len(SIZES)])) for i in range(n)) / n / 1e6
    print(f"featx e2e: {n} JPEG photos ({mp:.1f} MP on average, 300x200..4032x3024), ViT-B/16 random weights, "
          f"batch {args.batch_size}, {torch.get_num_threads()} torch threads, {args.workers} workers")
    print("(shared machine: timings are noisy)")

    results: dict[str, float] = {}
    results["reference float32"] = reference(model, paths, "float32", args.batch_size)
    print(f"  reference pipeline, float32 (default): {results['reference float32']:8.2f} images/s", flush=True)
    if not args.skip_bf16_reference:
        results["reference bfloat16"] = reference(model, paths, "bfloat16", args.batch_size)
        print(f"  reference pipeline, bfloat16:          {results['reference bfloat16']:8.2f} images/s", flush=True)
    rate, dtype = model_only(model, max(n, 2 * args.batch_size), args.batch_size)
    results["featx model only"] = rate
    print(f"  featx model only ({dtype}):           {rate:8.2f} images/s", flush=True)
    for kind in ("thread", "process"):
        rate, summary = featx_cli(model, photos_dir, n, args.batch_size, args.workers, kind)
        results[f"featx embed ({kind})"] = rate
        print(f"  featx embed, whole command, {kind:7s}:  {rate:8.2f} images/s   [{summary}]", flush=True)

    best = max(results["featx embed (thread)"], results["featx embed (process)"])
    print("ratios (featx embed, best worker kind):")
    print(f"  vs reference float32:  {best / results['reference float32']:.2f}x  (target >= 3)")
    if "reference bfloat16" in results:
        print(f"  vs reference bfloat16: {best / results['reference bfloat16']:.2f}x  (target >= 1.2)")
    print(f"  vs featx model only:   {best / results['featx model only']:.2f}   (target >= 0.8)")


if __name__ == "__main__":
    main()
