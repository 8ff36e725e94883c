"""Family specs: what featx needs to know about one model family, said once.

A spec names the ``config.json`` model types it reads, the processor they use, the encoder class
for each (as a lazy ``"module:Class"`` path, so looking a family up imports no torch code), the
model's main input, its default pooling, and how one input becomes arrays for the model. The
modality is the spec's kind: `ImageFamily`, `AudioFamily`, `TextFamily`; a new modality is a new
kind. An image family of contrastive checkpoints names its text tower (``text``).
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

__all__ = ["FamilySpec", "ImageFamily", "AudioFamily", "describe_source", "ROW_PREFIX", "is_model_key", "model_keys"]

#: prefix of prepared-array keys that are per-part row metadata (a video frame's time, a tile's box),
#: not model inputs; see `featx.engine.parts`
ROW_PREFIX = "row_"
_LEGACY_META = frozenset({"offsets"})  # audio windows' sample offsets


def is_model_key(key: str) -> bool:
    """Whether a prepared array goes into the model (metadata keys do not)."""
    return not key.startswith(ROW_PREFIX) and key not in _LEGACY_META


def model_keys(prepared: Mapping[str, Any]) -> list[str]:
    """The keys of ``prepared`` that are model inputs, in order."""
    return [k for k in prepared if is_model_key(k)]


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

    def prepare_whole(self, processor: Any, src: Any, *, budget: Any = None,
                      allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        """One input through the processor with the processor's own settings, as one window (what
        ``featx features`` writes); the same as `prepare` where a family has no windows of its own."""
        return self.prepare(processor, src, budget=budget, allow_private_urls=allow_private_urls)

    def default_pool_for(self, model_type: str | None) -> str:
        """The default pooling of one of the family's model types."""
        return self.default_pool

    def text_tower(self, model_type: str | None) -> TextFamily | None:
        """The text tower's family for checkpoints of ``model_type`` (None: they have none)."""
        return None


#: the prepared-array key of a text input's own text (row metadata for jobs that write it)
TEXT_KEY = ROW_PREFIX + "text"


@dataclass(frozen=True)
class TextFamily(FamilySpec):
    """Text encoders: one input is one string, tokenized with the checkpoint's tokenizer.

    ``padding``: how one text is padded ("longest": not at all; "max_length": to the model's
    length, as SigLIP was trained); texts are truncated to the tokenizer's ``model_max_length``.
    ``encoders`` also names the full image-text checkpoints' types whose text tower this is.
    ``scores``: how zero-shot logits become label scores ("softmax" over the labels, CLIP's;
    "sigmoid" per label, SigLIP's).
    """

    main_input: str = "input_ids"
    default_pool: str = "joint"
    padding: str = "longest"
    scores: str = "softmax"

    modality: ClassVar[str] = "text"

    def prepare(self, processor: Any, src: Any, *, budget: Any = None,
                allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        if not isinstance(src, str):
            raise InputError(f"a text input must be a string, got {type(src).__name__}", source=describe_source(src))
        arrays = processor.as_arrays(src, padding=self.padding, max_length=int(processor.model_max_length))
        arrays[TEXT_KEY] = np.asarray(src)  # row metadata, not a model input: the text of its row
        return arrays

    def text_tower(self, model_type: str | None) -> TextFamily | None:
        return self if model_type in self.encoders else None


@dataclass(frozen=True)
class ImageFamily(FamilySpec):
    """Image encoders: one input is one image, one window. ``text``: the text tower of the
    family's full image-text checkpoints (those of ``text.encoders``), whose default pooling is
    then "joint" (the image-text space)."""

    text: TextFamily | None = None

    modality: ClassVar[str] = "image"

    def default_pool_for(self, model_type: str | None) -> str:
        return "joint" if self.text_tower(model_type) is not None else self.default_pool

    def text_tower(self, model_type: str | None) -> TextFamily | None:
        return self.text if self.text is not None and model_type in self.text.encoders else None

    def prepare(self, processor: Any, src: Any, *, budget: Any = None,
                allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        from ..image.draft import draft_request
        from ..image.io import load_image

        image = src
        with budget.hold() if budget is not None else contextlib.nullcontext() as hold:
            if isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(src, "read"):
                # reduced-size JPEG decode only where the processor opts in (featx.image.draft)
                image = load_image(src, allow_private_urls=allow_private_urls, pixel_budget=hold,
                                   draft=draft_request(processor))
            out = self.process(processor, image, src)
            del image  # the decoded pixels go before the hold gives them back
        return out

    def process(self, processor: Any, image: Any, src: Any) -> dict[str, np.ndarray]:
        """One decoded image into the model's arrays (a subclass may cut it into parts first)."""
        return run_processor(processor, image, src)


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
        from ..audio import chunk

        wave, rate = _waveform(processor, src, allow_private_urls)
        windows = list(chunk(wave, chunk_length_s=self.window(processor), sampling_rate=rate))
        arrays = self.window_arrays(processor, [w.samples for w in windows])
        arrays["offsets"] = np.array([[w.start, w.end] for w in windows], dtype=np.int64)
        return arrays

    def window_arrays(self, processor: Any, pieces: list[np.ndarray]) -> dict[str, np.ndarray]:
        """The model's arrays for the windows ``pieces`` of one input (waveforms at the processor's
        rate), processed together; also what `featx.live` gives each window of a stream."""
        out = processor(pieces, sampling_rate=int(processor.sampling_rate), return_tensors="np", **self.call_kwargs)
        arrays = {k: np.asarray(v) for k, v in out.items()}
        if self.frame_mask is not None:
            arrays["attention_mask"] = self.frame_mask(processor, pieces)
        return arrays

    def prepare_whole(self, processor: Any, src: Any, *, budget: Any = None,
                      allow_private_urls: bool = True) -> dict[str, np.ndarray]:
        wave, rate = _waveform(processor, src, allow_private_urls)
        return run_processor(processor, wave, src, sampling_rate=rate)


def _waveform(processor: Any, src: Any, allow_private_urls: bool) -> tuple[np.ndarray, int]:
    """``src`` as a mono float32 waveform at the processor's rate, and that rate."""
    from ..audio import load_audio, resample

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
    return wave, rate


def run_processor(processor: Any, data: Any, src: Any, **kwargs: Any) -> dict[str, np.ndarray]:
    """``processor(data, return_tensors="np", **kwargs)`` as arrays; a failure of the processor on
    this input (other than featx's own errors) becomes an `InputError` naming ``src``."""
    try:
        out = processor(data, return_tensors="np", **kwargs)
    except FeatxError:
        raise
    except Exception as exc:  # a processor failure on one input must name that input
        raise InputError(f"preprocessing failed: {exc}", source=describe_source(src)) from exc
    return {k: np.asarray(v) for k, v in out.items()}


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
        raise ConfigError(f"family {spec.name!r} must be an ImageFamily or AudioFamily (or another kind: TextFamily...)")
