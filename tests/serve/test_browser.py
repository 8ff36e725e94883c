"""The web page in a real browser: Debian's chromium driven by Playwright (never a downloaded
browser build), against a real `featx serve` process. Search by an uploaded image and by text,
see result thumbnails, use the keyboard, take a screenshot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the test extra)")

CHROMIUM = os.environ.get("FEATX_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=ARGS, viewport={"width": 1100, "height": 900})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


def _choose_by_keyboard(page, target):
    """Focus ``target``, press Enter, return the file chooser it opens. Headless chromium under
    load sometimes drops a chooser event, so up to three presses (each must open one to count)."""
    for attempt in range(3):
        page.focus(target)
        assert page.evaluate("document.activeElement.id") == target.lstrip("#")
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                page.keyboard.press("Enter")
            return chooser.value
        except playwright.TimeoutError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _result_paths(page):
    return page.locator("#results li .path").all_inner_texts()


def _thumbnails_loaded(page, n):
    page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('#results img.thumb')];"
        " return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }", arg=n)


def test_search_by_image_and_text_in_chromium(browser_page, live_server, photos, tmp_path):
    page = browser_page
    _, paths = photos
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(live_server.url + "/")
    page.wait_for_function("document.querySelector('#info').textContent.includes('rows')")
    info = page.locator("#info").inner_text()
    assert "10 rows" in info and "16 dims" in info and "clip" in info
    assert page.locator("#text-form").is_visible()  # the model has a text tower

    # image search: the uploaded photo's own row comes first, with a thumbnail
    page.set_input_files("#file", paths[4])
    page.wait_for_function("document.querySelectorAll('#results li').length === 10")
    _thumbnails_loaded(page, 10)
    assert _result_paths(page)[0] == paths[4]
    assert page.locator("#results li .score").first.inner_text().endswith("1.0000")
    assert "results for" in page.locator("#status").inner_text()

    # a prefix filter and k, then text search with the keyboard only
    page.fill("#k", "3")
    page.fill("#prefix", str(Path(paths[8]).parent))
    page.set_input_files("#file", paths[8])
    page.wait_for_function("document.querySelectorAll('#results li').length === 3")
    assert all(p.startswith(str(Path(paths[8]).parent)) for p in _result_paths(page))
    page.fill("#prefix", "")
    page.fill("#k", "5")
    page.focus("#text")
    page.keyboard.type("a photo of a dog")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#status').textContent.includes('a photo of a dog')")
    page.wait_for_function("document.querySelectorAll('#results li').length === 5")
    _thumbnails_loaded(page, 5)
    assert set(_result_paths(page)) <= set(paths)

    # keyboard: Tab reaches the drop zone, Enter opens the file chooser; arrows move in the results
    chooser = _choose_by_keyboard(page, "#drop")
    chooser.set_files(paths[1])
    page.wait_for_function(f"document.querySelector('#results li .path').textContent === {paths[1]!r}")
    page.focus("#results li:first-child")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement === document.querySelectorAll('#results li')[1]")

    shot = tmp_path / "serve-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    saved = os.environ.get("FEATX_SCREENSHOT_DIR")
    if saved:
        shutil.copy(shot, Path(saved) / shot.name)
    # every request the page made went to the featx server: no CDN, nothing else
    assert requests and all(u.startswith(live_server.url) or u.startswith("blob:") for u in requests), requests


def _as_video_rows(out, folder):
    """A copy of ``out`` whose rows carry video columns (frame, time_s), as video rows do."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(out, folder)
    times = {}
    for shard in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(shard)
        n = table.num_rows
        start = len(times)
        table = table.append_column("frame", pa.array(range(start, start + n), pa.int64()))
        table = table.append_column("time_s", pa.array([62.5 + 1.5 * (start + i) for i in range(n)]))
        pq.write_table(table, shard)
        times.update({p: 62.5 + 1.5 * (start + i) for i, p in enumerate(table.column("path").to_pylist())})
    return folder, times


def test_the_page_asks_for_the_token_and_shows_video_times(browser_page, clip_out, photos, tmp_path):
    from featx.serve.app import create_app
    from featx.serve.service import ServeConfig, Service

    from ._helpers import ThreadServer

    _, paths = photos
    page = browser_page
    video_out, times = _as_video_rows(clip_out, tmp_path / "video_out")
    service = Service(ServeConfig(out=str(video_out), dtype="float32", token="page-secret", text=False))
    server = ThreadServer(create_app(service))
    try:
        page.goto(server.url + "/")
        page.wait_for_selector("#token-form", state="visible")
        assert not page.locator("#results li").count()
        page.fill("#token", "page-secret")
        page.press("#token", "Enter")
        page.wait_for_function("document.querySelector('#info').textContent.includes('10 rows')")
        assert not page.locator("#text-form").is_visible()  # text=False (--no-text)
        assert not page.locator("#token-form").is_visible()
        page.set_input_files("#file", paths[2])
        page.wait_for_function("document.querySelectorAll('#results li').length === 10")
        _thumbnails_loaded(page, 10)
        assert _result_paths(page)[0] == paths[2]
        shown = page.locator("#results li .time").all_inner_texts()
        assert len(shown) == 10
        minutes, seconds = divmod(times[paths[2]], 60)
        assert shown[0] == f"{int(minutes)}:{seconds:05.2f}"  # e.g. 1:05.50
    finally:
        server.stop()
