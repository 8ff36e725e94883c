"""Unit tests of the Wav2Vec2/HuBERT encoder's pieces: weight-norm folding, frame lengths, masks, errors."""

from __future__ import annotations

import pytest
import torch

from featx.errors import ConfigError, InputError
from featx.models.wav2vec2 import Wav2Vec2Model, conv_output_lengths, feature_attention_mask, fuse_weight_norm
from featx.families import family_for

TINY = {
    "model_type": "wav2vec2", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 32, "conv_dim": [8, 8], "conv_kernel": [10, 3], "conv_stride": [5, 2],
    "num_conv_pos_embeddings": 4, "num_conv_pos_embedding_groups": 2,
}


def _tiny(**overrides: object) -> Wav2Vec2Model:
    torch.manual_seed(0)
    return Wav2Vec2Model.from_config({**TINY, **overrides}).eval()


def test_registered_for_wav2vec2_and_hubert() -> None:
    assert family_for("wav2vec2").encoder_class("wav2vec2") is Wav2Vec2Model
    assert family_for("hubert").encoder_class("hubert") is Wav2Vec2Model


@pytest.mark.filterwarnings("ignore:.*weight_norm.*deprecated:FutureWarning")
@pytest.mark.parametrize("name", ["weight_g", "parametrizations"])
def test_fuse_weight_norm_equals_torch_weight_norm(name: str) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(8, 8, kernel_size=5, groups=2)
    if name == "weight_g":
        normed = torch.nn.utils.weight_norm(conv, name="weight", dim=2)
        g, v = normed.weight_g, normed.weight_v
    else:
        normed = torch.nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        g, v = normed.parametrizations.weight.original0, normed.parametrizations.weight.original1
    with torch.no_grad():
        g.mul_(torch.rand_like(g) + 0.5)  # a magnitude that differs from the direction's norm
        expected = conv.weight.detach().clone() if name == "parametrizations" else torch._weight_norm(v, g, 2)
    assert g.shape == (1, 1, 5)
    torch.testing.assert_close(fuse_weight_norm(g.detach(), v.detach()), expected)


def test_remap_folds_both_weight_norm_spellings_and_drops_heads() -> None:
    model = _tiny()
    sd = {f"wav2vec2.{k}": v for k, v in model.state_dict().items()}
    weight = sd.pop("wav2vec2.encoder.pos_conv_embed.conv.weight")
    g = weight.norm(dim=(0, 1), keepdim=True)  # with v = weight, g * v / ||v|| is weight again
    theirs = {".self_attn.": ".attention.", ".layer_norm1.": ".layer_norm.", ".layer_norm2.": ".final_layer_norm.",
              ".mlp.fc1.": ".feed_forward.intermediate_dense.", ".mlp.fc2.": ".feed_forward.output_dense."}
    for g_name, v_name in (("weight_g", "weight_v"),
                           ("parametrizations.weight.original0", "parametrizations.weight.original1")):
        ckpt = {}
        for key, value in sd.items():  # our block names back into the reference's
            for a, b in theirs.items():
                key = key.replace(a, b)
            ckpt[key] = value
        ckpt[f"wav2vec2.encoder.pos_conv_embed.conv.{g_name}"] = g
        ckpt[f"wav2vec2.encoder.pos_conv_embed.conv.{v_name}"] = weight
        ckpt["lm_head.weight"] = torch.zeros(3, 16)
        ckpt["wav2vec2.masked_spec_embed"] = torch.zeros(16)
        out = model.remap_state_dict(ckpt)
        assert set(out) == set(model.state_dict())
        torch.testing.assert_close(out["encoder.pos_conv_embed.conv.weight"], weight)


def test_output_lengths_follow_the_conv_formula() -> None:
    lengths = torch.tensor([400, 401, 1000, 16000])
    # wav2vec2-base: 25 ms receptive field, 20 ms hop
    out = conv_output_lengths(lengths, [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2])
    assert out.tolist() == [1, 1, 2, 49]
    assert _tiny().receptive_field == 20  # 3 samples of the first conv's output -> (3 - 1) * 5 + 10


def test_feature_attention_mask_keeps_the_reference_corner_case() -> None:
    out = feature_attention_mask(torch.tensor([5, 2, 0]), 5)
    assert out.tolist() == [[True] * 5, [True, True, False, False, False], [True] * 5]


def test_short_or_malformed_inputs_are_errors() -> None:
    model = _tiny()
    with pytest.raises(InputError, match="at least 20"):
        model(input_values=torch.zeros(1, 19))
    with pytest.raises(InputError, match=r"\[batch, samples\]"):
        model(input_values=torch.zeros(400))
    with pytest.raises(InputError, match="attention_mask"):
        model(input_values=torch.zeros(2, 400), attention_mask=torch.ones(2, 399))


def test_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="feat_extract_norm"):
        _tiny(feat_extract_norm="batch")
    with pytest.raises(ConfigError, match="same length"):
        _tiny(conv_kernel=[10])


def test_unmasked_batch_equals_per_example_runs() -> None:
    model = _tiny()
    x = torch.randn(2, 800, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batch = model(input_values=x).last_hidden_state
        first = model(input_values=x[:1]).last_hidden_state
    torch.testing.assert_close(batch[:1], first, atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides", [{}, {"add_adapter": True, "num_adapter_layers": 2}])
def test_output_attention_mask_without_running_the_model(overrides: dict[str, object]) -> None:
    """What pooling needs for models that run unmasked: the same frame mask forward() returns."""
    model = _tiny(**overrides)
    mask = (torch.arange(1000)[None] < torch.tensor([[1000], [640], [20]])).to(torch.int32)
    with torch.no_grad():
        out = model(input_values=torch.randn(3, 1000) * mask, attention_mask=mask)
    frames = model.output_attention_mask(mask)
    assert frames.dtype == torch.int32
    assert torch.equal(frames, out.attention_mask)
    assert frames.shape == out.last_hidden_state.shape[:2]
    assert frames.sum(-1).tolist() == model.output_lengths(mask.sum(-1)).tolist()


def test_family_only_options_are_ignored_like_the_reference() -> None:
    """Wav2Vec2 always normalises before its projection and has no BatchNorm positional conv; HuBERT has no
    add_adapter stack (the reference's classes do not read those keys)."""
    w2v = _tiny(feat_proj_layer_norm=False, conv_pos_batch_norm=True)
    assert w2v.feature_projection.layer_norm is not None and w2v.encoder.pos_conv_embed.batch_norm is None
    hubert = _tiny(model_type="hubert", feat_proj_layer_norm=False, conv_pos_batch_norm=True, add_adapter=True)
    assert hubert.feature_projection.layer_norm is None and hubert.encoder.pos_conv_embed.batch_norm is not None
    assert hubert.adapter is None
