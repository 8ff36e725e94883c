"""Peak memory of `featx embed` does not grow with the number of inputs (1,000 vs 10,000 files)."""

import os
import shutil

import pytest

from ._helpers import featx_subprocess, photo


def _folder(root, n, originals):
    """``n`` distinct paths (hard links to a few small PNGs: distinct inputs, cheap to make)."""
    folder = root / f"in_{n}"
    for i in range(n):
        sub = folder / f"d{i // 1000:02d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        src = originals[i % len(originals)]
        try:
            os.link(src, sub / f"f{i:06d}.png")
        except OSError:  # no hard links on this file system
            shutil.copyfile(src, sub / f"f{i:06d}.png")
    return folder


def _peak_rss_mb(proc):
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024  # KiB on Linux


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 for the child's peak RSS")
def test_peak_memory_is_flat_from_1k_to_10k_inputs(tiny_checkpoint, tmp_path):
    vit = str(tiny_checkpoint("vit"))
    originals = []
    for i in range(16):
        path = tmp_path / f"orig_{i}.png"
        photo(i, (12, 10)).save(path)
        originals.append(path)
    peaks, outputs = {}, {}
    procs = {}
    for n in (1_000, 10_000):  # both at once: the small run hides in the big one's time
        folder = _folder(tmp_path, n, originals)
        outputs[n] = tmp_path / f"out_{n}"
        procs[n] = featx_subprocess("embed", str(folder), "--model", vit, "--output", str(outputs[n]),
                                    "--batch-size", "64", "--workers", "2", "--progress", "none")
    for n, proc in procs.items():
        peaks[n] = _peak_rss_mb(proc)
        err = proc.stderr.read()
        assert proc.returncode == 0, err
        assert f"done {n}, failed 0" in err
    growth = peaks[10_000] - peaks[1_000]
    print(f"peak RSS: 1k inputs {peaks[1_000]:.0f} MiB, 10k inputs {peaks[10_000]:.0f} MiB (+{growth:.0f} MiB)")
    # 9,000 more inputs: the done-key set grows by ~70 KB and the shard buffer by a few MB; anything
    # proportional to the inputs (a list of paths, rows kept in memory) would show as tens of MB.
    assert growth < max(40.0, 0.15 * peaks[1_000]), peaks
