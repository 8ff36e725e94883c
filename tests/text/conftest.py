"""Fixtures of the text tests: a tiny CLIP trained in the test so that colour words find their
colours, and a folder of generated images of known colours and shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

COLORS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (30, 40, 220), "yellow": (235, 220, 30)}
SHAPES = ("square", "circle", "triangle")


def _noisy(rgb, rng, size=32):
    return np.clip(np.asarray(rgb, np.float64)[None, None] + rng.normal(0, 25, (size, size, 3)), 0, 255)


@pytest.fixture(scope="session")
def trained_clip(tmp_path_factory) -> Path:
    """A tiny CLIP (tests/text_checkpoints.py) trained contrastively for a few dozen steps on noisy
    colour fields and "a photo of a <colour> square": enough for "red" to find the red images."""
    import torch
    import transformers as tf

    from ..text_checkpoints import tiny_clip

    folder = tiny_clip(tmp_path_factory.mktemp("trained_clip"), seed=3)
    model = tf.CLIPModel.from_pretrained(folder).train()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    names = list(COLORS)
    text = tok([f"a photo of a {c} square" for c in names], padding=True, return_tensors="pt")
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only add overhead
    try:
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(40):
            pixels = np.stack([_noisy(COLORS[c], rng) for c in names]) / 255.0
            pixels = (torch.tensor(pixels, dtype=torch.float32).permute(0, 3, 1, 2) - mean) / std
            out = model(**text, pixel_values=pixels, return_loss=True)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    assert out.loss.item() < 0.05, out.loss.item()
    model.eval().save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def colour_images(tmp_path_factory) -> Path:
    """Three shapes in each of four colours (a darker shape on a noisy field), plus a broken file."""
    from PIL import Image, ImageDraw

    folder = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(7)
    for name, rgb in COLORS.items():
        for shape in SHAPES:
            image = Image.fromarray(_noisy(rgb, rng, 48).astype(np.uint8))
            draw = ImageDraw.Draw(image)
            dark = tuple(int(v * 0.8) for v in rgb)
            if shape == "square":
                draw.rectangle((12, 12, 36, 36), fill=dark)
            elif shape == "circle":
                draw.ellipse((10, 10, 38, 38), fill=dark)
            else:
                draw.polygon([(24, 8), (40, 40), (8, 40)], fill=dark)
            image.save(folder / f"{name}_{shape}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder
