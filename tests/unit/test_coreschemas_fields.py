"""The field table of the built-in kinds is Kubernetes v1.32's, complete: no real field is ever dropped.

Checked against the Kubernetes v1.32 OpenAPI definitions that ``kubernetes-validate`` ships.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from dockyard.api import kinds
from dockyard.apiserver import coreschemas, structural

SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.32.0-local-strict"
GROUP_PREFIX = {
    "": "io.k8s.api.core.v1",
    "apps": "io.k8s.api.apps.v1",
    "discovery.k8s.io": "io.k8s.api.discovery.v1",
    "coordination.k8s.io": "io.k8s.api.coordination.v1",
}


@lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / "_definitions.json").read_text())["$defs"])


def _target(schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("allOf", "anyOf", "oneOf"):
        if len(schema.get(key) or []) == 1:
            return _target(schema[key][0])
    return None


def _child(schema: dict[str, Any]) -> tuple[str, str] | None:
    if target := _target(schema):
        return "", target
    if isinstance(schema.get("items"), dict) and (target := _target(schema["items"])):
        return "[]", target
    if isinstance(schema.get("additionalProperties"), dict) and (target := _target(schema["additionalProperties"])):
        return "{}", target
    return None


def _kubernetes_table(roots: list[str]) -> dict[str, dict[str, tuple[str, str] | None]]:
    defs = _definitions()
    out: dict[str, dict[str, tuple[str, str] | None]] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        short = name.rsplit(".", 1)[-1]
        if short in out:
            continue
        fields: dict[str, tuple[str, str] | None] = {}
        for field, schema in (defs[name].get("properties") or {}).items():
            child = _child(schema)
            if child and defs[child[1]].get("properties"):
                fields[field] = (child[0], child[1].rsplit(".", 1)[-1])
                todo.append(child[1])
            else:
                fields[field] = None
        out[short] = fields
    return out


def _served_built_ins() -> list[kinds.ResourceInfo]:
    return [i for i in kinds.RESOURCES if (i.group, i.version) in coreschemas.BUILT_IN_GROUP_VERSIONS]


def test_the_table_is_kubernetes_v1_32s_for_every_served_built_in_kind() -> None:
    served = _served_built_ins()
    assert {i.kind for i in served} >= {"Pod", "Deployment", "ReplicaSet", "Service", "Secret", "ConfigMap"}
    roots = [f"{GROUP_PREFIX[i.group]}.{i.kind}" for i in served]
    assert coreschemas.field_table() == _kubernetes_table(roots)
    for info in served:
        assert coreschemas.field_root(info.group, info.version, info.kind) == info.kind


def test_dockyard_kinds_and_crds_have_no_built_in_table() -> None:
    assert coreschemas.field_root(kinds.GROUP, kinds.VERSION, "Build") is None
    assert coreschemas.field_root("example.com", "v1", "Pod") is None


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"spec": {"containers": [{"name": "c"}]}}, []),
        (
            {"spec": {"bogus": 1, "containers": [{"x": 1}, {"name": "c", "y": 2}]}},
            ["spec.bogus", "spec.containers[0].x", "spec.containers[1].y"],
        ),
        (
            {"metadata": {"labels": {"any": "x"}, "managedFields": [{"fieldsV1": {"f:spec": {}}}], "zz": 1}},
            ["metadata.zz"],
        ),
        ({"spec": {"nodeSelector": {"k": "v"}, "overhead": {"cpu": "1"}}}, []),
        ({"spec": "not an object", "status": {"podIPs": [{"ip": "1", "no": 2}]}}, ["status.podIPs[0].no"]),
    ],
)
def test_unknown_fields_of_a_pod(obj: dict[str, Any], expected: list[str]) -> None:
    found = structural.unknown_fields(obj, coreschemas.field_table(), "Pod")
    assert [structural.field_path(loc) for loc in found] == expected
    structural.drop(obj, found)
    assert structural.unknown_fields(obj, coreschemas.field_table(), "Pod") == []
