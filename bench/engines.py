"""Local engine vs Ray engine on the same job, in one run, and Ray's overhead per file.

    python bench/engines.py [--quick] [--images N] [--batch-size 16] [--workers N]

1. Throughput: the 240-photo job of bench/e2e.py (same photos, same ViT-B/16-sized random checkpoint,
   built by its code) through `featx.engine.local.run` and `featx.engine.ray_engine.run` in this
   process (no CLI start-up), pooler embeddings, batch 16. Ray gets a local instance with this
   machine's CPUs (started before the clock; its start-up time is printed apart).
2. Overhead: many small PNGs through a tiny ViT, where decoding and the model cost little, at two job
   sizes; fitting time = fixed + n * per_file for each engine gives Ray's fixed cost per job (actor
   start, model load in the actor, pipeline start) and its extra cost per file (object store, pickling,
   scheduling) over the local engine.

On one machine the local engine is the default: Ray pays its fixed and per-file costs without more
hardware to spread over. Numbers on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from e2e import DATA, make_model, make_photos  # noqa: E402  (same photos and checkpoint as bench/e2e.py)


def _job(model: Path, batch_size: int, pool: str) -> object:
    from featx.embedding import Embedder
    from featx.engine.jobs import EmbedJob

    return EmbedJob(Embedder(model, pool=pool, dtype="auto"), dtype="auto", batch_size=batch_size)


def _time(engine: str, job: object, inputs: list[str], n: int, batch_size: int, workers: int,
          threads: int) -> tuple[float, object]:
    """Seconds for one job over the first ``n`` inputs into a fresh folder, and its summary."""
    from featx.engine import local, ray_engine
    from featx.engine.local import RunOptions

    out = Path(tempfile.mkdtemp(prefix=f"featx-{engine}-"))
    opts = RunOptions(batch_size=batch_size, workers=workers, limit=n, progress="none")
    try:
        start = time.perf_counter()
        if engine == "local":
            summary = local.run(job, inputs, str(out / "emb"), opts)
        else:
            ro = ray_engine.RayOptions(cpus_per_actor=1, threads_per_actor=threads)
            summary = ray_engine.run(job, inputs, str(out / "emb"), opts, ray_options=ro)
        elapsed = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if summary.done != n:  # type: ignore[attr-defined]
        raise SystemExit(f"{engine} engine embedded {summary.done} of {n} inputs")  # type: ignore[attr-defined]
    return elapsed, summary


def _small_pngs(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        path = folder / f"small_{i:05d}.png"
        if not path.exists():
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="24 photos and fewer small files (a smoke run)")
    parser.add_argument("--images", type=int, help="photos (default 240, 24 with --quick)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="local engine decode threads")
    args = parser.parse_args()
    n = args.images or (24 if args.quick else 240)
    small = (100, 400) if args.quick else (500, 2000)

    import ray
    import torch

    from featx.ray import init_ray

    sys.path.insert(0, str(HERE))
    from make_checkpoint import make_checkpoint

    photos = DATA / "photos"
    make_photos(photos, n)
    model = make_model(DATA / "vit-b16")
    tiny = make_checkpoint(DATA / "vit-tiny", "vit-tiny")
    smalls = _small_pngs(DATA / "small_pngs", small[1])
    cpus = os.cpu_count() or 2
    threads = torch.get_num_threads()

    start = time.perf_counter()
    init_ray(num_cpus=cpus)
    ray_start = time.perf_counter() - start
    print(f"featx engines: {n} photos (bench/e2e.py set), ViT-B/16 random weights, batch {args.batch_size}, "
          f"{cpus} CPUs, {threads} torch threads; Ray local instance started in {ray_start:.1f} s")
    print("(shared machine: timings are noisy)")
    try:
        job = _job(model, args.batch_size, "pooler")
        rates = {}
        for engine in ("local", "ray"):
            elapsed, summary = _time(engine, job, [str(photos)], n, args.batch_size, args.workers, threads)
            rates[engine] = n / elapsed
            print(f"  {engine:5s} engine: {rates[engine]:7.2f} photos/s  ({elapsed:.1f} s)", flush=True)
        print(f"  ray / local: {rates['ray'] / rates['local']:.2f}x")

        job = _job(tiny, 64, "cls")
        fits = {}
        for engine in ("local", "ray"):
            times = [_time(engine, job, [str(smalls)], k, 64, args.workers, threads)[0] for k in small]
            per_file = (times[1] - times[0]) / (small[1] - small[0])
            fits[engine] = (times[0] - per_file * small[0], per_file)
            print(f"  {engine:5s} engine, tiny model, 32x32 PNGs: {small[0]} files {times[0]:.2f} s, "
                  f"{small[1]} files {times[1]:.2f} s -> {per_file * 1e3:.2f} ms/file + {fits[engine][0]:.2f} s",
                  flush=True)
        extra = fits["ray"][1] - fits["local"][1]
        fixed = fits["ray"][0] - fits["local"][0]
        print(f"Ray overhead: {extra * 1e3:+.2f} ms per file, {fixed:+.2f} s per job (over the local engine)")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
