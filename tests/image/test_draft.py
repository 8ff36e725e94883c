"""Opt-in reduced-size JPEG decoding (featx.image.draft): off by default, bounded differences when on,
other inputs untouched, and the embed command's ``-p jpeg_draft=K``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import featx.image.processors as P
from featx.cli import EXIT_OK, EXIT_USAGE, main
from featx.errors import ConfigError
from featx.image.draft import draft_factor, draft_request, set_draft, split_draft_option
from featx.image.io import load_image

from ..engine._helpers import photo, read_rows

# Bounds a little above the largest differences measured on real photos (see featx.image.draft):
# k=2 at most 0.171, k=4 at most 0.043; the mean over a whole set was <= 2.7e-3 (one smooth
# image may differ by one uint8 step in many pixels, so the per-image mean bound is looser).
BOUNDS = {2: (0.25, 8e-3), 4: (0.06, 4e-3)}  # (max, mean of one image)
MAX_ABS = BOUNDS[4][0]
SIZES = [(3200, 2400), (1800, 1200), (1200, 1800), (2400, 600), (1000, 1000), (300, 200)]


def processors():
    return {
        "vit": P.ViTImageProcessor(),
        "clip": P.CLIPImageProcessor(),
        "dinov2": P.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, resample=3,
                                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]),
        "siglip224": P.SiglipImageProcessor(),
        "siglip384": P.SiglipImageProcessor(size={"height": 384, "width": 384}),
    }


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("draft")
    paths = []
    for i, size in enumerate(SIZES):
        path = folder / f"p{i}.jpg"
        arr = np.asarray(photo(i, size)).astype(np.int16)
        arr += np.random.default_rng(i).integers(-6, 7, arr.shape[:2] + (1,), dtype=np.int16)  # sensor-ish noise
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def test_off_by_default_and_bad_values_refused():
    proc = P.ViTImageProcessor()
    assert draft_factor(proc) is None and draft_request(proc) is None
    for bad in (1, 0, 2.5, "4", True, -3):
        with pytest.raises(ConfigError, match="jpeg_draft"):
            draft_factor(_with(bad))
    assert draft_factor(_with(4.0)) == 4
    assert split_draft_option({"jpeg_draft": 3, "size": 5}) == ({"size": 5}, 3)
    assert split_draft_option({"size": 5}) == ({"size": 5}, None)
    with pytest.raises(ConfigError):
        split_draft_option({"jpeg_draft": 1})


def _with(value):
    proc = P.ViTImageProcessor()
    proc.jpeg_draft = value
    return proc


def test_no_resize_step_never_drafts():
    proc = set_draft(P.ViTImageProcessor(do_resize=False), 4)
    assert draft_request(proc) is None


@pytest.mark.parametrize("k", sorted(BOUNDS))
@pytest.mark.parametrize("name", sorted(processors()))
def test_pixel_values_stay_within_the_measured_bound(name, k, jpegs):
    max_abs, mean_abs = BOUNDS[k]
    proc = processors()[name]
    drafted_proc = set_draft(processors()[name], k)
    request = draft_request(drafted_proc)
    assert request is not None
    plan = proc.call_plan({})
    drafted_any = False
    for path in jpegs:
        full = load_image(path)
        small = load_image(path, draft=request)
        target, _ = proc.resize_plan(full.height, full.width, plan)
        # the decoded image never drops below k times the resize target on either side
        assert small.height >= min(full.height, k * target[0]) and small.width >= min(full.width, k * target[1])
        drafted_any |= small.size != full.size
        a = proc(full, return_tensors="np").pixel_values
        b = proc(small, return_tensors="np").pixel_values
        assert a.shape == b.shape and a.dtype == b.dtype
        diff = np.abs(a.astype(np.float64) - b)
        assert diff.max() <= max_abs and diff.mean() <= mean_abs, (path, diff.max(), diff.mean())
        if small.size == full.size:
            assert diff.max() == 0.0
    # the bound was tested on drafted images, not only on untouched ones (no test photo is 4 x 384
    # = 1536 on each side twice over, so SigLIP 384 drafts only at k=2)
    assert drafted_any or (name, k) == ("siglip384", 4)


def test_the_family_decodes_small_only_when_the_processor_opts_in(jpegs, tmp_path):
    from featx.families import family_for

    family = family_for("vit")
    plain, opted = P.ViTImageProcessor(), set_draft(P.ViTImageProcessor(), 4)
    big = jpegs[0]
    exact = family.prepare(plain, str(big))["pixel_values"]
    assert np.array_equal(exact, P.ViTImageProcessor()(load_image(big), return_tensors="np").pixel_values)
    drafted = family.prepare(opted, str(big))["pixel_values"]
    assert 0 < np.abs(drafted - exact).max() <= MAX_ABS
    # PNG files and PIL images are never drafted: identical with and without the option
    png = tmp_path / "big.png"
    Image.open(big).save(png)
    assert np.array_equal(family.prepare(opted, str(png))["pixel_values"], family.prepare(plain, str(png))["pixel_values"])
    pil = load_image(big)
    assert np.array_equal(family.prepare(opted, pil)["pixel_values"], exact)


def test_exif_rotated_jpeg_uses_the_upright_size(tmp_path):
    arr = np.asarray(photo(3, (2000, 1000)))  # 2000 wide, 1000 high as stored
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: upright it is 1000 wide, 2000 high
    Image.fromarray(arr).save(path, quality=90, exif=exif)
    seen = []

    def request(width, height):
        seen.append((width, height))
        return 500, 250  # (height, width) of the upright image

    img = load_image(path, draft=request)
    assert seen == [(1000, 2000)]
    assert img.size == (250, 500)  # 1/4 scale of the upright 1000x2000


def test_embed_cli_option(tiny_checkpoint, jpegs, tmp_path):
    vit = str(tiny_checkpoint("vit"))
    args = ["embed", str(jpegs[0].parent), "--model", vit, "--progress", "none", "--dtype", "float32",
            "--workers", "1"]
    assert main([*args, "--output", str(tmp_path / "a"), "-p", "jpeg_draft=4"]) == EXIT_OK
    # the option is part of the job's identity: resuming without it is refused
    assert main([*args, "--output", str(tmp_path / "a")]) == EXIT_USAGE
    assert main([*args, "--output", str(tmp_path / "b"), "-p", "jpeg_draft=1"]) == EXIT_USAGE


def test_every_processor_loader_takes_the_option(tiny_checkpoint, jpegs, tmp_path):
    from featx.embedding import Embedder
    from featx.pipelines import load_processor

    vit = str(tiny_checkpoint("vit"))
    assert load_processor(vit, jpeg_draft=3).jpeg_draft == 3
    assert draft_factor(load_processor(vit)) is None
    assert Embedder(vit, dtype="float32", jpeg_draft=4).processor.jpeg_draft == 4
    with pytest.raises(ConfigError, match="jpeg_draft"):
        load_processor(vit, jpeg_draft=0)
    # featx features: drafted pixel values differ from the full decode's, within the bound
    folder = jpegs[0].parent
    args = ["features", str(folder), "--processor", vit, "--progress", "none", "--workers", "1", "--limit", "1"]
    assert main([*args, "--output", str(tmp_path / "f1")]) == EXIT_OK
    assert main([*args, "--output", str(tmp_path / "f2"), "-p", "jpeg_draft=4"]) == EXIT_OK
    (full,), (small,) = (list(read_rows(tmp_path / f).values()) for f in ("f1", "f2"))
    a, b = (np.asarray(r["pixel_values"], np.float64) for r in (full, small))
    assert full["path"] == small["path"] == str(jpegs[0]) and a.shape == b.shape
    assert 0 < np.abs(a - b).max() <= MAX_ABS  # the first photo (3200x2400) is drafted
