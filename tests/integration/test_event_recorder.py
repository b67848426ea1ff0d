"""EventRecorder against the real API server: create, de-duplicate, survive a restart; kubectl describe shows it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dockyard.client import connection, events

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
EVENTS = "/api/v1/namespaces/default/events"
BCS = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
BC = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildConfig",
    "metadata": {"name": "hello"},
    "spec": {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:latest"}},
    },
}


@pytest.fixture
def conn(apiserver: Any, tmp_path: Path) -> connection.Connection:
    return connection.connect(str(apiserver.kubeconfig(tmp_path / "kubeconfig")))


def _events(api: Any, name: str) -> list[dict[str, Any]]:
    resp = api.get(EVENTS, params={"fieldSelector": f"involvedObject.name={name},involvedObject.kind=Build"})
    assert resp.status_code == 200
    return resp.json()["items"]


def test_record_deduplicates_and_counts_across_recorders(api: Any, conn: connection.Connection) -> None:
    api.post(BCS, json=BC)
    build = api.post(f"{BCS}/hello/instantiate").json()
    rec = events.EventRecorder(conn.lightkube(timeout=5), component="build-controller")
    rec.record(build, events.NORMAL, "BuildStarted", "Build default/hello-1 is now running")
    rec.record(build, events.NORMAL, "BuildStarted", "Build default/hello-1 is now running")
    rec.record(build, events.WARNING, "BuildFailed", "Build default/hello-1 failed: GenericBuildFailed")
    again = events.EventRecorder(conn.lightkube(timeout=5), component="build-controller")  # a restart
    again.record(build, events.NORMAL, "BuildStarted", "Build default/hello-1 is now running")
    got = {e["reason"]: e for e in _events(api, "hello-1")}
    assert set(got) == {"BuildStarted", "BuildFailed"}
    assert got["BuildStarted"]["count"] == 3 and got["BuildFailed"]["count"] == 1
    assert got["BuildFailed"]["type"] == "Warning"
    assert got["BuildStarted"]["involvedObject"]["uid"] == build["metadata"]["uid"]
    assert got["BuildStarted"]["source"]["component"] == "build-controller"


def test_record_never_raises(conn: connection.Connection) -> None:
    rec = events.EventRecorder(conn.lightkube(timeout=5), component="x")
    rec.record(
        {"kind": "Build", "metadata": {"name": "Not A Valid Name!", "namespace": "nowhere"}}, events.NORMAL, "R", "m"
    )  # 404 namespace / 422 name: swallowed


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")
def test_kubectl_describe_shows_events(apiserver: Any, api: Any, conn: connection.Connection, tmp_path: Path) -> None:
    api.post(BCS, json=BC)
    build = api.post(f"{BCS}/hello/instantiate").json()
    rec = events.EventRecorder(conn.lightkube(timeout=5), component="build-controller")
    rec.record(build, events.NORMAL, "BuildStarted", "Build default/hello-1 is now running")
    rec.record(build, events.NORMAL, "BuildStarted", "Build default/hello-1 is now running")
    env = dict(os.environ, KUBECONFIG=str(conn.path), HOME=str(tmp_path))
    out = subprocess.run(
        [KUBECTL, f"--cache-dir={tmp_path / 'cache'}", "describe", "build", "hello-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    events_part = out.stdout.split("Events:", 1)[1]
    assert "BuildStarted" in events_part and "build-controller" in events_part
    assert "(x2 over" in events_part and "is now running" in events_part
    listing = subprocess.run(
        [KUBECTL, f"--cache-dir={tmp_path / 'cache'}", "get", "events"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0 and "BuildStarted" in listing.stdout and "build/hello-1" in listing.stdout
