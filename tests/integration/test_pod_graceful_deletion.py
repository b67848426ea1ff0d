"""Graceful deletion of pods by the API server (kube-apiserver's pod strategy ``CheckGracefulDelete`` and
``rest.BeforeDelete``), over HTTPS against the real server; the node's part is in ``tests/e2e``.

A pod bound to a node and not finished stays after a ``DELETE``, with ``deletionTimestamp`` = now + its grace
period; only its node (or a delete with grace period 0) removes it. Before this, every pod left the API at
once, so a Service kept no chance to drop it before its containers got SIGTERM, and kubectl's Terminating
never showed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api import timefmt

from .conftest import ApiServer
from .test_apiserver_kubectl import Kubectl

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


def pod(name: str, *, node: str | None = "node-1", grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(autouse=True)
def node_1(api: httpx.Client) -> None:
    """The Node the pods are bound to (a pod bound to no existing Node is removed at once)."""
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}
    assert api.post("/api/v1/nodes", json=body).status_code in (201, 409)


def _delete(api: httpx.Client, name: str, **params: str) -> httpx.Response:
    resp = api.delete(f"{PODS}/{name}", params=params)
    assert resp.status_code == 200, resp.text
    return resp


def test_a_bound_pod_is_marked_with_its_grace_period_and_stays(api: httpx.Client) -> None:
    assert api.post(PODS, json=pod("web")).status_code == 201
    before = time.time()
    marked = _delete(api, "web").json()
    meta = marked["metadata"]
    assert marked["kind"] == "Pod" and meta["deletionGracePeriodSeconds"] == 30
    assert before + 29 <= timefmt.parse(meta["deletionTimestamp"]) <= time.time() + 31
    assert api.get(f"{PODS}/web").json()["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    # deleting again changes nothing (never later), a shorter grace period moves it closer, 0 removes it
    again = _delete(api, "web").json()
    assert again["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert _delete(api, "web", gracePeriodSeconds="60").json()["metadata"]["deletionGracePeriodSeconds"] == 30
    shorter = _delete(api, "web", gracePeriodSeconds="5").json()["metadata"]
    assert shorter["deletionGracePeriodSeconds"] == 5
    assert timefmt.parse(shorter["deletionTimestamp"]) < timefmt.parse(meta["deletionTimestamp"])
    _delete(api, "web", gracePeriodSeconds="0")
    assert api.get(f"{PODS}/web").status_code == 404


def test_the_grace_period_comes_from_the_request_else_the_pod(api: httpx.Client) -> None:
    assert api.post(PODS, json=pod("short", grace=3)).status_code == 201
    assert _delete(api, "short").json()["metadata"]["deletionGracePeriodSeconds"] == 3
    assert api.post(PODS, json=pod("asked")).status_code == 201
    assert _delete(api, "asked", gracePeriodSeconds="12").json()["metadata"]["deletionGracePeriodSeconds"] == 12
    assert api.post(PODS, json=pod("negative")).status_code == 201
    assert _delete(api, "negative", gracePeriodSeconds="-5").json()["metadata"]["deletionGracePeriodSeconds"] == 1


def test_a_pod_no_node_runs_goes_at_once(api: httpx.Client) -> None:
    assert api.post(PODS, json=pod("unbound", node=None)).status_code == 201
    _delete(api, "unbound")
    assert api.get(f"{PODS}/unbound").status_code == 404
    for phase in ("Succeeded", "Failed"):
        name = phase.lower()
        assert api.post(PODS, json=pod(name)).status_code == 201
        status = {"status": {"phase": phase}}
        assert api.patch(f"{PODS}/{name}/status", json=status, headers=MERGE).status_code == 200
        _delete(api, name)
        assert api.get(f"{PODS}/{name}").status_code == 404


def test_every_propagation_policy_deletes_a_pod_gracefully(api: httpx.Client) -> None:
    """``kubectl delete pod --cascade=orphan|foreground``: the policy is about the pod's dependents, not its grace."""
    for policy in ("Orphan", "Foreground"):
        name = policy.lower()
        assert api.post(PODS, json=pod(name)).status_code == 201
        assert _delete(api, name, propagationPolicy=policy).json()["metadata"]["deletionGracePeriodSeconds"] == 30
        _delete(api, name, gracePeriodSeconds="0")
        assert api.get(f"{PODS}/{name}").status_code == 404


def test_an_orphaned_pods_dependents_stay(api: httpx.Client) -> None:
    owner = api.post(PODS, json=pod("owner")).json()
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner["metadata"]["uid"]}
    made = api.post(
        "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "dep", "ownerReferences": [ref]}}
    )
    assert made.status_code == 201, made.text
    _delete(api, "owner", propagationPolicy="Orphan")
    _delete(api, "owner", gracePeriodSeconds="0")  # its node, done
    kept = api.get("/api/v1/namespaces/default/configmaps/dep")
    assert kept.status_code == 200 and "ownerReferences" not in kept.json()["metadata"], kept.text


def test_a_collection_delete_is_graceful_per_pod(api: httpx.Client) -> None:
    for name, node in (("c-bound", "node-1"), ("c-unbound", None)):
        body = pod(name, node=node)
        body["metadata"]["labels"] = {"batch": "c"}
        assert api.post(PODS, json=body).status_code == 201
    assert api.delete(PODS, params={"labelSelector": "batch=c"}).status_code == 200
    assert api.get(f"{PODS}/c-bound").json()["metadata"]["deletionGracePeriodSeconds"] == 30
    assert api.get(f"{PODS}/c-unbound").status_code == 404


def test_finalizers_hold_a_pod_after_its_node_is_done(api: httpx.Client) -> None:
    body = pod("held")
    body["metadata"]["finalizers"] = ["example.com/keep"]
    assert api.post(PODS, json=body).status_code == 201
    assert _delete(api, "held").json()["metadata"]["deletionGracePeriodSeconds"] == 30
    marked = _delete(api, "held", gracePeriodSeconds="0").json()["metadata"]
    assert marked["deletionGracePeriodSeconds"] == 0 and marked["finalizers"] == ["example.com/keep"]
    assert api.patch(f"{PODS}/held", json={"metadata": {"finalizers": None}}, headers=MERGE).status_code == 200
    assert api.get(f"{PODS}/held").status_code == 404


def test_kubectl_shows_terminating_and_force_removes(apiserver: ApiServer, api: httpx.Client, tmp_path: Path) -> None:
    kubectl = Kubectl(apiserver, tmp_path)
    assert api.post(PODS, json=pod("kc")).status_code == 201

    deleted = kubectl.run("delete", "pod", "kc", "--wait=false", check=False)
    assert deleted.returncode == 0 and 'pod "kc" deleted' in deleted.stdout, deleted.stderr
    shown = kubectl.run("get", "pod", "kc", "--no-headers", check=False)
    assert shown.returncode == 0 and "Terminating" in shown.stdout, shown.stdout + shown.stderr
    forced = kubectl.run("delete", "pod", "kc", "--force", "--grace-period=0", check=False)
    assert forced.returncode == 0, forced.stderr
    assert api.get(f"{PODS}/kc").status_code == 404


def test_a_pod_bound_to_a_node_that_does_not_exist_goes_at_once(api: httpx.Client) -> None:
    """No node will ever stop it (kube-controller-manager's PodGC removes such pods too)."""
    assert api.post(PODS, json=pod("stray", node="no-such-node")).status_code == 201
    _delete(api, "stray")
    assert api.get(f"{PODS}/stray").status_code == 404


def _owned_by(api: httpx.Client, owner: dict[str, Any], name: str, **kwargs: Any) -> None:
    """Create pod ``name`` as a dependent of ``owner`` (a stored object), blocking its owner's deletion."""
    body = pod(name, **kwargs)
    ref = {k: owner[k] for k in ("apiVersion", "kind")}
    ref.update(name=owner["metadata"]["name"], uid=owner["metadata"]["uid"], blockOwnerDeletion=True)
    body["metadata"]["ownerReferences"] = [ref]
    assert api.post(PODS, json=body).status_code == 201


def _configmap(api: httpx.Client, name: str) -> dict[str, Any]:
    resp = api.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": name}})
    assert resp.status_code == 201, resp.text
    owner: dict[str, Any] = resp.json()
    return owner


def test_the_garbage_collector_deletes_a_running_dependent_pod_gracefully(api: httpx.Client) -> None:
    """``kubectl delete deployment`` (Background): the pods show Terminating with their own grace period while
    their node stops them, as the garbage collector's delete is a pod's delete; the owner goes at once."""
    owner = _configmap(api, "owner-bg")
    _owned_by(api, owner, "dep-bound", grace=7)
    _owned_by(api, owner, "dep-unbound", node=None)
    assert api.delete("/api/v1/namespaces/default/configmaps/owner-bg").status_code == 200
    assert api.get("/api/v1/namespaces/default/configmaps/owner-bg").status_code == 404
    meta = api.get(f"{PODS}/dep-bound").json()["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 7 and meta["deletionTimestamp"]
    assert api.get(f"{PODS}/dep-unbound").status_code == 404  # nothing runs it: gone at once
    _delete(api, "dep-bound", gracePeriodSeconds="0")  # its node, done
    assert api.get(f"{PODS}/dep-bound").status_code == 404


def test_a_foreground_owner_waits_for_its_pods_to_stop(api: httpx.Client) -> None:
    """Foreground: the owner keeps ``foregroundDeletion`` until its node has removed its last blocking pod."""
    owner = _configmap(api, "owner-fg")
    _owned_by(api, owner, "fg-pod")
    path = "/api/v1/namespaces/default/configmaps/owner-fg"
    assert api.delete(path, params={"propagationPolicy": "Foreground"}).status_code == 200
    assert api.get(path).json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert api.get(f"{PODS}/fg-pod").json()["metadata"]["deletionGracePeriodSeconds"] == 30
    _delete(api, "fg-pod", gracePeriodSeconds="0")
    assert api.get(f"{PODS}/fg-pod").status_code == 404
    assert api.get(path).status_code == 404
