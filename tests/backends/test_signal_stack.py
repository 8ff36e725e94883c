"""OpenVINO must not leave a thread's alternate signal stack pointing at memory it frees: Python's
signal handlers run on that stack, so a later Ctrl-C or SIGTERM crashed the process (SIGSEGV)."""

from __future__ import annotations

import gc
import sys

import pytest

from featx.backends.signal_stack import current_signal_stack, kept_signal_stack

pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def graph_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEATX_CACHE_DIR", str(tmp_path / "featx-cache"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is read through Linux's libc")
def test_kept_signal_stack_restores_what_the_block_changed():
    import ctypes

    from featx.backends.signal_stack import _Stack, _sigaltstack

    before = current_signal_stack()
    memory = ctypes.create_string_buffer(65536)
    with kept_signal_stack():
        _sigaltstack()(ctypes.byref(_Stack(ctypes.addressof(memory), 0, 65536)), None)
        assert current_signal_stack()[0] == ctypes.addressof(memory)
    assert current_signal_stack() == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is read through Linux's libc")
def test_openvino_leaves_the_signal_stack_as_it_was(tiny_checkpoint):
    pytest.importorskip("openvino")
    import numpy as np

    from featx.embedding import Embedder

    before = current_signal_stack()
    for kind in ("vit", "siglip_vision_model"):
        embedder = Embedder(tiny_checkpoint(kind), dtype="float32", pool="mean", backend="openvino")
        from PIL import Image

        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 30, 3), dtype=np.uint8))
        embedder.embed([embedder.prepare(image)], batch_size=1)
        assert current_signal_stack() == before
        del embedder
        gc.collect()
        assert current_signal_stack() == before
