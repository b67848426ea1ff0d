"""Deployment and ReplicaSet fields over real HTTP: each one the API accepts is honoured, or refused with a 422
naming it, as kube-apiserver's ``ValidateDeploymentSpec`` / ``ValidateReplicaSetSpec``
(``pkg/apis/apps/validation``) and ``ValidateLabelSelector`` refuse them. The controllers' side of the selector
is in tests/integration/controllers/test_deployment_selectors.py."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration.conftest import ApiServer, Running, start_server, stop_servers

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
LABELS = {"app": "web", "tier": "y"}
_names = itertools.count()


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory, serving_cert: tuple[Path, Path]) -> Iterator[httpx.Client]:
    """One API server for the module; every object is created with ``dryRun=All`` or deleted after."""
    running: Running = []
    server: ApiServer = start_server(tmp_path_factory.mktemp("deployfields") / "dockyard.db", serving_cert, running)
    with server.client() as client:
        yield client
    stop_servers(running)


def deployment(name: str | None = None, **spec: Any) -> dict[str, Any]:
    """A valid Deployment (a name of its own unless given) with ``spec`` fields replaced."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name or f"web-{next(_names)}"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
            },
        },
    }
    body["spec"].update(copy.deepcopy(spec))
    return body


def replicaset(name: str | None = None, **spec: Any) -> dict[str, Any]:
    body = deployment(name, **spec)
    body["kind"] = "ReplicaSet"
    return body


def template(labels: dict[str, str] | None = None, **pod_spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(LABELS if labels is None else labels)},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}], **pod_spec},
    }


def refused(resp: httpx.Response) -> list[dict[str, Any]]:
    """The causes of a 422 ``Invalid`` Status (the test fails on any other answer)."""
    assert resp.status_code == 422, f"{resp.status_code} {resp.text[:500]}"
    body = resp.json()
    assert body["kind"] == "Status" and body["reason"] == "Invalid", body
    causes: list[dict[str, Any]] = body["details"]["causes"]
    for cause in causes:
        assert cause["field"] in body["message"], body
    return causes


def fields(resp: httpx.Response) -> list[str]:
    return [c["field"] for c in refused(resp)]


def accepted(http: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = http.post(url, json=body, params={"dryRun": "All"})
    assert resp.status_code == 201, f"{resp.status_code} {resp.text[:500]}"
    got: dict[str, Any] = resp.json()
    return got


# ------------------------------------------------------------------ spec.selector (finding 14)

IN_X = {"key": "tier", "operator": "In", "values": ["x"]}


@pytest.mark.parametrize("url", [DEPLOYMENTS, REPLICASETS])
def test_match_expressions_that_refuse_the_template_labels_are_422(http: httpx.Client, url: str) -> None:
    """``tier In (x)`` with template label ``tier: y``: the pods it would create are not its own."""
    body = (deployment if url == DEPLOYMENTS else replicaset)(
        selector={"matchLabels": {"app": "web"}, "matchExpressions": [IN_X]}
    )
    causes = refused(http.post(url, json=body))
    assert [c["field"] for c in causes] == ["spec.template.metadata.labels"]
    assert "`selector` does not match template `labels`" in causes[0]["message"]


@pytest.mark.parametrize(
    "expression",
    [
        {"key": "tier", "operator": "In", "values": ["x", "y"]},
        {"key": "tier", "operator": "NotIn", "values": ["x"]},
        {"key": "tier", "operator": "Exists"},
        {"key": "track", "operator": "DoesNotExist"},
    ],
)
@pytest.mark.parametrize("url", [DEPLOYMENTS, REPLICASETS])
def test_a_selector_of_only_match_expressions_is_accepted(
    http: httpx.Client, url: str, expression: dict[str, Any]
) -> None:
    body = (deployment if url == DEPLOYMENTS else replicaset)(selector={"matchExpressions": [expression]})
    got = accepted(http, url, body)
    assert got["spec"]["selector"] == {"matchExpressions": [expression]}


@pytest.mark.parametrize(
    ("selector", "field", "message"),
    [
        ({}, "spec.selector", "empty selector is invalid for deployment"),
        ({"matchLabels": {}, "matchExpressions": []}, "spec.selector", "empty selector is invalid for deployment"),
        (
            {"matchExpressions": [{"key": "tier", "operator": "Is", "values": ["y"]}]},
            "spec.selector.matchExpressions[0].operator",
            "not a valid selector operator",
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In"}]},
            "spec.selector.matchExpressions[0].values",
            "must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": []}]},
            "spec.selector.matchExpressions[0].values",
            "must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "Exists", "values": ["y"]}]},
            "spec.selector.matchExpressions[0].values",
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            {"matchExpressions": [{"key": "-tier", "operator": "Exists"}]},
            "spec.selector.matchExpressions[0].key",
            "name part must consist of alphanumeric characters",
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["y", "not valid"]}]},
            "spec.selector.matchExpressions[0].values[1]",
            "a valid label must be an empty string or consist of alphanumeric characters",
        ),
        ({"matchLabels": {"app": "we b"}}, "spec.selector.matchLabels", "a valid label must be an empty string"),
        ({"matchLabels": {"a/b/c": "web"}}, "spec.selector.matchLabels", "a qualified name must consist of"),
    ],
)
@pytest.mark.parametrize("url", [DEPLOYMENTS, REPLICASETS])
def test_an_invalid_selector_is_422_naming_it(
    http: httpx.Client, url: str, selector: dict[str, Any], field: str, message: str
) -> None:
    body = (deployment if url == DEPLOYMENTS else replicaset)(selector=selector)
    causes = refused(http.post(url, json=body))
    assert any(c["field"] == field and message in c["message"] for c in causes), causes


def test_a_selector_that_is_missing_is_required(http: httpx.Client) -> None:
    body = deployment()
    del body["spec"]["selector"]
    assert "spec.selector" in fields(http.post(DEPLOYMENTS, json=body))


# ------------------------------------------------------------------ spec.strategy (findings 15 and 16)


@pytest.mark.parametrize(
    ("strategy", "field", "message"),
    [
        ({"rollingUpdate": {"maxSurge": "abc"}}, "spec.strategy.rollingUpdate.maxSurge", "a valid percent string"),
        ({"rollingUpdate": {"maxSurge": "25"}}, "spec.strategy.rollingUpdate.maxSurge", "a valid percent string"),
        ({"rollingUpdate": {"maxSurge": "2.5%"}}, "spec.strategy.rollingUpdate.maxSurge", "a valid percent string"),
        ({"rollingUpdate": {"maxUnavailable": "-5%"}}, "spec.strategy.rollingUpdate.maxUnavailable", "percent"),
        ({"rollingUpdate": {"maxSurge": -1}}, "spec.strategy.rollingUpdate.maxSurge", "greater than or equal to 0"),
        ({"rollingUpdate": {"maxUnavailable": -1}}, "spec.strategy.rollingUpdate.maxUnavailable", "or equal to 0"),
        (
            {"rollingUpdate": {"maxUnavailable": "150%"}},
            "spec.strategy.rollingUpdate.maxUnavailable",
            "must not be greater than 100%",
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
            "spec.strategy.rollingUpdate.maxUnavailable",
            "may not be 0 when `maxSurge` is 0",
        ),
        (
            {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}},
            "spec.strategy.rollingUpdate.maxUnavailable",
            "may not be 0 when `maxSurge` is 0",
        ),
        (
            {"type": "Foo"},
            "spec.strategy",
            'Unsupported value: "Foo": supported values: "Recreate", "RollingUpdate"',
        ),
        (
            {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        ),
    ],
)
def test_an_invalid_strategy_is_422_naming_the_field(
    http: httpx.Client, strategy: dict[str, Any], field: str, message: str
) -> None:
    causes = refused(http.post(DEPLOYMENTS, json=deployment(strategy=strategy)))
    assert any(c["field"] == field and message in c["message"] for c in causes), causes


@pytest.mark.parametrize(
    "strategy",
    [
        {},
        {"type": "Recreate"},
        {"type": "RollingUpdate"},
        {"rollingUpdate": {"maxSurge": 0}},  # maxUnavailable defaults to 25%
        {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 1}},
        {"rollingUpdate": {"maxSurge": "200%", "maxUnavailable": "100%"}},
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "0%"}},
    ],
)
def test_a_valid_strategy_is_accepted(http: httpx.Client, strategy: dict[str, Any]) -> None:
    accepted(http, DEPLOYMENTS, deployment(strategy=strategy))


def test_an_invalid_surge_is_refused_on_update_too(http: httpx.Client) -> None:
    """A merge patch that would store ``maxSurge: "abc"`` is 422; the stored Deployment stays as it was."""
    assert http.post(DEPLOYMENTS, json=deployment("patched")).status_code == 201
    try:
        resp = http.patch(
            f"{DEPLOYMENTS}/patched",
            json={"spec": {"strategy": {"rollingUpdate": {"maxSurge": "abc"}}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert fields(resp) == ["spec.strategy.rollingUpdate.maxSurge"]
        assert "strategy" not in http.get(f"{DEPLOYMENTS}/patched").json()["spec"]
    finally:
        http.delete(f"{DEPLOYMENTS}/patched")


# ------------------------------------------------------------------ counts and deadlines (finding 16)


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"minReadySeconds": -1}, "spec.minReadySeconds", "must be greater than or equal to 0"),
        ({"revisionHistoryLimit": -1}, "spec.revisionHistoryLimit", "must be greater than or equal to 0"),
        ({"progressDeadlineSeconds": -1}, "spec.progressDeadlineSeconds", "must be greater than or equal to 0"),
        (
            {"minReadySeconds": 30, "progressDeadlineSeconds": 30},
            "spec.progressDeadlineSeconds",
            "must be greater than minReadySeconds",
        ),
        (
            {"minReadySeconds": 700},  # the default deadline is 600
            "spec.progressDeadlineSeconds",
            "must be greater than minReadySeconds",
        ),
        ({"replicas": -1}, "spec.replicas", "must be greater than or equal to 0"),
    ],
)
def test_invalid_counts_and_deadlines_are_422(
    http: httpx.Client, spec: dict[str, Any], field: str, message: str
) -> None:
    causes = refused(http.post(DEPLOYMENTS, json=deployment(**spec)))
    assert any(c["field"] == field and message in c["message"] for c in causes), causes


def test_zero_history_and_a_deadline_above_min_ready_are_accepted(http: httpx.Client) -> None:
    accepted(http, DEPLOYMENTS, deployment(revisionHistoryLimit=0, minReadySeconds=5, progressDeadlineSeconds=6))


@pytest.mark.parametrize("url", [DEPLOYMENTS, REPLICASETS])
def test_replicaset_min_ready_seconds_may_not_be_negative(http: httpx.Client, url: str) -> None:
    body = (deployment if url == DEPLOYMENTS else replicaset)(minReadySeconds=-5)
    assert "spec.minReadySeconds" in fields(http.post(url, json=body))


# ------------------------------------------------------------------ the pod template (finding 16)


@pytest.mark.parametrize("policy", ["Never", "OnFailure"])
@pytest.mark.parametrize("url", [DEPLOYMENTS, REPLICASETS])
def test_a_template_restart_policy_other_than_always_is_422(http: httpx.Client, url: str, policy: str) -> None:
    body = (deployment if url == DEPLOYMENTS else replicaset)(template=template(restartPolicy=policy))
    causes = refused(http.post(url, json=body))
    assert [c["field"] for c in causes] == ["spec.template.spec.restartPolicy"]
    assert causes[0]["message"] == f'Unsupported value: "{policy}": supported values: "Always"'
    assert causes[0]["reason"] == "FieldValueNotSupported"


@pytest.mark.parametrize("url", [DEPLOYMENTS, REPLICASETS])
def test_a_template_restart_policy_of_always_is_accepted(http: httpx.Client, url: str) -> None:
    accepted(http, url, (deployment if url == DEPLOYMENTS else replicaset)(template=template(restartPolicy="Always")))
