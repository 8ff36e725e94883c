"""The extractors' common base, zero-mean unit-variance normalisation, and `Wav2Vec2FeatureExtractor`.

`AudioExtractor` is what the Whisper, AST and Wav2Vec2 extractors share over
`featx.audio.sequence.SequenceFeatureExtractor` (keys the reference saves but derives are
recomputed, not kept). Wav2Vec2/HuBERT/WavLM take raw waveforms, optionally normalised per example
as the reference does (`zero_mean_unit_var_norm`); the spectrogram extractors are in
`featx.audio.extractors`, which re-exports this module's names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch

from ..batch import BatchFeature
from ..registry import register
from . import functional as F
from .sequence import OptionCheck, SequenceFeatureExtractor, flag

__all__ = [
    "AudioExtractor",
    "Wav2Vec2FeatureExtractor",
    "zero_mean_unit_var_norm",
    "normalize_rows",
    "mask_spans",
    "DERIVED_KEYS",
]

# Keys the reference writes (or old configs hold) that are derived from the options, not options.
DERIVED_KEYS = ("mel_filters", "window", "n_samples", "nb_max_frames")


def _integer_inputs(raw_speech: Any) -> list[bool]:
    """Which examples were given as integers (the reference then computes statistics in float64)."""

    def is_int(x: Any) -> bool:
        if isinstance(x, torch.Tensor):
            return not (x.is_floating_point() or x.is_complex())
        if isinstance(x, np.ndarray):
            return x.dtype.kind in "biu"
        if isinstance(x, (list, tuple)):
            return bool(len(x)) and all(isinstance(v, (int, np.integer)) for v in x[:8])
        return False

    if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
        return [is_int(raw_speech)] * (raw_speech.shape[0] if raw_speech.ndim > 1 else 1)
    if isinstance(raw_speech, (list, tuple)) and raw_speech and not isinstance(raw_speech[0], (int, float, np.number)):
        return [is_int(x) for x in raw_speech]
    return [is_int(raw_speech)]


def mask_spans(mask: Any) -> list[tuple[int, int]]:
    """(first, last + 1) of the ones of each row of an attention mask (an array or a list of rows)."""
    spans = []
    for row in mask:
        ones = np.flatnonzero(np.asarray(row))
        spans.append((int(ones[0]), int(ones[-1]) + 1) if ones.size else (0, 0))
    return spans


def normalize_rows(rows: list[np.ndarray], spans: list[tuple[int, int]] | None, padding_value: float,
                    as_float64: list[bool]) -> list[np.ndarray]:
    """Zero-mean unit-variance per example (float64 statistics for integer inputs), float32 out."""
    out = []
    for i, row in enumerate(rows):
        work = row.astype(np.float64 if as_float64[i] else np.float32)[None]
        F.zero_mean_unit_var(work, None if spans is None else [spans[i]], padding_value)
        out.append(work[0].astype(np.float32, copy=False))
    return out


def zero_mean_unit_var_norm(
    input_values: list[np.ndarray], attention_mask: list[np.ndarray] | None, padding_value: float = 0.0
) -> list[np.ndarray]:
    """The reference's static helper: ``(x - mean) / sqrt(var + 1e-7)`` per array, over the span its
    attention mask covers (the rest set to ``padding_value``); integers are normalised in float64."""
    spans = None if attention_mask is None else mask_spans(attention_mask)
    out = []
    for i, v in enumerate(input_values):
        row = np.array(v, copy=True)
        if row.dtype.kind not in "fc":
            row = row.astype(np.float64)
        out.append(F.zero_mean_unit_var(row[None], None if spans is None else [spans[i]], padding_value)[0])
    return out


class AudioExtractor(SequenceFeatureExtractor):
    """Shared option hygiene: derived keys the reference saves are recomputed, not kept."""

    derived_keys: ClassVar[tuple[str, ...]] = DERIVED_KEYS

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        for key in DERIVED_KEYS:
            options.pop(key, None)
        return super().normalize_options(options)


@register("feature_extractor")
@dataclasses.dataclass(repr=False)
class Wav2Vec2FeatureExtractor(AudioExtractor):
    """Raw waveforms for Wav2Vec2/HuBERT/WavLM: ``input_values``, optionally zero-mean unit-variance.

    With ``do_normalize`` each example is normalised over the samples its attention mask covers
    when one is returned and the batch is padded; without a mask the padding is part of the
    statistics (the reference's behaviour: pass ``return_attention_mask=True`` to avoid it).
    """

    model_input_names: ClassVar[list[str]] = ["input_values", "attention_mask"]

    return_attention_mask: bool = False
    do_normalize: bool = True

    option_checks: ClassVar[dict[str, OptionCheck]] = {**SequenceFeatureExtractor.option_checks, "do_normalize": flag}

    zero_mean_unit_var_norm = staticmethod(zero_mean_unit_var_norm)

    def __call__(
        self,
        raw_speech: Any,
        padding: bool | str = False,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        sampling_rate: int | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Pad/truncate one waveform or a batch, then normalise.

        Without ``return_tensors``, as the reference: ``input_values`` is a list of float32 arrays
        when normalised, else one array (an object array of per-example arrays when the lengths
        differ); ``attention_mask`` is a list of int32 arrays. With ``return_tensors="np"`` a
        ragged batch is an object array; ``"pt"``/``"jax"``/``"tf"`` need equal lengths."""
        self._check_sampling_rate(sampling_rate)
        as_float64 = _integer_inputs(raw_speech)
        waves, _ = self._as_batch(raw_speech)
        if len(as_float64) != len(waves):
            as_float64 = [False] * len(waves)
        padded = self.pad(
            {"input_values": waves},
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
        )
        values = padded["input_values"]
        mask = padded.get("attention_mask")
        out: dict[str, Any] = {}
        if self.do_normalize:
            use_mask = mask is not None and self._padding_strategy(padding, max_length) != "do_not_pad"
            spans = mask_spans(mask) if use_mask else None
            values = normalize_rows(list(values), spans, self.padding_value, as_float64)
        # Like the reference: a padded batch stays one array unless normalised (then a list).
        out["input_values"] = values if isinstance(values, np.ndarray) else [np.asarray(r, dtype=np.float32) for r in values]
        if mask is not None:
            out["attention_mask"] = [np.asarray(m, dtype=np.int32) for m in mask]
        return BatchFeature(out, tensor_type=return_tensors)
