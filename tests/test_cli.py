"""End-to-end `featx embed` / `features` / `info` runs (in-process) with tiny real checkpoints."""

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from featx.cli import EXIT_FAILED_INPUTS, EXIT_OK, EXIT_USAGE, main
from featx.embedding import Embedder

from .engine._helpers import photo, read_rows, write_bad_files, write_photos


@pytest.fixture(scope="module")
def vit(tiny_checkpoint):
    return str(tiny_checkpoint("vit"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return folder, write_photos(folder, 11) + write_photos(folder / "sub", 3, start=11, fmt="jpg")


def _expected(model, paths, **options):
    emb = Embedder(model, dtype="float32", **options)
    return {p: v for p, v in zip(paths, emb.embed([emb.prepare(p) for p in paths]))}


def run(*args):
    return main([str(a) for a in args])


def test_embed_equals_the_embedder_for_each_file(vit, photos, tmp_path):
    folder, paths = photos
    out = tmp_path / "out"
    rc = run("embed", folder, "--model", vit, "--output", out, "--batch-size", 4, "--workers", 2,
             "--shard-size", 5, "--progress", "none", "--dtype", "float32")
    assert rc == EXIT_OK
    rows = read_rows(out)
    assert sorted(rows) == sorted(paths)
    expected = _expected(vit, paths, pool="cls")
    for path, row in rows.items():
        assert row["error"] is None
        np.testing.assert_allclose(np.asarray(row["embedding"]), expected[path], rtol=1e-5, atol=1e-5)
    assert len(list(out.glob("part-*.parquet"))) == 3  # 14 rows, 5 per shard
    meta = json.loads(pq.read_schema(next(out.glob("part-*.parquet"))).metadata[b"featx"])
    assert meta["model"] == vit and meta["pool"] == "cls" and meta["normalize"] is False
    assert meta["dtype"] == "float32" and meta["featx_version"] and meta["dim"] == 32
    assert ds.dataset(out).schema.field("embedding").type == pa.list_(pa.float32(), 32)


@pytest.mark.parametrize("extra, options", [
    (["--pool", "mean", "--normalize"], dict(pool="mean", normalize=True)),
    (["--pool", "pooler", "--worker-type", "process", "--workers", "1"], dict(pool="pooler")),
    (["-p", "image_mean=[0.3, 0.4, 0.5]", "-p", "do_rescale=true", "--pool", "mean"],
     dict(pool="mean", image_mean=[0.3, 0.4, 0.5], do_rescale=True)),
])
def test_embed_options_match_the_embedder(vit, photos, tmp_path, extra, options):
    folder, paths = photos
    out = tmp_path / "out"
    assert run("embed", folder, "--model", vit, "--output", out, "--progress", "none", "--dtype", "float32", *extra) == 0
    rows = read_rows(out)
    expected = _expected(vit, paths, **options)
    for path in paths:
        np.testing.assert_allclose(np.asarray(rows[path]["embedding"]), expected[path], rtol=1e-5, atol=1e-5)
    if options.get("normalize"):
        assert np.allclose([np.linalg.norm(r["embedding"]) for r in rows.values()], 1.0, atol=1e-5)
    if "image_mean" in options:
        recorded = json.loads((out / "_featx.json").read_text())["processor_options"]
        assert recorded == {"image_mean": [0.3, 0.4, 0.5], "do_rescale": True}


def test_bad_files_give_error_rows_and_exit_3(vit, tmp_path, capsys):
    folder = tmp_path / "mixed"
    good = write_photos(folder, 6)
    bad = write_bad_files(folder)
    out = tmp_path / "out"
    rc = run("embed", folder, "--model", vit, "--output", out, "--batch-size", 3, "--progress", "none",
             "--extensions", "png,jpg,tif", "--dtype", "float32")
    assert rc == EXIT_FAILED_INPUTS
    rows = read_rows(out)
    assert sorted(rows) == sorted(good + list(bad.values()))
    expected = _expected(vit, good, pool="cls")
    for path in good:
        assert rows[path]["error"] is None
        np.testing.assert_allclose(np.asarray(rows[path]["embedding"]), expected[path], rtol=1e-5, atol=1e-5)
    hints = {"corrupt": "corrupt", "empty": "empty", "truncated": "runcated", "not_an_image": "not an image",
             "bomb": "decompression bomb", "unsupported_mode": "not an image"}
    for kind, path in bad.items():
        assert rows[path]["embedding"] is None
        assert hints[kind] in rows[path]["error"], (kind, rows[path]["error"])
    assert "done 6, failed 6" in capsys.readouterr().err


def test_resume_limit_and_rerun_is_a_no_op(vit, photos, tmp_path, capsys):
    folder, paths = photos
    out = tmp_path / "out"
    common = ["--model", vit, "--output", out, "--progress", "none", "--shard-size", 3]
    assert run("embed", folder, *common, "--limit", 5) == 0
    assert len(read_rows(out)) == 5
    assert run("embed", folder, *common, "--limit", 5) == 0  # same limit: nothing new
    assert "done 0, failed 0, skipped 5" in capsys.readouterr().err
    assert run("embed", folder, *common) == 0
    assert "done 9, failed 0, skipped 5" in capsys.readouterr().err
    assert sorted(read_rows(out)) == sorted(paths)
    # the same file named twice (folder + file) is embedded once
    assert run("embed", folder, paths[0], *common) == 0
    assert "done 0, failed 0, skipped 14" in capsys.readouterr().err


def test_changing_model_or_pooling_is_refused_until_overwrite(vit, tiny_checkpoint, photos, tmp_path, capsys):
    folder, paths = photos
    out = tmp_path / "out"
    assert run("embed", paths[0], "--model", vit, "--output", out, "--progress", "none") == 0
    capsys.readouterr()
    assert run("embed", paths[0], "--model", vit, "--output", out, "--pool", "mean", "--progress", "none") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "pool: 'cls'" in err and "'mean'" in err and "--overwrite" in err
    deit = str(tiny_checkpoint("deit"))
    assert run("embed", paths[0], "--model", deit, "--output", out, "--progress", "none") == EXIT_USAGE
    assert "model:" in capsys.readouterr().err
    assert run("embed", paths[0], paths[1], "--model", vit, "--output", out, "--pool", "mean", "--overwrite",
               "--progress", "none") == 0
    assert sorted(read_rows(out)) == sorted(paths[:2])


def test_usage_errors_exit_2(vit, tmp_path, capsys):
    assert run("embed", tmp_path / "nope", "--model", vit, "--output", tmp_path / "o") == EXIT_USAGE
    assert "input not found" in capsys.readouterr().err
    assert run("embed", "x", "--model", vit) == EXIT_USAGE  # no --output
    assert run("embed", "x", "--model", vit, "--output", "o", "-p", "novalue") == EXIT_USAGE
    assert run("embed", "x", "--model", vit, "--output", "o", "--pool", "max") == EXIT_USAGE
    assert run("embed", "x", "--model", vit, "--output", "o", "--batch-size", "0") == EXIT_USAGE
    img = tmp_path / "a.png"
    photo(0).save(img)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert run("embed", img, "--model", vit, "--output", foreign, "--progress", "none") == EXIT_USAGE
    assert "did not write" in capsys.readouterr().err
    assert run("embed", img, "--model", tmp_path / "no_model", "--output", tmp_path / "o2") == 1


def test_a_model_failing_on_every_input_stops_the_job(vit, photos, tmp_path, capsys):
    folder, _ = photos
    # 16x16 pixels where the model's position embeddings expect 32x32: no input can work
    rc = run("embed", folder, "--model", vit, "--output", tmp_path / "out", "-p", 'size={"height": 16, "width": 16}',
             "--batch-size", 4, "--progress", "none")
    assert rc == 1
    assert "the model fails on every input (4 tried)" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("part-*"))
    assert run("embed", folder, "--model", vit, "--output", tmp_path / "out", "--progress", "none") == 0  # fixed


@pytest.mark.skipif(os.name != "posix", reason="byte file names")
def test_undecodable_file_names_are_written_and_resumed(vit, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9_latin1.png")  # not UTF-8: a surrogate escape in Python
    photo(3).save(os.path.join(str(folder), name))
    common = ["--model", vit, "--output", tmp_path / "out", "--progress", "none"]
    assert run("embed", folder, *common) == 0
    (key,) = read_rows(tmp_path / "out")
    assert key.endswith("caf\\xe9_latin1.png")
    assert run("embed", folder, *common) == 0
    assert "done 0, failed 0, skipped 1" in capsys.readouterr().err


def test_retry_failed_reprocesses_only_failures(vit, tmp_path, capsys):
    folder = tmp_path / "in"
    good = write_photos(folder, 3)
    broken = folder / "later.png"
    broken.write_bytes(b"not yet")
    out = tmp_path / "out"
    common = ["--model", vit, "--output", out, "--progress", "none"]
    assert run("embed", folder, *common) == EXIT_FAILED_INPUTS
    photo(7).save(broken)
    assert run("embed", folder, *common) == EXIT_FAILED_INPUTS  # failures count as done (and failed)...
    assert "skipped 4 (already written, 1 of them failed)" in capsys.readouterr().err
    assert run("embed", folder, *common, "--retry-failed") == EXIT_OK  # ...unless retried
    assert "done 1, failed 0, skipped 3" in capsys.readouterr().err
    rows = read_rows(out)
    assert sorted(rows) == sorted(good + [str(broken)])
    assert all(r["error"] is None for r in rows.values())


def test_npy_format_aligned_with_rows(vit, tmp_path):
    folder = tmp_path / "in"
    write_photos(folder, 5)
    (folder / "bad.png").write_bytes(b"x")
    out = tmp_path / "out"
    assert run("embed", folder, "--model", vit, "--output", out, "--format", "npy", "--npy-dtype", "float16",
               "--shard-size", 4, "--progress", "none") == EXIT_FAILED_INPUTS
    for shard in sorted(out.glob("part-*.parquet")):
        table = pq.read_table(shard)
        npy = np.load(out / "_npy" / (shard.stem + ".npy"))
        assert npy.dtype == np.float16 and npy.shape == (table.num_rows, 32)
        for i, emb in enumerate(table.column("embedding").to_pylist()):
            if emb is None:
                assert np.isnan(npy[i]).all()
            else:
                np.testing.assert_allclose(npy[i], np.float16(emb), rtol=1e-3)
    assert run("embed", folder, "--model", vit, "--output", tmp_path / "o2", "--format", "npy", "--pool", "none",
               "--progress", "none") == EXIT_USAGE


def test_token_embeddings_with_pool_none(vit, tmp_path):
    paths = write_photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert run("embed", *paths, "--model", vit, "--output", out, "--pool", "none", "--progress", "none",
               "--dtype", "float32") == 0
    rows = read_rows(out)
    expected = _expected(vit, paths, pool="none")
    for p in paths:
        np.testing.assert_allclose(np.asarray(rows[p]["embedding"]), expected[p], rtol=1e-5, atol=1e-5)
        assert np.asarray(rows[p]["embedding"]).shape == (17, 32)


def test_parquet_bytes_column_and_list_file(vit, photos, tmp_path):
    folder, paths = photos
    data = tmp_path / "images.parquet"
    blobs = [open(p, "rb").read() for p in paths[:4]] + [b"garbage"]
    pq.write_table(pa.table({"id": list(range(5)), "jpeg": blobs}), data)
    out = tmp_path / "out"
    assert run("embed", data, "--column", "jpeg", "--model", vit, "--output", out, "--progress", "none",
               "--dtype", "float32") == EXIT_FAILED_INPUTS
    rows = read_rows(out)
    expected = _expected(vit, paths[:4], pool="cls")
    for i, path in enumerate(paths[:4]):
        np.testing.assert_allclose(np.asarray(rows[f"{data}#{i}"]["embedding"]), expected[path], rtol=1e-5, atol=1e-5)
    assert rows[f"{data}#4"]["error"]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths[:3] + [paths[0], str(tmp_path / "missing.png")]) + "\n")
    out2 = tmp_path / "out2"
    assert run("embed", f"@{listing}", "--model", vit, "--output", out2, "--progress", "none",
               "--dtype", "float32") == EXIT_FAILED_INPUTS
    rows = read_rows(out2)
    assert sorted(rows) == sorted(paths[:3] + [str(tmp_path / "missing.png")])
    assert "no such file" in rows[str(tmp_path / "missing.png")]["error"]


def test_progress_bar_and_log_lines(vit, photos, tmp_path, capsys):
    folder, _ = photos
    assert run("embed", folder, "--model", vit, "--output", tmp_path / "a", "--progress", "bar") == 0
    err = capsys.readouterr().err
    assert "\r" in err and "files/s" in err and "done 14, failed 0" in err
    assert run("embed", folder, "--model", vit, "--output", tmp_path / "b", "--progress", "log") == 0
    err = capsys.readouterr().err
    assert "\r" not in err and err.startswith("featx: ") and "files/s" in err.splitlines()[0]


def test_features_writes_processor_outputs(vit, photos, tmp_path):
    from featx.pipelines import load_processor

    folder, paths = photos
    out = tmp_path / "feats"
    assert run("features", *paths[:4], "--processor", vit, "--output", out, "--format", "npy", "--progress", "none") == 0
    rows = read_rows(out)
    proc = load_processor(vit)
    from featx.image.io import load_image

    for i, p in enumerate(paths[:4]):
        want = proc(load_image(p), return_tensors="np")["pixel_values"][0]
        assert rows[p]["pixel_values_shape"] == [3, 32, 32]
        np.testing.assert_array_equal(np.asarray(rows[p]["pixel_values"], np.float32).reshape(3, 32, 32), want)
    npy = np.load(out / "_npy" / "part-000000.pixel_values.npy")
    assert npy.shape == (4, 3, 32, 32)
    assert run("features", paths[0], "--processor", vit, "--output", out, "-p", "do_normalize=false",
               "--progress", "none") == EXIT_USAGE  # other options on the same folder


@pytest.mark.parametrize("cpu, dtype", [("bf16", "bfloat16"), ("avx2", "float32")])
def test_info_prints_model_facts(vit, capsys, monkeypatch, cpu, dtype):
    from featx.models import loading

    from .conftest import FAKE_CPUS

    monkeypatch.setattr(loading, "cpu_flags", lambda: FAKE_CPUS[cpu])
    assert run("info", vit, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_type"] == "vit" and info["dim"] == 32 and info["modality"] == "image"
    assert info["dtype"] == dtype and info["device"] == "cpu" and "native bfloat16" in info["dtype_reason"]
    assert run("info", vit, "--json", "--dtype", "float32") == 0
    assert json.loads(capsys.readouterr().out)["dtype"] == "float32"
    assert info["processor"] == "ViTImageProcessor" and info["processor_config"]["size"] == {"height": 32, "width": 32}
    assert run("info", vit) == 0
    assert "processor settings:" in capsys.readouterr().out


def test_python_dash_m_and_console_script_agree(vit, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "featx", "embed", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "exit status" in proc.stdout and "--processor-option" in proc.stdout
    script = shutil.which("featx")
    if script:
        proc = subprocess.run([script, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "embed" in proc.stdout
