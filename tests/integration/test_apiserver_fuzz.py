"""Bad input never yields a 5xx or a traceback (random bodies and patches over real HTTP)."""

from __future__ import annotations

import copy
import urllib.parse
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PODS = "/api/v1/namespaces/default/pods"
BCS = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "fz", "labels": {"a": "b"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}
BC = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "BuildConfig",
    "metadata": {"name": "fz"},
    "spec": {
        "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:1"}},
    },
}

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "Pod", "v1", "a=b", "-"])
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["name", "spec", "metadata", "labels", "x", "$patch", "containers", "op", "path", "value"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
paths = st.sampled_from(
    [
        ("metadata",),
        ("metadata", "name"),
        ("metadata", "labels"),
        ("metadata", "namespace"),
        ("metadata", "ownerReferences"),
        ("metadata", "finalizers"),
        ("metadata", "generateName"),
        ("metadata", "resourceVersion"),
        ("spec",),
        ("spec", "containers"),
        ("kind",),
        ("apiVersion",),
        ("status",),
        ("spec", "output"),
        ("metadata", "annotations"),
    ]
)
SAFE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutate(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return out


def check(resp: httpx.Response) -> None:
    assert resp.status_code < 500, resp.text
    assert "Traceback" not in resp.text
    assert resp.headers.get("content-type") == "application/json", (resp.status_code, resp.text[:200])
    body = resp.json()
    assert isinstance(body, dict) and "kind" in body


@SAFE
@given(st.sampled_from([(PODS, POD), (BCS, BC)]), paths, values)
def test_random_bodies_on_create_and_update(api: httpx.Client, target: Any, path: tuple[str, ...], value: Any) -> None:
    url, base = target
    body = mutate(base, path, value)
    check(api.post(url, json=body))
    check(api.put(f"{url}/fz", json=body))
    check(api.put(f"{url}/fz/status", json=body))
    api.delete(f"{url}/fz")


@SAFE
@given(
    st.sampled_from(
        ["application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json"]
    ),
    values,
)
def test_random_patches(api: httpx.Client, content_type: str, doc: Any) -> None:
    if api.get(f"{PODS}/fz").status_code == 404:
        assert api.post(PODS, json=POD).status_code == 201
    for url in (f"{PODS}/fz", f"{PODS}/fz/status"):
        check(api.patch(url, json=doc, headers={"Content-Type": content_type}))


@SAFE
@given(st.text(max_size=30), st.text(max_size=30), st.sampled_from(["", "0", "x", "-5", "99999999999999"]))
def test_random_query_parameters(api: httpx.Client, label: str, field: str, token: str) -> None:
    check(api.get(PODS, params={"labelSelector": label, "fieldSelector": field, "limit": token}))
    check(api.get(PODS, params={"continue": token or label}))


def test_bad_watch_parameters_are_400(api: httpx.Client) -> None:
    for params in (
        {"resourceVersion": "x"},
        {"resourceVersion": "-5"},
        {"labelSelector": "a in (b"},
        {"timeoutSeconds": "soon"},
    ):
        resp = api.get(PODS, params={"watch": "true", **params})
        assert resp.status_code == 400, resp.text


# ------------------------------------------------------------------ the categories of the issue:
# malformed JSON, wrong types, huge strings, unknown fields, path tricks in names; then the server is alive.

ENDPOINTS = [
    PODS,
    BCS,
    "/api/v1/namespaces/default/secrets",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/dockyard.dev/v1alpha1/namespaces/default/pushes",
    "/api/v1/namespaces",
]
CONTENT_TYPES = [
    "application/json",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/vnd.kubernetes.protobuf",
    "application/apply-patch+yaml",
    "text/plain",
    "",
]
VALID = [
    b'{"metadata":{"name":"fz"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}',
    b'[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]',
]
BUDGET = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def malformed_bodies() -> st.SearchStrategy[bytes]:
    truncated = st.tuples(st.sampled_from(VALID), st.integers(0, 80)).map(lambda t: t[0][: t[1]])
    spliced = st.tuples(st.sampled_from(VALID), st.integers(0, 80), st.binary(max_size=8)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    )
    weird = st.sampled_from(
        [
            b"NaN",
            b'{"a": Infinity}',
            b"[" * 5000,
            b'{"a":' * 3000,
            b"\xff\xfe{}",
            b"null",
            b'"string"',
            b"k8s\x00\x0a\x02v1",
            b"k8s\x00" + bytes(range(40)),
            b"{}" * 1000,
            b'{"metadata": {"name": "a\\ud800"}}',
            b"1e999999",
            b"-" * 100,
        ]
    )
    return st.one_of(truncated, spliced, weird, st.binary(max_size=64))


def check_any(resp: httpx.Response) -> None:
    assert resp.status_code < 500, resp.text
    assert "Traceback" not in resp.text


@BUDGET
@given(
    st.sampled_from(ENDPOINTS),
    st.sampled_from(["POST", "PUT", "PATCH"]),
    st.sampled_from(CONTENT_TYPES),
    malformed_bodies(),
)
def test_malformed_bodies(api: httpx.Client, url: str, method: str, content_type: str, body: bytes) -> None:
    target = url if method == "POST" else f"{url}/fz"
    check_any(api.request(method, target, content=body, headers={"Content-Type": content_type}))


type_soup = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
deep_paths = st.sampled_from(
    [
        ("spec", "containers", "0", "ports"),
        ("spec", "containers", "0", "image"),
        ("spec", "restartPolicy"),
        ("spec", "containers", "0", "env"),
        ("spec", "volumes"),
        ("spec", "replicas"),
        ("spec", "selector"),
        ("spec", "source", "git"),
        ("spec", "output", "to", "name"),
        ("spec", "triggers"),
        ("spec", "runPolicy"),
        ("spec", "completionDeadlineSeconds"),
        ("metadata", "labels", "a"),
        ("metadata", "ownerReferences"),
        ("data",),
        ("stringData",),
        ("type",),
        ("metadata", "deletionTimestamp"),
        ("metadata", "uid"),
    ]
)


def put_at(doc: Any, path: tuple[str, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        if isinstance(node, list):
            if not node:
                node.append({})
            node = node[0]
        else:
            if not isinstance(node.get(key), (dict, list)):
                node[key] = {}
            node = node[key]
    if isinstance(node, dict):
        node[path[-1]] = value
    return out


@BUDGET
@given(st.sampled_from([(PODS, POD), (BCS, BC)]), deep_paths, type_soup)
def test_wrong_types_anywhere(api: httpx.Client, target: Any, path: tuple[str, ...], value: Any) -> None:
    url, base = target
    check(api.post(url, json=put_at(base, path, value)))
    check(api.put(f"{url}/fz", json=put_at(base, path, value)))
    check(
        api.patch(f"{url}/fz", json=put_at({}, path, value), headers={"Content-Type": "application/merge-patch+json"})
    )
    api.delete(f"{url}/fz")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["a", "é", "\u0000", "\U0001f600"]),
    st.sampled_from([1_000, 70_000, 1_000_000]),
    st.sampled_from(["name", "label", "annotation", "image", "selector", "namespace", "key"]),
)
def test_huge_strings(api: httpx.Client, char: str, length: int, where: str) -> None:
    text = char * length
    body = copy.deepcopy(POD)
    if where == "name":
        body["metadata"]["name"] = text
    elif where == "label":
        body["metadata"]["labels"] = {"a": text}
    elif where == "annotation":
        body["metadata"]["annotations"] = {"a": text}
    elif where == "key":
        body["metadata"]["labels"] = {text[:5000]: "v"}
    elif where == "image":
        body["spec"]["containers"][0]["image"] = text
    if where == "selector":
        check(
            api.get(
                PODS, params={"labelSelector": f"a={text[:2_500]}", "fieldSelector": f"metadata.name={text[:2_500]}"}
            )
        )
    elif where == "namespace":
        check_any(api.get(f"/api/v1/namespaces/{urllib.parse.quote(text[:5_000])}/pods"))
    else:
        check(api.post(PODS, json=body))
        api.delete(f"{PODS}/fz")


@BUDGET
@given(
    st.sampled_from([(PODS, POD), (BCS, BC)]),
    st.sampled_from([(), ("spec",), ("metadata",), ("spec", "output"), ("spec", "containers", "0")]),
    st.dictionaries(st.text(min_size=1, max_size=12), type_soup, min_size=1, max_size=3),
    st.sampled_from([None, "Strict", "Warn", "Ignore"]),
)
def test_unknown_fields(
    api: httpx.Client, target: Any, where: tuple[str, ...], extra: dict[str, Any], validation: str | None
) -> None:
    url, base = target
    body = copy.deepcopy(base)
    node: Any = body
    for key in where:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    for key, value in extra.items():
        if key not in node:
            node[key] = value
    params = {"fieldValidation": validation} if validation else {}
    check(api.post(url, json=body, params=params))
    api.delete(f"{url}/fz")


name_tricks = st.one_of(
    st.sampled_from(
        [
            "..",
            ".",
            "%2F",
            "a%2Fb",
            "..%2F..%2Fetc",
            "%00",
            "a%00b",
            "%ff",
            "%C3%A9",
            "~",
            "a;b",
            "a b",
            "a?b=c",
            "a#b",
            "%252F",
            "%5C",
            "CON",
            "a" * 300,
            "-a-",
            "a.",
            "\u212b",
            "%E2%80%AE",
        ]
    ),
    st.text(min_size=1, max_size=20).map(lambda t: urllib.parse.quote(t, safe="")),
)


@BUDGET
@given(
    name_tricks,
    st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "POST"]),
    st.sampled_from(["name", "namespace", "subresource", "extra"]),
)
def test_path_tricks_in_names(api: httpx.Client, trick: str, method: str, where: str) -> None:
    paths = {
        "name": f"{PODS}/{trick}",
        "namespace": f"/api/v1/namespaces/{trick}/pods/x",
        "subresource": f"{PODS}/x/{trick}",
        "extra": f"{BCS}/x/webhooks/{trick}/generic",
    }
    body = {"metadata": {"name": trick}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    request = api.build_request(
        method,
        "/",
        json=body if method != "GET" else None,
        headers={"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {},
    )
    raw = urllib.parse.quote(paths[where], safe="/%;=~.-_")
    request.url = request.url.copy_with(raw_path=raw.encode("ascii"))
    check_any(api.send(request))


@BUDGET
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "watch",
                "resourceVersion",
                "resourceVersionMatch",
                "limit",
                "continue",
                "timeoutSeconds",
                "allowWatchBookmarks",
                "sendInitialEvents",
                "labelSelector",
                "fieldSelector",
                "fieldValidation",
                "dryRun",
                "propagationPolicy",
                "gracePeriodSeconds",
                "timeout",
            ]
        ),
        st.sampled_from(
            [
                "",
                "0",
                "1",
                "true",
                "false",
                "x",
                "-1",
                "1e3",
                "Exact",
                "NotOlderThan",
                "All",
                "Orphan",
                "a=b",
                "metadata.name=x",
                "\x00",
                "%",
                "1s",
            ]
        ),
        max_size=6,
    )
)
def test_random_list_and_watch_options(api: httpx.Client, params: dict[str, str]) -> None:
    if params.get("watch") in ("true", "1"):
        params["timeoutSeconds"] = "1"
    check(api.get(PODS, params=params)) if params.get("watch") not in ("true", "1") else check_any(
        api.get(PODS, params=params)
    )
    check(api.delete(f"{PODS}/nothing", params=params))


def test_server_is_alive_after_bad_input(api: httpx.Client) -> None:
    for body in (b"{" * 100_000, b"\x00" * 1000, b'{"metadata": {"name": "' + b"a" * 2_000_000 + b'"}}'):
        check_any(api.post(PODS, content=body, headers={"Content-Type": "application/json"}))
    assert api.get("/readyz").status_code == 200
    assert api.post(PODS, json=POD).status_code == 201
    assert api.get(f"{PODS}/fz").json()["metadata"]["name"] == "fz"
