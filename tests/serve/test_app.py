"""The routes through FastAPI's test client: embeddings equal `featx embed`'s, per-item errors,
auth, size limits, backpressure, timeouts, search, metrics, OpenAPI and the page's assets."""

from __future__ import annotations

import base64
import http.server
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from featx.serve.app import create_app
from featx.serve.batching import Batcher

from ._helpers import b64, data_uri, stored_vectors
from .conftest import make_service


def _vec(item):
    return np.asarray(item["embedding"], np.float32)


def test_embeddings_equal_featx_embed_for_the_same_files(client, photos, out):
    _, paths = photos
    stored = stored_vectors(out)
    # one request with every file (batched together), then each file alone, in each input form
    body = client.post("/v1/embeddings", json={"input": [b64(p) for p in paths], "model": "anything"}).json()
    assert body["object"] == "list" and body["errors"] == 0 and len(body["data"]) == len(paths)
    for i, (path, item) in enumerate(zip(paths, body["data"])):
        assert item["index"] == i and item["object"] == "embedding"
        np.testing.assert_allclose(_vec(item), stored[path], rtol=0, atol=1e-6)
    for path, form in zip(paths[:3], (b64, data_uri, lambda p: {"type": "image", "data": b64(p)})):
        (item,) = client.post("/v1/embeddings", json={"input": [form(path)]}).json()["data"]
        np.testing.assert_allclose(_vec(item), stored[path], rtol=0, atol=1e-6)
    single = client.post("/v1/embeddings", json={"input": b64(paths[4])}).json()["data"][0]  # a bare string
    np.testing.assert_allclose(_vec(single), stored[paths[4]], rtol=0, atol=1e-6)


def test_base64_encoding_format_is_little_endian_float32(client, photos, out):
    _, paths = photos
    item = client.post("/v1/embeddings", json={"input": [b64(paths[0])], "encoding_format": "base64"}).json()["data"][0]
    vec = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
    (same,) = client.post("/v1/embeddings", json={"input": [b64(paths[0])]}).json()["data"]
    np.testing.assert_array_equal(vec, _vec(same))  # the same float32 values, one input alone both times
    np.testing.assert_allclose(vec, stored_vectors(out)[paths[0]], rtol=0, atol=1e-6)


def test_bad_inputs_fail_alone_with_their_index(client, photos, out):
    _, paths = photos
    garbage = base64.b64encode(b"not an image at all, just some bytes" * 4).decode()
    inputs = [b64(paths[0]), garbage, "data:image/png;base64,!!!", "http://example.com/x.png", "a sentence",
              {"type": "bogus"}, "data:text/plain,hello", b64(paths[1])]
    r = client.post("/v1/embeddings", json={"input": inputs})
    assert r.status_code == 200
    data = r.json()["data"]
    assert [d["index"] for d in data] == list(range(len(inputs)))
    assert [d["object"] for d in data] == ["embedding"] + ["error"] * 6 + ["embedding"]
    messages = [d["error"]["message"] for d in data[1:7]]
    assert "cannot identify" in messages[0] or "not an image" in messages[0] or "decode" in messages[0], messages[0]
    assert "base64" in messages[1]
    assert "--allow-urls" in messages[2]
    assert "text" in messages[3]  # this model has no text tower
    assert "type" in messages[4]
    assert "base64" in messages[5]
    assert r.json()["errors"] == 6
    assert re.search(r"^featx_input_errors_total \d+$", client.get("/metrics").text, re.M)
    np.testing.assert_allclose(_vec(data[7]), stored_vectors(out)[paths[1]], atol=1e-6)


def test_malformed_requests_are_422(client):
    assert client.post("/v1/embeddings", json={"input": []}).status_code == 422
    assert client.post("/v1/embeddings", json={"nothing": 1}).status_code == 422
    assert client.post("/v1/embeddings", json={"input": ["x"], "encoding_format": "int8"}).status_code == 422
    assert client.post("/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass


@pytest.fixture()
def file_server(photos):
    folder, _ = photos
    handler = lambda *a, **k: _Files(*a, directory=str(folder), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_urls_need_allow_urls_and_private_addresses_need_allow_private(embedder, out, photos, file_server):
    _, paths = photos
    url = f"{file_server}/{Path(paths[2]).name}"
    public_only = make_service(out, embedder, allow_urls=True)
    with TestClient(create_app(public_only)) as c:
        item = c.post("/v1/embeddings", json={"input": [url, "ftp://x/y.png", {"type": "url", "url": "file:///etc/passwd"}]}).json()["data"]
    assert item[0]["object"] == "error" and re.search("loopback|private", item[0]["error"]["message"]), item[0]
    assert item[1]["object"] == "error"  # not http(s): a text, and there is no text tower
    assert item[2]["object"] == "error" and "http(s)" in item[2]["error"]["message"]
    private_ok = make_service(out, embedder, allow_urls=True, allow_private_urls=True)
    with TestClient(create_app(private_ok)) as c:
        (item,) = c.post("/v1/embeddings", json={"input": [url]}).json()["data"]
    np.testing.assert_allclose(_vec(item), stored_vectors(out)[paths[2]], atol=1e-6)


def test_token_is_needed_everywhere_but_health_and_the_static_page(embedder, out):
    svc = make_service(out, embedder, token="s3cret")
    with TestClient(create_app(svc)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        for method, path in (("get", "/v1/info"), ("get", "/metrics"), ("get", "/openapi.json"),
                             ("post", "/v1/embeddings"), ("post", "/v1/search"), ("get", "/v1/rows/0/thumbnail")):
            r = getattr(c, method)(path)
            assert r.status_code == 401, (path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
            for bad in ("Bearer wrong", "s3cret", "Basic s3cret", "Bearer s3cret2", "Bearer "):
                assert getattr(c, method)(path, headers={"Authorization": bad}).status_code == 401, (path, bad)
        ok = {"Authorization": "Bearer s3cret"}
        assert c.get("/v1/info", headers=ok).status_code == 200
        assert c.get("/metrics", headers=ok).status_code == 200
        assert c.get("/v1/rows/0/thumbnail", headers=ok).status_code == 200
        assert 'featx_requests_total{route="/v1/info",method="GET",status="401"}' in c.get("/metrics", headers=ok).text


def test_bodies_over_the_limit_get_413(embedder, out, photos):
    _, paths = photos
    svc = make_service(out, embedder, max_body_bytes=4000, max_inputs=3)
    with TestClient(create_app(svc)) as c:
        big = {"input": ["x" * 5000]}
        r = c.post("/v1/embeddings", json=big)
        assert r.status_code == 413 and "4000" in r.json()["detail"]

        def chunks():  # no Content-Length: the cap is counted while the body streams in
            for _ in range(10):
                yield b'{"input": ["' + b"y" * 1000

        r = c.post("/v1/embeddings", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        r = c.post("/v1/search", files={"image": ("big.png", b"\x89PNG" + b"0" * 5000, "image/png")})
        assert r.status_code == 413
        r = c.post("/v1/embeddings", json={"input": ["a b", "c d", "e f", "g h"]})
        assert r.status_code == 413 and "--max-inputs" in r.json()["detail"]
        assert c.post("/v1/embeddings", json={"input": [b64(paths[0])]}).status_code == 200  # under the cap
        assert 'featx_rejected_total{reason="too_large"} 4' in c.get("/metrics").text


def test_a_full_queue_answers_503_with_retry_after(embedder, out, photos):
    _, paths = photos
    svc = make_service(out, embedder, max_queue=2)
    release = threading.Event()
    blocked = Batcher(lambda xs: (release.wait(10), [np.zeros(32, np.float32)] * len(xs))[1], max_queue=2)
    svc.media, original = blocked, svc.media
    try:
        with TestClient(create_app(svc)) as c:
            held = blocked.submit_many([b"a", b"b"])  # the queue is full, the model busy
            r = c.post("/v1/embeddings", json={"input": [b64(paths[0])]})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert "retry" in r.json()["detail"]
            r = c.post("/v1/search", json={"image": b64(paths[0])})
            assert r.status_code == 503
            release.set()
            assert all(t.future.result(10) is not None for t in held)
            assert c.post("/v1/embeddings", json={"input": [b64(paths[0])]}).status_code == 200
            assert 'featx_rejected_total{reason="queue_full"} 2' in c.get("/metrics").text
    finally:
        release.set()
        original.close(1)


def test_a_request_that_times_out_gets_504_and_its_work_is_dropped(embedder, out, photos):
    _, paths = photos
    svc = make_service(out, embedder, request_timeout_s=0.3)
    seen: list[int] = []
    gate = threading.Event()

    def slow(payloads):
        seen.append(len(payloads))
        gate.wait(10)
        return [np.ones(32, np.float32)] * len(payloads)

    svc.media, original = Batcher(slow, max_batch=1), svc.media
    try:
        with TestClient(create_app(svc)) as c:
            first = svc.media.submit(b"occupies the model")
            assert _wait(lambda: seen == [1])
            r = c.post("/v1/embeddings", json={"input": [b64(paths[0]), b64(paths[1])]})
            assert r.status_code == 504 and "dropped" in r.json()["detail"]
            gate.set()
            first.future.result(10)
            time.sleep(0.2)
            assert seen == [1]  # the timed-out request's two inputs never reached the model
            assert svc.media.depth == 0
            assert 'featx_rejected_total{reason="timeout"} 1' in c.get("/metrics").text
    finally:
        gate.set()
        original.close(1)


def _wait(check, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_metrics_count_requests_batches_queue_and_model_time(client, photos):
    _, paths = photos
    client.post("/v1/embeddings", json={"input": [b64(p) for p in paths[:4]]})
    text = client.get("/metrics").text
    assert re.search(r'featx_requests_total\{route="/v1/embeddings",method="POST",status="200"\} \d+', text)
    for name in ("featx_batch_size", "featx_queue_seconds", "featx_model_seconds", "featx_request_seconds"):
        assert f"# TYPE {name} histogram" in text
        count = int(re.search(rf"^{name}_count (\d+)$", text, re.M).group(1))
        assert count > 0, name
        assert f'{name}_bucket{{le="+Inf"}} {count}' in text
    assert "# TYPE featx_queue_depth gauge" in text and "featx_rows 10" in text


def test_openapi_schema_lists_the_routes(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/embeddings", "/v1/search", "/v1/rows/{row_id}/thumbnail", "/healthz", "/metrics", "/v1/info"):
        assert path in schema["paths"], path
    body = schema["paths"]["/v1/search"]["post"]["requestBody"]["content"]
    assert "application/json" in body and "multipart/form-data" in body


def test_the_page_and_its_assets_come_from_featx_without_any_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(assets) == ["/static/app.js", "/static/style.css"]
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200 and r.text
        assert not re.search(r"https?://|//cdn|@import", r.text), asset
    assert not re.search(r"https?://", html)
    assert client.get("/static/../service.py").status_code == 404
    assert client.get("/static/index.html").status_code == 404


def test_info_and_health(client, out):
    info = client.get("/v1/info").json()
    assert info["rows"] == 10 and info["rows_total"] == 10 and info["dim"] == 32 and info["row_dim"] == 32
    assert info["model"] and info["modality"] == "image" and info["text"] is False and info["text_search"] is False
    assert info["text_reason"]
    assert client.get("/healthz").json() == {"status": "ok", "queue": 0, "rows": 10}


def test_without_out_it_serves_embeddings_only(embedder, photos):
    _, paths = photos
    svc = make_service(None, embedder)
    with TestClient(create_app(svc)) as c:
        assert c.get("/v1/info").json()["rows"] is None
        r = c.post("/v1/search", json={"image": b64(paths[0])})
        assert r.status_code == 404 and "without OUT" in r.json()["detail"]
        assert c.post("/v1/embeddings", json={"input": [b64(paths[0])]}).json()["errors"] == 0
        assert c.get("/v1/rows/0/thumbnail").status_code == 404


def test_another_backend_serves_the_same_vectors(out, photos, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("FEATX_CACHE_DIR", str(tmp_path / "cache"))
    _, paths = photos
    stored = stored_vectors(out)
    svc = make_service(out, backend="onnx")  # loads the model OUT records, run by ONNX Runtime
    try:
        with TestClient(create_app(svc)) as c:
            info = c.get("/v1/info").json()
            assert info["backend"] == "onnx:float32" and info["dtype"] == "float32"
            body = c.post("/v1/embeddings", json={"input": [b64(p) for p in paths[:4]]}).json()
        assert body["errors"] == 0
        for path, item in zip(paths, body["data"]):
            np.testing.assert_allclose(_vec(item), stored[path], rtol=0, atol=1e-4)
    finally:
        svc.close()
