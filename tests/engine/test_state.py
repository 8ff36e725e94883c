import json

import numpy as np
import pytest

from featx.engine.state import (
    MANIFEST,
    NPY_DIR,
    KeySet,
    key_hash,
    load_done_keys,
    next_shard_index,
    prepare_output,
    shard_paths,
)
from featx.engine.writer import ShardWriter
from featx.errors import ConfigError

MANIFEST_A = {"kind": "embeddings", "model": "m1", "revision": None, "pool": "cls", "normalize": False,
              "dtype": "auto", "processor_options": {}, "windows": False, "format": "parquet", "npy_dtype": None,
              "processor": "ViTImageProcessor", "dim": 4}


def _schema():
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), 4)), ("error", pa.string())])


def _write(out, keys, start=0, errors=()):
    w = ShardWriter(out, _schema(), metadata=MANIFEST_A, shard_size=1000, start_index=start)
    for k in keys:
        if k in errors:
            w.add_rows([{"path": k, "embedding": None, "error": "bad"}])
        else:
            w.add_rows([{"path": k, "embedding": np.ones(4, np.float32)}])
    w.close()


def test_keyset_membership_across_merges():
    ks = KeySet()
    keys = [f"/data/img_{i:07d}.jpg" for i in range(150_000)]  # crosses the 65,536 merge threshold twice
    assert all(ks.add(k) for k in keys)
    assert len(ks) == len(keys)
    assert not ks.add(keys[0]) and not ks.add(keys[-1]) and not ks.add(keys[70_000])
    assert keys[123] in ks and "/data/other.jpg" not in ks
    assert ks._base.size >= 65_536 and ks._base.dtype == np.uint64  # hashes, not strings
    assert np.all(np.diff(ks._base.astype(np.float64)) > 0)  # sorted and unique


def test_key_hash_is_stable_and_handles_undecodable_names():
    assert key_hash("a.jpg") == key_hash("a.jpg") != key_hash("b.jpg")
    assert key_hash("bad\udcff.jpg") != key_hash("bad.jpg")  # surrogate-escaped file names


def test_new_folder_gets_manifest(tmp_path):
    out = tmp_path / "out"
    prepare_output(out, MANIFEST_A, overwrite=False)
    assert json.loads((out / MANIFEST).read_text())["model"] == "m1"


def test_resume_with_other_model_or_pool_is_refused(tmp_path):
    out = tmp_path / "out"
    prepare_output(out, {**MANIFEST_A, "model": "m0"}, overwrite=False)
    prepare_output(out, MANIFEST_A, overwrite=False)  # no rows yet: other settings are fine
    _write(out, ["a"])
    prepare_output(out, MANIFEST_A, overwrite=False)  # same settings: fine
    with pytest.raises(ConfigError, match=r"model: 'm1' in .* vs 'm2' now"):
        prepare_output(out, {**MANIFEST_A, "model": "m2"}, overwrite=False)
    with pytest.raises(ConfigError, match="pool: 'cls'.*'mean'.*--overwrite"):
        prepare_output(out, {**MANIFEST_A, "pool": "mean"}, overwrite=False)
    with pytest.raises(ConfigError, match="processor_options"):
        prepare_output(out, {**MANIFEST_A, "processor_options": {"size": 64}}, overwrite=False)
    prepare_output(out, {**MANIFEST_A, "pool": "mean"}, overwrite=True)
    assert json.loads((out / MANIFEST).read_text())["pool"] == "mean"


def test_foreign_folders_are_never_deleted(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="did not write"):
        prepare_output(out, MANIFEST_A, overwrite=False)
    with pytest.raises(ConfigError, match="not a featx output folder"):
        prepare_output(out, MANIFEST_A, overwrite=True)
    assert (out / "thesis.tex").read_text() == "precious"
    with pytest.raises(ConfigError, match="not a folder"):
        prepare_output(out / "thesis.tex", MANIFEST_A, overwrite=False)


def test_done_keys_next_index_and_crash_leftovers(tmp_path):
    out = tmp_path / "out"
    prepare_output(out, MANIFEST_A, overwrite=False)
    _write(out, ["a", "b", "c"], start=0, errors={"b"})
    _write(out, ["d"], start=1)
    # what a kill -9 leaves: a half-written temp shard and a .npy whose Parquet never landed
    (out / "_tmp-part-000002.parquet").write_bytes(b"PAR1 half")
    (out / NPY_DIR).mkdir()
    np.save(out / NPY_DIR / "part-000002.npy", np.zeros((2, 4)))
    np.save(out / NPY_DIR / "part-000001.npy", np.zeros((1, 4)))
    prepare_output(out, MANIFEST_A, overwrite=False)
    assert not (out / "_tmp-part-000002.parquet").exists()
    assert sorted(p.name for p in (out / NPY_DIR).iterdir()) == ["part-000001.npy"]
    assert [p.name for p in shard_paths(out)] == ["part-000000.parquet", "part-000001.parquet"]
    assert next_shard_index(out) == 2
    done, failed = load_done_keys(out)
    assert len(done) == 4 and "b" in done and "e" not in done
    assert len(failed) == 1 and "b" in failed


def test_overwrite_clears_shards_npy_and_index(tmp_path):
    out = tmp_path / "out"
    prepare_output(out, MANIFEST_A, overwrite=False)
    _write(out, ["a"])
    (out / NPY_DIR).mkdir()
    (out / "_index.usearch").write_bytes(b"x")
    prepare_output(out, MANIFEST_A, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST]
