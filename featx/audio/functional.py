"""Audio functional core: windows, framing, STFT, mel filter banks, log/dB, Whisper log-mel, Kaldi fbank.

Every array function takes a NumPy array or a torch tensor (CPU or CUDA) and returns the same
kind; a NumPy array is computed through torch without a copy and comes back as NumPy. Waveforms
are ``(..., samples)``; leading axes are a batch. The computation runs at the input's floating
dtype (integers become float32), so float64 input gives float64 results.

Filter banks and windows are built in float64 exactly as ``transformers.audio_utils`` builds
them and cached per device and dtype; the spectral work runs frame block by frame block, never
holding a full complex spectrogram (see `featx.audio.spectral`).

The implementation is split by concern: `featx.audio.filters` (mel scales, filter banks,
windows), `featx.audio.spectral` (the blocked engine and framing) and `featx.audio.frontends`
(Whisper log-mel, Kaldi fbank). This module is the public facade: it re-exports all of them and
holds the generic transforms (STFT, mel spectrogram, log/dB, zero-mean-unit-variance).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from ..errors import InputError
from . import filters as _filters
from . import frontends as _frontends
from .filters import (
    hertz_to_mel,
    kaldi_mel_banks,
    mel_filter_bank,
    mel_to_hertz,
    optimal_fft_length,
    window_function,
)
from .frontends import fbank, log_mel_whisper, whisper_mel_filters
from .spectral import (
    Array,
    _as_tensor,
    _back,
    _batched,
    _blocked_spectra,
    _center_pad,
    _fft_length,
    _prepare_frames,
    _window_tensor,
    frame,
    num_frames,
)

__all__ = [
    *_filters.__all__,
    "frame",
    "num_frames",
    "stft",
    "mel_spectrogram",
    "power_to_db",
    "amplitude_to_db",
    "log_clamp",
    *_frontends.__all__,
    "zero_mean_unit_var",
]


def _framing(
    waveform: Array, frame_length: int, hop_length: int, fft_length: int | None, center: bool
) -> tuple[torch.Tensor, tuple[int, ...], bool, int, int, int]:
    """What `stft` and `mel_spectrogram` frame alike: the ``(rows, samples)`` tensor, the leading
    axes, whether the input was NumPy, the FFT length, the centre padding and the frame count."""
    t, was_numpy = _as_tensor(waveform)
    fft_length = _fft_length(fft_length, frame_length)
    x, lead = _batched(t)
    pad = frame_length // 2 if center else 0
    return x, lead, was_numpy, fft_length, pad, num_frames(x.shape[-1] + 2 * pad, frame_length, hop_length)


def stft(
    waveform: Array,
    frame_length: int,
    hop_length: int,
    window: Array | None = None,
    fft_length: int | None = None,
    center: bool = True,
    pad_mode: str = "reflect",
    power: float | None = None,
    remove_dc_offset: bool = False,
    preemphasis: float | None = None,
) -> Array:
    """Short-time Fourier transform ``(..., fft_length // 2 + 1, n_frames)``.

    ``power=None`` gives complex values, 1.0 magnitudes, 2.0 power. Frames are ``frame_length``
    long, windowed (periodic Hann by default) and zero-padded at the end to ``fft_length``, as in
    ``transformers.audio_utils.spectrogram``; ``center`` pads ``frame_length // 2`` on both sides
    (``pad_mode`` "reflect", "constant" or "edge").
    """
    x, lead, was_numpy, fft_length, pad, n = _framing(waveform, frame_length, hop_length, fft_length, center)
    w = _window_tensor(window, frame_length, x)
    if power is None:
        x = _center_pad(x, pad, pad_mode)
        frames = _prepare_frames(frame(x, frame_length, hop_length), w, remove_dc_offset, preemphasis)
        spec = torch.fft.rfft(frames, n=fft_length, dim=-1).transpose(-1, -2)
    else:
        spec = _blocked_spectra(
            x, n, frame_length, hop_length, w, fft_length, power=power, remove_dc_offset=remove_dc_offset,
            preemphasis=preemphasis, bins_first=True, center_pad=pad, pad_mode=pad_mode,
        )
    spec = spec.reshape(*lead, spec.shape[-2], n)
    return _back(spec, was_numpy)


def mel_spectrogram(
    waveform: Array,
    mel_filters: Array,
    frame_length: int,
    hop_length: int,
    window: Array | None = None,
    fft_length: int | None = None,
    center: bool = True,
    pad_mode: str = "reflect",
    power: float = 2.0,
    mel_floor: float = 1e-10,
    log_mel: str | None = None,
    remove_dc_offset: bool = False,
    preemphasis: float | None = None,
    dither: float = 0.0,
) -> Array:
    """``(..., n_mels, n_frames)``: ``max(mel_floor, mel_filters.T @ |stft|**power)``, then optional log.

    ``log_mel``: None, "log" (natural), "log10" or "dB" (`power_to_db` / `amplitude_to_db`).
    ``mel_filters`` is ``(fft_length // 2 + 1, n_mels)`` as `mel_filter_bank` returns it.
    """
    if log_mel not in (None, "log", "log10", "dB"):
        raise InputError(f"log_mel must be None, 'log', 'log10' or 'dB', not {log_mel!r}", source="log_mel")
    x, lead, was_numpy, fft_length, pad, n = _framing(waveform, frame_length, hop_length, fft_length, center)
    mel = torch.as_tensor(mel_filters).to(device=x.device, dtype=x.dtype)
    if mel.shape[0] != fft_length // 2 + 1:
        raise InputError(
            f"mel_filters has {mel.shape[0]} frequency rows, expected fft_length // 2 + 1 = {fft_length // 2 + 1}",
            source="mel_filters",
        )
    spec = _blocked_spectra(
        x, n, frame_length, hop_length, _window_tensor(window, frame_length, x), fft_length,
        power=power, mel=mel, remove_dc_offset=remove_dc_offset, preemphasis=preemphasis, dither=dither,
        floor=mel_floor, bins_first=True, center_pad=pad, pad_mode=pad_mode,
    )
    spec = spec.reshape(*lead, spec.shape[-2], n)
    if log_mel == "log":
        spec = spec.log()
    elif log_mel == "log10":
        spec = spec.log10()
    elif log_mel == "dB":
        spec = power_to_db(spec) if power == 2.0 else amplitude_to_db(spec)
    return _back(spec, was_numpy)


# ---- log and decibel conversions ---------------------------------------------------------------
def log_clamp(x: Array, floor: float = 1e-10, base: Literal["e", "10"] = "10") -> Array:
    """``log(max(x, floor))`` in base e or 10."""
    t, was_numpy = _as_tensor(x)
    t = t.clamp(min=floor)
    return _back(t.log10() if base == "10" else t.log(), was_numpy)


def _to_db(x: Array, factor: float, reference: float, min_value: float, db_range: float | None) -> Array:
    if reference <= 0.0 or min_value <= 0.0:
        raise InputError("reference and min_value must be greater than zero", source="reference")
    t, was_numpy = _as_tensor(x)
    db = factor * t.clamp(min=min_value).log10() - factor * math.log10(max(reference, min_value))
    if db_range is not None:
        if db_range <= 0.0:
            raise InputError("db_range must be greater than zero", source="db_range")
        # The peak is taken per spectrogram (last two axes), as the reference does for one.
        peak = db.amax(dim=(-2, -1), keepdim=True) if db.ndim >= 2 else db.max()
        db = torch.maximum(db, peak - db_range)
    return _back(db, was_numpy)


def power_to_db(
    spectrogram: Array, reference: float = 1.0, min_value: float = 1e-10, db_range: float | None = None
) -> Array:
    """``10 * log10(max(S, min_value) / reference)``, floored at ``peak - db_range`` per spectrogram."""
    return _to_db(spectrogram, 10.0, reference, min_value, db_range)


def amplitude_to_db(
    spectrogram: Array, reference: float = 1.0, min_value: float = 1e-5, db_range: float | None = None
) -> Array:
    """``20 * log10(max(S, min_value) / reference)``, floored at ``peak - db_range`` per spectrogram."""
    return _to_db(spectrogram, 20.0, reference, min_value, db_range)


def zero_mean_unit_var(
    values: np.ndarray, spans: list[tuple[int, int]] | None = None, padding_value: float = 0.0
) -> np.ndarray:
    """Normalise each row to zero mean and unit variance, ``(x - mean) / sqrt(var + 1e-7)``, in place.

    ``spans[i] = (start, end)`` limits the statistics to the unpadded samples of row ``i`` and sets
    the rest to ``padding_value``; without spans the whole row (padding included) is used, as the
    reference does when no attention mask is returned. Computed in the rows' dtype with NumPy's
    reductions so float32 results match the reference bit for bit.
    """
    for i in range(values.shape[0]):
        row = values[i]
        start, end = spans[i] if spans is not None else (0, row.shape[0])
        if end <= start:
            row[:] = padding_value
            continue
        span = row[start:end]
        normed = (row - span.mean()) / np.sqrt(span.var() + 1e-7)
        row[:] = normed
        if spans is not None:
            row[:start] = padding_value
            row[end:] = padding_value
    return values
