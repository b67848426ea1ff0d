"""Fields an update may not change, as kube-apiserver's update validation refuses them (422 naming the field).

- Secret ``immutable: true`` (``ValidateSecretUpdate``): ``data`` may not change and ``immutable`` may not be
  unset, "field is immutable when `immutable` is set"; ``type`` never changes ("field is immutable").
- Deployment and ReplicaSet ``spec.selector`` (apps/v1 ``ValidateDeploymentUpdate``,
  ``ValidateReplicaSetUpdate``): "field is immutable".

Each through PUT, merge patch and JSON patch, over HTTPS against the real API server; the stored object is
unchanged after every refusal.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

SECRETS = "/api/v1/namespaces/default/secrets"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"k": b64("v1")}, **extra}


def causes(resp: httpx.Response) -> list[tuple[str, str]]:
    body = resp.json()
    return [(c.get("field", ""), c.get("message", "")) for c in body.get("details", {}).get("causes", [])]


def refused(resp: httpx.Response, field: str, message: str) -> None:
    """422 with a cause on ``field`` whose message ends with ``message``."""
    assert resp.status_code == 422, resp.text
    assert any(f == field and m.endswith(message) for f, m in causes(resp)), resp.text


IMMUTABLE_SET = "Forbidden: field is immutable when `immutable` is set"


def test_an_immutable_secrets_data_cannot_change(api: httpx.Client) -> None:
    created = api.post(SECRETS, json=secret("frozen", immutable=True))
    assert created.status_code == 201, created.text
    stored = created.json()

    put = {**stored, "data": {"k": b64("v2")}}
    refused(api.put(f"{SECRETS}/frozen", json=put), "data", IMMUTABLE_SET)
    refused(api.patch(f"{SECRETS}/frozen", json={"data": {"other": b64("x")}}, headers=MERGE), "data", IMMUTABLE_SET)
    refused(
        api.patch(f"{SECRETS}/frozen", json={"stringData": {"k": "v2"}}, headers=MERGE),
        "data",
        IMMUTABLE_SET,
    )
    refused(
        api.patch(f"{SECRETS}/frozen", json=[{"op": "remove", "path": "/data/k"}], headers=JSON_PATCH),
        "data",
        IMMUTABLE_SET,
    )
    after = api.get(f"{SECRETS}/frozen").json()
    assert after["data"] == {"k": b64("v1")}
    assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


def test_immutable_cannot_be_unset_but_metadata_may_change(api: httpx.Client) -> None:
    assert api.post(SECRETS, json=secret("sealed", immutable=True)).status_code == 201
    refused(api.patch(f"{SECRETS}/sealed", json={"immutable": False}, headers=MERGE), "immutable", IMMUTABLE_SET)
    refused(api.patch(f"{SECRETS}/sealed", json={"immutable": None}, headers=MERGE), "immutable", IMMUTABLE_SET)
    labelled = api.patch(f"{SECRETS}/sealed", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["metadata"]["labels"] == {"a": "b"}
    assert labelled.json()["immutable"] is True
    # deleting it is how an immutable Secret is replaced
    assert api.delete(f"{SECRETS}/sealed").status_code == 200


def test_a_mutable_secret_may_become_immutable(api: httpx.Client) -> None:
    assert api.post(SECRETS, json=secret("soft")).status_code == 201
    changed = api.patch(f"{SECRETS}/soft", json={"data": {"k": b64("v2")}, "immutable": True}, headers=MERGE)
    assert changed.status_code == 200, changed.text
    refused(api.patch(f"{SECRETS}/soft", json={"data": {"k": b64("v3")}}, headers=MERGE), "data", IMMUTABLE_SET)


def test_a_secrets_type_never_changes_and_defaults_to_opaque(api: httpx.Client) -> None:
    created = api.post(SECRETS, json=secret("typed"))
    assert created.status_code == 201, created.text
    assert created.json()["type"] == "Opaque"
    resp = api.patch(f"{SECRETS}/typed", json={"type": "example.com/other"}, headers=MERGE)
    assert resp.status_code == 422, resp.text
    refused(resp, "type", 'Invalid value: "example.com/other": field is immutable')
    same = api.patch(f"{SECRETS}/typed", json={"type": "Opaque", "data": {"k": b64("v2")}}, headers=MERGE)
    assert same.status_code == 200, same.text
    assert api.get(f"{SECRETS}/typed").json()["type"] == "Opaque"


def workload(kind: str, name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app, "tier": "web"}},
                "spec": {"containers": [{"name": "c", "image": "127.0.0.1:5000/x:1"}]},
            },
        },
    }


@pytest.mark.parametrize(("kind", "path"), [("Deployment", DEPLOYMENTS), ("ReplicaSet", REPLICASETS)])
def test_a_workloads_selector_is_immutable(api: httpx.Client, kind: str, path: str) -> None:
    name = kind.lower()
    created = api.post(path, json=workload(kind, name, "one"))
    assert created.status_code == 201, created.text
    moved = {"spec": {"selector": {"matchLabels": {"tier": "web"}}}}
    refused(api.patch(f"{path}/{name}", json=moved, headers=MERGE), "spec.selector", "field is immutable")
    put = workload(kind, name, "two")
    put["metadata"]["resourceVersion"] = created.json()["metadata"]["resourceVersion"]
    refused(api.put(f"{path}/{name}", json=put), "spec.selector", "field is immutable")
    assert api.get(f"{path}/{name}").json()["spec"]["selector"] == {"matchLabels": {"app": "one"}}
    # the rest of the spec still changes
    scaled = api.patch(f"{path}/{name}", json={"spec": {"replicas": 0, "minReadySeconds": 1}}, headers=MERGE)
    assert scaled.status_code == 200, scaled.text
