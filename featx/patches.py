"""``featx.patches``: split images into patches and merge them back (see `featx.image.patches`),
and into tiles with their boxes (`tile`, see `featx.image.tiles`)."""

from .image.patches import *  # noqa: F401,F403
from .image.patches import __all__ as _patches_all
from .image.tiles import Tiles, tile, tile_boxes

__all__ = [*_patches_all, "tile", "tile_boxes", "Tiles"]
