"""Fuyu's image processor: arbitrary-size images, downscaled to fit and padded to 1080x1920, then
cut into 30x30 patches with the token bookkeeping ``transformers`` returns.

Same names, options, defaults, call arguments and outputs as ``transformers.FuyuImageProcessor``
(its PIL backend ``FuyuImageProcessorPil`` in 5.x), element for element. Differences, all on
inputs the reference mishandles: an ambiguous channel layout is an error (the reference guesses),
a 4-D batch array is read as a list of images (the reference fails), ``data_format`` is honoured
(the reference ignores it), and `patchify_image` always returns ``(batch, patches, dim)`` for 4-D
input (the PIL reference drops the batch axis when it is 1; the torch reference keeps it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..batch import BatchFeature
from ..config import ConfigMixin
from ..errors import InputError
from ..registry import register
from . import functional as F
from .layout import CHANNELS_FIRST, CHANNELS_LAST, channel_format, is_torch
from .patches import patchify

__all__ = ["FuyuImageProcessor"]


def _size_dict(value: Any, name: str) -> dict[str, int]:
    """``{"height", "width"}`` from a dict, an int (square) or a ``(height, width)`` pair."""
    if isinstance(value, Mapping):
        if value.get("height") is None or value.get("width") is None:
            raise InputError(f"{name} must have 'height' and 'width', got {dict(value)}", source=name)
        return {"height": int(value["height"]), "width": int(value["width"])}
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return {"height": int(value), "width": int(value)}
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return {"height": int(value[0]), "width": int(value[1])}
    raise InputError(f"{name} must be {{'height': h, 'width': w}}, an int or (h, w), got {value!r}", source=name)


def _is_image(x: Any) -> bool:
    return hasattr(x, "getbands") or isinstance(x, np.ndarray) or is_torch(x)


@register("image_processor")
@dataclass(repr=False)
class FuyuImageProcessor(ConfigMixin):
    """Downscale to fit ``size`` (only when larger), pad bottom/right, rescale and normalise.

    Call with one image, a list (one image per sample) or a list of lists (images per sample).
    Returns ``images`` (per sample, a list of ``(C, H, W)`` arrays), ``image_unpadded_heights``,
    ``image_unpadded_widths``, ``image_scale_factors`` (each ``[[v]]`` per sample, from its first
    image) and ``image_sizes`` (original ``(h, w)``).
    """

    do_resize: bool = True
    size: dict[str, int] = field(default_factory=lambda: {"height": 1080, "width": 1920})
    resample: int = 2  # bilinear
    do_pad: bool = True
    padding_value: float = 1.0  # on the input's scale (0..255 for uint8), before rescaling
    padding_mode: str = "constant"
    do_normalize: bool = True
    image_mean: float | list[float] = 0.5
    image_std: float | list[float] = 0.5
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    patch_size: dict[str, int] = field(default_factory=lambda: {"height": 30, "width": 30})
    do_convert_rgb: bool | None = None

    model_input_names: ClassVar[list[str]] = [
        "images",
        "image_input_ids",
        "image_patches",
        "image_patch_indices_per_batch",
        "image_patch_indices_per_subsequence",
    ]

    def __post_init__(self) -> None:
        options = self.normalize_options(dict(self.__dict__))
        for key in ("size", "patch_size", "resample", "image_mean", "image_std"):
            setattr(self, key, options[key])

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Int/pair sizes become dicts, resample names/enums become PIL codes, tuples become lists."""
        out = dict(options)
        for key in ("size", "patch_size"):
            if out.get(key) is not None:
                out[key] = _size_dict(out[key], key)
        if out.get("resample") is not None:
            out["resample"] = F.parse_resample(out["resample"])
        for key in ("image_mean", "image_std"):
            if isinstance(out.get(key), (tuple, list)):
                out[key] = [float(v) for v in out[key]]
        return out

    # ---- preprocessing -----------------------------------------------------------------------
    def __call__(self, images: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, **kwargs)

    def preprocess(
        self,
        images: Any,
        *,
        do_resize: bool | None = None,
        size: Any = None,
        resample: Any = None,
        do_pad: bool | None = None,
        padding_value: float | None = None,
        padding_mode: str | None = None,
        do_normalize: bool | None = None,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_convert_rgb: bool | None = None,
        patch_size: Any = None,  # accepted like the reference; used by the patch helpers only
        return_tensors: str | None = None,
        data_format: Any = CHANNELS_FIRST,
        input_data_format: Any = None,
    ) -> BatchFeature:
        """Process ``images``; every option defaults to the processor's own setting."""
        opts = self.normalize_options(
            {
                "do_resize": self.do_resize if do_resize is None else do_resize,
                "size": self.size if size is None else size,
                "resample": self.resample if resample is None else resample,
                "do_pad": self.do_pad if do_pad is None else do_pad,
                "padding_value": self.padding_value if padding_value is None else padding_value,
                "padding_mode": self.padding_mode if padding_mode is None else padding_mode,
                "do_normalize": self.do_normalize if do_normalize is None else do_normalize,
                "image_mean": self.image_mean if image_mean is None else image_mean,
                "image_std": self.image_std if image_std is None else image_std,
                "do_rescale": self.do_rescale if do_rescale is None else do_rescale,
                "rescale_factor": self.rescale_factor if rescale_factor is None else rescale_factor,
                "do_convert_rgb": self.do_convert_rgb if do_convert_rgb is None else do_convert_rgb,
            }
        )
        out_format = channel_format(data_format, "data_format") or CHANNELS_FIRST
        in_format = channel_format(input_data_format, "input_data_format")
        if opts["do_rescale"] and opts["rescale_factor"] is None:
            raise InputError("do_rescale needs rescale_factor", source="rescale_factor")
        if opts["do_normalize"] and (opts["image_mean"] is None or opts["image_std"] is None):
            raise InputError("do_normalize needs image_mean and image_std", source="image_mean")

        nested = self._nest(images)
        flat = [(b, i, img) for b, batch in enumerate(nested) for i, img in enumerate(batch)]
        results = F.map_threads(lambda item: self._process_one(item[2], item[:2], opts, in_format), flat)
        processed: list[list[np.ndarray]] = [[] for _ in nested]
        original: dict[int, tuple[int, int]] = {}
        resized: dict[int, tuple[int, int]] = {}
        for (b, i, _), (array, orig_hw, new_hw) in zip(flat, results):
            processed[b].append(F.to_channels_last(array) if out_format == CHANNELS_LAST else array)
            if i == 0:  # like the reference, a sample's sizes come from its first image
                original[b], resized[b] = orig_hw, new_hw
        samples = sorted(original)
        data = {
            "images": processed,
            "image_unpadded_heights": [[resized[b][0]] for b in samples],
            "image_unpadded_widths": [[resized[b][1]] for b in samples],
            "image_scale_factors": [[resized[b][0] / original[b][0]] for b in samples],
            "image_sizes": [original[b] for b in samples],
        }
        result = BatchFeature(data, tensor_type=return_tensors)
        if getattr(return_tensors, "value", return_tensors) == "pt":
            import torch

            # The reference builds this tensor from Python floats: float32, not float64.
            result["image_scale_factors"] = result["image_scale_factors"].to(torch.float32)
        return result

    @staticmethod
    def _nest(images: Any) -> list[list[Any]]:
        """One image, a list, or a list of lists -> a list (samples) of lists (images)."""
        if _is_image(images) or isinstance(images, (str, bytes)) or hasattr(images, "__fspath__"):
            if getattr(images, "ndim", 0) == 4:  # a batch array: one sample per image
                return [[img] for img in images]
            return [[images]]
        if isinstance(images, (list, tuple)):
            if images and all(isinstance(x, (list, tuple)) for x in images):
                return [list(x) for x in images]
            nested: list[list[Any]] = []
            for x in images:
                if getattr(x, "ndim", 0) == 4:
                    nested.append(list(x))
                else:
                    nested.append([x])
            if not nested:
                raise InputError("no images given", source="images")
            return nested
        raise InputError(
            "images must be a PIL image, an array, a tensor, a path/URL, or a list of them, "
            f"not {type(images).__name__}",
            source="images",
        )

    def _process_one(
        self, image: Any, where: tuple[int, int], opts: dict[str, Any], in_format: str | None
    ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """One image -> (processed CHW array, original (h, w), resized (h, w))."""
        label = f"images[{where[0]}][{where[1]}]"
        try:
            chw = self._to_chw(image, opts["do_convert_rgb"], in_format)
            height, width = int(chw.shape[-2]), int(chw.shape[-1])
            target_h, target_w = opts["size"]["height"], opts["size"]["width"]
            if opts["do_resize"] and (height > target_h or width > target_w):
                scale = min(target_h / height, target_w / width)
                new_size = (int(height * scale), int(width * scale))
                if min(new_size) < 1:
                    raise InputError(
                        f"an image of {height}x{width} fitted into {target_h}x{target_w} would be "
                        f"{new_size[0]}x{new_size[1]}: too thin to resize",
                        source="image",
                    )
                chw = F.resize(chw, new_size, opts["resample"], input_data_format=CHANNELS_FIRST)
            new_hw = (int(chw.shape[-2]), int(chw.shape[-1]))
            if opts["do_pad"]:
                chw = self._pad(chw, target_h, target_w, opts["padding_value"], opts["padding_mode"])
            scale = opts["rescale_factor"] if opts["do_rescale"] else None
            if opts["do_normalize"]:
                chw = F.rescale_normalize(
                    chw, scale, opts["image_mean"], opts["image_std"], input_data_format=CHANNELS_FIRST
                )
            elif scale is not None:
                chw = F.rescale(chw, scale)
            return chw, (height, width), new_hw
        except InputError as exc:
            raise InputError(str(exc), source=label) from exc

    @staticmethod
    def _to_chw(image: Any, do_convert_rgb: bool | None, in_format: str | None) -> np.ndarray:
        if isinstance(image, (str, bytes, bytearray, memoryview)) or hasattr(image, "__fspath__"):
            from .io import load_image

            image = load_image(image)  # the reference fetches URLs the same way: RGB
        if hasattr(image, "getbands"):  # PIL
            if do_convert_rgb:
                image = F.convert_rgb(image)
            array = np.asarray(image)
            return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
        if is_torch(image):
            image = image.detach().cpu().numpy()
        if not isinstance(image, np.ndarray):
            raise InputError(f"unsupported image type {type(image).__name__}", source="image")
        if image.ndim == 2:
            image = image[None]
            fmt = CHANNELS_FIRST
        elif image.ndim == 3:
            fmt = in_format or F.infer_channel_format(image)
        else:
            raise InputError(f"expected an image of 2 or 3 dims, got shape {image.shape}", source="image")
        chw = F.to_channels_first(image, fmt)
        if do_convert_rgb:
            chw = F.convert_rgb(chw, input_data_format=CHANNELS_FIRST)
        return np.asarray(chw)

    @staticmethod
    def _pad(chw: np.ndarray, target_h: int, target_w: int, value: float, mode: str) -> np.ndarray:
        pad_h, pad_w = target_h - chw.shape[-2], target_w - chw.shape[-1]
        if pad_h <= 0 and pad_w <= 0:
            return chw  # the reference leaves images that already fill (or exceed) the size alone
        if pad_h < 0 or pad_w < 0:
            raise InputError(
                f"cannot pad an image of {chw.shape[-2]}x{chw.shape[-1]} to {target_h}x{target_w}: it is larger "
                "on one side; enable do_resize",
                source="image",
            )
        # Filled in the image's dtype, as np.pad does: 1.0 on uint8 is grey level 1.
        return F.pad(chw, ((0, pad_h), (0, pad_w)), value, mode=mode, input_data_format=CHANNELS_FIRST)

    # ---- patches -----------------------------------------------------------------------------
    def _patch_hw(self, patch_size: Any) -> tuple[int, int]:
        ps = _size_dict(self.patch_size if patch_size is None else patch_size, "patch_size")
        return ps["height"], ps["width"]

    def get_num_patches(self, image_height: int, image_width: int, patch_size: Any = None) -> int:
        """Number of patches of an image whose sides are multiples of the patch size."""
        ph, pw = self._patch_hw(patch_size)
        if image_height % ph != 0:
            raise InputError(f"image_height={image_height} must be divisible by {ph}", source="image_height")
        if image_width % pw != 0:
            raise InputError(f"image_width={image_width} must be divisible by {pw}", source="image_width")
        return (image_height // ph) * (image_width // pw)

    def patchify_image(self, image: Any, patch_size: Any = None) -> Any:
        """``(C, H, W)`` -> ``(patches, ph * pw * C)``; ``(B, C, H, W)`` -> ``(B, patches, ph * pw * C)``.

        Patches in raster order, each flattened in ``(ph, pw, C)`` order. NumPy or torch in, same out.
        """
        ph, pw = self._patch_hw(patch_size)
        if getattr(image, "ndim", 0) not in (3, 4):
            raise InputError(
                f"expected an image of shape (C, H, W) or (B, C, H, W), got {tuple(getattr(image, 'shape', ()))}",
                source="image",
            )
        patches = patchify(image, (ph, pw))  # (..., L, C, ph, pw)
        lead = patches.shape[:-3]
        channels = patches.shape[-3]
        order = (*range(len(lead)), len(lead) + 1, len(lead) + 2, len(lead))
        moved = patches.permute(*order) if is_torch(patches) else patches.transpose(order)
        return moved.reshape(*lead, ph * pw * channels)

    def preprocess_with_tokenizer_info(
        self,
        image_input: Any,
        image_present: Any,
        image_unpadded_h: Any,
        image_unpadded_w: Any,
        image_placeholder_id: int,
        image_newline_id: int,
        variable_sized: bool,
        patch_size: Any = None,
    ) -> BatchFeature:
        """Patches and token ids for model input, as the reference computes them.

        ``image_input``: ``[batch, subsequences, C, H, W]`` padded images; ``image_present``: which
        are real. With ``variable_sized`` each image is cropped to its unpadded size rounded up to
        whole patches and a newline id ends every row of patches. Patch-index streams hold the
        patch number at placeholder positions and -1 elsewhere (newlines), counted per subsequence
        and cumulatively per batch sample.
        """
        import torch

        image_input = torch.as_tensor(image_input)
        device = image_input.device
        ph, pw = self._patch_hw(patch_size)
        images: list[list[Any]] = []
        batch_patches: list[list[Any]] = []
        batch_ids: list[list[Any]] = []
        for b in range(image_input.shape[0]):
            sample_ids, sample_patches = [], []
            for s in range(image_input.shape[1]):
                if not bool(image_present[b, s]):
                    sample_ids.append(torch.tensor([], dtype=torch.int32, device=device))
                    continue
                image = image_input[b, s]
                height, width = int(image.shape[1]), int(image.shape[2])
                if variable_sized:
                    # min(): the unpadded size rounded up may pass the padded size
                    height = min(height, math.ceil(float(image_unpadded_h[b, s]) / ph) * ph)
                    width = min(width, math.ceil(float(image_unpadded_w[b, s]) / pw) * pw)
                    image = image[:, :height, :width]
                count = self.get_num_patches(height, width, {"height": ph, "width": pw})
                ids = torch.full([count], image_placeholder_id, dtype=torch.int32, device=device)
                patches = self.patchify_image(image, {"height": ph, "width": pw})
                if variable_sized:
                    newline = torch.full([height // ph, 1], image_newline_id, dtype=torch.int32, device=device)
                    ids = torch.cat([ids.reshape(-1, width // pw), newline], dim=1).reshape(-1)
                images.append([image])
                sample_ids.append(ids)
                sample_patches.append(patches)
            batch_ids.append(sample_ids)
            batch_patches.append(sample_patches)

        per_batch: list[list[Any]] = []
        per_subsequence: list[list[Any]] = []
        for sample_ids in batch_ids:
            offset = 0
            sample_batch, sample_sub = [], []
            for ids in sample_ids:
                mask = ids == image_placeholder_id
                positions = torch.nonzero(mask, as_tuple=True)[0]
                numbers = torch.arange(positions.numel(), device=device).to(ids.dtype)
                in_sub = torch.full_like(ids, -1)
                in_batch = torch.full_like(ids, -1)
                in_sub[positions] = numbers
                in_batch[positions] = numbers + offset
                sample_sub.append(in_sub)
                sample_batch.append(in_batch)
                offset += positions.numel()
            per_batch.append(sample_batch)
            per_subsequence.append(sample_sub)
        return BatchFeature(
            {
                "images": images,
                "image_input_ids": batch_ids,
                "image_patches": batch_patches,
                "image_patch_indices_per_batch": per_batch,
                "image_patch_indices_per_subsequence": per_subsequence,
            }
        )

