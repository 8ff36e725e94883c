"""Checkpoint key mapping: one helper, `remap_keys`, turns a checkpoint's names into an encoder's.

Every encoder's ``remap_state_dict`` is a `remap_keys` call (plus, where a family needs it, a tensor
transform such as fusing a weight norm). `layer_indices` and `layer_count_problem` check that the
checkpoint holds exactly the layers its config.json declares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from torch import Tensor

__all__ = ["remap_keys", "rename_keys", "layer_indices", "layer_count_problem", "describe_indices"]


def rename_keys(
    state_dict: Mapping[str, Tensor],
    rules: Sequence[tuple[str, str]],
) -> dict[str, Tensor]:
    """Apply regex ``(pattern, replacement)`` rules in order to every key."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def remap_keys(
    state_dict: Mapping[str, Tensor],
    prefixes: Sequence[tuple[str, str]] = (),
    *,
    only_prefixed: bool = False,
    keep: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    renames: Sequence[tuple[str, str]] = (),
) -> dict[str, Tensor]:
    """Checkpoint names to a model's names, in four steps for each key.

    1. ``prefixes``: the first ``(old, new)`` whose ``old`` starts the key swaps it for ``new``
       (``("vit.", "")`` strips a task model's prefix); with ``only_prefixed`` a key that no
       prefix matches is left out (Whisper keeps only ``encoder.*``);
    2. ``keep``: a key that starts with none of these is left out (None keeps every key);
    3. ``drop``: a key that one of these regexes finds (`re.search`) is left out;
    4. ``renames``: regex ``(pattern, replacement)`` pairs applied in order (`rename_keys`).
    """
    kept: dict[str, Tensor] = {}
    dropped = [re.compile(p) for p in drop]
    keep_prefixes = tuple(keep) if keep is not None else None
    for key, value in state_dict.items():
        for old, new in prefixes:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        else:
            if only_prefixed:
                continue
        if keep_prefixes is not None and not key.startswith(keep_prefixes):
            continue
        if any(p.search(key) for p in dropped):
            continue
        kept[key] = value
    return rename_keys(kept, renames) if renames else kept


def layer_indices(keys: Iterable[str], prefix: str) -> set[int]:
    """The N of every ``<prefix>N.`` key (``encoder.layers.`` -> {0, 1, ...})."""
    pattern = re.compile(re.escape(prefix) + r"(\d{1,9})\.")
    return {int(m.group(1)) for key in keys if (m := pattern.match(key))}


def describe_indices(indices: Iterable[int], limit: int = 6) -> str:
    """``{0, 1, 2, 5}`` -> ``"0-2, 5"``: runs collapsed, at most ``limit`` runs shown."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    shown = [f"{a}-{b}" if b > a else str(a) for a, b in runs[:limit]]
    more = f" and {len(runs) - limit} more runs" if len(runs) > limit else ""
    return (", ".join(shown) + more) or "none"


def layer_count_problem(
    model_keys: Iterable[str], checkpoint_keys: Iterable[str], prefix: str, field: str
) -> tuple[str, bool] | None:
    """Whether the checkpoint's ``<prefix>N.`` layers are exactly the model's (those config.json declares).

    None when they agree (or the model has no such layers); otherwise a sentence naming both counts
    and whether the checkpoint has layers the model would leave out (True) or lacks some (False).
    """
    built = layer_indices(model_keys, prefix)
    if not built:
        return None
    found = layer_indices(checkpoint_keys, prefix)
    if found == built:
        return None
    declared = f"config.json's {field} declares {_layers(len(built))}"
    has = f"the checkpoint has {_layers(len(found))} under {prefix}N ({describe_indices(found)})"
    if found - built:
        return (f"{declared} but {has}; loading would silently leave out layer(s) {describe_indices(found - built)}. "
                f"Set {field} to match the checkpoint", True)
    return f"{declared} but {has}, missing layer(s) {describe_indices(built - found)}", False


def _layers(n: int) -> str:
    return f"{n} layer" if n == 1 else f"{n} layers"
