import numpy as np
import pytest
import torch
from PIL import Image

import featx
from featx.integrations import Collator, transform


def _images(n):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 30, 3), dtype=np.uint8)) for i in range(n)]


@pytest.fixture
def vit():
    return featx.ViTImageProcessor(size={"height": 16, "width": 16})


def test_datasets_set_transform_and_with_transform(vit):
    datasets = pytest.importorskip("datasets")
    images = _images(4)
    ds = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0, 1]}).cast_column("image", datasets.Image())
    view = ds.with_transform(transform(vit, keep=True))
    row = view[1]
    expected = vit(images[1], return_tensors="pt").pixel_values[0]
    torch.testing.assert_close(row["pixel_values"], expected)
    assert row["label"] == 1
    ds.set_transform(transform(vit))
    batch = ds[:3]
    assert batch["pixel_values"].shape == (3, 3, 16, 16) and set(batch) == {"pixel_values"}


def test_dataloader_collate_fn(vit):
    rows = [{"image": im, "label": i % 2} for i, im in enumerate(_images(5))]
    loader = torch.utils.data.DataLoader(rows, batch_size=2, collate_fn=Collator(vit))
    batches = list(loader)
    assert [b["pixel_values"].shape[0] for b in batches] == [2, 2, 1]
    torch.testing.assert_close(batches[0]["label"], torch.tensor([0, 1]))
    torch.testing.assert_close(batches[1]["pixel_values"], vit(_images(5)[2:4], return_tensors="pt").pixel_values)


def test_audio_collate_pads_with_mask():
    fe = featx.Wav2Vec2FeatureExtractor(return_attention_mask=True)
    rows = [{"audio": {"array": np.ones(n, np.float32), "sampling_rate": 16000}} for n in (100, 160)]
    batch = Collator(fe)(rows)
    assert batch["input_values"].shape == (2, 160)
    assert batch["attention_mask"].sum(dim=1).tolist() == [100, 160]


def test_missing_column_is_named(vit):
    with pytest.raises(featx.InputError, match="pass key="):
        Collator(vit)([{"foo": 1}])


@pytest.mark.parametrize("column", ["image", "img", "pixel_values"])
def test_usual_image_column_names_are_found(vit, column):
    """The column is guessed from featx.engine.inputs' one list (the data before its path)."""
    images = _images(2)
    rows = [{"path": f"{i}.png", column: im, "label": i} for i, im in enumerate(images)]
    batch = Collator(vit)(rows)
    torch.testing.assert_close(batch["pixel_values"], vit(images, return_tensors="pt").pixel_values)
    assert batch["label"].tolist() == [0, 1]


@pytest.mark.parametrize("column", ["audio", "speech", "array"])
def test_usual_audio_column_names_are_found(column):
    fe = featx.Wav2Vec2FeatureExtractor(return_attention_mask=True)
    rows = [{column: {"array": np.ones(n, np.float32), "sampling_rate": 16000}} for n in (100, 160)]
    assert Collator(fe)(rows)["attention_mask"].sum(dim=1).tolist() == [100, 160]
