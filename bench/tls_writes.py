"""What one write to a watch connection costs the API server's event loop: dockyard's fan-out path against raw
asyncio over TLS and over plain TCP, in one run.

The watch fan-out writes one chunk per watcher per commit (``bench/apiserver.py``: 100 watchers, about 21 events
of 1.1 KB a commit). This measures that write alone, without the API server:

- ``plain``: ``transport.write`` on asyncio's plain TCP transport (the floor: the syscall and, on loopback, the
  receiving side's TCP);
- ``tls``: the same on asyncio's TLS transport (what any asyncio server pays: encryption, asyncio's TLS layer);
- ``dockyard``: the fan-out's own path over TLS, :class:`dockyard.apiserver.httpproto.ChunkWriter` (HTTP chunk
  framing) through :class:`~dockyard.apiserver.httpproto.CoalescingTransport` (``write_now``).

``--connections`` clients (one child process at ``--client-nice``, 10 by default as the watchers of
``bench/apiserver.py``) read everything until the end. For each chunk size the server writes one chunk to every
connection per round, ``--megabytes`` in all (at least 50 and at most 20,000 rounds, each phase bounded by
``--phase-timeout``); before the next round every byte is handed to the kernel, as the fan-out's connections
drain between two commits. Each mode and size runs ``--repeats`` times, each mode first in turn. The figure is this process's CPU
time per write (it runs only the event loop), in µs, the median of the repeats; the clients' CPU is printed.

Usage: .venv/bin/python bench/tls_writes.py [--connections N] [--sizes 1000,4000,23000,64000] [--megabytes M]
                                            [--repeats R] [--client-nice N] [--uvloop] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness
from _harness import BenchError, console, fmt, make_workdir
from dockyard.apiserver import httpproto, tls

MODES = ("plain", "tls", "dockyard")
MIN_ROUNDS = 50
MAX_ROUNDS = 20_000


# --- the clients' process ------------------------------------------------------------------------


async def _clients_main(port: int, connections: int, ca: str | None) -> None:
    """Child: ``connections`` connections to 127.0.0.1:``port`` read until EOF; prints ``connected`` once all are
    open and, at the end, ``done BYTES CPU_SECONDS``."""
    context = ssl.create_default_context(cafile=ca) if ca else None
    opened = asyncio.Event()
    count = [0, 0]

    async def one() -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1" if ca else None), 30
        )
        count[0] += 1
        if count[0] == connections:
            opened.set()
        try:
            for _ in range(10_000_000):  # bounded by the server's close
                data = await reader.read(1 << 16)
                if not data:
                    return
                count[1] += len(data)
        finally:
            writer.close()

    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    await asyncio.wait_for(opened.wait(), 60)
    print(f"connected {time.process_time():.3f}", flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"done {count[1]} {time.process_time():.3f}", flush=True)


# --- the measured side ---------------------------------------------------------------------------


class _Cycle(SimpleNamespace):
    """What :class:`~dockyard.apiserver.httpproto.ChunkWriter` reads of uvicorn's request/response cycle: a chunked
    response under way on ``transport``."""


async def _phase(
    args: argparse.Namespace, mode: str, size: int, context: ssl.SSLContext | None, ca: str | None
) -> dict[str, Any]:
    """One mode and chunk size: start the clients, write, wait until they have read everything."""
    conns: list[asyncio.Transport] = []
    opened = asyncio.Event()

    class Sink(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conns.append(transport)  # type: ignore[arg-type]
            if len(conns) == args.connections:
                opened.set()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, __file__, "_clients", str(port), str(args.connections), ca or "", str(args.client_nice)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = await asyncio.wait_for(loop.run_in_executor(None, child.stdout.readline), 90)  # type: ignore[union-attr]
        if line.split()[:1] != ["connected"]:
            raise BenchError(f"{mode} {size}: the clients did not connect ({line.strip()!r})")
        client_cpu0 = float(line.split()[1])
        await asyncio.wait_for(opened.wait(), 30)
        if mode == "dockyard":
            writers = [
                httpproto.ChunkWriter(
                    _Cycle(
                        transport=httpproto.CoalescingTransport(t),
                        response_started=True,
                        chunked_encoding=True,
                        response_complete=False,
                        disconnected=False,
                    )
                )
                for t in conns
            ]
            write: list[Callable[[bytes], object]] = [w.write for w in writers]
        else:
            write = [t.write for t in conns]
        data = b"x" * size
        rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, args.megabytes * 1_000_000 // (size * args.connections)))
        deadline = time.monotonic() + args.phase_timeout
        cpu0, wall0 = time.process_time(), time.monotonic()
        for n in range(rounds + 1):
            if n < rounds:
                for w in write:
                    w(data)
            await asyncio.sleep(0)
            limit = 0  # every byte handed to the kernel before the next round, as between two commits
            for _wait in range(1_000_000):  # bounded by the deadline
                if all(t.get_write_buffer_size() <= limit for t in conns):
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{mode} {size}: the clients did not keep up within {args.phase_timeout:.0f}s")
                await asyncio.sleep(0.001)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        for t in conns:
            t.close()
        line = await asyncio.wait_for(loop.run_in_executor(None, child.stdout.readline), 60)  # type: ignore[union-attr]
        parts = line.split()
        if len(parts) != 3 or parts[0] != "done":
            raise BenchError(f"{mode} {size}: the clients did not finish ({line.strip()!r})")
        writes = rounds * args.connections
        return {
            "mode": mode,
            "size": size,
            "writes": writes,
            "cpu_s": round(cpu, 4),
            "wall_s": round(wall, 4),
            "us_per_write": round(1e6 * cpu / writes, 2),
            "client_bytes": int(parts[1]),
            "client_cpu_s": round(float(parts[2]) - client_cpu0, 4),
        }
    finally:
        server.close()
        if child.poll() is None:
            child.kill()
        child.wait(10)


async def _measure(args: argparse.Namespace, workdir: Path, results: list[dict[str, Any]]) -> None:
    pki = tls.ensure_pki(workdir / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.cert), str(pki.key))
    for size in args.sizes:
        for rep in range(args.repeats):
            for mode in MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]:  # each mode first in turn
                plain = mode == "plain"
                r = await _phase(args, mode, size, None if plain else context, None if plain else str(pki.ca_cert))
                results.append(r)
            console.print(
                f"  {mode:8} {size:6d} B: {r['writes']} writes, {r['us_per_write']} µs of CPU each; "
                f"clients' CPU {fmt(r['client_cpu_s'])} s"
            )


def _table(results: list[dict[str, Any]]) -> Table:
    t = Table(title="server CPU per write to one connection (µs; median of the repeats), same run")
    for col in ("chunk", "plain TCP", "TLS", "dockyard (TLS)", "dockyard ÷ TLS", "TLS ÷ plain"):
        t.add_column(col, justify="right")
    samples: dict[tuple[int, str], list[float]] = {}
    for r in results:
        samples.setdefault((r["size"], r["mode"]), []).append(r["us_per_write"])
    by = {key: harness.median(xs) for key, xs in samples.items()}
    for size in sorted({r["size"] for r in results}):
        plain, tls_, dy = by.get((size, "plain")), by.get((size, "tls")), by.get((size, "dockyard"))
        t.add_row(
            f"{size:,} B",
            fmt(plain, 1),
            fmt(tls_, 1),
            fmt(dy, 1),
            fmt(dy / tls_ if dy and tls_ else None) + "×",
            fmt(tls_ / plain if tls_ and plain else None) + "×",
        )
    return t


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=100, help="connections written to (100, the watchers)")
    p.add_argument("--sizes", default="1000,4000,23000,64000", help="chunk sizes in bytes (1000,4000,23000,64000)")
    p.add_argument(
        "--megabytes", type=int, default=100, help="bytes written per phase, in MB (100; at least 50 rounds)"
    )
    p.add_argument("--repeats", type=int, default=5, help="phases per mode and size, modes in turn first (5)")
    p.add_argument("--client-nice", type=int, default=10, help="nice value of the clients' process (10)")
    p.add_argument("--uvloop", action="store_true", help="run this side on uvloop (default: asyncio's loop)")
    p.add_argument("--phase-timeout", type=float, default=120, help="seconds any one phase may run (120)")
    p.add_argument("--workdir", type=Path, help="state directory (default: a new one under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes: comma-separated byte counts, e.g. 1000,23000")
    limits = {
        "connections": (1, 1000),
        "repeats": (1, 20),
        "megabytes": (1, 10_000),
        "client_nice": (0, 19),
        "phase_timeout": (5, 3600),
    }
    harness.check_ranges(p, args, limits)
    if not args.sizes or not all(1 <= s <= 16 * 1024 * 1024 for s in args.sizes):
        p.error("--sizes: each between 1 and 16777216 bytes")
    return args


def main() -> int:
    args = parse_args()
    workdir = make_workdir(args.workdir, "dy-bench-tls-")
    notes = harness.start_notes(cpus=True)
    results: list[dict[str, Any]] = []
    if args.uvloop:
        import uvloop

        uvloop.install()
    notes.append(f"event loop: {'uvloop' if args.uvloop else 'asyncio'}; clients at nice {args.client_nice}")
    error = harness.run_steps(
        [
            (
                f"writes to {args.connections} connections: {', '.join(MODES)}",
                lambda: asyncio.run(_measure(args, workdir, results)),
            )
        ],
        log=workdir / "none.log",
        cleanup=lambda: None,
    )
    out = Console(highlight=False, width=120)
    out.print(_table(results))
    harness.print_notes(out, notes, "")
    return harness.finish(
        "tls_writes",
        error=error,
        fields={
            "code": harness.code_version(),
            "args": {k: v for k, v in vars(args).items() if k != "workdir"},
            "results": results,
        },
        notes=notes,
        workdir=workdir,
        keep=args.keep or args.workdir is not None,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_clients":
        os.nice(int(sys.argv[5]))
        asyncio.run(_clients_main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] or None))
        sys.exit(0)
    sys.exit(main())
