"""ViT-like image families: ViT, DeiT, DINOv2, and the processor-only BiT and ConvNeXt."""

from __future__ import annotations

from . import register_family
from .spec import ImageFamily

__all__ = ["VIT", "DEIT", "DINOV2", "BIT", "CONVNEXT"]

VIT = register_family(ImageFamily(
    name="vit", model_types=("vit",), processor="ViTImageProcessor",
    encoders={"vit": "featx.models.vit:ViTModel"}, default_pool="cls",
))
DEIT = register_family(ImageFamily(
    name="deit", model_types=("deit",), processor="DeiTImageProcessor",
    encoders={"deit": "featx.models.vit:DeiTModel"}, default_pool="cls",
))
DINOV2 = register_family(ImageFamily(
    name="dinov2", model_types=("dinov2", "dinov2_with_registers"), processor="BitImageProcessor",
    encoders={"dinov2": "featx.models.vit:Dinov2Model", "dinov2_with_registers": "featx.models.vit:Dinov2Model"},
    default_pool="cls",
))
BIT = register_family(ImageFamily(name="bit", model_types=("bit",), processor="BitImageProcessor"))
CONVNEXT = register_family(ImageFamily(name="convnext", model_types=("convnext",), processor="ConvNextImageProcessor"))
