"""The registry client's time bound against a hostile registry that trickles its answer, on 127.0.0.1 only.

httpx bounds each read (``timeout``), not a whole request: a registry sending one header line, or one
body byte, every little while would hold a request (and the Image worker making it) forever. The client
gives each request a total deadline (``client.REQUEST_DEADLINE_FACTOR`` × ``timeout``), headers and body.

The hostile registry is a raw threaded TCP server (the attack is below what ``http.server`` lets one
write); every trickle is bounded in count and stops when the test ends, and every client call runs in a
thread joined with a timeout, so a client without the bound fails these tests instead of hanging them.
"""

from __future__ import annotations

import hashlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dockyard.registry import client, errors

pytestmark = pytest.mark.timeout(60)

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()

TIMEOUT = 0.5  # seconds: each read's bound, as the tests pass it
DEADLINE = client.REQUEST_DEADLINE_FACTOR * TIMEOUT  # seconds: each request's total bound
MARGIN = 3.0  # seconds past the deadline a call may take before the test calls it hung
TRICKLE_EVERY = 0.1  # seconds between pieces: well inside TIMEOUT, so no single read ever times out
TRICKLE_MAX = 300  # pieces at most (30 s): a client without a deadline is freed eventually


@dataclass
class Exchange:
    """One request on a connection: ``method``, ``path``, its ``number`` over the server's life (1, 2, …)."""

    method: str
    path: str
    number: int


Answer = Callable[[Exchange, socket.socket, threading.Event], bool]
"""Writes the raw answer to one request; returns True to keep the connection open for another."""


class _Threading(socketserver.ThreadingTCPServer):
    daemon_threads = True


@dataclass
class RawServer:
    """A threaded TCP server on 127.0.0.1:0 reading HTTP/1.1 request heads and answering with ``answer``."""

    answer: Answer
    seen: list[Exchange] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        outer = self
        lock = threading.Lock()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                buffered = b""
                while not outer.stop.is_set():
                    while b"\r\n\r\n" not in buffered and len(buffered) < 65536:
                        try:
                            data = conn.recv(4096)
                        except OSError:
                            return
                        if not data:
                            return
                        buffered += data
                    head, _, buffered = buffered.partition(b"\r\n\r\n")
                    method, path, *_ = head.decode("latin-1").split(" ")
                    with lock:
                        exchange = Exchange(method, path, len(outer.seen) + 1)
                        outer.seen.append(exchange)
                    try:
                        if not outer.answer(exchange, conn, outer.stop):
                            return
                    except OSError:  # the client cut the connection (as it should, at its deadline)
                        return

        self.server = _Threading(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()  # every trickle ends
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def trickle(conn: socket.socket, stop: threading.Event, first: bytes, pieces: Iterator[bytes]) -> None:
    """Send ``first``, then each of ``pieces`` :data:`TRICKLE_EVERY` seconds apart, until ``stop``."""
    conn.sendall(first)
    for piece in pieces:
        if stop.wait(TRICKLE_EVERY):
            return
        conn.sendall(piece)


def header_lines() -> Iterator[bytes]:
    return (f"X-Slow-{i}: {i}\r\n".encode() for i in range(TRICKLE_MAX))


def trickled_head(exchange: Exchange, conn: socket.socket, stop: threading.Event) -> bool:
    """A status line, then one header line every TRICKLE_EVERY seconds: the head never ends in time."""
    trickle(conn, stop, b"HTTP/1.1 200 OK\r\n", header_lines())
    return False


def trickled_body(exchange: Exchange, conn: socket.socket, stop: threading.Event) -> bool:
    """A whole head announcing 1 MB, then one byte every TRICKLE_EVERY seconds."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    trickle(conn, stop, head + b"Content-Length: 1000000\r\n\r\n", (b" " for _ in range(TRICKLE_MAX)))
    return False


@dataclass
class Call:
    """A client call run in a thread: ``result`` or ``error``, and how long it took (``elapsed`` seconds)."""

    function: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None
    elapsed: float | None = None

    def run(self, within: float) -> Call:
        """Run the call; fail the test if it has not returned ``within`` seconds."""

        def target() -> None:
            started = time.monotonic()
            try:
                self.result = self.function()
            except BaseException as e:  # handed to the test
                self.error = e
            self.elapsed = time.monotonic() - started

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(timeout=within)
        assert not thread.is_alive(), f"the client call was still running after {within} s"
        return self


def assert_cut_at_deadline(call: Call, registry: str) -> None:
    assert isinstance(call.error, errors.RegistryUnavailable), repr(call.error)
    message = str(call.error)
    assert registry in message and f"{DEADLINE:g} s" in message and "deadline" in message
    assert call.elapsed is not None and DEADLINE - 0.1 <= call.elapsed <= DEADLINE + MARGIN


def test_a_registry_trickling_its_headers_is_cut_off_at_the_deadline() -> None:
    with RawServer(trickled_head) as hostile:
        call = Call(lambda: client.manifest_digest(f"{hostile.address}/app:v1", timeout=TIMEOUT))
        call.run(within=DEADLINE + MARGIN)
    assert_cut_at_deadline(call, hostile.address)
    assert "HEAD /v2/app/manifests/v1" in str(call.error)


def test_a_registry_trickling_its_body_is_cut_off_at_the_deadline() -> None:
    with RawServer(trickled_body) as hostile:
        call = Call(lambda: client.get_manifest(f"{hostile.address}/app:v1", timeout=TIMEOUT))
        call.run(within=DEADLINE + MARGIN)
    assert_cut_at_deadline(call, hostile.address)


def test_a_pooled_connection_trickling_the_next_answer_is_cut_off() -> None:
    """The Image controller shares one transport (one connection pool) between its requests: the
    registry answers the first request whole on a keep-alive connection, and trickles every later one."""

    def answer(exchange: Exchange, conn: socket.socket, stop: threading.Event) -> bool:
        if exchange.number == 1:
            body = json.dumps({"name": "app", "tags": ["v1"]}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            return True  # keep the connection for the next request
        trickled_head(exchange, conn, stop)
        return False

    transport = httpx.HTTPTransport()
    with transport, RawServer(answer) as hostile:
        assert client.list_tags(f"{hostile.address}/app", timeout=TIMEOUT, transport=transport) == ["v1"]
        call = Call(lambda: client.manifest_digest(f"{hostile.address}/app:v1", timeout=TIMEOUT, transport=transport))
        call.run(within=DEADLINE + MARGIN)
    assert_cut_at_deadline(call, hostile.address)


def test_an_answer_trickled_within_the_deadline_is_read() -> None:
    """The deadline bounds the whole request; it does not cut a slow answer that ends in time."""
    size = len(MANIFEST) // 4 + 1
    pieces = [MANIFEST[i : i + size] for i in range(0, len(MANIFEST), size)]
    assert len(pieces) * TRICKLE_EVERY < DEADLINE / 2

    def answer(exchange: Exchange, conn: socket.socket, stop: threading.Event) -> bool:
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(MANIFEST)
        )
        trickle(conn, stop, head, iter(pieces))
        return False

    with RawServer(answer) as slow:
        call = Call(lambda: client.get_manifest(f"{slow.address}/app:v1", timeout=TIMEOUT))
        call.run(within=DEADLINE + MARGIN)
    assert call.error is None, repr(call.error)
    assert call.result.digest == DIGEST


def slow_endless_pages(exchange: Exchange, conn: socket.socket, stop: threading.Event) -> bool:
    """Each tag page a little inside the read timeout, each linking to another: no request is ever cut, but the
    pages never end (up to the 1000-page bound)."""
    if stop.wait(TIMEOUT * 0.8):
        return False
    body = json.dumps({"name": "app", "tags": [f"t{exchange.number}"]}).encode()
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f'Link: </v2/app/tags/list?n=1&last=t{exchange.number}>; rel="next"\r\n'.encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return True


def test_a_tag_list_of_endless_slow_pages_ends_at_the_list_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole listing is bounded too, at :data:`client.LIST_DEADLINE_FACTOR` request deadlines (2 here, 10 by
    default): a registry answering every page just in time would otherwise hold the scan for 1000 pages."""
    monkeypatch.setattr(client, "LIST_DEADLINE_FACTOR", 2)
    whole = client.LIST_DEADLINE_FACTOR * DEADLINE
    with RawServer(slow_endless_pages) as hostile:
        call = Call(lambda: client.list_tags(f"{hostile.address}/app", timeout=TIMEOUT)).run(whole + DEADLINE + MARGIN)
    assert isinstance(call.error, errors.RegistryUnavailable), repr(call.error)
    assert "listing" in str(call.error) and f"{whole:g} s" in str(call.error)
    assert call.elapsed is not None and whole - 0.1 <= call.elapsed <= whole + DEADLINE + MARGIN
