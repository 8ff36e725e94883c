"""`SequenceFeatureExtractor.pad` against transformers' pad: every option combination."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from featx.audio.sequence import SequenceFeatureExtractor

sequence_utils = pytest.importorskip("transformers.feature_extraction_sequence_utils")

PADDINGS = [True, "longest", "max_length", False, "do_not_pad"]
MAX_LENGTHS = [None, 1, 4, 7, 13]
MULTIPLES = [None, 3, 8]
MASKS = [None, True, False]


class RefValues(sequence_utils.SequenceFeatureExtractor):
    model_input_names = ["input_values", "attention_mask"]


class RefFeatures(sequence_utils.SequenceFeatureExtractor):
    model_input_names = ["input_features"]


class Features(SequenceFeatureExtractor):
    model_input_names = ["input_features"]


def make_pair(feature_size: int, side: str, padding_value: float = 0.0, return_attention_mask: bool = True):
    kw = dict(
        feature_size=feature_size,
        sampling_rate=16000,
        padding_value=padding_value,
        padding_side=side,
        return_attention_mask=return_attention_mask,
    )
    if feature_size == 1:
        return SequenceFeatureExtractor(**kw), RefValues(**kw), "input_values"
    return Features(**kw), RefFeatures(**kw), "input_features"


def make_items(kind: str, lengths, feature_size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (lambda n: (n,)) if feature_size == 1 else (lambda n: (n, feature_size))
    base = [rng.standard_normal(shape(n)) for n in lengths]
    if kind == "np64":
        return base
    if kind == "np32":
        return [x.astype(np.float32) for x in base]
    if kind == "list":
        return [x.tolist() for x in base]
    if kind == "int":
        return [np.round(x * 100).astype(np.int64).tolist() for x in base]
    if kind == "torch":
        return [torch.from_numpy(x.astype(np.float32)) for x in base]
    raise AssertionError(kind)


def to_np(x):
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def assert_same(ours, ref):
    assert set(ours) == set(ref)
    for key in ref:
        r, o = ref[key], ours[key]
        if isinstance(r, np.ndarray) and r.dtype == object:  # the reference's ragged object array
            assert isinstance(o, np.ndarray) and o.dtype == object and o.shape == r.shape, key
            for oi, ri in zip(o, r):
                assert oi.dtype == ri.dtype and oi.shape == ri.shape
                np.testing.assert_allclose(oi, ri, atol=1e-6, rtol=0)
            continue
        assert type(o) is type(r), key
        o, r = to_np(o), to_np(r)
        assert o.dtype == r.dtype, (key, o.dtype, r.dtype)
        assert o.shape == r.shape, (key, o.shape, r.shape)
        np.testing.assert_allclose(o, r, atol=1e-6, rtol=0)


def key_of(extractor):
    return extractor.model_input_names[0]


def run_both(ours, ref, make_inputs, **kw):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = ref.pad(make_inputs(), **kw)
    except ValueError as exc:
        if "inhomogeneous" in str(exc) and kw.get("return_tensors") is None:
            # Ragged torch output: the reference cannot build one tensor; featx returns a list.
            got = ours.pad(make_inputs(), **kw)
            assert isinstance(got[key_of(ours)], list)
            assert all(isinstance(x, torch.Tensor) for x in got[key_of(ours)])
            return "ragged"
        with pytest.raises(ValueError):
            ours.pad(make_inputs(), **kw)
        return "error"
    assert_same(ours.pad(make_inputs(), **kw), expected)
    ragged = any(isinstance(v, np.ndarray) and v.dtype == object for v in expected.values())
    return "ragged" if ragged else "ok"


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("kind", ["np64", "np32", "list", "int", "torch"])
@pytest.mark.parametrize("feature_size", [1, 3])
def test_pad_matches_reference_for_every_option(side, kind, feature_size):
    ours, ref, key = make_pair(feature_size, side, padding_value=-0.5)
    outcomes = []
    for lengths in [(5, 9, 3, 1), (6, 6)]:
        items = make_items(kind, lengths, feature_size)
        for padding, max_length, truncation, multiple, mask in itertools.product(
            PADDINGS, MAX_LENGTHS, [False, True], MULTIPLES, MASKS
        ):
            outcomes.append(
                run_both(
                    ours,
                    ref,
                    lambda: {key: list(items)},
                    padding=padding,
                    max_length=max_length,
                    truncation=truncation,
                    pad_to_multiple_of=multiple,
                    return_attention_mask=mask,
                )
            )
    # The valid, the ragged (object arrays, as the reference) and the impossible combinations were exercised.
    assert outcomes.count("ok") > 300 and outcomes.count("error") > 50
    if kind != "torch":
        assert outcomes.count("ragged") > 50


@pytest.mark.parametrize("return_tensors", ["np", "pt"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_explicit_return_tensors(return_tensors, side):
    ours, ref, key = make_pair(1, side)
    items = make_items("np64", (4, 10, 7), 1)
    for padding, truncation, max_length, multiple in itertools.product(
        [True, "max_length"], [False, True], [8, 12], [None, 5]
    ):
        run_both(
            ours,
            ref,
            lambda: {key: list(items)},
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=multiple,
            return_tensors=return_tensors,
        )


@pytest.mark.parametrize("kind", ["np32", "list", "torch"])
def test_list_of_dicts_collate_with_extra_keys_and_given_mask(kind):
    ours, ref, key = make_pair(1, "right")
    items = make_items(kind, (3, 8, 5), 1)

    def inputs():
        return [
            {key: x, "attention_mask": [1] * (len(x) - 1) + [0], "labels": i}
            for i, x in enumerate(items)
        ]

    for padding, truncation, max_length in [(True, False, None), ("max_length", True, 6), (True, True, 4)]:
        run_both(ours, ref, inputs, padding=padding, truncation=truncation, max_length=max_length)


def test_batched_numpy_array_input():
    ours, ref, key = make_pair(1, "left")
    batch = np.random.default_rng(1).standard_normal((4, 10))
    for kw in [dict(), dict(padding="max_length", max_length=16), dict(truncation=True, max_length=6)]:
        run_both(ours, ref, lambda: {key: batch.copy()}, **kw)


def test_batchfeature_input_and_whisper_like_frames():
    from transformers import BatchFeature as RefBatch

    ours, ref, key = make_pair(80, "right")
    items = [np.random.default_rng(i).standard_normal((n, 1)).astype(np.float32) for i, n in enumerate((30, 50))]
    for kw in [dict(padding="max_length", max_length=64, truncation=True), dict(padding="longest")]:
        expected = ref.pad(RefBatch({key: list(items)}), **kw)
        assert_same(ours.pad({key: list(items)}, **kw), expected)


def test_mixed_dtypes_promote_like_the_reference():
    ours, ref, key = make_pair(1, "right", padding_value=0.75)
    items = [np.arange(3, dtype=np.int64), np.linspace(0, 1, 5)]
    run_both(ours, ref, lambda: {key: list(items)})


def test_empty_batch_returns_empty_mask():
    ours, ref, key = make_pair(1, "right")
    expected = ref.pad({key: []})
    got = ours.pad({key: []})
    assert got[key] == expected[key] == []
    assert got["attention_mask"] == expected["attention_mask"] == []


@pytest.mark.parametrize(
    "kw",
    [
        dict(padding="max_length"),
        dict(truncation=True),
        dict(padding="bogus"),
        dict(padding=True, truncation=True, max_length=None),
    ],
)
def test_impossible_combinations_raise_like_the_reference(kw):
    ours, ref, key = make_pair(1, "right")
    items = make_items("np32", (3, 5), 1)
    with pytest.raises(ValueError):
        ref.pad({key: list(items)}, **kw)
    with pytest.raises(ValueError):
        ours.pad({key: list(items)}, **kw)


def test_missing_padding_value_raises_like_the_reference():
    ours, ref, key = make_pair(1, "right")
    ours.padding_value = None
    ref.padding_value = None
    items = make_items("np32", (3, 5), 1)
    with pytest.raises(ValueError):
        ref.pad({key: list(items)})
    with pytest.raises(ValueError, match="padding_value"):
        ours.pad({key: list(items)})
    # Without padding the value is not needed, in both.
    assert_same(ours.pad({key: items[:1]}, padding=False), ref.pad({key: items[:1]}, padding=False))
