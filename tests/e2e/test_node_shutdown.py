"""A clean stop of `dockyard up` is a node shutdown: a running pod with ``restartPolicy: Never`` is not run again by
the next `up` (its one run was cut short), it ends Failed as Kubernetes' graceful node shutdown leaves it (reason
``Terminated``); pods that restart are started again, as before."""

from __future__ import annotations

import json
import time

import pytest
from harness import demo_module

pytestmark = pytest.mark.e2e


def _pod(demo, name: str) -> dict:
    pod = json.loads(demo.kubectl("get", "pod", name, "-o", "json").stdout)
    pod.setdefault("status", {})
    return pod


def _wait(what: str, check, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return got


def test_a_never_pod_cut_short_by_a_stop_is_failed_not_run_again(tmp_path):
    demo_mod = demo_module()
    first = demo_mod.Demo(tmp_path, engine="podman")
    second = demo_mod.Demo(tmp_path, engine="podman")  # the same data dir, after the stop
    try:
        first.start()
        first.base_image()
        image = f"{first.registry}/dockyard/busybox:latest"
        for name, policy in (("once", "Never"), ("again", "Always")):
            first.kubectl("run", name, f"--image={image}", f"--restart={policy}", "--", "sh", "-c", "sleep 3600")
        for name in ("once", "again"):
            _wait(f"{name} Running", lambda n=name: _pod(first, n)["status"].get("phase") == "Running")
        first.stop()
        second.registry_port = first.registry_port
        second.registry = first.registry
        second.start()
        once = _wait("once Failed", lambda: (p := _pod(second, "once"))["status"].get("phase") == "Failed" and p)
        assert once["status"]["reason"] == "Terminated"
        assert "shutdown" in once["status"]["message"]
        _wait("again Running", lambda: _pod(second, "again")["status"].get("phase") == "Running")
        time.sleep(3)  # a few syncs: `once` stays Failed with nothing started
        assert _pod(second, "once")["status"]["phase"] == "Failed"
        assert not any(
            c.get("state", {}).get("running") for c in _pod(second, "once")["status"].get("containerStatuses", [])
        )
        second.stop()
    finally:
        first.cleanup()
        second.cleanup()
