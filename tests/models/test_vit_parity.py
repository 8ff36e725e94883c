"""ViT, DeiT and DINOv2 against transformers on the same tiny random checkpoints."""

from __future__ import annotations

import pytest
import torch

from featx.errors import InputError
from featx.models import load_model
from featx.models.vit import DeiTModel, Dinov2Model, ViTModel

NAMES = ["vit", "vit_gelu_new", "deit", "dinov2", "dinov2_swiglu", "dinov2_registers"]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
def test_float32_matches_reference(checkpoint, pixels, name, batch):
    ckpt = checkpoint(name)
    model = load_model(ckpt.path, dtype="float32")
    x = pixels(batch, seed=batch)
    ref_hidden, ref_pooled, _ = ckpt.run(x)
    with torch.no_grad():
        out = model(pixel_values=x)
    assert out.last_hidden_state.dtype == torch.float32
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4
    assert ref_pooled is not None and out.pooler_output is not None
    assert _max_diff(out.pooler_output, ref_pooled) < 1e-4
    assert model.has_pooler and not model.pooler_is_random


@pytest.mark.parametrize(
    ("name", "cls", "prefix"),
    [("vit", ViTModel, 1), ("deit", DeiTModel, 2), ("dinov2", Dinov2Model, 1), ("dinov2_registers", Dinov2Model, 3)],
)
def test_model_contract(checkpoint, pixels, name, cls, prefix):
    model = load_model(checkpoint(name).path, dtype="float32")
    assert type(model) is cls
    assert model.modality == "image" and model.main_input_name == "pixel_values"
    assert model.num_prefix_tokens == prefix
    assert model.hidden_size == 32
    assert not model.training
    assert model.config["model_type"] == checkpoint(name).model.config.model_type
    with torch.no_grad():
        out = model(pixel_values=pixels(2), output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, prefix + 16, 32)
    assert len(out.hidden_states) == 3  # embeddings + 2 layers
    assert out["last_hidden_state"] is out.last_hidden_state and out[0] is out.last_hidden_state


@pytest.mark.parametrize("name", ["vit", "deit", "dinov2"])
@pytest.mark.parametrize(("height", "width"), [(48, 48), (40, 56), (24, 32)])
def test_interpolated_positions_match_reference(checkpoint, pixels, name, height, width):
    ckpt = checkpoint(name)
    model = load_model(ckpt.path, dtype="float32")
    x = pixels(2, height, width, seed=height + width)
    kw = {} if name.startswith("dinov2") else {"interpolate_pos_encoding": True}
    ref_hidden, ref_pooled, _ = ckpt.run(x, **kw)
    with torch.no_grad():
        out = model(pixel_values=x, **kw)
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4
    assert _max_diff(out.pooler_output, ref_pooled) < 1e-4


def test_registers_interpolate_with_antialias(checkpoint, pixels):
    ckpt = checkpoint("dinov2_registers")
    model = load_model(ckpt.path, dtype="float32")
    x = pixels(1, 24, 40)
    ref_hidden, _, _ = ckpt.run(x)
    with torch.no_grad():
        out = model(pixel_values=x)
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4


@pytest.mark.parametrize("name", ["vit", "deit"])
def test_other_size_without_interpolation_is_an_error(checkpoint, pixels, name):
    model = load_model(checkpoint(name).path, dtype="float32")
    with pytest.raises(InputError, match="interpolate_pos_encoding"):
        model(pixel_values=pixels(1, 48, 48))
    with pytest.raises(InputError, match="batch, channels, height, width"):
        model(pixel_values=pixels(1)[0])


@pytest.mark.parametrize("name", ["vit", "deit", "dinov2_registers"])
def test_bfloat16_close_to_float32(checkpoint, pixels, cosine, name):
    path = checkpoint(name).path
    x = pixels(2)
    with torch.no_grad():
        ref = load_model(path, dtype="float32")(pixel_values=x)
        model = load_model(path, dtype="bfloat16")
        out = model(pixel_values=x)  # float32 input is cast to the model's dtype
    assert out.last_hidden_state.dtype == torch.bfloat16
    assert model.featx_dtype_reason.startswith("bfloat16")
    assert cosine(out.last_hidden_state, ref.last_hidden_state) > 0.999
    assert cosine(out.pooler_output, ref.pooler_output) > 0.999


def test_classifier_checkpoint_has_no_pooler(checkpoint, pixels):
    """ViTForImageClassification saves no pooler: the reference would invent a random one."""
    ckpt = checkpoint("vit_classifier")
    model = load_model(ckpt.path, dtype="float32")
    assert model.pooler_is_random and not model.has_pooler and model.pooler is None
    x = pixels(2)
    ref_hidden, _, _ = ckpt.run(x)
    with torch.no_grad():
        out = model(pixel_values=x)
    assert out.pooler_output is None
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4


def test_sharded_checkpoint(checkpoint, pixels):
    ckpt = checkpoint("dinov2", max_shard_size="20KB")
    assert (ckpt.path / "model.safetensors.index.json").is_file()
    assert len(list(ckpt.path.glob("model-*.safetensors"))) > 1
    model = load_model(ckpt.path, dtype="float32")
    x = pixels(2)
    ref_hidden, _, _ = ckpt.run(x)
    with torch.no_grad():
        out = model(pixel_values=x)
    assert _max_diff(out.last_hidden_state, ref_hidden) < 1e-4
