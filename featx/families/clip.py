"""Contrastive image-text families (vision towers): CLIP, SigLIP; and the processor-only Fuyu."""

from __future__ import annotations

from . import register_family
from .spec import ImageFamily

__all__ = ["CLIP", "SIGLIP", "FUYU"]

CLIP = register_family(ImageFamily(
    name="clip", model_types=("clip", "clip_vision_model"), processor="CLIPImageProcessor",
    encoders={"clip": "featx.models.clip:CLIPVisionModel", "clip_vision_model": "featx.models.clip:CLIPVisionModel"},
    default_pool="cls",
))
SIGLIP = register_family(ImageFamily(
    name="siglip", model_types=("siglip", "siglip_vision_model"), processor="SiglipImageProcessor",
    encoders={"siglip": "featx.models.clip:SiglipVisionModel",
              "siglip_vision_model": "featx.models.clip:SiglipVisionModel"},
    default_pool="pooler",  # the attention-pooling head; no class token
))
FUYU = register_family(ImageFamily(name="fuyu", model_types=("fuyu",), processor="FuyuImageProcessor"))
