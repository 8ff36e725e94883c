"""`featx.load_audio`: formats, sample types, sources, downmix, resampling and errors."""

from __future__ import annotations

import http.server
import io
import pathlib
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
import soxr

import featx
from featx.audio import Audio, load_audio
from featx.errors import DependencyError, InputError

SR = 16000


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def encode_pyav(x: np.ndarray, sr: int, fmt: str, codec: str) -> bytes:
    """Encode a (samples,) or (samples, channels) float signal with PyAV into container bytes."""
    import av

    x = np.atleast_2d(np.asarray(x, dtype=np.float32).T)  # (channels, samples)
    layout = "mono" if x.shape[0] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=sr, layout=layout)
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=sr)
        frame_size = stream.codec_context.frame_size or 1024
        for i in range(0, x.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + frame_size]), format="fltp", layout=layout)
            frame.sample_rate = sr
            frame.pts = i
            for out in resampler.resample(frame):
                for packet in stream.encode(out):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def _has_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def wav_bytes(x, sr=SR, subtype="PCM_16", fmt="WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, subtype=subtype, format=fmt)
    return buf.getvalue()


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    "subtype, tol",
    [("PCM_U8", 1 / 64), ("PCM_16", 1 / 2**15), ("PCM_24", 1 / 2**23), ("PCM_32", 1e-7), ("FLOAT", 1e-7), ("DOUBLE", 1e-7)],
)
def test_wav_sample_types_are_scaled_to_unit_range(speechlike, subtype, tol):
    wave, rate = load_audio(wav_bytes(speechlike, subtype=subtype))
    assert rate == SR and wave.dtype == np.float32 and wave.shape == speechlike.shape
    np.testing.assert_allclose(wave, speechlike, atol=tol * 1.01 + 1e-7)


@pytest.mark.parametrize("fmt, subtype, tol", [("FLAC", "PCM_16", 1 / 2**15), ("FLAC", "PCM_24", 1 / 2**23)])
def test_flac(speechlike, fmt, subtype, tol):
    wave, rate = load_audio(wav_bytes(speechlike, subtype=subtype, fmt=fmt))
    assert rate == SR and wave.shape == speechlike.shape
    np.testing.assert_allclose(wave, speechlike, atol=tol * 1.01)


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_ogg(speechlike, subtype):
    if subtype not in sf.available_subtypes("OGG"):
        pytest.skip(f"this libsndfile has no OGG/{subtype}")
    sr = 48000 if subtype == "OPUS" else SR
    x = sine(440.0, sr, 0.5)
    data = wav_bytes(x, sr=sr, subtype=subtype, fmt="OGG")
    wave, rate = load_audio(data)
    assert rate == sr and wave.shape == x.shape
    np.testing.assert_array_equal(wave, sf.read(io.BytesIO(data), dtype="float32")[0])  # lossy: same decoder
    assert np.corrcoef(wave, x)[0, 1] > 0.99


def test_stereo_is_downmixed_by_mean_or_kept(speechlike):
    stereo = np.stack([speechlike, -0.5 * speechlike], axis=1)
    data = wav_bytes(stereo, subtype="FLOAT")
    wave, _ = load_audio(data)
    np.testing.assert_allclose(wave, 0.25 * speechlike, atol=1e-6)
    both, rate = load_audio(data, mono=False)
    assert both.shape == (2, len(speechlike)) and both.flags.c_contiguous  # librosa's (channels, samples)
    np.testing.assert_allclose(both[1], -0.5 * speechlike, atol=1e-6)
    mono, _ = load_audio(wav_bytes(speechlike, subtype="FLOAT"), mono=False)
    assert mono.shape == (1, len(speechlike))


def test_sources_path_pathlib_bytes_file_objects(tmp_path, speechlike):
    data = wav_bytes(speechlike)
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    expected, _ = load_audio(data)
    assert isinstance(load_audio(str(path)), Audio)
    for src in (str(path), path, bytearray(data), memoryview(data), io.BytesIO(data)):
        wave, rate = load_audio(src)
        np.testing.assert_array_equal(wave, expected)
    with open(path, "rb") as fh:
        np.testing.assert_array_equal(load_audio(fh).waveform, expected)
        assert not fh.closed  # the caller's file stays open

    class Unseekable(io.RawIOBase):
        def __init__(self, payload):
            self._inner = io.BytesIO(payload)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, b):
            chunk = self._inner.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    np.testing.assert_array_equal(load_audio(Unseekable(data)).waveform, expected)


def test_public_name_and_dtype(speechlike):
    assert featx.load_audio is load_audio
    wave, _ = load_audio(wav_bytes(speechlike, subtype="DOUBLE"), dtype=np.float64)
    assert wave.dtype == np.float64
    np.testing.assert_allclose(wave, speechlike, atol=1e-12)


@pytest.mark.parametrize("orig, target, freq", [(44100, 16000, 1000.0), (8000, 16000, 440.0), (48000, 22050, 3000.0)])
def test_resampling_keeps_a_sine_at_its_frequency(orig, target, freq):
    x = sine(freq, orig, 1.0)
    wave, rate = load_audio(wav_bytes(x, sr=orig, subtype="FLOAT"), sampling_rate=target)
    assert rate == target
    assert len(wave) == int(round(len(x) * target / orig))
    assert abs(peak_hz(wave, target) - freq) <= 1.0
    # Same numbers as soxr HQ on the decoded signal, and close to the ideal sine away from the edges.
    np.testing.assert_allclose(wave, soxr.resample(x.astype(np.float32), orig, target, quality="HQ"), atol=1e-6)
    ideal = sine(freq, target, 1.0)[: len(wave)]
    np.testing.assert_allclose(wave[200:-200], ideal[200:-200], atol=2e-3)


def test_same_rate_is_not_resampled(speechlike):
    data = wav_bytes(speechlike, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(data, sampling_rate=SR).waveform, load_audio(data).waveform)
    assert load_audio(data, sampling_rate=8000.0).sampling_rate == 8000


def test_url_source(tmp_path, speechlike):
    (tmp_path / "a.wav").write_bytes(wav_bytes(speechlike))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        wave, rate = load_audio(f"{url}/a.wav", sampling_rate=8000)
        assert rate == 8000 and len(wave) == len(speechlike) // 2
        with pytest.raises(InputError, match="404"):
            load_audio(f"{url}/missing.wav")
    finally:
        server.shutdown()
        server.server_close()


# ---- compressed formats through PyAV -------------------------------------------------------------


@pytest.mark.parametrize("sr", [16000, 44100])
def test_mp3_decodes_through_pyav(sr):
    pytest.importorskip("av")
    x = sine(440.0, sr, 1.0)
    wave, rate = load_audio(encode_pyav(np.stack([x, x], 1), sr, "mp3", "mp3"), sampling_rate=16000)
    assert rate == 16000 and wave.dtype == np.float32
    assert abs(len(wave) - 16000) <= 16  # gapless trimming: no encoder delay left over
    assert abs(peak_hz(wave, 16000) - 440.0) <= 1.0
    assert 0.4 < np.abs(wave).max() < 0.6


@pytest.mark.parametrize("fmt, codec, sr", [("ipod", "aac", 16000), ("webm", "libopus", 48000)])
def test_other_containers_decode_through_pyav(fmt, codec, sr):
    pytest.importorskip("av")
    x = sine(1000.0, sr, 0.5)
    data = encode_pyav(x, sr, fmt, codec)
    with pytest.raises(RuntimeError):
        sf.info(io.BytesIO(data))  # libsndfile cannot read it: only PyAV can
    wave, rate = load_audio(data)
    assert rate == sr
    assert abs(peak_hz(wave, sr) - 1000.0) <= 4.0


def test_without_pyav(monkeypatch, speechlike):
    pytest.importorskip("av")
    mp3 = encode_pyav(sine(440.0, SR, 0.5), SR, "mp3", "mp3")
    m4a = encode_pyav(sine(440.0, SR, 0.5), SR, "ipod", "aac")
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    # libsndfile reads MP3 itself; PyAV is only preferred for it.
    wave, rate = load_audio(mp3)
    assert rate == SR and abs(peak_hz(wave, SR) - 440.0) <= 2.0
    with pytest.raises(DependencyError, match=r"featx\[mp3\]"):
        load_audio(m4a)
    with pytest.raises(InputError, match=r"not a recognised audio file.*featx\[mp3\]"):
        load_audio(b"definitely not audio, just text" * 4)
    np.testing.assert_array_equal(load_audio(wav_bytes(speechlike)).waveform, load_audio(wav_bytes(speechlike)).waveform)


# ---- errors ---------------------------------------------------------------------------------------


def test_missing_directory_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="no such file") as info:
        load_audio(tmp_path / "nope.wav")
    assert info.value.source == str(tmp_path / "nope.wav")
    with pytest.raises(InputError, match="directory"):
        load_audio(tmp_path)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty") as info:
        load_audio(empty)
    assert str(empty) in str(info.value)
    with pytest.raises(InputError, match="empty"):
        load_audio(b"")
    with pytest.raises(InputError, match="empty"):
        load_audio(io.BytesIO(b""))


def flac_header_only() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(1000), SR, format="FLAC")
    data, i = buf.getvalue(), 4
    while True:  # metadata blocks: 1 byte type (high bit = last), 3 bytes length
        last, length = data[i] & 0x80, int.from_bytes(data[i + 1 : i + 4], "big")
        i += 4 + length
        if last:
            return data[:i]


@pytest.mark.parametrize("kind", ["wav16", "wavfloat", "flac"])
def test_header_only_file(tmp_path, kind):
    path = tmp_path / f"header.{kind[:4]}"
    if kind == "flac":
        path.write_bytes(flac_header_only())
    else:
        sf.write(path, np.zeros(0), SR, subtype="PCM_16" if kind == "wav16" else "FLOAT", format="WAV")
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="no audio samples") as info:
        load_audio(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "payload", [b"hello, this is plain text and not audio at all", bytes(range(256)) * 4, b"RIFF\x00\x00\x00\x00WAVEjunk"]
)
def test_non_audio_bytes(tmp_path, payload):
    with pytest.raises(InputError, match="not a recognised audio file") as info:
        load_audio(payload)
    assert f"<{len(payload)} bytes>" in str(info.value)
    path = tmp_path / "fake.mp3"
    path.write_bytes(payload)
    with pytest.raises(InputError, match="fake.mp3"):
        load_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(tmp_path, bad):
    x = np.zeros(100, dtype=np.float32)
    x[[3, 50]] = bad
    path = tmp_path / "bad.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(InputError, match="2 NaN or infinite samples") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_duration_cap(speechlike):
    with pytest.raises(InputError, match="max_duration_s"):
        load_audio(wav_bytes(speechlike), max_duration_s=0.1)
    assert len(load_audio(wav_bytes(speechlike), max_duration_s=None).waveform) == len(speechlike)
    if _has_av():
        with pytest.raises(InputError, match="max_duration_s"):
            load_audio(encode_pyav(sine(440.0, SR, 1.0), SR, "mp3", "mp3"), max_duration_s=0.2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampling_rate=0), "positive int"),
        (dict(sampling_rate=-16000), "positive int"),
        (dict(sampling_rate=16000.5), "positive int"),
        (dict(sampling_rate="16k"), "positive int"),
        (dict(dtype=np.int16), "float32 or float64"),
    ],
)
def test_bad_arguments(speechlike, kwargs, match):
    with pytest.raises(InputError, match=match):
        load_audio(wav_bytes(speechlike), **kwargs)


@pytest.mark.parametrize("src, match", [(np.zeros(10), "already a waveform"), (12345, "cannot load audio from a int")])
def test_unsupported_sources(src, match):
    with pytest.raises(InputError, match=match):
        load_audio(src)


def test_pathlike_unicode_name(tmp_path, speechlike):
    path = pathlib.Path(tmp_path) / "ünïcödé clip.flac"
    sf.write(path, speechlike, SR, format="FLAC")
    assert load_audio(path).waveform.shape == speechlike.shape
