"""PATCH cannot amplify: bounded JSON patch operations and copies, bounded patched objects, linear merges.

Attacks over real HTTPS against the real API server (``api`` fixture). Kubernetes' rules:
``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`` (at most 10000 operations, 413) and
json-patch's ``AccumulatedCopySizeLimit``, which the apiserver sets to its ``JSONPatchMaxCopyBytes``
(3 MiB; 422).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from dockyard.apiserver import patch, wire

PODS = "/api/v1/namespaces/default/pods"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
STRATEGIC_PATCH = {"Content-Type": "application/strategic-merge-patch+json"}


def pod(api: httpx.Client, name: str, *, ballast: int = 0, **annotations: str) -> dict[str, Any]:
    """A Pod whose ``metadata.annotations`` are ``annotations`` (256 KiB at most, as in Kubernetes), and whose
    container's environment holds ``ballast`` bytes (a Pod's size has no other bound than the request's)."""
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if ballast:
        container["env"] = [{"name": "BALLAST", "value": "x" * ballast}]
    resp = api.post(
        PODS,
        json={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"containers": [container]},
        },
    )
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


def refused(resp: httpx.Response, code: int, reason: str) -> str:
    assert resp.status_code == code, resp.text[:500]
    body = resp.json()
    assert body["kind"] == "Status" and body["code"] == code and body["reason"] == reason
    message: str = body["message"]
    return message


def unchanged(api: httpx.Client, path: str, before: dict[str, Any]) -> None:
    now = api.get(path).json()
    assert now["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert now["metadata"].get("annotations") == before["metadata"].get("annotations")


def test_copying_an_object_into_itself_is_refused_quickly(api: httpx.Client) -> None:
    """40 doubling copies (a terabyte if applied) stop at the copy limit, in well under a second of work."""
    cm = pod(api, "amp", seed="x" * 1000)
    ops = [{"op": "copy", "from": "/metadata/annotations", "path": f"/metadata/annotations/c{n}"} for n in range(40)]
    started = time.monotonic()
    message = refused(api.patch(f"{PODS}/amp", json=ops, headers=JSON_PATCH), 422, "Invalid")
    assert time.monotonic() - started < 5.0
    assert "the accumulated size increase of copy is" in message
    assert f"exceeding the limit {patch.MAX_COPY_BYTES}" in message
    unchanged(api, f"{PODS}/amp", cm)
    assert api.get("/readyz").status_code == 200


def test_copies_that_would_store_a_large_object_are_refused(api: httpx.Client) -> None:
    """A ~2 KiB patch copying a 100 kB value 40 times: valid shape, 4 MB; refused, nothing stored."""
    cm = pod(api, "wide", a="x" * 100_000)
    ops = [{"op": "copy", "from": "/metadata/annotations/a", "path": f"/metadata/annotations/b{n}"} for n in range(40)]
    message = refused(api.patch(f"{PODS}/wide", json=ops, headers=JSON_PATCH), 422, "Invalid")
    assert "Unable to complete the copy" in message
    unchanged(api, f"{PODS}/wide", cm)
    ops = ops[:1]  # 200 kB of annotations: under both limits, stored
    resp = api.patch(f"{PODS}/wide", json=ops, headers=JSON_PATCH)
    assert resp.status_code == 200, resp.text[:300]
    assert len(resp.json()["metadata"]["annotations"]) == 2


def test_json_patch_operation_limit(api: httpx.Client) -> None:
    cm = pod(api, "ops", a="1")
    ops = [{"op": "test", "path": "/metadata/annotations/a", "value": "1"}] * 10_001
    message = refused(api.patch(f"{PODS}/ops", json=ops, headers=JSON_PATCH), 413, "RequestEntityTooLarge")
    assert message == "The allowed maximum operations in a JSON patch is 10000, got 10001"
    unchanged(api, f"{PODS}/ops", cm)
    ops = [*ops[:9_999], {"op": "add", "path": "/metadata/annotations/b", "value": "2"}]
    resp = api.patch(f"{PODS}/ops", json=ops, headers=JSON_PATCH)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["metadata"]["annotations"] == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (MERGE_PATCH, {"metadata": {"annotations": {"b": "y" * (2 * 1024 * 1024)}}}),
        (STRATEGIC_PATCH, {"metadata": {"annotations": {"b": "y" * (2 * 1024 * 1024)}}}),
        (JSON_PATCH, [{"op": "add", "path": "/metadata/annotations/b", "value": "y" * (2 * 1024 * 1024)}]),
    ],
    ids=["merge", "strategic", "json"],
)
def test_patched_object_larger_than_the_body_limit_is_refused(
    api: httpx.Client, headers: dict[str, str], body: Any
) -> None:
    """Each patch fits in a body, but patch after patch would grow the object without bound."""
    cm = pod(api, "grow", ballast=2 * 1024 * 1024, a="x")
    message = refused(api.patch(f"{PODS}/grow", json=body, headers=headers), 413, "RequestEntityTooLarge")
    assert str(wire.MAX_BODY) in message
    unchanged(api, f"{PODS}/grow", cm)


def test_strategic_merge_of_a_long_list_is_linear(api: httpx.Client) -> None:
    """20,000 containers (a 400 kB patch) took ~20 s under the store lock when merging was quadratic."""
    pod(api, "many")
    doc = {
        "metadata": {"labels": {"x": "y"}},
        "spec": {"containers": [{"name": f"c{n}", "image": "busybox"} for n in range(20_000)]},
    }
    started = time.monotonic()
    resp = api.patch(f"{PODS}/many", json=doc, headers=STRATEGIC_PATCH)
    assert time.monotonic() - started < 5.0
    assert resp.status_code in (200, 422), resp.text[:300]


def test_concurrent_patches_all_land(api: httpx.Client, apiserver: Any) -> None:
    """Patches are applied outside the store lock and stored only if the object did not change meanwhile."""
    pod(api, "race", seed="1")
    failures: list[str] = []

    def worker(n: int) -> None:
        with apiserver.client() as client:
            for m in range(5):
                ops = [{"op": "add", "path": f"/metadata/annotations/k{n}-{m}", "value": "v"}]
                resp = client.patch(f"{PODS}/race", json=ops, headers=JSON_PATCH)
                if resp.status_code != 200:
                    failures.append(resp.text[:200])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures
    assert len(api.get(f"{PODS}/race").json()["metadata"]["annotations"]) == 41
