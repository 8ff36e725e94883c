#!/usr/bin/env python
"""Seeded mutation fuzzer for `featx.load_image` / `featx.load_audio` and the processors behind them.

Every case takes a valid seed file (built here in code: JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, TGA,
PNM, JPEG 2000 images; WAV, FLAC, Ogg Vorbis/Opus, MP3, M4A/MP4/ADTS AAC, WebM/MKA, AIFF, AU, CAF,
W64, WMA audio), applies 1-4 seeded mutations (bit flips, interesting bytes and words, truncation,
span and chunk deletion/duplication/swaps, header-field inflation with checksums fixed afterwards,
splices of two files), decodes the result from bytes, a temp path or a file object, and runs
`ViTImageProcessor` / `WhisperFeatureExtractor` (16 kHz) on what decoded.

Outcome kinds: ``ok`` (a valid result), ``error`` (a `featx.errors.FeatxError`, counted by class),
and the BUG kinds: ``exception`` (any other exception), ``invalid`` (a result that is not a valid
image/waveform/feature array), ``crash`` (the worker process died), ``hang`` (a case ran past the
deadline) and ``memory`` (a case grew the worker's RSS by more than the cap, or hit MemoryError).

Cases run in worker subprocesses (started with ``python tools/fuzz.py --worker``, recycled every
``--recycle`` cases). The parent hands out one case at a time, so a crash, a hang or a memory
blow-up is pinned to its case at once; it is then re-run alone in a fresh worker to tell the input
from state left by earlier cases (a "hang" that finishes in time alone is counted as ``slow``).
Memory: each worker resets its RSS high-water mark before a case (``/proc/self/clear_refs``) and
reads ``VmHWM`` after it, so every case's peak is its own; the parent also watches RSS during the
case and kills the worker past the cap. (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is not used: the
reset lowers it too.) BUGs explained by `KNOWN_OPEN` (found here, reported, fixed elsewhere) are
still printed but do not fail the run.

    python tools/fuzz.py --cases 5000 --seed 1 [--kind image|audio] [--out DIR] [--workers 2]
    python tools/fuzz.py --seed 1 --case 1234          # re-run one case here, with its traceback

Each BUG is printed with its reproducer (seed, case index, kind, mutations) and the mutated file
saved under ``--out``. The same case index always gives the same bytes for the same seed files
(the encoders that make the compressed seeds are deterministic for a given library build).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if (_ROOT / "featx").is_dir() and str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))  # the checkout this script lives in, not another installed featx

KINDS = ("image", "audio")
BUG_KINDS = ("exception", "invalid", "crash", "hang", "memory")
DEFAULT_DEADLINE_S = 10.0
DEFAULT_MEM_CAP_MB = 1536


# =============================================================================================
# Seed files (valid inputs, built in code)
# =============================================================================================


def _picture(width: int, height: int, seed: int = 0) -> Any:
    """An RGB test picture: gradients, a disc and some noise (so lossy codecs have work to do)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = (255 * x / max(width - 1, 1)).astype(np.uint8)
    g = (255 * y / max(height - 1, 1)).astype(np.uint8)
    disc = ((x - width / 2) ** 2 + (y - height / 2) ** 2) < (min(width, height) / 3) ** 2
    b = np.where(disc, 220, 40).astype(np.uint8)
    rgb = np.stack([r, g, b], axis=-1)
    rgb = np.clip(rgb.astype(np.int16) + rng.integers(-12, 13, rgb.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def _save(image: Any, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def image_seeds() -> dict[str, bytes]:
    """Valid image files of every container `load_image` is used with (name -> bytes)."""
    import numpy as np
    from PIL import Image, features

    base = _picture(64, 48)
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    seeds: dict[str, bytes] = {}
    seeds["jpeg-baseline.jpg"] = _save(base, "JPEG", quality=85)
    seeds["jpeg-progressive.jpg"] = _save(_picture(80, 60, 1), "JPEG", quality=80, progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW on display
    exif[0x010F] = "featx-fuzz"
    seeds["jpeg-exif-orientation.jpg"] = _save(_picture(40, 30, 2), "JPEG", quality=90, exif=exif.tobytes())
    seeds["jpeg-gray.jpg"] = _save(base.convert("L"), "JPEG", quality=75)
    seeds["jpeg-cmyk.jpg"] = _save(base.convert("CMYK"), "JPEG", quality=75)
    seeds["jpeg-subsampled-restart.jpg"] = _save(_picture(50, 34, 3), "JPEG", quality=60, subsampling=2, restart_marker_blocks=2)
    seeds["png-rgb.png"] = _save(base, "PNG")
    seeds["png-rgba.png"] = _save(rgba, "PNG")
    seeds["png-l.png"] = _save(base.convert("L"), "PNG")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    seeds["png-p-transparency.png"] = _save(pal, "PNG", transparency=3)
    i16 = Image.fromarray((np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 21))  # mode I;16
    seeds["png-i16.png"] = _save(i16, "PNG")
    seeds["png-interlaced.png"] = _save(_picture(33, 17, 4), "PNG", interlace=1)
    seeds["png-1bit.png"] = _save(base.convert("1"), "PNG")
    frames = [_picture(32, 24, s) for s in range(3)]
    seeds["apng-animated.png"] = _save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50, loop=0)
    gif_frames = [f.convert("P", palette=Image.Palette.ADAPTIVE, colors=32) for f in frames]
    seeds["gif-animated.gif"] = _save(gif_frames[0], "GIF", save_all=True, append_images=gif_frames[1:], duration=40, loop=0, transparency=0)
    seeds["gif-still.gif"] = _save(pal, "GIF")
    if features.check("webp"):
        seeds["webp-lossy.webp"] = _save(base, "WEBP", quality=70)
        seeds["webp-lossless.webp"] = _save(rgba, "WEBP", lossless=True)
        seeds["webp-animated.webp"] = _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50, quality=60)
    seeds["bmp-rgb.bmp"] = _save(base, "BMP")
    seeds["bmp-p.bmp"] = _save(pal, "BMP")
    seeds["bmp-1bit.bmp"] = _save(base.convert("1"), "BMP")
    pages = [_picture(40, 30, s).convert(m) for s, m in ((5, "RGB"), (6, "L"), (7, "RGBA"))]
    seeds["tiff-multipage-lzw.tif"] = _save(pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    seeds["tiff-deflate.tif"] = _save(base, "TIFF", compression="tiff_adobe_deflate")
    seeds["tiff-packbits.tif"] = _save(base.convert("L"), "TIFF", compression="packbits")
    seeds["tiff-jpeg.tif"] = _save(base, "TIFF", compression="jpeg")
    seeds["tiff-raw-i16.tif"] = _save(i16, "TIFF")
    seeds["tiff-group4.tif"] = _save(base.convert("1"), "TIFF", compression="group4")
    ramp = np.linspace(-20, 300, 48 * 64).reshape(48, 64)
    seeds["tiff-float32.tif"] = _save(Image.fromarray(ramp.astype(np.float32)), "TIFF")  # mode F
    seeds["tiff-int32.tif"] = _save(Image.fromarray((ramp * 1000).astype(np.int32)), "TIFF")  # mode I
    seeds["tiff-cmyk-lzw.tif"] = _save(base.convert("CMYK"), "TIFF", compression="tiff_lzw")
    seeds["png-la.png"] = _save(base.convert("LA"), "PNG")
    seeds["bmp-rgba32.bmp"] = _save(rgba, "BMP")
    seeds["ico-multi.ico"] = _save(_picture(48, 48, 8).convert("RGBA"), "ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    seeds["tga-rle.tga"] = _save(base, "TGA", compression="tga_rle")
    seeds["tga-raw.tga"] = _save(rgba, "TGA")
    seeds["ppm-rgb.ppm"] = _save(base, "PPM")
    seeds["pgm-l.pgm"] = _save(base.convert("L"), "PPM")
    seeds["pbm-1.pbm"] = _save(base.convert("1"), "PPM")
    if features.check("jpg_2000"):
        seeds["jp2-rgb.jp2"] = _save(base, "JPEG2000", irreversible=False)
        seeds["j2k-codestream.j2k"] = _save(_picture(40, 30, 9), "JPEG2000", quality_mode="rates", quality_layers=[20])
    for name in list(seeds):  # every seed must load: a broken seed would make the fuzzing meaningless
        Image.open(io.BytesIO(seeds[name])).load()
    return seeds


def _tone(rate: int, seconds: float, channels: int, seed: int = 0) -> Any:
    """(frames, channels) float32 in [-0.6, 0.6]: a chirp per channel plus a little noise."""
    import numpy as np

    n = int(rate * seconds)
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    cols = []
    for c in range(channels):
        f0 = 220.0 * (1 + c) * (1 + 0.5 * t)
        cols.append(0.5 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(n))
    return np.stack(cols, axis=1).astype(np.float32)


def _sf_bytes(rate: int, seconds: float, channels: int, fmt: str, subtype: str | None, seed: int = 0) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, _tone(rate, seconds, channels, seed), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _av_bytes(rate: int, seconds: float, channels: int, container: str, codec: str, seed: int = 0,
              bit_rate: int | None = None, options: dict[str, str] | None = None) -> bytes:
    import av
    import numpy as np

    wave = _tone(rate, seconds, channels, seed)
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        step = 1024
        for i in range(0, wave.shape[0], step):
            block = np.ascontiguousarray(wave[i : i + step].T)  # planar fltp
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def audio_seeds() -> dict[str, bytes]:
    """Valid audio files of every container `load_audio` reads (name -> bytes)."""
    seeds: dict[str, bytes] = {}
    seeds["wav-pcm16.wav"] = _sf_bytes(16000, 0.5, 1, "WAV", "PCM_16")
    seeds["wav-float32.wav"] = _sf_bytes(44100, 0.4, 2, "WAV", "FLOAT", 1)
    seeds["wav-u8.wav"] = _sf_bytes(8000, 0.5, 1, "WAV", "PCM_U8", 2)
    seeds["wav-pcm24.wav"] = _sf_bytes(48000, 0.3, 2, "WAV", "PCM_24", 3)
    seeds["wav-ms-adpcm.wav"] = _sf_bytes(22050, 0.4, 1, "WAV", "MS_ADPCM", 4)
    seeds["wav-ima-adpcm.wav"] = _sf_bytes(11025, 0.4, 2, "WAV", "IMA_ADPCM", 5)
    seeds["wav-ulaw.wav"] = _sf_bytes(8000, 0.4, 1, "WAV", "ULAW", 6)
    seeds["wavex-10ch.wav"] = _sf_bytes(16000, 0.2, 10, "WAVEX", "PCM_16", 7)
    seeds["rf64-pcm16.wav"] = _sf_bytes(22050, 0.3, 1, "RF64", "PCM_16", 8)
    seeds["flac-stereo.flac"] = _sf_bytes(44100, 0.4, 2, "FLAC", "PCM_16", 9)
    seeds["flac-8ch-24bit.flac"] = _sf_bytes(16000, 0.2, 8, "FLAC", "PCM_24", 10)
    seeds["ogg-vorbis.ogg"] = _sf_bytes(22050, 0.5, 2, "OGG", "VORBIS", 11)
    seeds["ogg-opus.opus"] = _sf_bytes(48000, 0.5, 1, "OGG", "OPUS", 12)
    seeds["mp3-sndfile.mp3"] = _sf_bytes(44100, 0.5, 2, "MP3", "MPEG_LAYER_III", 13)
    seeds["mp3-lame-cbr.mp3"] = _av_bytes(22050, 0.5, 1, "mp3", "libmp3lame", 14, bit_rate=64000)
    seeds["mp3-lame-id3.mp3"] = _av_bytes(44100, 0.4, 2, "mp3", "libmp3lame", 15, options={"id3v2_version": "3"})
    seeds["m4a-aac.m4a"] = _av_bytes(44100, 0.5, 2, "ipod", "aac", 16)
    seeds["mp4-aac.mp4"] = _av_bytes(24000, 0.4, 1, "mp4", "aac", 17)
    seeds["aac-adts.aac"] = _av_bytes(32000, 0.4, 1, "adts", "aac", 18)
    seeds["webm-opus.webm"] = _av_bytes(48000, 0.5, 2, "webm", "libopus", 19)
    seeds["ogg-opus-av.opus"] = _av_bytes(48000, 0.4, 2, "ogg", "libopus", 20)
    seeds["mka-flac.mka"] = _av_bytes(22050, 0.4, 1, "matroska", "flac", 21)
    seeds["mka-aac-5.1.mka"] = _av_bytes(48000, 0.3, 6, "matroska", "aac", 22)
    seeds["mka-mp3.mka"] = _av_bytes(44100, 0.3, 2, "matroska", "libmp3lame", 23)
    try:
        seeds["webm-vorbis.webm"] = _av_bytes(44100, 0.4, 2, "webm", "vorbis", 24)
    except Exception:  # the native Vorbis encoder is experimental; not in every FFmpeg build
        pass
    seeds["wma-wmav2.wma"] = _av_bytes(22050, 0.4, 2, "asf", "wmav2", 25, bit_rate=64000)
    seeds["aiff-pcm16.aiff"] = _sf_bytes(22050, 0.4, 2, "AIFF", "PCM_16", 26)
    seeds["aifc-float.aifc"] = _sf_bytes(16000, 0.3, 1, "AIFF", "FLOAT", 27)
    seeds["au-pcm16.au"] = _sf_bytes(8000, 0.4, 1, "AU", "PCM_16", 28)
    seeds["caf-alac.caf"] = _sf_bytes(44100, 0.3, 2, "CAF", "ALAC_16", 29)
    seeds["w64-pcm16.w64"] = _sf_bytes(16000, 0.3, 1, "W64", "PCM_16", 30)
    return seeds


def build_corpus(kinds: Iterable[str] = KINDS) -> dict[str, dict[str, bytes]]:
    builders = {"image": image_seeds, "audio": audio_seeds}
    return {k: builders[k]() for k in kinds}


def save_corpus(corpus: dict[str, dict[str, bytes]], folder: Path) -> None:
    for kind, seeds in corpus.items():
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / kind / name).write_bytes(data)


def read_corpus(folder: Path) -> dict[str, dict[str, bytes]]:
    return {
        kind.name: {f.name: f.read_bytes() for f in sorted(kind.iterdir())}
        for kind in sorted(folder.iterdir())
        if kind.is_dir()
    }


# =============================================================================================
# Structure: the fields and chunks of each format, for the format-aware mutations
# =============================================================================================


@dataclass
class Field:
    """An integer field: ``size`` bytes at ``offset``, big or little endian (or a decimal text)."""

    offset: int
    size: int
    order: str  # "big", "little", or "text" (ASCII digits, PNM headers)
    name: str


@dataclass
class Chunk:
    """A length-prefixed unit (PNG chunk, RIFF chunk, box, segment, page...) at ``[start, end)``."""

    start: int
    end: int
    kind: str


@dataclass
class Layout:
    fields: list[Field] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)


def _u(data: bytes, offset: int, size: int, order: str = "big") -> int:
    if offset < 0 or offset + size > len(data):
        raise IndexError(offset)
    return int.from_bytes(data[offset : offset + size], order)


def _png(data: bytes, lay: Layout) -> None:
    pos = 8
    while pos + 12 <= len(data):
        length = _u(data, pos, 4)
        ctype = data[pos + 4 : pos + 8]
        end = min(pos + 12 + length, len(data))
        lay.chunks.append(Chunk(pos, end, ctype.decode("latin-1")))
        lay.fields.append(Field(pos, 4, "big", f"{ctype!r}.length"))
        body = pos + 8
        if ctype == b"IHDR":
            lay.fields += [Field(body, 4, "big", "IHDR.width"), Field(body + 4, 4, "big", "IHDR.height"),
                           Field(body + 8, 1, "big", "IHDR.depth"), Field(body + 9, 1, "big", "IHDR.color"),
                           Field(body + 12, 1, "big", "IHDR.interlace")]
        elif ctype == b"acTL":
            lay.fields += [Field(body, 4, "big", "acTL.frames"), Field(body + 4, 4, "big", "acTL.plays")]
        elif ctype == b"fcTL":
            lay.fields += [Field(body + 4 + 4 * i, 4, "big", f"fcTL.{n}") for i, n in enumerate(("w", "h", "x", "y"))]
            lay.fields += [Field(body + 20, 2, "big", "fcTL.delay_num"), Field(body + 22, 2, "big", "fcTL.delay_den")]
        elif ctype == b"tRNS" or ctype == b"PLTE":
            pass
        if ctype == b"IEND":
            break
        pos = pos + 12 + length


def _fix_png(data: bytearray) -> None:
    """Recompute every chunk CRC (PIL refuses a bad CRC before the mutation gets anywhere)."""
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if pos + 12 + length > len(data):
            return
        crc = zlib.crc32(bytes(data[pos + 4 : pos + 8 + length])) & 0xFFFFFFFF
        data[pos + 8 + length : pos + 12 + length] = crc.to_bytes(4, "big")
        pos += 12 + length


def _riff(data: bytes, lay: Layout, order: str = "little", start: int = 12, size_field: int = 4, align: int = 2) -> None:
    lay.fields.append(Field(4, 4, order, "RIFF.size"))
    pos = start
    while pos + 4 + size_field <= len(data):
        cid = data[pos : pos + 4]
        length = _u(data, pos + 4, size_field, order)
        body = pos + 4 + size_field
        end = min(body + length + (length % align if align > 1 else 0), len(data))
        lay.chunks.append(Chunk(pos, end, cid.decode("latin-1")))
        lay.fields.append(Field(pos + 4, size_field, order, f"{cid!r}.length"))
        before = len(lay.fields)
        _riff_body(data, lay, cid, body, order)
        lay.fields[before:] = [f for f in lay.fields[before:] if f.offset < body + length]
        pos = body + length + (length % align if align > 1 else 0)


def _riff_body(data: bytes, lay: Layout, cid: bytes, body: int, order: str) -> None:
    if cid == b"fmt ":  # WAV
        names = ((0, 2, "format"), (2, 2, "channels"), (4, 4, "rate"), (8, 4, "byte_rate"), (12, 2, "block_align"),
                 (14, 2, "bits"), (16, 2, "cb_size"), (18, 2, "valid_bits"), (20, 4, "channel_mask"))
        lay.fields += [Field(body + o, s, order, f"fmt.{n}") for o, s, n in names]
    elif cid == b"COMM":  # AIFF (big endian): channels, frames, bits, 80-bit rate
        lay.fields += [Field(body, 2, "big", "COMM.channels"), Field(body + 2, 4, "big", "COMM.frames"),
                       Field(body + 6, 2, "big", "COMM.bits"), Field(body + 8, 2, "big", "COMM.rate_exponent"),
                       Field(body + 10, 4, "big", "COMM.rate_mantissa")]
    elif cid == b"SSND":
        lay.fields += [Field(body, 4, "big", "SSND.offset"), Field(body + 4, 4, "big", "SSND.block")]
    elif cid == b"ds64":  # RF64
        lay.fields += [Field(body, 8, "little", "ds64.riff"), Field(body + 8, 8, "little", "ds64.data"),
                       Field(body + 16, 8, "little", "ds64.frames")]
    elif cid == b"fact":
        lay.fields.append(Field(body, 4, order, "fact.frames"))
    elif cid == b"VP8X":
        lay.fields += [Field(body + 4, 3, "little", "VP8X.width-1"), Field(body + 7, 3, "little", "VP8X.height-1"),
                       Field(body, 1, "little", "VP8X.flags")]
    elif cid == b"ANMF":
        lay.fields += [Field(body + 3 * i, 3, "little", f"ANMF.{n}") for i, n in enumerate(("x", "y", "w-1", "h-1"))]
        sub = body + 16  # the frame's own VP8/VP8L/ALPH chunks
        while sub + 8 <= min(len(data), body + _u(data, body - 4, 4, "little")):
            scid = data[sub : sub + 4]
            slen = _u(data, sub + 4, 4, "little")
            lay.fields.append(Field(sub + 4, 4, "little", f"ANMF.{scid!r}.length"))
            _riff_body(data, lay, scid, sub + 8, order)
            sub += 8 + slen + (slen & 1)
    elif cid == b"VP8 ":
        lay.fields += [Field(body + 6, 2, "little", "VP8.width"), Field(body + 8, 2, "little", "VP8.height"),
                       Field(body, 3, "little", "VP8.frame_tag")]
    elif cid == b"VP8L":
        lay.fields.append(Field(body + 1, 4, "little", "VP8L.size_bits"))
    elif cid == b"ANIM":
        lay.fields.append(Field(body + 4, 2, "little", "ANIM.loops"))


def _jpeg(data: bytes, lay: Layout) -> None:
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = _u(data, pos + 2, 2)
        lay.chunks.append(Chunk(pos, min(pos + 2 + length, len(data)), f"FF{marker:02X}"))
        lay.fields.append(Field(pos + 2, 2, "big", f"FF{marker:02X}.length"))
        body = pos + 4
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB):
            lay.fields += [Field(body, 1, "big", "SOF.precision"), Field(body + 1, 2, "big", "SOF.height"),
                           Field(body + 3, 2, "big", "SOF.width"), Field(body + 5, 1, "big", "SOF.components")]
            for c in range(min(data[body + 5] if body + 5 < len(data) else 0, 4)):
                lay.fields += [Field(body + 7 + 3 * c, 1, "big", f"SOF.c{c}.sampling"),
                               Field(body + 8 + 3 * c, 1, "big", f"SOF.c{c}.table")]
        elif marker == 0xDA:
            lay.fields.append(Field(body, 1, "big", "SOS.components"))
            # Skip the entropy-coded data to the next marker (progressive files have several scans).
            pos = body + length - 2
            while pos + 1 < len(data) and not (data[pos] == 0xFF and data[pos + 1] not in (0x00,) and not 0xD0 <= data[pos + 1] <= 0xD7):
                pos += 1
            continue
        elif marker == 0xDD:
            lay.fields.append(Field(body, 2, "big", "DRI.interval"))
        elif marker == 0xE1 and data[body : body + 6] == b"Exif\0\0":
            _tiff(data, lay, base=body + 6)
        elif marker == 0xD9:
            break
        pos += 2 + length


_TIFF_TYPES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}


def _tiff(data: bytes, lay: Layout, base: int = 0) -> None:
    order = {b"II": "little", b"MM": "big"}.get(data[base : base + 2])
    if order is None:
        return
    lay.fields.append(Field(base + 4, 4, order, "TIFF.first_ifd"))
    ifd = _u(data, base + 4, 4, order)
    seen = set()
    todo = [ifd]
    while todo and len(seen) < 16:
        ifd = todo.pop(0)
        if ifd in seen or base + ifd + 2 > len(data):
            continue
        seen.add(ifd)
        count = _u(data, base + ifd, 2, order)
        lay.fields.append(Field(base + ifd, 2, order, "IFD.count"))
        for i in range(min(count, 64)):
            entry = base + ifd + 2 + 12 * i
            if entry + 12 > len(data):
                break
            tag = _u(data, entry, 2, order)
            typ = _u(data, entry + 2, 2, order)
            n = _u(data, entry + 4, 4, order)
            lay.chunks.append(Chunk(entry, entry + 12, f"tag{tag}"))
            lay.fields += [Field(entry + 2, 2, order, f"tag{tag}.type"), Field(entry + 4, 4, order, f"tag{tag}.count")]
            width = _TIFF_TYPES.get(typ, 1)
            if width * n <= 4:
                lay.fields.append(Field(entry + 8, min(width, 4) if width <= 4 else 4, order, f"tag{tag}.value"))
            else:
                lay.fields.append(Field(entry + 8, 4, order, f"tag{tag}.offset"))
                target = base + _u(data, entry + 8, 4, order)
                for k in range(min(n, 4)):
                    if width in (2, 4) and target + width * (k + 1) <= len(data):
                        lay.fields.append(Field(target + width * k, width, order, f"tag{tag}[{k}]"))
            if tag in (0x8769, 0x014A) and typ in (4, 13):  # Exif IFD, SubIFDs
                todo.append(_u(data, entry + 8, 4, order))
        nxt = base + ifd + 2 + 12 * count
        if nxt + 4 <= len(data):
            lay.fields.append(Field(nxt, 4, order, "IFD.next"))
            todo.append(_u(data, nxt, 4, order))


def _gif(data: bytes, lay: Layout) -> None:
    lay.fields += [Field(6, 2, "little", "screen.width"), Field(8, 2, "little", "screen.height"),
                   Field(10, 1, "little", "screen.flags")]
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while pos < len(data):
        intro = data[pos]
        if intro == 0x21:
            start = pos
            label = data[pos + 1]
            if label == 0xF9:
                lay.fields += [Field(pos + 3, 1, "little", "GCE.flags"), Field(pos + 4, 2, "little", "GCE.delay"),
                               Field(pos + 6, 1, "little", "GCE.transparent")]
            elif label == 0xFF:
                lay.fields.append(Field(pos + 2, 1, "little", "APP.block"))
            pos += 2
            while pos < len(data) and data[pos]:
                lay.fields.append(Field(pos, 1, "little", "subblock.size"))
                pos += data[pos] + 1
            pos += 1
            lay.chunks.append(Chunk(start, min(pos, len(data)), f"ext{label:02X}"))
        elif intro == 0x2C:
            start = pos
            lay.fields += [Field(pos + 1 + 2 * i, 2, "little", f"image.{n}") for i, n in enumerate(("x", "y", "w", "h"))]
            lay.fields.append(Field(pos + 9, 1, "little", "image.flags"))
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            lay.fields.append(Field(pos, 1, "little", "lzw.min_code"))
            pos += 1
            while pos < len(data) and data[pos]:
                pos += data[pos] + 1
            pos += 1
            lay.chunks.append(Chunk(start, min(pos, len(data)), "image"))
        else:
            break


def _bmp(data: bytes, lay: Layout) -> None:
    names = ((2, 4, "file_size"), (10, 4, "pixel_offset"), (14, 4, "dib_size"), (18, 4, "width"), (22, 4, "height"),
             (26, 2, "planes"), (28, 2, "bpp"), (30, 4, "compression"), (34, 4, "image_size"), (46, 4, "colors_used"))
    lay.fields += [Field(o, s, "little", f"BMP.{n}") for o, s, n in names]


def _ico(data: bytes, lay: Layout) -> None:
    lay.fields.append(Field(4, 2, "little", "ICO.count"))
    for i in range(min(_u(data, 4, 2, "little"), 8)):
        e = 6 + 16 * i
        lay.chunks.append(Chunk(e, e + 16, "entry"))
        lay.fields += [Field(e, 1, "little", "entry.w"), Field(e + 1, 1, "little", "entry.h"),
                       Field(e + 6, 2, "little", "entry.bpp"), Field(e + 8, 4, "little", "entry.size"),
                       Field(e + 12, 4, "little", "entry.offset")]
        off = _u(data, e + 12, 4, "little")
        if data[off : off + 8] == b"\x89PNG\r\n\x1a\n":
            sub = Layout()
            _png(data[off:], sub)
            lay.fields += [Field(off + f.offset, f.size, f.order, "ICO." + f.name) for f in sub.fields]
        else:
            lay.fields += [Field(off + o, s, "little", f"ICO.DIB.{n}") for o, s, n in
                           ((0, 4, "size"), (4, 4, "width"), (8, 4, "height"), (14, 2, "bpp"))]


def _tga(data: bytes, lay: Layout) -> None:
    names = ((0, 1, "id_len"), (1, 1, "cmap_type"), (2, 1, "image_type"), (5, 2, "cmap_len"), (7, 1, "cmap_depth"),
             (12, 2, "width"), (14, 2, "height"), (16, 1, "depth"), (17, 1, "descriptor"))
    lay.fields += [Field(o, s, "little", f"TGA.{n}") for o, s, n in names]


def _pnm(data: bytes, lay: Layout) -> None:
    for m in list(re.finditer(rb"\d+", data[:32]))[:3]:
        lay.fields.append(Field(m.start(), m.end() - m.start(), "text", "PNM.number"))


_BOX_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"jp2h", b"res ", b"ilst", b"meta"}


def _boxes(data: bytes, lay: Layout, start: int = 0, end: int | None = None, depth: int = 0) -> None:
    """ISO base media (MP4/M4A) and JP2 boxes, recursing into the usual containers."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end and depth < 8:
        size = _u(data, pos, 4)
        btype = data[pos + 4 : pos + 8]
        header = 8
        if size == 1 and pos + 16 <= end:
            size = _u(data, pos + 8, 8)
            header = 16
        if size == 0:
            size = end - pos
        if size < header:
            break
        box_end = min(pos + size, end)
        lay.chunks.append(Chunk(pos, box_end, btype.decode("latin-1")))
        lay.fields.append(Field(pos, 4, "big", f"{btype!r}.size"))
        body = pos + header
        if btype in _BOX_CONTAINERS:
            _boxes(data, lay, body + (4 if btype == b"meta" else 0), box_end, depth + 1)
        elif btype in (b"mvhd", b"mdhd"):
            v1 = data[body] == 1
            ts = body + (20 if v1 else 12)
            lay.fields += [Field(ts, 4, "big", f"{btype!r}.timescale"), Field(ts + 4, 8 if v1 else 4, "big", f"{btype!r}.duration")]
        elif btype == b"stsd":
            lay.fields.append(Field(body + 4, 4, "big", "stsd.count"))
            entry = body + 8
            lay.fields += [Field(entry, 4, "big", "entry.size"), Field(entry + 24, 2, "big", "entry.channels"),
                           Field(entry + 26, 2, "big", "entry.bits"), Field(entry + 32, 4, "big", "entry.rate")]
            _boxes(data, lay, entry + 36, min(entry + _u(data, entry, 4), box_end), depth + 1)
        elif btype in (b"stts", b"stsc", b"stco", b"co64", b"stss", b"ctts"):
            lay.fields.append(Field(body + 4, 4, "big", f"{btype!r}.count"))
            lay.fields += [Field(body + 8 + 4 * k, 4, "big", f"{btype!r}[{k}]") for k in range(3)]
        elif btype == b"stsz":
            lay.fields += [Field(body + 4, 4, "big", "stsz.size"), Field(body + 8, 4, "big", "stsz.count"),
                           Field(body + 12, 4, "big", "stsz[0]")]
        elif btype == b"esds":
            lay.fields += [Field(body + k, 1, "big", f"esds.byte{k}") for k in range(4, 40, 3)]
        elif btype == b"ihdr":
            lay.fields += [Field(body, 4, "big", "ihdr.height"), Field(body + 4, 4, "big", "ihdr.width"),
                           Field(body + 8, 2, "big", "ihdr.components"), Field(body + 10, 1, "big", "ihdr.bpc")]
        elif btype == b"jp2c":
            _j2k(data, lay, body)
        pos += size


def _j2k(data: bytes, lay: Layout, base: int = 0) -> None:
    i = data.find(b"\xff\x51", base)  # SIZ
    if i < 0:
        return
    names = [(2, 2, "Lsiz"), (4, 2, "Rsiz")] + [(6 + 4 * k, 4, n) for k, n in enumerate(
        ("Xsiz", "Ysiz", "XOsiz", "YOsiz", "XTsiz", "YTsiz", "XTOsiz", "YTOsiz"))] + [(38, 2, "Csiz"), (40, 1, "Ssiz0"),
                                                                                      (41, 1, "XRsiz0"), (42, 1, "YRsiz0")]
    lay.fields += [Field(i + o, s, "big", f"SIZ.{n}") for o, s, n in names]
    j = data.find(b"\xff\x52", i)  # COD
    if j > 0:
        lay.fields += [Field(j + 2, 2, "big", "COD.length"), Field(j + 6, 2, "big", "COD.layers"),
                       Field(j + 9, 1, "big", "COD.levels"), Field(j + 10, 1, "big", "COD.cblk_w"),
                       Field(j + 11, 1, "big", "COD.cblk_h")]
    for m in re.finditer(rb"\xff\x90", data[base:]):  # SOT: tile-part lengths
        lay.fields += [Field(base + m.start() + 6, 4, "big", "SOT.Psot"), Field(base + m.start() + 4, 2, "big", "SOT.Isot")]


def _flac(data: bytes, lay: Layout) -> None:
    pos = 4
    while pos + 4 <= len(data):
        header = data[pos]
        length = _u(data, pos + 1, 3)
        lay.chunks.append(Chunk(pos, min(pos + 4 + length, len(data)), f"meta{header & 0x7F}"))
        lay.fields += [Field(pos, 1, "big", "meta.type"), Field(pos + 1, 3, "big", "meta.length")]
        if header & 0x7F == 0:  # STREAMINFO
            b = pos + 4
            lay.fields += [Field(b, 2, "big", "STREAMINFO.min_block"), Field(b + 2, 2, "big", "STREAMINFO.max_block"),
                           Field(b + 4, 3, "big", "STREAMINFO.min_frame"), Field(b + 7, 3, "big", "STREAMINFO.max_frame"),
                           Field(b + 10, 3, "big", "STREAMINFO.rate_ch_bits"), Field(b + 13, 5, "big", "STREAMINFO.total")]
        pos += 4 + length
        if header & 0x80:
            break
    # Frame headers: sync 0xFFF8/0xFFF9, then block size/rate and channel/bits nibbles.
    for m in list(re.finditer(rb"\xff[\xf8\xf9]", data[pos:]))[:6]:
        lay.fields.append(Field(pos + m.start() + 2, 2, "big", "frame.codes"))
        lay.chunks.append(Chunk(pos + m.start(), min(pos + m.start() + 64, len(data)), "frame"))


def _ogg(data: bytes, lay: Layout) -> None:
    pos = data.find(b"OggS")
    while 0 <= pos and pos + 27 <= len(data):
        nseg = data[pos + 26]
        body = pos + 27 + nseg
        size = sum(data[pos + 27 : body])
        lay.chunks.append(Chunk(pos, min(body + size, len(data)), "page"))
        lay.fields += [Field(pos + 5, 1, "little", "page.flags"), Field(pos + 6, 8, "little", "page.granule"),
                       Field(pos + 18, 4, "little", "page.seq"), Field(pos + 26, 1, "little", "page.segments")]
        if nseg:
            lay.fields.append(Field(pos + 27, 1, "little", "page.lacing0"))
        packet = data[body : body + 32]
        if packet.startswith(b"\x01vorbis"):
            lay.fields += [Field(body + 11, 1, "little", "vorbis.channels"), Field(body + 12, 4, "little", "vorbis.rate"),
                           Field(body + 28, 1, "little", "vorbis.blocksizes")]
        elif packet.startswith(b"OpusHead"):
            lay.fields += [Field(body + 9, 1, "little", "opus.channels"), Field(body + 10, 2, "little", "opus.preskip"),
                           Field(body + 12, 4, "little", "opus.rate"), Field(body + 16, 2, "little", "opus.gain"),
                           Field(body + 18, 1, "little", "opus.mapping")]
        elif packet.startswith(b"\x05vorbis"):
            lay.fields.append(Field(body + 7, 1, "little", "vorbis.codebooks"))
        pos = data.find(b"OggS", body + size)


_OGG_TABLE: list[int] = []


def _ogg_crc(page: bytes) -> int:
    if not _OGG_TABLE:
        for i in range(256):
            r = i << 24
            for _ in range(8):
                r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
            _OGG_TABLE.append(r & 0xFFFFFFFF)
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _fix_ogg(data: bytearray) -> None:
    """Recompute every page CRC, so mutations reach the codec instead of being skipped as bad pages."""
    pos = data.find(b"OggS")
    while 0 <= pos and pos + 27 <= len(data):
        nseg = data[pos + 26]
        end = pos + 27 + nseg + sum(data[pos + 27 : pos + 27 + nseg])
        if end > len(data):
            return
        data[pos + 22 : pos + 26] = b"\0\0\0\0"
        data[pos + 22 : pos + 26] = _ogg_crc(bytes(data[pos:end])).to_bytes(4, "little")
        pos = data.find(b"OggS", end)


_EBML_MASTERS = {0x1A45DFA3, 0x18538067, 0x1654AE6B, 0xAE, 0xE1, 0x1549A966, 0x114D9B74, 0x4DBB, 0x1F43B675, 0xA0,
                 0x1254C367, 0x7373, 0x1C53BB6B, 0xBB, 0xB7}
_EBML_NAMES = {0xB5: "SamplingFrequency", 0x9F: "Channels", 0x6264: "BitDepth", 0x63A2: "CodecPrivate", 0x86: "CodecID",
               0xA3: "SimpleBlock", 0xA1: "Block", 0xE7: "Timecode", 0x2AD7B1: "TimecodeScale", 0x4489: "Duration",
               0xD7: "TrackNumber", 0x83: "TrackType", 0x56AA: "CodecDelay", 0x56BB: "SeekPreRoll"}


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise IndexError(pos)
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = value << 8 | b
    return value, length


def _ebml(data: bytes, lay: Layout, start: int = 0, end: int | None = None, depth: int = 0) -> None:
    end = len(data) if end is None else end
    pos = start
    while pos < end and depth < 8:
        eid, id_len = _vint(data, pos, keep_marker=True)
        size, size_len = _vint(data, pos + id_len, keep_marker=False)
        body = pos + id_len + size_len
        unknown = size == (1 << (7 * size_len)) - 1
        elem_end = end if unknown else min(body + size, end)
        name = _EBML_NAMES.get(eid, f"{eid:X}")
        lay.chunks.append(Chunk(pos, elem_end, name))
        lay.fields.append(Field(pos + id_len, size_len, "big", f"{name}.size"))
        if eid in _EBML_MASTERS:
            _ebml(data, lay, body, elem_end, depth + 1)
        elif eid in (0x9F, 0x6264, 0xD7, 0x83, 0x2AD7B1, 0xE7, 0x56AA) and 0 < size <= 8:
            lay.fields.append(Field(body, size, "big", name))
        elif eid == 0xB5 and size in (4, 8):
            lay.fields.append(Field(body, 2, "big", "SamplingFrequency.hi"))
        elif eid in (0xA3, 0xA1) and size > 4:
            lay.fields += [Field(body + 1, 2, "big", f"{name}.timecode"), Field(body + 3, 1, "big", f"{name}.flags")]
        elif eid == 0x63A2 and size >= 19:
            lay.fields += [Field(body + 9, 1, "big", "CodecPrivate.byte9"), Field(body + 12, 4, "little", "CodecPrivate.rate")]
        if elem_end <= pos:
            break
        pos = elem_end


def _mp3(data: bytes, lay: Layout) -> None:
    pos = 0
    if data.startswith(b"ID3"):
        lay.fields += [Field(6, 4, "big", "ID3.size"), Field(5, 1, "big", "ID3.flags"), Field(3, 1, "big", "ID3.version")]
        pos = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F))
        lay.chunks.append(Chunk(0, min(pos, len(data)), "ID3"))
    frames = [m.start() for m in re.finditer(rb"\xff[\xe0-\xff]", data[pos:])][:400]
    starts = [pos + f for f in frames]
    for i, s in enumerate(starts[:40]):
        lay.fields += [Field(s + 1, 1, "big", "frame.version_layer"), Field(s + 2, 1, "big", "frame.rate_bits"),
                       Field(s + 3, 1, "big", "frame.mode")]
    for tag in (b"Xing", b"Info"):
        i = data.find(tag, pos, pos + 200)
        if i > 0:
            lay.fields += [Field(i + 4, 4, "big", f"{tag!r}.flags"), Field(i + 8, 4, "big", f"{tag!r}.frames"),
                           Field(i + 12, 4, "big", f"{tag!r}.bytes")]
    for a, b in zip(starts, starts[1:]):
        if 100 < b - a < 3000:
            lay.chunks.append(Chunk(a, b, "frame"))


def _adts(data: bytes, lay: Layout) -> None:
    pos = 0
    while pos + 7 <= len(data) and data[pos] == 0xFF and data[pos + 1] & 0xF0 == 0xF0:
        length = (data[pos + 3] & 3) << 11 | data[pos + 4] << 3 | data[pos + 5] >> 5
        lay.fields += [Field(pos + 2, 1, "big", "adts.profile_rate_ch"), Field(pos + 3, 3, "big", "adts.ch_length")]
        lay.chunks.append(Chunk(pos, min(pos + max(length, 7), len(data)), "adts"))
        if length < 7:
            break
        pos += length


def _au(data: bytes, lay: Layout) -> None:
    names = ((4, "offset"), (8, "size"), (12, "encoding"), (16, "rate"), (20, "channels"))
    lay.fields += [Field(o, 4, "big", f"AU.{n}") for o, n in names]


def _caf(data: bytes, lay: Layout) -> None:
    pos = 8
    while pos + 12 <= len(data):
        ctype = data[pos : pos + 4]
        size = _u(data, pos + 4, 8)
        body = pos + 12
        if size > len(data):  # the data chunk may say -1 (until the end)
            size = len(data) - body
        lay.chunks.append(Chunk(pos, min(body + size, len(data)), ctype.decode("latin-1")))
        lay.fields.append(Field(pos + 4, 8, "big", f"{ctype!r}.size"))
        if ctype == b"desc":
            lay.fields += [Field(body, 2, "big", "desc.rate_hi"), Field(body + 12, 4, "big", "desc.flags"),
                           Field(body + 16, 4, "big", "desc.bytes_per_packet"), Field(body + 20, 4, "big", "desc.frames_per_packet"),
                           Field(body + 24, 4, "big", "desc.channels"), Field(body + 28, 4, "big", "desc.bits")]
        elif ctype == b"pakt":
            lay.fields += [Field(body, 8, "big", "pakt.packets"), Field(body + 8, 8, "big", "pakt.frames"),
                           Field(body + 16, 4, "big", "pakt.priming")]
        elif ctype == b"kuki":
            lay.fields += [Field(body + 4 * k, 4, "big", f"kuki[{k}]") for k in range(6)]
        pos = body + size


def _w64(data: bytes, lay: Layout) -> None:
    pos = 40
    lay.fields.append(Field(16, 8, "little", "riff.size"))
    while pos + 24 <= len(data):
        guid = data[pos : pos + 4]
        size = _u(data, pos + 16, 8, "little")
        lay.chunks.append(Chunk(pos, min(pos + size, len(data)), guid.decode("latin-1")))
        lay.fields.append(Field(pos + 16, 8, "little", f"{guid!r}.size"))
        if guid == b"fmt ":
            _riff_body(data, lay, b"fmt ", pos + 24, "little")
        if size < 24:
            break
        pos += (size + 7) & ~7


def _asf(data: bytes, lay: Layout) -> None:
    lay.fields += [Field(16, 8, "little", "header.size"), Field(24, 4, "little", "header.count")]
    pos = 30
    while pos + 24 <= len(data):
        size = _u(data, pos + 16, 8, "little")
        lay.chunks.append(Chunk(pos, min(pos + size, len(data)), "object"))
        lay.fields.append(Field(pos + 16, 8, "little", "object.size"))
        if size < 24:
            break
        pos += size
    i = data.find(b"\x61\x01")  # WAVEFORMATEX of the wmav2 stream (format tag 0x0161)
    if i > 0:
        _riff_body(data, lay, b"fmt ", i, "little")


def layout_of(name: str, data: bytes) -> Layout:
    """Fields and chunks of ``data`` for the format named by the seed ``name``; partial if corrupt."""
    lay = Layout()
    ext = name.rsplit(".", 1)[-1]
    parsers: dict[str, Callable[[bytes, Layout], None]] = {
        "png": _png, "jpg": _jpeg, "gif": _gif, "bmp": _bmp, "ico": _ico, "tga": _tga, "ppm": _pnm, "pgm": _pnm,
        "pbm": _pnm, "tif": _tiff, "jp2": _boxes, "j2k": _j2k, "webp": _riff, "flac": _flac, "ogg": _ogg, "opus": _ogg,
        "mp3": _mp3, "m4a": _boxes, "mp4": _boxes, "aac": _adts, "webm": _ebml, "mka": _ebml, "au": _au,
        "caf": _caf, "w64": _w64, "wma": _asf,
    }
    if ext == "wav":
        parser: Callable[[bytes, Layout], None] = _riff
    elif ext in ("aiff", "aifc"):
        def parser(d: bytes, lay: Layout) -> None:
            _riff(d, lay, order="big")
    else:
        parser = parsers[ext]
    try:
        parser(data, lay)
    except (IndexError, ValueError, struct.error):
        pass  # a mutated file: keep what was parsed
    lay.fields = [f for f in lay.fields if 0 <= f.offset and f.offset + f.size <= len(data)]
    lay.chunks = [c for c in lay.chunks if 0 <= c.start < c.end <= len(data)]
    return lay


# =============================================================================================
# Mutations (seeded, deterministic)
# =============================================================================================

_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


def _offset(rng: random.Random, n: int) -> int:
    """A position, biased towards the header (where most of the parsing happens)."""
    r = rng.random()
    if r < 0.4:
        return rng.randrange(min(n, 64))
    if r < 0.6:
        return rng.randrange(min(n, 512))
    return rng.randrange(n)


def _span(rng: random.Random, n: int) -> tuple[int, int]:
    start = _offset(rng, n)
    length = rng.choice((1, 2, 4, 8, 16, 64, 256, 1024, rng.randrange(1, max(n, 2))))
    return start, min(n, start + length)


def mut_bitflip(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    count = rng.choice((1, 1, 2, 4, 8, 32))
    for _ in range(count):
        i = _offset(rng, len(data))
        data[i] ^= 1 << rng.randrange(8)
    return f"bitflip x{count}"


def mut_bytes(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    count = rng.choice((1, 1, 2, 4, 8))
    for _ in range(count):
        data[_offset(rng, len(data))] = rng.choice(_BYTES)
    return f"bytes x{count}"


def mut_word(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    size = rng.choice((2, 4, 8))
    value = rng.choice(_interesting(size))
    order = rng.choice(("little", "big"))
    i = _offset(rng, max(len(data) - size, 1))
    data[i : i + size] = value.to_bytes(size, order)[: len(data) - i]
    return f"word{size * 8}{order[0]}=0x{value:x}@{i}"


def mut_truncate(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    n = len(data)
    cut = rng.choice((rng.randrange(1, min(n, 64) + 1), rng.randrange(1, n), n - rng.randrange(1, min(n, 64) + 1)))
    cut = max(1, min(cut, n - 1))
    del data[cut:]
    return f"truncate@{cut}"


def mut_delete(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    a, b = _span(rng, len(data))
    if b - a >= len(data):
        b = a + 1
    del data[a:b]
    return f"delete[{a}:{b}]"


def mut_duplicate(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    a, b = _span(rng, len(data))
    at = rng.randrange(len(data) + 1)
    copies = rng.choice((1, 1, 2, 16))
    data[at:at] = bytes(data[a:b]) * copies
    return f"duplicate[{a}:{b}]x{copies}@{at}"


def mut_insert(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    at = _offset(rng, len(data) + 1)
    n = rng.choice((1, 3, 16, 300))
    fill = rng.choice(("random", "zero", "ff"))
    blob = {"random": bytes(rng.randrange(256) for _ in range(n)), "zero": bytes(n), "ff": b"\xff" * n}[fill]
    data[at:at] = blob
    return f"insert {n} {fill}@{at}"


def mut_chunk(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    chunks = layout_of(ctx.name, bytes(data)).chunks
    if not chunks:
        return mut_duplicate(rng, data, ctx)
    c = rng.choice(chunks)
    op = rng.choice(("delete", "duplicate", "swap", "move"))
    piece = bytes(data[c.start : c.end])
    if op == "delete" and c.end - c.start < len(data):
        del data[c.start : c.end]
    elif op == "swap" and len(chunks) > 1:
        d = rng.choice(chunks)
        if not (d.end <= c.start or c.end <= d.start):  # nested or the same: duplicate instead
            data[c.end : c.end] = piece
            return f"chunk duplicate {c.kind}[{c.start}:{c.end}]"
        first, second = sorted((c, d), key=lambda x: x.start)
        data[:] = (data[: first.start] + data[second.start : second.end] + data[first.end : second.start]
                   + data[first.start : first.end] + data[second.end :])
        op = f"swap/{d.kind}"
    elif op == "move":
        del data[c.start : c.end]
        at = rng.randrange(len(data) + 1)
        data[at:at] = piece
    else:
        data[c.end : c.end] = piece * rng.choice((1, 1, 3))
        op = "duplicate"
    return f"chunk {op} {c.kind}[{c.start}:{c.end}]"


def _interesting(size: int) -> list[int]:
    top = (1 << (8 * size)) - 1
    return sorted({0, 1, 2, top, top - 1, top >> 1, (top >> 1) + 1, min(top, 0xFFFF), min(top, 0x10000), min(top, 1 << 30),
                   min(top, 65535 * 2), min(top, 0x7FFFFFFF), min(top, 100000)})


def mut_inflate(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    """Set a header field (width, height, length, rate, channels, count...) to an extreme value."""
    fields = layout_of(ctx.name, bytes(data)).fields
    if not fields:
        return mut_word(rng, data, ctx)
    f = rng.choice(fields)
    if f.order == "text":
        text = rng.choice((b"99999999", b"65535", b"0", b"4294967296", b"1" * 40))
        data[f.offset : f.offset + f.size] = text
        return f"inflate {f.name}={text.decode()}"
    current = int.from_bytes(data[f.offset : f.offset + f.size], f.order)  # type: ignore[arg-type]
    top = (1 << (8 * f.size)) - 1
    choices = _interesting(f.size) + [min(top, current * 2), min(top, current * 1000 + 1), max(current - 1, 0), min(top, current + 1)]
    value = rng.choice(choices)
    data[f.offset : f.offset + f.size] = value.to_bytes(f.size, f.order)  # type: ignore[arg-type]
    return f"inflate {f.name}@{f.offset}: {current}->{value}"


def mut_splice(rng: random.Random, data: bytearray, ctx: Ctx) -> str:
    pool = ctx.corpus[ctx.kind] if rng.random() < 0.8 else {k: v for seeds in ctx.corpus.values() for k, v in seeds.items()}
    other_name = rng.choice(sorted(pool))
    other = pool[other_name]
    a = rng.randrange(1, len(data)) if len(data) > 1 else 1
    b = rng.randrange(len(other))
    data[a:] = other[b:]
    return f"splice [:{a}]+{other_name}[{b}:]"


MUTATORS: list[tuple[Callable[[random.Random, bytearray, Ctx], str], int]] = [
    (mut_bitflip, 14), (mut_bytes, 10), (mut_word, 8), (mut_truncate, 10), (mut_delete, 6), (mut_duplicate, 6),
    (mut_insert, 4), (mut_chunk, 12), (mut_inflate, 22), (mut_splice, 6),
]


@dataclass
class Ctx:
    kind: str
    name: str
    corpus: dict[str, dict[str, bytes]]


@dataclass
class Case:
    index: int
    kind: str  # "image" or "audio"
    seed_name: str
    ops: list[str]
    data: bytes
    via: str  # "bytes", "path" or "file"

    @property
    def ext(self) -> str:
        return "." + self.seed_name.rsplit(".", 1)[-1]

    def describe(self) -> str:
        return f"{self.kind} {self.seed_name} via {self.via}: {'; '.join(self.ops) or 'unmutated'} ({len(self.data)} bytes)"


def case_kind(index: int, kinds: tuple[str, ...]) -> str:
    return kinds[index % len(kinds)]


def make_case(corpus: dict[str, dict[str, bytes]], seed: int, index: int, kinds: tuple[str, ...] = KINDS) -> Case:
    """Case ``index`` of run ``seed``: the same bytes every time for the same seed files."""
    rng = random.Random(f"featx-fuzz:{seed}:{index}")
    kind = case_kind(index, kinds)
    names = sorted(corpus[kind])
    name = rng.choice(names)
    data = bytearray(corpus[kind][name])
    ctx = Ctx(kind, name, corpus)
    ops: list[str] = []
    if rng.random() >= 0.03:  # a few unmutated seeds: the controls must all load
        count = rng.choices((1, 2, 3, 4), weights=(60, 25, 10, 5))[0]
        funcs, weights = zip(*MUTATORS)
        for _ in range(count):
            if len(data) < 2:
                break
            ops.append(rng.choices(funcs, weights=weights)[0](rng, data, ctx))
        ext = name.rsplit(".", 1)[-1]
        if ext == "png" and rng.random() < 0.75:
            _fix_png(data)
            ops.append("png crc fixed")
        if ext in ("ogg", "opus") and rng.random() < 0.75:
            _fix_ogg(data)
            ops.append("ogg crc fixed")
    if not data:
        data = bytearray(b"\0")
    via = rng.choices(("bytes", "path", "file"), weights=(70, 20, 10))[0]
    return Case(index, kind, name, ops, bytes(data), via)


# =============================================================================================
# One case (runs in a worker process)
# =============================================================================================


@dataclass
class Outcome:
    kind: str  # "ok", "error", or one of BUG_KINDS (or "slow": past the deadline in the pool only)
    name: str = ""  # error/exception class, signal, ...
    stage: str = ""  # "load" or "process"
    detail: str = ""
    secs: float = 0.0
    growth_mb: float = 0.0  # RSS high-water mark during the case minus RSS before it
    peak_mb: float = 0.0  # the worker's RSS high-water mark during the case
    warnings: list[str] = field(default_factory=list)
    no_source: bool = False  # an InputError from load_* without a source naming the input
    note: str = ""

    @property
    def is_bug(self) -> bool:
        return self.kind in BUG_KINDS

    @property
    def label(self) -> str:
        return self.kind if self.kind in ("ok", "slow", "hang", "invalid") else f"{self.kind}:{self.name}"


# BUGs this fuzzer found outside featx/audio/decode.py and featx/image/io.py, reported but not fixed
# here. `tests/test_fuzz.py` tolerates exactly these (and prints them); delete an entry once its fix
# lands, and the test then holds the fix in place.
KNOWN_OPEN: dict[str, tuple[Callable[[str, Outcome], bool], str]] = {
    "nan-features-from-huge-samples": (
        lambda kind, out: kind == "audio" and out.kind == "invalid" and out.stage == "process"
        and bool(re.fullmatch(r"processor returned non-finite values \(the waveform's largest \|sample\| is "
                              r"[0-9.]+e\+(1[5-9]|[2-3][0-9])\)", out.detail)),
        "load_audio returns finite but huge samples (|x| > ~1e17) and WhisperFeatureExtractor then returns "
        "NaN features without an error (transformers does the same). Sources: a bit flip in the exponent of "
        "a float32 WAV/AIFF sample; libsndfile 1.2.2 decoding a corrupt Ogg Opus stream returns garbage "
        "(uninitialised) samples, different on every read. Fix belongs in featx/audio/extractors.py "
        "(refuse non-finite features) and/or a magnitude check in featx/audio/decode.py Sink.push, and "
        "featx/audio/io.py preferring PyAV for Ogg Opus as it does for MP3",
    ),
}


def known_issue(kind: str, out: Outcome) -> str | None:
    """The `KNOWN_OPEN` entry that explains this BUG outcome, if any."""
    for key, (matches, _) in KNOWN_OPEN.items():
        if out.is_bug and matches(kind, out):
            return key
    return None


_PROCESSORS: dict[str, Any] = {}


def _processor(kind: str) -> Any:
    import featx

    if kind not in _PROCESSORS:
        _PROCESSORS[kind] = featx.ViTImageProcessor() if kind == "image" else featx.WhisperFeatureExtractor()
    return _PROCESSORS[kind]


def _check_image(image: Any) -> str:
    from PIL import Image

    if not isinstance(image, Image.Image):
        return f"load_image returned a {type(image).__name__}"
    if image.mode != "RGB" or image.width < 1 or image.height < 1:
        return f"load_image returned mode {image.mode} size {image.size}"
    if len(image.tobytes()) != image.width * image.height * 3:
        return "image data does not match its size"
    return ""


def _check_wave(wave: Any, rate: Any) -> str:
    import numpy as np

    if not isinstance(wave, np.ndarray) or wave.dtype != np.float32 or wave.ndim != 1 or wave.shape[0] < 1:
        return f"load_audio returned {type(wave).__name__} {getattr(wave, 'dtype', '')} {getattr(wave, 'shape', '')}"
    if rate != 16000:
        return f"load_audio returned rate {rate!r}"
    if not np.isfinite(wave).all():
        return "load_audio returned non-finite samples"
    return ""


def _check_features(array: Any, shape: tuple[int, ...]) -> str:
    import numpy as np

    array = np.asarray(array)
    if array.shape != shape or array.dtype != np.float32:
        return f"processor returned {array.dtype} {array.shape}, expected float32 {shape}"
    if not np.isfinite(array).all():
        return "processor returned non-finite values"
    return ""


def run_case(case: Case, tmpdir: str) -> Outcome:
    """Decode ``case`` and run the processor on the result; never raises."""
    import warnings

    import numpy as np

    import featx
    from featx.errors import FeatxError, InputError

    stage = "load"
    path = None
    fileobj = None
    if case.via == "path":
        path = os.path.join(tmpdir, f"case{case.ext}")
        with open(path, "wb") as f:
            f.write(case.data)
        src: Any = path
    elif case.via == "file":
        src = fileobj = io.BytesIO(case.data)
    else:
        src = case.data
    out = Outcome("ok")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if case.kind == "image":
                image = featx.load_image(src)
                problem = _check_image(image)
                if not problem:
                    stage = "process"
                    result = _processor("image")(image, return_tensors="np")
                    problem = _check_features(result["pixel_values"], (1, 3, 224, 224))
            else:
                wave, rate = featx.load_audio(src, sampling_rate=16000)
                problem = _check_wave(wave, rate)
                if not problem:
                    stage = "process"
                    result = _processor("audio")(wave, sampling_rate=16000, return_tensors="np")
                    problem = _check_features(result["input_features"], (1, 80, 3000))
                    if problem:
                        problem += f" (the waveform's largest |sample| is {float(np.abs(wave).max()):.3g})"
            if problem:
                out = Outcome("invalid", "", stage, problem)
        except FeatxError as exc:
            out = Outcome("error", type(exc).__name__, stage, str(exc)[:400])
            out.no_source = stage == "load" and isinstance(exc, InputError) and exc.source is None
        except MemoryError as exc:
            out = Outcome("memory", "MemoryError", stage, traceback.format_exc()[-3000:])
            del exc
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - anything else is the bug being looked for
            out = Outcome("exception", type(exc).__name__, stage, traceback.format_exc()[-3000:])
        finally:
            if path is not None and os.path.exists(path):
                os.unlink(path)
            if fileobj is not None:
                fileobj.close()
    out.secs = time.perf_counter() - t0
    out.warnings = sorted({f"{w.category.__name__}: {_pattern(str(w.message))}" for w in caught})
    return out


def _pattern(message: str) -> str:
    """A warning's message with the numbers and the source label taken out, for counting."""
    message = re.sub(r"^<\d+ bytes>: |^/\S+: ", "", message)
    return re.sub(r"\d+", "N", message)[:120]


def _status_kb(pid: int | str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_main(args: argparse.Namespace) -> None:
    """``--worker``: read case numbers from stdin, answer one JSON line per case on the real stdout."""
    import faulthandler
    import resource

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to the log, not into the protocol
    faulthandler.enable()  # a crash leaves its Python stack in the log
    corpus = read_corpus(Path(args.corpus))
    kinds = tuple(args.kind_list.split(","))
    tmpdir = tempfile.mkdtemp(prefix="featx-fuzz-worker-")
    for kind in kinds:  # warm up: imports, processors, compiled kernels (not counted in any case's time)
        name = sorted(corpus[kind])[0]
        run_case(Case(-1, kind, name, [], corpus[kind][name], "bytes"), tmpdir)
    vm_size = _status_kb("self", "VmSize") * 1024
    limit = vm_size + args.mem_cap_mb * 1024 * 1024 + (4 << 30)  # a safety net; the parent watches RSS
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    except (ValueError, OSError):  # not on every platform; the RSS watch still applies
        pass
    proto.write(json.dumps({"ready": True, "rss_kb": _status_kb("self", "VmRSS"), "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        msg = json.loads(line)
        if "case" not in msg:
            break
        index = msg["case"]
        case = make_case(corpus, args.seed, index, kinds)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM, so the next reading is this case's peak
        except OSError:
            pass
        before = _status_kb("self", "VmRSS")
        print(f"--- case {index}: {case.describe()}", file=sys.stderr, flush=True)
        out = run_case(case, tmpdir)
        peak = max(_status_kb("self", "VmHWM"), before)
        out.peak_mb = peak / 1024
        out.growth_mb = (peak - before) / 1024
        if out.growth_mb > args.mem_cap_mb and not out.is_bug:
            out.note = f"was {out.label}; " + out.note
            out.kind, out.name = "memory", f"RSS +{out.growth_mb:.0f} MB"
        proto.write(json.dumps({"done": index, "rss_kb": _status_kb("self", "VmRSS"), **out.__dict__}) + "\n")


# =============================================================================================
# The pool of worker processes (survives crashes, hangs and memory blow-ups)
# =============================================================================================


@dataclass
class Config:
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    workers: int = 2
    deadline_s: float = DEFAULT_DEADLINE_S
    mem_cap_mb: int = DEFAULT_MEM_CAP_MB
    recycle: int = 500  # cases per worker process before a fresh one takes over
    startup_timeout_s: float = 300.0  # imports, warm-up and a first compile of featx's kernels
    stop_at: float | None = None  # time.monotonic() after which no new case starts (--minutes)


class _Worker:
    def __init__(self, cfg: Config, workdir: Path, serial: int) -> None:
        import featx

        env = dict(os.environ)
        root = str(Path(featx.__file__).resolve().parents[1])  # the featx this process uses
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env.setdefault(var, "1")  # one core per worker; the pool is the parallelism
        self.log_path = workdir / f"worker-{serial}.log"
        self.log = open(self.log_path, "ab")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--corpus", str(workdir / "seeds"),
               "--seed", str(cfg.seed), "--kind-list", ",".join(cfg.kinds), "--mem-cap-mb", str(cfg.mem_cap_mb)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        self.buf = b""
        self.ready = False
        self.spawned = time.monotonic()
        self.case: int | None = None
        self.started = 0.0
        self.log_offset = 0
        self.served = 0
        self.base_kb = 0
        self.peak_kb = 0

    def send(self, msg: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def start(self, index: int) -> None:
        self.case, self.started = index, time.monotonic()
        self.log.flush()
        self.log_offset = self.log_path.stat().st_size
        self.send({"case": index})

    def read(self) -> list[dict] | None:
        """Complete messages available now; None once the worker has closed its end (died)."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return None
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def rss_kb(self) -> int:
        return _status_kb(self.proc.pid, "VmRSS")

    def log_tail(self, limit: int = 3000) -> str:
        self.log.flush()
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return text[-limit:]

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                try:
                    self.send({"quit": True})
                    self.proc.stdin.close()  # type: ignore[union-attr]
                except OSError:
                    pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass
        self.log.close()


def _signal_name(code: int) -> str:
    import signal

    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def run_pool(cfg: Config, indices: Iterable[int], workdir: Path, progress: Callable[[int, int], None] | None = None) -> dict[int, Outcome]:
    """Run the cases in ``cfg.workers`` worker processes; one `Outcome` per case index."""
    import select
    from collections import deque

    pending = deque(indices)
    total = len(pending)
    results: dict[int, Outcome] = {}
    serial = 0
    workers: list[_Worker] = []

    def spawn() -> _Worker:
        nonlocal serial
        serial += 1
        return _Worker(cfg, workdir, serial)

    def finish(w: _Worker, out: Outcome) -> None:
        assert w.case is not None
        results[w.case] = out
        w.case = None
        if progress:
            progress(len(results), total)

    try:
        workers = [spawn() for _ in range(max(1, min(cfg.workers, total)))]
        while pending or any(w.case is not None for w in workers):
            if cfg.stop_at is not None and time.monotonic() > cfg.stop_at:
                pending.clear()  # out of time: finish the cases in flight, start no more
            for i, w in enumerate(workers):
                if w.ready and w.case is None and pending:
                    if w.served >= cfg.recycle:
                        w.stop()
                        workers[i] = spawn()
                        continue
                    w.start(pending.popleft())
            readable, _, _ = select.select([w.fd for w in workers], [], [], 0.05)
            now = time.monotonic()
            for i, w in enumerate(workers):
                msgs: list[dict] | None = []
                if w.fd in readable:
                    msgs = w.read()
                for msg in msgs or []:
                    if msg.get("ready"):
                        w.ready, w.base_kb = True, msg["rss_kb"]
                    elif "done" in msg and msg["done"] == w.case:
                        w.base_kb = msg.pop("rss_kb")
                        msg.pop("done")
                        out = Outcome(**msg)
                        w.peak_kb = max(w.peak_kb, int(out.peak_mb * 1024))
                        w.served += 1
                        finish(w, out)
                dead = msgs is None or w.proc.poll() is not None
                replace = False
                if dead:
                    code = w.proc.wait()
                    if w.case is None:
                        if not w.ready:
                            raise RuntimeError(f"fuzz worker failed to start ({_signal_name(code)}):\n{w.log_tail()}")
                    else:
                        finish(w, Outcome("crash", _signal_name(code), "", w.log_tail(), secs=now - w.started))
                    replace = True
                elif w.case is not None and now - w.started > cfg.deadline_s:
                    finish(w, Outcome("hang", "", "", f"still running after {cfg.deadline_s:g} s\n" + w.log_tail(),
                                      secs=now - w.started))
                    replace = True
                elif w.case is not None and (rss := w.rss_kb()) - w.base_kb > cfg.mem_cap_mb * 1024:
                    growth = (rss - w.base_kb) / 1024
                    finish(w, Outcome("memory", f"RSS +{growth:.0f} MB", "", f"killed at RSS {rss / 1024:.0f} MB "
                                      f"(+{growth:.0f} MB)\n" + w.log_tail(), secs=now - w.started, growth_mb=growth,
                                      peak_mb=rss / 1024))
                    replace = True
                elif not w.ready and now - w.spawned > cfg.startup_timeout_s:
                    raise RuntimeError(f"fuzz worker did not start within {cfg.startup_timeout_s:g} s:\n{w.log_tail()}")
                if replace:
                    w.stop(kill=True)
                    workers[i] = spawn()
    finally:
        for w in workers:
            w.stop(kill=w.case is not None)
    return results


# =============================================================================================
# A run: cases, confirmation of the process-level BUGs, report
# =============================================================================================


@dataclass
class Report:
    cfg: Config
    start: int
    cases: int
    results: dict[int, Outcome]
    seconds: float
    saved: dict[int, Path] = field(default_factory=dict)
    seed_names: dict[int, str] = field(default_factory=dict)
    descriptions: dict[int, str] = field(default_factory=dict)

    def counts(self) -> Counter:
        return Counter(out.label for out in self.results.values())

    def counts_by_kind(self) -> dict[str, Counter]:
        by: dict[str, Counter] = {}
        for index, out in self.results.items():
            by.setdefault(case_kind(index, self.cfg.kinds), Counter())[out.kind] += 1
        return by

    def bugs(self, known: bool = True) -> dict[int, Outcome]:
        """The BUG outcomes; ``known=False`` leaves out those `KNOWN_OPEN` explains."""
        return {i: out for i, out in sorted(self.results.items())
                if out.is_bug and (known or not known_issue(case_kind(i, self.cfg.kinds), out))}

    def peak(self) -> tuple[float, int, float]:
        """(largest RSS growth in one case in MB, its case index, largest worker RSS in MB)."""
        index, out = max(self.results.items(), key=lambda item: item[1].growth_mb)
        return out.growth_mb, index, max(o.peak_mb for o in self.results.values())

    def reproducer(self, index: int) -> str:
        kinds = "" if self.cfg.kinds == KINDS else f" --kind {self.cfg.kinds[0]}"
        return f"python tools/fuzz.py --seed {self.cfg.seed}{kinds} --case {index}"

    def summary(self) -> str:
        lines = []
        counts = self.counts()
        by_kind = self.counts_by_kind()
        rate = len(self.results) / self.seconds if self.seconds else 0.0
        lines.append(f"featx fuzz: seed {self.cfg.seed}, cases {self.start}..{self.start + len(self.results) - 1}: "
                     f"{len(self.results)} run in {self.seconds:.1f} s ({rate:.1f}/s, {self.cfg.workers} workers, "
                     f"deadline {self.cfg.deadline_s:g} s, memory cap +{self.cfg.mem_cap_mb} MB)")
        for kind, c in sorted(by_kind.items()):
            parts = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
            lines.append(f"  {kind}: {sum(c.values())} cases: {parts}")
        lines.append("outcomes by kind:")
        for label, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0].split(":")[0] in BUG_KINDS, kv[0])):
            bug = "  <- BUG" if label.split(":")[0] in BUG_KINDS else ""
            lines.append(f"  {label:<40} {n:>7}{bug}")
        growth, at, worker_peak = self.peak()
        lines.append(f"peak memory: largest RSS growth in one case {growth:.1f} MB (case {at}, "
                     f"{self.seed_names.get(at, '')}), largest worker RSS {worker_peak:.0f} MB")
        slow_index, slow = max(self.results.items(), key=lambda item: item[1].secs)
        lines.append(f"slowest case: {slow.secs:.2f} s (case {slow_index}, {slow.label}, {self.seed_names.get(slow_index, '')})")
        no_source = sum(o.no_source for o in self.results.values())
        if no_source:
            lines.append(f"InputErrors from load_* without a source naming the input: {no_source}")
        warned = Counter(w for o in self.results.values() for w in o.warnings)
        if warned:
            lines.append("warnings (cases):")
            lines += [f"  {n:>6}  {w}" for w, n in warned.most_common(8)]
        bugs = self.bugs()
        lines.append(f"BUGs: {len(bugs)} ({len(bugs) - len(self.bugs(known=False))} of them known and reported, see KNOWN_OPEN)")
        for index, out in bugs.items():
            known = known_issue(case_kind(index, self.cfg.kinds), out)
            lines.append(f"- case {index}: {out.label} at {out.stage or '?'}{f' [known: {known}]' if known else ''} "
                         f"({self.descriptions.get(index, '')})")
            if out.note:
                lines.append(f"    note: {out.note}")
            lines.append(f"    reproduce: {self.reproducer(index)}")
            if index in self.saved:
                lines.append(f"    file: {self.saved[index]}")
            detail = out.detail.strip().splitlines()
            lines += ["    | " + line for line in detail[-12:]]
        return "\n".join(lines)

    def per_seed(self) -> str:
        table: dict[str, Counter] = {}
        for index, out in self.results.items():
            table.setdefault(self.seed_names.get(index, "?"), Counter())[out.kind] += 1
        rows = [f"  {name:<28} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) for name, c in sorted(table.items())]
        return "per seed file:\n" + "\n".join(rows)


def fuzz(cases: int, seed: int = 0, kinds: tuple[str, ...] = KINDS, *, start: int = 0, workers: int = 2,
         deadline_s: float = DEFAULT_DEADLINE_S, mem_cap_mb: int = DEFAULT_MEM_CAP_MB, recycle: int = 500,
         out_dir: Path | str | None = None, progress: Callable[[int, int], None] | None = None,
         confirm: bool = True, minutes: float | None = None) -> Report:
    """Run cases ``start .. start + cases - 1`` of run ``seed``; BUG inputs are saved under ``out_dir``.

    ``minutes``: start no new case after this long (the report then covers the cases run).
    """
    t0 = time.monotonic()
    cfg = Config(seed=seed, kinds=tuple(kinds), workers=workers, deadline_s=deadline_s, mem_cap_mb=mem_cap_mb,
                 recycle=recycle, stop_at=None if minutes is None else t0 + 60 * minutes)
    corpus = build_corpus(cfg.kinds)
    with tempfile.TemporaryDirectory(prefix="featx-fuzz-") as tmp:
        workdir = Path(tmp)
        save_corpus(corpus, workdir / "seeds")
        indices = list(range(start, start + cases))
        results = run_pool(cfg, indices, workdir, progress)
        if confirm:  # a crash, hang or blow-up: again alone in a fresh worker, to tell state from input
            for index, out in sorted(results.items()):
                if out.kind not in ("crash", "hang", "memory"):
                    continue
                solo = run_pool(Config(**{**cfg.__dict__, "workers": 1, "stop_at": None}), [index], workdir)[index]
                if solo.kind == out.kind:
                    out.note = f"reproduced alone in a fresh worker ({solo.label})"
                elif out.kind == "hang" and not solo.is_bug:
                    out.kind, out.note = "slow", f"past the deadline in the pool, {solo.secs:.1f} s alone ({solo.label})"
                else:
                    out.note = f"alone in a fresh worker: {solo.label} (state left by earlier cases?)"
    seconds = time.monotonic() - t0
    report = Report(cfg, start, cases, results, seconds)
    for index in results:
        case = make_case(corpus, seed, index, cfg.kinds)
        report.seed_names[index] = case.seed_name
        report.descriptions[index] = case.describe()
    if out_dir is not None:
        out = Path(out_dir)
        for index, outcome in report.bugs().items():
            case = make_case(corpus, seed, index, cfg.kinds)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"seed{seed}-case{index}-{outcome.kind}{case.ext}"
            path.write_bytes(case.data)
            (out / f"seed{seed}-case{index}-{outcome.kind}.txt").write_text(
                f"{case.describe()}\n{outcome.label} at {outcome.stage}\n{outcome.note}\n"
                f"reproduce: {report.reproducer(index)}\n"
                f"replay: python tools/fuzz.py --replay {path} --kind {case.kind}\n\n{outcome.detail}\n")
            report.saved[index] = path
    return report


# =============================================================================================
# Command line
# =============================================================================================


def _replay(data: bytes, kind: str, name: str, via: str) -> int:
    case = Case(0, kind, name, [], data, via)
    with tempfile.TemporaryDirectory() as tmp:
        out = run_case(case, tmp)
    print(f"{out.label}{f' at {out.stage}' if out.stage else ''} in {out.secs:.2f} s")
    print(out.detail)
    for w in out.warnings:
        print("warning:", w)
    return 1 if out.is_bug else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="run seed: case N of a seed is always the same input")
    parser.add_argument("--start", type=int, default=0, help="first case index (to resume or split a run)")
    parser.add_argument("--kind", choices=KINDS, help="only images or only audio (default: alternate)")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, help="seconds per case before it is a hang")
    parser.add_argument("--mem-cap-mb", type=int, default=DEFAULT_MEM_CAP_MB, help="RSS growth per case that is a BUG")
    parser.add_argument("--recycle", type=int, default=500, help="cases per worker process")
    parser.add_argument("--minutes", type=float, help="start no new case after this many minutes")
    parser.add_argument("--out", default=None, help="folder for the BUG inputs (default: a featx-fuzz-SEED temp folder)")
    parser.add_argument("--per-seed", action="store_true", help="also print outcomes per seed file")
    parser.add_argument("--case", type=int, help="run this one case here (no subprocess) and print its traceback")
    parser.add_argument("--replay", help="run a saved input file here (with --kind)")
    parser.add_argument("--via", choices=("bytes", "path", "file"), default="bytes", help="how --replay passes the input")
    parser.add_argument("--save-seeds", help="write the seed files to this folder and exit")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--kind-list", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    kinds = (args.kind,) if args.kind else KINDS
    if args.save_seeds:
        save_corpus(build_corpus(kinds), Path(args.save_seeds))
        print(args.save_seeds)
        return 0
    if args.replay:
        if not args.kind:
            parser.error("--replay needs --kind image|audio")
        return _replay(Path(args.replay).read_bytes(), args.kind, Path(args.replay).name, args.via)
    if args.case is not None:
        case = make_case(build_corpus(kinds), args.seed, args.case, kinds)
        print(f"case {args.case}: {case.describe()}")
        with tempfile.TemporaryDirectory() as tmp:
            out = run_case(case, tmp)
        print(f"{out.label}{f' at {out.stage}' if out.stage else ''} in {out.secs:.2f} s (imports and warm-up included)")
        print(out.detail)
        return 1 if out.is_bug else 0
    out_dir = args.out or os.path.join(tempfile.gettempdir(), f"featx-fuzz-{args.seed}")
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 10 or done == total:
            last[0] = now
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

    report = fuzz(args.cases, args.seed, kinds, start=args.start, workers=args.workers, deadline_s=args.deadline,
                  mem_cap_mb=args.mem_cap_mb, recycle=args.recycle, out_dir=out_dir, progress=progress,
                  minutes=args.minutes)
    print(report.summary())
    if args.per_seed:
        print(report.per_seed())
    if report.bugs():
        print(f"BUG inputs saved under {out_dir}")
    return 1 if report.bugs(known=False) else 0


if __name__ == "__main__":
    sys.exit(main())
