"""Unit tests of the Whisper encoder: config, checkpoint names, masks, input errors."""

from __future__ import annotations

import pytest
import torch

from featx.errors import InputError
from featx.models.whisper import WhisperEncoder
from featx.families import family_for

TINY = {"model_type": "whisper", "d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2,
        "encoder_ffn_dim": 32, "num_mel_bins": 8, "max_source_positions": 10}


def _tiny() -> WhisperEncoder:
    torch.manual_seed(0)
    return WhisperEncoder.from_config(TINY).eval()


def test_registered_as_whisper() -> None:
    assert family_for("whisper").encoder_class("whisper") is WhisperEncoder


def test_config_defaults_are_whisper_tiny_shaped() -> None:
    with torch.device("meta"):
        model = WhisperEncoder.from_config({"model_type": "whisper"})
    assert model.hidden_size == 384 and len(model.layers) == 4 and model.expected_frames == 3000
    assert model.layers[0].self_attn.k_proj.bias is None  # Whisper's keys have no bias
    assert model.layers[0].self_attn.q_proj.bias is not None


@pytest.mark.parametrize("prefix", ["model.encoder.", "encoder."])
def test_remap_keeps_only_the_encoder(prefix: str) -> None:
    model = _tiny()
    reference_names = {
        "layer_norm1": "self_attn_layer_norm", "layer_norm2": "final_layer_norm", "mlp.fc1": "fc1", "mlp.fc2": "fc2",
    }
    ckpt = {}
    for key, value in model.state_dict().items():
        for ours, theirs in reference_names.items():
            key = key.replace(f".{ours}.", f".{theirs}.")
        ckpt[prefix + key] = value
    ckpt[prefix.replace("encoder", "decoder") + "layers.0.fc1.weight"] = torch.zeros(1)
    ckpt["proj_out.weight"] = torch.zeros(1)
    out = model.remap_state_dict(ckpt)
    assert set(out) == set(model.state_dict())


def test_frame_count_and_mask_are_checked() -> None:
    model = _tiny()
    with pytest.raises(InputError, match="length 20"):
        model(input_features=torch.zeros(1, 8, 19))
    with pytest.raises(InputError, match=r"\[batch, 8, 20\]"):
        model(input_features=torch.zeros(1, 80, 20))
    with pytest.raises(InputError, match="attention_mask"):
        model(input_features=torch.zeros(1, 8, 20), attention_mask=torch.ones(1, 480000))


def test_mask_downsampling_handles_any_pattern() -> None:
    model = _tiny()
    mask = torch.tensor([[1] * 20, [1] * 7 + [0] * 13, [0] * 5 + [1] * 15])  # left padding too
    out = model(input_features=torch.zeros(3, 8, 20), attention_mask=mask)
    assert out.last_hidden_state.shape == (3, 10, 16)
    assert out.attention_mask.tolist() == mask[:, ::2].tolist()
    assert out.attention_mask.sum(-1).tolist() == [10, 4, 7]
