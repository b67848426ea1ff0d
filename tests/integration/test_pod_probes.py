"""Probes as the kubelet runs them (issue 8 item 2), against a real Podman service.

Through the API server and the node agent (``agent`` fixture of test_pod_scheduling): a readiness probe that
turns true after a delay keeps the pod ``Ready=False`` then turns it ``True``; a failing liveness probe
restarts the container (``restartCount``, ``Unhealthy`` and ``Killing`` Events); admission refuses what the
prober cannot honour. Through a PodRuntime driven by hand: ``tcpSocket`` and ``httpGet`` reach the pod's own
loopback inside its network namespace (no host port, nothing on the host's port), the startup probe gates
readiness, and a startup probe past its failureThreshold restarts the container.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from lightkube.resources.core_v1 import Pod

from dockyard.agent import node
from dockyard.agent.pods import PodRuntime
from integration.conftest import ApiServer
from integration.test_pod_runtime import (  # noqa: F401 — the session's Podman service
    FAST,
    _cs,
    _free_port,
    _pod,
    _pod_engine,
    _uids,
)
from integration.test_pod_scheduling import agent  # noqa: F401 — the node agent fixture

NS = "probes"


def _condition(pod: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in pod.get("status", {}).get("conditions") or [] if c["type"] == kind), None)


def _watch(api: httpx.Client, name: str, ok: Callable[[dict[str, Any]], bool], timeout: float) -> list[dict[str, Any]]:
    """Poll the pod until ``ok``; return every version seen (bounded by ``timeout``)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        pod = api.get(f"/api/v1/namespaces/{NS}/pods/{name}").json()
        seen.append(pod)
        if ok(pod):
            return seen
        assert time.monotonic() < deadline, f"timed out; last status: {pod.get('status')}"
        time.sleep(0.25)


def _events(api: httpx.Client, name: str, reason: str) -> list[dict[str, Any]]:
    items = api.get(f"/api/v1/namespaces/{NS}/events").json()["items"]
    return [e for e in items if e["involvedObject"].get("name") == name and e["reason"] == reason]


def _api_pod(name: str, container: dict[str, Any]) -> dict[str, Any]:
    container = {"name": "web", "image": "localhost/test-busybox:1", "imagePullPolicy": "Never", **container}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]},
    }


@pytest.fixture
def api(apiserver: ApiServer) -> Iterator[httpx.Client]:
    with apiserver.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code in (201, 409)
        yield client


def test_readiness_turns_true_after_a_delay(api: httpx.Client, agent: node.NodeAgent) -> None:
    pod = _api_pod(
        "late",
        {
            "command": ["sh", "-c", "mkdir -p /tmp; sleep 5; touch /tmp/ready; exec sleep 3600"],
            "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1},
        },
    )
    assert api.post(f"/api/v1/namespaces/{NS}/pods", json=pod).status_code == 201
    seen = _watch(api, "late", lambda p: _condition(p, "Ready") == "True", timeout=60)
    running_unready = [
        p
        for p in seen
        if p.get("status", {}).get("phase") == "Running"
        and _condition(p, "Ready") == "False"
        and _condition(p, "ContainersReady") == "False"
        and p["status"]["containerStatuses"][0]["ready"] is False
        and "running" in p["status"]["containerStatuses"][0]["state"]
    ]
    assert running_unready, "the container ran without being ready first"
    ready = seen[-1]
    assert _condition(ready, "ContainersReady") == "True"
    assert ready["status"]["containerStatuses"][0]["ready"] is True
    assert ready["status"]["containerStatuses"][0]["restartCount"] == 0
    assert _events(api, "late", "Unhealthy"), "no Unhealthy Event while it was not ready"


def test_failing_liveness_probe_restarts_the_container(api: httpx.Client, agent: node.NodeAgent) -> None:
    script = (
        "mkdir -p /www && echo ok > /www/healthz && httpd -p 8080 -h /www && sleep 3 && rm /www/healthz; sleep 3600"
    )
    pod = _api_pod(
        "sick",
        {
            "command": ["sh", "-c", script],
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": 8080},
                "periodSeconds": 1,
                "failureThreshold": 2,
            },
        },
    )
    assert api.post(f"/api/v1/namespaces/{NS}/pods", json=pod).status_code == 201
    _watch(
        api,
        "sick",
        lambda p: any(c.get("restartCount", 0) >= 1 for c in p.get("status", {}).get("containerStatuses") or []),
        timeout=60,
    )
    deadline = time.monotonic() + 20
    while not (_events(api, "sick", "Killing") and _events(api, "sick", "Unhealthy")):
        assert time.monotonic() < deadline, "no Killing/Unhealthy Events"
        time.sleep(0.25)
    killing = _events(api, "sick", "Killing")
    assert any(e["message"] == "Container web failed liveness probe, will be restarted" for e in killing), killing
    unhealthy = _events(api, "sick", "Unhealthy")
    assert any(e["message"] == "Liveness probe failed: HTTP probe failed with statuscode: 404" for e in unhealthy)
    assert all(e["type"] == "Warning" for e in unhealthy)


@pytest.mark.parametrize(
    ("probe", "field"),
    [
        ({"grpc": {"port": 8080}}, "spec.containers[0].livenessProbe.grpc"),
        ({"httpGet": {"port": 8080, "host": "10.88.0.1"}}, "spec.containers[0].livenessProbe.httpGet.host"),
        ({"exec": {"command": ["true"]}, "successThreshold": 2}, "spec.containers[0].livenessProbe.successThreshold"),
    ],
)
def test_admission_refuses_probes_the_prober_cannot_honour(
    api: httpx.Client, probe: dict[str, Any], field: str
) -> None:
    answer = api.post(f"/api/v1/namespaces/{NS}/pods", json=_api_pod("refused", {"livenessProbe": probe}))
    assert answer.status_code == 422, answer.text
    assert field in [c["field"] for c in answer.json()["details"]["causes"]]


# --- the runtime driven by hand -----------------------------------------------------------------------


@pytest.fixture
def probed(_pod_engine: docker.DockerClient, tmp_path: Path) -> Iterator[tuple[PodRuntime, list[tuple[str, str]]]]:
    """A PodRuntime with its prober; yields it and the Events it recorded as ``(reason, message)``."""
    events: list[tuple[str, str]] = []
    rt = PodRuntime(
        _pod_engine,
        node_name="test",
        state_dir=tmp_path / "state",
        backoff=FAST,
        events=lambda pod, type_, reason, message: events.append((reason, message)),
    )
    yield rt, events
    for uid in rt.pod_uids() & _uids:
        rt.kill_pod(uid, grace_period_seconds=0)


def _sync_until(rt: PodRuntime, pod: dict[str, Any], ok: Callable[[dict[str, Any]], bool], timeout: float) -> list:
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        pod["status"] = rt.sync_pod(Pod.from_dict(pod)).to_dict()
        seen.append(pod["status"])
        if ok(pod["status"]):
            return seen
        assert time.monotonic() < deadline, f"timed out; last status: {pod['status']}"
        time.sleep(0.2)


def test_startup_then_readiness_over_tcp_and_http_inside_the_pod(
    probed: tuple[PodRuntime, list[tuple[str, str]]],
) -> None:
    rt, events = probed
    port = _free_port()  # nothing listens on it on the host: only the pod's own loopback answers
    script = f"sleep 3; mkdir -p /www && echo ok > /www/ready && exec httpd -f -p 127.0.0.1:{port} -h /www"
    pod = _pod(
        [
            {
                "name": "web",
                "command": ["sh", "-c", script],
                "startupProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 30},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 1},
            }
        ]
    )
    seen = _sync_until(rt, pod, lambda s: _cs(s, "web").get("ready") is True, timeout=40)
    running = [s for s in seen if "running" in _cs(s, "web")["state"]]
    assert running[0]["containerStatuses"][0]["started"] is False  # gated by the startup probe
    assert _cs(seen[-1], "web")["started"] is True
    assert _cs(seen[-1], "web")["restartCount"] == 0
    assert any(
        r == "Unhealthy" and m == f"Startup probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused"
        for r, m in events
    ), events
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)  # not on the host's loopback


def test_startup_probe_past_its_failure_threshold_restarts_the_container(
    probed: tuple[PodRuntime, list[tuple[str, str]]],
) -> None:
    rt, events = probed
    pod = _pod(
        [
            {
                "name": "web",
                "command": ["sleep", "3600"],
                "startupProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
            }
        ]
    )
    _sync_until(rt, pod, lambda s: _cs(s, "web")["restartCount"] >= 1, timeout=40)
    assert ("Killing", "Container web failed startup probe, will be restarted") in events, events
    assert ("Unhealthy", "Startup probe failed: ") in events, events  # exec: the command's (empty) output
