"""Checks of image processor options, run when a processor is built (constructor, ``from_dict``,
``from_pretrained``) and on each call's overrides, so a bad config fails once, before any input.

Every check accepts what the reference's own configs hold (int scalars for ``image_mean``, legacy
int sizes, ``resample`` as an int or ``PILImageResampling``, ``None`` for a switched-off step) and
raises `featx.ConfigError` naming the field and the value, e.g.
``preprocessor_config.json: image_std must have 1 or 3 values, got 5``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from .layout import parse_resample

__all__ = [
    "CONFIG_FILE",
    "MAX_SIDE",
    "STAT_LENGTHS",
    "PADDING_MODES",
    "check_side",
    "check_number",
    "check_stats",
    "check_image_options",
]

CONFIG_FILE = "preprocessor_config.json"
# Largest height/width/edge an option may ask for; the largest in the reference's own configs is
# Fuyu's 1920 (detection models use longest_edge 1333).
MAX_SIDE = 16384
STAT_LENGTHS = (1, 3)  # image_mean / image_std: one value for every channel, or one per RGB channel
PADDING_MODES = ("constant", "reflect", "replicate", "edge", "symmetric")
_FLAGS = ("do_resize", "do_center_crop", "do_rescale", "do_normalize", "do_convert_rgb", "do_pad")


def _fail(where: str | None, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}" if where else message)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_side(name: str, value: Any, where: str | None = None) -> int:
    """An int (or integral float) in ``[1, MAX_SIDE]``, as an int."""
    if _is_number(value) and math.isfinite(value) and float(value).is_integer() and 1 <= value <= MAX_SIDE:
        return int(value)
    raise _fail(where, f"{name} must be an integer from 1 to {MAX_SIDE}, got {value!r}")


def check_number(
    name: str, value: Any, where: str | None = None, *, positive: bool = False, allow_none: bool = True
) -> None:
    """A finite real number (``positive``: above 0); ``None`` when ``allow_none``."""
    if value is None and allow_none:
        return
    if not _is_number(value) or not math.isfinite(value):
        raise _fail(where, f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise _fail(where, f"{name} must be a positive number, got {value!r}")


def check_stats(name: str, value: Any, where: str | None = None, lengths: tuple[int, ...] | None = STAT_LENGTHS) -> None:
    """``image_mean`` / ``image_std``: ``None``, a number, or a sequence of ``lengths`` numbers;
    finite, and no zeros in ``image_std``. ``lengths=None`` leaves the count to the image."""
    if value is None:
        return
    values = [value] if _is_number(value) else value
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        raise _fail(where, f"{name} must be a number or a list of numbers, got {value!r}")
    values = list(np.asarray(values, dtype=object).ravel()) if isinstance(values, np.ndarray) else list(values)
    if lengths is not None and len(values) not in lengths:
        allowed = " or ".join(map(str, lengths))
        raise _fail(where, f"{name} must have {allowed} values, got {len(values)}")
    for v in values:
        if not _is_number(v) or not math.isfinite(v):
            raise _fail(where, f"{name} must hold finite numbers, got {value!r}")
    if name == "image_std" and any(v == 0 for v in values):
        raise _fail(where, f"image_std must not be 0 (it divides), got {value!r}")


def _check_stats_agree(options: Mapping[str, Any], where: str | None) -> None:
    """Lists of mean and std values must fit one channel count (3 when images are made RGB): the
    reference fails on every image otherwise."""
    lengths = {n: len(options[n]) for n in ("image_mean", "image_std") if isinstance(options.get(n), (list, tuple))}
    if len(set(lengths.values())) > 1:
        raise _fail(where, f"image_mean has {lengths['image_mean']} value(s) but image_std has {lengths['image_std']}; "
                    "give both one value, or one value per channel")  # fmt: skip
    if options.get("do_convert_rgb") and any(n != 3 for n in lengths.values()):
        name, count = next((k, v) for k, v in lengths.items() if v != 3)
        raise _fail(where, f"{name} must have 3 values when do_convert_rgb is true (the images are RGB), got {count}")


def _check_flag(name: str, value: Any, where: str | None) -> None:
    if value is None or isinstance(value, (bool, np.bool_)) or (isinstance(value, int) and value in (0, 1)):
        return
    raise _fail(where, f"{name} must be true or false, got {value!r}")


def _check_resample(value: Any, where: str | None) -> None:
    if value is None:
        return
    try:
        parse_resample(value)
    except InputError as exc:
        raise _fail(where, f"resample: {exc}") from None


def check_image_options(
    options: Mapping[str, Any], where: str | None = CONFIG_FILE, stat_lengths: tuple[int, ...] | None = STAT_LENGTHS
) -> None:
    """Check the image options present in ``options`` (sizes are checked by `featx.image.options.size_dict`).

    ``where`` prefixes messages (the config file's name; ``None`` for call arguments);
    ``stat_lengths=None`` skips the count of ``image_mean`` / ``image_std`` values.
    """
    for name in _FLAGS:
        if name in options:
            _check_flag(name, options[name], where)
    if "rescale_factor" in options:
        check_number("rescale_factor", options["rescale_factor"], where, positive=True)
    for name in ("image_mean", "image_std"):
        if name in options:
            check_stats(name, options[name], where, stat_lengths)
    if stat_lengths is not None:
        _check_stats_agree(options, where)
    if "resample" in options:
        _check_resample(options["resample"], where)
    if options.get("crop_pct") is not None:
        pct = options["crop_pct"]
        if not _is_number(pct) or not math.isfinite(pct) or not 0 < pct <= 1:
            raise _fail(where, f"crop_pct must be a number in (0, 1], got {pct!r}")
    if "padding_value" in options:
        check_number("padding_value", options["padding_value"], where, allow_none=False)
    if "padding_mode" in options and options["padding_mode"] not in PADDING_MODES:
        raise _fail(where, f"unknown padding mode {options['padding_mode']!r}; use one of {', '.join(PADDING_MODES)}")
