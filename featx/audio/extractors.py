"""Whisper, AST and Wav2Vec2 feature extractors: configs over the sequence base and the functional core.

Options, saved keys, call arguments and outputs follow ``transformers`` (the same numbers: see
tests/audio/test_extractors_parity.py). The spectral work is batched in torch (featx.audio.functional).
Deliberate differences, each where the reference returns something unusable:

- integer input gives float32 features (Wav2Vec2 in the reference returns float64, or the raw int
  dtype with ``do_normalize=False``);
- Whisper returns an ``attention_mask`` only when one is asked for (call argument, else the config)
  and always at frame rate; the reference leaks a sample-rate mask when ``do_normalize=True`` or the
  config default asks for one without the call argument;
- with ``padding_side="left"`` the normalisation statistics cover the real samples (the reference
  takes the first ``length`` samples, i.e. the padding);
- inputs the reference crashes on get a `featx.InputError`: Whisper with fewer than
  ``n_fft // 2 + 1`` samples after padding, or lengths left ragged (``padding=False``, or
  ``max_length`` without truncation). AST clips shorter than one 25 ms frame give all-padding
  features (the reference fails below 240 samples). Wav2Vec2 normalises a ragged batch with an
  attention mask (the reference fails).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import numpy as np
import torch

from ..batch import BatchFeature
from ..errors import InputError
from ..registry import register
from . import functional as F
from .filters import mel_filter_bank, window_function
from .sequence import (
    OptionCheck,
    SequenceFeatureExtractor,
    finite_number,
    flag,
    non_negative_number,
    nonzero_finite_number,
    positive_int,
)
from .waveform_extractor import (
    AudioExtractor,
    Wav2Vec2FeatureExtractor,
    mask_spans,
    normalize_rows,
    zero_mean_unit_var_norm,
)

__all__ = [
    "SequenceFeatureExtractor",
    "WhisperFeatureExtractor",
    "ASTFeatureExtractor",
    "Wav2Vec2FeatureExtractor",
]


@register("feature_extractor")
@dataclasses.dataclass(repr=False)
class WhisperFeatureExtractor(AudioExtractor):
    """Whisper's log-mel spectrogram: ``input_features`` ``(batch, feature_size, frames)``.

    Waveforms are padded/truncated to ``chunk_length`` seconds (``n_samples``; 3000 frames at the
    defaults) unless told otherwise, then: centred periodic-Hann STFT (``n_fft``, ``hop_length``),
    power, Slaney mel (0-8000 Hz), ``log10(max(x, 1e-10))``, ``max(x, peak - 8)``, ``(x + 4) / 4``.

    Long audio, original whisper style: ``extractor(audio, truncation=False, padding="longest")``
    gives one spectrogram of the whole recording whose peak (hence the ``peak - 8`` floor) is
    global, as openai/whisper's ``log_mel_spectrogram`` does before slicing 3000-frame segments;
    for a batch of consecutive pieces of one recording, ``global_max=True`` takes the peak over
    the whole batch.
    """

    model_input_names: ClassVar[list[str]] = ["input_features"]

    feature_size: int = 80
    return_attention_mask: bool = False
    hop_length: int = 160
    chunk_length: int = 30
    n_fft: int = 400
    dither: float = 0.0

    option_checks: ClassVar[dict[str, OptionCheck]] = {
        **SequenceFeatureExtractor.option_checks,
        "padding_value": finite_number,  # Whisper always pads
        "hop_length": positive_int,
        "chunk_length": positive_int,
        "n_fft": positive_int,
        "dither": non_negative_number,
    }

    @property
    def n_samples(self) -> int:
        return int(self.chunk_length * self.sampling_rate)

    @property
    def nb_max_frames(self) -> int:
        return self.n_samples // self.hop_length

    @property
    def mel_filters(self) -> np.ndarray:
        """The Slaney filters, float64 ``(n_fft // 2 + 1, feature_size)``, as the reference's attribute."""
        return F.whisper_mel_filters(self.feature_size, self.n_fft, self.sampling_rate)

    zero_mean_unit_var_norm = staticmethod(zero_mean_unit_var_norm)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["n_samples"] = self.n_samples
        out["nb_max_frames"] = self.nb_max_frames
        return out

    def __call__(
        self,
        raw_speech: Any,
        truncation: bool = True,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        padding: bool | str = "max_length",
        max_length: int | None = None,
        sampling_rate: int | None = None,
        do_normalize: bool | None = None,
        device: str | torch.device | None = "cpu",
        global_max: bool = False,
        **kwargs: Any,
    ) -> BatchFeature:
        """Log-mel features of one waveform or a batch; always returns a batch.

        ``max_length`` is in samples (default ``n_samples``); ``device`` runs the STFT there (e.g.
        "cuda"); ``do_normalize`` first normalises each waveform over its unpadded samples;
        ``return_attention_mask`` gives a frame-rate mask (1 where the frame starts in real audio).
        """
        self._check_sampling_rate(sampling_rate)
        waves, _ = self._as_batch(raw_speech)
        want_mask = self.return_attention_mask if return_attention_mask is None else bool(return_attention_mask)
        padded = self.pad(
            {"input_features": waves},
            padding=padding,
            max_length=max_length if max_length else self.n_samples,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=bool(want_mask or do_normalize),
        )
        batch = padded["input_features"]
        if isinstance(batch, list) or batch.dtype == object:  # the reference fails on ragged batches
            lengths = sorted({len(w) for w in batch})
            raise InputError(
                f"the waveforms have different lengths ({lengths[0]} to {lengths[-1]} samples) and padding={padding!r} "
                "leaves them so; pass padding='longest' or 'max_length' (the default) to make one batch",
                source="padding",
            )
        mask = padded.get("attention_mask")
        if do_normalize:
            rows = normalize_rows(list(batch), mask_spans(mask), self.padding_value, [False] * len(batch))
            batch = np.stack(rows)
        if batch.shape[1] <= self.n_fft // 2:
            raise InputError(
                f"Whisper needs at least {self.n_fft // 2 + 1} samples per waveform after padding (the STFT "
                f"reflects {self.n_fft // 2} samples at each edge), but got {batch.shape[1]}; use the default "
                "padding='max_length' or pass longer audio",
                source="raw_speech",
            )
        features = F.log_mel_whisper(
            torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)),
            self.feature_size,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            sampling_rate=self.sampling_rate,
            dither=self.dither,
            global_max=global_max,
            device=device,
        )
        out: dict[str, Any] = {"input_features": features.cpu().numpy()}
        if want_mask:
            # Frame f covers samples centred on f * hop: it is real when that sample is.
            frames = np.asarray(mask)[:, :: self.hop_length][:, : features.shape[-1]]
            out["attention_mask"] = np.ascontiguousarray(frames, dtype=np.int32)
        return BatchFeature(out, tensor_type=return_tensors)


def _ast_window() -> np.ndarray:
    return window_function(400, "hann", periodic=False)


@functools.lru_cache(maxsize=8)
def _ast_mel_filters(num_mel_bins: int, sampling_rate: int) -> np.ndarray:
    return mel_filter_bank(257, num_mel_bins, 20, sampling_rate // 2, sampling_rate, None, "kaldi", True)


@register("feature_extractor")
@dataclasses.dataclass(repr=False)
class ASTFeatureExtractor(AudioExtractor):
    """Audio Spectrogram Transformer features: ``input_values`` ``(batch, max_length, num_mel_bins)``.

    Kaldi fbank as the reference computes it (25 ms symmetric Hann frames every 10 ms, no centring,
    DC removal, pre-emphasis 0.97, 512-point FFT, power, Kaldi mel 20 Hz..Nyquist, natural log
    floored at float32 eps), padded with 0 rows or truncated to ``max_length`` frames after the
    log, then ``(x - mean) / (2 * std)`` when ``do_normalize``. Only the kept frames are computed.
    """

    model_input_names: ClassVar[list[str]] = ["input_values", "attention_mask"]

    return_attention_mask: bool = False
    num_mel_bins: int = 128
    max_length: int = 1024
    do_normalize: bool = True
    mean: float = -4.2677393
    std: float = 4.5689974

    option_checks: ClassVar[dict[str, OptionCheck]] = {
        **SequenceFeatureExtractor.option_checks,
        "num_mel_bins": positive_int,
        "max_length": positive_int,
        "do_normalize": flag,
        "mean": finite_number,
        "std": nonzero_finite_number,
    }

    @property
    def window(self) -> np.ndarray:
        """The reference's attribute: the symmetric Hann window of one 25 ms frame, float64 ``(400,)``."""
        return _ast_window()

    @property
    def mel_filters(self) -> np.ndarray:
        """The reference's attribute: Kaldi mel filters (20 Hz to Nyquist), float64 ``(257, num_mel_bins)``."""
        return _ast_mel_filters(int(self.num_mel_bins), int(self.sampling_rate)).copy()

    def normalize(self, input_values: np.ndarray) -> np.ndarray:
        """``(x - mean) / (2 * std)``."""
        return (input_values - self.mean) / (self.std * 2)

    # Kaldi framing, said once: 25 ms frames every 10 ms, no centring.
    def frame_samples(self) -> tuple[int, int]:
        """(frame length, frame shift) in samples."""
        return int(self.sampling_rate * 0.025), int(self.sampling_rate * 0.010)

    def frame_count(self, n_samples: int) -> int:
        """The fbank rows of real audio in ``n_samples`` samples (at most ``max_length``)."""
        frame, shift = self.frame_samples()
        return 0 if n_samples < frame else min(int(self.max_length), 1 + (n_samples - frame) // shift)

    def window_seconds(self) -> float:
        """The seconds that ``max_length`` frames span (the last frame's 25 ms included)."""
        return (int(self.max_length) - 1) * 0.010 + 0.025

    def frame_mask(self, lengths: list[int]) -> np.ndarray:
        """int32 ``(batch, max_length)``: 1 on the rows of real audio of clips of ``lengths`` samples."""
        real = np.array([self.frame_count(n) for n in lengths])
        return (np.arange(int(self.max_length))[None, :] < real[:, None]).astype(np.int32)

    def __call__(
        self,
        raw_speech: Any,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Features of one waveform or a batch; like the reference, padding arguments are ignored
        (every clip becomes ``max_length`` frames). With ``return_tensors=None`` a list of arrays."""
        self._check_sampling_rate(sampling_rate)
        waves, _ = self._as_batch(raw_speech)
        # Only the samples of the kept frames matter. The FFT runs in float64 like the reference's
        # NumPy path (float32 costs ~1e-3 in near-silent bins); the mel sum of positive terms is
        # safe in float32.
        win, shift = self.frame_samples()
        needed = (self.max_length - 1) * shift + win if self.max_length > 0 else 0
        lengths = [min(len(w), needed) for w in waves]
        batch = np.zeros((len(waves), max(lengths, default=0)), dtype=np.float64)
        for i, (wave, n) in enumerate(zip(waves, lengths)):
            batch[i, :n] = wave[:n]
        feats = F.fbank(
            batch if device is None else torch.from_numpy(batch), sample_frequency=self.sampling_rate,
            window_type="hanning", num_mel_bins=self.num_mel_bins, max_frames=self.max_length, lengths=lengths,
            mel_dtype=torch.float32, device=device,
        )
        out = np.zeros((len(waves), self.max_length, self.num_mel_bins), dtype=np.float32)
        out[:, : feats.shape[1]] = feats if isinstance(feats, np.ndarray) else feats.cpu().numpy()
        if self.do_normalize:
            out -= np.float32(self.mean)
            out /= np.float32(self.std * 2)
        values: Any = list(out) if return_tensors is None else out
        return BatchFeature({"input_values": values}, tensor_type=return_tensors)
