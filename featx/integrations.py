"""Plugging processors into training data pipelines: 🤗 datasets transforms and a DataLoader collate_fn.

    ds.set_transform(featx.integrations.transform(processor))        # or ds.with_transform(...)
    DataLoader(ds, batch_size=32, collate_fn=featx.integrations.Collator(processor))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .batch import BatchFeature
from .engine.inputs import guess_source_column
from .errors import InputError

__all__ = ["transform", "Collator"]

def _is_audio(processor: Any) -> bool:
    return getattr(processor, "type_key", "") == "feature_extractor_type"


def _pick_key(row: dict[str, Any], processor: Any, key: str | None) -> str:
    if key is not None:
        if key not in row:
            raise InputError(f"column {key!r} not found; the rows have {sorted(row)}")
        return key
    # the data itself before where it is (a decoded image rather than its path)
    guess = guess_source_column(list(row), data_first=True)
    if guess is not None:
        return guess
    raise InputError(f"cannot tell which column holds the inputs (columns: {sorted(row)}); pass key=")


def _run(processor: Any, values: Sequence[Any], return_tensors: str | None, kwargs: dict[str, Any]) -> BatchFeature:
    if _is_audio(processor):
        arrays, rates = [], set()
        for value in values:
            if isinstance(value, dict):  # datasets' Audio feature: {"array", "sampling_rate", "path"}
                arrays.append(value["array"])
                rates.add(value.get("sampling_rate"))
            else:
                arrays.append(value)
        rate = kwargs.pop("sampling_rate", None) or (rates.pop() if len(rates) == 1 else None)
        kwargs.setdefault("padding", True)
        return processor(arrays, sampling_rate=rate, return_tensors=return_tensors, **kwargs)
    return processor(list(values), return_tensors=return_tensors, **kwargs)


def transform(
    processor: Any, key: str | None = None, *, keep: bool = False, return_tensors: str | None = "pt", **kwargs: Any
) -> Callable[[dict[str, list[Any]]], dict[str, Any]]:
    """A function for ``Dataset.set_transform`` / ``with_transform``: a batch of rows -> features.

    ``key`` names the image/audio column (found automatically when it is a usual name); ``keep``
    keeps the other columns (labels...) next to the features. ``kwargs`` go to the processor call.
    """

    def apply(batch: dict[str, list[Any]]) -> dict[str, Any]:
        column = _pick_key({k: None for k in batch}, processor, key)
        features = _run(processor, batch[column], return_tensors, dict(kwargs))
        out: dict[str, Any] = {k: v for k, v in batch.items() if k != column} if keep else {}
        out.update(features)
        return out

    return apply


class Collator:
    """``collate_fn`` for ``torch.utils.data.DataLoader``: a list of rows (dicts or raw inputs) -> one
    `BatchFeature` of tensors; other numeric fields of dict rows (e.g. ``label``) are stacked too."""

    def __init__(self, processor: Any, key: str | None = None, *, return_tensors: str = "pt", **kwargs: Any) -> None:
        self.processor = processor
        self.key = key
        self.return_tensors = return_tensors
        self.kwargs = kwargs

    def __call__(self, rows: Sequence[Any]) -> BatchFeature:
        if not rows:
            raise InputError("cannot collate an empty batch")
        if not isinstance(rows[0], dict):
            return _run(self.processor, rows, self.return_tensors, dict(self.kwargs))
        column = _pick_key(rows[0], self.processor, self.key)
        features = _run(self.processor, [row[column] for row in rows], self.return_tensors, dict(self.kwargs))
        extras = {k: [row[k] for row in rows] for k in rows[0] if k != column}
        for name, values in extras.items():
            if all(isinstance(v, (int, float, bool)) for v in values):
                features[name] = values
        return features.convert_to_tensors(self.return_tensors)
