"""``kubectl logs`` of pods against `dockyard up`: the API server asks the node agent, which reads the engine.

Before, ``pods/NAME/log`` answered 200 with an empty body (the agent shipped nothing), so ``kubectl logs``
printed nothing and exited 0. Each case below is what kubectl users rely on, against real Podman.
"""

from __future__ import annotations

import json
import os
import re
import stat

import pytest
from harness import apply, kill_component, restarted

pytestmark = pytest.mark.e2e


def _pod(name: str, containers: list[tuple[str, str]], restart: str = "Always") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "containers": [
                {"name": c, "image": "BUSYBOX", "command": ["sh", "-c", script]} for c, script in containers
            ],
        },
    }


def _start(cluster, pod: dict) -> None:
    text = json.dumps(pod).replace("BUSYBOX", f"{cluster.registry}/dockyard/busybox:latest")
    apply(cluster, json.loads(text))


def _phase(cluster, name: str) -> str | None:
    return (cluster.get("pod", name).get("status") or {}).get("phase")


def _logs(cluster, *args: str, check: bool = True, kubeconfig: str | None = None):
    extra = ["--kubeconfig", kubeconfig] if kubeconfig else []
    return cluster.kubectl(*extra, "logs", *args, check=check, timeout=60)


@pytest.fixture(scope="module")
def talker(cluster):
    _start(cluster, _pod("talker", [("main", "echo one; echo two >&2; sleep 0.5; echo three; exec sleep 3600")]))
    cluster.wait_for("talker to run", lambda: _phase(cluster, "talker") == "Running", 120)
    cluster.wait_for("talker to print", lambda: "three" in _logs(cluster, "talker", check=False).stdout, 30)
    return "talker"


def test_kubectl_logs_prints_the_containers_output_stdout_and_stderr(cluster, talker):
    out = _logs(cluster, talker)
    # stdout and stderr interleaved as the engine recorded them (their order across the two streams is the engine's)
    assert out.returncode == 0 and sorted(out.stdout.split()) == ["one", "three", "two"], out


def test_tail_timestamps_limit_bytes_and_since(cluster, talker):
    assert _logs(cluster, talker, "--tail=1").stdout == "three\n"  # printed half a second after the others
    stamped = _logs(cluster, talker, "--timestamps").stdout.splitlines()
    assert len(stamped) == 3 and all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ", line) for line in stamped)
    assert _logs(cluster, talker, "--limit-bytes=4").stdout == "one\n"
    assert sorted(_logs(cluster, talker, "--since=1h").stdout.split()) == ["one", "three", "two"]


def test_containers_are_picked_as_kubernetes_picks_them(cluster):
    _start(
        cluster,
        _pod("pair", [("first", "echo from-first; exec sleep 3600"), ("second", "echo from-second; exec sleep 3600")]),
    )
    cluster.wait_for("pair to run", lambda: _phase(cluster, "pair") == "Running", 120)
    cluster.wait_for(
        "second to print", lambda: "from-second" in _logs(cluster, "pair", "-c", "second", check=False).stdout, 30
    )
    assert _logs(cluster, "pair").stdout == "from-first\n"  # kubectl defaults to the first container
    wrong = _logs(cluster, "pair", "-c", "nope", check=False)
    assert wrong.returncode != 0 and "container nope is not valid for pod pair" in wrong.stderr
    previous = _logs(cluster, "pair", "-c", "first", "--previous", check=False)
    assert (
        previous.returncode != 0 and 'previous terminated container "first" in pod "pair" not found' in previous.stderr
    )


def test_follow_streams_until_the_container_ends(cluster):
    _start(cluster, _pod("counter", [("main", "for i in 1 2 3 4; do echo n$i; sleep 1; done")], restart="Never"))
    cluster.wait_for("counter to start", lambda: _phase(cluster, "counter") in ("Running", "Succeeded"), 120)
    out = _logs(cluster, "-f", "counter")
    assert out.returncode == 0 and out.stdout.split() == ["n1", "n2", "n3", "n4"], out


def test_view_reads_logs_and_the_agent_socket_is_its_owners_only(cluster, talker):
    view = _logs(cluster, talker, kubeconfig=str(cluster.data_dir / "kubeconfig-view"))
    assert sorted(view.stdout.split()) == ["one", "three", "two"]
    mode = os.stat(cluster.data_dir / "run" / "agent-logs.sock").st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_logs_are_read_again_after_the_agent_is_killed(cluster, talker):
    old = kill_component(cluster, "agent")
    cluster.wait_for("the agent to be restarted by dockyard up", lambda: restarted(cluster, "agent", old), 60)
    assert sorted(_logs(cluster, talker).stdout.split()) == ["one", "three", "two"]


def test_previous_reads_the_attempt_before_a_restart(cluster):
    _start(cluster, _pod("crasher", [("main", "echo attempt-$(date +%s%N); exit 1")]))

    def restarted() -> bool:
        statuses = (cluster.get("pod", "crasher").get("status") or {}).get("containerStatuses") or []
        return bool(statuses) and statuses[0].get("restartCount", 0) >= 1

    cluster.wait_for("crasher to restart once", restarted, 60)
    previous = _logs(cluster, "crasher", "--previous").stdout
    assert previous.startswith("attempt-") and len(previous.split()) == 1, previous
