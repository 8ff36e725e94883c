"""Runtime backends: the same featx encoder run by torch, ONNX Runtime or OpenVINO.

`apply_backend` takes a loaded float32 featx encoder and makes it run on the chosen runtime (the
graph is exported from featx's own module on first use and cached per user). ``"auto"`` picks
from what this machine has and what is installed, by a rule measured with ``bench/backends.py``:
on a CPU with native bfloat16, torch in bfloat16 is fastest and stays within bfloat16 accuracy;
on a CPU without it, OpenVINO's float32 (exact; 1.4x torch's on an AVX2 CPU) and then ONNX
Runtime's (1.14x) are used when installed; on a GPU, torch. int8 is never chosen automatically.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:  # torch is imported by what runs a model, not by the CLI's parser (featx quantize)
    import torch
    from torch import nn

__all__ = ["BACKENDS", "choose_backend", "apply_backend", "Choice"]

BACKENDS = ("torch", "onnx", "openvino", "inductor", "auto")

Choice = tuple[str, str, str]  # (backend, dtype, reason)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_backend(backend: str, dtype: str, device: torch.device) -> Choice:
    """The backend and dtype to load with, and why. ``dtype`` is the user's (``"auto"`` or a name)."""
    from ..models.loading import cpu_has_native_bf16

    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if dtype == "int8" and backend not in ("onnx", "auto"):
        raise ConfigError(f"dtype int8 runs on the onnx backend, not {backend!r}")
    if backend != "auto":
        return backend, dtype, f"backend {backend} as asked"
    if dtype == "int8":
        return "onnx", "int8", "int8 runs on the onnx backend"
    if device.type != "cpu":
        return "torch", dtype, f"torch on {device.type}"
    native, why = cpu_has_native_bf16()
    if dtype in ("auto", "bfloat16") and native:
        return "torch", dtype, f"torch: {why}, and torch's bfloat16 is the fastest backend there"
    if dtype in ("auto", "float32"):
        # measured on an AVX2 CPU (bench/backends.py): OpenVINO float32 1.4x, ONNX Runtime 1.14x torch's
        if _installed("openvino"):
            return "openvino", "float32", f"openvino float32: {why}; OpenVINO's float32 is the fastest exact one there"
        if _installed("onnxruntime"):
            return "onnx", "float32", f"onnx float32: {why}; ONNX Runtime's float32 is faster than torch's"
        return "torch", dtype, "torch (neither openvino nor onnxruntime is installed here)"
    return "torch", dtype, f"torch: dtype {dtype} as asked"


def apply_backend(model: nn.Module, backend: str, dtype: str, *, cache_dir: str | Path | None = None,
                  threads: int | None = None) -> nn.Module:
    """Make a loaded featx encoder run on ``backend`` ("torch", "onnx", "openvino" or "inductor") in
    ``dtype`` ("float32"; "int8" for onnx; "bfloat16" for openvino). The model must be in float32,
    except for inductor, which compiles the module in the dtype it has."""
    if backend == "torch":
        model.featx_backend = "torch"
        return model
    if backend == "inductor":
        from .inductor import compile_inductor

        return compile_inductor(model, dtype)
    from .onnx import OnnxRunner, attach_runner
    from .openvino import OpenVinoRunner

    runner: Any = {"onnx": OnnxRunner, "openvino": OpenVinoRunner}.get(backend)
    if runner is None:
        raise ConfigError(f"unknown backend {backend!r}")
    precision = "float32" if dtype in ("auto", "float32") else dtype
    return attach_runner(model, runner, precision=precision, threads=threads,
                         cache_dir=Path(cache_dir) if cache_dir is not None else None)
