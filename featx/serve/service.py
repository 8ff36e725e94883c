"""The service's state: the model(s), the batchers, the rows of OUT, thumbnails and metrics.

Media inputs take featx's one run path: ``Embedder.prepare`` in a `featx.engine.pools` thread
pool (decoded pixels capped by a `featx.engine.budget.PixelBudget`), then
``Embedder.embed_outcomes`` per batch, so a vector equals the one ``featx embed`` writes for the
same file. Texts go through the model's text tower (`featx.text.load_text_embedder`) when it has
one. With OUT, the model and its options come from OUT's manifest
(`featx.engine.jobs.embedder_from_manifest`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError, error_text
from .batching import Batcher
from .metrics import Metrics
from .rows import Rows, RowsHolder
from .thumbs import Thumbnails, recorded_roots

__all__ = ["ServeConfig", "Service", "RequestTimeout"]


@dataclass
class ServeConfig:
    """``featx serve``'s options (see ``featx serve --help`` and docs/serve.md)."""

    out: str | None = None
    model: str | None = None
    dtype: str | None = None  # None: OUT's recorded dtype, else "auto"
    backend: str | None = None  # None: OUT's recorded backend, else "torch"
    device: str | None = "auto"
    pool: str | None = None
    normalize: bool = False
    processor_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    revision: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_batch: int = 32
    max_wait_ms: float = 10.0
    max_queue: int = 256
    workers: int = field(default_factory=lambda: min(8, os.cpu_count() or 1))
    max_body_bytes: int = 32 * 1024 * 1024
    max_inputs: int = 256
    request_timeout_s: float = 60.0
    allow_urls: bool = False
    allow_private_urls: bool = False
    watch: bool = False
    watch_interval_s: float = 2.0
    thumbnail_roots: list[str] = field(default_factory=list)
    thumbnail_size: int = 256
    max_k: int = 1000
    text: bool = True  # load the text tower when the model has one


class RequestTimeout(Exception):
    """A request's inputs did not finish within ``request_timeout_s`` (their work is dropped)."""


def _one_by_one(run: Any, items: list[Any]) -> list[Any]:
    """``run(items)``, or when that fails, each item alone (one bad input fails alone)."""
    from ..embedding import out_of_memory

    try:
        return list(run(items))
    except Exception as exc:  # noqa: BLE001 - sorted out below
        if out_of_memory(exc):
            raise
        if len(items) == 1:
            return [exc]
    return [_one_by_one(run, [item])[0] for item in items]


def _finite(outcomes: Sequence[Any]) -> list[Any]:
    return [InputError("the model produced non-finite values")
            if isinstance(o, np.ndarray) and not np.isfinite(o).all() else o for o in outcomes]


def load_text_tower(model: str, *, dtype: str, device: str | None, hub: dict[str, Any]) -> tuple[Any, str | None]:
    """(the model's `featx.text.TextEmbedder`, None) or (None, why there is none)."""
    try:
        from ..text import load_text_embedder
    except ImportError as exc:  # text is optional: serve images without it, and say why
        name = getattr(exc, "name", None) or ""
        if not name or name.startswith("featx"):
            return None, "this featx version has no text towers"
        return None, f"the text tower cannot be loaded: {exc}"
    try:
        return load_text_embedder(model, dtype=dtype, device=device, **hub), None
    except ConfigError as exc:
        return None, str(exc)


class Service:
    """Everything the routes use. ``embedder`` / ``text_embedder`` may be given (tests); else
    they are loaded from ``config`` (OUT's manifest, or ``config.model``)."""

    def __init__(self, config: ServeConfig, *, embedder: Any = None, text_embedder: Any = None) -> None:
        from ..engine.budget import DEFAULT_PIXELS_IN_FLIGHT, PixelBudget
        from ..engine.pools import make_pool

        self.config = config
        self.metrics = Metrics()
        self.draining = False
        self.manifest: dict[str, Any] | None = None
        self.rows: RowsHolder | None = None
        # replaced, never mutated: the watcher thread adds roots while requests read them
        self._roots: frozenset[str] = frozenset(os.path.realpath(r) for r in config.thumbnail_roots)
        if config.out is not None:
            self.rows = RowsHolder(config.out, watch_s=config.watch_interval_s if config.watch else None,
                                   on_reload=self._reloaded)
            self.manifest = self.rows.current.manifest
            self._add_roots(self.manifest)
        self.embedder = embedder if embedder is not None else self._load_embedder()
        self.embedder = self.embedder.with_options(allow_private_urls=config.allow_private_urls)
        self.text_reason: str | None = None
        self.text_embedder = text_embedder
        if self.text_embedder is None and config.text:
            self.text_embedder, self.text_reason = load_text_tower(
                self.embedder.model_id, dtype=self._dtype(), device=config.device, hub=self._hub())
        elif self.text_embedder is None:
            self.text_reason = "text queries are off (--no-text)"
        budget = PixelBudget(DEFAULT_PIXELS_IN_FLIGHT)
        self._pool = make_pool("thread", self.embedder, config.workers, budget)
        wait = config.max_wait_ms / 1000.0
        self.media = Batcher(self._run_media, pool=self._pool, max_batch=config.max_batch, max_wait_s=wait,
                             max_queue=config.max_queue, on_batch=self.metrics.on_batch, name="featx-model")
        self.texts = Batcher(self._run_text, max_batch=config.max_batch, max_wait_s=wait,
                             max_queue=config.max_queue, on_batch=self.metrics.on_batch, name="featx-text")
        self.thumbnails = Thumbnails(config.thumbnail_size)
        self.metrics.gauge("featx_queue_depth", "inputs in flight (being prepared, queued or running)",
                           lambda: self.media.depth + self.texts.depth)
        self.metrics.gauge("featx_rows", "searchable rows", lambda: self.current.count if self.current else 0)

    # ---- loading --------------------------------------------------------------------------------
    def _hub(self) -> dict[str, Any]:
        return {k: v for k, v in (("cache_dir", self.config.cache_dir), ("revision", self.config.revision)) if v}

    def _dtype(self) -> str:
        if self.config.dtype:
            return self.config.dtype
        return str(self.manifest.get("dtype", "auto")) if self.manifest else "auto"

    def _backend(self) -> str:
        if self.config.backend:
            return self.config.backend
        return str(self.manifest.get("backend", "torch")) if self.manifest else "torch"

    def _load_embedder(self) -> Any:
        from ..embedding import Embedder
        from ..engine.jobs import embedder_from_manifest

        c = self.config
        if self.manifest is not None:
            if self.manifest.get("kind") != "embeddings":
                raise ConfigError(f"{c.out} holds {self.manifest.get('kind')}, not embeddings: nothing to serve")
            manifest = {**self.manifest, "dtype": self._dtype(), "backend": self._backend()}
            if c.revision:
                manifest["revision"] = c.revision
            return embedder_from_manifest(manifest, device=c.device, cache_dir=c.cache_dir)
        if not c.model:
            raise ConfigError("featx serve needs OUT (an output folder of featx embed) or --model")
        return Embedder(c.model, pool=c.pool, normalize=c.normalize, dtype=self._dtype(), device=c.device,
                        backend=self._backend(), **self._hub(), **c.processor_options)

    def _add_roots(self, manifest: dict[str, Any]) -> None:
        self._roots = self._roots | {str(r) for r in recorded_roots(manifest)}

    def _reloaded(self, rows: Rows) -> None:
        self._add_roots(rows.manifest)
        self.metrics.reloads.inc()

    @property
    def roots(self) -> list[Path]:
        """Where thumbnails may come from: OUT's recorded inputs (all runs seen) and --thumbnail-root."""
        return [Path(r) for r in sorted(self._roots)]

    @property
    def current(self) -> Rows | None:
        return self.rows.current if self.rows is not None else None

    # ---- the model calls (on the batchers' threads) ----------------------------------------------
    def _run_media(self, arrays: list[dict[str, np.ndarray]]) -> list[Any]:
        return _finite(self.embedder.embed_outcomes(arrays, batch_size=self.config.max_batch))

    def _run_text(self, texts: list[str]) -> list[Any]:
        embedder = self.text_embedder
        if embedder is None:
            raise InputError(f"text inputs are not supported: {self.text_reason}")
        return _finite(_one_by_one(lambda items: list(embedder.embed(items, batch_size=self.config.max_batch)), texts))

    def warm_up(self) -> None:
        """One blank input through each model before serving, so the first request does not pay
        for loading kernels (the image resize kernels, torch's first call)."""
        if self.embedder.modality == "image":
            from PIL import Image

            sample: Any = Image.new("RGB", (64, 48), (128, 128, 128))
        else:
            sample = (np.zeros(int(self.embedder.processor.sampling_rate), np.float32),
                      int(self.embedder.processor.sampling_rate))
        self.embedder.embed_outcomes([self.embedder.prepare(sample)], batch_size=1)
        if self.text_embedder is not None:
            self.text_embedder.embed(["warm up"])

    # ---- what the routes call -------------------------------------------------------------------
    @property
    def text_search_reason(self) -> str | None:
        """Why text search is unavailable (None: it works)."""
        if self.text_embedder is None:
            return self.text_reason or "the model has no text tower"
        rows = self.current
        if rows is not None and int(self.text_embedder.dim) != rows.dim:
            return (f"the rows of {self.config.out} have {rows.dim} values and the text tower gives "
                    f"{self.text_embedder.dim}: they are not in the model's joint text-image space")
        return None

    async def run(self, payloads: Sequence[Any]) -> list[Any]:
        """Each payload's vector or exception, batched with other requests' inputs.
        Raises `featx.serve.batching.QueueFull`, `BatcherClosed` or `RequestTimeout`."""
        media = [i for i, p in enumerate(payloads) if p.kind == "media"]
        texts = [i for i, p in enumerate(payloads) if p.kind == "text"]
        outcomes: list[Any] = [None] * len(payloads)
        if texts and self.text_embedder is None:
            for i in texts:
                outcomes[i] = InputError(f"text inputs are not supported: {self.text_search_reason}")
            texts = []
        tickets = []
        try:
            if media:
                tickets += list(zip(media, self.media.submit_many([payloads[i].value for i in media])))
            if texts:
                tickets += list(zip(texts, self.texts.submit_many([payloads[i].value for i in texts])))
        except Exception:
            for _, t in tickets:
                t.abandon()
            raise
        waits = [asyncio.wrap_future(t.future) for _, t in tickets]
        try:
            results = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True),
                                             self.config.request_timeout_s)
        except asyncio.TimeoutError:
            for _, t in tickets:
                t.abandon()
            raise RequestTimeout(f"the request took more than {self.config.request_timeout_s:g} s; "
                                 "its remaining work was dropped") from None
        for (i, _), result in zip(tickets, results):
            outcomes[i] = result
        return outcomes

    def info(self) -> dict[str, Any]:
        rows = self.current
        e = self.embedder
        reason = self.text_search_reason
        return {
            "model": e.model_id,
            "modality": e.modality,
            "dim": int(e.dim),
            "pool": e.pool,
            "normalize": e.normalize,
            "dtype": str(e.torch_dtype).replace("torch.", ""),
            "backend": getattr(e.model, "featx_backend", "torch"),
            "device": str(e.device),
            "out": self.config.out,
            "rows": rows.count if rows is not None else None,
            "rows_total": rows.total if rows is not None else None,
            "row_dim": rows.dim if rows is not None else None,
            "columns": sorted(rows.extra) if rows is not None else [],
            "text": self.text_embedder is not None,
            "text_search": reason is None and rows is not None,
            "text_reason": reason,
            "text_dim": int(self.text_embedder.dim) if self.text_embedder is not None else None,
            "max_batch": self.config.max_batch,
            "max_k": self.config.max_k,
            "watch": bool(self.config.watch),
        }

    def error_text(self, exc: BaseException) -> str:
        return error_text(exc)

    def close(self, timeout: float = 30.0) -> None:
        """Finish in-flight inputs, then stop the model threads, the workers and the watcher."""
        self.draining = True
        self.media.close(timeout)
        self.texts.close(timeout)
        self._pool.shutdown()
        if self.rows is not None:
            self.rows.close()
