"""featx.patches.tile: grids, overlap, the global view, boxes; `featx embed --tiles` rows."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as ds
import pytest
from PIL import Image

from featx.errors import ConfigError, InputError
from featx.patches import tile, tile_boxes


@pytest.mark.parametrize("height, width", [(48, 40), (7, 9), (100, 3), (64, 64)])
@pytest.mark.parametrize("grid", [(1, 1), (2, 2), (3, 3), (2, 3), (1, 3)])
def test_tiles_cover_the_image_exactly_without_overlap(height, width, grid):
    if height < grid[0] or width < grid[1]:
        pytest.skip("too small")
    arr = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    tiles = tile(arr, grid, global_view=False)
    assert len(tiles.images) == grid[0] * grid[1] and tiles.index == list(range(grid[0] * grid[1]))
    seen = np.zeros((height, width), dtype=int)
    for img, (x0, y0, x1, y1) in zip(tiles.images, tiles.boxes):
        assert np.array_equal(img, arr[y0:y1, x0:x1])
        seen[y0:y1, x0:x1] += 1
    assert (seen == 1).all()
    rows = [b[1] for b in tiles.boxes[:: grid[1]]]
    assert rows == sorted(rows)  # row by row


def test_pil_tiles_and_the_global_view_first():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    tiles = tile(img, "2x2")
    assert tiles.index == [-1, 0, 1, 2, 3]
    assert tiles.images[0] is img and tiles.boxes[0] == (0, 0, 50, 30)
    assert tiles.boxes[1:] == [(0, 0, 25, 15), (25, 0, 50, 15), (0, 15, 25, 30), (25, 15, 50, 30)]
    for crop, box in zip(tiles.images[1:], tiles.boxes[1:]):
        assert np.array_equal(np.asarray(crop), np.asarray(img)[box[1]:box[3], box[0]:box[2]])


def test_overlap_makes_neighbours_share_pixels():
    boxes = tile_boxes(100, 100, (1, 3), overlap=0.25)
    widths = [b[2] - b[0] for b in boxes]
    assert boxes[0][0] == 0 and boxes[-1][2] == 100
    assert max(widths) - min(widths) <= 1
    for a, b in zip(boxes, boxes[1:]):
        shared = a[2] - b[0]
        assert abs(shared - 0.25 * widths[0]) <= 1


@pytest.mark.parametrize("grid, overlap, error", [
    ("2by2", 0, ConfigError), ((0, 2), 0, ConfigError), ((2, 2), 1.0, ConfigError), ((2, 2), -0.1, ConfigError),
    ((65, 1), 0, ConfigError), ((5, 5), 0, InputError),
])
def test_bad_arguments(grid, overlap, error):
    with pytest.raises(error):
        tile(np.zeros((4, 4, 3), np.uint8), grid, overlap)


def test_cli_embed_tiles_one_row_per_tile(tiny_checkpoint, tmp_path):
    from featx.cli import EXIT_OK, main
    from featx.embedding import Embedder

    vit = str(tiny_checkpoint("vit"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(48, 40), (33, 70)]):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    out = tmp_path / "out"
    rc = main(["embed", str(folder), "--model", vit, "--output", str(out), "--tiles", "2x2", "--global-view",
               "--dtype", "float32", "--progress", "none", "--pool", "mean"])
    assert rc == EXIT_OK
    table = ds.dataset(str(out)).to_table().to_pylist()
    assert len(table) == 10
    emb = Embedder(vit, dtype="float32", pool="mean")
    for path in paths:
        rows = sorted((r for r in table if r["path"] == path), key=lambda r: r["tile"])
        assert [r["tile"] for r in rows] == [-1, 0, 1, 2, 3]
        image = Image.open(path).convert("RGB")
        tiles = tile(image, (2, 2))
        for row, crop, box in zip(rows, tiles.images, tiles.boxes):
            assert row["error"] is None and row["box"] == [float(v) for v in box]
            (expected,) = emb.embed([emb.prepare(crop)])
            np.testing.assert_allclose(np.asarray(row["embedding"]), expected, rtol=1e-5, atol=1e-5)
    # resuming the finished job writes nothing new
    assert main(["embed", str(folder), "--model", vit, "--output", str(out), "--tiles", "2x2", "--global-view",
                 "--dtype", "float32", "--progress", "none", "--pool", "mean"]) == EXIT_OK
    assert len(ds.dataset(str(out)).to_table()) == 10


@pytest.mark.parametrize("args, match", [
    (["--global-view"], "go with --tiles"),
    (["--tiles", "2x2", "--pool", "none"], "one vector per tile"),
    (["--tiles", "3"], "ROWSxCOLS"),
    (["--tiles", "2x2", "--tile-overlap", "1.5"], "tile-overlap"),
])
def test_cli_tile_option_errors(tmp_path, args, match, capsys):
    from featx.cli import main

    (tmp_path / "a.png").write_bytes(b"")
    rc = main(["embed", str(tmp_path), "--model", str(tmp_path), "--output", str(tmp_path / "o"), *args])
    assert rc != 0
    assert match in capsys.readouterr().err
