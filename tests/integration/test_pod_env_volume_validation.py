"""Pod env and volume sources: the API server accepts exactly those the node agent honours, 422 for the rest.

The node agent honours ``env[].valueFrom.secretKeyRef`` and ``configMapKeyRef``, ``env[].valueFrom.fieldRef`` (a
fixed set of field paths), ``envFrom[].secretRef`` and ``configMapRef``, and the volume sources ``hostPath``,
``emptyDir``, ``secret``, ``configMap`` and ``projected`` (secret and configMap sources only). Everything else is refused with 422 naming the exact field path, before anything is
stored, on Pods and on the pod templates of Deployments and ReplicaSets alike.

The namespace is ``privileged`` so that Pod Security (403 for ``hostPath``) does not answer first.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from dockyard.api import podsecurity

NS = "envvol"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
REPLICASETS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
MERGE = {"Content-Type": "application/merge-patch+json"}

SUPPORTED_FIELD_PATHS = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels['app']",
    "metadata.annotations['example.com/owner']",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.podIP",
]


@pytest.fixture
def open_ns(api: httpx.Client) -> httpx.Client:
    r = api.post(
        "/api/v1/namespaces",
        json={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NS, "labels": {podsecurity.ENFORCE_LEVEL_LABEL: podsecurity.PRIVILEGED}},
        },
    )
    assert r.status_code == 201, r.text
    return api


def _pod_spec(container: dict[str, Any] | None = None, volumes: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox", **(container or {})}]}
    if volumes is not None:
        spec["volumes"] = volumes
    return spec


def _pod(container: dict[str, Any] | None = None, volumes: list[Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": _pod_spec(container, volumes)}


def _workload(kind: str, container: dict[str, Any] | None = None, volumes: list[Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "w"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "w"}},
            "template": {"metadata": {"labels": {"app": "w"}}, "spec": _pod_spec(container, volumes)},
        },
    }


def _assert_invalid(resp: httpx.Response, fields: list[str]) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["kind"] == "Status" and body["reason"] == "Invalid", body
    assert [c["field"] for c in body["details"]["causes"]] == fields, body
    return body


def _env(value_from: Any, **more: Any) -> dict[str, Any]:
    return {"env": [{"name": "V", "valueFrom": value_from, **more}]}


ENV = "spec.containers[0].env[0]"
ENV_FROM = "spec.containers[0].envFrom[0]"
VOL = "spec.volumes[0]"

REFUSED_ENV: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "configMapKeyRef without key",
        _env({"configMapKeyRef": {"name": "cm"}}),
        f"{ENV}.valueFrom.configMapKeyRef.key",
        "FieldValueRequired",
    ),
    (
        "configMapKeyRef bad name",
        _env({"configMapKeyRef": {"name": "Not_A_Name", "key": "k"}}),
        f"{ENV}.valueFrom.configMapKeyRef.name",
        "FieldValueInvalid",
    ),
    (
        "configMapKeyRef and secretKeyRef",
        _env({"configMapKeyRef": {"name": "cm", "key": "k"}, "secretKeyRef": {"name": "s", "key": "k"}}),
        f"{ENV}.valueFrom",
        "FieldValueInvalid",
    ),
    (
        "resourceFieldRef",
        _env({"resourceFieldRef": {"resource": "limits.memory"}}),
        f"{ENV}.valueFrom.resourceFieldRef",
        "FieldValueForbidden",
    ),
    (
        "fileKeyRef",
        _env({"fileKeyRef": {"volumeName": "v", "path": "a.env", "key": "K"}}),
        f"{ENV}.valueFrom.fileKeyRef",
        "FieldValueNotSupported",  # not a field of Kubernetes v1.32's EnvVarSource (1.34+): an unknown field
    ),
    (
        "fieldRef status.podIPs",
        _env({"fieldRef": {"fieldPath": "status.podIPs"}}),
        f"{ENV}.valueFrom.fieldRef.fieldPath",
        "FieldValueForbidden",
    ),
    (
        "fieldRef metadata.generateName",
        _env({"fieldRef": {"fieldPath": "metadata.generateName"}}),
        f"{ENV}.valueFrom.fieldRef.fieldPath",
        "FieldValueNotSupported",
    ),
    (
        "fieldRef whole labels",
        _env({"fieldRef": {"fieldPath": "metadata.labels"}}),
        f"{ENV}.valueFrom.fieldRef.fieldPath",
        "FieldValueNotSupported",
    ),
    (
        "fieldRef bad label key",
        _env({"fieldRef": {"fieldPath": "metadata.labels['-bad key-']"}}),
        f"{ENV}.valueFrom.fieldRef.fieldPath",
        "FieldValueInvalid",
    ),
    ("fieldRef without fieldPath", _env({"fieldRef": {}}), f"{ENV}.valueFrom.fieldRef.fieldPath", "FieldValueRequired"),
    (
        "fieldRef apiVersion v2",
        _env({"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}),
        f"{ENV}.valueFrom.fieldRef.apiVersion",
        "FieldValueNotSupported",
    ),
    ("valueFrom without source", _env({}), f"{ENV}.valueFrom", "FieldValueInvalid"),
    (
        "valueFrom with two sources",
        _env({"secretKeyRef": {"name": "s", "key": "k"}, "fieldRef": {"fieldPath": "metadata.name"}}),
        f"{ENV}.valueFrom",
        "FieldValueInvalid",
    ),
    (
        "value and valueFrom",
        _env({"secretKeyRef": {"name": "s", "key": "k"}}, value="x"),
        f"{ENV}.valueFrom",
        "FieldValueInvalid",
    ),
    (
        "secretKeyRef without name",
        _env({"secretKeyRef": {"key": "k"}}),
        f"{ENV}.valueFrom.secretKeyRef.name",
        "FieldValueRequired",
    ),
    (
        "secretKeyRef without key",
        _env({"secretKeyRef": {"name": "s"}}),
        f"{ENV}.valueFrom.secretKeyRef.key",
        "FieldValueRequired",
    ),
    (
        "secretKeyRef bad name",
        _env({"secretKeyRef": {"name": "Not_A_Name", "key": "k"}}),
        f"{ENV}.valueFrom.secretKeyRef.name",
        "FieldValueInvalid",
    ),
    (
        "secretKeyRef bad key",
        _env({"secretKeyRef": {"name": "s", "key": "a/b"}}),
        f"{ENV}.valueFrom.secretKeyRef.key",
        "FieldValueInvalid",
    ),
    (
        "secretKeyRef optional not a boolean",
        _env({"secretKeyRef": {"name": "s", "key": "k", "optional": "yes"}}),
        f"{ENV}.valueFrom.secretKeyRef.optional",
        "FieldValueInvalid",
    ),
    (
        "envFrom configMapRef without name",
        {"envFrom": [{"configMapRef": {}}]},
        f"{ENV_FROM}.configMapRef.name",
        "FieldValueRequired",
    ),
    (
        "envFrom configMapRef and secretRef",
        {"envFrom": [{"configMapRef": {"name": "cm"}, "secretRef": {"name": "s"}}]},
        ENV_FROM,
        "FieldValueInvalid",
    ),
    ("envFrom without source", {"envFrom": [{}]}, ENV_FROM, "FieldValueInvalid"),
    ("envFrom with a prefix only", {"envFrom": [{"prefix": "P_"}]}, ENV_FROM, "FieldValueInvalid"),
    (
        "envFrom secretRef without name",
        {"envFrom": [{"secretRef": {}}]},
        f"{ENV_FROM}.secretRef.name",
        "FieldValueRequired",
    ),
    (
        "envFrom prefix with '='",
        {"envFrom": [{"prefix": "A=", "secretRef": {"name": "s"}}]},
        f"{ENV_FROM}.prefix",
        "FieldValueInvalid",
    ),
]


@pytest.mark.parametrize(
    ("container", "field", "reason"), [r[1:] for r in REFUSED_ENV], ids=[r[0] for r in REFUSED_ENV]
)
def test_refused_env_sources_are_422_naming_the_field(
    open_ns: httpx.Client, container: dict[str, Any], field: str, reason: str
) -> None:
    """Kubernetes ``validateEnvVarValueFrom``/``validateEnvFrom`` rules, and sources the node agent does not
    honour (``resourceFieldRef``, ``fileKeyRef``, field paths outside its set): 422 naming the exact field, with
    the cause's reason; nothing is stored."""
    body = _assert_invalid(open_ns.post(PODS, json=_pod(container)), [field])
    assert body["details"]["causes"][0]["reason"] == reason
    assert open_ns.get(f"{PODS}/p").status_code == 404


REFUSED_VOLUMES: list[tuple[str, dict[str, Any], str, str]] = [
    ("hostPath relative", {"name": "v", "hostPath": {"path": "data"}}, f"{VOL}.hostPath.path", "FieldValueInvalid"),
    ("hostPath empty", {"name": "v", "hostPath": {"path": ""}}, f"{VOL}.hostPath.path", "FieldValueRequired"),
    (
        "hostPath backsteps",
        {"name": "v", "hostPath": {"path": "/srv/../etc"}},
        f"{VOL}.hostPath.path",
        "FieldValueInvalid",
    ),
    (
        "hostPath type",
        {"name": "v", "hostPath": {"path": "/srv", "type": "Directroy"}},
        f"{VOL}.hostPath.type",
        "FieldValueNotSupported",
    ),
    ("configMap without name", {"name": "v", "configMap": {}}, f"{VOL}.configMap.name", "FieldValueRequired"),
    (
        "configMap item path with '..'",
        {"name": "v", "configMap": {"name": "cm", "items": [{"key": "a", "path": "../a"}]}},
        f"{VOL}.configMap.items[0].path",
        "FieldValueInvalid",
    ),
    (
        "secret and configMap",
        {"name": "v", "secret": {"secretName": "s"}, "configMap": {"name": "cm"}},
        f"{VOL}.configMap",
        "FieldValueForbidden",
    ),
    (
        "downwardAPI",
        {"name": "v", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        f"{VOL}.downwardAPI",
        "FieldValueForbidden",
    ),
    ("nfs", {"name": "v", "nfs": {"server": "10.0.0.1", "path": "/exports"}}, f"{VOL}.nfs", "FieldValueForbidden"),
    (
        "persistentVolumeClaim",
        {"name": "v", "persistentVolumeClaim": {"claimName": "c"}},
        f"{VOL}.persistentVolumeClaim",
        "FieldValueForbidden",
    ),
    ("csi", {"name": "v", "csi": {"driver": "x.example.com"}}, f"{VOL}.csi", "FieldValueForbidden"),
    ("image", {"name": "v", "image": {"reference": "busybox"}}, f"{VOL}.image", "FieldValueForbidden"),
    (
        "hostPath and emptyDir",
        {"name": "v", "hostPath": {"path": "/tmp"}, "emptyDir": {}},
        f"{VOL}.emptyDir",
        "FieldValueForbidden",
    ),
    (
        "emptyDir and secret",
        {"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}},
        f"{VOL}.secret",
        "FieldValueForbidden",
    ),
    ("secret without secretName", {"name": "v", "secret": {}}, f"{VOL}.secret.secretName", "FieldValueRequired"),
    (
        "secret defaultMode above 0777",
        {"name": "v", "secret": {"secretName": "s", "defaultMode": 0o1000}},
        f"{VOL}.secret.defaultMode",
        "FieldValueInvalid",
    ),
    (
        "secret defaultMode negative",
        {"name": "v", "secret": {"secretName": "s", "defaultMode": -1}},
        f"{VOL}.secret.defaultMode",
        "FieldValueInvalid",
    ),
    (
        "secret optional not a boolean",
        {"name": "v", "secret": {"secretName": "s", "optional": "true"}},
        f"{VOL}.secret.optional",
        "FieldValueInvalid",
    ),
    (
        "secret item without key",
        {"name": "v", "secret": {"secretName": "s", "items": [{"path": "a"}]}},
        f"{VOL}.secret.items[0].key",
        "FieldValueRequired",
    ),
    (
        "secret item without path",
        {"name": "v", "secret": {"secretName": "s", "items": [{"key": "a"}]}},
        f"{VOL}.secret.items[0].path",
        "FieldValueRequired",
    ),
    (
        "secret item absolute path",
        {"name": "v", "secret": {"secretName": "s", "items": [{"key": "a", "path": "/etc/passwd"}]}},
        f"{VOL}.secret.items[0].path",
        "FieldValueInvalid",
    ),
    (
        "secret item path with '..'",
        {"name": "v", "secret": {"secretName": "s", "items": [{"key": "a", "path": "a/../../b"}]}},
        f"{VOL}.secret.items[0].path",
        "FieldValueInvalid",
    ),
    (
        "secret item path starting with '..'",
        {"name": "v", "secret": {"secretName": "s", "items": [{"key": "a", "path": "..data"}]}},
        f"{VOL}.secret.items[0].path",
        "FieldValueInvalid",
    ),
    (
        "secret item path '.'",
        {"name": "v", "secret": {"secretName": "s", "items": [{"key": "a", "path": "./"}]}},
        f"{VOL}.secret.items[0].path",
        "FieldValueInvalid",
    ),
    (
        "secret item mode above 0777",
        {"name": "v", "secret": {"secretName": "s", "items": [{"key": "a", "path": "a", "mode": 512}]}},
        f"{VOL}.secret.items[0].mode",
        "FieldValueInvalid",
    ),
    (
        "secret unknown key",
        {"name": "v", "secret": {"secretName": "s", "bogus": 1}},
        f"{VOL}.secret.bogus",
        "FieldValueNotSupported",
    ),
    (
        "projected configMap without name",
        {"name": "v", "projected": {"sources": [{"configMap": {}}]}},
        f"{VOL}.projected.sources[0].configMap.name",
        "FieldValueRequired",
    ),
    (
        "projected downwardAPI",
        {"name": "v", "projected": {"sources": [{"downwardAPI": {"items": []}}]}},
        f"{VOL}.projected.sources[0].downwardAPI",
        "FieldValueForbidden",
    ),
    (
        "projected serviceAccountToken",
        {"name": "v", "projected": {"sources": [{"secret": {"name": "s"}}, {"serviceAccountToken": {"path": "t"}}]}},
        f"{VOL}.projected.sources[1].serviceAccountToken",
        "FieldValueForbidden",
    ),
    (
        "projected clusterTrustBundle",
        {"name": "v", "projected": {"sources": [{"clusterTrustBundle": {"name": "b", "path": "ca.pem"}}]}},
        f"{VOL}.projected.sources[0].clusterTrustBundle",
        "FieldValueForbidden",
    ),
    (
        "projected secret and configMap in one source",
        {"name": "v", "projected": {"sources": [{"secret": {"name": "s"}, "configMap": {"name": "cm"}}]}},
        f"{VOL}.projected.sources[0].configMap",
        "FieldValueForbidden",
    ),
    (
        "projected empty source",
        {"name": "v", "projected": {"sources": [{}]}},
        f"{VOL}.projected.sources[0]",
        "FieldValueRequired",
    ),
    (
        "projected secret without name",
        {"name": "v", "projected": {"sources": [{"secret": {}}]}},
        f"{VOL}.projected.sources[0].secret.name",
        "FieldValueRequired",
    ),
    (
        "projected secret item path with '..'",
        {"name": "v", "projected": {"sources": [{"secret": {"name": "s", "items": [{"key": "a", "path": "../a"}]}}]}},
        f"{VOL}.projected.sources[0].secret.items[0].path",
        "FieldValueInvalid",
    ),
    (
        "projected duplicate paths",
        {
            "name": "v",
            "projected": {
                "sources": [
                    {"secret": {"name": "s", "items": [{"key": "a", "path": "x"}]}},
                    {"secret": {"name": "t", "items": [{"key": "b", "path": "x"}]}},
                ]
            },
        },
        f"{VOL}.projected.sources[1].secret.items[0].path",
        "FieldValueDuplicate",
    ),
    (
        "projected defaultMode above 0777",
        {"name": "v", "projected": {"defaultMode": 1000, "sources": [{"secret": {"name": "s"}}]}},
        f"{VOL}.projected.defaultMode",
        "FieldValueInvalid",
    ),
]


@pytest.mark.parametrize(
    ("volume", "field", "reason"), [r[1:] for r in REFUSED_VOLUMES], ids=[r[0] for r in REFUSED_VOLUMES]
)
def test_refused_volume_sources_are_422_naming_the_field(
    open_ns: httpx.Client, volume: dict[str, Any], field: str, reason: str
) -> None:
    """Volume types other than ``hostPath``/``emptyDir``/``secret``/``configMap``/``projected``, more than one
    type in a volume (Kubernetes ``validateVolumeSource``: "may not specify more than 1 volume type"), projected
    sources other than ``secret`` and ``configMap``, and malformed secret and configMap sources (``validateSecretVolumeSource``, ``validateKeyToPath``,
    ``validateProjectionSources``): 422 naming the exact field; nothing is stored."""
    body = _assert_invalid(open_ns.post(PODS, json=_pod(volumes=[volume])), [field])
    assert body["details"]["causes"][0]["reason"] == reason
    assert open_ns.get(f"{PODS}/p").status_code == 404


def test_a_refused_source_message_says_the_node_agent_does_not_support_it(open_ns: httpx.Client) -> None:
    """The Forbidden causes say why: the node agent does not honour the source."""
    body = _assert_invalid(
        open_ns.post(PODS, json=_pod(volumes=[{"name": "v", "downwardAPI": {"items": []}}])), [f"{VOL}.downwardAPI"]
    )
    assert "not supported by the node agent" in body["details"]["causes"][0]["message"]
    assert f"{VOL}.downwardAPI" in body["message"]


def test_every_refused_source_of_one_pod_is_named(open_ns: httpx.Client) -> None:
    """One 422 names every refused source of the pod, in every container and volume, at its index."""
    pod = _pod(
        {
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            ]
        },
        volumes=[{"name": "ok", "emptyDir": {}}, {"name": "v", "nfs": {"server": "s", "path": "/"}}],
    )
    pod["spec"]["containers"].append(
        {"name": "d", "image": "busybox", "envFrom": [{"secretRef": {"name": "s"}}, {"configMapRef": {}}]}
    )
    _assert_invalid(
        open_ns.post(PODS, json=pod),
        [
            "spec.containers[0].env[1].valueFrom.resourceFieldRef",
            "spec.containers[1].envFrom[1].configMapRef.name",
            "spec.volumes[1].nfs",
        ],
    )
    assert open_ns.get(f"{PODS}/p").status_code == 404


def _supported_container() -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "PLAIN", "value": "x"},
        {"name": "EMPTY_VALUE", "value": "", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password", "optional": True}}},
        {"name": "V1", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "mode", "optional": True}}},
    ]
    env += [{"name": f"F{i}", "valueFrom": {"fieldRef": {"fieldPath": p}}} for i, p in enumerate(SUPPORTED_FIELD_PATHS)]
    return {
        "env": env,
        "envFrom": [
            {"secretRef": {"name": "s"}},
            {"prefix": "DB_", "secretRef": {"name": "db", "optional": False}},
            {"prefix": "CFG_", "configMapRef": {"name": "cm", "optional": True}},
        ],
        "volumeMounts": [{"name": n, "mountPath": f"/mnt/{n}"} for n in ("h", "e", "s", "p", "q", "c")],
    }


SUPPORTED_VOLUMES: list[dict[str, Any]] = [
    {"name": "h", "hostPath": {"path": "/tmp", "type": "Directory"}},
    {"name": "e", "emptyDir": {"medium": ""}},
    {
        "name": "s",
        "secret": {
            "secretName": "s",
            "defaultMode": 0o400,
            "optional": True,
            "items": [{"key": "tls.crt", "path": "certs/tls.crt", "mode": 0o444}, {"key": "k", "path": "k..v"}],
        },
    },
    {
        "name": "p",
        "projected": {
            "defaultMode": 0o777,
            "sources": [
                {"secret": {"name": "s", "items": [{"key": "a", "path": "a"}]}},
                {"secret": {"name": "t", "optional": True, "items": [{"key": "b", "path": "sub/b", "mode": 0}]}},
                {"configMap": {"name": "cm", "items": [{"key": "c", "path": "c.conf"}]}},
            ],
        },
    },
    {"name": "q", "projected": {"sources": [{"secret": {"name": "only-name"}}]}},
    {
        "name": "c",
        "configMap": {"name": "cm", "defaultMode": 0o444, "optional": True, "items": [{"key": "a", "path": "a"}]},
    },
]


def test_every_supported_source_is_accepted_and_stored_as_sent(open_ns: httpx.Client) -> None:
    """Every form the node agent honours is 201, and a GET gives back the env, envFrom and volumes as sent
    (``projected`` is kept: the Volume schema keeps fields it does not list)."""
    container = _supported_container()
    pod = _pod(container, copy.deepcopy(SUPPORTED_VOLUMES))
    pod["metadata"] = {"name": "p", "labels": {"app": "a"}, "annotations": {"example.com/owner": "me"}}
    created = open_ns.post(PODS, json=pod)
    assert created.status_code == 201, created.text
    got = open_ns.get(f"{PODS}/p")
    assert got.status_code == 200
    spec = got.json()["spec"]
    assert spec["volumes"] == SUPPORTED_VOLUMES
    assert spec["containers"][0]["env"] == container["env"]
    assert spec["containers"][0]["envFrom"] == container["envFrom"]


def test_a_volume_without_a_source_is_still_accepted(open_ns: httpx.Client) -> None:
    """A volume naming no source (Kubernetes defaults it to ``emptyDir``) is accepted as before; a source set
    to null counts as unset."""
    pod = _pod(volumes=[{"name": "v"}, {"name": "w", "configMap": None}])
    created = open_ns.post(PODS, json=pod)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_a_workload_template_is_checked_like_a_pod(open_ns: httpx.Client, kind: str) -> None:
    """A Deployment's or ReplicaSet's pod template gets the same checks, named under ``spec.template.spec``;
    nothing is stored; the supported forms are accepted."""
    url = DEPLOYMENTS if kind == "Deployment" else REPLICASETS
    refused = _workload(
        kind,
        {"env": [{"name": "M", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}}]},
        [{"name": "v", "configMap": {}}, {"name": "p", "projected": {"sources": [{"downwardAPI": {}}]}}],
    )
    _assert_invalid(
        open_ns.post(url, json=refused),
        [
            "spec.template.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
            "spec.template.spec.volumes[0].configMap.name",
            "spec.template.spec.volumes[1].projected.sources[0].downwardAPI",
        ],
    )
    assert open_ns.get(f"{url}/w").status_code == 404
    accepted = _workload(kind, _supported_container(), copy.deepcopy(SUPPORTED_VOLUMES))
    created = open_ns.post(url, json=accepted)
    assert created.status_code == 201, created.text
    assert open_ns.get(f"{url}/w").json()["spec"]["template"]["spec"]["volumes"] == SUPPORTED_VOLUMES


def test_a_patch_into_a_refused_source_is_422_and_changes_nothing(open_ns: httpx.Client) -> None:
    """An update (merge patch) of a Deployment's template to a refused source is 422 naming it; the stored
    object keeps its old template."""
    deploy = _workload("Deployment", {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})
    assert open_ns.post(DEPLOYMENTS, json=deploy).status_code == 201
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "c", "image": "busybox", "envFrom": [{"configMapRef": {}}]}],
                    "volumes": [{"name": "v", "downwardAPI": {}}],
                }
            }
        }
    }
    _assert_invalid(
        open_ns.patch(f"{DEPLOYMENTS}/w", json=patch, headers=MERGE),
        ["spec.template.spec.containers[0].envFrom[0].configMapRef.name", "spec.template.spec.volumes[0].downwardAPI"],
    )
    stored = open_ns.get(f"{DEPLOYMENTS}/w").json()["spec"]["template"]["spec"]
    assert "volumes" not in stored
    assert stored["containers"][0]["env"] == deploy["spec"]["template"]["spec"]["containers"][0]["env"]


def test_unknown_fields_inside_a_source_follow_field_validation(open_ns: httpx.Client) -> None:
    """An unknown field inside a supported source is 422 by default (dockyard's default is stricter than the
    apiserver's ``Warn``), 400 under ``Strict``, dropped with a warning under ``Warn``."""
    pod = _pod(
        {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "bogus": 1}}}]},
        [{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "k", "extra": True}]}}],
    )
    fields = [f"{ENV}.valueFrom.secretKeyRef.bogus", f"{VOL}.secret.items[0].extra"]
    _assert_invalid(open_ns.post(PODS, json=pod), fields)
    strict = open_ns.post(PODS, json=pod, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400, strict.text
    message = strict.json()["message"]
    assert all(f'unknown field "{f}"' in message for f in fields), message
    assert open_ns.get(f"{PODS}/p").status_code == 404
    warned = open_ns.post(PODS, json=pod, params={"fieldValidation": "Warn"})
    assert warned.status_code == 201, warned.text
    spec = open_ns.get(f"{PODS}/p").json()["spec"]
    assert spec["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "k"}
    assert spec["volumes"][0]["secret"]["items"] == [{"key": "k", "path": "k"}]
    assert len(warned.headers.get_list("warning")) == 2


MALFORMED: list[tuple[str, dict[str, Any], list[Any] | None, str]] = [
    ("secretRef not an object", {"envFrom": [{"secretRef": "s"}]}, None, f"{ENV_FROM}.secretRef"),
    ("fieldPath not a string", _env({"fieldRef": {"fieldPath": 5}}), None, f"{ENV}.valueFrom.fieldRef.fieldPath"),
    ("projected sources not a list", {}, [{"name": "v", "projected": {"sources": "s"}}], f"{VOL}.projected.sources"),
    (
        "projected source not an object",
        {},
        [{"name": "v", "projected": {"sources": [7]}}],
        f"{VOL}.projected.sources[0]",
    ),
    (
        "secret item not an object",
        {},
        [{"name": "v", "secret": {"secretName": "s", "items": [1]}}],
        f"{VOL}.secret.items[0]",
    ),
    (
        "defaultMode a boolean",
        {},
        [{"name": "v", "secret": {"secretName": "s", "defaultMode": True}}],
        f"{VOL}.secret.defaultMode",
    ),
]


@pytest.mark.parametrize(("container", "volumes", "field"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_sources_are_422_not_500(
    open_ns: httpx.Client, container: dict[str, Any], volumes: list[Any] | None, field: str
) -> None:
    """Shapes the schema subset does not type (``envFrom``, the insides of ``valueFrom``, ``secret`` and
    ``projected``) are checked by validation: 422 ``FieldValueInvalid`` naming the field, never a server error."""
    body = _assert_invalid(open_ns.post(PODS, json=_pod(container, volumes)), [field])
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"
    assert open_ns.get(f"{PODS}/p").status_code == 404


def test_an_env_from_item_that_is_no_object_is_a_decode_error(open_ns: httpx.Client) -> None:
    """``envFrom`` is typed by the schema (an array of objects), so a string item is kube-apiserver's decode
    error: 400 naming the Go struct field, never a server error; nothing is stored."""
    resp = open_ns.post(PODS, json=_pod({"envFrom": ["s"]}))
    assert resp.status_code == 400, resp.text
    assert "spec.containers[0].envFrom[0]" in resp.json()["message"]
    assert open_ns.get(f"{PODS}/p").status_code == 404


BAD_ENV_NAMES = [
    ("empty", "", "FieldValueRequired", "Required value"),
    ("an equals sign", "A=B", "FieldValueInvalid", "printable ASCII characters other than '='"),
    ("a newline", "A\nB", "FieldValueInvalid", "printable ASCII characters other than '='"),
    ("not ASCII", "caf\u00e9", "FieldValueInvalid", "printable ASCII characters other than '='"),
]


@pytest.mark.parametrize(("name", "reason", "words"), [b[1:] for b in BAD_ENV_NAMES], ids=[b[0] for b in BAD_ENV_NAMES])
def test_an_env_name_the_environment_cannot_hold_is_422(
    open_ns: httpx.Client, name: str, reason: str, words: str
) -> None:
    """``env[].name`` (Kubernetes ``validateEnv``, with the relaxed rule of KEP-4369, on by default since 1.32): required,
    and printable ASCII other than '=' (an '=' would split the variable). A plain ``value`` is checked as a
    ``valueFrom`` one is; nothing is stored, on a Pod or a workload template."""
    container = {"env": [{"name": "OK", "value": "1"}, {"name": name, "value": "x"}]}
    body = _assert_invalid(open_ns.post(PODS, json=_pod(container)), ["spec.containers[0].env[1].name"])
    cause = body["details"]["causes"][0]
    assert cause["reason"] == reason and words in cause["message"], cause
    assert open_ns.get(f"{PODS}/p").status_code == 404
    body = _assert_invalid(
        open_ns.post(DEPLOYMENTS, json=_workload("Deployment", container)),
        ["spec.template.spec.containers[0].env[1].name"],
    )


def test_relaxed_env_names_are_accepted(open_ns: httpx.Client) -> None:
    """Names the relaxed rule allows and the older C-identifier rule did not (a leading digit, a space, a colon) are
    stored as sent; so is a name given twice (Kubernetes warns, the last one wins)."""
    env = [
        {"name": "1ST", "value": "a"},
        {"name": "with space", "value": "b"},
        {"name": "a:b", "value": "c"},
        {"name": "A", "value": "1"},
        {"name": "A", "value": "2"},
    ]
    resp = open_ns.post(PODS, json=_pod({"env": env}))
    assert resp.status_code == 201, resp.text
    assert resp.json()["spec"]["containers"][0]["env"] == env
