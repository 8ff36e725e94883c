"""Saving and loading processor options in the Hugging Face JSON format.

Processors are dataclasses whose fields are their options; `ConfigMixin` adds
``from_pretrained`` / ``save_pretrained`` / ``to_dict`` / ``from_dict`` so a folder saved by featx
loads in ``transformers`` with the same options, and the reverse. As in the reference, keyword
arguments and config keys that are not options are kept as attributes and written back on save.
`FeatureExtractionMixin` and `ImageProcessingMixin` carry the reference's names.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import inspect
import json
import os
import warnings
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .config_hub import (
    PREPROCESSOR_CONFIG,
    PROCESSOR_CONFIG,
    PretrainedIO,
    config_dict_alias,
    load_config_dict,
    read_json,
)
from .errors import ConfigError, InputError

__all__ = [
    "ConfigMixin",
    "FeatureExtractionMixin",
    "ImageProcessingMixin",
    "load_config_dict",
    "PREPROCESSOR_CONFIG",
    "PROCESSOR_CONFIG",
]

_TYPE_KEYS = ("feature_extractor_type", "image_processor_type")

T = TypeVar("T", bound="ConfigMixin")


def to_jsonable(value: Any) -> Any:
    """The JSON form of an option value: tuples become lists, enums their values, arrays lists."""
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)  # PILImageResampling.BICUBIC -> 3, as the reference writes
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # NumPy scalars and arrays
        return value.tolist()
    return value


# ---- keeping keyword arguments that are not options ----------------------------------------------
def _init_names(cls: type) -> frozenset[str] | None:
    """The keyword names ``cls.__init__`` takes; None when it takes ``**kwargs`` itself.

    Cached per class against the ``__init__`` it was computed for, so a dataclass decorator that
    replaces ``__init__`` after the class is created (every subclass level) is picked up.
    """
    init = cls.__init__  # type: ignore[misc]
    cached = cls.__dict__.get("_featx_init_names")
    if cached is not None and cached[0] is init:
        return cached[1]
    params = list(inspect.signature(init).parameters.values())[1:]
    names: frozenset[str] | None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names = None
    else:
        names = frozenset(p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL)
    type.__setattr__(cls, "_featx_init_names", (init, names))
    return names


class _ConfigMeta(type):
    """Splits keyword arguments the constructor does not take off into kept extra options."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        names = _init_names(cls) if kwargs else None
        if names is None:
            return super().__call__(*args, **kwargs)
        extras = {k: kwargs.pop(k) for k in [k for k in kwargs if k not in names]}
        obj = super().__call__(*args, **kwargs)
        if extras:
            obj._keep_extras(extras)
        return obj


class _ExtraOptions(MutableMapping[str, Any]):
    """Live view of a processor's kept non-option attributes (``processor.extra_options``)."""

    __slots__ = ("_owner",)

    def __init__(self, owner: ConfigMixin) -> None:
        self._owner = owner

    def __getitem__(self, key: str) -> Any:
        if key not in self._owner._extra_names():
            raise KeyError(key)
        return self._owner.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._owner.option_names():
            raise ConfigError(f"{key!r} is an option of {type(self._owner).__name__}; set it as an attribute")
        self._owner._keep_extras({key: value}, drop=False)

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError for names that are not extras
        delattr(self._owner, key)
        self._owner.__dict__.get("_featx_extras", set()).discard(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._owner._extra_names())

    def __len__(self) -> int:
        return len(self._owner._extra_names())

    def __repr__(self) -> str:
        return repr(dict(self))


class ConfigMixin(PretrainedIO, metaclass=_ConfigMeta):
    """Save/load for dataclass processors.

    Subclasses set ``type_key`` (``"image_processor_type"`` or ``"feature_extractor_type"``) and
    ``nested_key``; they may override `normalize_options` to accept legacy spellings. Keyword
    arguments that are not options become attributes (``extra_options``) and are saved, as in the
    reference; ``derived_keys`` names saved keys that are recomputed instead (never kept).
    """

    type_key: ClassVar[str] = "image_processor_type"
    nested_key: ClassVar[str] = "image_processor"
    # Keys the reference writes that are not options of ours and need not be kept.
    dropped_keys: ClassVar[tuple[str, ...]] = ("processor_class", "_processor_class", "auto_map")
    derived_keys: ClassVar[tuple[str, ...]] = ()

    # ---- options and kept extras -----------------------------------------------------------
    @classmethod
    def option_names(cls) -> list[str]:
        """The names of the options (dataclass fields) this processor takes."""
        if dataclasses.is_dataclass(cls):
            return [f.name for f in dataclasses.fields(cls) if f.init]
        return sorted(_init_names(cls) or ())

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Turn legacy or loose spellings into the canonical form; the default keeps them."""
        return options

    @property
    def extra_options(self) -> MutableMapping[str, Any]:
        """Kept keys that are not options (attributes too); written back on save."""
        return _ExtraOptions(self)

    def _extra_names(self) -> list[str]:
        options = set(self.option_names())
        tracked = self.__dict__.get("_featx_extras", ())
        cls = type(self)
        return [
            name
            for name in self.__dict__
            if name not in options
            and (not name.startswith("_") or name in tracked)
            and not isinstance(getattr(cls, name, None), (property, functools.cached_property))
        ]

    def _keep_extras(self, extras: dict[str, Any], drop: bool = True) -> None:
        """Set non-option keys as attributes; type names, dropped and derived keys are skipped."""
        skip = {self.type_key, *_TYPE_KEYS, *self.dropped_keys, *self.derived_keys} if drop else set()
        tracked = self.__dict__.setdefault("_featx_extras", set())
        for key, value in extras.items():
            if key in skip:
                continue
            if not isinstance(key, str):
                raise ConfigError(f"option names must be strings, not {key!r}")
            try:
                setattr(self, key, value)
            except AttributeError as exc:
                raise ConfigError(
                    f"{type(self).__name__} cannot keep {key!r}: it is a read-only attribute derived from the options"
                ) from exc
            tracked.add(key)

    # ---- dict conversion -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Deep copies of all options and kept extras, as stored, plus the type name."""
        out: dict[str, Any] = {name: copy.deepcopy(getattr(self, name)) for name in self.option_names()}
        for name in self._extra_names():
            out[name] = copy.deepcopy(self.__dict__[name])
        out[self.type_key] = type(self).__name__
        return out

    def to_json_string(self) -> str:
        """`to_dict` as JSON: sorted keys, enums as their values, tuples as lists."""
        return json.dumps(to_jsonable(self.to_dict()), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike[str]) -> None:
        """Write `to_json_string` to a file."""
        Path(json_file_path).write_text(self.to_json_string(), encoding="utf-8")

    @classmethod
    def from_dict(cls: type[T], config: dict[str, Any], **kwargs: Any) -> T | tuple[T, dict[str, Any]]:
        """Build from a dict of options; unknown keys are kept; ``kwargs`` override.

        A keyword argument overrides when it is an option or a key of ``config``; the others are
        unused: returned as ``(processor, unused)`` with ``return_unused_kwargs=True``, else
        ignored with a warning.
        """
        return_unused = bool(kwargs.pop("return_unused_kwargs", False))
        data = {k: v for k, v in config.items() if k not in cls.dropped_keys and k not in cls.derived_keys}
        for key in (cls.type_key, *_TYPE_KEYS):
            data.pop(key, None)
        data = cls.normalize_options(dict(data))
        known = set(cls.option_names())
        overrides = {k: v for k, v in kwargs.items() if k in known or k in data}
        unused = {k: v for k, v in kwargs.items() if k not in overrides}
        data.update(cls.normalize_options(dict(overrides)))
        try:
            obj = cls(**data)
        except ConfigError:
            raise  # the processor's own check already names the option
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid options for {cls.__name__}: {exc}") from exc
        if return_unused:
            return obj, unused
        if unused:
            warnings.warn(f"{cls.__name__} ignored options it does not have: {sorted(unused)}", stacklevel=3)
        return obj

    @classmethod
    def from_json_file(cls: type[T], json_file: str | os.PathLike[str]) -> T:
        """Build from a JSON file written by `to_json_file` (or by transformers)."""
        return cls.from_dict(read_json(Path(json_file)))  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


class FeatureExtractionMixin(ConfigMixin):
    """The reference's base of audio feature extractors: save/load under ``feature_extractor_type``."""

    type_key: ClassVar[str] = "feature_extractor_type"
    nested_key: ClassVar[str] = "feature_extractor"

    get_feature_extractor_dict = config_dict_alias()


class ImageProcessingMixin(ConfigMixin):
    """The reference's base of image processors: save/load under ``image_processor_type``."""

    type_key: ClassVar[str] = "image_processor_type"
    nested_key: ClassVar[str] = "image_processor"

    get_image_processor_dict = config_dict_alias()

    def fetch_images(self, image_url_or_urls: Any) -> Any:
        """Load a URL or path (or a nested list of them) as RGB PIL images; images pass through."""
        if isinstance(image_url_or_urls, (list, tuple)):
            return [self.fetch_images(x) for x in image_url_or_urls]
        if isinstance(image_url_or_urls, (str, os.PathLike)):
            from .image.io import load_image

            return load_image(image_url_or_urls)
        if hasattr(image_url_or_urls, "getbands") or hasattr(image_url_or_urls, "__array__"):
            return image_url_or_urls
        raise InputError(
            f"fetch_images takes a URL, a path, an image or a list of them, not {type(image_url_or_urls).__name__}",
            source="image_url_or_urls",
        )
