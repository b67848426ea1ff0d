"""Durability: the API server killed with SIGKILL mid-write, several times, loses nothing it acknowledged.

``python -m dockyard.apiserver`` runs as a subprocess over one data dir.
Each round, writer threads create and update Pods while a watcher follows
them; the server is killed with SIGKILL at a random moment and started
again. After each restart:

- every write answered 2xx is there with its content (or with a later
  write's content that was sent but not answered before the kill);
- ``resourceVersion`` never goes backwards (the list's revision is at least
  every revision ever answered);
- a watch resumed from the last revision seen before the kill either
  continues correctly (increasing revisions, every later change present) or
  ends with 410 ``Expired``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

PODS = "/api/v1/namespaces/default/pods"
ROUNDS = 4
WRITERS = 4
MAX_WRITES_PER_ROUND = 400  # per writer; the kill comes much sooner
MERGE = {"Content-Type": "application/merge-patch+json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m dockyard.apiserver`` over ``data_dir`` on a fixed port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard.apiserver", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            try:
                with self.client(timeout=1) as c:
                    if c.get("/readyz").status_code == 200:
                        return
            except (httpx.HTTPError, OSError, FileNotFoundError, ssl.SSLError):
                pass
            time.sleep(0.05)
        raise AssertionError("the API server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, *, timeout: float = 5.0) -> httpx.Client:
        token = json.loads((self.data_dir / "tokens.json").read_text())["admin"]
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.port}",
            verify=ctx,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )


@dataclass
class Ledger:
    """What the writers sent and what was acknowledged, per object name."""

    sent: dict[str, list[str]] = field(default_factory=dict)  # contents in send order
    acked: dict[str, int] = field(default_factory=dict)  # index of the last acknowledged content
    max_rv: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, name: str, content: str) -> int:
        with self.lock:
            self.sent.setdefault(name, []).append(content)
            return len(self.sent[name]) - 1

    def ack(self, name: str, index: int, rv: str) -> None:
        with self.lock:
            self.acked[name] = max(self.acked.get(name, -1), index)
            self.max_rv = max(self.max_rv, int(rv))


def writer(server: Server, ledger: Ledger, wid: int, round_: int, stop: threading.Event) -> None:
    rng = random.Random(wid * 1000 + round_)
    with server.client(timeout=3) as api:
        for i in range(MAX_WRITES_PER_ROUND):
            if stop.is_set():
                return
            with ledger.lock:
                mine = [n for n in ledger.acked if n.startswith(f"w{wid}-")]
            content = f"r{round_}-w{wid}-{i}-{rng.random():.6f}"
            try:
                if mine and rng.random() < 0.6:
                    name = rng.choice(mine)
                    index = ledger.send(name, content)
                    resp = api.patch(
                        f"{PODS}/{name}", json={"metadata": {"annotations": {"content": content}}}, headers=MERGE
                    )
                else:
                    name = f"w{wid}-r{round_}-{i}"
                    index = ledger.send(name, content)
                    resp = api.post(
                        PODS,
                        json={
                            "metadata": {"name": name, "annotations": {"content": content}},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                        },
                    )
            except (httpx.HTTPError, OSError):
                return  # the server is gone: this round's writing is over
            if resp.status_code in (200, 201):
                ledger.ack(name, index, resp.json()["metadata"]["resourceVersion"])


def watcher(server: Server, seen: list[int], stop: threading.Event) -> None:
    try:
        with server.client(timeout=30) as api:
            rv = api.get(PODS).json()["metadata"]["resourceVersion"]
            seen.append(int(rv))
            with api.stream(
                "GET", PODS, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "30"}
            ) as resp:
                for line in resp.iter_lines():
                    if stop.is_set():
                        return
                    if line.strip():
                        seen.append(int(json.loads(line)["object"]["metadata"]["resourceVersion"]))
    except (httpx.HTTPError, OSError, ValueError, KeyError):
        return


def verify(server: Server, ledger: Ledger, resume_from: int | None) -> None:
    with server.client(timeout=10) as api:
        listed = api.get(PODS).json()
        revision = int(listed["metadata"]["resourceVersion"])
        assert revision >= ledger.max_rv, f"resourceVersion went backwards: {revision} < {ledger.max_rv}"
        stored = {p["metadata"]["name"]: p for p in listed["items"]}
        with ledger.lock:
            for name, index in ledger.acked.items():
                assert name in stored, f"acknowledged pod {name} is missing after the crash"
                content = stored[name]["metadata"]["annotations"]["content"]
                assert content in ledger.sent[name][index:], (
                    f"{name}: {content!r} is not the acknowledged {ledger.sent[name][index]!r} or later"
                )
        if resume_from is None:
            return
        events: list[dict[str, Any]] = []
        with api.stream(
            "GET", PODS, params={"watch": "true", "resourceVersion": str(resume_from), "timeoutSeconds": "1"}
        ) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.strip():
                    events.append(json.loads(line))
        if events and events[0]["type"] == "ERROR":
            assert events[0]["object"]["code"] == 410
            return
        revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert all(r > resume_from for r in revisions), "a resumed watch replayed old events"
        assert revisions == sorted(set(revisions)), "a resumed watch is out of order or repeats itself"
        changed_later = {
            int(p["metadata"]["resourceVersion"])
            for p in stored.values()
            if int(p["metadata"]["resourceVersion"]) > resume_from
        }
        assert changed_later <= set(revisions), "a resumed watch missed changes made before the crash"


@pytest.mark.timeout(120)
def test_sigkill_while_writing_loses_no_acknowledged_write(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    ledger = Ledger()
    rng = random.Random(20240501)
    started = time.monotonic()
    try:
        server.start()
        for round_ in range(ROUNDS):
            stop = threading.Event()
            seen: list[int] = []
            threads = [
                threading.Thread(target=writer, args=(server, ledger, w, round_, stop), daemon=True)
                for w in range(WRITERS)
            ]
            threads.append(threading.Thread(target=watcher, args=(server, seen, stop), daemon=True))
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            stop.set()
            for t in threads:
                t.join(timeout=10)
            assert ledger.acked, "no write was acknowledged before the kill"
            server.start()
            verify(server, ledger, max(seen) if seen else None)
    finally:
        server.stop()
    assert time.monotonic() - started < 90
