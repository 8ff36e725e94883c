"""ASGI middleware of the service: metrics and timing, bearer-token auth, request-body size cap.

Plain ASGI (not Starlette's BaseHTTPMiddleware) so they add next to nothing per request.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from .metrics import Metrics

__all__ = ["MetricsMiddleware", "AuthMiddleware", "BodyLimitMiddleware", "route_label", "PUBLIC_PATHS"]

# Served without the token: health, and the page's static files (they hold no data; the page
# asks for the token and sends it with each API call).
PUBLIC_PATHS = ("/healthz",)
PUBLIC_PREFIXES = ("/static/",)
_ROUTES = ("/", "/healthz", "/metrics", "/openapi.json", "/v1/info", "/v1/embeddings", "/v1/search")


def route_label(path: str) -> str:
    """A bounded set of metric labels: the route template, never the raw path."""
    if path in _ROUTES:
        return path
    if path.startswith("/v1/rows/") and path.endswith("/thumbnail"):
        return "/v1/rows/{id}/thumbnail"
    if path.startswith("/static/"):
        return "/static"
    return "other"


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class MetricsMiddleware:
    """Counts requests and errors by route and status, and times them."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_label(scope.get("path", ""))
            self.metrics.requests.inc(route, scope.get("method", ""), str(status[0]))
            if status[0] >= 400:
                self.metrics.errors.inc(route, str(status[0]))
            if status[0] == 413:
                self.metrics.rejected.inc("too_large")
            self.metrics.request_seconds.observe(time.perf_counter() - start)


class AuthMiddleware:
    """With a token: every route but `PUBLIC_PATHS` (and the page) needs ``Authorization: Bearer``."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or path == "/" or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value
                break
        scheme, _, credential = given.partition(b" ")
        # compare_digest: the time taken does not tell how much of a guess was right
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credential.strip(), self.token):
            await _send_json(send, 401, {"detail": "missing or wrong token: send 'Authorization: Bearer TOKEN'"},
                             [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Request bodies over ``limit`` bytes get 413, by Content-Length or while streaming in."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, int(limit)

    def _too_large(self, send: Any) -> Any:
        return _send_json(send, 413, {"detail": f"request body larger than {self.limit} bytes "
                                                f"(the service's --max-body-bytes)"})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.limit:
                        await self._too_large(send)
                        return
                except ValueError:
                    await _send_json(send, 400, {"detail": "bad Content-Length"})
                    return
        # read it all here (bounded), so a chunked body cannot pass the cap
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        data = b"".join(chunks)
        sent = [False]

        async def replay() -> dict[str, Any]:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
