"""The Ray engine and `featx.ray.embed` on a local Ray instance (2 CPUs, no GPU) started once here.

The reference is featx's own local engine: the Ray engine must write the same rows, errors,
embeddings (within 1e-6), manifest and schema metadata, and resume the same way.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from featx.embedding import Embedder  # noqa: E402
from featx.engine import local  # noqa: E402
from featx.engine import ray_engine  # noqa: E402
from featx.engine.jobs import EmbedJob, FeaturesJob  # noqa: E402
from featx.engine.local import RunOptions  # noqa: E402
from featx.engine.state import MANIFEST, shard_paths  # noqa: E402
from featx.errors import ConfigError, DependencyError  # noqa: E402

N_GOOD = 14
BAD = ("corrupt.jpg", "empty.png", "truncated.jpg", "text.png")


@pytest.fixture(scope="module")
def ray_local():
    """One Ray instance for the module (starting Ray takes seconds)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="warning",
                 object_store_memory=200 * 2**20)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Generated photos of several sizes, modes and formats, plus one file of each bad kind."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("ray_images")
    rng = np.random.default_rng(0)
    kinds = (("RGB", "png"), ("RGB", "jpg"), ("L", "png"), ("L", "jpg"), ("RGBA", "png"), ("P", "png"),
             ("CMYK", "jpg"), ("I;16", "png"), ("LA", "png"), ("RGB", "webp"), ("1", "bmp"))
    for i in range(N_GOOD):
        mode, ext = kinds[i % len(kinds)]
        w, h = int(rng.integers(12, 80)), int(rng.integers(12, 80))
        base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img = Image.fromarray(base[..., 0].astype(np.uint16) * 257) if mode == "I;16" else \
            Image.fromarray(base).convert(mode)
        img.save(folder / f"img{i:02d}.{ext}")
    (folder / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)).save(folder / "sub" / "deep.png")
    (folder / "corrupt.jpg").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (folder / "empty.png").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (folder / "text.png").write_text("not an image at all\n")
    return folder


@pytest.fixture(scope="module")
def vit(tiny_checkpoint) -> Path:
    return tiny_checkpoint("vit")


def _embed_job(model: Path, **kw) -> EmbedJob:
    embedder = Embedder(model, dtype="float32", **{k: v for k, v in kw.items() if k in ("pool", "normalize")})
    return EmbedJob(embedder, dtype="float32", batch_size=4)


def _opts(**kw) -> RunOptions:
    return RunOptions(**{"batch_size": 4, "workers": 2, "progress": "none", "shard_size": 5, **kw})


def _read(out: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for shard in shard_paths(out):
        for row in pq.read_table(shard).to_pylist():
            assert row["path"] not in rows, f"{row['path']} written twice"
            rows[row["path"]] = row
    return rows


def _same_rows(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key]["error"] == b[key]["error"], key
        if a[key]["embedding"] is None:
            assert b[key]["embedding"] is None, key
        else:
            np.testing.assert_allclose(np.asarray(a[key]["embedding"]), np.asarray(b[key]["embedding"]),
                                       atol=1e-6, rtol=0, err_msg=key)


def _metadata(out: Path) -> dict:
    meta = pq.read_schema(shard_paths(out)[0]).metadata
    return json.loads(meta[b"featx"])


@pytest.fixture(scope="module")
def local_out(tmp_path_factory, vit, images) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    summary = local.run(_embed_job(vit), [str(images)], str(out), _opts())
    assert (summary.done, summary.failed) == (N_GOOD + 1, len(BAD))
    return out


def test_ray_engine_matches_local_engine(ray_local, vit, images, local_out, tmp_path):
    import featx.ray

    out = tmp_path / "ray"
    # The job as a Ray driver builds it: no weights on the driver, only the actors load them.
    job = EmbedJob(featx.ray.weightless_embedder(vit, dtype="float32"), dtype="float32", batch_size=4)
    summary = ray_engine.run(job, [str(images)], str(out), _opts())
    assert (summary.done, summary.failed, summary.skipped) == (N_GOOD + 1, len(BAD), 0)
    rows = _read(out)
    _same_rows(_read(local_out), rows)
    for name in BAD:  # each bad file: one row carrying its error, no embedding
        row = rows[str(images / name)]
        assert row["embedding"] is None and row["error"]
    assert sum(r["error"] is None for r in rows.values()) == N_GOOD + 1
    # Same manifest and schema (types and featx metadata): `featx search` reads either.
    assert json.loads((out / MANIFEST).read_text()) == json.loads((local_out / MANIFEST).read_text())
    assert _metadata(out) == _metadata(local_out)
    assert pq.read_schema(shard_paths(out)[0]).remove_metadata() == \
        pq.read_schema(shard_paths(local_out)[0]).remove_metadata()
    assert all(len(pq.read_table(s)) <= 5 for s in shard_paths(out))  # --shard-size honoured


def test_restarted_job_gives_each_input_exactly_once(ray_local, vit, images, local_out, tmp_path):
    out = tmp_path / "ray"
    job = _embed_job(vit)
    total = N_GOOD + 1 + len(BAD)

    class Interrupting(io.StringIO):
        """A Ctrl-C at the first progress line (once: the summary is printed afterwards)."""

        fired = False

        def write(self, text: str) -> int:
            if not self.fired:
                self.fired = True
                raise KeyboardInterrupt
            return super().write(text)

    # Interrupted after its first block of rows: the rows finished by then are in complete shards.
    first = ray_engine.run(job, [str(images)], str(out), _opts(progress="log", progress_interval=0.0),
                           stream=Interrupting())
    assert first.interrupted
    partial = _read(out)
    assert 0 < len(partial) < total and first.done + first.failed == len(partial)
    # What a kill -9 in the middle of a shard write leaves behind.
    (out / "_tmp-part-000099.parquet").write_bytes(b"half a shard from a crash")
    second = ray_engine.run(job, [str(images)], str(out), _opts())
    assert second.skipped == len(partial) and second.done + second.failed == total - len(partial)
    assert not (out / "_tmp-part-000099.parquet").exists()
    _same_rows(_read(local_out), _read(out))  # _read asserts no path is written twice
    again = ray_engine.run(job, [str(images)], str(out), _opts())
    assert (again.done, again.failed, again.skipped) == (0, 0, total)
    # --limit counts done inputs too, like the local engine: a larger limit adds only the difference.
    limited = tmp_path / "limited"
    few = ray_engine.run(job, [str(images)], str(limited), _opts(limit=5))
    assert few.done + few.failed == 5
    more = ray_engine.run(job, [str(images)], str(limited), _opts(limit=8))
    assert more.skipped == 5 and more.done + more.failed == 3 and len(_read(limited)) == 8


def test_changed_settings_are_refused(ray_local, vit, images, local_out, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(local_out, out)  # a local engine's output resumes on Ray with the same settings
    assert ray_engine.run(_embed_job(vit), [str(images)], str(out), _opts()).skipped == N_GOOD + 1 + len(BAD)
    with pytest.raises(ConfigError, match="pool"):
        ray_engine.run(_embed_job(vit, pool="mean"), [str(images)], str(out), _opts())


def test_ray_engine_pool_none_and_parquet_bytes(ray_local, vit, images, tmp_path):
    """Token embeddings (list<fixed_size_list>) and inputs read from a Parquet bytes column."""
    names = sorted(p.name for p in images.iterdir() if p.is_file())
    table = pa.table({"image": [(images / n).read_bytes() for n in names]})
    pq.write_table(table, tmp_path / "in.parquet")
    specs = [str(tmp_path / "in.parquet")]
    job = _embed_job(vit, pool="none", normalize=True)
    local.run(job, specs, str(tmp_path / "local"), _opts())
    ray_engine.run(job, specs, str(tmp_path / "ray"), _opts())
    a, b = _read(tmp_path / "local"), _read(tmp_path / "ray")
    _same_rows(a, b)
    assert len(b) == len(names) and sum(r["error"] is not None for r in b.values()) == len(BAD)
    vec = np.asarray(next(r for r in b.values() if r["error"] is None)["embedding"])
    assert vec.ndim == 2 and np.allclose(np.linalg.norm(vec, axis=-1), 1, atol=1e-5)


def test_ray_engine_features_job(ray_local, vit, images, tmp_path):
    job = FeaturesJob(vit)
    local.run(job, [str(images)], str(tmp_path / "local"), _opts())
    ray_engine.run(job, [str(images)], str(tmp_path / "ray"), _opts())
    a, b = _read(tmp_path / "local"), _read(tmp_path / "ray")
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key] == b[key], key


def test_ray_engine_audio_windows(ray_local, tiny_checkpoint, tmp_path):
    """Audio with one row per model window (start/end offsets): several rows per input."""
    import soundfile as sf

    model = tiny_checkpoint("wav2vec2")
    folder = tmp_path / "audio"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, seconds, rate in (("long.wav", 31.0, 16000), ("short.flac", 1.5, 22050), ("tiny.wav", 0.3, 8000)):
        sf.write(folder / name, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    (folder / "bad.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    job = EmbedJob(Embedder(model, dtype="float32"), dtype="float32", batch_size=2, windows=True)
    local.run(job, [str(folder)], str(tmp_path / "local"), _opts())
    ray_engine.run(job, [str(folder)], str(tmp_path / "ray"), _opts())

    def rows(out: Path) -> dict:
        table = pq.read_table(out).sort_by([("path", "ascending"), ("window", "ascending")])
        return {(r["path"], r["window"]): r for r in table.to_pylist()}

    a, b = rows(tmp_path / "local"), rows(tmp_path / "ray")
    assert sorted(a) == sorted(b) and len(b) == 5  # long.wav has 2 windows, bad.wav 1 error row
    for key in a:
        assert (a[key]["start"], a[key]["end"], a[key]["error"]) == (b[key]["start"], b[key]["end"], b[key]["error"])
        if a[key]["embedding"] is not None:
            np.testing.assert_allclose(a[key]["embedding"], b[key]["embedding"], atol=1e-6, rtol=0)
    assert b[(str(folder / "long.wav"), 1)]["start"] == 30 * 16000


def test_ray_embed_read_binary_files(ray_local, vit, images):
    import featx.ray

    embedder = Embedder(vit, dtype="float32")
    ds = ray.data.read_binary_files(str(images), include_paths=True)
    result = featx.ray.embed(ds, vit, batch_size=3, dtype="float32", concurrency=1)
    rows = result.take_all()
    stats = result.stats()  # decoding ran in its own CPU tasks, not fused into the model actors
    assert "MapBatches(_prepare_batch)" in stats and "MapBatches(_prepare_batch)->" not in stats
    assert len(rows) == N_GOOD + 1 + len(BAD)
    by_name = {os.path.basename(r["path"]): r for r in rows}
    for name, row in by_name.items():
        assert set(row) == {"path", "bytes", "embedding", "error"}
        if name in BAD:
            assert row["embedding"] is None and row["error"], name
            continue
        assert row["error"] is None, (name, row["error"])
        want = embedder.embed([embedder.prepare(images / name if name != "deep.png" else images / "sub" / name)])[0]
        np.testing.assert_allclose(np.asarray(row["embedding"]), want, atol=1e-6, rtol=0, err_msg=name)


def test_ray_embed_paths_and_read_images(ray_local, vit, images):
    import featx.ray

    embedder = Embedder(vit, dtype="float32", pool="mean", normalize=True)
    good = sorted(str(p) for p in images.glob("img*.png") if p.name not in BAD)
    want = embedder.embed([embedder.prepare(p) for p in good])
    # A plain column of paths (strings), with one missing file and one empty cell.
    ds = ray.data.from_items([{"path": p, "n": i} for i, p in enumerate([*good, "/no/such.png", ""])])
    rows = sorted(featx.ray.embed(ds, vit, pool="mean", normalize=True, batch_size=4, dtype="float32")
                  .take_all(), key=lambda r: r["n"])
    for row, vec in zip(rows, want):
        np.testing.assert_allclose(np.asarray(row["embedding"]), vec, atol=1e-6, rtol=0)
    assert rows[-2]["embedding"] is None and "/no/such.png" in rows[-2]["error"]
    assert rows[-1]["embedding"] is None and "empty" in rows[-1]["error"]
    # Ray's own decoder (read_images) gives arrays; RGB PNGs embed the same as from their files.
    rgb = [p for p in good if _mode(p) == "RGB"]
    ds = ray.data.read_images(rgb, include_paths=True)
    got = {r["path"]: r for r in featx.ray.embed(ds, vit, pool="mean", normalize=True, dtype="float32").take_all()}
    assert len(got) == len(rgb) >= 2
    for p in rgb:
        key = next(k for k in got if k.endswith(os.path.basename(p)))
        np.testing.assert_allclose(np.asarray(got[key]["embedding"]), want[good.index(p)], atol=1e-6, rtol=0)


def _mode(path: str) -> str:
    from PIL import Image

    with Image.open(path) as img:
        return img.mode


def test_ray_embed_checks_arguments(ray_local, vit):
    import featx.ray

    ds = ray.data.from_items([{"path": "x.png"}])
    with pytest.raises(ConfigError, match="no class token|pool"):
        featx.ray.embed(ds, vit, pool="bogus")
    with pytest.raises(ConfigError, match="ray.data.Dataset"):
        featx.ray.embed([1, 2], vit)
    with pytest.raises(ConfigError, match="concurrency"):
        featx.ray.embed(ds, vit, concurrency=(3, 1))
    with pytest.raises(Exception, match="already has column"):
        featx.ray.embed(ray.data.from_items([{"path": "x.png", "error": 1}]), vit).take_all()


def test_cli_options_and_resource_checks(ray_local, vit, images, tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    ray_engine.add_arguments(parser)
    ro = ray_engine.options_from_args(parser.parse_args(["--address", "h:6379", "--actors", "2",
                                                        "--cpus-per-actor", "0.5"]))
    assert (ro.address, ro.actors, ro.cpus_per_actor, ro.gpus_per_actor, ro.device) == ("h:6379", 2, 0.5, None, "auto")
    job = _embed_job(vit)
    with pytest.raises(ConfigError, match="GPU"):  # the test cluster has no GPU
        ray_engine.run(job, [str(images)], str(tmp_path / "a"), _opts(),
                       ray_options=ray_engine.RayOptions(device="cuda"))
    with pytest.raises(ConfigError, match="no CPU for decoding"):
        ray_engine.run(job, [str(images)], str(tmp_path / "b"), _opts(),
                       ray_options=ray_engine.RayOptions(actors=2))


def test_missing_ray_names_the_extra(monkeypatch, vit):
    import featx.ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(DependencyError, match=r"featx\[ray\]"):
        featx.ray.embed(object(), vit)
    with pytest.raises(DependencyError, match=r"featx\[ray\]"):
        ray_engine.run(_embed_job(vit), ["x"], "out")
