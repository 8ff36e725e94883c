"""Videos on the engine's run path: one prepared input per video, one part per sampled frame.

`VideoPreparer` decodes a video (`featx.video.decode`) and runs each sampled frame through the
image model's own preparation (the family spec's ``prepare`` and the checkpoint's processor),
so a frame gets exactly the numbers the same picture would get as an image file. The prepared
arrays have a leading part axis (one entry per frame) and per-frame row metadata under
``row_`` keys (`featx.engine.parts`): ``row_frame``, ``row_time_s``, ``row_partial``.

`AudioTrackPreparer` is the audio model's counterpart: the video's audio track is decoded
by `featx.load_audio` (PyAV) and cut into the family's windows; each window's row carries its
sample offsets and its times in seconds.

Memory: a prepared video holds its processed frames (3 x 224 x 224 float32 = 0.6 MB each at the
usual model size), so a video gives at most ``max_frames`` frames (`DEFAULT_MAX_FRAMES`);
past that its rows are kept and flagged like a damaged video's (see below), and the error says
to sample fewer frames. The CLI also prepares at most a few videos ahead of the model.

Damage: when a video stops decoding part way, the frames decoded before the damage are kept:
their rows have ``partial`` = 1 and the damage in ``error`` (so the input counts as failed and
``--retry-failed`` redoes it), and one more row with no embedding carries the error alone.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..engine.jobs import DAMAGE_KEY
from ..engine.parts import Parts, register_parts
from ..errors import InputError
from ..families.spec import describe_source
from .decode import Sampling, VideoDamagedError, is_video_path, iter_frames

__all__ = [
    "AUDIO_TRACK",
    "DAMAGE_KEY",
    "DEFAULT_MAX_FRAMES",
    "VIDEO_FRAMES",
    "AudioTrackPreparer",
    "VideoPreparer",
    "damage_of",
]

DEFAULT_MAX_FRAMES = 1024


def _frame_columns(arrays: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
    return {"frame": int(arrays["row_frame"][i]), "time_s": float(arrays["row_time_s"][i]),
            "partial": bool(arrays["row_partial"][i])}


def _track_columns(arrays: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
    offsets = arrays["offsets"]
    return {"window": i, "start": int(offsets[i][0]), "end": int(offsets[i][1]),
            "start_s": float(arrays["row_start_s"][i]), "end_s": float(arrays["row_end_s"][i])}


#: one row per sampled video frame: its number in the stream, its time, whether the video was damaged
VIDEO_FRAMES = register_parts(Parts("frames", (("frame", "int64"), ("time_s", "float64"), ("partial", "bool")),
                                    _frame_columns))
#: one row per audio window of a video's sound track, with its offsets in samples and seconds
AUDIO_TRACK = register_parts(Parts("audio_track", (("window", "int32"), ("start", "int64"), ("end", "int64"),
                                                   ("start_s", "float64"), ("end_s", "float64")), _track_columns))


def damage_of(arrays: Mapping[str, Any]) -> str | None:
    """The damage text of a prepared input kept in part (None: whole)."""
    value = arrays.get(DAMAGE_KEY) if isinstance(arrays, Mapping) else None
    return None if value is None else str(np.asarray(value))


class VideoPreparer:
    """``prepare(src)`` for an image model's `featx.embedding.Embedder` over videos (see the
    module docstring). An input that is not a video (an image in the same folder) becomes one
    frame at 0 s."""

    def __init__(self, embedder: Any, sampling: Sampling | None = None, *,
                 max_frames: int = DEFAULT_MAX_FRAMES, threads: int = 0) -> None:
        self.embedder = embedder
        self.sampling = sampling or Sampling()
        self.max_frames = int(max_frames)
        self.threads = threads
        self.modality = "image"

    def preparer(self) -> VideoPreparer:
        """A copy without the model, cheap to send to worker processes."""
        light = copy.copy(self)
        make = getattr(self.embedder, "preparer", None)
        light.embedder = make() if callable(make) else self.embedder
        return light

    def _image(self, image: Any) -> dict[str, np.ndarray]:
        e = self.embedder
        return e.family.prepare(e.processor, image, allow_private_urls=e.allow_private_urls)

    def prepare(self, src: Any, *, budget: Any = None) -> dict[str, np.ndarray]:
        if isinstance(src, (str, os.PathLike)) and not is_video_path(src) and not str(src).startswith("http"):
            arrays = self.embedder.prepare(src, budget=budget)
            return {**arrays, "row_frame": np.zeros(1, np.int64), "row_time_s": np.zeros(1),
                    "row_partial": np.zeros(1, bool)}
        cap = self.max_frames
        limit = cap + 1 if self.sampling.max_frames is None else min(cap + 1, self.sampling.max_frames)
        sampling = Sampling(**{**self.sampling.__dict__, "max_frames": limit})
        pieces: list[dict[str, np.ndarray]] = []
        numbers: list[int] = []
        times: list[float] = []
        damage = None
        frames = iter_frames(src, sampling, allow_private_urls=self.embedder.allow_private_urls,
                             threads=self.threads)
        try:
            for frame in frames:
                if len(pieces) == cap:
                    damage = (f"more than {cap} frames sampled; rows cover the first {cap} (to "
                              f"{times[-1]:.2f} s): sample fewer (--video-fps, --video-frames, --keyframes) "
                              f"or raise --video-max-frames")
                    break
                pieces.append(self._image(frame.image))
                numbers.append(frame.index)
                times.append(frame.time_s)
        except VideoDamagedError as exc:
            if not pieces:
                raise
            damage = str(exc)
        finally:
            frames.close()
        if not pieces:
            raise InputError("no frame was sampled (the video is shorter than the start time?)",
                             source=describe_source(src))
        arrays = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        arrays.update(row_frame=np.asarray(numbers, np.int64), row_time_s=np.asarray(times, np.float64),
                      row_partial=np.full(len(pieces), damage is not None))
        if damage is not None:
            arrays[DAMAGE_KEY] = np.asarray(damage)
        return arrays


class AudioTrackPreparer:
    """``prepare(src)`` for an audio model's `featx.embedding.Embedder` over videos: the sound
    track in the family's windows, with their times in seconds (see the module docstring)."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.modality = "audio"

    def preparer(self) -> AudioTrackPreparer:
        light = copy.copy(self)
        make = getattr(self.embedder, "preparer", None)
        light.embedder = make() if callable(make) else self.embedder
        return light

    def prepare(self, src: Any, *, budget: Any = None) -> dict[str, np.ndarray]:
        arrays = dict(self.embedder.prepare(src, budget=budget))
        rate = float(self.embedder.processor.sampling_rate)
        offsets = np.asarray(arrays["offsets"], np.int64)
        arrays["row_start_s"] = offsets[:, 0] / rate
        arrays["row_end_s"] = offsets[:, 1] / rate
        return arrays
