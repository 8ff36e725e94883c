"""LLaVA families: visual tokens in a language model's embedding space (LLaVA 1.5, LLaVA-NeXT).

The encoder is `featx.models.llava.LlavaVisualTokens` (the vision tower to its selected layer and
the projector; the language model is never read). LLaVA-NeXT images become a variable number of
tiles; `LlavaNextFamily.prepare` pads each image's tiles to the processor's most (`max_tiles`), so
that images batch together, and the model runs only each image's own tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import register_family
from .spec import ImageFamily

__all__ = ["LLAVA", "LLAVA_NEXT", "LlavaNextFamily"]


@dataclass(frozen=True)
class LlavaNextFamily(ImageFamily):
    """LLaVA-NeXT: one image is its base view plus the tiles of its best grid (``image_sizes`` says
    which); the tile axis is padded with zeros to the processor's `max_tiles`."""

    def prepare(self, processor: Any, src: Any, *, budget: Any = None,
                allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        out = super().prepare(processor, src, budget=budget, allow_private_urls=allow_private_urls)
        pixels = out["pixel_values"]
        most = int(processor.max_tiles())
        if pixels.ndim == 5 and pixels.shape[1] < most:
            pad = np.zeros((pixels.shape[0], most - pixels.shape[1], *pixels.shape[2:]), dtype=pixels.dtype)
            out["pixel_values"] = np.concatenate([pixels, pad], axis=1)
        return out


LLAVA = register_family(ImageFamily(
    name="llava", model_types=("llava",), processor="CLIPImageProcessor",
    encoders={"llava": "featx.models.llava:LlavaVisualTokens"}, default_pool="mean",
))
LLAVA_NEXT = register_family(LlavaNextFamily(
    name="llava-next", model_types=("llava_next",), processor="LlavaNextImageProcessor",
    encoders={"llava_next": "featx.models.llava:LlavaVisualTokens"}, default_pool="mean",
))
