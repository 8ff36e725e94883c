"""`BatchFeature`: the dict every processor and extractor returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["BatchFeature", "TensorType"]

TensorType = str  # "np", "pt" or None; kept as plain strings like the reference accepts


def _is_torch(x: object) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch") and type(x).__name__ in ("Tensor", "Parameter")


def _holds_arrays(value: list[Any] | tuple[Any, ...]) -> bool:
    first = value[0] if value else None
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    return isinstance(first, np.ndarray) or _is_torch(first)


def _to_numpy(key: str, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value
    if _is_torch(value):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)) and value and all(_is_torch(v) for v in value):
        value = [v.detach().cpu().numpy() for v in value]
    try:
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
            shapes = {v.shape for v in value}
            if len(shapes) > 1:
                raise ValueError("ragged")
            return np.stack(value)
        arr = np.asarray(value)
        if arr.dtype == object:
            raise ValueError("ragged")
        return arr
    except ValueError as exc:
        raise InputError(
            f"cannot make one tensor of {key!r}: its items have different shapes; "
            "resize the images or pad the sequences (padding=True) so they share a shape, "
            "or use return_tensors=None to keep a list"
        ) from exc


def _to_torch(key: str, value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)) and not _holds_arrays(value):
        # Python numbers become torch's default dtypes (float32, int64), as in the reference.
        try:
            return torch.tensor(value)
        except (ValueError, TypeError):
            pass  # ragged: _to_numpy raises the error that says to pad
    arr = _to_numpy(key, value)
    return torch.from_numpy(np.ascontiguousarray(arr))


class BatchFeature(dict):
    """A dict of model inputs with attribute access and tensor conversion.

    ``convert_to_tensors("np" | "pt" | None)`` converts every value in place; ``to()`` moves torch
    tensors and casts only the floating ones, as the reference does.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        tensor_type: str | None = None,
    ) -> None:
        super().__init__(data or {})
        self.convert_to_tensors(tensor_type)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self) -> dict[str, Any]:
        return {"data": dict(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state["data"])

    @property
    def data(self) -> dict[str, Any]:
        """The plain dict view (the reference exposes ``.data``)."""
        return dict(self)

    def convert_to_tensors(self, tensor_type: str | None = None) -> BatchFeature:
        """Convert every value to NumPy arrays ("np") or torch tensors ("pt"); None leaves them."""
        if tensor_type is None:
            return self
        kind = getattr(tensor_type, "value", tensor_type)
        if kind == "np":
            convert = _to_numpy
        elif kind == "pt":
            convert = _to_torch
        else:
            raise InputError(f"return_tensors must be 'np', 'pt' or None, not {tensor_type!r}")
        for key in list(self.keys()):
            self[key] = convert(key, self[key])
        return self

    def to(self, *args: Any, **kwargs: Any) -> BatchFeature:
        """Move torch tensors to a device and cast the floating ones to a dtype.

        Accepts ``to(device)``, ``to(dtype)``, ``to(device, dtype)`` and the keywords ``device``,
        ``dtype``, ``non_blocking``. Integer and bool tensors keep their dtype.
        """
        import torch

        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        non_blocking = kwargs.pop("non_blocking", False)
        if kwargs:
            raise TypeError(f"unexpected arguments to BatchFeature.to: {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, torch.dtype):
                dtype = arg
            elif isinstance(arg, (str, torch.device, int)):
                device = arg
            else:
                raise TypeError(f"BatchFeature.to takes a device or a dtype, not {arg!r}")
        if dtype is not None and not (dtype.is_floating_point or dtype.is_complex):
            raise TypeError(f"BatchFeature.to casts floating tensors only; {dtype} is not floating")
        for key, value in self.items():
            if not isinstance(value, torch.Tensor):
                continue
            if dtype is not None and torch.is_floating_point(value):
                self[key] = value.to(device=device, dtype=dtype, non_blocking=non_blocking)
            elif device is not None:
                self[key] = value.to(device=device, non_blocking=non_blocking)
        return self
