"""One way to read a model's ``config.json``: a frozen dataclass per family, filled by `parse_config`.

A family declares its config as a `ModelConfig` subclass whose field names are the config.json keys,
with typed defaults (the reference's). `parse_config` keeps only those keys (from a nested section such
as ``vision_config`` where the class names one), checks each value's type and range and then the
class's cross-field rules (`ModelConfig.check`), and raises `ModelConfigError` naming the field::

    @dataclass(frozen=True)
    class WhisperConfig(ModelConfig):
        d_model: int = setting(384, max=MAX_HIDDEN)
        encoder_layers: int = setting(4, max=MAX_LAYERS)
        ...

    cfg = parse_config(WhisperConfig, config_dict)   # or WhisperConfig.from_dict(config_dict)

Types: ``int`` (a JSON integer, or a float without a fraction; not a bool or a string), ``float``
(any finite JSON number), ``bool`` (true/false, or 0/1), ``str``, ``tuple[int, int]`` (an integer or a list of two),
``tuple[int, ...]`` (a list of integers), and ``X | None`` (null allowed). Integers default to the
range 1..`MAX_SIZE`; `setting` narrows or widens it. Nothing is built before a config has passed.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from ..errors import ConfigError, ModelLoadError
from .layers import ACTIVATIONS

__all__ = [
    "ModelConfigError",
    "ModelConfig",
    "EncoderConfig",
    "setting",
    "activation",
    "parse_config",
    "require",
    "MAX_LAYERS",
    "MAX_HIDDEN",
    "MAX_SIZE",
    "MAX_IMAGE",
    "MAX_LIST",
]

#: upper bounds of the usual fields; far above any released checkpoint, far below "out of memory"
MAX_LAYERS = 1000
MAX_HIDDEN = 65536
MAX_SIZE = 1 << 20
MAX_IMAGE = 1 << 16
MAX_LIST = 64


class ModelConfigError(ModelLoadError, ConfigError):
    """A model's config.json holds a value featx refuses; ``field`` names it (``vision_config.patch_size``).

    Both a `ModelLoadError` (the checkpoint cannot be loaded) and a `ConfigError` (a configuration is
    invalid), so callers catching either keep working.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def at(self, where: str) -> ModelConfigError:
        """The same error, its message prefixed with ``where`` (e.g. the config.json path)."""
        return ModelConfigError(f"{where}: {self}", field=self.field)


def require(condition: bool, field: str, problem: str) -> None:
    """Raise `ModelConfigError` "``field`` ``problem``" unless ``condition`` (for `ModelConfig.check`)."""
    if not condition:
        raise ModelConfigError(f"{field} {problem}", field=field)


def setting(
    default: Any,
    *,
    min: float | None = 1,
    max: float | None = MAX_SIZE,
    choices: Sequence[str] | None = None,
    top_level: bool = False,
) -> Any:
    """A config field with its allowed range (numbers, and each integer of a list) or ``choices`` (strings).

    ``top_level``: read the key from the top of config.json when it is there, before the nested section.
    """
    meta = {"min": min, "max": max, "choices": tuple(choices) if choices else None, "top_level": top_level}
    return dataclasses.field(default=default, metadata=meta)


def activation(default: str, **kwargs: Any) -> Any:
    """A field naming an activation featx implements (`featx.models.layers.ACTIVATIONS`)."""
    return setting(default, choices=sorted(ACTIVATIONS), **kwargs)


@dataclass(frozen=True)
class ModelConfig:
    """Base of the family configs: typed fields named like the config.json keys, with defaults."""

    #: nested sections to read the fields from, the first that is a non-empty object wins (e.g.
    #: ``("vision_config",)``); without one, or when config.json has none, the top level is read
    sections: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls: type[C], config: Mapping[str, Any]) -> C:
        """`parse_config` for this class."""
        return parse_config(cls, config)

    def check(self) -> None:
        """Cross-field rules (``hidden_size`` divisible by the heads...); raise through `require`."""


@dataclass(frozen=True)
class EncoderConfig(ModelConfig):
    """The transformer fields most families share (ViT, DINOv2, CLIP, SigLIP, AST, Wav2Vec2)."""

    hidden_size: int = setting(768, max=MAX_HIDDEN)
    num_hidden_layers: int = setting(12, max=MAX_LAYERS)
    num_attention_heads: int = setting(12, max=MAX_HIDDEN)
    hidden_act: str = activation("gelu")
    layer_norm_eps: float = setting(1e-12, min=0, max=1)

    def check(self) -> None:
        require(self.hidden_size % self.num_attention_heads == 0, "hidden_size",
                f"({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})")


C = TypeVar("C", bound=ModelConfig)


def parse_config(cls: type[C], config: Mapping[str, Any]) -> C:
    """``cls`` filled from a config.json dict: its own fields only, each checked, then ``cls.check()``.

    Keys that are not fields are ignored; a missing key (or, for a field typed ``X | None``, a null)
    keeps the default. A value of the wrong type or out of range raises `ModelConfigError`
    "<field> must be <what>, got <value>", the field prefixed by its section (``vision_config.``).
    """
    if not isinstance(config, Mapping):
        raise ModelConfigError(f"the model config must be a JSON object, got {_show(config)}")
    section, where = _section(cls, config)
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        top = bool(f.metadata.get("top_level")) and f.name in config
        source, prefix = (config, "") if top else (section, where)
        if f.init and f.name in source:
            values[f.name] = _parse(prefix + f.name, source[f.name], hints[f.name], f.metadata)
    parsed = cls(**values)
    try:
        parsed.check()
    except ModelConfigError as exc:
        if not where:
            raise
        raise ModelConfigError(f"{where}{exc}", field=f"{where}{exc.field}") from None
    return parsed


def _section(cls: type[ModelConfig], config: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    for name in cls.sections:
        nested = config.get(name)
        if isinstance(nested, Mapping) and nested:
            return nested, f"{name}."
        if nested is not None and not isinstance(nested, Mapping):
            raise ModelConfigError(f"{name} must be a JSON object, got {_show(nested)}", field=name)
    return config, ""


@cache
def _hints(cls: type[ModelConfig]) -> dict[str, Any]:
    return get_type_hints(cls)


def _parse(name: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    optional, kind = _unwrap(hint)
    if value is None and optional:
        return None
    counts = kind is not float  # integers without a `setting` are sizes and counts: 1..MAX_SIZE
    lo, hi = meta.get("min", 1 if counts else None), meta.get("max", MAX_SIZE if counts else None)
    choices = meta.get("choices")
    parsed: Any = _INVALID
    if kind is bool:
        parsed = value if isinstance(value, bool) else bool(value) if _int(value) in (0, 1) else _INVALID
        what = "true or false"
    elif kind is str:
        ok = isinstance(value, str) and (choices is None or value in choices)
        parsed = value if ok else _INVALID
        what = "a string" if choices is None else "one of " + ", ".join(f'"{c}"' for c in choices)
    elif kind is float:
        parsed = _number(value, lo, hi)
        what = f"a number{_range(lo, hi)}"
    elif kind is int:
        parsed = _ranged(_int(value), lo, hi)
        what = f"an integer{_range(lo, hi)}"
    elif kind == tuple[int, int]:
        items = value if isinstance(value, (list, tuple)) and len(value) == 2 else [value, value]
        pair = tuple(_ranged(_int(v), lo, hi) for v in items)
        parsed = pair if _INVALID not in pair else _INVALID
        what = f"an integer{_range(lo, hi)} or a list of two"
    elif kind == tuple[int, ...]:
        if isinstance(value, (list, tuple)) and 1 <= len(value) <= MAX_LIST:
            items = tuple(_ranged(_int(v), lo, hi) for v in value)
            parsed = items if _INVALID not in items else _INVALID
        what = f"a list of 1 to {MAX_LIST} integers{_range(lo, hi)}"
    else:  # a field type this reader does not know: a bug in the family's config class
        raise TypeError(f"parse_config cannot read a field typed {hint!r} ({name})")
    if parsed is _INVALID:
        what += " or null" if optional else ""
        raise ModelConfigError(f"{name} must be {what}, got {_show(value)}", field=name)
    return parsed


_INVALID: Any = object()


def _unwrap(hint: Any) -> tuple[bool, Any]:
    """(null allowed, the type without None)."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return len(args) < len(get_args(hint)), args[0] if len(args) == 1 else hint
    return False, hint


def _int(value: Any) -> Any:
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return _INVALID


def _ranged(value: Any, lo: float | None, hi: float | None) -> Any:
    if value is _INVALID or (lo is not None and value < lo) or (hi is not None and value > hi):
        return _INVALID
    return value


def _number(value: Any, lo: float | None, hi: float | None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _INVALID
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        return _INVALID
    return _ranged(number, lo, hi) if math.isfinite(number) else _INVALID


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" from {_num(lo)} to {_num(hi)}"
    if lo is not None:
        return f" >= {_num(lo)}"
    return f" <= {_num(hi)}" if hi is not None else " (finite)"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _show(value: Any) -> str:
    """A short JSON-like rendering of a config value for error messages."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, int):
        return str(value) if abs(value) < 10**18 else f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "..."
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, Mapping):
        return f"an object with {len(value)} keys"
    return type(value).__name__
