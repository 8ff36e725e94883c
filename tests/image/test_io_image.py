"""featx.image.io.load_image: sources, EXIF, animations, modes, bombs, broken files, URLs."""

from __future__ import annotations

import http.server
import io
import pathlib
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from featx.errors import InputError
from featx.image.io import load_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def encode(image: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


# ---- sources ---------------------------------------------------------------------------------


@pytest.fixture
def png_bytes() -> bytes:
    return encode(Image.fromarray(RGB))


@pytest.mark.parametrize("kind", ["str", "path", "bytes", "bytearray", "memoryview", "file", "stream", "data_uri"])
def test_every_source_kind_gives_the_same_pixels(kind: str, png_bytes: bytes, tmp_path: pathlib.Path) -> None:
    import base64

    path = tmp_path / "a.png"
    path.write_bytes(png_bytes)

    class NonSeekable(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b):  # type: ignore[no-untyped-def]
            data = self._inner.read(len(b))
            b[: len(data)] = data
            return len(data)

    src = {
        "str": str(path),
        "path": path,
        "bytes": png_bytes,
        "bytearray": bytearray(png_bytes),
        "memoryview": memoryview(png_bytes),
        "file": io.BytesIO(png_bytes),
        "stream": NonSeekable(png_bytes),
        "data_uri": "data:image/png;base64," + base64.b64encode(png_bytes).decode(),
    }[kind]
    out = load_image(src)
    assert out.mode == "RGB" and out.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(out), RGB)


def test_caller_file_object_stays_open(png_bytes: bytes, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes)
    with open(path, "rb") as fh:
        load_image(fh)
        assert not fh.closed


def test_pil_input_is_not_mutated_and_not_returned() -> None:
    src = Image.fromarray(RGB).convert("RGBA")
    before = np.asarray(src).copy()
    for mode in ("RGB", None):
        out = load_image(src, mode=mode)
        assert out is not src
    assert src.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(src), before)


def test_mode_none_keeps_mode_and_other_modes_convert() -> None:
    data = encode(Image.fromarray(RGB[..., 0]))  # L
    assert load_image(data, mode=None).mode == "L"
    assert load_image(data, mode="RGBA").mode == "RGBA"
    palette = encode(Image.fromarray(RGB).convert("P"))
    assert load_image(palette, mode=None).mode == "P"
    with pytest.raises(InputError, match="unknown PIL mode"):
        load_image(data, mode="XYZ")


# ---- EXIF, animation, draft ------------------------------------------------------------------

EXPECTED_ORIENTATION = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    kw = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(Image.fromarray(RGB), fmt, exif=exif.tobytes(), **kw)
    out = np.asarray(load_image(data))
    np.testing.assert_array_equal(out, EXPECTED_ORIENTATION[orientation](RGB))


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animation_gives_first_frame(fmt: str) -> None:
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200)]
    frames = [Image.new("RGB", (6, 4), c) for c in colours]
    kw = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0, **kw)
    opened = Image.open(io.BytesIO(data))
    assert getattr(opened, "n_frames", 1) == 3
    out = np.asarray(load_image(data))
    assert out.shape == (4, 6, 3)
    assert tuple(out[0, 0]) == colours[0]
    # A PIL image positioned on a later frame keeps that frame.
    opened.seek(2)
    assert tuple(np.asarray(load_image(opened))[0, 0]) == colours[2]


def test_draft_decodes_jpeg_at_reduced_size() -> None:
    big = Image.fromarray(np.kron(RGB, np.ones((80, 80, 1), dtype=np.uint8)))  # 400x560
    data = encode(big, "JPEG", quality=95)
    full = load_image(data)
    small = load_image(data, draft=(100, 140))
    assert full.size == (560, 400)
    assert small.size == (140, 100)  # scale 1/4 is the largest that keeps >= (100, 140)
    # Rotated photos: the draft request is for the upright image.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = load_image(encode(big, "JPEG", exif=exif.tobytes()), draft=(140, 100))
    assert rotated.size == (100, 140)
    # Non-JPEG formats ignore draft.
    assert load_image(encode(big), draft=(100, 140)).size == (560, 400)


# ---- modes -----------------------------------------------------------------------------------


def test_background_composites_alpha() -> None:
    rgba = np.concatenate([RGB, np.full((5, 7, 1), 0, np.uint8)], axis=-1)
    rgba[0, 0, 3] = 255
    data = encode(Image.fromarray(rgba))
    dropped = np.asarray(load_image(data))
    np.testing.assert_array_equal(dropped, RGB)  # reference load_image: alpha dropped
    white = np.asarray(load_image(data, background=(255, 255, 255)))
    assert (white[1:] == 255).all() and tuple(white[0, 0]) == tuple(RGB[0, 0])
    black = np.asarray(load_image(data, background="black"))
    assert (black[1:] == 0).all()
    grey = np.asarray(load_image(data, background=128, mode="L"))
    assert grey.shape == (5, 7) and (grey[1:] == 128).all()
    # No alpha: background changes nothing.
    np.testing.assert_array_equal(np.asarray(load_image(encode(Image.fromarray(RGB)), background="red")), RGB)


@pytest.mark.parametrize(
    "mode, background", [(None, (255, 255, 255)), ("RGBA", "white"), ("RGB", (1, 2)), ("RGB", "nocolour"), ("RGB", (0, 0, 300))]
)
def test_bad_background_is_an_input_error(mode: str | None, background: object) -> None:
    with pytest.raises(InputError, match="background"):
        load_image(Image.fromarray(RGB), mode=mode, background=background)


@pytest.mark.parametrize("mode", ["La", "RGBa"])
def test_premultiplied_modes_convert(mode: str) -> None:
    straight = Image.fromarray(RGB).convert("RGBA" if mode == "RGBa" else "LA")
    premultiplied = straight.convert(mode)
    out = load_image(premultiplied)
    assert out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out), np.asarray(premultiplied.convert(mode.upper()).convert("RGB")))


def test_sixteen_bit_and_float_are_clipped_like_pil() -> None:
    values = np.array([[0, 100, 255, 256, 40000]], dtype=np.uint16)
    out = np.asarray(load_image(encode(Image.fromarray(values))))
    np.testing.assert_array_equal(out[..., 0], [[0, 100, 255, 255, 255]])
    floats = np.array([[-5.0, 0.6, 100.7, 300.0]], dtype=np.float32)
    out = np.asarray(load_image(encode(Image.fromarray(floats), "TIFF")))
    np.testing.assert_array_equal(out[..., 1], [[0, 0, 100, 255]])


# ---- refusals --------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\0" * 16)
    body += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    iend = b"IEND"
    body += struct.pack(">I", 0) + iend + struct.pack(">I", zlib.crc32(iend))
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize("side", [10_000, 20_000, 100_000])  # over our cap; PIL warns; PIL errors
def test_decompression_bombs_are_refused_without_warnings(side: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="decompression bomb") as info:
            load_image(png_claiming(side, side))
    assert info.value.source is not None


def test_small_max_pixels_refuses_and_none_disables() -> None:
    data = encode(Image.fromarray(RGB))
    with pytest.raises(InputError, match="max_pixels=34"):
        load_image(data, max_pixels=34)
    assert load_image(data, max_pixels=35).size == (7, 5)
    assert load_image(data, max_pixels=None).size == (7, 5)
    with pytest.raises(InputError, match="max_pixels"):
        load_image(Image.fromarray(RGB), max_pixels=10)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_refused(fmt: str, tmp_path: pathlib.Path) -> None:
    data = encode(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as info:
        load_image(path)
    assert str(path) in str(info.value) and info.value.source == str(path)


def test_empty_text_missing_and_directory_are_refused(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    for src, pattern in [
        (empty, "empty file"),
        (text, "not an image"),
        (tmp_path / "missing.png", "no such file"),
        (tmp_path, "directory"),
        (b"", "empty"),
        (io.BytesIO(b""), "not an image"),
        ("data:image/png;base64,@@@", "base64"),
        ("data:image/png,abc", "base64"),
    ]:
        with pytest.raises(InputError, match=pattern) as info:
            load_image(src)
        assert info.value.source is not None


@pytest.mark.parametrize("src", [42, None, np.zeros((4, 4, 3), np.uint8), [b"x"]])
def test_unsupported_types_are_refused(src: object) -> None:
    with pytest.raises(InputError, match="load_image decodes|cannot load an image"):
        load_image(src)  # type: ignore[arg-type]


def test_lazy_pil_image_with_closed_file_is_an_input_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encode(Image.fromarray(RGB)))
    with open(path, "rb") as fh:
        lazy = Image.open(fh)
    with pytest.raises(InputError, match="cannot decode"):
        load_image(lazy)


# ---- URLs ------------------------------------------------------------------------------------

PNG = encode(Image.fromarray(RGB))


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/img.png":
            self._send(PNG)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/img.png")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(PNG)
        elif self.path == "/big":
            self._send(PNG + b"\0" * 5000)
        elif self.path == "/drip-big":  # no Content-Length, more than the cap
            self.send_response(200)
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"\0" * 1000)
                self.wfile.flush()
        elif self.path == "/drip-slow":  # each read is quick, the whole download is not
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(30):
                    self.wfile.write(b"\0" * 10)
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        elif self.path == "/text":
            self._send(b"<html>no image here</html>")
        else:
            self.send_error(404)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_loads_and_follows_redirects(server: str) -> None:
    np.testing.assert_array_equal(np.asarray(load_image(f"{server}/img.png")), RGB)
    np.testing.assert_array_equal(np.asarray(load_image(f"{server}/redirect")), RGB)


def test_url_timeout(server: str) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match="timeout") as info:
        load_image(f"{server}/slow", timeout=0.3)
    assert time.monotonic() - start < 1.4
    assert info.value.source == f"{server}/slow"


def test_url_total_deadline_beats_a_dripping_server(server: str) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match="longer than timeout"):
        load_image(f"{server}/drip-slow", timeout=0.5)
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("path", ["/big", "/drip-big"])
def test_url_size_cap(server: str, path: str) -> None:
    with pytest.raises(InputError, match="max_bytes=2000"):
        load_image(server + path, max_bytes=2000)


@pytest.mark.parametrize("path, pattern", [("/missing", "HTTP error 404"), ("/text", "not an image")])
def test_url_errors(server: str, path: str, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        load_image(server + path)


def test_unreachable_url_is_an_input_error() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputError, match="cannot fetch"):
        load_image(f"http://127.0.0.1:{port}/x.png", timeout=2)


def test_threads_decode_concurrently(png_bytes: bytes) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(load_image, [png_bytes] * 32))
    for out in outs:
        np.testing.assert_array_equal(np.asarray(out), RGB)


def test_bundled_samples_load_and_are_small() -> None:
    from featx.data import sample_images

    paths = sample_images()
    assert [p.name for p in paths] == ["astronaut.jpg", "coffee.jpg", "rocket.png"]
    assert sum(p.stat().st_size for p in paths) < 200_000
    sizes = [load_image(p).size for p in paths]
    assert sizes == [(256, 256), (360, 240), (192, 128)]
    assert load_image(paths[2], mode=None).mode == "RGBA"
