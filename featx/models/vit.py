"""ViT, DeiT and DINOv2 (with or without registers): one encoder, the differences as options.

All three are pre-norm transformers over a conv patch embedding with a learned class token and
learned absolute positions. DeiT adds a distillation token, DINOv2 adds LayerScale (and SwiGLU
for giant), register tokens (with_registers), and always interpolates positions to the input
size. ViT/DeiT's pooler is dense+tanh on the class token; DINOv2's is the normed class token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .configs import MAX_HIDDEN, MAX_IMAGE, EncoderConfig, activation, parse_config, require, setting
from .keys import remap_keys
from .layers import Encoder, EncoderLayer, EncoderOutput, get_activation, interpolate_pos_grid
from .towers import PatchTower, PatchTowerOptions, size_mismatch, tower_options

__all__ = [
    "VIT_RENAMES",
    "ViTConfig",
    "Dinov2Config",
    "Dinov2WithRegistersConfig",
    "ViTOptions",
    "ViTEncoder",
    "ViTModel",
    "DeiTModel",
    "Dinov2Model",
]


@dataclass(frozen=True)
class _ImageConfig(EncoderConfig):
    image_size: tuple[int, int] = setting((224, 224), max=MAX_IMAGE)
    patch_size: tuple[int, int] = setting((16, 16), max=MAX_IMAGE)
    num_channels: int = setting(3, max=4096)
    qkv_bias: bool = True

    def check(self) -> None:
        super().check()
        require(all(i >= p for i, p in zip(self.image_size, self.patch_size)), "patch_size",
                f"{list(self.patch_size)} must not exceed image_size {list(self.image_size)}")


@dataclass(frozen=True)
class ViTConfig(_ImageConfig):
    """config.json of ``vit`` and ``deit`` checkpoints."""

    intermediate_size: int = setting(3072)
    pooler_output_size: int | None = setting(None, max=MAX_HIDDEN)
    pooler_act: str = activation("tanh")


@dataclass(frozen=True)
class Dinov2Config(_ImageConfig):
    """config.json of ``dinov2`` checkpoints (the MLP width is ``mlp_ratio * hidden_size``)."""

    layer_norm_eps: float = setting(1e-6, min=0, max=1)
    patch_size: tuple[int, int] = setting((14, 14), max=MAX_IMAGE)
    mlp_ratio: float = setting(4.0, min=0, max=64)
    use_swiglu_ffn: bool = False
    layerscale_value: float = setting(1.0, min=None, max=None)

    def check(self) -> None:
        super().check()
        require(self.mlp_dim >= 1, "mlp_ratio", f"({self.mlp_ratio}) times hidden_size must be at least 1")

    @property
    def mlp_dim(self) -> int:
        """The MLP width; SwiGLU takes two thirds of it, rounded up to a multiple of 8."""
        mlp = int(self.hidden_size * self.mlp_ratio)
        return (int(mlp * 2 / 3) + 7) // 8 * 8 if self.use_swiglu_ffn else mlp


@dataclass(frozen=True)
class Dinov2WithRegistersConfig(Dinov2Config):
    """config.json of ``dinov2_with_registers`` checkpoints."""

    patch_size: tuple[int, int] = setting((16, 16), max=MAX_IMAGE)
    num_register_tokens: int = setting(4, min=0, max=4096)


@dataclass(frozen=True)
class ViTOptions(PatchTowerOptions):
    """Architecture of a ViT-family encoder, read from a config.json by `ViTEncoder.options_from`."""

    qkv_bias: bool = True
    image_size: tuple[int, int] = (224, 224)
    patch_size: tuple[int, int] = (16, 16)
    distillation_token: bool = False
    num_register_tokens: int = 0
    layer_scale: float | None = None
    swiglu: bool = False
    always_interpolate: bool = False
    antialias: bool = False
    #: "dense": ViT/DeiT's Linear + activation on the class token; "cls": the normed class token
    pooler: str = "dense"
    pooler_dim: int = 768
    pooler_act: str = "tanh"


class PatchEmbeddings(nn.Module):
    def __init__(self, opts: ViTOptions) -> None:
        super().__init__()
        self.projection = nn.Conv2d(opts.num_channels, opts.hidden_size, opts.patch_size, stride=opts.patch_size)

    def forward(self, pixel_values: Tensor) -> Tensor:
        return self.projection(pixel_values).flatten(2).transpose(1, 2)


class ViTEmbeddings(nn.Module):
    """Patch embeddings plus [CLS] (and distillation) tokens and positions, then registers."""

    def __init__(self, opts: ViTOptions) -> None:
        super().__init__()
        self.opts = opts
        dim = opts.hidden_size
        self.grid = (opts.image_size[0] // opts.patch_size[0], opts.image_size[1] // opts.patch_size[1])
        self.num_pos_prefix = 1 + int(opts.distillation_token)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, dim)) if opts.distillation_token else None
        self.register_tokens = (
            nn.Parameter(torch.zeros(1, opts.num_register_tokens, dim)) if opts.num_register_tokens else None
        )
        self.patch_embeddings = PatchEmbeddings(opts)
        self.position_embeddings = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1] + self.num_pos_prefix, dim))

    def positions(self, height: int, width: int, interpolate: bool) -> Tensor:
        grid = (height // self.opts.patch_size[0], width // self.opts.patch_size[1])
        if grid == self.grid:
            return self.position_embeddings
        if not (interpolate or self.opts.always_interpolate):
            raise size_mismatch(height, width, self.opts.image_size)
        prefix = self.position_embeddings[:, : self.num_pos_prefix]
        patches = interpolate_pos_grid(
            self.position_embeddings[:, self.num_pos_prefix :], grid, antialias=self.opts.antialias
        )
        return torch.cat([prefix, patches], dim=1)

    def forward(self, pixel_values: Tensor, interpolate_pos_encoding: bool = False) -> Tensor:
        batch, _, height, width = pixel_values.shape
        x = self.patch_embeddings(pixel_values)
        tokens = [self.cls_token.expand(batch, -1, -1)]
        if self.distillation_token is not None:
            tokens.append(self.distillation_token.expand(batch, -1, -1))
        x = torch.cat([*tokens, x], dim=1) + self.positions(height, width, interpolate_pos_encoding)
        if self.register_tokens is not None:  # registers carry no position
            x = torch.cat([x[:, :1], self.register_tokens.expand(batch, -1, -1), x[:, 1:]], dim=1)
        return x


class Pooler(nn.Module):
    def __init__(self, dim: int, out_dim: int, act: str) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, out_dim)
        self.activation = get_activation(act)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


# Checkpoint names (the reference's saved layout, plus transformers 5's in-memory names) to ours.
VIT_RENAMES: list[tuple[str, str]] = [
    (r"^encoder\.layer\.(\d+)\.", r"encoder.layers.\1."),
    (r"^layers\.(\d+)\.", r"encoder.layers.\1."),
    (r"\.attention\.attention\.(query|key|value)\.", r".attention.\1."),
    (r"\.attention\.(query|q_proj)\.", ".self_attn.q_proj."),
    (r"\.attention\.(key|k_proj)\.", ".self_attn.k_proj."),
    (r"\.attention\.(value|v_proj)\.", ".self_attn.v_proj."),
    (r"\.attention\.(output\.dense|o_proj)\.", ".self_attn.out_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"\.(layernorm_before|norm1)\.", ".layer_norm1."),
    (r"\.(layernorm_after|norm2)\.", ".layer_norm2."),
    (r"\.mlp\.down_proj\.", ".mlp.weights_out."),
]
_OWN_PREFIXES = ("embeddings.", "encoder.", "layernorm.", "pooler.")
_DROPPED = (r"^embeddings\.mask_token$", r"position_ids$")


class ViTEncoder(PatchTower):
    """The shared ViT-family encoder; `ViTModel`, `DeiTModel` and `Dinov2Model` configure it."""

    has_pooler = True
    pooler_prefixes = ("pooler.",)
    layer_stacks: ClassVar[dict[str, str]] = {"encoder.layers.": "num_hidden_layers"}
    #: prefixes the task heads of the reference put in front of the encoder's weights
    checkpoint_prefixes: tuple[str, ...] = ("vit.",)

    def __init__(self, opts: ViTOptions) -> None:
        super().__init__()
        self.opts = opts
        self.hidden_size = opts.hidden_size
        self.num_prefix_tokens = 1 + int(opts.distillation_token) + opts.num_register_tokens
        self.embeddings = ViTEmbeddings(opts)
        self.encoder = Encoder(
            opts.num_layers,
            lambda: EncoderLayer(
                opts.hidden_size,
                opts.num_heads,
                opts.mlp_dim,
                act=opts.act,
                eps=opts.eps,
                qkv_bias=opts.qkv_bias,
                layer_scale=opts.layer_scale,
                swiglu=opts.swiglu,
            ),
        )
        self.layernorm = nn.LayerNorm(opts.hidden_size, eps=opts.eps)
        self.pooler = Pooler(opts.hidden_size, opts.pooler_dim, opts.pooler_act) if opts.pooler == "dense" else None
        if opts.pooler != "dense":
            self.pooler_prefixes = ()  # the normed class token needs no weights

    @classmethod
    def options_from(cls, config: Mapping[str, Any]) -> ViTOptions:
        """The architecture a ``vit``/``deit`` config.json describes (checked by `parse_config`)."""
        cfg = parse_config(ViTConfig, config)
        return tower_options(ViTOptions, cfg, qkv_bias=cfg.qkv_bias,
                             pooler_dim=cfg.pooler_output_size or cfg.hidden_size, pooler_act=cfg.pooler_act)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ViTEncoder:
        return cls(cls.options_from(config))

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = remap_keys(
            state_dict,
            [(prefix, "") for prefix in self.checkpoint_prefixes],
            keep=_OWN_PREFIXES + ("layers.",),  # "layers.": transformers 5 without the encoder prefix
            drop=_DROPPED,
            renames=VIT_RENAMES,
        )
        _fuse_swiglu(out)
        return out

    def finish(self, x: Tensor, states: tuple[Tensor, ...] | None) -> EncoderOutput:
        x = self.layernorm(x)
        if self.opts.pooler == "cls":
            pooled: Tensor | None = x[:, 0]
        else:
            pooled = self.pooler(x) if self.pooler is not None else None
        return EncoderOutput(last_hidden_state=x, pooler_output=pooled, hidden_states=states)


def _fuse_swiglu(state: dict[str, Tensor]) -> None:
    """transformers 5 splits DINOv2's SwiGLU input into gate/up; the checkpoints fuse them."""
    for key in [k for k in state if ".mlp.gate_proj." in k]:
        up = key.replace(".gate_proj.", ".up_proj.")
        if up in state:
            state[key.replace(".gate_proj.", ".weights_in.")] = torch.cat([state.pop(key), state.pop(up)], dim=0)


class ViTModel(ViTEncoder):
    """ViT (``google/vit-*``): class token, dense+tanh pooler."""

    num_prefix_tokens = 1


class DeiTModel(ViTEncoder):
    """DeiT: ViT plus a distillation token after the class token (both have positions)."""

    num_prefix_tokens = 2
    checkpoint_prefixes = ("deit.",)

    @classmethod
    def options_from(cls, config: Mapping[str, Any]) -> ViTOptions:
        return replace(super().options_from(config), distillation_token=True)


class Dinov2Model(ViTEncoder):
    """DINOv2: LayerScale, optional SwiGLU and register tokens, positions always interpolated.

    ``pooler_output`` is the layer-normed class token, as in the reference.
    """

    num_prefix_tokens = 1
    checkpoint_prefixes = ("dinov2.", "dinov2_with_registers.")

    @classmethod
    def options_from(cls, config: Mapping[str, Any]) -> ViTOptions:
        registers = config.get("model_type") == "dinov2_with_registers"
        cfg = parse_config(Dinov2WithRegistersConfig if registers else Dinov2Config, config)
        return tower_options(
            ViTOptions,
            cfg,
            mlp_dim=cfg.mlp_dim,
            qkv_bias=cfg.qkv_bias,
            num_register_tokens=cfg.num_register_tokens if isinstance(cfg, Dinov2WithRegistersConfig) else 0,
            layer_scale=cfg.layerscale_value,
            swiglu=cfg.use_swiglu_ffn,
            always_interpolate=True,
            antialias=registers,
            pooler="cls",
            pooler_dim=cfg.hidden_size,
        )
