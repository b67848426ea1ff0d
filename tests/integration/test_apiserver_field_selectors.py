"""Field selectors read the value Kubernetes would hold after defaulting, not only what is stored.

dockyard stores built-in objects without Kubernetes' defaults. Kubernetes selects on the defaulted object
(``PodToSelectableFields`` in ``pkg/registry/core/pod/strategy.go`` after ``SetDefaults_PodSpec`` in
``pkg/apis/core/v1/defaults.go``, the ServiceAccount admission plugin and the pod strategy's
``PrepareForCreate``): a pod without ``restartPolicy`` is ``Always``, without ``schedulerName`` is
``default-scheduler``, without ``hostNetwork`` is ``false``, without ``serviceAccountName`` is ``default``,
without a status is ``Pending``; a ReplicaSet without ``status.replicas`` has ``0``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

PODS = "/api/v1/namespaces/default/pods"
RS = "/apis/apps/v1/namespaces/default/replicasets"
MERGE = {"Content-Type": "application/merge-patch+json"}
DEFAULTED = 20


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def _names(api: httpx.Client, url: str, selector: str, **params: str) -> list[str]:
    resp = api.get(url, params={"fieldSelector": selector, **params})
    assert resp.status_code == 200, resp.text
    return sorted(i["metadata"]["name"] for i in resp.json()["items"])


def _pods(api: httpx.Client) -> None:
    for i in range(DEFAULTED):
        assert api.post(PODS, json=_pod(f"d{i:02}")).status_code == 201
    explicit = _pod(
        "explicit",
        restartPolicy="Never",
        schedulerName="default-scheduler",
        hostNetwork=False,
        serviceAccountName="robot",
    )
    assert api.post(PODS, json=explicit).status_code == 201, api.post(PODS, json=explicit).text


def test_pod_field_selectors_use_kubernetes_defaults(api: httpx.Client) -> None:
    _pods(api)
    defaulted = [f"d{i:02}" for i in range(DEFAULTED)]
    everyone = sorted([*defaulted, "explicit"])
    for extra in ({}, {"limit": "500"}, {"resourceVersion": "0"}):  # the watch cache, SQLite, the cache again
        assert _names(api, PODS, "spec.restartPolicy=Always", **extra) == defaulted
        assert _names(api, PODS, "spec.restartPolicy!=Always", **extra) == ["explicit"]
        assert _names(api, PODS, "spec.restartPolicy=Never", **extra) == ["explicit"]
        assert _names(api, PODS, "spec.schedulerName=default-scheduler", **extra) == everyone
        assert _names(api, PODS, "spec.schedulerName!=default-scheduler", **extra) == []
        assert _names(api, PODS, "spec.hostNetwork=false", **extra) == everyone
        assert _names(api, PODS, "spec.hostNetwork!=false", **extra) == []
        assert _names(api, PODS, "spec.serviceAccountName=default", **extra) == defaulted
        assert _names(api, PODS, "spec.serviceAccountName=robot", **extra) == ["explicit"]
        assert _names(api, PODS, "status.phase=Pending", **extra) == everyone
        assert _names(api, PODS, "spec.nodeName=", **extra) == everyone  # no default: unset is ""


def test_stored_pods_keep_what_the_client_sent(api: httpx.Client) -> None:
    assert api.post(PODS, json=_pod("p")).status_code == 201
    spec = api.get(f"{PODS}/p").json()["spec"]
    assert spec == {"containers": [{"name": "c", "image": "busybox"}]}


def test_status_phase_pending_until_the_agent_reports(api: httpx.Client) -> None:
    assert api.post(PODS, json=_pod("a")).status_code == 201
    assert api.post(PODS, json=_pod("b")).status_code == 201
    assert api.patch(f"{PODS}/a/status", json={"status": {"phase": "Running"}}, headers=MERGE).status_code == 200
    assert _names(api, PODS, "status.phase=Pending") == ["b"]
    assert _names(api, PODS, "status.phase!=Pending") == ["a"]


def test_watch_reports_a_pod_leaving_a_defaulted_selector(api: httpx.Client) -> None:
    """The previous state travels as a selectable view: its defaulted value decides ``DELETED``."""
    assert api.post(PODS, json=_pod("w")).status_code == 201
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    assert api.patch(f"{PODS}/w/status", json={"status": {"phase": "Running"}}, headers=MERGE).status_code == 200
    events = []
    params = {"watch": "true", "timeoutSeconds": "3", "resourceVersion": rv, "fieldSelector": "status.phase=Pending"}
    with api.stream("GET", PODS, params=params) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.strip():
                events.append(json.loads(line))
                break
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "w")]


def test_replicaset_status_replicas_defaults_to_zero(api: httpx.Client) -> None:
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "r"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "r"}},
            "template": {"metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "c", "image": "b"}]}},
        },
    }
    assert api.post(RS, json=rs).status_code == 201
    assert _names(api, RS, "status.replicas=0") == ["r"]
    assert _names(api, RS, "status.replicas!=0") == []
