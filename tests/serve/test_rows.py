"""The rows snapshot: exact-search scores, error rows, pass-through columns of audio/video rows."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featx.errors import InputError
from featx.search import exact_search
from featx.serve.rows import fingerprint, load_rows

from ._helpers import stored_vectors


def test_rows_pass_video_and_audio_columns_through(out, tmp_path):
    copy = tmp_path / "video"
    shutil.copytree(out, copy)
    shards = sorted(copy.glob("part-*.parquet"))
    table = pq.read_table(shards[0])
    n = table.num_rows
    table = table.append_column("frame", pa.array(list(range(n)), pa.int32()))
    table = table.append_column("time_s", pa.array([1.5 * i for i in range(n)], pa.float64()))
    pq.write_table(table, shards[0])
    rows = load_rows(copy)
    assert sorted(rows.extra) == ["frame", "time_s"]
    stored = stored_vectors(out)
    path = table.column("path")[2].as_py()
    hits = rows.search(stored[path], 10)
    top = hits[0]
    assert top["path"] == path and top["frame"] == 2 and top["time_s"] == 3.0
    assert all("time_s" not in h for h in hits if h["id"] >= n)  # rows of the other shards have none
    expected = exact_search(copy, stored[path][None], 10)[0]
    assert [h["path"] for h in hits] == [h.path for h in expected]
    assert rows.path_of(2) == path and rows.path_of(10_000) is None
    with pytest.raises(InputError, match="values"):
        rows.search(np.zeros(5, np.float32), 3)


def test_rows_keep_error_rows_out_and_count_them_in_ids(out, tmp_path):
    copy = tmp_path / "errors"
    shutil.copytree(out, copy)
    shards = sorted(copy.glob("part-*.parquet"))
    table = pq.read_table(shards[0])
    emb = table.column("embedding").to_pylist()
    emb[0] = None
    err = ["broken"] + [None] * (table.num_rows - 1)
    table = table.set_column(table.schema.get_field_index("embedding"), table.schema.field("embedding"),
                             pa.array(emb, table.schema.field("embedding").type))
    table = table.set_column(table.schema.get_field_index("error"), "error", pa.array(err, pa.string()))
    pq.write_table(table, shards[0])
    before = fingerprint(copy)
    rows = load_rows(copy)
    assert rows.count == 9 and rows.total == 10 and rows.ids[0] == 1
    assert rows.path_of(0) is None
    assert fingerprint(copy) == before == rows.stamp
