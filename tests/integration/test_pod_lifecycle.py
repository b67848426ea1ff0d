"""Container ``lifecycle`` hooks as the kubelet runs them, against a real Podman service.

kubelet ``pkg/kubelet/lifecycle/handlers.go`` and ``kuberuntime_container.go`` (``startContainer`` runs
``postStart`` right after the start; ``killContainer`` runs ``preStop`` before SIGTERM, within the grace
period). Through a PodRuntime driven by hand (as test_pod_probes does): a postStart ``exec`` writes a file the
main container reads, and the container is not Running while its hook runs; a failing postStart records
``FailedPostStartHook`` and restarts the container; a preStop ``exec``, ``httpGet`` or ``sleep`` runs before the
SIGTERM, on the non-blocking deletion of ``sync_pod`` and on the blocking ``kill_pod`` the node agent uses; a
preStop hook started by an agent that died is not run again by the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from dockyard.agent.pods import PodRuntime
from dockyard.api import timefmt
from integration.test_pod_runtime import (  # noqa: F401 — the session's Podman service
    FAST,
    _cs,
    _free_port,
    _pod,
    _pod_engine,
    _sync,
    _sync_until,
    _uids,
)

Events = list[tuple[str, str, str]]

# The main process records whether the preStop hook's file was there when its SIGTERM came.
TRAP = (
    "trap 'if [ -f /data/prestop ]; then echo yes > /data/term; else echo no > /data/term; fi; exit 0' TERM; "
    "while true; do sleep 0.1; done"
)


@pytest.fixture
def make_runtime(_pod_engine: docker.DockerClient, tmp_path: Path) -> Iterator[tuple[Callable[[], PodRuntime], Events]]:
    """A factory of PodRuntimes sharing one state dir (a new one is an agent restarted) and their Events as
    ``(type, reason, message)``."""
    events: Events = []
    made: list[PodRuntime] = []

    def make() -> PodRuntime:
        rt = PodRuntime(
            _pod_engine,
            node_name="test",
            state_dir=tmp_path / "state",
            backoff=FAST,
            events=lambda pod, type_, reason, message: events.append((type_, reason, message)),
        )
        made.append(rt)
        return rt

    yield make, events
    if made:
        for uid in made[0].pod_uids() & _uids:
            made[0].kill_pod(uid, grace_period_seconds=0)


def _data(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    host = tmp_path / "data"
    host.mkdir(mode=0o777)
    host.chmod(0o777)
    return host, {"name": "data", "hostPath": {"path": str(host)}}


def _mount() -> list[dict[str, Any]]:
    return [{"name": "data", "mountPath": "/data"}]


def _delete(pod: dict[str, Any], grace: int) -> None:
    pod["metadata"]["deletionTimestamp"] = timefmt.format(time.time() + grace)  # as the API server marks it
    pod["metadata"]["deletionGracePeriodSeconds"] = grace


def _delete_until_gone(rt: PodRuntime, pod: dict[str, Any], timeout: float) -> float:
    """Drive the non-blocking deletion of ``sync_pod``; return the seconds it took."""
    start = time.monotonic()
    uid = pod["metadata"]["uid"]
    while uid in rt.pod_uids():
        _sync(rt, pod)
        assert time.monotonic() - start < timeout, "the pod was not removed in time"
        time.sleep(0.1)
    return time.monotonic() - start


def test_post_start_runs_before_the_container_counts_as_running(
    make_runtime: tuple[Callable[[], PodRuntime], Events], tmp_path: Path
) -> None:
    make, _ = make_runtime
    rt = make()
    host, volume = _data(tmp_path)
    pod = _pod(
        [
            {
                "name": "main",
                "command": [
                    "sh",
                    "-c",
                    "until [ -f /data/hook ]; do sleep 0.1; done; cp /data/hook /data/seen; exec sleep 3600",
                ],
                "volumeMounts": _mount(),
                "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "sleep 2; echo from-hook > /data/hook"]}}},
            }
        ],
        volumes=[volume],
    )
    seen = []
    deadline = time.monotonic() + 30
    while True:
        pod["status"] = _sync(rt, pod)
        hook_done = (host / "hook").exists()
        seen.append((pod["status"], hook_done))
        if "running" in _cs(pod["status"], "main")["state"]:
            break
        assert time.monotonic() < deadline, f"never running: {pod['status']}"
        time.sleep(0.2)
    assert hook_done, "the container was reported Running before its postStart hook finished"
    waiting = [s for s, _ in seen if "waiting" in _cs(s, "main")["state"]]
    assert len(waiting) >= 3, "no waiting status while the 2 s hook ran"
    assert all(_cs(s, "main")["ready"] is False for s in waiting)
    deadline = time.monotonic() + 10
    while not (host / "seen").exists():
        assert time.monotonic() < deadline, "the main container never read the hook's file"
        time.sleep(0.1)
    assert (host / "seen").read_text() == "from-hook\n"
    assert _cs(pod["status"], "main")["restartCount"] == 0


def test_failed_post_start_kills_and_restarts_the_container(
    make_runtime: tuple[Callable[[], PodRuntime], Events],
) -> None:
    make, events = make_runtime
    rt = make()
    pod = _pod(
        [
            {
                "name": "main",
                "command": ["sleep", "3600"],
                "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo no-good; exit 3"]}}},
            }
        ]
    )
    _sync_until(rt, pod, lambda s: _cs(s, "main")["restartCount"] >= 1, timeout=40)
    failed = [e for e in events if e[1] == "FailedPostStartHook"]
    assert failed and all(t == "Warning" for t, _, _ in failed), events
    assert "exit" in failed[0][2] or "3" in failed[0][2], failed
    assert ("Normal", "Killing", "FailedPostStartHook") in events, events


def test_pre_stop_exec_runs_before_sigterm_on_deletion(
    make_runtime: tuple[Callable[[], PodRuntime], Events], tmp_path: Path
) -> None:
    make, events = make_runtime
    rt = make()
    host, volume = _data(tmp_path)
    pod = _pod(
        [
            {
                "name": "main",
                "command": ["sh", "-c", TRAP],
                "volumeMounts": _mount(),
                "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1; echo ran > /data/prestop"]}}},
            }
        ],
        volumes=[volume],
        terminationGracePeriodSeconds=10,
    )
    _sync_until(rt, pod, lambda s: "running" in _cs(s, "main")["state"], timeout=30)
    _delete(pod, 10)
    took = _delete_until_gone(rt, pod, timeout=20)
    assert (host / "prestop").read_text() == "ran\n"
    assert (host / "term").read_text() == "yes\n", "SIGTERM came before the preStop hook ended"
    assert 1 <= took < 9, took
    assert not [e for e in events if e[1] == "FailedPreStopHook"], events


def test_pre_stop_http_get_runs_before_sigterm_on_kill_pod(
    make_runtime: tuple[Callable[[], PodRuntime], Events], tmp_path: Path
) -> None:
    make, _ = make_runtime
    rt = make()
    host, volume = _data(tmp_path)
    port = _free_port()  # inside the pod's network namespace only
    script = (
        "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho ran > /data/prestop\\n"
        'printf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nok"\\n\' > /www/cgi-bin/hook && '
        f"chmod +x /www/cgi-bin/hook && httpd -p 127.0.0.1:{port} -h /www && {TRAP}"
    )
    pod = _pod(
        [
            {
                "name": "main",
                "command": ["sh", "-c", script],
                "volumeMounts": _mount(),
                "lifecycle": {"preStop": {"httpGet": {"path": "/cgi-bin/hook", "port": port}}},
            }
        ],
        volumes=[volume],
        terminationGracePeriodSeconds=10,
    )
    _sync_until(rt, pod, lambda s: "running" in _cs(s, "main")["state"], timeout=30)
    time.sleep(0.5)  # httpd listening
    rt.kill_pod(pod["metadata"]["uid"])  # the node agent's deletion: blocking, grace from the labels
    assert (host / "prestop").read_text() == "ran\n"
    assert (host / "term").read_text() == "yes\n"


def test_pre_stop_sleep_delays_the_stop_within_the_grace_period(
    make_runtime: tuple[Callable[[], PodRuntime], Events], tmp_path: Path
) -> None:
    make, _ = make_runtime
    rt = make()
    pod = _pod(
        [
            {
                "name": "main",
                "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"],
                "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
            }
        ],
        terminationGracePeriodSeconds=20,
    )
    _sync_until(rt, pod, lambda s: "running" in _cs(s, "main")["state"], timeout=30)
    start = time.monotonic()
    rt.kill_pod(pod["metadata"]["uid"])
    took = time.monotonic() - start
    assert 2 <= took < 8, took


def test_pre_stop_longer_than_the_grace_period_is_cut_short(
    make_runtime: tuple[Callable[[], PodRuntime], Events],
) -> None:
    make, _ = make_runtime
    rt = make()
    pod = _pod(
        [
            {
                "name": "main",
                "command": ["sleep", "3600"],  # ignores SIGTERM (pid 1 without a handler)
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", "60"]}}},
            }
        ],
        terminationGracePeriodSeconds=2,
    )
    _sync_until(rt, pod, lambda s: "running" in _cs(s, "main")["state"], timeout=30)
    _delete(pod, 2)
    took = _delete_until_gone(rt, pod, timeout=30)
    # kubelet: the hook gets the grace period (2 s), then SIGTERM with at least 2 s before SIGKILL
    assert 3.5 <= took < 9, took


def test_pre_stop_started_by_a_dead_agent_is_not_run_again(
    make_runtime: tuple[Callable[[], PodRuntime], Events], tmp_path: Path
) -> None:
    make, _ = make_runtime
    first = make()
    host, volume = _data(tmp_path)
    pod = _pod(
        [
            {
                "name": "main",
                "command": ["sh", "-c", TRAP],
                "volumeMounts": _mount(),
                "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo x >> /data/count; sleep 1"]}}},
            }
        ],
        volumes=[volume],
        terminationGracePeriodSeconds=10,
    )
    _sync_until(first, pod, lambda s: "running" in _cs(s, "main")["state"], timeout=30)
    _delete(pod, 10)
    _sync(first, pod)  # the hook starts; then this agent "dies"
    deadline = time.monotonic() + 10
    while not (host / "count").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    second = make()  # a new agent adopts the pod and carries on with its deletion
    _delete_until_gone(second, pod, timeout=20)
    assert (host / "count").read_text() == "x\n", "the preStop hook was run again"


def test_post_start_interrupted_by_a_dead_agent_restarts_the_container(
    make_runtime: tuple[Callable[[], PodRuntime], Events], tmp_path: Path
) -> None:
    make, events = make_runtime
    first = make()
    host, volume = _data(tmp_path)
    pod = _pod(
        [
            {
                "name": "main",
                "command": ["sleep", "3600"],
                "volumeMounts": _mount(),
                "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo x >> /data/count; sleep 3"]}}},
            }
        ],
        volumes=[volume],
    )
    deadline = time.monotonic() + 30
    while not (host / "count").exists():
        pod["status"] = _sync(first, pod)
        assert time.monotonic() < deadline
        time.sleep(0.1)
    second = make()
    status = _sync_until(second, pod, lambda s: "running" in _cs(s, "main")["state"], timeout=40)
    # not adopted as if its hook had succeeded, nor the hook run again in the same container: a new container
    assert _cs(status, "main")["restartCount"] == 1
    assert (host / "count").read_text() == "x\nx\n"
    assert any(r == "FailedPostStartHook" for _, r, _ in events), events
