"""One input into several rows (`featx.engine.parts`): metadata keys never reach the model, each
part's row carries its columns, and parts without offsets average with equal weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from featx.embedding import Embedder
from featx.engine import local
from featx.engine.jobs import EmbedJob
from featx.engine.local import RunOptions
from featx.engine.parts import AUDIO_WINDOWS, Parts, is_model_key, model_keys, parts_named, register_parts
from featx.engine.state import shard_paths


def _tile_columns(arrays, i):
    return {"tile": int(arrays["row_tile"][i]), "box": [float(v) for v in arrays["row_box"][i]]}


TEST_TILES = register_parts(Parts("test-tiles", (("tile", "int32"), ("box", "list<float64>")), _tile_columns))


class _TiledEmbedder(Embedder):
    """Each image becomes 3 parts: the image, its left-right mirror and its upside-down copy."""

    def prepare(self, src, *, budget=None):
        one = super().prepare(src, budget=budget)["pixel_values"]
        parts = np.concatenate([one, one[..., ::-1], one[..., ::-1, :]])
        return {"pixel_values": np.ascontiguousarray(parts), "row_tile": np.array([-1, 0, 1]),
                "row_box": np.array([[0, 0, 1, 1], [0, 0, .5, 1], [.5, 0, 1, 1]], np.float64)}


def test_model_keys() -> None:
    assert is_model_key("pixel_values") and is_model_key("attention_mask")
    assert not is_model_key("row_time_s") and not is_model_key("offsets")
    assert model_keys({"input_values": 0, "offsets": 1, "row_frame": 2, "attention_mask": 3}) == \
        ["input_values", "attention_mask"]
    assert parts_named("windows") is AUDIO_WINDOWS and parts_named("test-tiles") is TEST_TILES
    with pytest.raises(KeyError, match="no row parts named"):
        parts_named("nope")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (20 + 7 * i, 30, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "bad.png").write_bytes(b"not a png")
    return folder


def test_one_row_per_part(tiny_checkpoint, images: Path, tmp_path: Path) -> None:
    model = tiny_checkpoint("vit")
    embedder = _TiledEmbedder(model, dtype="float32", pool="mean")
    job = EmbedJob(embedder, dtype="float32", batch_size=2, parts=TEST_TILES)
    assert job.manifest()["parts"] == "test-tiles" and job.manifest()["windows"] is False
    summary = local.run(job, [str(images)], str(tmp_path / "out"), RunOptions(batch_size=2, workers=1))
    assert summary.failed == 1
    table = pq.read_table(shard_paths(str(tmp_path / "out"))).to_pylist()
    good = [r for r in table if r["error"] is None]
    assert len(good) == 4 * 3 and sum(r["error"] is not None for r in table) == 1
    plain = Embedder(model, dtype="float32", pool="mean")
    for row in good:
        if row["tile"] == -1:  # the unflipped part equals the image embedded alone
            alone = plain.embed([plain.prepare(row["path"])])[0]
            np.testing.assert_allclose(row["embedding"], alone, atol=1e-5)
            assert row["box"] == [0, 0, 1, 1]
    assert {r["tile"] for r in good} == {-1, 0, 1}


def test_parts_without_offsets_average_equally(tiny_checkpoint, images: Path) -> None:
    embedder = _TiledEmbedder(tiny_checkpoint("vit"), dtype="float32", pool="mean")
    prepared = embedder.prepare(str(images / "1.png"))
    per_part = embedder.embed_windows([prepared])[0]
    np.testing.assert_allclose(embedder.embed([prepared])[0], per_part.mean(axis=0), atol=1e-6)


def test_parts_need_pooled_rows(tiny_checkpoint) -> None:
    from featx.errors import ConfigError

    with pytest.raises(ConfigError, match="one row per test-tile needs a pooled embedding"):
        EmbedJob(Embedder(tiny_checkpoint("vit"), dtype="float32", pool="none"), parts=TEST_TILES)
