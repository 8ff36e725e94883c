"""`Embedder`: inputs to embeddings. The batching code shared by the pipelines and the CLI engine.

Work is split in two so that decoding overlaps with the model: `prepare` (decode + preprocess one
input; thread- and process-safe) and `embed` (collate, run the model, pool). `iter_embed` runs
both with a bounded read-ahead of prepared inputs in worker threads.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from .errors import ConfigError, InputError
from .families import family_of_model
from .families.spec import model_keys
from .hub import HubOptions
from .pooling import check_pool, default_pool, pool_output, pooled_dim

__all__ = ["Embedder", "EmbedResult", "model_hidden_size", "out_of_memory"]

def model_hidden_size(config: dict[str, Any]) -> int:
    """The width of the encoder's output vectors, from its config.json."""
    for key in ("vision_config", "encoder_config"):
        if isinstance(config.get(key), dict) and "hidden_size" in config[key]:
            return int(config[key]["hidden_size"])
    for key in ("hidden_size", "d_model"):
        if key in config:
            return int(config[key])
    raise ConfigError("cannot tell the model's hidden size from its config.json")


class EmbedResult(NamedTuple):
    """One input's result from `Embedder.iter_embed`."""

    index: int
    source: Any
    embedding: np.ndarray | None
    error: str | None  # the message, when embedding is None
    offsets: np.ndarray | None  # [n_windows, 2] sample offsets of audio windows


class Embedder:
    """A loaded model + processor pair that turns inputs into embeddings."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        pool: str | None = None,
        normalize: bool = False,
        dtype: str | torch.dtype = "auto",
        device: str | torch.device | None = None,
        processor: Any = None,
        revision: str | None = None,
        weights: bool = True,
        allow_private_urls: bool = True,
        backend: str = "torch",
        **kwargs: Any,
    ) -> None:
        """``weights=False`` loads everything but the weights (config, processor): enough to
        `prepare` inputs and describe the job where only other processes run the model.
        ``allow_private_urls=False``: URL inputs to loopback, private, link-local, multicast or
        reserved addresses are refused (see `featx.load_image`). ``backend``: what runs the
        model ("torch", "onnx", "openvino", "inductor", "auto"; see `featx.backends`)."""
        hub_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in HubOptions.__dataclass_fields__}
        if revision is not None:
            hub_kwargs["revision"] = revision
        self.model_id = os.fspath(model)
        self.revision = revision
        self.allow_private_urls = bool(allow_private_urls)
        self.model = self._load_model(model, dtype=dtype, device=device, weights=weights,
                                      **({"backend": backend} if backend != "torch" else {}), **hub_kwargs)
        self.backend = backend  # as asked; what runs the model is ``model.featx_backend``
        self.processor = processor if processor is not None else self._load_processor(model, **hub_kwargs, **kwargs)
        if processor is not None and kwargs:
            raise ConfigError(f"processor overrides {sorted(kwargs)} given together with a processor object")
        self.modality: str = self.model.modality
        self.pool = check_pool(self.model, pool or default_pool(self.model))
        self.normalize = bool(normalize)
        param = next(self.model.parameters())
        self.torch_dtype: torch.dtype = param.dtype
        self.device: torch.device = getattr(self.model, "featx_device", param.device)
        self.dtype_reason: str = getattr(self.model, "featx_dtype_reason", str(param.dtype))
        self.hidden_size = int(getattr(self.model, "hidden_size", 0) or model_hidden_size(getattr(self.model, "config", {})))
        self.dim = pooled_dim(self.model, self.pool, self.hidden_size)
        self.input_name: str = self.model.main_input_name
        self.family = family_of_model(self.model)
        self._mask_to_model = self.family.mask_to_model(self.processor)

    # ---- what is loaded (`featx.text` loads a text tower and its tokenizer instead) -----------
    def _load_model(self, model: str | os.PathLike[str], **kwargs: Any) -> Any:
        from .models import load_model

        return load_model(model, **kwargs)

    def _load_processor(self, model: str | os.PathLike[str], **kwargs: Any) -> Any:
        from .image.draft import set_draft, split_draft_option  # -p jpeg_draft: featx.image.draft
        from .registry import AutoProcessor

        options, draft = split_draft_option(kwargs)
        return set_draft(AutoProcessor.from_pretrained(model, **options), draft)

    def with_options(self, pool: str | None = None, normalize: bool | None = None,
                     allow_private_urls: bool | None = None) -> Embedder:
        """A view sharing this model and processor with other pooling/normalization/URL policy."""
        other = copy.copy(self)
        if pool is not None:
            other.pool = check_pool(self.model, pool)
            other.dim = pooled_dim(self.model, other.pool, self.hidden_size)
        if normalize is not None:
            other.normalize = bool(normalize)
        if allow_private_urls is not None:
            other.allow_private_urls = bool(allow_private_urls)
        return other

    def preparer(self) -> Embedder:
        """A copy without the model, cheap to send to worker processes: only `prepare` works on it."""
        light = copy.copy(self)
        light.model = None
        return light

    # ---- preparing one input ---------------------------------------------------------------
    def prepare(self, src: Any, *, budget: Any = None) -> dict[str, np.ndarray]:
        """Decode and preprocess one input into arrays with a leading window axis (the model
        family says how; see `featx.families`).

        ``budget``: a `featx.engine.budget.PixelBudget` shared by parallel workers; an image's
        decoded pixels are held from it from decoding until preprocessing is done."""
        return self.family.prepare(self.processor, src, budget=budget, allow_private_urls=self.allow_private_urls)

    # ---- running the model -----------------------------------------------------------------
    @torch.inference_mode()
    def embed_windows(self, prepared: list[dict[str, np.ndarray]], batch_size: int = 32) -> list[np.ndarray]:
        """Per input a float32 array [n_windows, dim] (or [n_windows, tokens, dim] for pool "none")."""
        counts = [len(p[self.input_name]) for p in prepared]
        keys = model_keys(prepared[0]) if prepared else []
        rows: list[torch.Tensor] = []
        flat = [{k: p[k][i] for k in keys} for p in prepared for i in range(len(p[self.input_name]))]
        for start in range(0, len(flat), batch_size):
            rows.extend(self._run(flat[start : start + batch_size]))
        out: list[np.ndarray] = []
        pos = 0
        for n in counts:
            block = rows[pos : pos + n]
            pos += n
            out.append(torch.stack(block).float().cpu().numpy() if self.pool != "none" else _stack_ragged(block))
        return out

    def embed(self, prepared: list[dict[str, np.ndarray]], batch_size: int = 32) -> list[np.ndarray]:
        """Per input one float32 array: [dim], windows averaged (or [tokens, dim] for pool "none")."""
        results = []
        for prep, windows in zip(prepared, self.embed_windows(prepared, batch_size=batch_size)):
            offsets = prep.get("offsets")
            if self.pool == "none":  # all windows' tokens, one after the other
                vec = windows.reshape(-1, windows.shape[-1])
            elif len(windows) == 1:
                vec = windows[0]
            else:
                # Weight windows by the samples they cover so a short last window counts less;
                # parts without offsets (video frames, tiles) count the same.
                weights = (np.diff(offsets, axis=1)[:, 0].astype(np.float64) if offsets is not None
                           else np.ones(len(windows)))
                vec = (windows * (weights / weights.sum())[:, None]).sum(axis=0)
                if self.normalize:
                    vec = _l2(vec)
            results.append(vec.astype(np.float32, copy=False))
        return results

    def _run(self, items: list[dict[str, np.ndarray]]) -> list[torch.Tensor]:
        batch = _collate(items)
        inputs: dict[str, torch.Tensor] = {}
        for key, value in batch.items():
            tensor = torch.from_numpy(value).to(self.device, non_blocking=True)
            if tensor.is_floating_point():
                tensor = tensor.to(self.torch_dtype)
            inputs[key] = tensor
        mask = inputs.get("attention_mask")
        if mask is not None and not self._mask_to_model:
            del inputs["attention_mask"]
        output = self.model(**inputs)
        if mask is not None and output.attention_mask is None:
            output.attention_mask = self.model.output_attention_mask(mask)
        pooled = pool_output(self.model, output, self.pool).float()
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return list(pooled.unbind(0))

    # ---- streaming many inputs --------------------------------------------------------------
    def embed_outcomes(self, prepared: list[dict[str, np.ndarray]], batch_size: int = 32,
                       per_window: bool = False) -> list[np.ndarray | Exception]:
        """One outcome per input: its vector(s) as `embed` (or `embed_windows`) gives them, or the
        exception that embedding it alone raised.

        A batch that fails is retried one input at a time, so one bad input (e.g. a shape no other
        has) fails alone. Running out of memory is no input's fault and is raised.
        """
        try:
            if per_window:
                return list(self.embed_windows(prepared, batch_size=batch_size))
            return list(self.embed(prepared, batch_size=batch_size))
        except Exception as exc:  # noqa: BLE001 - sorted out below
            if out_of_memory(exc):
                raise
            if len(prepared) == 1:
                return [exc]
        return [o for p in prepared for o in self.embed_outcomes([p], batch_size, per_window)]

    # ---- streaming many inputs --------------------------------------------------------------
    def iter_embed(
        self,
        sources: Iterable[Any],
        *,
        batch_size: int = 16,
        workers: int = 2,
        errors: str = "raise",
        per_window: bool = False,
        pool: Any = None,
    ) -> Iterator[EmbedResult]:
        """Embed many inputs in order, preparing up to a few batches ahead in worker threads.

        The engine's run path (`featx.engine.stream`). ``pool``: a worker pool the caller owns
        (`featx.engine.pools.make_pool`); without one, ``workers`` threads serve this call only.
        With ``errors="return"`` a failing input yields a result with its error message instead of
        stopping; ``per_window`` yields [n_windows, dim] arrays and their sample offsets.
        """
        from .engine.stream import iter_embed

        return iter_embed(self, sources, batch_size=batch_size, workers=workers, errors=errors,
                          per_window=per_window, pool=pool)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the machine (or GPU) running out of memory."""
    if isinstance(exc, MemoryError):
        return True
    oom = getattr(torch, "OutOfMemoryError", None)
    return oom is not None and isinstance(exc, oom)


def _collate(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = items[0].keys()
    out: dict[str, np.ndarray] = {}
    for key in keys:
        arrays = [np.asarray(item[key]) for item in items]
        shapes = {a.shape for a in arrays}
        if len(shapes) == 1:
            out[key] = np.stack(arrays)
            continue
        if any(a.ndim != 1 for a in arrays):
            raise InputError(
                f"inputs of one batch have different {key} shapes {sorted(shapes)}; "
                "keep the processor's resizing on or use batch_size=1"
            )
        longest = max(a.shape[0] for a in arrays)  # raw waveforms: pad with zeros on the right
        padded = np.zeros((len(arrays), longest), dtype=arrays[0].dtype)
        for row, a in zip(padded, arrays):
            row[: a.shape[0]] = a
        out[key] = padded
    return out


def _stack_ragged(block: list[torch.Tensor]) -> np.ndarray:
    arrays = [b.float().cpu().numpy() for b in block]
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return np.concatenate(arrays, axis=0)[None]


def _l2(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
