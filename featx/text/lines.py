"""Text files as inputs: one input per line, for ``featx embed`` with a text tower.

A text job's files (``--text-file lines.txt``, ``.txt`` INPUTs, ``.txt`` files in folders and
globs) are read line by line: each line that is not blank is one input, keyed
``<path>#L<line number>`` (1-based, blank lines counted, like an editor), so a rerun skips the
lines already written and a line's row says where it came from. Lines are UTF-8 (a byte-order
mark on the first line is dropped); a line that is not UTF-8, or longer than `MAX_LINE_BYTES`,
gets an error row; a file that cannot be read gets one error row under its own path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from ..engine.inputs import Input

__all__ = ["LineFiles", "TEXT_EXTENSIONS", "MAX_LINE_BYTES", "expand_lines", "line_key"]

MAX_LINE_BYTES = 1 << 20


class LineFiles(frozenset):  # type: ignore[type-arg]
    """File extensions whose files are read as one input per line (see `expand_lines`)."""


TEXT_EXTENSIONS = LineFiles({".txt"})


def line_key(key: str, number: int) -> str:
    """The row key of line ``number`` (1-based) of the file keyed ``key``."""
    return f"{key}#L{number}"


def expand_lines(items: Iterable[Input], extensions: frozenset[str]) -> Iterator[Input]:
    """Each file item of ``extensions`` becomes its lines; any other item an error (a text job
    takes text files only)."""
    for item in items:
        if item.error is not None:
            yield item
        elif not isinstance(item.src, str) or os.path.splitext(item.src)[1].lower() not in extensions:
            yield Input(item.key, item.src, error=f"not a text file ({', '.join(sorted(extensions))}): a text "
                                                  "model embeds the lines of text files")
        else:
            yield from _lines(item)


def _lines(item: Input) -> Iterator[Input]:
    assert isinstance(item.src, str)
    try:
        fh = open(item.src, "rb")  # noqa: SIM115 - closed below, also when the consumer stops early
    except OSError as exc:
        yield Input(item.key, item.src, error=f"cannot read the text file: {exc.strerror or exc}")
        return
    with fh:
        number = 0
        while True:
            try:
                raw = fh.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                yield Input(line_key(item.key, number + 1), "", error=f"cannot read the text file: {exc}")
                return
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the long line
                    raw = fh.readline(MAX_LINE_BYTES + 1)
                yield Input(line_key(item.key, number), "", error=f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield Input(line_key(item.key, number), "", error=f"line is not UTF-8 text ({exc.reason} at byte "
                                                                   f"{exc.start})")
                continue
            if text.strip():
                yield Input(line_key(item.key, number), text)
