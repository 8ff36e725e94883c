"""`load_audio`: files, bytes, file objects and URLs into mono float32 waveforms at a chosen rate.

WAV, FLAC, OGG/Vorbis/Opus, AIFF and the other libsndfile formats are read with ``soundfile``;
MP3, M4A/AAC, WebM and other containers with PyAV (``pip install 'featx[mp3]'``), which is
tried whenever soundfile cannot read the data (and for MP3 first, when installed, because FFmpeg's
MP3 decoder is the more robust one). Resampling uses soxr at "HQ" quality, the resampler the
reference recommends for files. Decoding, mixing and resampling run block by block
(`featx.audio.decode`), so memory follows the output, not the decoded file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, NamedTuple

import numpy as np

from ..errors import DependencyError, InputError
from ..streams import open_or_refuse
from .decode import Sink, decode_pyav, decode_soundfile

__all__ = ["Audio", "load_audio", "resample", "DEFAULT_MAX_DURATION_S", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_DURATION_S = 4 * 3600.0  # decoded-length cap: a tiny FLAC of silence can decode to GBs
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024  # cap on URL downloads and unseekable streams

# Leading bytes of containers libsndfile cannot read but FFmpeg can: with no PyAV installed,
# these get "install featx[mp3]" rather than "not audio".
_CONTAINER_MAGIC = (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xf1", b"\xff\xf9", b"\x1a\x45\xdf\xa3")


class Audio(NamedTuple):
    """A decoded waveform: ``(samples,)`` when mono, ``(channels, samples)`` otherwise."""

    waveform: np.ndarray
    sampling_rate: int


def load_audio(
    src: Any,
    sampling_rate: int | None = None,
    mono: bool = True,
    *,
    dtype: Any = np.float32,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    timeout: float | None = 30.0,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    allow_private_urls: bool = True,
) -> Audio:
    """Decode ``src`` and return ``Audio(waveform, sampling_rate)``; unpacks like ``librosa.load``.

    ``src``: a path (str or `os.PathLike`), an http(s) URL, ``bytes``, or a binary file object.
    ``sampling_rate``: resample to this rate (soxr "HQ"); ``None`` keeps the file's rate, which
    is returned either way. ``mono=True`` averages the channels into a 1-D array; ``mono=False``
    returns ``(channels, samples)`` (librosa's layout). Samples are floats in [-1, 1] whatever the
    file stores (int16, int24, int32, float). ``max_duration_s`` refuses longer audio: before
    decoding when the header states the length exactly, else as soon as decoding passes it (``None``
    disables the cap); ``timeout``/``max_bytes`` bound URL downloads. ``allow_private_urls=False``
    refuses URLs (and redirects) to loopback, private, link-local, multicast and reserved
    addresses (see `featx.streams`); by default any URL is fetched.

    Raises `featx.InputError` naming the source for missing, empty, header-only or non-audio
    files, for NaN/infinite samples (also when mixing or resampling overflows) and for audio too
    short to give a single sample at ``sampling_rate``.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64, not {dtype}", source="dtype")
    if sampling_rate is not None:
        if isinstance(sampling_rate, float) and sampling_rate.is_integer():
            sampling_rate = int(sampling_rate)
        if not isinstance(sampling_rate, (int, np.integer)) or isinstance(sampling_rate, bool) or sampling_rate <= 0:
            raise InputError(
                f"sampling_rate must be a positive int (Hz) or None, not {sampling_rate!r}", source="sampling_rate"
            )
    target = None if sampling_rate is None else int(sampling_rate)
    fp, label, ours = _open_source(src, timeout, max_bytes, allow_private_urls)
    try:
        wave, rate = _decode(fp, label, lambda: Sink(label, dtype, mono, target, max_duration_s))
    finally:
        if ours:
            fp.close()
    return Audio(wave, int(rate))


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample with soxr along the first axis (``(samples,)`` or ``(samples, channels)``)."""
    import soxr

    if orig_rate == target_rate:
        return waveform
    if waveform.dtype not in (np.float32, np.float64):
        waveform = waveform.astype(np.float32)
    return soxr.resample(waveform, orig_rate, target_rate, quality=quality)


# ---- sources ---------------------------------------------------------------------------------


def _open_source(
    src: Any, timeout: float | None, max_bytes: int | None, allow_private: bool = True
) -> tuple[IO[bytes], str, bool]:
    """A seekable binary stream for ``src``, a label naming it, and whether we must close it."""
    return open_or_refuse(
        src, "audio file", timeout, max_bytes, allow_private,
        arrays="load_audio decodes files, bytes and URLs; an array is already a waveform: pass it to "
        "the extractor with its sampling_rate (featx.audio.io.resample changes the rate)",
        cannot="cannot load audio from a {kind}; expected a path, bytes, a binary file object or an http(s) URL",
    )


# ---- decoding --------------------------------------------------------------------------------


def _decode(fp: IO[bytes], label: str, new_sink: Callable[[], Sink]) -> tuple[np.ndarray, int]:
    """The decoded output and its rate; soundfile first, PyAV for what it cannot read.

    ``new_sink`` gives a fresh `Sink` per attempt: a read that fails halfway through soundfile
    starts over in PyAV.
    """
    import soundfile as sf

    start = fp.tell()
    head = fp.read(16)
    fp.seek(start)
    if not head:
        raise InputError("empty input: no bytes to decode", source=label)
    sf_error: Exception | None = None
    try:
        with sf.SoundFile(fp) as snd:
            if not (snd.format == "MP3" and _has_pyav()):
                return decode_soundfile(snd, new_sink())
    except (sf.LibsndfileError, sf.SoundFileRuntimeError, RuntimeError, TypeError) as exc:
        sf_error = exc
    fp.seek(start)
    try:
        return decode_pyav(fp, new_sink(), sf_error)
    except DependencyError as exc:
        if head.startswith(_CONTAINER_MAGIC) or head[4:8] == b"ftyp":
            raise DependencyError(f"{label}: looks like MP3/AAC/M4A/WebM; {exc}") from exc
        raise InputError(
            f"not a recognised audio file (soundfile: {sf_error}); for MP3, M4A and other "
            "compressed formats install PyAV with: pip install 'featx[mp3]'",
            source=label,
        ) from sf_error


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True
