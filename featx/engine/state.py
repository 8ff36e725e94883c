"""What an output folder holds beyond its shards: the manifest, the settings that must match to resume,
leftovers of a crash, and the command that repairs it.

A job's manifest (``_featx.json``) records its settings; `prepare_output` refuses to mix rows made
with other identity settings and removes what a crash left (temp files, .npy shards whose Parquet
never landed). Listing and reading the shards, the done-key sets and damaged-shard handling live in
`featx.engine.shards`; their names are re-exported here.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import warnings
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import shards as _shards
from .lock import LOCK_FILE, check_unlocked
from .shards import (
    BAD_DIR,
    NPY_DIR,
    SHARD_RE,
    DamagedShardError,
    KeySet,
    key_hash,
    load_done_keys,
    move_damaged,
    next_shard_index,
    read_shard,
    shard_paths,
)

__all__ = [
    "MANIFEST",
    "IDENTITY_FIELDS",
    "read_manifest",
    "write_json_atomic",
    "tmp_name",
    "check_output",
    "prepare_output",
    "repair_command",
    "repair_output",
    *_shards.__all__,  # re-exported: callers import them from here
]

MANIFEST = "_featx.json"
TMP_PREFIX = "_tmp-"
# Changing one of these on an existing output would mix incompatible rows: refused.
IDENTITY_FIELDS = ("kind", "model", "revision", "pool", "normalize", "dtype", "processor_options",
                   "windows", "format", "npy_dtype", "processor", "parts", "video", "backend",
                   "labels", "hypothesis_template")


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
        cmd += ["--backend", str(m["backend"])] if m.get("backend") else []
    cmd += ["--revision", str(m["revision"])] if m.get("revision") else []
    for key, value in (m.get("processor_options") or {}).items():
        cmd += ["-p", f"{key}={json.dumps(value)}"]
    if m.get("format") == "npy":
        cmd += ["--format", "npy", "--npy-dtype", str(m.get("npy_dtype") or "float32")]
    text = shlex.join([*cmd, "--repair"])
    where = m.get("working_dir")
    return f"cd {shlex.quote(where)} && {text}" if where and where != os.getcwd() else text


def repair_output(out: str | os.PathLike[str]) -> list[Path]:
    """Move every shard of ``out`` that cannot be read in full (or whose .npy files are missing or
    short) to ``OUT/_bad/``, with its .npy files; returns where they went. Their inputs are then no
    longer done, so the job computes them again. Reads every shard: as slow as reading OUT once."""
    folder = Path(out)
    return move_damaged(folder, (read_manifest(folder) or {}).get("format") == "npy")
