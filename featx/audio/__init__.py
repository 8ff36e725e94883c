"""Audio: loading, padding, windows over long audio; the extractors live in featx.audio.extractors.

The extractors module is not imported here: ``featx.audio.extractors`` subclasses
`SequenceFeatureExtractor` from this package, and `featx` imports it lazily on first use.
"""

from __future__ import annotations

from .chunking import Window, chunk, window_params
from .io import Audio, load_audio, resample
from .sequence import SequenceFeatureExtractor

__all__ = ["Audio", "SequenceFeatureExtractor", "Window", "chunk", "load_audio", "resample", "window_params"]
