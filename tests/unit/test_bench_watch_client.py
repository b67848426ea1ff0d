"""The API server benchmark's watch client (``bench/apiserver.py``): chunked bodies read per socket read, and
the ``(type, name)`` of each watch event. Pure logic: an ``asyncio.StreamReader`` fed by hand."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import apiserver as bench


def chunked(*payloads: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"


async def batches(wire: bytes, pieces: int) -> list[bytes]:
    """Feed ``wire`` to a connection's reader in ``pieces`` parts, each after the previous was consumed."""
    conn = bench.Conn("http://127.0.0.1:1", None, "")
    conn.reader = reader = asyncio.StreamReader()
    step = max(1, len(wire) // pieces)
    parts = [wire[i : i + step] for i in range(0, len(wire), step)]
    out: list[bytes] = []

    async def feed() -> None:
        for part in parts:
            reader.feed_data(part)
            await asyncio.sleep(0)
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    async for batch in conn.chunk_batches():
        out.append(batch)
    await feeder
    return out


@pytest.mark.parametrize("pieces", [1, 3, 17, 1000])
def test_chunk_batches_give_back_every_payload_in_order_however_the_bytes_arrive(pieces: int) -> None:
    payloads = [b'{"type":"ADDED","object":{"metadata":{"name":"w-%07d"}}}\n' % i for i in range(40)]
    out = asyncio.run(batches(chunked(*payloads), pieces))
    assert b"".join(out) == b"".join(payloads)
    if pieces == 1:
        assert len(out) == 1  # one read: one batch


def test_chunk_batches_report_a_stream_cut_short() -> None:
    with pytest.raises(bench.ClientError):
        asyncio.run(batches(b"5\r\nabc", 1))


def test_event_heads_name_each_event_and_an_error_by_its_status() -> None:
    block = (
        b'{"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"w-0000001","namespace":"n"}}}\n'
        b'{"type":"MODIFIED","object":{"metadata":{"namespace":"n","name":"w-0000002"}}}\n'
        b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}'
    )
    heads = bench.event_heads(block)
    assert heads[:2] == [("ADDED", "w-0000001"), ("MODIFIED", "w-0000002")]
    assert heads[2][0] == "ERROR" and "Expired" in heads[2][1]


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["ADDED", "MODIFIED", "DELETED"]),
            st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True),
            st.booleans(),  # the name first in metadata (the fast path) or after the namespace
            st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=3),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_event_heads_read_every_layout_as_a_json_parser_does(
    events: list[tuple[str, str, bool, dict[str, str]]],
) -> None:
    lines = []
    for kind, name, name_first, data in events:
        meta = {"name": name, "namespace": "n"} if name_first else {"namespace": "n", "name": name}
        obj = {"kind": "Secret", "apiVersion": "v1", "metadata": meta, "data": data}
        lines.append(orjson.dumps({"type": kind, "object": obj}))
    heads = bench.event_heads(b"\n".join(lines))
    assert heads == [(kind, name) for kind, name, _, _ in events]


def test_event_heads_read_the_servers_layout_without_a_json_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parse(_: bytes) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(orjson, "loads", no_parse)
    block = b'{"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"w-1","namespace":"n"}}}\n' * 3
    assert bench.event_heads(block.rstrip(b"\n")) == [("ADDED", "w-1")] * 3
