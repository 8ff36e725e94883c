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
import tempfile
import warnings
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError, InputError, ModelLoadError
from .hub import HubOptions, resolve_file

__all__ = [
    "ConfigMixin",
    "FeatureExtractionMixin",
    "ImageProcessingMixin",
    "load_config_dict",
    "PREPROCESSOR_CONFIG",
    "PROCESSOR_CONFIG",
]

PREPROCESSOR_CONFIG = "preprocessor_config.json"
PROCESSOR_CONFIG = "processor_config.json"
_TYPE_KEYS = ("feature_extractor_type", "image_processor_type")

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


class ConfigMixin(metaclass=_ConfigMeta):
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
    _auto_class: ClassVar[str | None] = None

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
        return cls.from_dict(_read_json(Path(json_file)))  # type: ignore[return-value]

    # ---- folders and the hub -------------------------------------------------------------
    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read the options dict; returns it with the kwargs that were not download options."""
        options = HubOptions.pop_from(kwargs)
        data, _ = load_config_dict(pretrained_model_name_or_path, cls.nested_key, options)
        return data, kwargs

    @classmethod
    def from_pretrained(cls: type[T], pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Load from a local folder, a JSON file or a hub id; extra kwargs override options.

        Download options: ``cache_dir``, ``revision``, ``token``, ``local_files_only``,
        ``force_download``, ``subfolder``. ``HF_HUB_OFFLINE=1`` is honoured.
        """
        data, rest = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        return cls.from_dict(data, **rest)

    def save_pretrained(
        self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any
    ) -> list[str]:
        """Write ``preprocessor_config.json`` into ``save_directory`` (created if needed).

        With ``push_to_hub=True`` the written files are then uploaded to ``repo_id`` (default: the
        folder's name) with ``token``, ``private``, ``commit_message``, ``commit_description``,
        ``create_pr`` and ``revision``, through ``huggingface_hub``.
        """
        from . import push

        folder = Path(save_directory)
        if folder.is_file():
            raise ConfigError(f"save_pretrained needs a folder, but {folder} is a file")
        upload = push.split_push_options(save_directory, kwargs) if push_to_hub else None
        if upload is not None:
            private = upload.pop("private", None)
            upload["repo_id"] = push.create_repo(upload["repo_id"], token=upload.get("token"), private=private)
        folder.mkdir(parents=True, exist_ok=True)
        written = push.save_custom_code(self, folder) if self._auto_class is not None else []
        target = folder / PREPROCESSOR_CONFIG
        self.to_json_file(target)
        written.append(target)
        if upload is not None:
            push.upload_files(self, folder, upload.pop("repo_id"), [p.name for p in written], **upload)
        return [str(target)]

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Save into a temporary folder and upload it to ``repo_id`` (created if needed)."""
        from . import push

        token = kwargs.pop("use_auth_token", token)
        kwargs.pop("max_shard_size", None)
        kwargs.pop("safe_serialization", None)
        if kwargs:
            raise ConfigError(f"push_to_hub got unknown arguments {sorted(kwargs)}")
        repo_id = push.create_repo(repo_id, token=token, private=private)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return push.upload_files(
                self, tmp, repo_id, None, token=token, commit_message=commit_message,
                commit_description=commit_description, create_pr=create_pr, revision=revision,
            )

    @classmethod
    def register_for_auto_class(cls, auto_class: str | type | None = None) -> None:
        """Register this (custom) class with a transformers auto class name for saving.

        ``save_pretrained`` then writes ``auto_map`` and copies the class's module, so
        ``transformers``' ``AutoX.from_pretrained(..., trust_remote_code=True)`` can load it.
        """
        from .push import AUTO_CLASSES

        if auto_class is None:
            auto_class = "AutoFeatureExtractor" if cls.type_key == "feature_extractor_type" else "AutoImageProcessor"
        name = auto_class if isinstance(auto_class, str) else getattr(auto_class, "__name__", repr(auto_class))
        if name not in AUTO_CLASSES:
            raise ConfigError(f"{name} is not a valid auto class; use one of {', '.join(AUTO_CLASSES)}")
        cls._auto_class = name

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


class FeatureExtractionMixin(ConfigMixin):
    """The reference's base of audio feature extractors: save/load under ``feature_extractor_type``."""

    type_key: ClassVar[str] = "feature_extractor_type"
    nested_key: ClassVar[str] = "feature_extractor"

    @classmethod
    def get_feature_extractor_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The reference's name of `get_config_dict`."""
        return cls.get_config_dict(pretrained_model_name_or_path, **kwargs)


class ImageProcessingMixin(ConfigMixin):
    """The reference's base of image processors: save/load under ``image_processor_type``."""

    type_key: ClassVar[str] = "image_processor_type"
    nested_key: ClassVar[str] = "image_processor"

    @classmethod
    def get_image_processor_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The reference's name of `get_config_dict`."""
        return cls.get_config_dict(pretrained_model_name_or_path, **kwargs)

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
