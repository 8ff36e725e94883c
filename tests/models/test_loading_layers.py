"""The shared layers: activations, SDPA attention with masks, blocks, EncoderOutput."""

from __future__ import annotations

import math

import pytest
import torch

from featx.errors import ConfigError
from featx.models.layers import (
    ACTIVATIONS,
    Attention,
    EncoderLayer,
    EncoderOutput,
    get_activation,
    interpolate_pos_grid,
    padding_mask_to_attention_bias,
)


def _eager_attention(attn: Attention, x: torch.Tensor, ctx: torch.Tensor, additive: torch.Tensor | None) -> torch.Tensor:
    b, n, _ = x.shape
    h, d = attn.num_heads, attn.head_dim
    q = attn.q_proj(x).view(b, n, h, d).transpose(1, 2)
    k = attn.k_proj(ctx).view(b, -1, h, d).transpose(1, 2)
    v = attn.v_proj(ctx).view(b, -1, h, d).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if additive is not None:
        scores = scores + additive
    out = scores.softmax(-1) @ v
    return attn.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) - {"linear"}))
def test_activations_match_reference(name):
    from transformers.activations import ACT2FN

    x = torch.linspace(-6, 6, 1001)
    assert torch.allclose(get_activation(name)(x), ACT2FN[name](x), atol=1e-6)


def test_unknown_activation():
    with pytest.raises(ConfigError, match="unsupported activation 'mish2'"):
        get_activation("mish2")


def test_attention_matches_eager_with_padding_mask():
    torch.manual_seed(0)
    attn = Attention(16, 4, k_bias=False).eval()
    assert attn.k_proj.bias is None and attn.q_proj.bias is not None
    x = torch.randn(3, 7, 16)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    additive = (1 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    with torch.no_grad():
        expected = _eager_attention(attn, x, x, additive)
        got_bool = attn(x, padding_mask_to_attention_bias(mask, torch.float32))
        got_add = attn(x, padding_mask_to_attention_bias(additive, torch.float32))
        unmasked = attn(x)
    assert torch.allclose(got_bool, expected, atol=1e-5)
    assert torch.allclose(got_add, expected, atol=1e-5)
    assert torch.allclose(unmasked[0], expected[0], atol=1e-5)  # row 0 has no padding
    assert not torch.allclose(unmasked[2], expected[2], atol=1e-3)


def test_cross_attention_context():
    torch.manual_seed(1)
    attn = Attention(16, 2).eval()
    probe, ctx = torch.randn(2, 1, 16), torch.randn(2, 9, 16)
    with torch.no_grad():
        assert torch.allclose(attn(probe, context=ctx), _eager_attention(attn, probe, ctx, None), atol=1e-5)


def test_padding_mask_shapes():
    assert padding_mask_to_attention_bias(None, torch.float32) is None
    m = padding_mask_to_attention_bias(torch.tensor([[1, 0]]), torch.float32)
    assert m.dtype == torch.bool and m.shape == (1, 1, 1, 2)
    with pytest.raises(ValueError, match="attention_mask"):
        padding_mask_to_attention_bias(torch.ones(1, 2, 3), torch.float32)


def test_post_norm_and_layer_scale_blocks():
    torch.manual_seed(2)
    x = torch.randn(2, 5, 16)
    post = EncoderLayer(16, 4, 32, norm_first=False).eval()
    with torch.no_grad():
        h = post.layer_norm1(x + post.self_attn(x))
        expected = post.layer_norm2(h + post.mlp(h))
        assert torch.allclose(post(x), expected, atol=1e-6)
    scaled = EncoderLayer(16, 4, 32, layer_scale=0.5, swiglu=True).eval()
    assert scaled.layer_scale1.lambda1.eq(0.5).all()
    assert scaled.mlp.weights_in.out_features == 64
    with torch.no_grad():
        h = x + 0.5 * scaled.self_attn(scaled.layer_norm1(x))
        expected = h + 0.5 * scaled.mlp(scaled.layer_norm2(h))
        assert torch.allclose(scaled(x), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="not divisible"):
        Attention(10, 4)


def test_interpolate_pos_grid():
    pos = torch.randn(1, 16, 8)
    assert interpolate_pos_grid(pos, (4, 4)) is pos
    assert interpolate_pos_grid(pos, (3, 6)).shape == (1, 18, 8)
    assert interpolate_pos_grid(pos.bfloat16(), (2, 2)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="square"):
        interpolate_pos_grid(torch.randn(1, 15, 8), (2, 2))


def test_encoder_output_access():
    h, p = torch.zeros(1, 2, 3), torch.ones(1, 3)
    out = EncoderOutput(last_hidden_state=h, pooler_output=p)
    assert out.last_hidden_state is h and out["pooler_output"] is p
    assert out[0] is h and out[1] is p and out.to_tuple() == (h, p)
    assert out.keys() == ["last_hidden_state", "pooler_output"] and list(out) == out.keys()
    assert "attention_mask" not in out and out.get("attention_mask", 5) == 5
    with pytest.raises(KeyError):
        out["attention_mask"]
    assert dict(out.items())["last_hidden_state"] is h
