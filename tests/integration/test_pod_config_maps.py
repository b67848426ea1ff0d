"""ConfigMaps in pods run by the node agent: ``env[].valueFrom.configMapKeyRef``, ``envFrom[].configMapRef``,
``configMap`` volumes and ``projected`` ``configMap`` sources (kubelet ``makeEnvironmentVariables`` and the
configmap and projected volume plugins).

Real parts: the API server over HTTPS, the node agent with the node identity (it may get only the ConfigMaps its
pods reference), Podman. Each pod's container checks what it sees with ``test`` and exits; ``restartPolicy:
Never`` makes that the pod's phase (``Succeeded`` only if every check held).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from integration.conftest import ApiServer
from integration.test_pod_secrets import PODS, cluster, ended, phase, run_pod, secret, wait, waiting  # noqa: F401

pytestmark = pytest.mark.e2e

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def config_map(http: httpx.Client, name: str, data: dict[str, str], binary: dict[str, bytes] | None = None) -> None:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    if binary:
        body["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    resp = http.post(CONFIGMAPS, json=body)
    assert resp.status_code == 201, resp.text


def mount_waiting(http: httpx.Client, name: str) -> str | None:
    """The container's ``ContainerCreating`` message while a volume cannot be set up, else ``None``."""
    status = http.get(f"{PODS}/{name}").json().get("status") or {}
    for c in status.get("containerStatuses") or []:
        state = (c.get("state") or {}).get("waiting") or {}
        if state.get("reason") == "ContainerCreating" and "MountVolume" in (state.get("message") or ""):
            return str(state["message"])
    return None


def test_env_from_config_maps_beside_secrets(cluster: tuple[httpx.Client, str, str]) -> None:
    """``envFrom`` entries in order (a ConfigMap's and a Secret's), then ``env``: ``configMapKeyRef`` as it is
    (never expanded); an ``optional`` reference to a missing ConfigMap or key is left out."""
    http, image, _ = cluster
    config_map(http, "settings", {"MODE": "prod", "LEVEL": "$(MODE)", "1st": "x"})
    secret(http, "creds", {"MODE": "from-secret", "TOKEN": "t"})
    checks = " && ".join(
        [
            # the agent expands $(VAR) in a command as the kubelet does: $$ escapes it
            'test "$MODE" = from-secret && test "$cfg_LEVEL" = "\\$$(MODE)" && test "$TOKEN" = t',
            'test "$LEVEL" = "\\$$(MODE)" && test "$ONE" = prod && test "$cfg_1st" = x',
            'test -z "${GONE+set}" && test -z "${NOKEY+set}"',
        ]
    )
    container = {
        "envFrom": [
            {"configMapRef": {"name": "settings"}},
            {"configMapRef": {"name": "settings"}, "prefix": "cfg_"},
            {"secretRef": {"name": "creds"}},
            {"configMapRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            {"name": "ONE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
            {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "x", "optional": True}}},
            {"name": "NOKEY", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "x", "optional": True}}},
        ],
    }
    run_pod(http, "cm-env", image, f"env | sort; {checks}", container=container)
    assert ended(http, "cm-env") == "Succeeded"


def test_config_map_and_projected_volumes_hold_data_and_binary_data(cluster: tuple[httpx.Client, str, str]) -> None:
    """A ``configMap`` volume: one file per key of ``data`` and ``binaryData`` (bytes as they are), or per
    ``items[]`` entry at its path with its mode; a projected volume mixes ConfigMap and Secret sources. Mounted
    read-only."""
    http, image, _ = cluster
    config_map(http, "web", {"nginx.conf": "listen 8080;\n", "index.html": "<h1>hi</h1>"}, {"logo.bin": b"\x89P\x00"})
    secret(http, "tls", {"tls.key": "KEY"})
    checks = " && ".join(
        [
            'test "$(cat /c/all/nginx.conf)" = "listen 8080;" && test "$(cat /c/all/index.html)" = "<h1>hi</h1>"',
            'test "$(od -An -tx1 /c/all/logo.bin | tr -d " ")" = 895000',
            'test "$(stat -c %a /c/all/nginx.conf)" = 644',
            'test "$(cat /c/some/conf/site.conf)" = "listen 8080;" && test ! -e /c/some/index.html',
            'test "$(stat -c %a /c/some/conf/site.conf)" = 600',
            'test "$(cat /c/proj/index.html)" = "<h1>hi</h1>" && test "$(cat /c/proj/tls.key)" = KEY',
            'test "$(stat -c %a /c/proj/tls.key)" = 440',
            "! touch /c/all/new 2>/dev/null && ! touch /c/proj/new 2>/dev/null",
        ]
    )
    volumes = [
        {"name": "all", "configMap": {"name": "web"}},
        {
            "name": "some",
            "configMap": {"name": "web", "items": [{"key": "nginx.conf", "path": "conf/site.conf", "mode": 0o600}]},
        },
        {
            "name": "proj",
            "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {"configMap": {"name": "web", "items": [{"key": "index.html", "path": "index.html"}]}},
                    {"secret": {"name": "tls"}},
                ],
            },
        },
    ]
    mounts = [
        {"name": "all", "mountPath": "/c/all"},
        {"name": "some", "mountPath": "/c/some"},
        {"name": "proj", "mountPath": "/c/proj"},
    ]
    run_pod(http, "cm-vol", image, f"ls -laR /c; {checks}", container={"volumeMounts": mounts}, volumes=volumes)
    assert ended(http, "cm-vol") == "Succeeded"


def test_a_missing_config_map_holds_the_container_and_a_change_reaches_its_files(
    cluster: tuple[httpx.Client, str, str],
) -> None:
    """A missing ConfigMap is ``CreateContainerConfigError`` (``configmap "late" not found``) for a variable and
    ``ContainerCreating`` for a volume; once it exists both start, and a later change reaches the running
    container's files."""
    http, image, _ = cluster
    run_pod(
        http,
        "cm-late-env",
        image,
        'test "$V" = here',
        container={"env": [{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "v"}}}]},
    )
    reason, message = wait(lambda: waiting(http, "cm-late-env"), "the env pod to wait")
    assert (reason, message) == ("CreateContainerConfigError", 'configmap "late" not found')
    script = (
        'test "$(cat /c/v)" = here && for i in $(seq 1 200); do test "$(cat /c/v)" = later && break; sleep 0.2; done'
    )
    run_pod(
        http,
        "cm-late-vol",
        image,
        f'{script}; test "$(cat /c/v)" = later',
        container={"volumeMounts": [{"name": "c", "mountPath": "/c"}]},
        volumes=[{"name": "c", "configMap": {"name": "late"}}],
    )
    message = wait(lambda: mount_waiting(http, "cm-late-vol"), "the volume pod to wait")
    assert 'configmap "late" not found' in message, message
    config_map(http, "late", {"v": "here"})
    assert ended(http, "cm-late-env") == "Succeeded"
    wait(lambda: phase(http, "cm-late-vol") == "Running", "the volume pod to run")
    resp = http.patch(
        f"{CONFIGMAPS}/late", json={"data": {"v": "later"}}, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert resp.status_code == 200, resp.text
    assert ended(http, "cm-late-vol") == "Succeeded"


def test_the_node_gets_only_the_config_maps_its_pods_reference(
    cluster: tuple[httpx.Client, str, str], apiserver: ApiServer
) -> None:
    http, image, node_name = cluster
    config_map(http, "used", {"a": "1"})
    config_map(http, "unused", {"a": "1"})
    run_pod(
        http,
        "cm-ref",
        image,
        "true",
        nodeName=node_name,
        container={"envFrom": [{"configMapRef": {"name": "used"}}]},
    )
    with apiserver.client(token=apiserver.node_token) as node_http:
        assert node_http.get(f"{CONFIGMAPS}/used").status_code == 200
        assert node_http.get(f"{CONFIGMAPS}/unused").status_code == 403
    assert ended(http, "cm-ref") == "Succeeded"
