import numpy as np
import pytest
import torch

import featx
from featx import BatchFeature, InputError


def test_attribute_access_and_missing_attribute():
    out = BatchFeature({"pixel_values": [[1.0, 2.0]]})
    assert out.pixel_values == [[1.0, 2.0]]
    with pytest.raises(AttributeError):
        out.missing


@pytest.mark.parametrize("kind", ["np", "pt"])
def test_convert_to_tensors(kind):
    out = BatchFeature({"x": [[1.0, 2.0], [3.0, 4.0]], "mask": [[1, 1], [1, 0]]}, tensor_type=kind)
    if kind == "np":
        assert isinstance(out["x"], np.ndarray) and out["x"].shape == (2, 2)
    else:
        assert isinstance(out["x"], torch.Tensor) and tuple(out["x"].shape) == (2, 2)
    np.testing.assert_array_equal(np.asarray(out["mask"]), [[1, 1], [1, 0]])


def test_list_of_arrays_is_stacked_and_torch_to_numpy():
    out = BatchFeature({"x": [np.zeros((3, 2, 2), np.float32)] * 4}, tensor_type="pt")
    assert out["x"].shape == (4, 3, 2, 2) and out["x"].dtype == torch.float32
    back = BatchFeature(dict(out)).convert_to_tensors("np")
    assert isinstance(back["x"], np.ndarray) and back["x"].dtype == np.float32


@pytest.mark.parametrize("kind", ["np", "pt"])
def test_ragged_data_says_to_pad(kind):
    ragged = {"pixel_values": [np.zeros((3, 4, 4)), np.zeros((3, 5, 4))]}
    with pytest.raises(InputError, match="pad"):
        BatchFeature(ragged, tensor_type=kind)


def test_unknown_tensor_type():
    with pytest.raises(InputError, match="return_tensors"):
        BatchFeature({"x": [1]}, tensor_type="tensorflow")


def test_to_casts_only_floating_tensors():
    out = BatchFeature(
        {
            "pixel_values": torch.ones(2, 3),
            "attention_mask": torch.ones(2, 3, dtype=torch.int32),
            "flags": torch.ones(2, dtype=torch.bool),
            "meta": [1, 2],
        }
    )
    out.to(torch.bfloat16)
    assert out["pixel_values"].dtype == torch.bfloat16
    assert out["attention_mask"].dtype == torch.int32
    assert out["flags"].dtype == torch.bool
    assert out["meta"] == [1, 2]
    out.to("cpu", torch.float16)
    assert out["pixel_values"].dtype == torch.float16 and out["pixel_values"].device.type == "cpu"
    out.to(device="cpu", dtype=torch.float32)
    assert out["pixel_values"].dtype == torch.float32


def test_pickles():
    import pickle

    out = BatchFeature({"x": np.arange(3)})
    again = pickle.loads(pickle.dumps(out))
    assert isinstance(again, BatchFeature)
    np.testing.assert_array_equal(again.x, np.arange(3))


def test_python_floats_become_float32_tensors_like_the_reference():
    out = BatchFeature({"scale": [[0.5], [1.0]], "ids": [[1, 2]], "f64": np.zeros(2)}, tensor_type="pt")
    assert out["scale"].dtype == torch.float32
    assert out["ids"].dtype == torch.int64
    assert out["f64"].dtype == torch.float64


# ---- parity with transformers' BatchFeature ------------------------------------------------------
transformers = pytest.importorskip("transformers")


def _batch(kind):
    return {
        "pixel_values": torch.ones(2, 3),
        "attention_mask": torch.ones(2, 3, dtype=torch.int32),
        "flags": torch.ones(2, dtype=torch.bool),
        "pieces": [torch.ones(2), torch.zeros(3, dtype=torch.int64)],
        "meta": "text",
    }


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((torch.float16,), {}),
        (("cpu",), {}),
        (("cpu", torch.float64), {}),
        ((torch.device("cpu"),), {"dtype": torch.bfloat16}),
        ((), {"device": "cpu", "dtype": torch.float16, "non_blocking": True}),
        ((), {"dtype": torch.float16}),
        ((torch.int64,), {}),  # forwarded: floating tensors become int64, as in the reference
        (("cpu", torch.float16), {"copy": True}),
    ],
)
def test_to_forwards_its_arguments_like_the_reference(args, kwargs):
    ours = BatchFeature(_batch("ours")).to(*args, **kwargs)
    ref = transformers.BatchFeature(_batch("ref")).to(*args, **kwargs)
    assert set(ours) == set(ref)
    for key in ref:
        o, r = ours[key], ref[key]
        if isinstance(r, torch.Tensor):
            assert o.dtype == r.dtype and o.device == r.device, key
            torch.testing.assert_close(o, r)
        elif isinstance(r, list):
            assert [t.dtype for t in o] == [t.dtype for t in r]
        else:
            assert o == r


def test_to_with_a_dtype_before_a_device_raises_like_tensor_to():
    with pytest.raises(TypeError) as expected:
        torch.ones(1).to(torch.float16, "cpu")
    out = BatchFeature({"x": torch.ones(2), "mask": torch.ones(2, dtype=torch.int64)})
    with pytest.raises(TypeError) as got:
        out.to(torch.float16, "cpu")
    assert str(got.value) == str(expected.value)
    assert out["x"].dtype == torch.float32  # nothing was changed
    with pytest.raises(TypeError):
        transformers.BatchFeature({"x": torch.ones(2)}).to(torch.float16, "cpu")
    with pytest.raises(ValueError):  # not a device or a dtype: refused, as the reference does
        out.to([1])


@pytest.mark.parametrize(
    "value",
    [
        [np.zeros(3, np.float32), np.zeros(5, np.float32)],
        [[1, 2, 3], [1, 2]],
        [np.zeros((3, 4)), np.zeros((5, 4))],
        [np.zeros((3, 4)), np.zeros((2, 5))],
        (np.zeros(3, np.int32), np.zeros(5, np.int32)),
        [np.zeros(3), np.zeros(3)],
        [[1.0, 2.0], [3.0, 4.0]],
        3.0,
    ],
)
def test_numpy_conversion_of_ragged_items_matches_the_reference(value):
    ours = BatchFeature({"x": value}, tensor_type="np")["x"]
    ref = transformers.BatchFeature({"x": value}, tensor_type="np")["x"]
    assert type(ours) is type(ref) and ours.dtype == ref.dtype and ours.shape == ref.shape
    if ref.dtype == object:
        for o, r in zip(ours, ref):
            assert o.dtype == r.dtype and o.shape == r.shape
            np.testing.assert_array_equal(o, r)
    else:
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize(
    "value",
    [
        [np.zeros((3, 4, 4)), np.zeros((3, 5, 4))],  # images of different sizes: the reference raises too
        [np.zeros((2, 3)), np.zeros((2, 4))],
        [[np.zeros(3)], [np.zeros(4)]],
    ],
)
def test_numpy_conversion_errors_where_the_reference_errors(value):
    with pytest.raises(ValueError):
        transformers.BatchFeature({"x": value}, tensor_type="np")
    with pytest.raises(InputError, match="different shapes"):
        BatchFeature({"x": value}, tensor_type="np")


@pytest.mark.parametrize("kind", ["pt", "jax"])
def test_ragged_items_are_an_error_for_tensor_frameworks(kind):
    with pytest.raises(InputError, match="return_tensors='np'"):
        BatchFeature({"x": [np.zeros(3), np.zeros(5)]}, tensor_type=kind)
    ragged_np = BatchFeature({"x": [np.zeros(3), np.zeros(5)]}, tensor_type="np")
    with pytest.raises(InputError):
        ragged_np.convert_to_tensors(kind)


def test_values_that_are_not_arrays_are_left_alone_and_keys_can_be_skipped():
    data = {"text": "abc", "names": ["a", "b"], "info": {"k": 1}, "none": None, "x": [[1, 2]], "keep": [[1, 2]]}
    for cls in (BatchFeature, transformers.BatchFeature):
        out = cls(dict(data), tensor_type="np", skip_tensor_conversion=["keep"])
        assert out["text"] == "abc" and out["names"] == ["a", "b"] and out["info"] == {"k": 1} and out["none"] is None
        assert isinstance(out["x"], np.ndarray) and out["keep"] == [[1, 2]]
    out = BatchFeature(dict(data)).convert_to_tensors("pt", skip_tensor_conversion={"x", "keep"})
    assert out["x"] == [[1, 2]]


def test_tensor_type_enum_and_the_reference_enum():
    from transformers.utils import TensorType as RefTensorType

    from featx import TensorType

    assert TensorType.PYTORCH == "pt" and TensorType.NUMPY == "np" and TensorType.JAX == "jax"
    assert TensorType.TENSORFLOW == "tf" and str(TensorType.NUMPY) == "np"
    assert isinstance(BatchFeature({"x": [1.0]}, tensor_type=TensorType.PYTORCH)["x"], torch.Tensor)
    assert isinstance(BatchFeature({"x": [1.0]}, tensor_type=RefTensorType.PYTORCH)["x"], torch.Tensor)
    assert isinstance(BatchFeature({"x": [1.0]}, tensor_type=RefTensorType.NUMPY)["x"], np.ndarray)


def test_jax_arrays_for_real():
    jax = pytest.importorskip("jax")
    data = {
        "input_values": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3),
        "attention_mask": np.array([[1, 1, 0], [1, 1, 1]], np.int32),
        "from_torch": torch.arange(4, dtype=torch.float32),
        "as_list": [[0.5, 1.5]],
        "stacked": [np.ones(2, np.float32), np.zeros(2, np.float32)],
    }
    out = BatchFeature(dict(data), tensor_type="jax")
    for key in data:
        assert isinstance(out[key], jax.Array), key
    assert out["input_values"].dtype == np.float32 and out["attention_mask"].dtype == np.int32
    assert out["from_torch"].dtype == np.float32 and out["as_list"].dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out["input_values"]), data["input_values"])
    np.testing.assert_array_equal(np.asarray(out["attention_mask"]), data["attention_mask"])
    np.testing.assert_array_equal(np.asarray(out["from_torch"]), np.arange(4))
    np.testing.assert_array_equal(np.asarray(out["stacked"]), [[1, 1], [0, 0]])
    assert out.convert_to_tensors("jax") is out  # already jax: unchanged
    back = BatchFeature(dict(out), tensor_type="np")
    assert isinstance(back["input_values"], np.ndarray) and back["input_values"].dtype == np.float32


def test_missing_frameworks_name_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "jax", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "jax.numpy", None)
    with pytest.raises(featx.DependencyError, match=r"pip install 'featx\[jax\]'.*pip install -e '\.\[jax\]'"):
        BatchFeature({"x": [1.0]}, tensor_type="jax")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(featx.DependencyError, match="TensorFlow is not installed"):
        BatchFeature({"x": [1.0]}, tensor_type="tf")


def test_tensorflow_conversion_with_a_stand_in_module(monkeypatch):
    import sys
    import types

    class FakeTensor:
        def __init__(self, array):
            self.array = array

    FakeTensor.__module__ = "tensorflow.fake"
    tf = types.ModuleType("tensorflow")
    tf.constant = lambda value: FakeTensor(np.asarray(value))
    tf.is_tensor = lambda value: isinstance(value, FakeTensor)
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    out = BatchFeature({"x": [np.ones(2, np.float32)] * 3}, tensor_type=featx.TensorType.TENSORFLOW)
    assert isinstance(out["x"], FakeTensor) and out["x"].array.shape == (3, 2)
    with pytest.raises(InputError):
        BatchFeature({"x": [np.ones(2), np.ones(3)]}, tensor_type="tf")
