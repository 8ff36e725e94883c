"""CLIP and SigLIP text towers and joint image features against transformers' get_text_features /
get_image_features, from full and text-only checkpoints.

(The reference warns about texts that already end with </s>; the sweep has one on purpose.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featx.errors import ConfigError, InputError
from featx.models import load_model
from featx.models.text import CLIPTextModel, SiglipTextModel
from featx.text.tokenization import AutoTokenizer

tf = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore:This sequence already has")

TEXTS = ["a photo of a red car", "", "Café naïve 😀 🎉 猫の写真!!", "x " * 200, "a dog", "the dog runs on the beach",
         "It's what we'd've done", "</s> twice </s>"]


def _reference(folder):
    return tf.AutoModel.from_pretrained(folder, dtype=torch.float32).eval()


@pytest.fixture(scope="module", params=["clip", "siglip"])
def full(request, text_checkpoint):
    folder = text_checkpoint(request.param)
    return request.param, folder, _reference(folder), tf.AutoTokenizer.from_pretrained(folder)


def _ref_text(model, inputs):
    with torch.no_grad():
        out = model.get_text_features(**inputs)
    return out.pooler_output if hasattr(out, "pooler_output") else out  # a ModelOutput in transformers 5


def _max_diff(a, b) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@pytest.mark.parametrize("padding", [True, "max_length"])
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_text_features_float32(full, padding, batch):
    kind, folder, ref, tok = full
    model = load_model(folder, dtype="float32", text=True)
    assert isinstance(model, CLIPTextModel if kind == "clip" else SiglipTextModel)
    inputs = tok(TEXTS[:batch], padding=padding, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    assert _max_diff(out.text_embeds, _ref_text(ref, inputs)) < 1e-5
    with torch.no_grad():
        hidden = ref.text_model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].bool()
    if kind == "clip":  # causal: real tokens never see padding; padding rows are not compared
        assert _max_diff(out.last_hidden_state[mask], hidden[mask]) < 1e-5
    else:
        assert _max_diff(out.last_hidden_state, hidden) < 1e-5


def test_text_features_without_mask(full):
    _, folder, ref, tok = full
    model = load_model(folder, dtype="float32", text=True)
    ids = tok(TEXTS[:4], padding="max_length", max_length=24, truncation=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert _max_diff(model(input_ids=ids).text_embeds, _ref_text(ref, {"input_ids": ids})) < 1e-5


def test_bfloat16_cosine(full):
    _, folder, ref, tok = full
    model = load_model(folder, dtype="bfloat16", text=True)
    inputs = tok(TEXTS, padding="max_length", truncation=True, return_tensors="pt")
    with torch.no_grad():
        got = model(**inputs).text_embeds.float()
    cos = torch.nn.functional.cosine_similarity(got, _ref_text(ref, inputs), dim=-1)
    assert cos.min().item() > 0.999


@pytest.mark.parametrize("batch", [1, 4])
def test_joint_image_features(full, pixels, batch):
    _, folder, ref, _ = full
    from featx.pooling import default_pool, pool_output

    model = load_model(folder, dtype="float32")
    assert default_pool(model) == "joint"
    x = pixels(batch, seed=batch)
    with torch.no_grad():
        expected = ref.get_image_features(pixel_values=x)
        expected = expected.pooler_output if hasattr(expected, "pooler_output") else expected
        got = pool_output(model, model(pixel_values=x), "joint")
    assert model.joint_dim == expected.shape[-1]
    assert _max_diff(got, expected) < 1e-5


def test_logit_scale_and_bias(full):
    kind, folder, ref, _ = full
    model = load_model(folder, dtype="float32", text=True)
    scale, bias = model.logit_scale_bias()
    assert scale == pytest.approx(ref.logit_scale.exp().item(), rel=1e-6)
    assert bias == pytest.approx(ref.logit_bias.item() if kind == "siglip" else 0.0, abs=1e-7)


def test_model_contract(full):
    kind, folder, _, _ = full
    model = load_model(folder, dtype="float32", text=True)
    assert model.modality == "text" and model.main_input_name == "input_ids"
    assert model.featx_family.modality == "text" and model.joint_field == "text_embeds"
    names = set(model.state_dict())
    assert not any(n.startswith(("vision", "visual")) for n in names)
    with pytest.raises(InputError, match="at most"):
        model(input_ids=torch.ones(1, 200, dtype=torch.long))
    with pytest.raises(InputError, match=r"\[batch, tokens\]"):
        model(input_ids=torch.ones(5, dtype=torch.long))


def _text_only(kind: str, folder, tmp_path, projection: bool):
    """The full checkpoint's text tower saved as the reference's text-only model."""
    ref = _reference(folder)
    if kind == "clip":
        config = tf.CLIPTextConfig(**{**ref.config.text_config.to_dict(), "projection_dim": ref.config.projection_dim})
        model = (tf.CLIPTextModelWithProjection if projection else tf.CLIPTextModel)(config)
    else:
        model = tf.SiglipTextModel(ref.config.text_config)
    source = ref.state_dict()
    state = {}
    for key in model.state_dict():
        bare = key.removeprefix("text_model.")
        state[key] = next(source[k] for k in (key, f"text_model.{bare}", bare) if k in source)
    model.load_state_dict(state)
    model.eval().save_pretrained(tmp_path, safe_serialization=True)
    return model, ref


@pytest.mark.parametrize(("kind", "projection"), [("clip", True), ("clip", False), ("siglip", True)])
def test_text_only_checkpoints(text_checkpoint, tmp_path, kind, projection):
    folder = text_checkpoint(kind)  # (SiglipTextModel always has its head)
    tok = tf.AutoTokenizer.from_pretrained(folder)
    other, ref = _text_only(kind, folder, tmp_path, projection)
    model = load_model(tmp_path, dtype="float32", text=True)
    inputs = tok(TEXTS, padding="max_length", truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    if projection or kind == "siglip":
        assert _max_diff(out.text_embeds, _ref_text(ref, inputs)) < 1e-5
        assert model.logit is None
        with pytest.raises(InputError, match="logit_scale"):
            model.logit_scale_bias()
    else:  # CLIPTextModel: no projection, so no joint space
        assert out.text_embeds is None and model.joint_dim is None
        with torch.no_grad():
            assert _max_diff(out.pooler_output, other(**inputs).pooler_output) < 1e-5


def test_legacy_eos_id_pools_the_highest_id(text_checkpoint, tmp_path):
    import json
    import shutil

    folder = tmp_path / "legacy"
    shutil.copytree(text_checkpoint("clip"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["eos_token_id"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    ref, tok = _reference(folder), tf.AutoTokenizer.from_pretrained(folder)
    model = load_model(folder, dtype="float32", text=True)
    inputs = tok(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        assert _max_diff(model(**inputs).text_embeds, _ref_text(ref, inputs)) < 1e-5


def test_vision_only_checkpoints_have_no_text_tower(tiny_checkpoint):
    for kind in ("clip_vision_model", "vit"):
        with pytest.raises(ConfigError, match="has no text tower"):
            load_model(tiny_checkpoint(kind), text=True)


def test_vision_only_checkpoints_keep_their_defaults(tiny_checkpoint):
    from featx.pooling import default_pool

    assert default_pool(load_model(tiny_checkpoint("clip_vision_model"))) == "cls"
    assert default_pool(load_model(tiny_checkpoint("siglip_vision_model"))) == "pooler"
    with pytest.raises(ConfigError, match="joint"):
        from featx.pooling import check_pool

        check_pool(load_model(tiny_checkpoint("vit")), "joint")


def test_featx_tokenizer_feeds_the_tower(full):
    _, folder, ref, tok = full
    mine = AutoTokenizer.from_pretrained(folder)
    model = load_model(folder, dtype="float32", text=True)
    got = mine(TEXTS, padding="max_length", truncation=True, return_tensors="pt")
    with torch.no_grad():
        a = model(**got).text_embeds
    assert _max_diff(a, _ref_text(ref, tok(TEXTS, padding="max_length", truncation=True, return_tensors="pt"))) < 1e-5
    assert np.isfinite(a.numpy()).all()
