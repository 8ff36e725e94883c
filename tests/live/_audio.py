"""Generated audio for the stream tests: speech-like bursts with silence between them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def bursts(seconds: float = 7.0, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """[frames, channels] float32 in [-0.5, 0.5]: tones with noise, silent from 2 s to 4 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    chans = [0.3 * np.sin(2 * np.pi * (200 + 100 * c) * t) + 0.05 * rng.standard_normal(t.size) for c in range(channels)]
    wave = np.stack(chans, 1).astype(np.float32)
    wave[int(2 * rate):int(4 * rate)] = 0
    return wave


def pcm_bytes(wave: np.ndarray, fmt: str = "s16le") -> bytes:
    if fmt == "s16le":
        return np.round(wave * 32767).astype("<i2").tobytes()
    if fmt == "s32le":
        return np.round(wave * 2147483647).astype("<i4").tobytes()
    return wave.astype("<f4").tobytes()


def write_wav(path: Path, wave: np.ndarray, rate: int = 16000) -> Path:
    """The same samples as `pcm_bytes` (s16le) as a WAV file."""
    import soundfile as sf

    sf.write(str(path), np.round(wave * 32767).astype(np.int16), rate, subtype="PCM_16")
    return path
