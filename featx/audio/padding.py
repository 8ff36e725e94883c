"""Padding a batch of sequences as the reference's ``SequenceFeatureExtractor.pad`` does, into one array.

`pad_batch` gives the same arrays, dtypes and masks as ``transformers``' ``pad``, but writes every
example straight into one preallocated batch array instead of padding them one by one and
stacking. It is `featx.audio.sequence.SequenceFeatureExtractor.pad`, whose module lists the
deliberate differences from the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from ..batch import BatchFeature, TensorType, tensor_kind
from ..errors import InputError

__all__ = [
    "PADDING_STRATEGIES",
    "pad_batch",
    "padding_strategy",
    "is_torch",
    "torch_to_numpy",
]

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")


def is_torch(x: object) -> bool:
    """Whether ``x`` is a torch tensor (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and type(x).__name__ in ("Tensor", "Parameter")


def torch_to_numpy(x: Any) -> np.ndarray:
    """A torch tensor as NumPy, on the CPU; half-precision floats become float32."""
    x = x.detach().cpu()
    if not (x.dtype.is_floating_point or x.dtype.is_complex) or x.dtype.itemsize >= 4:
        return x.numpy()
    return x.float().numpy()  # bfloat16/float16 have no (or a lossy) NumPy twin; pad in float32


def _item_to_numpy(x: Any) -> np.ndarray:
    return torch_to_numpy(x) if is_torch(x) else np.asarray(x)


def _round_up(n: int, multiple: int | None) -> int:
    if multiple is None or n % multiple == 0:
        return n
    return (n // multiple + 1) * multiple


def _output_dtype(dtype: np.dtype) -> np.dtype:
    # The reference casts float64 to float32 after padding, example by example.
    return np.dtype(np.float32) if dtype == np.float64 else dtype


class _Padder(Protocol):
    """What `pad_batch` reads of the extractor it pads for."""

    model_input_names: ClassVar[list[str]]
    padding_side: str
    padding_value: float | None
    return_attention_mask: bool


def pad_batch(
    self: _Padder,
    processed_features: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    padding: bool | str = True,
    max_length: int | None = None,
    truncation: bool = False,
    pad_to_multiple_of: int | None = None,
    return_attention_mask: bool | None = None,
    return_tensors: str | TensorType | None = None,
) -> BatchFeature:
    """Truncate and pad a batch of sequences to one length, with an attention mask.

    ``processed_features`` is a dict (or `BatchFeature`) of per-example lists, or a list of
    per-example dicts (collate-function use); items are lists, NumPy arrays or torch tensors.
    ``padding``: ``True``/``"longest"`` (to the longest, after truncation), ``"max_length"``
    (to ``max_length``), ``False``/``"do_not_pad"``. ``pad_to_multiple_of`` rounds the target
    length up, also the truncation length. ``return_tensors`` defaults to ``"pt"`` for torch
    items and ``"np"`` otherwise, like the reference. Only the main input (the first of
    ``model_input_names``) and ``attention_mask`` are truncated and padded.

    This is `featx.audio.sequence.SequenceFeatureExtractor.pad` (``self``: the extractor, whose
    ``padding_side``, ``padding_value`` and ``return_attention_mask`` it follows).
    """
    main = self.model_input_names[0]
    padding_side, padding_value = self.padding_side, self.padding_value
    features = _as_feature_dict(processed_features, main)
    if return_attention_mask is None:
        return_attention_mask = bool(self.return_attention_mask)
    required = features[main]
    if len(required) == 0:
        out = dict(features)
        if return_attention_mask:
            out["attention_mask"] = []
        return BatchFeature(out)

    kind = tensor_kind(return_tensors)
    inferred = kind is None
    if kind is None:
        kind = "pt" if is_torch(_first_item(required)) else "np"
    columns = _columns(features, main)
    strategy = padding_strategy(padding, max_length, padding_value)
    _check_multiple(pad_to_multiple_of)
    _check_batch(columns, main)

    items = columns[main]
    masks = columns.get("attention_mask")
    if truncation:
        if max_length is None:
            raise InputError(
                "truncation=True needs max_length: pass max_length=<length>, or truncation=False"
            )
        limit = _round_up(int(max_length), pad_to_multiple_of)
        items = [x[:limit] for x in items]
        if masks is not None:
            masks = [m[:limit] for m in masks]
    lengths = [len(x) for x in items]
    target = _target(strategy, lengths, max_length, pad_to_multiple_of, padding_side)

    right = padding_side == "right"
    out: dict[str, Any] = {}
    for key, column in columns.items():
        if key in (main, "attention_mask"):
            continue
        out[key] = [x.astype(np.float32) if x.dtype == np.float64 else x for x in column]
    out[main] = _pad_column(items, target, padding_value, main, right)  # type: ignore[arg-type]
    if masks is None and return_attention_mask and isinstance(out[main], np.ndarray):
        out["attention_mask"] = _mask(lengths, out[main].shape[1], right)
    elif masks is None and return_attention_mask:
        masks = [np.ones(n, dtype=np.int32) for n in lengths]
    if masks is not None:
        out["attention_mask"] = _pad_column(masks, target, 0, "attention_mask", right)
    return _as_batch_feature(out, kind, inferred, lengths)


def _columns(features: dict[str, Any], main: str) -> dict[str, list[np.ndarray]]:
    """Each key's examples as NumPy arrays; a flat list of numbers under ``main`` is refused."""
    columns: dict[str, list[np.ndarray]] = {}
    for key, value in features.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1:
            columns[key] = list(value)  # an already batched array: its rows are the examples
        elif is_torch(value) and value.ndim >= 1:
            columns[key] = list(torch_to_numpy(value))
        elif isinstance(value, (list, tuple)) or is_torch(value):
            if len(value) and isinstance(value[0], (int, float, np.number)) and key == main:
                raise InputError(
                    f"pad() takes a batch, but {key!r} holds a single sequence of numbers; "
                    f"wrap it in a list ({{{key!r}: [values]}}) to pad a batch of one",
                    source=key,
                )
            columns[key] = [_item_to_numpy(v) for v in value]
        else:
            raise InputError(
                f"{key!r} must be a list of per-example sequences or a batched array, "
                f"not {type(value).__name__}",
                source=key,
            )
    return columns


def _check_batch(columns: dict[str, list[np.ndarray]], main: str) -> None:
    """One item per example under every key, and no scalar examples."""
    batch_size = len(columns[main])
    if any(len(v) != batch_size for v in columns.values()):
        sizes = {k: len(v) for k, v in columns.items()}
        raise InputError(f"the inputs have different batch sizes: {sizes}; give every key one item per example")
    for i, x in enumerate(columns[main]):
        if x.ndim == 0:
            raise InputError(
                f"{main}[{i}] is a scalar; each example must be a sequence (1-D, or 2-D [frames, features])",
                source=f"{main}[{i}]",
            )


def _target(strategy: str, lengths: list[int], max_length: int | None, multiple: int | None,
            padding_side: str) -> int | None:
    """The padded length (None: no padding)."""
    if strategy == "longest":
        target: int | None = _round_up(max(lengths), multiple)
    elif strategy == "max_length":
        target = _round_up(int(max_length), multiple)  # type: ignore[arg-type]
    else:
        target = None
    if target is not None and padding_side not in ("right", "left"):
        raise InputError(f"padding_side must be 'right' or 'left', not {padding_side!r}", source="padding_side")
    return target


def _as_batch_feature(out: dict[str, Any], kind: str, inferred: bool, lengths: list[int]) -> BatchFeature:
    """``out`` as a `BatchFeature` of ``kind``; keys left ragged: see `featx.audio.sequence`."""
    ragged = [k for k, v in out.items() if isinstance(v, list) and len({x.shape for x in v}) > 1]
    if ragged and kind == "pt" and inferred:
        # Torch items that stay ragged: a list of tensors (the reference cannot stack them).
        import torch

        for key in ragged:
            out[key] = [torch.from_numpy(np.ascontiguousarray(x)) for x in out[key]]
        return BatchFeature(out)
    if ragged and kind != "np":
        raise InputError(
            f"cannot return {kind!r} tensors: {ragged} hold sequences of different lengths "
            f"({min(lengths)} to {max(lengths)}); pass padding=True, or padding='max_length' with "
            "max_length=..., or return_tensors='np' for an object array of per-example arrays",
            source=ragged[0],
        )
    return BatchFeature(out, tensor_type=kind)  # ragged NumPy output: an object array


def _pad_column(
    items: list[np.ndarray], target: int | None, value: float, key: str, right: bool
) -> np.ndarray | list[np.ndarray]:
    """Pad along the first axis into one preallocated array; a list when lengths stay ragged."""
    lengths = [len(x) for x in items]
    finals = [n if target is None else max(n, target) for n in lengths]
    dtypes = [_output_dtype(x.dtype) for x in items]
    if len(set(finals)) > 1:  # no padding, or examples longer than the target: stays ragged
        return [_pad_one(x, f, value, right).astype(d, copy=False) for x, f, d in zip(items, finals, dtypes)]
    if len({x.shape[1:] for x in items}) > 1:
        shapes = sorted({x.shape[1:] for x in items})
        raise InputError(
            f"the examples of {key!r} have different feature shapes {shapes}; "
            "only the first (time) axis may differ",
            source=key,
        )
    length = finals[0]
    batch = np.empty((len(items), length, *items[0].shape[1:]), dtype=np.result_type(*dtypes))
    for i, (x, n) in enumerate(zip(items, lengths)):
        data, pad = (slice(0, n), slice(n, length)) if right else (slice(length - n, length), slice(0, length - n))
        batch[i, data] = x
        if n < length:
            # The reference pads at the example's own dtype (an int example gets an int pad value).
            batch[i, pad] = np.asarray(value).astype(x.dtype).astype(dtypes[i])
    return batch


def _mask(lengths: list[int], length: int, right: bool) -> np.ndarray:
    """The int32 attention mask of a padded batch, built in one pass."""
    positions = np.arange(length, dtype=np.int64)[None, :]
    valid = np.asarray(lengths, dtype=np.int64)[:, None]
    keep = positions < valid if right else positions >= length - valid
    return keep.astype(np.int32)


def _pad_one(x: np.ndarray, length: int, value: float, right: bool) -> np.ndarray:
    n = len(x)
    if n >= length:
        return x
    widths = [(0, length - n) if right else (length - n, 0)] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, widths, mode="constant", constant_values=np.asarray(value).astype(x.dtype))


def _as_feature_dict(processed_features: Any, main: str) -> dict[str, Any]:
    if isinstance(processed_features, (list, tuple)):
        if not processed_features:
            raise InputError("pad() got an empty list; pass at least one example")
        if isinstance(processed_features[0], Mapping):
            keys = list(processed_features[0].keys())
            for i, example in enumerate(processed_features):
                if not isinstance(example, Mapping) or set(example.keys()) != set(keys):
                    raise InputError(f"example {i} does not have the same keys as example 0 ({keys})", source=i)
            return {key: [example[key] for example in processed_features] for key in keys}
    if not isinstance(processed_features, Mapping):
        raise InputError(
            "pad() takes a dict (or BatchFeature) of per-example lists, or a list of per-example "
            f"dicts, not {type(processed_features).__name__}"
        )
    if main not in processed_features:
        raise InputError(
            f"pad() needs the key {main!r} (the model's main input), but got {list(processed_features.keys())}",
            source=main,
        )
    return dict(processed_features)


def _first_item(required: Any) -> Any:
    first = required[0]
    if isinstance(first, (list, tuple)):
        for example in required:  # the first non-empty example decides, as in the reference
            if len(example):
                return example[0]
    return first


def padding_strategy(padding: Any, max_length: int | None, padding_value: float | None) -> str:
    """``"longest"``, ``"max_length"`` or ``"do_not_pad"`` for ``pad``'s ``padding`` argument, checked."""
    value = getattr(padding, "value", padding)  # transformers' PaddingStrategy enum
    if value is True:
        strategy = "longest"
    elif value is False or value is None:
        strategy = "do_not_pad"
    elif isinstance(value, str) and value in PADDING_STRATEGIES:
        strategy = value
    else:
        raise InputError(
            f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', not {padding!r}",
            source="padding",
        )
    if strategy == "max_length" and max_length is None:
        raise InputError(
            "padding='max_length' needs max_length: pass max_length=<length>, or padding=True "
            "to pad to the longest example",
            source="max_length",
        )
    if max_length is not None and (not isinstance(max_length, (int, np.integer)) or max_length < 0):
        raise InputError(f"max_length must be a non-negative int, not {max_length!r}", source="max_length")
    if strategy != "do_not_pad" and padding_value is None:
        raise InputError(
            "padding needs a padding value, but padding_value is None; set "
            "extractor.padding_value = 0.0 (or pass padding=False)",
            source="padding_value",
        )
    return strategy


def _check_multiple(pad_to_multiple_of: int | None) -> None:
    if pad_to_multiple_of is not None and (
        not isinstance(pad_to_multiple_of, (int, np.integer)) or pad_to_multiple_of <= 0
    ):
        raise InputError(
            f"pad_to_multiple_of must be a positive int or None, not {pad_to_multiple_of!r}",
            source="pad_to_multiple_of",
        )
