import numpy as np
import pytest

from featx.engine.codec import pack, unpack


def test_round_trip_nested_rows_and_arrays():
    rows = [{"path": "a.jpg", "embedding": np.arange(4, dtype=np.float32), "error": None, "window": np.int64(2)},
            {"path": "b.jpg", "embedding": None, "error": "bad file", "offsets": np.zeros((2, 2), np.int64)}]
    back = unpack(pack(rows))
    assert back[0]["path"] == "a.jpg" and back[0]["window"] == 2 and back[1]["error"] == "bad file"
    np.testing.assert_array_equal(back[0]["embedding"], rows[0]["embedding"])
    assert back[0]["embedding"].dtype == np.float32 and back[1]["offsets"].shape == (2, 2)


def test_refuses_objects_it_cannot_represent_as_plain_data():
    with pytest.raises(TypeError, match="cannot pack"):
        pack({"x": object()})
    with pytest.raises(ValueError):  # object arrays would need pickle to read back
        unpack(pack({"x": np.array([{"a": 1}], dtype=object)}))
