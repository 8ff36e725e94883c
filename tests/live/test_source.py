"""Stream sources decode like `featx.load_audio`: raw PCM formats, channel mixing, resampling,
containers, and a file read as it grows."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from featx import load_audio
from featx.errors import ConfigError, InputError
from featx.live.source import SourceSpec, open_blocks

from ._audio import bursts, pcm_bytes, write_wav


def _read(spec, rate=16000, want=None):
    blocks = list(open_blocks(spec, rate, want))
    assert all(b.samples.dtype == np.float32 for b in blocks)
    return np.concatenate([b.samples for b in blocks]) if blocks else np.zeros(0, np.float32)


@pytest.mark.parametrize("fmt", ["s16le", "s32le", "f32le"])
@pytest.mark.parametrize("channels", [1, 2])
def test_raw_pcm_equals_the_file(tmp_path, fmt, channels):
    wave = bursts(3.0, channels=channels)
    raw = tmp_path / "a.raw"
    raw.write_bytes(pcm_bytes(wave, fmt))
    subtype = {"s16le": "PCM_16", "s32le": "PCM_32", "f32le": "FLOAT"}[fmt]
    import soundfile as sf

    sf.write(str(tmp_path / "a.wav"), np.frombuffer(raw.read_bytes(), {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4"}[fmt])
             .reshape(-1, channels), 16000, subtype=subtype)
    expected = load_audio(str(tmp_path / "a.wav"), sampling_rate=16000)[0]
    got = _read(SourceSpec(str(raw), fmt=fmt, channels=channels), want=lambda: 777)  # odd read sizes
    np.testing.assert_array_equal(got, expected)


def test_resampling_equals_load_audio(tmp_path):
    wave = bursts(3.0, rate=8000)
    raw = tmp_path / "a.raw"
    raw.write_bytes(pcm_bytes(wave))
    write_wav(tmp_path / "a.wav", wave, 8000)
    expected = load_audio(str(tmp_path / "a.wav"), sampling_rate=16000)[0]
    got = _read(SourceSpec(str(raw), fmt="s16le", rate=8000), want=lambda: 1000)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_containers_equal_load_audio(tmp_path, suffix):
    import soundfile as sf

    wave = bursts(2.0, rate=22050, channels=2)
    path = tmp_path / f"a{suffix}"
    sf.write(str(path), wave, 22050, subtype="PCM_16")
    expected = load_audio(str(path), sampling_rate=16000)[0]
    got = _read(SourceSpec(str(path)))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_growing_file_is_read_as_it_grows(tmp_path):
    wave = bursts(2.0)
    data = pcm_bytes(wave)
    path = tmp_path / "growing.raw"
    path.write_bytes(b"")

    def writer():
        for i in range(0, len(data), 8000):
            with open(path, "ab") as fh:
                fh.write(data[i:i + 8000])
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    got = _read(SourceSpec(str(path), fmt="s16le", follow=True, idle_timeout=0.5))
    thread.join()
    np.testing.assert_array_equal(got, np.frombuffer(data, "<i2").astype(np.float32) / 32768)


def test_bad_sources(tmp_path):
    with pytest.raises(ConfigError, match="http"):
        SourceSpec("ftp://example.com/a.wav")
    with pytest.raises(ConfigError, match="--format"):
        SourceSpec("-", fmt="mp3")
    with pytest.raises(ConfigError, match="--follow"):
        SourceSpec("-", follow=True)
    odd = tmp_path / "odd.raw"
    odd.write_bytes(b"\x01\x02\x03")
    with pytest.raises(InputError, match="stray bytes"):
        _read(SourceSpec(str(odd), fmt="s16le"))
    text = tmp_path / "a.txt"
    text.write_text("not audio " * 100)
    with pytest.raises(InputError):
        _read(SourceSpec(str(text)))


def test_a_url_stream(tmp_path):
    import functools
    import http.server

    wave = bursts(2.0)
    write_wav(tmp_path / "a.wav", wave)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        got = _read(SourceSpec(f"http://127.0.0.1:{server.server_address[1]}/a.wav"))
    finally:
        server.shutdown()
    np.testing.assert_allclose(got, load_audio(str(tmp_path / "a.wav"), sampling_rate=16000)[0], atol=1e-6)
