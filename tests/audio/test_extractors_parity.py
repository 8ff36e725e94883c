"""Whisper, AST and Wav2Vec2 extractors against transformers: values, shapes, dtypes, masks, save/load.

Tolerances (from the issue): Whisper within 1e-4 of the reference's torch path; AST within 1e-3
with mean difference below 1e-5; Wav2Vec2 within 1e-6; shapes, dtypes, masks and keys identical.
Where the reference raises, featx must raise an InputError too.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import featx
from featx.audio.extractors import ASTFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor
from featx.errors import InputError

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

from .signals import SR, noise, speech  # noqa: E402


def _mixed(lengths: list[int]) -> list[np.ndarray]:
    return [(speech if i % 2 == 0 else noise)(n, seed=i) for i, n in enumerate(lengths)]


# Mixed batches: tiny to 3 s; and one with a 45 s and a 10 s clip (the only long ones).
SHORT = _mixed([1, 201, 4000, 48007])
LONG = _mixed([45 * SR, 10 * SR + 37])


def _as_numpy(value):
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _same_containers(got, expected):
    assert set(got.keys()) == set(expected.keys())
    for key in expected:
        e, g = expected[key], got[key]
        assert type(g) is type(e), (key, type(g), type(e))
        if isinstance(e, np.ndarray) and e.dtype == object:  # the reference's ragged object array
            assert g.dtype == object and g.shape == e.shape, (key, g.dtype, g.shape, e.shape)
        if isinstance(e, list) or e.dtype == object:
            assert len(g) == len(e)
            pairs = list(zip(g, e))
        else:
            pairs = [(g, e)]
        for gi, ei in pairs:
            gi, ei = _as_numpy(gi), _as_numpy(ei)
            assert gi.shape == ei.shape, (key, gi.shape, ei.shape)
            assert gi.dtype == ei.dtype, (key, gi.dtype, ei.dtype)
            if key == "attention_mask":
                np.testing.assert_array_equal(gi, ei)
    return [(key, _as_numpy(got[key]) if not isinstance(got[key], list) else got[key], expected[key]) for key in expected]


def _run_both(ours, ref, inputs, **kwargs):
    """Call both; if the reference raises, featx must raise InputError. Returns (got, expected) or None."""
    try:
        expected = ref(inputs, sampling_rate=SR, **kwargs)
    except (ValueError, RuntimeError, IndexError) as exc:
        with pytest.raises(InputError):
            ours(inputs, sampling_rate=SR, **kwargs)
        return str(exc)
    return ours(inputs, sampling_rate=SR, **kwargs), expected


def _max_diff(got, expected):
    if isinstance(expected, list) or (isinstance(expected, np.ndarray) and expected.dtype == object):
        return max(np.abs(_as_numpy(g) - _as_numpy(e)).max(initial=0) for g, e in zip(got, expected))
    return np.abs(_as_numpy(got) - _as_numpy(expected)).max(initial=0)


# ---- Whisper ---------------------------------------------------------------------------------------
def _whisper(ours, ref, inputs, **kwargs):
    result = _run_both(ours, ref, inputs, **kwargs)
    if isinstance(result, str):
        return None
    got, expected = result
    _same_containers(got, expected)
    assert _max_diff(got["input_features"], expected["input_features"]) < 1e-4
    return got


@pytest.fixture(scope="module")
def whisper_pair():
    return {n: (WhisperFeatureExtractor(feature_size=n), transformers.WhisperFeatureExtractor(feature_size=n)) for n in (80, 128)}


@pytest.mark.parametrize("padding", ["max_length", "longest", True, False, "do_not_pad"])
@pytest.mark.parametrize("truncation", [True, False])
@pytest.mark.parametrize("max_length", [None, 24000])
def test_whisper_padding_truncation_grid(whisper_pair, padding, truncation, max_length):
    ours, ref = whisper_pair[80]
    _whisper(ours, ref, SHORT, padding=padding, truncation=truncation, max_length=max_length, return_attention_mask=True)
    # equal lengths: padding=False is valid too
    _whisper(ours, ref, [SHORT[3], SHORT[3][::-1].copy()], padding=padding, truncation=truncation, max_length=max_length)


@pytest.mark.parametrize("return_attention_mask", [None, True, False])
@pytest.mark.parametrize("pad_to_multiple_of", [None, 480, 1000])
@pytest.mark.parametrize("padding", ["max_length", "longest"])
def test_whisper_masks_and_multiples(whisper_pair, return_attention_mask, pad_to_multiple_of, padding):
    ours, ref = whisper_pair[80]
    got = _whisper(ours, ref, SHORT[1:], padding=padding, pad_to_multiple_of=pad_to_multiple_of,
                   return_attention_mask=return_attention_mask)
    assert got is not None


@pytest.mark.parametrize("n_mels", [80, 128])
def test_whisper_long_clips_and_mel_bins(whisper_pair, n_mels):
    ours, ref = whisper_pair[n_mels]
    got = _whisper(ours, ref, LONG, return_attention_mask=True)
    assert got["input_features"].shape == (2, n_mels, 3000)
    # the original-whisper way: one spectrogram of the whole 45 s clip
    got = _whisper(ours, ref, LONG[0], truncation=False, padding="longest")
    assert got["input_features"].shape == (1, n_mels, 4500)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SHORT[3].astype(np.float64),  # one float64 waveform
        lambda: np.stack([SHORT[3], SHORT[3] * 0.5]).astype(np.float64),  # a 2-D float64 batch
        lambda: (SHORT[3] * 30000).astype(np.int16),  # int16, not rescaled (as the reference)
        lambda: [(x * 30000).astype(np.int16) for x in SHORT[1:]],
        lambda: SHORT[2].tolist(),  # a plain list of floats
        lambda: [x.tolist() for x in SHORT[1:3]],
        lambda: torch.from_numpy(SHORT[3]),
    ],
)
@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
def test_whisper_input_types(whisper_pair, make, return_tensors):
    ours, ref = whisper_pair[80]
    _whisper(ours, ref, make(), padding="longest", return_tensors=return_tensors, return_attention_mask=True)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_whisper_padding_side_and_normalize(padding_side):
    ours = WhisperFeatureExtractor(padding_side=padding_side)
    ref = transformers.WhisperFeatureExtractor(padding_side=padding_side)
    _whisper(ours, ref, SHORT[1:], padding="longest", return_attention_mask=True)
    if padding_side == "right":  # the reference normalises the wrong span with left padding
        _whisper(ours, ref, SHORT[1:], do_normalize=True, return_attention_mask=True)


def test_whisper_dither_matches_reference_with_the_same_seed():
    ours, ref = WhisperFeatureExtractor(dither=1e-3), transformers.WhisperFeatureExtractor(dither=1e-3)
    batch = [SHORT[2], np.zeros(3000, np.float32)]
    torch.manual_seed(7)
    expected = ref(batch, sampling_rate=SR, padding="longest")["input_features"]
    torch.manual_seed(7)
    got = ours(batch, sampling_rate=SR, padding="longest")["input_features"]
    assert np.abs(got - expected).max() < 1e-4
    plain = ours(batch, sampling_rate=SR, padding="longest")["input_features"]
    assert np.abs(plain - got).max() > 0.1  # dither really changed the silent example


def test_whisper_mask_quirks_are_fixed():
    """The reference leaks a sample-rate mask in two cases; featx gives the frame-rate mask or none."""
    ours, ref = WhisperFeatureExtractor(), transformers.WhisperFeatureExtractor()
    expected = ref(SHORT[1:], sampling_rate=SR, do_normalize=True)
    assert expected["attention_mask"].shape == (3, 480000)
    got = ours(SHORT[1:], sampling_rate=SR, do_normalize=True)
    assert "attention_mask" not in got
    assert np.abs(got["input_features"] - expected["input_features"]).max() < 1e-4

    ours, ref = WhisperFeatureExtractor(return_attention_mask=True), transformers.WhisperFeatureExtractor(return_attention_mask=True)
    expected = ref(SHORT[1:], sampling_rate=SR)
    got = ours(SHORT[1:], sampling_rate=SR)
    sample_mask = expected["attention_mask"]
    np.testing.assert_array_equal(got["attention_mask"], sample_mask[:, ::160])
    assert got["attention_mask"].shape == (3, 3000) and got["attention_mask"].dtype == np.int32


# ---- AST ---------------------------------------------------------------------------------------------
def _ast(ours, ref, inputs, **kwargs):
    result = _run_both(ours, ref, inputs, **kwargs)
    assert not isinstance(result, str), result
    got, expected = result
    _same_containers(got, expected)
    g, e = got["input_values"], expected["input_values"]
    diffs = np.concatenate([np.abs(_as_numpy(a) - _as_numpy(b)).ravel() for a, b in zip(g, e)])
    assert diffs.max() < 1e-3 and diffs.mean() < 1e-5, (diffs.max(), diffs.mean())
    return got


AST_LENGTHS = [240, 399, 400, 401, 561, 16000, 163840 + 399, 163999]


@pytest.mark.parametrize("do_normalize", [True, False])
@pytest.mark.parametrize("max_length", [1024, 100])
@pytest.mark.parametrize("num_mel_bins", [128, 64])
def test_ast_grid(do_normalize, max_length, num_mel_bins):
    kw = dict(do_normalize=do_normalize, max_length=max_length, num_mel_bins=num_mel_bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.ASTFeatureExtractor(**kw)
    ours = ASTFeatureExtractor(**kw)
    got = _ast(ours, ref, _mixed(AST_LENGTHS))
    assert len(got["input_values"]) == len(AST_LENGTHS)
    assert got["input_values"][0].shape == (max_length, num_mel_bins)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LONG[0],  # 45 s, truncated to 1024 frames
        lambda: LONG,
        lambda: LONG[1].astype(np.float64),
        lambda: (speech(20000) * 30000).astype(np.int16),
        lambda: [(noise(9000) * 30000).astype(np.int16), (speech(7000) * 30000).astype(np.int16)],
        lambda: speech(3000).tolist(),
        lambda: np.zeros(5000, np.float32),  # digital silence: every bin at the eps floor
        lambda: torch.from_numpy(speech(4000)),
    ],
)
@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
def test_ast_inputs(make, return_tensors):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.ASTFeatureExtractor()
    _ast(ASTFeatureExtractor(), ref, make(), return_tensors=return_tensors)


def test_ast_shorter_than_a_frame_is_all_padding():
    got = ASTFeatureExtractor()(np.ones(100, np.float32), sampling_rate=SR, return_tensors="np")["input_values"]
    np.testing.assert_allclose(got, (0 - -4.2677393) / (2 * 4.5689974), rtol=1e-6)


# ---- Wav2Vec2 --------------------------------------------------------------------------------------
W2V_BATCH = _mixed([1, 100, 2500, 4000])


def _w2v(inputs, config=None, **kwargs):
    config = config or {}
    ours, ref = Wav2Vec2FeatureExtractor(**config), transformers.Wav2Vec2FeatureExtractor(**config)
    if kwargs.get("padding") == "max_length" and not kwargs.get("truncation") and kwargs.get("max_length"):
        limit = kwargs["max_length"]
        if any(len(x) > limit for x in inputs) and kwargs.get("return_tensors") is None:
            # The reference crashes stacking the ragged result; featx returns the ragged list,
            # each example as the reference gives it alone (long) or in the padded batch (short).
            got = ours(inputs, sampling_rate=SR, **kwargs)
            short = [x for x in inputs if len(x) <= limit]
            expected_short = iter(ref(short, sampling_rate=SR, **kwargs)["input_values"]) if short else iter(())
            for x, g in zip(inputs, got["input_values"]):
                if len(x) > limit:
                    e = ref([x], sampling_rate=SR, **{**kwargs, "padding": False})["input_values"][0]
                else:
                    e = next(expected_short)
                assert g.dtype == np.float32 and g.shape == e.shape
                assert np.abs(g - e).max() <= 1e-6
            return got
    result = _run_both(ours, ref, inputs, **kwargs)
    if isinstance(result, str):
        return None
    got, expected = result
    _same_containers(got, expected)
    assert _max_diff(got["input_values"], expected["input_values"]) <= 1e-6
    return got


@pytest.mark.parametrize("padding", [False, True, "longest", "max_length"])
@pytest.mark.parametrize("truncation", [False, True])
@pytest.mark.parametrize("max_length", [None, 3000])
@pytest.mark.parametrize("return_attention_mask", [None, True, False])
@pytest.mark.parametrize("pad_to_multiple_of", [None, 512])
@pytest.mark.parametrize("do_normalize", [True, False])
def test_wav2vec2_grid(padding, truncation, max_length, return_attention_mask, pad_to_multiple_of, do_normalize):
    _w2v(W2V_BATCH, {"do_normalize": do_normalize}, padding=padding, truncation=truncation, max_length=max_length,
         return_attention_mask=return_attention_mask, pad_to_multiple_of=pad_to_multiple_of)


def test_wav2vec2_padding_is_in_the_statistics_without_a_mask():
    got = _w2v(W2V_BATCH, padding=True)
    short = got["input_values"][1]
    assert abs(short[200:].mean()) > 0.01  # padding normalised along with the signal: not zeros
    masked = _w2v(W2V_BATCH, padding=True, return_attention_mask=True)
    assert (masked["input_values"][1][100:] == 0).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: speech(3000).astype(np.float64),
        lambda: np.stack([speech(3000), noise(3000)]).astype(np.float64),
        lambda: speech(3000).tolist(),
        lambda: torch.from_numpy(noise(2000)),
    ],
)
@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
def test_wav2vec2_inputs(make, return_tensors):
    _w2v(make(), padding=True, return_attention_mask=True, return_tensors=return_tensors)


@pytest.mark.parametrize("cls", [WhisperFeatureExtractor, ASTFeatureExtractor, Wav2Vec2FeatureExtractor])
def test_list_of_tensors_is_a_batch(cls):
    """The reference reads a list of tensors as one waveform and fails; featx reads it as a batch."""
    arrays = [noise(2000), speech(1500)]
    ours = cls()
    kw = {} if cls is ASTFeatureExtractor else {"padding": "longest"}
    got = ours([torch.from_numpy(a) for a in arrays], sampling_rate=SR, return_tensors="np", **kw)
    expected = ours(arrays, sampling_rate=SR, return_tensors="np", **kw)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


@pytest.mark.parametrize("do_normalize", [True, False])
def test_wav2vec2_integer_inputs(do_normalize):
    """Same values; featx returns float32 where the reference returns float64 or the int dtype."""
    ints = [(speech(3000) * 30000).astype(np.int16), (noise(1000) * 30000).astype(np.int16)]
    ours = Wav2Vec2FeatureExtractor(do_normalize=do_normalize)
    ref = transformers.Wav2Vec2FeatureExtractor(do_normalize=do_normalize)
    for inputs in (ints, ints[0], ints[0].tolist()):
        got = ours(inputs, sampling_rate=SR, padding=True, return_attention_mask=True)
        expected = ref(inputs, sampling_rate=SR, padding=True, return_attention_mask=True)
        for g, e in zip(got["input_values"], expected["input_values"]):
            assert g.dtype == np.float32 and g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


def test_wav2vec2_left_padding_normalises_the_real_samples():
    left = Wav2Vec2FeatureExtractor(padding_side="left")(W2V_BATCH[1:], sampling_rate=SR, padding=True, return_attention_mask=True)
    right = _w2v(W2V_BATCH[1:], padding=True, return_attention_mask=True)
    for lv, lm, rv, rm in zip(left["input_values"], left["attention_mask"], right["input_values"], right["attention_mask"]):
        n = int(rm.sum())
        np.testing.assert_array_equal(lm[::-1], rm)
        np.testing.assert_allclose(lv[len(lv) - n :], rv[:n], atol=1e-6)
        assert (lv[: len(lv) - n] == 0).all()
    # without normalisation left padding is plain padding, as in the reference
    _w2v(W2V_BATCH[1:], {"padding_side": "left", "do_normalize": False}, padding=True, return_attention_mask=True)


# ---- save / load in both directions -----------------------------------------------------------------
CONFIGS = [
    (WhisperFeatureExtractor, "WhisperFeatureExtractor", {"feature_size": 128, "chunk_length": 10, "dither": 0.5}),
    (ASTFeatureExtractor, "ASTFeatureExtractor", {"max_length": 512, "num_mel_bins": 64, "do_normalize": False}),
    (Wav2Vec2FeatureExtractor, "Wav2Vec2FeatureExtractor", {"return_attention_mask": True, "do_normalize": False}),
]


@pytest.mark.parametrize("cls, name, options", CONFIGS)
def test_defaults_and_saved_keys_match_reference(cls, name, options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_cls = getattr(transformers, name)
        for opts in ({}, options):
            assert cls(**opts).to_dict() == ref_cls(**opts).to_dict()


@pytest.mark.parametrize("cls, name, options", CONFIGS)
def test_save_in_featx_load_in_transformers_and_back(tmp_path, cls, name, options):
    ours = cls(**options)
    ours.save_pretrained(tmp_path / "featx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(transformers, name).from_pretrained(tmp_path / "featx")
        assert ref.to_dict() == ours.to_dict()
        ref.save_pretrained(tmp_path / "hf")
    for loaded in (cls.from_pretrained(tmp_path / "hf"), featx.AutoFeatureExtractor.from_pretrained(tmp_path / "hf")):
        assert type(loaded) is cls and loaded.to_dict() == ours.to_dict()
    saved = json.loads((tmp_path / "featx" / "preprocessor_config.json").read_text())
    assert saved["feature_extractor_type"] == name


def test_old_whisper_config_with_mel_filters_loads(tmp_path):
    """Hub configs of openai/whisper-* carry the filters and derived keys; they are recomputed."""
    ref = transformers.WhisperFeatureExtractor(feature_size=80)
    config = ref.to_dict()
    config["mel_filters"] = ref.mel_filters.tolist()
    config["processor_class"] = "WhisperProcessor"
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    loaded = featx.AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(loaded, WhisperFeatureExtractor)
    assert "mel_filters" not in loaded.to_dict() and "mel_filters" not in loaded.extra_options
    np.testing.assert_array_equal(loaded.mel_filters, ref.mel_filters)


@pytest.mark.parametrize("model_type, cls", [
    ("whisper", WhisperFeatureExtractor), ("audio-spectrogram-transformer", ASTFeatureExtractor),
    ("wav2vec2", Wav2Vec2FeatureExtractor), ("hubert", Wav2Vec2FeatureExtractor), ("wavlm", Wav2Vec2FeatureExtractor),
])
def test_auto_from_config_model_type(tmp_path, model_type, cls):
    config = cls().to_dict()
    del config["feature_extractor_type"]
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    assert type(featx.AutoFeatureExtractor.from_pretrained(tmp_path)) is cls
