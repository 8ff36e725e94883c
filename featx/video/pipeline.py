"""Videos in ``featx.pipeline("image-feature-extraction")``: one result per sampled frame.

A video input gives a list with one dict per frame: ``frame``, ``time_s`` and ``features`` (what
the pipeline gives for one image: nested lists, or a tensor with ``return_tensors=True``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .decode import Sampling, is_video_path
from .preparer import DEFAULT_MAX_FRAMES, VideoPreparer

__all__ = ["embed_items"]


def embed_items(embedder: Any, items: list[Any], *, batch_size: int, workers: int, return_tensors: bool,
                video: dict[str, Any] | None = None) -> list[Any]:
    """Per item: a video's per-frame results, or an image's result as the pipeline gives it.
    ``video``: sampling options of `featx.load_video` (default: 1 frame per second)."""
    options = dict(video or {})
    max_frames = int(options.pop("max_frames", None) or DEFAULT_MAX_FRAMES)
    preparer = VideoPreparer(embedder, Sampling(**options), max_frames=max_frames)
    out: list[Any] = []
    for item in items:
        if is_video_path(item):
            arrays = preparer.prepare(item)
            [vectors] = embedder.embed_windows([arrays], batch_size=batch_size)
            out.append([{"frame": int(n), "time_s": float(t), "features": _form(v, return_tensors)}
                        for n, t, v in zip(arrays["row_frame"], arrays["row_time_s"], vectors)])
        else:
            [result] = embedder.iter_embed([item], batch_size=batch_size, workers=workers)
            out.append(_form(result.embedding, return_tensors))
    return out


def _form(vector: np.ndarray, return_tensors: bool) -> Any:
    return torch.from_numpy(np.asarray(vector))[None] if return_tensors else vector[None].tolist()
