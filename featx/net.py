"""GET http(s) URLs under one total deadline, with a size cap and checked redirects.

URLs are fetched as given: by default any host is allowed, private networks and loopback
included, as curl or a browser would. A service that fetches URLs its users supply should pass
``allow_private=False``. Then each hop (the first request and every redirect) is resolved once,
each address is checked (IPv4 and IPv6; IPv4-mapped, 6to4 and NAT64 addresses by the IPv4
address inside), featx connects to that checked address itself, so a DNS answer that changes
between check and connect (rebinding) cannot slip through, and the connected peer is checked
again. Refused: loopback, private, shared (CGNAT), link-local, multicast, reserved and
unspecified addresses. Through an environment proxy (``http_proxy``/``https_proxy``) the proxy
resolves the name, so there the check is on featx's own resolution only: best effort.

Why not urllib: its ``timeout`` applies to each socket operation, so a server sending one header
line a second keeps a fetch alive forever, and it follows redirects to ftp:// and file://. Here
one deadline, computed once, bounds DNS, connect, TLS, headers and body: every socket
operation may wait only for the time left, and DNS (which has no timeout) runs in a thread.
Only http and https redirects are followed, at most `MAX_REDIRECTS`.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from typing import NamedTuple

from .errors import FeatxError, InputError

__all__ = ["fetch_url", "blocked_reason", "MAX_REDIRECTS"]

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PORTS = {"http": 80, "https": 443}
_CHUNK = 1 << 16
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Bytes http.client would reject or that could split the request line (CRLF injection).
_SAFE_PATH = "!#$%&'()*+,/:;=?@[]~"


class _DeadlinePassed(Exception):
    """The fetch's deadline passed; the `_Clock` knows what it was doing."""


class _Clock:
    """The one deadline of a fetch, and what the fetch is doing now (for the error message)."""

    def __init__(self, timeout: float | None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stage = "starting"

    def left(self) -> float | None:
        """Seconds left (None: no deadline); raises `_DeadlinePassed` once none are."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed
        return left

    def arm(self, sock: socket.socket) -> None:
        # Per-operation socket timeouts (sendall, connect and SSL reads count their own calls in
        # total) set to what is left make every wait end by the deadline.
        sock.settimeout(self.left())


class _DeadlineRaw(io.RawIOBase):
    """A socket as a raw stream whose every read waits at most until the deadline."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self._sock, self._clock = sock, clock

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        self._clock.arm(self._sock)
        return self._sock.recv_into(buf)


class _DeadlineSocket:
    """The one thing `http.client.HTTPResponse` asks of a socket, ``makefile``: handing it this
    puts the status line and headers, which it reads itself, under the deadline too."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self._sock, self._clock = sock, clock

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineRaw(self._sock, self._clock))


class _Target(NamedTuple):
    scheme: str
    host: str  # for DNS and TLS: no brackets, IDNA-encoded
    port: int
    authority: str  # host:port, as CONNECT wants it
    host_header: str  # the port only when not the scheme's default
    path: str  # path and query, percent-encoded ASCII

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.path}"


def _parse(url: str, source: str) -> _Target:
    """Split an http(s) URL into what a request needs; InputError names ``source`` when it cannot."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise InputError(f"invalid URL {url[:100]!r}: whitespace or control characters", source=source)
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise InputError(f"unsupported URL scheme {scheme!r}: only http and https are fetched", source=source)
    try:
        port = parts.port or _PORTS[scheme]
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise InputError(f"invalid URL {url[:100]!r}: {exc}", source=source) from None
    if not host:
        raise InputError(f"invalid URL {url[:100]!r}: no host", source=source)
    bracketed = f"[{host}]" if ":" in host else host
    header = bracketed if port == _PORTS[scheme] else f"{bracketed}:{port}"
    path = urllib.parse.quote(parts.path or "/", safe=_SAFE_PATH)
    if parts.query:
        path += "?" + urllib.parse.quote(parts.query, safe=_SAFE_PATH)
    return _Target(scheme, host, port, f"{bracketed}:{port}", header, path)


# ---- addresses ---------------------------------------------------------------------------------


def blocked_reason(address: str) -> str | None:
    """Why ``allow_private=False`` refuses ``address`` ("loopback", "private", ...), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 host a.b.c.d
            return blocked_reason(str(ip.ipv4_mapped))
        # 6to4 and NAT64 addresses reach the IPv4 host they embed: judge that host.
        inner = ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if inner is not None:
            reason = blocked_reason(str(inner))
            return reason and f"{reason} IPv4 address {inner} inside"
    for reason, hit in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),  # e.g. 100.64.0.0/10, shared (CGNAT)
    ):
        if hit:
            return reason
    return None


def _resolve(target: _Target, clock: _Clock) -> list[tuple]:
    """getaddrinfo under the deadline: it has no timeout of its own, so it runs in a thread."""
    clock.stage = f"resolving {target.host}"
    args = (target.host, target.port, 0, socket.SOCK_STREAM)
    try:
        ipaddress.ip_address(target.host)
        literal = True  # answered at once, no lookup
    except ValueError:
        literal = False
    if literal or clock.deadline is None:
        return socket.getaddrinfo(*args)
    box: list = []

    def lookup() -> None:
        try:
            box.append(socket.getaddrinfo(*args))
        except OSError as exc:
            box.append(exc)

    thread = threading.Thread(target=lookup, name="featx-dns", daemon=True)
    thread.start()
    thread.join(clock.left())
    if not box:  # the lookup thread finishes on its own; nothing waits for it
        raise _DeadlinePassed
    if isinstance(box[0], OSError):
        raise OSError(f"cannot resolve {target.host!r}: {box[0]}") from box[0]
    return box[0]


def _refusal(target: _Target, refused: list[str]) -> str:
    return (f"refused: {target.host} resolves to non-public {', '.join(refused)}; allow_private=False "
            "blocks loopback, private, link-local, multicast and reserved addresses")


def _connect(target: _Target, source: str, clock: _Clock, check: bool) -> socket.socket:
    """A socket connected to a (``check``: public) address of ``target``, tried in DNS order."""
    refused: list[str] = []
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in _resolve(target, clock):
        reason = blocked_reason(sockaddr[0]) if check else None
        if reason:
            refused.append(f"{sockaddr[0]} ({reason})")
            continue
        clock.stage = f"connecting to {sockaddr[0]} port {target.port}"
        sock = socket.socket(family, kind, proto)
        try:
            clock.arm(sock)
            sock.connect(sockaddr)  # the address just checked: the name is not looked up again
            peer = sock.getpeername()[0]
            reason = blocked_reason(peer) if check else None
            if reason:  # what we are actually talking to, in case the stack mapped the address
                raise InputError(_refusal(target, [f"{peer} ({reason})"]), source=source)
            return sock
        except (FeatxError, _DeadlinePassed, TimeoutError):
            sock.close()
            raise  # a timeout here means the deadline passed: no time for the next address
        except OSError as exc:
            sock.close()
            error = exc
    if error is None:
        raise InputError(_refusal(target, refused), source=source)
    raise error


def _proxy(target: _Target, source: str) -> _Target | None:
    """The environment's proxy for ``target`` (as urllib would pick it), or None."""
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    return _parse(proxy if "://" in proxy else "http://" + proxy, source)


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # verifies certificates and host names; loads CAs once


# ---- one request ---------------------------------------------------------------------------------


def _send(sock: socket.socket, clock: _Clock, head: str) -> http.client.HTTPResponse:
    from . import __version__

    clock.stage = "sending the request"
    clock.arm(sock)
    sock.sendall(f"{head}User-Agent: featx/{__version__}\r\n\r\n".encode("ascii"))
    clock.stage = "waiting for the response headers"
    method = head.split(" ", 1)[0]
    response = http.client.HTTPResponse(_DeadlineSocket(sock, clock), method=method)  # type: ignore[arg-type]
    response.begin()
    return response


def _open(
    target: _Target, source: str, clock: _Clock, allow_private: bool
) -> tuple[socket.socket, http.client.HTTPResponse]:
    """Connect (directly or through the environment's proxy), GET ``target``, read its headers."""
    proxy = _proxy(target, source)
    if proxy is None:
        sock = _connect(target, source, clock, check=not allow_private)
    else:
        if not allow_private:  # the proxy resolves again; we can only check our own answer
            addresses = [info[4][0] for info in _resolve(target, clock)]
            refused = [f"{a} ({r})" for a in addresses if (r := blocked_reason(a))]
            if refused:
                raise InputError(_refusal(target, refused), source=source)
        sock = _connect(proxy, source, clock, check=False)  # the operator chose the proxy
    try:
        if target.scheme == "https":
            if proxy is not None:
                answer = _send(sock, clock, f"CONNECT {target.authority} HTTP/1.1\r\nHost: {target.authority}\r\n")
                if answer.status != 200:
                    raise InputError(f"proxy refused a tunnel to {target.authority}: {answer.status} {answer.reason}",
                                     source=source)
            clock.stage = "TLS handshake"
            clock.arm(sock)
            sock = _tls().wrap_socket(sock, server_hostname=target.host)
        request_target = target.url if proxy is not None and target.scheme == "http" else target.path
        head = (f"GET {request_target} HTTP/1.1\r\nHost: {target.host_header}\r\nAccept: */*\r\n"
                "Accept-Encoding: identity\r\nConnection: close\r\n")
        return sock, _send(sock, clock, head)
    except BaseException:
        sock.close()
        raise


def _read_body(response: http.client.HTTPResponse, max_bytes: int | None, source: str) -> bytes:
    length = response.getheader("Content-Length", "").strip()
    if max_bytes is not None and length.isdigit() and int(length) > max_bytes:
        raise InputError(f"Content-Length {int(length)} is larger than max_bytes={max_bytes}; "
                         "raise max_bytes to accept it", source=source)
    chunks: list[bytes] = []
    total = 0
    while chunk := response.read1(_CHUNK):  # chunked bodies too: the cap holds without a length
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise InputError(f"larger than max_bytes={max_bytes}; raise max_bytes to accept it", source=source)
        chunks.append(chunk)
    if response.length:  # read1 ends quietly when the server hangs up early
        raise InputError(f"connection closed after {total} of {total + response.length} bytes", source=source)
    if not total:
        raise InputError("empty input: no bytes to decode", source=source)
    return b"".join(chunks)


def _next_hop(response: http.client.HTTPResponse, current: str, source: str, seen: set[str]) -> str:
    location = (response.getheader("Location") or "").strip()
    if not location:
        raise InputError(f"HTTP {response.status} redirect without a Location header", source=source)
    target = urllib.parse.urljoin(current, location)  # relative Locations are common
    if urllib.parse.urlsplit(target).scheme.lower() not in _PORTS:
        raise InputError(f"refused a redirect to {target[:200]!r}: only http and https redirects are followed",
                         source=source)
    if target in seen:
        raise InputError(f"redirect loop: {current} redirects back to {target}", source=source)
    if len(seen) > MAX_REDIRECTS:
        raise InputError(f"too many redirects (more than {MAX_REDIRECTS}); the last to {target[:200]}", source=source)
    return target


def fetch_url(url: str, timeout: float | None, max_bytes: int | None, allow_private: bool = True) -> bytes:
    """GET ``url``: the body, within ``timeout`` seconds in all and at most ``max_bytes`` long.

    ``timeout`` bounds the whole fetch (DNS, connect, TLS, headers, body, redirects); None waits
    forever. Follows up to `MAX_REDIRECTS` http(s) redirects. ``allow_private=False`` refuses
    hosts on loopback, private, link-local, multicast or reserved addresses (every hop).
    Raises InputError naming ``url``.
    """
    clock = _Clock(timeout)
    current, seen = url, {url}
    try:
        while True:
            sock, response = _open(_parse(current, url), url, clock, allow_private)
            try:
                if response.status in _REDIRECTS:
                    current = _next_hop(response, current, url, seen)
                    seen.add(current)
                    continue
                if not 200 <= response.status < 300:
                    raise InputError(f"HTTP error {response.status} {response.reason}", source=url)
                clock.stage = "reading the body"
                return _read_body(response, max_bytes, url)
            finally:
                response.close()
                sock.close()
    except FeatxError:
        raise
    except (_DeadlinePassed, TimeoutError) as exc:
        if timeout is None:  # no deadline of ours: the operating system gave up (ETIMEDOUT)
            raise InputError(f"cannot fetch: timed out (while {clock.stage})", source=url) from exc
        raise InputError(f"deadline passed: took longer than timeout={timeout:g}s in all (while {clock.stage})",
                         source=url) from None
    except http.client.RemoteDisconnected:
        raise InputError(f"cannot fetch: the server closed the connection (while {clock.stage})", source=url) from None
    except http.client.HTTPException as exc:
        raise InputError(f"cannot fetch: bad HTTP response: {type(exc).__name__}: {exc}", source=url) from exc
    except OSError as exc:  # refused, reset, unreachable, TLS errors (ssl.SSLError is an OSError)
        raise InputError(f"cannot fetch: {exc.strerror or exc} (while {clock.stage})", source=url) from exc
