"""Tiny random LLaVA 1.5 / LLaVA-NeXT checkpoints (CLIP vision tower + tiny Llama), saved in Hugging
Face format with safetensors, and the reference models they were saved from (eval, float32)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=28,
              patch_size=7, projection_dim=16, model_type="clip_vision_model")
TEXT = dict(hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=120, model_type="llama")
PINPOINTS = [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]]
PROCESSOR = dict(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every parameter (biases, norms, image_newline too) gets seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def build_llava(folder: Path, *, next: bool = False, seed: int = 0, **config: Any) -> Any:
    """Save a tiny LLaVA (``next``: LLaVA-NeXT) and its image processor into ``folder``; returns
    the reference model."""
    import transformers as tf

    torch.manual_seed(seed)
    vision = {**VISION, **config.pop("vision", {})}
    if next:
        cfg = tf.LlavaNextConfig(vision_config=vision, text_config=TEXT, image_token_index=119,
                                 image_grid_pinpoints=config.pop("image_grid_pinpoints", PINPOINTS), **config)
        model = tf.LlavaNextForConditionalGeneration(cfg)
        processor = tf.LlavaNextImageProcessorPil(**PROCESSOR, image_grid_pinpoints=cfg.image_grid_pinpoints)
    else:
        cfg = tf.LlavaConfig(vision_config=vision, text_config=TEXT, image_token_index=119, **config)
        model = tf.LlavaForConditionalGeneration(cfg)
        processor = tf.CLIPImageProcessorPil(**PROCESSOR)
    randomize(model, seed)
    model.eval().save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return model


def reference_features(model: Any, pixel_values: torch.Tensor, image_sizes: torch.Tensor | None = None) -> list:
    """The reference's ``get_image_features`` as a list of per-image [tokens, dim] tensors."""
    with torch.no_grad():
        # output_hidden_states: with vision_feature_layer=0 the reference would ask for none (0 is falsy)
        kwargs: dict[str, Any] = {"output_hidden_states": True}
        if image_sizes is not None:
            kwargs["image_sizes"] = image_sizes
        out = model.get_image_features(pixel_values=pixel_values, **kwargs)
    feats = out.pooler_output if hasattr(out, "pooler_output") else out
    return [f for f in feats]
