"""Deploys on one machine (issue 8 item 8): requests lost during rollouts, and what the Service proxy adds.

One run, all on 127.0.0.1 (and the pod's own loopback address):

1. ``dockyard up`` of its own (temporary data dir, free ports, its own Podman store) and the busybox base image
   in its registry;
2. ``kubectl apply``: a Deployment of one busybox ``httpd`` pod (``containerPort`` 8000) and a LoadBalancer
   Service on a free port; waits until the pod answers on ``podIP:8000`` and the Service on ``127.0.0.1:port``;
3. ``--requests`` HTTP/1.0 GETs on each side, alternating (direct, proxy, direct, ...), each on a new TCP
   connection (connection set-up is where a TCP proxy costs: it accepts, picks an endpoint, connects), bounded
   by ``--seconds`` in all. Prints median, p90 and p99 of each side and the ratio of the medians
   (proxy / direct, same run).
4. ``--rollouts`` consecutive rollouts (``kubectl rollout restart``, then ``kubectl rollout status``) of the
   Deployment (2 replicas, readiness probe, default RollingUpdate) while a request loop GETs the Service every
   10 ms, each on a new connection; prints requests sent and failed (goal: 0 failed) and the rollouts' times.

Exit 0 only if every request on both sides succeeded. The last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import _harness as harness
from _harness import BenchError, Harness, code_version, console, fmt, free_port, make_workdir, median, percentile

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: bench-web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: bench-web}}}}
  template:
    metadata: {{labels: {{app: bench-web}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: {image}
        command: [sh, -c, "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8000 -h /www"]
        ports: [{{name: http, containerPort: 8000}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: bench-web}}
spec:
  type: LoadBalancer
  selector: {{app: bench-web}}
  ports: [{{name: http, port: {port}, targetPort: http}}]
"""
REQUEST = b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n"


def one_request(address: tuple[str, int]) -> float:
    """Seconds for one GET on a new connection, until the server closes it (HTTP/1.0)."""
    t0 = time.perf_counter()
    with socket.create_connection(address, timeout=5) as s:
        s.sendall(REQUEST)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    elapsed = time.perf_counter() - t0
    if not data.startswith(b"HTTP/1.") or b" 200 " not in data.split(b"\r\n", 1)[0]:
        raise BenchError(f"{address}: unexpected answer {data[:60]!r}")
    return elapsed


class Loop:
    """GETs ``address`` every ``interval`` seconds on a new connection from a thread until stopped (bounded)."""

    def __init__(self, address: tuple[str, int], *, interval: float = 0.01, max_requests: int = 200_000) -> None:
        import threading

        self.address, self.interval, self.max_requests = address, interval, max_requests
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.sent < self.max_requests:
            self.sent += 1
            try:
                one_request(self.address)
            except (OSError, BenchError) as err:
                self.failures.append(f"{type(err).__name__}: {err}")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Bench(Harness):
    """One Deployment behind a LoadBalancer Service, measured direct against proxied, then through rollouts."""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        super().__init__(workdir, engine=args.engine, raw_client="none")
        self.args = args
        self.times: dict[str, list[float]] = {"direct": [], "proxy": []}
        self.failed = {"direct": 0, "proxy": 0}
        self.port = free_port()
        self.pod_ip = ""
        self.rollout_seconds: list[float] = []
        self.loop: Loop | None = None

    @property
    def direct(self) -> tuple[str, int]:
        return (self.pod_ip, 8000)

    @property
    def proxied(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def running_pod_ip(self) -> str | None:
        items = json.loads(self.kubectl("get", "pods", "-l", "app=bench-web", "-o", "json").stdout)["items"]
        ready = [
            p
            for p in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
        ]
        return ready[0]["status"].get("podIP") if ready else None

    def deploy(self) -> None:
        """``kubectl apply`` the Deployment and the Service; wait until the pod and the Service answer."""
        manifest = self.workdir / "deploy.yaml"
        manifest.write_text(MANIFEST.format(image=self.base_ref, port=self.port))
        self.kubectl("apply", "-f", str(manifest))
        self.pod_ip = self.wait_for("the pod to be Ready", self.running_pod_ip, 120)
        self.wait_for("the pod's port", lambda: one_request(self.direct), 30)
        self.wait_for("the Service's port", lambda: one_request(self.proxied), 30)
        console.print(f"  pod {self.pod_ip}:8000, Service 127.0.0.1:{self.port}")

    def requests(self) -> None:
        """``--requests`` GETs per side, alternating, within ``--seconds``."""
        for _ in range(3):  # warm-up
            one_request(self.direct), one_request(self.proxied)
        deadline = time.monotonic() + self.args.seconds
        for _ in range(self.args.requests):
            if time.monotonic() > deadline:
                self.notes.append(f"stopped at the {self.args.seconds:.0f}s bound")
                break
            for side, address in (("direct", self.direct), ("proxy", self.proxied)):
                try:
                    self.times[side].append(one_request(address))
                except (OSError, BenchError):
                    self.failed[side] += 1

    def rollouts(self) -> None:
        """``--rollouts`` rollout restarts, each waited for, under a request loop through the Service."""
        self.loop = loop = Loop(self.proxied)
        for n in range(self.args.rollouts):
            t0 = time.monotonic()
            self.kubectl("rollout", "restart", "deployment/bench-web")
            self.kubectl("rollout", "status", "deployment/bench-web", "--timeout=180s", timeout=200)
            self.rollout_seconds.append(time.monotonic() - t0)
            console.print(
                f"  rollout {n + 1}: {self.rollout_seconds[-1]:.1f}s, {loop.sent} sent, {len(loop.failures)} failed"
            )
        time.sleep(3)  # the last old pods' grace period: requests keep going while they leave
        loop.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per side (default 300, at most 5000)")
    parser.add_argument("--seconds", type=float, default=120, help="bound on the measured phase (default 120)")
    parser.add_argument(
        "--rollouts", type=int, default=10, help="consecutive rollouts under load (default 10, at most 50)"
    )
    parser.add_argument("--engine", default="auto", help="dockyard up --engine: auto | podman | docker")
    parser.add_argument("--workdir", type=Path, help="state directory (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the images")
    args = parser.parse_args()
    if not 1 <= args.requests <= 5000 or not 1 <= args.seconds <= 1800 or not 0 <= args.rollouts <= 50:
        parser.error("--requests must be 1..5000, --seconds 1..1800 and --rollouts 0..50")
    workdir = make_workdir(args.workdir, "dy-bench-deploy-")
    bench = Bench(workdir, args)
    steps: list[harness.Step] = [
        ("dockyard up", bench.start),
        ("base image", bench.base_image),
        ("Deployment + LoadBalancer Service (kubectl apply)", bench.deploy),
        (f"{args.requests} requests per side, alternating", bench.requests),
    ]
    if args.rollouts:
        steps.append((f"{args.rollouts} rollouts under a request loop through the Service", bench.rollouts))
    error = harness.run_steps(steps, log=workdir / "up.log", cleanup=lambda: bench.teardown(keep=args.keep))
    times, failed, loop, rollout_seconds = bench.times, bench.failed, bench.loop, bench.rollout_seconds
    figures: dict[str, Any] = {}
    for side, xs in times.items():
        figures[side] = {
            "requests": len(xs),
            "failed": failed[side],
            "median_ms": None if not xs else 1000 * (median(xs) or 0),
            "p90_ms": None if not xs else 1000 * (percentile(xs, 90) or 0),
            "p99_ms": None if not xs else 1000 * (percentile(xs, 99) or 0),
        }
    if loop is not None:
        loop.stop()
    rollouts: dict[str, Any] = {
        "rollouts": len(rollout_seconds),
        "requests": loop.sent if loop else 0,
        "failed": len(loop.failures) if loop else 0,
        "first_failures": (loop.failures[:5] if loop else []),
        "median_rollout_s": median(rollout_seconds) if rollout_seconds else None,
    }
    d, p = figures["direct"]["median_ms"], figures["proxy"]["median_ms"]
    ratio = p / d if d and p else None
    table = Table(title="Service proxy: one GET on a new connection (same run, alternating)")
    for column in ("side", "requests", "failed", "median ms", "p90 ms", "p99 ms"):
        table.add_column(column, justify="right" if column != "side" else "left")
    for side, label in (("direct", f"direct: {bench.pod_ip}:8000"), ("proxy", f"proxy: 127.0.0.1:{bench.port}")):
        f = figures[side]
        table.add_row(
            label, str(f["requests"]), str(f["failed"]), fmt(f["median_ms"]), fmt(f["p90_ms"]), fmt(f["p99_ms"])
        )
    out = Console(highlight=False, width=120)
    out.print(table)
    out.print(f"ratio of medians, proxy / direct: {fmt(ratio)}")
    if rollouts["rollouts"]:
        out.print(
            f"{rollouts['rollouts']} rollouts (median {fmt(rollouts['median_rollout_s'])} s each): "
            f"{rollouts['requests']} requests through the Service, {rollouts['failed']} failed (goal 0)"
        )
        for failure in rollouts["first_failures"]:
            out.print(f"  failure: {failure}")
    harness.print_notes(out, bench.notes, bench.stop_info)
    ok = (
        error is None
        and not any(failed.values())
        and all(figures[s]["requests"] for s in figures)
        and rollouts["failed"] == 0
        and rollouts["rollouts"] == args.rollouts
    )
    fields = {
        "problems": [f"{s}: {n} failed" for s, n in failed.items() if n],
        "notes": bench.notes,
        "code": code_version(),
        "proxy": figures,
        "proxy_over_direct_median": ratio,
        "rollouts": rollouts,
    }
    # the work directory stays (this bench never removed it)
    return harness.finish("deploy", ok=ok, error=error, fields=fields, workdir=None, keep=True)


if __name__ == "__main__":
    sys.exit(main())
