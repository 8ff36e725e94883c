"""Block-wise decoding for `load_audio`: samples are mixed, checked and resampled as they decode.

Only the output (mono at the target rate, by default) is kept, so peak memory is a small multiple
of the output rather than three copies of the decoded file. Streaming soxr gives the same numbers
as a one-shot ``soxr.resample`` over the whole signal (libsoxr's state carries across blocks).
"""

from __future__ import annotations

import math
from typing import IO, Any

import numpy as np

from ..errors import InputError, require

__all__ = ["BLOCK_FRAMES", "Sink", "decode_soundfile", "decode_pyav"]

BLOCK_FRAMES = 1 << 16  # frames per block: 4 MiB at 16 channels of float32
_MAX_RESERVE = 1 << 26  # samples reserved up front at most (256 MiB of float32, 70 min at 16 kHz)

# Demuxers whose declared duration comes from the header (not a guess from the bit rate), so a
# file can be refused before decoding. MP3 qualifies only with a Xing/Info/VBRI frame count:
# without one FFmpeg extrapolates from the first frame's bit rate (seen 8x too long).
_EXACT_DURATION_FORMATS = frozenset(
    {"matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "ogg", "flac", "wav", "w64", "aiff", "caf", "asf"}
)


class _Buffer:
    """A growable ``(frames,)`` or ``(frames, channels)`` array; grows and shrinks in place."""

    def __init__(self, dtype: np.dtype, channels: int | None, capacity: int) -> None:
        self._tail = () if channels is None else (channels,)
        self._data = np.empty((max(capacity, 1024),) + self._tail, dtype=dtype)
        self._size = 0

    def append(self, block: np.ndarray) -> None:
        end = self._size + block.shape[0]
        if end > self._data.shape[0]:
            # realloc: Linux moves large blocks with mremap, so growing does not copy the samples.
            self._data.resize((max(end, self._data.shape[0] * 5 // 4),) + self._tail, refcheck=False)
        self._data[self._size : end] = block
        self._size = end

    def result(self) -> np.ndarray:
        # No view of _data exists outside this class, so refcheck is not needed; shrinking in
        # place avoids the second copy that slicing and copying would make.
        self._data.resize((self._size,) + self._tail, refcheck=False)
        return self._data


class Sink:
    """Takes ``(frames, channels)`` blocks as they decode; keeps the mixed, resampled output.

    Enforces ``max_duration_s`` on the decoded count (stopping as soon as it is passed), and
    refuses NaN/infinite samples in the input, after the mono mix and after resampling.
    """

    def __init__(
        self, label: str, dtype: np.dtype, mono: bool, target_rate: int | None, max_duration_s: float | None
    ) -> None:
        self.label, self.dtype, self.mono = label, dtype, mono
        self.target_rate, self.max_duration_s = target_rate, max_duration_s
        self.rate = 0
        self.channels = 0
        self.frames_in = 0
        self._bad = 0
        self._stream: Any = None
        self._out: _Buffer | None = None

    def check_declared(self, seconds: float | None) -> None:
        """Refuse before decoding when the header already says the audio is too long."""
        if seconds is not None and self.max_duration_s is not None and seconds > self.max_duration_s:
            raise InputError(
                f"is {seconds:.1f} s long, more than max_duration_s={self.max_duration_s:g}; "
                "pass a larger max_duration_s (or None) to load it",
                source=self.label,
            )

    def start(self, rate: int, channels: int, frames_hint: int | None = None) -> None:
        """Set the source rate and channel count (known once the header or first frame is read)."""
        if rate <= 0 or channels <= 0:
            raise InputError(f"declares {rate} Hz and {channels} channels; the header is corrupt", source=self.label)
        self.rate, self.channels = int(rate), int(channels)
        out_rate = self.target_rate or self.rate
        if out_rate != self.rate:
            import soxr

            try:
                self._stream = soxr.ResampleStream(
                    self.rate, out_rate, 1 if self.mono else self.channels, dtype=self.dtype.name, quality="HQ"
                )
            except (ValueError, RuntimeError, MemoryError) as exc:
                raise InputError(f"cannot resample {self.rate} Hz to {out_rate} Hz ({exc})", source=self.label) from exc
        # Reserve the declared length (exact headers need no growth), but a lying header cannot
        # reserve more than _MAX_RESERVE samples: past that the buffer grows as samples arrive.
        capacity = 1 << 18
        if frames_hint is not None and 0 < frames_hint < 1 << 48:
            capacity = math.ceil(frames_hint * out_rate / self.rate) + 64
        width = 1 if self.mono else self.channels
        self._out = _Buffer(self.dtype, None if self.mono else self.channels, min(capacity, _MAX_RESERVE // width))

    def push(self, block: np.ndarray) -> None:
        """Add decoded ``(frames, channels)`` samples."""
        n = block.shape[0]
        if n == 0:
            return
        self.frames_in += n
        if self.max_duration_s is not None and self.frames_in / self.rate > self.max_duration_s:
            raise InputError(
                f"is longer than max_duration_s={self.max_duration_s:g} (stopped decoding at "
                f"{self.frames_in / self.rate:.1f} s); pass a larger max_duration_s (or None) to load it",
                source=self.label,
            )
        finite = np.isfinite(block)
        if not finite.all():
            self._bad += int(block.size - np.count_nonzero(finite))
        if self._bad:
            return  # refused in finish(); decoding goes on only to count the bad samples
        block = np.asarray(block, dtype=self.dtype)
        if self.mono:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
                wave = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=self.dtype)
            self._require_finite(wave, f"mixing its {block.shape[1]} channels to mono")
        elif block.shape[1] != self.channels:
            raise InputError(
                f"changes from {self.channels} to {block.shape[1]} channels mid-stream; load it with mono=True",
                source=self.label,
            )
        else:
            wave = block
        assert self._out is not None
        if self._stream is not None:
            # Upsampling multiplies a block by out_rate / rate (16000x for a header that says 1 Hz):
            # feed soxr slices of about one output block, so that no call returns (and no append
            # copies) the whole output at once; memory then follows the output.
            step = max(1, BLOCK_FRAMES * self.rate // (self.target_rate or self.rate))
            for i in range(0, wave.shape[0], step):
                self._out.append(self._resample(wave[i : i + step], last=False))
            return
        self._out.append(wave)

    def finish(self) -> tuple[np.ndarray, int]:
        """The output, ``(frames,)`` or ``(channels, frames)``, and its rate."""
        if self.frames_in == 0 or self._out is None:
            raise InputError("contains no audio samples (header only?)", source=self.label)
        if self._bad:
            raise InputError(
                f"contains {self._bad} NaN or infinite samples; the file is corrupt or not normalised audio",
                source=self.label,
            )
        if self._stream is not None:
            width = () if self.mono else (self.channels,)
            self._out.append(self._resample(np.zeros((0,) + width, dtype=self.dtype), last=True))
        wave = self._out.result()
        out_rate = self.target_rate or self.rate
        if wave.shape[0] == 0:
            raise InputError(
                f"is too short to resample: {self.frames_in} input sample{'' if self.frames_in == 1 else 's'} "
                f"at {self.rate} Hz, 0 output samples at {out_rate} Hz",
                source=self.label,
            )
        if not self.mono:
            wave = np.ascontiguousarray(wave.T)  # librosa's (channels, samples)
        return wave, out_rate

    def _resample(self, wave: np.ndarray, last: bool) -> np.ndarray:
        try:
            out = self._stream.resample_chunk(np.ascontiguousarray(wave), last=last)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise InputError(f"resampling failed ({exc})", source=self.label) from exc
        self._require_finite(out, f"resampling to {self.target_rate} Hz")
        return out

    def _require_finite(self, wave: np.ndarray, step: str) -> None:
        # Finite samples far outside [-1, 1] (float files) can still overflow when summed.
        if not np.isfinite(wave).all():
            raise InputError(
                f"{step} gives NaN or infinite values: its samples are far outside [-1, 1]; the file is "
                "corrupt or not normalised audio",
                source=self.label,
            )


def decode_soundfile(snd: Any, sink: Sink) -> tuple[np.ndarray, int]:
    """Read an open `soundfile.SoundFile` block by block into ``sink``."""
    frames = int(snd.frames) if snd.frames and snd.frames > 0 else None
    if frames is not None and snd.samplerate > 0:
        sink.check_declared(frames / snd.samplerate)
    sink.start(int(snd.samplerate), int(snd.channels), frames)
    while True:
        try:
            block = snd.read(BLOCK_FRAMES, dtype=sink.dtype.name, always_2d=True)
        except ValueError as exc:
            # soundfile sizes each read from frames - tell(), which goes negative when libsndfile's
            # position passes the declared length (seen with a corrupt Ogg granule position). A
            # RuntimeError makes load_audio start over in PyAV, as for libsndfile's own read errors.
            raise RuntimeError(f"soundfile lost its place in the stream ({exc})") from exc
        if block.shape[0] == 0:
            break
        sink.push(block)
    return sink.finish()


def decode_pyav(fp: IO[bytes], sink: Sink, sf_error: Exception | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV into ``sink``, as packed float32 blocks.

    Packed, not planar: PyAV's ``AudioFrame.to_ndarray`` walks ``extended_data`` to a NULL that
    is not there with 8+ planar channels, and crashes the process.
    """
    av = require("av", "mp3", "decoding MP3 and other compressed audio")
    label = sink.label
    has_length_tag = _mp3_has_length_tag(fp)
    try:
        container = av.open(fp, mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        tried = f"soundfile: {sf_error}; PyAV: {exc}" if sf_error is not None else f"PyAV: {exc}"
        raise InputError(f"not a recognised audio file ({tried})", source=label) from exc
    try:
        if not container.streams.audio:
            raise InputError("has no audio stream", source=label)
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        fmt = container.format.name
        if fmt in _EXACT_DURATION_FORMATS or (fmt == "mp3" and has_length_tag):
            sink.check_declared(declared)
        resampler = None
        try:
            for frame in container.decode(stream):
                if resampler is None:
                    hint = int(declared * frame.sample_rate) if declared else None
                    sink.start(int(frame.sample_rate), frame.layout.nb_channels, hint)
                    resampler = _resampler(av, frame, sink.rate)
                try:
                    outs = resampler.resample(frame)
                except ValueError:  # the layout or rate changed mid-stream: flush, then a new converter
                    outs = resampler.resample(None)
                    resampler = _resampler(av, frame, sink.rate)
                    outs += _convert(resampler, frame, label)
                for out in outs:
                    sink.push(_packed(out))
        except av.FFmpegError as exc:
            if resampler is None:  # not a single frame decoded
                raise InputError(f"cannot decode the audio stream ({exc})", source=label) from exc
            # A truncated file: keep what decoded, as FFmpeg's command line does.
        if resampler is not None:
            for out in _convert(resampler, None, label):
                sink.push(_packed(out))
        return sink.finish()
    finally:
        container.close()


def _resampler(av: Any, frame: Any, rate: int) -> Any:
    # Same rate as the first frame (soxr resamples afterwards); fixed-size output frames so the
    # per-block work is done in blocks of BLOCK_FRAMES, not per 1152-sample MP3 frame.
    return av.AudioResampler(format="flt", layout=frame.layout, rate=rate, frame_size=BLOCK_FRAMES)


def _convert(resampler: Any, frame: Any, label: str) -> list:
    import av

    try:
        return resampler.resample(frame)
    except (av.FFmpegError, ValueError) as exc:
        raise InputError(f"cannot convert the decoded samples to float ({exc})", source=label) from exc


def _packed(frame: Any) -> np.ndarray:
    """``(frames, channels)`` float32 from a packed ``flt`` frame (one plane, interleaved)."""
    return frame.to_ndarray().reshape(-1, frame.layout.nb_channels)


def _declared_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _mp3_has_length_tag(fp: IO[bytes]) -> bool:
    """Whether the first MP3 frame carries a Xing/Info/VBRI frame count (exact duration)."""
    start = fp.tell()
    try:
        head = fp.read(10)
        offset = 0
        if len(head) == 10 and head.startswith(b"ID3"):  # skip the ID3v2 tag (syncsafe size)
            size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
            offset = 10 + size + (10 if head[5] & 0x10 else 0)
        fp.seek(start + offset)
        data = fp.read(4096)
    finally:
        fp.seek(start)
    i = data.find(b"\xff")
    while 0 <= i < len(data) - 1 and data[i + 1] & 0xE0 != 0xE0:  # 11-bit frame sync
        i = data.find(b"\xff", i + 1)
    if not 0 <= i < len(data) - 1:
        return False
    window = data[i + 4 : i + 48]  # Xing/Info sit after the side info, VBRI at byte 36
    return b"Xing" in window or b"Info" in window or b"VBRI" in window
