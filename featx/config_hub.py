"""Processor configs in folders and on the hub: reading them, saving, pushing, auto-class registration.

`PretrainedIO` holds the folder and hub half of `featx.config.ConfigMixin` (``from_pretrained``,
``save_pretrained``, ``push_to_hub``); `load_config_dict` reads a processor's options from a JSON
file, a folder or a hub id.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError, ModelLoadError
from .hub import HubOptions, resolve_file

__all__ = [
    "PretrainedIO",
    "config_dict_alias",
    "load_config_dict",
    "read_json",
    "PREPROCESSOR_CONFIG",
    "PROCESSOR_CONFIG",
]

PREPROCESSOR_CONFIG = "preprocessor_config.json"
PROCESSOR_CONFIG = "processor_config.json"


def read_json(path: Path) -> dict[str, Any]:
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
        data = read_json(path)
        if nested_key in data and isinstance(data[nested_key], dict):
            data = data[nested_key]
        return data, path
    path = resolve_file(name_or_path, PROCESSOR_CONFIG, options, required=False)
    if path is not None:
        data = read_json(path)
        if isinstance(data.get(nested_key), dict):
            return data[nested_key], path
        raise ConfigError(f"{path} has no {nested_key!r} section")
    raise ModelLoadError(
        f"no {PREPROCESSOR_CONFIG} or {PROCESSOR_CONFIG} found for {os.fspath(name_or_path)!r}"
    )


class PretrainedIO:
    """Loading from and saving to folders and the hub, for `featx.config.ConfigMixin`.

    Relies on the class's ``type_key``, ``nested_key``, ``from_dict`` and ``to_json_file``
    (`ConfigMixin` defines them).
    """

    type_key: ClassVar[str]
    nested_key: ClassVar[str]
    _auto_class: ClassVar[str | None] = None

    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read the options dict; returns it with the kwargs that were not download options."""
        options = HubOptions.pop_from(kwargs)
        data, _ = load_config_dict(pretrained_model_name_or_path, cls.nested_key, options)
        return data, kwargs

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Load from a local folder, a JSON file or a hub id; extra kwargs override options.

        Download options: ``cache_dir``, ``revision``, ``token``, ``local_files_only``,
        ``force_download``, ``subfolder``. ``HF_HUB_OFFLINE=1`` is honoured.
        """
        data, rest = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        return cls.from_dict(data, **rest)  # type: ignore[attr-defined]

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
        self.to_json_file(target)  # type: ignore[attr-defined]
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


def config_dict_alias() -> classmethod:  # type: ignore[type-arg]
    """A classmethod calling ``cls.get_config_dict``: the reference's per-kind names for it
    (``get_feature_extractor_dict``, ``get_image_processor_dict``)."""

    def alias(
        cls: type[PretrainedIO], pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The reference's name of `get_config_dict`."""
        return cls.get_config_dict(pretrained_model_name_or_path, **kwargs)

    return classmethod(alias)
