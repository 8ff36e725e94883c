"""Enumerating the inputs of a batch job, lazily.

An input spec is one of: a file, a folder (walked recursively, sorted per directory), a glob pattern
(``**`` recursive; matches files only), ``@list.txt`` (one path or URL per line; ``#`` comments), an http(s) URL, or a
Parquet file whose ``column`` holds paths/URLs or encoded bytes. Specs expand into `Input` items one at
a time: nothing here holds the whole list, so ten million inputs cost no more memory than ten.

Each input has a ``key``, the string written to the ``path`` column and used to skip it on resume:
the path as enumerated (relative stays relative, so resume from the same working directory), the URL,
or ``file.parquet#ROW`` for bytes read from a Parquet column.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

__all__ = [
    "Input",
    "IMAGE_EXTENSIONS",
    "AUDIO_EXTENSIONS",
    "extensions_for",
    "check_specs",
    "check_has_inputs",
    "describe_specs",
    "iter_inputs",
    "count_inputs",
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


@dataclass(frozen=True)
class Input:
    """One item of work: ``key`` names it in the output; ``src`` is what the decoder reads."""

    key: str
    src: str | bytes


def extensions_for(modality: str, override: Iterable[str] | None = None) -> frozenset[str] | None:
    """The file extensions a folder walk or glob keeps; ``override=["*"]`` keeps every file."""
    if override:
        items = [e.strip().lower() for e in override if e.strip()]
        if "*" in items:
            return None
        return frozenset(e if e.startswith(".") else "." + e for e in items)
    return {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}.get(modality)


def _key(path: str) -> str:
    """The row key of a path: the path itself, with undecodable bytes of a file name (surrogate
    escapes, which Parquet strings cannot hold) spelled as backslash escapes."""
    if path.isascii():
        return path
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _file(path: str) -> Input:
    return Input(_key(path), path)


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
    for _ in iter_inputs(specs, column=column, extensions=extensions):
        return
    where = ", ".join(specs[:5]) + (f" and {len(specs) - 5} more" if len(specs) > 5 else "")
    message = f"no inputs found in {where}"
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
            "inputs_total": len(specs), "working_dir": os.getcwd()}


def iter_inputs(
    specs: Iterable[str],
    *,
    column: str | None = None,
    extensions: frozenset[str] | None = None,
) -> Iterator[Input]:
    """Expand input specs lazily, in order. Files named explicitly are always kept; folder walks and
    globs keep only ``extensions`` (None keeps all). Paths listed in ``@list`` files are kept as
    written (a missing one becomes an error row when decoded)."""
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
            for path in glob.iglob(spec, recursive=True):  # files only: "**/*" also matches folders
                if os.path.isdir(path):
                    continue
                if extensions is None or os.path.splitext(path)[1].lower() in extensions:
                    yield _file(path)
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


def _walk(folder: str, extensions: frozenset[str] | None) -> Iterator[Input]:
    # Sorted per directory, depth first: deterministic, and memory bounded by one directory's listing.
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(entry.path, extensions)
        elif extensions is None or os.path.splitext(entry.name)[1].lower() in extensions:
            yield _file(entry.path)


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


def _pick_column(names: list[str], column: str | None, path: str) -> str:
    if column is not None:
        if column not in names:
            raise InputError(f"column {column!r} not found; the file has {names}", source=path)
        return column
    for guess in ("path", "image", "audio", "file", "filename", "url", "bytes"):
        if guess in names:
            return guess
    raise InputError(f"name the column holding paths or bytes with --column (columns: {names})", source=path)


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
    key = f"{path}#{row}"
    if isinstance(value, dict):  # Hugging Face datasets' Image/Audio feature: {"bytes", "path"}
        if value.get("bytes"):
            return Input(key, bytes(value["bytes"]))
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return Input(key, bytes(value))
    if isinstance(value, str) and value:
        return Input(value, value)
    # Nothing to decode: an empty source fails in the decoder and becomes an error row for this key.
    return Input(key, b"")
