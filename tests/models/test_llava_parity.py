"""LLaVA 1.5 visual tokens vs transformers' ``get_image_features`` (float32), and partial loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from featx.errors import ConfigError
from featx.models import ModelConfigError, load_model
from featx.models.llava import LlavaVisualTokens, feature_layers

from ._llava_fixtures import build_llava, reference_features

CASES = {
    "default": {},
    "full": dict(vision_feature_select_strategy="full"),
    "last-layer": dict(vision_feature_layer=-1),
    "embeddings": dict(vision_feature_layer=0),
    "first-layer": dict(vision_feature_layer=1),
    "layer-list": dict(vision_feature_layer=[-2, -3]),
    "no-bias-relu": dict(multimodal_projector_bias=False, projector_hidden_act="relu"),
    "quick-gelu-tower": dict(vision=dict(hidden_act="quick_gelu"), projector_hidden_act="gelu_pytorch_tanh"),
}


@pytest.fixture(scope="module", params=list(CASES))
def llava(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"llava-{request.param}")
    ref = build_llava(folder, seed=len(request.param), **CASES[request.param])
    return folder, ref


def _checkpoint_bytes(folder) -> tuple[int, int]:
    """(all tensors' bytes, the language model's), from the safetensors header alone."""
    from safetensors import safe_open

    total = language = 0
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        for k in fh.keys():
            sl = fh.get_slice(k)
            size = int(np.prod(sl.get_shape())) * 4  # the tiny checkpoints are float32
            total += size
            language += size if k.startswith(("language_model.", "lm_head.")) else 0
    return total, language


@pytest.mark.parametrize("batch", [1, 3])
def test_tokens_match_get_image_features(llava, batch):
    folder, ref = llava
    model = load_model(folder, dtype="float32")
    pixels = torch.randn(batch, 3, 28, 28, generator=torch.Generator().manual_seed(batch))
    expected = torch.stack(reference_features(ref, pixels))
    with torch.no_grad():
        got = model(pixels).last_hidden_state
    assert got.shape == expected.shape
    assert got.shape[1] == model.num_tokens
    assert (got - expected).abs().max().item() <= 1e-5


def test_only_the_vision_tower_and_projector_are_read(llava):
    folder, ref = llava
    model = load_model(folder, dtype="float32")
    assert model.tensors_read and not any("language_model" in k or "lm_head" in k for k in model.tensors_read)
    # the bytes read are exactly the tensors the model holds, none of the language model's
    assert model.bytes_read == sum(p.numel() * 4 for p in model.parameters())
    total, language = _checkpoint_bytes(folder)
    assert language > 0 and model.bytes_read <= total - language


def test_layers_past_the_selected_one_are_not_built(tmp_path):
    build_llava(tmp_path, vision_feature_layer=1)
    model = load_model(tmp_path, dtype="float32")
    assert len(model.tower.encoder.layers) == 1
    assert not any(".layers.1." in k or ".layers.2." in k for k in model.tensors_read)


def _rewrite(folder, out, rename, shards=1):
    """The checkpoint of ``folder`` with its tensor names renamed (and split into shards)."""
    from safetensors.torch import load_file, save_file

    state = {rename(k): v.contiguous() for k, v in load_file(str(folder / "model.safetensors")).items()}
    out.mkdir()
    (out / "config.json").write_text((folder / "config.json").read_text())
    (out / "preprocessor_config.json").write_text((folder / "preprocessor_config.json").read_text())
    if shards == 1:
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        return out
    names = sorted(state)
    weight_map = {}
    for i in range(shards):
        part = names[i::shards]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: state[k] for k in part}, str(out / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return out


@pytest.mark.parametrize("layout", ["model-prefix", "vision-model-prefix", "sharded"])
def test_checkpoint_layouts(tmp_path, layout):
    ref = build_llava(tmp_path / "src")
    if layout == "model-prefix":  # transformers 5's in-memory names
        folder = _rewrite(tmp_path / "src", tmp_path / "out",
                          lambda k: k if k.startswith("lm_head") else "model." + k.replace("language_model.model.", "language_model."))
    elif layout == "vision-model-prefix":  # the llava-hf checkpoints' names
        folder = _rewrite(tmp_path / "src", tmp_path / "out", lambda k: k.replace("vision_tower.", "vision_tower.vision_model."))
    else:
        # the language model alone in the later shards: only the first is opened
        folder = _rewrite(tmp_path / "src", tmp_path / "out", lambda k: k, shards=3)
    model = load_model(folder, dtype="float32")
    pixels = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        got = model(pixels).last_hidden_state
    expected = torch.stack(reference_features(ref, pixels))
    assert (got - expected).abs().max().item() <= 1e-5
    assert not any("language_model" in k for k in model.tensors_read)


def test_pipeline_visual_tokens_matches_processor_and_model(llava):
    import transformers as tf
    from PIL import Image

    import featx

    folder, ref = llava
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in [(40, 30), (28, 28), (90, 33)]]
    pipe = featx.pipeline("visual-tokens", model=folder, dtype="float32")
    got = pipe(images, batch_size=2)
    pixels = tf.CLIPImageProcessorPil.from_pretrained(folder)(images, return_tensors="pt")["pixel_values"]
    for g, e in zip(got, reference_features(ref, pixels)):
        assert g.dtype == np.float32 and g.shape == tuple(e.shape)
        assert np.abs(g - e.numpy()).max() <= 1e-5
    single = pipe(images[0])
    assert np.abs(single - got[0]).max() <= 1e-6


def test_feature_layer_indices():
    assert feature_layers(-2, 24) == (23,)
    assert feature_layers([-2, -5, 3], 24) == (23, 20, 3)
    assert feature_layers(0, 24) == (0,)
    for bad in (25, -26, "x", True, [], [1.5]):
        with pytest.raises(ModelConfigError, match="vision_feature_layer"):
            feature_layers(bad, 24)


@pytest.mark.parametrize("patch, field", [
    ({"vision_feature_select_strategy": "cls"}, "vision_feature_select_strategy"),
    ({"projector_hidden_act": "nope"}, "projector_hidden_act"),
    ({"vision_feature_layer": 9}, "vision_feature_layer"),
    ({"text_config": {"hidden_size": 0}}, "text_config.hidden_size"),
])
def test_bad_configs_name_the_field(patch, field):
    config = {"model_type": "llava", "vision_config": {"model_type": "clip_vision_model", "num_hidden_layers": 2,
                                                       "hidden_size": 32, "num_attention_heads": 4}, **patch}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        with torch.device("meta"):
            LlavaVisualTokens.from_config(config)


def test_llava_next_needs_image_sizes(tmp_path):
    build_llava(tmp_path, next=True)
    model = load_model(tmp_path, dtype="float32")
    with pytest.raises(Exception, match="image_sizes"):
        model(torch.zeros(1, 5, 3, 28, 28))


def test_shards_of_the_language_model_alone_are_not_opened(tmp_path):
    from safetensors.torch import load_file, save_file

    from featx.models.partial import checkpoint_files

    ref = build_llava(tmp_path / "src")
    state = load_file(str(tmp_path / "src" / "model.safetensors"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text((tmp_path / "src" / "config.json").read_text())
    weight_map = {}
    for name, keep in (("model-00001-of-00002.safetensors", False), ("model-00002-of-00002.safetensors", True)):
        part = {k: v.contiguous() for k, v in state.items() if k.startswith(("language_model.", "lm_head.")) == keep}
        save_file(part, str(out / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    model = load_model(out, dtype="float32")
    assert [p.name for p in checkpoint_files(out, wanted=model.wanted)] == ["model-00001-of-00002.safetensors"]
    pixels = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        assert (model(pixels).last_hidden_state[0] - reference_features(ref, pixels)[0]).abs().max().item() <= 1e-5
