"""Building blocks shared by the encoders: output type, activations, attention, MLPs, blocks.

Parameter names follow the Hugging Face CLIP/Whisper convention (``self_attn.q_proj``,
``mlp.fc1``, ``layer_norm1``...), so most checkpoints map onto them one to one and the others
(ViT's ``attention.attention.query``...) need only a rename in ``remap_state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, InputError
from .keys import rename_keys  # re-exported: it used to live here

__all__ = [
    "EncoderOutput",
    "get_activation",
    "ACTIVATIONS",
    "padding_mask_to_attention_bias",
    "Attention",
    "MLP",
    "SwiGLUMLP",
    "LayerScale",
    "EncoderLayer",
    "Encoder",
    "interpolate_pos_grid",
    "rename_keys",
    "image_batch",
]


@dataclass
class EncoderOutput:
    """What every featx encoder returns, like the reference's ``BaseModelOutputWithPooling``.

    Fields are reachable as attributes, by name (``out["last_hidden_state"]``) and by position
    over the fields that are set (``out[0]``), as with the reference's ``ModelOutput``.
    ``attention_mask`` marks the valid output frames of audio encoders ([batch, tokens], 1 =
    real); ``hidden_states`` holds the embedding output plus every layer's output when asked;
    ``image_embeds`` is CLIP's projected pooled output where the checkpoint has the projection.
    """

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    attention_mask: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    image_embeds: Tensor | None = None

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


def _quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(1.702 * x)


class _Fn(nn.Module):
    """A stateless activation as a module (so it shows in ``repr``)."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.name = name
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


def _tanh_gelu(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


# The reference's ACT2FN names. gelu_new/gelu_fast/gelu_pytorch_tanh are the same tanh
# approximation written differently; they agree to float32 rounding.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": _tanh_gelu,
    "gelu_fast": _tanh_gelu,
    "gelu_pytorch_tanh": _tanh_gelu,
    "gelu_accurate": _tanh_gelu,
    "quick_gelu": _quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def get_activation(name: str) -> nn.Module:
    """The activation the reference calls ``name`` (``config.hidden_act``), as a module."""
    try:
        return _Fn(name, ACTIVATIONS[name])
    except (KeyError, TypeError):
        raise ConfigError(
            f"unsupported activation {name!r}; featx supports: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


def padding_mask_to_attention_bias(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Turn a [batch, keys] padding mask (1/True = attend) into an SDPA mask [batch, 1, 1, keys].

    Masks that already have 4 dims pass through (bool, or additive float cast to ``dtype``).
    The result is boolean for padding masks: SDPA then picks its fused kernels where it can.
    """
    if mask is None:
        return None
    if mask.dim() == 4:
        return mask if mask.dtype == torch.bool else mask.to(dtype)
    if mask.dim() != 2:
        raise ValueError(f"attention_mask must be [batch, keys] or 4-d, got shape {tuple(mask.shape)}")
    return mask.to(torch.bool)[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention through ``torch.nn.functional.scaled_dot_product_attention``.

    Separate ``q_proj``/``k_proj``/``v_proj``/``out_proj`` Linear layers so checkpoints load
    without reshaping. ``k_bias=False`` is Whisper's bias-free key projection. With ``context``
    the keys and values come from it (attention pooling); otherwise it is self-attention.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        k_bias: bool | None = None,
        out_bias: bool = True,
        head_dim: int | None = None,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        if head_dim is None and dim % num_heads:
            raise ConfigError(f"hidden size {dim} is not divisible by the {num_heads} attention heads")
        inner = self.num_heads * self.head_dim
        self.scale = scale
        self.q_proj = nn.Linear(dim, inner, bias=qkv_bias)
        self.k_proj = nn.Linear(dim, inner, bias=qkv_bias if k_bias is None else k_bias)
        self.v_proj = nn.Linear(dim, inner, bias=qkv_bias)
        self.out_proj = nn.Linear(inner, dim, bias=out_bias)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden_states: Tensor,
        attention_mask: Tensor | None = None,
        context: Tensor | None = None,
    ) -> Tensor:
        """``attention_mask``: bool (True = attend) or additive, broadcastable to [b, heads, q, k]."""
        source = hidden_states if context is None else context
        q = self._heads(self.q_proj(hidden_states))
        k = self._heads(self.k_proj(source))
        v = self._heads(self.v_proj(source))
        if attention_mask is not None and attention_mask.dtype != torch.bool:
            attention_mask = attention_mask.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, scale=self.scale)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim))


class MLP(nn.Module):
    """fc1 -> activation -> fc2."""

    def __init__(self, dim: int, hidden_dim: int, act: str = "gelu", *, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = get_activation(act)
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLUMLP(nn.Module):
    """DINOv2's SwiGLU feed-forward: one fused input matmul (gate half first), silu(gate) * up."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.weights_in = nn.Linear(dim, 2 * hidden_dim)
        self.weights_out = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.weights_in(x).chunk(2, dim=-1)
        return self.weights_out(F.silu(gate) * up)


class LayerScale(nn.Module):
    """Per-channel residual scaling (DINOv2's ``layer_scale1.lambda1``)."""

    def __init__(self, dim: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.lambda1


class EncoderLayer(nn.Module):
    """A transformer block: attention and MLP residual branches.

    ``norm_first=True`` (ViT, DINOv2, CLIP, SigLIP, Whisper, Wav2Vec2 "stable"):
    ``x + ls(attn(norm1(x)))`` then ``x + ls(mlp(norm2(x)))``. ``norm_first=False`` is the
    post-norm block of BERT-style encoders (Wav2Vec2 base): ``norm1(x + attn(x))``, then
    ``norm2(x + mlp(x))``. ``layer_scale`` (a float) adds DINOv2's LayerScale.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        act: str = "gelu",
        eps: float = 1e-5,
        qkv_bias: bool = True,
        k_bias: bool | None = None,
        layer_scale: float | None = None,
        swiglu: bool = False,
        norm_first: bool = True,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.self_attn = Attention(dim, num_heads, qkv_bias=qkv_bias, k_bias=k_bias)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp: nn.Module = SwiGLUMLP(dim, mlp_dim) if swiglu else MLP(dim, mlp_dim, act)
        self.layer_scale1 = LayerScale(dim, layer_scale) if layer_scale is not None else None
        self.layer_scale2 = LayerScale(dim, layer_scale) if layer_scale is not None else None

    def forward(self, x: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        if not self.norm_first:
            x = self.layer_norm1(x + self.self_attn(x, attention_mask))
            return self.layer_norm2(x + self.mlp(x))
        h = self.self_attn(self.layer_norm1(x), attention_mask)
        if self.layer_scale1 is not None:
            h = self.layer_scale1(h)
        x = x + h
        h = self.mlp(self.layer_norm2(x))
        if self.layer_scale2 is not None:
            h = self.layer_scale2(h)
        return x + h


class Encoder(nn.Module):
    """A stack of `EncoderLayer` under ``layers`` (so keys read ``encoder.layers.N...``)."""

    def __init__(self, num_layers: int, make_layer: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make_layer() for _ in range(num_layers))

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, ...] | None]:
        """Returns the last layer's output and, when asked, the input plus every layer's output."""
        states: list[Tensor] | None = [x] if output_hidden_states else None
        for layer in self.layers:
            x = layer(x, attention_mask)
            if states is not None:
                states.append(x)
        return x, tuple(states) if states is not None else None


def interpolate_pos_grid(
    pos: Tensor,
    new_grid: tuple[int, int],
    *,
    antialias: bool = False,
) -> Tensor:
    """Resize patch position embeddings [1, n, dim] laid out on a square grid to ``new_grid``.

    Bicubic, align_corners=False, like the reference's ``interpolate_pos_encoding``. Computed in
    float32 (bicubic in half precision shifts the embeddings) and cast back. Returns
    [1, new_h * new_w, dim]; an unchanged grid returns ``pos`` itself.
    """
    n, dim = pos.shape[1], pos.shape[2]
    side = int(math.isqrt(n))
    if side * side != n:
        raise ValueError(f"cannot interpolate {n} position embeddings: not a square grid")
    if tuple(new_grid) == (side, side):
        return pos
    grid = pos.reshape(1, side, side, dim).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=new_grid, mode="bicubic", align_corners=False, antialias=antialias)
    return grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim).to(pos.dtype)


def image_batch(pixel_values: Tensor, like: Tensor) -> Tensor:
    """Check that ``pixel_values`` is [batch, channels, height, width] and move it to ``like``'s
    device and dtype (processors give float32 on the CPU; the model may be bfloat16 on a GPU)."""
    if pixel_values.dim() != 4:
        raise InputError(f"pixel_values must be [batch, channels, height, width], got {tuple(pixel_values.shape)}",
                         source="pixel_values")
    return pixel_values.to(device=like.device, dtype=like.dtype)
