"""Merge patch (RFC 7386), JSON patch (RFC 6902) and the strategic merge patch subset."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.apiserver import patch

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


# ------------------------------------------------------------------ RFC 7386

RFC7386_EXAMPLES = [  # RFC 7386 Appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "doc", "expected"), RFC7386_EXAMPLES)
def test_merge_patch_rfc_examples(target: Any, doc: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert patch.merge_patch(target, doc) == expected
    assert target == before


@given(json_objects, json_objects)
def test_merge_patch_is_idempotent(target: dict[str, Any], doc: dict[str, Any]) -> None:
    once = patch.merge_patch(target, doc)
    assert patch.merge_patch(once, doc) == once


@given(json_objects)
def test_empty_merge_patch_is_identity(target: dict[str, Any]) -> None:
    assert patch.merge_patch(target, {}) == target


# ------------------------------------------------------------------ RFC 6902


def test_json_patch_operations() -> None:
    doc = {"foo": ["bar", "baz"], "obj": {"a/b": 1, "m~n": 2}}
    ops = [
        {"op": "add", "path": "/foo/1", "value": "qux"},
        {"op": "add", "path": "/foo/-", "value": "end"},
        {"op": "remove", "path": "/foo/0"},
        {"op": "replace", "path": "/obj/a~1b", "value": 10},
        {"op": "copy", "from": "/obj/m~0n", "path": "/copied"},
        {"op": "move", "from": "/copied", "path": "/moved"},
        {"op": "test", "path": "/moved", "value": 2},
    ]
    assert patch.json_patch(doc, ops) == {"foo": ["qux", "baz", "end"], "obj": {"a/b": 10, "m~n": 2}, "moved": 2}
    assert doc == {"foo": ["bar", "baz"], "obj": {"a/b": 1, "m~n": 2}}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "add", "path": "/list/9", "value": 1}],
        [{"op": "add", "path": "/list/01", "value": 1}],
        [{"op": "move", "from": "/a", "path": "/a/b"}],
    ],
)
def test_json_patch_failures(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(patch.PatchError):
        patch.json_patch({"a": 1, "list": [1]}, ops)


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add"},
        [{"path": "/a"}],
        [{"op": "jump", "path": "/a"}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": "/a"}],
    ],
)
def test_json_patch_malformed(ops: Any) -> None:
    with pytest.raises(patch.PatchFormatError):
        patch.json_patch({"a": 1}, ops)


@given(json_objects, st.text(min_size=1, max_size=4), json_values)
def test_json_patch_add_then_remove_restores(doc: dict[str, Any], key: str, value: Any) -> None:
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    if key in doc:
        return
    added = patch.json_patch(doc, [{"op": "add", "path": pointer, "value": value}])
    assert added[key] == value
    assert patch.json_patch(added, [{"op": "remove", "path": pointer}]) == doc


# ------------------------------------------------------------------ strategic merge

POD = {
    "spec": {
        "containers": [
            {
                "name": "a",
                "image": "a:1",
                "env": [{"name": "X", "value": "1"}],
                "ports": [{"containerPort": 80}],
                "args": ["--one"],
            },
            {"name": "b", "image": "b:1"},
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
    }
}


def test_strategic_merges_named_lists_by_key() -> None:
    doc = {"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}}
    out = patch.strategic_merge_patch(POD, doc)
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [("a", "a:1"), ("b", "b:2"), ("c", "c:1")]
    assert out["spec"]["containers"][0]["env"] == [{"name": "X", "value": "1"}]


def test_strategic_nested_lists_ports_env_and_atomic_args() -> None:
    doc = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "Y", "value": "2"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                    "args": ["--two"],
                }
            ]
        }
    }
    a = patch.strategic_merge_patch(POD, doc)["spec"]["containers"][0]
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert a["ports"] == [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]
    assert a["args"] == ["--two"]


def test_strategic_directives() -> None:
    delete = {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}
    assert [c["name"] for c in patch.strategic_merge_patch(POD, delete)["spec"]["containers"]] == ["a"]
    replace = {"spec": {"volumes": [{"name": "w", "hostPath": {"path": "/x"}}, {"$patch": "replace"}]}}
    assert patch.strategic_merge_patch(POD, replace)["spec"]["volumes"] == [{"name": "w", "hostPath": {"path": "/x"}}]
    order = {
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "a:2"}],
        }
    }
    out = patch.strategic_merge_patch(POD, order)
    assert [c["name"] for c in out["spec"]["containers"]] == ["b", "a"]
    assert "$setElementOrder/containers" not in out["spec"]
    retain = {"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/p"}, "$retainKeys": ["name", "hostPath"]}]}}
    assert patch.strategic_merge_patch(POD, retain)["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/p"}}]
    replace_map = {"spec": {"$patch": "replace", "containers": []}}
    assert patch.strategic_merge_patch(POD, replace_map)["spec"] == {"containers": []}
    prim = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    assert patch.strategic_merge_patch({"metadata": {"finalizers": ["a", "b"]}}, prim) == {
        "metadata": {"finalizers": ["b"]}
    }
    assert patch.strategic_merge_patch({"a": {"b": 1}}, {"a": None}) == {}
    with pytest.raises(patch.PatchError):
        patch.strategic_merge_patch({}, {"$patch": "explode"})
    with pytest.raises(patch.PatchFormatError):
        patch.strategic_merge_patch({}, [1])


def test_kubectl_apply_shaped_patch() -> None:
    """The patch kubectl 1.32 sends when one env value changes (observed on the wire)."""
    doc = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": "2"}], "name": "a"}
            ],
        },
    }
    out = patch.strategic_merge_patch(POD, doc)
    assert out["spec"]["containers"][0]["env"] == [{"name": "X", "value": "2"}]
    assert out["spec"]["containers"][0]["image"] == "a:1"
    assert all(not k.startswith("$") for c in out["spec"]["containers"] for k in c)


@given(json_objects, json_objects)
def test_strategic_equals_merge_patch_without_lists(target: dict[str, Any], doc: dict[str, Any]) -> None:
    def no_lists_or_dollars(v: Any) -> bool:
        if isinstance(v, list):
            return False
        if isinstance(v, dict):
            return all(not k.startswith("$") and no_lists_or_dollars(x) for k, x in v.items())
        return True

    if not (no_lists_or_dollars(target) and no_lists_or_dollars(doc)):
        return
    assert patch.strategic_merge_patch(target, doc) == patch.merge_patch(target, doc)


# ------------------------------------------------------------------ bounds (amplification)


def _doubling_copies(count: int) -> list[dict[str, Any]]:
    """``count`` copies of ``/a`` into itself: each doubles the document."""
    return [{"op": "copy", "from": "/a", "path": f"/a/c{n}"} for n in range(count)]


def test_json_patch_operation_limit_is_kube_apiservers() -> None:
    assert patch.MAX_OPERATIONS == 10_000
    ops = [{"op": "test", "path": "/a", "value": 1}] * patch.MAX_OPERATIONS
    assert patch.json_patch({"a": 1}, ops) == {"a": 1}
    with pytest.raises(patch.TooManyOperations) as e:
        patch.json_patch({"a": 1}, ops + [{"op": "test", "path": "/a", "value": 1}])
    assert str(e.value) == "The allowed maximum operations in a JSON patch is 10000, got 10001"


def test_json_patch_copying_into_itself_stops_at_the_copy_limit() -> None:
    started = time.monotonic()
    with pytest.raises(patch.CopySizeExceeded) as e:
        patch.json_patch({"a": {"x": "y" * 1000}}, _doubling_copies(60))
    assert time.monotonic() - started < 2.0
    assert "Unable to complete the copy, the accumulated size increase of copy is " in str(e.value)
    assert str(e.value).endswith(f"exceeding the limit {patch.MAX_COPY_BYTES}")
    assert patch.MAX_COPY_BYTES == 3 * 1024 * 1024


def test_json_patch_copy_sizes_accumulate_over_the_whole_patch() -> None:
    value = "v" * 1000
    # Copy and remove again: the document stays small, but each copy counts (json-patch's semantics).
    ops = [op for n in range(8) for op in ({"op": "copy", "from": "/a", "path": "/b"}, {"op": "remove", "path": "/b"})]
    assert patch.json_patch({"a": value}, ops, max_copy_bytes=8 * 1002) == {"a": value}
    with pytest.raises(patch.CopySizeExceeded) as e:
        patch.json_patch({"a": value}, ops, max_copy_bytes=8 * 1002 - 1)
    assert "the accumulated size increase of copy is 8016, exceeding the limit 8015" in str(e.value)


def test_json_patch_copy_is_measured_before_it_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy that passes the bound is refused before its deep copy (the work stays bounded)."""
    doc = {"a": [{"k": n} for n in range(2_000)]}
    calls: list[str] = []
    real_deepcopy, real_size, depth = patch.copy.deepcopy, patch.json_size, [0]

    def deepcopy(value: object, memo: object = None) -> object:
        if depth[0] == 0:
            calls.append("copy")  # top-level copies only (the recursion goes through this name too)
        depth[0] += 1
        try:
            return real_deepcopy(value, memo)  # type: ignore[arg-type]
        finally:
            depth[0] -= 1

    def json_size(value: object) -> int:
        calls.append("measure")
        return real_size(value)

    monkeypatch.setattr(patch.copy, "deepcopy", deepcopy)
    monkeypatch.setattr(patch, "json_size", json_size)
    with pytest.raises(patch.CopySizeExceeded):
        patch.json_patch(doc, [{"op": "copy", "from": "/a", "path": "/b"}], max_copy_bytes=100)
    assert calls == ["copy", "measure"]  # the document's working copy, then the measure; the value is never copied


def test_json_patch_error_messages_do_not_echo_values() -> None:
    with pytest.raises(patch.PatchError) as e:
        patch.json_patch({"secret": "hunter2"}, [{"op": "test", "path": "/secret", "value": "guess"}])
    assert "hunter2" not in str(e.value) and "guess" not in str(e.value)


def test_strategic_merge_of_long_keyed_lists_is_linear() -> None:
    count = 50_000
    started = time.monotonic()
    doc = {"spec": {"containers": [{"name": f"c{n}"} for n in range(count)]}}
    out = patch.strategic_merge_patch({"spec": {"containers": [{"name": "c1", "image": "i"}]}}, doc)
    assert len(out["spec"]["containers"]) == count and out["spec"]["containers"][0] == {"name": "c1", "image": "i"}
    target = {
        "metadata": {"finalizers": [f"a{n}" for n in range(count)]},
        "spec": {"args": [f"a{n}" for n in range(count)]},
    }
    out = patch.strategic_merge_patch(
        target,
        {
            "metadata": {"finalizers": [f"b{n}" for n in range(count)]},
            "spec": {"$deleteFromPrimitiveList/args": [f"a{n}" for n in range(1, count)]},
        },
    )
    assert len(out["metadata"]["finalizers"]) == 2 * count and out["spec"]["args"] == ["a0"]
    assert time.monotonic() - started < 3.0


def test_strategic_merge_keys_match_by_json_equality() -> None:
    """Merge keys of equal JSON value match (``80`` and ``80``), unhashable ones still work."""
    target = {"ports": [{"containerPort": 80, "name": "a"}, {"containerPort": [1], "name": "odd"}]}
    doc = {
        "ports": [
            {"containerPort": 80, "protocol": "TCP"},
            {"containerPort": [1], "protocol": "UDP"},
            {"containerPort": True, "name": "bool"},
        ]
    }
    assert patch.strategic_merge_patch(target, doc)["ports"] == [
        {"containerPort": 80, "name": "a", "protocol": "TCP"},
        {"containerPort": [1], "name": "odd", "protocol": "UDP"},
        {"containerPort": True, "name": "bool"},
    ]


def _deep(depth: int, leaf: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": leaf}
    for _ in range(depth):
        doc = {"n": doc, "big": leaf}
    return doc


@pytest.mark.parametrize("apply", [patch.merge_patch, patch.strategic_merge_patch])
def test_deep_merge_patches_copy_the_target_once(apply: Any) -> None:
    """A small, deep patch against a large object costs one copy of it, not one per level."""
    big = {f"k{n}": "v" for n in range(20_000)}
    target, doc = _deep(90, big), _deep(90, {"k0": None})
    before = copy.deepcopy(target)
    started = time.monotonic()
    out = apply(target, doc)
    assert time.monotonic() - started < 2.0
    node = out
    for _ in range(90):
        assert "k0" not in node["big"] and "k1" in node["big"]
        node = node["n"]
    assert "k0" not in node["leaf"] and "k1" in node["leaf"]
    assert target == before
