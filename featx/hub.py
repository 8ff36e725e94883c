"""Finding files of a pretrained processor or model: a local folder, a file, or a hub id.

All hub access goes through `huggingface_hub` here, so offline mode, caching, revisions and
tokens behave as in the rest of the Hugging Face ecosystem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DependencyError, ModelLoadError

__all__ = ["HubOptions", "resolve_file", "is_offline"]

# Network reads must not hang a batch job forever.
os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")


@dataclass
class HubOptions:
    """The download options `from_pretrained` accepts, as the reference names them."""

    cache_dir: str | os.PathLike[str] | None = None
    revision: str | None = None
    token: str | bool | None = None
    local_files_only: bool = False
    force_download: bool = False
    subfolder: str = ""

    @classmethod
    def pop_from(cls, kwargs: dict[str, object]) -> HubOptions:
        """Take the hub options out of a kwargs dict, leaving the rest."""
        opts = cls()
        for name in ("cache_dir", "revision", "token", "local_files_only", "force_download", "subfolder"):
            if name in kwargs:
                setattr(opts, name, kwargs.pop(name))
        if "use_auth_token" in kwargs:  # old spelling the reference still accepts
            opts.token = kwargs.pop("use_auth_token")  # type: ignore[assignment]
        for ignored in ("proxies", "resume_download", "trust_remote_code", "_from_auto", "_from_pipeline"):
            kwargs.pop(ignored, None)
        return opts


def is_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return True
    return False


def resolve_file(
    name_or_path: str | os.PathLike[str],
    filename: str,
    options: HubOptions | None = None,
    *,
    required: bool = True,
) -> Path | None:
    """Return the local path of ``filename`` for a folder, a file path or a hub id.

    A path to an existing file is returned as is, whatever ``filename`` says. A missing optional
    file (``required=False``) gives None; a missing required one raises `ModelLoadError`.
    """
    options = options or HubOptions()
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidate = path / options.subfolder / filename if options.subfolder else path / filename
        if candidate.is_file():
            return candidate
        if required:
            raise ModelLoadError(f"{filename} not found in the folder {path}")
        return None
    repo_id = os.fspath(name_or_path)
    if _looks_local(repo_id):
        raise ModelLoadError(
            f"{repo_id} is neither an existing file or folder nor a valid hub id (owner/name)"
        )
    return _download(repo_id, filename, options, required)


def _looks_local(text: str) -> bool:
    return (
        text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or os.sep in text.replace("/", "")
        or text.endswith(".json")
        or not text.strip()
    )


def _download(repo_id: str, filename: str, options: HubOptions, required: bool) -> Path | None:
    try:
        import huggingface_hub as hf
        from huggingface_hub import errors as hf_errors
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a core dependency
        raise DependencyError("huggingface_hub is needed to load from the hub: pip install huggingface_hub") from exc

    local_only = options.local_files_only or is_offline()
    try:
        found = hf.hf_hub_download(
            repo_id,
            filename,
            subfolder=options.subfolder or None,
            revision=options.revision,
            cache_dir=options.cache_dir,
            token=options.token,
            local_files_only=local_only,
            force_download=options.force_download,
        )
        return Path(found)
    except hf_errors.LocalEntryNotFoundError as exc:
        # Raised both in offline mode and when the hub cannot be reached.
        if not required and local_only:
            return None
        why = (
            "offline mode is on (HF_HUB_OFFLINE/local_files_only) and it is not in the cache"
            if local_only
            else "the hub could not be reached and it is not in the cache"
        )
        raise ModelLoadError(
            f"cannot get {filename} of {repo_id!r}: {why}. Pass a local folder, or download it "
            f"first (huggingface-cli download {repo_id}) and set cache_dir if needed"
        ) from exc
    except hf_errors.EntryNotFoundError:
        if required:
            raise ModelLoadError(f"{filename} not found in the hub repository {repo_id!r}") from None
        return None
    except hf_errors.RepositoryNotFoundError as exc:
        raise ModelLoadError(
            f"{repo_id!r} is not a local folder and the hub has no repository of that name "
            "(or it is private: pass token=...)"
        ) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise ModelLoadError(f"revision {options.revision!r} not found in {repo_id!r}") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot get {filename} of {repo_id!r}: {exc}") from exc
