"""The registry and the Podman service `dockyard up` started are started again when they die while it runs, as
its controllers and agent are: a killed registry used to stay down (pushes and builds failed until `up` was
restarted) and a killed Podman service left pods Pending and the agent logging connection errors."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
from harness import kill_component

pytestmark = pytest.mark.e2e


def _pid(cluster, name: str) -> int:
    return int((cluster.data_dir / "run" / f"{name}.pid").read_text())


def _ready(cluster) -> bool:
    resp = httpx.get(f"https://127.0.0.1:{cluster.api_port}/readyz", verify=False, timeout=5)
    return resp.status_code == 200


def _wait(what: str, check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_killed_registry_is_started_again_with_its_images(cluster):
    ref = f"{cluster.registry}/dockyard/busybox"
    before = httpx.get(f"http://{cluster.registry}/v2/dockyard/busybox/tags/list", timeout=5).json()
    old = kill_component(cluster, "registry")

    def back() -> bool:
        try:
            return (
                _pid(cluster, "registry") != old and httpx.get(f"http://{cluster.registry}/v2/", timeout=2).is_success
            )
        except httpx.HTTPError:
            return False

    _wait("the registry to answer again", back)
    assert httpx.get(f"http://{cluster.registry}/v2/dockyard/busybox/tags/list", timeout=5).json() == before, ref
    _wait("readyz", lambda: _ready(cluster))
    assert "registry" in (cluster.workdir / "up.log").read_text()


def test_a_killed_podman_service_is_started_again_and_pods_run(cluster):
    old = _pid(cluster, "podman")
    os.kill(old, signal.SIGKILL)
    _wait("a new Podman service", lambda: _pid(cluster, "podman") != old)
    image = f"{cluster.registry}/dockyard/busybox:latest"
    cluster.kubectl("run", "after-podman", f"--image={image}", "--restart=Never", "--", "sh", "-c", "echo ran")
    _wait(
        "the pod to run on the new service",
        lambda: cluster.kubectl("get", "pod", "after-podman", "-o", "jsonpath={.status.phase}").stdout == "Succeeded",
        90,
    )
    _wait("readyz", lambda: _ready(cluster))
