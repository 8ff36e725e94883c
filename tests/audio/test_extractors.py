"""Extractor behaviour that needs no reference: options, errors, warnings, masks, registry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import featx
from featx.audio import functional as F
from featx.audio.extractors import (
    ASTFeatureExtractor,
    SequenceFeatureExtractor,
    Wav2Vec2FeatureExtractor,
    WhisperFeatureExtractor,
)
from featx.errors import InputError
from featx.registry import lookup

SR = 16000
ALL = [WhisperFeatureExtractor, ASTFeatureExtractor, Wav2Vec2FeatureExtractor]


def wave(n: int, seed: int = 0) -> np.ndarray:
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("cls", ALL)
def test_wrong_sampling_rate_says_to_resample(cls):
    with pytest.raises(InputError, match=r"resample.*featx\.load_audio\(src, sampling_rate=16000\)") as info:
        cls()(wave(1000), sampling_rate=8000)
    assert info.value.source == "sampling_rate"


@pytest.mark.parametrize("cls", ALL)
def test_missing_sampling_rate_warns(cls):
    with pytest.warns(UserWarning, match="sampling_rate"):
        cls()(wave(1000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls()(wave(1000), sampling_rate=SR)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("bad", ["speech.wav", np.zeros((2, 3, 400)), np.zeros((16000, 2)), [], 3.0])
def test_bad_inputs_are_input_errors(cls, bad):
    with pytest.raises(InputError):
        cls()(bad, sampling_rate=SR)


def test_registry_and_public_names():
    for cls in ALL:
        assert lookup("feature_extractor", cls.__name__) is cls
        assert getattr(featx, cls.__name__) is cls
        assert issubclass(cls, SequenceFeatureExtractor)
    assert featx.SequenceFeatureExtractor is SequenceFeatureExtractor
    assert lookup("feature_extractor", "WhisperFeatureExtractorFast") is WhisperFeatureExtractor


def test_whisper_options_and_derived_keys():
    fe = WhisperFeatureExtractor(chunk_length=10, feature_size=128)
    assert (fe.n_samples, fe.nb_max_frames) == (160000, 1000)
    d = fe.to_dict()
    assert d["n_samples"] == 160000 and d["nb_max_frames"] == 1000 and "mel_filters" not in d
    again = WhisperFeatureExtractor.from_dict({**d, "n_samples": 1, "nb_max_frames": 2})
    assert again.to_dict() == d and not again.extra_options
    assert fe.mel_filters.shape == (201, 128)
    out = fe(wave(5000), sampling_rate=SR, return_tensors="np")
    assert out["input_features"].shape == (1, 128, 1000)


def test_whisper_frame_mask_marks_frames_starting_in_audio():
    fe = WhisperFeatureExtractor()
    lengths = [1, 159, 160, 161, 16000, 479999]
    out = fe([wave(n) for n in lengths], sampling_rate=SR, return_attention_mask=True)
    mask = out["attention_mask"]
    assert mask.shape == (6, 3000) and mask.dtype == np.int32
    np.testing.assert_array_equal(mask.sum(1), [-(-n // 160) for n in lengths])
    # odd totals: the mask follows the dropped last frame
    out = fe([wave(1000), wave(1234)], sampling_rate=SR, padding="longest", return_attention_mask=True)
    assert out["input_features"].shape[-1] == out["attention_mask"].shape[-1] == 1234 // 160


def test_whisper_errors_instead_of_crashes():
    fe = WhisperFeatureExtractor()
    with pytest.raises(InputError, match="padding='longest'"):
        fe([wave(1000), wave(2000)], sampling_rate=SR, padding=False)
    with pytest.raises(InputError, match="at least 201 samples"):
        fe(wave(150), sampling_rate=SR, padding="longest")
    # equal lengths without padding are fine, also shorter than 30 s
    out = fe([wave(1000), wave(1000, 1)], sampling_rate=SR, padding=False, truncation=False)
    assert out["input_features"].shape == (2, 80, 6)


def test_whisper_global_max_for_pieces_of_one_recording():
    fe = WhisperFeatureExtractor()
    loud, quiet = wave(32000), wave(32000, 1) * 1e-4
    per = fe([loud, quiet], sampling_rate=SR, padding="longest")["input_features"]
    glob = fe([loud, quiet], sampling_rate=SR, padding="longest", global_max=True)["input_features"]
    np.testing.assert_allclose(glob[0], per[0], atol=1e-6)  # the loud piece holds the peak
    floor = per[0].max() - 2.0  # (peak - 8 + 4) / 4
    assert glob[1].min() == pytest.approx(floor, abs=1e-5) and per[1].min() < floor - 0.5


def test_whisper_device_and_tensors():
    fe = WhisperFeatureExtractor()
    cpu = fe(wave(4000), sampling_rate=SR, return_tensors="pt", device="cpu")
    assert isinstance(cpu["input_features"], torch.Tensor) and cpu["input_features"].dtype == torch.float32
    half = cpu.to(torch.float16)
    assert half["input_features"].dtype == torch.float16
    with pytest.raises((RuntimeError, ValueError)):
        fe(wave(4000), sampling_rate=SR, device="no-such-device")


def test_ast_ignores_padding_arguments_like_the_reference():
    fe = ASTFeatureExtractor()
    plain = fe([wave(20000)], sampling_rate=SR, return_tensors="np")["input_values"]
    other = fe([wave(20000)], sampling_rate=SR, return_tensors="np", padding="longest", max_length=10, truncation=True)
    np.testing.assert_array_equal(plain, other["input_values"])
    assert plain.shape == (1, 1024, 128)


def test_ast_normalize_and_frames():
    fe = ASTFeatureExtractor(do_normalize=False, max_length=50)
    x = wave(16000)
    out = fe(x, sampling_rate=SR)["input_values"][0]
    expected = F.fbank(x.astype(np.float64), num_mel_bins=128, window_type="hanning")[:50]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    short = fe(wave(1200), sampling_rate=SR)["input_values"][0]
    assert (short[F.num_frames(1200, 400, 160):] == 0).all() and (short[:6] != 0).any()
    norm = ASTFeatureExtractor(max_length=50)
    np.testing.assert_allclose(norm(x, sampling_rate=SR)["input_values"][0], norm.normalize(out), atol=1e-6)


def test_wav2vec2_static_helper_and_empty_example():
    values = [np.array([1.0, 2.0, 3.0, 0.0], np.float32)]
    out = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm(values, [np.array([1, 1, 1, 0])], padding_value=-5.0)
    assert out[0][3] == -5.0 and abs(out[0][:3].mean()) < 1e-6
    assert values[0][3] == 0.0  # input untouched
    fe = Wav2Vec2FeatureExtractor()
    res = fe([np.zeros(0, np.float32), wave(10)], sampling_rate=SR, padding=True, return_attention_mask=True)
    assert np.isfinite(res["input_values"][0]).all() and (res["input_values"][0] == 0).all()


def test_wav2vec2_normalizes_each_example():
    fe = Wav2Vec2FeatureExtractor()
    out = fe([wave(3000) * 5 + 2, wave(2000, 3)], sampling_rate=SR, padding=True, return_attention_mask=True, return_tensors="np")
    v, m = out["input_values"], out["attention_mask"]
    for row, mask in zip(v, m):
        real = row[mask.astype(bool)]
        assert abs(real.mean()) < 1e-5 and abs(real.std() - 1) < 1e-3
    assert (v[1][2000:] == 0).all()
