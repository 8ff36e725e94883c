"""Tiny random CLIP and SigLIP full checkpoints WITH tokenizers (fixed seeds), saved in HF format.

Built with `transformers` (the test-only reference): the tokenizers are trained here on a few
sentences (a byte-level BPE for CLIP, a SentencePiece unigram model for SigLIP) and saved by the
reference's own tokenizer classes, so ``tokenizer.json``/``spiece.model`` + ``tokenizer_config.json``
are exactly what the reference writes. ``tiny_clip(path)`` / ``tiny_siglip(path)`` return ``path``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

CORPUS = [
    "a photo of a red car", "a photo of a blue cat", "the dog runs on the beach at sunset",
    "Café naïve résumé über straße", "emoji 😀 test 🎉", "green square on white", "yellow circle, black bars!",
    "ein Hund am Strand", "猫の写真", "numbers 1234567890 and symbols #@$%", "It's what we'd've done",
    "a photo of a dog", "a diagram of a red triangle", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
]
VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32,
              patch_size=8)
TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def _randomize(model, seed: int) -> None:
    """Every parameter (norms and biases too) gets seeded noise, so a misplaced weight shows."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def clip_tokenizer(path: Path, model_max_length: int = 77):
    """A byte-level BPE trained on `CORPUS` with CLIP's pipeline, saved by the reference's CLIPTokenizer."""
    import transformers as tf
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                                   r"""[^\s\p{L}\p{N}]+"""), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                  end_of_word_suffix="</w>", initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    state = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split()) for m in state["merges"]]
    reference = tf.CLIPTokenizer(vocab=state["vocab"], merges=merges, model_max_length=model_max_length)
    reference.save_pretrained(path)
    return reference


def siglip_tokenizer(path: Path):
    """A SentencePiece unigram model trained on `CORPUS`, saved by the reference's SiglipTokenizer."""
    import sentencepiece as spm
    import transformers as tf

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 8), model_writer=buf, vocab_size=150, model_type="unigram", pad_id=0,
        eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, num_threads=1, seed_sentencepiece_size=1000)
    path.mkdir(parents=True, exist_ok=True)
    (path / "spiece.model").write_bytes(buf.getvalue())
    reference = tf.SiglipTokenizer(str(path / "spiece.model"))
    reference.save_pretrained(path)
    return reference


def tiny_clip(path: str | Path, seed: int = 0, *, projection_dim: int = 16) -> Path:
    """A random ``CLIPModel`` (text + vision towers, projections, logit scale) with its tokenizer
    and image processor, saved into ``path``."""
    import torch
    import transformers as tf

    path = Path(path)
    tok = clip_tokenizer(path)
    torch.manual_seed(seed)
    text = dict(TEXT, vocab_size=len(tok), max_position_embeddings=77, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=VISION, projection_dim=projection_dim)).eval()
    _randomize(model, seed)
    model.save_pretrained(path, safe_serialization=True)
    tf.CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def tiny_siglip(path: str | Path, seed: int = 0) -> Path:
    """A random ``SiglipModel`` (text + vision towers, heads, logit scale and bias) with its
    SentencePiece tokenizer and image processor, saved into ``path``."""
    import torch
    import transformers as tf

    path = Path(path)
    tok = siglip_tokenizer(path)
    torch.manual_seed(seed)
    text = dict(TEXT, vocab_size=len(tok), max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id)
    model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=VISION)).eval()
    _randomize(model, seed)
    model.save_pretrained(path, safe_serialization=True)
    tf.SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(path)
    return path
