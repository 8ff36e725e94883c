"""Ray Data integration: `embed` a ``ray.data.Dataset`` across a cluster.

The public face of featx's Ray engine; the code lives in `featx.engine.ray_data` (and the
``--engine ray`` batch job in `featx.engine.ray_engine`), whose ``__all__`` is this module's.
Ray is an optional extra: ``pip install 'featx[ray]'`` (or, from a checkout, ``pip install -e '.[ray]'``).
"""

from __future__ import annotations

from .engine.ray_data import *  # the public names, listed once in its __all__
from .engine.ray_data import __all__
