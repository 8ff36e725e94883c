"""The text jobs on ``--engine ray`` (a local Ray instance): the same rows as the local engine."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as ds
import pytest

from featx.cli import EXIT_FAILED_INPUTS, main

ray = pytest.importorskip("ray")
pytest.importorskip("transformers")

from ..test_ray import ray_local  # noqa: E402,F401 - the module's Ray instance, shared


def run(*args):
    return main([str(a) for a in args])


def _rows(out):
    return {r["path"]: r for r in ds.dataset(out).to_table().to_pylist()}


def _same(local, remote, columns):
    a, b = _rows(local), _rows(remote)
    assert sorted(a) == sorted(b)
    for key in a:
        for column in columns:
            x, y = a[key][column], b[key][column]
            if isinstance(x, list):
                assert np.abs(np.asarray(x) - np.asarray(y)).max() < 1e-6, (key, column)
            else:
                assert x == y, (key, column)


def test_text_file_job_on_ray(ray_local, text_checkpoint, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("a photo of a dog\n\nCafé 😀\n" + "long " * 200 + "\n")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\n")
    for kind in ("clip", "siglip"):
        common = ["embed", "--text-file", lines, "--text-file", tmp_path / "bad.txt", "--model",
                  text_checkpoint(kind), "--dtype", "float32", "--progress", "none"]
        assert run(*common, "--output", tmp_path / f"{kind}-local") == EXIT_FAILED_INPUTS
        assert run(*common, "--output", tmp_path / f"{kind}-ray", "--engine", "ray") == EXIT_FAILED_INPUTS
        _same(tmp_path / f"{kind}-local", tmp_path / f"{kind}-ray", ("embedding", "text", "error"))


def test_classify_on_ray(ray_local, text_checkpoint, tmp_path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)).save(images / f"{i}.png")
    (images / "broken.png").write_bytes(b"nope")
    common = ["classify", images, "--model", text_checkpoint("siglip"), "--labels", "cat,dog,car", "--dtype",
              "float32", "--progress", "none"]
    assert run(*common, "--output", tmp_path / "local") == EXIT_FAILED_INPUTS
    assert run(*common, "--output", tmp_path / "ray", "--engine", "ray") == EXIT_FAILED_INPUTS
    _same(tmp_path / "local", tmp_path / "ray", ("label", "scores", "error"))
