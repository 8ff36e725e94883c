"""featx's image-feature-extraction pipeline vs the transformers pipeline, in one run.

    python bench/embed.py [--quick] [--images N] [--batch-size 16]

64 JPEG photos on disk and a ViT-B/16-sized checkpoint with random weights (both built once and cached
in bench/_data/ by bench/e2e.py's helpers). Times, over the same files at batch 16:
  - the transformers pipeline in float32 (its default) and in bfloat16;
  - featx's pipeline at dtype "auto" (and in float32 and bfloat16 for a like-for-like view);
  - featx's model alone on ready tensors.
Prints images/s, the ratios, and the largest difference between featx's and the reference's pooled
outputs in float32. Targets (issue 4): >= 3x the reference default, >= 1.1x the reference in
bfloat16, and the pipeline at >= 80% of featx's model-only throughput.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from e2e import DATA, make_model, make_photos, model_only, reference


def featx_pipeline(model, paths, dtype: str, batch_size: int) -> tuple[float, np.ndarray, str]:
    """images/s of featx.pipeline (model loading excluded), its pooled outputs and its dtype."""
    import featx

    pipe = featx.pipeline("image-feature-extraction", model=model, dtype=dtype)
    pipe([str(paths[0])], pool=True, batch_size=1)  # warm-up
    start = time.perf_counter()
    out = pipe([str(p) for p in paths], pool=True, batch_size=batch_size, return_tensors=True)
    elapsed = time.perf_counter() - start
    return len(paths) / elapsed, out.float().numpy(), str(pipe.embedder.torch_dtype).replace("torch.", "")


def reference_outputs(model, paths) -> np.ndarray:
    import transformers as tf

    proc = tf.ViTImageProcessorPil.from_pretrained(model)
    pipe = tf.pipeline("image-feature-extraction", model=str(model), image_processor=proc, device="cpu")
    return np.concatenate([np.asarray(o) for o in pipe([str(p) for p in paths], pool=True, batch_size=8)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 photos (a smoke run)")
    parser.add_argument("--images", type=int)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    n = args.images or (16 if args.quick else 64)
    paths = make_photos(DATA / "photos", n)
    model = make_model(DATA / "vit-b16")
    print(f"featx embed bench: {n} JPEG photos from disk, ViT-B/16 random weights, batch {args.batch_size}")

    rates: dict[str, float] = {}
    rates["reference float32"] = reference(model, paths, "float32", args.batch_size)
    rates["reference bfloat16"] = reference(model, paths, "bfloat16", args.batch_size)
    rates["featx auto"], out, auto_dtype = featx_pipeline(model, paths, "auto", args.batch_size)
    rates["featx float32"], out32, _ = featx_pipeline(model, paths, "float32", args.batch_size)
    rates["featx bfloat16"], _, _ = featx_pipeline(model, paths, "bfloat16", args.batch_size)
    rates["featx model only"], model_dtype = model_only(model, max(n, 2 * args.batch_size), args.batch_size)
    for name, rate in rates.items():
        label = f"{name} ({auto_dtype})" if name == "featx auto" else name
        print(f"  {label:28s} {rate:8.2f} images/s")
    ref = reference_outputs(model, paths[: min(n, 8)])
    diff = float(np.abs(out32[: len(ref)] - ref).max())
    print(f"  max |featx - reference| pooled, float32, first {len(ref)} images: {diff:.2e}")
    print("ratios:")
    print(f"  featx auto vs reference float32 (default): {rates['featx auto'] / rates['reference float32']:.2f}x (target >= 3)")
    print(f"  featx auto vs reference bfloat16:          {rates['featx auto'] / rates['reference bfloat16']:.2f}x (target >= 1.1)")
    print(f"  featx float32 vs reference float32:        {rates['featx float32'] / rates['reference float32']:.2f}x")
    print(f"  featx bfloat16 vs reference bfloat16:      {rates['featx bfloat16'] / rates['reference bfloat16']:.2f}x")
    print(f"  featx pipeline vs its model only ({model_dtype}): {rates['featx auto'] / rates['featx model only']:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
