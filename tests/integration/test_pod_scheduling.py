"""Honest scheduling on one node (issue 8 item 3), against the real API server and a real Podman service.

A pod whose ``hostPort`` is taken on the node (by another pod of the node, or by anything listening on
127.0.0.1) is not bound: it stays ``Pending`` with ``PodScheduled=False``/``Unschedulable`` and a
``FailedScheduling`` Event worded as kube-scheduler words it, and is bound once the port is free. A Deployment
whose pod template has a ``hostPort`` and whose strategy cannot roll on one node gets a Warning at apply.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from dockyard.agent import node
from dockyard.client import connection
from integration.conftest import ApiServer
from integration.test_pod_runtime import BUSYBOX, _pod_engine  # noqa: F401 — the session's Podman service

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
UNSCHEDULABLE = "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_agent(
    apiserver: ApiServer, engine: docker.DockerClient, tmp_path: Path, instance: str, *, stop_pods: bool = True
) -> Iterator[node.NodeAgent]:
    """The node agent of ``node-1`` (the node identity) on ``engine``, its state in ``tmp_path/agent`` and its
    containers labelled ``instance`` (an agent started again with both takes its pods over); at the end it
    stops, and with ``stop_pods`` its pods' containers are removed."""
    kubeconfig = apiserver.kubeconfig(tmp_path / "node.kubeconfig", token=apiserver.node_token)
    conn = connection.connect(paths=[kubeconfig])
    agent = node.NodeAgent(
        conn,
        engine_client=engine,
        engine_url=str(engine.api.base_url),
        node_name=apiserver.node_name,
        state_dir=tmp_path / "agent",
        instance=instance,
    )
    stop = threading.Event()
    threads = agent.start(stop)
    try:
        deadline = time.monotonic() + 20
        while not agent.synced():
            assert time.monotonic() < deadline, "the agent's informers did not sync"
            time.sleep(0.1)
        yield agent
    finally:
        stop.set()
        if stop_pods:
            agent.stop_pods(grace_seconds=0)
        for t in threads:
            t.join(5)


@pytest.fixture
def agent(apiserver: ApiServer, _pod_engine: docker.DockerClient, tmp_path: Path) -> Iterator[node.NodeAgent]:
    """The node agent of ``node-1`` on the session's Podman service; its pods are removed at the end."""
    with running_agent(apiserver, _pod_engine, tmp_path, f"sched-{uuid.uuid4().hex[:8]}") as agent:
        yield agent


NS = "ports"
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/warn": "privileged"}
"""hostPort is refused by Pod Security ``baseline``: these tests run in a namespace that allows it."""


def _namespace(api: httpx.Client) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": PRIVILEGED}}
    assert api.post("/api/v1/namespaces", json=body).status_code == 201


def _pod(name: str, host_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "web",
                    "image": BUSYBOX,
                    "imagePullPolicy": "Never",
                    "command": ["httpd", "-f", "-p", "8080"],
                    "ports": [{"containerPort": 8080, "hostPort": host_port}],
                }
            ],
        },
    }


def _wait(api: httpx.Client, name: str, ok: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        pod = api.get(f"/api/v1/namespaces/{NS}/pods/{name}").json()
        if ok(pod):
            return pod
        assert time.monotonic() < deadline, (
            f"timed out; last: {pod.get('spec', {}).get('nodeName')} {pod.get('status')}"
        )
        time.sleep(0.2)


def _scheduled(pod: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"), {})


def _unschedulable(pod: dict[str, Any]) -> bool:
    cond = _scheduled(pod)
    return cond.get("status") == "False" and cond.get("reason") == "Unschedulable"


def _running(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and _scheduled(pod).get("status") == "True"


def _failed_scheduling(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    events = api.get(f"/api/v1/namespaces/{NS}/events").json()["items"]
    return [
        e
        for e in events
        if e["involvedObject"].get("name") == name and e["reason"] == "FailedScheduling" and e["type"] == "Warning"
    ]


def _assert_pending_unschedulable(api: httpx.Client, name: str) -> None:
    pod = _wait(api, name, _unschedulable)
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")
    assert _scheduled(pod)["message"] == UNSCHEDULABLE
    deadline = time.monotonic() + 10
    while not _failed_scheduling(api, name):
        assert time.monotonic() < deadline, "no FailedScheduling Event"
        time.sleep(0.2)
    assert _failed_scheduling(api, name)[0]["message"] == UNSCHEDULABLE
    assert _failed_scheduling(api, name)[0]["source"].get("component") == "default-scheduler"


def test_a_host_port_held_on_loopback_keeps_the_pod_pending_until_it_is_free(
    apiserver: ApiServer, agent: node.NodeAgent
) -> None:
    port = _free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    with apiserver.client() as api:
        _namespace(api)
        try:
            assert api.post(f"/api/v1/namespaces/{NS}/pods", json=_pod("held", port)).status_code == 201
            _assert_pending_unschedulable(api, "held")
        finally:
            holder.close()
        pod = _wait(api, "held", _running, timeout=60)
        assert pod["spec"]["nodeName"] == apiserver.node_name
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code in (200, 403, 404)


def test_a_host_port_of_another_pod_of_the_node_keeps_the_pod_pending_until_that_pod_goes(
    apiserver: ApiServer, agent: node.NodeAgent
) -> None:
    port = _free_port()
    with apiserver.client() as api:
        _namespace(api)
        assert api.post(f"/api/v1/namespaces/{NS}/pods", json=_pod("first", port)).status_code == 201
        _wait(api, "first", _running, timeout=60)
        assert api.post(f"/api/v1/namespaces/{NS}/pods", json=_pod("second", port)).status_code == 201
        _assert_pending_unschedulable(api, "second")
        assert api.delete(f"/api/v1/namespaces/{NS}/pods/first").status_code == 200
        pod = _wait(api, "second", _running, timeout=60)
        assert pod["spec"]["nodeName"] == apiserver.node_name


def test_a_pod_waiting_for_a_port_is_bound_as_soon_as_the_holding_pods_containers_are_gone(
    apiserver: ApiServer, agent: node.NodeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deleted pod's containers (its sandbox publishes the port) go after its DELETED event: the waiting
    pod is looked at again when they are gone, not only every ``SCHEDULE_RETRY`` seconds (a rollout of a
    hostPort Deployment with maxSurge 0 waits on this)."""
    monkeypatch.setattr(node, "SCHEDULE_RETRY", 120.0)
    port = _free_port()
    with apiserver.client() as api:
        _namespace(api)
        assert api.post(f"/api/v1/namespaces/{NS}/pods", json=_pod("first", port)).status_code == 201
        _wait(api, "first", _running, timeout=60)
        assert api.post(f"/api/v1/namespaces/{NS}/pods", json=_pod("second", port)).status_code == 201
        _assert_pending_unschedulable(api, "second")
        assert api.delete(f"/api/v1/namespaces/{NS}/pods/first").status_code == 200
        pod = _wait(api, "second", _running, timeout=45)
        assert pod["spec"]["nodeName"] == apiserver.node_name


def _deployment(name: str, strategy: dict[str, Any] | None) -> str:
    strategy_yaml = ""
    if strategy is not None:
        rolling = strategy.get("rollingUpdate")
        strategy_yaml = f"  strategy:\n    type: {strategy['type']}\n" + (
            f"    rollingUpdate: {{maxSurge: {rolling['maxSurge']}, maxUnavailable: {rolling['maxUnavailable']}}}\n"
            if rolling
            else ""
        )
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {NS}}}
spec:
  replicas: 1
{strategy_yaml}  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: {BUSYBOX}
        ports: [{{containerPort: 8080, hostPort: 18080}}]
"""


@pytest.mark.parametrize(
    ("strategy", "warned"),
    [
        (None, True),  # the default: RollingUpdate, maxSurge 25% (1 of 1, rounded up)
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, True),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, False),
        ({"type": "Recreate"}, False),
    ],
)
def test_applying_a_deployment_whose_host_port_cannot_roll_warns_and_suggests_a_service(
    apiserver: ApiServer, tmp_path: Path, strategy: dict[str, Any] | None, warned: bool
) -> None:
    env = {"KUBECONFIG": str(apiserver.kubeconfig(tmp_path / "kubeconfig")), "HOME": str(tmp_path)}
    with apiserver.client() as api:
        _namespace(api)
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(_deployment("web", strategy))
    proc = subprocess.run(
        [KUBECTL, f"--cache-dir={tmp_path / 'cache'}", "apply", "-f", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning:") and "Service" in line]
    if warned:
        assert len(warnings) == 1, proc.stderr
        assert "spec.template.spec.containers[0].ports[0].hostPort" in warnings[0]
        assert "Service" in warnings[0] and "maxSurge" in warnings[0]
    else:
        assert warnings == [], proc.stderr
