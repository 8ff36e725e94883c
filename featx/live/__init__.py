"""Live audio: ``featx stream`` embeds audio from stdin, a growing file or a URL window by window,
with the windows and embeddings the same audio gets as a file (`featx.live.stream`)."""

from __future__ import annotations

__all__ = ["SourceSpec", "StreamOptions", "run_stream"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name in ("run_stream", "StreamOptions"):
        from . import stream

        return getattr(stream, name)
    if name == "SourceSpec":
        from .source import SourceSpec

        return SourceSpec
    raise AttributeError(f"module 'featx.live' has no attribute {name!r}")
