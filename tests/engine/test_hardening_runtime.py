"""Runtime hardening of the local engine: stop signals, worker crashes, the pixel budget, and the
private-URL policy. Each test builds its own inputs (tiny photos, a 127.0.0.1 HTTP server)."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFile

from featx.cli import main
from featx.engine.budget import PixelBudget
from featx.engine.interrupts import StopSignals
from featx.engine.local import RunOptions, run
from featx.engine.pools import ProcessPool, ThreadPool, WorkerDied, WorkerStartError
from featx.engine.inputs import Input
from featx.engine.state import KeySet
from featx.engine.workers import prefetch
from featx.errors import InputError

from ._helpers import featx_subprocess, photo, read_rows, write_photos
from ._runtime_helpers import CrashOn, TimedLoad, Unloadable, http_server, max_overlap

_PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture
def no_proxy(monkeypatch):
    for name in _PROXIES:
        monkeypatch.delenv(name, raising=False)


def _png(seed: int, size=(40, 32)) -> bytes:
    buf = io.BytesIO()
    photo(seed, size).save(buf, "PNG")
    return buf.getvalue()


def _inputs(keys):
    return [Input(str(k), str(k)) for k in keys]


# ---- A. SIGTERM / SIGINT stop the job promptly, keeping finished rows ---------------------------


def _wait_for(predicate, timeout: float, proc=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("signum, kind", [
    (signal.SIGTERM, "thread"),
    (signal.SIGINT, "thread"),
    (signal.SIGTERM, "process"),
])
def test_a_stop_signal_ends_a_job_stuck_on_a_download(tiny_checkpoint, tmp_path, no_proxy, signum, kind):
    """One input is a URL whose server never answers (the fetch would wait out its 10 s deadline):
    the signal still ends the job within seconds, with the rows done before it written."""
    vit = str(tiny_checkpoint("vit"))
    paths = write_photos(tmp_path / "photos", 40)
    slow_at = 30  # well past the read-ahead, so rows are done before the stuck download starts
    release = threading.Event()
    with http_server({"/slow.png": _png(7)}, {"/slow.png": release}) as (base, seen):
        url = f"{base}/slow.png"
        inputs = paths[:slow_at] + [url] + paths[slow_at:]
        listing = tmp_path / "inputs.txt"
        listing.write_text("\n".join(inputs) + "\n")
        out = tmp_path / "out"
        args = ["embed", f"@{listing}", "--model", vit, "--output", str(out), "--shard-size", "5",
                "--batch-size", "2", "--workers", "2", "--worker-type", kind, "--progress", "none",
                "--dtype", "float32"]
        # a child started from a shell job may inherit an ignored SIGINT; give it Python's default
        proc = featx_subprocess(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            assert _wait_for(seen["/slow.png"].is_set, 240, proc), proc.communicate()[1][-3000:]
            time.sleep(0.3)  # let the job reach the stuck input
            sent = time.monotonic()
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
        print(f"stopped {took:.2f} s after {signal.Signals(signum).name} ({kind} workers)")
        assert proc.returncode == 130, err[-3000:]
        # Typically 1-2.5 s, most of it Python tearing torch down; 5.5 s seen with three test runs
        # sharing two cores. Before the fix the exit waited for the download's 10 s deadline (11 s).
        assert took < 7, f"took {took:.1f} s to stop"
        assert "interrupted" in err
        partial = read_rows(out)
        assert 15 <= len(partial) <= slow_at, len(partial)
        assert set(partial) <= set(paths[:slow_at])
        assert all(row["error"] is None for row in partial.values())
        assert not list(out.glob("_tmp-*")) and not list(out.glob(".*tmp*"))
        if kind == "process" or signum == signal.SIGINT:
            return  # the rerun below is the same for every way of stopping
        release.set()  # the server now answers at once
        rerun = featx_subprocess(*args)
        _, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err[-3000:]
        assert f"skipped {len(partial)}" in err
        rows = read_rows(out)  # asserts each path once
        assert sorted(rows) == sorted(inputs)
        assert all(row["error"] is None for row in rows.values())


def test_a_signal_inside_a_critical_section_waits_for_its_end():
    stop = StopSignals().install()
    try:
        steps = []
        with pytest.raises(KeyboardInterrupt):
            with stop.deferred():
                signal.raise_signal(signal.SIGINT)
                steps.append("after the signal, still inside")
        assert steps == ["after the signal, still inside"] and stop.delivered
        with stop.finishing():  # later signals are dropped while the job writes what it has
            signal.raise_signal(signal.SIGINT)
    finally:
        stop.uninstall()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_stuck_worker_thread_does_not_hold_up_shutdown():
    gate = threading.Event()

    class Stuck:
        def prepare(self, src):
            if src == "stuck":
                gate.wait(30)
            return {"x": src}

    pool = ThreadPool(Stuck(), 2)
    stuck = pool.submit("stuck")
    assert pool.submit("fine").result(timeout=5) == {"x": "fine"}
    queued = [pool.submit(str(i)) for i in range(50)]
    start = time.monotonic()
    pool.shutdown()
    assert time.monotonic() - start < 0.5
    assert not stuck.done() and all(f.cancelled() or f.done() for f in queued)
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("featx-prep"))
    gate.set()


# ---- B. a worker process that dies fails only the input it held -------------------------------


def test_a_crashing_worker_process_fails_only_its_input():
    keys = [1, 2, "a-crash", 3, 4, "b-crash", 5, 6]
    got = list(prefetch(_inputs(keys), CrashOn(), done=KeySet(), workers=2, kind="process", ahead=4))
    assert [p.input.key for p in got] == [str(k) for k in keys]
    for p in got:
        if p.input.key.endswith("crash"):
            assert isinstance(p.error, WorkerDied)
            assert str(p.error) == f"{p.input.key}: worker process died (signal 11) while decoding this input"
        else:
            assert p.error is None and p.arrays["x"] == int(p.input.key) ** 2
    pids = [p.arrays["pid"] for p in got if p.error is None]
    assert os.getpid() not in pids and len(set(pids)) >= 2  # replaced after the crashes


def test_a_worker_process_that_cannot_start_stops_the_job():
    with pytest.raises(WorkerStartError, match="could not start"):
        list(prefetch(_inputs([1, 2, 3]), Unloadable(), done=KeySet(), workers=1, kind="process"))


def test_the_engine_writes_an_error_row_for_a_crash_and_goes_on(tiny_checkpoint, tmp_path):
    from featx.engine.jobs import FeaturesJob

    folder = tmp_path / "photos"
    paths = write_photos(folder, 8)
    photo(50).save(folder / "boom.png")
    job = FeaturesJob(tiny_checkpoint("vit"))
    job.preparer = CrashOn(job.preparer, suffix="boom.png")  # a decoder that segfaults on one file
    out = tmp_path / "out"
    opts = RunOptions(batch_size=3, workers=2, worker_kind="process", progress="none")
    summary = run(job, [str(folder)], str(out), opts)
    assert (summary.done, summary.failed, summary.interrupted) == (8, 1, False)
    rows = read_rows(out)
    assert sorted(rows) == sorted([*paths, str(folder / "boom.png")])
    boom = rows[str(folder / "boom.png")]
    assert boom["error"].endswith("worker process died (signal 11) while decoding this input")
    assert all(rows[p]["error"] is None and rows[p]["pixel_values"] for p in paths)
    again = run(job, [str(folder)], str(out), opts)  # resumes: nothing left to do
    assert (again.done, again.failed, again.skipped, again.skipped_failed) == (0, 0, 9, 1)


# ---- C. decoded pixels in flight stay under one budget ----------------------------------------


class _DecodeRecorder:
    """Instruments PIL's decode: pixels count from the start of ``load()`` until the preparer says
    it is done with them; ``peak`` is the most counted at once."""

    def __init__(self, delay: float) -> None:
        self.delay, self.lock = delay, threading.Lock()
        self.alive = self.peak = self.images = self.peak_images = 0

    def add(self, pixels: int) -> None:
        with self.lock:
            self.alive += pixels
            self.images += 1
            self.peak, self.peak_images = max(self.peak, self.alive), max(self.peak_images, self.images)

    def done(self, pixels: int) -> None:
        with self.lock:
            self.alive -= pixels
            self.images -= 1


@pytest.fixture
def recorder(monkeypatch):
    rec = _DecodeRecorder(delay=0.03)
    original = ImageFile.ImageFile.load

    def load(self):
        if getattr(self, "_im", None) is None:  # a first load: the decode
            rec.add(self.size[0] * self.size[1])
            time.sleep(rec.delay)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return rec


class _LoadAndPreprocess:
    def __init__(self, rec: _DecodeRecorder) -> None:
        self.rec = rec

    def prepare(self, src, *, budget=None):
        from featx.image.io import load_image

        with budget.hold() if budget is not None else _Null() as hold:
            image = load_image(src, pixel_budget=hold)
            pixels = image.size[0] * image.size[1]
            time.sleep(0.02)  # preprocessing
            self.rec.done(pixels)
        return {"pixels": pixels}


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _images(folder: Path, n: int, size=(100, 100)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"big_{i}.png"
        photo(i, size).save(path)
        paths.append(str(path))
    return paths


def _prepare_all(preparer, paths, budget, workers=4):
    return list(prefetch(_inputs(paths), preparer, done=KeySet(), workers=workers, ahead=len(paths), budget=budget))


def test_decoded_pixels_in_flight_stay_under_the_budget(recorder, tmp_path):
    paths = _images(tmp_path / "img", 12)
    budget = PixelBudget(2 * 100 * 100)  # two images
    got = _prepare_all(_LoadAndPreprocess(recorder), paths, budget)
    assert all(p.error is None for p in got)
    print(f"peak decoded pixels in flight: {recorder.peak} (budget {budget.max_pixels}, "
          f"{recorder.peak_images} images at once, 4 workers)")
    assert recorder.peak <= budget.max_pixels and budget.peak <= budget.max_pixels
    assert budget.in_flight == 0

    control = _DecodeRecorder(recorder.delay)  # the same without a budget: the workers overlap more
    recorder.__dict__.update(control.__dict__)
    _prepare_all(_LoadAndPreprocess(recorder), paths, None)
    assert recorder.peak > budget.max_pixels


def test_an_image_larger_than_the_whole_budget_runs_alone(recorder, tmp_path):
    paths = _images(tmp_path / "img", 4)
    budget = PixelBudget(5000)  # half an image
    got = _prepare_all(_LoadAndPreprocess(recorder), paths, budget)
    assert [p.arrays["pixels"] for p in got] == [10000] * 4
    assert recorder.peak_images == 1 and budget.peak == 10000 and budget.in_flight == 0


def test_the_budget_holds_across_worker_processes(tmp_path):
    paths = _images(tmp_path / "img", 8)
    budget = PixelBudget(2 * 100 * 100)
    pool = ProcessPool(TimedLoad(hold_s=0.1), 3, budget)
    try:
        got = [f.result(timeout=120) for f in [pool.submit(p) for p in paths]]
    finally:
        pool.shutdown()
    spans = [(g["t0"], g["t1"], g["pixels"]) for g in got]
    print(f"peak pixels in flight over 3 processes: {max_overlap(spans)} (budget {budget.max_pixels})")
    assert max_overlap(spans) <= budget.max_pixels and budget.peak <= budget.max_pixels
    assert budget.in_flight == 0


def test_a_crashed_process_gives_its_pixels_back(tmp_path):
    paths = _images(tmp_path / "img", 2)
    budget = PixelBudget(10000)
    pool = ProcessPool(CrashOn(TimedLoad(hold_s=0.0), suffix="big_0.png"), 1, budget)
    try:
        first = pool.submit(paths[0])
        with pytest.raises(WorkerDied):
            first.result(timeout=120)
        assert pool.submit(paths[1]).result(timeout=120)["pixels"] == 10000  # not stuck on leaked pixels
    finally:
        pool.shutdown()
    assert budget.in_flight == 0


def test_the_embedder_and_features_preparers_hold_pixels_through_preprocessing(tiny_checkpoint, tmp_path):
    from featx.embedding import Embedder
    from featx.engine.jobs import FeaturesJob

    path = _images(tmp_path / "img", 1, size=(64, 48))[0]
    vit = tiny_checkpoint("vit")
    for preparer in (Embedder(vit, dtype="float32").preparer(), FeaturesJob(vit).preparer):
        budget = PixelBudget(10**6)
        seen = []
        original = preparer.processor.__class__.__call__

        def spy(self, *args, _seen=seen, _budget=budget, **kwargs):
            _seen.append(_budget.in_flight)  # the image's pixels are held while it is preprocessed
            return original(self, *args, **kwargs)

        preparer.processor.__class__.__call__ = spy
        try:
            preparer.prepare(path, budget=budget)
        finally:
            preparer.processor.__class__.__call__ = original
        assert seen == [64 * 48] and budget.in_flight == 0


def test_the_engine_creates_one_budget_and_respects_it(tiny_checkpoint, tmp_path, monkeypatch):
    import featx.engine.local as local
    from featx.engine.jobs import FeaturesJob

    made = []

    class Recorded(PixelBudget):
        def __init__(self, max_pixels):
            super().__init__(max_pixels)
            made.append(self)

    monkeypatch.setattr(local, "PixelBudget", Recorded)
    paths = _images(tmp_path / "img", 6, size=(80, 60))
    opts = RunOptions(batch_size=2, workers=3, progress="none", max_pixels_in_flight=2 * 80 * 60)
    summary = run(FeaturesJob(tiny_checkpoint("vit")), paths, str(tmp_path / "out"), opts)
    assert summary.done == 6 and len(made) == 1
    assert 80 * 60 <= made[0].peak <= 2 * 80 * 60 and made[0].in_flight == 0


# ---- D. allow_private_urls --------------------------------------------------------------------


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


def test_load_image_and_load_audio_refuse_private_urls_when_asked(no_proxy):
    from featx import load_audio, load_image

    with http_server({"/a.png": _png(1), "/a.wav": _wav()}, {}) as (base, _):
        assert load_image(f"{base}/a.png").size == (40, 32)
        assert load_audio(f"{base}/a.wav").waveform.shape == (1600,)
        with pytest.raises(InputError, match=r"refused: 127\.0\.0\.1 resolves to non-public 127\.0\.0\.1 \(loopback\)"):
            load_image(f"{base}/a.png", allow_private_urls=False)
        with pytest.raises(InputError, match=r"\(loopback\)"):
            load_audio(f"{base}/a.wav", allow_private_urls=False)


@pytest.mark.parametrize("command", ["embed", "features"])
def test_no_private_urls_gives_an_error_row_naming_the_reason(tiny_checkpoint, tmp_path, no_proxy, command):
    vit = str(tiny_checkpoint("vit"))
    local_file = tmp_path / "local.png"
    photo(3).save(local_file)
    with http_server({"/cat.png": _png(2)}, {}) as (base, _):
        url = f"{base}/cat.png"
        listing = tmp_path / "inputs.txt"
        listing.write_text(f"{local_file}\n{url}\n")
        which = ["--model", vit, "--dtype", "float32"] if command == "embed" else ["--processor", vit]
        common = [command, f"@{listing}", *which, "--workers", "1", "--progress", "none"]
        assert main([*common, "--output", str(tmp_path / "refused"), "--no-private-urls"]) == 3
        rows = read_rows(tmp_path / "refused")
        assert rows[str(local_file)]["error"] is None  # local paths are not URLs: unaffected
        assert "refused: 127.0.0.1 resolves to non-public 127.0.0.1 (loopback)" in rows[url]["error"]
        assert main([*common, "--output", str(tmp_path / "allowed")]) == 0
        assert read_rows(tmp_path / "allowed")[url]["error"] is None


def test_embed_job_option_overrides_the_embedder(tiny_checkpoint, no_proxy):
    from featx.embedding import Embedder
    from featx.engine.jobs import EmbedJob

    embedder = Embedder(tiny_checkpoint("vit"), dtype="float32")
    job = EmbedJob(embedder, allow_private_urls=False)
    assert job.preparer.allow_private_urls is False and embedder.allow_private_urls is True
    assert job.embedder.model is embedder.model  # a view, not a second model
    with http_server({"/cat.png": _png(2)}, {}) as (base, _):
        with pytest.raises(InputError, match="loopback"):
            job.preparer.prepare(f"{base}/cat.png")
        assert embedder.prepare(f"{base}/cat.png")["pixel_values"].shape[-2:] == (32, 32)
