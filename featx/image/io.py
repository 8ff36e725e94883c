"""Decoding images from paths, bytes, file objects, URLs and PIL images into upright PIL images.

`load_image` matches ``transformers.image_utils.load_image`` (EXIF transpose, then
``Image.convert("RGB")``) for every input the reference accepts, and adds what a batch job needs:
a pixel cap against decompression bombs, a timeout and a size cap on URL reads, and a
`featx.errors.InputError` naming the source for anything that cannot be decoded.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Union

from ..errors import InputError
from ..streams import open_or_refuse

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

    from ..engine.budget import PixelHold

__all__ = ["load_image", "ImageSource", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS"]

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], "PILImage.Image"]

# Same threshold at which PIL starts warning (about 89.5 MP, a 12k x 7.5k image).
DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

# Premultiplied-alpha modes PIL cannot convert to RGB/L directly.
_UNPREMULTIPLY = {"La": "LA", "RGBa": "RGBA"}
# Guards the short window in which PIL's bomb warning is silenced; header parsing only, no decoding.
_OPEN_LOCK = threading.Lock()


def load_image(
    src: ImageSource,
    *,
    mode: str | None = "RGB",
    background: tuple[int, int, int] | int | str | None = None,
    timeout: float | None = 10.0,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    draft: tuple[int, int] | Callable[[int, int], tuple[int, int] | None] | None = None,
    allow_private_urls: bool = True,
    pixel_budget: PixelHold | None = None,
) -> PILImage.Image:
    """Decode ``src`` into an upright, fully loaded PIL image (a new object, never ``src`` itself).

    ``src``: a path (``str``/``PathLike``), ``bytes``/``bytearray``/``memoryview``, a binary file
    object, an ``http(s)://`` URL, a ``data:image/...;base64,`` URI, or a PIL image (its current
    frame is used; files and URLs give their first frame).

    ``mode``: the PIL mode returned, ``"RGB"`` by default; ``None`` keeps the decoded mode. The
    conversion is PIL's ``convert`` as in the reference: alpha is dropped, 16-bit and float
    values are clipped to 0..255 (not rescaled), CMYK uses PIL's formula.
    ``background``: composite transparent pixels onto this colour instead of dropping alpha
    (``(255, 255, 255)`` reproduces the reference processors' ``convert_to_rgb``); needs a
    ``mode`` without alpha.
    ``timeout``: seconds for a whole URL download. ``max_bytes``: cap on URL downloads and on
    non-seekable streams. ``max_pixels``: images with more pixels are refused before decoding
    (``None`` disables the cap; PIL's own limit ``PIL.Image.MAX_IMAGE_PIXELS`` * 2 still applies).
    ``draft``: opt-in reduced-size JPEG decode (files, bytes and URLs; not PIL inputs) to at
    least ``(height, width)`` of the upright image, by a power-of-two scale; faster for big photos
    but no longer pixel-identical to the reference. A function of the upright ``(width, height)``
    (read from the header) returning ``(height, width)`` or None may be given instead (see
    `featx.image.draft`, which the embed path uses when a processor opts in).
    ``allow_private_urls=False`` refuses URLs (and redirects) to loopback, private, link-local,
    multicast and reserved addresses (see `featx.streams`); by default any URL is fetched.
    ``pixel_budget``: a hold from a shared `featx.engine.budget.PixelBudget` (``with
    budget.hold() as h: load_image(src, pixel_budget=h)``): the image's pixels are taken from it
    once the header gives the size, before decoding, and stay held until the hold ends, so that
    workers decoding in parallel stay under one memory budget.
    """
    from PIL import Image

    target_mode = _check_options(mode, background)
    if isinstance(src, Image.Image):
        label = f"<PIL.Image mode={src.mode} size={src.size[0]}x{src.size[1]}>"
        return _finish(src, label, target_mode, background, max_pixels, draft, owned=False)
    fp, label, ours = _open_source(src, timeout, max_bytes, allow_private_urls)
    try:
        image = _open_image(fp, label)
        return _finish(image, label, target_mode, background, max_pixels, draft, owned=True, pixel_budget=pixel_budget)
    finally:
        if ours:  # caller-provided file objects stay open
            fp.close()


# ---- sources ---------------------------------------------------------------------------------


def _open_source(
    src: Any, timeout: float | None, max_bytes: int | None, allow_private: bool = True
) -> tuple[IO[bytes], str, bool]:
    """A binary stream for ``src``, a label naming it, and whether we opened it (and must close it)."""
    return open_or_refuse(
        src, "image file", timeout, max_bytes, allow_private,
        arrays="load_image decodes files, bytes, URLs and PIL images; pass arrays and tensors straight "
        "to the processor (with input_data_format if their layout is ambiguous)",
        cannot="cannot load an image from a {kind}; expected a path, bytes, a file object, an http(s) URL "
        "or a PIL image",
    )


# ---- decoding --------------------------------------------------------------------------------


def _open_image(fp: IO[bytes], label: str) -> PILImage.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        # Our own max_pixels check replaces PIL's warning; its hard error (2x its limit) still fires.
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise InputError(
            f"refused as a decompression bomb: {exc} (PIL.Image.MAX_IMAGE_PIXELS)", source=label
        ) from exc
    except UnidentifiedImageError:
        raise InputError("not an image file PIL can read (unknown format or corrupt header)", source=label) from None
    except Exception as exc:  # PIL raises many types on corrupt headers
        raise InputError(f"cannot read image header: {type(exc).__name__}: {exc}", source=label) from exc


def _finish(
    image: PILImage.Image,
    label: str,
    mode: str | None,
    background: Any,
    max_pixels: int | None,
    draft: tuple[int, int] | Callable[[int, int], tuple[int, int] | None] | None,
    owned: bool,
    pixel_budget: PixelHold | None = None,
) -> PILImage.Image:
    from PIL import Image, ImageOps

    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(
            f"refused as a possible decompression bomb: {width}x{height} = {width * height} pixels "
            f"is more than max_pixels={max_pixels}; raise max_pixels to accept it",
            source=label,
        )
    if draft is not None and owned and image.format == "JPEG":
        _apply_draft(image, draft)
    if pixel_budget is not None and owned:  # before decoding: the header gave the (drafted) size
        pixel_budget.take(image.size[0] * image.size[1])
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise InputError(f"refused as a decompression bomb: {exc}", source=label) from exc
    except Exception as exc:
        raise InputError(
            f"cannot decode image data (truncated or corrupt file?): {type(exc).__name__}: {exc}", source=label
        ) from exc
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:  # malformed EXIF should not lose an otherwise readable photo
        warnings.warn(f"{label}: ignoring unreadable EXIF orientation ({exc})", stacklevel=3)
        upright = image.copy()
    assert upright is not None
    if mode is None:
        return upright if upright is not image else image.copy()
    try:
        return _convert(upright, mode, background)
    except ValueError as exc:
        raise InputError(f"cannot convert mode {upright.mode} to {mode}: {exc}", source=label) from exc


def _apply_draft(
    image: PILImage.Image, draft: tuple[int, int] | Callable[[int, int], tuple[int, int] | None]
) -> None:
    transposed = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # stored transposed: swap sizes
    if callable(draft):
        width, height = image.size
        wanted = draft(height, width) if transposed else draft(width, height)
        if wanted is None:
            return
        draft = wanted
    height, width = int(draft[0]), int(draft[1])
    if transposed:
        height, width = width, height
    image.draft(None, (width, height))


def _has_alpha(image: PILImage.Image) -> bool:
    # Same test as the reference's convert_to_rgb.
    return "A" in image.getbands() or image.info.get("transparency") is not None


def _convert(image: PILImage.Image, mode: str, background: Any) -> PILImage.Image:
    from PIL import Image

    if image.mode in _UNPREMULTIPLY:
        image = image.convert(_UNPREMULTIPLY[image.mode])
    if background is not None and _has_alpha(image):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*_rgb(background), 255))
        return Image.alpha_composite(canvas, rgba).convert(mode)
    return image.convert(mode)


def _rgb(color: Any) -> tuple[int, int, int]:
    from PIL import ImageColor

    if isinstance(color, str):
        rgb = ImageColor.getrgb(color)
        return (rgb[0], rgb[1], rgb[2])
    if isinstance(color, int):
        return (color, color, color)
    return (int(color[0]), int(color[1]), int(color[2]))


def _check_options(mode: str | None, background: Any) -> str | None:
    from PIL import Image

    if mode is not None and mode not in Image.MODES:
        raise InputError(f"unknown PIL mode {mode!r}; expected one of {Image.MODES} or None", source="mode")
    if background is None:
        return mode
    if mode is None or "A" in mode or mode in ("PA", "La", "RGBa"):
        raise InputError(
            f"background={background!r} needs a mode without alpha (such as 'RGB' or 'L'), not {mode!r}",
            source="background",
        )
    try:
        rgb = _rgb(background)
    except (ValueError, TypeError, IndexError) as exc:
        raise InputError(
            f"background must be an (r, g, b) tuple, a grey level or a colour name, not {background!r}",
            source="background",
        ) from exc
    if not all(0 <= v <= 255 for v in rgb):
        raise InputError(f"background values must be within 0..255, got {background!r}", source="background")
    return mode
