"""LLaVA-NeXT: tiles through the tower, unpadded and packed with image_newline, vs transformers'
``get_image_features`` (float32), over many image shapes; the packing functions alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from featx.models import load_model
from featx.models.llava import (
    pack_tiles,
    select_best_resolution,
    tile_count,
    unpad_features,
)

from ._llava_fixtures import PINPOINTS, build_llava, reference_features

SIZES = [(30, 40), (28, 28), (100, 33), (7, 90), (61, 61), (200, 90), (29, 85), (56, 28)]


CASES = {"default": {}, "layer-list": dict(vision_feature_layer=[-1, -3]),
         "first-layer-relu": dict(vision_feature_layer=1, projector_hidden_act="relu")}


@pytest.fixture(scope="module", params=list(CASES))
def next_ckpt(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"llava-next-{request.param}")
    ref = build_llava(folder, next=True, seed=3, **CASES[request.param])
    return folder, ref


def test_full_strategy_with_a_class_token_is_refused(tmp_path):
    from featx.models import ModelConfigError

    build_llava(tmp_path, next=True, vision_feature_select_strategy="full")
    with pytest.raises(ModelConfigError, match="vision_feature_select_strategy"):
        load_model(tmp_path, dtype="float32")


def _images(sizes, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


def test_packed_features_match_get_image_features(next_ckpt):
    import transformers as tf

    folder, ref = next_ckpt
    model = load_model(folder, dtype="float32")
    assert model.num_tokens is None
    images = _images(SIZES)
    batch = tf.LlavaNextImageProcessorPil.from_pretrained(folder)(images, return_tensors="pt")
    expected = reference_features(ref, batch["pixel_values"], batch["image_sizes"])
    with torch.no_grad():
        out = model(batch["pixel_values"], batch["image_sizes"])
    for i, e in enumerate(expected):
        n = int(out.attention_mask[i].sum())
        assert n == e.shape[0]
        assert (out.last_hidden_state[i, :n] - e).abs().max().item() <= 1e-5
        assert not out.last_hidden_state[i, n:].any()  # padding past an image's tokens is zero


def test_pipeline_matches_the_reference_end_to_end(next_ckpt):
    import transformers as tf

    import featx

    folder, ref = next_ckpt
    images = _images(SIZES[:5], seed=1)
    got = featx.pipeline("visual-tokens", model=folder, dtype="float32")(images, batch_size=3)
    batch = tf.LlavaNextImageProcessorPil.from_pretrained(folder)(images, return_tensors="pt")
    for g, e in zip(got, reference_features(ref, batch["pixel_values"], batch["image_sizes"])):
        assert g.shape == tuple(e.shape)
        assert np.abs(g - e.numpy()).max() <= 1e-5


def test_only_vision_and_projector_and_newline_are_read(next_ckpt):
    folder, _ = next_ckpt
    model = load_model(folder, dtype="float32")
    assert "image_newline" in model.tensors_read
    assert not any("language_model" in k or "lm_head" in k for k in model.tensors_read)
    assert model.bytes_read == sum(p.numel() * 4 for p in model.parameters())


@pytest.mark.parametrize("size", [(30, 40), (100, 33), (7, 90), (1000, 10), (10, 1000), (56, 56), (1, 1)])
def test_select_best_resolution_matches_the_reference(size):
    from transformers.image_processing_utils import select_best_resolution as ref

    pins = PINPOINTS + [[336, 672], [672, 336], [1008, 336]]
    assert select_best_resolution(size, pins) == tuple(ref(size, pins))


@pytest.mark.parametrize("size", SIZES)
def test_tile_count_and_unpad_match_the_reference(size):
    from transformers.models.llava_next.modeling_llava_next import (
        image_size_to_num_patches,
        unpad_image,
    )

    assert tile_count(size, PINPOINTS, 28) == image_size_to_num_patches(size, PINPOINTS, 28)
    grid = torch.randn(5, 8, 12)
    assert torch.equal(unpad_features(grid, size), unpad_image(grid, size))


def test_pack_without_newline_and_single_tile():
    feats = torch.randn(1, 16, 6)
    assert torch.equal(pack_tiles(feats, (28, 28), PINPOINTS, 28, 4, None), feats[0])
    newline = torch.randn(6)
    packed = pack_tiles(feats, (28, 28), PINPOINTS, 28, 4, newline)
    assert packed.shape == (17, 6) and torch.equal(packed[-1], newline)
