"""Audio functional core: windows, framing, STFT, mel filter banks, log/dB, Whisper log-mel, Kaldi fbank.

Every array function takes a NumPy array or a torch tensor (CPU or CUDA) and returns the same
kind; a NumPy array is computed through torch without a copy and comes back as NumPy. Waveforms
are ``(..., samples)``; leading axes are a batch. The computation runs at the input's floating
dtype (integers become float32), so float64 input gives float64 results.

The spectral work is done frame block by frame block (window -> rFFT -> power -> mel -> log) into
one preallocated output: no full complex spectrogram is ever held, which is what makes the batched
path fast and keeps an hour of audio in a few hundred MB. Filter banks and windows are built in
float64 exactly as ``transformers.audio_utils`` builds them and cached per device and dtype.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

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
    "frame",
    "num_frames",
    "stft",
    "mel_spectrogram",
    "power_to_db",
    "amplitude_to_db",
    "log_clamp",
    "whisper_mel_filters",
    "log_mel_whisper",
    "fbank",
    "zero_mean_unit_var",
]

Array = Any  # np.ndarray | torch.Tensor
MelScale = Literal["htk", "slaney", "kaldi"]
_BLOCK = 1024  # frames per block: big enough to amortise dispatch, small enough to stay in cache
_THREAD_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


# ---- conversions between NumPy and torch ------------------------------------------------------
def _as_tensor(x: Array, device: str | torch.device | None = None) -> tuple[torch.Tensor, bool]:
    """``(tensor, was_numpy)``; integers and half types become float32, float64 stays float64."""
    was_numpy = not isinstance(x, torch.Tensor)
    if was_numpy:
        arr = np.asarray(x)
        if arr.dtype.kind not in "iuf":
            raise InputError(f"waveforms must hold real numbers, not {arr.dtype}", source="waveform")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        t = x
        if t.is_complex() or t.dtype == torch.bool:
            raise InputError(f"waveforms must hold real numbers, not {t.dtype}", source="waveform")
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    if device is not None:
        t = t.to(device)
    return t, was_numpy


def _back(t: torch.Tensor, was_numpy: bool) -> Array:
    return t.cpu().numpy() if was_numpy else t


@functools.lru_cache(maxsize=64)
def _cached_tensor(key: tuple, dtype: torch.dtype, device: str) -> torch.Tensor:
    kind, args = key[0], key[1:]
    array = mel_filter_bank(*args) if kind == "mel" else window_function(*args)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)


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


# ---- framing and the blocked spectral engine ---------------------------------------------------
def num_frames(num_samples: int, frame_length: int, hop_length: int, center: bool = False) -> int:
    """Frame count: ``1 + T // hop`` centred, ``1 + (T - frame) // hop`` (0 if too short) otherwise."""
    if center:
        return 1 + num_samples // hop_length
    return 0 if num_samples < frame_length else 1 + (num_samples - frame_length) // hop_length


def frame(waveform: Array, frame_length: int, hop_length: int) -> Array:
    """A strided view ``(..., n_frames, frame_length)`` of the full frames (Kaldi snip_edges)."""
    if hop_length <= 0 or frame_length <= 0:
        raise InputError("frame_length and hop_length must be positive", source="hop_length")
    if isinstance(waveform, torch.Tensor):
        if waveform.shape[-1] < frame_length:
            return waveform.new_empty((*waveform.shape[:-1], 0, frame_length))
        return waveform.unfold(-1, frame_length, hop_length)
    x = np.asarray(waveform)
    if x.shape[-1] < frame_length:
        return np.empty((*x.shape[:-1], 0, frame_length), dtype=x.dtype)
    return np.lib.stride_tricks.sliding_window_view(x, frame_length, axis=-1)[..., ::hop_length, :]


def _check_center_pad(n: int, pad: int, mode: str) -> None:
    if mode == "reflect" and n <= pad:
        raise InputError(
            f"centred frames reflect-pad {pad} samples, so each waveform needs at least {pad + 1} "
            f"samples, but one has {n}; pad the audio (e.g. padding='max_length') first",
            source="waveform",
        )
    if mode not in ("reflect", "constant", "edge"):
        raise InputError(f"pad_mode must be 'reflect', 'constant' or 'edge', not {mode!r}", source="pad_mode")


def _center_pad(x: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """Pad the last axis by ``pad`` on both sides: "reflect" (needs more than ``pad`` samples), "constant", "edge"."""
    if pad == 0:
        return x
    n = x.shape[-1]
    _check_center_pad(n, pad, mode)
    # One copy into the padded buffer, then the edges from small slices (F.pad's reflect is slow).
    out = x.new_empty((*x.shape[:-1], n + 2 * pad))
    out[..., pad : pad + n] = x
    if mode == "reflect":
        out[..., :pad] = x[..., 1 : pad + 1].flip(-1)
        out[..., pad + n :] = x[..., n - pad - 1 : n - 1].flip(-1)
    elif mode == "edge":
        out[..., :pad] = x[..., :1]
        out[..., pad + n :] = x[..., n - 1 :]
    else:
        out[..., :pad] = 0
        out[..., pad + n :] = 0
    return out


def _segment(row: torch.Tensor, start: int, stop: int, pad_mode: str) -> torch.Tensor:
    """Samples ``[start, stop)`` of ``row`` as if centre-padded (indices may fall outside ``row``)."""
    n = row.shape[0]
    if start >= 0 and stop <= n:
        return row[start:stop]
    left, right = max(0, -start), max(0, stop - n)
    pieces = [row[max(start, 0) : min(stop, n)]]
    if pad_mode == "reflect":
        head, tail = row[1 : left + 1].flip(0), row[n - 1 - right : n - 1].flip(0)
    elif pad_mode == "edge":
        head, tail = row[:1].expand(left), row[n - 1 :].expand(right)
    else:
        head, tail = row.new_zeros(left), row.new_zeros(right)
    return torch.cat([head, *pieces, tail])


def _prepare_frames(
    view: torch.Tensor, window: torch.Tensor, remove_dc_offset: bool, preemphasis: float | None
) -> torch.Tensor:
    """DC removal, pre-emphasis (first sample times ``1 - c``) and window, into a new contiguous tensor."""
    if not (remove_dc_offset or preemphasis):
        return view * window
    buf = torch.empty(view.shape, dtype=view.dtype, device=view.device)
    if preemphasis:
        # y[k] = x[k] - c*x[k-1], y[0] = (1-c)*x[0]; DC removal folds into one term:
        # (x - m) pre-emphasised is y - (1-c)*m for every k.
        torch.sub(view[..., 1:], view[..., :-1], alpha=preemphasis, out=buf[..., 1:])
        torch.mul(view[..., :1], 1.0 - preemphasis, out=buf[..., :1])
        if remove_dc_offset:
            buf.sub_(view.mean(dim=-1, keepdim=True) * (1.0 - preemphasis))
    else:
        torch.sub(view, view.mean(dim=-1, keepdim=True), out=buf)
    return buf.mul_(window)


@contextlib.contextmanager
def _one_intra_op_thread() -> Iterator[int]:
    """Yield how many workers to spread frame blocks over (torch's intra-op thread count).

    torch's thread setting is process-wide, so it is left alone: changing it here would also slow
    a model running in another thread (the pipelines prepare audio while the model runs).
    """
    yield torch.get_num_threads()


def _single_threaded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run the whole of ``fn`` inside `_one_intra_op_thread` (its conversions and reductions too)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _one_intra_op_thread():
            return fn(*args, **kwargs)

    return wrapper


def _run_jobs(work: Callable[[Any], None], jobs: list[Any], workers: int) -> None:
    """Run ``work`` on every job, spread over up to ``workers`` pool threads (inline for one)."""
    global _POOL
    workers = min(workers, len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        for job in jobs:
            work(job)
        return
    with _THREAD_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="featx-audio")
        pool = _POOL

    def run_share(k: int) -> None:
        for job in jobs[k::workers]:
            work(job)

    for future in [pool.submit(run_share, k) for k in range(workers)]:
        future.result()


def _blocked_spectra(
    x: torch.Tensor,
    n_frames: int | Sequence[int],
    frame_length: int,
    hop_length: int,
    window: torch.Tensor,
    fft_length: int,
    *,
    power: float = 2.0,
    mel: torch.Tensor | None = None,
    remove_dc_offset: bool = False,
    preemphasis: float | None = None,
    dither: float = 0.0,
    generator: torch.Generator | None = None,
    floor: float | None = None,
    log: Literal["e", "10"] | None = None,
    bins_first: bool = False,
    center_pad: int = 0,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Spectra of the frames ``[f*hop, f*hop+frame)`` of the rows of ``x (B, T)``.

    Returns ``(B, max frames, bins)``, or ``(B, bins, max frames)`` with ``bins_first``.

    Per frame, in Kaldi's order: dither, DC removal, pre-emphasis (first sample times
    ``1 - coeff``), window, zero-padded rFFT, ``|X|**power``, ``@ mel`` when given, then
    ``max(., floor)`` and the log when given. ``n_frames`` may differ per row; missing frames are 0.
    ``center_pad`` pads each row virtually (only the edge blocks are copied); see `_center_pad`.
    """
    if center_pad:
        _check_center_pad(x.shape[-1], center_pad, pad_mode)
    batch = x.shape[0]
    counts = [int(n_frames)] * batch if isinstance(n_frames, (int, np.integer)) else [int(n) for n in n_frames]
    n_max = max(counts, default=0)
    n_bins = mel.shape[1] if mel is not None else fft_length // 2 + 1
    ragged = any(n != n_max for n in counts)
    shape = (batch, n_bins, n_max) if bins_first else (batch, n_max, n_bins)
    out_dtype = mel.dtype if mel is not None else x.dtype  # a float32 mel after a float64 FFT is allowed
    out = x.new_zeros(shape, dtype=out_dtype) if ragged else x.new_empty(shape, dtype=out_dtype)
    mel_t = mel.T if (bins_first and mel is not None) else None
    jobs = [(b, f0, min(counts[b], f0 + _BLOCK)) for b in range(batch) for f0 in range(0, counts[b], _BLOCK)]

    def work(job: tuple[int, int, int]) -> None:
        b, f0, f1 = job
        start = f0 * hop_length - center_pad
        stop = (f1 - 1) * hop_length + frame_length - center_pad
        view = _segment(x[b], start, stop, pad_mode).unfold(0, frame_length, hop_length)
        if dither != 0.0:
            noise = torch.randn(view.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
            view = view + dither * noise
        buf = _prepare_frames(view, window, remove_dc_offset, preemphasis)
        parts = torch.view_as_real(torch.fft.rfft(buf, n=fft_length, dim=1))
        mag = parts[..., 0] * parts[..., 0]
        mag.addcmul_(parts[..., 1], parts[..., 1])
        if power == 1.0:
            mag.sqrt_()
        elif power != 2.0:
            mag.pow_(power / 2.0)
        mag = mag.to(out_dtype)
        if bins_first:
            target = torch.matmul(mel_t, mag.T) if mel_t is not None else mag.T.contiguous()
        else:
            target = out[b, f0:f1]
            if mel is not None:
                torch.matmul(mag, mel, out=target)
            else:
                target.copy_(mag)
        if floor is not None:
            target.clamp_(min=floor)
        if log == "10":
            target.log10_()
        elif log == "e":
            target.log_()
        if bins_first:
            out[b, :, f0:f1] = target

    with _one_intra_op_thread() as workers:
        # Random draws must come in a fixed order to be reproducible; GPUs queue work anyway.
        serial = dither != 0.0 or x.device.type != "cpu"
        _run_jobs(work, jobs, 1 if serial else workers)
    return out


def _window_tensor(window: Array | None, frame_length: int, like: torch.Tensor) -> torch.Tensor:
    if window is None:
        return _cached_tensor(("win", frame_length, "hann", True), like.dtype, str(like.device))
    w = torch.as_tensor(window).to(device=like.device, dtype=like.dtype)
    if w.shape != (frame_length,):
        raise InputError(f"window has shape {tuple(w.shape)}, expected ({frame_length},)", source="window")
    return w


def _fft_length(fft_length: int | None, frame_length: int) -> int:
    fft_length = fft_length or frame_length
    if fft_length < frame_length:
        raise InputError(f"fft_length ({fft_length}) must be at least frame_length ({frame_length})", source="fft_length")
    return fft_length


def _batched(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    if x.ndim == 0:
        raise InputError("waveform must have a samples axis, got a scalar", source="waveform")
    return x.reshape(-1, x.shape[-1]), tuple(x.shape[:-1])


@_single_threaded
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
    t, was_numpy = _as_tensor(waveform)
    fft_length = _fft_length(fft_length, frame_length)
    x, lead = _batched(t)
    pad = frame_length // 2 if center else 0
    n = num_frames(x.shape[-1] + 2 * pad, frame_length, hop_length)
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


@_single_threaded
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
    t, was_numpy = _as_tensor(waveform)
    fft_length = _fft_length(fft_length, frame_length)
    x, lead = _batched(t)
    pad = frame_length // 2 if center else 0
    n = num_frames(x.shape[-1] + 2 * pad, frame_length, hop_length)
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


# ---- model-specific front ends -----------------------------------------------------------------
def whisper_mel_filters(n_mels: int = 80, n_fft: int = 400, sampling_rate: int = 16000) -> np.ndarray:
    """Whisper's Slaney filters (0-8000 Hz, Slaney norm), float64 ``(n_fft // 2 + 1, n_mels)``."""
    return mel_filter_bank(1 + n_fft // 2, n_mels, 0.0, 8000.0, sampling_rate, "slaney", "slaney")


@_single_threaded
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


@_single_threaded
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
