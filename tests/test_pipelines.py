import numpy as np
import pytest
import torch
from PIL import Image

import featx
from featx.errors import ConfigError


def _photos(n=3, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(40, 52), (33, 33), (64, 48), (20, 90)]
    return [Image.fromarray(rng.integers(0, 256, (*sizes[i % 4], 3), dtype=np.uint8)) for i in range(n)]


def _reference_pipeline(folder):
    import transformers as tf

    proc = tf.ViTImageProcessorPil.from_pretrained(folder)
    return tf.pipeline("image-feature-extraction", model=str(folder), image_processor=proc, device="cpu")


@pytest.fixture(scope="module")
def vit(tiny_checkpoint):
    return tiny_checkpoint("vit")


def test_image_pipeline_matches_reference_tokens_and_pooler(vit):
    ref = _reference_pipeline(vit)
    ours = featx.pipeline("image-feature-extraction", model=vit, dtype="float32")
    images = _photos(3)
    for pool in (False, True):
        expected = ref(images, pool=pool)
        got = ours(images, pool=pool, batch_size=2)
        assert np.asarray(got).shape == np.asarray(expected).shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4)
    single = ours(images[0])
    assert np.asarray(single).shape == (1, 17, 32)


def test_pool_modes_normalize_and_tensors(vit):
    ours = featx.pipeline("image-feature-extraction", model=vit, dtype="float32")
    images = _photos(4)
    tokens = ours(images, return_tensors=True)
    assert tokens.shape == (4, 17, 32) and tokens.dtype == torch.float32
    cls = ours(images, pool="cls", return_tensors=True)
    torch.testing.assert_close(cls, tokens[:, 0])
    mean = ours(images, pool="mean", return_tensors=True)
    torch.testing.assert_close(mean, tokens[:, 1:].mean(dim=1))  # the class token is left out
    normed = ours(images, pool="cls", normalize=True, return_tensors=True)
    torch.testing.assert_close(normed.norm(dim=-1), torch.ones(4))
    with pytest.raises(ConfigError, match="pool must be one of"):
        ours(images, pool="max")


def test_inputs_paths_bytes_and_arrays(vit, tmp_path):
    ours = featx.pipeline("image-feature-extraction", model=vit, dtype="float32")
    image = _photos(1)[0]
    path = tmp_path / "a.png"
    image.save(path)
    expected = ours(image, pool="cls", return_tensors=True)
    for src in (str(path), path, path.read_bytes(), np.asarray(image)):
        torch.testing.assert_close(ours(src, pool="cls", return_tensors=True), expected)


def test_bfloat16_close_to_float32(vit):
    images = _photos(3)
    f32 = featx.pipeline("image-feature-extraction", model=vit, dtype="float32")(images, pool="cls", return_tensors=True)
    bf16 = featx.pipeline("image-feature-extraction", model=vit, dtype="bfloat16")(images, pool="cls", return_tensors=True)
    cos = torch.nn.functional.cosine_similarity(f32, bf16.float(), dim=-1)
    assert bool((cos > 0.999).all()), cos


def test_task_and_modality_errors(vit, tiny_checkpoint):
    with pytest.raises(ConfigError, match="unknown task"):
        featx.pipeline("text-classification", model=vit)
    with pytest.raises(ConfigError, match="needs an audio model"):
        featx.pipeline("audio-feature-extraction", model=vit)


def test_siglip_has_no_class_token(tiny_checkpoint):
    ours = featx.pipeline("image-feature-extraction", model=tiny_checkpoint("siglip_vision_model"), dtype="float32")
    with pytest.raises(ConfigError, match="no class token"):
        ours(_photos(1), pool="cls")
    assert ours(_photos(2), pool=True, return_tensors=True).shape == (2, 32)


def _speechlike(seconds, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * t) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_audio_whisper_matches_reference_encoder_and_masks_padding(tiny_checkpoint):
    import transformers as tf

    folder = tiny_checkpoint("whisper")
    ours = featx.pipeline("audio-feature-extraction", model=folder, dtype="float32")
    wave = _speechlike(2.0)
    tokens = ours(wave, return_tensors=True)
    assert tokens.shape == (1, 1500, 32)
    fe = tf.WhisperFeatureExtractor.from_pretrained(folder)
    ref_model = tf.WhisperModel.from_pretrained(folder).eval()
    feats = fe(wave, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        expected = ref_model.encoder(feats).last_hidden_state
    torch.testing.assert_close(tokens, expected, atol=1e-4, rtol=1e-4)
    mean = ours(wave, pool="mean", return_tensors=True)
    real = 2.0 * 16000 / 320  # output frames that cover real audio
    torch.testing.assert_close(mean[0], expected[0, : int(np.ceil(real))].mean(dim=0), atol=1e-4, rtol=1e-4)


def test_audio_long_clip_is_windowed_and_averaged(tiny_checkpoint):
    folder = tiny_checkpoint("audio-spectrogram-transformer")
    ours = featx.pipeline("audio-feature-extraction", model=folder, dtype="float32")
    window_s = (128 - 1) * 0.01 + 0.025
    wave = _speechlike(3 * window_s + 0.4)
    window = int(round(window_s * 16000))
    pieces = [wave[i : i + window] for i in range(0, wave.size, window)]
    whole = ours(wave, pool="cls", return_tensors=True)
    parts = ours(pieces, pool="cls", return_tensors=True)
    assert len(pieces) == 4
    weights = torch.tensor([len(p) for p in pieces], dtype=torch.float32)
    expected = (parts * (weights / weights.sum())[:, None]).sum(dim=0)
    torch.testing.assert_close(whole[0], expected, atol=1e-5, rtol=1e-5)


def test_audio_resamples_tuples_and_dicts(tiny_checkpoint):
    ours = featx.pipeline("audio-feature-extraction", model=tiny_checkpoint("wav2vec2"), dtype="float32")
    wave16 = _speechlike(1.0)
    import soxr

    wave8 = soxr.resample(wave16, 16000, 8000, quality="HQ")
    a = ours((wave8, 8000), pool="mean", return_tensors=True)
    b = ours({"array": wave8, "sampling_rate": 8000}, pool="mean", return_tensors=True)
    torch.testing.assert_close(a, b)
    assert a.shape == (1, 32)


def test_wav2vec2_mean_pool_excludes_padding(tiny_checkpoint):
    ours = featx.pipeline("audio-feature-extraction", model=tiny_checkpoint("wav2vec2"), dtype="float32")
    short, long = _speechlike(0.5, seed=1), _speechlike(1.3, seed=2)
    alone = ours(short, pool="mean", return_tensors=True)
    batched = ours([short, long], pool="mean", batch_size=2, return_tensors=True)
    torch.testing.assert_close(batched[0], alone[0], atol=1e-4, rtol=1e-4)


def test_ast_mean_pool_skips_padded_patches(tiny_checkpoint):
    ours = featx.pipeline("audio-feature-extraction", model=tiny_checkpoint("audio-spectrogram-transformer"), dtype="float32")
    wave = _speechlike(0.5)
    real_frames = 1 + (wave.size - 400) // 160
    tokens = ours(wave, return_tensors=True)[0]
    mean = ours(wave, pool="mean", return_tensors=True)[0]
    f, t = ours.model.grid
    keep = torch.tensor([(i % t) * ours.model.time_stride < real_frames for i in range(f * t)])
    assert 0 < int(keep.sum()) < f * t
    torch.testing.assert_close(mean, tokens[2:][keep].mean(dim=0), atol=1e-5, rtol=1e-5)


def test_group_norm_wav2vec2_runs_unmasked_but_pools_real_frames(tiny_checkpoint):
    import transformers as tf

    folder = tiny_checkpoint("wav2vec2-group")
    ours = featx.pipeline("audio-feature-extraction", model=folder, dtype="float32")
    short, long = _speechlike(0.5, seed=3), _speechlike(1.0, seed=4)
    pooled = ours([short, long], pool="mean", batch_size=2, return_tensors=True)
    ref = tf.Wav2Vec2Model.from_pretrained(folder).eval()
    fe = tf.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    batch = fe([short, long], sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    with torch.no_grad():
        hidden = ref(batch.input_values).last_hidden_state  # no mask, as the reference advises
    frames = ref._get_feat_extract_output_lengths(batch.attention_mask.sum(-1))
    expected = torch.stack([hidden[i, : int(n)].mean(dim=0) for i, n in enumerate(frames)])
    torch.testing.assert_close(pooled, expected, atol=1e-4, rtol=1e-4)
