"""The API server over real HTTP: discovery, auth, CRUD, patch, status, validation, deletion."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from dockyard.api import errors

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
    "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}]}]},
}
BC: dict[str, Any] = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildConfig",
    "metadata": {"name": "hello"},
    "spec": {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
        "strategy": {"type": "Docker"},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:latest"}},
    },
}
PODS = "/api/v1/namespaces/default/pods"
BCS = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"


def pod(name: str, **labels: str) -> dict[str, Any]:
    obj = copy.deepcopy(POD)
    obj["metadata"] = {"name": name, "labels": labels or {"app": "web"}}
    return obj


def assert_status(resp: httpx.Response, code: int, reason: str | None = None) -> dict[str, Any]:
    assert resp.status_code == code, resp.text
    body = resp.json()
    assert body["kind"] == "Status" and body["code"] == code
    if reason:
        assert body["reason"] == reason
    assert "Traceback" not in resp.text
    return body


# ------------------------------------------------------------------ health, auth, discovery


def test_open_endpoints_need_no_token(apiserver: Any) -> None:
    with apiserver.client(token=None) as c:
        assert c.get("/healthz").text == "ok"
        assert c.get("/livez").status_code == 200
        assert c.get("/readyz").text == "ok"
        assert c.get("/version").json()["major"] == "1"


def test_readyz_follows_ready_callable(apiserver_factory: Any) -> None:
    state = {"ready": False}
    server = apiserver_factory(ready=lambda: state["ready"])
    with server.client(token=None) as c:
        assert c.get("/readyz").status_code == 500
        state["ready"] = True
        assert c.get("/readyz").status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}])
def test_requests_without_valid_token_get_401_status(apiserver: Any, headers: dict[str, str]) -> None:
    with apiserver.client(token=None) as c:
        for path in ("/api", "/apis", PODS, "/openapi/v3", "/containers/abc/commit"):
            assert_status(c.get(path, headers=headers), 401, "Unauthorized")


def test_discovery_documents(api: httpx.Client) -> None:
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    resp = api.get("/api", headers={"Accept": aggregated})
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["kind"] == "APIVersions" and resp.json()["versions"] == ["v1"]
    groups = api.get("/apis", headers={"Accept": aggregated}).json()
    assert groups["kind"] == "APIGroupList"
    assert {g["name"] for g in groups["groups"]} == {
        "apps",
        "dockyard.dev",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "apiextensions.k8s.io",
    }
    assert api.get("/apis/dockyard.dev").json()["preferredVersion"]["version"] == "v1alpha1"
    core = {r["name"]: r for r in api.get("/api/v1").json()["resources"]}
    assert core["pods"]["namespaced"] and core["pods"]["kind"] == "Pod" and "watch" in core["pods"]["verbs"]
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["singularName"] == "pod"
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert not core["namespaces"]["namespaced"]
    ours = api.get("/apis/dockyard.dev/v1alpha1").json()
    assert ours["kind"] == "APIResourceList" and ours["groupVersion"] == "dockyard.dev/v1alpha1"
    by_name = {r["name"]: r for r in ours["resources"]}
    assert by_name["buildconfigs"]["shortNames"] == ["bc"] and "all" in by_name["buildconfigs"]["categories"]
    assert by_name["buildconfigs/instantiate"]["kind"] == "BuildRequest"
    assert "get" in by_name["builds/log"]["verbs"]
    assert api.get("/apis/apps/v1").json()["resources"][0]["kind"] == "Deployment"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2",
        "/apis/nope.dev/v1",
        "/apis/dockyard.dev/v1alpha1/widgets",
        "/api/v1/namespaces/default/widgets",
        "/api/v1/namespaces/default/pods/x/exec",
        "/apis/nope.dev",
        "/nothing/here",
    ],
)
def test_unknown_paths_are_404_status(api: httpx.Client, path: str) -> None:
    assert_status(api.get(path), 404, "NotFound")


def test_openapi_documents(api: httpx.Client) -> None:
    index = api.get("/openapi/v3").json()["paths"]
    assert set(index) == {
        "api/v1",
        "apis/apps/v1",
        "apis/coordination.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/dockyard.dev/v1alpha1",
    }
    doc = api.get(index["apis/dockyard.dev/v1alpha1"]["serverRelativeURL"]).json()
    patches = [op["patch"] for op in doc["paths"].values() if "patch" in op]
    kinds = {p["x-kubernetes-group-version-kind"]["kind"] for p in patches}
    assert {"Build", "BuildConfig", "Push", "Image", "ImageDeploy"} <= kinds
    assert all(any(q["name"] == "fieldValidation" for q in p["parameters"]) for p in patches)
    assert api.get("/openapi/v2", headers={"Accept": "application/json"}).json()["swagger"] == "2.0"
    protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    assert api.get("/openapi/v2", headers={"Accept": protobuf}).status_code == 406


# ------------------------------------------------------------------ CRUD


def test_default_namespace_exists(api: httpx.Client) -> None:
    names = {n["metadata"]["name"] for n in api.get("/api/v1/namespaces").json()["items"]}
    assert {"default", "kube-system"} <= names


def test_create_get_list_update_delete(api: httpx.Client) -> None:
    resp = api.post(PODS, json=POD)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    meta = created["metadata"]
    assert meta["namespace"] == "default" and meta["generation"] == 1 and meta["uid"]
    assert meta["creationTimestamp"].endswith("Z") and int(meta["resourceVersion"]) > 0
    assert api.get(f"{PODS}/web").json() == created

    listed = api.get(PODS).json()
    assert listed["kind"] == "PodList" and listed["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    assert [i["metadata"]["name"] for i in api.get("/api/v1/pods").json()["items"]] == ["web"]

    changed = copy.deepcopy(created)
    changed["spec"]["containers"][0]["image"] = "busybox:2"
    updated = api.put(f"{PODS}/web", json=changed).json()
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert updated["metadata"]["uid"] == meta["uid"]

    deleted = api.delete(f"{PODS}/web")
    assert deleted.status_code == 200 and deleted.json()["metadata"]["name"] == "web"
    assert_status(api.get(f"{PODS}/web"), 404, "NotFound")
    assert_status(api.delete(f"{PODS}/web"), 404, "NotFound")


def test_generate_name(api: httpx.Client) -> None:
    body = copy.deepcopy(POD)
    body["metadata"] = {"generateName": "web-"}
    names = {api.post(PODS, json=body).json()["metadata"]["name"] for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith("web-") and len(n) == 9 and n[4:].isalnum() and n == n.lower() for n in names)


def test_create_conflicts_and_bad_bodies(api: httpx.Client) -> None:
    assert api.post(PODS, json=POD).status_code == 201
    assert_status(api.post(PODS, json=POD), 409, "AlreadyExists")
    assert_status(api.post("/api/v1/namespaces/nope/pods", json=POD), 404, "NotFound")
    wrong_kind = dict(POD, kind="Secret")
    assert_status(api.post(PODS, json=wrong_kind), 400, "BadRequest")
    wrong_ns = copy.deepcopy(POD)
    wrong_ns["metadata"]["namespace"] = "kube-system"
    assert_status(api.post(PODS, json=wrong_ns), 400, "BadRequest")
    assert_status(api.post(PODS, content=b"{not json", headers={"Content-Type": "application/json"}), 400, "BadRequest")
    assert_status(api.post(PODS, content=b"[1, 2]", headers={"Content-Type": "application/json"}), 400, "BadRequest")
    assert_status(api.put(f"{PODS}/other", json=POD), 400, "BadRequest")
    assert_status(api.post("/api/v1/pods", json=POD), 405)


def test_stale_resource_version_is_conflict(api: httpx.Client) -> None:
    created = api.post(PODS, json=POD).json()
    fresh = copy.deepcopy(created)
    fresh["metadata"]["labels"]["v"] = "1"
    assert api.put(f"{PODS}/web", json=fresh).status_code == 200
    stale = copy.deepcopy(created)
    stale["metadata"]["labels"]["v"] = "2"
    body = assert_status(api.put(f"{PODS}/web", json=stale), 409, "Conflict")
    assert (
        "the object has been modified; please apply your changes to the latest version and try again" in body["message"]
    )
    patch = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"], "labels": {"v": "3"}}}
    assert_status(
        api.patch(f"{PODS}/web", json=patch, headers={"Content-Type": "application/merge-patch+json"}), 409, "Conflict"
    )


def test_update_that_changes_nothing_keeps_resource_version(api: httpx.Client) -> None:
    created = api.post(PODS, json=POD).json()
    again = api.put(f"{PODS}/web", json=created).json()
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_label_and_field_selectors(api: httpx.Client) -> None:
    for name, labels in [
        ("a", {"app": "web", "env": "prod"}),
        ("b", {"app": "web", "env": "dev"}),
        ("c", {"app": "db"}),
    ]:
        assert api.post(PODS, json=pod(name, **labels)).status_code == 201

    def names(**params: str) -> list[str]:
        resp = api.get(PODS, params=params)
        assert resp.status_code == 200, resp.text
        return [i["metadata"]["name"] for i in resp.json()["items"]]

    assert names(labelSelector="app=web") == ["a", "b"]
    assert names(labelSelector="app==web,env!=prod") == ["b"]
    assert names(labelSelector="env in (prod,dev)") == ["a", "b"]
    assert names(labelSelector="env notin (prod)") == ["b", "c"]
    assert names(labelSelector="env") == ["a", "b"]
    assert names(labelSelector="!env") == ["c"]
    assert names(fieldSelector="metadata.name=b") == ["b"]
    assert names(fieldSelector="metadata.name!=b,metadata.namespace=default") == ["a", "c"]
    assert names(fieldSelector="spec.nodeName=") == ["a", "b", "c"]
    assert names(fieldSelector="status.phase=Running") == []
    assert_status(api.get(PODS, params={"labelSelector": "app in (web"}), 400, "BadRequest")


def test_paging_with_limit_and_continue(api: httpx.Client) -> None:
    for i in range(7):
        api.post(PODS, json=pod(f"p{i}"))
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    for _ in range(10):
        page = api.get(PODS, params=params).json()
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        params = {"limit": 3, "continue": token}
    assert seen == [f"p{i}" for i in range(7)]
    assert_status(api.get(PODS, params={"continue": "!!garbage"}), 400, "BadRequest")


# ------------------------------------------------------------------ patch


def test_patch_flavours(api: httpx.Client) -> None:
    api.post(PODS, json=POD)
    merge = {"metadata": {"labels": {"tier": None, "new": "x"}}}
    got = api.patch(f"{PODS}/web", json=merge, headers={"Content-Type": "application/merge-patch+json"}).json()
    assert got["metadata"]["labels"] == {"app": "web", "new": "x"}
    ops = [
        {"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:json"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
    ]
    got = api.patch(f"{PODS}/web", json=ops, headers={"Content-Type": "application/json-patch+json"}).json()
    assert got["spec"]["containers"][0]["image"] == "busybox:json" and got["metadata"]["annotations"] == {"a": "b"}
    strategic = {
        "spec": {
            "containers": [{"name": "c", "env": [{"name": "B", "value": "2"}]}, {"name": "side", "image": "busybox"}]
        }
    }
    got = api.patch(
        f"{PODS}/web", json=strategic, headers={"Content-Type": "application/strategic-merge-patch+json"}
    ).json()
    containers = got["spec"]["containers"]
    assert [c["name"] for c in containers] == ["c", "side"]
    assert containers[0]["image"] == "busybox:json"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert got["metadata"]["generation"] == 3

    assert_status(api.patch(f"{PODS}/web", json=merge, headers={"Content-Type": "application/json"}), 415)
    assert_status(api.patch(f"{PODS}/web", json=merge, headers={"Content-Type": "text/plain"}), 415)
    bad_test = [{"op": "test", "path": "/metadata/name", "value": "other"}]
    assert_status(api.patch(f"{PODS}/web", json=bad_test, headers={"Content-Type": "application/json-patch+json"}), 422)
    assert_status(api.patch(f"{PODS}/web", json={"x": 1}, headers={"Content-Type": "application/json-patch+json"}), 400)
    assert_status(api.patch(f"{PODS}/nope", json=merge, headers={"Content-Type": "application/merge-patch+json"}), 404)


# ------------------------------------------------------------------ status and generation


def test_status_subresource_semantics(api: httpx.Client) -> None:
    body = copy.deepcopy(BC)
    body["status"] = {"lastVersion": 99}
    created = api.post(BCS, json=body).json()
    assert "lastVersion" not in (created.get("status") or {})
    assert created["metadata"]["generation"] == 1

    status_put = copy.deepcopy(created)
    status_put["status"] = {"lastVersion": 3}
    status_put["spec"]["output"]["to"]["name"] = "127.0.0.1:5000/ignored:1"
    got = api.put(f"{BCS}/hello/status", json=status_put).json()
    assert got["status"] == {"lastVersion": 3}
    assert got["spec"]["output"]["to"]["name"] == "127.0.0.1:5000/hello:latest"
    assert got["metadata"]["generation"] == 1

    main_put = copy.deepcopy(got)
    main_put["status"] = {"lastVersion": 0}
    main_put["spec"]["output"]["to"]["name"] = "127.0.0.1:5000/hello:v2"
    got = api.put(f"{BCS}/hello", json=main_put).json()
    assert got["status"] == {"lastVersion": 3}
    assert got["metadata"]["generation"] == 2

    got = api.patch(
        f"{BCS}/hello/status",
        json={"status": {"lastVersion": 4}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert got["status"]["lastVersion"] == 4 and got["metadata"]["generation"] == 2
    got = api.patch(
        f"{BCS}/hello",
        json={"metadata": {"labels": {"x": "y"}}, "status": {"lastVersion": 0}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert got["status"]["lastVersion"] == 4 and got["metadata"]["generation"] == 2
    assert api.get(f"{BCS}/hello/status").json()["status"]["lastVersion"] == 4


def test_client_cannot_set_server_metadata(api: httpx.Client) -> None:
    body = copy.deepcopy(POD)
    body["metadata"].update(uid="mine", generation=7, resourceVersion="12345", creationTimestamp="2000-01-01T00:00:00Z")
    created = api.post(PODS, json=body).json()
    meta = created["metadata"]
    assert meta["uid"] != "mine" and meta["generation"] == 1 and meta["creationTimestamp"] != "2000-01-01T00:00:00Z"
    assert created["metadata"]["labels"] == POD["metadata"]["labels"]


# ------------------------------------------------------------------ validation


def test_validation_failure_is_422_naming_the_field(api: httpx.Client) -> None:
    body = copy.deepcopy(POD)
    body["spec"]["containers"] = []
    status = assert_status(api.post(PODS, json=body), 422, "Invalid")
    assert "spec.containers" in status["message"]
    assert status["details"]["causes"][0]["field"].startswith("spec.containers")
    bad_name = copy.deepcopy(POD)
    bad_name["metadata"]["name"] = "Not_Valid"
    assert "metadata.name" in assert_status(api.post(PODS, json=bad_name), 422, "Invalid")["message"]


def test_build_resources_are_refused_not_ignored(api: httpx.Client) -> None:
    """Builds run through the engine's build API, which dockyard does not limit: a BuildConfig (or Build) with
    ``spec.resources`` limits or requests would be accepted and ignored, so it is 422 naming the field; an
    empty ``resources`` (nothing to honour) is accepted."""
    for resources in ({"limits": {"memory": "512Mi"}}, {"requests": {"cpu": "1"}}):
        body = copy.deepcopy(BC)
        body["metadata"]["name"] = "limited"
        body["spec"]["resources"] = resources
        status = assert_status(api.post(BCS, json=body), 422, "Invalid")
        assert status["details"]["causes"][0]["field"].startswith("spec.resources"), status
        assert "not supported" in status["message"], status["message"]
    body = copy.deepcopy(BC)
    body["metadata"]["name"] = "unlimited"
    body["spec"]["resources"] = {}
    assert api.post(BCS, json=body).status_code == 201


def test_a_build_argument_name_is_printable_ascii_without_equals(api: httpx.Client) -> None:
    """``spec.strategy.dockerStrategy.buildArgs[].name`` follows the rule the API checks every variable name by
    (Kubernetes' relaxed rule): an '=' would make ``A=B`` of ``A``, and a control character no Dockerfile ``ARG``
    can name; 422 naming the field, nothing stored."""
    for name in ("A=B", "A\nB", ""):
        body = copy.deepcopy(BC)
        body["metadata"]["name"] = "args"
        body["spec"]["strategy"]["dockerStrategy"] = {"buildArgs": [{"name": "OK", "value": "1"}, {"name": name}]}
        status = assert_status(api.post(BCS, json=body), 422, "Invalid")
        assert [c["field"] for c in status["details"]["causes"]] == [
            "spec.strategy.dockerStrategy.buildArgs[1].name"
        ], status
    assert api.get(f"{BCS}/args").status_code == 404


def test_paths_into_the_source_are_relative_without_dot_dot(api: httpx.Client) -> None:
    """``spec.source.contextDir`` and ``spec.strategy.dockerStrategy.dockerfilePath`` name paths inside the source
    (OpenShift's rule): an absolute path or a ``..`` component is 422 naming the field (the builder also refuses
    one that a symbolic link of the source takes outside it: tests/integration/test_build_source_escapes.py)."""
    cases = [
        ("/etc/passwd", "spec.strategy.dockerStrategy.dockerfilePath"),
        ("../../etc/passwd", "spec.strategy.dockerStrategy.dockerfilePath"),
        ("docker/../../x", "spec.strategy.dockerStrategy.dockerfilePath"),
    ]
    for path, field in cases:
        body = copy.deepcopy(BC)
        body["metadata"]["name"] = "escape"
        body["spec"].setdefault("strategy", {"type": "Docker"}).setdefault("dockerStrategy", {})["dockerfilePath"] = (
            path
        )
        status = assert_status(api.post(BCS, json=body), 422, "Invalid")
        assert [c["field"] for c in status["details"]["causes"]] == [field], status
    body = copy.deepcopy(BC)
    body["metadata"]["name"] = "nested"
    body["spec"].setdefault("strategy", {"type": "Docker"}).setdefault("dockerStrategy", {})["dockerfilePath"] = (
        "docker/Dockerfile.web"
    )
    assert api.post(BCS, json=body).status_code == 201


def test_validate_hook_runs_on_create_update_and_patch(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.api import validation

    calls: list[str] = []

    def fake(info: Any, obj: dict[str, Any]) -> dict[str, Any]:
        calls.append(info.kind)
        if (obj.get("metadata") or {}).get("labels", {}).get("bad"):
            raise errors.Invalid(
                kind=info.kind,
                group=info.group,
                name=obj["metadata"]["name"],
                causes=[errors.Cause("metadata.labels.bad", "must not be set")],
            )
        out = copy.deepcopy(obj)
        out["metadata"].setdefault("annotations", {})["defaulted"] = "yes"
        return out

    monkeypatch.setattr(validation, "validate", fake)
    created = api.post(PODS, json=POD).json()
    assert created["metadata"]["annotations"] == {"defaulted": "yes"}
    status = assert_status(
        api.patch(
            f"{PODS}/web",
            json={"metadata": {"labels": {"bad": "1"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        ),
        422,
        "Invalid",
    )
    assert status["message"] == 'Pod "web" is invalid: metadata.labels.bad: must not be set'
    bad = copy.deepcopy(created)
    bad["metadata"]["labels"]["bad"] = "1"
    assert_status(api.put(f"{PODS}/web", json=bad), 422, "Invalid")
    assert calls == ["Pod", "Pod", "Pod"]


def test_body_limit_is_413(api: httpx.Client) -> None:
    body = copy.deepcopy(POD)
    env = body["spec"]["containers"][0]["env"][0]  # annotations could not carry it: 256 KiB at most
    env["value"] = "x" * (3 * 1024 * 1024)
    assert_status(api.post(PODS, json=body), 413)
    env["value"] = "x" * (2 * 1024 * 1024)
    assert api.post(PODS, json=body).status_code == 201


# ------------------------------------------------------------------ deletion


def test_delete_cascades_to_owned_objects(api: httpx.Client) -> None:
    owner = api.post(PODS, json=pod("owner")).json()
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner["metadata"]["uid"], "controller": True}
    child = pod("child")
    child["metadata"]["ownerReferences"] = [ref]
    child = api.post(PODS, json=child).json()
    grandchild = pod("grandchild")
    grandchild["metadata"]["ownerReferences"] = [dict(ref, name="child", uid=child["metadata"]["uid"])]
    api.post(PODS, json=grandchild)
    orphan_owner = api.post(PODS, json=pod("keeper")).json()
    kept = pod("kept")
    kept["metadata"]["ownerReferences"] = [dict(ref, name="keeper", uid=orphan_owner["metadata"]["uid"])]
    api.post(PODS, json=kept)

    assert api.delete(f"{PODS}/owner").status_code == 200
    names = {i["metadata"]["name"] for i in api.get(PODS).json()["items"]}
    assert names == {"keeper", "kept"}
    assert api.delete(f"{PODS}/keeper", params={"propagationPolicy": "Orphan"}).status_code == 200
    assert {i["metadata"]["name"] for i in api.get(PODS).json()["items"]} == {"kept"}


def test_deleting_a_namespace_deletes_its_contents(api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    assert api.post("/api/v1/namespaces/team/pods", json=POD).status_code == 201
    assert api.post("/apis/dockyard.dev/v1alpha1/namespaces/team/buildconfigs", json=BC).status_code == 201
    api.post(PODS, json=POD)
    assert api.delete("/api/v1/namespaces/team").status_code == 200
    assert_status(api.get("/api/v1/namespaces/team/pods/web"), 404)
    assert api.get("/apis/dockyard.dev/v1alpha1/buildconfigs").json()["items"] == []
    assert api.get(f"{PODS}/web").status_code == 200
    assert_status(api.delete("/api/v1/namespaces/default"), 403, "Forbidden")


def test_finalizers_delay_deletion(api: httpx.Client) -> None:
    body = pod("held")
    body["metadata"]["finalizers"] = ["dockyard.dev/test"]
    api.post(PODS, json=body)
    marked = api.delete(f"{PODS}/held").json()
    assert marked["metadata"]["deletionTimestamp"]
    assert api.get(f"{PODS}/held").status_code == 200
    resp = api.patch(
        f"{PODS}/held",
        json={"metadata": {"finalizers": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.text
    assert_status(api.get(f"{PODS}/held"), 404)


def test_delete_collection_with_selector(api: httpx.Client) -> None:
    for name, app in [("a", "x"), ("b", "x"), ("c", "y")]:
        api.post(PODS, json=pod(name, app=app))
    gone = api.delete(PODS, params={"labelSelector": "app=x"}).json()
    assert sorted(i["metadata"]["name"] for i in gone["items"]) == ["a", "b"]
    assert [i["metadata"]["name"] for i in api.get(PODS).json()["items"]] == ["c"]


def test_table_format(api: httpx.Client) -> None:
    api.post(PODS, json=POD)
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = api.get(PODS, headers={"Accept": accept}).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 1] == ["IP", "Node"]
    assert table["rows"][0]["cells"][:4] == ["web", "0/1", "Pending", "0"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
