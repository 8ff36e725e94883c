"""featx.llm: audio tokens (stacked Whisper frames through an adaptor), encoder tokens through an
adaptor, and `featx embed --tokens` (Parquet and .npy, float32/float16, resumable)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.dataset as ds
import pytest
import torch

import featx
from featx.adapters import LinearAdaptor, MLPAdaptor
from featx.errors import ConfigError
from featx.llm import stack_frames


def test_stack_frames_concatenates_and_zero_pads():
    x = torch.arange(10.0).reshape(5, 2)
    out = stack_frames(x, 2)
    assert out.shape == (3, 4)
    assert out[0].tolist() == [0, 1, 2, 3] and out[2].tolist() == [8, 9, 0, 0]
    assert stack_frames(x, 1) is x


@pytest.fixture(scope="module")
def whisper(tiny_checkpoint):
    return tiny_checkpoint("whisper")


@pytest.mark.parametrize("seconds, stack", [(1.3, 4), (2.0, 1), (31.0, 8)])
def test_audio_tokens_match_stacked_reference_frames(whisper, seconds, stack, tmp_path):
    import transformers as tf

    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
    adaptor = MLPAdaptor(32 * stack, 24, stack=stack)
    pipe = featx.pipeline("audio-tokens", model=whisper, adaptor=adaptor, dtype="float32")
    got = pipe((wave, 16000))
    ref = tf.WhisperModel.from_pretrained(whisper).get_encoder().eval()
    extractor = tf.WhisperFeatureExtractor.from_pretrained(whisper)
    expected = []
    for start in range(0, len(wave), 16000 * 30):  # the embedding pipeline's 30 s windows
        piece = wave[start:start + 16000 * 30]
        feats = extractor(piece, sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
        with torch.no_grad():
            frames = ref(feats["input_features"]).last_hidden_state[0]
            real = int(feats["attention_mask"][0, ::2].sum())
            expected.append(adaptor(stack_frames(frames[:real], stack)))
    expected = torch.cat(expected).numpy()
    assert got.shape == expected.shape == (expected.shape[0], 24)
    assert np.abs(got - expected).max() <= 1e-4


def test_audio_tokens_use_the_adaptor_saved_with_the_model(whisper, tmp_path):
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(whisper, folder)
    adaptor = LinearAdaptor(64, 16, stack=2)
    adaptor.save(folder)
    wave = np.zeros(16000, np.float32)
    got = featx.pipeline("audio-tokens", model=folder, dtype="float32")(wave)
    direct = featx.pipeline("audio-tokens", model=whisper, adaptor=adaptor, dtype="float32")(wave)
    assert got.shape[1] == 16 and np.array_equal(got, direct)


def test_a_plain_encoder_needs_an_adaptor(tiny_checkpoint):
    vit = tiny_checkpoint("vit")
    with pytest.raises(ConfigError, match="adaptor"):
        featx.pipeline("visual-tokens", model=vit)
    with pytest.raises(ConfigError, match="takes 40 values"):
        featx.pipeline("visual-tokens", model=vit, adaptor=LinearAdaptor(40, 8))
    with pytest.raises(ConfigError, match="audio model"):
        featx.pipeline("audio-tokens", model=vit, adaptor=LinearAdaptor(32, 8))


def test_visual_tokens_through_an_adaptor_on_any_encoder(tiny_checkpoint):
    from featx.embedding import Embedder

    vit = tiny_checkpoint("vit")
    adaptor = LinearAdaptor(32, 8)
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    got = featx.pipeline("visual-tokens", model=vit, adaptor=adaptor, dtype="float32")(img)
    emb = Embedder(vit, pool="none", dtype="float32")
    (tokens,) = emb.embed([emb.prepare(img)])
    with torch.no_grad():
        expected = adaptor(torch.from_numpy(tokens)).numpy()
    assert got.shape == (17, 8) and np.abs(got - expected).max() <= 1e-6


@pytest.fixture(scope="module")
def llava_folders(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.models._llava_fixtures import build_llava

    one = tmp_path_factory.mktemp("llava15")
    nxt = tmp_path_factory.mktemp("llavanext")
    build_llava(one)
    build_llava(nxt, next=True)
    return one, nxt


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i, size in enumerate([(40, 30), (28, 28), (90, 33), (20, 70)]):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def _run(*args):
    from featx.cli import main

    return main([str(a) for a in args])


@pytest.mark.parametrize("which, dtype", [(0, "float32"), (1, "float32"), (1, "float16")])
def test_cli_tokens_parquet(llava_folders, images, tmp_path, which, dtype):
    folder = llava_folders[which]
    out = tmp_path / "out"
    args = ["embed", images, "--model", folder, "--output", out, "--tokens", dtype, "--dtype", "float32",
            "--progress", "none", "--batch-size", 3]
    assert _run(*args) != 0  # the broken file fails (an error row); the others are written
    table = ds.dataset(str(out)).to_table()
    rows = {r["path"]: r for r in table.to_pylist()}
    assert len(rows) == 5 and rows[str(images / "broken.png")]["error"]
    pipe = featx.pipeline("visual-tokens", model=folder, dtype="float32")
    for i in range(4):
        row = rows[str(images / f"{i}.png")]
        expected = pipe(str(images / f"{i}.png"))
        got = np.asarray(row["embedding"], dtype=np.float32)
        assert row["shape"] == list(expected.shape) == list(got.shape)
        assert np.abs(got - expected).max() <= (1e-6 if dtype == "float32" else 2e-3 * np.abs(expected).max())
    value = table.schema.field("embedding").type.value_type.value_type
    assert str(value) == ("halffloat" if dtype == "float16" else "float")
    # resumable: a second run keeps the finished rows and writes no duplicates
    _run(*args)
    assert len(ds.dataset(str(out)).to_table()) == 5


def test_cli_tokens_npy_for_a_fixed_token_count(llava_folders, images, tmp_path):
    out = tmp_path / "out"
    rc = _run("embed", images, "--model", llava_folders[0], "--output", out, "--tokens", "--format", "npy",
              "--dtype", "float32", "--progress", "none")
    assert rc != 0  # the broken file
    arrays = [np.load(p) for p in sorted((out / "_npy").glob("part-*.npy"))]
    stacked = np.concatenate(arrays)
    assert stacked.shape[1:] == (16, 48) and stacked.dtype == np.float32
    meta = json.loads((out / "_featx.json").read_text())
    assert meta["kind"] == "tokens" and meta["num_tokens"] == 16 and meta["tokens_dtype"] == "float32"


def test_cli_tokens_npy_refuses_a_varying_token_count(llava_folders, images, tmp_path, capsys):
    rc = _run("embed", images, "--model", llava_folders[1], "--output", tmp_path / "o", "--tokens", "--format", "npy",
              "--progress", "none")
    assert rc != 0 and "different number of tokens" in capsys.readouterr().err


@pytest.mark.parametrize("extra, match", [(["--pool", "mean"], "--pool"), (["--windows"], "--windows"),
                                          (["--tiles", "2x2"], "--tiles")])
def test_cli_tokens_option_errors(images, tmp_path, extra, match, capsys):
    rc = _run("embed", images, "--model", tmp_path, "--output", tmp_path / "o", "--tokens", *extra)
    assert rc != 0 and match in capsys.readouterr().err
