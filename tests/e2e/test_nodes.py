"""`dockyard up` registers its one Node, Ready, and its agent heart-beats it (kubelet's 10 s)."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.e2e


def _ready(node: dict) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


def test_kubectl_get_nodes_shows_the_node_ready_and_its_heartbeat_advances(cluster):
    cluster.wait_for("a Node", lambda: json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"], 30)
    lines = cluster.kubectl("get", "nodes").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert len(lines) == 2 and lines[1].split()[1:3] == ["Ready", "<none>"], lines
    name = lines[1].split()[0]
    node = json.loads(cluster.kubectl("get", "node", name, "-o", "json").stdout)
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")
    first = _ready(node)["lastHeartbeatTime"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _ready(json.loads(cluster.kubectl("get", "node", name, "-o", "json").stdout))
        if now["lastHeartbeatTime"] != first:
            break
        time.sleep(1)
    assert now["lastHeartbeatTime"] > first and now["status"] == "True"
    wide = cluster.kubectl("get", "nodes", "-o", "wide").stdout
    assert "127.0.0.1" in wide and "podman://" in wide
