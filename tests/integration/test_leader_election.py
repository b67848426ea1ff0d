"""Leader election of ``dockyard controllers`` against the real API server (coordination.k8s.io/v1 Lease).

Two ``dockyard controllers`` processes compete for one Lease (client-go ``tools/leaderelection``): only the
holder runs controllers, a SIGKILLed leader is replaced within ``leaseDuration + retryPeriod * 1.2`` (plus
slack for this shared machine), a SIGTERMed one releases the Lease, and one whose Lease is taken exits 1.
Short durations keep the test fast; the rules are the same as with the 15s/10s/2s defaults.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api import buildpod, kinds
from integration.conftest import ApiServer

LEASE = 4.0
RENEW = 3.0
RETRY = 0.5
SLACK = 3.0
NS = "default"
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/dockyard-controllers"
GROUP = f"/apis/{kinds.API_VERSION}/namespaces/{NS}"


class Candidate:
    """One ``dockyard controllers`` process and its log file."""

    def __init__(self, kubeconfig: Path, log: Path, *extra: str) -> None:
        self.log_path = log
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dockyard",
                "controllers",
                "--kubeconfig",
                str(kubeconfig),
                "--controllers",
                "buildconfig,build",
                "--leader-elect-lease-duration",
                f"{LEASE:g}s",
                "--leader-elect-renew-deadline",
                f"{RENEW:g}s",
                "--leader-elect-retry-period",
                f"{RETRY * 1000:g}ms",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            env=env,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def identity(self) -> str | None:
        """The holder identity this process announced (``<host>_<uuid>``), once it logged its first attempt."""
        for line in self.log().splitlines():
            if "leader election: " in line and " trying to acquire lease" in line:
                return line.split("leader election: ", 1)[1].split(" ", 1)[0]
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def wait(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def candidates(apiserver: ApiServer, tmp_path: Path) -> Iterator[Callable[..., Candidate]]:
    kubeconfig = apiserver.kubeconfig(tmp_path / "kubeconfig")
    started: list[Candidate] = []

    def start(*extra: str) -> Candidate:
        c = Candidate(kubeconfig, tmp_path / f"controllers-{len(started)}.log", *extra)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()
    for c in started:  # pytest shows this only for a failed test: what each candidate did
        print(f"--- {c.log_path.name} (exit {c.proc.returncode})\n{c.log()}")


def holder(api: httpx.Client) -> str | None:
    resp = api.get(LEASE_PATH)
    return resp.json()["spec"].get("holderIdentity") if resp.status_code == 200 else None


def names(api: httpx.Client, plural: str, *, core: bool = False) -> list[str]:
    base = f"/api/v1/namespaces/{NS}" if core else GROUP
    resp = api.get(f"{base}/{plural}")
    assert resp.status_code == 200, resp.text
    return sorted(o["metadata"]["name"] for o in resp.json()["items"])


def buildconfig(api: httpx.Client) -> None:
    body = {
        "apiVersion": kinds.API_VERSION,
        "kind": "BuildConfig",
        "metadata": {"name": "app"},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/app:latest"}},
            "triggers": [{"type": "ConfigChange"}],
            "runPolicy": "Parallel",
        },
    }
    assert api.post(f"{GROUP}/buildconfigs", json=body).status_code == 201


def instantiate(api: httpx.Client) -> str:
    resp = api.post(
        f"{GROUP}/buildconfigs/app/instantiate",
        json={"kind": "BuildRequest", "apiVersion": kinds.API_VERSION, "metadata": {"name": "app"}},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["metadata"]["name"])


def test_only_the_leader_acts_and_a_killed_leader_is_replaced(
    api: httpx.Client, candidates: Callable[..., Candidate]
) -> None:
    first = candidates()
    wait(lambda: holder(api) is not None and first.identity() == holder(api), "the first candidate to lead")
    second = candidates()
    wait(second.identity, "the second candidate to try")
    leader, standby = first, second

    buildconfig(api)
    wait(lambda: names(api, "builds") == ["app-1"], "the ConfigChange build")
    second_build = instantiate(api)
    pods = [buildpod.pod_name("app-1"), buildpod.pod_name(second_build)]
    wait(lambda: names(api, "pods", core=True) == sorted(pods), "one build pod per build")
    time.sleep(2 * RETRY)  # the standby had several attempts meanwhile: it still waits and runs nothing
    assert holder(api) == leader.identity()
    assert "controllers running" in leader.log()
    assert "controllers running" not in standby.log(), standby.log()
    assert names(api, "builds") == ["app-1", second_build]

    lease = api.get(LEASE_PATH).json()
    assert lease["spec"]["leaseDurationSeconds"] == int(LEASE)
    transitions = lease["spec"]["leaseTransitions"]

    killed = time.monotonic()
    leader.proc.send_signal(signal.SIGKILL)
    wait(lambda: holder(api) == standby.identity(), "the standby to take over", timeout=LEASE + 10 * RETRY + 10)
    took = time.monotonic() - killed
    assert took <= LEASE + RETRY * 1.2 + SLACK, f"takeover took {took:.1f}s"
    assert took >= LEASE - RETRY, f"takeover after {took:.1f}s: before the lease expired"
    assert api.get(LEASE_PATH).json()["spec"]["leaseTransitions"] == transitions + 1

    third_build = instantiate(api)
    pods.append(buildpod.pod_name(third_build))
    wait(lambda: names(api, "pods", core=True) == sorted(pods), "the new leader's build pod")
    assert names(api, "builds") == sorted(["app-1", second_build, third_build])
    assert "controllers running" in standby.log()


def test_sigterm_releases_the_lease_for_a_fast_takeover(
    api: httpx.Client, candidates: Callable[..., Candidate]
) -> None:
    first = candidates()
    wait(lambda: holder(api) is not None and holder(api) == first.identity(), "the first candidate to lead")
    second = candidates()
    wait(second.identity, "the second candidate to try")
    stopped = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=10) == 0
    wait(lambda: holder(api) == second.identity(), "the second candidate to take over")
    assert time.monotonic() - stopped < LEASE, "the released lease was not taken over at once"


def test_a_leader_whose_lease_is_taken_exits(api: httpx.Client, candidates: Callable[..., Candidate]) -> None:
    leader = candidates()
    wait(lambda: holder(api) is not None and holder(api) == leader.identity(), "the candidate to lead")
    lease = api.get(LEASE_PATH).json()
    lease["spec"]["holderIdentity"] = "someone-else"
    assert api.put(LEASE_PATH, json=lease).status_code == 200
    assert leader.proc.wait(timeout=RENEW + LEASE) == 1
    assert "leaderelection lost" in leader.log()


def test_a_stale_resource_version_is_a_conflict(api: httpx.Client, candidates: Callable[..., Candidate]) -> None:
    """The optimistic concurrency the election relies on: a PUT with an old resourceVersion is 409."""
    leader = candidates()
    wait(lambda: holder(api) is not None and holder(api) == leader.identity(), "the candidate to lead")
    stale = api.get(LEASE_PATH).json()
    wait(
        lambda: api.get(LEASE_PATH).json()["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"],
        "a renewal",
    )
    stale["spec"]["holderIdentity"] = "thief"
    assert api.put(LEASE_PATH, json=stale).status_code == 409
    assert holder(api) == leader.identity()


def test_bad_durations_are_refused(apiserver: ApiServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.kubeconfig(tmp_path / "kubeconfig")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    base = [sys.executable, "-m", "dockyard", "controllers", "--kubeconfig", str(kubeconfig)]
    for extra, message in (
        (["--leader-elect-renew-deadline", "20s"], "leaseDuration must be greater than renewDeadline"),
        (["--leader-elect-retry-period", "9s"], "renewDeadline must be greater than retryPeriod"),
        (["--leader-elect-lease-duration", "soon"], "--leader-elect-lease-duration"),
        (["--leader-elect=maybe"], "--leader-elect"),
    ):
        done = subprocess.run(base + extra, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2, (extra, done.stderr)
        assert message in done.stderr, (extra, done.stderr)


def test_kubectl_lists_leases(apiserver: ApiServer, candidates: Callable[..., Candidate], tmp_path: Path) -> None:
    api = apiserver.client()
    leader = candidates()
    wait(lambda: holder(api) is not None and holder(api) == leader.identity(), "the candidate to lead")
    env = dict(os.environ, KUBECONFIG=str(apiserver.kubeconfig(tmp_path / "kc")), HOME=str(tmp_path))
    done = subprocess.run(["kubectl", "get", "leases", "-A"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "dockyard-controllers" in done.stdout and str(leader.identity()) in done.stdout, done.stdout
    assert "HOLDER" in done.stdout


def test_a_candidate_waits_for_an_api_server_that_is_not_there_yet(apiserver: ApiServer, tmp_path: Path) -> None:
    """As kube-controller-manager: an unreachable API server is logged and tried again, never a traceback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    kubeconfig = apiserver.kubeconfig(tmp_path / "kubeconfig")
    text = kubeconfig.read_text()
    kubeconfig.write_text(text.replace(apiserver.url, f"https://127.0.0.1:{port}"))
    candidate = Candidate(kubeconfig, tmp_path / "dead.log")
    try:
        wait(lambda: candidate.log().count("cannot reach the API") >= 2, "two failed attempts logged")
        assert candidate.proc.poll() is None, candidate.log()
        assert "Traceback" not in candidate.log()
    finally:
        candidate.stop()
