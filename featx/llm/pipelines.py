"""``featx.pipeline("visual-tokens" | "audio-tokens")``: per input a float32 ``[n_tokens, dim]`` array
for an LLM's ``inputs_embeds``.

``visual-tokens``: LLaVA 1.5 / LLaVA-NeXT checkpoints give the reference's ``get_image_features``
(the language model is never loaded); any other featx image encoder gives its tokens through a
user-given ``adaptor``. ``audio-tokens``: an audio encoder's frames (only those covering the audio;
long audio in the model's windows), stacked ``stack`` at a time and passed through the adaptor (given,
or saved in the model folder as ``adaptor.json`` + ``adaptor.safetensors``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .tokens import TokenEmbedder

__all__ = ["TokensPipeline"]


class TokensPipeline:
    """Callable returned by `featx.pipeline` for the token tasks."""

    def __init__(self, task: str, embedder: TokenEmbedder) -> None:
        self.task = task
        self.embedder = embedder
        self.model = embedder.model
        self.processor = embedder.processor
        self.adaptor = embedder.adaptor

    def __call__(self, inputs: Any, batch_size: int = 8, num_workers: int = 2,
                 return_tensors: bool = False) -> Any:
        """One input -> one ``[n_tokens, dim]`` float32 array (a list of them for a list);
        ``return_tensors=True`` gives torch tensors."""
        pair = isinstance(inputs, tuple) and len(inputs) == 2 and np.isscalar(inputs[1])  # (audio, rate)
        single = not isinstance(inputs, (list, tuple)) or pair
        items = [inputs] if single else list(inputs)
        out = [r.embedding for r in self.embedder.iter_embed(items, batch_size=batch_size, workers=num_workers)]
        if return_tensors:
            out = [torch.from_numpy(o) for o in out]
        return out[0] if single else out


def tokens_pipeline(task: str, modality: str, model: str, **kwargs: Any) -> TokensPipeline:
    """Build the pipeline of a token task (called by `featx.pipeline`)."""
    embedder = TokenEmbedder(model, **kwargs)
    if embedder.modality != modality:
        raise ConfigError(f"{task} needs an {modality} model, but {embedder.model_id} is an {embedder.modality} model")
    if embedder.adaptor is None and not getattr(embedder.model, "projects_to_llm", False):
        raise ConfigError(f"{task} needs a checkpoint with a projector (LLaVA) or an adaptor: pass "
                          "adaptor=<featx.adapters.Adaptor or its folder>, or save one into the model folder")
    return TokensPipeline(task, embedder)
