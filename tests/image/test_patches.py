"""featx.image.patches: patchify/unpatchify and extract_patches/merge_patches, NumPy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featx.errors import InputError
from featx.image.patches import (
    extract_patches,
    grid_shape,
    merge_patches,
    patch_indices,
    patchify,
    unpatchify,
)

RNG = np.random.default_rng(0)
DTYPES = [np.uint8, np.int16, np.float16, np.float32, np.float64]


def random(shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        return RNG.integers(0, 200, shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def patchify_reference(img: np.ndarray, ph: int, pw: int, sh: int, sw: int) -> np.ndarray:
    """The obvious loop, CHW -> (L, C, ph, pw)."""
    _, h, w = img.shape
    return np.stack(
        [img[:, y : y + ph, x : x + pw] for y in range(0, h - ph + 1, sh) for x in range(0, w - pw + 1, sw)]
    )


# ---- patchify / unpatchify -------------------------------------------------------------------


def test_non_overlapping_layout_is_raster_order() -> None:
    img = np.arange(2 * 4 * 6).reshape(2, 4, 6)
    p = patchify(img, 2)
    assert p.shape == (6, 2, 2, 2)
    np.testing.assert_array_equal(p[1], img[:, 0:2, 2:4])  # second patch: first row, second column
    np.testing.assert_array_equal(p[3], img[:, 2:4, 0:2])  # fourth: second row, first column
    np.testing.assert_array_equal(p, patchify_reference(img, 2, 2, 2, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, patch, step",
    [((3, 8, 12), 4, None), ((1, 9, 7), (3, 7), None), ((3, 10, 10), 4, 2), ((2, 7, 9), (3, 5), (2, 1)), ((3, 5, 5), 5, 1)],
)
def test_patchify_matches_loop_and_round_trips(shape: tuple[int, ...], patch, step, dtype: type) -> None:
    img = random(shape, dtype)
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    sh, sw = (ph, pw) if step is None else ((step, step) if isinstance(step, int) else step)
    p = patchify(img, patch, step)
    assert p.dtype == img.dtype
    np.testing.assert_array_equal(p, patchify_reference(img, ph, pw, sh, sw))
    back = unpatchify(p, shape[1:], step)
    assert back.dtype == img.dtype and back.shape == img.shape
    np.testing.assert_array_equal(back, img)
    pt = patchify(torch.from_numpy(img), patch, step)
    np.testing.assert_array_equal(pt.numpy(), p)
    np.testing.assert_array_equal(unpatchify(pt, shape[1:], step).numpy(), img)


def test_two_d_and_batched_layouts() -> None:
    img = random((4, 6))
    p = patchify(img, 2)
    assert p.shape == (6, 2, 2)
    np.testing.assert_array_equal(unpatchify(p, (4, 6)), img)
    batch = random((3, 2, 4, 6))
    pb = patchify(batch, 2, 1)
    assert pb.shape == (3, 15, 2, 2, 2)
    for i in range(3):
        np.testing.assert_array_equal(pb[i], patchify(batch[i], 2, 1))
    np.testing.assert_array_equal(unpatchify(pb, (4, 6), 1), batch)


def test_outputs_are_new_arrays() -> None:
    img = random((1, 4, 4))
    p = patchify(img, 4)  # a single patch could be a plain view of the input
    p[...] = 0
    assert img.any()
    t = torch.from_numpy(random((1, 4, 4)))
    pt = patchify(t, 4)
    pt.zero_()
    assert t.abs().sum() > 0
    back = unpatchify(patchify(img, 4), (4, 4))
    assert not np.may_share_memory(back, img)


def test_torch_keeps_dtype_device_and_grad() -> None:
    t = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    p = patchify(t, 3)
    assert p.dtype == torch.float64 and p.device == t.device and p.requires_grad
    p.sum().backward()
    assert torch.equal(t.grad, torch.ones_like(t))


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda x: patchify(x, 0), "patch_size must be >= 1"),
        (lambda x: patchify(x, 2.5), "patch_size must be an int"),
        (lambda x: patchify(x, True), "patch_size must be an int"),
        (lambda x: patchify(x, (2, 2, 2)), "patch_size must be an int"),
        (lambda x: patchify(x, 9), "larger than the image"),
        (lambda x: patchify(x, 3), "do not cover"),
        (lambda x: patchify(x, 4, 5), "larger than patch_size"),
        (lambda x: patchify(x, 4, 0), "step must be >= 1"),
        (lambda x: patchify(x, 4, 3), "do not cover"),
        (lambda x: patchify(x[None, None], 2), r"got \(1, 1, 3, 8, 8\)"),
        (lambda x: patchify(x.tolist(), 2), "NumPy array or a torch tensor"),
        (lambda x: unpatchify(patchify(x, 2), (8, 10)), "got 16 patches"),
        (lambda x: unpatchify(patchify(x, 2), (9, 8)), "do not cover"),
        (lambda x: unpatchify(patchify(x, 2)[0, 0, 0], (8, 8)), "expected patches of shape"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        call(random((3, 8, 8)))


def test_grid_shape() -> None:
    assert grid_shape((1080, 1920), 30) == (36, 64)
    assert grid_shape((10, 10), 4, 2) == (4, 4)
    assert grid_shape((7, 9), (3, 5), (2, 1)) == (3, 5)


# ---- extract_patches / merge_patches ---------------------------------------------------------


def test_indices_cover_the_image_with_the_last_patch_on_the_border() -> None:
    idx = patch_indices((10, 7), (4, 3), (1, 0))
    xs = sorted({i[0] for i in idx})
    ys = sorted({i[2] for i in idx})
    assert xs == [0, 3, 4] and ys == [0, 3, 6]
    assert idx[0] == (0, 3, 0, 4) and idx[-1] == (4, 7, 6, 10)
    assert len(idx) == 9
    assert patch_indices((8, 8), 4) == [(0, 4, 0, 4), (4, 8, 0, 4), (0, 4, 4, 8), (4, 8, 4, 8)]
    assert patch_indices((4, 4), 4, 3) == [(0, 4, 0, 4)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["avg", "max", "overwrite"])
def test_extract_merge_round_trip_is_exact(dtype: type, mode: str) -> None:
    img = random((3, 11, 13), dtype)
    patches, idx = extract_patches(img, (4, 5), (1, 2))
    assert patches.shape == (len(idx), 3, 4, 5) and patches.dtype == img.dtype
    for p, (x0, x1, y0, y1) in zip(patches, idx):
        np.testing.assert_array_equal(p, img[:, y0:y1, x0:x1])
    merged = merge_patches(patches, idx, mode=mode)
    assert merged.dtype == img.dtype
    np.testing.assert_array_equal(merged, img)
    np.testing.assert_array_equal(merge_patches(patches, idx, (11, 13), mode), img)
    pt, idx_t = extract_patches(torch.from_numpy(img), (4, 5), (1, 2))
    assert idx_t == idx
    np.testing.assert_array_equal(pt.numpy(), patches)
    np.testing.assert_array_equal(merge_patches(pt, idx, mode=mode).numpy(), img)


def test_merge_modes_combine_overlaps() -> None:
    patches = np.stack([np.full((1, 2, 2), 1.0), np.full((1, 2, 2), 4.0)])
    idx = [(0, 2, 0, 2), (1, 3, 0, 2)]
    np.testing.assert_array_equal(merge_patches(patches, idx, mode="avg")[0], [[1, 2.5, 4], [1, 2.5, 4]])
    np.testing.assert_array_equal(merge_patches(patches, idx, mode="max")[0], [[1, 4, 4], [1, 4, 4]])
    np.testing.assert_array_equal(merge_patches(patches, idx, mode="overwrite")[0], [[1, 4, 4], [1, 4, 4]])
    ints = patches.astype(np.uint8)
    ints[1] = 2
    np.testing.assert_array_equal(merge_patches(ints, idx, mode="avg")[0], [[1, 2, 2], [1, 2, 2]])  # 1.5 rounds to even
    negative = -patches
    np.testing.assert_array_equal(merge_patches(negative, idx, mode="max")[0], [[-1, -1, -4], [-1, -1, -4]])
    np.testing.assert_array_equal(
        merge_patches(torch.from_numpy(patches), idx, mode="avg").numpy(), merge_patches(patches, idx, mode="avg")
    )


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda p, i: merge_patches(p, i[:-1]), "indices"),
        (lambda p, i: merge_patches(p, i, mode="sum"), "mode must be"),
        (lambda p, i: merge_patches(p, [(0, 4, 0)] + i[1:]), "x_start, x_end"),
        (lambda p, i: merge_patches(p, [(0, 4, 0, 4)] * len(i), (8, 8)), "uncovered"),
        (lambda p, i: merge_patches(p, i, (4, 4)), "inside the 4x4 image"),
        (lambda p, i: merge_patches(p, [(0, 3, 0, 4)] + i[1:]), "not a 4x4 box"),
        (lambda p, i: extract_patches(np.zeros((3, 3)), 4), "larger than the image"),
        (lambda p, i: extract_patches(np.zeros((8, 8)), 4, 4), "overlap"),
        (lambda p, i: extract_patches(np.zeros((8, 8)), 4, -1), "overlap must be >= 0"),
    ],
)
def test_merge_and_extract_errors(call, pattern: str) -> None:
    patches, idx = extract_patches(random((1, 8, 8)), 4, 2)
    with pytest.raises(InputError, match=pattern):
        call(patches, idx)


# ---- properties ------------------------------------------------------------------------------


@st.composite
def grid_case(draw):  # type: ignore[no-untyped-def]
    ph = draw(st.integers(1, 5))
    pw = draw(st.integers(1, 5))
    sh = draw(st.integers(1, ph))
    sw = draw(st.integers(1, pw))
    rows = draw(st.integers(1, 4))
    cols = draw(st.integers(1, 4))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), ph + (rows - 1) * sh, pw + (cols - 1) * sw)
    dtype = draw(st.sampled_from(DTYPES))
    return shape, (ph, pw), (sh, sw), dtype


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid_case())
def test_property_patchify(case) -> None:  # type: ignore[no-untyped-def]
    shape, patch, step, dtype = case
    batch = random(shape, dtype)
    before = batch.copy()
    p = patchify(batch, patch, step)
    np.testing.assert_array_equal(unpatchify(p, shape[2:], step), batch)
    np.testing.assert_array_equal(patchify(torch.from_numpy(batch), patch, step).numpy(), p)
    for i in range(shape[0]):
        np.testing.assert_array_equal(patchify(batch[i], patch, step), p[i])
        np.testing.assert_array_equal(unpatchify(p[i], shape[2:], step), batch[i])
    np.testing.assert_array_equal(batch, before)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.integers(1, 6),
    st.integers(1, 6), st.data(), st.sampled_from(DTYPES), st.sampled_from(["avg", "max", "overwrite"]),
)
def test_property_extract_merge(n, c, h, w, ph, pw, data, dtype, mode) -> None:  # type: ignore[no-untyped-def]
    ph, pw = min(ph, h), min(pw, w)
    overlap = (data.draw(st.integers(0, ph - 1)), data.draw(st.integers(0, pw - 1)))
    batch = random((n, c, h, w), dtype)
    before = batch.copy()
    patches, idx = extract_patches(batch, (ph, pw), overlap)
    # The indices cover the image, start at 0 and end on the border.
    assert min(i[0] for i in idx) == 0 and max(i[1] for i in idx) == w
    assert min(i[2] for i in idx) == 0 and max(i[3] for i in idx) == h
    np.testing.assert_array_equal(merge_patches(patches, idx, mode=mode), batch)
    torch_patches, _ = extract_patches(torch.from_numpy(batch), (ph, pw), overlap)
    np.testing.assert_array_equal(torch_patches.numpy(), patches)
    noisy = patches + random(patches.shape, dtype)  # different overlapping values: numpy == torch still
    np.testing.assert_array_equal(
        merge_patches(torch.from_numpy(noisy), idx, mode=mode).numpy(), merge_patches(noisy, idx, mode=mode)
    )
    for i in range(n):
        single, idx_i = extract_patches(batch[i], (ph, pw), overlap)
        assert idx_i == idx
        np.testing.assert_array_equal(single, patches[i])
        np.testing.assert_array_equal(merge_patches(noisy[i], idx, (h, w), mode), merge_patches(noisy, idx, mode=mode)[i])
    np.testing.assert_array_equal(batch, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_stay_on_device_and_match_cpu() -> None:
    cpu = torch.from_numpy(random((2, 3, 11, 13)))
    gpu = cpu.cuda()
    p = patchify(gpu[..., :10, :12], 4, 2)
    assert p.is_cuda
    assert torch.equal(p.cpu(), patchify(cpu[..., :10, :12], 4, 2))
    assert torch.equal(unpatchify(p, (10, 12), 2).cpu(), cpu[..., :10, :12])
    patches, idx = extract_patches(gpu, 4, 1)
    for mode in ("avg", "max", "overwrite"):
        merged = merge_patches(patches, idx, mode=mode)
        assert merged.is_cuda and torch.equal(merged.cpu(), cpu)
