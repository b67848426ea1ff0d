"""Services end to end on one machine: real Podman, the node agent, the controllers and the Service proxy.

A Deployment of two busybox httpd pods and a LoadBalancer Service, applied with kubectl; requests to
``127.0.0.1:<port>`` reach both pods through the proxy; ``kubectl get svc,endpointslices`` and ``kubectl
describe svc`` show them; a pod being deleted (terminating: unready) gets no new connection while a slow
request already in flight to it finishes. The controllers run in-process (as ``dockyard controllers``), the node
agent and the proxy with the node's identity (as ``dockyard agent``). All traffic goes to 127.0.0.0/8.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import docker
import httpx
import pytest

from dockyard.agent.node import NodeAgent
from dockyard.agent.services import ServiceProxy
from dockyard.api import labels as well_known
from dockyard.client import connection, runtime
from dockyard.controllers.deployment import DeploymentController, ReplicaSetController
from dockyard.controllers.endpoints import EndpointsController
from integration.conftest import ApiServer
from integration.test_apiserver_kubectl import Kubectl
from integration.test_pod_runtime import BUSYBOX, _free_port, _pod_engine  # noqa: F401 — the engine fixture

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
T = TypeVar("T")

SLOW_CGI = """#!/bin/sh
echo "Content-Type: text/plain"
echo ""
echo "start $(hostname)"
sleep 4
echo "end $(hostname)"
"""
SERVER = (
    'mkdir -p /www/cgi-bin && hostname > /www/index.html && printf "%s" "$SLOW" > /www/cgi-bin/slow '
    "&& chmod +x /www/cgi-bin/slow && trap '' TERM && exec httpd -f -p 8000 -h /www"
)


def manifests(port: int) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 15
      containers:
      - name: web
        image: {BUSYBOX}
        imagePullPolicy: Never
        command: [sh, -c, {json.dumps(SERVER)}]
        env: [{{name: SLOW, value: {json.dumps(SLOW_CGI)}}}]
        ports: [{{name: http, containerPort: 8000}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{name: http, port: {port}, targetPort: http}}]
"""


def wait(condition: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.2)


def get(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=3).text.strip()
    except httpx.HTTPError:
        return None


@pytest.fixture
def node(apiserver: ApiServer, tmp_path: Path, _pod_engine: docker.DockerClient) -> Iterator[ServiceProxy]:
    """Controllers (admin) and the node agent with its Service proxy (node identity), stopped at the end."""
    stop = threading.Event()
    instance = f"svc-{uuid.uuid4().hex[:8]}"
    admin = connection.connect(str(apiserver.kubeconfig(tmp_path / "admin")))
    node_conn = connection.connect(str(apiserver.kubeconfig(tmp_path / "node", token=apiserver.node_token)))
    controllers: list[runtime.Controller] = [
        DeploymentController(admin),
        ReplicaSetController(admin),
        EndpointsController(admin),
    ]
    for c in controllers:
        c.start(stop)
    agent = NodeAgent(
        node_conn,
        engine_client=_pod_engine,
        engine_url="unix:///nonexistent",
        node_name=apiserver.node_name,
        state_dir=tmp_path / "agent",
        instance=instance,
    )
    agent.start(stop)
    proxy = ServiceProxy(node_conn)
    proxy.start(stop)
    wait(lambda: proxy.synced() and agent.synced() and all(c.synced() for c in controllers), "informers", 15)
    try:
        yield proxy
    finally:
        stop.set()
        agent.stop_pods(grace_seconds=0, budget=20)
        left = _pod_engine.containers.list(all=True, filters={"label": f"{well_known.CONTAINER_INSTANCE}={instance}"})
        assert not left, f"containers left running after the agent stopped: {[c.name for c in left]}"


def test_load_balancer_reaches_ready_pods_only(apiserver: ApiServer, tmp_path: Path, node: ServiceProxy) -> None:
    kubectl = Kubectl(apiserver, tmp_path)
    port = _free_port()
    kubectl.apply(manifests(port), "web")
    url = f"http://127.0.0.1:{port}/"

    # both pods answer through the LoadBalancer (round robin over ready endpoints)
    def two_pods() -> set[str] | None:
        found = set(kubectl.run("get", "pods", "-o", "name").stdout.split())
        return found if len(found) == 2 else None

    pods = wait(two_pods, "two pods")

    def hosts() -> dict[str, str] | None:
        """Container hostname → pod: the pod's name, as the kubelet sets it (the sandbox's UTS namespace)."""
        items = json.loads(kubectl.run("get", "pods", "-o", "json").stdout)["items"]
        out = {p["metadata"]["name"]: p["metadata"]["name"] for p in items}
        return out if len(out) == 2 else None

    def both() -> set[str] | None:
        names = hosts() or {}
        seen = {names.get(str(get(url))) for _ in range(6)}
        return seen if seen == {p.removeprefix("pod/") for p in pods} else None

    try:
        wait(both, "both pods to answer through the proxy")
    except AssertionError:
        print(kubectl.run("get", "pods,svc,endpointslices", "-o", "wide").stdout)
        print(kubectl.run("get", "pods", "-o", "yaml").stdout[-3000:])
        print(node.listening(), [get(url) for _ in range(4)])
        raise

    out = kubectl.run("get", "svc,endpointslices").stdout
    assert re.search(rf"service/web\s+LoadBalancer\s+127\.1\.\d+\.\d+\s+127\.0\.0\.1\s+{port}:3\d{{4}}/TCP", out), out
    assert re.search(r"endpointslice.discovery.k8s.io/web-\w+\s+IPv4\s+8000\s+127\.2\.\d+\.\d+,127\.2\.\d+\.\d+", out)
    described = kubectl.run("describe", "svc", "web").stdout
    assert re.search(r"Endpoints:\s+127\.2\.\d+\.\d+:8000,127\.2\.\d+\.\d+:8000", described), described
    assert re.search(r"LoadBalancer Ingress:\s+127\.0\.0\.1", described), described

    # a slow request in flight to one pod
    got: dict[str, bytes] = {}
    started = threading.Event()

    def slow() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(b"GET /cgi-bin/slow HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while b"start " not in data or not data.endswith(b"\n"):
                data += s.recv(4096)
            got["start"] = data
            started.set()
            while chunk := s.recv(4096):
                data += chunk
            got["all"] = data

    reader = threading.Thread(target=slow, daemon=True)
    reader.start()
    assert started.wait(15), "the slow request did not start"
    match = re.search(rb"start (\S+)", got["start"])
    assert match
    host = match.group(1).decode()
    names = hosts()
    assert names is not None
    victim = names[host]

    # that pod is deleted: its endpoint goes (or turns unready): no new connection goes to it ...
    kubectl.run("delete", "pod", victim, "--wait=false")

    def victim_unready() -> bool:
        """Its endpoint is unready (terminating) or gone (this API server removes a deleted pod at once)."""
        items = json.loads(kubectl.run("get", "endpointslices", "-o", "json").stdout)["items"]
        return not any(
            e.get("targetRef", {}).get("name") == victim and e.get("conditions", {}).get("ready")
            for es in items
            for e in es.get("endpoints") or []
        )

    wait(victim_unready, "the deleted pod's endpoint to turn unready", 15)
    answers = collections.Counter(get(url) for _ in range(10))
    assert host not in answers and sum(answers.values()) == 10, answers
    # ... while the request in flight finishes, from the same pod
    reader.join(20)
    assert not reader.is_alive()
    assert f"end {host}".encode() in got["all"], got["all"]


def test_listener_closes_when_the_service_goes(apiserver: ApiServer, tmp_path: Path, node: ServiceProxy) -> None:
    kubectl = Kubectl(apiserver, tmp_path)
    port = _free_port()
    service = f"""
apiVersion: v1
kind: Service
metadata: {{name: lonely}}
spec:
  type: LoadBalancer
  selector: {{app: nobody}}
  ports: [{{port: {port}, targetPort: 80}}]
"""
    kubectl.apply(service, "lonely")
    wait(lambda: ("127.0.0.1", port) in node.listening(), "the listener")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # no endpoint: accepted, then closed
        assert s.recv(10) == b""
    moved = _free_port()
    kubectl.apply(service.replace(f"port: {port}", f"port: {moved}"), "moved")
    wait(lambda: ("127.0.0.1", moved) in node.listening(), "the listener on the new port")
    wait(lambda: ("127.0.0.1", port) not in node.listening(), "the old port to close")
    kubectl.run("delete", "svc", "lonely")
    wait(lambda: ("127.0.0.1", moved) not in node.listening(), "the listener to close")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", moved), timeout=2).close()
