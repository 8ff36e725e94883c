"""LLaVA-NeXT's image processor: AnyRes tiling (best grid resolution, aspect-keeping resize,
centred zero padding, tiles) plus the whole image as the base view, then CLIP's per-tile path.

Per image: pick the ``image_grid_pinpoints`` resolution that keeps most of it
(`featx.models.llava.select_best_resolution`), resize into it keeping the aspect ratio, pad it
centred with zeros, cut it into ``crop_size`` tiles; the base view is the image warped to ``size``.
The base view and the tiles then run the shared per-item path (`featx.image.plan`) and batch
assembly as any CLIP image: resize, centre crop, rescale, normalise. ``image_sizes`` holds each
image's (height, width); with ``do_pad`` the tile axis is padded with zeros to the batch's most.
"""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..batch import BatchFeature
from ..errors import ConfigError
from ..registry import register
from . import functional as F
from .batching import assemble_numpy, flatten_images
from .layout import CHANNELS_FIRST, CHANNELS_LAST, channel_format
from .options import Plan
from .plan import decode, labelled, prepare_all, working_image
from .processors import CLIPImageProcessor, field_default
from .threads import SERIAL, call_pool

__all__ = ["LlavaNextImageProcessor", "anyres_tiles", "patch_output_size"]

DEFAULT_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


def patch_output_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) an image of ``size`` is resized to inside ``target``, aspect kept."""
    height, width = size
    th, tw = target
    scale_w, scale_h = tw / width, th / height
    if scale_w < scale_h:
        return min(math.ceil(height * scale_w), th), tw
    return th, min(math.ceil(width * scale_h), tw)


def _check_pinpoints(value: Any) -> list[list[int]]:
    ok = isinstance(value, (list, tuple)) and 0 < len(value) <= 256 and all(
        isinstance(p, (list, tuple)) and len(p) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= 1 << 16 for i in p) for p in value)
    if not ok:
        raise ConfigError(f"image_grid_pinpoints must be a list of [height, width] pairs of positive integers, "
                          f"got {value!r}")
    return [[int(h), int(w)] for h, w in value]


def anyres_tiles(hwc: np.ndarray, pinpoints: list[list[int]], tile: int, base: tuple[int, int],
                 resample: int) -> list[np.ndarray]:
    """The base view (``hwc`` warped to ``base``) then the tiles of its best grid, row by row, each
    ``(H, W, C)`` (tiles at the right or bottom edge are smaller when ``tile`` does not divide the grid)."""
    from ..models.llava import select_best_resolution

    size = (int(hwc.shape[0]), int(hwc.shape[1]))
    best = select_best_resolution(size, pinpoints)
    new_h, new_w = patch_output_size(size, best)
    resized = F.resize_hwc(hwc, (new_h, new_w), resample)
    top, left = (best[0] - new_h) // 2, (best[1] - new_w) // 2
    canvas = np.zeros((best[0], best[1], hwc.shape[2]), dtype=resized.dtype)
    canvas[top:top + new_h, left:left + new_w] = resized
    tiles = [canvas[i:i + tile, j:j + tile] for i in range(0, best[0], tile) for j in range(0, best[1], tile)]
    return [F.resize_hwc(hwc, base, resample), *tiles]


@register("image_processor")
@dataclass(repr=False)
class LlavaNextImageProcessor(CLIPImageProcessor):
    """LLaVA-NeXT (LLaVA 1.6): AnyRes tiles plus a base view; outputs ``pixel_values``
    [images, tiles, C, H, W] and ``image_sizes`` [images, 2]."""

    do_pad: bool | None = True
    image_grid_pinpoints: list[list[int]] | None = field_default(DEFAULT_PINPOINTS)

    model_input_names: ClassVar[list[str]] = ["pixel_values", "image_sizes"]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_grid_pinpoints is not None:
            self.image_grid_pinpoints = _check_pinpoints(self.image_grid_pinpoints)

    def _geometry(self, plan: Plan) -> tuple[int, tuple[int, int]]:
        """(tile side, base view's (height, width)) as the reference derives them from the options."""
        size = plan.size or {}
        base = (int(size["height"]), int(size["width"])) if size.get("height") and size.get("width") else (
            int(size.get("shortest_edge", 0)),) * 2
        tile = plan.crop_size[0] if plan.crop_size else (size.get("height") or size.get("shortest_edge"))
        if not tile or not base[0]:
            raise ConfigError("LlavaNextImageProcessor needs size ({'shortest_edge'} or {'height', 'width'}) "
                              "or crop_size to tell the tile size")
        return int(tile), base

    def max_tiles(self, image_grid_pinpoints: Any = None) -> int:
        """The most tiles (base view included) any image can give with these options."""
        pinpoints = _check_pinpoints(image_grid_pinpoints or self.image_grid_pinpoints)
        tile, _ = self._geometry(self.call_plan({}))
        return max(-(-h // tile) * -(-w // tile) for h, w in pinpoints) + 1

    def preprocess(  # type: ignore[override]
        self,
        images: Any,
        return_tensors: str | None = None,
        image_grid_pinpoints: Any = None,
        data_format: Any = CHANNELS_FIRST,
        input_data_format: Any = None,
        executor: Executor | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Preprocess one image or a batch; any option can be overridden for this call, as in the
        base class (``device`` is not supported: tiling runs on the CPU)."""
        if kwargs.pop("device", None) is not None:
            raise ConfigError("LlavaNextImageProcessor runs on the CPU; device= is not supported")
        kwargs.pop("default_to_square", None)
        self.check_call_kwargs(kwargs)
        pinpoints = _check_pinpoints(image_grid_pinpoints if image_grid_pinpoints is not None
                                     else self.image_grid_pinpoints)
        plan = self.call_plan(kwargs)
        tile, base = self._geometry(plan)
        out_format = channel_format(data_format, "data_format") or CHANNELS_FIRST
        items, layouts = flatten_images(images, channel_format(input_data_format, "input_data_format"))
        tile_plan = dataclasses.replace(plan, do_pad=False)  # do_pad here pads the tile axis

        def tiles_of(i: int) -> tuple[list[np.ndarray], tuple[int, int]]:
            def work() -> tuple[list[np.ndarray], tuple[int, int]]:
                image, _ = working_image(decode(items[i]), layouts[i], plan.do_convert_rgb)
                hwc = np.asarray(image)
                hwc = hwc[..., None] if hwc.ndim == 2 else hwc
                return anyres_tiles(hwc, pinpoints, tile, base, plan.resample), (int(hwc.shape[0]), int(hwc.shape[1]))

            return labelled(i, items[i], work)

        pixel_values, sizes = [], []
        with call_pool(executor, len(items)) as workers:
            for i in range(len(items)):
                tiles, hw = tiles_of(i)
                prepared = prepare_all(tiles, [CHANNELS_LAST] * len(tiles), tile_plan, self, workers)
                batch = assemble_numpy(prepared, tiles, tile_plan, out_format, SERIAL)
                pixel_values.append(np.stack(batch) if isinstance(batch, list) else batch)
                sizes.append(hw)
        if plan.do_pad:
            most = max(len(p) for p in pixel_values)
            pixel_values = [np.concatenate([p, np.zeros((most - len(p), *p.shape[1:]), p.dtype)]) if len(p) < most
                            else p for p in pixel_values]
        data = {"pixel_values": pixel_values, "image_sizes": sizes}  # (height, width) tuples, as the reference
        return BatchFeature(data, tensor_type=return_tensors)
