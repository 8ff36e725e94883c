"""Audio models: audio files as base64 give `featx embed`'s vectors, and per-window rows come back
from search with their window and sample offsets."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from featx.serve.app import create_app

from ._helpers import b64, embed_folder, stored_vectors
from .conftest import make_service


@pytest.fixture(scope="module")
def audio(tiny_checkpoint, tmp_path_factory):
    ast = str(tiny_checkpoint("audio-spectrogram-transformer"))
    folder = tmp_path_factory.mktemp("serve_audio")
    rng = np.random.default_rng(1)
    paths = []
    for i, seconds in enumerate([0.4, 1.0, 2.7]):
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.02 * rng.standard_normal(t.size)
        path = folder / f"clip{i}.wav"
        sf.write(path, wave.astype(np.float32), 16000)
        paths.append(str(path))
    return ast, folder, paths


def test_audio_embeddings_equal_featx_embed(audio, tmp_path):
    from featx.embedding import Embedder

    ast, folder, paths = audio
    out = embed_folder(ast, [folder], tmp_path / "out")
    stored = stored_vectors(out)
    svc = make_service(out, Embedder(ast, dtype="float32"))
    with TestClient(create_app(svc)) as c:
        body = c.post("/v1/embeddings", json={"input": [b64(p) for p in paths] + ["data:audio/wav;base64,AAAA"]}).json()
        for path, item in zip(paths, body["data"]):
            np.testing.assert_allclose(np.asarray(item["embedding"], np.float32), stored[path], rtol=0, atol=1e-6)
        assert body["data"][3]["object"] == "error"
        hits = c.post("/v1/search", json={"image": b64(paths[1]), "k": 3}).json()["results"]
        assert hits[0]["path"] == paths[1] and hits[0]["score"] == pytest.approx(1.0, abs=1e-6)


def test_window_rows_come_back_with_their_offsets(audio, tmp_path):
    from featx.embedding import Embedder

    ast, folder, paths = audio
    out = embed_folder(ast, [folder], tmp_path / "out", "--windows")
    svc = make_service(out, Embedder(ast, dtype="float32"))
    with TestClient(create_app(svc)) as c:
        hits = c.post("/v1/search", json={"image": b64(paths[2]), "k": 20}).json()["results"]
        assert c.get("/v1/info").json()["columns"] == ["end", "start", "window"]
    windows = [h for h in hits if h["path"] == paths[2]]
    assert sorted(h["window"] for h in windows) == [0, 1, 2]  # 2.7 s in 1.295 s windows
    assert all(h["end"] > h["start"] >= 0 for h in hits)
