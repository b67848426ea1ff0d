"""Security fields the node agent cannot honour are refused by the real API server with 422 naming the field.

The namespace is ``privileged`` so that Pod Security (403) does not answer first: these are refusals of
what even an admin may not ask for, because nothing would honour it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dockyard.api import podsecurity

PODS = "/api/v1/namespaces/anything/pods"


@pytest.fixture
def open_ns(api: httpx.Client) -> httpx.Client:
    r = api.post(
        "/api/v1/namespaces",
        json={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "anything", "labels": {podsecurity.ENFORCE_LEVEL_LABEL: podsecurity.PRIVILEGED}},
        },
    )
    assert r.status_code == 201, r.text
    return api


def _pod(pod_spec: dict[str, Any] | None = None, sc: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if sc is not None:
        container["securityContext"] = sc
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [container], **(pod_spec or {})},
    }


@pytest.mark.parametrize(
    ("pod_spec", "sc", "field"),
    [
        (
            {},
            {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}},
            "spec.containers[0].securityContext.seccompProfile.type",
        ),
        (
            {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"}}},
            None,
            "spec.securityContext.seccompProfile.type",
        ),
        (
            {},
            {"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor"}},
            "spec.containers[0].securityContext.appArmorProfile.type",
        ),
        ({}, {"seLinuxOptions": {"level": "s0:c123,c456"}}, "spec.containers[0].securityContext.seLinuxOptions"),
        ({"securityContext": {"seLinuxOptions": {"type": "container_t"}}}, None, "spec.securityContext.seLinuxOptions"),
        (
            {},
            {"windowsOptions": {"runAsUserName": "ContainerUser"}},
            "spec.containers[0].securityContext.windowsOptions",
        ),
        ({}, {"procMount": "Unmasked"}, "spec.containers[0].securityContext.procMount"),
        ({"hostNetwork": True}, None, "spec.hostNetwork"),
        ({"hostPID": True}, None, "spec.hostPID"),
        ({"hostIPC": True}, None, "spec.hostIPC"),
        ({"hostUsers": False}, None, "spec.hostUsers"),
        (
            {"securityContext": {"supplementalGroupsPolicy": "Strict"}},
            None,
            "spec.securityContext.supplementalGroupsPolicy",
        ),
        (
            {"securityContext": {"sysctls": [{"name": "kernel.sem", "value": "250 32000 100 128"}]}},
            None,
            "spec.securityContext.sysctls[0].name",
        ),
        ({}, {"capabilities": {"add": ["CAP_TYPO"]}}, "spec.containers[0].securityContext.capabilities.add[0]"),
        ({}, {"runAsUser": "1000"}, "spec.containers[0].securityContext.runAsUser"),
        ({}, {"noSuchField": True}, "spec.containers[0].securityContext.noSuchField"),
    ],
)
def test_refused_security_fields_get_422_naming_the_field(
    open_ns: httpx.Client, pod_spec: dict[str, Any], sc: dict[str, Any] | None, field: str
) -> None:
    r = open_ns.post(PODS, json=_pod(pod_spec, sc))
    assert r.status_code == 422, r.text
    assert [c["field"] for c in r.json()["details"]["causes"]] == [field]
    assert open_ns.get(PODS + "/p").status_code == 404


def test_honoured_security_fields_are_stored(open_ns: httpx.Client) -> None:
    pod = _pod(
        {
            "shareProcessNamespace": True,
            "securityContext": {
                "runAsUser": 1000,
                "runAsGroup": 3000,
                "fsGroup": 2000,
                "supplementalGroups": [4000],
                "seccompProfile": {"type": "RuntimeDefault"},
                "sysctls": [{"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}],
            },
        },
        {
            "privileged": True,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
            "seccompProfile": {"type": "Unconfined"},
            "readOnlyRootFilesystem": True,
        },
    )
    r = open_ns.post(PODS, json=pod)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["containers"][0]["securityContext"]["privileged"] is True


def test_a_patch_into_a_refused_field_is_422(open_ns: httpx.Client) -> None:
    assert open_ns.post(PODS, json=_pod()).status_code == 201
    r = open_ns.patch(
        PODS + "/p", json={"spec": {"hostPID": True}}, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "spec.hostPID"


def test_a_localhost_app_armor_annotation_is_422(open_ns: httpx.Client) -> None:
    pod = _pod()
    key = "container.apparmor.security.beta.kubernetes.io/c"
    pod["metadata"]["annotations"] = {key: "localhost/k8s-apparmor-example"}
    r = open_ns.post(PODS, json=pod)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == f"metadata.annotations[{key}]"
