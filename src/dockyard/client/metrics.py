"""Process-wide Prometheus metrics of the controllers and the node agent, and their ``/metrics`` listener.

Workqueue metrics carry client-go's names and meaning (``k8s.io/client-go/util/workqueue/metrics.go``,
``component-base/metrics/prometheus/workqueue``), label ``name`` = the controller's name:
``workqueue_depth`` (gauge), ``workqueue_adds_total``, ``workqueue_retries_total`` (counters),
``workqueue_queue_duration_seconds`` (seconds a key waits in the queue before it is processed) and
``workqueue_work_duration_seconds`` (seconds processing a key takes), histograms with client-go's buckets
(1 µs to 10 s, ×10). dockyard's own: ``dockyard_build_duration_seconds{phase, stage}``,
``dockyard_push_duration_seconds{phase}``, ``dockyard_image_resolve_latency_seconds``.

They live in prometheus_client's default registry (one per process); :func:`serve` exposes it over HTTP on
a loopback address (``--metrics-bind-address``, controller-runtime's flag name).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from dockyard.api import hosts

_WORKQUEUE_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # client-go: ExponentialBuckets(10e-9, 10, 10)
_BUILD_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)

WORKQUEUE_DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", ("name",))
WORKQUEUE_ADDS = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", ("name",))
WORKQUEUE_RETRIES = Counter("workqueue_retries_total", "Total number of retries handled by workqueue", ("name",))
WORKQUEUE_QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested.",
    ("name",),
    buckets=_WORKQUEUE_BUCKETS,
)
WORKQUEUE_WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes.",
    ("name",),
    buckets=_WORKQUEUE_BUCKETS,
)
BUILD_DURATION = Histogram(
    "dockyard_build_duration_seconds",
    "Seconds a Build took, by its final phase and stage (FetchInputs, Build, PushImage; 'total' for the whole).",
    ("phase", "stage"),
    buckets=_BUILD_BUCKETS,
)
PUSH_DURATION = Histogram(
    "dockyard_push_duration_seconds",
    "Seconds from a Push's start to its end (commit and push), by its final phase.",
    ("phase",),
    buckets=_BUILD_BUCKETS,
)
IMAGE_RESOLVE_LATENCY = Histogram(
    "dockyard_image_resolve_latency_seconds",
    "Seconds one Image reconcile spent asking the registry for the tracked reference's digest.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def parse_bind_address(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` → ``(host, port)``; ``"0"`` or ``""`` → None (metrics off, controller-runtime's "0").

    Raises:
        ValueError: not ``HOST:PORT``, a port outside 0-65535, or a host that is not loopback
            (dockyard's servers listen on loopback only).
    """
    if value in ("", "0"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:10257), or 0 to turn metrics off")
    host = host.strip("[]") or "127.0.0.1"
    if not hosts.is_loopback(host):
        raise ValueError(f"{host!r} is not a loopback address: metrics are served on loopback only")
    return host, int(port)


def serve(address: tuple[str, int]) -> int:
    """Serve the default registry at ``http://HOST:PORT/metrics`` from a daemon thread; returns the port bound
    (useful with port 0). Raises OSError if the address cannot be bound."""
    server, _thread = start_http_server(address[1], addr=address[0])
    return int(server.server_address[1])
