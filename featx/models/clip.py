"""CLIP and SigLIP vision towers: one encoder, the differences as options.

Both are pre-norm transformers over a conv patch embedding with learned positions (an
``nn.Embedding``). CLIP adds a class embedding, a LayerNorm before the blocks, and pools by
layer-norming the class token (then, in full checkpoints, a ``visual_projection``). SigLIP has no
class token, layer-norms the whole sequence and pools with a multi-head attention "probe".
Full checkpoints (``clip``/``siglip``, vision config nested) and vision-only ones load alike;
the text tower's weights are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..registry import register
from .layers import MLP, Attention, Encoder, EncoderLayer, EncoderOutput, image_batch, interpolate_pos_grid
from .loading import EncoderModel

__all__ = ["VisionTowerOptions", "VisionTower", "CLIPVisionModel", "SiglipVisionModel"]


@dataclass(frozen=True)
class VisionTowerOptions:
    """Architecture of a CLIP-style vision tower."""

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    act: str = "quick_gelu"
    eps: float = 1e-5
    image_size: int = 224
    patch_size: int = 32
    num_channels: int = 3
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
            raise InputError(
                f"pixel_values are {height}x{width} but the model takes {self.opts.image_size}x"
                f"{self.opts.image_size}; pass interpolate_pos_encoding=True to interpolate its position embeddings",
                source="pixel_values",
            )
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


class VisionTower(EncoderModel):
    """The shared CLIP/SigLIP vision encoder; `CLIPVisionModel`/`SiglipVisionModel` configure it.

    ``image_embeds`` in the output is CLIP's projected embedding (the reference's
    ``get_image_features``) when the checkpoint has a ``visual_projection``.
    """

    modality = "image"
    main_input_name = "pixel_values"
    has_pooler = True
    optional_prefixes = ("visual_projection.",)

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
    def vision_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
        """The vision part of a full (text + vision) config, or the config itself."""
        nested = config.get("vision_config") or config.get("vision_config_dict")
        return nested if isinstance(nested, Mapping) else config

    @staticmethod
    def read_options(
        vision: Mapping[str, Any], *, act: str, eps: float, patch_size: int, **extra: Any
    ) -> VisionTowerOptions:
        """The options both towers read from a vision config; ``act``/``eps``/``patch_size`` are the
        family's defaults when the config leaves them out, ``extra`` the family's own options."""
        return VisionTowerOptions(
            hidden_size=int(vision.get("hidden_size", 768)),
            num_layers=int(vision.get("num_hidden_layers", 12)),
            num_heads=int(vision.get("num_attention_heads", 12)),
            mlp_dim=int(vision.get("intermediate_size", 3072)),
            act=str(vision.get("hidden_act", act)),
            eps=float(vision.get("layer_norm_eps", eps)),
            image_size=int(vision.get("image_size", 224)),
            patch_size=int(vision.get("patch_size", patch_size)),
            num_channels=int(vision.get("num_channels", 3)),
            **extra,
        )

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for key, value in state_dict.items():
            if key.startswith("vision_model."):
                key = key[len("vision_model.") :]
            if not key.startswith(_OWN_PREFIXES) or key.endswith("position_ids"):
                continue  # text tower, logit scale/bias, classifier...
            if key.startswith("head.attention.in_proj_"):
                # torch.nn.MultiheadAttention packs q, k, v into one matrix
                kind = key.rsplit("_", 1)[-1]
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                    out[f"head.attention.{name}.{kind}"] = part
                continue
            out[key] = value
        return out

    def forward(
        self,
        pixel_values: Tensor,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """pixel_values [batch, channels, height, width] -> tokens [batch, (1 +) patches, hidden]."""
        x = self.embeddings(image_batch(pixel_values, self.embeddings.patch_embedding.weight), interpolate_pos_encoding)
        if self.pre_layrnorm is not None:
            x = self.pre_layrnorm(x)
        x, states = self.encoder(x, None, output_hidden_states)
        pooled: Tensor | None = None
        if self.opts.post_norm == "sequence":
            x = self.post_layernorm(x)
            pooled = self.head(x) if self.head is not None else None
        else:
            pooled = self.post_layernorm(x[:, 0])
        embeds = self.visual_projection(pooled) if self.visual_projection is not None and pooled is not None else None
        return EncoderOutput(last_hidden_state=x, pooler_output=pooled, hidden_states=states, image_embeds=embeds)


@register("model", "clip", "clip_vision_model")
class CLIPVisionModel(VisionTower):
    """CLIP's vision tower from a full ``clip`` checkpoint or a ``clip_vision_model`` one."""

    num_prefix_tokens = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CLIPVisionModel:
        vision = cls.vision_config(config)
        projection = config.get("projection_dim", vision.get("projection_dim", 512))
        return cls(
            cls.read_options(vision, act="quick_gelu", eps=1e-5, patch_size=32,
                             projection_dim=int(projection) if projection else None)
        )


@register("model", "siglip", "siglip_vision_model")
class SiglipVisionModel(VisionTower):
    """SigLIP's vision tower from a full ``siglip`` checkpoint or a ``siglip_vision_model`` one."""

    num_prefix_tokens = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SiglipVisionModel:
        vision = cls.vision_config(config)
        return cls(
            cls.read_options(
                vision, act="gelu_pytorch_tanh", eps=1e-6, patch_size=16,
                class_token=False,
                patch_bias=True,
                pre_norm=False,
                post_norm="sequence",
                attention_pool=bool(vision.get("vision_use_head", True)),
            )
        )
