"""`SequenceFeatureExtractor`: the base of the audio extractors, with the reference's ``pad``.

``pad`` gives the same arrays, dtypes and masks as ``transformers``'
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..batch import BatchFeature, TensorType, tensor_kind
from ..config import FeatureExtractionMixin
from ..errors import ConfigError, InputError

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

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
# A 2-D waveform whose second axis is at most this long is read as (samples, channels).
_MAX_CHANNELS = 8


def _is_torch(x: object) -> bool:
    return type(x).__module__.startswith("torch") and type(x).__name__ in ("Tensor", "Parameter")


def _torch_to_numpy(x: Any) -> np.ndarray:
    x = x.detach().cpu()
    if not (x.dtype.is_floating_point or x.dtype.is_complex) or x.dtype.itemsize >= 4:
        return x.numpy()
    return x.float().numpy()  # bfloat16/float16 have no (or a lossy) NumPy twin; pad in float32


def _item_to_numpy(x: Any) -> np.ndarray:
    return _torch_to_numpy(x) if _is_torch(x) else np.asarray(x)


def _round_up(n: int, multiple: int | None) -> int:
    if multiple is None or n % multiple == 0:
        return n
    return (n // multiple + 1) * multiple


def _output_dtype(dtype: np.dtype) -> np.dtype:
    # The reference casts float64 to float32 after padding, example by example.
    return np.dtype(np.float32) if dtype == np.float64 else dtype


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
    def pad(
        self,
        processed_features: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        padding: bool | str = True,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
    ) -> BatchFeature:
        """Truncate and pad a batch of sequences to one length, with an attention mask.

        ``processed_features`` is a dict (or `BatchFeature`) of per-example lists, or a list of
        per-example dicts (collate-function use); items are lists, NumPy arrays or torch tensors.
        ``padding``: ``True``/``"longest"`` (to the longest, after truncation), ``"max_length"``
        (to ``max_length``), ``False``/``"do_not_pad"``. ``pad_to_multiple_of`` rounds the target
        length up, also the truncation length. ``return_tensors`` defaults to ``"pt"`` for torch
        items and ``"np"`` otherwise, like the reference. Only the main input (the first of
        ``model_input_names``) and ``attention_mask`` are truncated and padded.
        """
        main = self.model_input_names[0]
        features = self._as_feature_dict(processed_features, main)
        if return_attention_mask is None:
            return_attention_mask = bool(self.return_attention_mask)
        required = features[main]
        if len(required) == 0:
            out = dict(features)
            if return_attention_mask:
                out["attention_mask"] = []
            return BatchFeature(out)

        kind = tensor_kind(return_tensors)
        inferred = kind is None
        if kind is None:
            kind = "pt" if _is_torch(self._first_item(required, main)) else "np"

        columns: dict[str, list[np.ndarray]] = {}
        for key, value in features.items():
            if isinstance(value, np.ndarray) and value.ndim >= 1:
                columns[key] = list(value)  # an already batched array: its rows are the examples
            elif _is_torch(value) and value.ndim >= 1:
                columns[key] = list(_torch_to_numpy(value))
            elif isinstance(value, (list, tuple)) or _is_torch(value):
                if len(value) and isinstance(value[0], (int, float, np.number)) and key == main:
                    raise InputError(
                        f"pad() takes a batch, but {key!r} holds a single sequence of numbers; "
                        f"wrap it in a list ({{{key!r}: [values]}}) to pad a batch of one",
                        source=key,
                    )
                columns[key] = [_item_to_numpy(v) for v in value]
            else:
                raise InputError(
                    f"{key!r} must be a list of per-example sequences or a batched array, "
                    f"not {type(value).__name__}",
                    source=key,
                )

        strategy = self._padding_strategy(padding, max_length)
        self._check_multiple(pad_to_multiple_of)
        batch_size = len(columns[main])
        if any(len(v) != batch_size for v in columns.values()):
            sizes = {k: len(v) for k, v in columns.items()}
            raise InputError(f"the inputs have different batch sizes: {sizes}; give every key one item per example")

        items = columns[main]
        for i, x in enumerate(items):
            if x.ndim == 0:
                raise InputError(
                    f"{main}[{i}] is a scalar; each example must be a sequence (1-D, or 2-D [frames, features])",
                    source=f"{main}[{i}]",
                )
        masks = columns.get("attention_mask")
        if truncation:
            if max_length is None:
                raise InputError(
                    "truncation=True needs max_length: pass max_length=<length>, or truncation=False"
                )
            limit = _round_up(int(max_length), pad_to_multiple_of)
            items = [x[:limit] for x in items]
            if masks is not None:
                masks = [m[:limit] for m in masks]
        lengths = [len(x) for x in items]

        if strategy == "longest":
            target: int | None = _round_up(max(lengths), pad_to_multiple_of)
        elif strategy == "max_length":
            target = _round_up(int(max_length), pad_to_multiple_of)  # type: ignore[arg-type]
        else:
            target = None
        if target is not None and self.padding_side not in ("right", "left"):
            raise InputError(
                f"padding_side must be 'right' or 'left', not {self.padding_side!r}", source="padding_side"
            )

        out: dict[str, Any] = {}
        for key, column in columns.items():
            if key in (main, "attention_mask"):
                continue
            out[key] = [x.astype(np.float32) if x.dtype == np.float64 else x for x in column]
        out[main] = self._pad_column(items, target, self.padding_value, main)
        if masks is None and return_attention_mask and isinstance(out[main], np.ndarray):
            out["attention_mask"] = self._mask(lengths, out[main].shape[1])
        elif masks is None and return_attention_mask:
            masks = [np.ones(n, dtype=np.int32) for n in lengths]
        if masks is not None:
            out["attention_mask"] = self._pad_column(masks, target, 0, "attention_mask")

        ragged = [k for k, v in out.items() if isinstance(v, list) and len({x.shape for x in v}) > 1]
        if ragged and kind == "pt" and inferred:
            # Torch items that stay ragged: a list of tensors (the reference cannot stack them).
            import torch

            for key in ragged:
                out[key] = [torch.from_numpy(np.ascontiguousarray(x)) for x in out[key]]
            return BatchFeature(out)
        if ragged and kind != "np":
            raise InputError(
                f"cannot return {kind!r} tensors: {ragged} hold sequences of different lengths "
                f"({min(lengths)} to {max(lengths)}); pass padding=True, or padding='max_length' with "
                "max_length=..., or return_tensors='np' for an object array of per-example arrays",
                source=ragged[0],
            )
        return BatchFeature(out, tensor_type=kind)  # ragged NumPy output: an object array

    def _pad_column(
        self, items: list[np.ndarray], target: int | None, value: float, key: str
    ) -> np.ndarray | list[np.ndarray]:
        """Pad along the first axis into one preallocated array; a list when lengths stay ragged."""
        lengths = [len(x) for x in items]
        finals = [n if target is None else max(n, target) for n in lengths]
        dtypes = [_output_dtype(x.dtype) for x in items]
        right = self.padding_side == "right"
        if len(set(finals)) > 1:  # no padding, or examples longer than the target: stays ragged
            return [
                self._pad_one(x, f, value, right).astype(d, copy=False) for x, f, d in zip(items, finals, dtypes)
            ]
        if len({x.shape[1:] for x in items}) > 1:
            shapes = sorted({x.shape[1:] for x in items})
            raise InputError(
                f"the examples of {key!r} have different feature shapes {shapes}; "
                "only the first (time) axis may differ",
                source=key,
            )
        length = finals[0]
        batch = np.empty((len(items), length, *items[0].shape[1:]), dtype=np.result_type(*dtypes))
        for i, (x, n) in enumerate(zip(items, lengths)):
            data, pad = (slice(0, n), slice(n, length)) if right else (slice(length - n, length), slice(0, length - n))
            batch[i, data] = x
            if n < length:
                # The reference pads at the example's own dtype (an int example gets an int pad value).
                batch[i, pad] = np.asarray(value).astype(x.dtype).astype(dtypes[i])
        return batch

    def _mask(self, lengths: list[int], length: int) -> np.ndarray:
        """The int32 attention mask of a padded batch, built in one pass."""
        positions = np.arange(length, dtype=np.int64)[None, :]
        valid = np.asarray(lengths, dtype=np.int64)[:, None]
        keep = positions < valid if self.padding_side == "right" else positions >= length - valid
        return keep.astype(np.int32)

    @staticmethod
    def _pad_one(x: np.ndarray, length: int, value: float, right: bool) -> np.ndarray:
        n = len(x)
        if n >= length:
            return x
        widths = [(0, length - n) if right else (length - n, 0)] + [(0, 0)] * (x.ndim - 1)
        return np.pad(x, widths, mode="constant", constant_values=np.asarray(value).astype(x.dtype))

    @staticmethod
    def _as_feature_dict(processed_features: Any, main: str) -> dict[str, Any]:
        if isinstance(processed_features, (list, tuple)):
            if not processed_features:
                raise InputError("pad() got an empty list; pass at least one example")
            if isinstance(processed_features[0], Mapping):
                keys = list(processed_features[0].keys())
                for i, example in enumerate(processed_features):
                    if not isinstance(example, Mapping) or set(example.keys()) != set(keys):
                        raise InputError(
                            f"example {i} does not have the same keys as example 0 ({keys})", source=i
                        )
                return {key: [example[key] for example in processed_features] for key in keys}
        if not isinstance(processed_features, Mapping):
            raise InputError(
                "pad() takes a dict (or BatchFeature) of per-example lists, or a list of per-example "
                f"dicts, not {type(processed_features).__name__}"
            )
        if main not in processed_features:
            raise InputError(
                f"pad() needs the key {main!r} (the model's main input), but got {list(processed_features.keys())}",
                source=main,
            )
        return dict(processed_features)

    @staticmethod
    def _first_item(required: Any, main: str) -> Any:
        first = required[0]
        if isinstance(first, (list, tuple)):
            for example in required:  # the first non-empty example decides, as in the reference
                if len(example):
                    return example[0]
        return first

    def _padding_strategy(self, padding: Any, max_length: int | None) -> str:
        value = getattr(padding, "value", padding)  # transformers' PaddingStrategy enum
        if value is True:
            strategy = "longest"
        elif value is False or value is None:
            strategy = "do_not_pad"
        elif isinstance(value, str) and value in PADDING_STRATEGIES:
            strategy = value
        else:
            raise InputError(
                f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', not {padding!r}",
                source="padding",
            )
        if strategy == "max_length" and max_length is None:
            raise InputError(
                "padding='max_length' needs max_length: pass max_length=<length>, or padding=True "
                "to pad to the longest example",
                source="max_length",
            )
        if max_length is not None and (not isinstance(max_length, (int, np.integer)) or max_length < 0):
            raise InputError(f"max_length must be a non-negative int, not {max_length!r}", source="max_length")
        if strategy != "do_not_pad" and self.padding_value is None:
            raise InputError(
                "padding needs a padding value, but padding_value is None; set "
                "extractor.padding_value = 0.0 (or pass padding=False)",
                source="padding_value",
            )
        return strategy

    @staticmethod
    def _check_multiple(pad_to_multiple_of: int | None) -> None:
        if pad_to_multiple_of is not None and (
            not isinstance(pad_to_multiple_of, (int, np.integer)) or pad_to_multiple_of <= 0
        ):
            raise InputError(
                f"pad_to_multiple_of must be a positive int or None, not {pad_to_multiple_of!r}",
                source="pad_to_multiple_of",
            )

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
        if isinstance(audio_url_or_urls, (np.ndarray, list, tuple)) or _is_torch(audio_url_or_urls):
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
        if _is_torch(raw_speech):
            raw_speech = _torch_to_numpy(raw_speech)
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
            if isinstance(first, (np.ndarray, list, tuple)) or _is_torch(first):
                return [self._as_waveform(x, f"{name}[{i}]") for i, x in enumerate(raw_speech)], True
            return [self._as_waveform(raw_speech, name)], False
        raise InputError(
            f"{name} must be a NumPy array, a torch tensor or a list, not {type(raw_speech).__name__}",
            source=name,
        )

    @staticmethod
    def _as_waveform(x: Any, name: str) -> np.ndarray:
        arr = _torch_to_numpy(x) if _is_torch(x) else x
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
