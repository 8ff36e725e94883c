"""Running a featx encoder through ONNX Runtime: export once per input signature, cache, run.

The graph is exported from featx's own module (not from transformers), on the first batch the
model sees, so the export knows the real input names and shapes: the batch axis is dynamic, and
so is the time axis of raw waveforms (their length varies between batches). The file is cached
under the per-user cache folder, keyed by the weights' content, featx's and torch's versions, the
input signature and the precision, and written atomically (a crash mid-export leaves no file
that a later run would trust). ``int8`` is onnxruntime's dynamic quantization of the float32
graph's MatMuls (weights int8, activations quantized per batch), or, where ``featx quantize``
calibrated this model for these input shapes, its static graph (`featx.backends.quantize`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DependencyError, install_hint, require
from ..cache import user_cache_root

__all__ = ["OnnxRunner", "attach_runner", "weights_digest", "onnx_cache_dir", "atomic_write",
           "quiet_quantization_tools", "PRECISIONS", "STATIC_SUFFIX"]

PRECISIONS = ("float32", "int8")
STATIC_SUFFIX = ".int8-static.onnx"  # calibrated graphs (`featx.backends.quantize`)
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


def atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` by calling ``write(tmp)`` on a temporary file beside it, then renaming it."""
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

    atomic_write(path, write)


def _quantize(src: Path, dst: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise DependencyError(f"int8 needs onnxruntime's quantization tools: {install_hint('onnx')}") from exc
    with quiet_quantization_tools():
        atomic_write(dst, lambda tmp: quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8))


@contextlib.contextmanager
def quiet_quantization_tools() -> Iterator[None]:
    """onnxruntime's quantization tools log advice on the root logger ("consider pre-processing")
    and print progress; neither is the user's concern."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


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

    def _model_type(self) -> str:
        return str(getattr(self.model, "config", {}).get("model_type", "model"))

    def graph_path(self, inputs: Mapping[str, torch.Tensor]) -> Path:
        """The cached graph file for these inputs (it may not exist yet)."""
        from .. import __version__

        # The graph file is the same for every float precision (the runtime picks its precision).
        stored = "int8" if self.precision == "int8" else "float32"
        key = hashlib.sha256(repr((self.digest, __version__, torch.__version__, self._signature(inputs),
                                   stored)).encode()).hexdigest()[:24]
        return self.cache_dir / f"{self._model_type()}-{key}.onnx"

    def float_graph_path(self, inputs: Mapping[str, torch.Tensor]) -> Path:
        """The float32 graph that this runner's graph is made from (the graph itself in float32)."""
        path = self.graph_path(inputs)
        return path if self.precision != "int8" else path.with_name(path.stem + ".fp32.onnx")

    def _model_key(self) -> str:
        from .. import __version__

        return hashlib.sha256(repr((self.digest, __version__, torch.__version__)).encode()).hexdigest()[:16]

    def calibrated_graph_path(self, inputs: Mapping[str, torch.Tensor]) -> Path:
        """Where `featx.backends.quantize` keeps the calibrated (static) int8 graph for these inputs.

        Named by the model's key and then the signature's, so that `calibrated_graphs` can tell
        before any batch is seen whether this model has been calibrated."""
        sig = hashlib.sha256(repr(self._signature(inputs)).encode()).hexdigest()[:12]
        return self.cache_dir / f"{self._model_type()}-{self._model_key()}-{sig}{STATIC_SUFFIX}"

    def calibrated_graphs(self) -> list[Path]:
        """The calibrated int8 graphs cached for this model (any input signature)."""
        if not self.cache_dir.is_dir():
            return []
        return sorted(self.cache_dir.glob(f"{self._model_type()}-{self._model_key()}-*{STATIC_SUFFIX}"))

    def output_names(self, inputs: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
        """The outputs the graph returns (those the torch module gives for these inputs), in order."""
        with torch.inference_mode():
            probe = self.model.featx_torch_forward(**{k: v[:1] for k, v in inputs.items()})
        return tuple(n for n in _OUTPUTS if getattr(probe, n, None) is not None)

    def ensure_graph(self, inputs: Mapping[str, torch.Tensor], *,
                     calibrated: bool = True) -> tuple[Path, tuple[str, ...]]:
        """The graph file to run these inputs with (exported, or quantized, on first use) and its
        outputs' names. For int8, a calibrated graph (``featx quantize``) is preferred to the
        dynamic one unless ``calibrated=False``."""
        outputs = self.output_names(inputs)
        if self.precision == "int8" and calibrated:
            calibrated = self.calibrated_graph_path(inputs)
            if calibrated.exists():
                self.model.featx_backend = f"{self.name}:int8-static"
                return calibrated, outputs
            if self.calibrated_graphs():
                shapes = ", ".join(f"{k} {list(v.shape[1:])}" for k, v in inputs.items())
                warnings.warn(f"the calibrated int8 graph of this model was made for other input shapes than "
                              f"{shapes}; using dynamic int8 for them")
            self.model.featx_backend = f"{self.name}:int8"
        path = self.graph_path(inputs)
        if not path.exists():
            fp32 = self.float_graph_path(inputs)
            if not fp32.exists():
                _export(self.model, _example(inputs), outputs, fp32)
            if self.precision == "int8":
                _quantize(fp32, path)
        return path, outputs

    def _session(self, inputs: Mapping[str, torch.Tensor]) -> tuple[Any, tuple[str, ...]]:
        sig = self._signature(inputs)
        with self._lock:
            if sig in self._sessions:
                return self._sessions[sig]
            path, outputs = self.ensure_graph(inputs)
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
    calibrated = precision == "int8" and runner.calibrated_graphs()
    model.featx_backend = f"{runner_class.name}:{precision}{'-static' if calibrated else ''}"
    return model
