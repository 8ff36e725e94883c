"""Synthetic test signals at 16 kHz with fixed seeds, shared by the audio tests."""

from __future__ import annotations

import numpy as np

SR = 16000


def speech(n: int, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Speech-like float32: a gliding harmonic chirp with syllable-rate AM, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 120 + 80 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (level * envelope * voiced + 0.003 * rng.standard_normal(n)).astype(np.float32)


def noise(n: int, seed: int = 1, level: float = 0.1) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
