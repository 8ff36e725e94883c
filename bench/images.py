"""Image preprocessing: featx against the transformers PIL processors, in one run.

Builds 64 real-looking photos of mixed sizes (640x480 to 1920x1080) from the images that ship with
scikit-image, then times ViT, CLIP and ConvNeXt preprocessing of the whole batch from in-memory PIL
images and from JPEG files on disk, and prints the speedup and the largest difference. Also shows the
opt-in reduced-size JPEG decode (``draft``) with its accuracy cost.

    python bench/images.py            # 64 photos, best of 3
    python bench/images.py --quick    # 16 photos, one run

Wall times on a shared machine are noisy; the CPU-time ratio (work done, summed over threads) is the
steadier number. Needs scikit-image and transformers (``pip install 'featx[bench]'``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "stereo_motorcycle")
SIZES = [(640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 960), (1600, 900), (1920, 1080), (1080, 1920),
         (768, 1024), (720, 1280), (1440, 1080), (1200, 800)]  # fmt: skip


def build_photos(count: int, seed: int = 0) -> list:
    """``count`` RGB PIL photos: a scikit-image picture cropped to the aspect ratio, upscaled, grain added."""
    from PIL import Image
    from skimage import data

    pictures = []
    for name in SOURCES:
        try:
            img = getattr(data, name)()
        except Exception:  # noqa: BLE001  (some datasets need a download; skip those)
            continue
        img = img[0] if isinstance(img, tuple) else img
        if img.ndim == 3 and img.shape[2] == 3:
            pictures.append(img)
    rng = np.random.default_rng(seed)
    photos = []
    for i in range(count):
        src = pictures[i % len(pictures)]
        width, height = SIZES[(i * 5 + i // len(SIZES)) % len(SIZES)]
        h, w = src.shape[:2]
        # crop the source to the target aspect ratio, at a random place
        if w / h > width / height:
            cw, ch = int(h * width / height), h
        else:
            cw, ch = w, int(w * height / width)
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = Image.fromarray(np.ascontiguousarray(src[top : top + ch, left : left + cw]))
        photo = np.asarray(crop.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
        grain = rng.normal(0, 4, photo.shape).astype(np.int16)
        photos.append(Image.fromarray(np.clip(photo + grain, 0, 255).astype(np.uint8)))
    return photos


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(best wall seconds, CPU seconds of that run, result)."""
    best = (float("inf"), 0.0, None)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if wall < best[0]:
            best = (wall, cpu, result)
    return best


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 photos, one run each")
    parser.add_argument("--count", type=int, default=None, help="number of photos (default 64, 16 with --quick)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement, best kept (default 3)")
    args = parser.parse_args()
    count = args.count or (16 if args.quick else 64)
    repeat = args.repeat or (1 if args.quick else 3)

    import transformers

    import featx
    from featx.image import functional

    photos = build_photos(count)
    pixels = sum(p.width * p.height for p in photos)
    print(f"{count} photos, {pixels / count / 1e6:.2f} MP on average; featx threads: {functional._num_threads()}, "
          f"cores: {os.cpu_count()}; best of {repeat}")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="featx-bench-"))
    paths = []
    for i, photo in enumerate(photos):
        path = folder / f"{i:03d}.jpg"
        photo.save(path, quality=90)
        paths.append(str(path))

    try:
        from featx.image.io import load_image
    except ImportError:  # pragma: no cover
        load_image = None

    configs = [("ViT", "ViTImageProcessor"), ("CLIP", "CLIPImageProcessor"), ("ConvNeXt", "ConvNextImageProcessor")]
    header = f"{'config':9} {'input':12} {'reference':>12} {'featx':>12} {'speedup':>8} {'cpu ratio':>9} {'max diff':>10}"
    print(header)
    print("-" * len(header))
    speedups = []
    for label, cls_name in configs:
        ours = getattr(featx, cls_name)()
        ref = getattr(transformers, cls_name + "Pil")()
        runs = [("memory PIL", photos, photos), ("JPEG files", paths, paths)]
        for source, ref_input, our_input in runs:
            r_wall, r_cpu, r_out = timed(lambda: ref(ref_input, return_tensors="np").pixel_values, repeat)
            f_wall, f_cpu, f_out = timed(lambda: ours(our_input, return_tensors="np").pixel_values, repeat)
            speedup = r_wall / f_wall
            if source == "memory PIL":
                speedups.append((label, speedup))
            print(f"{label:9} {source:12} {r_wall / count * 1e3:9.2f} ms {f_wall / count * 1e3:9.2f} ms "
                  f"{speedup:7.2f}x {r_cpu / max(f_cpu, 1e-9):8.2f}x {max_diff(r_out, f_out):10.2e}")  # fmt: skip
        if load_image is not None:
            edge = 224 if label != "ConvNeXt" else 384
            draft = lambda: ours([load_image(p, draft=(edge, edge)) for p in paths], return_tensors="np").pixel_values  # noqa: E731
            d_wall, d_cpu, d_out = timed(draft, repeat)
            print(f"{label:9} {'JPEG+draft':12} {r_wall / count * 1e3:9.2f} ms {d_wall / count * 1e3:9.2f} ms "
                  f"{r_wall / d_wall:7.2f}x {r_cpu / max(d_cpu, 1e-9):8.2f}x {max_diff(r_out, d_out):10.2e}  (opt-in, not exact)")  # fmt: skip
    print()
    print("in-memory PIL speedups: " + ", ".join(f"{k} {v:.2f}x" for k, v in speedups))
    print("(timings are noisy on a shared machine; max diff is over pixel_values of the whole batch)")


if __name__ == "__main__":
    main()
