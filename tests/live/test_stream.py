"""``featx stream``: the windows of generated PCM piped through it equal those of the same audio
embedded as a file (offsets and embeddings), voice-activity gating skips silence, --stats reports
latency, --output writes searchable shards."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.dataset as ds
import pytest

from featx.audio import chunk
from featx.cli import main
from featx.embedding import Embedder
from featx.live.source import SourceSpec
from featx.live.stream import StreamOptions, level_db, run_stream

from ..engine._helpers import REPO
from ._audio import bursts, pcm_bytes, write_wav


@pytest.fixture(scope="module")
def ast(tiny_checkpoint):
    return str(tiny_checkpoint("audio-spectrogram-transformer"))


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("stream_audio")
    wave = bursts(7.0)
    (d / "a.raw").write_bytes(pcm_bytes(wave))
    write_wav(d / "a.wav", wave)
    return d


@pytest.fixture(scope="module")
def file_rows(ast, audio, tmp_path_factory):
    """``featx embed --windows`` of the WAV: the file path's windows."""
    out = tmp_path_factory.mktemp("file_path") / "out"
    assert main(["embed", str(audio / "a.wav"), "-m", ast, "-o", str(out), "--windows", "--dtype", "float32",
                 "--progress", "none"]) == 0
    return sorted(ds.dataset(str(out)).to_table().to_pylist(), key=lambda r: r["window"])


def _stream(*args, stdin: bytes, env: dict[str, str] | None = None):
    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
           **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "featx", "stream", *args], input=stdin, capture_output=True,
                          check=False, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines()], proc.stderr.decode()


def _same(lines, rows):
    assert [(x["window"], x["start"], x["end"]) for x in lines] == [(r["window"], r["start"], r["end"]) for r in rows]
    np.testing.assert_allclose(np.asarray([x["embedding"] for x in lines]), np.asarray([r["embedding"] for r in rows]),
                               rtol=1e-4, atol=1e-5)


def test_piped_pcm_gives_the_file_paths_windows(ast, audio, file_rows):
    lines, err = _stream("-m", ast, "--format", "s16le", "--rate", "16000", "--dtype", "float32", "--stats",
                         stdin=(audio / "a.raw").read_bytes())
    assert len(file_rows) == 6 and file_rows[-1]["end"] == 7 * 16000  # 5 full windows and a short one
    _same(lines, file_rows)
    assert all(x["end_s"] == x["end"] / 16000 and x["start_s"] == x["start"] / 16000 for x in lines)
    assert all(x["latency_ms"] >= x["model_ms"] > 0 for x in lines)
    summary = json.loads(err.split("featx: stream ", 1)[1])
    assert summary["windows"] == 6 and summary["latency_ms_p50"] > 0


def test_piped_container_gives_the_same_windows(ast, audio, file_rows):
    lines, _ = _stream("-m", ast, "--dtype", "float32", stdin=(audio / "a.wav").read_bytes())
    _same(lines, file_rows)


def test_another_backend_gives_the_same_windows(ast, audio, file_rows, tmp_path):
    pytest.importorskip("onnxruntime")
    lines, _ = _stream("-m", ast, "--format", "s16le", "--rate", "16000", "--dtype", "float32", "--backend", "onnx",
                       stdin=(audio / "a.raw").read_bytes(), env={"FEATX_CACHE_DIR": str(tmp_path / "cache")})
    assert [(x["window"], x["start"], x["end"]) for x in lines] == [(r["window"], r["start"], r["end"]) for r in file_rows]
    np.testing.assert_allclose(np.asarray([x["embedding"] for x in lines]),
                               np.asarray([r["embedding"] for r in file_rows]), rtol=0, atol=1e-4)
    assert list((tmp_path / "cache" / "onnx").glob("*.onnx"))  # the graph ran, not torch


def test_window_and_hop_equal_chunked_file(tiny_checkpoint, audio, capsys):
    w2v = str(tiny_checkpoint("wav2vec2"))
    assert main(["stream", str(audio / "a.raw"), "-m", w2v, "--format", "s16le", "--window-s", "2.5",
                 "--hop-s", "2", "--dtype", "float32"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    # the file path with these windows: the whole file decoded, chunked, processed together, embedded
    embedder = Embedder(w2v, dtype="float32")
    from featx import load_audio

    samples = load_audio(str(audio / "a.wav"), sampling_rate=16000)[0]
    windows = list(chunk(samples, chunk_length_s=2.5, stride_length_s=(0.5, 0), sampling_rate=16000))
    arrays = embedder.family.window_arrays(embedder.processor, [w.samples for w in windows])
    [expected] = embedder.embed_windows([arrays])
    assert [(x["start"], x["end"]) for x in lines] == [(w.start, w.end) for w in windows]
    assert [w.start for w in windows] == [0, 32000, 64000, 96000] and windows[-1].end == 112000  # short last
    np.testing.assert_allclose(np.asarray([x["embedding"] for x in lines]), expected, rtol=1e-4, atol=1e-5)


def test_voice_activity_gating_skips_silence(ast, audio, file_rows, capsys):
    assert main(["stream", str(audio / "a.raw"), "-m", ast, "--format", "s16le", "--dtype", "float32",
                 "--vad", "-45"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    silent = [r["window"] for r in file_rows if r["start"] >= 2 * 16000 and r["end"] <= 4 * 16000]
    assert silent == [2]
    _same(lines, [r for r in file_rows if r["window"] not in silent])
    assert level_db(np.zeros(10, np.float32)) == float("-inf") and level_db(np.ones(4, np.float32)) == 0.0


def test_output_shards_are_searchable(ast, audio, file_rows, tmp_path, capsys):
    out = tmp_path / "live"
    embedder = Embedder(ast, dtype="float32")
    stats = run_stream(embedder, SourceSpec(str(audio / "a.raw"), fmt="s16le"), StreamOptions(output=str(out),
                                                                                              shard_size=4))
    assert stats.windows == 6 and len(stats.latencies) == 6
    rows = sorted(ds.dataset(str(out)).to_table().to_pylist(), key=lambda r: r["window"])
    assert len(list(out.glob("part-*.parquet"))) == 2
    _same(rows, file_rows)
    assert [r["start_s"] for r in rows] == [r["start"] / 16000 for r in rows]
    assert main(["search", str(out), str(audio / "a.raw"), "-k", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split()[2].startswith(f"{audio / 'a.raw'}@")


def test_errors(tiny_checkpoint, audio, capsys):
    vit = str(tiny_checkpoint("vit"))
    assert main(["stream", str(audio / "a.raw"), "-m", vit, "--format", "s16le"]) == 2
    assert "audio model" in capsys.readouterr().err
    ast_model = str(tiny_checkpoint("audio-spectrogram-transformer"))
    assert main(["stream", str(audio / "a.raw"), "-m", ast_model, "--format", "s16le", "--window-s", "1",
                 "--hop-s", "2"]) == 2
    assert "--hop-s" in capsys.readouterr().err
