"""Fuzzing `load_image` / `load_audio` and the processors: every outcome is a featx error or a valid result.

300 seeded mutations (150 images, 150 audio files) of valid seed files of every container, run by
`tools/fuzz.py` in worker subprocesses so that a crash, a hang (past 10 s) or a memory blow-up
(+1.5 GB RSS) is caught and pinned to its case instead of taking pytest down. Longer runs:
``python tools/fuzz.py --cases 20000 --seed N`` (see its docstring).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import featx

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240917
CASES = 300


def _load_fuzz():
    name = "featx_tools_fuzz"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "fuzz.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules[name]


fuzz = _load_fuzz()


@pytest.fixture(scope="module")
def corpus():
    return fuzz.build_corpus()


def test_seed_files_cover_the_containers_and_decode(corpus):
    from featx.engine.inputs import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS

    for kind, extensions in (("image", IMAGE_EXTENSIONS), ("audio", AUDIO_EXTENSIONS)):
        suffixes = {"." + name.rsplit(".", 1)[-1] for name in corpus[kind]}
        assert suffixes <= extensions, suffixes - extensions
    assert {".jpg", ".png", ".gif", ".webp", ".bmp", ".tif", ".ico"} <= {
        "." + n.rsplit(".", 1)[-1] for n in corpus["image"]
    }
    assert {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".webm", ".mka"} <= {
        "." + n.rsplit(".", 1)[-1] for n in corpus["audio"]
    }
    for name, data in corpus["image"].items():
        image = featx.load_image(data)
        assert image.mode == "RGB" and image.width > 0 and image.height > 0, name
    for name, data in corpus["audio"].items():
        wave, rate = featx.load_audio(data, sampling_rate=16000)
        assert rate == 16000 and wave.ndim == 1 and wave.shape[0] > 1000, name


def test_cases_are_deterministic_and_format_aware(corpus):
    assert fuzz.make_case(corpus, SEED, 7).data == fuzz.make_case(corpus, SEED, 7).data
    assert len({fuzz.make_case(corpus, SEED, i).data for i in range(40)}) > 35
    for kind, seeds in corpus.items():
        for name, data in seeds.items():
            assert fuzz.layout_of(name, data).fields, f"no header fields to inflate in {name}"


def test_fuzz_outcomes_are_featx_errors_or_valid_results(tmp_path):
    report = fuzz.fuzz(CASES, SEED, workers=2, out_dir=tmp_path)
    print(report.summary())
    assert len(report.results) == CASES
    by_kind = report.counts_by_kind()
    for kind in fuzz.KINDS:
        counts = by_kind[kind]
        assert sum(counts.values()) == CASES // 2, counts
        # Both paths get exercised: mutations that still decode, and mutations that are refused.
        assert counts["ok"] >= CASES // 20 and counts["error"] >= CASES // 20, (kind, counts)
    assert not report.bugs(known=False), report.summary()


# ---- regressions found by the fuzzer (featx/audio/decode.py) ------------------------------------


def _wav_declaring(rate: int, frames: int) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    wave = 0.3 * np.sin(np.arange(frames) / 3.0)
    sf.write(buf, wave.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_upsampling_a_tiny_rate_keeps_memory_near_the_output():
    # A 4 KB WAV whose header says 1 Hz becomes 32M samples at 16 kHz. soxr was fed the whole
    # block at once and returned it in one array, copied again into the output: 2-4x the output.
    import tracemalloc

    data = _wav_declaring(1, 2000)
    tracemalloc.start()
    try:
        wave, rate = featx.load_audio(data, sampling_rate=16000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rate == 16000 and wave.shape == (2000 * 16000,)
    assert peak < 1.6 * wave.nbytes, (peak / 2**20, wave.nbytes / 2**20)


def test_ogg_granule_past_the_end_is_not_a_raw_valueerror():
    # libsndfile's position passes its declared length, so soundfile asked numpy for a negative
    # array size (ValueError); now load_audio starts over in PyAV (or raises InputError without it).
    corpus = fuzz.build_corpus(("audio",))
    data = bytearray(corpus["audio"]["ogg-opus-av.opus"])
    second = data.find(b"OggS", 4)
    data[second + 6 : second + 14] = (2**63 - 1).to_bytes(8, "little")  # granule position
    data[18:22] = (2**31 - 1).to_bytes(4, "little")  # page sequence number of the first page
    fuzz._fix_ogg(data)
    try:
        wave, rate = featx.load_audio(bytes(data), sampling_rate=16000)
    except featx.errors.InputError:
        return
    assert rate == 16000 and wave.ndim == 1 and wave.shape[0] > 0
