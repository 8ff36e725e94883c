"""Tiny random Hugging Face checkpoints (fixed seeds) saved with safetensors, for tests.

Built with `transformers`, the test-only reference, so featx is checked against real HF layouts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def _image_processor(kind: str):
    import transformers as tf

    if kind in ("clip", "clip_vision_model"):
        return tf.CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    if kind in ("siglip", "siglip_vision_model"):
        return tf.SiglipImageProcessorPil(size={"height": 32, "width": 32})
    if kind == "dinov2":
        return tf.BitImageProcessorPil(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    if kind == "deit":
        return tf.DeiTImageProcessorPil(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32})
    return tf.ViTImageProcessorPil(size={"height": 32, "width": 32})


def build(kind: str, folder: Path, seed: int = 0) -> Path:
    """Save a tiny ``kind`` model with its preprocessor into ``folder`` and return it."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    np.random.seed(seed)
    vision = dict(TINY, image_size=32, patch_size=8)
    if kind == "vit":
        model = tf.ViTModel(tf.ViTConfig(**vision))
    elif kind == "deit":
        model = tf.DeiTModel(tf.DeiTConfig(**vision))
    elif kind == "dinov2":
        model = tf.Dinov2Model(tf.Dinov2Config(**vision))
    elif kind == "clip":
        model = tf.CLIPModel(tf.CLIPConfig(text_config=dict(TINY, vocab_size=99), vision_config=vision, projection_dim=16))
    elif kind == "clip_vision_model":
        model = tf.CLIPVisionModel(tf.CLIPVisionConfig(**vision))
    elif kind == "siglip_vision_model":
        model = tf.SiglipVisionModel(tf.SiglipVisionConfig(**vision))
    elif kind == "whisper":
        model = tf.WhisperModel(
            tf.WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
                             decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=99,
                             pad_token_id=1, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2,
                             num_mel_bins=80, max_source_positions=1500, max_target_positions=32)
        )
    elif kind == "audio-spectrogram-transformer":
        model = tf.ASTModel(tf.ASTConfig(**TINY, max_length=128, num_mel_bins=128))
    elif kind in ("wav2vec2", "wav2vec2-group"):
        norm = dict(feat_extract_norm="layer", do_stable_layer_norm=True) if kind == "wav2vec2" else {}
        model = tf.Wav2Vec2Model(
            tf.Wav2Vec2Config(**TINY, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
                              num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=10, **norm)
        )
    else:
        raise ValueError(kind)
    model.eval().save_pretrained(folder, safe_serialization=True)
    if kind == "whisper":
        tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    elif kind == "audio-spectrogram-transformer":
        tf.ASTFeatureExtractor(max_length=128).save_pretrained(folder)
    elif kind == "wav2vec2":
        tf.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folder)
    elif kind == "wav2vec2-group":  # like wav2vec2-base: trained without attention masks
        tf.Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder)
    else:
        _image_processor(kind).save_pretrained(folder)
    return folder
