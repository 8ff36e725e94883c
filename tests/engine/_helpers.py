"""Generated inputs (good photos and each kind of bad file) and CLI runners for the engine tests."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def photo(seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> Image.Image:
    """A smooth random picture (gradients + blobs), so that resized copies stay near-duplicates."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    channels = []
    for _ in range(3):
        a, b, c, d = rng.uniform(-3, 3, 4)
        channels.append(np.sin(a * xx * 6 + b) * np.cos(c * yy * 6 + d))
    arr = ((np.stack(channels, -1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(arr)
    return image.convert(mode) if mode != "RGB" else image


def write_photos(folder: Path, n: int, *, start: int = 0, fmt: str = "png") -> list[str]:
    """``n`` photos of varied sizes and modes; returns their paths (sorted order)."""
    folder.mkdir(parents=True, exist_ok=True)
    modes = ["RGB", "RGBA", "L", "P", "RGB"]
    paths = []
    for i in range(start, start + n):
        size = (24 + (i * 7) % 50, 20 + (i * 11) % 45)
        mode = modes[i % len(modes)] if fmt == "png" else "RGB"
        path = folder / f"img_{i:05d}.{fmt}"
        photo(i, size, mode).save(path)
        paths.append(str(path))
    return paths


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = 40_000) -> bytes:
    """A tiny PNG header claiming side x side pixels (1.6 G pixels): PIL refuses it before decoding."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def unsupported_mode_tiff() -> bytes:
    """A well-formed TIFF whose pixels have 5 samples each: no PIL mode can hold it."""
    width = height = 4
    spp = 5
    data = bytes(width * height * spp)
    entries = [(256, width), (257, height), (258, 8), (259, 1), (262, 1), (273, 0), (277, spp), (278, height),
               (279, len(data))]
    offset = 8 + 2 + len(entries) * 12 + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, value in entries:
        value = offset if tag == 273 else value
        out += struct.pack("<HHII", tag, 4, 1, value)
    return bytes(out + struct.pack("<I", 0) + data)


def write_bad_files(folder: Path) -> dict[str, str]:
    """One file of each bad kind; returns {kind: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = io.BytesIO()
    photo(99, (64, 48)).save(good, "JPEG", quality=90)
    jpeg = good.getvalue()
    png = io.BytesIO()
    photo(98, (40, 40)).save(png, "PNG")
    corrupt = bytearray(png.getvalue())
    corrupt[60:120] = bytes(60)  # zeroed IDAT bytes: the zlib stream is broken
    files = {
        "corrupt": ("corrupt.png", bytes(corrupt)),
        "empty": ("empty.jpg", b""),
        "truncated": ("truncated.jpg", jpeg[: len(jpeg) // 2]),
        "not_an_image": ("notes.png", b"these are my notes, not a picture\n" * 20),
        "bomb": ("bomb.png", bomb_png()),
        "unsupported_mode": ("five_channels.tif", unsupported_mode_tiff()),
    }
    paths = {}
    for kind, (name, data) in files.items():
        (folder / name).write_bytes(data)
        paths[kind] = str(folder / name)
    return paths


def featx_subprocess(*args: str, **kwargs) -> subprocess.Popen:
    """``python -m featx ARGS`` as a child process (stdout/stderr piped)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "featx", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=kwargs.pop("cwd", None), text=True, **kwargs)


def read_rows(out: str | Path) -> dict[str, dict]:
    """{path: row} of an output folder; asserts every path appears once."""
    import pyarrow.dataset as ds

    table = ds.dataset(str(out)).to_table()
    paths = table.column("path").to_pylist()
    assert len(paths) == len(set(paths)), "a path was written twice"
    return {row["path"]: row for row in table.to_pylist()}
