"""`featx.audio.chunk` against transformers' ASR pipeline windowing (``chunk_iter``)."""

from __future__ import annotations

import numpy as np
import pytest

from featx.audio import chunk

asr = pytest.importorskip("transformers.pipelines.automatic_speech_recognition")


class Identity:
    """A stand-in feature extractor: returns the window itself."""

    sampling_rate = 1000

    def __call__(self, x, **kwargs):
        return {"x": x}


@pytest.mark.parametrize("n", [1, 9, 10, 11, 59, 60, 61, 100, 257])
@pytest.mark.parametrize("size, left, right", [(10, 0, 0), (10, 2, 2), (10, 1, 3), (25, 5, 0), (7, 3, 3)])
def test_windows_match_chunk_iter(n, size, left, right):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    ref = list(asr.chunk_iter(x, Identity(), size, left, right))
    ours = list(chunk(x, size / 1000, (left / 1000, right / 1000), sampling_rate=1000))
    assert len(ours) == len(ref)
    for w, r in zip(ours, ref):
        np.testing.assert_array_equal(w.samples, r["x"])
        assert (len(w), w.stride_left, w.stride_right) == r["stride"]
        assert w.is_last == r["is_last"]
