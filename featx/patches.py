"""``featx.patches``: split images into patches and merge them back (see `featx.image.patches`)."""

from .image.patches import *  # noqa: F401,F403
from .image.patches import __all__  # noqa: F401
