"""Input listing hardening: symlink loops end, an unreadable folder is an error row (exit 3), and two
file names never share a row key (in this run's de-duplication and in the resume state)."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from featx.cli import EXIT_FAILED_INPUTS, EXIT_USAGE, main
from featx.engine import inputs as sources
from featx.engine.inputs import count_inputs, extensions_for, iter_inputs, path_key
from featx.engine.state import KeySet, load_done_keys
from featx.engine.writer import ShardWriter

from ._helpers import photo, read_rows

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX symlinks and byte file names")
IMG = extensions_for("image")
CAP = 1000  # a listing that loops would pass this quickly; islice keeps a regression from hanging


def _png(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    photo(seed, (24, 20)).save(path, format="PNG")


def _keys(spec: str) -> list[str]:
    return [i.key for i in itertools.islice(iter_inputs([spec], extensions=IMG), CAP)]


def _embed(*args: object) -> int:
    return main([str(a) for a in ("embed", *args, "--progress", "none", "--dtype", "float32", "--workers", "1")])


@posix_only
def test_symlink_loops_end_and_links_to_files_and_outside_folders_are_followed(tmp_path):
    root = tmp_path / "d"
    _png(root / "a.png")
    _png(root / "sub" / "b.png", 1)
    _png(tmp_path / "sibling" / "s.png", 2)
    os.symlink(".", root / "loop")  # two loops: one to the folder itself, one to its parent
    os.symlink("..", root / "sub" / "up")
    os.symlink("../sibling", root / "ext")  # a folder outside the walk: followed
    os.symlink("../sibling/s.png", root / "link.png")  # a file: followed
    want = [f"{root}/a.png", f"{root}/ext/s.png", f"{root}/link.png", f"{root}/sub/b.png"]
    assert _keys(str(root)) == want
    assert count_inputs([str(root)], extensions=IMG) == 4
    assert sorted(_keys(f"{root}/**/*.png")) == want  # a recursive glob ends too
    assert sorted(_keys(f"{root}/**")) == want
    # a link to a folder the walk reaches anyway is listed once (under the first name in sorted order)
    os.symlink("sub", root / "again")
    assert _keys(str(root)) == [f"{root}/a.png", f"{root}/again/b.png", f"{root}/ext/s.png", f"{root}/link.png"]


def _deny(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make listing ``folder`` fail as chmod 000 would for a non-root user (the tests run as root)."""
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if os.path.abspath(os.fspath(path)) == str(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(sources.os, "scandir", scandir)


def test_an_unreadable_subfolder_is_an_error_row_and_exit_3(tmp_path, monkeypatch, capsys, tiny_checkpoint):
    root = tmp_path / "photos"
    _png(root / "a.png")
    _png(root / "locked" / "hidden_from_us.png", 1)
    _png(root / "z.png", 2)
    _deny(monkeypatch, root / "locked")
    items = list(iter_inputs([str(root)], extensions=IMG))
    assert [(i.key, i.error) for i in items] == [
        (f"{root}/a.png", None), (f"{root}/locked", "cannot list folder: Permission denied"), (f"{root}/z.png", None)]
    out = tmp_path / "out"
    vit = tiny_checkpoint("vit")
    assert _embed(root, "--model", vit, "--output", out) == EXIT_FAILED_INPUTS
    rows = read_rows(out)
    assert rows[f"{root}/locked"]["error"] == "cannot list folder: Permission denied"
    assert rows[f"{root}/locked"]["embedding"] is None
    assert rows[f"{root}/a.png"]["error"] is None and rows[f"{root}/z.png"]["error"] is None
    assert "failed 1" in capsys.readouterr().err
    # the failure is remembered: a rerun writes nothing and still exits 3
    assert _embed(root, "--model", vit, "--output", out) == EXIT_FAILED_INPUTS
    assert len(read_rows(out)) == 3
    # a folder that is the only input and cannot be listed: a usage error that says why
    assert _embed(root / "locked", "--model", vit, "--output", tmp_path / "out2") == EXIT_USAGE
    assert "could not list" in capsys.readouterr().err


def test_path_keys_are_one_to_one_and_plain_paths_are_their_own_key():
    odd = os.fsdecode(b"x\xff.png")  # a name that is not UTF-8 (surrogate-escaped in a str)
    literal = "x\\xff.png"  # a valid name spelled like the escape
    assert path_key("photos/a b/é.png") == "photos/a b/é.png"
    assert path_key("C:\\data\\img.png") == "C:\\data\\img.png"  # backslashes alone change nothing
    assert path_key(odd) == "x\\xff.png"  # unchanged from older featx
    assert path_key(literal) == "x\\\\xff.png"
    assert path_key(os.fsdecode(b"a\\\xfe")) == "a\\\\\\xfe"  # backslash then byte 0xFE
    keys = [path_key(p) for p in (odd, literal, os.fsdecode(b"x\\\\xff.png"), os.fsdecode(b"x\\\xff.png"))]
    assert len(set(keys)) == 4
    seen = KeySet()
    assert all(seen.add(k) for k in keys)


@posix_only
def test_two_names_with_one_old_key_both_get_rows_and_resume(tmp_path, tiny_checkpoint, capsys):
    root = tmp_path / "photos"
    _png(root / "a.png")
    try:
        odd = os.path.join(os.fsencode(root), b"x\xff.png")
        _png(Path(os.fsdecode(odd)), 1)
        (root / "bad\udcfe.png").write_bytes(b"not a png")  # its error message quotes the odd name
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    _png(root / "x\\xff.png", 2)
    out = tmp_path / "out"
    vit = tiny_checkpoint("vit")
    assert _embed(root, "--model", vit, "--output", out) == EXIT_FAILED_INPUTS
    rows = read_rows(out)
    assert sorted(rows) == sorted([f"{root}/a.png", f"{root}/bad\\xfe.png", f"{root}/x\\xff.png",
                                   f"{root}/x\\\\xff.png"])
    assert rows[f"{root}/x\\xff.png"]["error"] is None and rows[f"{root}/x\\\\xff.png"]["error"] is None
    assert not np.allclose(rows[f"{root}/x\\xff.png"]["embedding"], rows[f"{root}/x\\\\xff.png"]["embedding"])
    assert "\\xfe" in rows[f"{root}/bad\\xfe.png"]["error"]
    capsys.readouterr()
    assert _embed(root, "--model", vit, "--output", out) == EXIT_FAILED_INPUTS
    assert "done 0, failed 0, skipped 4" in capsys.readouterr().err
    assert len(read_rows(out)) == 4


def test_an_output_written_with_the_old_keys_still_resumes(tmp_path):
    """Older featx wrote both the byte name x<FF>.png and the literal name x\\xff.png as "x\\xff.png"
    (one of them was dropped as a duplicate): such a row still counts as done for both."""
    schema = pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), 2)), ("error", pa.string())])
    old = {"kind": "embeddings", "model": "m", "dim": 2}  # no "path_keys": written before exact keys
    writer = ShardWriter(tmp_path, schema, metadata=old)
    writer.add_rows([{"path": "d/x\\xff.png", "embedding": np.ones(2, np.float32)}])
    writer.add_rows([{"path": "d/plain.png", "embedding": None, "error": "bad"}])
    writer.close()
    done, failed = load_done_keys(tmp_path)
    odd, literal = path_key(os.fsdecode(b"d/x\xff.png")), path_key("d/x\\xff.png")
    assert odd in done and literal in done and "d/plain.png" in done and "d/plain.png" in failed
    assert len(done) == 3  # and nothing else
    new = dict(old, path_keys=sources.KEY_FORMAT)  # written now: keys are taken as they are
    writer = ShardWriter(tmp_path / "new", schema, metadata=new)
    writer.out.mkdir()
    writer.add_rows([{"path": odd, "embedding": np.ones(2, np.float32)}])
    writer.close()
    done, _ = load_done_keys(tmp_path / "new")
    assert odd in done and literal not in done
