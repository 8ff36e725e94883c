"""Image preprocessing: featx against the transformers PIL processors, in one run.

Builds 64 real-looking photos of mixed sizes (640x480 to 1920x1080) from the images that ship with
scikit-image, then times ViT, CLIP and ConvNeXt preprocessing of the whole batch from in-memory PIL
images and from JPEG files on disk, and prints the speedup and the largest difference. Also shows the
opt-in reduced-size JPEG decode (``draft``) with its accuracy cost, and the resize kernel alone against
``PIL.Image.resize`` in single-thread CPU time (steady even on a busy machine).

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


def cpu_time(fn, repeat: int, number: int = 10) -> float:
    """Best CPU seconds per call of ``fn`` (one thread, so CPU time is the work done)."""
    fn()
    best = float("inf")
    for _ in range(max(repeat, 3)):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - start) / number)
    return best


def kernel_table(photos: list, repeat: int) -> None:
    """The resize alone: featx's kernel (one thread) against ``PIL.Image.resize`` on the same photo."""
    from PIL import Image

    from featx.image import resample

    print(f"resize kernel alone, single-thread CPU time (numba kernel: {resample.have_kernel()})")
    header = f"{'photo':11} {'filter':9} {'PIL':>9} {'featx PIL':>10} {'ratio':>6} {'featx array':>12} {'ratio':>6}  exact"
    print(header)
    print("-" * len(header))
    by_size = {p.size: p for p in photos}
    for width, height in [(1920, 1080), (640, 480)]:
        photo = by_size.get((width, height)) or photos[0].resize((width, height), Image.Resampling.BICUBIC)
        array = np.asarray(photo)
        for name, code in [("bilinear", 2), ("bicubic", 3), ("lanczos", 1)]:
            want = np.asarray(photo.resize((224, 224), code, reducing_gap=None))
            exact = np.array_equal(resample.resize_pil_image(photo, (224, 224), code), want) and np.array_equal(
                resample.resize_uint8(array, (224, 224), code), want
            )
            t_pil = cpu_time(lambda: photo.resize((224, 224), code, reducing_gap=None), repeat)
            t_img = cpu_time(lambda: resample.resize_pil_image(photo, (224, 224), code, threads=1), repeat)
            t_arr = cpu_time(lambda: resample.resize_uint8(array, (224, 224), code, threads=1), repeat)
            print(f"{width}x{height:<6} {name:9} {t_pil * 1e3:6.2f} ms {t_img * 1e3:7.2f} ms {t_pil / t_img:5.1f}x "
                  f"{t_arr * 1e3:9.2f} ms {t_pil / t_arr:5.1f}x  {exact}")  # fmt: skip
    print("(featx PIL: from a PIL image, read in place; featx array: from an (H, W, 3) uint8 array)")
    print()


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
    from featx.image.threads import num_threads

    photos = build_photos(count)
    start = time.perf_counter()
    featx.ViTImageProcessor()(photos[:1], return_tensors="np")
    first_call = time.perf_counter() - start
    pixels = sum(p.width * p.height for p in photos)
    print(f"{count} photos, {pixels / count / 1e6:.2f} MP on average; featx threads: {num_threads()}, "
          f"cores: {os.cpu_count()}; best of {repeat}")  # fmt: skip
    print(f"featx's first call in this process: {first_call:.2f} s (loading the compiled kernel; the first run "
          "on a machine also compiles it)\n")  # fmt: skip
    kernel_table(photos, repeat)
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
        ours(photos[:2], return_tensors="np"), ref(photos[:2], return_tensors="np")  # warm up both
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
