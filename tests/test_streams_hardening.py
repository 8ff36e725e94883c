"""Hardening of featx.streams / featx.net: one total URL deadline, checked redirects, the
private-address option, and refusing non-regular files without blocking.

Every server here is an in-process thread on 127.0.0.1 that stops itself when its test ends.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from featx import net
from featx.errors import InputError
from featx.net import blocked_reason, fetch_url
from featx.streams import open_source

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, devices and unix sockets")

# ---- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def tcp_server(handler: Callable[[socket.socket, threading.Event], None] | None) -> Iterator[tuple[int, list]]:
    """A listener on 127.0.0.1 running ``handler(conn, stop)`` per connection in a thread.

    Yields ``(port, accepted)``; ``handler=None`` accepts nothing. On exit ``stop`` is set and
    every thread is joined, so handlers must watch it (they also cap themselves at 10 s).
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    stop = threading.Event()
    accepted: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            assert handler is not None
            handler(conn, stop)

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            accepted.append(conn)
            thread = threading.Thread(target=serve, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    if handler is not None:
        acceptor.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        if handler is not None:
            acceptor.join(2)
        for thread in threads:
            thread.join(2)
        listener.close()


def read_request(conn: socket.socket) -> bytes:
    conn.settimeout(2)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def response(status: str = "200 OK", body: bytes = b"hello", headers: dict[str, str] | None = None) -> bytes:
    head = {"Content-Length": str(len(body)), **(headers or {})}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"HTTP/1.1 {status}\r\n{lines}\r\n".encode() + body


def router(routes: dict[str, bytes | Callable[[int], bytes]], seen: list[str] | None = None):
    """A handler answering each request path from ``routes`` (bytes, or a function of the port)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        request = read_request(conn)
        path = request.split(b" ", 2)[1].decode()
        if seen is not None:
            seen.append(path)
        answer = routes.get(path, response("404 Not Found", b"no"))
        conn.sendall(answer(conn.getsockname()[1]) if callable(answer) else answer)

    return handle


def redirect(location: str, status: str = "302 Found") -> bytes:
    return response(status, b"", {"Location": location})


def timed_error(call: Callable[[], object], limit: float) -> tuple[InputError, float]:
    """The InputError ``call`` raises and how long it took; fails if it runs past ``limit``."""
    start = time.monotonic()
    with pytest.raises(InputError) as info:
        call()
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"took {elapsed:.2f}s"
    return info.value, elapsed


def finishes(call: Callable[[], object], limit: float = 3.0) -> object:
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it is still busy after ``limit``."""
    box: list = []

    def run() -> None:
        try:
            box.append(("ok", call()))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box.append(("err", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still blocked after {limit}s"
    kind, value = box[0]
    if kind == "err":
        raise value
    return value


# ---- one total deadline ------------------------------------------------------------------------


def slow_headers(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(40):  # one header line per 0.3 s, "forever" (12 s) unless stopped
        conn.sendall(b"X-Slow-%d: yes\r\n" % i)
        if stop.wait(0.3):
            return


def slow_body(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(50):  # one byte per 0.2 s
        conn.sendall(b"x")
        if stop.wait(0.2):
            return


def slow_chunks(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(50):
        conn.sendall(b"1\r\nx\r\n")
        if stop.wait(0.2):
            return


def silent(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(10)  # accepts, reads nothing, answers nothing


@pytest.mark.parametrize(
    "handler, stage",
    [(slow_headers, "response headers"), (slow_body, "body"), (slow_chunks, "body"), (silent, "response headers")],
)
def test_one_deadline_for_the_whole_fetch(handler, stage: str) -> None:
    with tcp_server(handler) as (port, _):
        url = f"http://127.0.0.1:{port}/slow.jpg"
        error, elapsed = timed_error(lambda: fetch_url(url, 1.5, 10_000), limit=2.5)
    assert elapsed >= 1.4
    assert "deadline passed" in str(error) and "timeout=1.5s" in str(error) and stage in str(error)
    assert url in str(error) and error.source == url


def test_deadline_covers_tls_handshake() -> None:
    with tcp_server(silent) as (port, _):
        url = f"https://127.0.0.1:{port}/x.jpg"
        error, _ = timed_error(lambda: fetch_url(url, 1.0, None), limit=2.0)
    assert "deadline passed" in str(error) and "TLS handshake" in str(error)


def test_deadline_covers_a_listener_that_never_accepts() -> None:
    with tcp_server(None) as (port, _):
        url = f"http://127.0.0.1:{port}/x.jpg"
        error, _ = timed_error(lambda: fetch_url(url, 1.0, None), limit=2.0)
    assert "deadline passed" in str(error)


def test_deadline_covers_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = socket.getaddrinfo

    def slow_lookup(host, *args, **kwargs):
        if host == "slow-dns.test":
            release.wait(5)  # getaddrinfo has no timeout of its own
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    try:
        error, _ = timed_error(lambda: fetch_url("http://slow-dns.test/x.jpg", 0.5, None), limit=1.5)
    finally:
        release.set()
    assert "deadline passed" in str(error) and "resolving slow-dns.test" in str(error)


def test_deadline_through_open_source() -> None:
    with tcp_server(slow_headers) as (port, _):
        url = f"http://127.0.0.1:{port}/a.png"
        error, _ = timed_error(lambda: open_source(url, "image file", 0.8, None), limit=1.8)
    assert error.source == url


# ---- size cap, bodies ----------------------------------------------------------------------------


def test_content_length_over_the_cap_is_refused_before_reading() -> None:
    def huge(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        stop.wait(10)  # never sends the body: reading it would run into the deadline

    with tcp_server(huge) as (port, _):
        error, _ = timed_error(lambda: fetch_url(f"http://127.0.0.1:{port}/big", 5, 1000), limit=1.0)
    assert "Content-Length 1000000000 is larger than max_bytes=1000" in str(error)


def test_chunked_body_is_capped_while_reading() -> None:
    chunk = b"%x\r\n%s\r\n" % (500, b"x" * 500)
    body = chunk * 10 + b"0\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    with tcp_server(router({"/c": answer, "/ok": answer})) as (port, _):
        with pytest.raises(InputError, match="larger than max_bytes=2000"):
            fetch_url(f"http://127.0.0.1:{port}/c", 5, 2000)
        assert fetch_url(f"http://127.0.0.1:{port}/ok", 5, 5000) == b"x" * 5000


def test_truncated_body_is_an_error() -> None:
    with tcp_server(router({"/t": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."})) as (port, _):
        with pytest.raises(InputError, match="connection closed after 10 of 100 bytes"):
            fetch_url(f"http://127.0.0.1:{port}/t", 5, None)


def test_request_is_plain_and_urls_are_percent_encoded() -> None:
    seen: list[str] = []
    with tcp_server(router({"/a%20b/%C3%A9.png?q=1": response(body=b"ok")}, seen)) as (port, _):
        assert fetch_url(f"http://127.0.0.1:{port}/a b/é.png?q=1#frag".replace(" ", "%20"), 5, None) == b"ok"
    assert seen == ["/a%20b/%C3%A9.png?q=1"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/a\r\nX-Injected: 1", "http://127.0.0.1:1/a b", "http:///nohost"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InputError, match="invalid URL"):
        fetch_url(url, 1, None)


# ---- redirects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["ftp", "file", "data", "gopher"])
def test_redirects_only_to_http(scheme: str) -> None:
    with tcp_server(lambda conn, stop: (read_request(conn), stop.wait(10))) as (other, knocks):
        target = {
            "ftp": f"ftp://127.0.0.1:{other}/pub/x.jpg",
            "file": "file:///etc/passwd",
            "data": "data:image/png;base64,iVBORw0KGgo=",
            "gopher": f"gopher://127.0.0.1:{other}/x",
        }[scheme]
        with tcp_server(router({"/x.jpg": redirect(target)})) as (port, _):
            with pytest.raises(InputError, match="only http and https redirects") as info:
                fetch_url(f"http://127.0.0.1:{port}/x.jpg", 3, None)
        time.sleep(0.1)  # a connection featx had made would be accepted by now
        assert knocks == []  # featx never connected to the ftp/gopher target
    assert target[:40] in str(info.value)


def test_relative_and_scheme_relative_redirects() -> None:
    seen: list[str] = []
    routes = {
        "/a/b/start": redirect("../next?x=1"),
        "/a/next?x=1": redirect("/abs", "301 Moved Permanently"),
        "/abs": lambda port: redirect(f"//127.0.0.1:{port}/final", "307 Temporary Redirect"),
        "/final": redirect("done", "308 Permanent Redirect"),
        "/done": response(body=b"payload"),
    }
    with tcp_server(router(routes, seen)) as (port, _):
        assert fetch_url(f"http://127.0.0.1:{port}/a/b/start", 5, None) == b"payload"
    assert seen == ["/a/b/start", "/a/next?x=1", "/abs", "/final", "/done"]


def test_at_most_five_redirects() -> None:
    routes: dict = {f"/hop/{i}": redirect(f"/hop/{i - 1}") for i in range(1, 10)}
    routes["/hop/0"] = response(body=b"end")
    with tcp_server(router(routes)) as (port, _):
        assert fetch_url(f"http://127.0.0.1:{port}/hop/5", 5, None) == b"end"
        with pytest.raises(InputError, match="too many redirects"):
            fetch_url(f"http://127.0.0.1:{port}/hop/6", 5, None)


def test_redirect_loop() -> None:
    routes = {"/ping": redirect("/pong"), "/pong": redirect("/ping")}
    with tcp_server(router(routes)) as (port, _):
        with pytest.raises(InputError, match="redirect loop"):
            fetch_url(f"http://127.0.0.1:{port}/ping", 5, None)


def test_redirect_without_location_and_http_errors() -> None:
    routes = {"/r": response("302 Found", b""), "/gone": response("410 Gone", b"")}
    with tcp_server(router(routes)) as (port, _):
        with pytest.raises(InputError, match="without a Location"):
            fetch_url(f"http://127.0.0.1:{port}/r", 5, None)
        with pytest.raises(InputError, match="HTTP error 410 Gone"):
            fetch_url(f"http://127.0.0.1:{port}/gone", 5, None)


# ---- private addresses ---------------------------------------------------------------------------


def test_private_addresses_are_allowed_by_default_and_refusable() -> None:
    with tcp_server(router({"/x": response(body=b"local")})) as (port, knocks):
        url = f"http://127.0.0.1:{port}/x"
        assert fetch_url(url, 5, None) == b"local"
        assert len(knocks) == 1
        with pytest.raises(InputError, match=r"refused: 127\.0\.0\.1 .*loopback.*allow_private=False") as info:
            fetch_url(url, 5, None, allow_private=False)
        with pytest.raises(InputError, match="loopback"):
            open_source(url, "image file", 5, None, allow_private=False)
        assert len(knocks) == 1  # refused before connecting
    assert info.value.source == url


def test_a_name_resolving_to_loopback_is_refused() -> None:
    with tcp_server(router({"/x": response(body=b"local")})) as (port, knocks):
        with pytest.raises(InputError, match="refused: localhost resolves to non-public .*loopback"):
            fetch_url(f"http://localhost:{port}/x", 5, None, allow_private=False)
    assert knocks == []


def pretend_public(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    """Treat ``addresses`` as public (the tests can only serve on loopback)."""
    real = net.blocked_reason
    monkeypatch.setattr(net, "blocked_reason", lambda a: None if a in addresses else real(a))


def test_every_redirect_hop_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_public(monkeypatch, "127.0.0.1")
    routes = {"/x": redirect("http://10.1.2.3:8080/internal"), "/y": redirect("http://[::1]:9/z")}
    with tcp_server(router(routes)) as (port, _):
        error, _ = timed_error(lambda: fetch_url(f"http://127.0.0.1:{port}/x", 5, None, allow_private=False), 1.0)
        assert "10.1.2.3 (private)" in str(error)  # refused without trying to connect to 10.1.2.3
        with pytest.raises(InputError, match=r"::1 \(loopback\)"):
            fetch_url(f"http://127.0.0.1:{port}/y", 5, None, allow_private=False)


def test_resolves_once_and_connects_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: a second lookup would answer a private address; featx must not make one.
    pretend_public(monkeypatch, "127.0.0.1")
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            lookups.append(host)
            return real("127.0.0.1" if len(lookups) == 1 else "10.9.9.9", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with tcp_server(router({"/x": response(body=b"checked")})) as (port, _):
        assert fetch_url(f"http://rebind.test:{port}/x", 5, None, allow_private=False) == b"checked"
    assert lookups == ["rebind.test"]


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"), ("10.0.0.1", "private"), ("172.16.0.1", "private"),
        ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("100.64.0.1", "not globally routable"),
        ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("240.0.0.1", ""), ("255.255.255.255", ""),
        ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"), ("fe80::1%lo", "link-local"),
        ("fc00::1", "private"), ("ff02::1", "multicast"), ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"), ("::ffff:169.254.169.254", "link-local"), ("::127.0.0.1", ""),
        ("2002:7f00:1::", "loopback"), ("64:ff9b::a00:1", "private"),
        ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("::ffff:8.8.8.8", None),
        ("2002:808:808::1", None), ("64:ff9b::808:808", None),
    ],
)
def test_blocked_reason(address: str, reason: str | None) -> None:
    got = blocked_reason(address)
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


# ---- proxies from the environment ------------------------------------------------------------------


def test_http_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with tcp_server(router({"http://images.test/cat.png": response(body=b"via proxy")}, seen)) as (port, _):
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
        assert fetch_url("http://images.test/cat.png", 5, None) == b"via proxy"
        with pytest.raises(InputError, match="loopback"):  # featx's own answer for the name is checked
            fetch_url("http://localhost/x", 5, None, allow_private=False)
    assert seen == ["http://images.test/cat.png"]


def test_https_proxy_refusing_the_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    seen: list[str] = []
    with tcp_server(router({}, seen)) as (port, _):
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
        with pytest.raises(InputError, match="proxy refused a tunnel to images.test:443: 404"):
            fetch_url("https://images.test/cat.png", 5, None)
    assert seen == ["images.test:443"]


# ---- files ---------------------------------------------------------------------------------------


@posix_only
def test_fifo_is_refused_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    try:
        with pytest.raises(InputError, match=r"not a regular file \(FIFO\)"):
            finishes(lambda: open_source(str(fifo), "image file", 1, None))
        link = tmp_path / "link.jpg"
        link.symlink_to(fifo)
        with pytest.raises(InputError, match=r"\(FIFO\)"):
            finishes(lambda: open_source(link, "image file", 1, None))
    finally:  # unblock an open() that did hang, so its thread can end
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@posix_only
def test_fifo_swapped_in_after_the_stat_is_still_refused(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from featx import streams as sources

    fifo = tmp_path / "x.wav"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    # What a race looks like: the path was a regular file when stat()ed, a FIFO when opened.
    monkeypatch.setattr(sources.os, "stat", lambda path, *a, **k: regular)
    try:
        with pytest.raises(InputError, match=r"\(FIFO\)"):
            finishes(lambda: open_source(str(fifo), "audio file", 1, None))
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@posix_only
def test_devices_directories_and_sockets_are_refused(tmp_path) -> None:
    if os.path.exists("/dev/zero"):
        with pytest.raises(InputError, match=r"not a regular file \(character device\)"):
            finishes(lambda: open_source("/dev/zero", "image file", 1, None))
    with pytest.raises(InputError, match="is a directory, not an image file"):
        finishes(lambda: open_source(str(tmp_path), "image file", 1, None))
    path = tmp_path / "s.jpg"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        with pytest.raises(InputError, match=r"not a regular file \(socket\)"):
            finishes(lambda: open_source(str(path), "audio file", 1, None))


def test_regular_files_and_symlinks_still_open(tmp_path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"\x89PNG data")
    link = tmp_path / "link.bin"
    try:
        link.symlink_to(path)
    except OSError:
        link = path  # no symlinks here (Windows without privileges)
    for src in (str(path), path, str(link)):
        fp, label, ours = open_source(src, "image file", 1, None)
        with fp:
            assert fp.read() == b"\x89PNG data" and ours
            if hasattr(os, "get_blocking"):
                assert os.get_blocking(fp.fileno())  # O_NONBLOCK was cleared
        assert label == os.fspath(src)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        open_source(str(tmp_path / "empty.png"), "image file", 1, None)
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "missing.png"), "image file", 1, None)
