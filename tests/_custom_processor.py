"""A user-defined extractor for the register_for_auto_class test (its module file gets copied)."""

from __future__ import annotations

import dataclasses

from featx.audio.sequence import SequenceFeatureExtractor


@dataclasses.dataclass(repr=False)
class CustomExtractor(SequenceFeatureExtractor):
    """A custom extractor with one option of its own."""

    gain: float = 1.0
