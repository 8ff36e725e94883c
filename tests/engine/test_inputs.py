import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featx.engine.inputs import Input, check_specs, count_inputs, extensions_for, iter_inputs
from featx.errors import InputError

IMG = extensions_for("image")


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    for rel in ("b.png", "a.jpg", "sub/c.JPEG", "sub/deeper/d.webp", "notes.txt", ".hidden.png", "sub/.git/e.png"):
        _touch(root / rel)
    return root


def test_folder_walk_is_recursive_sorted_and_filtered(tree):
    keys = [i.key for i in iter_inputs([str(tree)], extensions=IMG)]
    rel = [os.path.relpath(k, tree) for k in keys]
    assert rel == ["a.jpg", "b.png", "sub/c.JPEG", "sub/deeper/d.webp"]
    assert all(i.key == i.src for i in iter_inputs([str(tree)], extensions=IMG))
    everything = [os.path.relpath(i.key, tree) for i in iter_inputs([str(tree)], extensions=None)]
    assert "notes.txt" in everything and ".hidden.png" not in everything
    assert [os.path.relpath(i.key, tree) for i in iter_inputs([str(tree)], extensions=extensions_for("image", ["txt"]))] == ["notes.txt"]
    assert extensions_for("image", ["*"]) is None


def test_explicit_files_are_kept_whatever_their_extension(tree):
    f = str(tree / "notes.txt")
    assert list(iter_inputs([f], extensions=IMG)) == [Input(f, f)]


def test_globs_recursive_and_filtered(tree):
    keys = sorted(os.path.relpath(i.key, tree) for i in iter_inputs([str(tree / "**" / "*")], extensions=IMG))
    assert keys == ["a.jpg", "b.png", "sub/c.JPEG", "sub/deeper/d.webp"]
    assert [os.path.basename(i.key) for i in iter_inputs([str(tree / "*.png")], extensions=IMG)] == ["b.png"]
    assert list(iter_inputs([str(tree / "*.nothing")], extensions=IMG)) == []


def test_list_file_keeps_lines_as_written(tmp_path, tree):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\n{tree / 'a.jpg'}\n\n  https://example.com/x.jpg  \n{tmp_path / 'missing.png'}\n")
    got = list(iter_inputs([f"@{listing}"], extensions=IMG))
    assert [i.key for i in got] == [str(tree / "a.jpg"), "https://example.com/x.jpg", str(tmp_path / "missing.png")]


def test_urls_pass_through():
    assert list(iter_inputs(["https://example.com/a.png"])) == [Input("https://example.com/a.png", "https://example.com/a.png")]


def test_parquet_path_bytes_and_struct_columns(tmp_path):
    path = str(tmp_path / "data.parquet")
    pq.write_table(pa.table({
        "file": ["x/a.png", "x/b.png", None],
        "img": [b"\x89PNG1", b"", b"abc"],
        "hf": [{"bytes": b"raw", "path": "a.png"}, {"bytes": None, "path": "x/c.png"}, {"bytes": None, "path": None}],
    }), path, row_group_size=2)
    assert [(i.key, i.src) for i in iter_inputs([path], column="file")] == [
        ("x/a.png", "x/a.png"), ("x/b.png", "x/b.png"), (f"{path}#2", b"")]
    assert [(i.key, i.src) for i in iter_inputs([path], column="img")] == [
        (f"{path}#0", b"\x89PNG1"), (f"{path}#1", b""), (f"{path}#2", b"abc")]
    assert [(i.key, i.src) for i in iter_inputs([path], column="hf")] == [
        (f"{path}#0", b"raw"), ("x/c.png", "x/c.png"), (f"{path}#2", b"")]
    assert count_inputs([path], column="img") == 3
    with pytest.raises(InputError, match="column 'nope' not found"):
        list(iter_inputs([path], column="nope"))
    other = str(tmp_path / "other.parquet")
    pq.write_table(pa.table({"blob": [b"x"], "n": [1]}), other)
    with pytest.raises(InputError, match="--column"):
        list(iter_inputs([other]))


def test_parquet_default_column_and_listed_parquet(tmp_path):
    path = str(tmp_path / "d.parquet")
    pq.write_table(pa.table({"path": ["p1", "p2"], "other": [1, 2]}), path)
    assert [i.key for i in iter_inputs([path])] == ["p1", "p2"]
    listing = tmp_path / "l.txt"
    listing.write_text(f"{path}\nq.png\n")
    assert [i.key for i in iter_inputs([f"@{listing}"])] == ["p1", "p2", "q.png"]


def test_check_specs_rejects_missing_paths_and_lists(tmp_path, tree):
    check_specs([str(tree), str(tree / "*.png"), "https://x/y.png", str(tree / "zzz*")])
    with pytest.raises(InputError, match="input not found"):
        check_specs([str(tmp_path / "typo")])
    with pytest.raises(InputError, match="list file not found"):
        check_specs([f"@{tmp_path / 'nolist.txt'}"])


def test_count_matches_iteration_and_iteration_is_lazy(tree):
    specs = [str(tree), str(tree / "a.jpg")]
    assert count_inputs(specs, extensions=IMG) == len(list(iter_inputs(specs, extensions=IMG))) == 5
    gen = iter_inputs([str(tree)] * 1_000_000, extensions=IMG)  # a million specs: nothing expanded up front
    assert next(gen).key.endswith("a.jpg")
