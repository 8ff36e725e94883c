"""Output folder hardening: one job per folder (a lock naming its holder), damaged shards named with
the command that repairs them (``--repair``), and a full disk reported as such, naming the file."""

from __future__ import annotations

import errno
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featx.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from featx.engine.lock import LOCK_FILE, OutputBusyError, OutputLock, check_unlocked
from featx.engine.state import BAD_DIR, NPY_DIR, repair_output, tmp_name
from featx.engine.writer import ShardWriteError, ShardWriter

from ._helpers import REPO, featx_subprocess, read_rows, write_photos

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="flock")


def _embed(*args: object) -> int:
    return main([str(a) for a in ("embed", *args, "--progress", "none", "--dtype", "float32", "--workers", "1")])


@pytest.fixture(scope="module")
def vit(tiny_checkpoint):
    return str(tiny_checkpoint("vit"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return folder, write_photos(folder, 12)


# ---- one job per output folder ------------------------------------------------------------------

def _hold_lock(out: Path) -> subprocess.Popen:
    """A child process holding OUT's lock until its stdin closes (or it is killed)."""
    code = ("import sys; from featx.engine.lock import lock_output; held = lock_output(sys.argv[1]); "
            "print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout.readline().strip() == "locked"
    return proc


@posix_only
def test_a_second_job_on_a_locked_folder_refuses_naming_the_holder(vit, photos, tmp_path, capsys):
    folder, paths = photos
    out = tmp_path / "out"
    holder = _hold_lock(out)
    try:
        assert (out / LOCK_FILE).read_text().split()[0] == str(holder.pid)
        assert _embed(folder, "--model", vit, "--output", out) == EXIT_USAGE
        err = capsys.readouterr().err
        assert f"in use by another featx job (pid {holder.pid}" in err and f"kill {holder.pid}" in err
        assert not list(out.glob("part-*")) and not (out / "_featx.json").exists()
    finally:
        holder.kill()  # the OS drops the lock of a dead holder: no stale lock
        holder.wait()
    assert _embed(folder, "--model", vit, "--output", out) == EXIT_OK
    assert len(read_rows(out)) == len(paths)
    # `featx index` takes the same lock; a second descriptor in this process conflicts like another job
    with OutputLock(out):
        with pytest.raises(OutputBusyError, match=f"pid {os.getpid()}"):
            check_unlocked(out)
        assert main(["index", str(out)]) == EXIT_USAGE
        assert "in use by another featx job" in capsys.readouterr().err
    check_unlocked(out)
    assert main(["index", str(out)]) == EXIT_OK
    assert _embed(folder, "--model", vit, "--output", out) == EXIT_OK  # the lock file is no obstacle


@posix_only
def test_two_jobs_started_together_never_write_an_input_twice(vit, tmp_path):
    folder = tmp_path / "many"
    paths = write_photos(folder, 60)
    out = tmp_path / "out"
    common = ["embed", str(folder), "--model", vit, "--output", str(out), "--progress", "none", "--dtype",
              "float32", "--workers", "1", "--batch-size", "4"]
    first = featx_subprocess(*common, "--shard-size", "5")
    second = featx_subprocess(*common, "--shard-size", "7")
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in (first, second)]
    codes = sorted(rc for rc, _ in results)
    assert codes in ([0, 0], [0, 2]), results  # the second refuses, or starts after the first ended
    if codes == [0, 2]:
        assert "in use by another featx job (pid" in next(err for rc, err in results if rc == 2)
    assert sorted(read_rows(out)) == sorted(paths)  # read_rows asserts each path appears once


def test_temp_names_are_unique_to_the_process_and_call():
    a, b = tmp_name("part-000001.parquet"), tmp_name("part-000001.parquet")
    assert a.startswith(f"_tmp-{os.getpid()}-") and a.endswith("-part-000001.parquet") and a != b


# ---- damaged shards -----------------------------------------------------------------------------

def test_a_damaged_shard_is_named_with_the_repair_command_and_repair_recomputes(vit, photos, tmp_path, capsys,
                                                                                monkeypatch):
    folder, paths = photos
    out = tmp_path / "out"
    assert _embed(folder, "--model", vit, "--output", out, "--shard-size", "4") == EXIT_OK
    assert main(["index", str(out)]) == EXIT_OK
    truncated, corrupted = out / "part-000001.parquet", out / "part-000002.parquet"
    truncated.write_bytes(truncated.read_bytes()[:300])  # a copy that stopped
    data = bytearray(corrupted.read_bytes())
    data[4:200] = b"\xff" * 196  # garbage where the first pages were
    corrupted.write_bytes(bytes(data))
    capsys.readouterr()

    assert _embed(folder, "--model", vit, "--output", out, "--shard-size", "4") == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"{truncated} is damaged (ArrowInvalid" in err and "--repair" in err and "Traceback" not in err
    command = err.split("\n  ", 1)[1].splitlines()[0]
    assert command.startswith("featx embed ") and command.endswith(" --repair")
    for args in (["search", str(out), paths[0]], ["search", str(out), paths[0], "--exact"], ["index", str(out)]):
        assert main(args) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "is damaged" in err and "--repair" in err and f"featx index {out}" in err

    # the command from the message, as printed, repairs the folder
    monkeypatch.chdir(REPO)
    argv = shlex.split(command.split(" && ")[-1])
    assert argv[:2] == ["featx", "embed"] and "--dtype" in argv and "float32" in argv
    with pytest.warns(UserWarning, match="is damaged") as warned:
        assert main(argv[1:] + ["--progress", "none"]) == EXIT_OK
    assert len(warned) == 2
    assert sorted(p.name for p in (out / BAD_DIR).iterdir()) == ["part-000001.parquet", "part-000002.parquet"]
    assert sorted(read_rows(out)) == sorted(paths)  # every input exactly once
    with pytest.warns(UserWarning, match="older than the shards"):  # the index predates the repair
        assert main(["search", str(out), paths[0], "-k", "3"]) == EXIT_OK
    assert main(["index", str(out)]) == EXIT_OK
    assert _embed(folder, "--model", vit, "--output", out, "--shard-size", "4", "--repair") == EXIT_OK


def _npy_output(out: Path, n: int, shard_size: int) -> None:
    schema = pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), 2)), ("error", pa.string())])
    out.mkdir()
    writer = ShardWriter(out, schema, metadata={"kind": "embeddings"}, shard_size=shard_size,
                         npy={"embedding": np.dtype("float32")})
    for i in range(n):
        writer.add_rows([{"path": f"p{i}", "embedding": np.full(2, i, np.float32)}])
    writer.close()
    (out / "_featx.json").write_text('{"kind": "embeddings", "format": "npy"}')


def test_repair_moves_a_shard_whose_npy_file_is_missing_or_short(tmp_path):
    out = tmp_path / "out"
    _npy_output(out, 9, 3)
    (out / NPY_DIR / "part-000000.npy").unlink()
    np.save(out / NPY_DIR / "part-000002.npy", np.zeros((2, 2), np.float32))
    with pytest.warns(UserWarning):
        moved = repair_output(out)
    assert [p.name for p in moved] == ["part-000000.parquet", "part-000002.parquet"]
    assert (out / BAD_DIR / NPY_DIR / "part-000002.npy").is_file()
    assert [p.name for p in out.glob("part-*")] == ["part-000001.parquet"]
    assert repair_output(out) == []


# ---- a full disk ----------------------------------------------------------------------------------

def _schema() -> pa.Schema:
    return pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), 4)), ("error", pa.string())])


def test_a_short_npy_write_is_reported_as_a_full_disk_naming_the_file(tmp_path, monkeypatch):
    def short_save(path, array):  # what np.save on a full disk does: part of the bytes, then this
        with open(path, "wb") as fh:
            fh.write(b"\x93NUMPY" + b"\0" * 100)
        raise OSError(f"{array.nbytes} requested and 41952 written")

    monkeypatch.setattr(np, "save", short_save)
    writer = ShardWriter(tmp_path, _schema(), metadata={}, npy={"embedding": np.dtype("float32")})
    writer.add_rows([{"path": "a", "embedding": np.ones(4, np.float32)}])
    with pytest.raises(ShardWriteError) as info:
        writer.close()
    assert str(info.value).startswith(f"no space left on device while writing {tmp_path / NPY_DIR / 'part-000000.npy'}")
    assert info.value.errno == errno.ENOSPC and "run the same command again" in str(info.value)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # temp file removed, no shard


def test_enospc_while_writing_parquet_names_the_shard_through_the_cli(vit, photos, tmp_path, monkeypatch, capsys):
    folder, _ = photos

    def full_disk(table, where, *args, **kwargs):
        Path(where).write_bytes(b"PAR1")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full_disk)
    out = tmp_path / "out"
    assert _embed(folder, "--model", vit, "--output", out) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"featx: error: no space left on device while writing {out / 'part-000000.parquet'}" in err
    assert not list(out.glob("_tmp-*")) and not list(out.glob("part-*"))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "out"
    holder = _hold_lock(out)
    with pytest.raises(OutputBusyError):
        OutputLock(out).acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with OutputLock(out) as lock:
        assert lock.held and (out / LOCK_FILE).read_text().split()[0] == str(os.getpid())
