"""API behaviours README.md promises, checked against the real API server over HTTPS.

Each test quotes the README passage it holds the server to: the Service fields the proxy refuses
("Services"), the CRDs refused with a 422 ("The API server" / CustomResourceDefinitions), the nesting and
Secret size limits ("Limits") and the field selectors of Builds, Pushes and Secrets ("Lists and watches").
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx
import pytest

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SERVICES = "/api/v1/namespaces/default/services"
SECRETS = "/api/v1/namespaces/default/secrets"
BUILDS = "/apis/dockyard.dev/v1alpha1/namespaces/default/builds"
PUSHES = "/apis/dockyard.dev/v1alpha1/namespaces/default/pushes"
NESTS = "/apis/example.test/v1/namespaces/default/nests"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MAX_DEPTH = 100
"""README, "Limits": "Objects nest at most 100 levels"."""
MiB = 1024 * 1024


def assert_status(resp: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    """The response is a Kubernetes Status with ``code`` and ``reason``; returns its body."""
    assert resp.status_code == code, resp.text
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status" and body["code"] == code and body["reason"] == reason, body
    assert "Traceback" not in resp.text
    return body


def cause_fields(status: dict[str, Any]) -> list[str]:
    return [c["field"] for c in status["details"]["causes"]]


def names(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return sorted(i["metadata"]["name"] for i in resp.json()["items"])


def watch(api: httpx.Client, path: str, params: dict[str, str], count: int) -> list[tuple[str, str]]:
    """The first ``count`` events of a watch as ``(type, name)`` (the watch ends after 5 s at most)."""
    query = {"watch": "true", "timeoutSeconds": "5", **params}
    out: list[tuple[str, str]] = []
    with api.stream("GET", path, params=query) as resp:
        assert resp.status_code == 200, resp.read().decode()
        for line in resp.iter_lines():
            if line.strip():
                event = json.loads(line)
                out.append((event["type"], event["object"]["metadata"]["name"]))
            if len(out) >= count:
                break
    return out


# ------------------------------------------------------------------ Services


def service(name: str, **spec: Any) -> dict[str, Any]:
    body = {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"name": "http", "port": 8080}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


REFUSED_LB_FIELDS = [
    ("loadBalancerIP", "127.0.0.1"),
    ("loadBalancerClass", "example.test/lb"),
    ("loadBalancerSourceRanges", ["10.0.0.0/8"]),
]


@pytest.mark.parametrize(("field", "value"), REFUSED_LB_FIELDS)
def test_service_create_with_load_balancer_field_is_422_naming_it(api: httpx.Client, field: str, value: Any) -> None:
    """README, "Services": "Refused with a 422 naming the field: ... loadBalancerIP/Class, source ranges"
    (externalIPs, ExternalName and IPv6 are covered by tests/unit/test_services.py)."""
    status = assert_status(api.post(SERVICES, json=service("lb", **{field: value})), 422, "Invalid")
    assert cause_fields(status) == [f"spec.{field}"], status
    assert f"spec.{field}: Forbidden: " in status["message"]
    assert api.get(f"{SERVICES}/lb").status_code == 404


@pytest.mark.parametrize(("field", "value"), REFUSED_LB_FIELDS)
def test_service_update_and_patch_adding_load_balancer_field_is_422(api: httpx.Client, field: str, value: Any) -> None:
    """README, "Services": the same fields are refused when a write adds them to a stored Service (a PUT or a
    merge patch), and the stored Service keeps its spec."""
    created = api.post(SERVICES, json=service("lb"))
    assert created.status_code == 201, created.text
    updated = copy.deepcopy(created.json())
    updated["spec"][field] = value
    status = assert_status(api.put(f"{SERVICES}/lb", json=updated), 422, "Invalid")
    assert cause_fields(status) == [f"spec.{field}"], status
    patch = api.patch(f"{SERVICES}/lb", json={"spec": {field: value}}, headers=MERGE)
    assert cause_fields(assert_status(patch, 422, "Invalid")) == [f"spec.{field}"]
    stored = api.get(f"{SERVICES}/lb").json()
    assert field not in stored["spec"]
    assert stored["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]


# ------------------------------------------------------------------ CustomResourceDefinitions


NEST_CRD: dict[str, Any] = {  # a spec that keeps whatever it is given
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "nests.example.test"},
    "spec": {
        "group": "example.test",
        "scope": "Namespaced",
        "names": {"plural": "nests", "singular": "nest", "kind": "Nest"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_with_scale_subresource_is_422_naming_it(api: httpx.Client) -> None:
    """README, "CustomResourceDefinitions": "an invalid CRD is refused with a 422 (... a `scale`
    subresource ...)": the cause names ``spec.versions[0].subresources`` and the kind is not served."""
    crd = copy.deepcopy(NEST_CRD)
    crd["spec"]["versions"][0]["subresources"]["scale"] = {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
    }
    status = assert_status(api.post(CRDS, json=crd), 422, "Invalid")
    assert cause_fields(status) == ["spec.versions[0].subresources"], status
    assert "scale" in status["message"]
    assert api.get(f"{CRDS}/nests.example.test").status_code == 404
    assert api.get("/apis/example.test/v1").status_code == 404


def test_crd_with_conversion_webhook_is_422_naming_it(api: httpx.Client) -> None:
    """README, "CustomResourceDefinitions": "an invalid CRD is refused with a 422 (... conversion webhooks)":
    ``spec.conversion.strategy: Webhook`` is refused naming that field; ``None`` is accepted."""
    crd = copy.deepcopy(NEST_CRD)
    crd["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://convert.example.test/convert"},
        },
    }
    status = assert_status(api.post(CRDS, json=crd), 422, "Invalid")
    assert cause_fields(status) == ["spec.conversion.strategy"], status
    assert "spec.conversion.strategy" in status["message"]
    assert api.get(f"{CRDS}/nests.example.test").status_code == 404
    crd["spec"]["conversion"] = {"strategy": "None"}
    assert api.post(CRDS, json=crd).status_code == 201


def test_crd_update_adding_scale_or_webhook_is_422(api: httpx.Client) -> None:
    """README, "CustomResourceDefinitions": "each write sets `NamesAccepted` and `Established`; an invalid
    CRD is refused with a 422": a patch that adds a scale subresource or a conversion webhook to an
    Established CRD is refused the same way."""
    assert api.post(CRDS, json=NEST_CRD).status_code == 201
    path = f"{CRDS}/nests.example.test"
    replicas = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
    scale = [{"op": "add", "path": "/spec/versions/0/subresources/scale", "value": replicas}]
    status = assert_status(api.patch(path, json=scale, headers=JSON_PATCH), 422, "Invalid")
    assert cause_fields(status) == ["spec.versions[0].subresources"], status
    webhook = {"spec": {"conversion": {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"]}}}}
    status = assert_status(api.patch(path, json=webhook, headers=MERGE), 422, "Invalid")
    assert cause_fields(status) == ["spec.conversion.strategy"], status
    assert set(api.get(path).json()["spec"]["versions"][0]["subresources"]) == {"status"}


# ------------------------------------------------------------------ nesting


def chain(levels: int) -> dict[str, Any]:
    """``levels`` objects nested in one another: ``{"a": {"a": ... {"leaf": 1}}}``."""
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        node = {"a": node}
    return node


def nest(name: str, levels: int) -> dict[str, Any]:
    """A Nest object ``levels`` levels deep in all (the object itself and its ``spec`` are two of them)."""
    return {"apiVersion": "example.test/v1", "kind": "Nest", "metadata": {"name": name}, "spec": chain(levels - 1)}


def depth(doc: Any) -> int:
    if isinstance(doc, dict):
        return 1 + max((depth(v) for v in doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max((depth(v) for v in doc), default=0)
    return 0


@pytest.fixture
def nests(api: httpx.Client) -> httpx.Client:
    resp = api.post(CRDS, json=NEST_CRD)
    assert resp.status_code == 201, resp.text
    return api


def test_objects_nest_at_most_100_levels(nests: httpx.Client) -> None:
    """README, "Limits": "Objects nest at most 100 levels": an object exactly 100 levels deep (in a field that
    keeps unknown fields) is stored and read back whole; a body 101 levels deep is 400 naming the limit
    (``wire.decode_json``), before any schema is consulted, for a built-in kind too."""
    ok = nest("deep", MAX_DEPTH)
    assert depth(ok) == MAX_DEPTH
    created = nests.post(NESTS, json=ok)
    assert created.status_code == 201, created.text
    assert nests.get(f"{NESTS}/deep").json()["spec"] == ok["spec"]
    too_deep = nest("deeper", MAX_DEPTH + 1)
    assert depth(too_deep) == MAX_DEPTH + 1
    status = assert_status(nests.post(NESTS, json=too_deep), 400, "BadRequest")
    assert f"nested deeper than {MAX_DEPTH} levels" in status["message"]
    assert nests.get(f"{NESTS}/deeper").status_code == 404
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "annotations": chain(MAX_DEPTH - 1)}}
    status = assert_status(nests.post(SECRETS, json=secret), 400, "BadRequest")
    assert f"nested deeper than {MAX_DEPTH} levels" in status["message"]


def test_a_patch_cannot_nest_an_object_past_100_levels(nests: httpx.Client) -> None:
    """README, "Limits": "Objects nest at most 100 levels" holds for the stored object, not only for request
    bodies: a shallow JSON patch that would make a 100-level object 101 deep is refused (422 naming the
    limit, ``objects.check_body``) and the stored object is unchanged."""
    assert nests.post(NESTS, json=nest("deep", MAX_DEPTH)).status_code == 201
    pointer = "/spec" + "/a" * (MAX_DEPTH - 2) + "/leaf"  # the leaf of the 100th object
    scalar = [{"op": "replace", "path": pointer, "value": 2}]
    patched = nests.patch(f"{NESTS}/deep", json=scalar, headers=JSON_PATCH)
    assert patched.status_code == 200, patched.text
    deeper = [{"op": "replace", "path": pointer, "value": {"x": 1}}]
    status = assert_status(nests.patch(f"{NESTS}/deep", json=deeper, headers=JSON_PATCH), 422, "Invalid")
    assert f"nested deeper than {MAX_DEPTH} levels" in status["message"]
    stored = nests.get(f"{NESTS}/deep").json()
    assert depth(stored) == MAX_DEPTH
    assert stored["metadata"]["resourceVersion"] == patched.json()["metadata"]["resourceVersion"]


# ------------------------------------------------------------------ Secret size


def secret(name: str, **data: bytes) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": encoded}


def test_secret_data_is_at_most_1_mib(api: httpx.Client) -> None:
    """README, "Limits": "a Secret's data at most 1 MiB": exactly 1 MiB of data (decoded) is accepted; one byte
    more, in one key or across two, is 422 naming ``data`` and the limit in bytes."""
    assert api.post(SECRETS, json=secret("full", blob=b"x" * MiB)).status_code == 201
    assert len(base64.b64decode(api.get(f"{SECRETS}/full").json()["data"]["blob"])) == MiB
    for name, data in (
        ("over", {"blob": b"x" * (MiB + 1)}),
        ("split", {"a": b"x" * (MiB // 2), "b": b"y" * (MiB // 2 + 1)}),
    ):
        status = assert_status(api.post(SECRETS, json=secret(name, **data)), 422, "Invalid")
        assert cause_fields(status) == ["data"], status
        assert f"data: Too long: must have at most {MiB} bytes" in status["message"]
        assert api.get(f"{SECRETS}/{name}").status_code == 404


# ------------------------------------------------------------------ field selectors


def build(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Build",
        "metadata": {"name": name},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/app:latest"}},
        },
    }


def push(name: str) -> dict[str, Any]:
    spec = {"podName": "src", "image": "127.0.0.1:5000/pushed:latest"}
    return {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Push", "metadata": {"name": name}, "spec": spec}


def set_phase(api: httpx.Client, path: str, name: str, phase: str) -> None:
    resp = api.patch(f"{path}/{name}/status", json={"status": {"phase": phase}}, headers=MERGE)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("path", "make", "phases", "unsupported"),
    [
        (BUILDS, build, ("Running", "Complete"), "spec.output.to.name"),
        (PUSHES, push, ("Running", "Succeeded"), "spec.image"),
    ],
    ids=["builds", "pushes"],
)
def test_status_phase_selects_builds_and_pushes_on_list_and_watch(
    api: httpx.Client, path: str, make: Any, phases: tuple[str, str], unsupported: str
) -> None:
    """README, "Lists and watches": field selectors "plus `status.phase` for Builds and Pushes; others are
    400": a list selects by phase (``=`` and ``!=``), a watch sees an object enter and leave the selection
    (ADDED, DELETED) and nothing of the others, and another field is 400 naming it on list and watch."""
    running, done = phases
    rv = ""
    for name in ("a", "b"):
        resp = api.post(path, json=make(name))
        assert resp.status_code == 201, resp.text
        rv = rv or resp.json()["metadata"]["resourceVersion"]
    set_phase(api, path, "a", running)
    set_phase(api, path, "b", running)
    set_phase(api, path, "b", done)
    assert names(api.get(path, params={"fieldSelector": f"status.phase={running}"})) == ["a"]
    assert names(api.get(path, params={"fieldSelector": f"status.phase={done}"})) == ["b"]
    assert names(api.get(path, params={"fieldSelector": f"status.phase!={running},metadata.name=b"})) == ["b"]
    set_phase(api, path, "a", done)
    events = watch(api, path, {"resourceVersion": rv, "fieldSelector": f"status.phase={running},metadata.name=b"}, 2)
    assert events == [("ADDED", "b"), ("DELETED", "b")]
    events = watch(api, path, {"resourceVersion": rv, "fieldSelector": f"status.phase={done}"}, 2)
    assert events == [("ADDED", "b"), ("ADDED", "a")]
    for params in ({"fieldSelector": f"{unsupported}=x"}, {"fieldSelector": f"{unsupported}=x", "watch": "true"}):
        status = assert_status(api.get(path, params=params), 400, "BadRequest")
        assert status["message"] == f"field label not supported: {unsupported}"


def test_type_selects_secrets_on_list_and_watch(api: httpx.Client) -> None:
    """README, "Lists and watches": "`type` for Secrets; others are 400": a list and a watch select Secrets by
    ``type``; ``data.*`` or ``immutable`` are 400 naming the field."""
    rv = api.get(SECRETS).json()["metadata"]["resourceVersion"]
    assert api.post(SECRETS, json=secret("plain", k=b"v")).status_code == 201
    basic = secret("login", username=b"u", password=b"p")
    basic["type"] = "kubernetes.io/basic-auth"
    assert api.post(SECRETS, json=basic).status_code == 201
    assert names(api.get(SECRETS, params={"fieldSelector": "type=Opaque"})) == ["plain"]
    assert names(api.get(SECRETS, params={"fieldSelector": "type=kubernetes.io/basic-auth"})) == ["login"]
    assert names(api.get(SECRETS, params={"fieldSelector": "type!=Opaque"})) == ["login"]
    events = watch(api, SECRETS, {"resourceVersion": rv, "fieldSelector": "type=kubernetes.io/basic-auth"}, 1)
    assert events == [("ADDED", "login")]
    for field in ("data.password", "immutable"):
        for params in ({"fieldSelector": f"{field}=x"}, {"fieldSelector": f"{field}=x", "watch": "true"}):
            status = assert_status(api.get(SECRETS, params=params), 400, "BadRequest")
            assert status["message"] == f"field label not supported: {field}"


@pytest.mark.parametrize("plural", ["builds", "pushes", "images", "imagedeploys"])
def test_dockyard_crds_declare_the_field_selectors_the_server_serves(api: httpx.Client, plural: str) -> None:
    """README (``dockyard manifests crds``): the CRDs carry "field selectors": the CRD the server itself
    serves for each kind declares ``selectableFields``, Builds and Pushes ``.status.phase`` among them, and
    every one it declares is a field selector the server's list and watch accept."""
    crd = api.get(f"{CRDS}/{plural}.dockyard.dev")
    assert crd.status_code == 200, crd.text
    declared = [f["jsonPath"].lstrip(".") for f in crd.json()["spec"]["versions"][0]["selectableFields"]]
    assert declared
    if plural in ("builds", "pushes"):
        assert "status.phase" in declared
    path = f"/apis/dockyard.dev/v1alpha1/namespaces/default/{plural}"
    for field in declared:
        assert names(api.get(path, params={"fieldSelector": f"{field}=x"})) == []
        with api.stream("GET", path, params={"watch": "true", "fieldSelector": f"{field}=x"}) as resp:
            assert resp.status_code == 200, resp.read().decode()
