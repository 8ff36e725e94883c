"""`Embedder.iter_embed` on the engine's run path: prefetch -> batches -> embed -> results.

The same read-ahead (`featx.engine.workers.prefetch` over a `featx.engine.pools` pool) and the
same retry of a failing batch one input at a time (`Embedder.embed_outcomes`) as ``featx embed``,
without the output folder: results come back in input order as `featx.embedding.EmbedResult`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, error_text
from .inputs import Input
from .pools import WorkerPool, make_pool
from .state import KeySet
from .workers import Prepared, batched, prefetch

__all__ = ["iter_embed"]


def iter_embed(embedder: Any, sources: Iterable[Any], *, batch_size: int = 16, workers: int = 2,
               errors: str = "raise", per_window: bool = False, pool: WorkerPool | None = None) -> Iterator[Any]:
    """See `featx.embedding.Embedder.iter_embed`; ``pool`` stays the caller's (not shut down)."""
    from ..embedding import EmbedResult

    if errors not in ("raise", "return"):
        raise ConfigError("errors must be 'raise' or 'return'")
    own = pool is None
    if pool is None:
        pool = make_pool("thread", embedder, max(1, workers))
    # Input keys only need to be distinct: the position keeps them so, and names the input.
    inputs = (_Item(str(i), src, index=i) for i, src in enumerate(sources))
    items = prefetch(inputs, embedder, done=KeySet(), pool=pool, ahead=max(2 * batch_size, 4))
    try:
        for batch in batched(items, batch_size):
            yield from _results(embedder, batch, batch_size, errors, per_window, EmbedResult)
    finally:
        items.close()
        if own:
            pool.shutdown()


@dataclass(frozen=True)
class _Item(Input):
    """An input of `iter_embed`: its position and the caller's object as given."""

    index: int = 0


def _results(embedder: Any, batch: list[Prepared], batch_size: int, errors: str, per_window: bool,
             result: Any) -> Iterator[Any]:
    ok = [p for p in batch if p.error is None]
    outcomes = iter(embedder.embed_outcomes([p.arrays for p in ok], batch_size, per_window) if ok else [])
    for p in batch:
        item: Any = p.input
        failure = p.error
        vector = None
        if failure is None:
            outcome = next(outcomes)
            if isinstance(outcome, BaseException):
                failure = outcome
            else:
                vector = outcome
        if failure is not None:
            if errors == "raise":
                raise failure
            yield result(item.index, item.src, None, error_text(failure), None)
        else:
            yield result(item.index, item.src, vector, None, p.arrays.get("offsets"))
