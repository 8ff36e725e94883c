"""Peak memory and time of ``featx.load_audio(path, sampling_rate=16000)`` on an hour of audio.

    python bench/audio_memory.py                         # 60 min FLAC and MP3, 48 kHz stereo
    python bench/audio_memory.py --old /tmp/io_old.py    # also a saved copy of the old io.py
    python bench/audio_memory.py --minutes 10            # shorter files (regenerated)

Inputs are generated once into bench/_data/ (gitignored): 48 kHz stereo, a few tones plus a
little noise; FLAC with soundfile, MP3 with PyAV's libmp3lame (an hour takes a minute or two).
Each measurement runs in a fresh subprocess, which reports wall time, the peak RSS of the call
above the RSS just before it (Linux: peak mark reset through /proc/self/clear_refs), and the
process's ``ru_maxrss``. The "refused" row loads the MP3 with ``max_duration_s`` at half its
length: it should fail fast, without decoding the file. The output itself (mono float32 at
16 kHz) is 230 MB per hour; the target is a peak under 600 MB for an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "_data")
RATE = 48000
TARGET_MB = 600


def _signal(start: int, n: int) -> np.ndarray:
    """``(n, 2)`` float32 of tones and noise, continuous across blocks (``start`` in samples)."""
    t = (start + np.arange(n)) / RATE
    rng = np.random.default_rng(start)
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1375 * t)
    right = 0.3 * np.sin(2 * np.pi * 330 * t + 1.0)
    noise = 0.01 * rng.standard_normal((n, 2))
    return (np.stack([left, right], axis=1) + noise).astype(np.float32)


def make_flac(path: str, minutes: float) -> None:
    import soundfile as sf

    total = int(minutes * 60 * RATE)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16", format="FLAC") as snd:
        for i in range(0, total, 10 * RATE):
            snd.write(_signal(i, min(10 * RATE, total - i)))


def make_mp3(path: str, minutes: float) -> None:
    import av

    total = int(minutes * 60 * RATE)
    with av.open(path, "w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=RATE, layout="stereo")
        codec_format = stream.codec_context.codec.audio_formats[0].name
        frame_size = stream.codec_context.frame_size or 1152
        resampler = av.AudioResampler(format=codec_format, layout="stereo", rate=RATE, frame_size=frame_size)
        for i in range(0, total, 10 * RATE):
            block = _signal(i, min(10 * RATE, total - i))
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="stereo")  # packed
            frame.sample_rate, frame.pts = RATE, i
            for out in resampler.resample(frame):
                container.mux(stream.encode(out))
        for out in resampler.resample(None):
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))


def ensure_inputs(minutes: float) -> dict[str, str]:
    os.makedirs(DATA, exist_ok=True)
    paths = {}
    for kind, make in (("flac", make_flac), ("mp3", make_mp3)):
        path = os.path.join(DATA, f"memory_{minutes:g}min_48k_stereo.{kind}")
        if not os.path.exists(path):
            start = time.perf_counter()
            make(path + ".part", minutes)
            os.replace(path + ".part", path)
            print(f"  made {path} ({os.path.getsize(path) / 2**20:.0f} MB) in {time.perf_counter() - start:.0f} s")
        paths[kind] = path
    return paths


# ---- one measurement per subprocess ------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> int:
    """Reset the peak-RSS mark (Linux: /proc/self/clear_refs); the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    current = _status_kb("VmRSS")
    return (current if current is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _peak_rss() -> int:
    hwm = _status_kb("VmHWM")
    return (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _load_old(path: str) -> types.ModuleType:
    """A saved copy of featx/audio/io.py, imported as featx.audio._old_io (relative imports work)."""
    import importlib.util

    import featx.audio  # noqa: F401  (the parent package of the copy)

    spec = importlib.util.spec_from_file_location("featx.audio._old_io", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def child(path: str, old: str | None, max_duration_s: float | None) -> None:
    import av  # noqa: F401  (imports and codec setup happen before the baseline)
    import soundfile  # noqa: F401
    import soxr  # noqa: F401

    from featx.errors import InputError

    if old:
        load_audio = _load_old(old).load_audio
    else:
        from featx.audio.io import load_audio
    tiny = os.path.join(DATA, "memory_warmup.wav")
    if not os.path.exists(tiny):
        soundfile.write(tiny, np.zeros((4800, 2), np.float32), RATE)
    load_audio(tiny, sampling_rate=16000)
    baseline = _reset_peak_rss()
    start = time.perf_counter()
    try:
        capped = {} if max_duration_s is None else {"max_duration_s": max_duration_s}  # else the default cap
        wave, _ = load_audio(path, sampling_rate=16000, **capped)
        result = f"{wave.shape[0] / 16000 / 60:.1f} min"
    except InputError as exc:
        result = f"refused: {str(exc)[len(path) + 2 :][:60]}"
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    print(json.dumps({"seconds": seconds, "peak_mb": (peak - baseline) / 2**20, "baseline_mb": baseline / 2**20,
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "result": result}))


def run_child(path: str, old: str | None, max_duration_s: float | None) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", path]
    if old:
        cmd += ["--old", old]
    if max_duration_s is not None:
        cmd += ["--max-duration-s", str(max_duration_s)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        print(f"  {os.path.basename(path)}: failed ({tail})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--old", default=None, help="a saved copy of the previous featx/audio/io.py to compare")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-duration-s", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.old, args.max_duration_s)
        return
    sys.path.insert(0, os.path.dirname(HERE))  # the checkout's featx, also in the children
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(HERE), os.environ.get("PYTHONPATH")]))
    paths = ensure_inputs(args.minutes)
    print(f"load_audio(path, sampling_rate=16000) on {args.minutes:g} min of 48 kHz stereo; fresh process each; "
          f"output {args.minutes * 60 * 16000 * 4 / 2**20:.0f} MB; target peak < {TARGET_MB} MB per hour")
    print(f"  {'input':14s} {'code':5s} {'seconds':>8s} {'peak MB':>8s} {'maxrss MB':>10s}  result")
    cases = [("flac", paths["flac"], None), ("mp3", paths["mp3"], None),
             ("mp3 refused", paths["mp3"], args.minutes * 60 / 2)]
    for label, path, cap in cases:
        for code, old in (("old", args.old), ("new", None)):
            if code == "old" and not old:
                continue
            row = run_child(path, old, cap)
            if row is not None:
                print(f"  {label:14s} {code:5s} {row['seconds']:8.1f} {row['peak_mb']:8.0f} {row['maxrss_mb']:10.0f}  "
                      f"{row['result']}")


if __name__ == "__main__":
    main()
