"""Model-specific front ends: Whisper's log-mel and Kaldi filter banks (AST), on the spectral engine."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InputError
from .filters import _cached_tensor, _kaldi_bank_args, mel_filter_bank, optimal_fft_length
from .spectral import (
    Array,
    _as_tensor,
    _back,
    _batched,
    _blocked_spectra,
    _prepare_frames,
    frame,
    num_frames,
)

__all__ = ["whisper_mel_filters", "log_mel_whisper", "fbank"]


def whisper_mel_filters(n_mels: int = 80, n_fft: int = 400, sampling_rate: int = 16000) -> np.ndarray:
    """Whisper's Slaney filters (0-8000 Hz, Slaney norm), float64 ``(n_fft // 2 + 1, n_mels)``."""
    return mel_filter_bank(1 + n_fft // 2, n_mels, 0.0, 8000.0, sampling_rate, "slaney", "slaney")


def log_mel_whisper(
    waveform: Array,
    n_mels: int = 80,
    *,
    n_fft: int = 400,
    hop_length: int = 160,
    sampling_rate: int = 16000,
    dither: float = 0.0,
    global_max: bool = False,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> Array:
    """Whisper's log-mel ``(..., n_mels, samples // hop_length)``.

    Centred reflect-padded frames, periodic Hann, power spectrum, Slaney mel, ``log10(max(x, 1e-10))``,
    ``max(x, peak - 8)``, ``(x + 4) / 4`` (the last STFT frame is dropped). The peak is per waveform,
    as in ``transformers``; ``global_max=True`` takes one peak over the whole batch, which is what
    the original openai/whisper does when the batch holds consecutive pieces of one recording.
    ``dither`` adds ``dither * N(0, 1)`` to the waveform first. ``device`` moves the work (e.g. to
    CUDA); NumPy input comes back as NumPy.
    """
    t, was_numpy = _as_tensor(waveform, device)
    x, lead = _batched(t)
    if dither != 0.0:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        x = x + dither * noise
    n = x.shape[-1] // hop_length  # 1 + T // hop centred frames, minus the last one
    key = ("mel", 1 + n_fft // 2, n_mels, 0.0, 8000.0, sampling_rate, "slaney", "slaney")
    mel = _cached_tensor(key, x.dtype, str(x.device))
    window = _cached_tensor(("win", n_fft, "hann", True), x.dtype, str(x.device))
    spec = _blocked_spectra(
        x, n, n_fft, hop_length, window, n_fft, mel=mel, floor=1e-10, log="10", bins_first=True,
        center_pad=n_fft // 2,
    )
    if n > 0:
        peak = spec.amax() if global_max else spec.amax(dim=(1, 2), keepdim=True)
        torch.maximum(spec, peak - 8.0, out=spec)
    spec = spec.add_(4.0).div_(4.0)
    return _back(spec.reshape(*lead, n_mels, n), was_numpy)


def fbank(
    waveform: Array,
    *,
    sample_frequency: float = 16000.0,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    num_mel_bins: int = 23,
    window_type: str = "povey",
    blackman_coeff: float = 0.42,
    dither: float = 0.0,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    snip_edges: bool = True,
    use_power: bool = True,
    use_log_fbank: bool = True,
    use_energy: bool = False,
    raw_energy: bool = True,
    energy_floor: float = 1.0,
    subtract_mean: bool = False,
    max_frames: int | None = None,
    lengths: Sequence[int] | None = None,
    mel_dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> Array:
    """Kaldi filter-bank features ``(..., n_frames, num_mel_bins)``, like ``torchaudio.compliance.kaldi.fbank``.

    Defaults are torchaudio's. ``frame_length``/``frame_shift`` are milliseconds. Frames: with
    ``snip_edges`` only full frames (``1 + (T - frame) // shift``, none when shorter than a frame);
    otherwise ``(T + shift // 2) // shift`` frames over a symmetrically reflected signal. Energies
    are floored at float32 epsilon before the natural log. ``max_frames`` computes only the first
    frames (what a truncating caller keeps). ``lengths`` (snip_edges only) gives each row of a
    right-padded ``(B, T)`` batch its own sample count: its frames stop there and the rows after
    are 0 (as AST pads after the log). ``mel_dtype`` (default: the input's) is the dtype of the mel
    projection and the output: float64 input with ``mel_dtype=torch.float32`` keeps float64's
    accuracy in quiet bins (the FFT is where it matters) at close to float32 speed. With
    ``use_energy`` the log energy is column 0. VTLN is not supported.
    """
    if blackman_coeff != 0.42 and window_type == "blackman":
        raise InputError("only Kaldi's default blackman_coeff 0.42 is supported", source="blackman_coeff")
    t, was_numpy = _as_tensor(waveform, device)
    x, lead = _batched(t)
    win_len = int(sample_frequency * frame_length * 0.001)
    shift = int(sample_frequency * frame_shift * 0.001)
    if win_len < 2 or shift < 1:
        raise InputError(f"frame_length/frame_shift give {win_len}/{shift} samples; need at least 2/1", source="frame_length")
    fft_length = optimal_fft_length(win_len) if round_to_power_of_two else win_len
    window = _cached_tensor(("win", win_len, window_type, False), x.dtype, str(x.device))
    if lengths is not None:
        if not snip_edges or len(lengths) != x.shape[0]:
            raise InputError("lengths needs snip_edges=True and one length per row", source="lengths")
        counts = [num_frames(min(int(n), x.shape[-1]), win_len, shift) for n in lengths]
    elif snip_edges:
        counts = [num_frames(x.shape[-1], win_len, shift)] * x.shape[0]
    else:
        counts = [(x.shape[-1] + shift // 2) // shift] * x.shape[0]
        pad = win_len // 2 - shift // 2
        flipped = x.flip(-1)
        x = torch.cat([flipped[:, -pad:], x, flipped], -1) if pad > 0 else torch.cat([x[:, -pad:], flipped], -1)
    if max_frames is not None:
        counts = [min(n, max_frames) for n in counts]
    n = max(counts, default=0)
    eps = torch.finfo(torch.float32).eps
    key = ("mel", *_kaldi_bank_args(num_mel_bins, fft_length, sample_frequency, low_freq, high_freq))
    mel = _cached_tensor(key, mel_dtype or x.dtype, str(x.device))
    step = shift
    if dither != 0.0:
        # Each frame gets its own noise, as in Kaldi: materialise the frames as the new "signal".
        frames = frame(x, win_len, shift)[:, :n]
        noise = torch.randn(frames.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        x, step = (frames + dither * noise).reshape(frames.shape[0], -1), win_len
    feats = _blocked_spectra(
        x, counts, win_len, step, window, fft_length, power=2.0 if use_power else 1.0, mel=mel,
        remove_dc_offset=remove_dc_offset, preemphasis=preemphasis_coefficient or None,
        floor=eps if use_log_fbank else None, log="e" if use_log_fbank else None,
    )
    if use_energy:
        energy = _log_energy(x, n, win_len, step, window, remove_dc_offset, raw_energy,
                             preemphasis_coefficient, energy_floor)
        feats = torch.cat([energy.to(feats.dtype)[..., None], feats], -1)
    real = torch.arange(n, device=x.device)[None, :] < torch.tensor(counts, device=x.device)[:, None]
    if use_energy and n:
        feats = feats * real[..., None]
    if subtract_mean and n:
        total = (feats * real[..., None]).sum(1, keepdim=True)
        feats = (feats - total / torch.tensor(counts, device=x.device).clamp(min=1)[:, None, None]) * real[..., None]
    return _back(feats.reshape(*lead, n, feats.shape[-1]), was_numpy)


def _log_energy(x: torch.Tensor, n: int, win_len: int, step: int, window: torch.Tensor, remove_dc_offset: bool,
                raw_energy: bool, preemphasis: float, energy_floor: float) -> torch.Tensor:
    """Kaldi's per-frame log energy: after DC removal, and after pre-emphasis and window unless raw."""
    frames = frame(x, win_len, step)[:, :n]
    if not raw_energy:
        frames = _prepare_frames(frames, window, remove_dc_offset, preemphasis or None)
    elif remove_dc_offset:
        frames = frames - frames.mean(-1, keepdim=True)
    energy = frames.square().sum(-1).clamp(min=torch.finfo(torch.float32).eps).log()
    return energy.clamp(min=math.log(energy_floor)) if energy_floor > 0.0 else energy
