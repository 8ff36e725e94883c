"""`featx.video.frames` in a ``torch.utils.data.DataLoader``, and videos in the image pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import featx
from featx import load_video
from featx.video import frames


def test_frames_in_a_dataloader_with_workers(videos, tiny_checkpoint):
    vit = str(tiny_checkpoint("vit"))
    ds = frames([videos["colour"], videos["vfr"], videos["sound"]], fps=1, processor=vit)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    items = [(p, int(f), float(t)) for batch in loader
             for p, f, t in zip(batch["path"], batch["frame"], batch["time_s"])]
    assert sorted(items) == sorted(
        [(str(videos["colour"]), i * 10, float(i)) for i in range(4)]
        + [(str(videos["vfr"]), n, t) for n, t in [(0, 0.0), (4, 1.0), (7, 2.0), (9, 3.2)]]
        + [(str(videos["sound"]), i * 10, float(i)) for i in range(3)])  # every frame once
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    processor = featx.load_processor(vit)
    first = next(iter(load_video(videos["colour"])))
    np.testing.assert_array_equal(batch["pixel_values"][0].numpy(),
                                  processor(first.image, return_tensors="np")["pixel_values"][0])


def test_frames_raw_images_transform_and_errors(videos):
    items = list(frames(videos["colour"], num_frames=2))
    assert [(i["frame"], i["image"].shape) for i in items] == [(0, (48, 64, 3)), (39, (48, 64, 3))]
    means = list(frames(videos["colour"], keyframes=True, transform=lambda im: float(im.mean())))
    assert len(means) == 8 and isinstance(means[0]["image"], float)
    with pytest.raises(featx.InputError):
        list(frames([videos["garbage"], videos["colour"]]))
    with pytest.warns(UserWarning, match="skipping"):
        kept = list(frames([videos["garbage"], videos["truncated"], videos["colour"]], errors="skip"))
    paths = [i["path"] for i in kept]
    assert paths.count(str(videos["colour"])) == 4 and paths.count(str(videos["truncated"])) >= 1


def test_pipeline_gives_per_frame_results_with_times(videos, tiny_checkpoint, tmp_path):
    vit = str(tiny_checkpoint("vit"))
    pipe = featx.pipeline("image-feature-extraction", model=vit, dtype="float32")
    result = pipe(str(videos["vfr"]), pool=True)
    assert [(r["frame"], r["time_s"]) for r in result] == [(0, 0.0), (4, 1.0), (7, 2.0), (9, 3.2)]
    images = [f.image for f in load_video(videos["vfr"])]
    expected = pipe(images, pool=True)
    np.testing.assert_allclose(np.asarray([r["features"] for r in result]), np.asarray(expected), rtol=1e-5,
                               atol=1e-6)
    tokens = pipe(str(videos["colour"]), video={"num_frames": 2}, return_tensors=True)
    assert [r["frame"] for r in tokens] == [0, 39] and tokens[0]["features"].shape == (1, 17, 32)
    from PIL import Image

    Image.fromarray(images[0]).save(tmp_path / "still.png")
    mixed = pipe([str(tmp_path / "still.png"), str(videos["colour"])], pool=True, video={"keyframes": True})
    assert np.asarray(mixed[0]).shape == (1, 32) and len(mixed[1]) == 8
