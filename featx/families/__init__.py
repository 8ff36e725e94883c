"""The registry of model families: each module in this package registers its `FamilySpec`s.

Adding a family is one module here (plus its encoder under `featx.models` when featx runs it
natively); every module of this package is imported on first lookup, so no list names them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ..errors import ConfigError
from .spec import AudioFamily, FamilySpec, ImageFamily, TextFamily, audio_input, check_kind, describe_source

__all__ = [
    "FamilySpec",
    "ImageFamily",
    "AudioFamily",
    "TextFamily",
    "register_family",
    "text_family_for",
    "family_for",
    "family_of_model",
    "modality_family",
    "families",
    "model_types",
    "encoder_types",
    "audio_input",
    "describe_source",
]

_BY_TYPE: dict[str, FamilySpec] = {}
_ALL: list[FamilySpec] = []
_loaded = False


def register_family(spec: FamilySpec) -> FamilySpec:
    """Register ``spec`` under each of its model types; a type claimed twice is an error."""
    check_kind(spec)
    for model_type in spec.model_types:
        other = _BY_TYPE.get(model_type)
        if other is not None and other is not spec:
            raise ConfigError(f"model_type {model_type!r} is claimed by families {other.name!r} and {spec.name!r}")
    for model_type in spec.model_types:
        _BY_TYPE[model_type] = spec
    _ALL.append(spec)
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if info.name != "spec":
            importlib.import_module(f"{__name__}.{info.name}")


def families() -> list[FamilySpec]:
    """Every registered family."""
    _load()
    return list(_ALL)


def model_types() -> list[str]:
    """Every ``config.json`` model type featx knows (natively run or preprocessed only), sorted."""
    _load()
    return sorted(_BY_TYPE)


def encoder_types() -> list[str]:
    """The model types featx runs natively, sorted."""
    _load()
    return sorted(t for t, spec in _BY_TYPE.items() if t in spec.encoders)


def family_for(model_type: Any) -> FamilySpec:
    """The family of a ``config.json`` model type; the error lists the known ones."""
    _load()
    spec = _BY_TYPE.get(model_type) if isinstance(model_type, str) else None
    if spec is None:
        raise ConfigError(f"unsupported model_type {model_type!r}; featx supports: {', '.join(model_types())}")
    return spec


def text_family_for(model_type: Any, source: str = "this checkpoint") -> TextFamily:
    """The text tower's family of a ``config.json`` model type (a full image-text checkpoint or a
    text-only one); `ConfigError` "... has no text tower" for any other."""
    spec = family_for(model_type)
    tower = spec.text_tower(model_type)
    if tower is None:
        with_text = [t for t in model_types() if family_for(t).text_tower(t) is not None]
        raise ConfigError(f"{source} (model_type {model_type!r}) has no text tower; text needs a checkpoint "
                          f"with one (model_type {', '.join(with_text)})")
    return tower


# Models without a family of their own (the transformers fallback) are prepared like any of
# their modality: one image, or audio in 30 s windows with the processor's defaults.
_GENERIC = {
    "image": ImageFamily(name="image", model_types=(), processor=""),
    "audio": AudioFamily(name="audio", model_types=(), processor=""),
}


def modality_family(modality: str) -> FamilySpec:
    """The generic spec of ``"image"`` or ``"audio"``: how an input of that modality is prepared
    when no family says more (a processor alone, the transformers fallback)."""
    return _GENERIC[modality]


def family_of_model(model: Any) -> FamilySpec:
    """The spec a loaded model runs by: ``model.featx_family``, else its config's model type's
    family (for the transformers fallback), else the generic spec of its modality."""
    spec = getattr(model, "featx_family", None)
    if spec is not None:
        return spec  # type: ignore[no-any-return]
    model_type = getattr(model, "config", {}).get("model_type") if isinstance(getattr(model, "config", None), dict) else None
    _load()
    known = _BY_TYPE.get(model_type) if isinstance(model_type, str) else None
    if known is not None and known.modality == getattr(model, "modality", known.modality):
        return known
    return _GENERIC[getattr(model, "modality", "image")]
