"""The ``inductor`` backend: featx's own torch module compiled by ``torch.compile``.

Inductor fuses what eager torch runs as separate passes over memory (a Linear's bias with the
GELU after it, residual adds, layer norms); matmuls stay torch's. Inductor's ``freezing`` (weights
folded in and repacked for oneDNN) is not used: on a 2-core AVX2 CPU it ran a ViT-B in float32 at
0.4-0.6x eager speed, where plain compilation ran at 1.0-1.2x. The first batch of each input
shape compiles (tens of seconds on a 2-core CPU for a ViT-B); the result is kept in inductor's
on-disk cache (``$TORCHINDUCTOR_CACHE_DIR``, by default a folder under the system's temp folder;
featx does not change the environment to move it), so a later process loads it in seconds. Numbers
stay within float rounding of the eager module (fused kernels sum in another order).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["compile_inductor"]


def compile_inductor(model: nn.Module, dtype: str = "auto") -> nn.Module:
    """Make ``model.forward`` run compiled; returns the same object (its attributes stay)."""
    if dtype == "int8":
        raise ConfigError("dtype int8 runs on the onnx backend, not inductor")
    if getattr(model, "featx_backend", "torch") != "torch":
        raise ConfigError(f"the model already runs on {model.featx_backend}")
    eager = model.forward
    compiled = torch.compile(eager, dynamic=None)

    def forward(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("output_hidden_states"):
            return eager(*args, **kwargs)  # rare; not worth a second compiled graph
        with torch.no_grad():  # inference only: no autograd graph in the compiled code
            return compiled(*args, **kwargs)

    model.featx_torch_forward = eager
    model.forward = forward
    model.featx_backend = "inductor:" + str(next(model.parameters()).dtype).replace("torch.", "")
    return model
