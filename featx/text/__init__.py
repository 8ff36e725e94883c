"""Text: tokenizers, the text towers of contrastive image-text models, zero-shot classification.

`load_text_embedder(model)` gives a `TextEmbedder` whose ``embed(texts)`` returns L2-normalized
vectors in the joint image-text space (CLIP's projections, SigLIP's heads), the space that
``featx embed`` writes by default for such checkpoints (``pool="joint"``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["AutoTokenizer", "TextTokenizer", "TextEmbedder", "load_text_embedder", "embed_text",
           "ZeroShotImageClassificationPipeline"]

_LAZY = {
    "AutoTokenizer": "featx.text.tokenization",
    "TextTokenizer": "featx.text.tokenization",
    "TextEmbedder": "featx.text.embed",
    "load_text_embedder": "featx.text.embed",
    "embed_text": "featx.text.embed",
    "ZeroShotImageClassificationPipeline": "featx.text.zero_shot",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'featx.text' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
