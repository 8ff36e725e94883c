"""`SequenceFeatureExtractor`: the base of the audio extractors, with the reference's ``pad``.

``pad`` (`featx.audio.padding`) gives the same arrays, dtypes and masks as ``transformers``'
``SequenceFeatureExtractor.pad``, but writes every example straight into one preallocated batch
array instead of padding them one by one and stacking. Deliberate differences, all where the
reference produces something unusable:

- the errors are `featx.InputError` (a ``ValueError``) and say what to pass;
- items with more than one axis (``[frames, bins]``) are padded along the first axis only, whatever
  ``feature_size`` says (the reference pads every axis when ``feature_size == 1``);
- when sequences keep different lengths (``padding=False``, or longer than ``max_length`` without
  truncation), NumPy output is the reference's object array of per-example arrays, ``"pt"``,
  ``"jax"`` and ``"tf"`` are an error that says how to pad, and torch items without
  ``return_tensors`` give a list of tensors (the reference fails);
- a single unbatched example (a flat list of numbers) is an error that says to wrap it in a list.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from ..config import FeatureExtractionMixin
from ..errors import ConfigError, InputError
from .padding import PADDING_STRATEGIES, is_torch, pad_batch, padding_strategy, torch_to_numpy

__all__ = [
    "SequenceFeatureExtractor",
    "PADDING_STRATEGIES",
    "CONFIG_FILE",
    "OptionCheck",
    "positive_int",
    "finite_number",
    "optional_finite_number",
    "nonzero_finite_number",
    "non_negative_number",
    "flag",
    "right_or_left",
]

# A 2-D waveform whose second axis is at most this long is read as (samples, channels).
_MAX_CHANNELS = 8


# ---- option checks: a bad config fails when the extractor is built, not once per input ----------
CONFIG_FILE = "preprocessor_config.json"
OptionCheck = Callable[[str, Any], None]


def _real(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    return is_number and math.isfinite(value)


def _rule(what: str, ok: Callable[[Any], bool]) -> OptionCheck:
    def check(name: str, value: Any) -> None:
        if not ok(value):
            raise ConfigError(f"{CONFIG_FILE}: {name} must be {what}, got {value!r}")

    return check


positive_int = _rule("a positive integer", lambda v: _real(v) and float(v).is_integer() and v >= 1)
finite_number = _rule("a finite number", _real)
optional_finite_number = _rule("a finite number or null", lambda v: v is None or _real(v))
nonzero_finite_number = _rule("a finite, non-zero number", lambda v: _real(v) and v != 0)
non_negative_number = _rule("a finite number of at least 0", lambda v: _real(v) and v >= 0)
flag = _rule("true or false", lambda v: v is None or isinstance(v, (bool, np.bool_)) or (type(v) is int and v in (0, 1)))
right_or_left = _rule("'right' or 'left'", lambda v: v in ("right", "left"))


@dataclasses.dataclass(repr=False)
class SequenceFeatureExtractor(FeatureExtractionMixin):
    """Base of the audio feature extractors: options, ``pad`` and input checks.

    ``feature_size`` is the size of one frame's feature vector (1 for raw waveforms);
    ``padding_side`` is ``"right"`` or ``"left"``. Subclasses set ``model_input_names``: the first
    name is the key ``pad`` pads.
    """

    type_key: ClassVar[str] = "feature_extractor_type"
    nested_key: ClassVar[str] = "feature_extractor"
    model_input_names: ClassVar[list[str]] = ["input_values", "attention_mask"]

    feature_size: int = 1
    sampling_rate: int = 16000
    padding_value: float = 0.0
    return_attention_mask: bool = True
    padding_side: str = "right"

    # How each option is checked when the extractor is built; subclasses add their own.
    option_checks: ClassVar[dict[str, OptionCheck]] = {
        "feature_size": positive_int,
        "sampling_rate": positive_int,
        "padding_value": optional_finite_number,
        "return_attention_mask": flag,
        "padding_side": right_or_left,
    }

    def __post_init__(self) -> None:
        self.check_options({name: getattr(self, name) for name in self.option_names()})

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise `ConfigError` naming the field and value for the first bad option in ``options``."""
        for name, check in cls.option_checks.items():
            if name in options:
                check(name, options[name])

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Options as given, checked (`ConfigError` before the extractor is built)."""
        cls.check_options(options)
        return options

    # ---- padding ---------------------------------------------------------------------------
    pad = pad_batch  # ``pad(processed_features, padding=True, ...)``: see `featx.audio.padding`

    def _padding_strategy(self, padding: Any, max_length: int | None) -> str:
        return padding_strategy(padding, max_length, self.padding_value)

    def fetch_audio(self, audio_url_or_urls: Any, sampling_rate: int | None = None) -> Any:
        """Load a path or URL (or a list of them) as a mono float32 waveform at ``sampling_rate``
        (default: the extractor's); waveforms (arrays, tensors, lists of numbers) pass through."""
        rate = sampling_rate or self.sampling_rate
        if isinstance(audio_url_or_urls, (list, tuple)) and (
            not audio_url_or_urls or not isinstance(audio_url_or_urls[0], (int, float, np.number))
        ):
            return [self.fetch_audio(x, sampling_rate=rate) for x in audio_url_or_urls]
        if isinstance(audio_url_or_urls, (str, os.PathLike)):
            from .io import load_audio

            return load_audio(audio_url_or_urls, sampling_rate=rate).waveform
        if isinstance(audio_url_or_urls, (np.ndarray, list, tuple)) or is_torch(audio_url_or_urls):
            return audio_url_or_urls
        raise InputError(
            f"fetch_audio takes a path, a URL, a waveform or a list of them, not {type(audio_url_or_urls).__name__}",
            source="audio_url_or_urls",
        )

    # ---- helpers for subclasses --------------------------------------------------------------
    def _check_sampling_rate(self, sampling_rate: int | None) -> None:
        """Refuse audio at another rate; warn when the caller did not say (as the reference)."""
        if sampling_rate is None:
            warnings.warn(
                f"It is strongly recommended to pass the `sampling_rate` argument to "
                f"`{type(self).__name__}()`. Failing to do so can result in silent errors that might "
                "be hard to debug.",
                UserWarning,
                stacklevel=3,
            )
            return
        if sampling_rate != self.sampling_rate:
            raise InputError(
                f"{type(self).__name__} expects audio sampled at {self.sampling_rate} Hz, but "
                f"sampling_rate={sampling_rate} was passed; resample the audio to {self.sampling_rate} Hz "
                f"first, e.g. with featx.load_audio(src, sampling_rate={self.sampling_rate})",
                source="sampling_rate",
            )

    def _as_batch(self, raw_speech: Any, name: str = "raw_speech") -> tuple[list[np.ndarray], bool]:
        """Convert the extractor's input to a list of mono float32 1-D arrays.

        Accepts a waveform (list of numbers, 1-D array or tensor) or a batch (list of those, or a
        2-D ``[batch, samples]`` array/tensor). Returns ``(waveforms, is_batched)``. Integer
        samples are cast without scaling, as the reference does. A 2-D array that looks like
        ``(samples, channels)``, or 3-D input, is refused rather than read as a batch.
        """
        if isinstance(raw_speech, (str, bytes, bytearray, os.PathLike)):
            raise InputError(
                f"{name} must be a waveform (array or list of numbers), not {type(raw_speech).__name__}; "
                f"to read a file use featx.load_audio(src, sampling_rate={self.sampling_rate})",
                source=name,
            )
        if is_torch(raw_speech):
            raw_speech = torch_to_numpy(raw_speech)
        if isinstance(raw_speech, np.ndarray):
            if raw_speech.ndim == 1:
                return [self._as_waveform(raw_speech, name)], False
            if raw_speech.ndim == 2:
                rows, cols = raw_speech.shape
                if cols <= _MAX_CHANNELS and rows > cols:
                    raise InputError(
                        f"{name} has shape {raw_speech.shape}, which looks like (samples, channels) audio; "
                        "extractors take mono: downmix with waveform.mean(axis=1), or load the file with "
                        "featx.load_audio(src) (mono by default). A batch of equal-length clips is "
                        "(batch, samples).",
                        source=name,
                    )
                return [self._as_waveform(row, f"{name}[{i}]") for i, row in enumerate(raw_speech)], True
            raise InputError(
                f"{name} has shape {raw_speech.shape}; expected a mono waveform (samples,) or a batch "
                "(batch, samples); only mono-channel audio is supported",
                source=name,
            )
        if isinstance(raw_speech, (list, tuple)):
            if len(raw_speech) == 0:
                raise InputError(f"{name} is empty; pass a waveform or a non-empty batch", source=name)
            first = raw_speech[0]
            if isinstance(first, (np.ndarray, list, tuple)) or is_torch(first):
                return [self._as_waveform(x, f"{name}[{i}]") for i, x in enumerate(raw_speech)], True
            return [self._as_waveform(raw_speech, name)], False
        raise InputError(
            f"{name} must be a NumPy array, a torch tensor or a list, not {type(raw_speech).__name__}",
            source=name,
        )

    @staticmethod
    def _as_waveform(x: Any, name: str) -> np.ndarray:
        arr = torch_to_numpy(x) if is_torch(x) else x
        try:
            arr = np.asarray(arr)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{name} is not a sequence of numbers: {exc}", source=name) from exc
        if arr.dtype.kind not in "biuf":
            raise InputError(f"{name} must hold real numbers, not {arr.dtype}", source=name)
        if arr.ndim != 1:
            what = "a scalar" if arr.ndim == 0 else f"shape {arr.shape}"
            raise InputError(
                f"{name} is {what}; each waveform must be mono and 1-D (samples,). Downmix "
                "multichannel audio with .mean(axis=...) or load it with featx.load_audio(src)",
                source=name,
            )
        return np.ascontiguousarray(arr, dtype=np.float32)
