"""Pure apps/v1 rules: label selectors with ``matchExpressions`` (``labels.Requirement.Matches``,
``ValidateLabelSelector``) and the percent strings of a rolling update (``IsValidPercent``)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api import labelselector, workloads

X = {"app": "web", "tier": "x"}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, X, True),  # empty: everything
        (None, X, False),  # nil: nothing
        ({"matchLabels": {"app": "web"}}, X, True),
        ({"matchLabels": {"app": "api"}}, X, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "z"]}]}, X, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["y"]}]}, X, False),
        ({"matchExpressions": [{"key": "track", "operator": "In", "values": ["y"]}]}, X, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["y"]}]}, X, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}, X, False),
        ({"matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["x"]}]}, X, True),  # absent
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, X, True),
        ({"matchExpressions": [{"key": "track", "operator": "Exists"}]}, X, False),
        ({"matchExpressions": [{"key": "track", "operator": "DoesNotExist"}]}, X, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, X, False),
        (  # every requirement must hold, with matchLabels
            {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["y"]}]},
            X,
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Is", "values": ["x"]}]}, X, False),  # invalid: nothing
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": []}]}, X, False),
    ],
)
def test_matches(selector: dict[str, Any] | None, labels: dict[str, str], expected: bool) -> None:
    assert labelselector.matches(selector, labels) is expected


def test_messages_are_spelled_as_kubernetes_spells_them() -> None:
    assert labelselector.qualified_name_errors("-tier") == [
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    ]
    assert labelselector.qualified_name_errors("example.com/tier") == []
    assert labelselector.qualified_name_errors("Example.com/tier")[0].startswith("prefix part a lowercase RFC 1123")
    assert labelselector.label_value_errors("") == []
    assert labelselector.label_value_errors("x" * 64)[0] == "must be no more than 63 characters"
    causes = workloads.spec_causes({"strategy": {"rollingUpdate": {"maxSurge": "abc"}}}, deployment=True)
    surge = next(c for c in causes if c.field == "spec.strategy.rollingUpdate.maxSurge")
    assert surge.message == (
        "Invalid value: \"abc\": a valid percent string must be a numeric string followed by an ending '%' "
        "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("25%", 25), ("0%", 0), ("250%", 250), ("25", None), ("-5%", None), ("2.5%", None), (5, None)],
)
def test_percent(value: Any, expected: int | None) -> None:
    assert workloads.percent(value) == expected


def test_a_replicaset_has_no_strategy_rules() -> None:
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}},
        "minReadySeconds": 700,
    }
    assert workloads.spec_causes(spec, deployment=False) == []
    assert [c.field for c in workloads.spec_causes(spec, deployment=True)] == ["spec.progressDeadlineSeconds"]
