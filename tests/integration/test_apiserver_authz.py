"""Authentication and authorization over HTTPS: 401 without a token, 403 beyond an identity's role."""

from __future__ import annotations

from typing import Any

PODS = "/api/v1/namespaces/default/pods"
SECRETS = "/api/v1/namespaces/default/secrets"
PUSHES = "/apis/dockyard.dev/v1alpha1/namespaces/default/pushes"
EVENTS = "/api/v1/namespaces/default/events"
MERGE = {"Content-Type": "application/merge-patch+json"}


def pod(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_no_or_unknown_token_is_401(apiserver: Any) -> None:
    for token in (None, "nope"):
        with apiserver.client(token=token) as anon:
            resp = anon.get(PODS)
            assert resp.status_code == 401
            assert resp.json()["reason"] == "Unauthorized"
    with apiserver.client(token=None) as anon:
        assert anon.get("/healthz").status_code == 200
        assert anon.get("/version").status_code == 200


def test_view_reads_but_never_writes_nor_sees_secrets(apiserver: Any, api: Any) -> None:
    assert api.post(PODS, json=pod("web")).status_code == 201
    assert api.post(SECRETS, json={"metadata": {"name": "s"}, "data": {"k": "c2VjcmV0"}}).status_code == 201
    with apiserver.client(token=apiserver.view_token) as view:
        assert view.get(PODS).status_code == 200
        assert view.get(f"{PODS}/web").status_code == 200
        assert view.get("/api").status_code == 200 and view.get("/openapi/v3").status_code == 200
        assert view.get(PODS, params={"watch": "true", "timeoutSeconds": "1"}).status_code == 200
        for resp in (
            view.get(SECRETS),
            view.get(f"{SECRETS}/s"),
            view.get(SECRETS, params={"watch": "true", "timeoutSeconds": "1"}),
        ):
            assert resp.status_code == 403, resp.text
            assert "c2VjcmV0" not in resp.text
        denied = view.delete(f"{PODS}/web")
        assert denied.status_code == 403
        assert denied.json()["message"] == (
            'pods "web" is forbidden: User "view" cannot delete resource "pods" '
            'in API group "" in the namespace "default"'
        )
        assert view.post(PODS, json=pod("other")).status_code == 403
        assert view.patch(f"{PODS}/web", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE).status_code == 403
    assert api.get(f"{PODS}/web").status_code == 200


def test_node_binds_and_reports_its_pods_only(apiserver: Any, api: Any) -> None:
    assert api.post(PODS, json=pod("mine")).status_code == 201
    assert api.post(PODS, json=pod("theirs", node="other-node")).status_code == 201
    with apiserver.client(token=apiserver.node_token) as node:
        assert node.get(f"{SECRETS}").status_code == 403
        bind = {
            "metadata": {"labels": {"dockyard.dev/nodename": apiserver.node_name}},
            "spec": {"nodeName": apiserver.node_name},
        }
        assert node.patch(f"{PODS}/mine", json=bind, headers=MERGE).status_code == 200
        status = {"status": {"phase": "Running"}}
        assert node.patch(f"{PODS}/mine/status", json=status, headers=MERGE).status_code == 200
        assert node.patch(f"{PODS}/theirs/status", json=status, headers=MERGE).status_code == 403
        assert node.patch(f"{PODS}/theirs", json=bind, headers=MERGE).status_code == 403
        grab = node.patch(f"{PODS}/mine", json={"spec": {"containers": []}}, headers=MERGE)
        assert grab.status_code == 403 and grab.json()["reason"] == "Forbidden"
        delete = node.delete(f"{PODS}/mine")
        assert delete.status_code == 403
        assert delete.json()["message"] == (
            f'pods "mine" is forbidden: User "system:node:{apiserver.node_name}" cannot '
            'delete resource "pods" in API group "" in the namespace "default": '
            f'node "{apiserver.node_name}" can only delete mirror pods and pods being deleted'
        )
        assert node.post(PODS, json=pod("new")).status_code == 403
        assert node.post(SECRETS, json={"metadata": {"name": "x"}}).status_code == 403
        event = {
            "metadata": {"name": "mine.1"},
            "involvedObject": {"kind": "Pod", "name": "mine"},
            "reason": "Started",
            "message": "started",
            "type": "Normal",
        }
        assert node.post(EVENTS, json=event).status_code == 201
        assert node.patch(f"{EVENTS}/mine.1", json={"count": 2}, headers=MERGE).status_code == 200
        assert node.delete(f"{EVENTS}/mine.1").status_code == 403
    assert api.get(f"{PODS}/mine").json()["status"]["phase"] == "Running"
    # once someone allowed to asks for its deletion, the node ends it (when its containers have stopped)
    node_object = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": apiserver.node_name}}
    assert api.post("/api/v1/nodes", json=node_object).status_code in (201, 409)
    marked = api.delete(f"{PODS}/mine").json()
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 30
    with apiserver.client(token=apiserver.node_token) as node:
        assert node.delete(f"{PODS}/theirs").status_code == 403
        assert node.delete(f"{PODS}/mine", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert api.get(f"{PODS}/mine").status_code == 404


def test_node_writes_push_status_but_not_spec(apiserver: Any, api: Any) -> None:
    push = {
        "metadata": {"name": "p", "labels": {"dockyard.dev/nodename": apiserver.node_name}},
        "spec": {"podName": "mine", "image": "127.0.0.1:5000/x:1"},
    }
    assert api.post(PUSHES, json=push).status_code == 201
    with apiserver.client(token=apiserver.node_token) as node:
        assert node.patch(f"{PUSHES}/p/status", json={"status": {"phase": "Running"}}, headers=MERGE).status_code == 200
        assert node.patch(f"{PUSHES}/p", json={"spec": {"pause": False}}, headers=MERGE).status_code == 403
        assert node.delete(f"{PUSHES}/p").status_code == 403
        assert node.post("/containers/abc/commit", json={"image": "127.0.0.1:5000/x:2"}).status_code == 403
