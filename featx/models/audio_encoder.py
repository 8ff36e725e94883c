"""`AudioEncoder`: the base of featx's audio encoders (AST, Whisper, Wav2Vec2/HuBERT).

An audio encoder says as data what the three share in form: the config dataclass it is built
from (`config_class`; `from_config` reads ``config.json`` through it) and the `remap_keys`
arguments that turn checkpoint names into its own (`key_map`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, ClassVar

from torch import Tensor

from .configs import ModelConfig
from .keys import remap_keys
from .loading import EncoderModel

__all__ = ["AudioEncoder"]


class AudioEncoder(EncoderModel):
    """An encoder of audio features; subclasses set `config_class` and `key_map`."""

    modality: ClassVar[str] = "audio"
    main_input_name: ClassVar[str] = "input_values"
    #: the config.json reader; its fields are the constructor's keywords
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: keyword arguments of `featx.models.keys.remap_keys` (``prefixes``, ``keep``, ``renames``...)
    key_map: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AudioEncoder:
        """Build from a ``config.json`` dict read through `config_class` (weights uninitialised)."""
        return cls(**asdict(cls.config_class.from_dict(config)))

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Checkpoint names to this module's (`key_map`); weights that are not the encoder's are dropped."""
        return remap_keys(state_dict, **self.key_map)
