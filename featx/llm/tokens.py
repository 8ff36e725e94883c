"""Token arrays an LLM takes as ``inputs_embeds``: visual tokens (LLaVA), audio tokens, any encoder's
tokens through an adaptor.

`TokenEmbedder` is an `featx.Embedder` whose output per input is ``[n_tokens, dim]``: the model's
tokens with padding dropped (the output's ``attention_mask``: LLaVA-NeXT's packed tiles, audio
frames past the end of the recording), optionally stacked ``stack`` at a time (Ultravox-style: k
consecutive frames concatenated, the last group zero-padded) and passed through an adaptor
(`featx.adapters`). Windows of long audio are handled apart and their tokens concatenated.
It runs the one run path (prepare -> batch -> run) of `featx.embedding`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..embedding import Embedder, _collate
from ..errors import ConfigError

__all__ = ["TokenEmbedder", "resolve_adaptor", "stack_frames"]


def stack_frames(tokens: Tensor, k: int) -> Tensor:
    """[n, d] -> [ceil(n / k), k * d]: k consecutive tokens concatenated, the tail zero-padded."""
    if k == 1:
        return tokens
    n, d = tokens.shape
    groups = -(-n // k)
    if groups * k != n:
        tokens = torch.cat([tokens, tokens.new_zeros(groups * k - n, d)], dim=0)
    return tokens.reshape(groups, k * d)


def resolve_adaptor(adaptor: Any, model: str | os.PathLike[str] | None = None) -> Any:
    """An adaptor object, a folder saved by `featx.adapters.Adaptor.save`, or (None) the model
    folder's own ``adaptor.json`` when it has one (else None)."""
    from ..adapters import ADAPTOR_CONFIG, load_adaptor

    if adaptor is None and model is not None and os.path.isfile(os.path.join(os.fspath(model), ADAPTOR_CONFIG)):
        return load_adaptor(model)
    if isinstance(adaptor, (str, os.PathLike)):
        return load_adaptor(adaptor)
    if adaptor is not None and not isinstance(adaptor, torch.nn.Module):
        raise ConfigError(f"adaptor must be a torch module or a folder saved by Adaptor.save, got {type(adaptor).__name__}")
    return adaptor


class TokenEmbedder(Embedder):
    """Per input a float32 ``[n_tokens, dim]`` array (see the module docstring).

    ``adaptor``: an `featx.adapters.Adaptor` (or its folder; default: the model folder's own, if
    any); ``stack``: tokens concatenated before it (default: the adaptor's ``stack``, else 1).
    """

    def __init__(self, model: str | os.PathLike[str], *, adaptor: Any = None, stack: int | None = None,
                 **kwargs: Any) -> None:
        kwargs.pop("pool", None)
        super().__init__(model, pool="none", **kwargs)
        self.adaptor = resolve_adaptor(adaptor, model)
        self.stack = int(stack if stack is not None else getattr(self.adaptor, "stack", 1))
        if self.stack < 1:
            raise ConfigError(f"stack must be at least 1, got {stack}")
        width = self.hidden_size * self.stack
        if self.adaptor is not None:
            in_dim = getattr(self.adaptor, "in_dim", width)
            if in_dim != width:
                raise ConfigError(f"the adaptor takes {in_dim} values per token but the model gives {self.hidden_size}"
                                  f" x stack {self.stack} = {width}")
            if self.model is not None:
                self.adaptor = self.adaptor.to(self.device, self.torch_dtype).eval()
            self.dim = int(self.adaptor.out_dim)
        else:
            self.dim = width
        #: tokens per input when every input gives the same number (None: it varies)
        self.num_tokens: int | None = getattr(self.model, "num_tokens", None) if self.stack == 1 else None

    @torch.inference_mode()
    def _run(self, items: list[dict[str, np.ndarray]]) -> list[Tensor]:
        batch = _collate(items)
        inputs: dict[str, Tensor] = {}
        for key, value in batch.items():
            tensor = torch.from_numpy(value).to(self.device, non_blocking=True)
            inputs[key] = tensor.to(self.torch_dtype) if tensor.is_floating_point() else tensor
        mask = inputs.get("attention_mask")
        if mask is not None and not self._mask_to_model:
            del inputs["attention_mask"]
        output = self.model(**inputs)
        out_mask = output.attention_mask
        if out_mask is None and mask is not None:
            out_mask = self.model.output_attention_mask(mask)
        rows = []
        for i, tokens in enumerate(output.last_hidden_state):
            if out_mask is not None:
                tokens = tokens[out_mask[i].to(tokens.device).bool()]
            tokens = stack_frames(tokens, self.stack)
            if self.adaptor is not None:
                tokens = self.adaptor(tokens)
            rows.append(tokens.float())
        return rows
