"""Mel scales, mel filter banks (HTK, Slaney, Kaldi) and analysis windows.

Built in float64 exactly as ``transformers.audio_utils`` builds them; `_cached_tensor` keeps the
torch copies the spectral engine uses, per device and dtype.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
import torch

from ..errors import InputError

__all__ = [
    "hertz_to_mel",
    "mel_to_hertz",
    "mel_filter_bank",
    "kaldi_mel_banks",
    "window_function",
    "optimal_fft_length",
]

MelScale = Literal["htk", "slaney", "kaldi"]


# ---- mel scales and filter banks ---------------------------------------------------------------
def hertz_to_mel(freq: float | np.ndarray, mel_scale: MelScale = "htk") -> float | np.ndarray:
    """Hertz to mels on the HTK, Kaldi (natural log) or Slaney (linear below 1 kHz) scale."""
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + (freq / 700.0))
    if mel_scale == "kaldi":
        return 1127.0 * np.log(1.0 + (freq / 700.0))
    if mel_scale != "slaney":
        raise InputError(f"mel_scale must be 'htk', 'slaney' or 'kaldi', not {mel_scale!r}", source="mel_scale")
    logstep = 27.0 / np.log(6.4)
    freq_arr = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * freq_arr / 200.0
    log_region = freq_arr >= 1000.0
    mels = np.where(log_region, 15.0 + np.log(np.maximum(freq_arr, 1e-300) / 1000.0) * logstep, mels)
    return mels if isinstance(freq, np.ndarray) else float(mels)


def mel_to_hertz(mels: float | np.ndarray, mel_scale: MelScale = "htk") -> float | np.ndarray:
    """Mels to hertz; the inverse of `hertz_to_mel`."""
    if mel_scale == "htk":
        return 700.0 * (np.power(10, mels / 2595.0) - 1.0)
    if mel_scale == "kaldi":
        return 700.0 * (np.exp(mels / 1127.0) - 1.0)
    if mel_scale != "slaney":
        raise InputError(f"mel_scale must be 'htk', 'slaney' or 'kaldi', not {mel_scale!r}", source="mel_scale")
    logstep = np.log(6.4) / 27.0
    mel_arr = np.asarray(mels, dtype=np.float64)
    freq = np.where(mel_arr >= 15.0, 1000.0 * np.exp(logstep * (mel_arr - 15.0)), 200.0 * mel_arr / 3.0)
    return freq if isinstance(mels, np.ndarray) else float(freq)


def mel_filter_bank(
    num_frequency_bins: int,
    num_mel_filters: int,
    min_frequency: float,
    max_frequency: float,
    sampling_rate: int,
    norm: str | None = None,
    mel_scale: MelScale = "htk",
    triangularize_in_mel_space: bool = False,
) -> np.ndarray:
    """Triangular mel filters, float64 ``(num_frequency_bins, num_mel_filters)``.

    Same values as ``transformers.audio_utils.mel_filter_bank``: ``norm="slaney"`` divides each
    triangle by its band width; ``triangularize_in_mel_space=True`` with ``mel_scale="kaldi"``
    gives torchaudio's Kaldi banks (see `kaldi_mel_banks`).
    """
    if norm not in (None, "slaney"):
        raise InputError(f"norm must be None or 'slaney', not {norm!r}", source="norm")
    if num_frequency_bins < 2:
        raise InputError(f"num_frequency_bins must be at least 2, not {num_frequency_bins}", source="num_frequency_bins")
    if min_frequency > max_frequency:
        raise InputError(
            f"min_frequency ({min_frequency}) must not exceed max_frequency ({max_frequency})", source="min_frequency"
        )
    mel_min = hertz_to_mel(float(min_frequency), mel_scale)
    mel_max = hertz_to_mel(float(max_frequency), mel_scale)
    mel_freqs = np.linspace(mel_min, mel_max, num_mel_filters + 2)
    filter_freqs = mel_to_hertz(mel_freqs, mel_scale)
    if triangularize_in_mel_space:
        bin_width = sampling_rate / ((num_frequency_bins - 1) * 2)
        fft_freqs = hertz_to_mel(bin_width * np.arange(num_frequency_bins), mel_scale)
        filter_freqs = mel_freqs
    else:
        fft_freqs = np.linspace(0, sampling_rate // 2, num_frequency_bins)
    diff = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    rising = -slopes[:, :-2] / diff[:-1]
    falling = slopes[:, 2:] / diff[1:]
    filters = np.maximum(np.zeros(1), np.minimum(rising, falling))
    if norm == "slaney":
        filters *= (2.0 / (filter_freqs[2 : num_mel_filters + 2] - filter_freqs[:num_mel_filters]))[None, :]
    return filters


def kaldi_mel_banks(
    num_mel_bins: int,
    fft_length: int,
    sampling_rate: float,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> np.ndarray:
    """Kaldi's mel banks ``(fft_length // 2 + 1, num_mel_bins)``; ``high_freq <= 0`` counts back from Nyquist."""
    return mel_filter_bank(*_kaldi_bank_args(num_mel_bins, fft_length, sampling_rate, low_freq, high_freq))


def _kaldi_bank_args(num_mel_bins: int, fft_length: int, sampling_rate: float, low_freq: float, high_freq: float) -> tuple:
    nyquist = 0.5 * sampling_rate
    high = high_freq if high_freq > 0.0 else nyquist + high_freq
    if not (0.0 <= low_freq < nyquist and low_freq < high <= nyquist):
        raise InputError(
            f"mel band {low_freq}..{high} Hz must lie within 0..{nyquist} Hz (Nyquist) and be non-empty",
            source="low_freq",
        )
    return (fft_length // 2 + 1, num_mel_bins, low_freq, high, int(sampling_rate), None, "kaldi", True)


# ---- windows -----------------------------------------------------------------------------------
def window_function(length: int, name: str = "hann", periodic: bool = True) -> np.ndarray:
    """A float64 window. Names: hann/hanning, hamming, povey (hann ** 0.85), boxcar/rectangular, blackman.

    ``periodic=True`` is the STFT convention (torch.hann_window's default); Kaldi uses symmetric
    windows (``periodic=False``). The blackman window uses Kaldi's coefficient 0.42.
    """
    if length < 1:
        raise InputError(f"window length must be positive, not {length}", source="window")
    n = length + 1 if periodic else length
    name = name.lower()
    if name in ("hann", "hanning", "hann_window"):
        window = np.hanning(n)
    elif name in ("hamming", "hamming_window"):
        window = np.hamming(n)
    elif name == "povey":
        window = np.power(np.hanning(n), 0.85)
    elif name in ("boxcar", "rectangular", "ones"):
        window = np.ones(n)
    elif name == "blackman":
        a = 2.0 * np.pi / (n - 1) if n > 1 else 0.0
        k = np.arange(n)
        window = 0.42 - 0.5 * np.cos(a * k) + 0.08 * np.cos(2 * a * k)
    else:
        raise InputError(
            f"unknown window {name!r}; use hann, hanning, hamming, povey, rectangular or blackman", source="window"
        )
    return window[:-1] if periodic else window


def optimal_fft_length(window_length: int) -> int:
    """The next power of two at or above ``window_length`` (Kaldi's round_to_power_of_two)."""
    return 1 << max(0, math.ceil(math.log2(window_length)))


@functools.lru_cache(maxsize=64)
def _cached_tensor(key: tuple, dtype: torch.dtype, device: str) -> torch.Tensor:
    kind, args = key[0], key[1:]
    array = mel_filter_bank(*args) if kind == "mel" else window_function(*args)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)
