"""The Whisper encoder, loaded from a full Whisper checkpoint (its decoder is ignored).

Two convs (the second with stride 2) turn ``[B, n_mels, 3000]`` log-mel frames into 1500 vectors, a stored
sinusoidal position table is added, then pre-norm transformer layers and a final LayerNorm. The input is
always 30 s: a shorter clip is padded, and only about ``n_samples / 320`` of the 1500 vectors cover real
audio, which is what the returned ``attention_mask`` marks. Parameter names are the checkpoint's
``encoder.*`` names without that prefix, except inside the blocks (the shared `EncoderLayer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .audio_encoder import AudioEncoder
from .configs import MAX_HIDDEN, MAX_LAYERS, ModelConfig, activation, require, setting
from .layers import EncoderLayer, EncoderOutput

__all__ = ["WhisperConfig", "WhisperEncoder"]


@dataclass(frozen=True)
class WhisperConfig(ModelConfig):
    """The encoder's part of a ``whisper`` config.json (defaults: whisper-tiny's encoder)."""

    d_model: int = setting(384, max=MAX_HIDDEN)
    num_mel_bins: int = setting(80, max=4096)
    encoder_layers: int = setting(4, max=MAX_LAYERS)
    encoder_attention_heads: int = setting(6, max=MAX_HIDDEN)
    encoder_ffn_dim: int = setting(1536)
    max_source_positions: int = setting(1500)
    activation_function: str = activation("gelu")

    def check(self) -> None:
        require(self.d_model % self.encoder_attention_heads == 0, "d_model",
                f"({self.d_model}) must be divisible by encoder_attention_heads ({self.encoder_attention_heads})")


_PREFIXES = [("model.encoder.", ""), ("encoder.", "")]
# Checkpoint block names -> the shared EncoderLayer's.
_RULES = [
    (r"^layers\.(\d+)\.self_attn_layer_norm\.", r"layers.\1.layer_norm1."),
    (r"^layers\.(\d+)\.final_layer_norm\.", r"layers.\1.layer_norm2."),
    (r"^layers\.(\d+)\.fc([12])\.", r"layers.\1.mlp.fc\2."),
]


class WhisperEncoder(AudioEncoder):
    """Whisper's audio encoder. ``forward(input_features=[B, n_mels, 3000])`` -> 1500 vectors per input."""

    main_input_name: ClassVar[str] = "input_features"
    config_class: ClassVar[type[WhisperConfig]] = WhisperConfig
    #: keep ``model.encoder.*`` / ``encoder.*`` (prefix removed); drop the decoder and heads
    key_map: ClassVar[Mapping[str, Any]] = {"prefixes": _PREFIXES, "only_prefixed": True, "renames": _RULES}
    layer_stacks: ClassVar[dict[str, str]] = {"layers.": "encoder_layers"}

    def __init__(self, *, d_model: int = 384, num_mel_bins: int = 80, encoder_layers: int = 4,
                 encoder_attention_heads: int = 6, encoder_ffn_dim: int = 1536, max_source_positions: int = 1500,
                 activation_function: str = "gelu"):
        super().__init__()
        self.hidden_size = d_model
        self.num_mel_bins = num_mel_bins
        self.max_source_positions = max_source_positions
        self.conv1 = nn.Conv1d(num_mel_bins, d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(max_source_positions, d_model)
        # Whisper's k_proj has no bias (a key bias cancels out in the softmax anyway).
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, encoder_attention_heads, encoder_ffn_dim, act=activation_function, k_bias=False)
            for _ in range(encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(d_model)

    @property
    def expected_frames(self) -> int:
        """Input frames the encoder accepts: 2 x max_source_positions (3000 for 30 s)."""
        return 2 * self.max_source_positions

    def output_attention_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The frame mask at the encoder's rate: conv2 (stride 2, padding 1) keeps every second frame."""
        return attention_mask[:, ::2]

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        """Encode log-mel features. Like the reference, the mask does not change the hidden states (Whisper
        attends over its padding); it is returned at the output rate so that pooling can skip padding."""
        if input_features.ndim != 3 or input_features.shape[1] != self.num_mel_bins:
            raise InputError(f"expected input_features of shape [batch, {self.num_mel_bins}, "
                             f"{self.expected_frames}], got {tuple(input_features.shape)}", source="input_features")
        if input_features.shape[-1] != self.expected_frames:
            raise InputError(f"Whisper expects the mel input features to be of length {self.expected_frames}, but "
                             f"found {input_features.shape[-1]}; pad them to {self.expected_frames} frames "
                             "(the feature extractor's default padding='max_length')", source="input_features")
        x = input_features.to(self.conv1.weight.dtype)
        x = F.gelu(self.conv2(F.gelu(self.conv1(x)))).transpose(1, 2)
        x = x + self.embed_positions.weight
        for layer in self.layers:
            x = layer(x)
            if x.dtype == torch.float16:  # the reference clamps so that float16 stays finite
                limit = torch.finfo(torch.float16).max - 1000
                x = x.clamp(-limit, limit)
        x = self.layer_norm(x)
        mask = None
        if attention_mask is not None:
            if attention_mask.shape[-1] != self.expected_frames:
                raise InputError(f"attention_mask must have {self.expected_frames} frames like input_features, got "
                                 f"{tuple(attention_mask.shape)}", source="attention_mask")
            mask = self.output_attention_mask(attention_mask)
        return EncoderOutput(last_hidden_state=x, pooler_output=None, attention_mask=mask)
