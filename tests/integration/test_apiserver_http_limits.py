"""The HTTP layer's bounds against a hostile client: a request head is read up to 1 MiB, then refused.

Go's ``net/http`` (under kube-apiserver) reads at most ``DefaultMaxHeaderBytes`` (1 MiB) of request
line and headers and answers ``431 Request Header Fields Too Large``; dockyard's server does the same,
whatever HTTP parser uvicorn runs (:mod:`dockyard.apiserver.serve`).
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from dockyard.apiserver import serve

SENT_LIMIT = 16 * serve.MAX_HEADER_BYTES
"""The client gives up after sending this much (a server without a bound never answers)."""


def _connect(server: Any) -> ssl.SSLSocket:
    """A TLS connection to ``server`` (trusting its CA)."""
    url = urlsplit(server.url)
    raw = socket.create_connection((url.hostname, url.port), timeout=10)
    return server.ssl_context().wrap_socket(raw, server_hostname=url.hostname)


def _read_rest(conn: ssl.SSLSocket) -> bytes:
    """Everything the server still sends until it closes (or 5 s of silence)."""
    answer = b""
    conn.settimeout(5)
    try:
        while chunk := conn.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError, ssl.SSLError, OSError):
        pass
    return answer


def _send_endless_head(server: Any, head: bytes, filler: bytes) -> tuple[int, bytes]:
    """Send ``head`` then ``filler`` repeatedly (never ending the head) until the server answers or
    closes, or :data:`SENT_LIMIT` is sent; ``(bytes sent, what the server sent)``."""
    conn = _connect(server)
    sent, answer = 0, b""
    deadline = time.monotonic() + 60
    try:
        conn.sendall(head)
        sent = len(head)
        while sent < SENT_LIMIT and time.monotonic() < deadline:
            if select.select([conn], [], [], 0)[0]:  # readable: an answer, a close, or a TLS ticket
                conn.settimeout(0)
                try:
                    early = conn.recv(65536)
                except ssl.SSLWantReadError:
                    early = None  # TLS records without application data
                except (ConnectionResetError, ssl.SSLError, OSError):
                    early = b""
                conn.settimeout(10)
                if early is not None:
                    answer += early
                    break  # the server answered or closed: stop sending
            try:
                conn.sendall(filler)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                break
            sent += len(filler)
        answer += _read_rest(conn)
    finally:
        conn.close()
    return sent, answer


def test_endless_headers_are_refused_after_1_mib(apiserver: Any) -> None:
    header = b"X-Filler: " + b"a" * 60000 + b"\r\n"
    sent, answer = _send_endless_head(apiserver, b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n", header)
    assert answer.startswith(b"HTTP/1.1 431 "), (sent, answer[:200])
    assert sent < SENT_LIMIT, sent  # answered while the client was still sending


def test_one_endless_header_value_is_refused_after_1_mib(apiserver: Any) -> None:
    sent, answer = _send_endless_head(apiserver, b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ", b"b" * 65536)
    assert answer.startswith(b"HTTP/1.1 431 "), (sent, answer[:200])
    assert sent < SENT_LIMIT, sent


def test_an_endless_request_line_is_refused_after_1_mib(apiserver: Any) -> None:
    sent, answer = _send_endless_head(apiserver, b"GET /version?x=", b"c" * 65536)
    assert answer.startswith(b"HTTP/1.1 431 ") or answer.startswith(b"HTTP/1.1 414 "), (sent, answer[:200])
    assert sent < SENT_LIMIT, sent


def test_a_large_head_within_the_limit_is_served(apiserver: Any) -> None:
    with apiserver.client() as client:
        pads = {f"X-Pad-{i}": "p" * 60_000 for i in range(12)}  # ~720 KiB of headers
        resp = client.get("/version", headers=pads)
        assert resp.status_code == 200, resp.text[:300]


def test_a_request_whose_head_ends_just_past_the_limit_never_reaches_the_app(apiserver: Any) -> None:
    # the head's end arrives in the same read as its 1 MiB mark: refused, and the DELETE never runs
    with apiserver.client() as client:
        created = client.post(
            "/api/v1/namespaces/default/secrets",
            json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "past-the-limit"}},
        )
        assert created.status_code == 201, created.text
    pad = b"X-Pad: " + b"p" * (serve.MAX_HEADER_BYTES + 16) + b"\r\n"
    head = (
        b"DELETE /api/v1/namespaces/default/secrets/past-the-limit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {apiserver.token}\r\n".encode()
        + pad
        + b"\r\n"
    )
    conn = _connect(apiserver)
    try:
        try:
            conn.sendall(head)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        answer = _read_rest(conn)
    finally:
        conn.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, answer[:400]  # one answer, none from the app
    time.sleep(0.5)  # a DELETE that had reached the app would have been committed by now
    with apiserver.client() as client:
        assert client.get("/api/v1/namespaces/default/secrets/past-the-limit").status_code == 200
