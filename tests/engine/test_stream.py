"""`Embedder.iter_embed` on the engine's run path: order, errors, windows, a caller's pool."""

from __future__ import annotations

import numpy as np
import pytest

from featx.embedding import EmbedResult, Embedder
from featx.engine.pools import make_pool
from featx.errors import InputError


@pytest.fixture(scope="module")
def vit(tiny_checkpoint):
    return Embedder(tiny_checkpoint("vit"), dtype="float32")


def _images(n):
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (20 + 5 * i, 30, 3), dtype=np.uint8) for i in range(n)]


def test_results_in_order_equal_embed(vit):
    images = _images(7)
    got = list(vit.iter_embed(images, batch_size=3, workers=2))
    assert [r.index for r in got] == list(range(7)) and all(isinstance(r, EmbedResult) for r in got)
    want = vit.embed([vit.prepare(im) for im in images])
    for r, w in zip(got, want):
        assert r.error is None and r.source is images[r.index]
        np.testing.assert_allclose(r.embedding, w, rtol=1e-5, atol=1e-6)


def test_a_bad_input_fails_alone_or_stops(vit):
    images = _images(4)
    items = [images[0], b"not an image", images[1], np.zeros((2, 2, 2, 2)), images[2]]
    got = list(vit.iter_embed(items, batch_size=2, errors="return"))
    assert [r.error is None for r in got] == [True, False, True, False, True]
    assert "not an image" not in (got[1].error or "") or got[1].embedding is None
    with pytest.raises(InputError):
        list(vit.iter_embed(items, batch_size=2))
    with pytest.raises(Exception, match="errors must be"):
        list(vit.iter_embed(items, errors="ignore"))


def test_a_batch_the_model_rejects_is_retried_one_by_one(vit, monkeypatch):
    images = _images(3)
    prepared = [vit.prepare(im) for im in images]
    prepared[1] = {"pixel_values": np.zeros((1, 3, 8, 8), np.float32)}  # a size the batch cannot stack
    outcomes = vit.embed_outcomes(prepared, batch_size=3)
    assert isinstance(outcomes[0], np.ndarray) and isinstance(outcomes[2], np.ndarray)
    assert isinstance(outcomes[1], Exception)
    np.testing.assert_allclose(outcomes[0], vit.embed(prepared[:1])[0], rtol=1e-5, atol=1e-6)


def test_out_of_memory_is_raised_not_blamed_on_an_input(vit, monkeypatch):
    def boom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(vit, "embed", boom)
    with pytest.raises(MemoryError):
        vit.embed_outcomes([vit.prepare(_images(1)[0])] * 2)


def test_a_pool_of_the_caller_is_used_and_left_open(vit):
    pool = make_pool("thread", vit, 2)
    try:
        first = [r.embedding for r in vit.iter_embed(_images(3), pool=pool)]
        second = [r.embedding for r in vit.iter_embed(_images(3), pool=pool)]  # still usable
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)
    finally:
        pool.shutdown()


def test_audio_windows_with_offsets(tiny_checkpoint):
    emb = Embedder(tiny_checkpoint("wav2vec2"), dtype="float32")
    rate = 16000
    waves = [(0.1 * np.random.default_rng(i).standard_normal(n)).astype(np.float32)
             for i, n in enumerate((rate, 31 * rate))]
    got = list(emb.iter_embed([(w, rate) for w in waves], per_window=True, batch_size=2))
    assert got[0].embedding.shape == (1, emb.dim) and got[1].embedding.shape == (2, emb.dim)
    assert got[1].offsets.tolist() == [[0, 30 * rate], [30 * rate, 31 * rate]]
