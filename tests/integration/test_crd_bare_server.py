"""A bare API server (``python -m dockyard.apiserver``, no dockyard kinds) given dockyard's CRDs
with kubectl, then ``dockyard controllers``: a BuildConfig instantiates a Build and the build
controller creates its build pod — the same path a real cluster given the CRDs takes. (A Build
completing needs the node agent and an engine: see tests/e2e.)"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import processes
from dockyard.api import buildpod

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")
DOCKYARD = [sys.executable, "-c", "from dockyard.cli.main import app; app()"]
BUILDCONFIG = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildConfig",
    "metadata": {"name": "app", "namespace": "default"},
    "spec": {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
        "strategy": {"type": "Docker", "dockerStrategy": {}},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/app:latest"}},
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[str]) -> None:
    processes.stop(proc, grace=20)


@pytest.fixture
def bare_server(tmp_path: Path) -> Iterator[Path]:
    """The bare server's kubeconfig (the server runs until teardown)."""
    data = tmp_path / "data"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard.apiserver", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving https://"), line
        yield data / "kubeconfig"
    finally:
        _stop(proc)


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECACHEDIR": str(kubeconfig.parent / "kubectl-cache")},
    )


def _wait_json(kubeconfig: Path, *args: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        out = _kubectl(kubeconfig, "get", *args, "-o", "json")
        if out.returncode == 0:
            return json.loads(out.stdout)  # type: ignore[no-any-return]
        last = out.stderr
        time.sleep(0.5)
    raise AssertionError(f"kubectl get {' '.join(args)} never succeeded: {last}")


def test_bare_server_serves_dockyard_kinds_from_applied_crds(bare_server: Path, tmp_path: Path) -> None:
    kubeconfig = bare_server
    out = _kubectl(kubeconfig, "get", "builds")
    assert out.returncode != 0 and "the server doesn't have a resource type" in out.stderr, out.stderr
    manifests = subprocess.run([*DOCKYARD, "manifests", "crds"], capture_output=True, text=True, timeout=120)
    assert manifests.returncode == 0, manifests.stderr
    out = _kubectl(kubeconfig, "apply", "-f", "-", stdin=manifests.stdout)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("created") == 5, out.stdout
    out = _kubectl(kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
    assert out.returncode == 0, out.stderr
    resources = _kubectl(kubeconfig, "api-resources", "--categories=dockyard", "-o", "name")  # fresh discovery
    assert sorted(resources.stdout.split()) == [
        "buildconfigs.dockyard.dev",
        "builds.dockyard.dev",
        "imagedeploys.dockyard.dev",
        "images.dockyard.dev",
        "pushes.dockyard.dev",
    ], resources.stderr
    assert _kubectl(kubeconfig, "get", "dockyard").returncode == 0  # the category
    out = _kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(BUILDCONFIG))
    assert out.returncode == 0, out.stderr
    invalid = json.loads(json.dumps(BUILDCONFIG))
    invalid["metadata"]["name"] = "bad"
    invalid["spec"]["runPolicy"] = "Sometimes"
    out = _kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(invalid))
    assert out.returncode != 0 and "spec.runPolicy" in out.stderr, out.stderr
    controllers = subprocess.Popen(
        [*DOCKYARD, "controllers", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "controllers.log").open("w"),
        text=True,
    )
    try:
        body = tmp_path / "request.json"
        body.write_text(
            json.dumps({"kind": "BuildRequest", "apiVersion": "dockyard.dev/v1alpha1", "metadata": {"name": "app"}})
        )
        out = _kubectl(
            kubeconfig,
            "create",
            "--raw",
            "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs/app/instantiate",
            "-f",
            str(body),
        )
        assert out.returncode == 0, out.stderr
        build = json.loads(out.stdout)
        assert build["kind"] == "Build" and build["metadata"]["name"] == "app-1"
        pod = _wait_json(kubeconfig, "pod", buildpod.pod_name("app-1"))
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Build"  # type: ignore[index]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = _wait_json(kubeconfig, "build", "app-1")
            if (got.get("status") or {}).get("phase") == "Pending":  # type: ignore[union-attr]
                break
            time.sleep(0.5)
        assert (got.get("status") or {}).get("podName") == buildpod.pod_name("app-1")  # type: ignore[union-attr]
        table = _kubectl(kubeconfig, "get", "builds")
        assert table.stdout.split()[:8] == ["NAME", "TYPE", "FROM", "STATUS", "STARTED", "DURATION", "DIGEST", "AGE"]
    finally:
        _stop(controllers)  # type: ignore[arg-type]
    out = _kubectl(kubeconfig, "delete", "crd", "builds.dockyard.dev")
    assert out.returncode == 0, out.stderr
    assert _kubectl(kubeconfig, "get", "builds").returncode != 0
