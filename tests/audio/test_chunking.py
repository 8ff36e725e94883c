"""`featx.audio.chunk`: window offsets, strides, the last window, streaming == whole array."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from featx.audio import Window, chunk, window_params
from featx.errors import InputError


def spans(windows):
    return [(w.start, w.end, w.stride_left, w.stride_right, w.is_last) for w in windows]


def split(x, sizes):
    """Cut x into blocks of the given sizes (cycled), including empty blocks."""
    blocks, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        blocks.append(x[i : i + n])
        i += n
        k += 1
    return blocks


def test_back_to_back_windows_and_short_last():
    x = np.arange(25, dtype=np.float32)
    ws = list(chunk(x, 1.0, sampling_rate=10))
    assert spans(ws) == [(0, 10, 0, 0, False), (10, 20, 0, 0, False), (20, 25, 0, 0, True)]
    for w in ws:
        np.testing.assert_array_equal(w.samples, x[w.start : w.end])
        assert len(w) == len(w.samples)
        assert np.shares_memory(w.samples, x)  # views, not copies


def test_stride_is_context_on_each_side():
    x = np.arange(23.0)
    ws = list(chunk(x, 1.0, 0.2, sampling_rate=10))
    # chunk 10, 2 samples of context each side: step 6, neighbours overlap by 4.
    assert spans(ws) == [(0, 10, 0, 2, False), (6, 16, 2, 2, False), (12, 22, 2, 2, False), (18, 23, 2, 0, True)]
    assert [w.keep for w in ws] == [(0, 8), (8, 14), (14, 20), (20, 23)]
    ws = list(chunk(x, 1.0, (0.1, 0.3), sampling_rate=10))
    assert spans(ws)[:2] == [(0, 10, 0, 3, False), (6, 16, 1, 3, False)]


def test_last_fit_moves_the_last_window_back():
    x = np.arange(23.0)
    ws = list(chunk(x, 1.0, 0.2, sampling_rate=10, last="fit"))
    assert spans(ws)[-1] == (13, 23, 7, 0, True)
    assert ws[-1].keep == (20, 23)
    np.testing.assert_array_equal(ws[-1].samples, x[13:])
    # Shorter than one chunk: one short window either way.
    assert spans(chunk(x[:7], 1.0, last="fit", sampling_rate=10)) == [(0, 7, 0, 0, True)]


def test_edge_lengths():
    assert list(chunk(np.zeros(0), 1.0)) == []
    assert spans(chunk(np.zeros(1), 1.0)) == [(0, 1, 0, 0, True)]
    assert spans(chunk(np.zeros(16000), 1.0)) == [(0, 16000, 0, 0, True)]  # exactly one chunk
    assert spans(chunk(np.zeros(16001), 1.0)) == [(0, 16000, 0, 0, False), (16000, 16001, 0, 0, True)]
    assert spans(chunk(iter([]), 1.0)) == []
    assert spans(chunk(iter([np.zeros(0), np.zeros(0)]), 1.0)) == []


def test_long_audio_30s_windows_for_whisper():
    sr = 16000
    x = np.zeros(75 * sr, dtype=np.float32)
    ws = list(chunk(x, 30.0, 5.0, sampling_rate=sr))
    assert [(w.start // sr, w.end // sr) for w in ws] == [(0, 30), (20, 50), (40, 70), (60, 75)]


def test_input_kinds():
    x = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    ref = spans(chunk(x, 1.0, 0.1, sampling_rate=20))
    assert spans(chunk(torch.from_numpy(x), 1.0, 0.1, sampling_rate=20)) == ref
    assert spans(chunk(x.tolist(), 1.0, 0.1, sampling_rate=20)) == ref
    assert spans(chunk([x[:13], x[13:]], 1.0, 0.1, sampling_rate=20)) == ref  # a list of blocks
    assert spans(chunk([torch.from_numpy(x[:5]), x[5:].tolist()], 1.0, 0.1, sampling_rate=20)) == ref
    w = next(iter(chunk(x.tolist(), 1.0, sampling_rate=20)))
    assert isinstance(w, Window) and w.samples.dtype == np.float32


@pytest.mark.parametrize(
    "args, kw, match",
    [
        ((np.zeros(5), 0), {}, "chunk_length_s"),
        ((np.zeros(5), -1.0), {}, "chunk_length_s"),
        ((np.zeros(5), 1e-6), {}, "less than one sample"),
        ((np.zeros(5), 1.0, 0.5), {}, "half the chunk length"),
        ((np.zeros(5), 1.0, (0.9, 0.2)), {}, "no step"),
        ((np.zeros(5), 1.0, -0.1), {}, ">= 0"),
        ((np.zeros(5), 1.0, (0.1,)), {}, "pair"),
        ((np.zeros(5), 1.0), dict(sampling_rate=0), "sampling_rate"),
        ((np.zeros(5), 1.0), dict(last="pad"), "'short' or 'fit'"),
        ((np.zeros((5, 2)), 1.0), {}, "mono"),
        ((42, 1.0), {}, "iterable of blocks"),
    ],
)
def test_errors(args, kw, match):
    with pytest.raises(InputError, match=match):
        list(chunk(*args, **kw))


def test_bad_block_in_stream_is_named():
    with pytest.raises(InputError, match="waveform block 1"):
        list(chunk(iter([np.zeros(3), np.zeros((3, 2))]), 1.0, sampling_rate=4))


def test_window_params_rounds_to_samples():
    assert window_params(30.0, 5.0, 16000) == (480000, 80000, 80000)
    assert window_params(10.24, (1.0, 0.5), 16000) == (163840, 16000, 8000)
    assert window_params(0.1, 0, 22050) == (2205, 0, 0)


def check_windows(ws, x, size, left, right, last):
    n = len(x)
    if n == 0:
        assert ws == []
        return
    assert ws[-1].is_last and not any(w.is_last for w in ws[:-1])
    assert ws[0].start == 0 and ws[0].stride_left == 0 and ws[-1].end == n and ws[-1].stride_right == 0
    for w in ws:
        np.testing.assert_array_equal(w.samples, x[w.start : w.end])
        assert 0 <= w.start < w.end <= n
        assert len(w) <= size
    for w in ws[:-1]:
        assert len(w) == size and w.stride_right == right
    for a, b in zip(ws, ws[1:]):
        assert b.start > a.start
    if last == "short":
        for a, b in zip(ws, ws[1:]):
            assert b.start - a.start == size - left - right and b.stride_left == left
    elif n >= size:
        assert len(ws[-1]) == size
    # The context-free spans tile [0, n) exactly: every sample is owned by one window.
    keeps = [w.keep for w in ws]
    assert keeps[0][0] == 0 and keeps[-1][1] == n
    assert all(k[0] < k[1] for k in keeps)
    assert all(a[1] == b[0] for a, b in zip(keeps, keeps[1:]))


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 400),
    size=st.integers(1, 60),
    left=st.integers(0, 30),
    right=st.integers(0, 30),
    block_sizes=st.lists(st.integers(0, 90), min_size=1, max_size=6).filter(any),
    last=st.sampled_from(["short", "fit"]),
)
def test_streaming_equals_whole_and_windows_cover_everything(n, size, left, right, block_sizes, last):
    if left + right >= size:
        left, right = 0, 0
    sr = 1000  # lengths in ms == samples
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    kw = dict(sampling_rate=sr, last=last)
    stride = (left / sr, right / sr)
    whole = list(chunk(x, size / sr, stride, **kw))
    check_windows(whole, x, size, left, right, last)
    streamed = list(chunk(iter(split(x, block_sizes)), size / sr, stride, **kw))
    assert spans(streamed) == spans(whole)
    assert [w.keep for w in streamed] == [w.keep for w in whole]
    for a, b in zip(streamed, whole):
        np.testing.assert_array_equal(a.samples, b.samples)
        assert a.samples.dtype == b.samples.dtype


def test_streaming_holds_about_one_chunk():
    """Windows of a stream are emitted as soon as they are complete, before the stream ends."""
    seen = []

    def blocks():
        for i in range(100):
            seen.append(i)
            yield np.full(10, i, dtype=np.float32)

    it = chunk(blocks(), 0.05, sampling_rate=1000)  # 50-sample windows
    first = next(iter(it))
    assert first.end == 50 and len(seen) <= 6
