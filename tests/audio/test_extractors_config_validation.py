"""Bad audio extractor configs fail when the extractor is built (constructor, ``from_dict``,
``from_pretrained``, ``AutoFeatureExtractor``) with a `ConfigError` naming the field and the value;
the configs the reference's checkpoints ship keep loading."""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pytest

import featx
from featx.audio.extractors import ASTFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor
from featx.audio.sequence import SequenceFeatureExtractor
from featx.errors import ConfigError, InputError

CLASSES = [SequenceFeatureExtractor, WhisperFeatureExtractor, ASTFeatureExtractor, Wav2Vec2FeatureExtractor]

# wrong for every extractor
COMMON = [
    ({"sampling_rate": 0}, r"^preprocessor_config\.json: sampling_rate must be a positive integer, got 0$"),
    ({"sampling_rate": -16000}, r"sampling_rate must be a positive integer, got -16000"),
    ({"sampling_rate": 16000.5}, r"sampling_rate must be a positive integer"),
    ({"sampling_rate": "16k"}, r"sampling_rate must be a positive integer, got '16k'"),
    ({"sampling_rate": True}, r"sampling_rate must be a positive integer, got True"),
    ({"feature_size": 0}, r"feature_size must be a positive integer, got 0"),
    ({"feature_size": None}, r"feature_size must be a positive integer, got None"),
    ({"padding_value": float("nan")}, r"padding_value must be a finite number"),
    ({"padding_value": "zero"}, r"padding_value must be a finite number"),
    ({"return_attention_mask": "yes"}, r"return_attention_mask must be true or false, got 'yes'"),
    ({"padding_side": "center"}, r"padding_side must be 'right' or 'left', got 'center'"),
]

SPECIFIC = [
    (WhisperFeatureExtractor, {"hop_length": 0}, r"hop_length must be a positive integer, got 0"),
    (WhisperFeatureExtractor, {"n_fft": -400}, r"n_fft must be a positive integer, got -400"),
    (WhisperFeatureExtractor, {"n_fft": 400.5}, r"n_fft must be a positive integer"),
    (WhisperFeatureExtractor, {"chunk_length": 0}, r"chunk_length must be a positive integer, got 0"),
    (WhisperFeatureExtractor, {"chunk_length": "30"}, r"chunk_length must be a positive integer"),
    (WhisperFeatureExtractor, {"dither": -1.0}, r"dither must be a finite number of at least 0, got -1.0"),
    (WhisperFeatureExtractor, {"dither": float("inf")}, r"dither must be a finite number"),
    (WhisperFeatureExtractor, {"padding_value": None}, r"padding_value must be a finite number, got None"),
    (ASTFeatureExtractor, {"num_mel_bins": 0}, r"num_mel_bins must be a positive integer, got 0"),
    (ASTFeatureExtractor, {"max_length": -1}, r"max_length must be a positive integer, got -1"),
    (ASTFeatureExtractor, {"std": 0}, r"std must be a finite, non-zero number, got 0"),
    (ASTFeatureExtractor, {"mean": float("nan")}, r"mean must be a finite number"),
    (ASTFeatureExtractor, {"do_normalize": "true"}, r"do_normalize must be true or false"),
    (Wav2Vec2FeatureExtractor, {"do_normalize": 3}, r"do_normalize must be true or false, got 3"),
]


def _ids(cases: list) -> list[str]:
    return [json.dumps(c[-2], default=str)[:40] for c in cases]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("config, pattern", COMMON, ids=_ids(COMMON))
def test_common_options_are_checked(cls, config, pattern):
    with pytest.raises(ConfigError, match=pattern):
        cls(**config)
    with pytest.raises(ConfigError, match=pattern):
        cls.from_dict(config)


@pytest.mark.parametrize("cls, config, pattern", SPECIFIC, ids=_ids(SPECIFIC))
def test_extractor_options_are_checked(cls, config, pattern):
    with pytest.raises(ConfigError, match=pattern):
        cls(**config)
    with pytest.raises(ConfigError, match=pattern):
        cls.from_dict(config)


@pytest.mark.parametrize("cls", [WhisperFeatureExtractor, ASTFeatureExtractor, Wav2Vec2FeatureExtractor], ids=lambda c: c.__name__)
def test_bad_config_fails_at_from_pretrained_and_auto(cls, tmp_path: pathlib.Path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"feature_extractor_type": cls.__name__, "sampling_rate": 0}))
    message = r"^preprocessor_config\.json: sampling_rate must be a positive integer, got 0$"
    with pytest.raises(ConfigError, match=message) as info:
        cls.from_pretrained(tmp_path)
    assert not isinstance(info.value, InputError)  # a job stops on it instead of failing every input
    with pytest.raises(ConfigError, match=message):
        featx.AutoFeatureExtractor.from_pretrained(tmp_path)


def test_from_pretrained_overrides_are_checked(tmp_path: pathlib.Path):
    WhisperFeatureExtractor().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="hop_length must be a positive integer"):
        WhisperFeatureExtractor.from_pretrained(tmp_path, hop_length=0)


VALID = [
    (WhisperFeatureExtractor, {"chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80,
                               "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right",
                               "padding_value": 0.0, "processor_class": "WhisperProcessor", "return_attention_mask": False,
                               "sampling_rate": 16000}),
    (WhisperFeatureExtractor, {"feature_size": 128, "mel_filters": [[0.0] * 128] * 201}),  # old configs carry derived keys
    (ASTFeatureExtractor, {"do_normalize": True, "feature_extractor_type": "ASTFeatureExtractor", "feature_size": 1,
                           "max_length": 1024, "mean": -4.2677393, "num_mel_bins": 128, "padding_side": "right",
                           "padding_value": 0.0, "return_attention_mask": False, "sampling_rate": 16000, "std": 4.5689974}),
    (Wav2Vec2FeatureExtractor, {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                                "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False,
                                "sampling_rate": 16000}),
    (Wav2Vec2FeatureExtractor, {"padding_value": None, "return_attention_mask": None, "do_normalize": 1}),
    (Wav2Vec2FeatureExtractor, {"sampling_rate": np.int64(8000), "padding_value": -1}),
    (SequenceFeatureExtractor, {"feature_size": 2, "sampling_rate": 8000, "padding_value": -1.0, "padding_side": "left"}),
]


@pytest.mark.parametrize("cls, config", VALID, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(VALID)])
def test_valid_configs_load(cls, config, tmp_path: pathlib.Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor = cls.from_dict(dict(config))
        assert isinstance(extractor, cls)
        if cls is not SequenceFeatureExtractor and not isinstance(config.get("sampling_rate"), np.integer):
            (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
            assert isinstance(cls.from_pretrained(tmp_path), cls)
        if cls is not SequenceFeatureExtractor:
            rate = int(extractor.sampling_rate)
            extractor(np.zeros(rate // 10, np.float32), sampling_rate=rate)


def test_options_set_after_construction_are_not_checked_until_used():
    """Like the reference, attributes can be changed freely; the call reports what it cannot use."""
    extractor = SequenceFeatureExtractor()
    extractor.padding_value = None
    with pytest.raises(InputError, match="padding_value"):
        extractor.pad({"input_values": [np.zeros(3), np.zeros(5)]}, padding=True)
