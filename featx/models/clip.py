"""CLIP and SigLIP vision towers: one encoder, the differences as options.

Both are pre-norm transformers over a conv patch embedding with learned positions (an
``nn.Embedding``). CLIP adds a class embedding, a LayerNorm before the blocks, and pools by
layer-norming the class token (then, in full checkpoints, a ``visual_projection``). SigLIP has no
class token, layer-norms the whole sequence and pools with a multi-head attention "probe".
Full checkpoints (``clip``/``siglip``, vision config nested) and vision-only ones load alike;
the text tower's weights are left to `featx.models.text`. ``joint_field``/``joint_dim`` say where
the joint image-text embedding is (``pool="joint"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .configs import MAX_HIDDEN, MAX_IMAGE, EncoderConfig, activation, parse_config, require, setting
from .keys import remap_keys
from .layers import MLP, Attention, Encoder, EncoderLayer, EncoderOutput, interpolate_pos_grid
from .towers import PatchTower, PatchTowerOptions, size_mismatch, tower_options

__all__ = [
    "VisionConfig",
    "CLIPVisionConfig",
    "SiglipVisionConfig",
    "VisionTowerOptions",
    "VisionTower",
    "CLIPVisionModel",
    "SiglipVisionModel",
]


@dataclass(frozen=True)
class VisionConfig(EncoderConfig):
    """The fields CLIP and SigLIP vision configs share; full checkpoints nest them in ``vision_config``."""

    sections: ClassVar[tuple[str, ...]] = ("vision_config", "vision_config_dict")

    intermediate_size: int = setting(3072)
    hidden_act: str = activation("quick_gelu")
    layer_norm_eps: float = setting(1e-5, min=0, max=1)
    image_size: int = setting(224, max=MAX_IMAGE)
    patch_size: int = setting(32, max=MAX_IMAGE)
    num_channels: int = setting(3, max=4096)

    def check(self) -> None:
        super().check()
        require(self.patch_size <= self.image_size, "patch_size",
                f"({self.patch_size}) must not exceed image_size ({self.image_size})")


@dataclass(frozen=True)
class CLIPVisionConfig(VisionConfig):
    """The vision part of a ``clip`` config.json or a ``clip_vision_model`` one."""

    #: read from the top level first (full checkpoints keep it there); null: no projection
    projection_dim: int | None = setting(512, max=MAX_HIDDEN, top_level=True)


@dataclass(frozen=True)
class SiglipVisionConfig(VisionConfig):
    """The vision part of a ``siglip`` config.json or a ``siglip_vision_model`` one."""

    hidden_act: str = activation("gelu_pytorch_tanh")
    layer_norm_eps: float = setting(1e-6, min=0, max=1)
    patch_size: int = setting(16, max=MAX_IMAGE)
    vision_use_head: bool = True


@dataclass(frozen=True)
class VisionTowerOptions(PatchTowerOptions):
    """Architecture of a CLIP-style vision tower."""

    act: str = "quick_gelu"
    eps: float = 1e-5
    patch_size: int = 32
    class_token: bool = True
    patch_bias: bool = False
    pre_norm: bool = True
    #: "class_token": CLIP's post-LayerNorm on the class token only; "sequence": SigLIP's on all
    post_norm: str = "class_token"
    attention_pool: bool = False
    projection_dim: int | None = None


class VisionEmbeddings(nn.Module):
    def __init__(self, opts: VisionTowerOptions) -> None:
        super().__init__()
        self.opts = opts
        self.grid = opts.image_size // opts.patch_size
        self.num_prefix = int(opts.class_token)
        self.class_embedding = nn.Parameter(torch.zeros(opts.hidden_size)) if opts.class_token else None
        self.patch_embedding = nn.Conv2d(
            opts.num_channels, opts.hidden_size, opts.patch_size, stride=opts.patch_size, bias=opts.patch_bias
        )
        self.position_embedding = nn.Embedding(self.grid * self.grid + self.num_prefix, opts.hidden_size)

    def positions(self, height: int, width: int, interpolate: bool) -> Tensor:
        pos = self.position_embedding.weight.unsqueeze(0)
        grid = (height // self.opts.patch_size, width // self.opts.patch_size)
        if grid == (self.grid, self.grid):
            return pos
        if not interpolate:
            raise size_mismatch(height, width, self.opts.image_size)
        patches = interpolate_pos_grid(pos[:, self.num_prefix :], grid)
        return torch.cat([pos[:, : self.num_prefix], patches], dim=1)

    def forward(self, pixel_values: Tensor, interpolate_pos_encoding: bool = False) -> Tensor:
        batch, _, height, width = pixel_values.shape
        x = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        if self.class_embedding is not None:
            x = torch.cat([self.class_embedding.expand(batch, 1, -1), x], dim=1)
        return x + self.positions(height, width, interpolate_pos_encoding)


class AttentionPoolingHead(nn.Module):
    """SigLIP's pooler: a learned probe attends over the tokens, then a residual MLP."""

    def __init__(self, opts: VisionTowerOptions) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.zeros(1, 1, opts.hidden_size))
        self.attention = Attention(opts.hidden_size, opts.num_heads)
        self.layernorm = nn.LayerNorm(opts.hidden_size, eps=opts.eps)
        self.mlp = MLP(opts.hidden_size, opts.mlp_dim, opts.act)

    def forward(self, hidden_states: Tensor) -> Tensor:
        probe = self.probe.expand(hidden_states.shape[0], -1, -1)
        x = self.attention(probe, context=hidden_states)
        x = x + self.mlp(self.layernorm(x))
        return x[:, 0]


_OWN_PREFIXES = ("embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm.", "head.", "visual_projection.")


class VisionTower(PatchTower):
    """The shared CLIP/SigLIP vision encoder; `CLIPVisionModel`/`SiglipVisionModel` configure it.

    ``image_embeds`` in the output is CLIP's projected embedding (the reference's
    ``get_image_features``) when the checkpoint has a ``visual_projection``.
    """

    has_pooler = True
    optional_prefixes = ("visual_projection.",)
    layer_stacks: ClassVar[dict[str, str]] = {"encoder.layers.": "num_hidden_layers"}

    def __init__(self, opts: VisionTowerOptions) -> None:
        super().__init__()
        self.opts = opts
        self.hidden_size = opts.hidden_size
        self.num_prefix_tokens = int(opts.class_token)
        self.embeddings = VisionEmbeddings(opts)
        self.pre_layrnorm = nn.LayerNorm(opts.hidden_size, eps=opts.eps) if opts.pre_norm else None
        self.encoder = Encoder(
            opts.num_layers,
            lambda: EncoderLayer(opts.hidden_size, opts.num_heads, opts.mlp_dim, act=opts.act, eps=opts.eps),
        )
        self.post_layernorm = nn.LayerNorm(opts.hidden_size, eps=opts.eps)
        self.head = AttentionPoolingHead(opts) if opts.attention_pool else None
        if opts.attention_pool:
            self.pooler_prefixes = ("head.",)
        else:
            self.has_pooler = opts.post_norm == "class_token"
        self.visual_projection = (
            nn.Linear(opts.hidden_size, opts.projection_dim, bias=False) if opts.projection_dim else None
        )

    @staticmethod
    def read_options(cfg: VisionConfig, **extra: Any) -> VisionTowerOptions:
        """The options both towers read from their (checked) config; ``extra``: the family's own."""
        return tower_options(VisionTowerOptions, cfg, **extra)

    @property
    def joint_field(self) -> str | None:
        """The output field in the joint image-text space (the reference's ``get_image_features``):
        CLIP's projected class token, SigLIP's attention-pooling head; None without either."""
        if self.visual_projection is not None:
            return "image_embeds"
        return "pooler_output" if self.head is not None else None

    @property
    def joint_dim(self) -> int | None:
        """The width of the joint-space embedding (None: the checkpoint has no joint space)."""
        if self.visual_projection is not None:
            return int(self.visual_projection.out_features)
        return self.hidden_size if self.head is not None else None

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        # the text tower, logit scale/bias and classifiers start with none of the kept prefixes
        out = remap_keys(state_dict, [("vision_model.", "")], keep=_OWN_PREFIXES, drop=(r"position_ids$",))
        for kind in ("weight", "bias"):
            packed = out.pop(f"head.attention.in_proj_{kind}", None)
            if packed is not None:  # torch.nn.MultiheadAttention packs q, k, v into one matrix
                for name, part in zip(("q_proj", "k_proj", "v_proj"), packed.chunk(3, dim=0)):
                    out[f"head.attention.{name}.{kind}"] = part
        return out

    def before_encoder(self, x: Tensor) -> Tensor:
        return self.pre_layrnorm(x) if self.pre_layrnorm is not None else x

    def finish(self, x: Tensor, states: tuple[Tensor, ...] | None) -> EncoderOutput:
        pooled: Tensor | None = None
        if self.opts.post_norm == "sequence":
            x = self.post_layernorm(x)
            pooled = self.head(x) if self.head is not None else None
        else:
            pooled = self.post_layernorm(x[:, 0])
        embeds = self.visual_projection(pooled) if self.visual_projection is not None and pooled is not None else None
        return EncoderOutput(last_hidden_state=x, pooler_output=pooled, hidden_states=states, image_embeds=embeds)


class CLIPVisionModel(VisionTower):
    """CLIP's vision tower from a full ``clip`` checkpoint or a ``clip_vision_model`` one."""

    num_prefix_tokens = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CLIPVisionModel:
        cfg = parse_config(CLIPVisionConfig, config)
        return cls(cls.read_options(cfg, projection_dim=cfg.projection_dim))


class SiglipVisionModel(VisionTower):
    """SigLIP's vision tower from a full ``siglip`` checkpoint or a ``siglip_vision_model`` one."""

    num_prefix_tokens = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SiglipVisionModel:
        cfg = parse_config(SiglipVisionConfig, config)
        return cls(
            cls.read_options(
                cfg,
                class_token=False,
                patch_bias=True,
                pre_norm=False,
                post_norm="sequence",
                attention_pool=cfg.vision_use_head,
            )
        )
