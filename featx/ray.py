"""Ray Data integration: `embed` a ``ray.data.Dataset`` across a cluster.

The public face of featx's Ray engine; the code lives in `featx.engine.ray_data` (and the
``--engine ray`` batch job in `featx.engine.ray_engine`). Ray is an optional extra:
``pip install 'featx[ray]'`` (or, from a checkout, ``pip install -e '.[ray]'``).
"""

from __future__ import annotations

from .engine.ray_data import (
    SOURCE_COLUMNS,
    actor_pool,
    decode_task_args,
    embed,
    init_ray,
    pick_column,
    resolve_dtype_on_cluster,
    source_values,
    weightless_embedder,
)

__all__ = [
    "embed",
    "weightless_embedder",
    "actor_pool",
    "resolve_dtype_on_cluster",
    "init_ray",
    "decode_task_args",
    "source_values",
    "pick_column",
    "SOURCE_COLUMNS",
]
