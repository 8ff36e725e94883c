"""Video frames decoded and embedded: featx vs a PyAV-decode + transformers-pipeline loop, in one run.

    python bench/video.py [--quick] [--seconds 60] [--batch-size 16]

A 1080p H.264 video of ``--seconds`` (default 60) at 30 fps (panning gradients with a cut every
5 s; x264 "veryfast", default GOP) and a ViT-Ti/16-sized checkpoint with random weights (hidden
192, 12 layers, 3 heads, 224 px; both built once and cached in bench/_data/video/). For 1 frame
per second and for key frames, times:

  - featx: ``featx embed VIDEO --video-fps 1 --pool pooler`` (or ``--keyframes``), in process,
    float32, Parquet written, model loading included (after a one-frame warm-up run);
  - reference: the loop a user writes: ``for frame in container.decode(video=0)``, the same
    frames kept (first frame at or after each second; ``frame.key_frame``), ``frame.to_image()``,
    then ``transformers.pipeline("image-feature-extraction")(images, pool=True)`` in batches
    (pipeline built before the clock starts);
  - for key frames also the reference with the decoder told to skip other frames
    (``codec_context.skip_frame = "NONKEY"``, the best alternative).

Prints frames/s (sampled frames decoded + embedded per second of wall time), the ratios, and the
largest difference between featx's and the reference's pooled embeddings.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's featx

DATA = Path(__file__).resolve().parent / "_data" / "video"


def make_video(path: Path, seconds: int, fps: int = 30) -> Path:
    """A 1920x1080 H.264 video: smooth moving gradients, a new colour scheme every 5 s."""
    import av

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    container = av.open(str(tmp), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "23"}
    yy, xx = np.mgrid[0:1080, 0:1920 + 8 * 5 * fps].astype(np.float32)
    for i in range(seconds * fps):
        shot, step = divmod(i, 5 * fps)
        if step == 0:  # each shot: one wide picture, panned 8 px per frame (cheap to make)
            wide = np.stack([127 + 100 * np.sin(xx / (200 + 30 * shot)),
                             127 + 100 * np.cos(yy / (150 + 20 * shot) + xx / 900),
                             127 + 100 * np.sin((xx + yy) / 300 + shot)], -1).astype(np.uint8)
        image = np.ascontiguousarray(wide[:, 8 * step:8 * step + 1920])
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    tmp.rename(path)
    return path


def make_model(path: Path) -> Path:
    """ViT-Ti/16 sized, random weights (seed 0), with a 224 px ViT image processor."""
    import torch
    import transformers as tf

    if (path / "model.safetensors").is_file():
        return path
    torch.manual_seed(0)
    config = tf.ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768,
                          image_size=224, patch_size=16)
    tf.ViTModel(config).eval().save_pretrained(path, safe_serialization=True)
    tf.ViTImageProcessorPil(size={"height": 224, "width": 224}).save_pretrained(path)
    return path


def run_featx(video: Path, model: Path, option: list[str], batch_size: int) -> tuple[float, int, np.ndarray, list[float]]:
    """(frames/s, frames, embeddings, times) of ``featx embed`` in this process."""
    import pyarrow.dataset as ds

    from featx.cli import main

    out = Path(tempfile.mkdtemp(prefix="featx-video-bench-"))
    try:
        # warm-up (one frame): compiles the resize kernels once, as any long-running job has done
        main(["embed", str(video), "-m", str(model), "-o", str(out / "warm"), "--dtype", "float32",
              "--progress", "none", "--video-frames", "1", "--pool", "pooler"])
        start = time.perf_counter()
        code = main(["embed", str(video), "-m", str(model), "-o", str(out / "o"), "--dtype", "float32",
                     "--progress", "none", "--batch-size", str(batch_size), "--pool", "pooler", *option])
        elapsed = time.perf_counter() - start
        assert code == 0, code
        rows = sorted(ds.dataset(str(out / "o")).to_table().to_pylist(), key=lambda r: r["time_s"])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return len(rows) / elapsed, len(rows), np.asarray([r["embedding"] for r in rows]), [r["time_s"] for r in rows]


def run_reference(video: Path, model: Path, mode: str, batch_size: int, skip: bool = False) -> tuple[float, int, np.ndarray]:
    """(frames/s, frames, pooled embeddings) of PyAV decoding + the transformers pipeline."""
    import av
    import transformers as tf

    processor = tf.ViTImageProcessorPil.from_pretrained(model)
    pipe = tf.pipeline("image-feature-extraction", model=str(model), image_processor=processor, device="cpu")
    start = time.perf_counter()
    images = []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        if skip:
            stream.codec_context.skip_frame = "NONKEY"
        next_t = 0.0
        for frame in container.decode(stream):
            t = float(frame.time)
            if mode == "keyframes":
                keep = frame.key_frame
            else:
                keep = t + 1e-6 >= next_t
                if keep:
                    next_t = np.floor(t + 1e-6) + 1.0
            if keep:
                images.append(frame.to_image())
    out = pipe(images, pool=True, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    return len(images) / elapsed, len(images), np.concatenate([np.asarray(o) for o in out])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s video (a smoke run)")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    seconds = 10 if args.quick else args.seconds
    video = make_video(DATA / f"1080p_{seconds}s.mp4", seconds)
    model = make_model(DATA / "vit-ti16")
    import torch

    print(f"video bench: {video.name} (1920x1080 H.264, 30 fps, {seconds} s), ViT-Ti/16 random weights, float32, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    results = {}
    for mode, option in (("1 fps", ["--video-fps", "1"]), ("keyframes", ["--keyframes"])):
        rate, n, emb, _times = run_featx(video, model, option, args.batch_size)
        ref_rate, ref_n, ref_emb = run_reference(video, model, "keyframes" if mode == "keyframes" else "fps",
                                                 args.batch_size)
        line = {"featx": (rate, n), "reference": (ref_rate, ref_n)}
        if mode == "keyframes":
            line["reference skip_frame=NONKEY"] = run_reference(video, model, "keyframes", args.batch_size, skip=True)[:2]
        diff = float(np.abs(emb - ref_emb).max()) if emb.shape == ref_emb.shape else float("nan")
        results[mode] = (line, diff)
        print(f"{mode}:")
        for name, (r, count) in line.items():
            print(f"  {name:30s} {r:8.2f} frames/s  ({count} frames)")
        print(f"  max |featx - reference| pooled embedding: {diff:.2e}")
    print("ratios (featx / reference):")
    for mode, (line, _) in results.items():
        for name, (r, _) in line.items():
            if name != "featx":
                print(f"  {mode:10s} vs {name:30s} {line['featx'][0] / r:.2f}x")


if __name__ == "__main__":
    main()
