"""ConfigMaps (``v1``) served as kube-apiserver serves them: kubectl's commands, ``ValidateConfigMap`` and
``ValidateConfigMapUpdate`` (422 naming the field), and who may read them (view: all; a node: only those its
pods reference, one at a time)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .conftest import ApiServer
from .test_apiserver_kubectl import Kubectl

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


def configmap(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}


def causes(resp: httpx.Response) -> list[tuple[str, str]]:
    return [(c.get("field", ""), c.get("message", "")) for c in resp.json().get("details", {}).get("causes", [])]


@pytest.fixture
def kubectl(apiserver: ApiServer, tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver, tmp_path)


def test_kubectl_creates_gets_edits_and_deletes_a_configmap(kubectl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "app.conf").write_text("listen 8080\n")
    (tmp_path / "logo.bin").write_bytes(b"\x89PNG\x00\xff")
    out = kubectl.run(
        "create",
        "configmap",
        "web",
        "--from-literal=MODE=prod",
        f"--from-file={tmp_path / 'app.conf'}",
        f"--from-file={tmp_path / 'logo.bin'}",
    ).stdout
    assert out.strip() == "configmap/web created"
    got = yaml.safe_load(kubectl.run("get", "cm", "web", "-o", "yaml").stdout)
    assert got["data"] == {"MODE": "prod", "app.conf": "listen 8080\n"}
    assert base64.b64decode(got["binaryData"]["logo.bin"]) == b"\x89PNG\x00\xff"
    table = kubectl.run("get", "configmaps").stdout.split("\n")
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["web", "3"] for line in table[1:] if line.strip())
    assert kubectl.run("patch", "configmap", "web", "-p", '{"data":{"MODE":"dev"}}').stdout.strip() == (
        "configmap/web patched"
    )
    assert json.loads(kubectl.run("get", "cm", "web", "-o", "json").stdout)["data"]["MODE"] == "dev"
    described = kubectl.run("describe", "configmap", "web").stdout
    assert "MODE:" in described and "dev" in described and "logo.bin:" in described
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {a: '1'}\n")
    assert kubectl.run("apply", "-f", str(manifest)).stdout.strip() == "configmap/applied created"
    assert kubectl.run("apply", "-f", str(manifest)).stdout.strip() == "configmap/applied unchanged"
    dry = kubectl.run("create", "configmap", "dry", "--from-literal=a=1", "--dry-run=server", "-o", "name")
    assert dry.stdout.strip() == "configmap/dry"
    assert kubectl.run("get", "cm", "dry", check=False).returncode != 0
    explained = kubectl.run("explain", "configmap.immutable").stdout
    assert "cannot be updated" in explained
    assert kubectl.run("delete", "cm", "web").stdout.strip() == 'configmap "web" deleted'


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"data": {"bad key": "x"}}, "data[bad key]", "a valid config key"),
        ({"binaryData": {"k": "not base64!"}}, "binaryData[k]", "base64"),
        ({"data": {"k": "x"}, "binaryData": {"k": "eA=="}}, "binaryData[k]", "duplicate of key present in data"),
        ({"data": {"a": "x" * (1024 * 1024)}, "binaryData": {"b": "eA=="}}, "", "Too long"),
    ],
)
def test_a_bad_configmap_is_refused_naming_the_field(
    api: httpx.Client, fields: dict[str, Any], field: str, message: str
) -> None:
    resp = api.post(CONFIGMAPS, json=configmap("bad", **fields))
    assert resp.status_code == 422, resp.text
    assert any(f == field and message in m for f, m in causes(resp)), resp.text
    assert api.get(f"{CONFIGMAPS}/bad").status_code == 404


@pytest.mark.parametrize(
    ("fields", "named"), [({"data": {"k": 1}}, "ConfigMap.data[k]"), ({"immutable": "y"}, "immutable")]
)
def test_a_value_of_the_wrong_json_type_is_a_400_naming_it(
    api: httpx.Client, fields: dict[str, Any], named: str
) -> None:
    resp = api.post(CONFIGMAPS, json=configmap("typed", **fields))
    assert resp.status_code == 400, resp.text
    assert named in resp.json()["message"]


def test_an_immutable_configmap_keeps_its_data(api: httpx.Client) -> None:
    created = api.post(CONFIGMAPS, json=configmap("frozen", data={"a": "1"}, binaryData={"b": "eA=="}, immutable=True))
    assert created.status_code == 201, created.text
    for patch, field in (
        ({"data": {"a": "2"}}, "data"),
        ({"binaryData": {"b": None}}, "binaryData"),
        ({"immutable": False}, "immutable"),
    ):
        resp = api.patch(f"{CONFIGMAPS}/frozen", json=patch, headers=MERGE)
        assert resp.status_code == 422, resp.text
        assert (field, "Forbidden: field is immutable when `immutable` is set") in causes(resp), resp.text
    labelled = api.patch(f"{CONFIGMAPS}/frozen", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    assert labelled.status_code == 200, labelled.text
    assert api.get(f"{CONFIGMAPS}/frozen").json()["data"] == {"a": "1"}


def test_view_reads_configmaps_but_a_node_only_gets_those_its_pods_reference(apiserver: ApiServer) -> None:
    admin = apiserver.client()
    assert admin.post(CONFIGMAPS, json=configmap("settings", data={"a": "1"})).status_code == 201
    view = apiserver.client(token=apiserver.view_token)
    assert view.get(f"{CONFIGMAPS}/settings").json()["data"] == {"a": "1"}
    assert view.get(CONFIGMAPS).status_code == 200
    assert view.post(CONFIGMAPS, json=configmap("mine")).status_code == 403
    node = apiserver.client(token=apiserver.node_token)
    for resp in (node.get(f"{CONFIGMAPS}/settings"), node.get(CONFIGMAPS), node.get(f"{CONFIGMAPS}?watch=true")):
        assert resp.status_code == 403, resp.text
    assert "no relationship found between node" in node.get(f"{CONFIGMAPS}/settings").text
