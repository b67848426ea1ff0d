"""CustomResourceDefinitions on the real API server over HTTPS: the CRD kind itself (validation,
status), and a kind served from it (discovery, OpenAPI, CRUD, validation, defaulting, pruning,
printer columns, the status subresource, watch, deletion), by HTTP and by kubectl."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration.conftest import ApiServer

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.test/v1/namespaces/default/widgets"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.test"},
    "spec": {
        "group": "example.test",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
            "categories": ["gadgets"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color", "description": "paint"},
                    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "A Widget is a thing with a size and a color.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "description": "What the widget should be.",
                                "required": ["size"],
                                "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "at most 10"}],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "description": "How big."},
                                    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                                    "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
                                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "conditions": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
                                        },
                                    }
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(obj_name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": obj_name}, "spec": spec}


@pytest.fixture
def widgets(api: httpx.Client) -> httpx.Client:
    resp = api.post(CRDS, json=WIDGET_CRD)
    assert resp.status_code == 201, resp.text
    return api


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


def test_crd_is_established_and_its_kind_discovered(widgets: httpx.Client) -> None:
    crd = widgets.get(f"{CRDS}/widgets.example.test").json()
    assert _conditions(crd) == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "Widget" and crd["spec"]["names"]["listKind"] == "WidgetList"
    groups = widgets.get("/apis").json()["groups"]
    assert {"name": "example.test", "versions": [{"groupVersion": "example.test/v1", "version": "v1"}]}.items() <= next(
        g for g in groups if g["name"] == "example.test"
    ).items()
    resources = {r["name"]: r for r in widgets.get("/apis/example.test/v1").json()["resources"]}
    assert resources["widgets"]["shortNames"] == ["wd"] and resources["widgets"]["categories"] == ["gadgets"]
    assert resources["widgets"]["namespaced"] is True and "widgets/status" in resources
    listed = widgets.get(CRDS).json()
    assert "widgets.example.test" in {i["metadata"]["name"] for i in listed["items"]}
    assert "builds.dockyard.dev" in {i["metadata"]["name"] for i in listed["items"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["spec"].update(scope="Global"), 'spec.scope: Unsupported value: "Global"'),
        (lambda c: c["spec"]["names"].update(plural="Widgets"), "spec.names.plural: Invalid value"),
        (lambda c: c["metadata"].update(name="gizmos.example.test"), "metadata.name: Invalid value"),
        (lambda c: c["spec"].update(group="nodots"), "spec.group: Invalid value"),
        (
            lambda c: c["spec"]["versions"].append({**copy.deepcopy(c["spec"]["versions"][0]), "name": "v2"}),
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        ),
        (
            lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].pop("type"),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value",
        ),
        (
            lambda c: c["spec"]["versions"][0].pop("schema"),
            "spec.versions[0].schema.openAPIV3Schema: Required value",
        ),
    ],
)
def test_invalid_crds_are_422(api: httpx.Client, change: Any, message: str) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    change(crd)
    resp = api.post(CRDS, json=crd)
    assert resp.status_code == 422, resp.text
    assert message in resp.json()["message"]
    assert api.get("/apis/example.test/v1").status_code == 404


def test_custom_resource_crud_validation_defaulting_and_pruning(widgets: httpx.Client) -> None:
    created = widgets.post(WIDGETS, json=widget("a", size=2, extra={"anything": {"goes": 1}}))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["spec"] == {"size": 2, "color": "red", "extra": {"anything": {"goes": 1}}}  # defaulted, preserved
    assert body["metadata"]["generation"] == 1
    for spec, message in [
        ({"size": "big"}, 'spec.size: Invalid value: "big": spec.size in body must be of type integer: "string"'),
        ({"size": 0}, "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"),
        ({"size": 1, "color": "green"}, 'spec.color: Unsupported value: "green": supported values: "red", "blue"'),
        ({"color": "red"}, "spec.size: Required value"),
        ({"size": 1, "name": "abcdefg"}, "spec.name: Too long: may not be more than 5 bytes"),
        ({"size": 1, "name": "AB"}, "spec.name in body should match '^[a-z]+$'"),
        ({"size": 11}, 'spec: Invalid value: "object": at most 10'),  # x-kubernetes-validations (CEL)
    ]:
        resp = widgets.post(WIDGETS, json=widget("bad", **spec))
        assert resp.status_code == 422, (spec, resp.text)
        assert message in resp.json()["message"], resp.json()["message"]
        assert resp.json()["details"]["kind"] == "Widget"
    unknown = widget("b", size=1, bogus=True)
    resp = widgets.post(WIDGETS, json=unknown)
    assert resp.status_code == 422 and "spec.bogus: field not declared in schema" in resp.json()["message"]
    resp = widgets.post(WIDGETS, params={"fieldValidation": "Strict"}, json=unknown)
    assert resp.status_code == 400 and 'unknown field "spec.bogus"' in resp.json()["message"]
    resp = widgets.post(WIDGETS, params={"fieldValidation": "Warn"}, json=unknown)
    assert resp.status_code == 201 and "bogus" not in resp.json()["spec"]
    assert 'unknown field \\"spec.bogus\\"' in resp.headers["warning"] or "spec.bogus" in resp.headers["warning"]
    resp = widgets.post(WIDGETS, params={"fieldValidation": "Ignore"}, json=widget("c", size=1, bogus=1))
    assert resp.status_code == 201 and resp.json()["spec"] == {"size": 1, "color": "red"}
    patched = widgets.patch(
        f"{WIDGETS}/a", json={"spec": {"size": 3}}, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert patched.status_code == 200 and patched.json()["spec"]["size"] == 3
    assert patched.json()["metadata"]["generation"] == 2
    resp = widgets.patch(
        f"{WIDGETS}/a", json={"spec": {"size": -1}}, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert resp.status_code == 422 and "spec.size" in resp.json()["message"]
    names = [i["metadata"]["name"] for i in widgets.get(WIDGETS).json()["items"]]
    assert names == ["a", "b", "c"]
    assert widgets.get("/apis/example.test/v1/widgets").json()["kind"] == "WidgetList"
    assert widgets.delete(f"{WIDGETS}/c").status_code == 200
    assert widgets.get(f"{WIDGETS}/c").status_code == 404


def test_status_subresource_and_generation(widgets: httpx.Client) -> None:
    created = widgets.post(WIDGETS, json={**widget("s", size=1), "status": {"conditions": [{"type": "Ready"}]}})
    assert "status" not in created.json()  # status of a create is dropped (status subresource)
    obj = created.json()
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    obj["spec"]["size"] = 9
    put = widgets.put(f"{WIDGETS}/s/status", json=obj).json()
    assert put["status"]["conditions"][0]["status"] == "True" and put["spec"]["size"] == 1
    assert put["metadata"]["generation"] == 1
    put["status"] = {"conditions": []}
    main = widgets.put(f"{WIDGETS}/s", json=put).json()
    assert main["status"]["conditions"][0]["status"] == "True"  # the main resource ignores status
    assert main["metadata"]["generation"] == 1  # no spec change
    table = widgets.get(f"{WIDGETS}/s", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Color", "Ready"]
    assert table["rows"][0]["cells"] == ["s", 1, "red", "True"]


def test_openapi_has_the_crd_schema(widgets: httpx.Client) -> None:
    index = widgets.get("/openapi/v3").json()["paths"]
    assert "apis/example.test/v1" in index
    doc = widgets.get(index["apis/example.test/v1"]["serverRelativeURL"]).json()
    schema = doc["components"]["schemas"]["test.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "example.test", "version": "v1", "kind": "Widget"}]
    assert schema["properties"]["spec"]["properties"]["size"]["description"] == "How big."
    v2 = widgets.get("/openapi/v2").json()
    assert "test.example.v1.Widget" in v2["definitions"]


def test_watch_and_deleting_the_crd_deletes_its_objects(widgets: httpx.Client) -> None:
    assert widgets.post(WIDGETS, json=widget("w", size=1)).status_code == 201
    with widgets.stream("GET", WIDGETS, params={"watch": "true", "timeoutSeconds": "2"}) as resp:
        first = json.loads(next(resp.iter_lines()))
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "w"
    assert widgets.delete(f"{CRDS}/widgets.example.test").status_code == 200
    assert widgets.get(WIDGETS).status_code == 404
    assert widgets.get("/apis/example.test/v1").status_code == 404
    assert "example.test" not in {g["name"] for g in widgets.get("/apis").json()["groups"]}
    assert widgets.post(CRDS, json=WIDGET_CRD).status_code == 201
    assert widgets.get(WIDGETS).json()["items"] == []  # the old objects went with the CRD


def test_conflicting_names_are_not_accepted(widgets: httpx.Client) -> None:
    other = copy.deepcopy(WIDGET_CRD)
    other["metadata"]["name"] = "gizmos.example.test"
    other["spec"]["names"] = {"plural": "gizmos", "kind": "Gizmo", "shortNames": ["wd"]}
    resp = widgets.post(CRDS, json=other)
    assert resp.status_code == 201
    assert _conditions(resp.json()) == {"NamesAccepted": "False", "Established": "False"}
    assert widgets.get("/apis/example.test/v1/namespaces/default/gizmos").status_code == 404
    widgets.delete(f"{CRDS}/widgets.example.test")
    other = widgets.get(f"{CRDS}/gizmos.example.test").json()
    assert widgets.put(f"{CRDS}/gizmos.example.test", json=other).status_code == 200  # re-evaluated on write
    assert _conditions(widgets.get(f"{CRDS}/gizmos.example.test").json())["Established"] == "True"
    assert widgets.get("/apis/example.test/v1/namespaces/default/gizmos").status_code == 200


# ------------------------------------------------------------------ kubectl


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECACHEDIR": str(kubeconfig.parent / "cache")},
    )


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")
def test_kubectl_apply_get_explain_invalid_and_pruning(apiserver: ApiServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.kubeconfig(tmp_path / "kubeconfig")
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(json.dumps(WIDGET_CRD))
    out = _kubectl(kubeconfig, "apply", "-f", str(crd_file))
    assert out.returncode == 0, out.stderr
    out = _kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/widgets.example.test", "--timeout=20s")
    assert out.returncode == 0, out.stderr
    assert _kubectl(kubeconfig, "apply", "-f", str(crd_file)).returncode == 0  # idempotent re-apply
    manifest = "apiVersion: example.test/v1\nkind: Widget\nmetadata: {name: one}\nspec: {size: 4, color: blue}\n"
    out = _kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
    assert out.returncode == 0, out.stderr
    out = _kubectl(kubeconfig, "get", "widgets")
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "SIZE", "COLOR", "READY"] and row.split()[:3] == ["one", "4", "blue"]
    out = _kubectl(kubeconfig, "get", "wd,gadgets", "-o", "name")
    assert out.returncode == 0 and "widget.example.test/one" in out.stdout, out.stderr
    out = _kubectl(kubeconfig, "explain", "widget.spec.size")
    assert out.returncode == 0 and "How big." in out.stdout, out.stderr
    out = _kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest.replace("size: 4", "size: 0"))
    assert out.returncode != 0 and "spec.size" in out.stderr and "greater than or equal to 1" in out.stderr
    pruned = manifest.replace("name: one", "name: two").replace("color: blue", "color: blue, bogus: 1")
    out = _kubectl(kubeconfig, "apply", "-f", "-", stdin=pruned)
    assert out.returncode != 0 and 'unknown field "spec.bogus"' in out.stderr  # kubectl asks for Strict
    out = _kubectl(kubeconfig, "apply", "--validate=false", "-f", "-", stdin=pruned)
    assert out.returncode == 0, out.stderr
    got = json.loads(_kubectl(kubeconfig, "get", "widget", "two", "-o", "json").stdout)
    assert got["spec"] == {"size": 4, "color": "blue"}  # pruned
    out = _kubectl(kubeconfig, "delete", "crd", "widgets.example.test")
    assert out.returncode == 0, out.stderr
    out = _kubectl(kubeconfig, "get", "widgets")
    assert out.returncode != 0


def test_dockyard_crds_are_installed_once_and_upgraded(apiserver: ApiServer, api: httpx.Client) -> None:
    from dockyard.apiserver import app as app_module

    names = {i["metadata"]["name"] for i in api.get(CRDS).json()["items"]}
    assert {"builds.dockyard.dev", "buildconfigs.dockyard.dev", "pushes.dockyard.dev"} <= names
    assert app_module.install_crds(apiserver.store) == []  # idempotent
    old = api.patch(
        f"{CRDS}/builds.dockyard.dev",
        json={"spec": {"names": {"shortNames": ["bu"]}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert old.status_code == 200, old.text
    assert app_module.install_crds(apiserver.store) == ["builds.dockyard.dev"]  # the generated one wins
    assert "shortNames" not in api.get(f"{CRDS}/builds.dockyard.dev").json()["spec"]["names"]
    assert api.get("/apis/dockyard.dev/v1alpha1/namespaces/default/builds").status_code == 200
