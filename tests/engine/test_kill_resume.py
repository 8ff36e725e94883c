"""A run killed with SIGKILL mid-job, restarted, stopped with SIGTERM and restarted again writes every
input exactly once, with the same embeddings as an uninterrupted run."""

import os
import signal
import time

import numpy as np
import pytest
import torch

from featx.cli import main

from ._helpers import featx_subprocess, photo, read_rows, write_photos


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_then_restart_gives_each_input_once(tiny_checkpoint, tmp_path):
    vit = str(tiny_checkpoint("vit"))
    folder = tmp_path / "photos"
    # JPEGs of a few hundred pixels a side: decoding keeps the job busy long enough to be killed mid-way
    paths = write_photos(folder, 300, fmt="jpg")
    for i, p in enumerate(paths[::3]):
        photo(i, (60, 45)).resize((480, 360)).save(p)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    paths.append(str(folder / "broken.jpg"))
    out = tmp_path / "killed"
    args = ["embed", str(folder), "--model", vit, "--output", str(out), "--shard-size", "10", "--batch-size", "5",
            "--workers", "1", "--progress", "none", "--dtype", "float32"]
    proc = featx_subprocess(*args)
    first = out / "part-000000.parquet"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.exists(), proc.communicate()[1] if proc.poll() is not None else "no shard within 120 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = read_rows(out)  # only complete shards are visible, each path once
    assert 10 <= len(partial) < len(paths), "the job ended before it could be killed mid-way"
    assert len(partial) % 10 == 0

    # SIGTERM (as a batch scheduler sends): finished rows are flushed, exit status 130
    second = featx_subprocess(*args)
    next_shard = out / f"part-{len(partial) // 10:06d}.parquet"
    while not next_shard.exists() and second.poll() is None and time.monotonic() < deadline + 120:
        time.sleep(0.005)
    second.send_signal(signal.SIGTERM)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 130, err
    assert "interrupted: done" in err and f"skipped {len(partial)}" in err
    partial2 = read_rows(out)
    assert len(partial) < len(partial2) < len(paths)

    restart = featx_subprocess(*args)
    _, err = restart.communicate(timeout=300)
    assert restart.returncode == 3, err  # completed, with the broken file's error row
    assert f"skipped {len(partial2)}" in err
    assert not list(out.glob("_tmp-*"))

    clean = tmp_path / "clean"  # the uninterrupted run, in-process (saves a start-up)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the children (OMP_NUM_THREADS=1): spinning threads crawl on a busy machine
    try:
        assert main([a if a != str(out) else str(clean) for a in args] + ["--shard-size", "1000"]) == 3
    finally:
        torch.set_num_threads(threads)

    resumed, reference = read_rows(out), read_rows(clean)
    assert sorted(resumed) == sorted(reference) == sorted(paths)
    for path, row in reference.items():
        if row["error"] is not None:
            assert path.endswith("broken.jpg") and resumed[path]["error"] == row["error"]
            continue
        np.testing.assert_allclose(np.asarray(resumed[path]["embedding"]), np.asarray(row["embedding"]),
                                   rtol=1e-5, atol=1e-6)
