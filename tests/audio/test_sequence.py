"""`SequenceFeatureExtractor`: errors, input conversion and options (parity lives in *_parity.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from featx.audio.sequence import SequenceFeatureExtractor
from featx.errors import InputError


@pytest.fixture
def fe() -> SequenceFeatureExtractor:
    return SequenceFeatureExtractor()


def test_defaults_and_config_round_trip(tmp_path):
    fe = SequenceFeatureExtractor(feature_size=2, sampling_rate=8000, padding_value=-1.0, padding_side="left")
    fe.save_pretrained(tmp_path)
    back = SequenceFeatureExtractor.from_pretrained(tmp_path)
    assert back.to_dict() == fe.to_dict()
    d = SequenceFeatureExtractor().to_dict()
    assert d["feature_extractor_type"] == "SequenceFeatureExtractor"
    assert {k: d[k] for k in ("feature_size", "sampling_rate", "padding_value", "return_attention_mask", "padding_side")} == {
        "feature_size": 1,
        "sampling_rate": 16000,
        "padding_value": 0.0,
        "return_attention_mask": True,
        "padding_side": "right",
    }


def test_pad_values_masks_and_sides(fe):
    out = fe.pad({"input_values": [[1.0, 2.0], [3.0]]}, padding="max_length", max_length=4)
    np.testing.assert_array_equal(out["input_values"], [[1, 2, 0, 0], [3, 0, 0, 0]])
    np.testing.assert_array_equal(out["attention_mask"], [[1, 1, 0, 0], [1, 0, 0, 0]])
    assert out["input_values"].dtype == np.float32 and out["attention_mask"].dtype == np.int32
    fe.padding_side = "left"
    fe.padding_value = 9.0
    out = fe.pad({"input_values": [[1.0, 2.0], [3.0]]})
    np.testing.assert_array_equal(out["input_values"], [[1, 2], [9, 3]])
    np.testing.assert_array_equal(out["attention_mask"], [[1, 1], [0, 1]])


def test_pad_to_multiple_rounds_up_before_truncating(fe):
    out = fe.pad({"input_values": [np.ones(20)]}, truncation=True, max_length=10, pad_to_multiple_of=8)
    assert out["input_values"].shape == (1, 16)  # 10 rounded up to 16, then truncated to 16
    out = fe.pad({"input_values": [np.ones(3), np.ones(5)]}, pad_to_multiple_of=4)
    assert out["input_values"].shape == (2, 8)


def test_multidim_features_pad_first_axis_only():
    fe = SequenceFeatureExtractor(feature_size=4, padding_value=-2.0)
    fe.model_input_names = ["input_features"]
    frames = [np.ones((3, 4), np.float32), np.ones((5, 4), np.float32)]
    out = fe.pad({"input_features": frames}, return_tensors="pt")
    assert isinstance(out["input_features"], torch.Tensor)
    assert tuple(out["input_features"].shape) == (2, 5, 4)
    assert torch.all(out["input_features"][0, 3:] == -2.0)
    with pytest.raises(InputError, match="feature shapes"):
        fe.pad({"input_features": [np.ones((3, 4)), np.ones((3, 5))]})


def test_torch_bfloat16_items_are_padded_as_float32(fe):
    out = fe.pad({"input_values": [torch.ones(3, dtype=torch.bfloat16), torch.ones(2, dtype=torch.bfloat16)]})
    assert out["input_values"].dtype == torch.float32
    assert out["input_values"].shape == (2, 3)


def test_ragged_output_without_padding(fe):
    # As the reference: NumPy output is an object array of per-example arrays.
    for return_tensors in (None, "np"):
        out = fe.pad({"input_values": [np.ones(3), np.ones(5)]}, padding=False, return_tensors=return_tensors)
        values = out["input_values"]
        assert isinstance(values, np.ndarray) and values.dtype == object and values.shape == (2,)
        assert [x.shape for x in values] == [(3,), (5,)]
        assert all(x.dtype == np.float32 for x in values)
        assert [m.dtype for m in out["attention_mask"]] == [np.int32, np.int32]
    for return_tensors in ("pt", "jax"):
        with pytest.raises(InputError, match="padding=True"):
            fe.pad({"input_values": [np.ones(3), np.ones(5)]}, padding=False, return_tensors=return_tensors)
    # Torch items without return_tensors: a list of tensors (the reference cannot stack them).
    out = fe.pad({"input_values": [torch.ones(3), torch.ones(5)]}, padding=False)
    assert isinstance(out["input_values"], list) and [tuple(x.shape) for x in out["input_values"]] == [(3,), (5,)]
    # Longer than max_length without truncation: not cut, so the batch stays ragged.
    out = fe.pad({"input_values": [np.ones(3), np.ones(9)]}, padding="max_length", max_length=6)
    assert [x.shape for x in out["input_values"]] == [(6,), (9,)]


@pytest.mark.parametrize(
    "inputs, kw, match",
    [
        ({"input_values": [[1.0, 2.0]]}, dict(padding="max_length"), "max_length=<length>"),
        ({"input_values": [[1.0, 2.0]]}, dict(truncation=True), "max_length"),
        ({"input_values": [[1.0, 2.0]]}, dict(padding="middle"), "'longest', 'max_length'"),
        ({"input_values": [[1.0, 2.0]]}, dict(pad_to_multiple_of=0), "positive int"),
        ({"input_values": [[1.0, 2.0]]}, dict(padding="max_length", max_length=-1), "non-negative"),
        ({"audio": [[1.0]]}, {}, "'input_values'"),
        ({"input_values": [1.0, 2.0]}, {}, "wrap it in a list"),
        ({"input_values": [[1.0], [2.0]], "labels": [1]}, {}, "batch sizes"),
        ([], {}, "empty list"),
        ([{"input_values": [1.0]}, {"other": [1.0]}], {}, "same keys"),
        ("input_values", {}, "dict"),
    ],
)
def test_pad_errors_say_what_to_pass(fe, inputs, kw, match):
    with pytest.raises(InputError, match=match):
        fe.pad(inputs, **kw)


def test_invalid_padding_side(fe):
    fe.padding_side = "center"
    with pytest.raises(InputError, match="'right' or 'left'"):
        fe.pad({"input_values": [[1.0], [1.0, 2.0]]})


def test_check_sampling_rate(fe):
    fe._check_sampling_rate(16000)
    with pytest.raises(InputError, match=r"resample.*load_audio\(src, sampling_rate=16000\)"):
        fe._check_sampling_rate(44100)
    with pytest.warns(UserWarning, match="sampling_rate"):
        fe._check_sampling_rate(None)


def test_as_batch_accepts_the_usual_layouts(fe):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value, batched, lengths in [
            ([0.1, 0.2, 0.3], False, [3]),
            (np.zeros(5), False, [5]),
            (np.zeros((2, 7)), True, [7, 7]),
            (np.zeros((1, 3)), True, [3]),
            ([np.zeros(4), np.zeros(6, np.int16)], True, [4, 6]),
            ([[0.0, 1.0], [2.0]], True, [2, 1]),
            (torch.zeros(9), False, [9]),
            (torch.zeros(2, 9, dtype=torch.float16), True, [9, 9]),
            ([torch.zeros(3), torch.zeros(2)], True, [3, 2]),
        ]:
            waves, is_batched = fe._as_batch(value)
            assert is_batched is batched
            assert [len(w) for w in waves] == lengths
            assert all(w.dtype == np.float32 and w.ndim == 1 and w.flags.c_contiguous for w in waves)
    # Integers are cast without scaling, as the reference does.
    waves, _ = fe._as_batch(np.array([1000, -2], dtype=np.int16))
    np.testing.assert_array_equal(waves[0], [1000.0, -2.0])


@pytest.mark.parametrize(
    "value, match",
    [
        (np.zeros((16000, 2)), "looks like \\(samples, channels\\)"),
        (np.zeros((16000, 1)), "looks like \\(samples, channels\\)"),
        (np.zeros((2, 3, 4)), "mono"),
        ([np.zeros((5, 2))], "mono and 1-D"),
        ([], "empty"),
        ("clip.wav", "load_audio"),
        (b"RIFF", "load_audio"),
        (np.array(["a", "b"]), "real numbers"),
        ([np.zeros(3), 1.0], "scalar"),
        (3.0, "NumPy array"),
    ],
)
def test_as_batch_refuses_ambiguous_or_wrong_input(fe, value, match):
    with pytest.raises(InputError, match=match) as info:
        fe._as_batch(value)
    assert "raw_speech" in str(info.value)
