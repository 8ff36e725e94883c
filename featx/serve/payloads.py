"""What a request's inputs are: media bytes, a URL, or a text; and how vectors are encoded back.

A string input is read as: a ``data:`` URI (base64 media); an ``http(s)://`` URL (fetched only
with ``--allow-urls``); strict base64 of at least `MIN_BASE64` characters (media bytes); anything
else is a text. An object input says what it is: ``{"type": "text", "text": ...}``,
``{"type": "image"|"audio"|"media", "data": <base64 or data URI>}`` or ``{"type": "url", "url": ...}``.
User strings never become file paths: media reach the decoders as bytes, URLs as URLs.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["Payload", "parse_input", "decode_media", "encode_vector", "MIN_BASE64"]

MIN_BASE64 = 64  # shorter base64-looking strings ("dogs") are texts


@dataclass(frozen=True)
class Payload:
    """One parsed input: ``kind`` is "media" (``value``: bytes, or a URL string) or "text"."""

    kind: str
    value: Any


def decode_media(data: str, what: str = "input") -> bytes:
    """The bytes of a ``data:...;base64,`` URI or of plain base64 (`InputError` if neither)."""
    text = data.strip()
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise InputError(f"{what}: only base64 data URIs ('data:image/...;base64,...') are supported")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what}: not valid base64 ({exc})") from None
    if not raw:
        raise InputError(f"{what}: no bytes (empty base64)")
    return raw


def _looks_base64(text: str) -> bool:
    if len(text) < MIN_BASE64 or len(text) % 4:
        return False
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def parse_input(item: Any, *, allow_urls: bool) -> Payload:
    """One input of ``/v1/embeddings`` (see the module docstring); `InputError` when it is not one."""
    if isinstance(item, dict):
        kind = item.get("type")
        if kind == "text" and isinstance(item.get("text"), str):
            return Payload("text", item["text"])
        if kind in ("image", "audio", "media") and isinstance(item.get("data"), str):
            return Payload("media", decode_media(item["data"], f"{kind} data"))
        if kind == "url" and isinstance(item.get("url"), str):
            return parse_input(item["url"], allow_urls=allow_urls) if item["url"].startswith(
                ("http://", "https://")) else _bad_url(item["url"])
        raise InputError("an input object needs {'type': 'text', 'text': ...}, {'type': 'image'|'audio', "
                         "'data': <base64 or data URI>} or {'type': 'url', 'url': ...}")
    if not isinstance(item, str):
        raise InputError(f"an input must be a string or an object, not {type(item).__name__}")
    if item.startswith("data:"):
        return Payload("media", decode_media(item, "data URI"))
    if item.startswith(("http://", "https://")):
        if not allow_urls:
            raise InputError("URL inputs are refused: the service was started without --allow-urls "
                             "(send the file's bytes as base64 or a data URI instead)")
        return Payload("media", item)
    if _looks_base64(item):
        return Payload("media", decode_media(item))
    if not item.strip():
        raise InputError("empty text")
    return Payload("text", item)


def _bad_url(url: str) -> Payload:
    raise InputError(f"only http(s) URLs are fetched, not {url[:40]!r}")


def encode_vector(vector: np.ndarray, encoding_format: str) -> Any:
    """A vector as a JSON list of floats, or as base64 of its little-endian float32 bytes (the
    OpenAI API's ``encoding_format="base64"``)."""
    array = np.asarray(vector, dtype="<f4").reshape(-1)
    if encoding_format == "base64":
        return base64.b64encode(array.tobytes()).decode("ascii")
    return array.tolist()
