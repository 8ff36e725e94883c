"""The Audio Spectrogram Transformer (AST): a DeiT-style encoder over 16x16 patches of a Kaldi fbank.

Input is the feature extractor's ``input_values`` ``[B, max_length, num_mel_bins]`` (time-major). Two class
tokens (cls and distillation) precede the patch tokens; the pooled output is their mean after the final
LayerNorm, as in the reference. Checkpoints come in two spellings (the original ViT-style
``encoder.layer.N.attention.attention.query`` and transformers 5's ``layers.N.attention.q_proj``); both
map onto the shared `EncoderLayer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import InputError
from .audio_encoder import AudioEncoder
from .configs import EncoderConfig, require, setting
from .layers import Encoder, EncoderLayer, EncoderOutput
from .vit import VIT_RENAMES  # AST checkpoints spell their blocks exactly like ViT's

__all__ = ["ASTConfig", "ASTModel"]


@dataclass(frozen=True)
class ASTConfig(EncoderConfig):
    """An ``audio-spectrogram-transformer`` config.json (defaults: the reference's)."""

    intermediate_size: int = setting(3072)
    qkv_bias: bool = True
    patch_size: int = setting(16)
    frequency_stride: int = setting(10)
    time_stride: int = setting(10)
    max_length: int = setting(1024)
    num_mel_bins: int = setting(128, max=4096)

    def check(self) -> None:
        super().check()
        for name in ("num_mel_bins", "max_length"):
            require(getattr(self, name) >= self.patch_size, name,
                    f"({getattr(self, name)}) must be at least patch_size ({self.patch_size})")


_PREFIX = [("audio_spectrogram_transformer.", "")]
_KEPT = ("embeddings.", "encoder.", "layernorm.", "layers.")  # "layers.": transformers 5's spelling


class _PatchEmbeddings(nn.Module):
    def __init__(self, hidden: int, patch: int, frequency_stride: int, time_stride: int):
        super().__init__()
        self.projection = nn.Conv2d(1, hidden, kernel_size=(patch, patch), stride=(frequency_stride, time_stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, time, freq] -> [B, 1, freq, time]; tokens come out frequency-major.
        return self.projection(x.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)


class _Embeddings(nn.Module):
    def __init__(self, hidden: int, patch: int, frequency_stride: int, time_stride: int, n_patches: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.patch_embeddings = _PatchEmbeddings(hidden, patch, frequency_stride, time_stride)
        self.position_embeddings = nn.Parameter(torch.zeros(1, n_patches + 2, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embeddings(x)
        b = patches.shape[0]
        tokens = torch.cat(
            (self.cls_token.expand(b, -1, -1), self.distillation_token.expand(b, -1, -1), patches), dim=1
        )
        return tokens + self.position_embeddings


class ASTModel(AudioEncoder):
    """AST encoder. ``forward(input_values=[B, max_length, num_mel_bins])``; pooler = mean of the 2 class tokens."""

    config_class: ClassVar[type[ASTConfig]] = ASTConfig
    #: strip ``audio_spectrogram_transformer.``, drop the classifier, rename either spelling of the blocks
    key_map: ClassVar[Mapping[str, Any]] = {"prefixes": _PREFIX, "keep": _KEPT, "renames": VIT_RENAMES}
    num_prefix_tokens = 2
    has_pooler = True
    layer_stacks: ClassVar[dict[str, str]] = {"encoder.layers.": "num_hidden_layers"}

    def __init__(self, *, hidden_size: int = 768, num_hidden_layers: int = 12, num_attention_heads: int = 12,
                 intermediate_size: int = 3072, hidden_act: str = "gelu", layer_norm_eps: float = 1e-12,
                 qkv_bias: bool = True, patch_size: int = 16, frequency_stride: int = 10, time_stride: int = 10,
                 max_length: int = 1024, num_mel_bins: int = 128):
        super().__init__()
        self.hidden_size = hidden_size
        self.max_length = max_length
        self.time_stride = time_stride
        self.num_mel_bins = num_mel_bins
        self.grid = ((num_mel_bins - patch_size) // frequency_stride + 1, (max_length - patch_size) // time_stride + 1)
        self.embeddings = _Embeddings(hidden_size, patch_size, frequency_stride, time_stride,
                                      self.grid[0] * self.grid[1])
        self.encoder = Encoder(num_hidden_layers, lambda: EncoderLayer(
            hidden_size, num_attention_heads, intermediate_size, act=hidden_act, eps=layer_norm_eps, qkv_bias=qkv_bias
        ))
        self.layernorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def output_attention_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token mask [B, 2 + patches] from a frame mask [B, max_length]: a patch counts as real when
        its first frame is real. Used for pooling only; attention covers every patch as in the reference."""
        real = attention_mask.to(torch.long).sum(dim=1, keepdim=True)  # real frames per example
        time_starts = torch.arange(self.grid[1], device=real.device) * self.time_stride
        per_time = time_starts[None, :] < real  # [B, t]
        patches = per_time.repeat(1, self.grid[0])  # tokens are frequency-major: f * t_dim + t
        prefix = torch.ones(real.shape[0], self.num_prefix_tokens, dtype=torch.bool, device=real.device)
        return torch.cat([prefix, patches], dim=1).to(torch.long)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        """Encode fbank features. The model attends over every patch, as the reference does; a frame-level
        ``attention_mask`` only comes back as a token mask so that mean pooling can skip padding."""
        expected = (self.max_length, self.num_mel_bins)
        if input_values.ndim != 3 or tuple(input_values.shape[1:]) != expected:
            raise InputError(f"expected input_values of shape [batch, {expected[0]}, {expected[1]}] (max_length, "
                             f"num_mel_bins of this checkpoint), got {tuple(input_values.shape)}",
                             source="input_values")
        x, _ = self.encoder(self.embeddings(input_values.to(self.layernorm.weight.dtype)))
        x = self.layernorm(x)
        mask = None if attention_mask is None else self.output_attention_mask(attention_mask)
        return EncoderOutput(last_hidden_state=x, pooler_output=(x[:, 0] + x[:, 1]) / 2, attention_mask=mask)
