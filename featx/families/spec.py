"""Family specs: what featx needs to know about one model family, said once.

A spec names the ``config.json`` model types it reads, the processor they use, the encoder class
for each (as a lazy ``"module:Class"`` path, so looking a family up imports no torch code), the
model's main input, its default pooling, and how one input becomes arrays for the model. The
modality is the spec's kind: `ImageFamily`, `AudioFamily`; a new modality is a new kind.
Everything else (`Embedder`, pipelines, registry, engines) asks the spec instead of testing
class names.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, FeatxError, InputError

__all__ = ["FamilySpec", "ImageFamily", "AudioFamily", "describe_source"]


@dataclass(frozen=True)
class FamilySpec:
    """One model family. ``encoders`` maps model types to ``"module:Class"``; a type with no
    entry is processor-only (featx preprocesses for it but has no native encoder)."""

    name: str
    model_types: tuple[str, ...]
    processor: str
    encoders: Mapping[str, str] = field(default_factory=dict)
    main_input: str = "pixel_values"
    #: the pooling a user most likely wants; "pooler" falls back to "mean" when the checkpoint
    #: has no usable pooler weights
    default_pool: str = "mean"

    modality: ClassVar[str] = ""

    def encoder_class(self, model_type: str) -> type | None:
        """The encoder class for ``model_type`` (imported now), or None when there is none."""
        target = self.encoders.get(model_type)
        if target is None:
            return None
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    def prepare(self, processor: Any, src: Any, *, budget: Any = None,
                allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        """Decode and preprocess one input into arrays with a leading window axis.

        ``budget``: a `featx.engine.budget.PixelBudget` shared by parallel workers (images hold
        their decoded pixels from it until preprocessing is done); ``allow_private_urls``: see
        `featx.load_image`."""
        raise NotImplementedError

    def mask_to_model(self, processor: Any) -> bool:
        """Whether the attention mask goes into the model (always used for pooling)."""
        return True


@dataclass(frozen=True)
class ImageFamily(FamilySpec):
    """Image encoders: one input is one image, one window."""

    modality: ClassVar[str] = "image"

    def prepare(self, processor: Any, src: Any, *, budget: Any = None,
                allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        from ..image.io import load_image

        image = src
        with budget.hold() if budget is not None else contextlib.nullcontext() as hold:
            if isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(src, "read"):
                image = load_image(src, allow_private_urls=allow_private_urls, pixel_budget=hold)
            try:
                out = processor(image, return_tensors="np")
            except FeatxError:
                raise
            except Exception as exc:  # a processor failure on one input must name that input
                raise InputError(f"preprocessing failed: {exc}", source=describe_source(src)) from exc
            del image  # the decoded pixels go before the hold gives them back
        return {k: np.asarray(v) for k, v in out.items()}


@dataclass(frozen=True)
class AudioFamily(FamilySpec):
    """Audio encoders: long inputs are cut into the model's windows, embedded apart, then averaged.

    ``window_s`` is the model's context in seconds, or a function of the processor;
    ``call_kwargs`` are passed to the processor with each input's windows; ``frame_mask`` builds
    an attention mask the processor does not return (spectrogram frontends); with
    ``mask_if_processor_says`` the mask reaches the model only where the processor's
    ``return_attention_mask`` is on (checkpoints trained without masks).
    """

    main_input: str = "input_values"
    window_s: float | Callable[[Any], float] = 30.0
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)
    frame_mask: Callable[[Any, list[np.ndarray]], np.ndarray] | None = None
    mask_if_processor_says: bool = False

    modality: ClassVar[str] = "audio"

    def window(self, processor: Any) -> float:
        return float(self.window_s(processor) if callable(self.window_s) else self.window_s)

    def mask_to_model(self, processor: Any) -> bool:
        return not (self.mask_if_processor_says and not getattr(processor, "return_attention_mask", True))

    def prepare(self, processor: Any, src: Any, *, budget: Any = None,
                allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        from ..audio import chunk, load_audio, resample

        rate = int(processor.sampling_rate)
        wave, given_rate = audio_input(src)
        if wave is None:
            wave = load_audio(src, sampling_rate=rate, allow_private_urls=allow_private_urls)
            if isinstance(wave, tuple):
                wave = wave[0]
        elif given_rate is not None and given_rate != rate:
            wave = resample(wave, int(given_rate), rate)
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise InputError(f"expected mono audio with samples, got shape {wave.shape}", source=describe_source(src))
        windows = list(chunk(wave, chunk_length_s=self.window(processor), sampling_rate=rate))
        pieces = [w.samples for w in windows]
        out = processor(pieces, sampling_rate=rate, return_tensors="np", **self.call_kwargs)
        arrays = {k: np.asarray(v) for k, v in out.items()}
        if self.frame_mask is not None:
            arrays["attention_mask"] = self.frame_mask(processor, pieces)
        arrays["offsets"] = np.array([[w.start, w.end] for w in windows], dtype=np.int64)
        return arrays


def audio_input(src: Any) -> tuple[np.ndarray | None, int | None]:
    """Waveforms given directly: an array, (array, rate), or a datasets-style dict."""
    if isinstance(src, dict) and "array" in src:
        return np.asarray(src["array"], dtype=np.float32), src.get("sampling_rate")
    if isinstance(src, tuple) and len(src) == 2 and np.isscalar(src[1]):
        return np.asarray(src[0], dtype=np.float32), int(src[1])
    if isinstance(src, np.ndarray) or _is_tensor(src):
        return np.asarray(src, dtype=np.float32), None
    return None, None


def _is_tensor(x: object) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def describe_source(src: Any) -> str:
    """How an input is named in its error row."""
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    return type(src).__name__


def check_kind(spec: FamilySpec) -> None:
    """Specs must be of a modality kind, not the bare base class."""
    if not spec.modality:
        raise ConfigError(f"family {spec.name!r} must be an ImageFamily or AudioFamily (or another kind)")
