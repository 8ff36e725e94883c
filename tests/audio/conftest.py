"""Shared audio fixtures: small synthetic signals (fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def speechlike() -> np.ndarray:
    """0.5 s of a 16 kHz signal with a few harmonics and noise, float64 in [-1, 1]."""
    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(sr // 2) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 660 * t) + 0.05 * rng.standard_normal(t.size)
    return x.clip(-1, 1)
