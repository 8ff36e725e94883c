"""Image processor options: mean/std presets, the size parser, legacy spellings, and one call's `Plan`.

A call's options are resolved in one place: `merge_options` lays the call's arguments over the
processor's own, and `resolve_plan` checks the result and freezes it into a `Plan`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, FeatxError, InputError
from .layout import parse_resample, resample_option
from .validation import CONFIG_FILE, STAT_LENGTHS, check_image_options, check_side

#: the mean/std presets' names (`featx.image.processors` re-exports them)
STAT_PRESETS = (
    "IMAGENET_STANDARD_MEAN",
    "IMAGENET_STANDARD_STD",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
)
__all__ = [
    *STAT_PRESETS,
    "STAT_PRESETS",
    "Plan",
    "SIZE_KEYS",
    "HEIGHT_WIDTH",
    "size_dict",
    "merge_options",
    "as_size_mapping",
    "stat_option",
    "normalize_image_options",
    "resolve_plan",
]

IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5]
IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5]
IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

SIZE_KEYS: tuple[frozenset[str], ...] = (
    frozenset({"height", "width"}),
    frozenset({"shortest_edge"}),
    frozenset({"shortest_edge", "longest_edge"}),
    frozenset({"longest_edge"}),
    frozenset({"max_height", "max_width"}),
)
HEIGHT_WIDTH: tuple[frozenset[str], ...] = (frozenset({"height", "width"}),)


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


def size_dict(
    size: Any,
    *,
    default_to_square: bool = True,
    param_name: str = "size",
    keys: tuple[frozenset[str], ...] = SIZE_KEYS,
    where: str | None = None,
    error: type[FeatxError] = ConfigError,
) -> dict[str, int] | None:
    """The reference's ``get_size_dict``: an int, ``(h, w)``, dict or ``SizeDict`` becomes a size dict.

    The dict must have one of the key sets ``keys`` and integer values in ``[1, MAX_SIDE]``.
    Raises ``error`` (`ConfigError` for options; `InputError` for method arguments), its message
    prefixed with ``where`` (the config file) when given.
    """
    if size is None:
        return None
    try:
        return _size_dict(as_size_mapping(size), default_to_square, param_name, keys, where)
    except ConfigError as exc:
        if issubclass(error, InputError):
            raise error(str(exc), source=param_name) from None
        raise


def _size_dict(
    size: Any, square: bool, name: str, keys: tuple[frozenset[str], ...], where: str | None
) -> dict[str, int]:
    prefix = f"{where}: " if where else ""
    if isinstance(size, Mapping):
        out = {str(k): check_side(f"{name}[{k!r}]", v, where) for k, v in size.items() if v is not None}
    elif isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
        edge = check_side(name, size, where)
        out = {"height": edge, "width": edge} if square else {"shortest_edge": edge}
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        out = {"height": check_side(name, size[0], where), "width": check_side(name, size[1], where)}
    else:
        raise ConfigError(f"{prefix}{name} must be an int, (height, width) or a dict, not {size!r}")
    if frozenset(out) not in keys:
        if keys == HEIGHT_WIDTH:
            raise ConfigError(f"{prefix}{name} must have 'height' and 'width', got {out}")
        allowed = ", ".join("+".join(sorted(k)) for k in keys)
        raise ConfigError(f"{prefix}{name} {out} must have one of these key sets: {allowed}")
    return out


def merge_options(stored: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of one call: the processor's ``stored`` options, overridden by every argument in
    ``given`` that is not ``None`` (``None`` means "use the processor's", as in the reference)."""
    merged = dict(stored)
    merged.update({k: v for k, v in given.items() if v is not None})
    return merged


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


def normalize_image_options(
    options: Mapping[str, Any],
    *,
    default_to_square: bool,
    size_keys: Mapping[str, tuple[frozenset[str], ...]],
    where: str | None = CONFIG_FILE,
    stat_lengths: tuple[int, ...] | None = STAT_LENGTHS,
) -> dict[str, Any]:
    """The options present in ``options`` with the reference's types, checked; raises `ConfigError`.

    Legacy spellings are accepted: int or ``(h, w)`` sizes (``size_keys`` names the size options
    and the key sets each may have) and CLIP's ``use_square_size``. ``resample`` names become
    ``PILImageResampling`` members (ints and members are kept), mean/std sequences become tuples.
    ``where`` / ``stat_lengths``: see `featx.image.validation.check_image_options`.
    """
    out = dict(options)
    if out.pop("use_square_size", False) and isinstance(out.get("size"), (int, dict)):
        edge = out["size"] if isinstance(out["size"], int) else out["size"].get("shortest_edge")
        if edge is not None:
            out["size"] = {"height": int(edge), "width": int(edge)}
    for name, keys in size_keys.items():
        if name in out:
            square = default_to_square if name == "size" else True
            out[name] = size_dict(out[name], default_to_square=square, param_name=name, keys=keys, where=where)
    for name in ("image_mean", "image_std"):
        if name in out:
            out[name] = stat_option(out[name])
    check_image_options(out, where, stat_lengths)
    if "resample" in out:
        out["resample"] = resample_option(out["resample"])
    return out


def resolve_plan(opts: dict[str, Any], known: set[str]) -> Plan:
    """Freeze normalised, merged options into a `Plan` (options not in ``known`` go to ``Plan.extra``);
    raises `ConfigError` when a switched-on step misses its option."""
    crop, pad = opts["crop_size"], opts["pad_size"]
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
        resample=parse_resample(opts["resample"]),
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
