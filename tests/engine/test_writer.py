import json

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from featx.engine.state import NPY_DIR, shard_paths
from featx.engine.writer import ShardWriter, drop_error_rows
from featx.errors import ConfigError

META = {"kind": "embeddings", "model": "m"}


def _schema(dim=3, tokens=False, windows=False):
    vec = pa.list_(pa.float32(), dim)
    fields = [("path", pa.string()), ("embedding", pa.list_(vec) if tokens else vec), ("error", pa.string())]
    if windows:
        fields += [("window", pa.int32()), ("start", pa.int64()), ("end", pa.int64())]
    return pa.schema(fields)


def test_shards_rows_nulls_metadata_and_no_temp_files(tmp_path):
    w = ShardWriter(tmp_path, _schema(), metadata=META, shard_size=4, npy={"embedding": np.float16})
    for i in range(10):
        if i % 3 == 1:
            w.add_rows([{"path": f"f{i}", "embedding": None, "error": f"broken {i}"}])
        else:
            w.add_rows([{"path": f"f{i}", "embedding": np.full(3, i, np.float32)}])
    assert w.buffered == 2
    w.close()
    shards = shard_paths(tmp_path)
    assert [p.name for p in shards] == ["part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    assert not [p for p in tmp_path.rglob("_tmp-*")]
    table = ds.dataset(tmp_path).to_table()  # pyarrow.dataset reads OUT directly (skips _npy, _featx.json)
    assert table.column("path").to_pylist() == [f"f{i}" for i in range(10)]
    errors = table.column("error").to_pylist()
    assert [e is not None for e in errors] == [i % 3 == 1 for i in range(10)]
    emb = table.column("embedding").to_pylist()
    assert emb[0] == [0, 0, 0] and emb[1] is None and emb[9] == [9, 9, 9]
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 3)
    assert json.loads(pq.read_schema(shards[0]).metadata[b"featx"]) == META
    npy = np.concatenate([np.load(tmp_path / NPY_DIR / f"part-00000{i}.npy") for i in range(3)])
    assert npy.dtype == np.float16 and npy.shape == (10, 3)
    assert np.isnan(npy[1]).all() and (npy[9] == 9).all()


def test_an_input_is_never_split_across_shards(tmp_path):
    w = ShardWriter(tmp_path, _schema(windows=True), metadata=META, shard_size=4)
    for i in range(3):
        w.add_rows([{"path": f"a{i}", "embedding": np.zeros(3, np.float32), "window": k, "start": 10 * k, "end": 10 * k + 10}
                    for k in range(3)])
    w.close()
    sizes = [pq.read_metadata(p).num_rows for p in shard_paths(tmp_path)]
    assert sizes == [6, 3]
    t = pq.read_table(shard_paths(tmp_path)[0])
    assert t.column("window").to_pylist() == [0, 1, 2, 0, 1, 2] and t.column("end").to_pylist()[2] == 30


def test_token_embeddings_are_lists_of_vectors(tmp_path):
    w = ShardWriter(tmp_path, _schema(dim=2, tokens=True), metadata=META)
    w.add_rows([{"path": "a", "embedding": np.arange(6, dtype=np.float32).reshape(3, 2)}])
    w.add_rows([{"path": "b", "embedding": None, "error": "x"}])
    w.add_rows([{"path": "c", "embedding": np.ones((1, 2), np.float32)}])
    w.close()
    got = pq.read_table(shard_paths(tmp_path)[0]).column("embedding").to_pylist()
    assert got == [[[0, 1], [2, 3], [4, 5]], None, [[1, 1]]]


def test_npy_needs_one_shape(tmp_path):
    schema = pa.schema([("path", pa.string()), ("x", pa.list_(pa.float32())), ("error", pa.string())])
    w = ShardWriter(tmp_path, schema, metadata=META, npy={"x": np.float32})
    w.add_rows([{"path": "a", "x": np.zeros((2, 2), np.float32)}])
    w.add_rows([{"path": "b", "x": np.zeros((3, 2), np.float32)}])
    with pytest.raises(ConfigError, match="one shape"):
        w.close()


def test_shard_size_must_be_positive(tmp_path):
    with pytest.raises(ConfigError):
        ShardWriter(tmp_path, _schema(), metadata=META, shard_size=0)


def test_drop_error_rows_keeps_npy_aligned(tmp_path):
    w = ShardWriter(tmp_path, _schema(), metadata=META, shard_size=3, npy={"embedding": np.float32})
    for i in range(5):
        row = {"path": f"f{i}", "embedding": None, "error": "e"} if i in (0, 4) else {"path": f"f{i}", "embedding": np.full(3, i, np.float32)}
        w.add_rows([row])
    w.close()
    assert drop_error_rows(tmp_path) == 2
    assert drop_error_rows(tmp_path) == 0
    for shard in shard_paths(tmp_path):
        t = pq.read_table(shard)
        npy = np.load(tmp_path / NPY_DIR / (shard.stem + ".npy"))
        assert npy.shape[0] == t.num_rows
        assert t.column("error").null_count == t.num_rows
        np.testing.assert_array_equal(npy, np.array(t.column("embedding").to_pylist(), np.float32).reshape(-1, 3))
    assert ds.dataset(tmp_path).to_table().column("path").to_pylist() == ["f1", "f2", "f3"]
