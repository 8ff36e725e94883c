"""Generated videos, shared by the video tests (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._media import audio_only, colour_video, truncated

VFR_TIMES = [0.0, 0.1, 0.15, 0.5, 1.0, 1.05, 1.9, 2.0, 2.7, 3.2]


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("av")
    d = tmp_path_factory.mktemp("videos")
    made = {
        "colour": colour_video(d / "colour.mp4", 4, 10),
        "vfr": colour_video(d / "vfr.mkv", times=VFR_TIMES),
        "rotated": colour_video(d / "rotated.mp4", 2, 10, rotate=90, left_white=True),
        "upright": colour_video(d / "upright.mp4", 2, 10, left_white=True),
        "sound": colour_video(d / "sound.mp4", 3, 10, audio=True),
        "audio_only": audio_only(d / "audio_only.mp4", 2.0),
        "webm": colour_video(d / "colour.webm", 2, 10, codec="libvpx-vp9"),
        "long": colour_video(d / "long.mkv", 8, 10),
    }
    made["truncated"] = truncated(made["long"], d / "truncated.mkv", 0.5)
    made["garbage"] = d / "garbage.mp4"
    made["garbage"].write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video at all")
    return made


@pytest.fixture(scope="session")
def moving(tmp_path_factory) -> Path:
    """4 shots of one second, each with a white square moving across it."""
    pytest.importorskip("av")
    return colour_video(tmp_path_factory.mktemp("moving") / "moving.mp4", 4, 10, moving=True)
