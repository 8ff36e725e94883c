"""Which row files may get thumbnails: only under the recorded inputs (.., symlinks, absolute paths)."""

from __future__ import annotations

import os

import pytest

from featx.serve.thumbs import NotAllowed, recorded_roots, resolve_row_file


def test_row_files_must_be_under_the_recorded_inputs(tmp_path):
    inputs, other = tmp_path / "in", tmp_path / "other"
    (inputs / "a").mkdir(parents=True)
    other.mkdir()
    for p in (inputs / "a" / "x.png", other / "y.png", tmp_path / "single.png"):
        p.write_bytes(b"x")
    os.symlink(other / "y.png", inputs / "link.png")
    os.symlink(other, inputs / "dirlink")
    manifest = {"inputs": [{"given": "in", "absolute": str(inputs)}, {"given": "single.png", "absolute": str(tmp_path / "single.png")},
                           {"given": "g/*.png", "absolute": str(tmp_path / "g" / "*.png")},
                           {"given": "@l.txt", "absolute": "@" + str(tmp_path / "l.txt")},
                           {"given": "http://h/x.png", "absolute": "http://h/x.png"}]}
    roots = recorded_roots(manifest)
    assert roots == [inputs, tmp_path / "single.png", tmp_path / "g"]
    assert resolve_row_file("in/a/x.png", str(tmp_path), roots) == inputs / "a" / "x.png"
    assert resolve_row_file(str(inputs / "a" / "x.png"), None, roots) == inputs / "a" / "x.png"
    assert resolve_row_file("single.png", str(tmp_path), roots) == tmp_path / "single.png"
    for path in ("in/../other/y.png", "in/a/../../other/y.png", str(other / "y.png"), "in/link.png",
                 "in/dirlink/y.png", "single.png/../other/y.png", "/etc/passwd", "../../etc/passwd"):
        with pytest.raises(NotAllowed, match="outside"):
            resolve_row_file(path, str(tmp_path), roots)
    for path in ("http://h/x.png", "data:image/png;base64,AAAA", "", "in/a/missing.png", "in/a\x00.png"):
        with pytest.raises(NotAllowed):
            resolve_row_file(path, str(tmp_path), roots)
