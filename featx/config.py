"""Saving and loading processor options in the Hugging Face JSON format.

Processors are dataclasses whose fields are their options; `ConfigMixin` adds
``from_pretrained`` / ``save_pretrained`` / ``to_dict`` / ``from_dict`` so a folder saved by featx
loads in ``transformers`` with the same options, and the reverse. Keys featx does not know are kept
and written back on save.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError, ModelLoadError
from .hub import HubOptions, resolve_file

__all__ = ["ConfigMixin", "load_config_dict", "PREPROCESSOR_CONFIG", "PROCESSOR_CONFIG"]

PREPROCESSOR_CONFIG = "preprocessor_config.json"
PROCESSOR_CONFIG = "processor_config.json"

T = TypeVar("T", bound="ConfigMixin")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def load_config_dict(
    name_or_path: str | os.PathLike[str],
    nested_key: str,
    options: HubOptions | None = None,
) -> tuple[dict[str, Any], Path]:
    """Read a processor's options from a JSON file, a folder or a hub id.

    Looks for ``preprocessor_config.json`` first, then ``processor_config.json`` where the options
    sit under ``nested_key`` (for example ``"image_processor"``).
    """
    options = options or HubOptions()
    path = resolve_file(name_or_path, PREPROCESSOR_CONFIG, options, required=False)
    if path is not None:
        data = _read_json(path)
        if nested_key in data and isinstance(data[nested_key], dict):
            data = data[nested_key]
        return data, path
    path = resolve_file(name_or_path, PROCESSOR_CONFIG, options, required=False)
    if path is not None:
        data = _read_json(path)
        if isinstance(data.get(nested_key), dict):
            return data[nested_key], path
        raise ConfigError(f"{path} has no {nested_key!r} section")
    raise ModelLoadError(
        f"no {PREPROCESSOR_CONFIG} or {PROCESSOR_CONFIG} found for {os.fspath(name_or_path)!r}"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if hasattr(value, "value") and type(value).__module__.startswith("PIL"):
        return int(value.value)  # PIL.Image.Resampling members are saved as ints
    return value


class ConfigMixin:
    """Save/load for dataclass processors.

    Subclasses set ``type_key`` (``"image_processor_type"`` or ``"feature_extractor_type"``) and
    ``nested_key``; they may override `normalize_options` to accept legacy spellings.
    """

    type_key: ClassVar[str] = "image_processor_type"
    nested_key: ClassVar[str] = "image_processor"
    # Keys the reference writes that are not options of ours and need not be kept.
    dropped_keys: ClassVar[tuple[str, ...]] = ("processor_class", "_processor_class", "auto_map")

    # ---- dict conversion -------------------------------------------------------------------
    @classmethod
    def option_names(cls) -> list[str]:
        """The names of the options (dataclass fields) this processor takes."""
        return [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Turn legacy or loose spellings into the canonical form; the default keeps them."""
        return options

    @property
    def extra_options(self) -> dict[str, Any]:
        """Keys read from a config that are not options of this class; written back on save."""
        return self.__dict__.setdefault("_extra_options", {})

    def to_dict(self) -> dict[str, Any]:
        """All options plus the kept unknown keys and the type name, JSON-safe."""
        out: dict[str, Any] = dict(copy.deepcopy(self.extra_options))
        for name in self.option_names():
            out[name] = _jsonable(copy.deepcopy(getattr(self, name)))
        out[self.type_key] = type(self).__name__
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json_string(), encoding="utf-8")

    @classmethod
    def from_dict(cls: type[T], config: dict[str, Any], **kwargs: Any) -> T | tuple[T, dict[str, Any]]:
        """Build from a dict of options; ``kwargs`` override it.

        With ``return_unused_kwargs=True`` returns ``(processor, unused)`` where ``unused`` holds
        the overrides that are not options.
        """
        return_unused = bool(kwargs.pop("return_unused_kwargs", False))
        known = set(cls.option_names())
        data = {k: v for k, v in config.items() if k not in cls.dropped_keys}
        data.pop(cls.type_key, None)
        data.pop("feature_extractor_type", None)
        data.pop("image_processor_type", None)
        data = cls.normalize_options(dict(data))
        overrides = cls.normalize_options({k: v for k, v in kwargs.items() if k in known})
        unused = {k: v for k, v in kwargs.items() if k not in known}
        options = {k: v for k, v in data.items() if k in known}
        options.update(overrides)
        extras = {k: v for k, v in data.items() if k not in known}
        try:
            obj = cls(**options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid options for {cls.__name__}: {exc}") from exc
        obj.extra_options.update(extras)
        if return_unused:
            return obj, unused
        if unused:
            warnings.warn(
                f"{cls.__name__} ignored options it does not have: {sorted(unused)}",
                stacklevel=3,
            )
        return obj

    @classmethod
    def from_json_file(cls: type[T], path: str | os.PathLike[str]) -> T:
        return cls.from_dict(_read_json(Path(path)))  # type: ignore[return-value]

    # ---- folders and the hub -------------------------------------------------------------
    @classmethod
    def get_config_dict(
        cls, name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read the options dict; returns it with the kwargs that were not download options."""
        options = HubOptions.pop_from(kwargs)
        data, _ = load_config_dict(name_or_path, cls.nested_key, options)
        return data, kwargs

    @classmethod
    def from_pretrained(cls: type[T], name_or_path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Load from a local folder, a JSON file or a hub id; extra kwargs override options.

        Download options: ``cache_dir``, ``revision``, ``token``, ``local_files_only``,
        ``force_download``, ``subfolder``. ``HF_HUB_OFFLINE=1`` is honoured.
        """
        data, rest = cls.get_config_dict(name_or_path, **kwargs)
        return cls.from_dict(data, **rest)

    def save_pretrained(self, save_directory: str | os.PathLike[str], **kwargs: Any) -> list[str]:
        """Write ``preprocessor_config.json`` into ``save_directory`` (created if needed)."""
        if kwargs.get("push_to_hub"):
            raise ConfigError("push_to_hub is not supported; save locally and upload with huggingface_hub")
        folder = Path(save_directory)
        if folder.is_file():
            raise ConfigError(f"save_pretrained needs a folder, but {folder} is a file")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / PREPROCESSOR_CONFIG
        self.to_json_file(target)
        return [str(target)]

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"
