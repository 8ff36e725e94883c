"""``--backend`` on the command line: same rows as torch, recorded in the manifest, part of the
job's identity, shown by ``featx info``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featx.cli import EXIT_OK, EXIT_USAGE, main

from ..engine._helpers import read_rows, write_photos

pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def graph_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEATX_CACHE_DIR", str(tmp_path / "cache"))


def run(*args) -> int:
    return main([str(a) for a in args])


def test_embed_with_onnx_equals_torch(tiny_checkpoint, tmp_path, capsys) -> None:
    model = tiny_checkpoint("vit")
    write_photos(tmp_path / "in", 5)
    assert run("embed", tmp_path / "in", "--model", model, "--output", tmp_path / "torch", "--dtype", "float32") == EXIT_OK
    assert run("embed", tmp_path / "in", "--model", model, "--output", tmp_path / "onnx", "--dtype", "float32",
               "--backend", "onnx") == EXIT_OK
    a, b = read_rows(tmp_path / "torch"), read_rows(tmp_path / "onnx")
    assert a.keys() == b.keys() and len(a) == 5
    for key in a:
        np.testing.assert_allclose(b[key]["embedding"], a[key]["embedding"], atol=1e-4)
    manifest = json.loads((tmp_path / "onnx" / "_featx.json").read_text())
    assert manifest["backend"] == "onnx"
    assert "backend" not in json.loads((tmp_path / "torch" / "_featx.json").read_text())
    capsys.readouterr()
    # another backend into the same folder is another job
    assert run("embed", tmp_path / "in", "--model", model, "--output", tmp_path / "onnx", "--dtype",
               "float32") == EXIT_USAGE
    assert "backend" in capsys.readouterr().err


def test_info_says_which_backend_and_why(tiny_checkpoint, capsys, monkeypatch) -> None:
    from featx.models import loading

    from ..conftest import FAKE_CPUS

    monkeypatch.setattr(loading, "cpu_flags", lambda: FAKE_CPUS["avx2"])
    assert run("info", tiny_checkpoint("vit"), "--backend", "auto", "--json") == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "openvino:float32" and "OpenVINO" in info["dtype_reason"]
    monkeypatch.setattr(loading, "cpu_flags", lambda: FAKE_CPUS["bf16"])
    assert run("info", tiny_checkpoint("vit"), "--backend", "auto", "--json") == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "torch" and info["dtype"] == "bfloat16"


def test_int8_needs_onnx(tiny_checkpoint, tmp_path, capsys) -> None:
    write_photos(tmp_path / "in", 1)
    code = run("embed", tmp_path / "in", "--model", tiny_checkpoint("vit"), "--output", tmp_path / "o", "--dtype", "int8")
    assert code == EXIT_USAGE and "int8 runs on the onnx backend" in capsys.readouterr().err
