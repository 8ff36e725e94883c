"""Enumerating the inputs of a batch job, lazily.

An input spec is one of: a file, a folder (walked recursively, sorted per directory), a glob pattern
(``**`` recursive; matches files only), ``@list.txt`` (one path or URL per line; ``#`` comments), an http(s) URL, or a
Parquet file whose ``column`` holds paths/URLs or encoded bytes. Specs expand into `Input` items one at
a time: nothing here holds the whole list, so ten million inputs cost no more memory than ten.

Each input has a ``key``, the string written to the ``path`` column and used to skip it on resume:
the path as enumerated (relative stays relative, so resume from the same working directory), the URL,
or ``file.parquet#ROW`` for bytes read from a Parquet column. Two different file names never share a
key (see `path_key`). A folder walk (and ``**`` in a glob) lists each real directory once, so symlink
loops end; a folder that cannot be listed becomes an input whose ``error`` says why (an error row).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

__all__ = [
    "Input",
    "KEY_FORMAT",
    "path_key",
    "IMAGE_EXTENSIONS",
    "AUDIO_EXTENSIONS",
    "extensions_for",
    "check_specs",
    "check_has_inputs",
    "describe_specs",
    "iter_inputs",
    "count_inputs",
    "LOCATOR_COLUMNS",
    "DATA_COLUMNS",
    "guess_source_column",
]

IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .gif .bmp .dib .tif .tiff .webp .ppm .pgm .pbm .pnm .tga .ico .jp2 .j2k"
    " .jpx .avif .heic .heif .qoi .pcx .sgi .im .dds".split()
)
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .m4a .aac .aif .aiff .aifc .au .snd .caf .w64 .wma .webm"
    " .mka .mp4".split()
)
_PARQUET_BATCH = 1024
_RECORDED_SPECS = 100  # input specs recorded in the manifest (a shell glob can expand to thousands)
# Recorded in the manifest (and so in each shard's metadata): shards without it were written with the
# older keys, where a name with undecodable bytes and a literal name spelled like its escape shared a key.
KEY_FORMAT = 2
_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}")


@dataclass(frozen=True)
class Input:
    """One item of work: ``key`` names it in the output; ``src`` is what the decoder reads.

    ``error`` is set for an input that is known to fail before decoding (a folder that cannot be
    listed): the engine writes it as the input's error row."""

    key: str
    src: str | bytes
    error: str | None = None


def extensions_for(modality: str, override: Iterable[str] | None = None) -> frozenset[str] | None:
    """The file extensions a folder walk or glob keeps; ``override=["*"]`` keeps every file."""
    from ..text.lines import TEXT_EXTENSIONS, LineFiles  # text: files read one input per line

    if override:
        items = [e.strip().lower() for e in override if e.strip()]
        if "*" in items:
            return None
        picked = frozenset(e if e.startswith(".") else "." + e for e in items)
        return LineFiles(picked) if modality == "text" else picked
    return {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS, "text": TEXT_EXTENSIONS}.get(modality)


def path_key(path: str) -> str:
    """The row key of a path: one key per exact byte string of the path (``os.fsencode``).

    A path that is valid UTF-8 and holds no ``\\xHH`` text is its own key (almost every path). Any
    other path is spelled with its backslashes doubled and its undecodable bytes (which Parquet strings
    cannot hold) as ``\\xHH``: the name with byte 0xFF gives ``x\\xff.jpg``, the literal name
    ``x\\xff.jpg`` gives ``x\\\\xff.jpg``, so the two never share a key."""
    if path.isascii() and "\\" not in path:
        return path
    raw = os.fsencode(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not _ESCAPE.search(text):
        return text
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def _file(path: str) -> Input:
    return Input(path_key(path), path)


def _is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def _is_parquet(spec: str) -> bool:
    return spec.lower().endswith((".parquet", ".parq", ".pq"))


def check_specs(specs: Iterable[str]) -> None:
    """Raise `InputError` for a spec that can never produce anything (a typo'd path or list file).

    Done up front so that a mistyped argument is a usage error rather than a job of one failed row.
    A glob that matches nothing is only reported when the job ends (it may be legitimately empty).
    """
    for spec in specs:
        if _is_url(spec) or glob.has_magic(spec):
            continue
        path = spec[1:] if spec.startswith("@") else spec
        if not os.path.exists(path):
            what = "list file" if spec.startswith("@") else "input"
            raise InputError(f"{what} not found: {path}", source=path)


def _ignored_files(specs: Iterable[str], limit: int = 100_000) -> tuple[int, list[str]]:
    """Files in the folders of ``specs`` (any extension, at most ``limit``): count and 3 examples."""
    count, examples = 0, []
    for spec in specs:
        if spec.startswith("@") or not os.path.isdir(spec):
            continue
        for item in _walk(spec, None):
            if item.error is not None:
                continue
            count += 1
            if len(examples) < 3:
                examples.append(os.path.basename(item.key))
            if count >= limit:
                return count, examples
    return count, examples


def check_has_inputs(specs: Sequence[str], *, column: str | None = None,
                     extensions: frozenset[str] | None = None, modality: str = "") -> None:
    """Raise `InputError` when ``specs`` give no input at all (an empty folder, or no file of the
    model's modality); stops at the first input found, so it is cheap when there are inputs."""
    unlisted = []
    for item in iter_inputs(specs, column=column, extensions=extensions):
        if item.error is None:
            return
        if len(unlisted) < 3:
            unlisted.append(f"{item.key} ({item.error})")
    where = ", ".join(specs[:5]) + (f" and {len(specs) - 5} more" if len(specs) > 5 else "")
    message = f"no inputs found in {where}"
    if unlisted:
        message += f"; featx could not list {', '.join(unlisted[:3])}"
    if extensions is not None:
        kind = f"{modality} " if modality else ""
        message += f"; folders and globs are searched for {kind}files ending in {' '.join(sorted(extensions))}"
        count, examples = _ignored_files(specs)
        if count:
            message += (f" (other files there: {count}{'+' if count >= 100_000 else ''}, e.g. "
                        f"{', '.join(examples)}; --extensions picks other endings, '*' takes every file)")
    raise InputError(message)


def describe_specs(specs: Sequence[str]) -> dict[str, Any]:
    """The manifest's record of a run's inputs: each spec as given and as an absolute path (the
    ``path`` column keeps them as given, so relative rows are relative to ``working_dir``)."""
    def absolute(spec: str) -> str:
        if _is_url(spec):
            return spec
        if spec.startswith("@"):
            return "@" + os.path.abspath(spec[1:])
        return os.path.abspath(spec)

    return {"inputs": [{"given": s, "absolute": absolute(s)} for s in specs[:_RECORDED_SPECS]],
            "inputs_total": len(specs), "working_dir": os.getcwd(), "path_keys": KEY_FORMAT}


def iter_inputs(
    specs: Iterable[str],
    *,
    column: str | None = None,
    extensions: frozenset[str] | None = None,
) -> Iterator[Input]:
    """Expand input specs lazily, in order. Files named explicitly are always kept; folder walks and
    globs keep only ``extensions`` (None keeps all). Paths listed in ``@list`` files are kept as
    written (a missing one becomes an error row when decoded). With text extensions
    (`featx.text.lines.LineFiles`) each text file gives one input per line."""
    from ..text.lines import LineFiles, expand_lines

    if isinstance(extensions, LineFiles):
        yield from expand_lines(iter_inputs(specs, column=column, extensions=frozenset(extensions)), extensions)
        return
    for spec in specs:
        if spec.startswith("@"):
            yield from _iter_list_file(spec[1:], column=column)
        elif _is_url(spec):
            yield Input(spec, spec)
        elif os.path.isdir(spec):
            yield from _walk(spec, extensions)
        elif _is_parquet(spec) and os.path.isfile(spec):
            yield from _iter_parquet(spec, column)
        elif glob.has_magic(spec):
            for item in _glob(spec):  # files only: "**/*" also matches folders
                if item.error is not None or extensions is None or _kept(item.src, extensions):
                    yield item
        else:
            yield _file(spec)


def count_inputs(specs: Iterable[str], *, column: str | None = None,
                 extensions: frozenset[str] | None = None) -> int:
    """Count what `iter_inputs` would yield (duplicates included), in constant memory."""
    total = 0
    for spec in specs:
        if _is_parquet(spec) and os.path.isfile(spec) and not spec.startswith("@"):
            total += _parquet_rows(spec)
        else:
            total += sum(1 for _ in iter_inputs([spec], column=column, extensions=extensions))
    return total


def _kept(path: str | bytes, extensions: frozenset[str]) -> bool:
    return isinstance(path, str) and os.path.splitext(path)[1].lower() in extensions


def _listing(folder: str, hidden: bool = False) -> tuple[list[tuple[str, os.DirEntry[str]]], str | None]:
    """(path, entry) of each name in ``folder`` ("" is the working directory), sorted by name, hidden
    names left out unless ``hidden``; or the reason it cannot be listed."""
    try:
        with os.scandir(folder or os.curdir) as it:
            entries = sorted((e for e in it if hidden or not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        return [], f"cannot list folder: {exc.strerror or exc}"
    return [(os.path.join(folder, e.name), e) for e in entries], None


def _dir_id(entry: os.DirEntry[str] | str) -> tuple[int, int] | None:
    """(device, inode) of a directory, through symlinks; None when it cannot be read."""
    try:
        st = entry.stat() if isinstance(entry, os.DirEntry) else os.stat(entry or os.curdir)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _tree(folder: str, *, dirs: bool = False) -> Iterator[Input | str]:
    """Depth first, sorted per directory: the files below ``folder`` as `Input` items, interleaved with
    the directories (as paths, ``folder`` first) when ``dirs``; a directory that cannot be listed is an
    `Input` with ``error`` set. Each real directory is listed once, so symlink loops (``ln -s . d/loop``)
    end, while links to files and to directories not seen yet are followed. Memory: one listing per
    level plus the (device, inode) of each directory seen."""
    seen = {_dir_id(folder)}
    stack: list[Iterator[tuple[str, os.DirEntry[str]]]] = []
    pending: str | None = folder
    while pending is not None or stack:
        if pending is not None:
            if dirs:
                yield pending
            entries, error = _listing(pending)
            if error is not None:
                yield Input(path_key(pending), pending, error)
            stack.append(iter(entries))
            pending = None
        path, entry = next(stack[-1], (None, None))
        if entry is None:
            stack.pop()
        elif not _is_dir(entry):
            yield _file(path)
        else:
            ident = _dir_id(entry)
            if ident is not None and ident not in seen:  # else: a link into a directory listed already
                seen.add(ident)
                pending = path


def _walk(folder: str, extensions: frozenset[str] | None) -> Iterator[Input]:
    for item in _tree(folder):
        if isinstance(item, Input) and (item.error is not None or extensions is None or _kept(item.src, extensions)):
            yield item


def _glob(pattern: str) -> Iterator[Input]:
    """The files matching ``pattern``, sorted per directory; ``**`` is any depth, and names starting
    with a dot need a pattern starting with one (like `glob.glob`). ``**`` walks with `_tree`, so
    it ends on symlink loops too."""
    parts = re.split(r"[\\/]", pattern) if os.altsep else pattern.split(os.sep)
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    base = os.sep.join(parts[:first]) or (os.sep if pattern.startswith(os.sep) else "")
    yield from _glob_parts(base, parts[first:])


def _glob_parts(base: str, parts: list[str]) -> Iterator[Input]:
    """Files below ``base`` ("" is the working directory) matching the path components ``parts``."""
    part, rest = parts[0], parts[1:]
    if part == "**":
        for item in _tree(base, dirs=bool(rest)):
            if isinstance(item, Input):
                if item.error is not None or not rest:
                    yield item
            else:
                yield from _glob_parts(item, rest)
        return
    if not glob.has_magic(part):
        path = os.path.join(base, part)
        if rest and os.path.isdir(path):
            yield from _glob_parts(path, rest)
        elif not rest and part and os.path.lexists(path) and not os.path.isdir(path):
            yield _file(path)
        return
    entries, _ = _listing(base, hidden=part.startswith("."))
    for path, entry in entries:
        if fnmatch.fnmatch(entry.name, part):
            if rest and _is_dir(entry):
                yield from _glob_parts(path, rest)
            elif not rest and not _is_dir(entry):
                yield _file(path)


def _iter_list_file(path: str, *, column: str | None) -> Iterator[Input]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            item = line.strip()
            if not item or item.startswith("#"):
                continue
            if _is_parquet(item) and os.path.isfile(item):
                yield from _iter_parquet(item, column)
            else:
                yield _file(item)


def _parquet_rows(path: str) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


# The one list of column names that hold inputs: where an input is, and the input itself (also
# under the other names 🤗 datasets give images and audio: img, pixel_values, speech, array).
LOCATOR_COLUMNS = ("path", "file", "filename", "url")
DATA_COLUMNS = ("bytes", "image", "img", "pixel_values", "audio", "speech", "array")


def guess_source_column(names: Sequence[str], *, data_first: bool = False) -> str | None:
    """The first column of ``names`` that holds inputs, or None.

    A Parquet job keys its rows by the input's name, so locators come first; Ray Data reads the
    data first (``read_binary_files`` gives both, and a worker on another machine may not see the
    path), with ``data_first``."""
    order = (*DATA_COLUMNS, *LOCATOR_COLUMNS) if data_first else (*LOCATOR_COLUMNS, *DATA_COLUMNS)
    return next((name for name in order if name in names), None)


def _pick_column(names: list[str], column: str | None, path: str) -> str:
    if column is not None:
        if column not in names:
            raise InputError(f"column {column!r} not found; the file has {names}", source=path)
        return column
    guess = guess_source_column(names)
    if guess is None:
        raise InputError(f"name the column holding paths or bytes with --column (columns: {names})", source=path)
    return guess


def _iter_parquet(path: str, column: str | None) -> Iterator[Input]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    name = _pick_column(pf.schema_arrow.names, column, path)
    row = 0
    # Streamed a record batch at a time: a Parquet of a million images never sits in memory at once.
    for batch in pf.iter_batches(batch_size=_PARQUET_BATCH, columns=[name]):
        values: list[Any] = batch.column(0).to_pylist()
        for value in values:
            yield _parquet_item(path, row, value)
            row += 1


def _parquet_item(path: str, row: int, value: Any) -> Input:
    key = f"{path_key(path)}#{row}"
    if isinstance(value, dict):  # Hugging Face datasets' Image/Audio feature: {"bytes", "path"}
        if value.get("bytes"):
            return Input(key, bytes(value["bytes"]))
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return Input(key, bytes(value))
    if isinstance(value, str) and value:
        return Input(path_key(value), value)
    # Nothing to decode: an empty source fails in the decoder and becomes an error row for this key.
    return Input(key, b"")
