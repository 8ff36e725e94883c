"""`featx serve` under load against offline `featx embed` on the same images, in one run.

    python bench/serve.py [--model DIR] [--images 96] [--quick]

Starts `featx serve --model M` (embeddings only, float32) as its own process on 127.0.0.1, sends
single-image ``/v1/embeddings`` requests (base64 JPEG, keep-alive) from 1, 4 and 16 concurrent
clients, and prints requests/s and p50/p95/p99 latency per level; then the ratios the issue sets
targets for: throughput at 16 clients / offline `featx embed` throughput (target >= 0.8), and
p50 latency at 1 client / the model's time for one image (target <= 1.3).

Without --model a ViT-Ti/16-sized checkpoint (hidden 192, 12 layers, 224 px; 5.7M parameters,
random weights) is written to a temporary folder with `transformers` (pip install -e ".[bench]").
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's featx (the server process gets it via PYTHONPATH)
VIT_TI16 = dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768,
                image_size=224, patch_size=16)


def make_model(folder: Path) -> Path:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    tf.ViTModel(tf.ViTConfig(**VIT_TI16)).eval().save_pretrained(folder, safe_serialization=True)
    tf.ViTImageProcessorPil().save_pretrained(folder)
    return folder


def make_images(folder: Path, n: int) -> list[Path]:
    """``n`` smooth random 640x480 JPEG photos (the decode + resize work of real photos)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640] / 640.0
    paths = []
    for i in range(n):
        channels = [np.sin(rng.uniform(2, 12) * xx + rng.uniform(0, 6)) * np.cos(rng.uniform(2, 12) * yy)
                    for _ in range(3)]
        arr = ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)
        path = folder / f"photo_{i:04d}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        paths.append(path)
    return paths


def offline_throughput(model: Path, folder: Path, out: Path, extra: list[str]) -> float:
    """images/s of `featx embed` (the rate it reports: from the first input to the last row written)."""
    from featx.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["embed", str(folder), "--model", str(model), "--output", str(out), "--dtype", "float32",
                   "--progress", "log", "--overwrite", *extra])
    if rc != 0:
        raise SystemExit(f"featx embed failed ({rc}):\n{err.getvalue()}")
    match = re.search(r"([\d.]+) s, ([\d.]+) files/s", err.getvalue())
    if match is None:
        raise SystemExit(f"cannot read the rate from featx embed's summary:\n{err.getvalue()}")
    return float(match.group(2))


def model_time_one(model: Path, image: Path, repeats: int) -> float:
    """Median seconds of the model alone on one prepared image (batch of 1)."""
    from featx.embedding import Embedder

    embedder = Embedder(str(model), dtype="float32")
    prepared = embedder.prepare(str(image))
    embedder.embed_outcomes([prepared], batch_size=1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        embedder.embed_outcomes([prepared], batch_size=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Server:
    def __init__(self, model: Path, extra: list[str]) -> None:
        cmd = [sys.executable, "-m", "featx", "serve", "--model", str(model), "--dtype", "float32",
               "--host", "127.0.0.1", "--port", "0", "--no-text", *extra]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.port = 0
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            match = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        if not self.port:
            raise SystemExit("featx serve did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def load(port: int, bodies: list[bytes], clients: int, per_client: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in s) of ``clients`` threads sending ``per_client`` requests each."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        barrier.wait()
        for i in range(per_client):
            body = bodies[(c * per_client + i) % len(bodies)]
            start = time.perf_counter()
            conn.request("POST", "/v1/embeddings", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200 or json.loads(data)["errors"]:
                errors.append(f"{response.status}: {data[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return clients * per_client / took, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint folder (default: a random ViT-Ti/16 made here)")
    parser.add_argument("--images", type=int, default=96, help="distinct images (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=192, help="requests per concurrency level (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, default=32, help="featx serve --max-batch (default: %(default)s)")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="featx serve --max-wait-ms (default: %(default)s)")
    parser.add_argument("--threads", type=int,
                        help="torch threads, here and in the server (default: torch's choice, one per core)")
    parser.add_argument("--quick", action="store_true", help="fewer images and requests")
    args = parser.parse_args()
    threads = ["--threads", str(args.threads)] if args.threads else []
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.quick:
        args.images, args.requests = 32, 48
    with tempfile.TemporaryDirectory(prefix="featx-bench-serve-") as tmp:
        root = Path(tmp)
        model = Path(args.model) if args.model else make_model(root / "vit-ti16")
        images = make_images(root / "photos", args.images)
        bodies = [json.dumps({"input": [base64.b64encode(p.read_bytes()).decode()]}).encode() for p in images]

        model_s = model_time_one(model, images[0], repeats=20)
        offline = offline_throughput(model, root / "photos", root / "out", threads)
        print(f"model: {'ViT-Ti/16 (random, 224 px)' if not args.model else model}; {args.images} JPEG photos "
              f"640x480; float32; torch threads {__import__('torch').get_num_threads()}")
        print(f"model alone, one image: {1000 * model_s:.1f} ms;  offline featx embed: {offline:.1f} images/s")

        server = Server(model, ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms), *threads])
        try:
            load(server.port, bodies, 2, 8)  # warm-up
            rows = []
            for clients in (1, 4, 16):
                per = max(1, args.requests // clients)
                rps, lat = load(server.port, bodies, clients, per)
                ms = 1000 * np.percentile(lat, [50, 95, 99])
                rows.append((clients, rps, *ms))
        finally:
            server.stop()
        print(f"\n{'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'vs offline':>11}")
        for clients, rps, p50, p95, p99 in rows:
            print(f"{clients:>7} {rps:>8.1f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {rps / offline:>10.2f}x")
        p50_one = rows[0][2]
        print(f"\nthroughput at 16 clients / offline featx embed: {rows[-1][1] / offline:.2f} (target >= 0.80)")
        print(f"p50 latency at 1 client / model time for one image: {p50_one / (1000 * model_s):.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
