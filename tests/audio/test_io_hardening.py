"""`load_audio` hardening: 8+ channels through PyAV, bounded memory, duration caps, overflow.

Every input is built here (soundfile, and PyAV's encoders fed packed frames: PyAV's planar
``AudioFrame.from_ndarray``/``to_ndarray`` break at 8+ channels). What the encoders refuse, as
tried with this PyAV/FFmpeg: FLAC above 8 channels, AAC from 9 to 15 (16 works as
"hexadecagonal"), Opus above 8 unless ``mapping_family=255`` (then 1-16 work), MP3 above 2.
"""

from __future__ import annotations

import io
import os
import pathlib
import struct
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import soxr

from featx.audio import decode, load_audio
from featx.errors import InputError

av = pytest.importorskip("av")

REPO = pathlib.Path(__file__).resolve().parents[2]
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1", 16: "hexadecagonal"}


def tones(n_channels: int, sr: int, seconds: float, noise: float = 0.0) -> np.ndarray:
    """``(samples, channels)``: channel k holds a tone at 200 + 150 k Hz."""
    t = np.arange(int(round(sr * seconds))) / sr
    x = np.stack([0.6 / n_channels**0.5 * np.sin(2 * np.pi * (200 + 150 * k) * t) for k in range(n_channels)], 1)
    if noise:
        x += noise * np.random.default_rng(0).standard_normal(x.shape)
    return x


def encode(x: np.ndarray, sr: int, fmt: str, codec: str, layout: str, codec_options=None, format_options=None) -> bytes:
    """Encode ``(samples, channels)`` with PyAV from packed float frames."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt, options=format_options or {}) as container:
        stream = container.add_stream(codec, rate=sr, layout=layout, options=codec_options or {})
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(sample_fmt, layout, sr, frame_size=stream.codec_context.frame_size or 1024)
        for i in range(0, len(x), 4096):
            frame = av.AudioFrame.from_ndarray(x[i : i + 4096].reshape(1, -1), format="flt", layout=layout)
            frame.sample_rate, frame.pts = sr, i
            for out in resampler.resample(frame):
                container.mux(stream.encode(out))
        for out in resampler.resample(None):
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))
    return buf.getvalue()


def wav_bytes(x: np.ndarray, sr: int, subtype: str = "FLOAT") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, subtype=subtype, format="WAV")
    return buf.getvalue()


def data_chunk_first(wav: bytes) -> bytes:
    """A WAV with its data chunk before "fmt ": libsndfile refuses it, FFmpeg reads it (PyAV path)."""
    fmt_at, data_at = wav.index(b"fmt "), wav.index(b"data")
    out = wav[:12] + wav[data_at:] + wav[fmt_at:data_at]
    with pytest.raises(RuntimeError):
        sf.info(io.BytesIO(out))
    return out


def layout_of(kind: str, n: int) -> str:
    if kind == "webm-opus":
        return f"{n} channels" if n > 8 else {3: "3.0"}.get(n, LAYOUTS[n])
    return LAYOUTS.get(n, f"{n} channels")


def build(kind: str, n: int) -> bytes:
    layout = layout_of(kind, n)
    if kind == "mka-flac":
        return encode(tones(n, 48000, 0.5), 48000, "matroska", "flac", layout)
    if kind == "webm-opus":  # above 8 channels only Opus' "discrete channels" mapping family takes them
        options = {"mapping_family": "255"} if n > 8 else {}
        return encode(tones(n, 48000, 0.5), 48000, "webm", "libopus", layout, options)
    if kind == "m4a-aac":
        return encode(tones(n, 48000, 0.5), 48000, "ipod", "aac", layout)
    if kind == "mp3":
        return encode(tones(n, 44100, 0.5), 44100, "mp3", "mp3", layout)
    return data_chunk_first(wav_bytes(tones(n, 16000, 0.5), 16000, "PCM_16"))


MULTICHANNEL = {  # what each encoder takes (see the module docstring for what it refuses)
    "mka-flac": range(1, 9),
    "webm-opus": range(1, 17),
    "m4a-aac": [*range(1, 9), 16],
    "mp3": range(1, 3),
    "wav-corrupt": range(1, 17),
}

_CHILD = textwrap.dedent(
    """
    import sys, numpy as np
    from featx.audio import load_audio
    for path in sys.argv[1:]:
        print("decoding", path, flush=True)  # the last line names the file if this crashes
        mono, rate = load_audio(path)
        multi, _ = load_audio(path, mono=False)
        at16k, _ = load_audio(path, sampling_rate=16000)
        np.savez(path + ".npz", mono=mono, multi=multi, at16k=at16k, rate=rate)
    print("done", flush=True)
    """
)


def decode_in_subprocess(paths: list[pathlib.Path]) -> None:
    """Decode in a fresh interpreter: a crash there fails the test instead of killing pytest."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *map(str, paths)], capture_output=True, text=True, env=env, timeout=300
    )
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    assert proc.returncode == 0 and last == ["done"], (
        f"decoding crashed (exit {proc.returncode}) at: {last[0]}\n{proc.stderr[-2000:]}"
    )


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize("kind", sorted(MULTICHANNEL))
def test_many_channels_through_pyav_do_not_crash(tmp_path, kind):
    counts = list(MULTICHANNEL[kind])
    paths = []
    for n in counts:
        path = tmp_path / f"{kind}-{n}ch"
        path.write_bytes(build(kind, n))
        paths.append(path)
    decode_in_subprocess(paths)
    for n, path in zip(counts, paths):
        out = np.load(str(path) + ".npz")
        mono, multi, at16k, rate = out["mono"], out["multi"], out["at16k"], int(out["rate"])
        assert multi.ndim == 2 and multi.shape[0] == n and mono.shape == (multi.shape[1],), (n, multi.shape)
        assert mono.dtype == np.float32 and multi.flags.c_contiguous
        # The mono mix is the channel mean; bit for bit what the one-array mean gives for 1-2 channels.
        if n <= 2:
            np.testing.assert_array_equal(mono, multi.mean(axis=0, dtype=np.float32))
        else:
            np.testing.assert_allclose(mono, multi.mean(axis=0), atol=1e-6)
        np.testing.assert_array_equal(at16k, soxr.resample(mono, rate, 16000, quality="HQ"))
        # Each channel still holds its own tone (no garbage, no lost channels); lossy codecs
        # low-pass the LFE channel, so that one is left out.
        names = [c.name for c in av.AudioLayout(layout_of(kind, n)).channels]
        lossless = kind in ("mka-flac", "wav-corrupt")
        keep = [k for k in range(n) if lossless or names[k] != "LFE"]
        found = sorted(round(dominant_hz(multi[k], rate) / 150) for k in keep)
        assert found == sorted(round((200 + 150 * k) / 150) for k in keep), (n, found)


# ---- memory ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path_kind", ["soundfile", "pyav"])
def test_peak_memory_follows_the_output(path_kind):
    """60 s of 48 kHz stereo to 16 kHz mono: the old code held ~10x the output (18x via PyAV)."""
    x = tones(2, 48000, 60.0, noise=0.01)
    data = wav_bytes(x, 48000, "PCM_16")
    if path_kind == "pyav":
        data = encode(x, 48000, "matroska", "flac", "stereo")
    del x
    load_audio(data[:20000], sampling_rate=16000)  # imports and codec setup outside the measurement
    tracemalloc.start()
    try:
        wave, _ = load_audio(data, sampling_rate=16000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert wave.shape == (60 * 16000,)
    assert peak < wave.nbytes + 3 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {wave.nbytes / 2**20:.1f} MiB output"


def test_buffer_grows_and_shrinks_in_place():
    buf = decode._Buffer(np.dtype(np.float32), None, 10)
    parts = [np.arange(i, i + 700, dtype=np.float32) for i in range(0, 7000, 700)]
    for part in parts:
        buf.append(part)
    np.testing.assert_array_equal(buf.result(), np.concatenate(parts))
    wide = decode._Buffer(np.dtype(np.float64), 3, 1)
    blocks = [np.full((1500, 3), i, dtype=np.float64) for i in range(3)]
    for block in blocks:
        wide.append(block)
    np.testing.assert_array_equal(wide.result(), np.concatenate(blocks))


# ---- duration cap --------------------------------------------------------------------------------


DECLARED = {
    "mp3 (Info tag)": lambda x, sr: encode(x, sr, "mp3", "mp3", "mono"),
    "mka-flac": lambda x, sr: encode(x, sr, "matroska", "flac", "mono"),
    "webm-opus": lambda x, sr: encode(x, 48000, "webm", "libopus", "mono"),
    "m4a-aac": lambda x, sr: encode(x, sr, "ipod", "aac", "mono"),
    "wav (soundfile)": lambda x, sr: wav_bytes(x, sr),
    "wav (pyav)": lambda x, sr: data_chunk_first(wav_bytes(x, sr)),
}


@pytest.mark.parametrize("kind", sorted(DECLARED))
def test_declared_duration_is_refused_before_decoding(monkeypatch, kind):
    data = DECLARED[kind](tones(1, 48000, 3.0), 48000)

    def no_decoding(self, block):
        raise AssertionError("decoded samples although the header declares the length")

    monkeypatch.setattr(decode.Sink, "push", no_decoding)
    with pytest.raises(InputError, match=r"is 3\.\d s long, more than max_duration_s=1") as info:
        load_audio(data, max_duration_s=1.0)
    assert f"<{len(data)} bytes>" in str(info.value)


RAW_MP3 = {"write_xing": "0", "id3v2_version": "0"}  # no Xing/Info frame, no ID3 tag


def mp3_without_length_tag(parts: list[tuple[np.ndarray, int]], sr: int) -> bytes:
    """Raw MP3 streams (no length tag, no ID3) of mono ``parts`` at the given bit rates, concatenated."""
    out = b""
    for x, bit_rate in parts:
        buf = io.BytesIO()
        with av.open(buf, "w", format="mp3", options=RAW_MP3) as container:
            stream = container.add_stream("mp3", rate=sr, layout="mono")
            stream.codec_context.bit_rate = bit_rate
            resampler = av.AudioResampler("s16p", "mono", sr, frame_size=stream.codec_context.frame_size)
            frame = av.AudioFrame.from_ndarray(x.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate, frame.pts = sr, 0
            for out_frame in resampler.resample(frame) + resampler.resample(None):
                container.mux(stream.encode(out_frame))
            container.mux(stream.encode(None))
        out += buf.getvalue()
    return out


def test_bit_rate_guess_does_not_refuse_a_short_mp3():
    """Without a length tag FFmpeg guesses the length from the bit rate of the first seconds."""
    sr = 44100
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, sr * 14)  # FFmpeg probes the first ~10 s
    data = mp3_without_length_tag([(noise[: sr * 10], 32000), (noise[sr * 10 :], 320000)], sr)
    with av.open(io.BytesIO(data)) as container:
        assert container.duration / 1e6 > 30.0  # the guess
    wave, rate = load_audio(data, max_duration_s=30.0)
    assert rate == sr and 13.9 < len(wave) / rate < 14.2


def test_decoding_stops_once_the_cap_is_passed(monkeypatch):
    data = mp3_without_length_tag([(tones(1, 16000, 30.0)[:, 0], 32000)], 16000)
    pushed = []
    push = decode.Sink.push
    monkeypatch.setattr(decode.Sink, "push", lambda self, block: (pushed.append(len(block)), push(self, block)))
    with pytest.raises(InputError, match=r"longer than max_duration_s=5 \(stopped decoding at [\d.]+ s\)"):
        load_audio(data, max_duration_s=5.0)
    assert 5.0 < sum(pushed) / 16000 <= 5.0 + decode.BLOCK_FRAMES / 16000


# ---- non-finite samples and empty results -----------------------------------------------------------


def both_paths(wav: bytes, via: str) -> bytes:
    return wav if via == "soundfile" else data_chunk_first(wav)


@pytest.mark.parametrize("via", ["soundfile", "pyav"])
def test_mono_mix_overflow_is_refused(tmp_path, via):
    x = np.full((1000, 2), 3e38, dtype=np.float32)  # finite, but L + R overflows float32
    path = tmp_path / "loud.wav"
    path.write_bytes(both_paths(wav_bytes(x, 16000), via))
    with pytest.raises(InputError, match="mixing its 2 channels to mono gives NaN or infinite") as info:
        load_audio(path)
    assert str(path) in str(info.value)
    both, _ = load_audio(path, mono=False)  # no mixing: the samples come back as stored
    assert both.shape == (2, 1000) and np.isfinite(both).all()


@pytest.mark.parametrize("via", ["soundfile", "pyav"])
@pytest.mark.parametrize("mono", [True, False])
def test_resampling_overflow_is_refused(tmp_path, via, mono):
    x = np.zeros(4800, dtype=np.float32)
    x[:2400] = 3.3e38  # the filter's overshoot at the step passes float32's maximum
    path = tmp_path / "step.wav"
    path.write_bytes(both_paths(wav_bytes(x, 48000), via))
    assert np.isfinite(load_audio(path, mono=mono).waveform).all()
    with pytest.raises(InputError, match="resampling to 16000 Hz gives NaN or infinite") as info:
        load_audio(path, sampling_rate=16000, mono=mono)
    assert str(path) in str(info.value)


def test_nan_count_spans_blocks(tmp_path):
    x = np.zeros(3 * decode.BLOCK_FRAMES, dtype=np.float32)
    x[[5, decode.BLOCK_FRAMES + 7, 3 * decode.BLOCK_FRAMES - 1]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "nan.wav"
    path.write_bytes(wav_bytes(x, 16000))
    with pytest.raises(InputError, match="contains 3 NaN or infinite samples") as info:
        load_audio(path, sampling_rate=8000)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("via", ["soundfile", "pyav"])
def test_too_short_to_resample(tmp_path, via):
    path = tmp_path / "one.wav"
    path.write_bytes(both_paths(wav_bytes(np.full(1, 0.5), 48000), via))
    expected = r"too short to resample: 1 input sample at 48000 Hz, 0 output samples at 16000 Hz"
    with pytest.raises(InputError, match=expected) as e:
        load_audio(path, sampling_rate=16000)
    assert str(path) in str(e.value)
    assert load_audio(path).waveform.shape == (1,)  # fine at its own rate
    path.write_bytes(both_paths(wav_bytes(np.full(2, 0.5), 48000), via))
    assert load_audio(path, sampling_rate=16000).waveform.shape == (1,)


def test_absurd_rate_resamples_to_nothing(tmp_path):
    data = bytearray(wav_bytes(np.full(1000, 0.1), 16000, "PCM_16"))
    struct.pack_into("<II", data, 24, 2**31 - 1, (2**31 - 1) * 2 % 2**32)  # sample rate, byte rate
    path = tmp_path / "fast.wav"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"1000 input samples at 2147483647 Hz, 0 output samples") as info:
        load_audio(path, sampling_rate=16000)
    assert str(path) in str(info.value)


# ---- streaming gives the one-shot numbers ------------------------------------------------------


@pytest.mark.parametrize("via", ["soundfile", "pyav"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_wise_equals_one_shot(via, dtype):
    x = tones(3, 44100, 4 * decode.BLOCK_FRAMES / 44100 + 0.123, noise=0.01)  # several blocks and a tail
    data = both_paths(wav_bytes(x, 44100), via)
    decoded = sf.read(io.BytesIO(wav_bytes(x, 44100)), dtype=np.dtype(dtype).name)[0]
    mono = decoded.mean(axis=1, dtype=dtype)
    wave, _ = load_audio(data, dtype=dtype)
    np.testing.assert_array_equal(wave, mono)
    wave, _ = load_audio(data, sampling_rate=16000, dtype=dtype)
    np.testing.assert_array_equal(wave, soxr.resample(mono, 44100, 16000, quality="HQ"))
    multi, _ = load_audio(data, sampling_rate=22050, mono=False, dtype=dtype)
    np.testing.assert_array_equal(multi, soxr.resample(decoded, 44100, 22050, quality="HQ").T)


def test_channel_count_change_mid_stream():
    """Concatenated MP3s, mono then stereo: the old code died in np.concatenate (a ValueError)."""
    sr = 16000
    mono_part = encode(tones(1, sr, 1.0), sr, "mp3", "mp3", "mono", format_options=RAW_MP3)
    stereo_part = encode(tones(2, sr, 1.0), sr, "mp3", "mp3", "stereo", format_options=RAW_MP3)
    data = mono_part + stereo_part
    wave, rate = load_audio(data)
    assert rate == sr and 1.9 < len(wave) / sr < 2.3
    with pytest.raises(InputError, match="changes from 1 to 2 channels mid-stream; load it with mono=True"):
        load_audio(data, mono=False)

