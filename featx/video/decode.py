"""`load_video`: a video file into sampled RGB frames with their presentation times, streaming.

Decoding uses PyAV (``pip install 'featx[video]'``). Frames come out one at a time, so memory
does not grow with the video's length; only the sampled frames are converted to RGB.

Times are the frames' presentation timestamps (``pts`` x the stream's time base) minus the
stream's start time, so the first frame of a normal file is at 0.0 s and variable-frame-rate
files get their real times, not ``index / fps``. A rotated video (a display matrix, as phones
write for portrait recordings) is turned upright, as players show it.

Sampling (one of; the default is ``fps=1.0``):

- ``fps=F``: the first frame at or after each of the times ``start + k / F`` (a frame that covers
  several such times is given once);
- ``num_frames=N``: ``N`` frames evenly spaced by frame number over ``[start, end)`` (all frames
  when there are fewer); the frames are counted first by reading packet headers, without decoding;
- ``keyframes=True``: the key frames only; the decoder skips all other frames, so this is the
  fastest mode;
- ``scenes=True``: one frame per shot (see `featx.video.scenes`).

``start``/``end`` (seconds) bound the frames taken; ``start`` seeks to the key frame before it,
so it costs no decoding of what precedes. ``max_frames`` stops after that many frames.

A file that stops decoding part way (an FFmpeg error, or fewer seconds decoded than its header
declares: a truncated download) raises `VideoDamagedError` after the frames decoded before
the damage were yielded, so callers can keep them and flag them.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any, NamedTuple

import numpy as np

from ..errors import ConfigError, InputError, require
from ..streams import open_or_refuse

__all__ = [
    "DEFAULT_MAX_BYTES",
    "VIDEO_EXTENSIONS",
    "Sampling",
    "VideoDamagedError",
    "VideoFrame",
    "is_video_path",
    "load_video",
    "open_video",
]

VIDEO_EXTENSIONS = frozenset([".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi"])
DEFAULT_MAX_BYTES = 8 * 1024 ** 3  # cap on URL downloads (a local file is read in place)
# A stream that ends this much before the duration its header declares was cut short.
_SHORT_BY_S = 0.5


class VideoFrame(NamedTuple):
    """One decoded frame: ``index`` is its number in the stream (0 = first frame, presentation
    order), ``time_s`` its presentation time in seconds, ``image`` an upright RGB uint8 array
    [height, width, 3]."""

    index: int
    time_s: float
    image: np.ndarray
    key_frame: bool = False


class VideoDamagedError(InputError):
    """A video stopped decoding part way; ``frames`` frames were yielded before it."""

    def __init__(self, message: str, source: object | None = None, frames: int = 0) -> None:
        super().__init__(message, source=source)
        self.frames = frames


@dataclass(frozen=True)
class Sampling:
    """How frames are picked from a video (see the module docstring)."""

    fps: float | None = None
    num_frames: int | None = None
    keyframes: bool = False
    scenes: bool = False
    scene_threshold: float | None = None
    start: float | None = None
    end: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        modes = [m for m, on in (("fps", self.fps is not None), ("num_frames", self.num_frames is not None),
                                 ("keyframes", self.keyframes), ("scenes", self.scenes)) if on]
        if len(modes) > 1:
            raise ConfigError(f"choose one video sampling mode, not {' and '.join(modes)}")
        if not modes:
            object.__setattr__(self, "fps", 1.0)
        if self.fps is not None and not (self.fps > 0 and np.isfinite(self.fps)):
            raise ConfigError(f"video fps must be a positive number, not {self.fps!r}")
        for name in ("num_frames", "max_frames"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if self.start is not None and self.start < 0:
            raise ConfigError(f"start must be >= 0 seconds, not {self.start!r}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ConfigError(f"end ({self.end}) must be after start ({self.start})")
        if self.scene_threshold is not None and not 0 < self.scene_threshold < 1:
            raise ConfigError(f"scene threshold must be between 0 and 1, not {self.scene_threshold!r}")

    def describe(self) -> dict[str, Any]:
        """The settings that change which frames are taken (recorded in an output's manifest)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


def is_video_path(path: Any) -> bool:
    """Whether ``path`` is a string naming a file with a video extension."""
    return isinstance(path, (str, os.PathLike)) and os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


def _av() -> Any:
    return require("av", "video", "decoding video")


def open_video(src: Any, *, allow_private_urls: bool = True, max_bytes: int | None = DEFAULT_MAX_BYTES,
               timeout: float | None = 60.0) -> tuple[Any, IO[bytes], str]:
    """(PyAV container, the byte stream it reads, a label): caller closes both."""
    av = _av()
    fp, label, _ours = open_or_refuse(
        src, "video", timeout, max_bytes, allow_private_urls,
        arrays="load_video decodes files, bytes and URLs; frames given as arrays are images already",
        cannot="cannot load video from a {kind}; expected a path, bytes, a binary file object or an http(s) URL",
    )
    try:
        container = av.open(fp, mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        fp.close()
        raise InputError(f"not a recognised video file ({exc})", source=label) from exc
    if not container.streams.video:
        container.close()
        fp.close()
        raise InputError("has no video stream (an audio-only file? embed it with an audio model)", source=label)
    return container, fp, label


def load_video(src: Any, fps: float | None = None, *, num_frames: int | None = None, keyframes: bool = False,
               start: float | None = None, end: float | None = None, max_frames: int | None = None,
               scenes: bool = False, scene_threshold: float | None = None, allow_private_urls: bool = True,
               threads: int = 0) -> Iterator[VideoFrame]:
    """Yield the sampled frames of ``src`` (a path, bytes, binary file object or http(s) URL) as
    `VideoFrame`s, in presentation order; see the module docstring for the sampling options.
    ``threads``: decoder threads (0: FFmpeg's choice). Raises `featx.InputError` for a file with
    no video stream or that is not a video, `VideoDamagedError` after the last good frame of a
    damaged one, `featx.DependencyError` without PyAV."""
    sampling = Sampling(fps=fps, num_frames=num_frames, keyframes=keyframes, scenes=scenes,
                        scene_threshold=scene_threshold, start=start, end=end, max_frames=max_frames)
    return iter_frames(src, sampling, allow_private_urls=allow_private_urls, threads=threads)


def iter_frames(src: Any, sampling: Sampling, *, allow_private_urls: bool = True,
                threads: int = 0) -> Iterator[VideoFrame]:
    """`load_video` with its options as a `Sampling`."""
    container, fp, label = open_video(src, allow_private_urls=allow_private_urls)
    return _frames(container, fp, label, sampling, threads)


def _frames(container: Any, fp: IO[bytes], label: str, s: Sampling, threads: int) -> Iterator[VideoFrame]:
    av = _av()
    try:
        stream = container.streams.video[0]
        tb = stream.time_base
        base = float(tb)
        origin = stream.start_time if stream.start_time is not None else 0
        chosen: set[int] | None = None
        numbers: list[int] | None = None  # sorted pts of all frames: frame numbers where decoding skips
        if s.num_frames is not None or s.keyframes or s.start:
            numbers = _packet_pts(container, stream)
            container.seek(0, stream=stream)  # back to the start after reading the headers
        if s.num_frames is not None:
            chosen = _evenly_spaced(numbers or [], origin, base, s)
        ctx = stream.codec_context
        ctx.thread_type = "AUTO"  # frame + slice threads: what makes 1080p decode fast
        if threads:
            ctx.thread_count = threads
        if s.keyframes:
            ctx.skip_frame = "NONKEY"
        index = 0
        if s.start:
            container.seek(int((s.start / base) + origin), stream=stream, backward=True, any_frame=False)
        picker = _Picker(s)
        declared = _declared_seconds(container, stream)
        yielded = 0
        last_time = None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float((frame.pts - origin) * tb)  # exact, then rounded once
                if numbers is not None:
                    index = bisect.bisect_left(numbers, frame.pts)
                last_time = t
                if s.start is not None and t < s.start - 1e-9:
                    index += 1
                    continue
                if s.end is not None and t >= s.end:
                    return
                if chosen is not None:
                    take = frame.pts in chosen
                else:
                    take = picker.take(t, frame)
                if take:
                    yield VideoFrame(index, float(t), upright(frame), bool(frame.key_frame))
                    yielded += 1
                    if s.max_frames is not None and yielded >= s.max_frames:
                        return
                index += 1
        except av.FFmpegError as exc:
            if yielded == 0 and last_time is None:
                raise InputError(f"cannot decode the video stream ({exc})", source=label) from exc
            raise VideoDamagedError(f"the video is damaged after {last_time or 0:.2f} s ({exc})", source=label,
                                    frames=yielded) from exc
        if last_time is None and not s.start:
            raise InputError("the video stream has no decodable frame", source=label)
        # (a sampling that reached its end or max_frames returned above)
        if declared is not None and last_time is not None and not s.keyframes:
            expected = declared if s.end is None else min(declared, s.end)
            if last_time < expected - max(_SHORT_BY_S, 0.1 * expected) - _frame_s(stream):
                raise VideoDamagedError(f"the video is truncated: it stops at {last_time:.2f} s of the "
                                        f"{declared:.2f} s its header declares", source=label, frames=yielded)
    finally:
        container.close()
        fp.close()


class _Picker:
    """Which decoded frames an fps, key-frame or scene sampling takes."""

    def __init__(self, s: Sampling) -> None:
        self.s = s
        self.next_t = float(s.start or 0.0)
        self.scenes = None
        if s.scenes:
            from .scenes import SceneCuts

            self.scenes = SceneCuts(s.scene_threshold)

    def take(self, t: float, frame: Any) -> bool:
        if self.s.keyframes:
            return bool(frame.key_frame)
        if self.scenes is not None:
            return self.scenes.is_cut(frame)
        if t + 1e-6 < self.next_t:
            return False
        step = 1.0 / float(self.s.fps)  # type: ignore[arg-type]
        # the next time after t: a frame covering several sampling times is taken once
        self.next_t += step * (np.floor((t + 1e-6 - self.next_t) / step) + 1)
        return True


def upright(frame: Any) -> np.ndarray:
    """The frame as RGB uint8 [H, W, 3], turned as its display matrix says."""
    image = frame.to_ndarray(format="rgb24")
    turns = round((getattr(frame, "rotation", 0) or 0) / 90.0) % 4
    if turns:
        # PyAV's rotation is counter-clockwise degrees (the display matrix's); np.rot90 turns
        # an image counter-clockwise too
        image = np.ascontiguousarray(np.rot90(image, turns))
    return image


def _declared_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration) / 1_000_000
    return None


def _frame_s(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return 1.0 / float(rate) if rate else 0.0


def _packet_pts(container: Any, stream: Any) -> list[int]:
    """The presentation timestamps of every video packet, sorted, from reading packet headers only."""
    pts = [p.pts for p in container.demux(stream) if p.pts is not None and p.size]
    return sorted(pts)


def _evenly_spaced(numbers: list[int], origin: int, base: float, s: Sampling) -> set[int]:
    pts = [p for p in numbers
           if (s.start is None or (p - origin) * base >= s.start - 1e-9) and (s.end is None or (p - origin) * base < s.end)]
    n = int(s.num_frames or 0)
    if len(pts) <= n:
        return set(pts)
    picks = np.round(np.linspace(0, len(pts) - 1, n)).astype(int)
    return {pts[i] for i in picks}
