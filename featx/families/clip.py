"""Contrastive image-text families: CLIP, SigLIP (vision and text towers); and the processor-only Fuyu.

Full checkpoints (``clip``, ``siglip``) hold both towers: their image family names the text tower
(``text=``), and their default pooling is the joint image-text space. Text-only checkpoints
(``clip_text_model``, ``siglip_text_model``) are text families of their own.
"""

from __future__ import annotations

from . import register_family
from .spec import ImageFamily, TextFamily

__all__ = ["CLIP", "SIGLIP", "FUYU", "CLIP_TEXT", "SIGLIP_TEXT"]

CLIP_TEXT = register_family(TextFamily(
    name="clip-text", model_types=("clip_text_model",), processor="CLIPTokenizer",
    encoders={"clip": "featx.models.text:CLIPTextModel", "clip_text_model": "featx.models.text:CLIPTextModel"},
))
SIGLIP_TEXT = register_family(TextFamily(
    name="siglip-text", model_types=("siglip_text_model",), processor="SiglipTokenizer",
    encoders={"siglip": "featx.models.text:SiglipTextModel",
              "siglip_text_model": "featx.models.text:SiglipTextModel"},
    padding="max_length",  # SigLIP pools the last position: it was trained on max_length padding
    scores="sigmoid",
))
CLIP = register_family(ImageFamily(
    name="clip", model_types=("clip", "clip_vision_model"), processor="CLIPImageProcessor",
    encoders={"clip": "featx.models.clip:CLIPVisionModel", "clip_vision_model": "featx.models.clip:CLIPVisionModel"},
    default_pool="cls", text=CLIP_TEXT,
))
SIGLIP = register_family(ImageFamily(
    name="siglip", model_types=("siglip", "siglip_vision_model"), processor="SiglipImageProcessor",
    encoders={"siglip": "featx.models.clip:SiglipVisionModel",
              "siglip_vision_model": "featx.models.clip:SiglipVisionModel"},
    default_pool="pooler",  # the attention-pooling head; no class token
    text=SIGLIP_TEXT,
))
FUYU = register_family(ImageFamily(name="fuyu", model_types=("fuyu",), processor="FuyuImageProcessor"))
