"""Pushes served by the node agent against real parts: the API server over HTTPS (in-process), the node agent
(pods and pushes workers) on a real Podman service, CNCF ``docker-registry`` processes on free loopback ports,
and ``skopeo`` as the independent judge of what a registry serves.

Each test runs its own agent (its own ``instance``, so it adopts no other test's containers) with a short push
back-off (:attr:`PushWorker.retry_base`); every wait is a bounded poll.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from dockyard.agent import node, pods, pushes
from dockyard.agent.engine import connect
from dockyard.api import labels as well_known
from dockyard.api import phases
from dockyard.client import connection
from dockyard.registry import client as registry_client
from dockyard.registry import server
from integration.conftest import ApiServer

pytestmark = pytest.mark.e2e

T = TypeVar("T")
PODS = "/api/v1/namespaces/default/pods"
PUSHES = "/apis/dockyard.dev/v1alpha1/namespaces/default/pushes"
SECRETS = "/api/v1/namespaces/default/secrets"
Reason = phases.PushReason


def wait(condition: Callable[[], T], what: str, *, timeout: float = 90.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def skopeo_inspect(ref: str, *, creds: str | None = None) -> dict[str, Any]:
    args = ["skopeo", "inspect", "--tls-verify=false", *(["--creds", creds] if creds else []), f"docker://{ref}"]
    return dict(json.loads(subprocess.run(args, check=True, capture_output=True, timeout=60).stdout))


class Cluster:
    """The admin's side: REST calls, and the agent under test."""

    def __init__(self, http: httpx.Client, agent: node.NodeAgent) -> None:
        self.http, self.agent = http, agent

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(path, json=body)
        assert resp.is_success, resp.text
        return dict(resp.json())

    def pod(self, name: str, command: list[str], image: str, *, restart: str = "Always") -> dict[str, Any]:
        return self.create(
            PODS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name},
                "spec": {
                    "restartPolicy": restart,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": image, "command": command}],
                },
            },
        )

    def push(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Push", "metadata": {"name": name}, "spec": spec}
        return self.create(PUSHES, body)

    def get(self, path: str, name: str) -> dict[str, Any]:
        resp = self.http.get(f"{path}/{name}")
        assert resp.is_success, resp.text
        return dict(resp.json())

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(PUSHES, name).get("status") or {})

    def running(self, pod: str) -> dict[str, Any]:
        return wait(
            lambda: (self.get(PODS, pod).get("status") or {}).get("phase") == "Running" and self.get(PODS, pod),
            f"pod {pod} to run",
        )

    def ended(self, name: str, *, timeout: float = 120.0) -> dict[str, Any]:
        return wait(
            lambda: (s := self.status(name)).get("phase") in phases.PUSH_TERMINAL and s,
            f"push {name} to end",
            timeout=timeout,
        )


@pytest.fixture
def cluster(
    apiserver: ApiServer, podman_engine: connect.Engine, tmp_path: Path, busybox_image: tuple[str, str]
) -> Iterator[Cluster]:
    """An agent for ``node-1`` (the node identity) on Podman, and the admin's client; pods removed at the end."""
    conn = connection.connect(str(apiserver.kubeconfig(tmp_path / "node.kubeconfig", token=apiserver.node_token)))
    agent = node.NodeAgent(
        conn,
        engine_client=podman_engine.client,
        engine_url=podman_engine.socket,
        node_name=apiserver.node_name,
        state_dir=tmp_path / "agent",
        instance=f"pushes-{uuid.uuid4().hex[:8]}",
    )
    agent.pushes.retry_base = 0.5
    agent.pushes.retry_cap = 2.0
    stop = threading.Event()
    agent.start(stop)
    wait(agent.synced, "the agent's informers", timeout=20)
    with apiserver.client(timeout=30) as http:
        try:
            yield Cluster(http, agent)
        finally:
            stop.set()
            agent.stop_pods(grace_seconds=1)


def condition(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == phases.SUCCEEDED_CONDITION)


def test_push_is_served_with_provenance_and_succeeds_by_digest(
    cluster: Cluster, registry_server: server.RegistryServer, busybox_image: tuple[str, str]
) -> None:
    base_ref, base_digest = busybox_image
    cluster.pod("src", ["sh", "-c", "echo snap > /snap.txt; sleep 3600"], base_ref)
    cluster.running("src")
    target = f"{registry_server.address}/pushes/provenance:1"
    cluster.push("prov", podName="src", image=target)
    done = cluster.ended("prov")
    assert done["phase"] == phases.PushPhase.SUCCEEDED, done
    assert done["attempts"] == 1 and done["startTime"] and done["completionTime"]
    assert condition(done)["status"] == "True" and "reason" not in done
    info = skopeo_inspect(target)
    assert info["Digest"] == done["imageDigest"]
    assert registry_client.manifest_digest(f"{registry_server.address}/pushes/provenance@{done['imageDigest']}")
    labels = info["Labels"]
    assert labels[well_known.OCI_BASE_NAME] == base_ref
    assert labels[well_known.OCI_BASE_DIGEST] == base_digest
    assert labels[well_known.SOURCE_POD] == "default/src"
    assert labels[well_known.SOURCE_CONTAINER] == "app"
    created = labels[well_known.OCI_CREATED]
    assert created.endswith("Z") and created[:4].isdigit()


def test_missing_source_pod_and_container_are_typed_and_retried(
    cluster: Cluster, registry_server: server.RegistryServer, busybox_image: tuple[str, str]
) -> None:
    cluster.push("nopod", podName="absent", image=f"{registry_server.address}/pushes/x:1", backoffLimit=2)
    failed = cluster.ended("nopod")
    assert (failed["phase"], failed["reason"], failed["attempts"]) == ("Failed", Reason.SOURCE_POD_NOT_FOUND, 3)
    assert condition(failed)["status"] == "False" and condition(failed)["reason"] == Reason.SOURCE_POD_NOT_FOUND
    cluster.pod("src2", ["sleep", "3600"], busybox_image[0])
    cluster.running("src2")
    cluster.push(
        "noctr", podName="src2", containerName="nope", image=f"{registry_server.address}/pushes/x:2", backoffLimit=0
    )
    failed = cluster.ended("noctr")
    assert (failed["reason"], failed["attempts"]) == (Reason.SOURCE_CONTAINER_NOT_FOUND, 1)
    assert "nope" in failed["message"]


def test_image_push_secrets_against_htpasswd_registry(
    cluster: Cluster, busybox_image: tuple[str, str], tmp_path: Path
) -> None:
    password = "pw-7a6b5c"
    htpasswd = server.write_htpasswd(tmp_path / "htpasswd", {"pusher": password})
    cluster.pod("authsrc", ["sleep", "3600"], busybox_image[0])
    cluster.running("authsrc")
    with server.RegistryServer(server.free_port(), tmp_path / "reg", htpasswd=htpasswd) as private:
        target = f"{private.address}/private/snap:1"
        cluster.push("anon", podName="authsrc", image=target, backoffLimit=1)
        denied = cluster.ended("anon")
        assert (denied["phase"], denied["reason"], denied["attempts"]) == ("Failed", Reason.AUTHENTICATION_FAILED, 2)
        cluster.push("missing", podName="authsrc", image=target, imagePushSecrets=[{"name": "absent"}], backoffLimit=0)
        missing = cluster.ended("missing")
        assert missing["reason"] == Reason.AUTHENTICATION_FAILED and "absent" in missing["message"]

        auth = base64.b64encode(f"pusher:{password}".encode()).decode()
        cluster.create(
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": json.dumps({"auths": {private.address: {"auth": auth}}})},
            },
        )
        cluster.push("authed", podName="authsrc", image=target, imagePushSecrets=[{"name": "creds"}])
        done = cluster.ended("authed")
        assert done["phase"] == "Succeeded", done
        assert skopeo_inspect(target, creds=f"pusher:{password}")["Digest"] == done["imageDigest"]
        assert password not in json.dumps(done) and auth not in json.dumps(done)


def test_on_exit_commits_the_exited_container_before_its_restart(
    cluster: Cluster,
    registry_server: server.RegistryServer,
    podman_engine: connect.Engine,
    busybox_image: tuple[str, str],
) -> None:
    cluster.pod("exiter", ["sh", "-c", "sleep 4; echo done > /exited; exit 3"], busybox_image[0])
    cluster.running("exiter")
    target = f"{registry_server.address}/pushes/onexit:1"
    cluster.push("atexit", podName="exiter", image=target, trigger="OnExit")
    waiting = wait(lambda: (s := cluster.status("atexit")).get("message") and s, "the push to wait")
    assert waiting["phase"] == "Pending" and "exit" in waiting["message"], waiting
    assert condition(waiting)["reason"] == Reason.WAITING_FOR_EXIT
    done = cluster.ended("atexit")
    assert done["phase"] == "Succeeded", done
    # the pod was restarted after the commit, as its restartPolicy says
    wait(
        lambda: any(
            c.get("restartCount", 0) >= 1
            for c in (cluster.get(PODS, "exiter").get("status") or {}).get("containerStatuses") or []
        ),
        "the container's restart",
    )
    # the image is the exited container's: it holds what the container wrote just before it exited
    api = podman_engine.client.api
    pinned = f"{target.rsplit(':', 1)[0]}@{done['imageDigest']}"
    api.pull(pinned)
    check = api.create_container(pinned, ["/exited"], entrypoint=["cat"])  # the commit keeps the pod's command
    try:
        api.start(check["Id"])
        assert api.wait(check["Id"], timeout=30)["StatusCode"] == 0
        assert api.logs(check["Id"]).decode() == "done\n"
    finally:
        api.remove_container(check["Id"], force=True)
    assert skopeo_inspect(target)["Labels"][well_known.SOURCE_POD] == "default/exiter"


BIG = ["sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=192 2>/dev/null; sleep 3600"]


def _stop_mid_push(cluster: Cluster, name: str, registry: server.RegistryServer) -> None:
    """Stop ``registry`` while it receives the Push's layer: once the Push has committed and a blob upload is
    under way in the registry's storage (``<root>/docker/registry/v2/repositories/<name>/_uploads/<id>``)."""
    wait(lambda: cluster.status(name).get("imageID"), f"push {name} to commit", timeout=120)
    wait(lambda: any(registry.root_dir.glob("docker/registry/v2/repositories/**/_uploads/*")), "an upload", timeout=60)
    registry.stop()
    assert cluster.status(name).get("phase") != "Succeeded"


def test_registry_away_mid_push_is_retried_until_it_is_back(
    cluster: Cluster, busybox_image: tuple[str, str], tmp_path: Path
) -> None:
    cluster.pod("bigsrc", BIG, busybox_image[0])
    cluster.running("bigsrc")
    time.sleep(3)  # the 192 MiB file is written
    registry = server.RegistryServer(server.free_port(), tmp_path / "reg").start()
    try:
        target = f"{registry.address}/pushes/big:1"
        cluster.push("big", podName="bigsrc", image=target, backoffLimit=6)
        _stop_mid_push(cluster, "big", registry)
        failed_once = wait(lambda: (s := cluster.status("big")).get("reason") and s, "a failed attempt", timeout=120)
        assert failed_once["phase"] != "Succeeded", failed_once
        assert failed_once["reason"] == Reason.PUSH_FAILED, failed_once
        time.sleep(1.0)
        assert cluster.status("big")["phase"] != "Succeeded"  # never while the registry is away
        registry.start()
        done = cluster.ended("big", timeout=240)
        assert done["phase"] == "Succeeded", done
        assert done["attempts"] >= 2
        assert skopeo_inspect(target)["Digest"] == done["imageDigest"]
    finally:
        registry.stop()


def test_registry_that_stays_away_fails_the_push_after_the_back_off(
    cluster: Cluster, busybox_image: tuple[str, str], tmp_path: Path
) -> None:
    cluster.pod("bigsrc2", BIG, busybox_image[0])
    cluster.running("bigsrc2")
    time.sleep(3)
    registry = server.RegistryServer(server.free_port(), tmp_path / "reg").start()
    try:
        cluster.push("doomed", podName="bigsrc2", image=f"{registry.address}/pushes/big:2", backoffLimit=2)
        _stop_mid_push(cluster, "doomed", registry)
        failed = cluster.ended("doomed", timeout=240)
        assert (failed["phase"], failed["reason"], failed["attempts"]) == ("Failed", Reason.PUSH_FAILED, 3), failed
        assert "imageDigest" not in failed
        assert condition(failed)["status"] == "False"
    finally:
        registry.stop()


def test_a_container_of_another_runtime_fails_the_push_at_once_as_unsupported_runtime(
    apiserver: ApiServer, podman_engine: connect.Engine, tmp_path: Path
) -> None:
    """README (Pushes): a container whose ``containerID`` names a runtime other than Docker Engine or Podman
    (``containerd://``, ``cri-o://``) fails at once with reason ``UnsupportedRuntime``, not retried.

    As ``dockyard agent --no-pods`` on a Kubernetes node whose kubelet runs containerd: only the push worker
    runs, and the pod's status is the kubelet's (written here by the admin).
    """
    conn = connection.connect(str(apiserver.kubeconfig(tmp_path / "node.kubeconfig", token=apiserver.node_token)))
    runtime_ = pods.PodRuntime(
        podman_engine.client,
        node_name=apiserver.node_name,
        state_dir=tmp_path / "volumes",
        instance=f"pushes-{uuid.uuid4().hex[:8]}",
    )
    worker = pushes.PushWorker(
        conn, runtime_=runtime_, engine_client=podman_engine.client, node_name=apiserver.node_name
    )
    stop = threading.Event()
    worker.start(stop)
    try:
        with apiserver.client(timeout=30) as http:
            cluster = Cluster(http, agent=None)  # type: ignore[arg-type]  # no pods run here
            for scheme in ("containerd", "cri-o"):
                pod_name = f"k8s-{scheme}"
                created = cluster.create(
                    PODS,
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": pod_name},
                        "spec": {"nodeName": apiserver.node_name, "containers": [{"name": "app", "image": "x"}]},
                    },
                )
                created["status"] = {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "app",
                            "image": "x",
                            "imageID": "",
                            "ready": True,
                            "restartCount": 0,
                            "containerID": f"{scheme}://{'a' * 64}",
                            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                        }
                    ],
                }
                resp = http.put(f"{PODS}/{pod_name}/status", json=created)
                assert resp.is_success, resp.text
                cluster.push(f"on-{scheme}", podName=pod_name, image="127.0.0.1:1/pushes/x:1", backoffLimit=3)
                failed = cluster.ended(f"on-{scheme}", timeout=30)
                assert (failed["phase"], failed["reason"], failed["attempts"]) == (
                    "Failed",
                    Reason.UNSUPPORTED_RUNTIME,
                    1,
                ), failed
                assert f"{scheme}://" in failed["message"] and "Docker Engine or Podman" in failed["message"]
                assert condition(failed)["reason"] == Reason.UNSUPPORTED_RUNTIME
    finally:
        stop.set()
        worker.join_workers(5)
