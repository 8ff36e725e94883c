"""Fuyu's patch helpers: cutting padded images into patches and building the token bookkeeping
(placeholder / newline ids, patch indices) that ``transformers.FuyuImageProcessor`` returns."""

from __future__ import annotations

import math
from typing import Any


from ..batch import BatchFeature
from ..errors import InputError
from .layout import is_torch
from .options import HEIGHT_WIDTH, size_dict
from .patches import patchify

__all__ = ["FuyuPatchMethods"]


class FuyuPatchMethods:
    """Mixed into `featx.image.fuyu.FuyuImageProcessor`; reads ``self.patch_size``."""

    patch_size: dict[str, int]

    def _patch_hw(self, patch_size: Any) -> tuple[int, int]:
        ps = size_dict(self.patch_size if patch_size is None else patch_size, param_name="patch_size", keys=HEIGHT_WIDTH, error=InputError)
        assert ps is not None
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

