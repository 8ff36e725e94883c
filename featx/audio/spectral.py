"""The blocked spectral engine: NumPy/torch conversion, framing, centre padding, frame blocks.

The spectral work is done frame block by frame block (window -> rFFT -> power -> mel -> log) into
one preallocated output: no full complex spectrogram is ever held, which is what makes the batched
path fast and keeps an hour of audio in a few hundred MB. The public front ends built on it live
in `featx.audio.functional` and `featx.audio.frontends`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from ..errors import InputError
from .filters import _cached_tensor

__all__ = ["num_frames", "frame"]

Array = Any  # np.ndarray | torch.Tensor
_BLOCK = 1024  # frames per block: big enough to amortise dispatch, small enough to stay in cache


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

    # One block after another: torch's intra-op threads parallelise each op, which measured faster
    # than spreading blocks over a thread pool (whose threads then compete with torch's), and keeps
    # dither's random draws in a fixed order.
    for job in jobs:
        work(job)
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
