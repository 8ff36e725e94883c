"""Input parsing (never a file path) and vector encoding of the embeddings API."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from featx.errors import InputError
from featx.serve.payloads import MIN_BASE64, encode_vector, parse_input


def test_inputs_are_classified_without_ever_becoming_paths():
    png = base64.b64encode(b"\x89PNG" + bytes(100)).decode()
    assert parse_input(png, allow_urls=False).value == b"\x89PNG" + bytes(100)
    assert parse_input("data:image/png;base64," + png, allow_urls=False).kind == "media"
    assert parse_input("dogs", allow_urls=False).kind == "text"  # valid base64, but short: a word
    assert parse_input("a" * MIN_BASE64, allow_urls=False).kind == "media"
    assert parse_input("/etc/passwd", allow_urls=False) == parse_input("/etc/passwd", allow_urls=True)
    assert parse_input("/etc/passwd", allow_urls=False).kind == "text"
    assert parse_input({"type": "text", "text": "x"}, allow_urls=False).value == "x"
    assert parse_input("https://a/b.png", allow_urls=True).value == "https://a/b.png"
    for bad, urls in (("http://a/b.png", False), ("", False), ("   ", False), ({"type": "image"}, False),
                      ({"type": "url", "url": "file:///etc/passwd"}, True), (3, False),
                      ("data:image/png,rawbytes", False), ("data:image/png;base64,", False)):
        with pytest.raises(InputError):
            parse_input(bad, allow_urls=urls)


def test_vectors_encode_as_floats_or_base64():
    v = np.array([0.1, -2.5, 3e-8], np.float32)
    assert encode_vector(v, "float") == [float(x) for x in v]
    assert np.array_equal(np.frombuffer(base64.b64decode(encode_vector(v, "base64")), "<f4"), v)
