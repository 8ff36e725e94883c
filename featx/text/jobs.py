"""Batch jobs of the text towers, on the shared engines (`featx.engine.local`, the Ray engine).

`TextEmbedJob`: ``featx embed --text-file``: one row per line, its embedding in the joint space,
and the line itself in a ``text`` column (null on error rows). `ClassifyJob`: ``featx classify``: one row per image with
the zero-shot scores of the labels (``scores``, in the labels' order), the best ``label`` and its
``score``. Both are `featx.engine.jobs.EmbedJob`s: the same error rows, retries one input at a
time, resume and shards.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.jobs import EmbedJob
from ..engine.workers import Prepared
from ..errors import ConfigError, InputError
from ..families.spec import TEXT_KEY
from .zero_shot import ZeroShotScorer

__all__ = ["TextEmbedJob", "ClassifyJob"]


class TextEmbedJob(EmbedJob):
    """Embeddings of texts (a `featx.text.embed.TextTowerEmbedder`): ``path`` is ``file#L<line>``."""

    def schema(self) -> Any:
        import pyarrow as pa

        return super().schema().append(pa.field("text", pa.string()))

    def _ok_rows(self, p: Prepared, vec: np.ndarray) -> list[dict[str, Any]]:
        # the text travels with the prepared arrays: engines that prepare elsewhere (Ray) drop the source
        text = str(p.arrays[TEXT_KEY]) if TEXT_KEY in p.arrays else None
        return [{**row, "text": text if row.get("embedding") is not None else None}
                for row in super()._ok_rows(p, vec)]

    @staticmethod
    def _error_row(p: Prepared, exc: BaseException) -> dict[str, Any]:
        return {**EmbedJob._error_row(p, exc), "text": None}


class ClassifyJob(EmbedJob):
    """Zero-shot label scores of images, from an image `Embedder` with ``pool="joint"`` and the
    labels' text vectors (``scorer``, computed once by the caller: the job carries only arrays, so
    engines that copy it to other processes need no text tower there)."""

    kind = "classification"

    def __init__(self, embedder: Any, scorer: ZeroShotScorer, **kwargs: Any) -> None:
        if embedder.pool != "joint":
            raise ConfigError("classification needs the joint image-text space (pool='joint')")
        if kwargs.get("fmt", "parquet") != "parquet":
            raise ConfigError("featx classify writes Parquet only")
        super().__init__(embedder, **kwargs)
        self.scorer = scorer

    def manifest(self) -> dict[str, Any]:
        return {**super().manifest(), "kind": self.kind, "labels": list(self.scorer.labels),
                "hypothesis_template": self.scorer.template, "scores": self.scorer.rule,
                "logit_scale": self.scorer.scale, "logit_bias": self.scorer.bias}

    def schema(self) -> Any:
        import pyarrow as pa

        return pa.schema([pa.field("path", pa.string()), pa.field("label", pa.string()),
                          pa.field("score", pa.float32()),
                          pa.field("scores", pa.list_(pa.float32(), len(self.scorer.labels))),
                          pa.field("error", pa.string())])

    def npy_columns(self) -> dict[str, np.dtype]:
        return {}

    def _ok_rows(self, p: Prepared, vec: np.ndarray) -> list[dict[str, Any]]:
        if not np.isfinite(vec).all():
            return [self._error_row(p, InputError("the model produced non-finite values", source=p.input.key))]
        scores = self.scorer.scores(vec[None])[0]
        best = int(np.argmax(scores))
        return [{"path": p.input.key, "label": self.scorer.labels[best], "score": float(scores[best]),
                 "scores": scores.astype(np.float32), "error": None}]

    @staticmethod
    def _error_row(p: Prepared, exc: BaseException) -> dict[str, Any]:
        row = EmbedJob._error_row(p, exc)
        return {"path": row["path"], "label": None, "score": None, "scores": None, "error": row["error"]}
