"""Search/index hardening: a folder of error rows only is an error (exit 1), the index answers k rows
when the folder has them (HNSW misses rows among near-duplicates), and a read-only OUT is named."""

from __future__ import annotations

import errno
import os

import numpy as np
import pyarrow as pa
import pytest

from featx.cli import EXIT_ERROR, EXIT_OK, main
from featx.engine import lock
from featx.engine.state import prepare_output
from featx.engine.writer import ShardWriter
from featx.search import INDEX_FILE, exact_search, index_search

pytest.importorskip("usearch")


def _folder(out, vectors, errors=()):
    """An embeddings folder written like `featx embed` writes it; rows in ``errors`` are error rows."""
    dim = vectors.shape[1]
    manifest = {"kind": "embeddings", "model": "synthetic", "pool": "cls", "normalize": False, "dim": dim}
    prepare_output(out, manifest, overwrite=False)
    schema = pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), dim)), ("error", pa.string())])
    writer = ShardWriter(out, schema, metadata=manifest, shard_size=200)
    for i, v in enumerate(vectors):
        row = {"path": f"v{i}", "embedding": None, "error": "bad file"} if i in errors else {"path": f"v{i}",
                                                                                             "embedding": v}
        writer.add_rows([row])
    writer.close()


def test_a_folder_of_error_rows_only_says_so_and_exits_1(tmp_path, capsys):
    out = tmp_path / "out"
    _folder(out, np.zeros((3, 4), np.float32), errors={0, 1, 2})
    assert main(["search", str(out), "v0"]) == EXIT_ERROR
    assert f"{out} has no embeddings: all 3 rows are errors" in capsys.readouterr().err
    assert main(["index", str(out)]) == EXIT_ERROR
    assert "all 3 rows are errors" in capsys.readouterr().err
    empty = tmp_path / "empty"
    prepare_output(empty, {"kind": "embeddings", "model": "m", "pool": "cls", "dim": 4}, overwrite=False)
    assert main(["search", str(empty), "v0"]) == EXIT_ERROR
    assert "no rows were written yet" in capsys.readouterr().err


def test_the_index_returns_k_rows_when_the_folder_has_them(tmp_path, capsys):
    n, dim = 500, 8
    rng = np.random.default_rng(0)
    vectors = np.ones((n, dim), np.float32) + 1e-4 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors[: n // 2] *= -1  # two groups of near-duplicates: HNSW reaches only part of them
    out = tmp_path / "out"
    _folder(out, vectors, errors={3})
    assert main(["index", str(out)]) == EXIT_OK
    queries = vectors[[0, 1, 400]]
    for k in (n - 1, n - 2, 50):
        hits = index_search(out, queries, k)
        assert [len(h) for h in hits] == [k, k, k]
        exact = exact_search(out, queries, k)
        for got, want in zip(hits, exact):
            assert len({h.path for h in got}) == k and "v3" not in {h.path for h in got}
            np.testing.assert_allclose(sorted(h.score for h in got), sorted(h.score for h in want), atol=1e-4)
    assert len(index_search(out, queries[:1], n + 10)[0]) == n - 1  # no more than there are
    assert main(["search", str(out), "v0", "-k", str(n - 1), "--index", "--json"]) == EXIT_OK
    assert capsys.readouterr().out.count('"path"') == n - 1


def _deny_writes(monkeypatch, out):
    """What a read-only OUT does to featx (chmod cannot stop root, who runs the tests)."""
    real = os.open

    def no_write(path, flags, *args, **kwargs):
        if os.path.dirname(os.fspath(path)) == str(out) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(lock.os, "open", no_write)


def test_index_on_a_read_only_folder_names_it(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    _folder(out, np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32))
    with monkeypatch.context() as m:
        _deny_writes(m, out)
        assert main(["index", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"cannot write to {out} (read-only file system)" in err and "Traceback" not in err
    import usearch.index

    def refuse(self, path, *args, **kwargs):  # the lock file exists and is writable; the folder is not
        raise RuntimeError(f"Failed to open {path}: Read-only file system")

    monkeypatch.setattr(usearch.index.Index, "save", refuse)
    assert main(["index", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"cannot write the index {out / INDEX_FILE}" in err and "Read-only file system" in err
    assert not list(out.glob("_tmp-*"))
    if os.geteuid() != 0:  # a real read-only folder where the file system enforces it
        os.chmod(out, 0o555)
        try:
            assert main(["index", str(out)]) == EXIT_ERROR
            assert "cannot write" in capsys.readouterr().err
        finally:
            os.chmod(out, 0o755)
