"""The HTTP routes of ``featx serve`` (FastAPI): embeddings, search, thumbnails, health, metrics, page.

`create_app(service)` builds the app around a `featx.serve.service.Service`; the service's model
threads keep running until the app's lifespan ends, so a shutdown (SIGTERM) lets uvicorn finish
the requests in flight first (see `featx.serve.server`).
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, which name
# classes local to create_app
import contextlib
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any, Literal

from ..errors import InputError, require
from .batching import BatcherClosed, QueueFull
from .middleware import AuthMiddleware, BodyLimitMiddleware, MetricsMiddleware
from .payloads import Payload, decode_media, encode_vector, parse_input
from .service import RequestTimeout, Service
from .thumbs import NotAllowed, resolve_row_file

__all__ = ["create_app", "STATIC_FILES"]

# The page's assets, served from the package (no CDN): name -> content type.
STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_RETRY = {"Retry-After": "1"}


def _asset(name: str) -> bytes:
    return resources.files("featx.serve").joinpath("static", name).read_bytes()


def create_app(service: Service) -> Any:
    """The ASGI app serving ``service`` (needs the ``serve`` extra: fastapi, python-multipart)."""
    require("fastapi", "serve", purpose="featx serve")
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, Response
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool

    class EmbeddingsRequest(BaseModel):
        """The OpenAI embeddings API's request."""

        input: str | list[str | dict[str, Any]] = Field(
            description="texts; image/audio files as data URIs or base64; with --allow-urls http(s) URLs; "
                        "or objects {type: text|image|audio|url, text|data|url}")
        model: str | None = Field(None, description="accepted for compatibility; the served model answers")
        encoding_format: Literal["float", "base64"] = "float"
        user: str | None = None

    class SearchRequest(BaseModel):
        """A search: exactly one of ``image`` and ``text``."""

        image: str | None = Field(None, description="the query image as a data URI or base64")
        text: str | None = Field(None, description="a text query (models with a text tower)")
        k: int = Field(10, ge=1, description="results wanted")
        prefix: str | None = Field(None, description="keep rows whose path starts with this")

    cfg = service.config

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(service.close)  # in-flight batches finish first

    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN; the schema is at /openapi.json
    app = FastAPI(title="featx serve", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Embeddings and search over a featx output folder.")

    def fail(status: int, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
        return HTTPException(status_code=status, detail=detail, headers=headers)

    async def run(payloads: list[Payload]) -> list[Any]:
        try:
            return await service.run(payloads)
        except QueueFull as exc:
            service.metrics.rejected.inc("queue_full")
            raise fail(503, str(exc), _RETRY) from None
        except BatcherClosed as exc:
            raise fail(503, str(exc), _RETRY) from None
        except RequestTimeout as exc:
            service.metrics.rejected.inc("timeout")
            raise fail(504, str(exc)) from None

    @app.get("/healthz", summary="Liveness (never needs the token)")
    async def healthz() -> Any:
        if service.draining:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        rows = service.current
        body = {"status": "ok", "queue": service.media.depth + service.texts.depth,
                "rows": rows.count if rows is not None else None}
        if service.rows is not None and service.rows.last_error:
            body["reload_error"] = service.rows.last_error
        return body

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def metrics() -> Any:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/info", summary="The model, the rows and what the service can do")
    async def info() -> Any:
        return service.info()

    @app.post("/v1/embeddings", summary="Embed inputs (OpenAI embeddings API shape)")
    async def embeddings(body: EmbeddingsRequest) -> Any:
        items = [body.input] if isinstance(body.input, str) else list(body.input)
        if not items:
            raise fail(422, "input is empty")
        if len(items) > cfg.max_inputs:  # counted as too_large by the metrics middleware
            raise fail(413, f"{len(items)} inputs in one request; at most {cfg.max_inputs} (--max-inputs)")
        parsed: list[Payload | Exception] = []
        for item in items:
            try:
                parsed.append(parse_input(item, allow_urls=cfg.allow_urls))
            except InputError as exc:
                parsed.append(exc)
        good = [i for i, p in enumerate(parsed) if isinstance(p, Payload)]
        outcomes = await run([parsed[i] for i in good]) if good else []  # type: ignore[misc]
        results: list[Any] = list(parsed)
        for i, outcome in zip(good, outcomes):
            results[i] = outcome
        data = []
        for i, r in enumerate(results):
            if isinstance(r, BaseException):
                data.append({"object": "error", "index": i, "error": {"message": service.error_text(r)}})
            else:
                data.append({"object": "embedding", "index": i, "embedding": encode_vector(r, body.encoding_format)})
        failed = sum(isinstance(r, BaseException) for r in results)
        service.metrics.input_errors.inc(by=failed)
        return {"object": "list", "data": data, "model": service.embedder.model_id, "errors": failed,
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    _search_body = {"content": {
        "application/json": {"schema": SearchRequest.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "image": {"type": "string", "format": "binary"}, "text": {"type": "string"},
            "k": {"type": "integer"}, "prefix": {"type": "string"}}}}}}

    @app.post("/v1/search", summary="Nearest rows to an image or a text", openapi_extra={"requestBody": _search_body})
    async def search(request: Request) -> Any:
        start = time.perf_counter()
        rows = service.current
        if rows is None:
            raise fail(404, "no rows to search: the service was started without OUT (embeddings only)")
        query = await _search_query(request, SearchRequest)
        if (query.image is None) == (query.text is None):
            raise fail(422, "give exactly one of 'image' and 'text'")
        k = min(query.k, cfg.max_k)
        if query.text is not None:
            reason = service.text_search_reason
            if reason is not None:
                raise fail(422, f"text search is not available: {reason}")
            payload = Payload("text", query.text)
        else:
            try:
                payload = Payload("media", query.image if isinstance(query.image, bytes) else decode_media(query.image, "image"))
            except InputError as exc:
                raise fail(422, str(exc)) from None
        (outcome,) = await run([payload])
        if isinstance(outcome, BaseException):
            service.metrics.input_errors.inc()
            raise fail(422, f"the query cannot be embedded: {service.error_text(outcome)}")
        rows = service.current  # the newest rows (a reload may have happened meanwhile)
        try:
            hits = rows.search(outcome, k, query.prefix)
        except InputError as exc:
            raise fail(422, str(exc)) from None
        return {"results": hits, "rows": rows.count, "took_ms": round(1000 * (time.perf_counter() - start), 2)}

    @app.get("/v1/rows/{row_id}/thumbnail", summary="A small JPEG of an image row",
             responses={200: {"content": {"image/jpeg": {}}}})
    async def thumbnail(row_id: int) -> Any:
        rows = service.current
        path = rows.path_of(row_id) if rows is not None else None
        if path is None:
            raise fail(404, f"no row {row_id} with an embedding")
        try:
            real = resolve_row_file(path, rows.manifest.get("working_dir"), service.roots)
        except NotAllowed as exc:
            raise fail(403 if "outside" in str(exc) else 404, str(exc)) from None
        try:
            data = await run_in_threadpool(service.thumbnails.get, real)
        except (InputError, OSError) as exc:
            raise fail(404, f"no thumbnail for row {row_id}: {service.error_text(exc)}") from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        return Response(_asset("index.html"), media_type="text/html; charset=utf-8")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Any:
        if name not in STATIC_FILES:  # a fixed list: no path from the request reaches the file system
            raise fail(404, "no such file")
        return Response(_asset(name), media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    app.add_middleware(BodyLimitMiddleware, limit=cfg.max_body_bytes)
    app.add_middleware(AuthMiddleware, token=cfg.token)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # outermost: sees 401 and 413 too
    return app


async def _search_query(request: Any, model: Any) -> Any:
    """The search parameters from a JSON body or a multipart form (an ``image`` file upload)."""
    from fastapi import HTTPException
    from pydantic import ValidationError

    kind = request.headers.get("content-type", "")
    try:
        if kind.startswith("multipart/form-data"):
            form = await request.form()
            fields: dict[str, Any] = {}
            for key in ("text", "k", "prefix"):
                if form.get(key) not in (None, ""):
                    fields[key] = form.get(key)
            upload = form.get("image")
            query = model.model_validate(fields)
            if upload is not None and not isinstance(upload, str):
                data = await upload.read()
                if not data:
                    raise HTTPException(422, "the uploaded image is empty")
                query.image = data  # bytes: already decoded
            elif isinstance(upload, str) and upload:
                query.image = upload
            return query
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None


def _version() -> str:
    from .. import __version__

    return __version__
