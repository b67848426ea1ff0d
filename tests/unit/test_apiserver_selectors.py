"""Label and field selector parsing and matching; watch-side selector transitions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.api import errors
from dockyard.apiserver import selectors, watch
from dockyard.apiserver.selectors import Selector
from dockyard.storage import sqlite


def obj(labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": fields.get("name", "n"), "namespace": "default", "labels": labels or {}},
        "spec": {"nodeName": fields.get("node")} if fields.get("node") else {},
        "status": {"phase": fields["phase"]} if "phase" in fields else {},
    }


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("app in (web, db)", {"app": "db"}, True),
        ("app in (web)", {}, False),
        ("app notin (web)", {}, True),
        ("app notin (web,db)", {"app": "db"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("! app", {}, True),
        ("app=web,tier in (front),!debug", {"app": "web", "tier": "front"}, True),
        ("app=web,tier in (front),!debug", {"app": "web", "tier": "front", "debug": "1"}, False),
        ("dockyard.dev/buildconfig=hello", {"dockyard.dev/buildconfig": "hello"}, True),
        ("count>3", {"count": "4"}, True),
        ("count<3", {"count": "4"}, False),
        ("empty=", {"empty": ""}, True),
    ],
)
def test_label_selector(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert selectors.labels_match(selectors.parse_label_selector(selector), obj(labels)) is expected


@pytest.mark.parametrize("bad", ["app in (web", "app in web)", "a b", "=x", "app=we b", ",", "a,,b", "x>y"])
def test_label_selector_syntax_errors(bad: str) -> None:
    with pytest.raises(errors.BadRequest):
        selectors.parse_label_selector(bad)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=n", True),
        ("metadata.name==n", True),
        ("metadata.name!=n", False),
        ("metadata.namespace=default,metadata.name=n", True),
        ("spec.nodeName=node-1", True),
        ("spec.nodeName=", False),
        ("status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.missing=", True),
    ],
)
def test_field_selector(selector: str, expected: bool) -> None:
    target = obj(node="node-1", phase="Running")
    assert selectors.fields_match(selectors.parse_field_selector(selector), target) is expected


def test_field_selector_escapes_and_errors() -> None:
    req = selectors.parse_field_selector(r"metadata.name=a\,b")
    assert req == (selectors.FieldRequirement("metadata.name", "=", "a,b"),)
    with pytest.raises(errors.BadRequest):
        selectors.parse_field_selector("metadata.name")
    with pytest.raises(errors.BadRequest):
        selectors.parse_field_selector("=x")


_label_values = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,6}[a-z0-9])?", fullmatch=True)


@given(
    st.dictionaries(st.sampled_from(["app", "tier", "env"]), _label_values, max_size=3),
    st.sampled_from(["app", "tier", "env"]),
    _label_values,
)
def test_equality_and_inequality_are_complements(labels: dict[str, str], key: str, value: str) -> None:
    eq = selectors.labels_match(selectors.parse_label_selector(f"{key}={value}"), obj(labels))
    ne = selectors.labels_match(selectors.parse_label_selector(f"{key}!={value}"), obj(labels))
    assert eq != ne
    inn = selectors.labels_match(selectors.parse_label_selector(f"{key} in ({value})"), obj(labels))
    assert inn == eq


def _event(type_: str, new: dict[str, Any], prev: dict[str, Any] | None) -> sqlite.Event:
    return sqlite.Event(revision=5, type=type_, object=new, prev=sqlite.selectable_view(prev) if prev else None)


def test_watch_transitions_across_a_selector() -> None:
    sel = Selector.parse("app=web", None)
    web, db = obj({"app": "web"}), obj({"app": "db"})
    assert watch.for_watcher(_event("ADDED", web, None), sel) == ("ADDED", web)
    assert watch.for_watcher(_event("ADDED", db, None), sel) is None
    assert watch.for_watcher(_event("MODIFIED", db, web), sel) == ("DELETED", db)
    assert watch.for_watcher(_event("MODIFIED", web, db), sel) == ("ADDED", web)
    assert watch.for_watcher(_event("MODIFIED", web, web), sel) == ("MODIFIED", web)
    assert watch.for_watcher(_event("MODIFIED", db, db), sel) is None
    assert watch.for_watcher(_event("DELETED", web, None), sel) == ("DELETED", web)
    phase = Selector.parse(None, "status.phase=Running")
    running, done = obj(phase="Running"), obj(phase="Succeeded")
    assert watch.for_watcher(_event("MODIFIED", done, running), phase) == ("DELETED", done)
    assert watch.for_watcher(_event("MODIFIED", running, obj()), phase) == ("ADDED", running)
    everything = Selector()
    assert watch.for_watcher(_event("MODIFIED", db, web), everything) == ("MODIFIED", db)


def test_parse_start() -> None:
    assert watch.parse_start(None) is None and watch.parse_start("0") is None and watch.parse_start("") is None
    assert watch.parse_start("42") == 42
    for bad in ("abc", "-1", "1.5"):
        with pytest.raises(errors.BadRequest):
            watch.parse_start(bad)
