"""Tiny random audio checkpoints built with transformers (the reference) and saved in Hugging Face format.

Shared by the Whisper, AST and Wav2Vec2/HuBERT parity tests. Every builder seeds torch, perturbs all
parameters (and BatchNorm statistics) so that zero-initialised tokens and unit LayerNorm scales carry
signal, and saves ``config.json`` + ``model.safetensors`` into the given folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "build",
    "base_model",
    "perturb",
    "save_reference",
    "rename_checkpoint_keys",
    "cosine",
    "whisper_config",
    "ast_config",
    "wav2vec2_config",
    "hubert_config",
]


def perturb(model: torch.nn.Module, seed: int, scale: float = 0.1) -> torch.nn.Module:
    """Add seeded noise to every parameter and BatchNorm statistic; returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * scale)
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
    return model.eval()


def save_reference(model: Any, folder: Path) -> Path:
    """Save a transformers model with safetensors; returns the folder."""
    model.save_pretrained(folder, safe_serialization=True)
    assert (folder / "model.safetensors").is_file()
    return folder


def rename_checkpoint_keys(folder: Path, renames: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Rewrite ``model.safetensors`` in place with substring renames applied to every key."""
    path = folder / "model.safetensors"
    tensors = load_file(path)
    out = {}
    for key, value in tensors.items():
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value.contiguous()
    save_file(out, path, metadata={"format": "pt"})
    return out


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors flattened, in float64."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    return float(a64 @ b64 / (a64.norm() * b64.norm()))


def whisper_config(**overrides: Any) -> Any:
    from transformers import WhisperConfig

    options: dict[str, Any] = dict(
        d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=32, vocab_size=100, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1, begin_suppress_tokens=None,
    )
    options.update(overrides)
    return WhisperConfig(**options)


def ast_config(**overrides: Any) -> Any:
    from transformers import ASTConfig

    options: dict[str, Any] = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, patch_size=16,
        frequency_stride=10, time_stride=10, max_length=100, num_mel_bins=32, num_labels=3,
    )
    options.update(overrides)
    return ASTConfig(**options)


def _speech_options(overrides: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=[16, 16], conv_kernel=[10, 3], conv_stride=[5, 2], num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, vocab_size=12, hidden_dropout=0.0, activation_dropout=0.0,
        attention_dropout=0.0, layerdrop=0.0,
    )
    options.update(overrides)
    return options


def wav2vec2_config(**overrides: Any) -> Any:
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(**_speech_options(overrides))


def hubert_config(**overrides: Any) -> Any:
    from transformers import HubertConfig

    return HubertConfig(**_speech_options(overrides))


def build(model_cls: Any, config: Any, seed: int) -> Any:
    """A perturbed reference model of ``model_cls`` built from ``config`` with a fixed seed."""
    torch.manual_seed(seed)
    return perturb(model_cls(config), seed)


def base_model(model: Any) -> torch.nn.Module:
    """The bare encoder inside a reference task model (or the model itself)."""
    for name in ("wav2vec2", "hubert", "audio_spectrogram_transformer"):
        if hasattr(model, name):
            return getattr(model, name)
    if hasattr(model, "model") and hasattr(model.model, "encoder"):
        return model.model.encoder
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        return model.encoder
    return model
