"""Benchmark: dockyard's API server (HTTPS, SQLite) against etcd on the same machine, same run.

One run starts the API server over a temporary data dir on a free port of 127.0.0.1: by default only
the API server (``python -m dockyard.apiserver``) when this dockyard has it, else (or with
``--server up``) all of ``dockyard up`` (see ``_harness.py``); then it measures, against that API
over HTTPS with the admin kubeconfig's token and CA:

create      ``POST /api/v1/namespaces/NS/secrets`` (Secrets: no controller reacts to them), with
            1 client (1,000 objects, which also make the 1k list) and with ``--concurrency`` clients
            (``--creates`` objects); then the 10k namespace is filled up with the same clients.
get         ``GET .../secrets/NAME`` of random existing objects, 1 client and ``--concurrency`` clients.
list        ``GET .../secrets`` of a namespace holding 1,000 and one holding 10,000 objects (body read
            in full, not parsed): median of ``--list-rounds`` after one warm-up.
memory      the server's resident memory (VmRSS) with the 11,000 objects, and again with the watches open.
unwatched   ``--writers`` clients create ``--watch-writes`` Secrets with no watch open (the base rate; etcd's too).
watch       ``--watchers`` concurrent watches, spread over ``--watcher-procs`` processes (uvloop each, at
            ``--watcher-nice``, 10 by default: on two cores the watchers' processes, woken by every
            event, otherwise preempt the server they measure, for etcd as for dockyard), on a namespace while ``--writers`` concurrent clients create ``--watch-writes`` Secrets in
            it; delivery latency = the event's arrival at a watcher − the write's response at its writer
            (both ``time.monotonic``, one clock for all processes of the host), over every
            (watcher, write) pair. Unwatched and watched writes alternate for ``--watch-rounds`` rounds
            (the base rate of one run varies by 10-20 % on a shared machine): the figure is the round
            with the median ratio, every round's is printed, with the server's CPU time per write unwatched
            and watched (what the watch costs the server, less sensitive to the host's speed than the rates). The watchers' and writers' CPU use is printed: the load generator
            must not be what limits the figures.
HTTP floor  ``GET /version`` (no auth, no store): what HTTPS + uvicorn + the app cost per request.

etcd (Debian's ``etcd-server``, the store under kube-apiserver; ``--no-etcd`` skips it), after the
API server's phases: started on 127.0.0.1 with its data dir in the work dir and its defaults (one
fsync per acknowledged write batch), the same loads through its v3 JSON gateway: ``/v3/kv/put``
(creates, same values), ``/v3/kv/range`` (gets, and prefix ranges for the lists), ``/v3/watch``
(one watch of the namespace's prefix per watcher). Each dockyard figure is printed beside etcd's
with the ratio.

The raw-SQLite reference, after the server has stopped: a plain SQLite table (WAL, ``synchronous=FULL``,
the server's settings) in the same directory, rows of the same JSON as the stored Secret (same size),
one transaction per insert; point SELECTs for gets; a SELECT of 1,000 / 10,000 rows joined into one
JSON array for lists.

Prints a table (dockyard, etcd, ratio, raw SQLite) and, as its last stdout line, one JSON summary.

Usage: .venv/bin/python bench/apiserver.py [--creates N] [--concurrency C] [--watchers W] [--writers K]
                                           [--watch-writes N] [--watcher-procs P] [--watcher-nice N] [--no-etcd]
                                           [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import queue
import random
import shutil
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness
from _harness import (
    BenchError,
    Harness,
    code_version,
    console,
    fmt,
    free_port,
    make_workdir,
    median,
    percentile,
)

NS_1K, NS_10K, NS_WATCH = "bench-1k", "bench-10k", "bench-watch"
LIST_SIZES = {NS_1K: 1_000, NS_10K: 10_000}
PAYLOAD_BYTES = 192  # random bytes in each Secret's data (256 base64 characters)
MAX_ERRORS = 50  # a load stops after this many failed requests

# Every wait is bounded (seconds).
REQUEST_TIMEOUT = 60
CHILD_CONNECT_TIMEOUT = 60
CHILD_SYNC_TIMEOUT = 60
CHILD_DRAIN_TIMEOUT = 120


_NAME_KEY = b'"metadata":{"name":"'


def event_heads(block: bytes) -> list[tuple[str, str]]:
    """``[(type, name), ...]`` of the newline-separated watch events in ``block`` (``name``: the Status's text
    for an ``ERROR``).

    The watchers' processes read every event of every watch (55,000 a second in the watch phase) on the two
    cores the server runs on, so an event laid out as the server writes it (``{"type":"T","object":`` with
    ``metadata`` and its ``name`` first, as dockyard and kube-apiserver write Secrets) is read with two
    ``bytes.find`` calls: 1.1 µs for an 800-byte event against 3.3 µs for ``orjson.loads`` (which was 45 % of
    the watchers' CPU in a ``py-spy`` profile). Any other line (an ``ERROR``) is parsed with orjson."""
    out = []
    for line in block.split(b"\n"):
        if line.startswith(b'{"type":"'):
            end = line.find(b'"', 9)
            at = line.find(_NAME_KEY, end)
            if end > 9 and at > 0 and line.startswith(b',"object":{', end + 1):
                at += len(_NAME_KEY)
                out.append((line[9:end].decode(), line[at : line.find(b'"', at)].decode()))
                continue
        if line.strip():
            event = orjson.loads(line)
            obj = event.get("object") or {}
            name = (obj.get("metadata") or {}).get("name", "") if event.get("type") != "ERROR" else str(obj)[:200]
            out.append((event.get("type", ""), name))
    return out


def secret_path(ns: str, name: str | None = None) -> str:
    return f"/api/v1/namespaces/{ns}/secrets" + (f"/{name}" if name else "")


def obj_name(prefix: str, i: int) -> str:
    return f"{prefix}-{i:07d}"


def secret_body(name: str, rng: random.Random) -> dict[str, Any]:
    payload = base64.b64encode(rng.randbytes(PAYLOAD_BYTES)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "labels": {"app": "dockyard-bench"}},
        "data": {"payload": payload},
    }


# --- load generation (asyncio, a minimal HTTP/1.1 client) ------------------------------------------------------------


@dataclass
class Load:
    """What one bounded load run did."""

    requested: int
    concurrency: int
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds per successful request
    first_error: str | None = None
    stopped_by_deadline: bool = False
    times: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (sent, response), if asked
    error_at: list[tuple[float, float]] = field(default_factory=list)  # failed: (s after the load began, s waited)
    client_cpu: float | None = None  # CPU seconds per wall second of the load generator (this process)
    server_cpu: float | None = None  # and of the server process
    server_wait: float | None = None  # seconds per wall second the server's threads waited for a CPU (runnable)

    @property
    def rate(self) -> float | None:
        return self.ok / self.elapsed if self.elapsed > 0 and self.ok else None

    def summary(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "ok": self.ok,
            "errors": self.errors,
            "concurrency": self.concurrency,
            "elapsed_s": round(self.elapsed, 3),
            "per_s": self.rate,
            "latency_p50_ms": _ms(percentile(self.latencies, 50)),
            "latency_p99_ms": _ms(percentile(self.latencies, 99)),
            "first_error": self.first_error,
            "error_at_s": self.error_at[:20],
            "stopped_by_deadline": self.stopped_by_deadline,
            "client_cpu_cores": _r(self.client_cpu),
            "server_cpu_cores": _r(self.server_cpu),
            "server_runqueue_wait": _r(self.server_wait),
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) a process has used so far, from /proc; None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def runqueue_wait(pid: int | None) -> float | None:
    """Seconds the threads of a process have waited, runnable, for a CPU so far (the sum of the second field of
    ``/proc/PID/task/*/schedstat``, in ns; Linux ``Documentation/scheduler/sched-stats.rst``); None if unknown.
    Its growth per second of a load says whether the machine (the load generator beside the server) kept the
    server from running."""
    if pid is None:
        return None
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
    except OSError:
        return None
    return total / 1e9


def cpu_per_write(cores: float | None, per_s: float | None) -> float | None:
    """Server CPU time per write, in ms: ``cores`` (CPU seconds per second) over writes per second."""
    return _r(1000 * cores / per_s) if cores and per_s else None


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 3)


class ClientError(Exception):
    """A request got no (complete) answer: connection refused, closed by the server, timed out, bad HTTP."""


class Conn:
    """One HTTP/1.1 keep-alive connection (TLS when the URL is https), on asyncio streams.

    The load generator's client. httpx costs a few milliseconds of CPU per request in this process and its
    connection pool slows down with many connections, which would measure the client instead of the
    server; this writes a request and reads ``Content-Length`` or chunked answers, nothing more.
    """

    def __init__(self, url: str, ca: str | None, token: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if u.scheme == "https":
            self.ssl = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        self.head = f"Host: {self.host}:{self.port}\r\nAccept: application/json\r\n" + (
            f"Authorization: Bearer {token}\r\n" if token else ""
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def send(self, method: str, target: str, body: bytes | None = None) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
                ),
                30,
            )
        head = f"{method} {target} HTTP/1.1\r\n{self.head}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer = self.writer
        assert writer is not None
        writer.write(head.encode() + b"\r\n" + (body or b""))
        await writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as err:
            raise ClientError(
                "the server closed the connection without sending a response"
                if not err.partial
                else "the server closed the connection mid-response"
            ) from None
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        return status, headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The chunks of a ``Transfer-Encoding: chunked`` body."""
        assert self.reader is not None
        for _ in range(100_000_000):  # bounded by the stream's end (or the caller's timeout)
            size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await self.reader.readline()).strip():  # trailers
                    pass
                return
            data = await self.reader.readexactly(size)
            await self.reader.readexactly(2)
            yield data

    async def chunk_batches(self) -> AsyncIterator[bytes]:
        """The payloads of a ``Transfer-Encoding: chunked`` body, joined per socket read: what one read of up to
        64 KiB completed. For long watch streams: one read per wake-up and no per-chunk copy of the reader's
        buffer (``readline``/``readexactly`` shift the whole buffer per call)."""
        assert self.reader is not None
        buf, pos, need = b"", 0, -1  # need: payload bytes of the current chunk (+ CRLF), -1 while reading its size
        for _ in range(100_000_000):  # bounded by the stream's end (or the caller's timeout)
            data = await self.reader.read(1 << 16)
            if not data:
                raise ClientError("the server closed the connection mid-response")
            buf = buf[pos:] + data if pos < len(buf) else data
            pos, out = 0, list[bytes]()
            while True:
                if need < 0:
                    end = buf.find(b"\r\n", pos)
                    if end < 0:
                        break
                    need = int(buf[pos:end].split(b";")[0].strip() or b"0", 16)
                    pos = end + 2
                    if need == 0:  # the last chunk (trailers are not used by watch streams)
                        if out:
                            yield b"".join(out)
                        return
                if len(buf) - pos < need + 2:
                    break
                out.append(buf[pos : pos + need])
                pos, need = pos + need + 2, -1
            if out:
                yield b"".join(out)

    async def read_body(self, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return b"".join([c async for c in self.chunks()])
        data = await self.reader.read()
        await self.close()
        return data

    async def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        try:
            await self.send(method, target, body)
            status, headers = await self.read_head()
            data = await self.read_body(headers)
        except (
            OSError,
            ssl.SSLError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            TimeoutError,
        ) as err:
            await self.close()
            raise ClientError(f"{type(err).__name__}: {err}") from None
        except ClientError:
            await self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data


RequestFn = Callable[[int], tuple[str, str, bytes | None, str | None]]
"""i → (method, path, JSON body or None, key to record times under or None)."""


async def _run_load(
    server: str,
    ca: str | None,
    token: str,
    n: int,
    concurrency: int,
    make: RequestFn,
    expect: tuple[int, ...],
    deadline_s: float,
) -> Load:
    """``n`` requests from ``concurrency`` clients (one keep-alive connection each); bounded by ``deadline_s``."""
    load = Load(requested=n, concurrency=concurrency)
    counter = iter(range(n))
    t_start = time.monotonic()
    deadline = t_start + deadline_s

    async def worker() -> None:
        conn = Conn(server, ca, token)
        try:
            for i in counter:  # shared iterator: each index once, at most n requests in all
                if time.monotonic() > deadline:
                    load.stopped_by_deadline = True
                    return
                if load.errors >= MAX_ERRORS:
                    return
                method, path, body, key = make(i)
                t0 = time.monotonic()
                try:
                    status, data = await asyncio.wait_for(conn.request(method, path, body), REQUEST_TIMEOUT)
                except (ClientError, TimeoutError) as err:
                    await conn.close()
                    load.errors += 1
                    load.error_at.append((round(t0 - t_start, 3), round(time.monotonic() - t0, 3)))
                    load.first_error = load.first_error or f"{method} {path}: {type(err).__name__}: {err}"
                    continue
                t1 = time.monotonic()
                if status in expect:
                    load.ok += 1
                    load.latencies.append(t1 - t0)
                    if key is not None:
                        load.times[key] = (t0, t1)
                else:
                    load.errors += 1
                    load.error_at.append((round(t0 - t_start, 3), round(t1 - t0, 3)))
                    load.first_error = load.first_error or f"{method} {path} → {status}: {data[:300]!r}"
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    load.elapsed = time.monotonic() - t_start
    return load


# --- the watchers' process -----------------------------------------------------------------------


async def _watchers_main(args: argparse.Namespace) -> int:
    """Child process: ``args.watchers`` watches on ``args.ns`` secrets; reports on stdout, results to a file.

    Protocol (one line each on stdout): ``connected K`` once K watches answered 200 (or the connect
    timeout passed), ``synced K`` once K watches saw an object named ``sync-*``, ``finished`` once every
    watch saw ``done-*`` (or the drain timeout passed) and the results file is written.
    """
    token = os.environ.get("BENCH_TOKEN", "")
    etcd = args.target == "etcd"
    n = args.watchers
    arrivals: list[dict[str, float]] = [{} for _ in range(n)]
    events_seen = [0] * n
    errors: list[str] = []
    connected, synced, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    state = {"connected": 0, "synced": 0, "done": 0}
    loop_deadline = time.monotonic() + args.lifetime

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    async def one(i: int) -> None:
        query = urllib.parse.urlencode(
            {"watch": "true", "resourceVersion": args.rv, "timeoutSeconds": str(int(args.lifetime))}
        )
        saw_sync = saw_done = False
        conn = Conn(args.server, args.ca or None, token)
        decoder = json.JSONDecoder()
        try:
            if etcd:  # etcd's JSON gateway: one watch of the namespace's key prefix
                prefix = etcd_key(args.ns, "")
                create = {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}}
                await conn.send("POST", "/v3/watch", json.dumps(create).encode())
            else:
                await conn.send("GET", f"{secret_path(args.ns)}?{query}")
            status, headers = await conn.read_head()
            if status != 200:
                body = await conn.read_body(headers)
                errors.append(f"watch {i}: HTTP {status}: {body[:200]!r}")
                return
            state["connected"] += 1
            if state["connected"] == n:
                connected.set()
            buf = b""
            async for chunk in conn.chunk_batches():
                t = time.monotonic()
                buf += chunk
                if etcd:  # a stream of JSON messages, each with its events; made into watch events here
                    text, buf, heads = buf.decode(), b"", []
                    pos = 0
                    while pos < len(text):
                        while pos < len(text) and text[pos].isspace():
                            pos += 1
                        if pos >= len(text):
                            break
                        try:
                            message, pos = decoder.raw_decode(text, pos)
                        except ValueError:
                            buf = text[pos:].encode()
                            break
                        result = message.get("result") or {}
                        if "error" in message:
                            heads.append(("ERROR", str(message["error"])))
                        for ev in result.get("events") or []:
                            name = base64.b64decode(ev["kv"]["key"]).decode().rsplit("/", 1)[-1]
                            kind = "DELETED" if ev.get("type") == "DELETE" else "ADDED"
                            heads.append((kind, name))
                else:
                    block, newline, buf = buf.rpartition(b"\n")
                    heads = event_heads(block) if newline else []
                for kind, name in heads:
                    events_seen[i] += 1
                    if kind == "ERROR":
                        errors.append(f"watch {i}: ERROR event {name[:200]}")
                        return
                    if name.startswith("sync-"):
                        if not saw_sync:
                            saw_sync = True
                            state["synced"] += 1
                            if state["synced"] == n:
                                synced.set()
                    elif name.startswith("done-"):
                        saw_done = True
                        state["done"] += 1
                        if state["done"] == n:
                            done.set()
                        return
                    elif kind == "ADDED" and name not in arrivals[i]:
                        arrivals[i][name] = t
                if time.monotonic() > loop_deadline:
                    errors.append(f"watch {i}: lifetime over")
                    return
            errors.append(f"watch {i}: the stream ended before the done marker")
        except (ClientError, OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError) as err:
            errors.append(f"watch {i}: {type(err).__name__}: {err}")
        finally:
            await conn.close()
            if not saw_done:  # count it anyway so the others are not waited for in vain
                state["done"] += 1
                if state["done"] == n:
                    done.set()
            if not saw_sync:
                state["synced"] += 1
                if state["synced"] == n:
                    synced.set()

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    for event, key, timeout in (
        (connected, "connected", CHILD_CONNECT_TIMEOUT),
        (synced, "synced", CHILD_SYNC_TIMEOUT),
    ):
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        say(f"{key} {state[key]}")
    try:
        await asyncio.wait_for(done.wait(), max(1.0, loop_deadline - time.monotonic()))
    except TimeoutError:
        errors.append("not every watch saw the done marker in time")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "arrivals": arrivals,
                "events_seen": events_seen,
                "errors": errors[:50],
                "error_count": len(errors),
                "cpu_s": time.process_time(),
            }
        )
    )
    say("finished")
    return 0


class WatcherProcess:
    """One watchers' child process, with bounded reads of its report lines."""

    def __init__(
        self,
        *,
        target: str,
        url: str,
        ca: str,
        token: str,
        ns: str,
        rv: str,
        watchers: int,
        lifetime: float,
        nice: int,
        out: Path,
    ) -> None:
        env = dict(os.environ, BENCH_TOKEN=token)
        self.out = out
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "_watchers",
                "--target",
                target,
                "--server",
                url,
                "--ca",
                ca,
                "--ns",
                ns,
                "--rv",
                rv,
                "--watchers",
                str(watchers),
                "--lifetime",
                str(lifetime),
                "--nice",
                str(nice),
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=open(out.with_suffix(".stderr"), "wb"),  # noqa: SIM115
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, word: str, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"watcher process: no '{word}' within {timeout:.0f}s") from None
        if line is None or not line.startswith(word):
            err = ""
            try:
                err = self.out.with_suffix(".stderr").read_text()[-2000:]
            except OSError:
                pass
            raise BenchError(f"watcher process: expected '{word}', got {line!r}\n{err}")
        return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class WatcherGroup:
    """The watches spread over ``procs`` child processes (one asyncio loop each), so the load
    generator's own CPU is not what limits delivery; their reports are summed and merged."""

    def __init__(self, *, procs: int, watchers: int, out: Path, **kwargs: Any) -> None:
        procs = max(1, min(procs, watchers))
        shares = [watchers // procs + (1 if k < watchers % procs else 0) for k in range(procs)]
        self.children = [
            WatcherProcess(watchers=share, out=out.with_name(f"{out.stem}-{k}.json"), **kwargs)
            for k, share in enumerate(shares)
        ]

    def expect(self, word: str, timeout: float) -> int:
        """Sum of the children's ``word K`` counts (``finished``: the number of children)."""
        deadline = time.monotonic() + timeout
        total = 0
        for child in self.children:
            line = child.expect(word, max(1.0, deadline - time.monotonic()))
            parts = line.split()
            total += int(parts[1]) if len(parts) > 1 else 1
        return total

    def report(self) -> dict[str, Any]:
        merged: dict[str, Any] = {
            "arrivals": [],
            "events_seen": [],
            "errors": [],
            "error_count": 0,
            "cpu_s": 0.0,
        }
        for child in self.children:
            r = json.loads(child.out.read_text())
            merged["arrivals"] += r["arrivals"]
            merged["events_seen"] += r["events_seen"]
            merged["errors"] += r["errors"]
            merged["error_count"] += r["error_count"]
            merged["cpu_s"] += r.get("cpu_s") or 0.0
        return merged

    def cpu(self) -> float:
        """CPU seconds the children have used so far (from /proc)."""
        return sum(process_cpu(child.proc.pid) or 0.0 for child in self.children)

    def stop(self) -> None:
        for child in self.children:
            child.stop()


# --- etcd, the store under kube-apiserver, on the same machine -----------------------------------


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def etcd_key(ns: str, name: str) -> str:
    return f"/bench/{ns}/{name}"


def prefix_end(prefix: str) -> str:
    """etcd's range end of a key prefix: the prefix with its last byte plus one."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Etcd:
    """``etcd`` (Debian's ``etcd-server``) on 127.0.0.1 with its data dir under the bench's workdir.

    Defaults kept: one fsync of the WAL per committed proposal batch before a write is acknowledged.
    Clients use its v3 JSON gateway (``/v3/kv/put``, ``/v3/kv/range``, ``/v3/watch``) over plain HTTP.
    """

    def __init__(self, workdir: Path) -> None:
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.data = workdir / "etcd"
        self.log = workdir / "etcd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        return shutil.which("etcd")

    def start(self, timeout: float = 30) -> None:
        exe = self.binary()
        if exe is None:
            raise BenchError("etcd is not installed (apt-get install etcd-server; scripts/bootstrap.sh does)")
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.proc = subprocess.Popen(
            [
                exe,
                "--name",
                "bench",
                "--data-dir",
                str(self.data),
                "--listen-client-urls",
                self.url,
                "--advertise-client-urls",
                self.url,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"bench={peer}",
                "--log-level",
                "warn",
            ],
            stdout=open(self.log, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"etcd exited: {self.log.read_text()[-1000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise BenchError(f"etcd not healthy within {timeout:.0f}s")

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(f"{self.url}{path}", json=body, timeout=REQUEST_TIMEOUT)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of a process in MiB (``VmRSS`` of /proc/PID/status); None if unknown."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


# --- the raw SQLite reference --------------------------------------------------------------------


def sqlite_reference(
    path: Path, template: str, template_name: str, *, inserts: int, gets: int, list_rounds: int, deadline_s: float
) -> dict[str, Any]:
    """Raw SQLite doing the store's work with the same rows: inserts/s, gets/s, list ms."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE objects (namespace TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, "
        "PRIMARY KEY (namespace, name))"
    )
    needle = f'"name":"{template_name}"'
    if needle not in template:
        raise BenchError("the stored object's JSON does not carry its name in the expected form")

    def row(name: str) -> str:
        assert len(name) == len(template_name)
        return template.replace(needle, f'"name":"{name}"', 1)

    out: dict[str, Any] = {"row_bytes": len(template.encode())}
    deadline = time.monotonic() + deadline_s
    # inserts: one transaction each, as the server commits each create
    t0 = time.monotonic()
    done = 0
    for i in range(inserts):
        if time.monotonic() > deadline:
            break
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO objects(namespace, name, data) VALUES (?,?,?)",
            ("ref-create", obj_name("c", i), row(obj_name("c", i))),
        )
        db.execute("COMMIT")
        done += 1
    elapsed = time.monotonic() - t0
    out["insert"] = {"n": done, "elapsed_s": round(elapsed, 4), "per_s": done / elapsed if elapsed > 0 else None}
    # the list namespaces, in one transaction each (not timed)
    for ns, size in LIST_SIZES.items():
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO objects(namespace, name, data) VALUES (?,?,?)",
            ((ns, obj_name("s", i), row(obj_name("s", i))) for i in range(size)),
        )
        db.execute("COMMIT")
    # gets: point SELECTs by key
    rng = random.Random(7)
    t0 = time.monotonic()
    done = 0
    for _ in range(gets):
        if time.monotonic() > deadline:
            break
        r = db.execute(
            "SELECT data FROM objects WHERE namespace = ? AND name = ?",
            (NS_1K, obj_name("s", rng.randrange(LIST_SIZES[NS_1K]))),
        ).fetchone()
        assert r is not None
        done += 1
    elapsed = time.monotonic() - t0
    out["get"] = {"n": done, "elapsed_s": round(elapsed, 4), "per_s": done / elapsed if elapsed > 0 else None}
    # lists: every row of a namespace, joined into one JSON array (what a list answer needs at least)
    for ns, size in LIST_SIZES.items():
        times = []
        for r in range(list_rounds + 1):
            t0 = time.monotonic()
            rows = db.execute("SELECT data FROM objects WHERE namespace = ? ORDER BY name", (ns,)).fetchall()
            body = "[" + ",".join(x[0] for x in rows) + "]"
            if r > 0:
                times.append(time.monotonic() - t0)
            if len(rows) != size:
                raise BenchError(f"sqlite reference: {len(rows)} rows in {ns}, expected {size}")
            del body
        out[f"list_{size}"] = {"median_ms": _ms(median(times)), "ms": [_ms(x) for x in times]}
    db.close()
    return out


# --- the benchmark -------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.h = Harness(workdir, engine=args.engine, raw_client="none", isolated_storage=not args.shared_storage)
        self.rng = random.Random(42)
        self.results: dict[str, Any] = {}
        self.template: tuple[str, str] | None = None  # (stored JSON of one Secret, its name)
        self.watcher: WatcherGroup | None = None
        self.etcd = Etcd(workdir)
        self.etcd_results: dict[str, Any] = {}
        self.problems: list[str] = []  # failed requests, missing events: the run is not ok
        self.notes: list[str] = []
        self.mode = "?"

    # --- helpers --------------------------------------------------------------------------------

    def load(
        self,
        n: int,
        concurrency: int,
        make: RequestFn,
        expect: tuple[int, ...],
        *,
        auth: bool = True,
        etcd: bool = False,
    ) -> Load:
        if etcd:
            server_pid = self.etcd.proc.pid if self.etcd.proc is not None else None
            url, ca, token = self.etcd.url, None, ""
        else:
            server_pid = self.h.up_proc.pid if self.h.up_proc is not None else None
            url, ca = self.h.api_url, self.h.verify if isinstance(self.h.verify, str) else None
            token = self.h.token if auth else ""
        c0, s0, w0 = time.process_time(), process_cpu(server_pid), time.monotonic()
        q0 = runqueue_wait(server_pid)
        load = asyncio.run(_run_load(url, ca, token, n, concurrency, make, expect, self.args.phase_timeout))
        wall = time.monotonic() - w0
        s1, q1 = process_cpu(server_pid), runqueue_wait(server_pid)
        # who is busy: the share of one core this process (the client) and the server process used
        load.client_cpu = (time.process_time() - c0) / wall if wall > 0 else None
        load.server_cpu = (s1 - s0) / wall if wall > 0 and s0 is not None and s1 is not None else None
        load.server_wait = (q1 - q0) / wall if wall > 0 and q0 is not None and q1 is not None else None
        return load

    def check(self, what: str, load: Load, *, allow_short: bool = False) -> None:
        line = (
            f"  {what}: {load.ok}/{load.requested} ok in {load.elapsed:.2f}s → {fmt(load.rate, 1)}/s "
            f"(p50 {fmt(_ms(percentile(load.latencies, 50)), 1)} ms, "
            f"p99 {fmt(_ms(percentile(load.latencies, 99)), 1)} ms; CPU cores busy: client "
            f"{fmt(load.client_cpu)}, server {fmt(load.server_cpu)}; server waited for a CPU "
            f"{fmt(load.server_wait)} s/s)"
        )
        console.print(line)
        if load.errors:
            problem = (
                f"{what}: {load.errors} failed requests; first: {load.first_error}; "
                f"(sent at, failed after) s: {load.error_at[:5]}"
            )
            if load.errors >= MAX_ERRORS:
                raise BenchError(problem)
            self.problems.append(problem)  # reported, and the run fails, but the other phases still run
            console.print(f"  [yellow]! {problem}[/yellow]")
        elif load.ok < load.requested and not allow_short:
            raise BenchError(f"{what}: only {load.ok}/{load.requested} done within {self.args.phase_timeout}s")

    def creates(self, ns: str, prefix: str, start: int, count: int, concurrency: int) -> Load:
        rng = self.rng
        bodies = [json.dumps(secret_body(obj_name(prefix, start + i), rng)).encode() for i in range(count)]
        path = secret_path(ns)
        return self.load(count, concurrency, lambda i: ("POST", path, bodies[i], None), (201,))

    # --- phases ---------------------------------------------------------------------------------

    def setup(self) -> None:
        mode = self.args.server
        if mode == "auto":
            mode = "apiserver" if Harness.apiserver_module_exists() else "up"
        self.mode = mode
        if mode == "apiserver":
            self.h.start_apiserver()
        else:
            self.h.start()
        for ns in (NS_1K, NS_10K, NS_WATCH):
            self.h.api(
                "POST", "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )

    def http_floor(self) -> None:
        n, c = self.args.gets, self.args.concurrency
        for conc, key in ((1, "version_1"), (c, "version_c")):
            load = self.load(n, conc, lambda i: ("GET", "/version", None, None), (200,), auth=False)
            self.check(f"GET /version, {conc} client{'s' if conc > 1 else ''}", load)
            self.results[key] = load.summary()

    def bench_creates(self) -> None:
        c = self.args.concurrency
        load = self.creates(NS_1K, "s", 0, LIST_SIZES[NS_1K], 1)
        self.check(f"create {LIST_SIZES[NS_1K]} Secrets, 1 client", load)
        self.results["create_1"] = load.summary()
        # the stored JSON of one object: the reference's rows are copies of it (same size)
        name = obj_name("s", 0)
        assert self.h.http is not None
        resp = self.h.http.get(secret_path(NS_1K, name))
        stored = json.dumps(resp.json(), separators=(",", ":"), ensure_ascii=False)
        self.template = (stored, name)
        load = self.creates(NS_10K, "s", 0, self.args.creates, c)
        self.check(f"create {self.args.creates} Secrets, {c} clients", load)
        self.results["create_c"] = load.summary()
        rest = LIST_SIZES[NS_10K] - self.args.creates
        if rest > 0:
            load = self.creates(NS_10K, "s", self.args.creates, rest, c)
            self.check(f"fill {NS_10K} with {rest} more, {c} clients", load)
            self.results["create_fill"] = load.summary()

    def bench_gets(self) -> None:
        n, c = self.args.gets, self.args.concurrency
        size = LIST_SIZES[NS_1K]
        names = [obj_name("s", self.rng.randrange(size)) for _ in range(n)]
        for conc, key in ((1, "get_1"), (c, "get_c")):
            load = self.load(n, conc, lambda i: ("GET", secret_path(NS_1K, names[i]), None, None), (200,))
            self.check(f"get, {conc} client{'s' if conc > 1 else ''}", load)
            self.results[key] = load.summary()

    def bench_lists(self) -> None:
        ca = self.h.verify if isinstance(self.h.verify, str) else None

        async def rounds(path: str, size: int) -> tuple[list[float], int]:
            conn = Conn(self.h.api_url, ca, self.h.token)  # one keep-alive connection for every round
            times, nbytes = [], 0
            try:
                for r in range(self.args.list_rounds + 1):
                    t0 = time.monotonic()
                    status, body = await asyncio.wait_for(conn.request("GET", path), REQUEST_TIMEOUT)
                    elapsed = time.monotonic() - t0
                    if status != 200:
                        raise BenchError(f"list {path} → {status}: {body[:300]!r}")
                    if r == 0:  # warm-up round: check the count (not timed)
                        count = len(json.loads(body)["items"])
                        if count != size:
                            raise BenchError(f"list {path}: {count} items, expected {size}")
                        nbytes = len(body)
                        continue
                    times.append(elapsed)
            except (ClientError, TimeoutError) as err:
                raise BenchError(f"list {path}: {type(err).__name__}: {err}") from None
            finally:
                await conn.close()
            return times, nbytes

        for ns, size in LIST_SIZES.items():
            times, nbytes = asyncio.run(rounds(secret_path(ns), size))
            console.print(
                f"  list {size}: median {fmt(_ms(median(times)), 1)} ms of {len(times)} ({nbytes / 1e6:.1f} MB)"
            )
            self.results[f"list_{size}"] = {
                "median_ms": _ms(median(times)),
                "ms": [_ms(x) for x in times],
                "bytes": nbytes,
            }

    def bench_watch(self) -> None:
        """``--watch-rounds`` rounds of unwatched writes then the same writes watched; the median ratio counts."""
        rounds = []
        for n in range(self.args.watch_rounds):
            base = self.unwatched_writes(f"u{n}")
            listed = self.h.api("GET", secret_path(NS_WATCH), params={"limit": "1"})
            r = self.watch_phase("dockyard", listed["metadata"]["resourceVersion"], round_=n)
            r["unwatched_per_s"] = base["per_s"]
            # stored Secrets when the watches opened: the lists' namespaces, then each round's writes and markers
            r["objects"] = sum(LIST_SIZES.values()) + (2 * n + 1) * self.args.watch_writes + 2 * n
            r["ratio"] = _r(r["writes_per_s"] / base["per_s"]) if r["writes_per_s"] and base["per_s"] else None
            # what the watch costs the server, less sensitive to the host's speed than the rates: its CPU per write
            r["server_cpu_ms_per_write"] = cpu_per_write(r["server_cpu_cores"], r["writes_per_s"])
            r["unwatched_server_cpu_ms_per_write"] = cpu_per_write(base["server_cpu_cores"], base["per_s"])
            console.print(
                f"  round {n + 1}: unwatched {fmt(base['per_s'], 0)}/s, watched {fmt(r['writes_per_s'], 0)}/s "
                f"({fmt(100 * (r['ratio'] or 0), 0)} %); server CPU per write "
                f"{fmt(r['unwatched_server_cpu_ms_per_write'], 2)} ms unwatched, "
                f"{fmt(r['server_cpu_ms_per_write'], 2)} ms watched"
            )
            # every acknowledged write must be stored; a failed one may or may not have been
            stored = {o["metadata"]["name"] for o in self.h.api("GET", secret_path(NS_WATCH))["items"]}
            written = {name for name in stored if name.startswith(f"w{n}-")}
            r["stored"] = len(written)
            if len(written) < r["writes_ok"]:
                self.problems.append(f"watch: {r['writes_ok'] - len(written)} acknowledged writes are not stored")
            rounds.append((r, base))
            if n == 0:  # the memory row: the first round's, nearest the 11,000 objects of the lists
                self.results["watch_memory"] = {"objects": r["objects"], "rss_mib": r["server_rss_mib"]}
        ordered = sorted(rounds, key=lambda rb: rb[0]["ratio"] or 0.0)
        r, base = ordered[len(ordered) // 2]
        self.results["watch"] = r
        self.results["unwatched_writes"] = base
        self.results["watch_rounds"] = [
            {
                k: x[k]
                for k in (
                    "unwatched_per_s",
                    "writes_per_s",
                    "ratio",
                    "from_response_p99_ms",
                    "unwatched_server_cpu_ms_per_write",
                    "server_cpu_ms_per_write",
                )
            }
            for x, _ in rounds
        ]

    def watch_phase(self, target: str, rv: str, round_: int = 0) -> dict[str, Any]:
        """``--watchers`` watches (over ``--watcher-procs`` processes) while ``--writers`` create ``--watch-writes``
        (named ``w<round_>-*``)."""
        a = self.args
        etcd = target == "etcd"
        lifetime = a.phase_timeout + CHILD_CONNECT_TIMEOUT + CHILD_SYNC_TIMEOUT + CHILD_DRAIN_TIMEOUT
        out = self.workdir / f"watchers-{target}-{round_}.json"
        common = {
            "target": target,
            "url": self.etcd.url if etcd else self.h.api_url,
            "ca": "" if etcd else (str(self.h.verify) if isinstance(self.h.verify, str) else ""),
            "token": "" if etcd else self.h.token,
        }
        self.watcher = w = WatcherGroup(
            procs=a.watcher_procs,
            watchers=a.watchers,
            out=out,
            ns=NS_WATCH,
            rv=rv,
            lifetime=lifetime,
            nice=a.watcher_nice,
            **common,
        )
        server_pid = (self.etcd.proc.pid if self.etcd.proc else None) if etcd else self.h.up_proc_pid()
        connected = w.expect("connected", CHILD_CONNECT_TIMEOUT + 30)
        if connected < a.watchers:
            raise BenchError(f"{target}: only {connected}/{a.watchers} watches connected")
        self.put(target, obj_name("sync", round_))
        synced = w.expect("synced", CHILD_SYNC_TIMEOUT + 30)
        rss = rss_mib(server_pid)
        console.print(
            f"  {target}: {connected} watches connected ({len(w.children)} processes at nice {a.watcher_nice}), "
            f"{synced} saw the sync "
            f"marker; {a.writers} writers write {a.watch_writes} Secrets; server RSS {fmt(rss, 0)} MiB"
        )
        bodies = [json.dumps(secret_body(obj_name(f"w{round_}", i), self.rng)).encode() for i in range(a.watch_writes)]
        watchers_cpu0 = w.cpu()
        if etcd:
            path = "/v3/kv/put"
            payloads = [
                json.dumps(
                    {"key": b64(etcd_key(NS_WATCH, obj_name(f"w{round_}", i))), "value": b64(bodies[i])}
                ).encode()
                for i in range(a.watch_writes)
            ]
            make: RequestFn = lambda i: ("POST", path, payloads[i], obj_name(f"w{round_}", i))  # noqa: E731
            load = self.load(a.watch_writes, a.writers, make, (200,), etcd=True)
        else:
            path = secret_path(NS_WATCH)
            load = self.load(
                a.watch_writes, a.writers, lambda i: ("POST", path, bodies[i], obj_name(f"w{round_}", i)), (201,)
            )
        watchers_cpu = w.cpu() - watchers_cpu0
        self.put(target, obj_name("done", round_))
        self.check(f"{target}: watch writes, {a.writers} writers", load, allow_short=True)
        w.expect("finished", lifetime + 30)
        w.stop()
        self.watcher = None
        report = w.report()
        from_resp, from_send = [], []
        missing = 0
        for arrivals in report["arrivals"]:
            for name, (sent, answered) in load.times.items():
                t = arrivals.get(name)
                if t is None:
                    missing += 1
                    continue
                from_resp.append(t - answered)
                from_send.append(t - sent)
        expected = len(load.times) * a.watchers
        before_resp = sum(1 for x in from_resp if x < 0)
        r = {
            "watchers": a.watchers,
            "watcher_processes": len(w.children),
            "watcher_nice": a.watcher_nice,
            "writers": a.writers,
            "writes_ok": load.ok,
            "writes_requested": a.watch_writes,
            "writes_per_s": load.rate,
            "write_latency_p50_ms": _ms(percentile(load.latencies, 50)),
            "write_latency_p99_ms": _ms(percentile(load.latencies, 99)),
            "deliveries_expected": expected,
            "deliveries": len(from_resp),
            "missing": missing,
            "from_response_p50_ms": _ms(percentile(from_resp, 50)),
            "from_response_p99_ms": _ms(percentile(from_resp, 99)),
            "from_response_max_ms": _ms(max(from_resp) if from_resp else None),
            "from_request_p50_ms": _ms(percentile(from_send, 50)),
            "from_request_p99_ms": _ms(percentile(from_send, 99)),
            "arrived_before_response": before_resp,
            "watcher_errors": report["error_count"],
            "watcher_error_samples": report["errors"][:5],
            "writers_cpu_cores": _r(load.client_cpu),
            "server_cpu_cores": _r(load.server_cpu),
            "server_runqueue_wait": _r(load.server_wait),
            "watchers_process_cpu_s": _r(report.get("cpu_s")),
            "watchers_cpu_cores": _r(watchers_cpu / load.elapsed) if load.elapsed else None,
            "write_phase_s": _r(load.elapsed),
            "server_rss_mib": _r(rss),
        }
        console.print(
            f"  {target} watch: {r['deliveries']}/{expected} deliveries, from the write's response p50 "
            f"{fmt(r['from_response_p50_ms'], 1)} ms, p99 {fmt(r['from_response_p99_ms'], 1)} ms, "
            f"max {fmt(r['from_response_max_ms'], 1)} ms; {before_resp} arrived before the response; "
            f"CPU cores: watchers' processes {fmt(r['watchers_cpu_cores'])}, writers {fmt(r['writers_cpu_cores'])}, "
            f"server {fmt(r['server_cpu_cores'])} (its threads waited for a CPU {fmt(r['server_runqueue_wait'])} s/s)"
        )
        if missing or report["error_count"]:
            self.problems.append(
                f"{target} watch: {missing} missing deliveries, {report['error_count']} watcher errors "
                f"{report['errors'][:3]}"
            )
        return r

    def put(self, target: str, name: str) -> None:
        """One object written outside the measured load (markers)."""
        body = secret_body(name, self.rng)
        if target == "etcd":
            self.etcd.call("/v3/kv/put", {"key": b64(etcd_key(NS_WATCH, name)), "value": b64(json.dumps(body))})
        else:
            self.h.api("POST", secret_path(NS_WATCH), json=body)

    def unwatched_writes(self, prefix: str) -> dict[str, Any]:
        """The writers' rate with no watch open (Secrets ``<prefix>-*``): the base of "writes during the watch"."""
        a = self.args
        path = secret_path(NS_WATCH)
        bodies = [json.dumps(secret_body(obj_name(prefix, i), self.rng)).encode() for i in range(a.watch_writes)]
        load = self.load(a.watch_writes, a.writers, lambda i: ("POST", path, bodies[i], None), (201,))
        self.check(f"unwatched writes, {a.writers} writers", load)
        return load.summary()

    def bench_memory(self) -> None:
        rss = rss_mib(self.h.up_proc_pid())
        self.results["server_rss_mib_objects"] = _r(rss)
        console.print(f"  API server resident memory with {sum(LIST_SIZES.values()):,}+ objects: {fmt(rss, 0)} MiB")

    # --- etcd: the same loads ------------------------------------------------------------------

    def bench_etcd(self) -> None:
        a = self.args
        e = self.etcd
        e.start()
        rng = random.Random(42)
        er = self.etcd_results

        def puts(ns: str, start: int, count: int, conc: int, prefix: str = "s") -> Load:
            payloads = [
                json.dumps(
                    {
                        "key": b64(etcd_key(ns, obj_name(prefix, start + i))),
                        "value": b64(json.dumps(secret_body(obj_name(prefix, start + i), rng))),
                    }
                ).encode()
                for i in range(count)
            ]
            return self.load(count, conc, lambda i: ("POST", "/v3/kv/put", payloads[i], None), (200,), etcd=True)

        load = puts(NS_1K, 0, LIST_SIZES[NS_1K], 1)
        self.check(f"etcd: put {LIST_SIZES[NS_1K]}, 1 client", load)
        er["create_1"] = load.summary()
        load = puts(NS_10K, 0, a.creates, a.concurrency)
        self.check(f"etcd: put {a.creates}, {a.concurrency} clients", load)
        er["create_c"] = load.summary()
        rest = LIST_SIZES[NS_10K] - a.creates
        if rest > 0:
            self.check(f"etcd: fill {NS_10K}", puts(NS_10K, a.creates, rest, a.concurrency))
        names = [obj_name("s", self.rng.randrange(LIST_SIZES[NS_1K])) for _ in range(a.gets)]
        ranges = [json.dumps({"key": b64(etcd_key(NS_1K, n))}).encode() for n in names]
        for conc, key in ((1, "get_1"), (a.concurrency, "get_c")):
            load = self.load(a.gets, conc, lambda i: ("POST", "/v3/kv/range", ranges[i], None), (200,), etcd=True)
            self.check(f"etcd: range (get), {conc} client{'s' if conc > 1 else ''}", load)
            er[key] = load.summary()
        for ns, size in LIST_SIZES.items():
            prefix = etcd_key(ns, "")
            body = json.dumps({"key": b64(prefix), "range_end": b64(prefix_end(prefix))}).encode()

            async def rounds(body: bytes = body, size: int = size) -> list[float]:
                conn = Conn(e.url, None, "")
                times = []
                try:
                    for r in range(a.list_rounds + 1):
                        t0 = time.monotonic()
                        status, data = await asyncio.wait_for(conn.request("POST", "/v3/kv/range", body), 60)
                        if status != 200:
                            raise BenchError(f"etcd range → {status}")
                        if r == 0:
                            if int(json.loads(data).get("count", 0)) != size:
                                raise BenchError(f"etcd range: not {size} keys")
                            continue
                        times.append(time.monotonic() - t0)
                finally:
                    await conn.close()
                return times

            times = asyncio.run(rounds())
            er[f"list_{size}"] = {"median_ms": _ms(median(times)), "ms": [_ms(x) for x in times]}
            console.print(f"  etcd: range of {size}: median {fmt(_ms(median(times)), 1)} ms")
        load = puts(NS_WATCH, 0, a.watch_writes, a.writers, prefix="u")
        self.check(f"etcd: unwatched writes, {a.writers} writers", load)
        er["unwatched_writes"] = load.summary()
        er["watch"] = self.watch_phase("etcd", "0")
        er["rss_mib"] = _r(rss_mib(e.proc.pid if e.proc else None))

    def reference(self) -> None:
        if self.template is None:
            return
        stored, name = self.template
        self.results["sqlite"] = sqlite_reference(
            self.workdir / "reference.db",
            stored,
            name,
            inserts=self.args.creates,
            gets=self.args.gets,
            list_rounds=self.args.list_rounds,
            deadline_s=self.args.phase_timeout,
        )
        ref = self.results["sqlite"]
        console.print(
            f"  raw SQLite: {fmt(ref['insert']['per_s'], 0)} inserts/s, {fmt(ref['get']['per_s'], 0)} "
            f"gets/s, list 1k {fmt(ref['list_1000']['median_ms'], 1)} ms, "
            f"10k {fmt(ref['list_10000']['median_ms'], 1)} ms ({ref['row_bytes']} bytes a row)"
        )

    # --- report ---------------------------------------------------------------------------------

    def table(self) -> Table:
        r, ref, er = self.results, self.results.get("sqlite") or {}, self.etcd_results
        a = self.args
        server = {"apiserver": "python -m dockyard.apiserver", "up": "dockyard up"}.get(self.mode, self.mode)
        t = Table(title=f"dockyard API server (HTTPS, {server}) vs etcd (JSON gateway), same machine, same run")
        t.add_column("operation")
        t.add_column("dockyard", justify="right")
        t.add_column("etcd", justify="right")
        t.add_column("dockyard ÷ etcd", justify="right")
        t.add_column("raw SQLite", justify="right")
        t.add_column("dockyard p50 / p99 ms", justify="right")
        t.add_column("CPU cores client / server", justify="right")

        def rate_row(title: str, key: str, ref_key: str | None) -> None:
            s = r.get(key)
            mine = s["per_s"] if s else None
            theirs = (er.get(key) or {}).get("per_s")
            raw = (ref.get(ref_key) or {}).get("per_s") if ref_key else None
            lat = f"{fmt(s['latency_p50_ms'], 1)} / {fmt(s['latency_p99_ms'], 1)}" if s else "—"
            cpu = f"{fmt(s.get('client_cpu_cores'))} / {fmt(s.get('server_cpu_cores'))}" if s else "—"
            t.add_row(
                title,
                f"{fmt(mine, 0)}/s",
                f"{fmt(theirs, 0)}/s" if theirs else "—",
                f"{fmt(mine / theirs, 2)}×" if mine and theirs else "—",
                f"{fmt(raw, 0)}/s" if raw else "—",
                lat,
                cpu,
            )

        def ms_row(title: str, mine: float | None, theirs: float | None, raw: float | None = None) -> None:
            t.add_row(
                title,
                f"{fmt(mine, 1)} ms",
                f"{fmt(theirs, 1)} ms" if theirs else "—",
                f"{fmt(mine / theirs, 2)}×" if mine and theirs and mine > 0 and theirs > 0 else "—",
                f"{fmt(raw, 1)} ms" if raw else "—",
                "",
                "",
            )

        rate_row("HTTP floor: GET /version, 1 client", "version_1", None)
        rate_row(f"HTTP floor: GET /version, {a.concurrency} clients", "version_c", None)
        rate_row(f"create Secret, 1 client ({LIST_SIZES[NS_1K]})", "create_1", "insert")
        rate_row(f"create Secret, {a.concurrency} clients ({a.creates})", "create_c", "insert")
        rate_row(f"get Secret, 1 client ({a.gets})", "get_1", "get")
        rate_row(f"get Secret, {a.concurrency} clients ({a.gets})", "get_c", "get")
        for size in LIST_SIZES.values():
            key = f"list_{size}"
            ms_row(
                f"list {size:,} (median of {a.list_rounds})",
                (r.get(key) or {}).get("median_ms"),
                (er.get(key) or {}).get("median_ms"),
                (ref.get(key) or {}).get("median_ms"),
            )
        rate_row(f"unwatched writes, {a.writers} writers", "unwatched_writes", None)
        w, ew = r.get("watch"), er.get("watch") or {}
        if w:
            title = f"{w['watchers']} watchers ({w['watcher_processes']} processes) × {w['writers']} writers"
            ms_row(f"watch delivery p50, {title}", w["from_response_p50_ms"], ew.get("from_response_p50_ms"))
            ms_row("watch delivery p99", w["from_response_p99_ms"], ew.get("from_response_p99_ms"))
            mine, theirs = w["writes_per_s"], ew.get("writes_per_s")
            base = (r.get("unwatched_writes") or {}).get("per_s")
            their_base = (er.get("unwatched_writes") or {}).get("per_s")
            t.add_row(
                f"  writes during the watch ({w['writes_ok']})"
                + (f", {100 * mine / base:.0f} % of unwatched" if mine and base else "")
                + (f" (etcd {100 * theirs / their_base:.0f} %)" if theirs and their_base else ""),
                f"{fmt(mine, 0)}/s",
                f"{fmt(theirs, 0)}/s" if theirs else "—",
                f"{fmt(mine / theirs, 2)}×" if mine and theirs else "—",
                "—",
                f"{fmt(w['write_latency_p50_ms'], 1)} / {fmt(w['write_latency_p99_ms'], 1)}",
                f"{fmt(w.get('writers_cpu_cores'))} (+ watchers {fmt(w.get('watchers_cpu_cores'))}) / "
                f"{fmt(w.get('server_cpu_cores'))}",
            )
            mem = r.get("watch_memory") or {}
            rounds = r.get("watch_rounds") or []
            if len(rounds) > 1:
                t.add_row(
                    f"    each round: watched ÷ unwatched (median above), {len(rounds)} rounds",
                    ", ".join(f"{100 * (x['ratio'] or 0):.0f} %" for x in rounds),
                    "",
                    "",
                    "",
                    "",
                    "",
                )
            if w.get("server_cpu_ms_per_write"):
                t.add_row(
                    "    server CPU per write, unwatched → watched (the median round)",
                    f"{fmt(w.get('unwatched_server_cpu_ms_per_write'), 2)} → {fmt(w['server_cpu_ms_per_write'], 2)} ms",
                    "",
                    "",
                    "",
                    "",
                    "",
                )
            t.add_row(
                f"server resident memory, {mem.get('objects') or sum(LIST_SIZES.values()):,} objects, "
                f"{w['watchers']} watchers",
                f"{fmt(mem.get('rss_mib', w.get('server_rss_mib')), 0)} MiB",
                f"{fmt(ew.get('server_rss_mib'), 0)} MiB" if ew.get("server_rss_mib") else "—",
                "",
                "—",
                "",
                "",
            )
        return t


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--creates",
        type=int,
        default=2000,
        help="objects created by the concurrent clients (the 10k namespace is then filled up; default 2000)",
    )
    p.add_argument("--concurrency", type=int, default=16, help="clients of the concurrent create/get rows (16)")
    p.add_argument("--gets", type=int, default=5000, help="gets per get row (5000)")
    p.add_argument("--list-rounds", type=int, default=5, help="measured lists per size, after 1 warm-up (5)")
    p.add_argument("--watchers", type=int, default=100, help="concurrent watches (100)")
    p.add_argument("--writers", type=int, default=50, help="concurrent writers while watched (50)")
    p.add_argument("--watch-writes", type=int, default=2000, help="objects the writers create (2000)")
    p.add_argument(
        "--watch-rounds",
        type=int,
        default=5,
        help="rounds of unwatched then watched writes; the median ratio is the figure (5; etcd runs one)",
    )
    p.add_argument(
        "--watcher-procs", type=int, default=4, help="processes the watches are spread over (4; the load generator's)"
    )
    p.add_argument(
        "--watcher-nice",
        type=int,
        default=10,
        help="nice value of the watchers' processes (10: on two cores they would otherwise preempt the server "
        "they measure, woken by every event; 0: as the writers)",
    )
    p.add_argument("--no-etcd", action="store_true", help="skip etcd (default: same loads against etcd, same run)")
    p.add_argument("--phase-timeout", type=float, default=300, help="seconds any one load may run (300)")
    p.add_argument(
        "--server",
        default="auto",
        choices=("auto", "apiserver", "up"),
        help="what serves the API: `python -m dockyard.apiserver` alone, or all of `dockyard up` "
        "(its controllers and agent keep watches open); auto: the former if this dockyard has it",
    )
    p.add_argument("--engine", default="auto", help="dockyard up --engine: auto | podman | docker")
    p.add_argument(
        "--shared-storage",
        action="store_true",
        help="let dockyard's Podman service use the host's image store (default: its own)",
    )
    p.add_argument("--workdir", type=Path, help="state directory (default: a new one under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    limits = {
        "creates": (1, LIST_SIZES[NS_10K]),
        "concurrency": (1, 200),
        "gets": (1, 100_000),
        "list_rounds": (1, 100),
        "watchers": (1, 500),
        "writers": (1, 200),
        "watch_writes": (1, 50_000),
        "watcher_procs": (1, 32),
        "watcher_nice": (0, 19),
        "watch_rounds": (1, 9),
        "phase_timeout": (10, 3600),
    }
    harness.check_ranges(p, args, limits)
    return args


def watchers_entry() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("_role")
    for opt in ("--target", "--server", "--ca", "--ns", "--rv", "--out"):
        p.add_argument(opt, required=True)
    p.add_argument("--watchers", type=int, required=True)
    p.add_argument("--lifetime", type=float, required=True)
    p.add_argument("--nice", type=int, default=0)
    args = p.parse_args()
    if args.nice:
        os.nice(args.nice)
    try:  # the load generator's loop: uvloop (libuv, its TLS in Cython) costs less CPU beside the server
        import uvloop
    except ImportError:
        return asyncio.run(_watchers_main(args))
    status: int = uvloop.run(_watchers_main(args))
    return status


def main() -> int:
    args = parse_args()
    workdir = make_workdir(args.workdir, "dy-bench-api-")
    bench = Bench(args, workdir)
    bench.notes += harness.start_notes(cpus=True)
    steps: list[harness.Step] = [
        ("API server + namespaces", bench.setup),
        ("HTTP floor", bench.http_floor),
        ("creates", bench.bench_creates),
        ("gets", bench.bench_gets),
        ("lists", bench.bench_lists),
        ("memory", bench.bench_memory),
        (
            f"watch: {args.watch_rounds} rounds of {args.watch_writes} writes unwatched, then with "
            f"{args.watchers} watchers, by {args.writers} writers",
            bench.bench_watch,
        ),
    ]
    if not args.no_etcd:
        steps.append(("etcd: the same loads", bench.bench_etcd))

    def cleanup() -> None:
        if bench.watcher is not None:
            bench.watcher.stop()
        bench.etcd.stop()
        bench.h.teardown(keep=args.keep)

    error = harness.run_steps(
        steps,
        log=workdir / "up.log",
        cleanup=cleanup,
        after_step=lambda title: bench.notes.append(
            f"host load average after {title.split(':')[0]}: {harness.load_average()}"
        ),
    )
    if error != "interrupted":
        try:
            console.print("[bold]→ raw SQLite reference (the server stopped)[/bold]")
            bench.reference()
        except (BenchError, sqlite3.Error, OSError) as err:
            error = error or f"reference: {type(err).__name__}: {err}"
    out = Console(highlight=False, width=140)
    out.print(bench.table())
    ref = bench.results.get("sqlite")
    if ref:
        out.print(
            f"raw SQLite: WAL, synchronous=FULL (the server's settings), {ref['row_bytes']}-byte JSON rows "
            "(a copy of a stored Secret), one transaction per insert; lists join the rows into one array. "
            "etcd: Debian's etcd-server on 127.0.0.1 (fsync per acknowledged write, its default) through its v3 "
            "JSON gateway, same keys and values. dockyard ÷ etcd: rates (higher is better for dockyard) and "
            "times (lower is better). Watch delivery = arrival at a watcher − the write's response; negative: "
            "before the response."
        )
    harness.print_notes(out, bench.h.notes + bench.notes, bench.h.stop_info, bench.problems)
    fields = {
        "code": code_version(),
        "server": bench.mode,
        "args": {k: v for k, v in vars(args).items() if k not in ("workdir",)},
        **bench.results,
        "etcd": bench.etcd_results,
    }
    return harness.finish(
        "apiserver",
        error=error,
        fields=fields,
        problems=bench.problems,
        notes=bench.h.notes + bench.notes,
        stop=bench.h.stop_info,
        workdir=workdir,
        keep=args.keep or args.workdir is not None,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_watchers":
        sys.exit(watchers_entry())
    sys.exit(main())
