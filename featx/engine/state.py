"""What an output folder already holds: its manifest, the inputs already written, leftovers of a crash.

The shards themselves are the record of what is done: a shard becomes visible only by an atomic rename
once complete, so after a crash or ``kill -9`` the ``path`` column of the visible shards is exactly the
set of finished inputs. There is no separate state file that could disagree with them.

Memory for resume and de-duplication: keys are kept as 64-bit BLAKE2b hashes in a sorted NumPy array
(8 bytes per input, ~80 MB for 10 million) plus a small set of recent hashes merged into it in bulk,
instead of a Python set of strings (~150 bytes per input, ~1.5 GB for 10 million). The price is a
collision probability of about n^2 / 2^65 (3e-6 for 10 million inputs), which would skip one input.

A shard that cannot be read (truncated by a full disk, a copy that stopped) raises `DamagedShardError`
naming it and the command that repairs the folder: ``--repair`` (`repair_output`) moves damaged shards
to ``OUT/_bad/`` so that their inputs are computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, FeatxError
from .lock import LOCK_FILE, check_unlocked
from .inputs import path_key

__all__ = [
    "MANIFEST",
    "NPY_DIR",
    "KeySet",
    "key_hash",
    "shard_paths",
    "next_shard_index",
    "read_manifest",
    "write_json_atomic",
    "check_output",
    "prepare_output",
    "IDENTITY_FIELDS",
    "load_done_keys",
    "tmp_name",
    "DamagedShardError",
    "read_shard",
    "repair_command",
    "repair_output",
    "BAD_DIR",
]

MANIFEST = "_featx.json"
NPY_DIR = "_npy"  # '_' prefix: pyarrow.dataset and pandas.read_parquet skip it when reading OUT
TMP_PREFIX = "_tmp-"
BAD_DIR = "_bad"  # damaged shards moved aside by --repair ('_': readers of OUT skip it)
SHARD_RE = re.compile(r"^part-(\d{6,})\.parquet$")
# Changing one of these on an existing output would mix incompatible rows: refused.
IDENTITY_FIELDS = ("kind", "model", "revision", "pool", "normalize", "dtype", "processor_options",
                   "windows", "format", "npy_dtype", "processor")


def key_hash(key: str) -> int:
    """A 64-bit hash of an input key (stable across runs and Python versions)."""
    data = key.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class KeySet:
    """A set of input keys stored as sorted 64-bit hashes: 8 bytes per key plus a small buffer."""

    def __init__(self) -> None:
        self._base = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return int(self._base.size) + len(self._recent)

    def _in_base(self, h: int) -> bool:
        if not self._base.size:
            return False
        value = np.uint64(h)
        i = int(np.searchsorted(self._base, value))
        return i < self._base.size and self._base[i] == value

    def __contains__(self, key: object) -> bool:
        h = key_hash(str(key))
        return h in self._recent or self._in_base(h)

    def add(self, key: str) -> bool:
        """Add ``key``; False when it was already there."""
        h = key_hash(key)
        if h in self._recent or self._in_base(h):
            return False
        self._recent.add(h)
        # Merge in bulk, amortised: the buffer may grow to 1/8 of the base before an O(n) merge.
        if len(self._recent) >= max(65536, self._base.size // 8):
            self._merge()
        return True

    def update(self, keys: Iterator[str] | list[str]) -> None:
        for key in keys:
            self.add(key)

    def _merge(self) -> None:
        recent = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        self._base = np.union1d(self._base, recent)
        self._recent.clear()


def shard_paths(out: str | os.PathLike[str]) -> list[Path]:
    """The complete Parquet shards of ``out``, in shard order."""
    folder = Path(out)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if SHARD_RE.match(p.name)]
    return sorted(found, key=lambda p: int(SHARD_RE.match(p.name).group(1)))  # type: ignore[union-attr]


def next_shard_index(out: str | os.PathLike[str]) -> int:
    shards = shard_paths(out)
    return int(SHARD_RE.match(shards[-1].name).group(1)) + 1 if shards else 0  # type: ignore[union-attr]


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable featx manifest ({exc}); use --overwrite to start over") from exc


def tmp_name(name: str) -> str:
    """A temp file name for writing ``name``: unique to this process and call (pid + random)."""
    return f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{name}"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(tmp_name(path.name))
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _describe(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value)


# The field naming the model (embeddings) or processor (features) source: a local path in it is
# compared by the folder it resolves to (older featx recorded it as typed, e.g. relative).
_SOURCE_FIELD = {"embeddings": "model", "features": "processor"}


def _resolved(source: Any) -> Any:
    if not isinstance(source, str):
        return source
    from ..hub import recorded_source

    recorded = recorded_source(source)
    return os.path.realpath(recorded) if os.path.isabs(recorded) else recorded


def _same(name: str, kind: Any, old: Any, new: Any) -> bool:
    if old == new:
        return True
    return name == _SOURCE_FIELD.get(kind) and _resolved(old) == _resolved(new)


def _check_identity(out: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    diffs = [
        f"{name}: {_describe(old.get(name))} in {out} vs {_describe(new.get(name))} now"
        for name in IDENTITY_FIELDS
        if not _same(name, new.get("kind"), old.get(name), new.get(name))
    ]
    if diffs:
        raise ConfigError(
            f"{out} already holds {old.get('kind', 'output')} made with different settings ("
            + "; ".join(diffs)
            + "). Use another --output, the same settings to resume, or --overwrite to start over."
        )
    for name in ("torch_dtype", "device"):
        if old.get(name) != new.get(name) and name in old:
            warnings.warn(f"{out}: resuming with {name}={new.get(name)} (earlier rows: {old.get(name)})",
                          stacklevel=3)


def _remove_leftovers(out: Path) -> None:
    """Delete what a crash leaves behind: temp files, and .npy shards whose Parquet never landed."""
    for path in list(out.iterdir()):
        if path.name.startswith(TMP_PREFIX):
            path.unlink(missing_ok=True)
    npy = out / NPY_DIR
    if npy.is_dir():
        live = {p.stem for p in shard_paths(out)}
        for path in list(npy.iterdir()):
            if path.name.startswith(TMP_PREFIX) or path.name.split(".")[0] not in live:
                path.unlink(missing_ok=True)


def check_output(out: str | os.PathLike[str], *, overwrite: bool = False,
                 probe_lock: bool = True) -> dict[str, Any] | None:
    """Check that ``out`` can take a job's output, without changing anything; returns its manifest.

    `ConfigError` when ``out`` is a file, a non-empty folder featx did not write, or (with
    ``probe_lock``) a folder another featx job is writing. Cheap: run it before loading a model, so a
    wrong ``--output`` fails at once."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder} is a file, not a folder (give a new or empty folder, or an "
                          "earlier featx output to resume)")
    if not folder.is_dir():
        return None
    if probe_lock:
        check_unlocked(folder)
    old = read_manifest(folder)
    if old is None and any(p.name != LOCK_FILE for p in folder.iterdir()):
        if overwrite:
            raise ConfigError(f"refusing to --overwrite {folder}: it is not a featx output folder")
        raise ConfigError(f"--output {folder} is a non-empty folder that featx did not write; "
                          f"choose an empty or new folder")
    return old


def prepare_output(out: str | os.PathLike[str], manifest: dict[str, Any], *, overwrite: bool) -> None:
    """Create or reuse ``out`` for a job described by ``manifest``.

    Raises `ConfigError` when ``out`` holds a job with other identity settings, or is a non-empty
    folder featx did not write (never deletes a user's files unless ``overwrite``). The caller
    holds the folder's lock (`featx.engine.lock`)."""
    folder = Path(out)
    old = check_output(folder, overwrite=overwrite, probe_lock=False)
    if overwrite and folder.is_dir():
        for path in folder.iterdir():
            if path.name == MANIFEST or SHARD_RE.match(path.name) or path.name.startswith(("_tmp-", "_index")):
                path.unlink()
            elif path.name == NPY_DIR:
                shutil.rmtree(path)
        old = None
    if old is None:
        folder.mkdir(parents=True, exist_ok=True)
    else:
        if shard_paths(folder):  # with no rows written yet there is nothing to mix: new settings are fine
            _check_identity(folder, old, manifest)
        _remove_leftovers(folder)
    write_json_atomic(folder / MANIFEST, manifest)


_LEGACY_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])")


def _legacy_keys(key: str) -> list[str]:
    """The current keys of the inputs an older featx wrote as ``key``: it spelled undecodable bytes as
    ``\\xHH`` without doubling backslashes, so ``x\\xff.jpg`` was the name with byte 0xFF or the
    literal name; both count as done (as they did then)."""
    if not _LEGACY_ESCAPE.search(key):
        return [key]
    raw = _LEGACY_ESCAPE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), key)  # surrogate escapes
    return list(dict.fromkeys([path_key(key), path_key(raw)]))


class DamagedShardError(FeatxError):
    """A shard of an output folder cannot be read; the message says how to repair the folder."""

    def __init__(self, shard: str | os.PathLike[str], reason: str, *, then: str = "") -> None:
        self.shard = Path(shard)
        self.reason = reason
        out = self.shard.parent
        try:
            command = repair_command(out)
        except (ConfigError, OSError):  # the manifest is unreadable too
            command = f"featx embed INPUT... --model MODEL --output {shlex.quote(str(out))} --repair"
        super().__init__(
            f"{self.shard} is damaged ({reason}); a full disk or an interrupted copy can do this. Run the "
            f"command that wrote {out} again with --repair, which moves damaged shards to {out / BAD_DIR}/ "
            f"and computes their inputs again:\n  {command}{then}")


def repair_command(out: str | os.PathLike[str]) -> str:
    """The ``featx embed``/``features`` command (with ``--repair``) that resumes ``out``, from its
    manifest: the inputs as given, the model and every setting that must match."""
    m = read_manifest(out) or {}
    inputs = [i["given"] for i in m.get("inputs", []) if isinstance(i, dict)] or ["INPUT..."]
    more = ["..."] if int(m.get("inputs_total", 0) or 0) > len(inputs) else []
    if m.get("kind") == "features":
        cmd = ["featx", "features", *inputs, *more, "--processor", str(m.get("processor")), "--output", str(out)]
    else:
        cmd = ["featx", "embed", *inputs, *more, "--model", str(m.get("model", "MODEL")), "--output", str(out)]
        cmd += ["--pool", str(m["pool"])] if m.get("pool") else []
        cmd += ["--normalize"] if m.get("normalize") else []
        cmd += ["--dtype", str(m["dtype"])] if m.get("dtype") not in (None, "auto") else []
        cmd += ["--windows"] if m.get("windows") else []
    cmd += ["--revision", str(m["revision"])] if m.get("revision") else []
    for key, value in (m.get("processor_options") or {}).items():
        cmd += ["-p", f"{key}={json.dumps(value)}"]
    if m.get("format") == "npy":
        cmd += ["--format", "npy", "--npy-dtype", str(m.get("npy_dtype") or "float32")]
    text = shlex.join([*cmd, "--repair"])
    where = m.get("working_dir")
    return f"cd {shlex.quote(where)} && {text}" if where and where != os.getcwd() else text


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def read_shard(shard: Path, columns: Sequence[str] | None = None, *, then: str = "") -> Any:
    """The ``columns`` (those of them it has; None: all) of one shard as a ``pyarrow.Table``;
    `DamagedShardError` when it cannot be read (``then``: what to run after the repair, for the message)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if columns is not None:
            names = pq.read_schema(shard).names
            columns = [c for c in columns if c in names]
        return pq.read_table(shard, columns=columns)
    except PermissionError:
        raise
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DamagedShardError(shard, _reason(exc), then=then) from None


def _damage(shard: Path, npy_format: bool) -> str | None:
    """Why ``shard`` (and its .npy files) cannot be used, or None when it reads in full."""
    try:
        table = read_shard(shard)
    except DamagedShardError as exc:
        return exc.reason
    if "path" not in table.column_names:
        return "no path column"
    stem = shard.name.rsplit(".", 1)[0]
    npys = sorted((shard.parent / NPY_DIR).glob(f"{stem}.*npy"))
    if npy_format and not npys:
        return f"its .npy file in {NPY_DIR}/ is missing"
    for npy in npys:
        try:
            rows = np.load(npy, mmap_mode="r").shape[0]
        except (OSError, ValueError) as exc:
            return f"{npy.name}: {_reason(exc)}"
        if rows != table.num_rows:
            return f"{npy.name} has {rows} rows, the shard {table.num_rows}"
    return None


def _move_aside(path: Path, bad: Path) -> Path:
    bad.mkdir(exist_ok=True)
    target, n = bad / path.name, 1
    while target.exists():
        target, n = bad / f"{path.name}.{n}", n + 1
    os.replace(path, target)
    return target


def repair_output(out: str | os.PathLike[str]) -> list[Path]:
    """Move every shard of ``out`` that cannot be read in full (or whose .npy files are missing or
    short) to ``OUT/_bad/``, with its .npy files; returns where they went. Their inputs are then no
    longer done, so the job computes them again. Reads every shard: as slow as reading OUT once."""
    folder = Path(out)
    npy_format = (read_manifest(folder) or {}).get("format") == "npy"
    moved = []
    for shard in shard_paths(folder):
        reason = _damage(shard, npy_format)
        if reason is None:
            continue
        stem = shard.name.rsplit(".", 1)[0]
        for npy in sorted((folder / NPY_DIR).glob(f"{stem}.*npy")):
            _move_aside(npy, folder / BAD_DIR / NPY_DIR)
        moved.append(_move_aside(shard, folder / BAD_DIR))
        warnings.warn(f"{shard} is damaged ({reason}): moved to {moved[-1]}; its inputs are computed again",
                      stacklevel=2)
    return moved


def load_done_keys(out: str | os.PathLike[str]) -> tuple[KeySet, KeySet]:
    """The keys of every input already written to ``out``, and those of them written as errors.

    `DamagedShardError` when a shard cannot be read (see `repair_output`)."""
    import pyarrow.compute as pc

    done, failed = KeySet(), KeySet()
    for shard in shard_paths(out):
        table = read_shard(shard, ["path", "error"])
        meta = (table.schema.metadata or {}).get(b"featx", b"{}")
        try:
            current = json.loads(meta).get("path_keys", 1) >= 2
        except (ValueError, AttributeError, TypeError):
            current = False
        paths = table.column("path")
        failed_paths = paths.filter(pc.is_valid(table.column("error"))).to_pylist()
        for keys, target in ((paths.to_pylist(), done), (failed_paths, failed)):
            if current:
                target.update(keys)
            else:  # written before keys were exact (see _legacy_keys)
                target.update(k for key in keys for k in _legacy_keys(key))
    return done, failed
