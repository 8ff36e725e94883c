"""Running the service under uvicorn, with a graceful stop on SIGTERM/SIGINT.

On a stop signal uvicorn stops accepting connections and waits for the requests in flight; their
inputs are already in the batcher, whose model thread keeps running until the app's lifespan ends
(after the last response), so every accepted request gets its answer. ``/healthz`` answers 503
while draining, so a load balancer stops sending work.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, TextIO

from ..errors import require
from .service import ServeConfig, Service

__all__ = ["serve", "build"]


def build(config: ServeConfig) -> tuple[Service, Any]:
    """The `Service` and its app for ``config`` (loads the model)."""
    from .app import create_app

    require("fastapi", "serve", purpose="featx serve")
    require("multipart", "serve", purpose="featx serve (file uploads)")
    service = Service(config)
    service.warm_up()
    return service, create_app(service)


def _stopped(signum: int, frame: Any) -> None:
    """Where uvicorn's re-raised stop signal lands after a graceful shutdown."""


def serve(config: ServeConfig, *, stream: TextIO | None = None, graceful_timeout_s: float = 30.0) -> int:
    """Serve until stopped (SIGTERM, SIGINT); returns the exit status (0 after a clean stop)."""
    uvicorn = require("uvicorn", "serve", purpose="featx serve")
    out = stream if stream is not None else sys.stderr
    service, app = build(config)

    class Server(uvicorn.Server):  # type: ignore[misc, name-defined]
        def handle_exit(self, sig: int, frame: Any) -> None:
            service.draining = True
            super().handle_exit(sig, frame)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            for server in getattr(self, "servers", []):
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    shown = f"[{host}]" if ":" in host else host
                    info = service.info()
                    rows = f", {info['rows']} rows" if info["rows"] is not None else " (embeddings only)"
                    print(f"featx: serving {info['model']}{rows} on http://{shown}:{port}", file=out, flush=True)

    settings = uvicorn.Config(app, host=config.host, port=config.port, log_level="warning", access_log=False,
                              timeout_graceful_shutdown=graceful_timeout_s, lifespan="on")
    server = Server(settings)
    # uvicorn raises the stop signal again once it has shut down, to the handler that was there
    # before it; a no-op one makes a graceful stop end with status 0 instead of a signal death.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    except SystemExit:  # uvicorn exits (status 3) when it cannot start, e.g. the port is taken
        print(f"featx: error: cannot serve on {config.host}:{config.port} (see above)", file=out)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not service.draining:  # startup failed (port taken): release the model threads
            service.close(timeout=1)
    return 0 if server.started else 1
