"""The image processors' one plan: options merged in one place, one per-item path for every
processor (Fuyu included), each image's layout resolved once, and concurrency owned by the caller
(an ``executor`` passed in, or a pool that lives for one call; nothing cached or started at import)."""

from __future__ import annotations

import ast
import pathlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

import featx.image.layout as L
import featx.image.plan as plan_module
import featx.image.processors as P
from featx.image import functional as F
from featx.image.fuyu import FuyuImageProcessor
from featx.image.options import merge_options
from featx.image.threads import call_pool, map_threads

RNG = np.random.default_rng(11)
IMAGE_DIR = pathlib.Path(P.__file__).parent


def u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def featx_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("featx-")]


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="caller")
        self.submitted = 0

    def submit(self, *args, **kwargs):  # type: ignore[override]
        self.submitted += 1
        return super().submit(*args, **kwargs)


def test_merge_options_lays_given_values_over_stored_ones():
    stored = {"do_resize": True, "size": {"height": 3, "width": 3}, "image_mean": 0.5}
    merged = merge_options(stored, {"do_resize": False, "size": None, "image_mean": [0.1, 0.2, 0.3], "extra": 1})
    assert merged == {"do_resize": False, "size": {"height": 3, "width": 3}, "image_mean": [0.1, 0.2, 0.3], "extra": 1}
    assert stored["do_resize"] is True  # not modified


def test_call_plan_is_the_one_resolution_for_every_processor():
    vit = P.ViTImageProcessor()
    plan = vit.call_plan({"size": 32, "resample": "bicubic", "do_normalize": None})
    assert plan.size == {"height": 32, "width": 32} and plan.resample == 3 and plan.do_normalize
    conv = P.ConvNextImageProcessor()
    assert conv.call_plan({"crop_pct": 0.5}).extra["crop_pct"] == 0.5
    fuyu = FuyuImageProcessor()
    plan = fuyu.call_plan({"padding_value": 0.0})
    assert plan.extra["padding_value"] == 0.0 and plan.extra["padding_mode"] == "constant"
    assert plan.size == {"height": 1080, "width": 1920}


def test_fuyu_is_a_base_image_processor_with_its_own_hooks():
    assert issubclass(FuyuImageProcessor, P.BaseImageProcessor)
    fuyu = FuyuImageProcessor(size={"height": 40, "width": 60})
    plan = fuyu.call_plan({})
    assert fuyu.resize_plan(30, 50, plan) == (None, None)  # fits: left alone
    assert fuyu.resize_plan(80, 60, plan) == ((40, 30), None)  # downscaled to fit
    padded, layout = fuyu.pad_item(u8(30, 50, 3), L.CHANNELS_LAST, plan)
    assert layout == L.CHANNELS_FIRST and padded.shape == (3, 40, 60)
    vit = P.ViTImageProcessor()
    image = u8(5, 6, 3)
    assert vit.pad_item(image, L.CHANNELS_LAST, vit.call_plan({}))[0] is image
    # the base class's crop options have no effect on Fuyu, as in the reference
    out = fuyu(u8(30, 50, 3), do_center_crop=True, crop_size={"height": 5, "width": 5})
    assert out["images"][0][0].shape == (3, 40, 60)


def test_each_image_layout_is_inferred_once(monkeypatch):
    calls = []
    original = L.infer_channel_format

    def counting(img, *args, **kwargs):
        calls.append(tuple(img.shape))
        return original(img, *args, **kwargs)

    monkeypatch.setattr(L, "infer_channel_format", counting)
    monkeypatch.setattr(plan_module, "infer_channel_format", counting)
    batch = [u8(20, 30, 3), torch.from_numpy(u8(3, 25, 17)), Image.fromarray(u8(18, 23, 3)), u8(22, 19)]
    for proc in (P.ViTImageProcessor(size={"height": 8, "width": 8}), P.CLIPImageProcessor(), FuyuImageProcessor()):
        calls.clear()
        proc(batch, image_mean=0.5, image_std=0.5)
        assert sorted(calls) == [(3, 25, 17), (20, 30, 3)], type(proc).__name__


def test_an_executor_from_the_caller_is_used_and_left_running(monkeypatch):
    monkeypatch.setenv("FEATX_NUM_THREADS", "3")
    images = [u8(30 + i, 40, 3) for i in range(6)]
    for proc in (P.DeiTImageProcessor(), FuyuImageProcessor(size={"height": 50, "width": 60})):
        serial = proc(images, executor=None)
        with CountingExecutor() as pool:
            got = proc(images, executor=pool)
            assert pool.submitted >= 2  # the calling thread takes items too
            again = proc(images, executor=pool)  # still usable: the call did not shut it down
        key = "pixel_values" if "pixel_values" in got else "images"
        for a, b, c in zip(np.ravel(got[key]), np.ravel(serial[key]), np.ravel(again[key])):
            assert np.array_equal(a, b) and np.array_equal(a, c)


def test_no_pool_outlives_a_call(monkeypatch):
    monkeypatch.setenv("FEATX_NUM_THREADS", "3")
    before = featx_threads()
    big = Image.fromarray(u8(1200, 1600, 3))  # large enough for the resize kernel to split rows
    P.ViTImageProcessor()([u8(30, 40, 3) for _ in range(5)])
    P.ViTImageProcessor()(big)
    FuyuImageProcessor()([u8(30, 40, 3), u8(50, 20, 3)])
    F.resize(np.stack([u8(30, 40, 3)] * 4), (8, 8))
    assert featx_threads() == before == []


def test_one_thread_runs_serially(monkeypatch):
    monkeypatch.setenv("FEATX_NUM_THREADS", "1")
    seen = set()
    with call_pool(None, 5) as workers:
        assert not workers.parallel and workers.executor is None
    map_threads(lambda x: seen.add(threading.current_thread().name), list(range(5)))
    assert seen == {threading.current_thread().name}


def test_map_items_keeps_order_and_raises_the_earliest_error(monkeypatch):
    monkeypatch.setenv("FEATX_NUM_THREADS", "4")
    assert map_threads(lambda x: x * x, list(range(100))) == [x * x for x in range(100)]

    def fail_on_multiples_of_7(x: int) -> int:
        if x and x % 7 == 0:
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 7"):
        map_threads(fail_on_multiples_of_7, list(range(50)))


def test_a_busy_caller_executor_cannot_deadlock_a_call(monkeypatch):
    """The calling thread does the work itself when the executor's threads are all taken."""
    monkeypatch.setenv("FEATX_NUM_THREADS", "4")
    release = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as busy:
        blocker = busy.submit(release.wait)
        out = P.ViTImageProcessor(size={"height": 8, "width": 8})([u8(20, 30, 3)] * 5, executor=busy)
        big = F.resize_hwc(u8(2500, 2000, 3), (300, 200), 2, threads=4, executor=busy)
        release.set()
        blocker.result()
    assert len(out.pixel_values) == 5 and big.shape == (300, 200, 3)


def test_no_thread_pool_is_cached_in_a_module():
    for path in sorted(IMAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and "ThreadPoolExecutor(" in ast.unparse(node):
                cached = [d for d in node.decorator_list if "cache" in ast.unparse(d)]
                assert not cached, f"{path.name}:{node.name} caches a thread pool"
        for node in tree.body:  # nothing started at import
            if isinstance(node, ast.Assign):
                assert "ThreadPoolExecutor(" not in ast.unparse(node.value), path.name


def test_no_private_names_of_other_modules_are_used():
    """featx.image's modules use each other's public names only (``F._x`` would be a hidden coupling)."""
    for path in sorted(IMAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        modules = {
            (alias.asname or alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level >= 1 and node.module is None
            for alias in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                assert not node.attr.startswith("_"), f"{path.name}: {node.value.id}.{node.attr}"
            if isinstance(node, ast.ImportFrom) and node.level >= 1 and node.module is not None:
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private or node.module == "_resample_numba", f"{path.name}: from .{node.module} import {private}"


@pytest.mark.parametrize("device_route", [False, True])
def test_mixed_list_goes_through_the_same_per_item_path(device_route, monkeypatch):
    """The NumPy and torch routes share `prepare_item`; only the batch assembly differs."""
    seen = []
    original = plan_module.prepare_item

    def spy(item, layout, plan, steps, **kwargs):
        seen.append((layout, kwargs.get("device") is not None))
        return original(item, layout, plan, steps, **kwargs)

    monkeypatch.setattr(plan_module, "prepare_item", spy)
    if device_route:
        monkeypatch.setattr(P, "_wants_torch", lambda items, device: True)
    proc = P.ViTImageProcessor(size={"height": 8, "width": 8})
    out = proc([u8(20, 30, 3), torch.from_numpy(u8(3, 25, 17))], device="cpu" if device_route else None)
    assert seen == [(L.CHANNELS_LAST, device_route), (L.CHANNELS_FIRST, device_route)]
    assert all(isinstance(x, torch.Tensor) == device_route for x in out.pixel_values)
