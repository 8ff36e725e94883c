"""Image processor options: mean/std presets, size dicts, legacy spellings, one call's resolved plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import functional as F

__all__ = [
    "IMAGENET_STANDARD_MEAN",
    "IMAGENET_STANDARD_STD",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "Plan",
    "size_dict",
    "as_size_mapping",
    "stat_option",
    "normalize_size_options",
    "resolve_plan",
]

IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5]
IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5]
IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

_SIZE_KEYS = (
    {"height", "width"},
    {"shortest_edge"},
    {"shortest_edge", "longest_edge"},
    {"longest_edge"},
    {"max_height", "max_width"},
)


def as_size_mapping(size: Any) -> Any:
    """A plain dict for a mapping or the reference's ``SizeDict`` (a dataclass yielding ``(key, value)``
    pairs); anything else is returned unchanged."""
    if isinstance(size, Mapping):
        return dict(size)
    if hasattr(size, "__dataclass_fields__") and hasattr(size, "__iter__"):
        return {str(k): v for k, v in size}
    return size


def stat_option(value: Any) -> Any:
    """``image_mean`` / ``image_std`` as the reference stores them: sequences become tuples, scalars stay."""
    if isinstance(value, np.ndarray):
        return tuple(value.tolist()) if value.ndim else value.item()
    if isinstance(value, (list, tuple)):
        return tuple(v.item() if isinstance(v, np.generic) else v for v in value)
    return value.item() if isinstance(value, np.generic) else value


def size_dict(size: Any, *, default_to_square: bool = True, param_name: str = "size") -> dict[str, int] | None:
    """The reference's ``get_size_dict``: an int, ``(h, w)``, dict or ``SizeDict`` becomes a size dict."""
    if size is None:
        return None
    size = as_size_mapping(size)
    if isinstance(size, Mapping):
        out = {str(k): int(v) for k, v in size.items() if v is not None}
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        out = {"height": int(size), "width": int(size)} if default_to_square else {"shortest_edge": int(size)}
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        out = {"height": int(size[0]), "width": int(size[1])}
    else:
        raise ConfigError(f"{param_name} must be an int, (height, width) or a dict, not {size!r}")
    if set(out) not in _SIZE_KEYS:
        allowed = ", ".join("+".join(sorted(k)) for k in _SIZE_KEYS)
        raise ConfigError(f"{param_name} {out} must have one of these key sets: {allowed}")
    return out


@dataclass(frozen=True)
class Plan:
    """The options of one call, resolved against the processor's own."""

    do_resize: bool
    size: dict[str, int] | None
    resample: int
    do_center_crop: bool
    crop_size: tuple[int, int] | None
    do_rescale: bool
    rescale_factor: float | None
    do_normalize: bool
    image_mean: Any
    image_std: Any
    do_convert_rgb: bool
    do_pad: bool
    pad_size: tuple[int, int] | None
    extra: dict[str, Any]

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        if self.do_rescale:
            return np.dtype(np.float32)
        if self.do_normalize and not np.issubdtype(dtype, np.floating):
            return np.dtype(np.float32)
        return np.dtype(dtype)


def normalize_size_options(options: dict[str, Any], default_to_square: bool) -> dict[str, Any]:
    """Accept legacy spellings: int ``size``/``crop_size`` and CLIP's ``use_square_size``."""
    options = dict(options)
    if options.pop("use_square_size", False) and isinstance(options.get("size"), (int, dict)):
        edge = options["size"] if isinstance(options["size"], int) else options["size"].get("shortest_edge")
        if edge is not None:
            options["size"] = {"height": int(edge), "width": int(edge)}
    if "size" in options:
        options["size"] = size_dict(options["size"], default_to_square=default_to_square)
    for key in ("crop_size", "pad_size"):
        if key in options:
            options[key] = size_dict(options[key], param_name=key)
    return options


def resolve_plan(opts: dict[str, Any], default_to_square: bool, known: set[str]) -> Plan:
    """Validate merged options into a `Plan`; options not in ``known`` go to ``Plan.extra``."""
    opts["size"] = size_dict(opts["size"], default_to_square=default_to_square)
    crop = size_dict(opts["crop_size"], param_name="crop_size")
    pad = size_dict(opts["pad_size"], param_name="pad_size")
    if opts["do_rescale"] and opts["rescale_factor"] is None:
        raise ConfigError("rescale_factor must be set when do_rescale is True")
    if opts["do_normalize"] and (opts["image_mean"] is None or opts["image_std"] is None):
        raise ConfigError("image_mean and image_std must both be set when do_normalize is True")
    if opts["do_center_crop"] and crop is None:
        raise ConfigError("crop_size must be set when do_center_crop is True")
    if opts["do_resize"] and opts["size"] is None:
        raise ConfigError("size must be set when do_resize is True")
    if opts["do_center_crop"] and set(crop or {}) != {"height", "width"}:
        raise ConfigError(f"crop_size must have 'height' and 'width', got {crop}")
    if opts["do_pad"] and pad is not None and set(pad) != {"height", "width"}:
        raise ConfigError(f"pad_size must have 'height' and 'width', got {pad}")
    return Plan(
        do_resize=bool(opts["do_resize"]),
        size=opts["size"],
        resample=F.parse_resample(opts["resample"]),
        do_center_crop=bool(opts["do_center_crop"]),
        crop_size=(crop["height"], crop["width"]) if crop and "height" in crop else None,
        do_rescale=bool(opts["do_rescale"]),
        rescale_factor=opts["rescale_factor"],
        do_normalize=bool(opts["do_normalize"]),
        image_mean=opts["image_mean"],
        image_std=opts["image_std"],
        do_convert_rgb=bool(opts["do_convert_rgb"]),
        do_pad=bool(opts["do_pad"]),
        pad_size=(pad["height"], pad["width"]) if pad and "height" in pad else None,
        extra={k: v for k, v in opts.items() if k not in known},
    )
