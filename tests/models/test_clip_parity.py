"""CLIP and SigLIP vision towers against transformers, from full and vision-only checkpoints."""

from __future__ import annotations

import pytest
import torch

from featx.errors import InputError
from featx.models import load_model
from featx.models.clip import CLIPVisionModel, SiglipVisionModel

NAMES = ["clip", "clip_vision", "clip_vision_projection", "siglip", "siglip_vision", "siglip_vision_nohead"]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
def test_float32_matches_reference(checkpoint, pixels, name, batch):
    ckpt = checkpoint(name)
    model = load_model(ckpt.path, dtype="float32")
    x = pixels(batch, seed=batch)
    ref_hidden, ref_pooled, ref_embeds = ckpt.run(x)
    with torch.no_grad():
        out = model(pixel_values=x)
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4
    if ref_pooled is None:
        assert out.pooler_output is None and not model.has_pooler
    else:
        assert _max_diff(out.pooler_output, ref_pooled) < 1e-4
        assert model.has_pooler
    if ref_embeds is None:
        assert out.image_embeds is None and model.visual_projection is None
    else:
        assert _max_diff(out.image_embeds, ref_embeds) < 1e-4


@pytest.mark.parametrize(
    ("name", "cls", "prefix", "tokens"),
    [("clip", CLIPVisionModel, 1, 17), ("clip_vision", CLIPVisionModel, 1, 17),
     ("siglip", SiglipVisionModel, 0, 16), ("siglip_vision", SiglipVisionModel, 0, 16)],
)
def test_model_contract(checkpoint, pixels, name, cls, prefix, tokens):
    model = load_model(checkpoint(name).path, dtype="float32")
    assert type(model) is cls
    assert model.modality == "image" and model.main_input_name == "pixel_values"
    assert model.num_prefix_tokens == prefix and model.hidden_size == 32
    assert not model.pooler_is_random
    with torch.no_grad():
        out = model(pixel_values=pixels(2))
    assert out.last_hidden_state.shape == (2, tokens, 32)
    assert out.pooler_output.shape == (2, 32)


def test_full_checkpoints_skip_the_text_tower(checkpoint):
    model = load_model(checkpoint("clip").path, dtype="float32")
    names = set(model.state_dict())
    assert not any("text" in n or "logit" in n for n in names)
    assert "visual_projection.weight" in names


@pytest.mark.parametrize("name", ["clip", "siglip_vision"])
@pytest.mark.parametrize(("height", "width"), [(48, 48), (40, 24)])
def test_interpolated_positions_match_reference(checkpoint, pixels, name, height, width):
    ckpt = checkpoint(name)
    model = load_model(ckpt.path, dtype="float32")
    x = pixels(2, height, width, seed=height * width)
    ref_hidden, ref_pooled, _ = ckpt.run(x, interpolate_pos_encoding=True)
    with torch.no_grad():
        out = model(pixel_values=x, interpolate_pos_encoding=True)
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4
    assert _max_diff(out.pooler_output, ref_pooled) < 1e-4
    with pytest.raises(InputError, match="interpolate_pos_encoding"):
        model(pixel_values=x)


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_bfloat16_close_to_float32(checkpoint, pixels, cosine, name):
    path = checkpoint(name).path
    x = pixels(2)
    with torch.no_grad():
        ref = load_model(path, dtype="float32")(pixel_values=x)
        out = load_model(path, dtype=torch.bfloat16)(pixel_values=x)
    assert out.last_hidden_state.dtype == torch.bfloat16
    assert cosine(out.last_hidden_state, ref.last_hidden_state) > 0.999
    assert cosine(out.pooler_output, ref.pooler_output) > 0.999


def test_sharded_full_checkpoint(checkpoint, pixels):
    ckpt = checkpoint("siglip", max_shard_size="20KB")
    assert (ckpt.path / "model.safetensors.index.json").is_file()
    model = load_model(ckpt.path, dtype="float32")
    x = pixels(1)
    ref_hidden, ref_pooled, _ = ckpt.run(x)
    with torch.no_grad():
        out = model(pixel_values=x)
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4
    assert _max_diff(out.pooler_output, ref_pooled) < 1e-4
