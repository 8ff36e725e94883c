"""A video job killed with SIGKILL mid-way and restarted writes every frame row exactly once,
with the embeddings of an uninterrupted run (an input's rows are written together, once all its
frames are embedded, and the input is then done)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import numpy as np
import pyarrow.dataset as ds
import pytest

from featx.cli import main

from ..engine._helpers import featx_subprocess
from ._media import colour_video


def _frame_rows(out):
    rows = ds.dataset(str(out)).to_table().to_pylist()
    return {(r["path"], r["frame"]): r for r in rows}, Counter((r["path"], r["frame"]) for r in rows)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_video_then_restart_gives_each_frame_row_once(videos, tiny_checkpoint, tmp_path):
    vit = str(tiny_checkpoint("vit"))
    folder = tmp_path / "clips"
    folder.mkdir()
    # larger frames keep each video busy long enough to be killed while one is being decoded
    for i in range(8):
        colour_video(folder / f"clip_{i:02d}.mp4", 2, 20, size=(160, 120))
    args = ["embed", str(folder), "--model", vit, "--output", str(tmp_path / "killed"), "--shard-size", "1",
            "--workers", "1", "--progress", "none", "--dtype", "float32", "--video-fps", "20"]
    out = tmp_path / "killed"
    proc = featx_subprocess(*args)
    deadline = time.monotonic() + 120
    first = out / "part-000000.parquet"
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.exists(), proc.communicate()[1] if proc.poll() is not None else "no shard within 120 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial, counts = _frame_rows(out)
    done_paths = {p for p, _ in partial}
    assert 1 <= len(done_paths) < 8, "the job ended before it could be killed mid-way"
    assert max(counts.values()) == 1
    assert all(sum(1 for p, _ in partial if p == path) == 40 for path in done_paths)  # whole videos only

    restart = featx_subprocess(*args)
    _, err = restart.communicate(timeout=300)
    assert restart.returncode == 0, err
    assert f"skipped {len(done_paths)}" in err
    resumed, counts = _frame_rows(out)
    assert max(counts.values()) == 1 and len(resumed) == 8 * 40

    clean = tmp_path / "clean"
    assert main([a if a != str(out) else str(clean) for a in args] + ["--shard-size", "1000"]) == 0
    reference, _ = _frame_rows(clean)
    assert sorted(reference) == sorted(resumed)
    for key, row in reference.items():
        assert resumed[key]["time_s"] == row["time_s"]
        np.testing.assert_allclose(resumed[key]["embedding"], row["embedding"], rtol=1e-5, atol=1e-6)
