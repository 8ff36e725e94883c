"""Windows over long or streamed audio, so clips longer than a model's context can be embedded.

The windowing is the one of transformers' ASR pipeline (``chunk_length_s`` / ``stride_length_s``):

- every window is ``chunk_length_s`` long (rounded to whole samples), except perhaps the last;
- ``stride_length_s`` is context on EACH side: a window's first ``stride_left`` and last
  ``stride_right`` samples are shared with its neighbours, so consecutive windows overlap by
  ``left + right`` samples and start ``chunk - left - right`` samples apart. It is a number (the
  same on both sides) or a ``(left, right)`` pair; 0 gives back-to-back windows;
- the first window has ``stride_left == 0``, the last ``stride_right == 0``, so the spans
  ``Window.keep`` (a window minus its context) tile the whole waveform exactly once: pool window
  embeddings weighted by ``keep`` length, or trim per-frame outputs to it;
- the last window is the first one that reaches the end of the audio. With ``last="short"`` (the
  default, as the reference) it is cut at the end and may be shorter than a chunk (the extractor
  pads it); with ``last="fit"`` it is moved back to end at the last sample so it is full length
  (when the audio is at least one chunk long), overlapping its neighbour more;
- empty audio gives no windows; audio shorter than a chunk gives one short window.

A stream (any iterable of 1-D blocks of any sizes) yields exactly the windows of the concatenated
array, holding at most about one chunk in memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["Window", "chunk", "window_params"]


@dataclasses.dataclass(frozen=True, eq=False)
class Window:
    """One window: ``samples`` is ``waveform[start:end]`` (a view of an input array).

    ``stride_left``/``stride_right`` count the samples at each end shared with the neighbouring
    windows (context); ``keep`` is the span this window alone owns.
    """

    start: int
    end: int
    samples: np.ndarray = dataclasses.field(repr=False)
    stride_left: int = 0
    stride_right: int = 0
    is_last: bool = False

    @property
    def keep(self) -> tuple[int, int]:
        """``(start, end)`` without the context; the keeps of all windows tile the audio."""
        return self.start + self.stride_left, self.end - self.stride_right

    def __len__(self) -> int:
        return self.end - self.start


def window_params(
    chunk_length_s: float, stride_length_s: float | tuple[float, float] = 0, sampling_rate: int = 16000
) -> tuple[int, int, int]:
    """``(chunk, left, right)`` in samples, validated; the step between windows is chunk - left - right."""
    if not isinstance(sampling_rate, (int, np.integer)) or isinstance(sampling_rate, bool) or sampling_rate <= 0:
        raise InputError(f"sampling_rate must be a positive int (Hz), not {sampling_rate!r}", source="sampling_rate")
    if not isinstance(chunk_length_s, (int, float, np.number)) or not chunk_length_s > 0:
        raise InputError(f"chunk_length_s must be a positive number of seconds, not {chunk_length_s!r}", source="chunk_length_s")
    if isinstance(stride_length_s, (tuple, list)):
        if len(stride_length_s) != 2:
            raise InputError("stride_length_s must be a number or a (left, right) pair", source="stride_length_s")
        left_s, right_s = stride_length_s
    else:
        left_s = right_s = stride_length_s
    for value in (left_s, right_s):
        if not isinstance(value, (int, float, np.number)) or not value >= 0:
            raise InputError(f"stride_length_s must be >= 0 seconds, not {stride_length_s!r}", source="stride_length_s")
    size = int(round(chunk_length_s * sampling_rate))
    left = int(round(left_s * sampling_rate))
    right = int(round(right_s * sampling_rate))
    if size < 1:
        raise InputError(
            f"chunk_length_s={chunk_length_s} is less than one sample at {sampling_rate} Hz", source="chunk_length_s"
        )
    if left + right >= size:
        raise InputError(
            f"stride_length_s={stride_length_s} leaves no step: consecutive windows overlap by left + right "
            f"= {left + right} samples, which must be less than chunk_length_s ({size} samples); "
            "use a stride below half the chunk length",
            source="stride_length_s",
        )
    return size, left, right


def chunk(
    waveform: Any,
    chunk_length_s: float,
    stride_length_s: float | tuple[float, float] = 0,
    sampling_rate: int = 16000,
    *,
    last: str = "short",
) -> Iterator[Window]:
    """Yield `Window`s over ``waveform``: a 1-D array/tensor/list, or an iterable of 1-D blocks.

    See the module docstring for the stride and last-window rules. Lengths in seconds are rounded
    to whole samples at ``sampling_rate``.
    """
    size, left, right = window_params(chunk_length_s, stride_length_s, sampling_rate)
    if last not in ("short", "fit"):
        raise InputError(f"last must be 'short' or 'fit', not {last!r}", source="last")
    array = _as_whole(waveform)
    if array is not None:
        return _windows_of_array(array, size, left, right, last)
    try:
        blocks = iter(waveform)
    except TypeError:
        raise InputError(
            f"waveform must be a 1-D array, a tensor, a list of numbers or an iterable of blocks, "
            f"not {type(waveform).__name__}",
            source="waveform",
        ) from None
    return _windows_of_stream(blocks, size, left, right, last)


# ---- whole arrays ----------------------------------------------------------------------------


def _as_whole(waveform: Any) -> np.ndarray | None:
    """The waveform as one 1-D array, or None when it is a stream of blocks."""
    if type(waveform).__module__.startswith("torch"):
        waveform = waveform.detach().cpu().numpy()
    if isinstance(waveform, (list, tuple)):
        if waveform and not isinstance(waveform[0], (int, float, np.number)):
            return None  # a list of blocks
        waveform = np.asarray(waveform, dtype=np.float32)
    if not isinstance(waveform, np.ndarray):
        return None
    return _check_1d(waveform, "waveform")


def _check_1d(block: Any, name: str) -> np.ndarray:
    if type(block).__module__.startswith("torch"):
        block = block.detach().cpu().numpy()
    block = np.asarray(block, dtype=np.float32) if isinstance(block, (list, tuple)) else np.asarray(block)
    if block.ndim != 1:
        raise InputError(
            f"{name} has shape {block.shape}; windows are cut from mono audio of shape (samples,): "
            "downmix first (featx.load_audio does by default)",
            source=name,
        )
    return block


def _windows_of_array(x: np.ndarray, size: int, left: int, right: int, last: str) -> Iterator[Window]:
    n = len(x)
    step = size - left - right
    start = 0
    prev_end = 0
    while start < n:
        end = start + size
        if end >= n:
            yield _last_window(x, start, n, size, left, right, last, prev_end)
            return
        yield Window(start, end, x[start:end], left if start else 0, right, False)
        prev_end = end
        start += step


def _last_window(
    x: np.ndarray, start: int, n: int, size: int, left: int, right: int, last: str, prev_end: int
) -> Window:
    """The final window; ``x`` holds samples from ``n - len(x)`` to ``n``."""
    offset = n - len(x)
    if start == 0:  # the only window; nothing was dropped from x
        return Window(0, n, x, 0, 0, True)
    if last == "fit" and n >= size:
        # Move back to end at n; its context is what the previous window already owns.
        fitted = n - size
        return Window(fitted, n, x[fitted - offset :], prev_end - right - fitted, 0, True)
    return Window(start, n, x[start - offset :], left, 0, True)


# ---- streams ---------------------------------------------------------------------------------


def _windows_of_stream(blocks: Iterator[Any], size: int, left: int, right: int, last: str) -> Iterator[Window]:
    step = size - left - right
    buf = np.empty(0, dtype=np.float32)
    buf_start = 0  # the sample offset of buf[0]
    pending: list[np.ndarray] = []
    available = 0  # samples received so far
    start = 0
    prev_end = 0
    first = True
    for i, block in enumerate(blocks):
        block = _check_1d(block, f"waveform block {i}")
        if first:
            buf = buf.astype(block.dtype)
            first = False
        if not len(block):
            continue
        pending.append(block)
        available += len(block)
        # A full window is final only if the audio ends at its last sample: wait for one more.
        if available <= start + size:
            continue
        buf = np.concatenate([buf, *pending])
        pending.clear()
        while available > start + size:
            end = start + size
            yield Window(start, end, buf[start - buf_start : end - buf_start].copy(), left if start else 0, right, False)
            prev_end = end
            start += step
        # Keep from the next window's start, and the last chunk for last="fit".
        keep_from = min(start, max(available - size, 0)) if last == "fit" else start
        buf = buf[keep_from - buf_start :]
        buf_start = keep_from
    if pending:
        buf = np.concatenate([buf, *pending])
    if available > start:
        window = _last_window(buf, start, available, size, left, right, last, prev_end)
        yield dataclasses.replace(window, samples=window.samples.copy())
