"""Running a featx encoder through ONNX Runtime: export once per input signature, cache, run.

The graph is exported from featx's own module (not from transformers), on the first batch the
model sees, so the export knows the real input names and shapes: the batch axis is dynamic, and
so is the time axis of raw waveforms (their length varies between batches). The file is cached
under the per-user cache folder, keyed by the weights' content, featx's and torch's versions, the
input signature and the precision, and written atomically (a crash mid-export leaves no file
that a later run would trust). ``int8`` is onnxruntime's dynamic quantization of the float32
graph's MatMuls (weights int8, activations quantized per batch).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DependencyError, install_hint, require
from ..cache import user_cache_root

__all__ = ["OnnxRunner", "attach_runner", "weights_digest", "onnx_cache_dir", "PRECISIONS"]

PRECISIONS = ("float32", "int8")
_OUTPUTS = ("last_hidden_state", "pooler_output", "attention_mask", "image_embeds")


def _ort() -> Any:
    return require("onnxruntime", "onnx", "the onnx backend")


def onnx_cache_dir() -> Path:
    """Where exported graphs are kept (``$FEATX_CACHE_DIR/onnx`` or the user cache folder)."""
    return user_cache_root() / "onnx"


def weights_digest(model: nn.Module) -> str:
    """A digest of the model's tensors (names, shapes, dtypes, values): the cache key of its graph.

    Hashing the tensors rather than the checkpoint file covers every way a model is built
    (sharded files, a subfolder, weights changed in memory)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if tensor.device.type != "meta":
            h.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


class _Exported(nn.Module):
    """The encoder as a function of positional tensors returning a tuple (what the exporter takes)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...], outputs: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.outputs = outputs

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.featx_torch_forward(**dict(zip(self.names, tensors)))
        return tuple(getattr(out, name) for name in self.outputs)


def _graph_name(output: str) -> str:
    # An output may share an input's name (audio encoders take and return attention_mask).
    return f"out.{output}"


def _dynamic_axes(inputs: Mapping[str, torch.Tensor], outputs: tuple[str, ...]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for name, tensor in inputs.items():
        axes[name] = {0: "batch"}
        if tensor.ndim == 2 and tensor.is_floating_point():  # raw waveforms: any length
            axes[name][1] = "samples"
        elif tensor.ndim == 2:  # masks / ids follow their input's length
            axes[name][1] = "samples"
    for name in outputs:
        axes[_graph_name(name)] = {0: "batch", 1: "tokens"} if name in ("last_hidden_state", "attention_mask") \
            else {0: "batch"}
    return axes


def _example(inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Two rows to trace with, the second padded over its second half.

    Tracing records the branches that the example takes; encoders skip masking work when nothing
    is padded (``if not mask.all()``), so an unpadded example would give a graph that ignores the
    mask. The masked path is exact for unpadded batches too."""
    example = {k: v[:1].repeat(2, *([1] * (v.ndim - 1))).clone() for k, v in inputs.items()}
    for key, value in example.items():
        if "mask" in key and value.ndim == 2 and value.shape[1] > 1:
            value[1, value.shape[1] // 2:] = 0
    return example


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _export(model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs: tuple[str, ...], path: Path) -> None:
    names = tuple(inputs)
    wrapper = _Exported(model, names, outputs)
    args = tuple(inputs.values())

    def write(tmp: str) -> None:
        # The TorchScript exporter: seconds for a ViT-B where the dynamo one takes a minute, and
        # no onnxscript dependency. Its deprecation warning is not the user's concern.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, args, tmp, input_names=list(names), output_names=[_graph_name(n) for n in outputs],
                              dynamic_axes=_dynamic_axes(inputs, outputs), opset_version=17, dynamo=False)

    _atomic_write(path, write)


def _quantize(src: Path, dst: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise DependencyError(f"int8 needs onnxruntime's quantization tools: {install_hint('onnx')}") from exc
    _atomic_write(dst, lambda tmp: quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8))


class OnnxRunner:
    """Replaces an encoder's ``forward``: exports on the first call of each input signature.

    ``precision``: ``"float32"`` or ``"int8"``; ``device``: the torch device outputs go to
    (CUDA runs on onnxruntime's CUDA provider when it has one)."""

    name = "onnx"
    precisions: tuple[str, ...] = PRECISIONS

    def __init__(self, model: nn.Module, *, precision: str = "float32", cache_dir: Path | None = None,
                 threads: int | None = None) -> None:
        if precision not in self.precisions:
            raise ConfigError(f"the {self.name} backend runs {' or '.join(self.precisions)}, not {precision!r}")
        self.model = model
        self.precision = precision
        self.cache_dir = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
        self.threads = threads
        self.digest = weights_digest(model)
        self.check_installed()
        self._sessions: dict[tuple[Any, ...], tuple[Any, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def check_installed() -> None:
        """Raise `DependencyError` (naming the extra) when the runtime is missing."""
        _ort()

    def _signature(self, inputs: Mapping[str, torch.Tensor]) -> tuple[Any, ...]:
        # Fixed axes are part of the key (an image size change needs a new graph); dynamic ones not.
        return tuple((k, str(v.dtype), tuple(v.shape[2:]) if v.ndim > 2 else ()) for k, v in inputs.items())

    def graph_path(self, inputs: Mapping[str, torch.Tensor]) -> Path:
        """The cached graph file for these inputs (it may not exist yet)."""
        from .. import __version__

        # The graph file is the same for every float precision (the runtime picks its precision).
        stored = "int8" if self.precision == "int8" else "float32"
        key = hashlib.sha256(repr((self.digest, __version__, torch.__version__, self._signature(inputs),
                                   stored)).encode()).hexdigest()[:24]
        return self.cache_dir / f"{getattr(self.model, 'config', {}).get('model_type', 'model')}-{key}.onnx"

    def _session(self, inputs: Mapping[str, torch.Tensor]) -> tuple[Any, tuple[str, ...]]:
        sig = self._signature(inputs)
        with self._lock:
            if sig in self._sessions:
                return self._sessions[sig]
            with torch.inference_mode():
                probe = self.model.featx_torch_forward(**{k: v[:1] for k, v in inputs.items()})
            outputs = tuple(n for n in _OUTPUTS if getattr(probe, n, None) is not None)
            path = self.graph_path(inputs)
            if not path.exists():
                fp32 = path if self.precision != "int8" else path.with_name(path.stem + ".fp32.onnx")
                if not fp32.exists():
                    _export(self.model, _example(inputs), outputs, fp32)
                if self.precision == "int8":
                    _quantize(fp32, path)
            session = self._open(path)
            self._sessions[sig] = (session, outputs)
            return self._sessions[sig]

    def _open(self, path: Path) -> Any:
        """A function from the input arrays (by name) to the output arrays (in order)."""
        ort = _ort()
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        providers = ["CPUExecutionProvider"]
        if getattr(self.model, "featx_device", torch.device("cpu")).type == "cuda" and \
                "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        session = ort.InferenceSession(str(path), options, providers=providers)
        return lambda feed: session.run(None, feed)

    def __call__(self, **inputs: torch.Tensor) -> Any:
        from ..models.layers import EncoderOutput

        if inputs.pop("output_hidden_states", False):
            raise ConfigError("the onnx backend returns the last layer only; use backend='torch' for hidden states")
        inputs = {k: v for k, v in inputs.items() if v is not None}
        session, outputs = self._session(inputs)
        device = getattr(self.model, "featx_device", torch.device("cpu"))
        feed = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).numpy()
                for k, v in inputs.items()}
        values = session(feed)
        return EncoderOutput(**{n: torch.from_numpy(np.ascontiguousarray(v)).to(device)
                                for n, v in zip(outputs, values)})


def attach_runner(model: nn.Module, runner_class: type[OnnxRunner], *, precision: str = "float32",
                  cache_dir: Path | None = None, threads: int | None = None) -> nn.Module:
    """Make ``model`` (a float32 featx encoder) run through an exported graph; returns the same
    object. The torch module stays (the export reads it; its attributes describe the model to the
    rest of featx); only its forward changes."""
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise ConfigError(f"the {runner_class.name} backend exports a float32 model; load it with dtype='float32'")
    runner = runner_class(model, precision=precision, cache_dir=cache_dir, threads=threads)
    model.featx_torch_forward = model.forward
    model.forward = runner
    model.featx_backend = f"{runner_class.name}:{precision}"
    return model
