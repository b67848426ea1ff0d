"""Security contexts honoured on a real Podman service: what a container can do is what its spec says.

Each check reads the container's own view (``/proc/self/status``, ``id``, a file's group) from its log.
Uses the engine, busybox image and runtime fixtures of :mod:`test_pod_runtime`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from dockyard.agent.pods import PodRuntime

from .test_pod_runtime import _cs, _pod, _pod_engine, _running, _sync_until, pytestmark, runtime  # noqa: F401

REPORT = (
    "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; echo uid=$(id -u) groups=$(id -G); "
    "chown 12345 /bin 2>/dev/null && echo chown=ok || echo chown=denied; "
)


def _report(
    client: docker.DockerClient, rt: PodRuntime, pod: dict[str, Any], name: str, done: str = "chown="
) -> dict[str, str]:
    """``key=value`` / ``Key:\\tvalue`` lines of the container's log, once ``done`` appears (bounded wait)."""
    container_id = rt.container_id(pod, name)
    assert container_id is not None
    deadline = time.monotonic() + 15
    while True:
        text = client.api.logs(container_id).decode()
        if done in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    out: dict[str, str] = {}
    for line in text.splitlines():
        for part in line.replace(":\t", "=").replace(" groups=", "\ngroups=").splitlines():
            key, _, value = part.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_drop_all_and_no_new_privileges_are_what_the_container_gets(
    runtime: Callable[[], PodRuntime],
    _pod_engine: docker.DockerClient,
) -> None:
    rt = runtime()
    pod = _pod(
        [
            {
                "name": "locked",
                "command": ["sh", "-c", REPORT + "exec sleep 3600"],
                "securityContext": {"capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": False},
            },
            {"name": "default", "command": ["sh", "-c", REPORT + "exec sleep 3600"]},
            {
                "name": "chown-only",
                "command": ["sh", "-c", REPORT + "exec sleep 3600"],
                "securityContext": {
                    "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
                    "seccompProfile": {"type": "Unconfined"},
                },
            },
        ],
        securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
    )
    _sync_until(rt, pod, _running("locked", "default", "chown-only"))
    locked = _report(_pod_engine, rt, pod, "locked")
    assert locked["CapEff"] == "0000000000000000", locked
    assert locked["NoNewPrivs"] == "1" and locked["chown"] == "denied" and locked["uid"] == "0", locked
    default = _report(_pod_engine, rt, pod, "default")
    assert default["CapEff"] != "0000000000000000" and default["NoNewPrivs"] == "0", default
    assert default["chown"] == "ok" and default["Seccomp"] == "2", default  # the engine's default filter
    chown_only = _report(_pod_engine, rt, pod, "chown-only")
    assert chown_only["CapEff"] == "0000000000000001" and chown_only["chown"] == "ok", chown_only
    assert chown_only["Seccomp"] == "0", chown_only  # Unconfined wins over the pod's RuntimeDefault


def test_users_groups_and_fs_group_on_empty_dir(
    runtime: Callable[[], PodRuntime],
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    rt = runtime()
    pod = _pod(
        [
            {
                "name": "app",
                "command": [
                    "sh",
                    "-c",
                    "touch /data/made; echo uid=$(id -u) groups=$(id -G); "
                    "echo file-group=$(stat -c %g /data/made); echo done=1; exec sleep 3600",
                ],
                "volumeMounts": [{"name": "scratch", "mountPath": "/data"}],
                "securityContext": {"runAsGroup": 3000},
            },
            {
                "name": "own",
                "command": ["sh", "-c", "echo uid=$(id -u) groups=$(id -G); echo done=1; exec sleep 3600"],
                "securityContext": {"runAsUser": 1001},
            },
        ],
        volumes=[{"name": "scratch", "emptyDir": {}}],
        securityContext={
            "runAsUser": 1000,
            "runAsNonRoot": True,
            "supplementalGroups": [4000],
            "fsGroup": 2000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    )
    _sync_until(rt, pod, _running("app", "own"))
    app = _report(_pod_engine, rt, pod, "app", done="done=1")
    assert app["uid"] == "1000", app
    assert app["groups"].split()[0] == "3000" and {"2000", "4000"} <= set(app["groups"].split()), app
    assert app["file-group"] == "2000", app  # the emptyDir is set-group-ID, group fsGroup
    own = _report(_pod_engine, rt, pod, "own", done="done=1")
    assert own["uid"] == "1001", own  # the container's runAsUser wins over the pod's

    # A changed pod securityContext restarts the containers with the new user.
    before = _cs(pod["status"], "own")["containerID"]
    pod["spec"]["securityContext"]["supplementalGroups"] = [4001]
    _sync_until(rt, pod, lambda s: _cs(s, "own")["containerID"] != before and "running" in _cs(s, "own")["state"])
    assert "4001" in _report(_pod_engine, rt, pod, "own", done="done=1")["groups"].split()


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ({"runAsNonRoot": True}, 'container has runAsNonRoot and image will run as root (pod: "{pod}", container: c)'),
        (
            {"runAsNonRoot": True, "runAsUser": 0},
            'container\'s runAsUser breaks non-root policy (pod: "{pod}", container: c)',
        ),
    ],
)
def test_run_as_non_root_with_a_root_image_is_a_config_error(
    runtime: Callable[[], PodRuntime],
    _pod_engine: docker.DockerClient,
    security: dict[str, Any],
    message: str,
) -> None:
    rt = runtime()
    pod = _pod([{"name": "c", "command": ["sleep", "3600"], "securityContext": security}])
    status = _sync_until(
        rt,
        pod,
        lambda s: (
            "waiting" in _cs(s, "c")["state"] and _cs(s, "c")["state"]["waiting"]["reason"] != "ContainerCreating"
        ),
    )
    meta = pod["metadata"]
    waiting = _cs(status, "c")["state"]["waiting"]
    assert waiting == {
        "reason": "CreateContainerConfigError",
        "message": message.format(pod=f"{meta['name']}_{meta['namespace']}({meta['uid']})"),
    }
    assert rt.container_id(pod, "c") is None  # nothing was created


def test_privileged_and_sysctls_are_honoured(
    runtime: Callable[[], PodRuntime],
    _pod_engine: docker.DockerClient,
) -> None:
    rt = runtime()
    pod = _pod(
        [
            {
                "name": "p",
                "command": [
                    "sh",
                    "-c",
                    "grep '^CapEff:' /proc/self/status; "
                    "echo port-start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); "
                    "exec sleep 3600",
                ],
                "securityContext": {"privileged": True},
            },
            {
                "name": "plain",
                "command": [
                    "sh",
                    "-c",
                    "echo port-start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); exec sleep 3600",
                ],
            },
        ],
        securityContext={"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
    )
    _sync_until(rt, pod, _running("p", "plain"))
    privileged = _report(_pod_engine, rt, pod, "p", done="port-start=")
    assert int(privileged["CapEff"], 16) >= 0x1FFFFFFFFF, privileged  # every capability up to CAP_AUDIT_READ
    assert privileged["port-start"] == "0", privileged
    assert _report(_pod_engine, rt, pod, "plain", done="port-start=")["port-start"] == "0"
