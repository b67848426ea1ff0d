"""Paths, server-owned metadata, discovery shapes, tables, log tails and container lookup (pure parts)."""

from __future__ import annotations

import pytest

from dockyard.api import errors, kinds
from dockyard.apiserver import discovery, objects, openapi, paths, subresources, table

POD = kinds.by_kind("v1", "Pod")
NS = kinds.by_kind("v1", "Namespace")
SECRET = kinds.by_kind("v1", "Secret")
BC = kinds.by_kind("dockyard.dev/v1alpha1", "BuildConfig")
assert POD and NS and SECRET and BC


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1", ("", "v1", None, None, None, None)),
        ("/api/v1/pods", ("", "v1", "pods", None, None, None)),
        ("/api/v1/namespaces", ("", "v1", "namespaces", None, None, None)),
        ("/api/v1/namespaces/team", ("", "v1", "namespaces", None, "team", None)),
        ("/api/v1/namespaces/team/status", ("", "v1", "namespaces", None, "team", "status")),
        ("/api/v1/namespaces/team/pods", ("", "v1", "pods", "team", None, None)),
        ("/api/v1/namespaces/team/pods/web/status", ("", "v1", "pods", "team", "web", "status")),
        (
            "/apis/dockyard.dev/v1alpha1/namespaces/d/buildconfigs/x/instantiate",
            ("dockyard.dev", "v1alpha1", "buildconfigs", "d", "x", "instantiate"),
        ),
        ("/apis/apps/v1/deployments", ("apps", "v1", "deployments", None, None, None)),
    ],
)
def test_parse_paths(path: str, expected: tuple[object, ...]) -> None:
    t = paths.parse(path)
    assert (t.group, t.version, t.info.plural if t.info else None, t.namespace, t.name, t.subresource) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api",
        "/api/v2/pods",
        "/apis/x/v1",
        "/apis/apps/v1/widgets",
        "/api/v1/pods/web",
        "/api/v1/namespaces/d/pods/web/exec",
        "/api/v1/namespaces/d/secrets/s/status",
        "/api/v1/namespaces/d/pods/a/b/c",
        "/apis/dockyard.dev/v1alpha1/builds/x",
    ],
)
def test_parse_bad_paths(path: str) -> None:
    with pytest.raises(errors.NotFound):
        paths.parse(path)


def test_a_parsed_path_is_forgotten_when_the_served_kinds_change() -> None:
    """Targets are kept per served kinds: a custom kind's path parses while its CRD serves it, and is 404
    again once it does not (never a stale target)."""
    widget = kinds.ResourceInfo(group="example.com", version="v1", kind="Widget", plural="widgets")
    path = "/apis/example.com/v1/namespaces/ns/widgets/w"
    try:
        kinds.set_custom([widget])
        assert paths.parse(path).info == widget
        assert paths.parse(path) is paths.parse(path)
        kinds.set_custom([])
        with pytest.raises(errors.NotFound):
            paths.parse(path)
    finally:
        kinds.set_custom([])


def test_object_path() -> None:
    assert paths.object_path(BC, "d", "x") == "/apis/dockyard.dev/v1alpha1/namespaces/d/buildconfigs/x"
    assert paths.object_path(NS, None, "team") == "/api/v1/namespaces/team"


def test_check_body() -> None:
    out = objects.check_body(POD, {"metadata": {"name": "a"}}, namespace="d")
    assert out["apiVersion"] == "v1" and out["kind"] == "Pod" and out["metadata"]["namespace"] == "d"
    for bad in (
        {"kind": "Secret"},
        {"apiVersion": "apps/v1"},
        {"metadata": {"namespace": "x"}},
        [1],
        {"metadata": "x"},
    ):
        with pytest.raises(errors.BadRequest):
            objects.check_body(POD, bad, namespace="d")
    with pytest.raises(errors.BadRequest):
        objects.check_body(POD, {"metadata": {"name": "a"}}, namespace="d", name="b")
    with pytest.raises(errors.Invalid):
        objects.check_body(POD, {"metadata": {"name": "a", "labels": {"x": 1}}}, namespace="d")
    assert (
        "namespace"
        not in objects.check_body(NS, {"metadata": {"name": "a", "namespace": "z"}}, namespace=None)["metadata"]
    )


def test_names() -> None:
    objects.check_name(POD, "web-1.example")
    objects.check_name(NS, "team-a")
    for bad in ("", None, "Web", "a_b", "-a", "a" * 254):
        with pytest.raises(errors.Invalid) as err:
            objects.check_name(POD, bad)
        assert err.value.causes[0].field == "metadata.name"
    with pytest.raises(errors.Invalid):
        objects.check_name(NS, "a.b")
    name = objects.generate_name("x" * 80)
    assert len(name) == 63 and name.startswith("x" * 58)


def test_create_and_update_metadata_rules() -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "a",
            "namespace": "d",
            "uid": "u",
            "resourceVersion": "9",
            "labels": {"k": "v"},
            "custom": 1,
        },
        "spec": {"x": 1},
        "status": {"phase": "Running"},
    }
    created = objects.prepare_create(POD, body, uid="uid-1", now="2024-01-01T00:00:00Z")
    assert created["metadata"] == {
        "name": "a",
        "namespace": "d",
        "labels": {"k": "v"},
        "custom": 1,
        "uid": "uid-1",
        "creationTimestamp": "2024-01-01T00:00:00Z",
        "generation": 1,
    }
    assert "status" not in created
    secret = objects.prepare_create(SECRET, dict(body, kind="Secret"), uid="u", now="t")
    assert secret["status"] == {"phase": "Running"}
    stored = dict(created, status={"phase": "Pending"})
    stored["metadata"] = dict(created["metadata"], resourceVersion="5")
    same = objects.prepare_update(POD, stored, dict(stored, status={"phase": "X"}))
    assert same["status"] == {"phase": "Pending"} and same["metadata"]["generation"] == 1
    changed = objects.prepare_update(POD, stored, dict(stored, spec={"x": 2}))
    assert changed["metadata"]["generation"] == 2
    new_meta = dict(stored["metadata"], uid="evil", generation=100, labels={"k": "w"})
    relabelled = objects.prepare_update(POD, stored, dict(stored, metadata=new_meta))
    assert relabelled["metadata"]["uid"] == "uid-1" and relabelled["metadata"]["generation"] == 1
    assert relabelled["metadata"]["labels"] == {"k": "w"}
    status = objects.prepare_status_update(stored, dict(stored, spec={"x": 9}, status={"phase": "Running"}))
    assert status["spec"] == {"x": 1} and status["status"] == {"phase": "Running"}


def test_discovery_and_openapi_shapes() -> None:
    assert discovery.api_resource_list("nope", "v1") is None
    assert discovery.api_group("nope") is None
    core = discovery.api_resource_list("", "v1")
    assert core and core["groupVersion"] == "v1"
    ns = next(r for r in core["resources"] if r["name"] == "namespaces")
    assert "deletecollection" not in ns["verbs"]
    index = openapi.v3_index()["paths"]
    assert index["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    doc = openapi.v3_document("apps", "v1")
    assert doc is not None
    assert doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}
    ]
    patch_ops = [p["patch"] for p in doc["paths"].values() if "patch" in p]
    assert all("application/strategic-merge-patch+json" not in op["requestBody"]["content"] for op in patch_ops)
    assert openapi.schema_name(BC) == "dev.dockyard.v1alpha1.BuildConfig"


def test_table_helpers() -> None:
    assert [table.human_duration(s) for s in (5, 119, 130, 3600, 4 * 3600 + 60, 30 * 3600, 3 * 86400, 40 * 86400)] == [
        "5s",
        "119s",
        "2m10s",
        "60m",
        "4h1m",
        "30h",
        "3d",
        "40d",
    ]


def test_tail_lines() -> None:
    assert subresources.tail_lines(b"a\nb\nc\n", 2) == b"b\nc\n"
    assert subresources.tail_lines(b"a\nb\nc", 2) == b"b\nc"
    assert subresources.tail_lines(b"a\nb\n", 10) == b"a\nb\n"
    assert subresources.tail_lines(b"a\nb\n", 0) == b""
    assert subresources.tail_lines(b"a\n", None) == b"a\n"


def test_find_container() -> None:
    pods = [
        {
            "metadata": {"name": "p", "namespace": "d"},
            "status": {
                "containerStatuses": [
                    {"name": "c", "containerID": "docker://abcdef"},
                    {"name": "e", "containerID": "docker://abcxyz"},
                ]
            },
        },
        {"metadata": {"name": "q", "namespace": "d"}, "status": {}},
    ]
    assert subresources.find_container(pods, "abcdef")[1] == "c"
    assert subresources.find_container(pods, "docker://abcxyz")[1] == "e"
    assert subresources.find_container(pods, "abcx")[1] == "e"
    for missing in ("abc", "zzz", ""):
        with pytest.raises(errors.NotFound):
            subresources.find_container(pods, missing)
