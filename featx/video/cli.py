"""``featx embed`` on videos: the options, and how a video job is set up.

A job is a video job when a video option is given or its inputs hold a video file (``.mp4 .m4v
.mkv .webm .mov .avi``). Then folders and globs keep video files too, and:

- with an image model each sampled frame is a row (``frame``, ``time_s``, ``partial``), or, with
  ``--video-pool mean``, each video is one row: the mean of its frame embeddings, every frame
  weighing the same (with ``--normalize`` the frames are L2-normalized before the mean and the
  mean is normalized again, the form near-duplicate video detection compares);
- with an audio model each window of the sound track is a row (``window``, ``start``/``end``
  in samples, ``start_s``/``end_s``), or one row per video with ``--video-pool mean`` (the
  windows averaged as for audio files).

The engine prepares one video per worker and at most a few videos ahead of the model
(`featx.video.preparer` explains the per-video frame cap).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .decode import VIDEO_EXTENSIONS, Sampling
from .preparer import DEFAULT_MAX_FRAMES
from .scenes import DEFAULT_SCENE_THRESHOLD
from ..cli_types import positive_float as _positive_float
from ..cli_types import positive_int as _count

__all__ = ["VideoPlan", "add_video_arguments", "video_plan"]

_SCAN = 10_000  # inputs looked at to tell whether a job has videos (stops at the first one)


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    """The video options of ``featx embed``."""
    g = p.add_argument_group("video inputs (mp4, m4v, mkv, webm, mov, avi)")
    how = g.add_mutually_exclusive_group()
    how.add_argument("--video-fps", type=_positive_float, metavar="F",
                     help="sample F frames per second of video (default: 1)")
    how.add_argument("--video-frames", type=_count, metavar="N",
                     help="sample N frames evenly spaced over each video (default: --video-fps 1)")
    how.add_argument("--keyframes", action="store_true",
                     help="sample the key frames only; the fastest mode (default: --video-fps 1)")
    how.add_argument("--scenes", action="store_true",
                     help="sample the first frame of each shot, cutting where consecutive frames' colour "
                          "histograms differ by more than --scene-threshold (default: --video-fps 1)")
    g.add_argument("--scene-threshold", type=float, metavar="T",
                   help=f"with --scenes: histogram distance in (0, 1) that starts a new shot "
                        f"(default: {DEFAULT_SCENE_THRESHOLD})")
    g.add_argument("--video-pool", choices=("none", "mean"), default="none",
                   help="none: one row per frame (image model) or audio window (audio model); mean: one row "
                        "per video, the mean of its frames' (windows') embeddings (default: %(default)s)")
    g.add_argument("--video-max-frames", type=_count, default=DEFAULT_MAX_FRAMES, metavar="N",
                   help="frames kept per video; a video sampling more keeps the first N, flagged as partial with "
                        "an error row (default: %(default)s)")


def _options_given(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "video_fps", None) or getattr(args, "video_frames", None)
                or getattr(args, "keyframes", False) or getattr(args, "scenes", False)
                or getattr(args, "video_pool", "none") != "none" or getattr(args, "scene_threshold", None))


def _has_video(args: argparse.Namespace, extensions: frozenset[str] | None) -> bool:
    from ..engine.inputs import iter_inputs
    from .decode import is_video_path

    for n, item in enumerate(iter_inputs(args.inputs, column=args.column, extensions=extensions)):
        if is_video_path(item.key):
            return True
        if n >= _SCAN:
            return False
    return False


@dataclass
class VideoPlan:
    """A video job's settings, from the command line."""

    modality: str
    sampling: Sampling
    pool: str
    max_frames: int
    extensions: frozenset[str] | None

    def describe(self) -> dict[str, Any]:
        """What the manifest records (identity: changing it changes the rows)."""
        if self.modality == "audio":
            return {"pool": self.pool}
        return {**self.sampling.describe(), "pool": self.pool, "max_frames": self.max_frames}

    def job(self, embedder: Any, **kwargs: Any) -> Any:
        """The `featx.engine.jobs.EmbedJob` of this plan (``kwargs``: its other options)."""
        from ..engine.jobs import EmbedJob
        from .preparer import (
            AUDIO_TRACK,
            VIDEO_FRAMES,
            AudioTrackPreparer,
            VideoPreparer,
        )

        if self.modality == "audio":
            preparer: Any = AudioTrackPreparer(embedder)
            parts = AUDIO_TRACK
        else:
            preparer = VideoPreparer(embedder, self.sampling, max_frames=self.max_frames)
            parts = VIDEO_FRAMES
        return EmbedJob(embedder, parts=None if self.pool == "mean" else parts, preparer=preparer,
                        manifest_extra={"video": self.describe()}, **kwargs)

    def run_options(self, opts: Any, workers: int) -> Any:
        """``opts`` for videos: one video per engine batch (its frames fill the model's batches) and
        at most a few videos prepared ahead, so memory follows the workers, not the collection."""
        opts.batch_size = 1
        opts.ahead = max(2, min(workers, 4))
        return opts


def video_plan(args: argparse.Namespace, modality: str) -> VideoPlan | None:
    """The video settings of an ``embed`` command line, or None when it is no video job."""
    from ..engine.inputs import check_has_inputs, extensions_for

    if modality not in ("image", "audio"):
        return None
    override = args.extensions.split(",") if args.extensions else None
    extensions = extensions_for(modality, override)
    if extensions is not None and override is None:
        extensions = extensions | VIDEO_EXTENSIONS
    given = _options_given(args)
    if not given and not _has_video(args, extensions):
        return None
    if getattr(args, "engine", "local") != "local":
        raise ConfigError("video inputs run on the local engine only (--engine local)")
    if modality == "audio" and any((args.video_fps, args.video_frames, args.keyframes, args.scenes)):
        raise ConfigError("--video-fps, --video-frames, --keyframes and --scenes sample frames for an image "
                          "model; an audio model embeds the sound track in windows")
    if args.scene_threshold is not None and not args.scenes:
        raise ConfigError("--scene-threshold goes with --scenes")
    if getattr(args, "windows", False) and modality == "audio" and args.video_pool == "mean":
        raise ConfigError("--windows (one row per window) and --video-pool mean (one row per video) contradict")
    sampling = Sampling(fps=args.video_fps, num_frames=args.video_frames, keyframes=args.keyframes,
                        scenes=args.scenes, scene_threshold=args.scene_threshold)
    check_has_inputs(args.inputs, column=args.column, extensions=extensions, modality=f"{modality} or video")
    return VideoPlan(modality, sampling, args.video_pool, args.video_max_frames, extensions)
