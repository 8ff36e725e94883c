"""Wav2Vec2 and HuBERT encoders: a conv feature encoder over the raw waveform, a projection, a convolutional
positional embedding and a post-norm ("group" checkpoints) or pre-norm (``do_stable_layer_norm``) transformer.

Parameter names follow the Hugging Face checkpoints without their ``wav2vec2.`` / ``hubert.`` prefix, except
inside the transformer blocks, which are the shared `EncoderLayer`. The positional conv's weight norm
(``weight_g``/``weight_v``, or ``parametrizations.weight.original0/1`` in newer saves) is folded into a plain
conv weight once, at load time, instead of being recomputed by torch's weight-norm hooks on every call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .audio_encoder import AudioEncoder
from .configs import MAX_HIDDEN, MAX_LAYERS, EncoderConfig, activation, parse_config, require, setting
from .layers import EncoderLayer, EncoderOutput, get_activation, padding_mask_to_attention_bias

__all__ = [
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "conv_output_lengths",
    "feature_attention_mask",
    "fuse_weight_norm",
]

_PREFIXES = [("wav2vec2.", ""), ("hubert.", "")]
_KEPT = ("feature_extractor.", "feature_projection.", "encoder.", "adapter.")
# Checkpoint block names -> the shared EncoderLayer's.
_RULES = [
    (r"^(encoder\.layers\.\d+)\.attention\.", r"\1.self_attn."),
    (r"^(encoder\.layers\.\d+)\.layer_norm\.", r"\1.layer_norm1."),
    (r"^(encoder\.layers\.\d+)\.final_layer_norm\.", r"\1.layer_norm2."),
    (r"^(encoder\.layers\.\d+)\.feed_forward\.intermediate_dense\.", r"\1.mlp.fc1."),
    (r"^(encoder\.layers\.\d+)\.feed_forward\.output_dense\.", r"\1.mlp.fc2."),
]


@dataclass(frozen=True)
class Wav2Vec2Config(EncoderConfig):
    """A ``wav2vec2`` or ``hubert`` config.json (defaults: the reference's, i.e. wav2vec2-base)."""

    model_type: str = "wav2vec2"
    intermediate_size: int = setting(3072)
    layer_norm_eps: float = setting(1e-5, min=0, max=1)
    feat_extract_norm: str = setting("group", choices=("group", "layer"))
    feat_extract_activation: str = activation("gelu")
    conv_dim: tuple[int, ...] = setting((512,) * 7, max=MAX_HIDDEN)
    conv_stride: tuple[int, ...] = setting((5, 2, 2, 2, 2, 2, 2), max=MAX_HIDDEN)
    conv_kernel: tuple[int, ...] = setting((10, 3, 3, 3, 3, 2, 2), max=MAX_HIDDEN)
    conv_bias: bool = False
    num_conv_pos_embeddings: int = setting(128, max=MAX_HIDDEN)
    num_conv_pos_embedding_groups: int = setting(16, max=MAX_HIDDEN)
    do_stable_layer_norm: bool = False
    feat_proj_layer_norm: bool = True  # HuBERT only
    conv_pos_batch_norm: bool = False  # HuBERT only
    add_adapter: bool = False  # Wav2Vec2 only
    adapter_kernel_size: int = setting(3, max=MAX_HIDDEN)
    adapter_stride: int = setting(2, max=MAX_HIDDEN)
    num_adapter_layers: int = setting(3, min=0, max=MAX_LAYERS)
    output_hidden_size: int | None = setting(None, max=MAX_HIDDEN)
    adapter_attn_dim: int | None = setting(None, max=MAX_HIDDEN)

    def check(self) -> None:
        super().check()
        lengths = (len(self.conv_dim), len(self.conv_kernel), len(self.conv_stride))
        require(len(set(lengths)) == 1, "conv_dim",
                "(%d entries), conv_kernel (%d) and conv_stride (%d) must have the same length" % lengths)
        require(self.hidden_size % self.num_conv_pos_embedding_groups == 0, "num_conv_pos_embedding_groups",
                f"({self.num_conv_pos_embedding_groups}) must divide hidden_size ({self.hidden_size})")

    def for_family(self) -> Wav2Vec2Config:
        """Like the reference, some options exist for one family only, whatever config.json says."""
        if self.model_type == "hubert":
            return replace(self, add_adapter=False)
        return replace(self, feat_proj_layer_norm=True, conv_pos_batch_norm=False)


def conv_output_lengths(lengths: torch.Tensor, kernels: Sequence[int], strides: Sequence[int]) -> torch.Tensor:
    """Frames out of a stack of unpadded 1-D convs for ``lengths`` input samples (the reference's formula)."""
    for kernel, stride in zip(kernels, strides):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths


def feature_attention_mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Bool ``[B, n_frames]`` mask that is True for the first ``lengths[b]`` frames of each row.

    Built like the reference (a one at ``length - 1``, then a reversed cumulative sum), so that even its
    corner case agrees: a row shorter than the receptive field (length 0) ends up fully attended.
    """
    rows = torch.arange(lengths.shape[0], device=lengths.device)
    out = torch.zeros(lengths.shape[0], n_frames, dtype=torch.int32, device=lengths.device)
    out[rows, lengths.long() - 1] = 1
    return out.flip([-1]).cumsum(-1).flip([-1]).bool()


def fuse_weight_norm(g: torch.Tensor, v: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """``g * v / ||v||`` with the norm over every axis but ``dim`` (torch's weight_norm), in float32."""
    v32 = v.float()
    axes = [a for a in range(v32.ndim) if a != dim]
    return v32 * (g.float() / v32.norm(dim=axes, keepdim=True))


class _ConvLayer(nn.Module):
    """One feature-encoder conv with its optional norm ("group": GroupNorm, one group per channel)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bias: bool, norm: str | None, act: str):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size=kernel, stride=stride, bias=bias)
        self.norm_kind = norm
        if norm == "group":
            self.layer_norm: nn.Module | None = nn.GroupNorm(c_out, c_out, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(c_out, elementwise_affine=True)
        else:
            self.layer_norm = None
        self.activation = get_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_kind == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)  # type: ignore[misc]
        elif self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.activation(x)


class _FeatureEncoder(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        norm = cfg.feat_extract_norm
        dims = [1, *cfg.conv_dim]
        self.conv_layers = nn.ModuleList(
            _ConvLayer(dims[i], dims[i + 1], k, s, cfg.conv_bias,
                       norm if norm == "layer" or i == 0 else None, cfg.feat_extract_activation)
            for i, (k, s) in enumerate(zip(cfg.conv_kernel, cfg.conv_stride))
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x.transpose(1, 2)


class _FeatureProjection(nn.Module):
    def __init__(self, c_in: int, hidden: int, eps: float, layer_norm: bool):
        super().__init__()
        self.layer_norm = nn.LayerNorm(c_in, eps=eps) if layer_norm else None
        self.projection = nn.Linear(c_in, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.layer_norm(x) if self.layer_norm is not None else x)


class _PositionalConv(nn.Module):
    """Grouped conv over time; an even kernel drops its last output frame ("same" length)."""

    def __init__(self, hidden: int, kernel: int, groups: int, act: str, batch_norm: bool):
        super().__init__()
        self.batch_norm = nn.BatchNorm1d(hidden) if batch_norm else None
        self.conv = nn.Conv1d(hidden, hidden, kernel_size=kernel, padding=kernel // 2, groups=groups)
        self.trim = 1 if kernel % 2 == 0 else 0
        self.activation = get_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        x = self.conv(x)
        if self.trim:
            x = x[:, :, : -self.trim]
        return self.activation(x).transpose(1, 2)


class _AttnAdapter(nn.Module):
    """MMS's per-layer language adapter (``adapter_attn_dim``)."""

    def __init__(self, hidden: int, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.linear_1 = nn.Linear(hidden, dim)
        self.linear_2 = nn.Linear(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.relu(self.linear_1(self.norm(x))))


class _EncoderLayer(EncoderLayer):
    """The shared block (post-norm, or pre-norm when ``do_stable_layer_norm``) plus MMS's optional adapter."""

    def __init__(self, cfg: Wav2Vec2Config, stable: bool):
        hidden = cfg.hidden_size
        super().__init__(hidden, cfg.num_attention_heads, cfg.intermediate_size, act=cfg.hidden_act,
                         eps=cfg.layer_norm_eps, norm_first=stable)
        adapter_dim = cfg.adapter_attn_dim
        self.adapter_layer = _AttnAdapter(hidden, adapter_dim) if stable and adapter_dim else None

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = super().forward(x, attention_mask)
        return x if self.adapter_layer is None else x + self.adapter_layer(x)


class _Encoder(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        hidden = cfg.hidden_size
        self.stable = cfg.do_stable_layer_norm
        self.pos_conv_embed = _PositionalConv(hidden, cfg.num_conv_pos_embeddings, cfg.num_conv_pos_embedding_groups,
                                              cfg.feat_extract_activation, cfg.conv_pos_batch_norm)
        self.layer_norm = nn.LayerNorm(hidden, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(_EncoderLayer(cfg, self.stable) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attn_mask = None
        if mask is not None:
            x = x.masked_fill(~mask[..., None], 0.0)  # padded frames must not leak through the conv
            if not bool(mask.all()):  # an all-true mask would only slow SDPA down
                attn_mask = padding_mask_to_attention_bias(mask, x.dtype)
        x = x + self.pos_conv_embed(x)
        if not self.stable:
            x = self.layer_norm(x)
        for layer in self.layers:
            x = layer(x, attn_mask)
        return self.layer_norm(x) if self.stable else x


class _AdapterLayer(nn.Module):
    def __init__(self, dim: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, 2 * dim, kernel, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.conv(x), dim=1)


class _Adapter(nn.Module):
    """The optional strided conv/GLU stack after the encoder (``add_adapter``, speech-to-text checkpoints)."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        hidden, out = cfg.hidden_size, cfg.output_hidden_size or cfg.hidden_size
        self.proj = nn.Linear(hidden, out) if out != hidden else None
        self.proj_layer_norm = nn.LayerNorm(out) if out != hidden else None
        self.layers = nn.ModuleList(
            _AdapterLayer(out, cfg.adapter_kernel_size, cfg.adapter_stride) for _ in range(cfg.num_adapter_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None and self.proj_layer_norm is not None:
            x = self.proj_layer_norm(self.proj(x))
        x = x.transpose(1, 2)
        for layer in self.layers:
            x = layer(x)
        return x.transpose(1, 2)


class Wav2Vec2Model(AudioEncoder):
    """Wav2Vec2 / HuBERT encoder. ``forward(input_values=[B, samples], attention_mask=[B, samples])``."""

    config_class: ClassVar[type[Wav2Vec2Config]] = Wav2Vec2Config
    # heads, the quantizer and masked_spec_embed are not part of the encoder
    key_map: ClassVar[Mapping[str, Any]] = {"prefixes": _PREFIXES, "keep": _KEPT, "renames": _RULES}
    layer_stacks: ClassVar[dict[str, str]] = {
        "encoder.layers.": "num_hidden_layers",
        "adapter.layers.": "num_adapter_layers",
        "feature_extractor.conv_layers.": "conv_dim",
    }

    def __init__(self, config: Mapping[str, Any] | Wav2Vec2Config):
        cfg = config if isinstance(config, Wav2Vec2Config) else parse_config(Wav2Vec2Config, config)
        cfg = cfg.for_family()
        super().__init__()
        self.conv_kernel: list[int] = list(cfg.conv_kernel)
        self.conv_stride: list[int] = list(cfg.conv_stride)
        self.adapter_stride = cfg.adapter_stride
        self.hidden_size = cfg.output_hidden_size if cfg.add_adapter and cfg.output_hidden_size else cfg.hidden_size
        self.feature_extractor = _FeatureEncoder(cfg)
        self.feature_projection = _FeatureProjection(cfg.conv_dim[-1], cfg.hidden_size, cfg.layer_norm_eps,
                                                     cfg.feat_proj_layer_norm)
        self.encoder = _Encoder(cfg)
        self.adapter = _Adapter(cfg) if cfg.add_adapter else None
        self.receptive_field = self._receptive_field()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Wav2Vec2Model:
        """Build from a ``config.json`` dict of a wav2vec2 or hubert checkpoint (weights uninitialised)."""
        return cls(cls.config_class.from_dict(config))

    def _receptive_field(self) -> int:
        field = 1
        for kernel, stride in zip(reversed(self.conv_kernel), reversed(self.conv_stride)):
            field = (field - 1) * stride + kernel
        return field

    def output_lengths(self, lengths: torch.Tensor, with_adapter: bool = True) -> torch.Tensor:
        """Frames the encoder returns for ``lengths`` input samples (the reference's formula)."""
        lengths = conv_output_lengths(lengths, self.conv_kernel, self.conv_stride)
        if with_adapter and self.adapter is not None:
            n = len(self.adapter.layers)  # the reference counts each adapter conv as kernel 1 (padding 1, kernel 3)
            lengths = conv_output_lengths(lengths, [1] * n, [self.adapter_stride] * n)
        return lengths

    def output_attention_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The sample mask ``[B, samples]`` at the output frame rate, in the mask's dtype.

        Useful on its own for checkpoints that should run without a mask (wav2vec2-base and other
        ``feat_extract_norm="group"`` models, whose extractor returns none): pool with this mask anyway.
        """
        lengths = self.output_lengths(attention_mask.long().sum(-1))
        n_frames = int(self.output_lengths(torch.tensor(attention_mask.shape[-1])))
        return feature_attention_mask(lengths, n_frames).to(attention_mask.dtype)

    def remap_state_dict(self, sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Strip ``wav2vec2.``/``hubert.``, drop heads, fold the positional conv's weight norm."""
        out = super().remap_state_dict(sd)
        base = "encoder.pos_conv_embed.conv."
        for g_name, v_name in (("weight_g", "weight_v"),
                               ("parametrizations.weight.original0", "parametrizations.weight.original1")):
            if base + g_name in out and base + v_name in out:
                out[base + "weight"] = fuse_weight_norm(out.pop(base + g_name), out.pop(base + v_name))
        return out

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> EncoderOutput:
        """Encode ``[B, samples]`` waveforms; the returned mask marks the frames that cover real samples."""
        if input_values.ndim != 2:
            raise InputError(f"expected input_values of shape [batch, samples], got {tuple(input_values.shape)}",
                             source="input_values")
        if input_values.shape[1] < self.receptive_field:
            raise InputError(f"input_values has {input_values.shape[1]} samples; this model needs at least "
                             f"{self.receptive_field} (one frame)", source="input_values")
        dtype = self.feature_projection.projection.weight.dtype
        features = self.feature_extractor(input_values.to(dtype))
        frame_mask = None
        if attention_mask is not None:
            if attention_mask.shape != input_values.shape:
                raise InputError(f"attention_mask shape {tuple(attention_mask.shape)} does not match input_values "
                                 f"{tuple(input_values.shape)}", source="attention_mask")
            lengths = self.output_lengths(attention_mask.long().sum(-1), with_adapter=False)
            frame_mask = feature_attention_mask(lengths, features.shape[1])
        hidden = self.encoder(self.feature_projection(features), frame_mask)
        if self.adapter is not None:
            hidden = self.adapter(hidden)
        out_mask = None
        if attention_mask is not None:
            out_mask = frame_mask if self.adapter is None else self.output_attention_mask(attention_mask)
            out_mask = out_mask.to(attention_mask.dtype)
        return EncoderOutput(last_hidden_state=hidden, pooler_output=None, attention_mask=out_mask)
