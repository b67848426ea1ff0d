"""The node's part of a pod's graceful deletion, against the real API server, the real node agent and a real
Podman service: a deleted pod stays Terminating while its containers run their ``preStop`` hook and get
SIGTERM, SIGKILL once its grace period is over, and then its node removes it from the API (the kubelet's
status manager deleting with grace period 0 and the pod's uid as precondition). An agent stopped halfway
finishes the job when it starts again.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx

from dockyard.agent import node
from integration.conftest import ApiServer
from integration.test_pod_runtime import BUSYBOX, _pod_engine  # noqa: F401 — the session's Podman service
from integration.test_pod_scheduling import (
    PRIVILEGED,
    agent,  # noqa: F401 — the agent fixture
    running_agent,
)

NS = "term"
PODS = f"/api/v1/namespaces/{NS}/pods"
TRAP = "trap 'echo term > /data/term; exit 0' TERM; while true; do sleep 0.2; done"
DEAF = "trap '' TERM; while true; do sleep 0.2; done"  # ignores SIGTERM: only SIGKILL ends it


def _pod(name: str, script: str, host: Path, grace: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "terminationGracePeriodSeconds": grace,
            "volumes": [{"name": "data", "hostPath": {"path": str(host)}}],
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo ran > /data/prestop"]}}},
                }
            ],
        },
    }


def _namespace(api: httpx.Client) -> None:
    """A namespace whose Pod Security level allows the hostPath the pods write their evidence to."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": PRIVILEGED}}
    assert api.post("/api/v1/namespaces", json=body).status_code in (201, 409)


def _data(tmp_path: Path) -> Path:
    host = tmp_path / "data"
    host.mkdir(mode=0o777)
    host.chmod(0o777)
    return host


def _wait(what: str, ok: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = ok()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _running(api: httpx.Client, name: str) -> dict[str, Any]:
    def ok() -> dict[str, Any] | None:
        pod = api.get(f"{PODS}/{name}").json()
        return pod if (pod.get("status") or {}).get("phase") == "Running" else None

    return _wait(f"{name} Running", ok, 60)  # type: ignore[no-any-return]


def _started(api: httpx.Client, name: str, script: str, tmp_path: Path, grace: int) -> str:
    """Make pod ``name`` running ``script`` (in the privileged test namespace, ``/data`` on ``tmp_path/data``) and
    return its uid once it runs."""
    _namespace(api)
    assert api.post(PODS, json=_pod(name, script, _data(tmp_path), grace)).status_code == 201
    return str(_running(api, name)["metadata"]["uid"])


def _containers(engine: docker.DockerClient, uid: str) -> list[Any]:
    # sparse: no inspect per container, which would race with their removal (404)
    return engine.containers.list(all=True, sparse=True, filters={"label": f"io.kubernetes.pod.uid={uid}"})


def test_a_deleted_pod_is_terminating_until_its_containers_stopped(
    apiserver: ApiServer,
    agent: node.NodeAgent,
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    host = _data(tmp_path)
    with apiserver.client() as api:
        _namespace(api)
        assert api.post(PODS, json=_pod("graceful", TRAP, host, 20)).status_code == 201
        uid = _running(api, "graceful")["metadata"]["uid"]
        marked = api.delete(f"{PODS}/graceful").json()
        assert marked["metadata"]["deletionGracePeriodSeconds"] == 20
        assert api.get(f"{PODS}/graceful").json()["metadata"]["uid"] == uid  # still there: Terminating
        _wait("the pod to leave the API", lambda: api.get(f"{PODS}/graceful").status_code == 404, 15)
        assert (host / "prestop").read_text() == "ran\n", "the preStop hook did not run"
        assert (host / "term").read_text() == "term\n", "the container did not get SIGTERM"
        assert not _containers(_pod_engine, uid)
        events = api.get(f"/api/v1/namespaces/{NS}/events").json()["items"]
        killing = [e for e in events if e["involvedObject"].get("uid") == uid and e["reason"] == "Killing"]
        assert len(killing) == 1, killing


def test_the_grace_period_ends_with_sigkill_then_the_pod_goes(
    apiserver: ApiServer,
    agent: node.NodeAgent,
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    with apiserver.client() as api:
        uid = _started(api, "deaf", DEAF, tmp_path, 30)
        start = time.monotonic()
        api.delete(f"{PODS}/deaf", params={"gracePeriodSeconds": "3"})
        time.sleep(1)
        assert api.get(f"{PODS}/deaf").status_code == 200, "gone before its grace period was over"
        _wait("the pod to leave the API", lambda: api.get(f"{PODS}/deaf").status_code == 404, 20)
        took = time.monotonic() - start
        assert 2.5 <= took < 15, took
        assert not _containers(_pod_engine, uid)


def test_a_shorter_grace_period_asked_later_is_kept(
    apiserver: ApiServer,
    agent: node.NodeAgent,
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """A second delete may move ``deletionTimestamp`` closer; the node sends SIGKILL at the new time (as the
    field's description promises), not when the first grace period ends."""
    with apiserver.client() as api:
        uid = _started(api, "hurried", DEAF, tmp_path, 60)
        api.delete(f"{PODS}/hurried")  # 60 s
        time.sleep(2)
        start = time.monotonic()
        shorter = api.delete(f"{PODS}/hurried", params={"gracePeriodSeconds": "2"}).json()["metadata"]
        assert shorter["deletionGracePeriodSeconds"] == 2
        _wait("the pod to leave the API", lambda: api.get(f"{PODS}/hurried").status_code == 404, 20)
        assert time.monotonic() - start < 15
        assert not _containers(_pod_engine, uid)


def test_an_agent_stopped_during_a_termination_finishes_it_when_it_starts_again(
    apiserver: ApiServer,
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    instance = f"term-{uuid.uuid4().hex[:8]}"
    with apiserver.client() as api:
        with running_agent(apiserver, _pod_engine, tmp_path, instance, stop_pods=False):
            uid = _started(api, "resumed", DEAF, tmp_path, 30)
            api.delete(f"{PODS}/resumed", params={"gracePeriodSeconds": "4"})
            time.sleep(0.5)
        # the agent is gone: the pod stays Terminating, its container runs on
        time.sleep(1)
        assert api.get(f"{PODS}/resumed").json()["metadata"]["deletionGracePeriodSeconds"] == 4
        assert [c for c in _containers(_pod_engine, uid) if c.status == "running"]
        with running_agent(apiserver, _pod_engine, tmp_path, instance):
            _wait("the pod to leave the API", lambda: api.get(f"{PODS}/resumed").status_code == 404, 30)
            _wait("its containers to go", lambda: not _containers(_pod_engine, uid), 10)


def test_a_forced_deletion_still_stops_the_containers(
    apiserver: ApiServer,
    agent: node.NodeAgent,
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    with apiserver.client() as api:
        uid = _started(api, "forced", TRAP, tmp_path, 30)
        api.delete(f"{PODS}/forced", params={"gracePeriodSeconds": "0"})
        assert api.get(f"{PODS}/forced").status_code == 404
        _wait("its containers to go", lambda: not _containers(_pod_engine, uid), 40)


def test_a_pod_its_owner_takes_with_it_is_stopped_gracefully(
    apiserver: ApiServer,
    agent: node.NodeAgent,
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """The garbage collector's delete of a dependent pod (``kubectl delete deployment``) is a graceful one: the
    pod is Terminating while its node runs ``preStop`` and sends SIGTERM, then its node removes it."""
    host = _data(tmp_path)
    with apiserver.client() as api:
        _namespace(api)
        owner = api.post(f"/api/v1/namespaces/{NS}/configmaps", json={"metadata": {"name": "owner"}}).json()
        body = _pod("owned", TRAP, host, 20)
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
        body["metadata"]["ownerReferences"] = [ref]
        assert api.post(PODS, json=body).status_code == 201
        uid = _running(api, "owned")["metadata"]["uid"]
        assert api.delete(f"/api/v1/namespaces/{NS}/configmaps/owner").status_code == 200
        assert api.get(f"{PODS}/owned").json()["metadata"]["deletionGracePeriodSeconds"] == 20  # Terminating
        _wait("the pod to leave the API", lambda: api.get(f"{PODS}/owned").status_code == 404, 15)
        assert (host / "prestop").read_text() == "ran\n", "the preStop hook did not run"
        assert (host / "term").read_text() == "term\n", "the container did not get SIGTERM"
        assert not _containers(_pod_engine, uid)


def test_a_deleted_namespace_waits_for_its_pods_to_stop(
    apiserver: ApiServer,
    agent: node.NodeAgent,
    _pod_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """``kubectl delete namespace``: the Namespace is Terminating while its node stops the pods in it gracefully,
    and goes once the node has removed the last one."""
    with apiserver.client() as api:
        uid = _started(api, "in-ns", TRAP, tmp_path, 20)
        assert api.delete(f"/api/v1/namespaces/{NS}").json()["status"]["phase"] == "Terminating"
        assert api.get(f"{PODS}/in-ns").json()["metadata"]["deletionGracePeriodSeconds"] == 20
        _wait("the namespace to go", lambda: api.get(f"/api/v1/namespaces/{NS}").status_code == 404, 15)
        assert (tmp_path / "data" / "prestop").read_text() == "ran\n", "the preStop hook did not run"
        assert (tmp_path / "data" / "term").read_text() == "term\n", "the container did not get SIGTERM"
        assert not _containers(_pod_engine, uid)
