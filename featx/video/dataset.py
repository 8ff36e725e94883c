"""`frames`: the sampled frames of videos as a PyTorch ``IterableDataset``, for training loops.

Each item is a dict: ``path``, ``frame`` (its number in the stream), ``time_s``, and either
``pixel_values`` (a processor given: the model-ready array, as the processor gives one image) or
``image`` (an RGB uint8 array [H, W, 3], or what ``transform`` makes of it). With a
``torch.utils.data.DataLoader`` of several workers, each worker decodes its own share of the
videos (video i goes to worker i mod workers), so no frame is given twice.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from ..errors import ConfigError
from .decode import Sampling, VideoDamagedError, iter_frames

__all__ = ["VideoFrames", "frames"]


class VideoFrames(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """See the module docstring; made by `frames`."""

    def __init__(self, sources: Sequence[Any], sampling: Sampling, processor: Any = None,
                 transform: Callable[[Any], Any] | None = None, errors: str = "raise") -> None:
        super().__init__()
        if errors not in ("raise", "skip"):
            raise ConfigError(f"errors must be 'raise' or 'skip', not {errors!r}")
        self.sources = list(sources)
        self.sampling = sampling
        self.processor = processor
        self.transform = transform
        self.errors = errors

    def _mine(self) -> list[Any]:
        info = torch.utils.data.get_worker_info()
        if info is None:
            return self.sources
        return self.sources[info.id::info.num_workers]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for src in self._mine():
            name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else repr(src)[:80]
            try:
                for f in iter_frames(src, self.sampling):
                    item: dict[str, Any] = {"path": name, "frame": f.index, "time_s": f.time_s}
                    if self.processor is not None:
                        item["pixel_values"] = self.processor(f.image, return_tensors="np")["pixel_values"][0]
                    else:
                        item["image"] = self.transform(f.image) if self.transform is not None else f.image
                    yield item
            except VideoDamagedError as exc:  # its good frames were given; the rest is lost
                if self.errors == "raise":
                    raise
                warnings.warn(f"skipping the rest of a damaged video: {exc}", stacklevel=2)
            except Exception as exc:
                if self.errors == "raise":
                    raise
                warnings.warn(f"skipping a video that cannot be read: {exc}", stacklevel=2)


def frames(sources: Any, fps: float | None = None, *, num_frames: int | None = None, keyframes: bool = False,
           scenes: bool = False, start: float | None = None, end: float | None = None,
           max_frames: int | None = None, processor: Any = None, transform: Callable[[Any], Any] | None = None,
           errors: str = "raise") -> VideoFrames:
    """The frames of one video or a list of them as a `VideoFrames` dataset (see the module
    docstring; the sampling options are `featx.load_video`'s). ``processor``: an image processor,
    or a checkpoint folder / hub id to load one from; ``errors="skip"`` leaves out what cannot be
    decoded (with a warning) instead of raising."""
    if isinstance(sources, (str, os.PathLike, bytes)):
        sources = [sources]
    if isinstance(processor, (str, os.PathLike)):
        from ..pipelines import load_processor

        processor = load_processor(processor)
    sampling = Sampling(fps=fps, num_frames=num_frames, keyframes=keyframes, scenes=scenes, start=start, end=end,
                        max_frames=max_frames)
    return VideoFrames(sources, sampling, processor=processor, transform=transform, errors=errors)
