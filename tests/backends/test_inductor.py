"""The inductor backend: featx's module compiled by torch.compile gives the eager module's numbers
(float32, within float rounding), over batch sizes that need a recompile, and says what runs it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featx.embedding import Embedder
from featx.errors import ConfigError
from featx.models import load_model


@pytest.fixture(autouse=True)
def inductor_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))


def test_compiled_equals_eager(tiny_checkpoint):
    model = str(tiny_checkpoint("vit"))
    eager = Embedder(model, dtype="float32", pool="mean")
    compiled = Embedder(model, dtype="float32", pool="mean", backend="inductor")
    assert compiled.model.featx_backend == "inductor:float32" and compiled.torch_dtype == torch.float32
    from PIL import Image

    rng = np.random.default_rng(0)
    prepared = [compiled.prepare(Image.fromarray(rng.integers(0, 256, (20 + 7 * i, 33, 3), dtype=np.uint8)))
                for i in range(5)]
    for batch in (prepared[:2], prepared, prepared[:3]):  # a second batch size recompiles, dynamic
        want = eager.embed(batch, batch_size=len(batch))
        got = compiled.embed(batch, batch_size=len(batch))
        np.testing.assert_allclose(np.stack(got), np.stack(want), rtol=0, atol=2e-5)


def test_hidden_states_run_eagerly_and_int8_is_refused(tiny_checkpoint):
    model = load_model(tiny_checkpoint("vit"), dtype="float32", backend="inductor")
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        out = model(pixel_values=x, output_hidden_states=True)
    assert out.hidden_states is not None and len(out.hidden_states) > 1
    with pytest.raises(ConfigError, match="int8"):
        load_model(tiny_checkpoint("vit"), dtype="int8", backend="inductor")
