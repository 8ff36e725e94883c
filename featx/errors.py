"""Exceptions raised by featx, and the helper that imports optional dependencies."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "FeatxError",
    "InputError",
    "ConfigError",
    "ModelLoadError",
    "DependencyError",
    "require",
    "install_hint",
    "error_text",
]


class FeatxError(Exception):
    """Base class of every error featx raises on purpose."""


class InputError(FeatxError, ValueError):
    """An input (file, array, argument) is not what was expected.

    ``source`` names the offending input (a path, URL or batch index) so that batch jobs can
    record it next to the row it belongs to.
    """

    def __init__(self, message: str, source: object | None = None) -> None:
        self.source = source
        if source is not None and str(source) not in message:
            message = f"{_short(source)}: {message}"
        super().__init__(message)


class ConfigError(FeatxError, ValueError):
    """A processor or model configuration is invalid, unknown or cannot be found."""


class ModelLoadError(FeatxError, OSError):
    """A checkpoint cannot be loaded (missing files, unsafe format, unreachable hub)."""


class DependencyError(FeatxError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def _short(source: object, limit: int = 200) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    text = str(source)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def install_hint(extra: str) -> str:
    """How to install an extra, from a package index and from a source checkout."""
    return f"pip install 'featx[{extra}]' (or, from a checkout, pip install -e '.[{extra}]')"


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import an optional dependency, or raise `DependencyError` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise DependencyError(
            f"{module!r} is needed{what} but is not installed; "
            f"install it with: {install_hint(extra)}"
        ) from exc


def error_text(exc: BaseException) -> str:
    """The text an input's error row carries: a featx error's message as is, others with their type."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, FeatxError) else f"{type(exc).__name__}: {text}"
