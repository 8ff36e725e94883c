"""Reduced-size JPEG decoding for the embed/features path: when, and how small.

Pillow's ``draft`` decodes a JPEG at 1/2, 1/4 or 1/8 scale in the DCT, several times faster for
big photos, but the pixels differ from a full decode followed by the processor's resize. Measured
over the 240-photo benchmark set (bench/e2e.py; 300x200 to 4032x3024) with the processors' real
resize paths, drafting only while the decoded image stays at least ``k`` times the resize target on
each side, the largest abs difference of ``pixel_values`` from the full decode was:

    ==================  =======  =======  =======  =======
    processor           k=2      k=3      k=4      k=6
    ==================  =======  =======  =======  =======
    ViT 224 bilinear    0.047    0.016    0.016    0.008
    CLIP 224 bicubic    0.102    0.045    0.043    0.028
    DINOv2 256/224      0.171    0.052    0.035    (none)
    SigLIP 224          0.063    0.016    0.016    0.008
    SigLIP 384          0.039    0.024    (none)   (none)
    ==================  =======  =======  =======  =======

(mean abs difference 2e-4 to 3e-3; "(none)": no photo was large enough to draft). featx's parity
tolerance with transformers is 1e-5 (it measures 0.0 on a full decode), so drafting is never exact
and stays opt-in: the processor option ``jpeg_draft=k`` (``featx embed -p jpeg_draft=4``, or the
key in ``preprocessor_config.json``) turns it on with factor ``k`` >= 2; without it every image is
decoded in full. The option is part of the processor options, so it is part of a job's identity
(an output folder written with it is not resumed without it). This module is the one place that
decides; `featx.families.spec.ImageFamily.prepare` asks it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

__all__ = ["DRAFT_OPTION", "draft_factor", "draft_request", "split_draft_option", "set_draft"]

#: the processor option (an extra key kept by every image processor) that enables drafting
DRAFT_OPTION = "jpeg_draft"


def draft_factor(processor: Any) -> int | None:
    """The processor's ``jpeg_draft`` factor (None: decode in full); a bad value is a `ConfigError`."""
    return _factor(getattr(processor, DRAFT_OPTION, None))


def _factor(value: Any) -> int | None:
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 2:
        raise ConfigError(f"the processor option {DRAFT_OPTION} must be an integer >= 2 (the decoded JPEG stays at "
                          f"least that many times the resize target on each side), got {value!r}")
    return int(value)


def draft_request(processor: Any) -> Callable[[int, int], tuple[int, int] | None] | None:
    """For `featx.load_image`'s ``draft``: a function of the upright ``(width, height)`` giving the
    smallest ``(height, width)`` to decode at, or None when the processor does not draft (option
    off, no resize step, or a processor without the standard resize plan)."""
    k = draft_factor(processor)
    if k is None or not (hasattr(processor, "call_plan") and hasattr(processor, "resize_plan")):
        return None
    plan = processor.call_plan({})
    if not plan.do_resize or plan.size is None:
        return None  # the model sees the full-resolution pixels: never reduce them

    def request(width: int, height: int) -> tuple[int, int] | None:
        target, _ = processor.resize_plan(height, width, plan)
        if target is None:
            return None
        return k * int(target[0]), k * int(target[1])

    return request


def split_draft_option(options: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """``(options without jpeg_draft, its factor)`` from a job's processor options (``-p``): the
    factor is set on the loaded processor with `set_draft`, since processors keep only the keys
    of their config file, not unknown keywords."""
    rest = {k: v for k, v in options.items() if k != DRAFT_OPTION}
    if DRAFT_OPTION not in options:
        return rest, None
    return rest, _factor(options[DRAFT_OPTION])


def set_draft(processor: Any, factor: int | None) -> Any:
    """``processor`` with the ``jpeg_draft`` factor set (None: left as it is); returns it."""
    if factor is not None:
        setattr(processor, DRAFT_OPTION, int(factor))
    return processor
