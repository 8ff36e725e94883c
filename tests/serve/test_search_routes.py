"""/v1/search equals featx.search.exact_search; thumbnails only for files under the recorded
inputs (.., symlinks, absolute paths refused); --watch reloads new shards without dropping requests."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from featx.search import exact_search
from featx.serve.app import create_app
from tests.engine._helpers import write_photos

from ._helpers import b64, embed_folder, stored_vectors, wait_until
from .conftest import make_service


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_search_by_image_equals_exact_search(client, photos, out, k):
    _, paths = photos
    stored = stored_vectors(out)
    for path in paths[::3]:
        body = client.post("/v1/search", json={"image": b64(path), "k": k}).json()
        expected = exact_search(out, stored[path][None], k)[0]
        assert [h["path"] for h in body["results"]] == [h.path for h in expected]
        np.testing.assert_allclose([h["score"] for h in body["results"]], [h.score for h in expected], atol=1e-6)
        assert body["results"][0]["path"] == path and body["rows"] == 10
        assert len(body["results"]) == min(k, 10)


def test_search_by_upload_with_a_prefix_filter(client, photos):
    folder, paths = photos
    prefix = str(folder / "sub")
    with open(paths[0], "rb") as f:
        r = client.post("/v1/search", files={"image": ("q.png", f, "image/png")}, data={"k": "5", "prefix": prefix})
    hits = r.json()["results"]
    assert r.status_code == 200 and len(hits) == 3
    assert all(h["path"].startswith(prefix) for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    r = client.post("/v1/search", json={"image": b64(paths[0]), "prefix": "/nowhere/"})
    assert r.status_code == 200 and r.json()["results"] == []


def test_bad_search_requests(client, photos):
    _, paths = photos
    assert client.post("/v1/search", json={}).status_code == 422
    assert client.post("/v1/search", json={"image": b64(paths[0]), "text": "x"}).status_code == 422
    assert client.post("/v1/search", json={"image": b64(paths[0]), "k": 0}).status_code == 422
    r = client.post("/v1/search", json={"text": "a dog"})
    assert r.status_code == 422 and "text search is not available" in r.json()["detail"]
    r = client.post("/v1/search", json={"image": "bm90IGFuIGltYWdl" * 8})
    assert r.status_code == 422 and "cannot be embedded" in r.json()["detail"]
    r = client.post("/v1/search", json={"image": "%%%"})
    assert r.status_code == 422 and "base64" in r.json()["detail"]


def test_thumbnails_are_small_jpegs_made_once(client, service, photos):
    _, paths = photos
    made = service.thumbnails.made
    for row_id in (0, 5, 9):
        r = client.get(f"/v1/rows/{row_id}/thumbnail")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        image = Image.open(io.BytesIO(r.content))
        assert image.format == "JPEG" and max(image.size) <= 256
    client.get("/v1/rows/0/thumbnail")
    assert service.thumbnails.made - made <= 3  # the second request for row 0 came from the cache
    assert client.get("/v1/rows/10/thumbnail").status_code == 404
    assert client.get("/v1/rows/-1/thumbnail").status_code == 404
    assert client.get("/v1/rows/abc/thumbnail").status_code == 422
    assert client.get("/v1/rows/..%2F..%2Fetc%2Fpasswd/thumbnail").status_code in (404, 422)


@pytest.fixture(scope="module")
def tricky_out(vit, tmp_path_factory):
    """An output whose rows name: a good file, a symlink inside the inputs pointing outside,
    a `..` path climbing out, an absolute path outside, a URL, and a non-image file."""
    base = tmp_path_factory.mktemp("tricky")
    inputs, secret = base / "inputs", base / "secret"
    write_photos(inputs, 2)
    secret.mkdir()
    Image.new("RGB", (20, 20), "red").save(secret / "secret.png")
    os.symlink(secret / "secret.png", inputs / "link.png")
    out = embed_folder(vit, [inputs], base / "out")
    (shard,) = sorted(out.glob("part-*.parquet"))
    table = pq.read_table(shard)
    paths = table.column("path").to_pylist()
    good = [p for p in paths if "link" not in p]
    rows = {good[0]: "good", str(inputs / "link.png"): "symlink"}
    fake = [str(inputs / ".." / "secret" / "secret.png"), str(secret / "secret.png"), "http://127.0.0.1/x.png",
            str(inputs / "notes.txt")]
    (inputs / "notes.txt").write_text("not an image")
    new_paths = [paths[0], paths[1], paths[2]] + fake
    vec = table.column("embedding").to_pylist()
    more = pa.table({"path": new_paths, "embedding": vec + [vec[0]] * len(fake), "error": [None] * len(new_paths)},
                    schema=table.schema)
    pq.write_table(more, shard)
    kinds = [rows.get(p, "good") for p in paths] + ["dotdot", "absolute", "url", "text"]
    return out, kinds


def test_thumbnails_refuse_files_outside_the_recorded_inputs(tricky_out, embedder):
    out, kinds = tricky_out
    svc = make_service(out, embedder)
    with TestClient(create_app(svc)) as c:
        codes = {kind: c.get(f"/v1/rows/{i}/thumbnail").status_code for i, kind in enumerate(kinds)}
    assert codes == {"good": 200, "symlink": 403, "dotdot": 403, "absolute": 403, "url": 404, "text": 404}, codes


def test_a_thumbnail_root_allows_another_folder(tricky_out, embedder):
    out, kinds = tricky_out
    secret = Path(out).parent / "secret"
    svc = make_service(out, embedder, thumbnail_roots=[str(secret)])
    with TestClient(create_app(svc)) as c:
        assert c.get(f"/v1/rows/{kinds.index('absolute')}/thumbnail").status_code == 200
        assert c.get(f"/v1/rows/{kinds.index('symlink')}/thumbnail").status_code == 200


def test_watch_reloads_new_shards_without_dropping_requests(vit, embedder, photos, tmp_path):
    folder, paths = photos
    out = tmp_path / "out"
    shutil.copytree(folder, tmp_path / "first")
    embed_folder(vit, [tmp_path / "first"], out)
    svc = make_service(out, embedder, watch=True, watch_interval_s=0.05)
    statuses: list[int] = []
    stop = threading.Event()
    with TestClient(create_app(svc)) as c:
        assert c.get("/v1/info").json()["rows"] == 10

        def hammer():
            while not stop.is_set():
                statuses.append(c.post("/v1/search", json={"image": b64(paths[0]), "k": 20}).status_code)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            second = write_photos(tmp_path / "second", 4, start=40)
            embed_folder(vit, [tmp_path / "second"], out)  # a new shard in the same OUT
            assert wait_until(lambda: c.get("/v1/info").json()["rows"] == 14)
        finally:
            stop.set()
            thread.join()
        hits = c.post("/v1/search", json={"image": b64(second[1]), "k": 1}).json()["results"]
        assert hits[0]["path"] == second[1]
        assert c.get(f"/v1/rows/{hits[0]['id']}/thumbnail").status_code == 200  # the new run's inputs too
        assert 'featx_index_reloads_total 1' in c.get("/metrics").text
    assert statuses and set(statuses) == {200}
