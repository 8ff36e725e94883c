"""Finding files of a pretrained processor or model: a local folder, a file, or a hub id.

All hub access goes through `huggingface_hub` here, so offline mode, caching, revisions and
tokens behave as in the rest of the Hugging Face ecosystem. Two additions:

* Before the first download from an endpoint, one quick probe (a HEAD request with a single
  deadline, `FEATX_HUB_TIMEOUT` seconds, default 4) checks that the hub answers at all. When it
  does not, files come from the local cache only (``local_files_only``), so an unreachable hub
  fails in seconds instead of after huggingface_hub's retries with back-off.
* A name that is clearly a path (absolute, ``./x``, ``../x``, ``~/x``, several ``/``) and does not
  exist is reported as a missing local folder, never sent to the hub. ``owner/name`` that is not
  a local folder is a hub id (the error then says both).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DependencyError, ModelLoadError

__all__ = ["HubOptions", "resolve_file", "is_offline", "hub_reachable", "looks_like_local_path",
           "recorded_source", "offline_hint", "HUB_TIMEOUT_ENV"]

HUB_TIMEOUT_ENV = "FEATX_HUB_TIMEOUT"
_DEFAULT_TIMEOUT = 4.0
_PROBE_TTL = 60.0  # seconds a probe result is reused
_probes: dict[str, tuple[float, bool, str]] = {}  # endpoint -> (when, reachable, why)
_probe_lock = threading.Lock()
# owner/name with hub-valid characters; a name without "/" is a legacy canonical id (gpt2)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


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
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network, now or when
    huggingface_hub was imported (it reads the variable once, and then refuses every request)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return True
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def looks_like_local_path(text: str) -> bool:
    """True when ``text`` can only mean a local path (whether or not it exists).

    Absolute paths, ``.``/``..``/``~`` prefixes, more than one ``/``, a backslash separator, a
    file suffix such as ``.json`` or ``.safetensors``, or characters a hub id cannot have. A bare
    ``owner/name`` is ambiguous: it is local only when it exists (see `resolve_file`).
    """
    text = text.strip()
    if not text:
        return True
    if os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1:
        return True
    if os.sep != "/" and os.sep in text or (os.altsep and os.altsep != "/" and os.altsep in text):
        return True
    if text.lower().endswith((".json", ".safetensors")):
        return True
    return not _HUB_ID.match(text) or "--" in text or ".." in text


def recorded_source(name_or_path: str | os.PathLike[str]) -> str:
    """How to record a model or processor source: an existing local path as an absolute path
    (valid from any working directory), a hub id as given."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists() or looks_like_local_path(text):
        return os.path.abspath(path)
    return text


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get(HUB_TIMEOUT_ENV, "") or _DEFAULT_TIMEOUT))
    except ValueError:
        return _DEFAULT_TIMEOUT


def hub_reachable(endpoint: str | None = None, timeout: float | None = None) -> tuple[bool, str]:
    """Whether the hub at ``endpoint`` answers an HTTP request within ``timeout`` seconds, and why not.

    Any HTTP answer counts (the question is the network, not the repository). The request goes
    through huggingface_hub's own session (its proxies and client settings); name resolution,
    connection and answer share one deadline. Results are reused for a minute per endpoint.
    """
    from huggingface_hub import constants, get_session

    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    timeout = _timeout() if timeout is None else timeout
    with _probe_lock:
        cached = _probes.get(endpoint)
        if cached is not None and time.monotonic() - cached[0] < _PROBE_TTL:
            return cached[1], cached[2]
    result: list[tuple[bool, str]] = []

    def probe() -> None:
        try:
            get_session().head(endpoint, timeout=timeout, follow_redirects=False)
            result.append((True, ""))
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            result.append((False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))

    # A thread gives one deadline for everything, DNS included (getaddrinfo has no timeout).
    thread = threading.Thread(target=probe, name="featx-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    reachable, why = result[0] if result else (False, f"no answer within {timeout:g} s")
    with _probe_lock:
        _probes[endpoint] = (time.monotonic(), reachable, why)
    return reachable, why


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
    if looks_like_local_path(repo_id):
        absolute = os.path.abspath(path)
        given = f" (given as {repo_id!r})" if absolute != repo_id else ""
        raise ModelLoadError(f"local folder not found: {absolute}{given}; a hub id has the form owner/name")
    return _download(repo_id, filename, options, required)


def offline_hint(repo_id: str, *, offline: bool = False) -> str:
    """What to do when a hub model cannot be fetched: a local folder (``hf download``), offline mode."""
    local = f"models/{repo_id.rsplit('/', 1)[-1]}"
    folder = (f"Pass a local folder instead: download it where there is network with "
              f"`hf download {repo_id} --local-dir {local}` and use {local}")
    if offline:
        return folder + "; or turn offline mode off (unset HF_HUB_OFFLINE) to download it"
    return (folder + "; if it is already in the Hugging Face cache, set HF_HUB_OFFLINE=1 to skip the "
            "network (with --cache-dir / cache_dir= when the cache is another folder)")


def _not_local(repo_id: str) -> str:
    """For ``owner/name`` that could also have been meant as a relative folder."""
    return f"no folder {repo_id} under {os.getcwd()}; as a hub id, " if "/" in repo_id else ""


def _download(repo_id: str, filename: str, options: HubOptions, required: bool) -> Path | None:
    try:
        import huggingface_hub as hf
        from huggingface_hub import constants
        from huggingface_hub import errors as hf_errors
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a core dependency
        raise DependencyError("huggingface_hub is needed to load from the hub: pip install huggingface_hub") from exc

    offline = options.local_files_only or is_offline()
    unreachable = ""
    if not offline:
        reachable, why = hub_reachable()
        if not reachable:
            unreachable = why
    try:
        found = hf.hf_hub_download(
            repo_id,
            filename,
            subfolder=options.subfolder or None,
            revision=options.revision,
            cache_dir=options.cache_dir,
            token=options.token,
            local_files_only=offline or bool(unreachable),
            force_download=options.force_download,
        )
        return Path(found)
    except hf_errors.LocalEntryNotFoundError as exc:
        # Offline mode, an unreachable hub, or a network error during the download.
        if not required and offline:
            return None
        cache = options.cache_dir or constants.HF_HUB_CACHE
        if offline:
            why = "offline mode is on (HF_HUB_OFFLINE / local_files_only)"
        elif unreachable:
            why = f"the hub ({constants.ENDPOINT}) cannot be reached ({unreachable})"
        else:
            why = f"the hub ({constants.ENDPOINT}) could not be reached"
        raise ModelLoadError(
            f"cannot get {filename} of {repo_id!r}: {_not_local(repo_id)}{why} and it is not in the "
            f"Hugging Face cache ({cache}). {offline_hint(repo_id, offline=offline)}."
        ) from exc
    except hf_errors.EntryNotFoundError:
        if required:
            raise ModelLoadError(f"{filename} not found in the hub repository {repo_id!r}") from None
        return None
    except hf_errors.RepositoryNotFoundError as exc:
        raise ModelLoadError(
            f"{repo_id!r} is not a local folder (none under {os.getcwd()}) and the hub has no repository "
            "of that name (or it is private: pass token=...)"
        ) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise ModelLoadError(f"revision {options.revision!r} not found in {repo_id!r}") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot get {filename} of {repo_id!r}: {exc}") from exc
