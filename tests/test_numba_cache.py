"""The resize kernels' compile cache: a per-user folder, one line on stderr only when compiling."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from featx.image import _resample_numba as kernels  # noqa: E402

from .engine._helpers import REPO  # noqa: E402

# Compiles one small kernel (about a second), in a fresh process as a first run would.
_SCRIPT = """
import numpy as np
from featx.image import _resample_numba as k
out = k.rgbx_to_rgb(np.arange(16, dtype=np.uint8).reshape(2, 8), np.empty((2, 6), np.uint8))
assert out.tolist() == [[0, 1, 2, 4, 5, 6], [8, 9, 10, 12, 13, 14]]
"""


def _first_run(cache_root, **env):
    env = dict(os.environ, FEATX_CACHE_DIR=str(cache_root), PYTHONPATH=str(REPO), **env)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_kernels_are_cached_in_the_per_user_folder(tmp_path):
    err = _first_run(tmp_path)
    assert err.count("featx: compiling the image resize kernels") == 1 and str(tmp_path) in err
    files = list((tmp_path / "numba").rglob("*rgbx_to_rgb*"))
    assert any(f.suffix == ".nbi" for f in files) and any(f.suffix == ".nbc" for f in files)
    # a second process loads them: no compilation, no line
    assert "compiling" not in _first_run(tmp_path)


def test_cache_folder_defaults_to_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("FEATX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert kernels.cache_dir().parent == tmp_path / "featx" / "numba"
    monkeypatch.setenv("FEATX_CACHE_DIR", str(tmp_path / "mine"))
    assert kernels.cache_dir().parent == tmp_path / "mine" / "numba"


def test_an_unwritable_cache_folder_means_no_cache(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    err = _first_run(blocker / "cache")
    assert "not cached: cannot write to" in err
    assert "compiling" in _first_run(blocker / "cache")  # nothing was kept: compiled again


def test_in_process_kernel_uses_the_folder_and_announces_only_compiles(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEATX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_announced", [])

    def double(x):
        return x * 2

    assert kernels._kernel(double)(np.arange(3)).tolist() == [0, 2, 4]
    assert "compiling" in capsys.readouterr().err
    assert list((tmp_path / "numba").rglob("*double*.nbi"))
    monkeypatch.setattr(kernels, "_announced", [])
    assert kernels._kernel(double)(np.arange(3)).tolist() == [0, 2, 4]  # a new dispatcher: from the cache
    assert "compiling" not in capsys.readouterr().err
