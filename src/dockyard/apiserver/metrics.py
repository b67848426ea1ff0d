"""``/metrics``: the API server's Prometheus metrics, named as kube-apiserver names them.

Metrics (``k8s.io/apiserver/pkg/endpoints/metrics``, ``pkg/server/filters/maxinflight.go``,
``pkg/storage/cacher``):

- ``apiserver_request_total{verb, group, version, resource, subresource, code}``: counter of requests.
- ``apiserver_request_duration_seconds{verb, group, version, resource, subresource}``: histogram of request
  latency (kube-apiserver's buckets), long-running requests (watches, followed logs) excluded as upstream does.
- ``apiserver_current_inflight_requests{request_kind}``: gauge, ``readOnly`` or ``mutating``, requests being
  served (long-running ones only until their response starts, as the max-in-flight filter counts them).
- ``apiserver_watch_events_total{group, version, resource}``: counter of watch events sent to clients.

Each app has its own :class:`prometheus_client.CollectorRegistry` (tests run many servers in one process).
The text format is Prometheus' exposition format 0.0.4 (``prometheus_client.generate_latest``). Who may read
it: :func:`dockyard.apiserver.authz.allowed` (``admin`` and ``view``, as RBAC's ``system:monitoring``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dockyard.api import errors
from dockyard.apiserver import authz, paths

PATH = "/metrics"

# kube-apiserver's apiserver_request_duration_seconds buckets (metrics.go)
_DURATION_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60,
)  # fmt: skip
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Metrics:
    """The API server's metrics in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("verb", "group", "version", "resource", "subresource")
        self.requests = Counter(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, API resource and HTTP response code.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, group, version, resource and subresource.",
            labels,
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.inflight = Gauge(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind.",
            ("request_kind",),
            registry=self.registry,
        )
        self.watch_events = Counter(
            "apiserver_watch_events_total",
            "Number of events sent in watch clients",
            ("group", "version", "resource"),
            registry=self.registry,
        )
        for kind in ("readOnly", "mutating"):
            self.inflight.labels(kind).set(0)

    def watch_event(self, group: str, version: str, resource: str) -> None:
        """Count one event sent to one watcher."""
        self.watch_events.labels(group, version, resource).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def request_labels(method: str, path: str, query: str) -> tuple[tuple[str, str, str, str, str], bool]:
    """``(verb, group, version, resource, subresource)`` of a request and whether it is long-running.

    Verbs as "Determine the Request Verb" (``WATCH``, ``LIST``, ``GET``... upper-case, as the metric labels
    them); non-resource paths have empty group/version/resource. Long-running: watches and followed logs.
    """
    params = parse_qs(query)
    watch = params.get("watch", ["false"])[-1] in ("true", "1")
    follow = params.get("follow", ["false"])[-1] in ("true", "1")
    if not (path.startswith("/api/") or path.startswith("/apis/")):
        return (method.upper(), "", "", "", ""), False
    try:
        target = paths.parse(path)
    except errors.StatusError:
        return (method.upper(), "", "", "", ""), False
    if target.info is None:
        return (method.upper(), target.group, target.version, "", ""), False
    verb = authz.verb_for(method, named=target.name is not None, watch=watch).upper()
    long_running = verb == "WATCH" or (follow and target.subresource == "log")
    return (verb, target.group, target.version, target.info.plural, target.subresource or ""), long_running


class MetricsMiddleware:
    """ASGI middleware recording request count, latency and in-flight requests into :class:`Metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # each label set's children, looked up once (``labels()`` takes a lock and checks every value per call)
        self._inflight = {kind: metrics.inflight.labels(kind) for kind in ("readOnly", "mutating")}
        self._requests: dict[tuple[str, ...], Any] = {}
        self._durations: dict[tuple[str, ...], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        labels, long_running = request_labels(method, scope["path"], scope.get("query_string", b"").decode("latin-1"))
        kind = "readOnly" if method in _READ_ONLY else "mutating"
        gauge = self._inflight[kind]
        gauge.inc()
        counted = True
        code = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal code, counted
            if message["type"] == "http.response.start":
                code = int(message["status"])
                if long_running and counted:
                    gauge.dec()
                    counted = False
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if counted:
                gauge.dec()
            key = (*labels, str(code))
            counter = self._requests.get(key)
            if counter is None:
                counter = self._requests[key] = self.metrics.requests.labels(*key)
            counter.inc()
            if not long_running:
                histogram = self._durations.get(labels)
                if histogram is None:
                    histogram = self._durations[labels] = self.metrics.duration.labels(*labels)
                histogram.observe(time.perf_counter() - start)
