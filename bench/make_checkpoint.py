"""Write a randomly initialised checkpoint in Hugging Face format (config.json, model.safetensors,
preprocessor_config.json) for benchmarks and offline demos.

    python bench/make_checkpoint.py OUT [--arch vit-b16|vit-tiny] [--seed 0]

ViT-B/16 is the size of google/vit-base-patch16-224-in21k (86M parameters); the weights are random,
so embeddings exercise the whole job but mean nothing. Needs `transformers` (pip install -e ".[bench]").
"""

from __future__ import annotations

import argparse
from pathlib import Path

ARCHS = {
    "vit-b16": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                    image_size=224, patch_size=16),
    "vit-tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                     image_size=224, patch_size=16),
}


def make_checkpoint(out: str | Path, arch: str = "vit-b16", seed: int = 0) -> Path:
    """Create (or reuse) a random checkpoint folder; returns its path."""
    import torch
    import transformers as tf

    out = Path(out)
    if (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file():
        return out
    torch.manual_seed(seed)
    model = tf.ViTModel(tf.ViTConfig(**ARCHS[arch]))
    model.eval().save_pretrained(out, safe_serialization=True)
    tf.ViTImageProcessorPil().save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--arch", choices=sorted(ARCHS), default="vit-b16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make_checkpoint(args.out, args.arch, args.seed))


if __name__ == "__main__":
    main()
