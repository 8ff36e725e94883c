"""Audio families: Whisper's encoder, AST, and Wav2Vec2-style encoders (HuBERT; WavLM preprocessed only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import register_family
from .spec import AudioFamily

__all__ = ["WHISPER", "AST", "WAV2VEC2"]


def _ast_window(processor: Any) -> float:
    """The seconds AST's ``max_length`` fbank frames span."""
    return float(processor.window_seconds())


def _ast_frame_mask(processor: Any, pieces: list[np.ndarray]) -> np.ndarray:
    return processor.frame_mask([len(p) for p in pieces])  # type: ignore[no-any-return]


WHISPER = register_family(AudioFamily(
    name="whisper", model_types=("whisper",), processor="WhisperFeatureExtractor",
    encoders={"whisper": "featx.models.whisper:WhisperEncoder"}, main_input="input_features",
    window_s=lambda processor: float(getattr(processor, "chunk_length", 30)),
    call_kwargs={"return_attention_mask": True},
))
AST = register_family(AudioFamily(
    name="audio-spectrogram-transformer", model_types=("audio-spectrogram-transformer",),
    processor="ASTFeatureExtractor",
    encoders={"audio-spectrogram-transformer": "featx.models.ast:ASTModel"},
    window_s=_ast_window, frame_mask=_ast_frame_mask,
))
# No fixed context: 30 s windows bound the memory of attention over long recordings.
WAV2VEC2 = register_family(AudioFamily(
    name="wav2vec2", model_types=("wav2vec2", "hubert", "wavlm"), processor="Wav2Vec2FeatureExtractor",
    encoders={"wav2vec2": "featx.models.wav2vec2:Wav2Vec2Model", "hubert": "featx.models.wav2vec2:Wav2Vec2Model"},
    window_s=30.0, call_kwargs={"padding": "longest", "return_attention_mask": True},
    # group-norm checkpoints (wav2vec2-base) were trained without masks: run them unmasked, as
    # the reference advises, and use the mask for pooling only
    mask_if_processor_says=True,
))
