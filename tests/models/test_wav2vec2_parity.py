"""featx's Wav2Vec2 / HuBERT encoder against transformers' on tiny random checkpoints, across the variants
real checkpoints use (group vs layer conv norm, post-norm vs stable layer norm, conv bias, weight-norm
spellings, HuBERT's projection without LayerNorm and BatchNorm positional conv, MMS adapters, add_adapter)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from featx.models import load_model

from ._audio_fixtures import (
    base_model,
    build,
    cosine,
    hubert_config,
    rename_checkpoint_keys,
    save_reference,
    wav2vec2_config,
)

transformers = pytest.importorskip("transformers")

_WEIGHT_G_V = [("parametrizations.weight.original0", "weight_g"), ("parametrizations.weight.original1", "weight_v")]

# name -> (reference class, config builder, config overrides, key renames applied to the saved file)
VARIANTS: dict[str, tuple[str, Any, dict[str, Any], list[tuple[str, str]]]] = {
    # wav2vec2-base(-960h): group norm, post-norm, CTC head, legacy weight_g/weight_v names
    "w2v-base-ctc": ("Wav2Vec2ForCTC", wav2vec2_config, {}, _WEIGHT_G_V),
    # wav2vec2-large-lv60 / xlsr: layer norm convs with bias, stable layer norm
    "w2v-large-stable": ("Wav2Vec2Model", wav2vec2_config,
                         dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True), []),
    # a classifier on a stable model with MMS attention adapters, tanh GELU, an odd positional kernel
    "w2v-mms-adapter": ("Wav2Vec2ForSequenceClassification", wav2vec2_config,
                        dict(do_stable_layer_norm=True, feat_extract_norm="layer", adapter_attn_dim=8,
                             hidden_act="gelu_new", num_conv_pos_embeddings=15), []),
    # speech-encoder-decoder style: a strided conv/GLU adapter after the encoder, projected to 24 dims
    "w2v-add-adapter": ("Wav2Vec2Model", wav2vec2_config,
                        dict(add_adapter=True, output_hidden_size=24, num_adapter_layers=2), []),
    # hubert-base: group norm, post-norm, no LayerNorm before the projection
    "hubert-base": ("HubertModel", hubert_config, dict(feat_proj_layer_norm=False), _WEIGHT_G_V),
    # hubert-large-ft: stable layer norm, CTC head
    "hubert-large-ctc": ("HubertForCTC", hubert_config,
                         dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True), []),
    # HuBERT-style positional conv with BatchNorm instead of weight norm
    "hubert-batchnorm": ("HubertModel", hubert_config, dict(conv_pos_batch_norm=True), []),
}


@pytest.fixture(scope="session")
def speech_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, torch.nn.Module]]:
    root = tmp_path_factory.mktemp("wav2vec2")
    out = {}
    for seed, (name, (cls_name, make_config, overrides, renames)) in enumerate(VARIANTS.items(), start=20):
        ref = build(getattr(transformers, cls_name), make_config(**overrides), seed=seed)
        folder = save_reference(ref, root / name)
        if renames:
            keys = rename_checkpoint_keys(folder, renames)
            assert any(k.endswith("weight_g") for k in keys)
        out[name] = (folder, base_model(ref))
    return out


@pytest.fixture(scope="session")
def waveforms() -> tuple[torch.Tensor, torch.Tensor]:
    """Three zero-padded waveforms of 4000, 2500 and 1234 samples and their int32 mask."""
    lengths = torch.tensor([4000, 2500, 1234])
    mask = (torch.arange(4000)[None] < lengths[:, None]).to(torch.int32)
    x = torch.randn(3, 4000, generator=torch.Generator().manual_seed(0)) * mask
    return x, mask


@pytest.mark.parametrize("name", list(VARIANTS))
def test_without_mask_matches_reference(speech_checkpoints, waveforms, name: str) -> None:
    path, ref = speech_checkpoints[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # heads, masked_spec_embed and weight-norm halves must not be left over
        model = load_model(path, dtype="float32")
    x, _ = waveforms
    with torch.no_grad():
        expected = ref(x).last_hidden_state
        out = model(input_values=x)
    assert out.last_hidden_state.shape == expected.shape
    torch.testing.assert_close(out.last_hidden_state, expected, atol=1e-4, rtol=0)
    assert out.attention_mask is None and out.pooler_output is None


@pytest.mark.parametrize("name", list(VARIANTS))
def test_with_mask_matches_reference(speech_checkpoints, waveforms, name: str) -> None:
    path, ref = speech_checkpoints[name]
    model = load_model(path, dtype="float32")
    x, mask = waveforms
    with torch.no_grad():
        expected = ref(x, attention_mask=mask).last_hidden_state
        out = model(input_values=x, attention_mask=mask)
    torch.testing.assert_close(out.last_hidden_state, expected, atol=1e-4, rtol=0)
    # the returned mask is at the output frame rate, with the reference's length formula
    lengths = ref._get_feat_extract_output_lengths(mask.sum(-1))
    if getattr(ref.config, "add_adapter", False):
        lengths = ref._get_feat_extract_output_lengths(mask.sum(-1), add_adapter=True)
    assert out.attention_mask.dtype == mask.dtype
    assert out.attention_mask.shape == out.last_hidden_state.shape[:2]
    prefix = torch.arange(out.attention_mask.shape[1])[None] < lengths[:, None]
    assert torch.equal(out.attention_mask.bool(), prefix)


@pytest.mark.parametrize("name", ["w2v-base-ctc", "hubert-large-ctc"])
def test_mask_rows_match_single_example_runs(speech_checkpoints, waveforms, name: str) -> None:
    """Padding must not change the valid frames much: row i of a masked batch vs the unpadded clip."""
    path, ref = speech_checkpoints[name]
    model = load_model(path, dtype="float32")
    x, mask = waveforms
    with torch.no_grad():
        batch = model(input_values=x, attention_mask=mask)
        n = int(mask[2].sum())
        single = model(input_values=x[2:3, :n], attention_mask=mask[2:3, :n])
        expected = ref(x[2:3, :n], attention_mask=mask[2:3, :n]).last_hidden_state
    frames = int(batch.attention_mask[2].sum())
    assert single.last_hidden_state.shape[1] == frames
    torch.testing.assert_close(single.last_hidden_state, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["w2v-base-ctc", "w2v-large-stable", "hubert-batchnorm"])
def test_bfloat16_close_to_float32(speech_checkpoints, waveforms, name: str) -> None:
    path, ref = speech_checkpoints[name]
    model = load_model(path, dtype=torch.bfloat16)
    x, mask = waveforms
    with torch.no_grad():
        expected = ref(x, attention_mask=mask).last_hidden_state
        out = model(input_values=x, attention_mask=mask)
    assert out.last_hidden_state.dtype == torch.bfloat16
    valid = out.attention_mask.bool()
    assert cosine(out.last_hidden_state.float()[valid], expected[valid]) > 0.999


@pytest.mark.parametrize("name", ["w2v-base-ctc", "hubert-base", "w2v-add-adapter"])
def test_contract_attributes(speech_checkpoints, name: str) -> None:
    path, ref = speech_checkpoints[name]
    model = load_model(path, dtype="float32")
    assert type(model).__name__ == "Wav2Vec2Model"
    assert model.modality == "audio" and model.main_input_name == "input_values"
    assert model.num_prefix_tokens == 0 and model.has_pooler is False
    assert model.hidden_size == (24 if name == "w2v-add-adapter" else 32)
    # the weight norm's magnitude (g) is folded into the conv weight at load time
    skipped = ("masked_spec_embed", "weight.original0", "weight_g")
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for n, p in ref.named_parameters() if not n.endswith(skipped)
    )
