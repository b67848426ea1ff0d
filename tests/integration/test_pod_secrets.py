"""Secrets and the downward API in pods run by the node agent: ``env[].valueFrom.secretKeyRef``, ``envFrom``,
``valueFrom.fieldRef``, ``secret`` and ``projected`` volumes (kubelet ``makeEnvironmentVariables`` and the secret
and projected volume plugins).

Real parts: the API server over HTTPS, the node agent with the node identity (it may read only the Secrets its
pods reference), Podman. Each pod's container checks what it sees with ``test`` and exits; ``restartPolicy:
Never`` makes that the pod's phase (``Succeeded`` only if every check held), so nothing is read from the engine.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.agent import node
from dockyard.agent.engine import connect
from dockyard.client import connection
from integration.conftest import ApiServer

pytestmark = pytest.mark.e2e

PODS = "/api/v1/namespaces/default/pods"
SECRETS = "/api/v1/namespaces/default/secrets"


def wait(condition: Callable[[], Any], what: str, *, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def cluster(
    apiserver: ApiServer, podman_engine: connect.Engine, tmp_path: Path, busybox_image: tuple[str, str]
) -> Iterator[tuple[httpx.Client, str, str]]:
    """The admin's client, the busybox image and the node's name, with a node agent (the node identity) on
    Podman."""
    conn = connection.connect(str(apiserver.kubeconfig(tmp_path / "node.kubeconfig", token=apiserver.node_token)))
    agent = node.NodeAgent(
        conn,
        engine_client=podman_engine.client,
        engine_url=podman_engine.socket,
        node_name=apiserver.node_name,
        state_dir=tmp_path / "agent",
        instance=f"secrets-{uuid.uuid4().hex[:8]}",
    )
    stop = threading.Event()
    agent.start(stop)
    wait(agent.synced, "the agent's informers", timeout=20)
    with apiserver.client(timeout=30) as http:
        try:
            _engines.append(podman_engine)
            yield http, busybox_image[0], apiserver.node_name
        finally:
            agent.stop_pods(grace_seconds=1)
            stop.set()


def secret(http: httpx.Client, name: str, data: dict[str, str]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: b64(v) for k, v in data.items()},
    }
    resp = http.post(SECRETS, json=body)
    assert resp.status_code == 201, resp.text


def run_pod(http: httpx.Client, name: str, image: str, script: str, **spec: Any) -> None:
    container = {"name": "c", "image": image, "command": ["sh", "-c", script], **spec.pop("container", {})}
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "secrets-test"}, "annotations": {"team": "blue"}},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container], **spec},
    }
    resp = http.post(PODS, json=body)
    assert resp.status_code == 201, resp.text


_engines: list[connect.Engine] = []


def logs(name: str) -> str:
    """The output of the pod's containers (for a failure's message)."""
    out = []
    for ctr in _engines[-1].client.containers.list(all=True):
        if f"_{name}_" in ctr.name and "POD" not in ctr.name:
            out.append(ctr.logs().decode(errors="replace"))
    return "\n".join(out)


def ended(http: httpx.Client, name: str) -> str:
    """Wait for the pod to end; its phase, with its output when it failed."""
    got = wait(lambda: phase(http, name) in ("Succeeded", "Failed") and phase(http, name), f"pod {name} to end")
    if got != "Succeeded":
        print(logs(name))
    return str(got)


def phase(http: httpx.Client, name: str) -> str:
    return str((http.get(f"{PODS}/{name}").json().get("status") or {}).get("phase") or "")


def waiting(http: httpx.Client, name: str) -> tuple[str, str] | None:
    """The container's waiting ``(reason, message)``, if it is waiting."""
    status = http.get(f"{PODS}/{name}").json().get("status") or {}
    for c in status.get("containerStatuses") or []:
        state = (c.get("state") or {}).get("waiting") or {}
        reason, message = state.get("reason"), state.get("message") or ""
        if reason and (reason != "ContainerCreating" or "secret" in message):
            return reason, message
    return None


def test_env_from_secrets_and_the_downward_api(cluster: tuple[httpx.Client, str, str]) -> None:
    """``envFrom`` first (``prefix`` + key), then ``env`` in order: ``value`` with ``$(VAR)`` expanded,
    ``secretKeyRef`` (never expanded), ``fieldRef``; an ``optional`` reference to a missing Secret or key is
    left out."""
    http, image, node_name = cluster
    secret(http, "db", {"user": "app", "password": "p$(USER)w"})
    secret(http, "bulk", {"A": "1", "B": "2", "1st": "x"})
    checks = " && ".join(
        [
            "test \"$DB_PASSWORD\" = 'p$$(USER)w'",  # $$: the command's own $(VAR) expansion leaves it
            'test "$CFG_A" = 1 && test "$CFG_B" = 2',
            'test "$URL" = "postgres://app@db"',
            'test "$POD" = env-pod && test "$NS" = default && test "$TEAM" = blue && test "$APP" = secrets-test',
            'test -n "$UID_" && test "$NODE" = "$EXPECTED_NODE"',
            'case "$POD_IP" in 127.2.*) true;; *) false;; esac',
            'test -z "${MAYBE+set}" && test -z "${MAYBE_KEY+set}" && test "$CFG_1st" = x && test "$A" = 1 && tr "\\0" "\\n" < /proc/1/environ | grep -qx "1st=x"',  # sh drops it from its own exports
        ]
    )
    env = [
        {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "URL", "value": "postgres://$(USER)@db"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID_", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "EXPECTED_NODE", "value": node_name},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        {"name": "MAYBE_KEY", "valueFrom": {"secretKeyRef": {"name": "db", "key": "absent", "optional": True}}},
    ]
    env_from = [
        {"secretRef": {"name": "bulk"}, "prefix": "CFG_"},
        {"secretRef": {"name": "bulk"}},  # "1st" is a variable name by the relaxed rule (KEP-4369)
        {"secretRef": {"name": "gone", "optional": True}},
    ]
    run_pod(http, "env-pod", image, f"env | sort; {checks}", container={"env": env, "envFrom": env_from})
    assert ended(http, "env-pod") == "Succeeded"


def test_secret_and_projected_volumes_hold_the_keys_read_only(cluster: tuple[httpx.Client, str, str]) -> None:
    """A ``secret`` volume: one file per key, or per ``items[]`` entry at its ``path`` with its ``mode``;
    ``defaultMode`` otherwise (0644 by default). A ``projected`` volume merges its Secret sources. Both are
    mounted read-only whatever ``readOnly`` says."""
    http, image, _ = cluster
    secret(http, "tls", {"tls.crt": "CERT", "tls.key": "KEY"})
    secret(http, "extra", {"token": "T0K"})
    checks = " && ".join(
        [
            'test "$(cat /s/all/tls.crt)" = CERT && test "$(cat /s/all/tls.key)" = KEY',
            'test "$(stat -c %a /s/all/tls.crt)" = 644',
            'test "$(cat /s/some/certs/server.crt)" = CERT && test ! -e /s/some/tls.key',
            'test "$(stat -c %a /s/some/certs/server.crt)" = 400',
            'test "$(cat /s/proj/tls.key)" = KEY && test "$(cat /s/proj/tok)" = T0K',
            'test "$(stat -c %a /s/proj/tok)" = 440',
            "! touch /s/all/new 2>/dev/null && ! touch /s/proj/new 2>/dev/null",
            "grep -q ' /s/all tmpfs ' /proc/mounts && grep -q ' /s/proj tmpfs ' /proc/mounts",
        ]
    )
    volumes = [
        {"name": "all", "secret": {"secretName": "tls"}},
        {
            "name": "some",
            "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "certs/server.crt", "mode": 0o400}]},
        },
        {
            "name": "proj",
            "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {"secret": {"name": "tls", "items": [{"key": "tls.key", "path": "tls.key"}]}},
                    {"secret": {"name": "extra", "items": [{"key": "token", "path": "tok"}]}},
                ],
            },
        },
    ]
    mounts = [
        {"name": "all", "mountPath": "/s/all"},
        {"name": "some", "mountPath": "/s/some"},
        {"name": "proj", "mountPath": "/s/proj", "readOnly": False},
    ]
    run_pod(http, "vol-pod", image, f"ls -laR /s; {checks}", container={"volumeMounts": mounts}, volumes=volumes)
    assert ended(http, "vol-pod") == "Succeeded"


def test_a_missing_secret_holds_the_container_until_it_exists(cluster: tuple[httpx.Client, str, str]) -> None:
    """As the kubelet: a missing Secret an env var needs is ``CreateContainerConfigError`` (``secret "late" not
    found``), a missing key names the key, and a volume's missing Secret keeps the container
    ``ContainerCreating`` with the mount's message; each starts once the Secret is there."""
    http, image, _ = cluster
    run_pod(
        http,
        "late-env",
        image,
        'test "$V" = here',
        container={"env": [{"name": "V", "valueFrom": {"secretKeyRef": {"name": "late", "key": "v"}}}]},
    )
    reason, message = wait(lambda: waiting(http, "late-env"), "the env pod to wait")
    assert (reason, message) == ("CreateContainerConfigError", 'secret "late" not found')
    run_pod(
        http,
        "late-vol",
        image,
        'test "$(cat /s/v)" = here',
        container={"volumeMounts": [{"name": "s", "mountPath": "/s"}]},
        volumes=[{"name": "s", "secret": {"secretName": "late", "items": [{"key": "v", "path": "v"}]}}],
    )
    reason, message = wait(lambda: waiting(http, "late-vol"), "the volume pod to wait")
    assert reason == "ContainerCreating" and 'secret "late" not found' in message, (reason, message)
    secret(http, "late", {"w": "x"})
    reason, message = wait(
        lambda: (w := waiting(http, "late-env")) and "couldn't find key" in w[1] and w, "the missing key"
    )
    assert message == "couldn't find key v in Secret default/late"
    assert http.delete(f"{SECRETS}/late").status_code == 200
    secret(http, "late", {"v": "here"})
    for name in ("late-env", "late-vol"):
        assert ended(http, name) == "Succeeded"


def test_a_changed_secret_reaches_the_running_containers_files(cluster: tuple[httpx.Client, str, str]) -> None:
    """As the kubelet's periodic remount: while the pod runs, a changed key's file gets the new bytes, a removed
    key's file goes and an added key's file comes (within ``SECRET_REFRESH_PERIOD``), with the volume's mode;
    a ``subPath`` mount of the volume keeps the bytes it started with, as in Kubernetes. The container starts
    once and waits for what it should see."""
    http, image, _ = cluster
    secret(http, "rotating", {"k": "old", "gone": "x"})
    script = " && ".join(
        [
            'test "$(cat /s/k)" = old && test "$(cat /sub/k)" = old',
            'for i in $(seq 1 200); do test "$(cat /s/k)" = new && test -e /s/added && break; sleep 0.2; done',
            'test "$(cat /s/k)" = new && test "$(cat /s/added)" = yes && test ! -e /s/gone',
            'test "$(stat -c %a /s/k)" = 440 && test "$(stat -c %a /s/added)" = 440',
            'test "$(cat /sub/k)" = old',
        ]
    )
    run_pod(
        http,
        "rotate-pod",
        image,
        f"{script} || (ls -la /s; false)",
        container={
            "volumeMounts": [{"name": "s", "mountPath": "/s"}, {"name": "s", "mountPath": "/sub/k", "subPath": "k"}]
        },
        volumes=[{"name": "s", "secret": {"secretName": "rotating", "defaultMode": 0o440}}],
    )
    wait(lambda: phase(http, "rotate-pod") == "Running", "the pod to run")
    resp = http.put(
        f"{SECRETS}/rotating",
        json={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "rotating"},
            "data": {"k": b64("new"), "added": b64("yes")},
        },
    )
    assert resp.status_code == 200, resp.text
    assert ended(http, "rotate-pod") == "Succeeded"
