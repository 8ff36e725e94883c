"""Where a live stream's audio comes from, as blocks of mono float32 samples at the model's rate.

Sources: raw PCM (``s16le``, ``s32le``, ``f32le``; any channel count) from stdin or a file; any
container PyAV reads (WAV, FLAC, OGG, MP3, Matroska, MPEG-TS...) from stdin, a file, or an
http(s) URL; and a file read as it grows (``follow``: reads wait for more data until the file has
not grown for ``idle_timeout`` seconds).

Each block comes with the time (``time.perf_counter``) it was read, so latency can be measured
from the last sample of a window. Samples are turned into floats, mixed to mono and resampled
exactly as `featx.load_audio` does for a file (the channel mean in float32; streaming soxr at
"HQ", which gives the numbers of a one-shot resample), so a stream's windows equal the file's.
Raw PCM reads ask for no more bytes than the next window needs (``want``), so a window's last
sample is read just before the window is embedded, not a large buffer earlier.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from ..errors import ConfigError, InputError, require

__all__ = ["PCM_FORMATS", "Block", "FollowReader", "SourceSpec", "open_blocks"]

PCM_FORMATS = {"s16le": (np.dtype("<i2"), 32768.0), "s32le": (np.dtype("<i4"), 2147483648.0),
               "f32le": (np.dtype("<f4"), 1.0)}
_READ = 1 << 15  # bytes per read of a raw stream at most


@dataclass(frozen=True)
class Block:
    """Mono float32 samples at the model's rate and when the bytes they come from were read."""

    samples: np.ndarray
    read_at: float


@dataclass(frozen=True)
class SourceSpec:
    """A stream source: ``path`` ("-" is stdin, or a file path or http(s) URL); ``fmt`` a raw
    PCM format (None: a container PyAV reads); ``rate``/``channels`` for raw PCM."""

    path: str = "-"
    fmt: str | None = None
    rate: int = 16000
    channels: int = 1
    follow: bool = False
    idle_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.fmt is not None and self.fmt not in PCM_FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(PCM_FORMATS)}, not {self.fmt!r}")
        if self.rate < 1 or self.channels < 1:
            raise ConfigError("--rate and --channels must be positive")
        if "://" in self.path and not self.path.startswith(("http://", "https://")):
            raise ConfigError(f"only http(s) URLs are read, not {self.path.split('://')[0]}://")
        if self.follow and (self.path == "-" or "://" in self.path):
            raise ConfigError("--follow reads a file as it grows; stdin and URLs are followed anyway")


class FollowReader(io.RawIOBase):
    """A file read as it grows: at its end, a read waits for more data, and returns b"" (the end)
    once the file has not grown for ``idle_timeout`` seconds."""

    def __init__(self, path: str, idle_timeout: float, poll: float = 0.02) -> None:
        super().__init__()
        self._fh = open(path, "rb")  # noqa: SIM115 - closed with this reader
        self.idle_timeout, self.poll = idle_timeout, poll

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        waited = 0.0
        while True:
            n = self._fh.readinto(buffer)
            if n:
                return n
            if waited >= self.idle_timeout:
                return 0
            time.sleep(self.poll)
            waited += self.poll

    def close(self) -> None:
        self._fh.close()
        super().close()


class _Mixer:
    """Float blocks [frames, channels] at ``rate`` -> mono float32 at ``target`` (as `load_audio`)."""

    def __init__(self, rate: int, target: int, channels: int) -> None:
        self.rate, self.target = rate, target
        self._soxr = None
        if rate != target:
            import soxr

            self._soxr = soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.asarray(block, np.float32)
        wave = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
        if not np.isfinite(wave).all():
            raise InputError("the stream holds NaN or infinite samples", source="stream")
        if self._soxr is not None:
            wave = self._soxr.resample_chunk(np.ascontiguousarray(wave), last=last)
        return wave


def _raw(spec: SourceSpec) -> IO[bytes]:
    if spec.path == "-":
        return sys.stdin.buffer
    if spec.follow:
        return FollowReader(spec.path, spec.idle_timeout)  # type: ignore[return-value]
    return open(spec.path, "rb")


def _pcm_blocks(spec: SourceSpec, target: int, want: Callable[[], int]) -> Iterator[Block]:
    dtype, scale = PCM_FORMATS[spec.fmt or "s16le"]
    frame_bytes = dtype.itemsize * spec.channels
    mix = _Mixer(spec.rate, target, spec.channels)
    fh = _raw(spec)
    fd_read = _fd_reader(fh)
    carry = b""
    try:
        while True:
            # enough source frames for the samples the next window still needs (at the model's rate)
            frames = max(1, int(np.ceil(want() * spec.rate / target)))
            data = fd_read(min(_READ, max(frame_bytes, frames * frame_bytes - len(carry))))
            if not data:
                break
            data = carry + data
            usable = len(data) - len(data) % frame_bytes
            carry = data[usable:]
            if not usable:
                continue
            pcm = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, spec.channels)
            yield Block(mix(pcm.astype(np.float32) / scale), time.perf_counter())
        tail = mix(np.zeros((0, spec.channels), np.float32), last=True)
        if tail.size:
            yield Block(tail, time.perf_counter())
        if carry:
            raise InputError(f"the stream ends inside a sample frame ({len(carry)} stray bytes)", source=spec.path)
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def _fd_reader(fh: Any) -> Callable[[int], bytes]:
    """``read(n)`` that returns what is there (at most n bytes) without waiting for all n: on a
    pipe, audio is handled as it arrives."""
    try:
        fd = fh.fileno()
    except (OSError, AttributeError, io.UnsupportedOperation):
        return fh.read  # type: ignore[no-any-return]
    if isinstance(fh, FollowReader):
        return fh.read  # type: ignore[no-any-return]
    return lambda n: os.read(fd, n)


def _container_blocks(spec: SourceSpec, target: int) -> Iterator[Block]:
    av = require("av", "video", "reading audio streams")
    src: Any = spec.path
    if spec.path == "-":
        src = sys.stdin.buffer
    elif spec.follow:
        src = FollowReader(spec.path, spec.idle_timeout)
    try:
        container = av.open(src, mode="r", options={"rw_timeout": "30000000"} if "://" in spec.path else {})
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"cannot read the stream ({exc})", source=spec.path) from exc
    try:
        if not container.streams.audio:
            raise InputError("has no audio stream", source=spec.path)
        stream = container.streams.audio[0]
        mix = None
        converter = None
        for frame in container.decode(stream):
            if converter is None:
                converter = av.AudioResampler(format="flt", layout=frame.layout, rate=frame.sample_rate)
                mix = _Mixer(int(frame.sample_rate), target, frame.layout.nb_channels)
            for out in converter.resample(frame):
                block = out.to_ndarray().reshape(-1, out.layout.nb_channels)
                yield Block(mix(block), time.perf_counter())  # type: ignore[misc]
        if converter is not None and mix is not None:
            for out in converter.resample(None):
                yield Block(mix(out.to_ndarray().reshape(-1, out.layout.nb_channels)), time.perf_counter())
            tail = mix(np.zeros((0, 1), np.float32), last=True)
            if tail.size:
                yield Block(tail, time.perf_counter())
    except av.FFmpegError as exc:
        raise InputError(f"the stream cannot be decoded ({exc})", source=spec.path) from exc
    finally:
        container.close()
        if isinstance(src, FollowReader):
            src.close()


def open_blocks(spec: SourceSpec, target_rate: int, want: Callable[[], int] | None = None) -> Iterator[Block]:
    """The source's audio as `Block`s at ``target_rate``. ``want()``: how many more samples (at
    ``target_rate``) the next window needs; raw PCM reads no more than that at a time."""
    if spec.fmt is not None:
        return _pcm_blocks(spec, target_rate, want or (lambda: _READ))
    return _container_blocks(spec, target_rate)
