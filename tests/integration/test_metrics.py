"""``/metrics``: the API server's Prometheus metrics (kube-apiserver's names) and who may read them; the
controllers' and agent's workqueue metrics (client-go's names) on ``--metrics-bind-address``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from dockyard.client import runtime

SECRETS = "/api/v1/namespaces/default/secrets"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == metric and all((k, x) in ls for k, x in labels.items()))


def test_apiserver_metrics_count_requests_by_verb_resource_and_code(apiserver: Any, api: httpx.Client) -> None:
    assert api.post(SECRETS, json={"metadata": {"name": "m1"}, "stringData": {"a": "b"}}).status_code == 201
    for _ in range(3):
        assert api.get(SECRETS).status_code == 200
    assert api.get(f"{SECRETS}/missing").status_code == 404
    with api.stream("GET", SECRETS, params={"watch": "true", "timeoutSeconds": "1"}) as resp:
        lines = [line for line in resp.iter_lines() if line.strip()]
    assert len(lines) == 1  # the ADDED event of m1
    resp = api.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    found = samples(resp.text)
    assert value(found, "apiserver_request_total", verb="LIST", resource="secrets", code="200") >= 3
    assert value(found, "apiserver_request_total", verb="CREATE", resource="secrets") == 1
    assert value(found, "apiserver_request_total", verb="GET", resource="secrets", code="404") == 1
    assert value(found, "apiserver_request_total", verb="WATCH", resource="secrets") == 1
    assert value(found, "apiserver_request_duration_seconds_count", verb="LIST", resource="secrets") >= 3
    # long-running requests are left out of the latency histogram, as upstream does
    assert value(found, "apiserver_request_duration_seconds_count", verb="WATCH", resource="secrets") == 0
    # the /metrics request itself is in flight while it is served
    assert value(found, "apiserver_current_inflight_requests", request_kind="readOnly") == 1
    assert value(found, "apiserver_current_inflight_requests", request_kind="mutating") == 0
    assert value(found, "apiserver_watch_events_total", resource="secrets") == 1
    # events the watch cache writes straight to the connection are counted too
    rv = api.get(SECRETS).json()["metadata"]["resourceVersion"]
    with api.stream("GET", SECRETS, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}) as resp:
        for name in ("m2", "m3"):
            assert api.post(SECRETS, json={"metadata": {"name": name}}).status_code == 201
        lines = [line for line in resp.iter_lines() if line.strip()]
    assert [json.loads(line)["object"]["metadata"]["name"] for line in lines] == ["m2", "m3"]
    found = samples(api.get("/metrics").text)
    assert value(found, "apiserver_watch_events_total", resource="secrets") == 3


def test_metrics_are_readable_by_view_but_not_by_a_node_or_anonymous(apiserver: Any) -> None:
    with apiserver.client(token=apiserver.view_token) as view:
        assert view.get("/metrics").status_code == 200
    with apiserver.client(token=apiserver.node_token) as node:
        refused = node.get("/metrics")
        assert refused.status_code == 403
        assert 'cannot get path "/metrics"' in refused.json()["message"]
    with apiserver.client(token=None) as anonymous:
        assert anonymous.get("/metrics").status_code == 401


def test_workqueue_records_client_go_metrics() -> None:
    from prometheus_client import REGISTRY, generate_latest

    queue = runtime.WorkQueue(name="metrics-test")
    for key in ("a", "b", "a"):
        queue.add(key)
    got = queue.get(timeout=1)
    assert got == "a"
    queue.done(got)
    queue.add_rate_limited("c")
    found = samples(generate_latest(REGISTRY).decode())
    assert value(found, "workqueue_adds_total", name="metrics-test") == 2  # "a" de-duplicated
    assert value(found, "workqueue_depth", name="metrics-test") == 1  # "b" waits
    assert value(found, "workqueue_retries_total", name="metrics-test") == 1
    assert value(found, "workqueue_queue_duration_seconds_count", name="metrics-test") == 1
    assert value(found, "workqueue_work_duration_seconds_count", name="metrics-test") == 1


def test_metrics_bind_address_refuses_a_non_loopback_address() -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", "controllers", "--metrics-bind-address", "0.0.0.0:9100"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 2, done.stderr
        assert "--metrics-bind-address" in done.stderr and "loopback" in done.stderr
