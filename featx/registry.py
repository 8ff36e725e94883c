"""One registry from config type names to featx classes, and the Auto* loaders built on it."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ConfigError
from .hub import HubOptions, resolve_file

__all__ = [
    "register",
    "lookup",
    "supported",
    "processor_for_model_type",
    "AutoImageProcessor",
    "AutoFeatureExtractor",
    "AutoProcessor",
]

C = TypeVar("C", bound=type)

KINDS = ("image_processor", "feature_extractor")
_REGISTRY: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}
# The modules whose import fills each kind; imported on first lookup so `import featx` stays light.
_PROVIDERS: dict[str, tuple[str, ...]] = {
    "image_processor": ("featx.image.processors", "featx.image.fuyu", "featx.image.llava_next"),
    "feature_extractor": ("featx.audio.extractors",),
}


def register(kind: str, *names: str) -> Callable[[C], C]:
    """Class decorator: register a class under its own name and ``names``; duplicates are errors."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")

    def decorate(cls: C) -> C:
        table = _REGISTRY[kind]
        for name in (cls.__name__, *names):
            if name in table and table[name] is not cls:
                raise ConfigError(
                    f"{kind} {name!r} is registered twice: {table[name].__qualname__} and {cls.__qualname__}"
                )
            table[name] = cls
        return cls

    return decorate


def _load_providers(kind: str) -> None:
    for module in _PROVIDERS[kind]:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real import error inside the module, not a missing module
                raise


def supported(kind: str) -> list[str]:
    """The registered names of one kind, sorted."""
    _load_providers(kind)
    return sorted(_REGISTRY[kind])


def lookup(kind: str, name: str) -> Any:
    """The class registered as ``name``; an error lists the supported names."""
    _load_providers(kind)
    table = _REGISTRY[kind]
    if name in table:
        return table[name]
    for suffix in ("Fast", "Pil"):  # transformers' backend variants share our single class
        if name.endswith(suffix) and name[: -len(suffix)] in table:
            return table[name[: -len(suffix)]]
    label = kind.replace("_", " ")
    raise ConfigError(f"unsupported {label} {name!r}; featx supports: {', '.join(sorted(table))}")


def processor_for_model_type(model_type: str) -> str:
    """The processor class name for a ``config.json`` model_type (its family says)."""
    from .families import family_for

    return family_for(model_type).processor


def _read_model_type(name_or_path: str | os.PathLike[str], options: HubOptions) -> str | None:
    import json

    path = resolve_file(name_or_path, "config.json", options, required=False)
    if path is None or path.name != "config.json":
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh).get("model_type")


class _Auto:
    kind: str = ""
    nested_key: str = ""

    @classmethod
    def class_name_for(cls, data: dict[str, Any], name_or_path: str | os.PathLike[str], options: HubOptions) -> str:
        for key in ("image_processor_type", "feature_extractor_type"):
            name = data.get(key)
            if isinstance(name, str) and name:
                if cls.kind == "image_processor":
                    name = name.replace("FeatureExtractor", "ImageProcessor")
                return name
        model_type = _read_model_type(name_or_path, options)
        if model_type is None:
            raise ConfigError(
                f"cannot tell which processor {os.fspath(name_or_path)!r} needs: its config has no "
                "image_processor_type/feature_extractor_type and there is no config.json with a model_type"
            )
        return processor_for_model_type(model_type)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Pick the class from the saved type name (or config.json's model_type) and load it."""
        from .config import load_config_dict

        options = HubOptions.pop_from(kwargs)
        data, _ = load_config_dict(name_or_path, cls.nested_key, options)
        target = lookup(cls.kind, cls.class_name_for(data, name_or_path, options))
        return target.from_dict(data, **kwargs)


class AutoImageProcessor(_Auto):
    """``AutoImageProcessor.from_pretrained(x)``: the right image processor for a checkpoint."""

    kind = "image_processor"
    nested_key = "image_processor"


class AutoFeatureExtractor(_Auto):
    """``AutoFeatureExtractor.from_pretrained(x)``: the right audio feature extractor."""

    kind = "feature_extractor"
    nested_key = "feature_extractor"


class AutoProcessor:
    """Loads whichever preprocessor a checkpoint has: an image processor or an audio extractor."""

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike[str], **kwargs: Any) -> Any:
        from .config import load_config_dict

        options = HubOptions.pop_from(dict(kwargs))
        data, _ = load_config_dict(name_or_path, "image_processor", options)
        if "feature_extractor_type" in data and "ImageProcessor" not in str(data.get("image_processor_type", "")):
            name = str(data["feature_extractor_type"])
            if not name.endswith("ImageProcessor") and "FeatureExtractor" in name and name in supported("feature_extractor"):
                return AutoFeatureExtractor.from_pretrained(name_or_path, **kwargs)
        if data.get("image_processor_type") or data.get("feature_extractor_type"):
            return AutoImageProcessor.from_pretrained(name_or_path, **kwargs)
        model_type = _read_model_type(name_or_path, options)
        name = processor_for_model_type(model_type or "")
        auto = AutoFeatureExtractor if name.endswith("FeatureExtractor") else AutoImageProcessor
        return auto.from_pretrained(name_or_path, **kwargs)
