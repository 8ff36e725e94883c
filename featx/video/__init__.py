"""Video files into sampled frames with timestamps (`load_video`), for ``featx embed``, the
pipelines and training loops (`frames`, a PyTorch ``IterableDataset``). Needs PyAV:
``pip install 'featx[video]'``."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "VIDEO_EXTENSIONS",
    "Sampling",
    "VideoDamagedError",
    "VideoFrame",
    "VideoFrames",
    "frames",
    "is_video_path",
    "load_video",
]

_LAZY = {"load_video": "decode", "VideoFrame": "decode", "Sampling": "decode", "VideoDamagedError": "decode",
         "VIDEO_EXTENSIONS": "decode", "is_video_path": "decode", "frames": "dataset", "VideoFrames": "dataset"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'featx.video' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
