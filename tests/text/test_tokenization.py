"""featx's tokenizers against the reference's CLIPTokenizer (tokenizer.json) and SiglipTokenizer
(spiece.model): ids and masks on a sweep of texts and call options."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from featx.errors import ConfigError, InputError, ModelLoadError
from featx.text.tokenization import NO_LIMIT, AutoTokenizer, FastTokenizer

tf = pytest.importorskip("transformers")

TEXTS = [
    "a photo of a red car", "", " ", "Café naïve résumé über straße", "emoji 😀 test 🎉🎉", "猫の写真です",
    "ÅNGSTRÖM Ωmega ǅ", "x " * 200, "supercalifragilisticexpialidocious " * 30, "Hello </s> world",
    "  spaces\tand\nnewlines  ", "It's what we'd've done!", "<|endoftext|> inside <|startoftext|>", "end</s>",
    "\u2581under\u2581score", "</s>", "a </s> </s> b", "<unk>x", "numbers 1234567890, #@$%^&*()", "e\u0301 combining",
    "zero\u200bwidth", "tab\tseparated\tvalues", "ＦＵＬＬＷＩＤＴＨ", "مرحبا بالعالم", "🏳️‍🌈 flags 🇩🇪",
]
OPTIONS = [
    {}, {"padding": True}, {"padding": "longest"}, {"padding": "max_length", "truncation": True},
    {"truncation": True}, {"truncation": True, "max_length": 10}, {"max_length": 7},
    {"padding": "max_length", "max_length": 20, "truncation": True}, {"padding": True, "truncation": "longest_first"},
    {"add_special_tokens": False, "truncation": True, "max_length": 5}, {"add_special_tokens": False},
    {"padding": "max_length", "max_length": 3, "truncation": True}, {"truncation": "do_not_truncate"},
]


@pytest.fixture(scope="module", params=["clip", "siglip"])
def pair(request, text_checkpoint):
    folder = text_checkpoint(request.param)
    return request.param, tf.AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(folder), folder


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_batch_matches_reference(pair, options):
    _, ref, mine, _ = pair
    with _quiet():
        expected = ref(TEXTS, **options)
    got = mine(TEXTS, **options)
    assert got["input_ids"] == expected["input_ids"]
    assert got["attention_mask"] == expected["attention_mask"]


@pytest.mark.parametrize("text", TEXTS)
def test_single_texts_match_reference(pair, text):
    _, ref, mine, _ = pair
    with _quiet():
        expected = ref(text, truncation=True)
    got = mine(text, truncation=True)
    assert got["input_ids"] == expected["input_ids"] and got["attention_mask"] == expected["attention_mask"]
    assert isinstance(got["input_ids"][0], int)


def test_long_texts_are_cut_to_the_model_length(pair):
    kind, ref, mine, _ = pair
    limit = 77 if kind == "clip" else 64
    assert mine.model_max_length == ref.model_max_length == limit
    ids = mine("word " * 500, truncation=True)["input_ids"]
    assert len(ids) == limit and ids[-1] == mine.eos_token_id
    assert mine.pad_token_id == ref.pad_token_id and mine.eos_token_id == ref.eos_token_id


@pytest.mark.parametrize("kind", ["np", "pt"])
def test_tensors(pair, kind):
    _, ref, mine, _ = pair
    with _quiet():
        expected = ref(TEXTS[:5], padding=True, return_tensors=kind)
    got = mine(TEXTS[:5], padding=True, return_tensors=kind)
    for key in ("input_ids", "attention_mask"):
        assert type(got[key]) is type(expected[key])
        assert np.array_equal(np.asarray(got[key]), np.asarray(expected[key]))
        assert got[key].dtype == expected[key].dtype
    single = mine("a photo", return_tensors="pt")
    assert isinstance(single["input_ids"], torch.Tensor) and single["input_ids"].dim() == 2


def test_ragged_tensors_need_padding(pair):
    with pytest.raises(InputError, match="padding=True"):
        pair[2](["a", "a much longer text here"], return_tensors="np")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"padding": "sideways"}, ConfigError), ({"truncation": "only_second_please"}, ConfigError),
    ({"max_length": 0, "truncation": True}, ConfigError),
])
def test_bad_options(pair, kwargs, error):
    with pytest.raises(error):
        pair[2]("a photo", **kwargs)


def test_bad_text(pair):
    with pytest.raises(InputError, match="string"):
        pair[2]([b"bytes"])
    with pytest.raises(TypeError, match="unexpected"):
        pair[2]("a", stride=2)


def test_left_padding_and_config_overrides(pair):
    _, ref, _, folder = pair
    mine = AutoTokenizer.from_pretrained(folder, padding_side="left", model_max_length=12)
    ref = tf.AutoTokenizer.from_pretrained(folder, padding_side="left", model_max_length=12)
    with _quiet():
        expected = ref(TEXTS, padding="max_length", truncation=True)
    got = mine(TEXTS, padding="max_length", truncation=True)
    assert got["input_ids"] == expected["input_ids"] and got["attention_mask"] == expected["attention_mask"]


def test_files_given_directly(text_checkpoint, tmp_path):
    clip = text_checkpoint("clip")
    tok = AutoTokenizer.from_pretrained(clip / "tokenizer.json")
    assert isinstance(tok, FastTokenizer) and tok.model_max_length == 77  # its config beside it
    lonely = tmp_path / "tokenizer.json"
    shutil.copy(clip / "tokenizer.json", lonely)
    assert AutoTokenizer.from_pretrained(lonely).model_max_length == NO_LIMIT
    siglip = text_checkpoint("siglip")
    assert AutoTokenizer.from_pretrained(siglip / "spiece.model")("a photo")["input_ids"][-1] == 1


def test_no_tokenizer_is_an_error(tmp_path):
    with pytest.raises(ModelLoadError, match="neither tokenizer.json nor spiece.model"):
        AutoTokenizer.from_pretrained(tmp_path)


def test_damaged_files_are_errors(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read the tokenizer"):
        AutoTokenizer.from_pretrained(tmp_path)
    other = tmp_path / "sp"
    other.mkdir()
    (other / "spiece.model").write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="SentencePiece"):
        AutoTokenizer.from_pretrained(other)


def test_siglip_non_legacy_and_no_lower_case(text_checkpoint, tmp_path):
    folder = tmp_path / "siglip"
    shutil.copytree(text_checkpoint("siglip"), folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(legacy=False, do_lower_case=False)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    ref = tf.AutoTokenizer.from_pretrained(folder)
    mine = AutoTokenizer.from_pretrained(folder)
    with _quiet():
        expected = ref(TEXTS, padding=True, truncation=True)
    got = mine(TEXTS, padding=True, truncation=True)
    assert got["input_ids"] == expected["input_ids"]


def test_decode_round_trip(pair):
    _, ref, mine, _ = pair
    ids = mine("a photo of a red car")["input_ids"]
    assert mine.decode(ids, skip_special_tokens=True).strip() == ref.decode(ids, skip_special_tokens=True).strip()


class _quiet:
    """The reference warns about long texts and repeated </s>; the tests ask for both on purpose."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
