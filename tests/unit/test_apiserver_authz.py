"""Authorization decisions for the admin, view and node identities (pure)."""

from __future__ import annotations

import pytest

from dockyard.api import errors
from dockyard.apiserver import authz

NODE = "system:node:vm"


def attrs(
    user: str, verb: str, resource: str, *, group: str = "", sub: str = "", ns: str = "default", name: str = "x"
) -> authz.Attributes:
    return authz.Attributes(
        user=user, verb=verb, group=group, resource=resource, subresource=sub, namespace=ns, name=name
    )


def test_verbs_from_methods() -> None:
    assert authz.verb_for("GET", named=True) == "get"
    assert authz.verb_for("GET", named=False) == "list"
    assert authz.verb_for("GET", named=False, watch=True) == "watch"
    assert authz.verb_for("POST", named=False) == "create"
    assert authz.verb_for("PUT", named=True) == "update"
    assert authz.verb_for("PATCH", named=True) == "patch"
    assert authz.verb_for("DELETE", named=True) == "delete"
    assert authz.verb_for("DELETE", named=False) == "deletecollection"


def test_admin_may_do_everything() -> None:
    for verb in ("get", "create", "delete", "deletecollection", "patch"):
        assert authz.allowed(attrs("admin", verb, "secrets"))


def test_view_reads_everything_but_secrets() -> None:
    for verb in ("get", "list", "watch"):
        assert authz.allowed(attrs("view", verb, "pods"))
        assert authz.allowed(attrs("view", verb, "builds", group="dockyard.dev"))
        assert not authz.allowed(attrs("view", verb, "secrets"))
    assert authz.allowed(attrs("view", "get", "builds", group="dockyard.dev", sub="log"))
    for verb in ("create", "update", "patch", "delete", "deletecollection"):
        assert not authz.allowed(attrs("view", verb, "pods"))


def test_node_writes_only_what_the_agent_needs() -> None:
    assert authz.allowed(attrs(NODE, "get", "secrets"))
    assert authz.allowed(attrs(NODE, "watch", "pods", name=""))
    assert authz.allowed(attrs(NODE, "patch", "pods"))
    assert authz.allowed(attrs(NODE, "patch", "pods", sub="status"))
    assert authz.allowed(attrs(NODE, "update", "pods", sub="status"))
    assert authz.allowed(attrs(NODE, "patch", "pushes", group="dockyard.dev", sub="status"))
    assert authz.allowed(attrs(NODE, "create", "builds", group="dockyard.dev", sub="log"))
    assert authz.allowed(attrs(NODE, "create", "events", name=""))
    assert authz.allowed(attrs(NODE, "patch", "events"))
    # mirror pods of its static pods; which ones: nodeauthz (tests/integration/test_node_authorizer.py)
    assert authz.allowed(attrs(NODE, "create", "pods", name=""))
    assert authz.allowed(attrs(NODE, "delete", "pods"))
    for verb, resource, group, sub in [
        ("deletecollection", "pods", "", ""),
        ("update", "pods", "", ""),
        ("patch", "builds", "dockyard.dev", "status"),
        ("patch", "pushes", "dockyard.dev", ""),
        ("create", "secrets", "", ""),
        ("delete", "events", "", ""),
    ]:
        assert not authz.allowed(attrs(NODE, verb, resource, group=group, sub=sub)), (verb, resource, sub)


def test_unknown_users_may_do_nothing_with_resources() -> None:
    assert not authz.allowed(attrs("mallory", "get", "pods"))


def test_forbidden_message_is_the_apiservers() -> None:
    with pytest.raises(errors.Forbidden) as err:
        authz.authorize(attrs(NODE, "update", "pods"))
    assert err.value.message == (
        'pods "x" is forbidden: User "system:node:vm" cannot update resource "pods" in '
        'API group "" in the namespace "default"'
    )
    assert err.value.code == 403 and err.value.to_status()["reason"] == "Forbidden"
    listing = authz.forbidden(attrs("view", "list", "secrets", name="", ns=""))
    assert listing.message == (
        'secrets is forbidden: User "view" cannot list resource "secrets" in API group "" at the cluster scope'
    )
    sub = authz.forbidden(attrs(NODE, "patch", "builds", group="dockyard.dev", sub="status"))
    assert sub.message.startswith(
        'builds.dockyard.dev "x" is forbidden: User "system:node:vm" cannot patch '
        'resource "builds/status" in API group "dockyard.dev"'
    )


def test_node_admission_on_pods_and_pushes() -> None:
    unbound = {"spec": {"containers": []}}
    mine = {"spec": {"nodeName": "vm"}}
    theirs = {"spec": {"nodeName": "other"}}
    merge = authz.MERGE_PATCH
    bind = {"metadata": {"labels": {"dockyard.dev/nodename": "vm"}}, "spec": {"nodeName": "vm"}}
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    # the embedded agent schedules its node: it may report an unscheduled pod that does not fit
    scheduling = {"status": {"phase": "Pending", "conditions": [unschedulable]}}
    authz.admit(attrs(NODE, "patch", "pods", sub="status"), unbound, content_type=merge, document=scheduling)
    authz.admit(attrs(NODE, "patch", "pods"), unbound, content_type=merge, document=bind)
    authz.admit(attrs(NODE, "patch", "pods"), mine, content_type=merge, document={"metadata": {"labels": {}}})
    refused = [
        (attrs(NODE, "patch", "pods"), theirs, merge, bind),
        (attrs(NODE, "patch", "pods"), unbound, merge, {"spec": {"nodeName": "other"}}),
        (attrs(NODE, "patch", "pods"), unbound, merge, {"spec": {"containers": []}}),
        (attrs(NODE, "patch", "pods"), unbound, "application/json-patch+json", [{"op": "remove", "path": "/spec"}]),
        (attrs(NODE, "patch", "pods", sub="status"), theirs, merge, {"status": {}}),
        (attrs(NODE, "patch", "pods", sub="status"), unbound, merge, {"status": {}}),
        (attrs(NODE, "patch", "pods", sub="status"), unbound, merge, {"status": {"phase": "Running"}}),
        (attrs(NODE, "patch", "pods", sub="status"), unbound, merge, {"status": {"conditions": [{"type": "Ready"}]}}),
        (attrs(NODE, "patch", "pods", sub="status"), theirs, merge, {"status": {"conditions": [unschedulable]}}),
        (
            attrs(NODE, "patch", "pushes", group="dockyard.dev", sub="status"),
            {"metadata": {"labels": {"dockyard.dev/nodename": "other"}}},
            merge,
            {"status": {}},
        ),
    ]
    for a, stored, ctype, doc in refused:
        with pytest.raises(errors.Forbidden):
            authz.admit(a, stored, content_type=ctype, document=doc)
    authz.admit(attrs(NODE, "patch", "pods", sub="status"), mine, content_type=merge, document={"status": {}})
    authz.admit(
        attrs(NODE, "patch", "pushes", group="dockyard.dev", sub="status"),
        {"metadata": {}},
        content_type=merge,
        document={"status": {}},
    )
    assert authz.needs_admission(attrs(NODE, "patch", "pods"))
    assert not authz.needs_admission(attrs("admin", "patch", "pods"))
