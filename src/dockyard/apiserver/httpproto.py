"""The HTTP/1.1 protocol the API server runs: uvicorn's httptools (llhttp) protocol, with a bound on
request heads.

llhttp, the parser of Node.js, serves about twice the requests h11 does (``bench/apiserver.py``, "HTTP floor"),
but it and uvicorn's protocol keep no limit on a request head: the request line and headers of a client
that never ends them are gathered in memory without end. Go's ``net/http`` under kube-apiserver reads at
most ``DefaultMaxHeaderBytes`` (1 MiB, :data:`MAX_HEAD_BYTES`) and answers
``431 Request Header Fields Too Large``; :class:`BoundedHttpToolsProtocol` does the same:

- the request line and every header are counted as the parser hands them over (``on_url``,
  ``on_header``: name, value and 4 bytes of ``": "`` and CRLF), the way Go counts the head;
- llhttp gathers one header field or value whole before handing it over, so the bytes received while a
  head is incomplete are counted too, and a head is refused once they pass twice the limit: memory held
  for one head stays below 2 MiB plus one read whatever the client sends;
- past either bound the client gets ``431`` with ``Connection: close`` and the connection is closed;
  nothing more of it is read.

Each connection's writes go through a :class:`CoalescingTransport`: a response's head and its body leave as one
write (one TLS record, one ``send``) instead of two: 2,000 gets made 2,012 ``sendto`` calls, against 4,012
before (``strace -c``). That is 6-7 µs of a get's 250-450 µs, within the noise of alternating get runs.

It also offers each request a :class:`ChunkWriter` (the ASGI scope's ``extensions``, key
:data:`CHUNK_WRITER`): the watch cache writes watch events through it straight to the connection,
past the ASGI ``send`` chain of middleware wrappers. With 100 watchers that chain took about a third
of the event loop's time, and writes during the watch rose from 58-62 % to 76 % of the unwatched rate
without it (``bench/apiserver.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CHUNK_WRITER", "MAX_HEAD_BYTES", "REFUSAL", "BoundedHttpToolsProtocol", "ChunkWriter"]

MAX_HEAD_BYTES = 1024 * 1024
"""Largest request line plus headers, in bytes (Go's ``http.DefaultMaxHeaderBytes``)."""

_MESSAGE = b"431 Request Header Fields Too Large"
REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)
"""What a client whose request head is too large gets (Go's ``net/http`` wording), before the close."""

CHUNK_WRITER = "dockyard.chunk_writer"
"""Key of a request's :class:`ChunkWriter` in the ASGI scope's ``extensions`` (absent under other servers)."""


class ChunkWriter:
    """Writes body chunks of one streamed response straight to its connection.

    For a response that uvicorn sends with ``Transfer-Encoding: chunked`` (RFC 9112 section 7.1), once
    its head is sent: each :meth:`write` frames ``data`` as one chunk and hands it to the transport, as
    uvicorn's ``send`` would, without the ASGI ``send`` chain. The response still ends through ``send``
    (its last, empty chunk), so uvicorn's keep-alive bookkeeping is unchanged. Used on the event loop
    only. Relies on uvicorn's ``RequestResponseCycle`` attributes (``response_started``,
    ``chunked_encoding``, ``response_complete``, ``disconnected``, ``transport``); where they are missing
    :meth:`ready` is False and the caller keeps to ``send``.
    """

    __slots__ = ("_cycle",)

    _framed: tuple[bytes, bytes] | None = None
    """The last ``(data, chunk)`` framed, shared by every writer (event loop only): the fan-out writes one
    commit's ``data``, the same object, to every watcher of a view, and framing copies it (1-1.5 µs of the
    30-100 µs a write costs over TLS, ``bench/tls_writes.py``)."""

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle

    def ready(self) -> bool:
        """True while chunks may be written: the head is sent, chunked, the body not ended, the client there."""
        cycle = self._cycle
        return (
            getattr(cycle, "response_started", False) is True
            and getattr(cycle, "chunked_encoding", None) is True
            and getattr(cycle, "response_complete", True) is False
            and getattr(cycle, "disconnected", True) is False
            and not cycle.transport.is_closing()
        )

    def write(self, data: bytes) -> int:
        """Write ``data`` (non-empty) as one chunk.

        Returns:
            the bytes the connection holds not yet sent, in bytes (the client reads slower than this
            grows: the caller's cue to cut the stream off).
        Raises:
            ConnectionError: the client is gone or the response has ended; nothing was written.
        """
        cycle = self._cycle
        transport = cycle.transport
        if cycle.disconnected or cycle.response_complete or transport.is_closing():
            raise ConnectionError("the client's connection is closed")
        framed = ChunkWriter._framed
        if framed is not None and framed[0] is data:
            chunk = framed[1]
        else:
            chunk = b"%x\r\n%b\r\n" % (len(data), data)
            ChunkWriter._framed = (data, chunk)
        write_now = getattr(transport, "write_now", None)
        if write_now is not None:
            write_now(chunk)
        else:
            transport.write(chunk)
        return int(transport.get_write_buffer_size())


JOIN_LIMIT = 64 * 1024
"""Bytes up to which held writes are joined into one (above it they go as ``writelines``: no copy of a large
body)."""


class CoalescingTransport:
    """A connection's transport whose writes of one event-loop step go out as one ``write``.

    uvicorn writes a response's head as soon as the app starts the response, then its body: two writes, so two
    TLS records and two ``send`` calls for every small answer. This joins the writes made before the loop runs
    its next callback (a head and the body that follows it at once) into one; a write left alone (a streamed
    response's head, before its first chunk) goes out in that next callback, so nothing waits for more data.
    Once more than :data:`JOIN_LIMIT` bytes are held they go at once (a large body is not copied to join its
    head, and the wrapped transport's flow control sees every byte as before: a stream that writes faster than
    its client reads is paused as it was).
    Everything else is the wrapped transport's: :meth:`close`, :meth:`abort` and :meth:`set_protocol` first hand
    it what is held (a finished response is never dropped because its bytes were still held: the server's
    shutdown aborts connections whose response is complete), and :meth:`get_write_buffer_size` counts it.
    """

    __slots__ = ("_held", "_loop", "_pending", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._held = 0  # bytes in _pending
        self._scheduled = False

    def write(self, data: bytes) -> None:
        """Hold ``data`` until the loop's next callback (joined with what follows it until then), or hand it over
        now with what is held once that passes :data:`JOIN_LIMIT` bytes."""
        if not data:
            return
        self._pending.append(data)
        self._held += len(data)
        if self._held > JOIN_LIMIT:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def write_now(self, data: bytes) -> None:
        """Send what is held and ``data`` at once (the watch fan-out: one write per watcher already)."""
        if self._pending:
            self._pending.append(data)
            self._held += len(data)
            self.flush()
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Hand what is held to the transport (nothing if it is closing: the client is gone)."""
        self._scheduled = False
        pending, held = self._pending, self._held
        if not pending:
            return
        self._pending, self._held = [], 0
        if self._transport.is_closing():
            return
        if len(pending) == 1:
            self._transport.write(pending[0])
        elif held <= JOIN_LIMIT:
            self._transport.write(b"".join(pending))
        else:  # a large body: no copy of it to join the head (asyncio's TLS transport still sends them at once)
            self._transport.writelines(pending)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self.flush()  # as if written at once: the wrapped transport sends what the kernel takes, drops the rest
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` (its ``http=`` setting) refusing request heads over
    :attr:`max_head_bytes` (see the module docstring)."""

    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a new connection starts with a head
        self._head_bytes = 0  # request line + headers handed over by the parser
        self._head_received = 0  # bytes received while the head is incomplete
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_head and not self._refused:
            self._head_received += len(data)
            if self._head_received > 2 * self.max_head_bytes:
                self._refuse()

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = self._head_received = 0
        super().on_message_begin()

    # Once a head is refused, the rest of what the parser already holds is dropped: the refused request
    # never reaches the app (no ASGI cycle starts for it), and nothing more of it is kept.

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        if not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self._refused:
            super().on_headers_complete()
            cycle = getattr(self, "cycle", None)
            if cycle is not None and getattr(cycle, "scope", None) is self.scope:  # not an upgrade
                self.scope.setdefault("extensions", {})[CHUNK_WRITER] = ChunkWriter(cycle)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = self._head_received = 0

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_head_bytes and not self._refused:
            self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning("Request head over %d bytes refused with 431", self.max_head_bytes)
        if not self.transport.is_closing():
            self.transport.write(REFUSAL)
            self.transport.close()
