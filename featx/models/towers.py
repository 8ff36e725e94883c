"""What the transformer towers share: their architecture options as read from a config.json, and
the error for pixel values of a size the position embeddings do not cover.

`TowerOptions` holds the fields every tower has (widths, depth, heads, activation, norm epsilon);
`PatchTowerOptions` adds the patch-embedding geometry of the image towers (ViT, DeiT, DINOv2, CLIP,
SigLIP). `tower_options` reads them from a parsed `featx.models.configs.EncoderConfig`.
`PatchTower` is the forward pass of the image towers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from torch import Tensor, nn

from ..errors import InputError
from .layers import EncoderOutput, image_batch
from .loading import EncoderModel

__all__ = ["TowerOptions", "PatchTowerOptions", "tower_options", "size_mismatch", "PatchTower"]


@dataclass(frozen=True)
class TowerOptions:
    """Architecture of a pre-norm transformer stack (defaults: ViT-B/16's)."""

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    act: str = "gelu"
    eps: float = 1e-12


@dataclass(frozen=True)
class PatchTowerOptions(TowerOptions):
    """A tower over a conv patch embedding of ``image_size`` inputs (an int or (height, width))."""

    image_size: Any = 224
    patch_size: Any = 16
    num_channels: int = 3


O = TypeVar("O", bound=TowerOptions)


def tower_options(cls: type[O], cfg: Any, *, mlp_dim: int | None = None, **extra: Any) -> O:
    """``cls`` filled from a checked config: the shared fields (``mlp_dim`` defaults to
    ``cfg.intermediate_size``), the image geometry when ``cls`` has it, then ``extra``."""
    fields: dict[str, Any] = dict(
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_hidden_layers,
        num_heads=cfg.num_attention_heads,
        mlp_dim=cfg.intermediate_size if mlp_dim is None else mlp_dim,
        act=cfg.hidden_act,
        eps=cfg.layer_norm_eps,
    )
    if issubclass(cls, PatchTowerOptions):
        fields.update(image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=cfg.num_channels)
    return cls(**{**fields, **extra})


def size_mismatch(height: int, width: int, image_size: Any) -> InputError:
    """The error for pixel values the position embeddings were not trained for."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    return InputError(
        f"pixel_values are {height}x{width} but the model takes {h}x{w}; pass interpolate_pos_encoding=True "
        "to interpolate its position embeddings",
        source="pixel_values",
    )


class PatchTower(EncoderModel):
    """The forward pass the image towers share: patches -> (pre-norm) -> encoder -> the family's
    finish (norms and poolers), as `finish` defines it."""

    modality = "image"
    main_input_name = "pixel_values"
    embeddings: nn.Module
    encoder: nn.Module

    def before_encoder(self, x: Tensor) -> Tensor:
        """Applied to the embedded patches before the blocks (CLIP's pre-LayerNorm)."""
        return x

    def finish(self, x: Tensor, states: tuple[Tensor, ...] | None) -> EncoderOutput:
        raise NotImplementedError

    def forward(
        self,
        pixel_values: Tensor,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """pixel_values [batch, channels, height, width] -> tokens [batch, prefix + patches, hidden]."""
        like = next(self.embeddings.parameters())
        x = self.embeddings(image_batch(pixel_values, like), interpolate_pos_encoding)
        x, states = self.encoder(self.before_encoder(x), None, output_hidden_states)
        return self.finish(x, states)
