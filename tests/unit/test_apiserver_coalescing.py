""":class:`dockyard.apiserver.httpproto.CoalescingTransport`: the writes of one event-loop step leave as one write,
in order; nothing is held past the loop's next callback; closing or aborting sends what is held first.

The wrapped transport is a recorder (pure logic); the server's behaviour over TLS is exercised by every
integration test of the API server."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from dockyard.apiserver.httpproto import JOIN_LIMIT, ChunkWriter, CoalescingTransport


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def writelines(self, lines: list[bytes]) -> None:
        self.writes.append(tuple(lines))  # type: ignore[arg-type]  # one call, its pieces as given

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 7

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def _step() -> None:
    await asyncio.sleep(0)


def test_a_head_and_its_body_leave_as_one_write() -> None:
    async def run() -> list[bytes]:
        raw = Recorder()
        t = CoalescingTransport(raw)  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"{}")
        assert raw.writes == [] and t.get_write_buffer_size() == 7 + 21
        await _step()
        return raw.writes

    assert asyncio.run(run()) == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


def test_a_large_body_is_handed_over_with_its_head_without_a_copy() -> None:
    async def run() -> list[Any]:
        raw = Recorder()
        t = CoalescingTransport(raw)  # type: ignore[arg-type]
        body = b"x" * (JOIN_LIMIT + 1)
        t.write(b"head")
        t.write(body)
        # at once: the wrapped transport's flow control sees a large write as it did before (a stream writing
        # faster than its client reads is paused), and the body is not copied to join the head
        assert raw.writes and raw.writes[0][1] is body and t.get_write_buffer_size() == 7
        await _step()
        return raw.writes

    assert asyncio.run(run()) == [(b"head", b"x" * (JOIN_LIMIT + 1))]


def test_a_lone_write_leaves_at_the_next_callback_and_order_is_kept() -> None:
    async def run() -> list[bytes]:
        raw = Recorder()
        t = CoalescingTransport(raw)  # type: ignore[arg-type]
        t.write(b"head")
        await _step()
        assert raw.writes == [b"head"]  # a streamed response's head does not wait for its first chunk
        t.write(b"a")
        t.write_now(b"b")  # the watch fan-out's direct write: after what is held
        t.write(b"")
        t.writelines([b"c", b"d"])
        await _step()
        return raw.writes

    assert asyncio.run(run()) == [b"head", b"ab", b"cd"]


def test_close_and_abort_send_what_is_held_and_a_closed_transport_gets_nothing() -> None:
    """An abort after a complete response (the server's shutdown drops idle connections so) must not lose the
    response's bytes still held: they go to the transport first, as they did when every write went at once."""

    async def run() -> tuple[Recorder, Recorder, Recorder]:
        closed, aborted, gone = Recorder(), Recorder(), Recorder()
        t = CoalescingTransport(closed)  # type: ignore[arg-type]
        t.write(b"last words")
        t.close()
        a = CoalescingTransport(aborted)  # type: ignore[arg-type]
        a.write(b"the last response")
        a.abort()
        g = CoalescingTransport(gone)  # type: ignore[arg-type]
        g.write(b"too late")
        gone.closed = True  # the client left before the next callback
        await _step()
        return closed, aborted, gone

    closed, aborted, gone = asyncio.run(run())
    assert closed.writes == [b"last words"] and closed.closed
    assert aborted.writes == [b"the last response"] and aborted.aborted
    assert gone.writes == []


def test_everything_else_is_the_wrapped_transports() -> None:
    async def run() -> Recorder:
        raw = Recorder()
        t = CoalescingTransport(raw)  # type: ignore[arg-type]
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)
        t.write(b"before the upgrade")
        t.set_protocol("next")
        return raw

    raw = asyncio.run(run())
    assert raw.writes == [b"before the upgrade"] and raw.protocol == "next"


def test_a_chunk_is_framed_once_for_every_watcher_it_goes_to() -> None:
    """:class:`~dockyard.apiserver.httpproto.ChunkWriter`: RFC 9112 chunk framing (hex size, CRLF, data, CRLF), done
    once for the ``data`` object the fan-out hands to every watcher of a view; other data is framed anew."""

    async def run() -> list[list[bytes]]:
        raws = [Recorder(), Recorder()]
        writers = [
            ChunkWriter(
                SimpleNamespace(
                    transport=CoalescingTransport(raw),  # type: ignore[arg-type]
                    response_started=True,
                    chunked_encoding=True,
                    response_complete=False,
                    disconnected=False,
                )
            )
            for raw in raws
        ]
        commit = b'{"type":"ADDED"}\n' * 20
        for w in writers:
            assert w.write(commit) == 7  # the wrapped transport's unsent bytes
        assert raws[0].writes[0] is raws[1].writes[0]  # one framing for both
        writers[0].write(b"x\n")
        return [raw.writes for raw in raws]

    first, second = asyncio.run(run())
    assert first == [b"154\r\n" + b'{"type":"ADDED"}\n' * 20 + b"\r\n", b"2\r\nx\n\r\n"]
    assert second == first[:1]
