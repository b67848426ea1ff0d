"""``metadata`` is checked as kube-apiserver checks it (``ValidateObjectMetaAccessor`` and its update), for every
kind: 422 naming the field, in Kubernetes' words, and the stored object unchanged after each refusal.

Over HTTPS against the real API server: labels (qualified-name keys, label values), annotations (qualified-name
keys, 256 KiB in all), owner references (a version, no Event as owner, one controller), finalizers (qualified
names, not both ``orphan`` and ``foregroundDeletion``, none added once the object is being deleted).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
BUILDCONFIGS = "/apis/dockyard.dev/v1alpha1/namespaces/default/buildconfigs"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
QNAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def configmap(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"k": "v"}}


def causes(resp: httpx.Response) -> list[tuple[str, str]]:
    return [(c.get("field", ""), c.get("message", "")) for c in resp.json().get("details", {}).get("causes", [])]


def refused(resp: httpx.Response, field: str, message: str) -> None:
    """422 with a cause on ``field`` whose message is ``message``."""
    assert resp.status_code == 422, resp.text
    assert (field, message) in causes(resp), resp.text
    assert field in resp.json()["message"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"a b": "x"}, f'Invalid value: "a b": {QNAME_PART}'),
        ({"-app": "x"}, f'Invalid value: "-app": {QNAME_PART}'),
        ({"Example.com/app": "x"}, None),  # the prefix must be lower case: its own message, checked below
        ({"app": "has space"}, None),
        ({"app": "v" * 64}, f'Invalid value: "{"v" * 64}": must be no more than 63 characters'),
    ],
)
def test_labels_are_qualified_names_and_label_values(
    api: httpx.Client, labels: dict[str, str], message: str | None
) -> None:
    resp = api.post(CONFIGMAPS, json=configmap("labelled", labels=labels))
    assert resp.status_code == 422, resp.text
    fields = [f for f, _ in causes(resp)]
    assert fields and set(fields) == {"metadata.labels"}, resp.text
    if message is not None:
        assert ("metadata.labels", message) in causes(resp), resp.text
    assert api.get(f"{CONFIGMAPS}/labelled").status_code == 404


def test_a_bad_label_is_refused_on_update_and_patch_and_nothing_changes(api: httpx.Client) -> None:
    created = api.post(CONFIGMAPS, json=configmap("kept", labels={"app": "web"}))
    assert created.status_code == 201, created.text
    stored = created.json()
    bad = f'Invalid value: "a b": {QNAME_PART}'
    refused(
        api.put(f"{CONFIGMAPS}/kept", json={**stored, "metadata": {**stored["metadata"], "labels": {"a b": "x"}}}),
        "metadata.labels",
        bad,
    )
    refused(
        api.patch(f"{CONFIGMAPS}/kept", json={"metadata": {"labels": {"a b": "x"}}}, headers=MERGE),
        "metadata.labels",
        bad,
    )
    refused(
        api.patch(
            f"{CONFIGMAPS}/kept", json=[{"op": "add", "path": "/metadata/labels/a b", "value": "x"}], headers=JSON_PATCH
        ),
        "metadata.labels",
        bad,
    )
    after = api.get(f"{CONFIGMAPS}/kept").json()
    assert after["metadata"]["labels"] == {"app": "web"}
    assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


def test_a_custom_kinds_labels_are_checked_too(api: httpx.Client) -> None:
    body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": "app", "labels": {"team": "a/b/c"}},
        "spec": {
            "source": {"git": {"uri": "https://example.com/app.git"}},
            "output": {"to": {"name": "127.0.0.1:5000/app:latest"}},
        },
    }
    resp = api.post(BUILDCONFIGS, json=body)
    refused(
        resp,
        "metadata.labels",
        'Invalid value: "a/b/c": '
        + (
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
            "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ),
    )


def test_annotation_keys_are_qualified_names_and_all_fit_in_256_kib(api: httpx.Client) -> None:
    refused(
        api.post(CONFIGMAPS, json=configmap("noted", annotations={"bad key": "x"})),
        "metadata.annotations",
        f'Invalid value: "bad key": {QNAME_PART}',
    )
    # keys are compared in lower case: an upper-case prefix is fine for an annotation, not for a label
    ok = api.post(CONFIGMAPS, json=configmap("upper", annotations={"Example.COM/Note": "x"}))
    assert ok.status_code == 201, ok.text
    big = {"a": "x" * (256 * 1024 - 1)}  # 1 + 262,143 bytes: exactly the limit
    assert api.post(CONFIGMAPS, json=configmap("at-limit", annotations=big)).status_code == 201
    over = {"a": "x" * (256 * 1024)}
    resp = api.post(CONFIGMAPS, json=configmap("over-limit", annotations=over))
    refused(resp, "metadata.annotations", "Too long: must have at most 262144 bytes")
    assert [c["reason"] for c in resp.json()["details"]["causes"]] == ["FieldValueTooLong"]


def owner(kind: str, name: str, *, api_version: str = "v1", controller: bool | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}"}
    if controller is not None:
        ref["controller"] = controller
    return ref


def test_owner_references_name_a_version_no_event_and_one_controller(api: httpx.Client) -> None:
    resp = api.post(CONFIGMAPS, json=configmap("owned", ownerReferences=[owner("Event", "e1")]))
    assert resp.status_code == 422, resp.text
    assert any(
        f == "metadata.ownerReferences" and m.endswith(": /v1, Kind=Event is disallowed from being an owner")
        for f, m in causes(resp)
    ), resp.text
    refused(
        api.post(CONFIGMAPS, json=configmap("owned", ownerReferences=[owner("ReplicaSet", "rs", api_version="apps/")])),
        "metadata.ownerReferences.apiVersion",
        'Invalid value: "apps/": version must not be empty',
    )
    two = [
        owner("ReplicaSet", "a", api_version="apps/v1", controller=True),
        owner("ReplicaSet", "b", api_version="apps/v1", controller=True),
    ]
    resp = api.post(CONFIGMAPS, json=configmap("owned", ownerReferences=two))
    assert resp.status_code == 422, resp.text
    assert any(
        f == "metadata.ownerReferences"
        and m.endswith(
            'Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/a and ReplicaSet/b'
        )
        for f, m in causes(resp)
    ), resp.text
    one = [
        owner("ReplicaSet", "a", api_version="apps/v1", controller=True),
        owner("ReplicaSet", "b", api_version="apps/v1", controller=False),
    ]
    assert api.post(CONFIGMAPS, json=configmap("owned", ownerReferences=one)).status_code == 201


def test_finalizers_are_qualified_names_and_not_both_orphan_and_foreground(api: httpx.Client) -> None:
    refused(
        api.post(CONFIGMAPS, json=configmap("held", finalizers=["not a name"])),
        "metadata.finalizers",
        f'Invalid value: "not a name": {QNAME_PART}',
    )
    refused(
        api.post(CONFIGMAPS, json=configmap("held", finalizers=["orphan", "foregroundDeletion"])),
        "metadata.finalizers",
        'Invalid value: ["orphan","foregroundDeletion"]: finalizer orphan and foregroundDeletion cannot be both set',
    )
    assert api.post(CONFIGMAPS, json=configmap("held", finalizers=["example.com/hold", "orphan"])).status_code == 201


def test_no_finalizer_can_be_added_once_the_object_is_being_deleted(api: httpx.Client) -> None:
    assert api.post(CONFIGMAPS, json=configmap("going", finalizers=["example.com/hold"])).status_code == 201
    deleted = api.delete(f"{CONFIGMAPS}/going")
    assert deleted.status_code in (200, 202), deleted.text
    marked = api.get(f"{CONFIGMAPS}/going").json()
    assert marked["metadata"]["deletionTimestamp"]
    forbidden = (
        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers "
        '[]string{"example.com/more"}'
    )
    resp = api.patch(
        f"{CONFIGMAPS}/going",
        json={"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}},
        headers=MERGE,
    )
    refused(resp, "metadata.finalizers", forbidden)
    assert [c["reason"] for c in resp.json()["details"]["causes"]] == ["FieldValueForbidden"]
    put = {**marked, "metadata": {**marked["metadata"], "finalizers": ["example.com/more"]}}
    refused(api.put(f"{CONFIGMAPS}/going", json=put), "metadata.finalizers", forbidden)
    assert api.get(f"{CONFIGMAPS}/going").json()["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    # removing the last one still finishes the deletion
    done = api.patch(f"{CONFIGMAPS}/going", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert done.status_code == 200, done.text
    assert api.get(f"{CONFIGMAPS}/going").status_code == 404


def test_an_update_naming_another_uid_is_refused(api: httpx.Client) -> None:
    """A client holding an earlier object of the same name (deleted and made again meanwhile) must not overwrite
    the new one: ``metadata.uid`` is immutable (``ValidateObjectMetaAccessorUpdate``), even without a
    ``resourceVersion`` precondition. An update that leaves ``uid`` out keeps it."""
    first = api.post(CONFIGMAPS, json=configmap("again")).json()
    assert api.delete(f"{CONFIGMAPS}/again").status_code == 200
    second = api.post(CONFIGMAPS, json=configmap("again")).json()
    stale = {**first, "metadata": {k: v for k, v in first["metadata"].items() if k != "resourceVersion"}}
    stale["data"] = {"k": "stale"}
    uid = first["metadata"]["uid"]
    refused(api.put(f"{CONFIGMAPS}/again", json=stale), "metadata.uid", f'Invalid value: "{uid}": field is immutable')
    refused(
        api.patch(f"{CONFIGMAPS}/again", json={"metadata": {"uid": uid}}, headers=MERGE),
        "metadata.uid",
        f'Invalid value: "{uid}": field is immutable',
    )
    after = api.get(f"{CONFIGMAPS}/again").json()
    assert after["data"] == {"k": "v"}
    assert after["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]
    without = {**second, "metadata": {k: v for k, v in second["metadata"].items() if k != "uid"}, "data": {"k": "w"}}
    kept = api.put(f"{CONFIGMAPS}/again", json=without)
    assert kept.status_code == 200, kept.text
    assert kept.json()["metadata"]["uid"] == second["metadata"]["uid"]


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(template_meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": template_meta, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }


def test_a_pod_templates_labels_and_annotations_are_checked_as_a_pods(api: httpx.Client) -> None:
    """A Deployment whose pods would be refused is refused itself (``ValidatePodTemplateSpec``), rather than
    accepted with a ReplicaSet that can never make a pod."""
    refused(
        api.post(DEPLOYMENTS, json=deployment({"labels": {"app": "web", "a b": "x"}})),
        "spec.template.metadata.labels",
        f'Invalid value: "a b": {QNAME_PART}',
    )
    refused(
        api.post(DEPLOYMENTS, json=deployment({"labels": {"app": "web"}, "annotations": {"bad key": "x"}})),
        "spec.template.metadata.annotations",
        f'Invalid value: "bad key": {QNAME_PART}',
    )
    created = api.post(DEPLOYMENTS, json=deployment({"labels": {"app": "web"}, "annotations": {"example.com/a": "x"}}))
    assert created.status_code == 201, created.text
    resp = api.patch(
        f"{DEPLOYMENTS}/web", json={"spec": {"template": {"metadata": {"labels": {"tier": "-x"}}}}}, headers=MERGE
    )
    assert resp.status_code == 422, resp.text
    assert {f for f, _ in causes(resp)} == {"spec.template.metadata.labels"}, resp.text
