"""Small sample images bundled with featx, for the README and quick checks.

``astronaut.jpg`` (256x256), ``coffee.jpg`` (360x240) and ``rocket.png`` (192x128, RGBA with an
alpha ramp) were made from scikit-image's sample data (public domain / CC0; see
``skimage.data``), downscaled with PIL's Lanczos filter.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "sample_images"]

DATA_DIR = Path(__file__).resolve().parent


def sample_images() -> list[Path]:
    """Paths of the bundled sample images, sorted by name."""
    return sorted(p for p in DATA_DIR.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
