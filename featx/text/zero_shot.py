"""Zero-shot image classification: ``featx.pipeline("zero-shot-image-classification", model=...)``.

Like the reference's task: each candidate label goes through ``hypothesis_template``, the image and
the texts are embedded into the joint space, and the cosines times ``exp(logit_scale)`` (plus
SigLIP's ``logit_bias``) become scores by the family's rule: a softmax over the labels for CLIP, a
sigmoid per label for SigLIP. Results are ``[{"score", "label"}]``, best first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..embedding import Embedder
from ..errors import ConfigError, InputError
from .embed import TextEmbedder, load_text_embedder

__all__ = ["ZeroShotImageClassificationPipeline", "ZeroShotScorer", "label_scores", "DEFAULT_TEMPLATE"]

DEFAULT_TEMPLATE = "This is a photo of {}."


def label_scores(images: np.ndarray, texts: np.ndarray, scale: float, bias: float, rule: str) -> np.ndarray:
    """[n_images, n_labels] scores from unit image vectors [n, d] and unit text vectors [l, d]."""
    logits = scale * (images.astype(np.float64) @ texts.astype(np.float64).T) + bias
    if rule == "sigmoid":
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    if rule != "softmax":
        raise ConfigError(f"unknown score rule {rule!r}")
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def check_labels(candidate_labels: Any) -> list[str]:
    """Labels as a list of non-empty strings; a single string is comma-separated labels."""
    labels = [s.strip() for s in candidate_labels.split(",")] if isinstance(candidate_labels, str) \
        else list(candidate_labels or [])
    if not labels or any(not isinstance(x, str) or not x for x in labels):
        raise InputError("candidate_labels must be a non-empty list of non-empty strings", source="candidate_labels")
    if len(set(labels)) != len(labels):
        raise InputError(f"candidate_labels repeat a label: {labels}", source="candidate_labels")
    return labels


class ZeroShotScorer:
    """The label texts of one classification, embedded once: `scores` of unit image vectors."""

    def __init__(self, text: TextEmbedder, labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> None:
        if "{}" not in template:
            raise InputError(f"hypothesis_template must contain {{}}, got {template!r}", source="hypothesis_template")
        self.labels = check_labels(labels)
        self.template = template
        self.scale, self.bias = text.model.logit_scale_bias()
        self.rule = text.embedder.family.scores
        self.texts = text.embed([template.format(label) for label in self.labels])

    def scores(self, images: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(images, axis=-1, keepdims=True)
        return label_scores(images / np.maximum(norms, 1e-12), self.texts, self.scale, self.bias, self.rule)

    def ranked(self, row: np.ndarray) -> list[dict[str, Any]]:
        """One image's ``[{"score", "label"}]``, best first (ties keep the labels' order)."""
        order = sorted(range(len(self.labels)), key=lambda i: -float(row[i]))
        return [{"score": float(row[i]), "label": self.labels[i]} for i in order]


class ZeroShotImageClassificationPipeline:
    """Callable returned by ``featx.pipeline("zero-shot-image-classification", model=...)``."""

    task = "zero-shot-image-classification"

    def __init__(self, model: str | os.PathLike[str], *, dtype: Any = "auto", device: Any = None,
                 revision: str | None = None, **kwargs: Any) -> None:
        """``kwargs``: image processor overrides and hub options (``cache_dir``...)."""
        hub = {k: kwargs[k] for k in ("cache_dir", "token", "local_files_only") if k in kwargs}
        self.text = load_text_embedder(model, dtype=dtype, device=device, revision=revision, **hub)
        self.image = Embedder(model, pool="joint", normalize=True, dtype=dtype, device=device, revision=revision,
                              **kwargs)
        self.model = self.image.model
        self.image_processor = self.image.processor
        self.tokenizer = self.text.tokenizer

    def __call__(self, image: Any = None, candidate_labels: Any = None, *,
                 hypothesis_template: str = DEFAULT_TEMPLATE, batch_size: int = 8, num_workers: int = 2,
                 **kwargs: Any) -> Any:
        """Scores of ``candidate_labels`` for one image (a list of ``{"score", "label"}``, best
        first) or for a list of images (a list of such lists). Images: paths, URLs, bytes, PIL
        images or arrays, as ``featx.load_image`` reads them."""
        image = kwargs.pop("images", image)
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(kwargs))}")
        if image is None:
            raise InputError("no image given to classify", source="image")
        scorer = ZeroShotScorer(self.text, candidate_labels, hypothesis_template)
        single = not isinstance(image, (list, tuple))
        items = [image] if single else list(image)
        vectors = [r.embedding for r in self.image.iter_embed(items, batch_size=batch_size, workers=num_workers)]
        results = [scorer.ranked(row) for row in scorer.scores(np.stack(vectors))] if vectors else []
        return results[0] if single else results
