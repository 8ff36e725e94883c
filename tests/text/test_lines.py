"""Text files as inputs: one input per non-blank line, keyed FILE#L<line>."""

from __future__ import annotations

from featx.engine.inputs import count_inputs, extensions_for, iter_inputs
from featx.text.lines import MAX_LINE_BYTES, TEXT_EXTENSIONS, LineFiles


def _items(*specs, extensions=TEXT_EXTENSIONS):
    return [(i.key, i.src, i.error) for i in iter_inputs([str(s) for s in specs], extensions=extensions)]


def test_lines_and_keys(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"\xef\xbb\xbffirst\r\n\n   \nsecond line\nno newline at the end")
    assert _items(f) == [(f"{f}#L1", "first", None), (f"{f}#L4", "second line", None),
                         (f"{f}#L5", "no newline at the end", None)]
    assert count_inputs([str(f)], extensions=TEXT_EXTENSIONS) == 3


def test_bad_lines_get_errors(tmp_path):
    f = tmp_path / "b.txt"
    f.write_bytes(b"ok\n\xff\xfe\n" + b"x" * (MAX_LINE_BYTES + 10) + b"\nafter\n")
    items = _items(f)
    assert [k for k, _, _ in items] == [f"{f}#L1", f"{f}#L2", f"{f}#L3", f"{f}#L4"]
    assert "not UTF-8" in items[1][2] and "longer than" in items[2][2]
    assert items[3] == (f"{f}#L4", "after", None)


def test_folders_globs_and_other_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("c1\n")
    (tmp_path / "d.TXT").write_text("d1\n")
    (tmp_path / "e.jpg").write_bytes(b"x")
    keys = [k for k, _, e in _items(tmp_path) if e is None]
    assert keys == [f"{tmp_path / 'd.TXT'}#L1", f"{tmp_path / 'sub' / 'c.txt'}#L1"]
    assert [k for k, _, _ in _items(tmp_path / "**" / "*.txt")] == [f"{tmp_path / 'sub' / 'c.txt'}#L1"]
    ((key, _, error),) = _items(tmp_path / "e.jpg")
    assert key == str(tmp_path / "e.jpg") and "not a text file" in error
    assert _items(tmp_path / "missing.txt")[0][2].startswith("cannot read")


def test_extensions_for_text():
    assert extensions_for("text") == TEXT_EXTENSIONS
    picked = extensions_for("text", ["md", ".csv"])
    assert isinstance(picked, LineFiles) and picked == {".md", ".csv"}
    assert not isinstance(extensions_for("image", ["png"]), LineFiles)
