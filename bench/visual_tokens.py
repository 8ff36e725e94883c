"""Visual tokens per second and peak memory: featx's LLaVA visual path vs transformers'
``get_image_features`` on the full model, for a LLaVA-1.5-shaped checkpoint with random weights.

    python bench/visual_tokens.py                       # 4 vision layers, 1 language layer
    python bench/visual_tokens.py --vision-layers 24 --text-layers 32   # the real 7B shape (needs ~30 GB)

The vision tower has ViT-L/14-336 dimensions (width 1024, MLP 4096, 16 heads, 336 px, 576 patch
tokens), the projector LLaVA 1.5's (1024 -> 4096 -> 4096, GELU), the language model Llama-7B's width
(4096, MLP 11008, 32 heads, 32000 tokens) with ``--text-layers`` layers, saved in float16 like
llava-hf's checkpoints and run in float32. ``vision_feature_layer`` is
-2 as in LLaVA 1.5, so ``--vision-layers`` - 1 layers run. Fewer layers than the real 24/32 keep the
run short on a small machine; time per token scales with the vision layers (both sides run the same
layers), and the reference's memory grows with the language layers (~0.8 GB each in float32) while
featx's does not: featx reads only the vision tower and projector tensors.

Each side runs in a fresh subprocess (float32, the same threads): load, one warm-up batch, then
timed batches; it reports load time (imports included), visual tokens/s, the peak RSS (``ru_maxrss``) and its first
batch's tokens, which the parent compares (max abs difference).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "_data")

VISION = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, image_size=336, patch_size=14,
              projection_dim=768, hidden_act="quick_gelu", model_type="clip_vision_model")
TEXT = dict(hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=32,
            vocab_size=32000, model_type="llama")


def make_checkpoint(folder: str, vision_layers: int, text_layers: int) -> None:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.LlavaConfig(vision_config={**VISION, "num_hidden_layers": vision_layers},
                         text_config={**TEXT, "num_hidden_layers": text_layers}, image_token_index=32000 - 1)
    model = tf.LlavaForConditionalGeneration(cfg).eval()
    model.to(torch.float16).save_pretrained(folder, safe_serialization=True)  # as llava-hf's checkpoints


def _worker(side: str, folder: str, batch: int, batches: int, threads: int, out: str) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    pixels = [torch.randn(batch, 3, 336, 336, generator=gen) for _ in range(batches + 1)]
    start = time.perf_counter()
    extra = {}
    if side == "featx":
        from featx.models import load_model

        model = load_model(folder, dtype="float32")
        extra = {"bytes_read": model.bytes_read}

        def run(x):
            return model(x).last_hidden_state
    else:
        import transformers as tf

        model = tf.LlavaForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()

        def run(x):
            return torch.stack(list(model.get_image_features(pixel_values=x).pooler_output))
    load_s = time.perf_counter() - start
    with torch.inference_mode():
        first = run(pixels[0])  # warm-up, kept for the comparison
        start = time.perf_counter()
        tokens = 0
        for x in pixels[1:]:
            out_tokens = run(x)
            tokens += out_tokens.shape[0] * out_tokens.shape[1]
        elapsed = time.perf_counter() - start
    np.save(out + ".npy", first.float().numpy())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(out + ".json", "w") as fh:
        json.dump({"load_s": load_s, "tokens_per_s": tokens / elapsed, "peak_mb": peak_mb, **extra}, fh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vision-layers", type=int, default=4)
    parser.add_argument("--text-layers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--worker", nargs=3, metavar=("SIDE", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--build", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        make_checkpoint(args.build, args.vision_layers, args.text_layers)
        return
    if args.worker:
        side, folder, out = args.worker
        _worker(side, folder, args.batch, args.batches, args.threads, out)
        return
    os.makedirs(DATA, exist_ok=True)
    folder = os.path.join(DATA, f"llava15_fp16_v{args.vision_layers}_t{args.text_layers}")
    if not os.path.exists(os.path.join(folder, "config.json")):
        print(f"building the checkpoint in {folder} ...", flush=True)
        # in a subprocess: Linux keeps ru_maxrss across exec, so the parent must stay small
        subprocess.run([sys.executable, __file__, "--build", folder, "--vision-layers", str(args.vision_layers),
                        "--text-layers", str(args.text_layers)], check=True)
    size_mb = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) / 2**20
    print(f"checkpoint: ViT-L/14-336 tower with {args.vision_layers} layers, Llama-7B-wide LM with "
          f"{args.text_layers} layer(s), {size_mb:.0f} MB (float16); batch {args.batch} x {args.batches}, "
          f"{args.threads} threads, float32")
    results = {}
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        for side in ("transformers", "featx"):
            out = os.path.join(tmp, side)
            cmd = [sys.executable, __file__, "--worker", side, folder, out, "--batch", str(args.batch),
                   "--batches", str(args.batches), "--threads", str(args.threads)]
            env = {**os.environ, "PYTHONPATH": os.path.dirname(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            subprocess.run(cmd, check=True, env=env)
            with open(out + ".json") as fh:
                results[side] = json.load(fh)
            results[side]["first"] = np.load(out + ".npy")
    diff = float(np.abs(results["featx"]["first"] - results["transformers"]["first"]).max())
    print(f"{'':14}{'load s':>9}{'tokens/s':>11}{'peak MB':>10}")
    for side in ("transformers", "featx"):
        r = results[side]
        print(f"{side:14}{r['load_s']:9.2f}{r['tokens_per_s']:11.0f}{r['peak_mb']:10.0f}")
    t, f = results["transformers"], results["featx"]
    print(f"featx / transformers: {f['tokens_per_s'] / t['tokens_per_s']:.2f}x tokens/s, "
          f"{f['peak_mb'] / t['peak_mb']:.2f}x peak memory, {t['load_s'] / f['load_s']:.1f}x faster load; "
          f"featx read {f['bytes_read'] / 2**20:.0f} MB of the {size_mb:.0f} MB checkpoint; "
          f"max abs diff of the tokens {diff:.2e}")


if __name__ == "__main__":
    main()
