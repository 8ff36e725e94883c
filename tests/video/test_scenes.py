"""Scene-change sampling: one frame per shot on a generated video of four one-second shots with
motion inside each shot, and the documented threshold."""

from __future__ import annotations

import numpy as np
import pytest

from featx import load_video
from featx.errors import ConfigError
from featx.video.scenes import (
    DEFAULT_SCENE_THRESHOLD,
    distance,
    histogram,
    scene_starts,
)


def test_one_frame_per_shot(moving):
    frames = list(load_video(moving, scenes=True))
    assert [f.index for f in frames] == [0, 10, 20, 30]
    assert [round(f.time_s, 6) for f in frames] == [0.0, 1.0, 2.0, 3.0]


def test_threshold_separates_motion_from_cuts(moving):
    hists = [histogram(f.image) for f in load_video(moving, fps=100)]
    d = np.array([distance(a, b) for a, b in zip(hists, hists[1:])])
    cuts = np.flatnonzero(d > DEFAULT_SCENE_THRESHOLD) + 1
    assert cuts.tolist() == [10, 20, 30]
    assert d[cuts - 1].min() > 0.5 and np.delete(d, cuts - 1).max() < 0.1  # a wide margin either side
    assert scene_starts(hists) == [0, 10, 20, 30]
    # a threshold above the cuts' distance finds one shot; a tiny one cuts on the moving square
    assert [f.index for f in load_video(moving, scenes=True, scene_threshold=0.99)] == [0]
    assert len(list(load_video(moving, scenes=True, scene_threshold=0.001))) > 4
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load_video(moving, scenes=True, scene_threshold=1.5)


def test_histogram_and_distance():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 2] = 255
    h = histogram(red)
    assert h.shape == (3, 8) and np.allclose(h.sum(1), 1)
    assert distance(h, h) == 0.0
    assert distance(h, histogram(blue)) == pytest.approx(2 / 3)  # red and blue channels moved, green did not
    half = red.copy()
    half[:2] = blue[:2]
    assert distance(h, histogram(half)) == pytest.approx(1 / 3)
