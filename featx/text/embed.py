"""Text into joint image-text vectors: `load_text_embedder`, `TextEmbedder`, `embed_text`.

The text tower runs on the shared run path: `TextTowerEmbedder` is an `featx.embedding.Embedder`
that loads the checkpoint's text tower and tokenizer, so batch jobs (``featx embed --text-file``),
Ray and search use it like any embedder; `TextEmbedder` is the small public face over it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..embedding import Embedder
from ..errors import InputError

__all__ = ["TextTowerEmbedder", "TextEmbedder", "load_text_embedder", "embed_text"]


class TextTowerEmbedder(Embedder):
    """An `Embedder` of a checkpoint's text tower: inputs are strings, the processor is its tokenizer
    (texts truncated to the tokenizer's and the model's length, whichever is shorter)."""

    def _load_model(self, model: str | os.PathLike[str], **kwargs: Any) -> Any:
        from ..models import load_model

        return load_model(model, text=True, **kwargs)

    def _load_processor(self, model: str | os.PathLike[str], **kwargs: Any) -> Any:
        from .tokenization import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        tokenizer.model_max_length = min(tokenizer.model_max_length, int(self.model.opts.max_positions))
        return tokenizer


class TextEmbedder:
    """Texts -> L2-normalized float32 vectors [n, dim] in the checkpoint's joint image-text space."""

    def __init__(self, embedder: TextTowerEmbedder) -> None:
        self.embedder = embedder

    @property
    def dim(self) -> int:
        return int(self.embedder.dim)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def model(self) -> Any:
        return self.embedder.model

    @property
    def tokenizer(self) -> Any:
        return self.embedder.processor

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """[len(texts), dim] float32, each row of unit length (the empty list gives [0, dim])."""
        if isinstance(texts, str):
            raise InputError("embed() takes a list of texts, not one string; wrap it: embed([text])", source="texts")
        items = list(texts)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        prepared = [self.embedder.prepare(t) for t in items]
        return np.stack(self.embedder.embed(prepared, batch_size=batch_size)).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"TextEmbedder({self.model_id!r}, dim={self.dim})"


def load_text_embedder(model: str | os.PathLike[str], *, dtype: str = "auto", device: str | None = "auto",
                       **hub: Any) -> TextEmbedder:
    """The text tower of ``model`` (a full CLIP/SigLIP checkpoint or a text-only one) with its
    tokenizer. `featx.errors.ConfigError` "... has no text tower" for any other checkpoint; ``hub``:
    ``revision``, ``cache_dir``, ``token``, ``local_files_only``."""
    return TextEmbedder(TextTowerEmbedder(model, pool="joint", normalize=True, dtype=dtype, device=device, **hub))


def embed_text(model: str | os.PathLike[str], texts: Sequence[str], *, batch_size: int = 64,
               **kwargs: Any) -> np.ndarray:
    """``load_text_embedder(model, **kwargs).embed(texts)``: normalized joint-space vectors [n, dim]."""
    return load_text_embedder(model, **kwargs).embed(texts, batch_size=batch_size)
