"""Tiny random Hugging Face checkpoints of the image encoders, built once per test session.

Every parameter (biases and norms included) gets seeded random values, so a weight loaded
into the wrong place cannot hide behind a zero or one initialisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8)
TEXT = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, vocab_size=100,
            bos_token_id=0, eos_token_id=1, pad_token_id=1)
DINO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2, image_size=32, patch_size=8)


@dataclass
class Checkpoint:
    """A saved checkpoint and the reference model it was saved from (eval mode, float32)."""

    name: str
    path: Path
    model: Any
    #: runs the reference on pixel_values, returning (last_hidden_state, pooler_output, image_embeds)
    run: Callable[..., tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]


def _randomize(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def _encoder_run(model: Any) -> Callable[..., Any]:
    def run(pixel_values: torch.Tensor, **kw: Any) -> Any:
        with torch.no_grad():
            out = model(pixel_values=pixel_values, **kw)
        return out.last_hidden_state, out.pooler_output, None

    return run


def _tower_run(model: Any, tower: Any, projection: Any | None) -> Callable[..., Any]:
    def run(pixel_values: torch.Tensor, **kw: Any) -> Any:
        with torch.no_grad():
            out = tower(pixel_values=pixel_values, **kw)
            embeds = projection(out.pooler_output) if projection is not None else None
        return out.last_hidden_state, out.pooler_output, embeds

    return run


def _build(name: str) -> tuple[Any, Callable[[Any], Callable[..., Any]]]:
    T = pytest.importorskip("transformers")
    if name == "vit":
        return T.ViTModel(T.ViTConfig(**VISION)), _encoder_run
    if name == "vit_gelu_new":
        return T.ViTModel(T.ViTConfig(**VISION, hidden_act="gelu_new", qkv_bias=False, pooler_output_size=24)), _encoder_run
    if name == "vit_classifier":
        model = T.ViTForImageClassification(T.ViTConfig(**VISION, num_labels=3))
        return model, lambda m: _encoder_run(m.vit)
    if name == "deit":
        return T.DeiTModel(T.DeiTConfig(**VISION)), _encoder_run
    if name == "dinov2":
        return T.Dinov2Model(T.Dinov2Config(**DINO)), _encoder_run
    if name == "dinov2_swiglu":
        return T.Dinov2Model(T.Dinov2Config(**DINO, use_swiglu_ffn=True)), _encoder_run
    if name == "dinov2_registers":
        return T.Dinov2WithRegistersModel(T.Dinov2WithRegistersConfig(**DINO, num_register_tokens=2)), _encoder_run
    if name == "clip":
        model = T.CLIPModel(T.CLIPConfig(vision_config=VISION, text_config=TEXT, projection_dim=16))
        return model, lambda m: _tower_run(m, m.vision_model, m.visual_projection)
    if name == "clip_vision":
        return T.CLIPVisionModel(T.CLIPVisionConfig(**VISION)), lambda m: _tower_run(m, m, None)
    if name == "clip_vision_projection":
        model = T.CLIPVisionModelWithProjection(T.CLIPVisionConfig(**VISION, projection_dim=16))
        return model, lambda m: _tower_run(m, m.vision_model, m.visual_projection)
    if name == "siglip":
        model = T.SiglipModel(T.SiglipConfig(vision_config=VISION, text_config=TEXT))
        return model, lambda m: _tower_run(m, m.vision_model, None)
    if name == "siglip_vision":
        return T.SiglipVisionModel(T.SiglipVisionConfig(**VISION)), lambda m: _tower_run(m, m, None)
    if name == "siglip_vision_nohead":
        model = T.SiglipVisionModel(T.SiglipVisionConfig(**VISION, vision_use_head=False))
        return model, lambda m: _tower_run(m, m, None)
    raise KeyError(name)


class CheckpointFactory:
    """Builds each named checkpoint on first use and keeps it for the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[tuple[str, str | None], Checkpoint] = {}

    def __call__(self, name: str, max_shard_size: str | None = None) -> Checkpoint:
        key = (name, max_shard_size)
        if key not in self.cache:
            torch.manual_seed(1234)
            model, make_run = _build(name)
            _randomize(model, seed=sum(map(ord, name)))
            model.eval()
            path = self.root / (name if max_shard_size is None else f"{name}-sharded")
            kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
            model.save_pretrained(path, safe_serialization=True, **kwargs)
            self.cache[key] = Checkpoint(name, path, model, make_run(model))
        return self.cache[key]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> CheckpointFactory:
    """``checkpoint("vit")`` -> a saved tiny random checkpoint and its reference model."""
    return CheckpointFactory(tmp_path_factory.mktemp("featx-models"))


def _pixels(batch: int = 2, height: int = 32, width: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


@pytest.fixture
def pixels() -> Callable[..., torch.Tensor]:
    """``pixels(batch, height, width, seed)`` -> normalized-looking pixel values."""
    return _pixels


@pytest.fixture
def cosine() -> Callable[[torch.Tensor, torch.Tensor], float]:
    """Cosine similarity of two tensors, flattened."""
    return _cosine
