"""`BatchFeature`: the dict every processor and extractor returns, and `TensorType`.

Conversion follows ``transformers`` 5.x: ``"np"`` stacks equal-shape items and turns items whose
first axes differ into a NumPy object array of per-item arrays (the reference's ragged result);
``"pt"``, ``"jax"`` and ``"tf"`` need one rectangular tensor and raise `InputError` otherwise.
Values that are not array-like (strings, dicts, None) are left as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .errors import DependencyError, InputError

__all__ = ["BatchFeature", "TensorType"]


class TensorType(str, enum.Enum):
    """The ``return_tensors`` values; plain strings (``"pt"``, ...) and transformers' enum work too."""

    PYTORCH = "pt"
    NUMPY = "np"
    JAX = "jax"
    TENSORFLOW = "tf"

    def __str__(self) -> str:
        return str(self.value)


_KINDS = tuple(t.value for t in TensorType)


def tensor_kind(tensor_type: Any) -> str | None:
    """``"pt"``, ``"np"``, ``"jax"`` or ``"tf"`` for any accepted spelling; None stays None."""
    if tensor_type is None:
        return None
    value = getattr(tensor_type, "value", tensor_type)  # featx's or transformers' TensorType
    if isinstance(value, str) and value in _KINDS:
        return value
    raise InputError(
        f"return_tensors must be 'pt', 'np', 'jax', 'tf' or None, not {tensor_type!r}", source="return_tensors"
    )


def _is_torch(x: object) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch") and type(x).__name__ in ("Tensor", "Parameter")


def _is_array_like(value: Any) -> bool:
    """The reference's test of what gets converted: arrays, tensors, numbers and (nested) lists of them."""
    if isinstance(value, (np.ndarray, np.number, int, float, bool)) or _is_torch(value):
        return True
    if isinstance(value, (list, tuple)):
        return len(value) == 0 or _is_array_like(value[0])
    return hasattr(value, "__array__") and not isinstance(value, (str, bytes, Mapping))


def _item_to_numpy(x: Any) -> np.ndarray:
    if _is_torch(x):
        x = x.detach().cpu()
        return (x.float() if str(x.dtype) == "torch.bfloat16" else x).numpy()  # NumPy has no bfloat16
    return np.asarray(x)


def _ragged_error(key: str, kind: str, shapes: Iterable[tuple[int, ...]]) -> InputError:
    shown = sorted(set(shapes))[:4]
    hint = "or return_tensors='np' (an object array of per-item arrays) or None (a list)" if kind != "np" else (
        "or return_tensors=None to keep a list"
    )
    return InputError(
        f"cannot make one {kind!r} tensor of {key!r}: its items have different shapes {shown}; pad the "
        "sequences (padding=True, or padding='max_length' with max_length=...) or resize the images so "
        f"they share a shape, {hint}",
        source=key,
    )


def _to_numpy(key: str, value: Any, kind: str = "np") -> np.ndarray:
    """NumPy conversion; items whose first axes differ give an object array (only for ``kind="np"``)."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    if _is_torch(value):
        return _item_to_numpy(value)
    if isinstance(value, np.ndarray):  # an object array: a ragged result being converted again
        if kind == "np":
            return value
        value = list(value)
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (int, float, bool, np.number)):
        items = [_item_to_numpy(v) for v in value]
        shapes = [x.shape for x in items]
        if len(set(shapes)) == 1:
            return np.stack(items)
        if kind == "np" and all(x.ndim >= 1 for x in items) and len({s[0] for s in shapes}) > 1:
            out = np.empty(len(items), dtype=object)  # the reference's ragged object array
            for i, x in enumerate(items):
                out[i] = x
            return out
        raise _ragged_error(key, kind, shapes)
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise _ragged_error(key, kind, []) from exc
    if arr.dtype == object:
        raise _ragged_error(key, kind, [])
    return arr


def _to_torch(key: str, value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        if len({tuple(v.shape) for v in value}) > 1:
            raise _ragged_error(key, "pt", [tuple(v.shape) for v in value])
        return torch.stack(list(value))
    if isinstance(value, (list, tuple)) and not _holds_arrays(value):
        # Python numbers become torch's default dtypes (float32, int64), as in the reference.
        try:
            return torch.tensor(value)
        except (ValueError, TypeError, RuntimeError):
            pass  # ragged: _to_numpy raises the error that says to pad
    return torch.from_numpy(np.ascontiguousarray(_to_numpy(key, value, "pt")))


def _holds_arrays(value: list[Any] | tuple[Any, ...]) -> bool:
    first = value[0] if value else None
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    return isinstance(first, np.ndarray) or _is_torch(first) or hasattr(first, "__array__")


def _to_jax(key: str, value: Any) -> Any:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise DependencyError(
            "jax is not installed, but return_tensors='jax' needs it; install it with "
            "pip install 'featx[jax]' (or, from a checkout, pip install -e '.[jax]')"
        ) from exc
    if isinstance(value, jax.Array):
        return value
    return jnp.asarray(_to_numpy(key, value, "jax"))


def _to_tf(key: str, value: Any) -> Any:
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise DependencyError(
            "TensorFlow is not installed, but return_tensors='tf' needs it; install it with pip install tensorflow"
        ) from exc
    if tf.is_tensor(value):
        return value
    return tf.constant(_to_numpy(key, value, "tf"))


def _converter(kind: str) -> tuple[Callable[[Any], bool], Callable[[str, Any], Any]]:
    if kind == "np":
        return (lambda v: isinstance(v, np.ndarray)), _to_numpy
    if kind == "pt":
        return _is_torch, _to_torch
    if kind == "jax":
        return (lambda v: type(v).__module__.startswith(("jax", "jaxlib"))), _to_jax
    return (lambda v: type(v).__module__.startswith("tensorflow")), _to_tf


class BatchFeature(dict):
    """A dict of model inputs with attribute access and tensor conversion.

    ``convert_to_tensors("np" | "pt" | "jax" | "tf" | None)`` converts every array-like value in
    place (keys in ``skip_tensor_conversion`` are left alone); ``to()`` forwards its arguments to
    ``Tensor.to`` for floating tensors and only moves the others, as the reference does.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        tensor_type: str | TensorType | None = None,
        skip_tensor_conversion: Iterable[str] | None = None,
    ) -> None:
        super().__init__(data or {})
        self.skip_tensor_conversion = skip_tensor_conversion
        self.convert_to_tensors(tensor_type)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self) -> dict[str, Any]:
        return {"data": dict(self), "skip_tensor_conversion": self.__dict__.get("skip_tensor_conversion")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state["data"])
        self.skip_tensor_conversion = state.get("skip_tensor_conversion")

    @property
    def data(self) -> dict[str, Any]:
        """The plain dict view (the reference exposes ``.data``)."""
        return dict(self)

    def convert_to_tensors(
        self,
        tensor_type: str | TensorType | None = None,
        skip_tensor_conversion: Iterable[str] | None = None,
    ) -> BatchFeature:
        """Convert every array-like value to ``tensor_type``; None leaves them as they are."""
        kind = tensor_kind(tensor_type)
        if kind is None:
            return self
        is_done, convert = _converter(kind)
        skip = skip_tensor_conversion if skip_tensor_conversion is not None else self.__dict__.get(
            "skip_tensor_conversion"
        )
        skip = set(skip or ())
        for key in list(self.keys()):
            value = self[key]
            if key in skip or not _is_array_like(value) or is_done(value):
                continue
            self[key] = convert(key, value)
        return self

    def to(self, *args: Any, **kwargs: Any) -> BatchFeature:
        """Call ``tensor.to(*args, **kwargs)`` on the floating tensors; move the others.

        The first positional argument must be a device (str, int, ``torch.device``) or a dtype;
        other orders are passed on, so ``to(torch.float16, "cpu")`` raises as ``Tensor.to``
        does. Integer and bool tensors (masks, ids) keep their dtype. Lists of tensors are walked.
        """
        import torch

        device = kwargs.get("device")
        non_blocking = kwargs.get("non_blocking", False)
        if device is None and args:
            first = args[0]
            if isinstance(first, torch.dtype):
                pass
            elif isinstance(first, (str, torch.device, int)) and not isinstance(first, bool):
                device = first
            else:
                raise InputError(
                    f"BatchFeature.to takes a device (str, int or torch.device) or a dtype first, not {first!r}",
                    source="to",
                )

        def move(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                if torch.is_floating_point(value):
                    return value.to(*args, **kwargs)
                if device is not None:
                    return value.to(device=device, non_blocking=non_blocking)
                return value
            if isinstance(value, (list, tuple)):
                return type(value)(move(v) for v in value)
            return value

        moved = {key: move(value) for key, value in self.items()}  # all or nothing if one raises
        self.update(moved)
        return self
