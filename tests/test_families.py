"""Every registered model family: its spec is consistent, and its tiny checkpoint runs through it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from featx.errors import ConfigError
from featx.families import (AudioFamily, FamilySpec, ImageFamily, TextFamily, families, family_for, model_types,
                            register_family)
from featx.models import EncoderModel, load_model
from featx.pooling import POOLINGS, check_pool, default_pool
from featx.registry import lookup

# model types the tests' checkpoint builder makes (tests/checkpoints.py)
BUILT = ("vit", "deit", "dinov2", "clip", "clip_vision_model", "siglip_vision_model", "whisper",
         "audio-spectrogram-transformer", "wav2vec2")


@pytest.mark.parametrize("spec", families(), ids=lambda s: s.name)
def test_spec_is_consistent(spec):
    assert isinstance(spec, (ImageFamily, AudioFamily, TextFamily)) and spec.modality in ("image", "audio", "text")
    if spec.modality != "text":  # text families name the reference's tokenizer class
        kind = "image_processor" if spec.modality == "image" else "feature_extractor"
        assert lookup(kind, spec.processor).__name__ == spec.processor
    assert spec.default_pool in POOLINGS
    # a text family also runs the text tower of the full checkpoints whose image family names it
    towers = {t for t in model_types() if family_for(t).text_tower(t) is spec}
    assert set(spec.encoders) <= set(spec.model_types) | towers
    for model_type in spec.model_types:
        assert family_for(model_type) is spec
        cls = spec.encoder_class(model_type)
        if model_type in spec.encoders:
            assert issubclass(cls, EncoderModel)
            assert cls.modality == spec.modality and cls.main_input_name == spec.main_input
        else:
            assert cls is None


def test_every_natively_run_type_has_a_checkpoint_test():
    natively = {t for s in families() for t in s.encoders}
    # these are built by tests/models (test_vit_parity, test_clip_parity, _audio_fixtures; the text
    # towers by test_clip_text_parity)
    assert natively - set(BUILT) == {"dinov2_with_registers", "siglip", "hubert", "clip_text_model",
                                     "siglip_text_model",
                                     "llava", "llava_next"}  # tests/models/test_llava*_parity.py


@pytest.mark.parametrize("model_type", BUILT)
def test_tiny_checkpoint_through_its_family(tiny_checkpoint, model_type):
    from featx.embedding import Embedder

    folder = tiny_checkpoint(model_type)
    spec = family_for(model_type)
    model = load_model(folder, dtype="float32")
    assert model.featx_family is spec
    pool = default_pool(model)
    assert check_pool(model, pool) == pool
    emb = Embedder(folder, dtype="float32")
    assert emb.pool == pool and emb.modality == spec.modality and emb.input_name == spec.main_input
    if spec.modality == "image":
        src = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    else:
        src = (0.1 * np.random.default_rng(0).standard_normal(16000 * 2)).astype(np.float32)
    prepared = spec.prepare(emb.processor, src)
    assert spec.main_input in prepared
    (vec,) = emb.embed([prepared])
    assert vec.shape == (emb.dim,) and np.isfinite(vec).all()


def test_a_model_type_claimed_twice_is_an_error():
    with pytest.raises(ConfigError, match="claimed by"):
        register_family(ImageFamily(name="copy", model_types=("vit",), processor="ViTImageProcessor"))
    assert family_for("vit").name == "vit"


def test_the_bare_base_class_is_not_a_spec_kind():
    with pytest.raises(ConfigError, match="ImageFamily or AudioFamily"):
        register_family(FamilySpec(name="nothing", model_types=("nothing-at-all",), processor="X"))
    assert "nothing-at-all" not in model_types()


def test_unknown_model_type_lists_the_known_ones():
    with pytest.raises(ConfigError, match="vit"):
        family_for("no-such-model")


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        family_for("vit").default_pool = "mean"  # type: ignore[misc]
