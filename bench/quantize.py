"""Calibrated static int8 (``featx quantize``) against ONNX Runtime's dynamic int8, in one run.

    python bench/quantize.py [--photos 240] [--held-out 40] [--layers 4] [--batch-size 16]
                             [--methods minmax,percentile,entropy] [--models plain,outliers]

Trained checkpoints cannot be downloaded here, so two ViT-B/16-width models (hidden 768, 12 heads,
MLP 3072, 224 px, ``--layers`` layers; bench/make_checkpoint.py's random init, seed 0) stand in:

* ``plain``: the random weights as they are;
* ``outliers``: the same weights given the "massive activations" trained ViTs have (a handful of
  hidden channels whose values are tens to hundreds of times the others'). Exactly: channels
  17, 211, 388 and 600 of every LayerNorm (``layernorm_before``/``layernorm_after`` of each layer and
  the final ``layernorm``) get their gain multiplied by 20, 40, 70 and 100 and their bias set to
  0.5x that factor (so those channels carry large values, positive on average, for every token).
  The inputs of the query/key/value and MLP-in MatMuls then have 4 channels 20-100x larger than the
  rest, which is what makes per-tensor activation quantization lose the other 764.

Calibration runs on ``--photos`` minus ``--held-out`` real-looking photos (bench/e2e.py's
``make_photos``: scikit-image samples at 300x200 to 4032x3024, JPEG), measured on the held-out ones:
mean/min cosine of the pooled embedding to the float32 graph's, top-5 neighbour overlap among the
held-out embeddings, and images/s of the float32, dynamic int8 and calibrated int8 graphs on the same
batches (model only, ONNX Runtime, best of 3), with ratios to float32 and to dynamic int8.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

OUTLIER_CHANNELS = {17: 20.0, 211: 40.0, 388: 70.0, 600: 100.0}


def base_model(layers: int) -> Path:
    """The ViT-B/16-width random checkpoint with ``layers`` layers (cached in bench/_data)."""
    from make_checkpoint import make_checkpoint

    folder = HERE / "_data" / ("vit-b16" if layers == 12 else f"vit-b16-{layers}layers")
    if not (folder / "config.json").exists() or not (folder / "model.safetensors").exists():
        import torch
        import transformers as tf

        make_checkpoint(folder, "vit-b16")
        config = json.loads((folder / "config.json").read_text())
        config["num_hidden_layers"] = layers
        torch.manual_seed(0)
        tf.ViTModel(tf.ViTConfig(**{k: v for k, v in config.items() if k != "architectures"})).save_pretrained(folder)
    return folder


def outlier_model(base: Path) -> Path:
    """``base`` with massive-activation channels (see the module docstring), beside it."""
    from safetensors.numpy import load_file, save_file

    folder = base.with_name(base.name + "-outliers")
    if (folder / "model.safetensors").exists():
        return folder
    tmp = Path(tempfile.mkdtemp(dir=base.parent))
    for name in os.listdir(base):
        if name != "model.safetensors":
            shutil.copy(base / name, tmp / name)
    tensors = load_file(str(base / "model.safetensors"))
    for key, value in tensors.items():
        if "layernorm" in key and value.ndim == 1:
            for channel, factor in OUTLIER_CHANNELS.items():
                if key.endswith("weight"):
                    value[channel] *= factor
                else:
                    value[channel] = 0.5 * factor
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    os.replace(tmp, folder)
    return folder


def run(model: Path, photos: list[Path], args: argparse.Namespace) -> dict:
    from featx.backends.quantize import calibrate_int8

    with tempfile.TemporaryDirectory() as cache, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        report = calibrate_int8(model, [str(p) for p in photos], samples=len(photos), held_out=args.held_out,
                                batch_size=args.batch_size, methods=args.methods.split(","), cache_dir=cache)
        took = time.perf_counter() - start
    out = report.to_dict()
    out["seconds"] = took
    return out


def show(name: str, r: dict) -> None:
    speed = r["items_per_s"]
    print(f"\n== {name}: {r['model']}  (calibrated on {r['calibration_inputs']}, measured on {r['held_out_inputs']} "
          f"held out; {r['seconds']:.0f} s)")
    print(f"   chosen: {r['method']} {r['types']}{' smoothed' if r.get('smoothed') else ''}, "
          f"{r['quantized_layers']} layers int8, "
          f"{len(r['kept_float32'])} kept float32 {r['kept_float32']}; target {r['target_cosine']} "
          f"{'reached' if r['reached_target'] else 'NOT reached'}")
    print(f"   {'graph':<14}{'mean cos':>10}{'min cos':>10}{'top-5':>8}{'img/s':>9}{'x fp32':>8}{'x dyn':>7}")
    rows = [("float32", None, speed["float32"]), ("int8 dynamic", r["dynamic"], speed["int8-dynamic"]),
            ("int8 static", r["static"], speed["int8-static"])]
    for label, acc, ips in rows:
        cos = f"{acc['mean_cosine']:>10.5f}{acc['min_cosine']:>10.5f}{acc['top5_overlap']:>8.3f}" if acc \
            else f"{1:>10.5f}{1:>10.5f}{1:>8.3f}"
        print(f"   {label:<14}{cos}{ips:>9.1f}{ips / speed['float32']:>8.2f}{ips / speed['int8-dynamic']:>7.2f}")
    print("   every configuration tried (held-out mean / min cosine):")
    for c in r["candidates"]:
        print(f"     {c['method']:<11}{c['types']:<14}{'smoothed' if c.get('smoothed') else '':<9}"
              f"float32 layers {c['kept_float32']:>3}: "
              f"{c['mean_cosine']:.5f} / {c['min_cosine']:.5f}  top-5 {c['top5_overlap']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=240)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--methods", default="minmax,percentile,entropy")
    parser.add_argument("--models", default="plain,outliers")
    parser.add_argument("--json", help="also write the reports to this file")
    args = parser.parse_args()
    from e2e import make_photos

    photos = make_photos(HERE / "_data" / "photos", args.photos)
    base = base_model(args.layers)
    models = {"plain": base, "outliers": outlier_model(base)}
    print(f"load: {os.getloadavg()}  cpus: {os.cpu_count()}")
    results = {}
    for name in args.models.split(","):
        results[name] = run(models[name], photos, args)
        show(name, results[name])
    print(f"\nload at the end: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
