"""Scene-change sampling: one frame per shot, cut where consecutive frames' colours jump.

Each decoded frame is shrunk to 32x18 by FFmpeg (cheap next to decoding) and described by a
colour histogram: 8 bins per RGB channel, each channel's bins summing to 1. The distance between
two consecutive frames is the total-variation distance of their histograms, averaged over the
three channels: 0 for the same colours, 1 for colours with nothing in common. A new shot starts
where the distance exceeds the threshold (`DEFAULT_SCENE_THRESHOLD` = 0.35); the first frame of
each shot is the one sampled (the first frame of the video starts the first shot).

Why 0.35: within a shot, camera and subject motion move a few bins (distances up to about 0.2 on
typical footage); a hard cut between different shots changes most of the colours (0.5 and more).
Gradual fades cut once the change between two consecutive frames passes the threshold, or not at
all; use fps sampling for footage made of slow dissolves. ``--scene-threshold`` tunes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DEFAULT_SCENE_THRESHOLD", "SceneCuts", "distance", "histogram", "scene_starts"]

DEFAULT_SCENE_THRESHOLD = 0.35
_BINS = 8
_SMALL = (32, 18)  # the size frames are shrunk to before their histogram


def histogram(image: np.ndarray) -> np.ndarray:
    """[3, 8] per-channel colour histogram of an RGB uint8 image, each row summing to 1."""
    pixels = np.asarray(image, dtype=np.uint8).reshape(-1, 3)
    bins = pixels >> 5  # 256 / 8 levels per bin
    out = np.stack([np.bincount(bins[:, c], minlength=_BINS) for c in range(3)]).astype(np.float64)
    return out / max(1, pixels.shape[0])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance of two `histogram`s, averaged over channels, in [0, 1]."""
    return float(0.5 * np.abs(a - b).sum(axis=1).mean())


def scene_starts(histograms: list[np.ndarray], threshold: float = DEFAULT_SCENE_THRESHOLD) -> list[int]:
    """Positions in ``histograms`` (consecutive frames) where a shot starts; 0 always does."""
    return [i for i in range(len(histograms))
            if i == 0 or distance(histograms[i - 1], histograms[i]) > threshold]


class SceneCuts:
    """Streaming `scene_starts` over decoded PyAV frames: ``is_cut(frame)`` for each in order."""

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = DEFAULT_SCENE_THRESHOLD if threshold is None else float(threshold)
        self._last: np.ndarray | None = None

    def is_cut(self, frame: Any) -> bool:
        small = frame.reformat(width=_SMALL[0], height=_SMALL[1], format="rgb24").to_ndarray()
        hist = histogram(small)
        cut = self._last is None or distance(self._last, hist) > self.threshold
        self._last = hist
        return cut
