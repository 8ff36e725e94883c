"""Splitting an image into a grid of tiles (and a whole view) for encoders of a fixed input size.

`tile(image, grid=(2, 2), overlap=0, global_view=True)` returns the tiles of an image (a PIL image or
an ``(H, W, C)`` / ``(H, W)`` array), row by row, with their boxes ``(left, top, right, bottom)`` in
pixels of the image; with ``global_view`` the whole image comes first as tile -1 (the encoder's
processor downsizes it). ``overlap`` is the fraction of a tile shared with its neighbour.
`TiledImageFamily` prepares one input as its tiles for `featx embed --tiles` (one row per tile,
see `featx.engine.parts`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError, InputError
from ..families.spec import ROW_PREFIX, ImageFamily, run_processor

__all__ = ["TILES", "TiledImageFamily", "Tiles", "parse_grid", "tile", "tile_boxes"]

MAX_GRID = 64


class Tiles(NamedTuple):
    """``images`` (same kind as the input), their ``boxes`` [(left, top, right, bottom)] and
    ``index`` (row-major tile number; -1 for the global view)."""

    images: list[Any]
    boxes: list[tuple[int, int, int, int]]
    index: list[int]


def parse_grid(value: Any) -> tuple[int, int]:
    """``"2x3"`` / ``(2, 3)`` / ``2`` -> (rows, columns)."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", value)
        if not m:
            raise ConfigError(f"a tile grid is ROWSxCOLS such as 2x2, got {value!r}")
        rows, cols = int(m.group(1)), int(m.group(2))
    elif isinstance(value, int) and not isinstance(value, bool):
        rows = cols = value
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                      for v in value):
        rows, cols = int(value[0]), int(value[1])
    else:
        raise ConfigError(f"grid must be (rows, columns), an int or 'RxC', got {value!r}")
    if not (1 <= rows <= MAX_GRID and 1 <= cols <= MAX_GRID):
        raise ConfigError(f"grid rows and columns must be from 1 to {MAX_GRID}, got {rows}x{cols}")
    return rows, cols


def _spans(length: int, parts: int, overlap: float) -> list[tuple[int, int]]:
    """``parts`` spans covering ``length``, neighbours sharing ``overlap`` of a span."""
    size = length / (parts - (parts - 1) * overlap)
    step = size * (1 - overlap)
    spans = []
    for i in range(parts):
        start = round(i * step)
        end = length if i == parts - 1 else min(length, round(i * step + size))
        spans.append((start, max(end, start + 1)))
    return spans


def tile_boxes(height: int, width: int, grid: Any = (2, 2), overlap: float = 0.0) -> list[tuple[int, int, int, int]]:
    """The (left, top, right, bottom) boxes of a ``grid`` of tiles over a ``height`` x ``width`` image."""
    rows, cols = parse_grid(grid)
    if not (isinstance(overlap, (int, float)) and 0 <= overlap < 1):
        raise ConfigError(f"overlap must be a fraction from 0 (inclusive) to 1 (exclusive), got {overlap!r}")
    if height < rows or width < cols:
        raise InputError(f"a {height}x{width} image cannot be cut into {rows}x{cols} tiles", source="image")
    ys, xs = _spans(height, rows, float(overlap)), _spans(width, cols, float(overlap))
    return [(x0, y0, x1, y1) for y0, y1 in ys for x0, x1 in xs]


def tile(image: Any, grid: Any = (2, 2), overlap: float = 0.0, global_view: bool = True) -> Tiles:
    """The tiles of ``image`` (PIL, or an ``(H, W[, C])`` array) and their boxes; see the module docstring."""
    pil = hasattr(image, "getbands")
    if pil:
        height, width = int(image.height), int(image.width)
    else:
        arr = np.asarray(image)
        if arr.ndim not in (2, 3):
            raise InputError(f"tile() takes a PIL image or an (H, W[, C]) array, got shape {arr.shape}", source="image")
        height, width = int(arr.shape[0]), int(arr.shape[1])
    boxes = tile_boxes(height, width, grid, overlap)
    crops = [image.crop(b) if pil else arr[b[1]:b[3], b[0]:b[2]] for b in boxes]
    index = list(range(len(boxes)))
    if global_view:
        crops.insert(0, image)
        boxes.insert(0, (0, 0, width, height))
        index.insert(0, -1)
    return Tiles(crops, boxes, index)


@dataclass(frozen=True)
class TiledImageFamily(ImageFamily):
    """An image family whose inputs become their tiles, each preprocessed by the model's processor;
    row metadata ``row_tile`` and ``row_box`` say which tile each row is."""

    grid: tuple[int, int] = (2, 2)
    overlap: float = 0.0
    global_view: bool = False

    def process(self, processor: Any, image: Any, src: Any) -> dict[str, np.ndarray]:
        tiles = tile(image, self.grid, self.overlap, self.global_view)
        arrays = run_processor(processor, tiles.images, src)
        arrays[f"{ROW_PREFIX}tile"] = np.asarray(tiles.index, dtype=np.int32)
        arrays[f"{ROW_PREFIX}box"] = np.asarray(tiles.boxes, dtype=np.int64)
        return arrays


def _tile_columns(arrays: Any, i: int) -> dict[str, Any]:
    box = arrays[f"{ROW_PREFIX}box"][i]
    return {"tile": int(arrays[f"{ROW_PREFIX}tile"][i]), "box": [float(v) for v in box]}


def _tiles_parts() -> Any:
    from ..engine.parts import Parts, register_parts

    return register_parts(Parts("tiles", (("tile", "int32"), ("box", "list<float64>")), _tile_columns))


#: one row per tile: ``tile`` (-1: the global view) and ``box`` [left, top, right, bottom]
TILES = _tiles_parts()
