"""featx's Whisper encoder against transformers' on tiny random checkpoints."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from featx.errors import InputError
from featx.models import load_model

from ._audio_fixtures import base_model, build, cosine, save_reference, whisper_config

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def whisper_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, torch.nn.Module]]:
    """A full WhisperForConditionalGeneration (``model.encoder.*``) and a bare WhisperModel (``encoder.*``,
    128 mel bins like large-v3, tanh GELU)."""
    root = tmp_path_factory.mktemp("whisper")
    full = build(transformers.WhisperForConditionalGeneration, whisper_config(), seed=1)
    bare = build(transformers.WhisperModel, whisper_config(num_mel_bins=128, activation_function="gelu_new",
                                                            encoder_layers=3), seed=2)
    return {
        "full": (save_reference(full, root / "full"), base_model(full)),
        "bare": (save_reference(bare, root / "bare"), base_model(bare)),
    }


def _features(batch: int, mels: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, mels, 3000, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("which", ["full", "bare"])
def test_last_hidden_state_matches_reference(whisper_checkpoints, which: str) -> None:
    path, ref = whisper_checkpoints[which]
    model = load_model(path, dtype="float32")
    x = _features(2, ref.config.num_mel_bins)
    with torch.no_grad():
        expected = ref(x).last_hidden_state
        out = model(input_features=x)
    assert out.last_hidden_state.shape == (2, 1500, 32)
    assert out.last_hidden_state.dtype == torch.float32
    torch.testing.assert_close(out.last_hidden_state, expected, atol=1e-4, rtol=0)
    assert out.pooler_output is None and out.attention_mask is None


def test_attention_mask_is_downsampled_and_does_not_change_states(whisper_checkpoints) -> None:
    path, ref = whisper_checkpoints["full"]
    model = load_model(path, dtype="float32")
    x = _features(3, 80, seed=1)
    lengths = torch.tensor([3000, 101, 1])  # 30 s, an odd frame count, a single frame
    mask = (torch.arange(3000)[None] < lengths[:, None]).to(torch.int32)
    with torch.no_grad():
        expected = ref(x, attention_mask=mask).last_hidden_state
        out = model(input_features=x, attention_mask=mask)
    torch.testing.assert_close(out.last_hidden_state, expected, atol=1e-4, rtol=0)
    assert out.attention_mask.shape == (3, 1500)
    assert out.attention_mask.dtype == torch.int32
    # the reference's conv length formula: (frames - 1) // 2 + 1
    assert out.attention_mask.sum(-1).tolist() == ((lengths - 1) // 2 + 1).tolist()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32(whisper_checkpoints, dtype: torch.dtype) -> None:
    path, ref = whisper_checkpoints["full"]
    model = load_model(path, dtype=dtype)
    x = _features(2, 80, seed=2)
    with torch.no_grad():
        expected = ref(x).last_hidden_state
        out = model(input_features=x).last_hidden_state
    assert out.dtype == dtype
    assert cosine(out.float(), expected) > 0.999


def test_full_checkpoint_loads_as_encoder_without_leftovers(whisper_checkpoints) -> None:
    path, ref = whisper_checkpoints["full"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unused (decoder) weights would warn
        model = load_model(path, dtype="float32")
    assert type(model).__name__ == "WhisperEncoder"
    assert model.modality == "audio" and model.main_input_name == "input_features"
    assert model.num_prefix_tokens == 0 and model.has_pooler is False
    assert model.hidden_size == 32
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("frames", [2999, 3001, 1500])
def test_wrong_frame_count_is_an_error_like_the_reference(whisper_checkpoints, frames: int) -> None:
    path, ref = whisper_checkpoints["full"]
    model = load_model(path, dtype="float32")
    x = torch.zeros(1, 80, frames)
    with pytest.raises(ValueError, match="3000"):
        ref(x)
    with pytest.raises(InputError, match="3000"):
        model(input_features=x)
