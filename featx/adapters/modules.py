"""Adaptors from an encoder's token space into a language model's embedding space.

`LinearAdaptor` is a LayerNorm and a Linear; `MLPAdaptor` is LLaVA's Linear-activation-Linear
(its parameter names are LLaVA's ``multi_modal_projector`` names, so `MLPAdaptor.from_llava` loads
those tensors as they are). Both save as ``adaptor.safetensors`` plus ``adaptor.json`` (the
constructor's arguments and the kind) and load back with `load_adaptor`; no pickles anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ModelLoadError
from ..models.layers import ACTIVATIONS, get_activation

__all__ = [
    "ADAPTOR_CONFIG",
    "ADAPTOR_WEIGHTS",
    "LLAVA_PROJECTOR_PREFIXES",
    "Adaptor",
    "LinearAdaptor",
    "MLPAdaptor",
    "load_adaptor",
]

ADAPTOR_CONFIG = "adaptor.json"
ADAPTOR_WEIGHTS = "adaptor.safetensors"
#: where LLaVA checkpoints keep the projector (transformers 5's layout, then the older one)
LLAVA_PROJECTOR_PREFIXES = ("model.multi_modal_projector.", "multi_modal_projector.")
_MAX_DIM = 1 << 20


def _dim(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DIM:
        raise ConfigError(f"{name} must be an integer from 1 to {_MAX_DIM}, got {value!r}")
    return value


class Adaptor(nn.Module):
    """Base of the adaptors: ``[..., in_dim] -> [..., out_dim]``, saved with its config."""

    kind: ClassVar[str] = ""
    in_dim: int
    out_dim: int
    #: consecutive encoder tokens concatenated into one input vector (audio frames, Ultravox-style);
    #: ``in_dim`` counts all of them
    stack: int = 1

    def config(self) -> dict[str, Any]:
        """The constructor's arguments (what ``adaptor.json`` records besides the kind)."""
        raise NotImplementedError

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``adaptor.safetensors`` and ``adaptor.json`` into ``folder`` (created); returns it."""
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(out / ADAPTOR_WEIGHTS), metadata={"format": "pt"})
        with open(out / ADAPTOR_CONFIG, "w", encoding="utf-8") as fh:
            json.dump({"kind": self.kind, **self.config()}, fh, indent=2)
        return out

    def load_tensors(self, state: dict[str, Tensor], source: str = "the weights") -> None:
        """Assign ``state`` (this module's names) strictly: missing, extra or misshapen tensors raise."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        bad = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
               if k in state and tuple(state[k].shape) != tuple(v.shape)]
        if missing or extra or bad:
            raise ModelLoadError(f"{source} does not fit this {type(self).__name__}: missing {missing}, "
                                 f"unexpected {extra}, shape mismatches {bad}")
        with torch.no_grad():
            for k, v in own.items():
                v.copy_(state[k])


class LinearAdaptor(Adaptor):
    """LayerNorm (``norm=True``) then Linear."""

    kind = "linear"

    def __init__(self, in_dim: int, out_dim: int, norm: bool = True, bias: bool = True, eps: float = 1e-5,
                 stack: int = 1) -> None:
        super().__init__()
        self.stack = _dim("stack", stack)
        self.in_dim, self.out_dim = _dim("in_dim", in_dim), _dim("out_dim", out_dim)
        self.eps = float(eps)
        self.norm = nn.LayerNorm(in_dim, eps=self.eps) if norm else None
        self.linear = nn.Linear(in_dim, out_dim, bias=bias)

    def config(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, "norm": self.norm is not None,
                "bias": self.linear.bias is not None, "eps": self.eps, "stack": self.stack}

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.norm(x) if self.norm is not None else x)


class MLPAdaptor(Adaptor):
    """``linear_2(act(linear_1(x)))``, LLaVA's projector; ``hidden`` defaults to ``out_dim``."""

    kind = "mlp"

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None, act: str = "gelu",
                 bias: bool = True, stack: int = 1) -> None:
        super().__init__()
        self.stack = _dim("stack", stack)
        if act not in ACTIVATIONS:
            raise ConfigError(f"act must be one of {', '.join(sorted(ACTIVATIONS))}, got {act!r}")
        self.in_dim, self.out_dim = _dim("in_dim", in_dim), _dim("out_dim", out_dim)
        self.hidden = _dim("hidden", hidden if hidden is not None else out_dim)
        self.act_name = act
        self.linear_1 = nn.Linear(in_dim, self.hidden, bias=bias)
        self.act = get_activation(act)
        self.linear_2 = nn.Linear(self.hidden, out_dim, bias=bias)

    def config(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, "hidden": self.hidden, "act": self.act_name,
                "bias": self.linear_1.bias is not None, "stack": self.stack}

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(self.act(self.linear_1(x)))

    @classmethod
    def from_llava(cls, checkpoint: str | os.PathLike[str], **hub: Any) -> MLPAdaptor:
        """LLaVA's ``multi_modal_projector`` from a checkpoint (folder or hub id), reading only its
        tensors; the activation comes from config.json's ``projector_hidden_act``."""
        from ..hub import HubOptions
        from ..models.loading import read_config
        from ..models.partial import read_tensors

        options = HubOptions.pop_from(hub)
        config = read_config(checkpoint, options)
        act = config.get("projector_hidden_act", "gelu")
        read = read_tensors(checkpoint, lambda k: k.startswith(LLAVA_PROJECTOR_PREFIXES), options)
        state = projector_state(read.tensors)
        if "linear_1.weight" not in state or "linear_2.weight" not in state:
            raise ModelLoadError(f"{os.fspath(checkpoint)} has no multi_modal_projector.linear_1/linear_2 weights")
        hidden, in_dim = state["linear_1.weight"].shape
        out_dim = state["linear_2.weight"].shape[0]
        with torch.device("meta"):
            adaptor = cls(int(in_dim), int(out_dim), int(hidden), act=str(act), bias="linear_1.bias" in state)
        adaptor.to_empty(device="cpu")
        adaptor.load_tensors(state, os.fspath(checkpoint))
        return adaptor.to(state["linear_1.weight"].dtype)


def projector_state(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """LLaVA projector tensors under the adaptor's names (``linear_1.weight`` ...)."""
    out: dict[str, Tensor] = {}
    for name, tensor in tensors.items():
        for prefix in LLAVA_PROJECTOR_PREFIXES:
            if name.startswith(prefix):
                out[name[len(prefix):]] = tensor
                break
    return out


_KINDS: dict[str, type[Adaptor]] = {"linear": LinearAdaptor, "mlp": MLPAdaptor}


def load_adaptor(folder: str | os.PathLike[str]) -> Adaptor:
    """An adaptor saved by `Adaptor.save` (``adaptor.json`` + ``adaptor.safetensors``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder)
    try:
        with open(path / ADAPTOR_CONFIG, encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path / ADAPTOR_CONFIG}: {exc}") from exc
    if not isinstance(config, dict) or config.get("kind") not in _KINDS:
        raise ConfigError(f"{path / ADAPTOR_CONFIG}: 'kind' must be one of {', '.join(_KINDS)}, "
                          f"got {config.get('kind') if isinstance(config, dict) else config!r}")
    cls = _KINDS[config.pop("kind")]
    try:
        adaptor = cls(**config)
    except TypeError as exc:
        raise ConfigError(f"{path / ADAPTOR_CONFIG}: {exc}") from exc
    try:
        state = load_file(str(path / ADAPTOR_WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot read {path / ADAPTOR_WEIGHTS}: {exc}") from exc
    adaptor.load_tensors(state, os.fspath(path / ADAPTOR_WEIGHTS))
    dtypes = {t.dtype for t in state.values()}
    return adaptor.to(dtypes.pop()) if len(dtypes) == 1 else adaptor
