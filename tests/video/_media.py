"""Videos generated with PyAV for the tests: a known colour per second, variable frame rate,
rotated, truncated, with a sound track, or sound only."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

#: the colour of second k of `colour_video` (far apart, so each second is its own shot)
COLOURS = [(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (230, 30, 230), (30, 230, 230),
           (240, 240, 240), (20, 20, 20)]
SIZE = (64, 48)  # width, height


def colour_frame(second: int, size: tuple[int, int] = SIZE, left_white: bool = False) -> np.ndarray:
    w, h = size
    image = np.empty((h, w, 3), np.uint8)
    image[:] = COLOURS[second % len(COLOURS)]
    if left_white:
        image[:, : w // 2] = 255
    return image


def _video_stream(container, rate, size, codec="libx264"):
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"g": "5"} if codec == "libx264" else {}
    return stream


def colour_video(path: Path, seconds: int = 4, fps: int = 10, *, size: tuple[int, int] = SIZE,
                 audio: bool = False, rotate: int = 0, left_white: bool = False, times: list[float] | None = None,
                 codec: str = "libx264", moving: bool = False) -> Path:
    """Second k shows ``COLOURS[k]`` (``moving``: with a white square crossing it); ``times``: frame times in seconds (variable frame rate);
    ``rotate``: a display matrix turning it counter-clockwise; ``audio``: a 440 Hz sound track."""
    import av

    container = av.open(str(path), "w")
    stream = _video_stream(container, fps, size, codec)
    tb = Fraction(1, 1000)
    stream.time_base = tb
    stream.codec_context.time_base = tb  # frame times kept to the millisecond (variable frame rate)
    if rotate:
        stream.set_display_rotation(rotate)
    sound = None
    if audio:
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
    frame_times = times if times is not None else [i / fps for i in range(seconds * fps)]
    for i, t in enumerate(frame_times):
        image = colour_frame(int(t), size, left_white)
        if moving:  # a white square crossing the picture: motion within each shot
            x = (3 * i) % (size[0] - 10)
            image[10:20, x:x + 10] = 255
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = int(round(t * 1000))
        frame.time_base = tb
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if sound is not None:
        total = int((frame_times[-1] + 1 / fps) * 16000)
        _mux_tone(container, sound, 440.0, total)
    container.close()
    return path


def audio_only(path: Path, seconds: float = 2.0) -> Path:
    import av

    container = av.open(str(path), "w")
    sound = container.add_stream("aac", rate=16000)
    sound.layout = "mono"
    total = int(seconds * 16000)
    _mux_tone(container, sound, 220.0, total)
    container.close()
    return path


def _mux_tone(container, sound, hertz: float, total: int) -> None:
    """Encode ``total`` samples of a 16 kHz mono sine into ``sound`` and mux them."""
    import av

    wave = (0.3 * np.sin(2 * np.pi * hertz * np.arange(total) / 16000)).astype(np.float32)
    for start in range(0, total, 1024):
        frame = av.AudioFrame.from_ndarray(wave[start:start + 1024][None], format="flt", layout="mono")
        frame.sample_rate = 16000
        frame.pts = start
        for packet in sound.encode(frame):
            container.mux(packet)
    for packet in sound.encode():
        container.mux(packet)


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` of ``src``'s bytes (a download cut short)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst
