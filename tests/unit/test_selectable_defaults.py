"""Field selectors read what Kubernetes would hold after defaulting (``selectable_view``), not only what is stored."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api import kinds
from dockyard.api import labels as well_known
from dockyard.apiserver.selectors import Selector
from dockyard.storage import sqlite

POD = kinds.by_kind("v1", "Pod")
EVENT = kinds.by_kind("v1", "Event")
RS = kinds.by_kind("apps/v1", "ReplicaSet")


def _pod(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", **meta}, "spec": {"containers": [], **(spec or {})}}


def test_a_pod_without_the_defaulted_fields() -> None:
    assert POD is not None
    view = sqlite.selectable_view(_pod(), POD)
    assert view["spec"] == {
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "hostNetwork": False,
    }
    assert view["status"] == {"phase": "Pending"}


def test_set_values_win_and_empty_strings_default() -> None:
    assert POD is not None
    view = sqlite.selectable_view(_pod({"restartPolicy": "Never", "schedulerName": ""}), POD)
    assert view["spec"]["restartPolicy"] == "Never"
    assert view["spec"]["schedulerName"] == "default-scheduler"


def test_service_account_alias_and_mirror_pods() -> None:
    assert POD is not None
    assert sqlite.selectable_view(_pod({"serviceAccount": "old"}), POD)["spec"]["serviceAccountName"] == "old"
    mirror = _pod(annotations={well_known.CONFIG_MIRROR: "hash"})
    assert "serviceAccountName" not in sqlite.selectable_view(mirror, POD)["spec"]


def test_kinds_without_defaults_are_unchanged() -> None:
    assert EVENT is not None and RS is not None
    assert sqlite.selectable_view({"metadata": {"name": "e"}}, EVENT) == {"metadata": {"name": "e"}}
    assert sqlite.selectable_view({"metadata": {"name": "r"}}, RS) == {
        "metadata": {"name": "r"},
        "status": {"replicas": 0},
    }


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("spec.restartPolicy=Always", True),
        ("spec.restartPolicy!=Always", False),
        ("spec.hostNetwork=false", True),
        ("spec.serviceAccountName=default", True),
        ("status.phase=Pending", True),
        ("spec.nodeName=", True),
    ],
)
def test_selector_matches_the_defaulted_pod(selector: str, expected: bool) -> None:
    assert Selector.parse(None, selector, POD).matches(_pod()) is expected
