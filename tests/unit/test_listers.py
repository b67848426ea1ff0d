"""Listers (indexed informer caches) and expectations, as client-go's ``tools/cache`` Indexer, generated
listers and ``pkg/controller`` ``ControllerExpectations`` / ``UIDTrackingControllerExpectations`` behave.

No server: the informer's cache is driven through :meth:`Informer.relisted` and :meth:`Informer.deliver`,
what its list and watch call.
"""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api import buildpod
from dockyard.api import objects as api_objects
from dockyard.client import objects, resources, runtime


def build(name: str, ns: str = "a", *, config: str | None = "app", owner: str | None = None) -> Any:
    """A typed object (a build pod: lightkube's ``Pod``) labelled with its BuildConfig."""
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}"}
    if config:
        meta["labels"] = {buildpod.BUILDCONFIG_LABEL: config}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "BuildConfig", "name": "x", "uid": owner, "controller": True}
        ]
    return objects.parse({"kind": "Pod", "metadata": meta})


def key(obj: Any) -> str:
    return resources.key(obj)


def informer(events: list[tuple[str, str]] | None = None) -> runtime.Informer:
    sink = events if events is not None else []
    return runtime.Informer(
        None,  # type: ignore[arg-type]  # never lists: the test feeds it
        "Pod",
        lambda event, obj: sink.append((event, key(obj))),
        indexers=runtime.label_indexers(buildpod.BUILDCONFIG_LABEL),
    )


def names(objs: list[Any]) -> list[str]:
    return sorted(key(o) for o in objs)


def test_lister_gets_and_lists_by_namespace_and_selector() -> None:
    inf = informer()
    lister = inf.lister
    assert not lister.has_synced()
    inf.relisted([build("b1"), build("b2", config="other"), build("b1", ns="b"), build("b3", config=None)])
    assert lister.has_synced()
    got = lister.get("a", "b1")
    assert got is not None and got.metadata.uid == "uid-a-b1"
    assert lister.get("a", "nope") is None
    assert names(lister.list("a")) == ["a/b1", "a/b2", "a/b3"]
    assert names(lister.list()) == ["a/b1", "a/b2", "a/b3", "b/b1"]
    assert names(lister.list("a", {buildpod.BUILDCONFIG_LABEL: "app"})) == ["a/b1"]
    assert names(lister.list(None, {buildpod.BUILDCONFIG_LABEL: "app"})) == ["a/b1", "b/b1"]
    assert lister.list("a", {"missing": "x"}) == []
    index = runtime.label_index_name(buildpod.BUILDCONFIG_LABEL)
    assert names(lister.by_index(index, "a/other")) == ["a/b2"]
    with pytest.raises(KeyError):
        lister.by_index("no-such-index", "x")


def test_indexes_follow_updates_and_deletes() -> None:
    inf = informer()
    inf.relisted([build("b1", owner="u1"), build("b2", owner="u1")])
    index = runtime.label_index_name(buildpod.BUILDCONFIG_LABEL)
    owner = objects.parse({"kind": "Pod", "metadata": {"name": "x", "uid": "u1"}})
    assert names(inf.lister.owned_by(owner)) == ["a/b1", "a/b2"]
    inf.deliver("MODIFIED", build("b1", config="moved", owner="u2"))  # relabelled and re-owned
    assert names(inf.lister.by_index(index, "a/app")) == ["a/b2"]
    assert names(inf.lister.by_index(index, "a/moved")) == ["a/b1"]
    assert names(inf.lister.owned_by(owner)) == ["a/b2"]
    assert names(inf.lister.by_index(runtime.OWNER_INDEX, "u2")) == ["a/b1"]
    inf.deliver("DELETED", build("b2"))
    assert inf.lister.get("a", "b2") is None
    assert inf.lister.owned_by(owner) == []
    assert names(inf.lister.list("a")) == ["a/b1"]


def test_a_relist_emits_deleted_added_and_modified_as_client_go_replace_does() -> None:
    events: list[tuple[str, str]] = []
    inf = informer(events)
    inf.relisted([build("b1"), build("b2")])
    assert sorted(events) == [("ADDED", "a/b1"), ("ADDED", "a/b2")]
    events.clear()
    inf.relisted([build("b2"), build("b3")])
    assert sorted(events) == [("ADDED", "a/b3"), ("DELETED", "a/b1"), ("MODIFIED", "a/b2")]
    assert names(inf.lister.list("a", {buildpod.BUILDCONFIG_LABEL: "app"})) == ["a/b2", "a/b3"]


def test_the_cache_has_an_event_before_the_handler_sees_it() -> None:
    seen: list[bool] = []
    inf = runtime.Informer(
        None,  # type: ignore[arg-type]
        "Pod",
        lambda event, obj: seen.append(inf.lister.get("a", obj.metadata.name) is not None),
    )
    inf.deliver("ADDED", build("b1"))
    inf.deliver("DELETED", build("b1"))
    assert seen == [True, False]


def test_the_controller_lister_names_a_kind_it_does_not_watch() -> None:
    class C(runtime.Controller):
        name = "c"

    with pytest.raises(KeyError, match="no informer of Build"):
        C(None).lister(api_objects.Build)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_expectations_of_creations_are_satisfied_once_each_is_observed() -> None:
    exp = runtime.Expectations()
    assert exp.satisfied("ns/rs")  # nothing expected: a new controller computes
    exp.expect_creations("ns/rs", 3)
    for _ in range(2):
        exp.creation_observed("ns/rs")
        assert not exp.satisfied("ns/rs")
    assert exp.pending("ns/rs") == (1, 0)
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")  # an object made by someone else: still satisfied
    assert exp.satisfied("ns/rs")
    exp.raise_creations("ns/rs", 1)
    exp.raise_creations("ns/rs", 1)
    assert exp.pending("ns/rs") == (2, 0)
    exp.forget("ns/rs")
    assert exp.satisfied("ns/rs") and exp.pending("ns/rs") == (0, 0)


def test_expectations_of_deletions_track_object_keys() -> None:
    exp = runtime.Expectations()
    exp.expect_deletions("ns/rs", ["ns/p1", "ns/p2"])
    exp.deletion_observed("ns/rs", "ns/p1")
    exp.deletion_observed("ns/rs", "ns/p1")  # seen twice (terminating, then gone): counted once
    exp.deletion_observed("ns/rs", "ns/other")
    assert not exp.satisfied("ns/rs")
    assert exp.pending("ns/rs") == (0, 1)
    exp.deletion_observed("ns/rs", "ns/p2")
    assert exp.satisfied("ns/rs")


def test_expectations_expire_so_a_lost_event_cannot_stall_a_controller() -> None:
    clock = Clock()
    exp = runtime.Expectations(timeout=300, clock=clock)
    exp.expect_creations("k", 1)
    clock.now += 299
    assert not exp.satisfied("k")
    clock.now += 2
    assert exp.satisfied("k")
    assert runtime.EXPECTATIONS_TIMEOUT == 300  # client-go's ExpectationsTimeout
