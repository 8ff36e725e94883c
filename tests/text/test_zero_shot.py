"""``featx.pipeline("zero-shot-image-classification")`` against the reference pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import featx
from featx.errors import InputError
from featx.text.zero_shot import label_scores

tf = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore:This sequence already has")

LABELS = ["cat", "dog", "a red car", "emoji 😀", "Café naïve"]


def _images(n=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (30 + 7 * i, 50, 3), dtype=np.uint8)) for i in range(n)]


@pytest.fixture(scope="module", params=["clip", "siglip"])
def pipes(request, text_checkpoint):
    folder = text_checkpoint(request.param)
    mine = featx.pipeline("zero-shot-image-classification", model=folder, dtype="float32")
    ref = tf.pipeline("zero-shot-image-classification", model=str(folder), dtype=torch.float32)
    return request.param, mine, ref


@pytest.mark.parametrize("template", [None, "{}", "a diagram of {}!"])
def test_matches_reference(pipes, template):
    kind, mine, ref = pipes
    kw = {} if template is None else {"hypothesis_template": template}
    images = _images()
    got = mine(images, candidate_labels=LABELS, **kw)
    expected = ref(images, candidate_labels=LABELS, **kw)
    assert len(got) == len(expected) == 3
    for g, e in zip(got, expected):
        assert [r["label"] for r in g] == [r["label"] for r in e]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(g, e)) < 1e-5
        if kind == "clip":
            assert sum(r["score"] for r in g) == pytest.approx(1.0, abs=1e-5)


def test_single_image_and_one_label(pipes):
    _, mine, ref = pipes
    (image,) = _images(1)
    got = mine(image, candidate_labels=["dog"])
    expected = ref(image, candidate_labels=["dog"])
    assert isinstance(got, list) and set(got[0]) == {"score", "label"}
    assert got[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-5)


def test_paths_and_bad_inputs(pipes, tmp_path):
    _, mine, _ = pipes
    path = tmp_path / "x.png"
    _images(1)[0].save(path)
    assert mine(str(path), candidate_labels="cat, dog")[0]["label"] in ("cat", "dog")
    with pytest.raises(InputError):
        mine(str(path), candidate_labels=[])
    with pytest.raises(InputError):
        mine(str(path), candidate_labels=["cat"], hypothesis_template="no slot")
    with pytest.raises(InputError):
        mine(str(tmp_path / "missing.png"), candidate_labels=["cat"])


def test_score_rules():
    images = np.eye(3, dtype=np.float32)[:2]
    texts = np.eye(3, dtype=np.float32)
    soft = label_scores(images, texts, 10.0, 0.0, "softmax")
    assert np.allclose(soft.sum(1), 1) and soft[0].argmax() == 0
    sig = label_scores(images, texts, 10.0, -5.0, "sigmoid")
    assert sig[0, 0] == pytest.approx(1 / (1 + np.exp(-5.0)), rel=1e-6)
