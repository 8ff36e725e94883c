"""The checks transformers' own feature-extractor test mixins make, run on featx beside the reference.

Mirrors tests/test_feature_extraction_common.py, tests/test_sequence_feature_extraction_common.py
and the Whisper / AST / Wav2Vec2 feature-extraction tests of transformers: save/load round trips,
init without parameters, the padding and truncation grids of ``pad``, attention masks,
double-precision padding, calls with lists / NumPy / torch, batched against unbatched, and the
ragged NumPy results. Every call is made on both classes and the outputs compared.
"""

from __future__ import annotations

import copy
import json
import random
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

import featx
from featx import BatchFeature
from featx.errors import InputError

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
from transformers.testing_utils import check_json_file_has_correct_format  # noqa: E402


def floats_list(shape: tuple[int, int], rng: random.Random, scale: float = 1.0) -> list[list[float]]:
    return [[rng.random() * scale for _ in range(shape[1])] for _ in range(shape[0])]


@dataclass
class ExtractorTester:
    """transformers' per-model tester: the options and the inputs its mixin tests use."""

    name: str
    options: dict[str, Any]
    feature_size: int
    flat: bool  # AST/Wav2Vec2 examples are flat lists; Whisper's are (length, feature_size)
    batch_size: int = 7
    min_seq_length: int = 400
    max_seq_length: int = 2000
    seed: int = field(default=0)

    @property
    def seq_length_diff(self) -> int:
        return (self.max_seq_length - self.min_seq_length) // (self.batch_size - 1)

    def inputs(self, equal_length: bool = False, numpify: bool = False) -> list:
        rng = random.Random(self.seed)
        if equal_length and self.flat:
            speech = floats_list((self.batch_size, self.max_seq_length), rng)
        elif equal_length:
            speech = [floats_list((self.max_seq_length, self.feature_size), rng) for _ in range(self.batch_size)]
        else:
            lengths = range(self.min_seq_length, self.max_seq_length, self.seq_length_diff)
            speech = [floats_list((n, self.feature_size), rng) for n in lengths]
            if self.flat:
                speech = [[v for row in x for v in row] for x in speech]
        return [np.asarray(x) for x in speech] if numpify else speech

    def pair(self, **overrides: Any) -> tuple[Any, Any]:
        options = {**self.options, **overrides}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(featx, self.name)(**options), getattr(transformers, self.name)(**options)


TESTERS = {
    "whisper": ExtractorTester(
        "WhisperFeatureExtractor",
        {"feature_size": 10, "hop_length": 160, "chunk_length": 8, "padding_value": 0.0, "sampling_rate": 4000,
         "return_attention_mask": False, "do_normalize": True},
        feature_size=10,
        flat=False,
    ),
    "ast": ExtractorTester(
        "ASTFeatureExtractor",
        {"feature_size": 1, "padding_value": 0.0, "sampling_rate": 16000, "return_attention_mask": True,
         "do_normalize": True},
        feature_size=1,
        flat=True,
    ),
    "wav2vec2": ExtractorTester(
        "Wav2Vec2FeatureExtractor",
        {"feature_size": 1, "padding_value": 0.0, "sampling_rate": 16000, "return_attention_mask": True,
         "do_normalize": True},
        feature_size=1,
        flat=True,
    ),
}


@pytest.fixture(params=sorted(TESTERS))
def tester(request: pytest.FixtureRequest) -> ExtractorTester:
    return TESTERS[request.param]


def _np(x: Any) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def assert_same(ours: Any, ref: Any, atol: float = 1e-6) -> None:
    """Same keys, containers, dtypes, shapes and (within atol) values; object arrays item by item."""
    assert set(ours.keys()) == set(ref.keys())
    for key in ref:
        o, r = ours[key], ref[key]
        assert type(o) is type(r), (key, type(o), type(r))
        if isinstance(r, np.ndarray) and r.dtype == object or isinstance(r, list):
            if isinstance(r, np.ndarray):
                assert o.dtype == object and o.shape == r.shape, key
            assert len(o) == len(r), key
            pairs = list(zip(o, r))
        else:
            pairs = [(o, r)]
        for oi, ri in pairs:
            oi, ri = _np(oi), _np(ri)
            assert oi.dtype == ri.dtype and oi.shape == ri.shape, (key, oi.dtype, ri.dtype, oi.shape, ri.shape)
            np.testing.assert_allclose(oi, ri, atol=atol, rtol=0)


def equal_lengths(items: Any) -> bool:
    return len({len(x) for x in items}) == 1


def all_close(a: Any, b: Any) -> bool:
    return len(a) == len(b) and all(np.allclose(np.asarray(x), np.asarray(y), atol=1e-3) for x, y in zip(a, b))


# ---- FeatureExtractionSavingTestMixin --------------------------------------------------------------
def test_to_json_string(tester):
    ours, ref = tester.pair()
    obj = json.loads(ours.to_json_string())
    for key, value in tester.options.items():
        assert obj[key] == value
    assert obj == json.loads(ref.to_json_string())


def test_to_json_file_and_from_json_file(tester, tmp_path):
    ours, ref = tester.pair()
    ours.to_json_file(tmp_path / "feat_extract.json")
    again = type(ours).from_json_file(tmp_path / "feat_extract.json")
    assert again.to_dict() == ours.to_dict()
    # the reference reads featx's file into the same options, and the reverse
    assert type(ref).from_json_file(tmp_path / "feat_extract.json").to_dict() == ref.to_dict()
    ref.to_json_file(tmp_path / "ref.json")
    assert type(ours).from_json_file(tmp_path / "ref.json").to_dict() == ours.to_dict()
    if hasattr(ref, "mel_filters"):
        np.testing.assert_allclose(again.mel_filters, ref.mel_filters, atol=1e-12)


def test_save_and_from_pretrained(tester, tmp_path):
    ours, ref = tester.pair()
    saved = ours.save_pretrained(tmp_path / "ours")[0]
    check_json_file_has_correct_format(saved)
    again = type(ours).from_pretrained(tmp_path / "ours")
    assert again.to_dict() == ours.to_dict()
    assert type(ref).from_pretrained(tmp_path / "ours").to_dict() == ref.to_dict()
    ref.save_pretrained(tmp_path / "ref")
    assert type(ours).from_pretrained(tmp_path / "ref").to_dict() == ours.to_dict()
    assert (tmp_path / "ours" / "preprocessor_config.json").read_text() == (
        tmp_path / "ref" / "preprocessor_config.json"
    ).read_text()


def test_init_without_params(tester):
    assert getattr(featx, tester.name)() is not None
    assert getattr(featx, tester.name)().to_dict() == getattr(transformers, tester.name)().to_dict()


def test_from_pretrained_kwargs_override(tmp_path):
    ours, ref = TESTERS["whisper"].pair()
    ours.save_pretrained(tmp_path)
    second = type(ours).from_pretrained(tmp_path, feature_size=2 * ours.feature_size)
    ref_second = type(ref).from_pretrained(tmp_path, feature_size=2 * ref.feature_size)
    assert second.mel_filters.shape == ref_second.mel_filters.shape == (201, 20)
    np.testing.assert_allclose(second.mel_filters, ref_second.mel_filters, atol=1e-12)


# ---- SequenceFeatureExtractionTestMixin ------------------------------------------------------------
def test_common_properties(tester):
    ours, ref = tester.pair()
    for name in ("feature_size", "sampling_rate", "padding_value", "padding_side", "return_attention_mask",
                 "model_input_names"):
        assert getattr(ours, name) == getattr(ref, name), name


def test_public_attributes_of_the_reference_exist(tester):
    ours, ref = tester.pair()
    missing = {a for a in dir(ref) if not a.startswith("_")} - {a for a in dir(ours) if not a.startswith("_")}
    assert not missing


def test_batch_feature(tester):
    ours, _ = tester.pair()
    key = ours.model_input_names[0]
    speech = tester.inputs()
    processed = BatchFeature({key: speech})
    assert all(len(x) == len(y) for x, y in zip(speech, processed[key]))
    speech = tester.inputs(equal_length=True)
    for kind in ("np", "pt"):
        values = BatchFeature({key: speech}, tensor_type=kind)[key]
        if len(values.shape) < 3:
            values = values[:, :, None]
        assert tuple(values.shape) == (tester.batch_size, len(speech[0]), tester.feature_size)


def _pad_both(ours: Any, ref: Any, make: Any, **kw: Any) -> Any:
    key = ours.model_input_names[0]
    expected = ref.pad(transformers.BatchFeature({key: make()}), **kw)
    got = ours.pad(BatchFeature({key: make()}), **kw)
    assert_same(got, expected, atol=1e-6)
    return got[key]


@pytest.mark.parametrize("numpify", [False, True])
def test_padding(tester, numpify):
    ours, ref = tester.pair()
    key = ours.model_input_names[0]
    speech = tester.inputs(numpify=numpify)

    def make() -> list:
        return copy.deepcopy(speech)  # the reference's pad converts its input in place

    pad_diff = tester.seq_length_diff
    pad_max_length = tester.max_seq_length + pad_diff
    pad_min_length = tester.min_seq_length
    input_1 = _pad_both(ours, ref, make, padding=False)
    input_2 = _pad_both(ours, ref, make, padding="longest")
    input_3 = _pad_both(ours, ref, make, padding="max_length", max_length=len(speech[-1]))
    input_4 = _pad_both(ours, ref, make, padding="longest", return_tensors="np")
    with pytest.raises(ValueError):
        ours.pad(BatchFeature({key: make()}), padding="max_length")
    input_5 = _pad_both(ours, ref, make, padding="max_length", max_length=pad_max_length, return_tensors="np")
    assert not equal_lengths(input_1)
    assert isinstance(input_1, np.ndarray) and input_1.dtype == object  # the reference's ragged result
    assert equal_lengths(input_2) and equal_lengths(input_3) and all_close(input_2, input_3)
    assert len(input_1[0]) == pad_min_length and len(input_1[1]) == pad_min_length + pad_diff
    assert input_4.shape[:2] == (tester.batch_size, len(input_3[0]))
    assert input_5.shape[:2] == (tester.batch_size, pad_max_length)
    if tester.feature_size > 1:
        assert input_4.shape[2] == input_5.shape[2] == tester.feature_size

    input_6 = _pad_both(ours, ref, make, pad_to_multiple_of=10)
    input_7 = _pad_both(ours, ref, make, padding="longest", pad_to_multiple_of=10)
    input_8 = _pad_both(ours, ref, make, padding="max_length", pad_to_multiple_of=10, max_length=pad_max_length)
    input_9 = _pad_both(ours, ref, make, padding="max_length", pad_to_multiple_of=10, max_length=pad_max_length,
                        return_tensors="np")
    assert all(len(x) % 10 == 0 for x in input_6) and all_close(input_6, input_7)
    expected_mult = pad_max_length if pad_max_length % 10 == 0 else (pad_max_length // 10 + 1) * 10
    assert all(len(x) == expected_mult for x in input_8)
    assert input_9.shape[:2] == (tester.batch_size, expected_mult)
    padding_vector_sum = (np.ones(tester.feature_size) * ours.padding_value).sum()
    tail = np.asarray(input_2[0])[pad_min_length:].sum()
    assert abs(tail - padding_vector_sum * (pad_max_length - pad_min_length)) < 1e-3
    assert abs(input_5[0, pad_min_length:].sum() - padding_vector_sum * (pad_max_length - pad_min_length)) < 1e-3
    assert abs(input_9[0, pad_min_length:].sum() - padding_vector_sum * (expected_mult - pad_min_length)) < 1e-3


@pytest.mark.parametrize("numpify", [False, True])
def test_truncation(tester, numpify):
    ours, ref = tester.pair()
    key = ours.model_input_names[0]
    speech = tester.inputs(numpify=numpify)

    def make() -> list:
        return copy.deepcopy(speech)

    first, second = len(speech[0]), len(speech[1])
    input_1 = _pad_both(ours, ref, make, padding="max_length", max_length=first, truncation=True)
    input_2 = _pad_both(ours, ref, make, padding="max_length", max_length=first)
    assert equal_lengths(input_1) and not equal_lengths(input_2)
    input_3 = _pad_both(ours, ref, make, padding="max_length", max_length=first, return_tensors="np", truncation=True)
    input_4 = _pad_both(ours, ref, make, padding="max_length", max_length=first, return_tensors="np")
    assert equal_lengths(input_3) and input_3.shape[1] == first
    assert not equal_lengths(input_4) and input_4.dtype == object  # not cut: ragged, an object array
    input_5 = _pad_both(ours, ref, make, padding="max_length", max_length=second, truncation=True, return_tensors="np")
    input_6 = _pad_both(ours, ref, make, padding="max_length", max_length=second, truncation=True)
    input_7 = _pad_both(ours, ref, make, padding="max_length", max_length=second, return_tensors="np")
    assert input_5.shape[1] == second and equal_lengths(input_5) and equal_lengths(input_6)
    assert all_close(input_5, input_6)
    assert not equal_lengths(input_7) and len(input_7[-1]) == len(speech[-1])
    for kw in (dict(truncation=True), dict(padding="longest", truncation=True),
               dict(padding="max_length", truncation=True)):
        with pytest.raises(ValueError):
            ref.pad(transformers.BatchFeature({key: make()}), **kw)
        with pytest.raises(InputError):
            ours.pad(BatchFeature({key: make()}), **kw)
    input_8 = _pad_both(ours, ref, make, padding="max_length", max_length=first, pad_to_multiple_of=12, truncation=True)
    input_9 = _pad_both(ours, ref, make, padding="max_length", max_length=first, pad_to_multiple_of=12)
    expected = first if first % 12 == 0 else (first // 12 + 1) * 12
    assert len(input_8[0]) == expected and equal_lengths(input_8) and not equal_lengths(input_9)


def test_padding_accepts_tensors_pt(tester):
    ours, ref = tester.pair()
    key = ours.model_input_names[0]
    speech = tester.inputs()
    as_np = ours.pad(BatchFeature({key: speech}), padding="longest", return_tensors="np")[key]
    as_pt = ours.pad(BatchFeature({key: speech}), padding="longest", return_tensors="pt")[key]
    assert abs(as_np.astype(np.float32).sum() - as_pt.numpy().astype(np.float32).sum()) < 1e-2
    torch_items = [torch.tensor(x, dtype=torch.float32) for x in speech]
    assert_same(ours.pad({key: torch_items}, padding="longest"), ref.pad({key: torch_items}, padding="longest"))


@pytest.mark.parametrize("truncate", [False, True])
def test_attention_mask(tester, truncate):
    ours, ref = tester.pair(return_attention_mask=True)
    key = ours.model_input_names[0]
    speech = tester.inputs()
    lengths = [len(x) for x in speech]
    kw = dict(padding="max_length", max_length=min(lengths), truncation=True) if truncate else dict(padding="longest")
    got = ours.pad(BatchFeature({key: speech}), return_tensors="np", **kw)
    assert_same(got, ref.pad(transformers.BatchFeature({key: speech}), return_tensors="np", **kw))
    assert "attention_mask" in got and got.attention_mask.dtype == np.int32
    if truncate:
        assert list(got.attention_mask.shape) == [got[key].shape[0], min(lengths)]
        assert got.attention_mask.sum(-1).tolist() == [min(lengths)] * len(speech)
    else:
        assert list(got.attention_mask.shape) == list(got[key].shape[:2])
        assert got.attention_mask.sum(-1).tolist() == lengths


def test_double_precision_pad(tester):
    ours, ref = tester.pair()
    key = ours.model_input_names[0]
    shape = (100, 32) if not tester.flat else (100,)
    values = np.random.default_rng(0).random(shape).astype(np.float64)
    for inputs in (values.tolist(), values):
        got_np = ours.pad([{key: inputs}], return_tensors="np")
        assert got_np[key].dtype == np.float32
        assert_same(got_np, ref.pad([{key: inputs}], return_tensors="np"))
        got_pt = ours.pad([{key: inputs}], return_tensors="pt")
        assert got_pt[key].dtype == torch.float32
        assert_same(got_pt, ref.pad([{key: inputs}], return_tensors="pt"))


# ---- the model tests: calls ------------------------------------------------------------------------
def _call_inputs(seed: int = 0) -> tuple[list[list[float]], list[np.ndarray]]:
    rng = random.Random(seed)
    speech = [floats_list((1, n), rng)[0] for n in range(800, 1400, 200)]
    return speech, [np.asarray(x) for x in speech]


@pytest.mark.parametrize("name", ["whisper", "ast", "wav2vec2"])
def test_call_lists_numpy_torch_batched_and_unbatched(name):
    tester = TESTERS[name]
    ours, ref = tester.pair()
    key = ours.model_input_names[0]
    sr = ours.sampling_rate
    speech, np_speech = _call_inputs()
    atol = 1e-4 if name == "whisper" else 1e-5  # the reference's torch and NumPy Whisper paths differ by ~1e-5
    kw: dict[str, Any] = {"padding": True} if name == "ast" else {}

    one_list = ours(speech[0], sampling_rate=sr, return_tensors="np")[key]
    one_np = ours(np_speech[0], sampling_rate=sr, return_tensors="np")[key]
    one_pt = ours(torch.from_numpy(np_speech[0]), sampling_rate=sr, return_tensors="np")[key]
    np.testing.assert_allclose(one_list, one_np, atol=1e-3)
    np.testing.assert_allclose(one_pt, one_np.astype(np.float32), atol=1e-5)
    np.testing.assert_allclose(one_np, ref(np_speech[0], sampling_rate=sr, return_tensors="np")[key], atol=atol)

    batch_list = ours(speech, sampling_rate=sr, return_tensors="np", **kw)[key]
    batch_np = ours(np_speech, sampling_rate=sr, return_tensors="np", **kw)[key]
    expected = ref(np_speech, sampling_rate=sr, return_tensors="np", **kw)[key]
    for a, b, e in zip(batch_list, batch_np, expected):
        np.testing.assert_allclose(a, b, atol=1e-3)
        np.testing.assert_allclose(b, e, atol=atol)
    if name != "wav2vec2":  # Wav2Vec2 without padding is ragged
        # batched equals unbatched, example by example
        for i, x in enumerate(np_speech):
            alone = ours(x, sampling_rate=sr, return_tensors="np", **kw)[key][0]
            np.testing.assert_allclose(batch_np[i], alone, atol=1e-5)

    equal = [floats_list((1, 800), random.Random(3))[0] for _ in range(3)]
    got_2d = ours(np.asarray(equal), sampling_rate=sr, return_tensors="np")[key]
    got_list = ours(equal, sampling_rate=sr, return_tensors="np")[key]
    np.testing.assert_allclose(got_2d, got_list, atol=1e-3)
    np.testing.assert_allclose(got_2d, ref(np.asarray(equal), sampling_rate=sr, return_tensors="np")[key], atol=atol)
    got_pt = ours(torch.tensor(equal, dtype=torch.float64), sampling_rate=sr, return_tensors="pt")[key]
    assert got_pt.dtype == torch.float32


def test_whisper_call_shapes_and_truncation():
    ours, ref = TESTERS["whisper"].pair()
    sr = ours.sampling_rate
    _, np_speech = _call_inputs()
    features = ours(np_speech, padding="max_length", sampling_rate=sr, return_tensors="np").input_features
    assert features.ndim == 3 and features.shape[-1] == ours.nb_max_frames and features.shape[-2] == ours.feature_size
    rng = random.Random(1)
    long = [np.asarray(floats_list((1, n), rng)[0]) for n in range(200, ours.n_samples + 500, 4000)]
    cut = [x[: ours.n_samples] for x in long]
    a = ours(long, sampling_rate=sr, return_tensors="np").input_features
    b = ours(cut, sampling_rate=sr, return_tensors="np").input_features
    np.testing.assert_allclose(a, b, atol=1e-3)
    np.testing.assert_allclose(a, ref(long, sampling_rate=sr, return_tensors="np").input_features, atol=1e-4)


@pytest.mark.parametrize("name", ["whisper", "ast", "wav2vec2"])
@pytest.mark.parametrize("return_tensors", ["np", "pt"])
def test_float64_and_list_input_give_float32(name, return_tensors):
    ours, ref = TESTERS[name].pair()
    key = ours.model_input_names[0]
    _, np_speech = _call_inputs()
    batch = [x.astype(np.float64) for x in np_speech]
    kw = {"padding": "longest"} if name == "wav2vec2" else {}
    got = ours(batch, sampling_rate=ours.sampling_rate, return_tensors=return_tensors, **kw)
    expected = ref(batch, sampling_rate=ours.sampling_rate, return_tensors=return_tensors, **kw)
    assert _np(got[key]).dtype == _np(expected[key]).dtype == np.float32
    assert tuple(got[key].shape) == tuple(expected[key].shape)


# ---- Wav2Vec2: zero-mean unit-variance -------------------------------------------------------------
def _check_zero_mean_unit_variance(x: np.ndarray) -> None:
    assert np.all(np.mean(x, axis=0) < 1e-3)
    assert np.all(np.abs(np.var(x, axis=0) - 1) < 1e-3)


@pytest.mark.parametrize("return_tensors", ["np", None])
def test_wav2vec2_zero_mean_unit_variance(return_tensors):
    ours, ref = TESTERS["wav2vec2"].pair()
    speech, _ = _call_inputs()
    for max_length, padding in zip([None, 1600, None], ["longest", "max_length", "do_not_pad"]):
        got = ours(speech, padding=padding, max_length=max_length, return_tensors=return_tensors, sampling_rate=16000)
        expected = ref(speech, padding=padding, max_length=max_length, return_tensors=return_tensors,
                       sampling_rate=16000)
        assert_same(got, expected, atol=1e-6)
        values = got.input_values
        _check_zero_mean_unit_variance(values[0][:800])
        _check_zero_mean_unit_variance(values[1][:1000])
        _check_zero_mean_unit_variance(values[2][:1200])
        if return_tensors == "np":
            assert values[0][800:].sum() < 1e-6
        if padding == "do_not_pad" and return_tensors == "np":
            assert values.dtype == object and [len(v) for v in values] == [800, 1000, 1200]


def test_wav2vec2_zero_mean_unit_variance_with_truncation():
    ours, ref = TESTERS["wav2vec2"].pair()
    speech, _ = _call_inputs()
    got = ours(speech, truncation=True, max_length=1000, padding="max_length", return_tensors="np", sampling_rate=16000)
    assert_same(got, ref(speech, truncation=True, max_length=1000, padding="max_length", return_tensors="np",
                         sampling_rate=16000))
    _check_zero_mean_unit_variance(got.input_values[0, :800])
    _check_zero_mean_unit_variance(got.input_values[1])
    _check_zero_mean_unit_variance(got.input_values[2])
    for max_length, shape in ((1000, (3, 1000)), (2000, (3, 1200))):
        got = ours(speech, truncation=True, max_length=max_length, padding="longest", return_tensors="np",
                   sampling_rate=16000)
        assert got.input_values.shape == shape
        _check_zero_mean_unit_variance(got.input_values[0, :800])
        _check_zero_mean_unit_variance(got.input_values[2])


@pytest.mark.parametrize("name", ["whisper", "wav2vec2"])
def test_zero_mean_unit_var_norm_static_helper(name):
    ours, ref = TESTERS[name].pair()
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(3000)
    audio = (audio - audio.min()) / (audio.max() - audio.min()) * 65535  # the reference's large-values case
    got = type(ours).zero_mean_unit_var_norm([audio], attention_mask=None)[0]
    np.testing.assert_allclose(got, type(ref).zero_mean_unit_var_norm([audio], attention_mask=None)[0], rtol=1e-12)
    assert np.mean(got) < 1e-3 and abs(np.var(got) - 1) < 1e-3
    rows = [rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)]
    mask = [np.array([1, 1, 1, 1, 0, 0], np.int32), np.ones(6, np.int32)]
    for g, e in zip(ours.zero_mean_unit_var_norm(rows, mask, padding_value=-1.0),
                    ref.zero_mean_unit_var_norm([r.copy() for r in rows], mask, padding_value=-1.0)):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, atol=1e-6)
    ints = ours.zero_mean_unit_var_norm([np.arange(10)], None)[0]
    np.testing.assert_allclose(ints, ref.zero_mean_unit_var_norm([np.arange(10)], None)[0])


# ---- ragged batches with return_tensors="np" ------------------------------------------------------
CLIPS = [np.random.default_rng(i).standard_normal(n).astype(np.float32) for i, n in enumerate((800, 1000, 1200))]


@pytest.mark.parametrize("do_normalize", [True, False])
@pytest.mark.parametrize("return_attention_mask", [None, True])
@pytest.mark.parametrize("return_tensors", [None, "np"])
@pytest.mark.parametrize("kw", [dict(padding=False), dict(padding="max_length", max_length=900)])
def test_wav2vec2_ragged_numpy_is_an_object_array(do_normalize, return_attention_mask, return_tensors, kw):
    ours, ref = TESTERS["wav2vec2"].pair(do_normalize=do_normalize, return_attention_mask=False)
    args = dict(sampling_rate=16000, return_attention_mask=return_attention_mask, return_tensors=return_tensors, **kw)
    try:
        expected = ref(list(CLIPS), **args)
    except ValueError:  # the reference crashes normalising a ragged batch with a mask
        assert do_normalize and return_attention_mask and "max_length" in kw
        got = ours(list(CLIPS), **args)
        assert [len(v) for v in got.input_values] == [900, 1000, 1200]
        return
    got = ours(list(CLIPS), **args)
    assert_same(got, expected, atol=1e-6)
    if return_tensors == "np":
        assert got.input_values.dtype == object and got.input_values.shape == (3,)
        assert [v.dtype for v in got.input_values] == [np.float32] * 3
    with pytest.raises(InputError, match="different lengths|different shapes"):
        ours(list(CLIPS), **{**args, "return_tensors": "pt"})


@pytest.mark.parametrize("return_tensors", ["np", "pt", None])
def test_whisper_ragged_is_an_error_as_in_the_reference(return_tensors):
    ours, ref = TESTERS["whisper"].pair()
    for kw in (dict(padding=False), dict(padding="max_length", max_length=900, truncation=False)):
        with pytest.raises(ValueError):
            ref(list(CLIPS), sampling_rate=4000, return_tensors=return_tensors, **kw)
        with pytest.raises(InputError, match="different lengths"):
            ours(list(CLIPS), sampling_rate=4000, return_tensors=return_tensors, **kw)


def test_ast_ignores_padding_so_nothing_is_ragged():
    ours, ref = TESTERS["ast"].pair()
    for kw in (dict(padding=False), dict(padding="max_length", max_length=900)):
        got = ours(list(CLIPS), sampling_rate=16000, return_tensors="np", **kw)
        assert_same(got, ref(list(CLIPS), sampling_rate=16000, return_tensors="np", **kw), atol=1e-4)
        assert got.input_values.shape == (3, 1024, 128)


@pytest.mark.parametrize("name", ["whisper", "ast", "wav2vec2"])
def test_pad_ragged_numpy_for_each_extractor(name):
    ours, ref = TESTERS[name].pair()
    key = ours.model_input_names[0]
    items = [np.ones((n, 10)) for n in (3, 5)] if name == "whisper" else [np.ones(3), np.ones(5)]
    for kw in (dict(padding=False), dict(padding="max_length", max_length=4)):
        for return_tensors in (None, "np"):
            got = ours.pad({key: list(items)}, return_tensors=return_tensors, **kw)
            assert_same(got, ref.pad({key: list(items)}, return_tensors=return_tensors, **kw))
            assert got[key].dtype == object
        with pytest.raises(InputError):
            ours.pad({key: list(items)}, return_tensors="pt", **kw)


# ---- attributes the reference computes ------------------------------------------------------------
@pytest.mark.parametrize("options", [{}, {"num_mel_bins": 64, "sampling_rate": 8000}])
def test_ast_window_and_mel_filters(options):
    ours, ref = TESTERS["ast"].pair(**options)
    assert ours.window.dtype == ref.window.dtype == np.float64 and ours.window.shape == ref.window.shape == (400,)
    np.testing.assert_allclose(ours.window, ref.window, rtol=0, atol=1e-15)
    assert ours.mel_filters.dtype == ref.mel_filters.dtype == np.float64
    assert ours.mel_filters.shape == ref.mel_filters.shape == (257, ours.num_mel_bins)
    np.testing.assert_allclose(ours.mel_filters, ref.mel_filters, rtol=1e-12, atol=1e-15)
    assert "window" not in ours.to_dict() and "mel_filters" not in ours.to_dict()
    ours.mel_filters[:] = 0  # a copy: the extractor's filters are not changed
    assert ours.mel_filters.any()


@pytest.mark.parametrize("feature_size", [80, 128])
def test_whisper_mel_filters(feature_size):
    ours, ref = TESTERS["whisper"].pair(feature_size=feature_size, sampling_rate=16000)
    assert ours.mel_filters.dtype == ref.mel_filters.dtype and ours.mel_filters.shape == ref.mel_filters.shape
    np.testing.assert_allclose(ours.mel_filters, ref.mel_filters, rtol=1e-12, atol=1e-15)
    assert ours.n_samples == ref.n_samples and ours.nb_max_frames == ref.nb_max_frames


def test_derived_keys_passed_to_the_constructor_are_recomputed():
    ours, _ = TESTERS["whisper"].pair()
    again = type(ours)(**{**ours.to_dict(), "mel_filters": [[0.0]]})  # the reference's to_dict output, and more
    assert again.to_dict() == ours.to_dict() and again.mel_filters.shape == (201, 10)


@pytest.mark.parametrize("name", ["whisper", "ast", "wav2vec2"])
def test_return_tensors_jax_equals_numpy(name):
    jax = pytest.importorskip("jax")
    ours, _ = TESTERS[name].pair(return_attention_mask=True)
    _, np_speech = _call_inputs()
    kw = {"padding": "longest"} if name == "wav2vec2" else {}
    as_np = ours(np_speech, sampling_rate=ours.sampling_rate, return_tensors="np", **kw)
    as_jax = ours(np_speech, sampling_rate=ours.sampling_rate, return_tensors=featx.TensorType.JAX, **kw)
    assert set(as_np) == set(as_jax)
    for key, value in as_np.items():
        assert isinstance(as_jax[key], jax.Array) and as_jax[key].dtype == value.dtype, key
        np.testing.assert_array_equal(np.asarray(as_jax[key]), value)
