"""Text inputs and text search with a model that has a text tower (a tiny CLIP with a tokenizer)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from featx.search import exact_search
from featx.serve.app import create_app

from ._helpers import b64, stored_vectors

TEXTS = ["a photo of a dog", "a photo of a red car", "ein Hund am Strand", "emoji 😀 test"]


@pytest.fixture(scope="module")
def text_tower(clip):
    from featx.text import load_text_embedder

    return load_text_embedder(clip, dtype="float32")


@pytest.fixture(scope="module")
def clip_client(clip_out):
    from featx.serve.service import ServeConfig, Service

    svc = Service(ServeConfig(out=str(clip_out), dtype="float32", max_wait_ms=1))
    with TestClient(create_app(svc)) as c:
        yield c


def test_info_says_text_search_works(clip_client):
    info = clip_client.get("/v1/info").json()
    assert info["text"] is True and info["text_search"] is True and info["text_reason"] is None
    assert info["text_dim"] == info["row_dim"] == info["dim"] == 16


def test_text_embeddings_equal_the_text_tower(clip_client, text_tower, photos, clip_out):
    _, paths = photos
    expected = text_tower.embed(TEXTS)
    body = clip_client.post("/v1/embeddings", json={"input": TEXTS}).json()
    assert body["errors"] == 0
    got = np.array([d["embedding"] for d in body["data"]], np.float32)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # texts and images mixed in one request, in their order
    mixed = [TEXTS[0], b64(paths[3]), {"type": "text", "text": TEXTS[2]}, b64(paths[5])]
    data = clip_client.post("/v1/embeddings", json={"input": mixed}).json()["data"]
    stored = stored_vectors(clip_out)
    np.testing.assert_allclose(data[0]["embedding"], expected[0], atol=1e-6)
    np.testing.assert_allclose(data[1]["embedding"], stored[paths[3]], atol=1e-6)
    np.testing.assert_allclose(data[2]["embedding"], expected[2], atol=1e-6)
    np.testing.assert_allclose(data[3]["embedding"], stored[paths[5]], atol=1e-6)
    (single,) = clip_client.post("/v1/embeddings", json={"input": TEXTS[1]}).json()["data"]
    np.testing.assert_allclose(single["embedding"], expected[1], atol=1e-6)


@pytest.mark.parametrize("k", [1, 4, 20])
def test_text_search_equals_exact_search(clip_client, text_tower, clip_out, k):
    for text in TEXTS[:3]:
        hits = clip_client.post("/v1/search", json={"text": text, "k": k}).json()["results"]
        expected = exact_search(clip_out, text_tower.embed([text]), k)[0]
        assert [h["path"] for h in hits] == [h.path for h in expected]
        np.testing.assert_allclose([h["score"] for h in hits], [h.score for h in expected], atol=1e-6)


def test_text_search_by_form_field_and_image_search_still_work(clip_client, photos):
    _, paths = photos
    r = clip_client.post("/v1/search", files={"text": (None, "a photo of a dog")}, data={"k": "2"})
    assert r.status_code == 200 and len(r.json()["results"]) == 2
    hits = clip_client.post("/v1/search", json={"image": b64(paths[6]), "k": 1}).json()["results"]
    assert hits[0]["path"] == paths[6]


def test_rows_in_another_space_refuse_text_search(clip, out, photos):
    """OUT embedded with a vision-only model cannot be searched with a CLIP text tower."""
    from featx.serve.service import ServeConfig, Service
    from featx.text import load_text_embedder

    svc = Service(ServeConfig(out=str(out), dtype="float32"), text_embedder=load_text_embedder(clip, dtype="float32"))
    with TestClient(create_app(svc)) as c:
        assert c.get("/v1/info").json()["text_search"] is False
        r = c.post("/v1/search", json={"text": "a dog"})
        assert r.status_code == 422 and "joint" in r.json()["detail"]
