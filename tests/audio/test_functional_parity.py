"""featx.audio.functional against transformers.audio_utils and the reference extractors' inner steps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from featx.audio import functional as F

au = pytest.importorskip("transformers.audio_utils")
transformers = pytest.importorskip("transformers")

from .signals import SR, noise, speech  # noqa: E402


@pytest.mark.parametrize(
    "args",
    [
        (201, 80, 0.0, 8000.0, 16000, "slaney", "slaney", False),
        (201, 128, 0.0, 8000.0, 16000, "slaney", "slaney", False),
        (257, 128, 20, 8000, 16000, None, "kaldi", True),
        (257, 23, 20, 7600, 16000, None, "kaldi", True),
        (513, 40, 0.0, 11025.0, 22050, None, "htk", False),
        (513, 64, 50.0, 11025.0, 22050, "slaney", "htk", False),
        (1025, 96, 0.0, 4000.0, 44100, None, "slaney", True),
    ],
)
def test_mel_filter_bank_matches_reference(args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = au.mel_filter_bank(*args)
    got = F.mel_filter_bank(*args)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)


def test_kaldi_mel_banks_is_the_ast_reference_bank():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.ASTFeatureExtractor.__new__(transformers.ASTFeatureExtractor)
        ref.__init__()
    np.testing.assert_array_equal(F.kaldi_mel_banks(128, 512, 16000), ref.mel_filters)
    assert F.kaldi_mel_banks(23, 512, 16000, high_freq=-400).shape == (257, 23)


@pytest.mark.parametrize("scale", ["htk", "kaldi", "slaney"])
def test_mel_scale_conversions(scale):
    freqs = np.array([0.0, 20.0, 440.0, 999.9, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(F.hertz_to_mel(freqs, scale), au.hertz_to_mel(freqs.copy(), scale), rtol=1e-14)
    mels = au.hertz_to_mel(freqs.copy(), scale)
    np.testing.assert_allclose(F.mel_to_hertz(mels, scale), au.mel_to_hertz(mels.copy(), scale), rtol=1e-12)
    for f in (500.0, 2000.0):
        assert F.hertz_to_mel(f, scale) == pytest.approx(au.hertz_to_mel(f, scale), rel=1e-14)


@pytest.mark.parametrize("name", ["hann", "hamming", "povey", "boxcar"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("length", [1, 2, 400, 512])
def test_windows_match_reference(name, periodic, length):
    if length == 1 and not periodic:
        return  # numpy's 1-point windows are [1]; covered by the periodic case
    np.testing.assert_array_equal(F.window_function(length, name, periodic), au.window_function(length, name, periodic))


def test_kaldi_windows_match_torch():
    n = 400
    np.testing.assert_allclose(F.window_function(n, "hanning", False), torch.hann_window(n, periodic=False, dtype=torch.float64))
    np.testing.assert_allclose(
        F.window_function(n, "hamming", False), torch.hamming_window(n, periodic=False, dtype=torch.float64), atol=1e-15
    )
    a = 2 * np.pi / (n - 1)
    k = np.arange(n)
    np.testing.assert_allclose(F.window_function(n, "blackman", False), 0.42 - 0.5 * np.cos(a * k) + 0.08 * np.cos(2 * a * k))
    np.testing.assert_allclose(F.window_function(n, "hann", True), torch.hann_window(n, dtype=torch.float64))


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("power", [1.0, 2.0])
@pytest.mark.parametrize("n", [401, 1600, 16001])
def test_stft_power_matches_reference_spectrogram(center, power, n):
    x = speech(n).astype(np.float64)
    window = au.window_function(400, "hann")
    expected = au.spectrogram(x, window, 400, 160, fft_length=512, power=power, center=center, dtype=np.float64)
    got = F.stft(x, 400, 160, window=window, fft_length=512, center=center, power=power)
    assert got.shape == expected.shape and got.dtype == np.float64
    # the reference stores the complex spectrum as complex64 before |.|
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6 * expected.max())


def test_stft_complex_matches_torch_stft():
    x = torch.from_numpy(speech(8000))
    window = torch.hann_window(400)
    expected = torch.stft(x, 400, 160, window=window, return_complex=True)
    got = F.stft(x, 400, 160)
    assert got.shape == expected.shape and got.is_complex()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("log_mel", [None, "log", "log10", "dB"])
def test_mel_spectrogram_matches_reference(log_mel):
    x = speech(12345).astype(np.float64)
    filters = au.mel_filter_bank(201, 80, 0, 8000, SR, "slaney", "slaney")
    window = au.window_function(400, "hann")
    expected = au.spectrogram(x, window, 400, 160, power=2.0, mel_filters=filters, log_mel=log_mel, dtype=np.float64)
    got = F.mel_spectrogram(x, filters, 400, 160, window=window, log_mel=log_mel)
    assert got.shape == expected.shape
    tol = 1e-5 if log_mel else 1e-6 * np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=tol)


@pytest.mark.parametrize("db_range", [None, 60.0])
def test_power_and_amplitude_to_db_match_reference(db_range):
    spec = np.abs(np.random.default_rng(0).standard_normal((40, 30))) ** 3
    np.testing.assert_allclose(F.power_to_db(spec, 2.0, 1e-10, db_range), au.power_to_db(spec, 2.0, 1e-10, db_range), rtol=1e-12)
    np.testing.assert_allclose(
        F.amplitude_to_db(spec, 1.0, 1e-5, db_range), au.amplitude_to_db(spec, 1.0, 1e-5, db_range), rtol=1e-12
    )


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("signal", [speech, noise])
def test_log_mel_whisper_matches_reference_paths(n_mels, signal):
    ref = transformers.WhisperFeatureExtractor(feature_size=n_mels)
    batch = np.stack([signal(48000, seed=0), signal(48000, seed=3) * 0.01, np.zeros(48000, np.float32)])
    batch[2, :16000] = signal(16000, seed=5)
    torch_path = ref._torch_extract_fbank_features(batch.copy(), "cpu")
    numpy_path = ref._np_extract_fbank_features(batch.copy(), "cpu")
    got = F.log_mel_whisper(batch, n_mels)
    assert got.shape == torch_path.shape == (3, n_mels, 300) and got.dtype == np.float32
    assert np.abs(got - torch_path).max() < 1e-4
    assert np.abs(got - numpy_path).max() < 1e-4
    # torch in, torch out; float64 in gives float64 and is closer to the float64 NumPy path
    got_t = F.log_mel_whisper(torch.from_numpy(batch), n_mels)
    assert isinstance(got_t, torch.Tensor) and np.array_equal(got_t.numpy(), got)
    got64 = F.log_mel_whisper(batch.astype(np.float64), n_mels)
    assert got64.dtype == np.float64 and np.abs(got64 - numpy_path).max() < 1e-5


def test_log_mel_whisper_global_max_is_one_spectrogram():
    """Pieces of one recording with global_max floor at the recording's peak, like openai/whisper."""
    x = speech(96000)
    x[48000:] *= 1e-3  # a quiet second half: its own peak would be far lower
    whole = F.log_mel_whisper(x[None])[0]
    # the whole-recording spectrogram is what the reference's torch path gives for one long clip
    ref = transformers.WhisperFeatureExtractor()._torch_extract_fbank_features(x[None].copy(), "cpu")[0]
    assert np.abs(whole - ref).max() < 1e-4
    pieces = np.stack([x[:48000], x[48000:]])
    per_piece = F.log_mel_whisper(pieces)
    global_ = F.log_mel_whisper(pieces, global_max=True)
    floor = whole.min()
    assert np.isclose(global_.min(), floor, atol=1e-5)
    assert per_piece[1].min() < floor - 0.1  # each piece floors at its own peak otherwise
    # away from the cut (reflect padding differs there) the pieces equal the whole spectrogram
    np.testing.assert_allclose(global_[0][:, :295], whole[:, :295], atol=1e-4)
    np.testing.assert_allclose(global_[1][:, 5:], whole[:, 305:], atol=1e-4)


@pytest.mark.parametrize("n", [400, 401, 559, 560, 16000, 48123])
@pytest.mark.parametrize("signal", [speech, noise])
def test_fbank_matches_ast_reference_numpy_path(n, signal):
    """The AST reference without torchaudio: audio_utils.spectrogram with Kaldi settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.ASTFeatureExtractor()
    x = signal(n)
    expected = au.spectrogram(
        x, ref.window, frame_length=400, hop_length=160, fft_length=512, power=2.0, center=False,
        preemphasis=0.97, mel_filters=ref.mel_filters, log_mel="log", mel_floor=1.192092955078125e-07,
        remove_dc_offset=True,
    ).T
    got = F.fbank(x.astype(np.float64), num_mel_bins=128, window_type="hanning")
    assert got.shape == expected.shape == (1 + (n - 400) // 160, 128)
    assert np.abs(got - expected).max() < 1e-4
    got32 = F.fbank(x, num_mel_bins=128, window_type="hanning")  # float32 work: looser in quiet bins
    assert got32.dtype == np.float32 and np.abs(got32 - expected).max() < 5e-3
    assert np.abs(got32 - expected).mean() < 1e-4


def test_fbank_float64_fft_float32_mel_keeps_accuracy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.ASTFeatureExtractor()
    x = speech(16000) * np.float32(1e-3)  # quiet: where float32 FFTs lose digits
    expected = ref._extract_fbank_features(x, 98)
    got = F.fbank(x.astype(np.float64), num_mel_bins=128, window_type="hanning", mel_dtype=torch.float32)
    assert got.dtype == np.float32 and np.abs(got - expected).max() < 1e-4
