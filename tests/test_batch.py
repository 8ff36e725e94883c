import numpy as np
import pytest
import torch

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
        BatchFeature({"x": [1]}, tensor_type="tf")


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
    with pytest.raises(TypeError):
        out.to(torch.int64)


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
