"""featx's per-user cache folder, shared by compiled kernels and exported graphs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["CACHE_ENV", "user_cache_root"]

#: set to move every featx cache (kernels, graphs) elsewhere
CACHE_ENV = "FEATX_CACHE_DIR"


def user_cache_root() -> Path:
    """``$FEATX_CACHE_DIR``, else the platform's user cache folder + featx."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "featx" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "featx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "featx"
