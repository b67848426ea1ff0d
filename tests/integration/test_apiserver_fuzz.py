"""Bad input never yields a 5xx or a traceback (random bodies and patches over real HTTP)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PODS = "/api/v1/namespaces/default/pods"
BCS = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fz", "labels": {"a": "b"}},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
BC = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": "fz"},
      "spec": {"source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
               "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/x:1"}}}}

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "Pod", "v1", "a=b", "-"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["name", "spec", "metadata", "labels", "x", "$patch",
                                                         "containers", "op", "path", "value"]), inner, max_size=3),
                      max_leaves=8)
paths = st.sampled_from([("metadata",), ("metadata", "name"), ("metadata", "labels"), ("metadata", "namespace"),
                         ("metadata", "ownerReferences"), ("metadata", "finalizers"), ("metadata", "generateName"),
                         ("metadata", "resourceVersion"), ("spec",), ("spec", "containers"), ("kind",),
                         ("apiVersion",), ("status",), ("spec", "output"), ("metadata", "annotations")])
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
    body = resp.json()
    assert isinstance(body, dict) and "kind" in body


@SAFE
@given(st.sampled_from([(PODS, POD), (BCS, BC)]), paths, values)
def test_random_bodies_on_create_and_update(api: httpx.Client, target: Any, path: tuple[str, ...],
                                            value: Any) -> None:
    url, base = target
    body = mutate(base, path, value)
    check(api.post(url, json=body))
    check(api.put(f"{url}/fz", json=body))
    check(api.put(f"{url}/fz/status", json=body))
    api.delete(f"{url}/fz")


@SAFE
@given(st.sampled_from(["application/merge-patch+json", "application/json-patch+json",
                        "application/strategic-merge-patch+json"]), values)
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
    for params in ({"resourceVersion": "x"}, {"resourceVersion": "-5"}, {"labelSelector": "a in (b"},
                   {"timeoutSeconds": "soon"}):
        resp = api.get(PODS, params={"watch": "true", **params})
        assert resp.status_code == 400, resp.text
