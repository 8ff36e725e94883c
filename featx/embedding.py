"""`Embedder`: inputs to embeddings. The batching code shared by the pipelines and the CLI engine.

Work is split in two so that decoding overlaps with the model: `prepare` (decode + preprocess one
input; thread- and process-safe) and `embed` (collate, run the model, pool). `iter_embed` runs
both with a bounded read-ahead of prepared inputs in worker threads.
"""

from __future__ import annotations

import copy
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, FeatxError, InputError
from .hub import HubOptions
from .pooling import check_pool, default_pool, pool_output

__all__ = ["Embedder", "EmbedResult", "model_hidden_size"]

# Model window lengths in seconds for long audio: Whisper's 30 s context, AST's 1024 frames of
# 10 ms (+ the 25 ms frame), and a memory bound for Wav2Vec2-style models that have no fixed window.
_AUDIO_WINDOW_S = {"input_features_whisper": 30.0, "input_values_ast": 10.24, "input_values": 30.0}


def model_hidden_size(config: dict[str, Any]) -> int:
    """The width of the encoder's output vectors, from its config.json."""
    for key in ("vision_config", "encoder_config"):
        if isinstance(config.get(key), dict) and "hidden_size" in config[key]:
            return int(config[key]["hidden_size"])
    for key in ("hidden_size", "d_model"):
        if key in config:
            return int(config[key])
    raise ConfigError("cannot tell the model's hidden size from its config.json")


class EmbedResult(tuple):
    """(index, source, embedding or None, error message or None, offsets or None)."""

    __slots__ = ()


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
        **kwargs: Any,
    ) -> None:
        """``weights=False`` loads everything but the weights (config, processor): enough to
        `prepare` inputs and describe the job where only other processes run the model."""
        from .models import load_model
        from .registry import AutoProcessor

        hub_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in HubOptions.__dataclass_fields__}
        if revision is not None:
            hub_kwargs["revision"] = revision
        self.model_id = os.fspath(model)
        self.revision = revision
        self.model = load_model(model, dtype=dtype, device=device, weights=weights, **hub_kwargs)
        self.processor = processor if processor is not None else AutoProcessor.from_pretrained(model, **hub_kwargs, **kwargs)
        if processor is not None and kwargs:
            raise ConfigError(f"processor overrides {sorted(kwargs)} given together with a processor object")
        self.modality: str = self.model.modality
        self.pool = check_pool(self.model, pool or default_pool(self.model))
        self.normalize = bool(normalize)
        param = next(self.model.parameters())
        self.torch_dtype: torch.dtype = param.dtype
        self.device: torch.device = getattr(self.model, "featx_device", param.device)
        self.dtype_reason: str = getattr(self.model, "featx_dtype_reason", str(param.dtype))
        self.dim = int(getattr(self.model, "hidden_size", 0) or model_hidden_size(getattr(self.model, "config", {})))
        self.input_name: str = self.model.main_input_name
        self._window_s = self._audio_window() if self.modality == "audio" else None
        # Wav2Vec2 checkpoints whose extractor says return_attention_mask=False (group-norm ones such
        # as wav2vec2-base) were trained without masks: run them unmasked, as the reference advises,
        # and use the mask for pooling only.
        self._mask_to_model = not (
            type(self.processor).__name__.startswith("Wav2Vec2")
            and not getattr(self.processor, "return_attention_mask", True)
        )

    def with_options(self, pool: str | None = None, normalize: bool | None = None) -> Embedder:
        """A view sharing this model and processor with other pooling/normalization."""
        other = copy.copy(self)
        if pool is not None:
            other.pool = check_pool(self.model, pool)
        if normalize is not None:
            other.normalize = bool(normalize)
        return other

    def preparer(self) -> Embedder:
        """A copy without the model, cheap to send to worker processes: only `prepare` works on it."""
        light = copy.copy(self)
        light.model = None
        return light

    # ---- preparing one input ---------------------------------------------------------------
    def _audio_window(self) -> float:
        kind = type(self.processor).__name__
        if kind.startswith("Whisper"):
            return float(getattr(self.processor, "chunk_length", 30))
        if kind.startswith("AST"):
            # max_length frames of hop 10 ms plus the 25 ms the last frame spans
            return (int(self.processor.max_length) - 1) * 0.01 + 0.025
        return _AUDIO_WINDOW_S["input_values"]

    def prepare(self, src: Any) -> dict[str, np.ndarray]:
        """Decode and preprocess one input into arrays with a leading window axis."""
        if self.modality == "image":
            return self._prepare_image(src)
        return self._prepare_audio(src)

    def _prepare_image(self, src: Any) -> dict[str, np.ndarray]:
        from .image.io import load_image

        image = src
        if isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(src, "read"):
            image = load_image(src)
        try:
            out = self.processor(image, return_tensors="np")
        except FeatxError:
            raise
        except Exception as exc:  # a processor failure on one input must name that input
            raise InputError(f"preprocessing failed: {exc}", source=_describe(src)) from exc
        return {k: np.asarray(v) for k, v in out.items()}

    def _prepare_audio(self, src: Any) -> dict[str, np.ndarray]:
        from .audio import chunk, load_audio

        rate = int(self.processor.sampling_rate)
        wave, given_rate = _audio_input(src)
        if wave is None:
            wave = load_audio(src, sampling_rate=rate)
            if isinstance(wave, tuple):
                wave = wave[0]
        elif given_rate is not None and given_rate != rate:
            from .audio import resample

            wave = resample(wave, int(given_rate), rate)
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise InputError(f"expected mono audio with samples, got shape {wave.shape}", source=_describe(src))
        windows = list(chunk(wave, chunk_length_s=self._window_s, sampling_rate=rate))
        pieces = [w.samples for w in windows]
        offsets = np.array([[w.start, w.end] for w in windows], dtype=np.int64)
        kwargs: dict[str, Any] = {"sampling_rate": rate, "return_tensors": "np"}
        if self.input_name == "input_values" and not type(self.processor).__name__.startswith("AST"):
            kwargs.update(padding="longest", return_attention_mask=True)
        elif type(self.processor).__name__.startswith("Whisper"):
            kwargs.update(return_attention_mask=True)
        out = self.processor(pieces, **kwargs)
        arrays = {k: np.asarray(v) for k, v in out.items()}
        if type(self.processor).__name__.startswith("AST"):
            arrays["attention_mask"] = _kaldi_frame_mask(pieces, rate, int(self.processor.max_length))
        arrays["offsets"] = offsets
        return arrays

    # ---- running the model -----------------------------------------------------------------
    @torch.inference_mode()
    def embed_windows(self, prepared: list[dict[str, np.ndarray]], batch_size: int = 32) -> list[np.ndarray]:
        """Per input a float32 array [n_windows, dim] (or [n_windows, tokens, dim] for pool "none")."""
        counts = [len(p[self.input_name]) for p in prepared]
        keys = [k for k in prepared[0] if k != "offsets"] if prepared else []
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
                # Weight windows by the samples they cover so a short last window counts less.
                weights = np.diff(offsets, axis=1)[:, 0].astype(np.float64)
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
    def iter_embed(
        self,
        sources: Iterable[Any],
        *,
        batch_size: int = 16,
        workers: int = 2,
        errors: str = "raise",
        per_window: bool = False,
    ) -> Iterator[EmbedResult]:
        """Embed many inputs in order, preparing up to a few batches ahead in worker threads.

        With ``errors="return"`` a failing input yields a result with its error message instead of
        stopping; ``per_window`` yields [n_windows, dim] arrays and their sample offsets.
        """
        if errors not in ("raise", "return"):
            raise ConfigError("errors must be 'raise' or 'return'")
        ahead = max(2 * batch_size, 4)
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="featx-prep") as pool:
            pending: deque[tuple[int, Any, Future[dict[str, np.ndarray]]]] = deque()
            it = enumerate(sources)
            exhausted = False
            while pending or not exhausted:
                while not exhausted and len(pending) < ahead:
                    try:
                        index, src = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.append((index, src, pool.submit(self.prepare, src)))
                ready: list[tuple[int, Any, dict[str, np.ndarray]]] = []
                while pending and len(ready) < batch_size:
                    index, src, fut = pending.popleft()
                    try:
                        ready.append((index, src, fut.result()))
                    except Exception as exc:
                        if errors == "raise":
                            raise
                        yield EmbedResult((index, src, None, _message(exc, src), None))
                if not ready:
                    continue
                yield from self._embed_ready(ready, batch_size, errors, per_window)

    def _embed_ready(
        self, ready: list[tuple[int, Any, dict[str, np.ndarray]]], batch_size: int, errors: str, per_window: bool
    ) -> Iterator[EmbedResult]:
        try:
            prepared = [p for _, _, p in ready]
            vectors = self.embed_windows(prepared, batch_size) if per_window else self.embed(prepared, batch_size)
        except Exception as exc:
            if errors == "raise" or len(ready) == 1:
                if errors == "raise":
                    raise
                index, src, _ = ready[0]
                yield EmbedResult((index, src, None, _message(exc, src), None))
                return
            # One input broke the batch (e.g. a shape no other has): retry one by one.
            for item in ready:
                yield from self._embed_ready([item], batch_size, errors, per_window)
            return
        for (index, src, prep), vec in zip(ready, vectors):
            yield EmbedResult((index, src, vec, None, prep.get("offsets")))


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


def _kaldi_frame_mask(pieces: list[np.ndarray], rate: int, max_frames: int) -> np.ndarray:
    """Which of the max_frames fbank rows hold real audio (25 ms frames every 10 ms, no centring)."""
    frame, shift = int(rate * 0.025), int(rate * 0.010)
    real = [0 if len(p) < frame else min(max_frames, 1 + (len(p) - frame) // shift) for p in pieces]
    return (np.arange(max_frames)[None, :] < np.array(real)[:, None]).astype(np.int32)


def _stack_ragged(block: list[torch.Tensor]) -> np.ndarray:
    arrays = [b.float().cpu().numpy() for b in block]
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return np.concatenate(arrays, axis=0)[None]


def _l2(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def _audio_input(src: Any) -> tuple[np.ndarray | None, int | None]:
    """Waveforms given directly: an array, (array, rate), or a datasets-style dict."""
    if isinstance(src, dict) and "array" in src:
        return np.asarray(src["array"], dtype=np.float32), src.get("sampling_rate")
    if isinstance(src, tuple) and len(src) == 2 and np.isscalar(src[1]):
        return np.asarray(src[0], dtype=np.float32), int(src[1])
    if isinstance(src, np.ndarray) or type(src).__name__ == "Tensor":
        return np.asarray(src, dtype=np.float32), None
    return None, None


def _describe(src: Any) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    return type(src).__name__


def _message(exc: BaseException, src: Any) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, FeatxError) else f"{type(exc).__name__}: {text}"
