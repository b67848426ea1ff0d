"""Kubernetes API semantics over HTTPS: field selectors, list options, streaming lists, deletion, field validation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from dockyard.apiserver import handlers

PODS = "/api/v1/namespaces/default/pods"
EVENTS = "/api/v1/namespaces/default/events"
RS = "/apis/apps/v1/namespaces/default/replicasets"
BCS = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
MERGE = {"Content-Type": "application/merge-patch+json"}


def pod(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **meta},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def owner_ref(obj: dict[str, Any], *, block: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": block,
    }


def replicaset(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def stream(api: httpx.Client, url: str, params: dict[str, str], count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with api.stream("GET", url, params={"watch": "true", "timeoutSeconds": "5", **params}) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.strip():
                out.append(json.loads(line))
            if len(out) >= count:
                break
    return out


# ------------------------------------------------------------------ field selectors


def test_field_selectors_per_kind(api: httpx.Client) -> None:
    api.post(PODS, json=pod("a"))
    api.post(PODS, json=pod("b"))
    api.patch(f"{PODS}/a/status", json={"status": {"phase": "Running"}}, headers=MERGE)
    names = lambda resp: [i["metadata"]["name"] for i in resp.json()["items"]]  # noqa: E731
    assert names(api.get(PODS, params={"fieldSelector": "status.phase=Running"})) == ["a"]
    assert names(api.get(PODS, params={"fieldSelector": "metadata.name!=a,spec.nodeName="})) == ["b"]
    bad = api.get(PODS, params={"fieldSelector": "spec.containers=x"})
    assert bad.status_code == 400 and bad.json()["message"] == "field label not supported: spec.containers"
    assert api.get(BCS, params={"fieldSelector": "spec.runPolicy=Serial"}).status_code == 400
    event = {
        "metadata": {"name": "a.1"},
        "involvedObject": {"kind": "Pod", "name": "a", "namespace": "default", "uid": "u1"},
        "reason": "Started",
        "message": "m",
        "type": "Normal",
        "source": {"component": "kubelet"},
    }
    assert api.post(EVENTS, json=event).status_code == 201
    selector = "involvedObject.name=a,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=u1"
    assert names(api.get(EVENTS, params={"fieldSelector": selector})) == ["a.1"]
    assert names(api.get(EVENTS, params={"fieldSelector": "source=kubelet,type=Normal"})) == ["a.1"]
    assert names(api.get(EVENTS, params={"fieldSelector": "involvedObject.name=b"})) == []


def test_watch_with_field_selector_sees_objects_leave(api: httpx.Client) -> None:
    rv = api.post(PODS, json=pod("a")).json()["metadata"]["resourceVersion"]
    api.patch(f"{PODS}/a/status", json={"status": {"phase": "Running"}}, headers=MERGE)
    api.patch(f"{PODS}/a/status", json={"status": {"phase": "Succeeded"}}, headers=MERGE)
    events = stream(api, PODS, {"resourceVersion": rv, "fieldSelector": "status.phase=Running"}, 2)
    assert [(e["type"], e["object"]["status"]["phase"]) for e in events] == [
        ("ADDED", "Running"),
        ("DELETED", "Succeeded"),
    ]


# ------------------------------------------------------------------ lists


def test_pages_report_the_first_pages_revision_and_remaining_count(api: httpx.Client) -> None:
    for i in range(5):
        api.post(PODS, json=pod(f"p{i}"))
    first = api.get(PODS, params={"limit": 2}).json()
    assert first["metadata"]["remainingItemCount"] == 3
    api.post(PODS, json=pod("p9"))
    second = api.get(PODS, params={"limit": 2, "continue": first["metadata"]["continue"]}).json()
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in second["items"]] == ["p2", "p3"]


def test_resource_version_match(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    current = api.get(PODS).json()["metadata"]["resourceVersion"]
    assert api.get(PODS, params={"resourceVersion": current, "resourceVersionMatch": "Exact"}).status_code == 200
    assert api.get(PODS, params={"resourceVersion": "1", "resourceVersionMatch": "NotOlderThan"}).status_code == 200
    api.post(PODS, json=pod("x"))
    old = api.get(PODS, params={"resourceVersion": current, "resourceVersionMatch": "Exact"})
    assert old.status_code == 410 and old.json()["reason"] == "Expired"
    invalid = api.get(PODS, params={"resourceVersionMatch": "Exact"})
    assert invalid.status_code == 422 and "resourceVersionMatch" in invalid.json()["message"]
    monkeypatch.setattr(handlers, "CATCH_UP_SECONDS", 0.2)
    future = api.get(PODS, params={"resourceVersion": str(int(current) + 1000), "resourceVersionMatch": "NotOlderThan"})
    assert future.status_code == 504
    assert future.json()["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_send_initial_events_ends_with_an_annotated_bookmark(api: httpx.Client) -> None:
    api.post(PODS, json=pod("a"))
    api.post(PODS, json=pod("b"))
    params = {
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
        "resourceVersion": "",
    }
    events = stream(api, PODS, params, 3)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:2]] == [("ADDED", "a"), ("ADDED", "b")]
    assert events[2]["type"] == "BOOKMARK"
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    current = api.get(PODS).json()["metadata"]["resourceVersion"]
    assert events[2]["object"]["metadata"]["resourceVersion"] == current


# ------------------------------------------------------------------ deletion


def test_background_deletion_removes_dependents(api: httpx.Client) -> None:
    owner = api.post(RS, json=replicaset("web")).json()
    api.post(PODS, json=pod("d1", ownerReferences=[owner_ref(owner)]))
    assert api.delete(f"{RS}/web").status_code == 200
    assert api.get(f"{PODS}/d1").status_code == 404


def test_orphan_deletion_keeps_dependents_without_the_reference(api: httpx.Client) -> None:
    owner = api.post(RS, json=replicaset("web")).json()
    api.post(PODS, json=pod("d1", ownerReferences=[owner_ref(owner)]))
    assert api.delete(f"{RS}/web", params={"propagationPolicy": "Orphan"}).status_code == 200
    kept = api.get(f"{PODS}/d1").json()
    assert "ownerReferences" not in kept["metadata"]


def test_foreground_deletion_waits_for_blocking_dependents(api: httpx.Client) -> None:
    owner = api.post(RS, json=replicaset("web")).json()
    api.post(PODS, json=pod("held", ownerReferences=[owner_ref(owner)], finalizers=["example.com/hold"]))
    api.post(PODS, json=pod("free", ownerReferences=[owner_ref(owner)]))
    resp = api.request(
        "DELETE", f"{RS}/web", json={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
    )
    assert resp.status_code == 200
    waiting = api.get(f"{RS}/web").json()
    assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert waiting["metadata"]["deletionTimestamp"]
    assert api.get(f"{PODS}/free").status_code == 404
    held = api.get(f"{PODS}/held").json()
    assert held["metadata"]["deletionTimestamp"]
    assert api.patch(f"{PODS}/held", json={"metadata": {"finalizers": None}}, headers=MERGE).status_code == 200
    assert api.get(f"{PODS}/held").status_code == 404
    assert api.get(f"{RS}/web").status_code == 404


def bound(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (a pod) bound to the Node ``node-1``, made if missing: deleting it is graceful
    (``tests/integration/test_pod_graceful_deletion.py``)."""
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}
    assert api.post("/api/v1/nodes", json=node).status_code in (201, 409)
    body["spec"]["nodeName"] = "node-1"
    return body


def test_finalizers_and_grace_period(api: httpx.Client) -> None:
    api.post(PODS, json=pod("f", finalizers=["example.com/x"]))
    marked = api.delete(f"{PODS}/f", params={"gracePeriodSeconds": "7"}).json()
    # nothing runs an unscheduled pod: no grace period, only its finalizers hold it (kube-apiserver alike)
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert api.delete(f"{PODS}/f", params={"propagationPolicy": "Sideways"}).status_code == 400
    api.patch(f"{PODS}/f", json={"metadata": {"finalizers": []}}, headers=MERGE)
    assert api.get(f"{PODS}/f").status_code == 404
    # a pod in graceful deletion stays while its grace period is pending, finalizers or not, until its node is done
    api.post(PODS, json=bound(api, pod("g", finalizers=["example.com/x"])))
    marked = api.delete(f"{PODS}/g", params={"gracePeriodSeconds": "7"}).json()
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 7
    api.patch(f"{PODS}/g", json={"metadata": {"finalizers": []}}, headers=MERGE)
    assert api.patch(f"{PODS}/g/status", json={"status": {"phase": "Running"}}, headers=MERGE).status_code == 200
    assert api.get(f"{PODS}/g").status_code == 200
    assert api.delete(f"{PODS}/g", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert api.get(f"{PODS}/g").status_code == 404


def test_a_collection_delete_honours_its_delete_options_for_each_item(api: httpx.Client) -> None:
    """``DELETE`` on a collection applies its ``DeleteOptions`` to every item, as the apiserver's
    ``DeleteCollection`` does (found by an audit: ``gracePeriodSeconds`` and the body's options were dropped)."""
    owner = api.post(RS, json=replicaset("coll")).json()
    for name in ("c1", "c2"):
        body = bound(api, pod(name, finalizers=["example.com/x"]))
        body["metadata"]["labels"] = {"batch": "one"}
        assert api.post(PODS, json=body).status_code == 201
    child = pod("child", ownerReferences=[owner_ref(owner)])
    assert api.post(PODS, json=child).status_code == 201
    resp = api.delete(PODS, params={"labelSelector": "batch=one", "gracePeriodSeconds": "9"})
    assert resp.status_code == 200, resp.text
    for name in ("c1", "c2"):
        marked = api.get(f"{PODS}/{name}").json()["metadata"]
        assert marked["deletionTimestamp"] and marked["deletionGracePeriodSeconds"] == 9, marked
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": True}
    resp = api.request("DELETE", RS, params={"fieldSelector": "metadata.name=coll"}, json=options)
    assert resp.status_code == 200, resp.text
    assert api.get(f"{RS}/coll").status_code == 404
    assert "ownerReferences" not in api.get(f"{PODS}/child").json()["metadata"]  # orphaned, not collected
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}
    assert api.post(PODS, json=pod("kept")).status_code == 201
    assert api.request("DELETE", PODS, params={"fieldSelector": "metadata.name=kept"}, json=options).status_code == 200
    assert api.get(f"{PODS}/kept").status_code == 200
    for name in ("c1", "c2"):
        api.patch(f"{PODS}/{name}", json={"metadata": {"finalizers": []}}, headers=MERGE)


# ------------------------------------------------------------------ field validation


def test_field_validation_modes(api: httpx.Client) -> None:
    bc = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": "hello"},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
            "bogus": 1,
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:latest"}},
        },
    }
    assert api.post(BCS, json=bc).status_code == 422
    strict = api.post(BCS, json=bc, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert strict.json()["message"] == (
        'BuildConfig in version "v1alpha1" cannot be handled as a BuildConfig: '
        'strict decoding error: unknown field "spec.bogus"'
    )
    warned = api.post(BCS, json=bc, params={"fieldValidation": "Warn"})
    assert warned.status_code == 201 and "bogus" not in warned.json()["spec"]
    assert warned.headers.get_list("warning") == ['299 - "unknown field \\"spec.bogus\\""']
    ignored = api.put(f"{BCS}/hello", json=bc, params={"fieldValidation": "Ignore"})
    assert ignored.status_code == 200 and "warning" not in ignored.headers
    assert api.post(BCS, json=bc, params={"fieldValidation": "Loose"}).status_code == 400


# ------------------------------------------------------------------ patch types


def test_patch_types_per_kind(api: httpx.Client) -> None:
    bc = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": "hello"},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:latest"}},
        },
    }
    api.post(BCS, json=bc)
    smp = {"Content-Type": "application/strategic-merge-patch+json"}
    refused = api.patch(f"{BCS}/hello", json={"spec": {"runPolicy": "Parallel"}}, headers=smp)
    assert refused.status_code == 415 and refused.json()["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in refused.json()["message"]
    ssa = api.patch(f"{BCS}/hello", content=b"spec: {}", headers={"Content-Type": "application/apply-patch+yaml"})
    assert ssa.status_code == 415
    json_patch = [{"op": "replace", "path": "/spec/runPolicy", "value": "Parallel"}]
    assert (
        api.patch(f"{BCS}/hello", json=json_patch, headers={"Content-Type": "application/json-patch+json"}).json()[
            "spec"
        ]["runPolicy"]
        == "Parallel"
    )
    api.post(PODS, json=pod("web", finalizers=["a"]))
    out = api.patch(
        f"{PODS}/web",
        json={"metadata": {"finalizers": ["b"]}, "spec": {"containers": [{"name": "c", "args": ["x"]}]}},
        headers=smp,
    ).json()
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert out["spec"]["containers"] == [{"name": "c", "image": "busybox", "args": ["x"]}]
    api.patch(f"{PODS}/web", json={"metadata": {"finalizers": None}}, headers=MERGE)


def test_objects_created_for_a_deleted_owner_are_collected(api: httpx.Client) -> None:
    owner = api.post(RS, json=replicaset("web")).json()
    api.delete(f"{RS}/web")
    late = api.post(PODS, json=pod("late", ownerReferences=[owner_ref(owner)]))
    assert late.status_code == 201
    assert api.get(f"{PODS}/late").status_code == 404
    foreign = {"apiVersion": "example.com/v1", "kind": "Thing", "name": "x", "uid": "u-x"}
    assert api.post(PODS, json=pod("kept", ownerReferences=[foreign])).status_code == 201
    assert api.get(f"{PODS}/kept").status_code == 200
