"""Running a featx encoder through OpenVINO, from the same exported ONNX graph.

OpenVINO reads the cached ONNX file directly; its CPU plugin runs it in float32, or in bfloat16
where the CPU has native bfloat16 (``precision="bfloat16"``: OpenVINO's inference precision hint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import require
from .onnx import OnnxRunner
from .signal_stack import kept_signal_stack

__all__ = ["OpenVinoRunner"]


class OpenVinoRunner(OnnxRunner):
    """`OnnxRunner` whose graphs run on OpenVINO's CPU (or GPU) plugin."""

    name = "openvino"
    precisions = ("float32", "bfloat16")

    @staticmethod
    def check_installed() -> None:
        require("openvino", "openvino", "the openvino backend")

    def _open(self, path: Path) -> Any:
        with kept_signal_stack():
            ov = require("openvino", "openvino", "the openvino backend")
            core = ov.Core()
            device = "GPU" if getattr(self.model, "featx_device", torch.device("cpu")).type == "cuda" and \
                "GPU" in core.available_devices else "CPU"
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bfloat16" else "f32"}
            if self.threads:
                config["INFERENCE_NUM_THREADS"] = int(self.threads)
            compiled = core.compile_model(core.read_model(str(path)), device, config)
            del core  # released here, inside the guard
        return _Compiled(compiled)


class _Compiled:
    """A compiled OpenVINO model called with a feed; every call into OpenVINO, its release
    included, keeps the thread's signal stack (see `featx.backends.signal_stack`)."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._outputs = list(compiled.outputs)

    def __call__(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with kept_signal_stack():
            # A fresh request per call: requests are not thread-safe, compiled models are.
            result = self._compiled.create_infer_request().infer(feed)
            arrays = [np.array(result[o]) for o in self._outputs]
            del result
        return arrays

    def __del__(self) -> None:
        with kept_signal_stack():
            self._outputs = []
            self._compiled = None
