"""featx's Audio Spectrogram Transformer against transformers' on tiny random checkpoints."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from featx.errors import InputError
from featx.models import load_model

from ._audio_fixtures import ast_config, base_model, build, cosine, save_reference

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def ast_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, torch.nn.Module]]:
    """Three spellings of an AST checkpoint:

    - "classifier": ASTForAudioClassification as saved (``audio_spectrogram_transformer.encoder.layer.N.
      attention.attention.query``, plus the classifier head), like the hub's MIT/ast-finetuned-* models;
    - "v5": a bare ASTModel saved with transformers 5's in-memory names (``layers.N.attention.q_proj``);
    - "strides": a bare ASTModel without qkv bias and with unequal strides (a non-square patch grid).
    """
    root = tmp_path_factory.mktemp("ast")
    classifier = build(transformers.ASTForAudioClassification, ast_config(), seed=11)
    v5 = build(transformers.ASTModel, ast_config(num_mel_bins=48, max_length=64, hidden_act="gelu_new"), seed=12)
    strides = build(transformers.ASTModel, ast_config(qkv_bias=False, frequency_stride=16, time_stride=8,
                                                      layer_norm_eps=1e-6), seed=13)
    v5_dir = save_reference(v5, root / "v5_saved")
    folder = root / "v5"
    folder.mkdir()
    shutil.copy(v5_dir / "config.json", folder / "config.json")
    save_file({k: v.contiguous() for k, v in v5.state_dict().items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    return {
        "classifier": (save_reference(classifier, root / "classifier"), base_model(classifier)),
        "v5": (folder, v5),
        "strides": (save_reference(strides, root / "strides"), strides),
    }


def _inputs(ref: torch.nn.Module, batch: int = 2, seed: int = 0) -> torch.Tensor:
    cfg = ref.config
    return torch.randn(batch, cfg.max_length, cfg.num_mel_bins, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("which", ["classifier", "v5", "strides"])
def test_hidden_states_and_pooler_match_reference(ast_checkpoints, which: str) -> None:
    path, ref = ast_checkpoints[which]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the classifier head must be dropped quietly
        model = load_model(path, dtype="float32")
    x = _inputs(ref, batch=3)
    with torch.no_grad():
        expected = ref(x)
        out = model(input_values=x)
    assert out.last_hidden_state.shape == expected.last_hidden_state.shape
    torch.testing.assert_close(out.last_hidden_state, expected.last_hidden_state, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.pooler_output, expected.pooler_output, atol=1e-4, rtol=0)
    assert out.attention_mask is None


def test_contract_attributes(ast_checkpoints) -> None:
    path, ref = ast_checkpoints["classifier"]
    model = load_model(path, dtype="float32")
    assert type(model).__name__ == "ASTModel"
    assert model.modality == "audio" and model.main_input_name == "input_values"
    assert model.num_prefix_tokens == 2 and model.has_pooler is True
    assert model.hidden_size == 32
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    with torch.no_grad():
        out = model(input_values=_inputs(ref, batch=1))
    # patches: (32 - 16) // 10 + 1 = 2 frequency rows, (100 - 16) // 10 + 1 = 9 time columns, plus 2 tokens
    assert out.last_hidden_state.shape == (1, 2 + 2 * 9, 32)
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state[:, :2].mean(1))


def test_bfloat16_close_to_float32(ast_checkpoints) -> None:
    path, ref = ast_checkpoints["classifier"]
    model = load_model(path, dtype=torch.bfloat16)
    x = _inputs(ref, seed=3)
    with torch.no_grad():
        expected = ref(x)
        out = model(input_values=x)
    assert out.last_hidden_state.dtype == torch.bfloat16
    assert cosine(out.last_hidden_state.float(), expected.last_hidden_state) > 0.999
    assert cosine(out.pooler_output.float(), expected.pooler_output) > 0.999


def test_attention_mask_leaves_hidden_states_and_marks_real_patches(ast_checkpoints) -> None:
    path, ref = ast_checkpoints["classifier"]
    model = load_model(path, dtype="float32")
    x = _inputs(ref, seed=4)
    mask = torch.ones(2, 100, dtype=torch.int32)
    mask[1, 40:] = 0
    with torch.no_grad():
        plain = model(input_values=x)
        masked = model(input_values=x, attention_mask=mask)
    torch.testing.assert_close(masked.last_hidden_state, plain.last_hidden_state, atol=0, rtol=0)
    assert plain.attention_mask is None
    token_mask = masked.attention_mask
    assert token_mask.shape == masked.last_hidden_state.shape[:2]
    f, t = model.grid
    times = torch.arange(f * t) % t * model.time_stride
    assert token_mask[0].all()
    assert torch.equal(token_mask[1, 2:].bool(), times < 40) and token_mask[1, :2].all()


@pytest.mark.parametrize("shape", [(2, 99, 32), (2, 100, 31), (100, 32), (2, 32, 100)])
def test_wrong_input_shape_is_an_error(ast_checkpoints, shape: tuple[int, ...]) -> None:
    path, _ = ast_checkpoints["classifier"]
    model = load_model(path, dtype="float32")
    with pytest.raises(InputError, match=r"\[batch, 100, 32\]"):
        model(input_values=torch.zeros(shape))


def test_config_defaults_are_the_reference_defaults() -> None:
    from featx.models.ast import ASTModel

    cfg = transformers.ASTConfig().to_dict()
    with torch.device("meta"):
        ours = ASTModel.from_config({"model_type": cfg["model_type"]})
        full = ASTModel.from_config(json.loads(json.dumps(cfg)))
    assert ours.grid == full.grid == (12, 101)
    assert ours.layernorm.eps == full.layernorm.eps == 1e-12
    assert len(ours.encoder.layers) == 12
