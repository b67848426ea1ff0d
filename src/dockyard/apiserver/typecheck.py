"""JSON types of built-in objects checked against their schemas, as decoding into Go structs does. Pure.

The apiserver decodes a Pod into Go structs, so ``"image": 5`` never gets
past decoding: 400 ``BadRequest`` with a message such as::

    Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go struct field
    Pod.spec.containers[0].image of type string

dockyard keeps built-in objects as JSON, so it checks the fields its schema
subset (:mod:`dockyard.apiserver.coreschemas`) declares: strings, integers,
booleans, numbers, objects, arrays and maps. ``null`` is accepted anywhere
(Go's zero value); fields the subset does not declare are not checked.
dockyard's own kinds are typed by their pydantic models instead.
"""

from __future__ import annotations

from typing import Any

from dockyard.api import errors, kinds
from dockyard.apiserver import schemas

MAX_NODES = 200_000
"""Upper bound on values visited in one object (bodies are at most 3 MiB anyway)."""


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    for _ in range(16):
        if "$ref" in schema:
            schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            break
    return schema


def _fits(schema: dict[str, Any], value: Any) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    kind = schema.get("type")
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def first_error(info: kinds.ResourceInfo, obj: Any) -> str | None:
    """The first field whose JSON type does not fit the kind's schema, as a Go decoding error, or None."""
    components = schemas.all_components()
    root = components.get(schemas.component_name(info.group, info.version, info.kind))
    if root is None:
        return None
    stack: list[tuple[dict[str, Any], Any, str]] = [(root, obj, info.kind)]
    visited = 0
    while stack and visited < MAX_NODES:
        schema, value, path = stack.pop()
        visited += 1
        if value is None:
            continue
        schema = _resolve(schema, components)
        if not _fits(schema, value):
            want = schema.get("type", "value")
            return f"json: cannot unmarshal {_json_type(value)} into Go struct field {path} of type {want}"
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for key, child in value.items():
                if key in props:
                    stack.append((props[key], child, f"{path}.{key}"))
                elif isinstance(extra, dict):
                    stack.append((extra, child, f"{path}[{key}]"))
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            stack.extend((schema["items"], child, f"{path}[{i}]") for i, child in enumerate(value))
    return None


def check(info: kinds.ResourceInfo, obj: Any) -> None:
    """Raise 400 if a declared field of a built-in object has the wrong JSON type.

    Raises:
        errors.BadRequest: ``<Kind> in version "<v>" cannot be handled as a <Kind>: json: cannot unmarshal ...``.
    """
    if info.group not in ("", "apps"):
        return
    problem = first_error(info, obj)
    if problem is not None:
        raise errors.BadRequest(
            f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {problem}'
        )
