"""``featx.pipeline``: the image- and audio-feature-extraction tasks.

``pipeline("image-feature-extraction", model=...)`` behaves like the transformers task of the same
name (nested lists ``[1, tokens, hidden]``, or ``[1, hidden]`` with ``pool=True``) and adds pooling
choices, L2 normalization and batched tensors. ``"audio-feature-extraction"`` is the same for
Whisper, AST and Wav2Vec2-style encoders; audio longer than the model's window is split into
windows (Whisper 30 s, AST 10.24 s, others 30 s) that are embedded separately and averaged.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from .embedding import Embedder
from .errors import ConfigError

__all__ = ["pipeline", "FeatureExtractionPipeline", "load_processor", "Embedder", "TASKS"]

TASKS: dict[str, tuple[str, str]] = {
    # task -> (modality, default model id)
    "image-feature-extraction": ("image", "google/vit-base-patch16-224-in21k"),
    "audio-feature-extraction": ("audio", "MIT/ast-finetuned-audioset-10-10-0.4593"),
    # featx.text.zero_shot: scores of candidate labels (CLIP softmax, SigLIP sigmoid)
    "zero-shot-image-classification": ("image", "openai/clip-vit-base-patch32"),
    # featx.llm: per input a [n_tokens, dim] array for an LLM's inputs_embeds
    "visual-tokens": ("image", "llava-hf/llava-1.5-7b-hf"),
    "audio-tokens": ("audio", "openai/whisper-base"),
}


def load_processor(name_or_path: str | os.PathLike[str], **overrides: Any) -> Any:
    """The image processor or audio feature extractor a checkpoint uses, with option overrides
    (``jpeg_draft``: opt-in reduced-size JPEG decoding, see `featx.image.draft`)."""
    from .image.draft import set_draft, split_draft_option
    from .registry import AutoProcessor

    options, draft = split_draft_option(overrides)
    return set_draft(AutoProcessor.from_pretrained(name_or_path, **options), draft)


def _pool_name(pool: bool | str | None) -> str:
    if pool is None or pool is False:
        return "none"
    if pool is True:
        return "pooler"
    return str(pool)


class FeatureExtractionPipeline:
    """Callable returned by `pipeline`; see ``__call__``."""

    def __init__(self, task: str, embedder: Embedder) -> None:
        self.task = task
        self.embedder = embedder
        self.model = embedder.model
        self.processor = embedder.processor

    def __call__(
        self,
        inputs: Any,
        pool: bool | str | None = False,
        batch_size: int = 8,
        normalize: bool = False,
        return_tensors: bool = False,
        num_workers: int = 2,
        video: dict[str, Any] | None = None,
    ) -> Any:
        """Embed one input or a list of them.

        ``pool``: False (token embeddings, like the reference), True (the model's pooler, like the
        reference), or "cls" | "mean" | "pooler". Mean pooling leaves out class/distillation tokens
        and padding. ``return_tensors=True`` gives one batched torch tensor instead of lists.
        A video file gives one result per sampled frame (`featx.video.pipeline`); ``video``: its
        sampling options (`featx.load_video`'s: fps, num_frames, keyframes, scenes, start, end, max_frames).
        """
        single = not isinstance(inputs, (list, tuple)) or _is_audio_pair(inputs)
        items = [inputs] if single else list(inputs)
        emb = self.embedder.with_options(pool=_pool_name(pool), normalize=normalize)
        if emb.modality == "image" and (video is not None or any(_is_video(x) for x in items)):
            from .video.pipeline import embed_items

            results = embed_items(emb, items, batch_size=batch_size, workers=num_workers,
                                  return_tensors=return_tensors, video=video)
            return results[0] if single else results
        vectors = [r.embedding for r in emb.iter_embed(items, batch_size=batch_size, workers=num_workers)]
        if return_tensors:
            if any(v.shape != vectors[0].shape for v in vectors):
                raise ConfigError("inputs give token sequences of different lengths; use a pool option to stack them")
            return torch.from_numpy(np.stack(vectors))
        results = [v[None].tolist() for v in vectors]
        return results[0] if single else results


def _is_video(value: Any) -> bool:
    from .video.decode import is_video_path

    return is_video_path(value)


def _is_audio_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and np.isscalar(value[1])


def pipeline(
    task: str,
    model: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "auto",
    revision: str | None = None,
    **kwargs: Any,
) -> FeatureExtractionPipeline:
    """Build an embedding pipeline for ``task`` from a local folder or hub id.

    Remaining keyword arguments are processor option overrides (e.g. ``size={"shortest_edge": 256}``)
    or download options (``cache_dir``, ``token``, ``local_files_only``).
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; featx has: {', '.join(TASKS)}")
    modality, default_model = TASKS[task]
    if task == "zero-shot-image-classification":
        from .text.zero_shot import ZeroShotImageClassificationPipeline

        return ZeroShotImageClassificationPipeline(model or default_model, dtype=dtype, device=device,  # type: ignore[return-value]
                                                   revision=revision, **kwargs)
    if task in ("visual-tokens", "audio-tokens"):
        from .llm.pipelines import tokens_pipeline

        return tokens_pipeline(task, modality, model or default_model, dtype=dtype, device=device,  # type: ignore[return-value]
                               revision=revision, **kwargs)
    embedder = Embedder(model or default_model, dtype=dtype, device=device, revision=revision, pool="none", **kwargs)
    if embedder.modality != modality:
        raise ConfigError(
            f"{task} needs an {modality} model, but {embedder.model_id} is an {embedder.modality} model"
        )
    return FeatureExtractionPipeline(task, embedder)
