"""``featx stream`` latency: an hour of audio fed faster than real time, against one window's model time.

    python bench/stream.py [--quick] [--seconds 3600] [--model DIR]

A tiny Audio Spectrogram Transformer with random weights (hidden 32, 2 layers, 128 mel bins,
128 frames: a 1.295 s window; built once in bench/_data/stream/) unless ``--model`` names
another audio checkpoint. Steps:

  1. the time for one window in this process: the family's processing of one window plus the
     model (what the stream does per window), median of 50 runs, float32; and the model alone;
  2. ``featx stream --format s16le --stats`` in a child process, its stdin fed ``--seconds`` of
     16 kHz PCM (tones + noise) as fast as the pipe takes it, i.e. far faster than real time;
     each line's ``latency_ms`` is the time from reading the window's last sample to its line.

Prints the latency percentiles, the latency of the first and last tenth of the windows (growth),
the ratio of the median latency to step 1's time (target < 1.5), and how much faster than real
time the stream ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's featx
DATA = REPO / "bench" / "_data" / "stream"
RATE = 16000


def make_model(path: Path) -> Path:
    import torch
    import transformers as tf

    if (path / "model.safetensors").is_file():
        return path
    torch.manual_seed(0)
    config = tf.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          max_length=128, num_mel_bins=128)
    tf.ASTModel(config).eval().save_pretrained(path, safe_serialization=True)
    tf.ASTFeatureExtractor(max_length=128).save_pretrained(path)
    return path


def audio_block(i: int, seconds: float = 10.0) -> np.ndarray:
    """Block ``i`` of the synthetic input: a tone that changes every block, plus noise (int16)."""
    rng = np.random.default_rng(i)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * (150 + 37 * (i % 20)) * t) + 0.05 * rng.standard_normal(t.size)
    return np.round(wave * 32767).astype("<i2")


def window_time(model: Path) -> tuple[float, float, float]:
    """(median seconds of processing + model for one window, of the model alone, window seconds)."""
    from featx.embedding import Embedder

    embedder = Embedder(model, dtype="float32")
    family, processor = embedder.family, embedder.processor
    size = int(round(family.window(processor) * RATE))
    samples = audio_block(0)[:size].astype(np.float32) / 32768
    whole, alone = [], []
    for _ in range(55):
        t0 = time.perf_counter()
        arrays = family.window_arrays(processor, [samples])
        t1 = time.perf_counter()
        embedder.embed_windows([arrays], batch_size=1)
        t2 = time.perf_counter()
        whole.append(t2 - t0)
        alone.append(t2 - t1)
    return float(np.median(whole[5:])), float(np.median(alone[5:])), size / RATE


def run_stream(model: Path, seconds: int) -> tuple[list[dict], float, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "featx", "stream", "-m", str(model), "--format", "s16le", "--rate", str(RATE),
           "--stats", "--dtype", "float32"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def feed() -> None:
        try:
            for i in range(int(np.ceil(seconds / 10))):
                proc.stdin.write(audio_block(i).tobytes())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass

    start = time.perf_counter()
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    lines = [json.loads(line) for line in proc.stdout]  # type: ignore[union-attr]
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.wait()
    if proc.returncode:
        raise SystemExit(f"featx stream failed ({proc.returncode}):\n{err}")
    return lines, elapsed, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 minutes of audio (a smoke run)")
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--model", help="an audio checkpoint folder (default: a tiny random AST)")
    args = parser.parse_args()
    seconds = 300 if args.quick else args.seconds
    model = Path(args.model) if args.model else make_model(DATA / "ast-tiny")
    import torch

    per_window, model_alone, window_s = window_time(model)
    print(f"stream bench: {model.name}, {window_s:.3f} s windows, {seconds} s of 16 kHz s16le PCM fed as fast as "
          f"the pipe takes it, float32, torch threads {torch.get_num_threads()}")
    print(f"  one window in process: processing + model {per_window * 1000:.2f} ms (model alone "
          f"{model_alone * 1000:.2f} ms)")
    lines, elapsed, _ = run_stream(model, seconds)
    lat = np.asarray([x["latency_ms"] for x in lines])
    tenth = max(1, len(lat) // 10)
    first, last = float(np.median(lat[:tenth])), float(np.median(lat[-tenth:]))
    print(f"  windows: {len(lines)} (last ends at {lines[-1]['end_s']:.1f} s), wall {elapsed:.1f} s = "
          f"{seconds / elapsed:.1f}x real time")
    print(f"  latency ms: p50 {np.median(lat):.2f}  p95 {np.percentile(lat, 95):.2f}  p99 {np.percentile(lat, 99):.2f}  "
          f"max {lat.max():.2f}")
    print(f"  latency ms, median of the first tenth {first:.2f}, of the last tenth {last:.2f} "
          f"(growth {last / first:.2f}x; target: none)")
    print("ratios:")
    print(f"  median latency / one window's processing + model: {np.median(lat) / (per_window * 1000):.2f} "
          f"(target < 1.5)")
    print(f"  median latency / one window's model alone:        {np.median(lat) / (model_alone * 1000):.2f}")


if __name__ == "__main__":
    main()
