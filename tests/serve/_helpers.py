"""Shared pieces of the serve tests: embed a folder with `featx embed`, start a real server."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def embed_folder(model: str | Path, inputs: list[str | Path], out: Path, *extra: str) -> Path:
    """Run `featx embed` (in-process) with float32, as the service's comparisons need."""
    from featx.cli import main

    rc = main(["embed", *map(str, inputs), "--model", str(model), "--output", str(out), "--progress", "none",
               "--dtype", "float32", *extra])
    assert rc == 0, rc
    return out


def b64(path: str | Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + b64(path)


def stored_vectors(out: Path) -> dict[str, np.ndarray]:
    """{path: embedding} of an output folder (valid rows)."""
    from tests.engine._helpers import read_rows

    return {p: np.asarray(r["embedding"], np.float32) for p, r in read_rows(out).items() if r["error"] is None}


class Server:
    """`featx serve ...` in a subprocess on 127.0.0.1 with a free port (``--port 0``); the port is
    read from the line the server prints when it is up."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90.0) -> None:
        cmd = [sys.executable, "-m", "featx", "serve", *map(str, args), "--host", "127.0.0.1", "--port", "0"]
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **(env or {})}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
                                     cwd=str(REPO))
        self.lines: list[str] = []
        found = threading.Event()
        self.port = 0

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                m = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", line)
                if m and not found.is_set():
                    self.port = int(m.group(1))
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not found.wait(timeout) or not self.port:
            self.stop()
            raise AssertionError("featx serve did not start:\n" + "".join(self.lines))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(timeout=5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def post_json(url: str, path: str, body: dict, *, token: str | None = None, timeout: float = 60.0,
              conn: object = None) -> tuple[int, dict]:
    """POST JSON with the standard library (keep-alive when ``conn`` is an http.client connection)."""
    import http.client
    import json
    from urllib.parse import urlparse

    own = conn is None
    if own:
        parsed = urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", path, body=json.dumps(body), headers=headers)  # type: ignore[attr-defined]
        response = conn.getresponse()  # type: ignore[attr-defined]
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        if own:
            conn.close()  # type: ignore[attr-defined]


def wait_until(check, timeout: float = 15.0, every: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(every)
    return bool(check())


class ThreadServer:
    """A `featx.serve` app under a real uvicorn server in a thread of this process (127.0.0.1, a
    free port): no process start-up, for tests that need HTTP but not a signal."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="on"))
        self.server.install_signal_handlers = lambda: None  # uvicorn < 0.29
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_until(lambda: self.server.started, timeout=30), "uvicorn did not start"
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
