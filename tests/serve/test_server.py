"""`featx serve` as a real uvicorn process on 127.0.0.1: the same vectors as `featx embed`, a
bounded load test (16 clients x 50 requests, 0 failures, every answer checked), and a graceful
stop on SIGTERM that answers every request in flight."""

from __future__ import annotations

import http.client
import io
import json
import re
import threading

import numpy as np
import pytest
from PIL import Image

from tests.engine._helpers import photo

from ._helpers import Server, b64, post_json, stored_vectors, wait_until


@pytest.fixture(scope="module")
def server(live_server):
    return live_server


def test_real_server_embeddings_equal_featx_embed(server, photos, clip_out):
    _, paths = photos
    stored = stored_vectors(clip_out)
    status, body = post_json(server.url, "/v1/embeddings", {"input": [b64(p) for p in paths]})
    assert status == 200 and body["errors"] == 0
    for path, item in zip(paths, body["data"]):
        np.testing.assert_allclose(np.asarray(item["embedding"], np.float32), stored[path], rtol=0, atol=1e-6)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/healthz")
    assert json.loads(conn.getresponse().read()) == {"status": "ok", "queue": 0, "rows": 10}
    conn.close()


def test_load_16_clients_x_50_requests_all_answered_correctly(server, photos, clip_out):
    _, paths = photos
    stored = stored_vectors(clip_out)
    dim = len(next(iter(stored.values())))
    bodies = [{"input": [b64(p)]} for p in paths]
    failures: list[str] = []
    done = [0]
    lock = threading.Lock()

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)  # keep-alive
        try:
            for i in range(50):
                j = (c + i) % len(paths)
                try:
                    status, body = post_json(server.url, "/v1/embeddings", bodies[j], conn=conn)
                except Exception as exc:  # noqa: BLE001 - counted as a failure
                    failures.append(f"client {c} request {i}: {exc!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                    continue
                vec = np.asarray(body["data"][0].get("embedding", []), np.float32) if status == 200 else None
                if vec is None or vec.shape != (dim,) or not np.allclose(vec, stored[paths[j]], rtol=0, atol=1e-6):
                    failures.append(f"client {c} request {i}: status {status}, {str(body)[:200]}")
                with lock:
                    done[0] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not any(t.is_alive() for t in threads), "the load test did not finish"
    assert failures == [] and done[0] == 800
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    batches = int(re.search(r"^featx_batch_size_count (\d+)$", text, re.M).group(1))
    inputs = float(re.search(r"^featx_batch_size_sum (\S+)$", text, re.M).group(1))
    assert inputs >= 800 and batches < inputs  # concurrent requests were batched together


def test_sigterm_finishes_the_requests_in_flight(out, photos, tmp_path):
    _, paths = photos
    big = []
    for i in range(6):  # big enough that decoding them takes a while
        buf = io.BytesIO()
        photo(100 + i, (900, 700)).save(buf, "PNG")
        big.append(buf.getvalue())
    server = Server(out, "--dtype", "float32", "--workers", "1", "--max-batch", "4", "--no-text")
    try:
        import base64

        from featx.serve.payloads import decode_media

        payload = [base64.b64encode(b).decode() for b in big]
        results: list[tuple[int, dict]] = []

        def send() -> None:
            results.append(post_json(server.url, "/v1/embeddings", {"input": payload}, timeout=120))

        threads = [threading.Thread(target=send) for _ in range(6)]
        for t in threads:
            t.start()

        def busy() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/healthz")
            queue = json.loads(conn.getresponse().read())["queue"]
            conn.close()
            return queue >= 12

        assert wait_until(busy, timeout=30, every=0.01)
        code = server.terminate(timeout=120)
        for t in threads:
            t.join(60)
        assert code == 0, server.output
        assert len(results) == 6 and all(status == 200 for status, _ in results), results
        from featx.engine.jobs import embedder_from_manifest
        from featx.engine.state import read_manifest

        reference = embedder_from_manifest({**read_manifest(out), "dtype": "float32"}, device="cpu")
        expected = reference.embed([reference.prepare(decode_media(p)) for p in payload])
        for _, body in results:
            assert body["errors"] == 0
            for item, vec in zip(body["data"], expected):
                np.testing.assert_allclose(np.asarray(item["embedding"], np.float32), vec, rtol=0, atol=1e-6)
        assert "Traceback" not in server.output
    finally:
        server.stop()
