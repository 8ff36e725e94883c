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

__all__ = ["OpenVinoRunner"]


class OpenVinoRunner(OnnxRunner):
    """`OnnxRunner` whose graphs run on OpenVINO's CPU (or GPU) plugin."""

    name = "openvino"
    precisions = ("float32", "bfloat16")

    @staticmethod
    def check_installed() -> None:
        require("openvino", "openvino", "the openvino backend")

    def _open(self, path: Path) -> Any:
        ov = require("openvino", "openvino", "the openvino backend")
        core = ov.Core()
        device = "GPU" if getattr(self.model, "featx_device", torch.device("cpu")).type == "cuda" and \
            "GPU" in core.available_devices else "CPU"
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bfloat16" else "f32"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        compiled = core.compile_model(core.read_model(str(path)), device, config)
        outputs = list(compiled.outputs)

        def run(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            # A fresh request per call: requests are not thread-safe, compiled models are.
            result = compiled.create_infer_request().infer(feed)
            return [np.asarray(result[o]) for o in outputs]

        return run
