"""Live windows are `featx.audio.chunk`'s windows over the whole audio, whatever the block sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featx.audio import chunk
from featx.errors import ConfigError
from featx.live.windows import LiveWindows, window_sizes


def _live(wave, size, hop, cuts):
    w = LiveWindows(size, hop)
    out = []
    pos = 0
    for cut in sorted(cuts) + [len(wave)]:
        out += list(w.push(wave[pos:cut], 0.0))
        pos = max(pos, cut)
    out += list(w.finish(0.0))
    return out


def _reference(wave, size_s, hop_s, rate):
    return list(chunk(wave, chunk_length_s=size_s, stride_length_s=(size_s - hop_s, 0), sampling_rate=rate))


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 400), size=st.integers(1, 60), hop_frac=st.floats(0.05, 1.0),
       cuts=st.lists(st.integers(0, 400), max_size=8))
def test_same_windows_as_chunk(n, size, hop_frac, cuts):
    rate = 100
    hop = max(1, int(round(size * hop_frac)))
    size_s, hop_s = size / rate, hop / rate
    assert window_sizes(size_s, hop_s, rate) == (size, hop)
    wave = np.arange(n, dtype=np.float32)
    got = _live(wave, size, hop, [c for c in cuts if c <= n])
    want = _reference(wave, size_s, hop_s, rate)
    assert [(w.start, w.end) for w in got] == [(w.start, w.end) for w in want]
    for g, r in zip(got, want):
        np.testing.assert_array_equal(g.samples, r.samples)
    assert [w.index for w in got] == list(range(len(got)))
    assert all(not w.is_last or w.end == n for w in got)


def test_window_given_out_as_soon_as_complete():
    w = LiveWindows(4, 4)
    assert w.needed() == 4
    assert list(w.push(np.ones(3, np.float32), 1.0)) == []
    assert w.needed() == 1
    [first] = list(w.push(np.ones(1, np.float32), 2.0))  # no need to see a sample past the window
    assert (first.start, first.end, first.read_at) == (0, 4, 2.0)


@pytest.mark.parametrize("window, hop", [(1.0, 0.0), (1.0, 1.5), (1.0, -1.0)])
def test_bad_hops(window, hop):
    with pytest.raises(ConfigError, match="--hop-s"):
        window_sizes(window, hop, 16000)
