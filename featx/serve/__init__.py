"""``featx serve``: an HTTP service for embeddings and search over a featx output folder, with a web page.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart). `ServeConfig` holds the options,
`Service` the model, batchers and rows, `create_app` the routes, `serve` runs it under uvicorn.
See docs/serve.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeConfig", "Service", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    # lazily: importing featx.serve must not import torch or FastAPI
    if name in ("ServeConfig", "Service"):
        from . import service

        return getattr(service, name)
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(f"module 'featx.serve' has no attribute {name!r}")
