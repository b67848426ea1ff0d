"""Deleting a Namespace, as Kubernetes' namespace lifecycle does it (the namespace controller's
``deleteAllContent`` and the ``NamespaceLifecycle`` admission plugin), over HTTPS against the real server.

The Namespace turns ``Terminating`` (``deletionTimestamp``, ``status.phase``) while what it holds is deleted:
its running pods gracefully (their node stops them, then removes them with grace period 0), objects with
finalizers once those are cleared. Nothing new may be created in it meanwhile (403, cause
``NamespaceTerminating``), and it goes with its last object. Before this, a Namespace took everything in it
at once, a running pod included, and its containers were stopped afterwards with nothing to show for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ApiServer
from .test_apiserver_kubectl import Kubectl

NS = "team"
NAMESPACES = "/api/v1/namespaces"
PODS = f"{NAMESPACES}/{NS}/pods"
CONFIGMAPS = f"{NAMESPACES}/{NS}/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(autouse=True)
def namespace(api: httpx.Client) -> None:
    """Node ``node-1`` (a pod bound to no existing Node goes at once) and the namespace ``team``."""
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}
    assert api.post("/api/v1/nodes", json=node).status_code in (201, 409)
    assert api.post(NAMESPACES, json={"metadata": {"name": NS}}).status_code == 201


def _pod(name: str, *, node: str | None = "node-1") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _delete_namespace(api: httpx.Client) -> dict[str, Any]:
    resp = api.delete(f"{NAMESPACES}/{NS}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Namespace" and body["status"]["phase"] == "Terminating", body
    return body


def test_a_namespace_with_a_running_pod_is_terminating_until_its_node_removes_it(api: httpx.Client) -> None:
    assert api.post(PODS, json=_pod("web")).status_code == 201
    assert api.post(PODS, json=_pod("pending", node=None)).status_code == 201
    assert api.post(CONFIGMAPS, json={"metadata": {"name": "settings"}}).status_code == 201
    _delete_namespace(api)
    shown = api.get(f"{NAMESPACES}/{NS}").json()
    assert shown["status"]["phase"] == "Terminating" and shown["metadata"]["deletionTimestamp"]
    assert api.get(f"{PODS}/web").json()["metadata"]["deletionGracePeriodSeconds"] == 30
    assert api.get(f"{PODS}/pending").status_code == 404  # nothing runs it
    assert api.get(f"{CONFIGMAPS}/settings").status_code == 404
    # the node is done with the pod: the namespace goes with it
    assert api.delete(f"{PODS}/web", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert api.get(f"{NAMESPACES}/{NS}").status_code == 404


def test_nothing_new_is_created_in_a_terminating_namespace(api: httpx.Client) -> None:
    assert api.post(PODS, json=_pod("web")).status_code == 201
    _delete_namespace(api)
    refused = api.post(CONFIGMAPS, json={"metadata": {"name": "late"}})
    assert refused.status_code == 403, refused.text
    status = refused.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace team because it is being terminated'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "NamespaceTerminating",
            "message": "namespace team is being terminated",
            "field": "metadata.namespace",
        }
    ]
    again = api.delete(f"{NAMESPACES}/{NS}")
    assert again.status_code == 409 and "The system is ensuring all content is removed" in again.text, again.text
    # what is there may still change: the node reports the pod's status while it stops it
    patched = api.patch(f"{PODS}/web/status", json={"status": {"phase": "Running"}}, headers=MERGE)
    assert patched.status_code == 200, patched.text


def test_a_namespace_with_nothing_to_wait_for_goes_at_once(api: httpx.Client) -> None:
    assert api.post(CONFIGMAPS, json={"metadata": {"name": "settings"}}).status_code == 201
    assert api.post(PODS, json=_pod("pending", node=None)).status_code == 201
    _delete_namespace(api)
    assert api.get(f"{NAMESPACES}/{NS}").status_code == 404
    assert api.post(NAMESPACES, json={"metadata": {"name": NS}}).status_code == 201  # and may be made again


def test_finalizers_of_its_objects_hold_a_namespace(api: httpx.Client) -> None:
    body = {"metadata": {"name": "held", "finalizers": ["example.com/keep"]}}
    assert api.post(CONFIGMAPS, json=body).status_code == 201
    _delete_namespace(api)
    assert api.get(f"{CONFIGMAPS}/held").json()["metadata"]["deletionTimestamp"]
    assert api.get(f"{NAMESPACES}/{NS}").json()["status"]["phase"] == "Terminating"
    cleared = api.patch(f"{CONFIGMAPS}/held", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert cleared.status_code == 200, cleared.text
    assert api.get(f"{CONFIGMAPS}/held").status_code == 404
    assert api.get(f"{NAMESPACES}/{NS}").status_code == 404


def test_kubectl_shows_a_terminating_namespace(apiserver: ApiServer, api: httpx.Client, tmp_path: Path) -> None:
    kubectl = Kubectl(apiserver, tmp_path)
    assert api.post(PODS, json=_pod("web")).status_code == 201

    deleted = kubectl.run("delete", "namespace", NS, "--wait=false", check=False)
    assert deleted.returncode == 0 and f'namespace "{NS}" deleted' in deleted.stdout, deleted.stderr
    shown = kubectl.run("get", "namespace", NS, "--no-headers", check=False)
    assert shown.returncode == 0 and "Terminating" in shown.stdout, shown.stdout + shown.stderr
    described = kubectl.run("describe", "namespace", NS).stdout
    assert "SomeResourcesRemain" in described and "pods. has 1 resource instances" in described, described
    refused = kubectl.run("create", "configmap", "late", "-n", NS, check=False)
    assert refused.returncode != 0 and "because it is being terminated" in refused.stderr, refused.stderr


def test_spec_finalizers_other_than_kubernetes_hold_a_namespace(api: httpx.Client) -> None:
    """``spec.finalizers``: ``kubernetes`` stands for deleting the content (done here); any other entry is another
    system's work and holds the Namespace until that system takes it off through ``PUT .../finalize``."""
    body = {"metadata": {"name": "held-ns"}, "spec": {"finalizers": ["example.com/cleanup"]}}
    created = api.post(NAMESPACES, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["finalizers"] == ["example.com/cleanup", "kubernetes"]
    assert api.delete(f"{NAMESPACES}/held-ns").status_code == 200
    held = api.get(f"{NAMESPACES}/held-ns").json()
    assert held["status"]["phase"] == "Terminating"
    # an update of the Namespace itself leaves spec.finalizers as they are (kube-apiserver's PrepareForUpdate)
    patched = api.patch(f"{NAMESPACES}/held-ns", json={"spec": {"finalizers": []}}, headers=MERGE)
    assert patched.status_code == 200, patched.text
    assert patched.json()["spec"]["finalizers"] == ["example.com/cleanup", "kubernetes"]
    assert api.patch(f"{NAMESPACES}/held-ns/finalize", json={}, headers=MERGE).status_code == 405
    released = {**patched.json(), "spec": {"finalizers": ["kubernetes"]}}
    finalized = api.put(f"{NAMESPACES}/held-ns/finalize", json=released)
    assert finalized.status_code == 200, finalized.text
    assert api.get(f"{NAMESPACES}/held-ns").status_code == 404


def test_kubectl_replace_raw_finalize_releases_a_stuck_namespace(
    apiserver: ApiServer, api: httpx.Client, tmp_path: Path
) -> None:
    """The usual way out of a Namespace stuck on a finalizer nobody will clear: its ``spec.finalizers`` emptied with
    ``kubectl replace --raw /api/v1/namespaces/NAME/finalize -f FILE``."""
    kubectl = Kubectl(apiserver, tmp_path)
    body = {"metadata": {"name": "stuck"}, "spec": {"finalizers": ["example.com/gone-controller"]}}
    assert api.post(NAMESPACES, json=body).status_code == 201
    kubectl.run("delete", "namespace", "stuck", "--wait=false")
    shown = kubectl.run("get", "namespace", "stuck", "-o", "json").stdout
    stuck = json.loads(shown)
    assert stuck["status"]["phase"] == "Terminating"
    stuck["spec"]["finalizers"] = []
    (tmp_path / "stuck.json").write_text(json.dumps(stuck))
    kubectl.run("replace", "--raw", "/api/v1/namespaces/stuck/finalize", "-f", str(tmp_path / "stuck.json"))
    gone = kubectl.run("get", "namespace", "stuck", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr


def test_a_new_namespace_gets_the_kubernetes_finalizer_and_only_finalize_changes_it(api: httpx.Client) -> None:
    created = api.post(NAMESPACES, json={"metadata": {"name": "plain"}})
    assert created.json()["spec"] == {"finalizers": ["kubernetes"]}
    stored = created.json()
    put = api.put(f"{NAMESPACES}/plain", json={**stored, "spec": {"finalizers": ["example.com/x"]}})
    assert put.status_code == 200, put.text
    assert put.json()["spec"]["finalizers"] == ["kubernetes"]
    finalized = api.put(f"{NAMESPACES}/plain/finalize", json={**put.json(), "spec": {"finalizers": ["example.com/x"]}})
    assert finalized.status_code == 200, finalized.text
    assert finalized.json()["spec"]["finalizers"] == ["example.com/x"]
    assert finalized.json()["status"] == {"phase": "Active"}
    resources = api.get("/api/v1").json()["resources"]
    assert {"name": "namespaces/finalize", "verbs": ["update"]}.items() <= next(
        r for r in resources if r["name"] == "namespaces/finalize"
    ).items()


@pytest.mark.parametrize(
    ("finalizer", "message"),
    [
        ("cleanup", 'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified'),
        ("example.com/a b", None),
    ],
)
def test_spec_finalizers_are_standard_or_qualified_names(
    api: httpx.Client, finalizer: str, message: str | None
) -> None:
    resp = api.post(NAMESPACES, json={"metadata": {"name": "odd"}, "spec": {"finalizers": [finalizer]}})
    assert resp.status_code == 422, resp.text
    found = [(c["field"], c["message"]) for c in resp.json()["details"]["causes"]]
    assert {f for f, _ in found} == {"spec.finalizers"}, found
    if message is not None:
        assert ("spec.finalizers", message) in found
    stored = api.post(NAMESPACES, json={"metadata": {"name": "odd"}}).json()
    resp = api.put(f"{NAMESPACES}/odd/finalize", json={**stored, "spec": {"finalizers": [finalizer]}})
    assert resp.status_code == 422, resp.text
    assert api.get(f"{NAMESPACES}/odd").json()["spec"]["finalizers"] == ["kubernetes"]


def _conditions(api: httpx.Client) -> dict[str, tuple[str, str, str]]:
    status = api.get(f"{NAMESPACES}/{NS}").json()["status"]
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_a_terminating_namespace_says_what_it_waits_for(api: httpx.Client) -> None:
    """The namespace controller's conditions (``kubectl describe namespace``), kept up to date as things go."""
    assert api.post(PODS, json=_pod("web")).status_code == 201
    body = {"metadata": {"name": "held", "finalizers": ["example.com/keep"]}}
    assert api.post(CONFIGMAPS, json=body).status_code == 201
    _delete_namespace(api)
    conditions = _conditions(api)
    assert conditions["NamespaceContentRemaining"] == (
        "True",
        "SomeResourcesRemain",
        "Some resources are remaining: configmaps. has 1 resource instances, pods. has 1 resource instances",
    )
    assert conditions["NamespaceFinalizersRemaining"] == (
        "True",
        "SomeFinalizersRemain",
        "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances",
    )
    assert conditions["NamespaceDeletionContentFailure"] == (
        "False",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    )
    assert len(conditions) == 5
    assert api.delete(f"{PODS}/web", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert _conditions(api)["NamespaceContentRemaining"][2] == (
        "Some resources are remaining: configmaps. has 1 resource instances"
    )


def test_a_namespace_only_its_own_finalizers_hold_answers_a_second_delete(api: httpx.Client) -> None:
    body = {"metadata": {"name": "own-held", "finalizers": ["example.com/keep"]}}
    assert api.post(NAMESPACES, json=body).status_code == 201
    assert api.delete(f"{NAMESPACES}/own-held").status_code == 200
    again = api.delete(f"{NAMESPACES}/own-held")
    assert again.status_code == 200 and again.json()["status"]["phase"] == "Terminating", again.text
    cleared = api.patch(f"{NAMESPACES}/own-held", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert cleared.status_code == 200, cleared.text
    assert api.get(f"{NAMESPACES}/own-held").status_code == 404


def test_only_a_writer_of_namespaces_may_finalize_one(apiserver: ApiServer, api: httpx.Client) -> None:
    """``namespaces/finalize`` is a write: the view identity and a node's get 403, and the finalizers stay."""
    stored = api.post(NAMESPACES, json={"metadata": {"name": "guarded"}}).json()
    emptied = {**stored, "spec": {"finalizers": []}}
    for token in (apiserver.view_token, apiserver.node_token):
        with apiserver.client(token=token) as other:
            resp = other.put(f"{NAMESPACES}/guarded/finalize", json=emptied)
            assert resp.status_code == 403, resp.text
    assert api.get(f"{NAMESPACES}/guarded").json()["spec"]["finalizers"] == ["kubernetes"]
