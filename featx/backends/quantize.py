"""Calibrated static int8 (``featx quantize``): an int8 graph measured against float32 on the user's inputs.

Dynamic int8 (``--dtype int8`` without calibration) quantizes each batch's activations with that
batch's own range. Here the ranges come from a few hundred of the user's own inputs instead:

1. the checkpoint is loaded in float32 and its graph exported exactly as the onnx backend does it
   (`OnnxRunner.ensure_graph`: same cache, same input signature; the dynamic int8 graph with it);
2. the inputs (files, folders, globs, ``@list`` files: as ``featx embed`` lists them) are prepared
   by featx's own processor; a few are held out for measuring, the rest calibrate;
3. onnxruntime's ``quantize_static`` (QDQ, per-channel weights) quantizes only the MatMuls/Gemms
   with a weight (the attention's activation x activation MatMuls stay float32), for each
   calibration method and activation/weight type tried; the best on the held-out inputs is kept;
4. each quantized layer's own error (its int8 output against its float32 output on calibration
   activations) ranks them, and the worst are kept in float32, more at each step, until the
   held-out mean cosine to float32 reaches the target (or the report says it did not);
5. the graph is written atomically to the graph cache (`OnnxRunner.calibrated_graph_path`), where
   ``load_model(..., backend="onnx", dtype="int8")`` finds it (``featx_backend`` "onnx:int8-static").

The held-out inputs both choose the configuration and measure it: the report's numbers are those
of the choice, on inputs the calibration did not see.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DependencyError, InputError, install_hint
from .onnx import OnnxRunner, atomic_write, quiet_quantization_tools

__all__ = ["METHODS", "MIN_INPUTS", "TYPES", "Accuracy", "QuantizeReport", "calibrate_int8"]

METHODS = ("minmax", "percentile", "entropy")
# (activation, weight, reduce_range): U8S8 is what x86 kernels run fastest; without VNNI its
# 16-bit intermediate sums can saturate, which 7-bit weights (reduce_range) or U8U8 avoid.
TYPES = ("u8s8-reduced", "u8s8", "u8u8")
MIN_INPUTS = 8  # fewer usable inputs than this cannot both calibrate and measure


@dataclass
class Accuracy:
    """A graph's embeddings against float32's on the held-out inputs."""

    mean_cosine: float
    min_cosine: float
    top5_overlap: float  # the share of each held-out input's 5 nearest held-out neighbours kept


@dataclass
class QuantizeReport:
    """What ``calibrate_int8`` did and measured (JSON-safe: `to_dict`)."""

    model: str
    model_type: str
    graph: str  # the calibrated graph in the cache
    output: str | None
    inputs: dict[str, list[int]]  # the first batch's input shapes, batch axis left out
    calibration_inputs: int
    held_out_inputs: int
    skipped: list[str]  # "input: why" for each input that could not be prepared
    method: str
    types: str
    smoothed: bool  # LayerNorm outlier channels moved into the next MatMuls' weights (`_smoothed`)
    quantized_layers: int
    kept_float32: list[str]  # weight MatMul/Gemm nodes kept in float32 (most sensitive first)
    target_cosine: float
    reached_target: bool
    static: Accuracy
    dynamic: Accuracy
    items_per_s: dict[str, float]  # float32 / int8-dynamic / int8-static, same batches, same threads
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every configuration tried

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ort_quantization() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError as exc:
        raise DependencyError(f"featx quantize needs onnxruntime's quantization tools: {install_hint('onnx')}") from exc
    return quantization


# ---- inputs ---------------------------------------------------------------------------------
def _sources(inputs: Sequence[Any], modality: str) -> Iterator[tuple[str, Any, str | None]]:
    """(name, source, error) for each input: path specs listed like ``featx embed`` lists them."""
    from ..engine.inputs import extensions_for, iter_inputs

    exts = extensions_for(modality)
    for i, item in enumerate(inputs):
        if isinstance(item, (str, os.PathLike)):
            for found in iter_inputs([os.fspath(item)], extensions=exts):
                yield found.key, found.src, found.error
        else:
            yield f"input {i}", item, None


def _prepare(embedder: Any, inputs: Sequence[Any], samples: int) -> tuple[list[dict[str, np.ndarray]], list[str]]:
    """Up to ``samples`` prepared inputs, and "name: why" for those skipped (with a warning)."""
    prepared: list[dict[str, np.ndarray]] = []
    skipped: list[str] = []
    for name, src, error in _sources(inputs, embedder.modality):
        if len(prepared) >= samples:
            break
        try:
            if error is not None:
                raise InputError(error)
            prepared.append(embedder.prepare(src))
        except Exception as exc:  # noqa: BLE001 - one bad input never stops the calibration
            skipped.append(f"{name}: {exc}")
            warnings.warn(f"skipping calibration input {name}: {exc}")
    return prepared, skipped


def _rows(embedder: Any, prepared: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """One row per window (what one batch row of the model is), as `Embedder.embed_windows` cuts them."""
    from ..embedding import model_keys

    keys = model_keys(prepared[0])
    return [{k: p[k][i] for k in keys} for p in prepared for i in range(len(p[embedder.input_name]))]


def _tensors(embedder: Any, rows: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """A batch as the model receives it from `Embedder._run` (float32; mask only where the model takes it)."""
    from ..embedding import _collate

    batch = {k: torch.from_numpy(v) for k, v in _collate(rows).items()}
    batch = {k: v.float() if v.is_floating_point() else v for k, v in batch.items()}
    if "attention_mask" in batch and not embedder._mask_to_model:
        del batch["attention_mask"]
    return batch


def _feeds(embedder: Any, rows: list[dict[str, np.ndarray]], batch_size: int) -> list[dict[str, np.ndarray]]:
    return [{k: v.numpy() for k, v in _tensors(embedder, rows[i:i + batch_size]).items()}
            for i in range(0, len(rows), batch_size)]


class _GraphRunner(OnnxRunner):
    """The onnx backend's runner on one given graph file (to measure a candidate)."""

    def __init__(self, model: Any, path: Path) -> None:
        super().__init__(model, precision="float32", cache_dir=path.parent)
        self.path = path

    def ensure_graph(self, inputs: Any) -> tuple[Path, tuple[str, ...]]:
        return self.path, self.output_names(inputs)


def _embed_with(embedder: Any, path: Path, rows: list[dict[str, np.ndarray]], batch_size: int) -> np.ndarray:
    """Pooled float32 embeddings of ``rows`` through the graph at ``path``, by featx's own run path."""
    model = embedder.model
    model.forward = _GraphRunner(model, path)
    try:
        with torch.inference_mode():
            out = [t for i in range(0, len(rows), batch_size)
                   for t in embedder._run(rows[i:i + batch_size])]
    finally:
        model.forward = model.featx_torch_forward
    return torch.stack(out).float().numpy().reshape(len(rows), -1)


def _accuracy(ref: np.ndarray, got: np.ndarray) -> Accuracy:
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    a, b = unit(ref.astype(np.float64)), unit(got.astype(np.float64))
    cos = (a * b).sum(1)
    k = min(5, len(a) - 1)
    overlap = 1.0
    if k > 0:
        def neighbours(x: np.ndarray) -> np.ndarray:
            sim = x @ x.T
            np.fill_diagonal(sim, -np.inf)
            return np.argsort(-sim, axis=1, kind="stable")[:, :k]

        na, nb = neighbours(a), neighbours(b)
        overlap = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(na, nb)]))
    return Accuracy(float(cos.mean()), float(cos.min()), overlap)


def _speed(path: Path, feeds: list[dict[str, np.ndarray]], threads: int | None, repeats: int = 3) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    n = sum(len(next(iter(f.values()))) for f in feeds)
    session.run(None, feeds[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for feed in feeds:
            session.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return n / best


# ---- quantizing -----------------------------------------------------------------------------
class _Reader:
    """onnxruntime's CalibrationDataReader over prepared batches (rewindable, and by ranges)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = feeds
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= self.end:
            return None
        self.pos += 1
        return self.feeds[self.pos - 1]

    def rewind(self) -> None:
        self.pos, self.end = 0, len(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.pos, self.end = start_index, min(end_index, len(self.feeds))

    def __len__(self) -> int:
        return len(self.feeds)


def _weight_matmuls(model: Any) -> list[str]:
    """Names of the MatMul/Gemm nodes whose second input is a weight (an initializer)."""
    weights = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1
            and n.input[1] in weights]


def _types(kind: str) -> tuple[Any, Any, bool]:
    q = _ort_quantization()
    act, weight = {"u8s8": (q.QuantType.QUInt8, q.QuantType.QInt8), "u8u8": (q.QuantType.QUInt8, q.QuantType.QUInt8),
                   "s8s8": (q.QuantType.QInt8, q.QuantType.QInt8)}[kind.split("-")[0]]
    return act, weight, kind.endswith("-reduced")


def _quantize_static(src: Path, dst: Path, reader: _Reader, cache: Path, method: str, kind: str,
                     nodes: list[str], exclude: list[str]) -> None:
    q = _ort_quantization()
    act, weight, reduced = _types(kind)
    reader.rewind()
    with quiet_quantization_tools():
        q.quantize_static(
            str(src), str(dst), reader, quant_format=q.QuantFormat.QDQ, op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True, reduce_range=reduced, activation_type=act, weight_type=weight,
            nodes_to_quantize=[n for n in nodes if n not in exclude], calibration_cache_path=str(cache),
            calibrate_method={"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
                              "percentile": q.CalibrationMethod.Percentile}[method],
            # Only MatMul inputs are quantized: their float outputs go on to the bias add. One batch
            # per collection: the histogram calibrators stack a tensor's values over the batches
            # collected together, which fails where batches differ in size (the last one, or raw
            # waveforms of other lengths); they merge histograms across collections.
            extra_options={"MatMulConstBOnly": True, "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"],
                           "CalibStridedMinMax": 1})
    if exclude:
        _float_inputs(dst, exclude)


def _float_inputs(path: Path, names: list[str]) -> None:
    """Give the nodes ``names`` of the QDQ graph at ``path`` their float inputs back.

    onnxruntime quantizes a tensor once for all its consumers, so a layer kept in float32 still
    reads the quantized input of its siblings (q/k/v read the same tensor); Q/DQ pairs left
    unused are removed."""
    import onnx

    model = onnx.load(str(path))
    producer = {o: n for n in model.graph.node for o in n.output}
    wanted = set(names)
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        for slot, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[slot] = q.input[0]
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not set(n.output) & used]
        if not dead:
            break
        for n in dead:
            model.graph.node.remove(n)
    onnx.save(model, str(path))


def _preprocessed(src: Path, dst: Path) -> Path:
    """onnxruntime's recommended pre-pass (shape inference, graph fusions), or ``src`` where it fails."""
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with quiet_quantization_tools():
            quant_pre_process(str(src), str(dst))
        return dst
    except Exception as exc:  # noqa: BLE001 - an optimisation only
        warnings.warn(f"onnxruntime's quantization pre-pass failed ({exc}); quantizing the exported graph as is")
        return src


def _activations(model: Any, names: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The float32 values of the tensors ``names`` of ``model`` (an onnx ModelProto) on ``feeds``,
    each as [rows, channels]."""
    import copy

    import onnx
    import onnxruntime as ort

    model = copy.deepcopy(model)
    existing = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names if name not in existing)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    acts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed)):
            acts[name].append(value.reshape(-1, value.shape[-1]))
    return {name: np.concatenate(values).astype(np.float32) for name, values in acts.items()}


def _smoothed(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], nodes: list[str],
              alpha: float = 0.5) -> int:
    """Write ``src`` with its activation outliers moved into the weights (SmoothQuant's idea, done
    exactly in float32): for each LayerNormalization whose output feeds only weight MatMuls, channel
    c of its gain and bias is divided by ``s_c = max|x_c|^alpha / max|W_c|^(1-alpha)`` and row c of
    each MatMul's weight multiplied by it. The float32 graph computes the same function; per-tensor
    int8 of the activation then no longer spends its range on a few huge channels. Returns how many
    LayerNorms were changed (0: ``dst`` is a copy)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {t.name: t for t in model.graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weight_nodes = set(nodes)
    norms = [n for n in model.graph.node if n.op_type == "LayerNormalization" and len(n.input) == 3
             and all(i in inits for i in n.input[1:]) and consumers.get(n.output[0])
             and all(c.name in weight_nodes and c.op_type == "MatMul" for c in consumers[n.output[0]])]
    acts = _activations(model, [n.output[0] for n in norms], feeds) if norms else {}
    for index, norm in enumerate(norms):
        x_max = np.abs(acts[norm.output[0]]).max(0)
        mats = consumers[norm.output[0]]
        w_max = np.max([np.abs(numpy_helper.to_array(inits[m.input[1]])).max(1) for m in mats], axis=0)
        scale = np.clip(x_max ** alpha / np.maximum(w_max, 1e-12) ** (1 - alpha), 1e-5, 1e5).astype(np.float32)
        # new tensors: the exporter shares equal initializers (all-ones gains) between nodes
        for node, slot, value in [(norm, 1, None), (norm, 2, None)] + [(m, 1, scale[:, None]) for m in mats]:
            old = numpy_helper.to_array(inits[node.input[slot]])
            name = f"{node.input[slot]}.smoothed{index}"
            new = old * value if value is not None else old / scale
            model.graph.initializer.append(numpy_helper.from_array(new.astype(np.float32), name))
            node.input[slot] = name
    used = {i for n in model.graph.node for i in n.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    onnx.save(model, str(dst))
    return len(norms)


def _layer_errors(float_path: Path, qdq_path: Path, feeds: list[dict[str, np.ndarray]],
                  nodes: list[str]) -> dict[str, float]:
    """Each quantized layer's own error: how much of its input's channels (on float32 activations)
    and of its weight the QDQ graph's rounding loses, as relative squared errors."""
    import onnx
    from onnx import numpy_helper

    fmodel = onnx.load(str(float_path))
    qmodel = onnx.load(str(qdq_path))
    finits = {t.name: t for t in fmodel.graph.initializer}
    qinits = {t.name: numpy_helper.to_array(t) for t in qmodel.graph.initializer}
    qnodes = {n.name: n for n in qmodel.graph.node}
    producer = {o: n for n in qmodel.graph.node for o in n.output}
    fnodes = {n.name: n for n in fmodel.graph.node if n.name in set(nodes)}
    acts = _activations(fmodel, sorted({n.input[0] for n in fnodes.values()}), feeds)
    errors: dict[str, float] = {}
    for name, fnode in fnodes.items():
        qnode = qnodes.get(name)
        if qnode is None:
            continue
        x = acts[fnode.input[0]]
        w = numpy_helper.to_array(finits[fnode.input[1]]).astype(np.float32)
        xq = _rounded(x, producer.get(qnode.input[0]), qinits)
        wq = _rounded(w, producer.get(qnode.input[1]), qinits)
        # Per input channel: the rounding noise against the channel's own variation, averaged over
        # channels. A relative error of the whole tensor (or of the output) hides what matters:
        # where a few channels are 100x the others (trained ViTs' "massive activations"), the
        # per-tensor step wipes out the other channels while the big ones keep the total error small.
        spread = ((x - x.mean(0)) ** 2).sum(0)
        act = float(np.mean(((xq - x) ** 2).sum(0) / np.maximum(spread, 1e-30 + 1e-12 * spread.max())))
        errors[name] = act + float(((wq - w) ** 2).sum() / max(float((w ** 2).sum()), 1e-30))
    return errors


def _rounded(x: np.ndarray, dq: Any, inits: dict[str, np.ndarray]) -> np.ndarray:
    """``x`` as the QDQ graph's DequantizeLinear ``dq`` gives it back (``x`` where none quantizes it)."""
    if dq is None or dq.op_type != "DequantizeLinear":
        return x
    scale = inits[dq.input[1]].astype(np.float32)
    zp = inits[dq.input[2]] if len(dq.input) > 2 and dq.input[2] else np.zeros(scale.shape, np.int8)
    if scale.size > 1:  # per channel, along the node's axis
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    stored = inits.get(dq.input[0])
    if stored is not None:  # a weight: its stored integers
        q = stored.astype(np.float32)
    else:
        info = np.iinfo(zp.dtype)
        q = np.clip(np.round(x / scale) + zp.astype(np.float32), info.min, info.max)
    return ((q - zp.astype(np.float32)) * scale).astype(np.float32)


# ---- the whole calibration ------------------------------------------------------------------
def _held_out_indices(n: int, held_out: int) -> set[int]:
    """``held_out`` indices spread over ``range(n)`` (the inputs' order often groups similar ones)."""
    step = n / held_out
    return {min(n - 1, int(j * step + step / 2)) for j in range(held_out)}


def _check_options(samples: int, target_cosine: float, batch_size: int, methods: Sequence[str],
                   types: Sequence[str]) -> None:
    if samples < MIN_INPUTS:
        raise ConfigError(f"samples must be at least {MIN_INPUTS}, got {samples}")
    if not 0.0 < target_cosine <= 1.0:
        raise ConfigError(f"target_cosine must be in (0, 1], got {target_cosine}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    for name, given, allowed in (("method", methods, METHODS), ("types", types, TYPES + ("s8s8",))):
        bad = [g for g in given if g not in allowed]
        if bad or not given:
            raise ConfigError(f"{name} must be among {', '.join(allowed)}, got {', '.join(bad) or 'none'}")


def calibrate_int8(
    model: str | os.PathLike[str],
    inputs: Sequence[Any],
    *,
    samples: int = 256,
    held_out: int | None = None,
    target_cosine: float = 0.998,
    batch_size: int = 16,
    methods: Sequence[str] = METHODS,
    types: Sequence[str] = TYPES,
    max_float_layers: int | None = None,
    smooth: bool = True,
    output: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    timing_repeats: int = 3,
    **load_kwargs: Any,
) -> QuantizeReport:
    """Calibrate a static int8 graph of ``model`` on ``inputs`` (path specs as ``featx embed`` takes
    them, or decoded images/waveforms) and cache it for ``backend="onnx", dtype="int8"``.

    Reads up to ``samples`` usable inputs; ``held_out`` of them (default: a sixth, 2 to 64) only
    measure. ``max_float_layers``: at most this many weight layers kept in float32 (default: half).
    ``output``: also write the graph there; ``report``: write the report there as JSON.
    ``timing_repeats``: items/s is the best of this many runs over the held-out batches.
    ``load_kwargs`` go to `featx.embedding.Embedder` (hub options, processor overrides).
    Raises `InputError` when fewer than `MIN_INPUTS` inputs could be prepared."""
    import json

    import onnx

    from ..embedding import Embedder

    _ort_quantization()
    _check_options(samples, target_cosine, batch_size, methods, types)
    embedder = Embedder(model, dtype="float32", **load_kwargs)
    torch_model = embedder.model
    torch_model.featx_torch_forward = torch_model.forward
    prepared, skipped = _prepare(embedder, inputs, samples)
    if len(prepared) < MIN_INPUTS:
        raise InputError(f"featx quantize needs at least {MIN_INPUTS} usable {embedder.modality} inputs to calibrate "
                         f"and measure, got {len(prepared)}" + (f" ({len(skipped)} skipped)" if skipped else ""))
    n_held = held_out if held_out is not None else max(2, min(64, len(prepared) // 6))
    if not 2 <= n_held <= len(prepared) - 2:
        raise ConfigError(f"held_out must be between 2 and {len(prepared) - 2} for {len(prepared)} inputs, got {n_held}")
    hold_idx = _held_out_indices(len(prepared), n_held)
    calib_rows = _rows(embedder, [p for i, p in enumerate(prepared) if i not in hold_idx])
    hold_rows = _rows(embedder, [p for i, p in enumerate(prepared) if i in hold_idx])
    n_calib = len(prepared) - n_held
    del prepared

    runner = OnnxRunner(torch_model, precision="int8", cache_dir=Path(cache_dir) if cache_dir else None,
                        threads=threads)
    first = _tensors(embedder, calib_rows[:batch_size])
    dynamic, _ = runner.ensure_graph(first, calibrated=False)
    float_graph = runner.float_graph_path(first)
    if not float_graph.exists():  # the dynamic graph was cached without its float32 source
        float_graph, _ = OnnxRunner(torch_model, precision="float32", cache_dir=runner.cache_dir).ensure_graph(first)
    calib_feeds = _feeds(embedder, calib_rows, batch_size)
    hold_feeds = _feeds(embedder, hold_rows, batch_size)
    reader = _Reader(calib_feeds)

    with tempfile.TemporaryDirectory(prefix="featx-quantize-") as tmp:
        work = Path(tmp)
        source = _preprocessed(float_graph, work / "prepared.onnx")
        nodes = _weight_matmuls(onnx.load(str(source), load_external_data=False))
        if not nodes:
            raise ConfigError(f"the graph of {model} has no MatMul/Gemm with weights to quantize")
        reference = _embed_with(embedder, float_graph, hold_rows, batch_size)
        dynamic_acc = _accuracy(reference, _embed_with(embedder, dynamic, hold_rows, batch_size))

        candidates: list[dict[str, Any]] = []

        def attempt(method: str, kind: str, keep: list[str], variant: str = "") -> tuple[Path, Accuracy]:
            path = work / f"{method}-{kind}-{len(keep)}{variant}.onnx"
            calibration = work / f"{method}{variant}.calibration.json"
            _quantize_static(source, path, reader, calibration, method, kind, nodes, keep)
            acc = _accuracy(reference, _embed_with(embedder, path, hold_rows, batch_size))
            candidates.append({"method": method, "types": kind, "kept_float32": len(keep), "smoothed": bool(variant),
                               **asdict(acc)})
            return path, acc

        tried = {(m, k): attempt(m, k, []) for m in methods for k in types}
        method, kind = max(tried, key=lambda mk: (tried[mk][1].mean_cosine, tried[mk][1].min_cosine))
        chosen, acc = tried[(method, kind)]
        smoothed = False
        if smooth and acc.mean_cosine < target_cosine and _smoothed(source, work / "smoothed.onnx", calib_feeds[:2], nodes):
            plain = source
            source = work / "smoothed.onnx"
            path, smooth_acc = attempt(method, kind, [], "smoothed")
            if (smooth_acc.mean_cosine, smooth_acc.min_cosine) > (acc.mean_cosine, acc.min_cosine):
                chosen, acc, smoothed = path, smooth_acc, True
            else:
                source = plain
        keep: list[str] = []
        if acc.mean_cosine < target_cosine:
            errors = _layer_errors(source, chosen, calib_feeds[:2], nodes)
            order = sorted(errors, key=lambda n: -errors[n])
            cap = len(nodes) // 2 if max_float_layers is None else min(max_float_layers, len(nodes))
            best = (chosen, acc, keep)
            for k in sorted({k for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128) if k < cap} | {cap}):
                if k < 1:
                    continue
                path, step = attempt(method, kind, order[:k], "smoothed" if smoothed else "")
                if step.mean_cosine > best[1].mean_cosine:  # more float32 layers is not always better
                    best = (path, step, order[:k])
                if step.mean_cosine >= target_cosine:
                    break
            chosen, acc, keep = best
        reached = acc.mean_cosine >= target_cosine
        if not reached:
            warnings.warn(f"the calibrated int8 graph reaches a mean cosine of {acc.mean_cosine:.5f} to float32 on "
                          f"the held-out inputs, under the target {target_cosine} (with {len(keep)} layers in float32)")
        speed = {name: round(_speed(path, hold_feeds, threads, timing_repeats), 3) for name, path in
                 (("float32", float_graph), ("int8-dynamic", dynamic), ("int8-static", chosen))}
        target = runner.calibrated_graph_path(first)
        atomic_write(target, lambda t: shutil.copyfile(chosen, t))
        if output is not None:
            atomic_write(Path(output), lambda t: shutil.copyfile(chosen, t))

    result = QuantizeReport(
        model=os.fspath(model), model_type=str(torch_model.config.get("model_type")), graph=str(target),
        output=os.fspath(output) if output is not None else None,
        inputs={k: list(v.shape[1:]) for k, v in first.items()},
        calibration_inputs=n_calib, held_out_inputs=n_held, skipped=skipped,
        method=method, types=kind, smoothed=smoothed, quantized_layers=len(nodes) - len(keep), kept_float32=keep,
        target_cosine=target_cosine, reached_target=reached, static=acc, dynamic=dynamic_acc,
        items_per_s=speed, candidates=candidates)
    if report is not None:
        atomic_write(Path(report), lambda t: Path(t).write_text(json.dumps(result.to_dict(), indent=2) + "\n"))
    return result
