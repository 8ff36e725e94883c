"""featx.audio.functional on its own: types, batching, Kaldi options, errors, devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from featx.audio import functional as F
from featx.errors import InputError

SR = 16000


def tone_noise(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.4 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(n) + 0.05).astype(
        np.float32
    )


def kaldi_loop(x: np.ndarray, *, window_type: str, snip_edges: bool, num_mel_bins: int = 23, use_power: bool = True,
               use_log_fbank: bool = True, use_energy: bool = False, raw_energy: bool = True,
               energy_floor: float = 1.0, subtract_mean: bool = False, remove_dc: bool = True,
               preemph: float = 0.97) -> np.ndarray:
    """Frame-by-frame float64 Kaldi fbank written from torchaudio.compliance.kaldi's steps."""
    win, shift, nfft = 400, 160, 512
    x = x.astype(np.float64)
    if snip_edges:
        n = 0 if len(x) < win else 1 + (len(x) - win) // shift
        padded = x
    else:
        n = (len(x) + shift // 2) // shift
        pad = win // 2 - shift // 2
        rev = x[::-1]
        padded = np.concatenate([rev[-pad:], x, rev])
    k = np.arange(win)
    a = 2 * np.pi / (win - 1)
    window = {
        "hanning": 0.5 - 0.5 * np.cos(a * k),
        "hamming": 0.54 - 0.46 * np.cos(a * k),
        "povey": (0.5 - 0.5 * np.cos(a * k)) ** 0.85,
        "rectangular": np.ones(win),
        "blackman": 0.42 - 0.5 * np.cos(a * k) + 0.08 * np.cos(2 * a * k),
    }[window_type]
    banks = F.kaldi_mel_banks(num_mel_bins, nfft, SR)
    eps = np.finfo(np.float32).eps
    rows = []
    for f in range(n):
        fr = padded[f * shift : f * shift + win].copy()
        if remove_dc:
            fr -= fr.mean()
        energy = math.log(max((fr**2).sum(), eps))
        if preemph:
            fr = np.concatenate([[fr[0] * (1 - preemph)], fr[1:] - preemph * fr[:-1]])
        fr *= window
        if not raw_energy:
            energy = math.log(max((fr**2).sum(), eps))
        if energy_floor > 0:
            energy = max(energy, math.log(energy_floor))
        spec = np.abs(np.fft.rfft(fr, nfft))
        if use_power:
            spec = spec**2
        mel = spec @ banks
        if use_log_fbank:
            mel = np.log(np.maximum(mel, eps))
        rows.append(np.concatenate([[energy], mel]) if use_energy else mel)
    out = np.array(rows).reshape(n, num_mel_bins + use_energy)
    if subtract_mean and n:
        out -= out.mean(0, keepdims=True)
    return out


# ---- types, dtypes, batching -------------------------------------------------------------------
def test_numpy_in_numpy_out_torch_in_torch_out():
    x = tone_noise(4000)
    np_out = F.log_mel_whisper(x)
    t_out = F.log_mel_whisper(torch.from_numpy(x))
    assert isinstance(np_out, np.ndarray) and isinstance(t_out, torch.Tensor)
    assert np_out.shape == (80, 25) and np_out.dtype == np.float32
    np.testing.assert_array_equal(np_out, t_out.numpy())
    assert F.fbank(x.astype(np.float64)).dtype == np.float64
    assert F.stft(x, 400, 160).dtype == np.complex64


def test_integer_input_is_read_as_float32_values():
    x = (tone_noise(4000) * 20000).astype(np.int16)
    out = F.fbank(x, num_mel_bins=40)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, F.fbank(x.astype(np.float32), num_mel_bins=40))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.log_mel_whisper(x),
        lambda x: F.fbank(x, num_mel_bins=30, window_type="hamming"),
        lambda x: F.stft(x, 400, 160, power=2.0),
        lambda x: F.mel_spectrogram(x, F.whisper_mel_filters(), 400, 160, log_mel="log10"),
    ],
)
def test_leading_axes_are_a_batch(fn):
    batch = np.stack([tone_noise(3200, seed=s) * (s + 1) for s in range(6)]).reshape(2, 3, 3200)
    out = fn(batch)
    assert out.shape[:2] == (2, 3)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(out[i, j], fn(batch[i, j]), rtol=1e-6, atol=1e-6)


def test_block_size_does_not_change_results(monkeypatch):
    x = np.stack([tone_noise(40000), tone_noise(40000, seed=2)])
    whole = F.log_mel_whisper(x)
    kaldi = F.fbank(x, num_mel_bins=64)
    monkeypatch.setattr("featx.audio.spectral._BLOCK", 7)
    np.testing.assert_allclose(F.log_mel_whisper(x), whole, atol=1e-6)
    np.testing.assert_allclose(F.fbank(x, num_mel_bins=64), kaldi, atol=1e-6)


def test_frame_views_and_counts():
    x = np.arange(1000, dtype=np.float32)
    fr = F.frame(x, 400, 160)
    assert fr.shape == (F.num_frames(1000, 400, 160), 400) == (4, 400)
    np.testing.assert_array_equal(fr[2], x[320:720])
    assert np.shares_memory(fr, x)
    torch.testing.assert_close(F.frame(torch.from_numpy(x), 400, 160), torch.from_numpy(np.ascontiguousarray(fr)))
    assert F.frame(x[:399], 400, 160).shape == (0, 400)
    assert F.frame(torch.zeros(2, 10), 400, 160).shape == (2, 0, 400)
    assert F.num_frames(1000, 400, 160, center=True) == 7
    assert F.num_frames(399, 400, 160) == 0


def test_stft_pad_modes_and_fft_length():
    x = tone_noise(2000)
    for mode in ("reflect", "constant", "edge"):
        out = F.stft(x, 400, 160, power=2.0, pad_mode=mode)
        assert out.shape == (201, 13)
    padded = np.pad(x, 200, mode="constant")
    np.testing.assert_allclose(
        F.stft(x, 400, 160, power=1.0, pad_mode="constant"), F.stft(padded, 400, 160, power=1.0, center=False), atol=1e-5
    )
    assert F.stft(x, 400, 160, fft_length=1024, power=2.0).shape == (513, 13)
    # complex and power paths agree, also with Kaldi pre-processing
    c = F.stft(x, 400, 160, center=False, remove_dc_offset=True, preemphasis=0.97, fft_length=512)
    p = F.stft(x, 400, 160, center=False, remove_dc_offset=True, preemphasis=0.97, fft_length=512, power=2.0)
    np.testing.assert_allclose(np.abs(c) ** 2, p, rtol=1e-4, atol=1e-6)


def test_log_clamp():
    x = np.array([0.0, 1e-12, 1.0, 100.0])
    np.testing.assert_allclose(F.log_clamp(x), [-10, -10, 0, 2])
    np.testing.assert_allclose(F.log_clamp(x, 1e-3, "e"), np.log([1e-3, 1e-3, 1, 100]))


# ---- Kaldi fbank options against a frame-by-frame implementation ------------------------------
@pytest.mark.parametrize("window_type", ["hanning", "hamming", "povey", "rectangular", "blackman"])
@pytest.mark.parametrize("snip_edges", [True, False])
def test_fbank_windows_and_edges(window_type, snip_edges):
    x = tone_noise(3333)
    got = F.fbank(x.astype(np.float64), window_type=window_type, snip_edges=snip_edges)
    expected = kaldi_loop(x, window_type=window_type, snip_edges=snip_edges)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-9)


@pytest.mark.parametrize(
    "options",
    [
        dict(use_power=False),
        dict(use_log_fbank=False),
        dict(use_energy=True),
        dict(use_energy=True, raw_energy=False, energy_floor=0.0),
        dict(use_energy=True, energy_floor=1e6),
        dict(subtract_mean=True),
        dict(remove_dc_offset=False, preemphasis_coefficient=0.0),
    ],
)
def test_fbank_options(options):
    x = tone_noise(5000)
    loop_opts = {k: v for k, v in options.items() if k not in ("remove_dc_offset", "preemphasis_coefficient")}
    if "remove_dc_offset" in options:
        loop_opts.update(remove_dc=False, preemph=0.0)
    got = F.fbank(x.astype(np.float64), **options)
    expected = kaldi_loop(x, window_type="povey", snip_edges=True, **loop_opts)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_fbank_short_input_and_max_frames():
    assert F.fbank(np.zeros(399, np.float32)).shape == (0, 23)
    x = tone_noise(16000)
    full = F.fbank(x, num_mel_bins=40)
    np.testing.assert_allclose(F.fbank(x, num_mel_bins=40, max_frames=10), full[:10], atol=1e-5)
    # silence floors at log(float32 eps)
    assert np.allclose(F.fbank(np.zeros(800, np.float32)), np.log(np.finfo(np.float32).eps))


def test_dither_is_reproducible_and_lifts_silence():
    silence = np.zeros(16000, np.float32)
    quiet = F.fbank(silence)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    d1 = F.fbank(silence, dither=1.0, generator=g1)
    d2 = F.fbank(silence, dither=1.0, generator=g2)
    np.testing.assert_array_equal(d1, d2)
    assert (d1 > quiet + 5).all()  # N(0,1) per sample gives energies far above the eps floor
    # dithered whisper log-mel of silence is no longer the flat floor
    w = F.log_mel_whisper(silence, dither=1e-3, generator=torch.Generator().manual_seed(1))
    assert w.std() > 0 and np.ptp(F.log_mel_whisper(silence)) == 0


def test_zero_mean_unit_var_spans():
    rows = np.array([[1, 2, 3, 0, 0], [0, 5, 7, 9, 0]], dtype=np.float32)
    out = F.zero_mean_unit_var(rows.copy(), [(0, 3), (1, 4)], padding_value=-1.0)
    a = np.array([1, 2, 3], np.float32)
    np.testing.assert_allclose(out[0, :3], (a - a.mean()) / np.sqrt(a.var() + 1e-7))
    assert (out[0, 3:] == -1).all() and out[1, 0] == -1 and out[1, 4] == -1
    whole = F.zero_mean_unit_var(rows.copy())
    np.testing.assert_allclose(whole.mean(1), 0, atol=1e-6)
    assert (F.zero_mean_unit_var(rows.copy(), [(0, 0), (0, 5)])[0] == 0).all()


# ---- errors --------------------------------------------------------------------------------------
def test_errors_name_the_problem():
    with pytest.raises(InputError, match="at least 201 samples"):
        F.log_mel_whisper(np.zeros(200, np.float32))
    with pytest.raises(InputError, match="unknown window"):
        F.window_function(400, "triangle")
    with pytest.raises(InputError, match="mel_scale"):
        F.mel_filter_bank(201, 10, 0, 8000, 16000, mel_scale="bark")
    with pytest.raises(InputError, match="norm"):
        F.mel_filter_bank(201, 10, 0, 8000, 16000, norm="l2")
    with pytest.raises(InputError, match="min_frequency"):
        F.mel_filter_bank(201, 10, 9000, 8000, 16000)
    with pytest.raises(InputError, match="fft_length"):
        F.stft(np.zeros(1000), 400, 160, fft_length=256)
    with pytest.raises(InputError, match="window has shape"):
        F.stft(np.zeros(1000), 400, 160, window=np.ones(300))
    with pytest.raises(InputError, match="mel_filters"):
        F.mel_spectrogram(np.zeros(1000), np.ones((100, 4)), 400, 160)
    with pytest.raises(InputError, match="log_mel"):
        F.mel_spectrogram(np.zeros(1000), np.ones((201, 4)), 400, 160, log_mel="ln")
    with pytest.raises(InputError, match="Nyquist"):
        F.kaldi_mel_banks(23, 512, 16000, low_freq=9000)
    with pytest.raises(InputError, match="db_range"):
        F.power_to_db(np.ones((2, 2)), db_range=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = np.stack([tone_noise(48000), tone_noise(48000, seed=4)])
    cpu = F.log_mel_whisper(x)
    gpu = F.log_mel_whisper(torch.from_numpy(x), device="cuda")
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, atol=1e-4)
    np.testing.assert_allclose(F.fbank(x.astype(np.float64), device="cuda").cpu().numpy(), F.fbank(x.astype(np.float64)), atol=1e-6)


def test_threads_are_restored_and_concurrent_calls_agree():
    from concurrent.futures import ThreadPoolExecutor

    before = torch.get_num_threads()
    x = np.stack([tone_noise(20000, seed=s) for s in range(3)])
    expected = F.log_mel_whisper(x)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: F.log_mel_whisper(x), range(8)))
    for r in results:
        np.testing.assert_array_equal(r, expected)
    assert torch.get_num_threads() == before


def test_edge_padding_and_odd_inputs():
    x = tone_noise(1500)
    np.testing.assert_allclose(
        F.stft(x, 400, 160, power=2.0, pad_mode="edge"), F.stft(np.pad(x, 200, mode="edge"), 400, 160, power=2.0, center=False),
        rtol=1e-5, atol=1e-4,
    )
    swapped = x.astype(">f4")  # big-endian input is read by value
    np.testing.assert_array_equal(F.log_mel_whisper(swapped), F.log_mel_whisper(x))
    with pytest.raises(InputError, match="real numbers"):
        F.log_mel_whisper(x.astype(np.complex64))
    with pytest.raises(InputError, match="pad_mode"):
        F.stft(x, 400, 160, power=2.0, pad_mode="wrap")


@pytest.mark.parametrize("options", [{}, {"subtract_mean": True}, {"use_energy": True}])
def test_fbank_lengths_gives_each_row_its_own_frames(options):
    rows = [tone_noise(n, seed=n) for n in (5000, 1200, 300)]
    batch = np.zeros((3, 5000), np.float64)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    got = F.fbank(batch, lengths=[len(r) for r in rows], **options)
    assert got.shape == (3, F.num_frames(5000, 400, 160), 23 + bool(options.get("use_energy")))
    for i, r in enumerate(rows):
        alone = F.fbank(r.astype(np.float64), **options)
        np.testing.assert_allclose(got[i, : len(alone)], alone, atol=1e-9)
        assert (got[i, len(alone) :] == 0).all()
    with pytest.raises(InputError, match="lengths"):
        F.fbank(batch, lengths=[1, 2])
