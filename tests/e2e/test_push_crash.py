"""Crash safety of Pushes: SIGKILL the node agent while a Push commits or pushes; the supervisor in
`dockyard up` restarts it, and the Push resumes from its stored status.

The container holds 96 MiB of fresh random data, so its commit and its push take seconds: the kill
lands while the Push is Running. Afterwards the Push is Succeeded, its ``imageDigest`` is what the
registry serves for its tag (checked with skopeo when present), and the image holds the container's
data (a pod of the pushed image finds the file the container wrote, matching its checksum).
"""

from __future__ import annotations

import time

import pytest
from harness import apply, kill_component, restarted

from dockyard.api import timefmt

pytestmark = pytest.mark.e2e

DATA_MIB = 96


def _pod(name: str, image: str, command: list[str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": image, "command": command}]},
    }


def _push_phase(cluster, name: str) -> str | None:
    return (cluster.get("push", name).get("status") or {}).get("phase")


def test_sigkill_agent_mid_push_then_the_push_succeeds_with_the_registry_digest(cluster):
    # the container writes its data, marks it written, then stays up: the Push commits it running
    script = (
        f"head -c {DATA_MIB * 1024 * 1024} /dev/urandom > /data.bin && sha256sum /data.bin > /data.sum "
        "&& touch /written && exec sleep 3600"
    )
    pod = _pod("crash-push", f"{cluster.registry}/dockyard/busybox:latest", ["sh", "-c", script])
    pod["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["test", "-f", "/written"]},
        "periodSeconds": 1,
    }
    apply(cluster, pod)

    def ready() -> bool:
        status = cluster.get("pod", "crash-push").get("status") or {}
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])

    cluster.wait_for("the pod to have written its data", ready, 120)
    ref = f"{cluster.registry}/crash-push:v1"
    push = cluster.dockyard("commit", "crash-push/main", ref).stdout.strip().removeprefix("push/")
    cluster.wait_for("the push to run", lambda: _push_phase(cluster, push) == "Running", 60)

    assert _push_phase(cluster, push) == "Running"
    killed_at = time.time()
    old = kill_component(cluster, "agent")
    cluster.wait_for("the agent to be restarted by dockyard up", lambda: restarted(cluster, "agent", old), 60)
    cluster.wait_for("the push to end", lambda: _push_phase(cluster, push) in ("Succeeded", "Failed"), 300)

    status = cluster.get("push", push)["status"]
    assert status["phase"] == "Succeeded", status
    # it ended after the kill: the agent that came back finished it (RFC 3339 times have whole seconds)
    assert timefmt.parse(status["completionTime"]) >= int(killed_at), (status, killed_at)
    assert status["imageDigest"].startswith("sha256:"), status
    cluster.check_registry_digest(ref, status["imageDigest"])  # the registry serves the digest the Push reports

    # the pushed image is the container's: a pod of it finds the fresh random data the container wrote, whole
    apply(cluster, _pod("crash-push-check", ref, ["sha256sum", "-c", "/data.sum"]))
    cluster.wait_for(
        "the pod of the pushed image to end",
        lambda: (cluster.get("pod", "crash-push-check").get("status") or {}).get("phase") in ("Succeeded", "Failed"),
        120,
    )
    assert cluster.get("pod", "crash-push-check")["status"]["phase"] == "Succeeded"
