"""`featx.text.load_text_embedder` / `featx.embed_text`: normalized joint-space vectors equal to the
reference's get_text_features, and the errors of checkpoints without a text tower."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import featx
from featx.errors import ConfigError, InputError
from featx.text import TextEmbedder, load_text_embedder

tf = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore:This sequence already has")

TEXTS = ["a photo of a red car", "", "Café naïve 😀 🎉 猫の写真!!", "x " * 300, "a dog", "</s>", "  "]


def _reference(folder, texts, kind):
    model = tf.AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    kw = {"padding": "max_length", "max_length": 64} if kind == "siglip" else {"padding": True}
    with torch.no_grad():
        out = model.get_text_features(**tok(texts, truncation=True, return_tensors="pt", **kw))
    out = getattr(out, "pooler_output", out)
    return torch.nn.functional.normalize(out, dim=-1).numpy()


@pytest.mark.parametrize("kind", ["clip", "siglip"])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_matches_reference(text_checkpoint, kind, batch_size):
    folder = text_checkpoint(kind)
    embedder = load_text_embedder(folder, dtype="float32", device="cpu")
    assert isinstance(embedder, TextEmbedder) and embedder.model_id == str(folder)
    got = embedder.embed(TEXTS, batch_size=batch_size)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), embedder.dim)
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    assert np.abs(got - _reference(folder, TEXTS, kind)).max() < 1e-5


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_bfloat16_cosine(text_checkpoint, kind):
    folder = text_checkpoint(kind)
    got = featx.embed_text(folder, TEXTS, dtype="bfloat16")
    cos = (got * _reference(folder, TEXTS, kind)).sum(1)
    assert cos.min() > 0.999


def test_batches_do_not_change_vectors(text_checkpoint):
    embedder = load_text_embedder(text_checkpoint("clip"), dtype="float32")
    alone = np.stack([embedder.embed([t])[0] for t in TEXTS])
    assert np.abs(embedder.embed(TEXTS, batch_size=4) - alone).max() < 1e-6


def test_no_text_tower(tiny_checkpoint):
    for kind in ("vit", "clip_vision_model", "whisper"):
        with pytest.raises(ConfigError, match="has no text tower"):
            load_text_embedder(tiny_checkpoint(kind))
        with pytest.raises(ConfigError, match="has no text tower"):
            featx.embed_text(tiny_checkpoint(kind), ["a"])


def test_inputs(text_checkpoint):
    embedder = load_text_embedder(text_checkpoint("siglip"), dtype="float32")
    assert embedder.embed([]).shape == (0, embedder.dim)
    with pytest.raises(InputError, match="list of texts"):
        embedder.embed("one string")
    with pytest.raises(InputError, match="string"):
        embedder.embed([3])


def test_joint_image_and_text_spaces_meet(text_checkpoint):
    """The image embedder's default ("joint") lives in the text embedder's space."""
    from featx.embedding import Embedder

    folder = text_checkpoint("clip")
    image = Embedder(folder, dtype="float32")
    assert image.pool == "joint" and image.dim == load_text_embedder(folder).dim == 16
