"""`featx.load_video`: timestamps (constant and variable frame rate), sampling modes, seeking,
rotation, damaged and audio-only files."""

from __future__ import annotations

import numpy as np
import pytest

from featx import InputError, load_video
from featx.errors import ConfigError
from featx.video import Sampling, VideoDamagedError

from ._media import COLOURS
from .conftest import VFR_TIMES


def _times(frames):
    return [round(f.time_s, 6) for f in frames]


def test_default_is_one_frame_per_second_with_known_colours(videos):
    frames = list(load_video(videos["colour"]))
    assert _times(frames) == [0.0, 1.0, 2.0, 3.0]
    assert [f.index for f in frames] == [0, 10, 20, 30]
    for second, f in enumerate(frames):
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert np.abs(f.image.reshape(-1, 3).mean(0) - COLOURS[second]).max() < 6  # yuv420 rounding


@pytest.mark.parametrize("fps, expected", [(2, [0, .5, 1, 1.5, 2, 2.5, 3, 3.5]), (0.5, [0, 2]),
                                           (10, [i / 10 for i in range(40)]), (25, [i / 10 for i in range(40)])])
def test_fps_sampling(videos, fps, expected):
    assert _times(load_video(videos["colour"], fps)) == pytest.approx(expected)


def test_variable_frame_rate_times_come_from_the_stream(videos):
    # every frame at its real time, not index / average rate
    assert _times(load_video(videos["vfr"], fps=100)) == VFR_TIMES
    assert [f.index for f in load_video(videos["vfr"], fps=100)] == list(range(len(VFR_TIMES)))
    # 1 fps: the first frame at or after each whole second
    assert _times(load_video(videos["vfr"])) == [0.0, 1.0, 2.0, 3.2]
    # 10 fps: 0.15 lies before the 0.2 mark and 0.5 covers 0.2..0.5: taken once
    assert _times(load_video(videos["vfr"], fps=10)) == [0.0, 0.1, 0.5, 1.0, 1.9, 2.0, 2.7, 3.2]


@pytest.mark.parametrize("n", [1, 3, 5, 40, 100])
def test_num_frames_evenly_spaced(videos, n):
    frames = list(load_video(videos["colour"], num_frames=n))
    assert len(frames) == min(n, 40)
    idx = [f.index for f in frames]
    assert idx == sorted(set(idx)) and idx[0] == 0 and (n == 1 or idx[-1] == 39)
    assert idx == list(np.round(np.linspace(0, 39, min(n, 40))).astype(int))
    vfr = list(load_video(videos["vfr"], num_frames=4))
    assert [f.index for f in vfr] == [0, 3, 6, 9] and _times(vfr) == [0.0, 0.5, 1.9, 3.2]


def test_keyframes(videos):
    frames = list(load_video(videos["colour"], keyframes=True))  # the test videos have a GOP of 5
    assert [f.index for f in frames] == list(range(0, 40, 5))
    assert all(f.key_frame for f in frames) and _times(frames) == [i / 2 for i in range(8)]


def test_start_end_and_max_frames(videos):
    assert _times(load_video(videos["colour"], fps=2, start=1.2, end=3.0)) == [1.2, 1.7, 2.2, 2.7]
    # frame numbers after a seek are those of the whole stream
    assert [f.index for f in load_video(videos["colour"], start=2.0)] == [20, 30]
    assert _times(load_video(videos["colour"], fps=10, max_frames=3)) == [0.0, 0.1, 0.2]
    assert [f.index for f in load_video(videos["colour"], num_frames=3, start=1.0, end=2.0)] == [10, 14, 19]
    assert _times(load_video(videos["colour"], keyframes=True, start=1.6)) == [2.0, 2.5, 3.0, 3.5]


def test_rotated_video_is_turned_upright(videos):
    upright = next(iter(load_video(videos["upright"])))
    turned = next(iter(load_video(videos["rotated"])))
    assert upright.image.shape == (48, 64, 3) and turned.image.shape == (64, 48, 3)
    # the display matrix turns the picture 90 degrees counter-clockwise: its left half (white) goes down
    np.testing.assert_array_equal(turned.image, np.rot90(upright.image))
    assert turned.image[-1, 0].min() > 240 and turned.image[0, 0].max() < 240


def test_other_container(videos):
    assert _times(load_video(videos["webm"])) == [0.0, 1.0]


def test_bytes_and_file_objects(videos):
    data = videos["colour"].read_bytes()
    assert _times(load_video(data)) == [0.0, 1.0, 2.0, 3.0]
    with open(videos["colour"], "rb") as fh:
        assert [f.index for f in load_video(fh, start=2.0)] == [20, 30]


def test_truncated_video_yields_frames_then_damage(videos):
    got = []
    with pytest.raises(VideoDamagedError, match="truncated") as info:
        for frame in load_video(videos["truncated"]):
            got.append(frame)
    assert len(got) == info.value.frames >= 1
    assert _times(got) == [float(i) for i in range(len(got))]
    assert str(videos["truncated"]) in str(info.value)


def test_bad_inputs(videos, tmp_path):
    with pytest.raises(InputError, match="no video stream"):
        list(load_video(videos["audio_only"]))
    with pytest.raises(InputError, match="not a recognised video"):
        list(load_video(videos["garbage"]))
    with pytest.raises(InputError, match="no such file"):
        list(load_video(tmp_path / "missing.mp4"))
    with pytest.raises(ConfigError, match="one video sampling mode"):
        load_video(videos["colour"], fps=1, keyframes=True)
    with pytest.raises(ConfigError, match="positive"):
        load_video(videos["colour"], fps=0)
    with pytest.raises(ConfigError, match="after start"):
        load_video(videos["colour"], start=2, end=1)
    assert Sampling().describe() == {"fps": 1.0}


def test_decoding_streams_in_bounded_memory(videos):
    """Frames are produced one at a time: a generator, closed early without decoding the rest."""
    gen = load_video(videos["long"], fps=10)
    first = next(gen)
    assert first.index == 0
    gen.close()
