"""CLIP and SigLIP text towers: one encoder, the differences as options.

Both embed tokens plus learned positions, run pre-norm blocks and a final LayerNorm. CLIP attends
causally and pools the first end-of-text token (the highest id for old configs whose
``eos_token_id`` is 2), then projects with ``text_projection`` into the joint space; SigLIP attends
both ways, pools the last position (padding included: it is trained with ``max_length`` padding)
and applies its ``head``. ``text_embeds`` in the output is the reference's ``get_text_features``.
The checkpoint's ``logit_scale`` (and SigLIP's ``logit_bias``) are kept for zero-shot scores.
Full checkpoints (``clip``/``siglip``) and text-only ones (``clip_text_model``...) load alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import InputError
from .configs import MAX_HIDDEN, MAX_SIZE, EncoderConfig, activation, parse_config, setting
from .keys import remap_keys
from .layers import Encoder, EncoderLayer, EncoderOutput
from .loading import EncoderModel
from .towers import TowerOptions, tower_options

__all__ = ["CLIPTextConfig", "SiglipTextConfig", "TextTowerOptions", "TextOutput", "TextTower",
           "CLIPTextModel", "SiglipTextModel"]


@dataclass(frozen=True)
class _TextConfig(EncoderConfig):
    sections: ClassVar[tuple[str, ...]] = ("text_config", "text_config_dict")

    vocab_size: int = setting(49408, max=MAX_SIZE * 16)
    max_position_embeddings: int = setting(77, max=MAX_SIZE)
    intermediate_size: int = setting(2048)
    eos_token_id: int | None = setting(49407, min=0, max=MAX_SIZE * 16)


@dataclass(frozen=True)
class CLIPTextConfig(_TextConfig):
    """The text part of a ``clip`` config.json or a ``clip_text_model`` one."""

    hidden_size: int = setting(512, max=MAX_HIDDEN)
    num_attention_heads: int = setting(8, max=MAX_HIDDEN)
    hidden_act: str = activation("quick_gelu")
    layer_norm_eps: float = setting(1e-5, min=0, max=1)
    #: read from the top level first (full checkpoints keep it there)
    projection_dim: int | None = setting(512, max=MAX_HIDDEN, top_level=True)


@dataclass(frozen=True)
class SiglipTextConfig(_TextConfig):
    """The text part of a ``siglip`` config.json or a ``siglip_text_model`` one."""

    vocab_size: int = setting(32000, max=MAX_SIZE * 16)
    max_position_embeddings: int = setting(64, max=MAX_SIZE)
    intermediate_size: int = setting(3072)
    hidden_act: str = activation("gelu_pytorch_tanh")
    layer_norm_eps: float = setting(1e-6, min=0, max=1)
    projection_size: int | None = setting(None, max=MAX_HIDDEN)


@dataclass(frozen=True)
class TextTowerOptions(TowerOptions):
    """Architecture of a CLIP-style text tower."""

    act: str = "quick_gelu"
    eps: float = 1e-5
    vocab_size: int = 49408
    max_positions: int = 77
    #: CLIP's causal attention; SigLIP attends both ways
    causal: bool = True
    #: "eos": the first end-of-text token (CLIP); "last": the last position (SigLIP)
    pool: str = "eos"
    eos_token_id: int | None = 49407
    #: "projection": CLIP's bias-free ``text_projection``; "head": SigLIP's ``head`` (with bias)
    projection: str = "projection"
    projection_dim: int | None = 512
    logit_bias: bool = False


@dataclass
class TextOutput(EncoderOutput):
    """`EncoderOutput` plus ``text_embeds``: the joint-space embedding (``get_text_features``)."""

    text_embeds: Tensor | None = None


class TextEmbeddings(nn.Module):
    def __init__(self, opts: TextTowerOptions) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(opts.vocab_size, opts.hidden_size)
        self.position_embedding = nn.Embedding(opts.max_positions, opts.hidden_size)

    def forward(self, input_ids: Tensor) -> Tensor:
        length = input_ids.shape[-1]
        limit = self.position_embedding.num_embeddings
        if length > limit:
            raise InputError(f"input_ids have {length} tokens but the model takes at most {limit}; "
                             f"tokenize with truncation=True, max_length={limit}", source="input_ids")
        positions = torch.arange(length, device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(positions)[None]


class LogitScale(nn.Module):
    """The contrastive logit scale (``exp`` of it multiplies cosines) and SigLIP's bias."""

    def __init__(self, bias: bool) -> None:
        super().__init__()
        # CLIP saves a scalar, SigLIP a [1] tensor: `TextTower.remap_state_dict` makes both [1]
        self.scale = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None


_OWN_PREFIXES = ("embeddings.", "encoder.", "final_layer_norm.", "head.", "text_projection.", "logit_")


class TextTower(EncoderModel):
    """The shared CLIP/SigLIP text encoder; `CLIPTextModel`/`SiglipTextModel` configure it."""

    modality = "text"
    main_input_name = "input_ids"
    has_pooler = True
    joint_field = "text_embeds"
    optional_prefixes = ("text_projection.", "logit.")
    layer_stacks: ClassVar[dict[str, str]] = {"encoder.layers.": "num_hidden_layers"}

    def __init__(self, opts: TextTowerOptions) -> None:
        super().__init__()
        self.opts = opts
        self.hidden_size = opts.hidden_size
        self.embeddings = TextEmbeddings(opts)
        self.encoder = Encoder(
            opts.num_layers,
            lambda: EncoderLayer(opts.hidden_size, opts.num_heads, opts.mlp_dim, act=opts.act, eps=opts.eps),
        )
        self.final_layer_norm = nn.LayerNorm(opts.hidden_size, eps=opts.eps)
        dim = opts.projection_dim or opts.hidden_size
        self.text_projection = (
            nn.Linear(opts.hidden_size, dim, bias=False) if opts.projection == "projection" and opts.projection_dim
            else None
        )
        self.head = nn.Linear(opts.hidden_size, dim) if opts.projection == "head" else None
        self.logit = LogitScale(opts.logit_bias)

    @property
    def joint_dim(self) -> int | None:
        """The width of ``text_embeds`` (None: a text-only checkpoint without its projection)."""
        layer = self.text_projection if self.opts.projection == "projection" else self.head
        return int(layer.out_features) if layer is not None else None

    @property
    def has_logit_scale(self) -> bool:
        return self.logit is not None

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        # the vision tower starts with none of the kept prefixes once "text_model." is stripped
        out = remap_keys(state_dict, [("text_model.", "")], keep=_OWN_PREFIXES, drop=(r"position_ids$",),
                         renames=[(r"^logit_(scale|bias)$", r"logit.\1")])
        for key in ("logit.scale", "logit.bias"):
            if key in out:
                out[key] = out[key].reshape(-1)
        return out

    def output_attention_mask(self, attention_mask: Tensor) -> Tensor | None:
        return attention_mask

    def _attention_mask(self, input_ids: Tensor, attention_mask: Tensor | None) -> Tensor | None:
        """A boolean SDPA mask [batch or 1, 1, tokens, tokens] (True = attend), or None."""
        length = input_ids.shape[-1]
        mask: Tensor | None = None
        if self.opts.causal:
            mask = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()[None, None]
        if attention_mask is not None:
            keys = attention_mask.to(device=input_ids.device, dtype=torch.bool)[:, None, None, :]
            mask = keys if mask is None else mask & keys
            # a row that may see nothing (left padding under a causal mask) would give NaN, which
            # other rows then read as values: such rows see themselves; no other row changes
            blind = ~mask.any(dim=-1, keepdim=True)
            mask = mask | (blind & torch.eye(length, dtype=torch.bool, device=input_ids.device)[None, None])
        return mask

    def _pool(self, x: Tensor, input_ids: Tensor) -> Tensor:
        rows = torch.arange(x.shape[0], device=x.device)
        if self.opts.pool == "last":
            return x[:, -1]
        ids = input_ids.to(device=x.device, dtype=torch.int)
        if self.opts.eos_token_id == 2 or self.opts.eos_token_id is None:
            return x[rows, ids.argmax(dim=-1)]  # old CLIP configs: the end-of-text id is the highest id
        return x[rows, (ids == self.opts.eos_token_id).int().argmax(dim=-1)]

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> TextOutput:
        """input_ids [batch, tokens] (attention_mask: 1 = token, 0 = padding) -> [batch, tokens, hidden]."""
        if input_ids.dim() != 2:
            raise InputError(f"input_ids must be [batch, tokens], got {tuple(input_ids.shape)}", source="input_ids")
        input_ids = input_ids.to(self.embeddings.token_embedding.weight.device)
        x = self.embeddings(input_ids)
        x, states = self.encoder(x, self._attention_mask(input_ids, attention_mask), output_hidden_states)
        x = self.final_layer_norm(x)
        pooled = self._pool(x, input_ids)
        if self.head is not None:  # SigLIP: the head is part of the pooled output, as in the reference
            pooled = self.head(pooled)
            embeds: Tensor | None = pooled
        else:
            embeds = self.text_projection(pooled) if self.text_projection is not None else None
        return TextOutput(last_hidden_state=x, pooler_output=pooled, hidden_states=states, text_embeds=embeds)

    def logit_scale_bias(self) -> tuple[float, float]:
        """(exp(logit_scale), logit_bias) for zero-shot scores; the reference's init values
        (CLIP's 2.6592, no bias) are not used: a checkpoint without them has no calibrated scores."""
        if self.logit is None:
            raise InputError("this checkpoint has no logit_scale (a text-only checkpoint); zero-shot "
                             "classification needs the full CLIP/SigLIP checkpoint")
        bias = float(self.logit.bias.float().item()) if self.logit.bias is not None else 0.0
        return float(self.logit.scale.float().exp().item()), bias


class CLIPTextModel(TextTower):
    """CLIP's text tower from a full ``clip`` checkpoint or a ``clip_text_model`` one."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CLIPTextModel:
        cfg = parse_config(CLIPTextConfig, config)
        return cls(tower_options(TextTowerOptions, cfg, vocab_size=cfg.vocab_size,
                                 max_positions=cfg.max_position_embeddings, eos_token_id=cfg.eos_token_id,
                                 projection_dim=cfg.projection_dim))


class SiglipTextModel(TextTower):
    """SigLIP's text tower from a full ``siglip`` checkpoint or a ``siglip_text_model`` one."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SiglipTextModel:
        cfg = parse_config(SiglipTextConfig, config)
        return cls(tower_options(TextTowerOptions, cfg, vocab_size=cfg.vocab_size,
                                 max_positions=cfg.max_position_embeddings, causal=False, pool="last",
                                 eos_token_id=cfg.eos_token_id, projection="head",
                                 projection_dim=cfg.projection_size or cfg.hidden_size, logit_bias=True))
