"""`featx embed` on audio with a tiny AST (window 1.295 s): pooled rows and per-window rows."""

import numpy as np
import pytest
import soundfile as sf

from featx.cli import EXIT_FAILED_INPUTS, main
from featx.embedding import Embedder

from .engine._helpers import read_rows


@pytest.fixture(scope="module")
def audio(tiny_checkpoint, tmp_path_factory):
    ast = str(tiny_checkpoint("audio-spectrogram-transformer"))
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate([0.5, 2.0, 3.5]):
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.02 * rng.standard_normal(t.size)
        path = folder / f"clip{i}.wav"
        sf.write(path, wave.astype(np.float32), 16000)
        paths.append(str(path))
    sf.write(folder / "clip_44k.flac", (0.2 * rng.standard_normal(44100)).astype(np.float32), 44100)  # resampled
    paths.append(str(folder / "clip_44k.flac"))
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return ast, folder, paths, str(folder / "broken.wav")


def test_pooled_rows_equal_the_embedder(audio, tmp_path):
    ast, folder, paths, broken = audio
    out = tmp_path / "out"
    assert main(["embed", str(folder), "--model", ast, "--output", str(out), "--batch-size", "2",
                 "--progress", "none", "--dtype", "float32"]) == EXIT_FAILED_INPUTS
    rows = read_rows(out)
    assert sorted(rows) == sorted(paths + [broken])
    emb = Embedder(ast, dtype="float32")
    expected = emb.embed([emb.prepare(p) for p in paths])
    for path, want in zip(paths, expected):
        np.testing.assert_allclose(np.asarray(rows[path]["embedding"]), want, rtol=1e-4, atol=1e-5)
    assert rows[broken]["embedding"] is None and rows[broken]["error"]


def test_window_rows_with_offsets(audio, tmp_path):
    ast, folder, paths, broken = audio
    out = tmp_path / "out"
    assert main(["embed", *paths, broken, "--model", ast, "--output", str(out), "--windows", "--shard-size", "2",
                 "--progress", "none", "--dtype", "float32"]) == EXIT_FAILED_INPUTS
    import pyarrow.dataset as ds

    table = ds.dataset(str(out)).to_table().to_pylist()
    emb = Embedder(ast, dtype="float32")
    for path in paths:
        prepared = emb.prepare(path)
        (want,) = emb.embed_windows([prepared])
        got = [r for r in table if r["path"] == path]
        assert [r["window"] for r in got] == list(range(len(want)))
        assert [[r["start"], r["end"]] for r in got] == prepared["offsets"].tolist()
        assert got[0]["start"] == 0 and all(a["end"] == b["start"] for a, b in zip(got, got[1:]))
        np.testing.assert_allclose(np.array([r["embedding"] for r in got]), want, rtol=1e-4, atol=1e-5)
    assert len([r for r in table if r["path"] == paths[2]]) == 3  # 3.5 s in 1.295 s windows
    assert [r["window"] for r in table if r["path"] == broken] == [None]


def test_windows_needs_audio_and_pooling(audio, tiny_checkpoint, tmp_path, capsys):
    ast, _, paths, _ = audio
    assert main(["embed", paths[0], "--model", ast, "--output", str(tmp_path / "a"), "--windows", "--pool", "none"]) == 2
    vit = str(tiny_checkpoint("vit"))
    assert main(["embed", paths[0], "--model", vit, "--output", str(tmp_path / "b"), "--windows"]) == 2
    assert "audio models only" in capsys.readouterr().err


def test_audio_features(audio, tmp_path):
    from featx.audio import load_audio
    from featx.pipelines import load_processor

    ast, _, paths, broken = audio
    out = tmp_path / "feats"
    assert main(["features", *paths, broken, "--processor", ast, "--output", str(out), "--progress", "none"]) == 3
    rows = read_rows(out)
    proc = load_processor(ast)
    for p in paths:
        wave = load_audio(p, sampling_rate=16000)
        wave = wave[0] if isinstance(wave, tuple) else wave
        want = proc(wave, sampling_rate=16000, return_tensors="np")["input_values"][0]
        assert rows[p]["input_values_shape"] == list(want.shape)
        np.testing.assert_array_equal(np.asarray(rows[p]["input_values"], np.float32).reshape(want.shape), want)
    assert rows[broken]["error"] and rows[broken]["input_values"] is None
