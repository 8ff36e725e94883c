"""Uploading a saved processor to the Hugging Face Hub, and ``register_for_auto_class`` support.

Follows ``transformers.utils.hub.PushToHubMixin``: ``save_pretrained(folder, push_to_hub=True)``
creates the repository (``exist_ok=True``; ``repo_id`` defaults to the folder's name), writes the
files and uploads the ones it wrote in one commit. Every call goes through
``huggingface_hub.HfApi``, looked up at call time so tests can replace it.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from .errors import ConfigError, DependencyError

__all__ = [
    "AUTO_CLASSES",
    "PUSH_OPTIONS",
    "hub_api",
    "commit_message_for",
    "split_push_options",
    "create_repo",
    "upload_files",
    "save_custom_code",
]

# The auto classes a processor can be registered with (transformers' names).
AUTO_CLASSES = ("AutoImageProcessor", "AutoFeatureExtractor", "AutoProcessor", "AutoVideoProcessor")
# Keyword arguments save_pretrained(push_to_hub=True) understands.
PUSH_OPTIONS = ("repo_id", "token", "private", "commit_message", "commit_description", "create_pr", "revision")


def hub_api() -> Any:
    """A ``huggingface_hub.HfApi`` tagged with featx's name and version."""
    try:
        import huggingface_hub
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DependencyError("huggingface_hub is needed to push to the hub: pip install huggingface_hub") from exc
    from . import __version__

    return huggingface_hub.HfApi(library_name="featx", library_version=__version__)


def commit_message_for(obj: object) -> str:
    """The reference's default commit message for an object of this class."""
    name = type(obj).__name__
    for part, message in (
        ("Model", "Upload model"),
        ("Config", "Upload config"),
        ("Tokenizer", "Upload tokenizer"),
        ("FeatureExtractor", "Upload feature extractor"),
        ("Processor", "Upload processor"),
    ):
        if part in name:
            return message
    return f"Upload {name}"


def split_push_options(save_directory: str | os.PathLike[str], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The push options of a ``save_pretrained`` call; unknown names are a `ConfigError`."""
    options = dict(kwargs)
    if "use_auth_token" in options:  # the old spelling the reference still accepts
        options.setdefault("token", options.pop("use_auth_token"))
    unknown = sorted(set(options) - set(PUSH_OPTIONS))
    if unknown:
        raise ConfigError(
            f"save_pretrained(push_to_hub=True) got unknown arguments {unknown}; it takes {', '.join(PUSH_OPTIONS)}"
        )
    if not options.get("repo_id"):
        options["repo_id"] = Path(os.fspath(save_directory)).name  # the folder's name, as the reference
    if not options["repo_id"]:
        raise ConfigError(f"cannot tell the repository from {os.fspath(save_directory)!r}: pass repo_id=...")
    return options


def create_repo(repo_id: str, *, token: str | bool | None = None, private: bool | None = None) -> str:
    """Create the model repository if needed; returns its full id (``owner/name``)."""
    url = hub_api().create_repo(repo_id, private=private, token=token, exist_ok=True)
    return str(getattr(url, "repo_id", None) or repo_id)


def upload_files(
    obj: object,
    folder: str | os.PathLike[str],
    repo_id: str,
    files: list[str] | None,
    *,
    token: str | bool | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool = False,
    revision: str | None = None,
) -> Any:
    """Upload ``files`` (names relative to ``folder``; None for all of it) in one commit."""
    api = hub_api()
    if revision is not None and not revision.startswith("refs/pr"):
        api.create_branch(repo_id=repo_id, branch=revision, token=token, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=os.fspath(folder),
        allow_patterns=files,
        commit_message=commit_message or commit_message_for(obj),
        commit_description=commit_description,
        token=token,
        create_pr=create_pr,
        revision=revision,
    )


def save_custom_code(obj: Any, folder: Path) -> list[Path]:
    """For a class registered with ``register_for_auto_class``: record ``auto_map`` and copy its module.

    Like ``transformers.dynamic_module_utils.custom_object_save``, nothing happens (but a warning)
    for a class defined in ``__main__``. Modules the class's file imports are not copied.
    """
    cls = type(obj)
    module = sys.modules.get(cls.__module__)
    source = getattr(module, "__file__", None)
    if cls.__module__ == "__main__" or not source:
        warnings.warn(
            f"cannot save the code of {cls.__name__} in {folder}: it is defined in {cls.__module__}; put it in "
            "a module of its own so it can be shared",
            UserWarning,
            stacklevel=3,
        )
        return []
    auto_map = dict(getattr(obj, "auto_map", None) or {})
    auto_map[obj._auto_class] = f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
    obj.auto_map = auto_map
    target = folder / Path(source).name
    shutil.copyfile(source, target)
    return [target]
