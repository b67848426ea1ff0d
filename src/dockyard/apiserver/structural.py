"""Structural schemas: the checks, pruning, defaulting and validation of custom resources. Pure.

The rules are those of apiextensions-apiserver for ``apiextensions.k8s.io/v1`` CRDs
("Specifying a structural schema", "Field pruning", "Defaulting", "Validation" in
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/):

- :func:`structural_causes`: a schema is structural when every node states a ``type`` (or is
  ``x-kubernetes-int-or-string`` / ``x-kubernetes-preserve-unknown-fields``), has no ``$ref``,
  and never has both ``properties`` and ``additionalProperties``; arrays have ``items``.
- :func:`prune`: fields the schema does not declare are dropped (unless an object node has
  ``x-kubernetes-preserve-unknown-fields: true``), and so are ``null`` values of fields that are
  not ``nullable``. ``apiVersion``, ``kind`` and ``metadata`` at the root are always kept.
- :func:`unknown_fields` / :func:`drop`: the same for the built-in kinds, against the complete field table of their
  Kubernetes types (:func:`dockyard.apiserver.coreschemas.field_table`), as Go's strict decoding finds them.
- :func:`apply_defaults`: a missing property with a ``default`` gets it (after pruning, as the
  apiserver does).
- :func:`validate`: ``type``, ``enum``, ``required``, ``minimum``/``maximum`` (and exclusive),
  ``multipleOf``, ``minLength``/``maxLength``, ``pattern``, ``minItems``/``maxItems``,
  ``uniqueItems``, ``minProperties``/``maxProperties``, with the apiserver's messages
  (``spec.replicas: Invalid value: "x": spec.replicas in body must be of type integer: "string"``).
  ``x-kubernetes-validations`` (CEL) are checked by :mod:`dockyard.apiserver.celrules`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from dockyard.api.errors import Cause

Schema = dict[str, Any]

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
ROOT_FIELDS = ("apiVersion", "kind", "metadata")
MAX_CAUSES = 100
"""At most this many causes per object (the apiserver caps its error lists too)."""

_TYPES = ("object", "array", "string", "integer", "number", "boolean")
_VALUE_KEYS = ("allOf", "anyOf", "oneOf", "not")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _shown(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)[:256]


# ------------------------------------------------------------------ structural check


def structural_causes(schema: Any, path: str) -> list[Cause]:
    """Why ``schema`` (an ``openAPIV3Schema`` at field path ``path``) is not structural; ``[]`` if it is.

    Causes name the schema path as the apiserver does
    (``spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value``).
    """
    causes: list[Cause] = []
    _structural(schema, path, causes, root=True)
    return causes[:MAX_CAUSES]


def _structural(node: Any, path: str, causes: list[Cause], *, root: bool = False, value_only: bool = False) -> None:
    if not isinstance(node, dict):
        causes.append(Cause(path, f"Invalid value: {_shown(node)}: must be an object", "FieldValueInvalid"))
        return
    if "$ref" in node:
        causes.append(
            Cause(f"{path}.$ref", "Forbidden: $ref is not allowed in a structural schema", "FieldValueForbidden")
        )
    type_ = node.get("type")
    if type_ is not None and type_ not in _TYPES:
        causes.append(
            Cause(
                f"{path}.type",
                f'Unsupported value: "{type_}": supported values: ' + ", ".join(f'"{t}"' for t in _TYPES),
                "FieldValueNotSupported",
            )
        )
    open_ = node.get(PRESERVE) is True or node.get(INT_OR_STRING) is True
    if not value_only and not type_ and not open_:
        causes.append(
            Cause(f"{path}.type", "Required value: must not be empty for specified fields", "FieldValueRequired")
        )
    if root and type_ not in (None, "object"):
        causes.append(
            Cause(f"{path}.type", f'Invalid value: "{type_}": must be object at the root', "FieldValueInvalid")
        )
    if "properties" in node and "additionalProperties" in node:
        causes.append(
            Cause(
                f"{path}.additionalProperties",
                "Forbidden: additionalProperties and properties are mutual exclusive",
                "FieldValueForbidden",
            )
        )
    if type_ == "array" and not value_only and not isinstance(node.get("items"), dict):
        causes.append(Cause(f"{path}.items", "Required value: must be specified for arrays", "FieldValueRequired"))
    props = node.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            causes.append(Cause(f"{path}.properties", "Invalid value: must be an object", "FieldValueInvalid"))
        else:
            for name, child in props.items():
                _structural(child, f"{path}.properties[{name}]", causes, value_only=value_only)
    if isinstance(node.get("items"), dict):
        _structural(node["items"], f"{path}.items", causes, value_only=value_only)
    if isinstance(node.get("additionalProperties"), dict):
        _structural(node["additionalProperties"], f"{path}.additionalProperties", causes, value_only=value_only)
    for key in _VALUE_KEYS:
        options = node.get(key)
        for i, option in enumerate(options if isinstance(options, list) else [options] if options else []):
            _structural(option, f"{path}.{key}[{i}]", causes, value_only=True)
    if "pattern" in node:
        try:
            _regex(str(node["pattern"]))
        except re.error as err:
            causes.append(
                Cause(f"{path}.pattern", f"Invalid value: {_shown(node['pattern'])}: {err}", "FieldValueInvalid")
            )


# ------------------------------------------------------------------ pruning and defaulting


def prune(obj: Any, schema: Schema) -> list[tuple[str | int, ...]]:
    """Drop, in place, every field ``schema`` does not declare; returns their locations (sorted)."""
    dropped: list[tuple[str | int, ...]] = []
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for key in list(obj):
            if key in ROOT_FIELDS:
                if key != "metadata" and key in props:
                    _prune(obj[key], props[key], (key,), dropped)
                continue
            _prune_field(obj, key, schema, (), dropped)
    return sorted(dropped, key=lambda loc: tuple(str(p) for p in loc))


def _prune_field(parent: dict[str, Any], key: str, schema: Schema, loc: tuple[str | int, ...], out: list[Any]) -> None:
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    if isinstance(props, dict) and key in props:
        child = props[key]
    elif isinstance(extra, dict):
        child = extra
    elif schema.get(PRESERVE) is True or extra is True:
        return
    else:
        del parent[key]
        out.append((*loc, key))
        return
    if parent[key] is None and not child.get("nullable"):
        del parent[key]
        return
    _prune(parent[key], child, (*loc, key), out)


def _prune(value: Any, schema: Schema, loc: tuple[str | int, ...], out: list[Any]) -> None:
    if isinstance(value, dict):
        for key in list(value):
            _prune_field(value, key, schema, loc, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        for i, item in enumerate(value):
            _prune(item, items, (*loc, i), out)


def unknown_fields(
    obj: Any, table: dict[str, dict[str, tuple[str, str] | None]], root: str
) -> list[tuple[str | int, ...]]:
    """The locations, at any depth, of the fields of ``obj`` that type ``root`` of ``table``
    (:func:`.coreschemas.field_table`) does not have, in document order (as Go's strict JSON decoding meets
    them). ``obj`` is not changed (see :func:`drop`)."""
    found: list[tuple[str | int, ...]] = []
    _unknown(obj, table, root, (), found)
    return found


def _unknown(
    value: Any,
    table: dict[str, dict[str, tuple[str, str] | None]],
    type_name: str,
    loc: tuple[str | int, ...],
    out: list[Any],
) -> None:
    fields = table.get(type_name)
    if fields is None or not isinstance(value, dict):
        return
    for key, item in value.items():
        if key not in fields:
            out.append((*loc, key))
            continue
        child = fields[key]
        if child is None:
            continue
        shape, target = child
        if shape == "[]" and isinstance(item, list):
            for i, element in enumerate(item):
                _unknown(element, table, target, (*loc, key, i), out)
        elif shape == "{}" and isinstance(item, dict):
            for name, element in item.items():
                _unknown(element, table, target, (*loc, key, name), out)
        elif not shape:
            _unknown(item, table, target, (*loc, key), out)


_MISSING = object()


def value_at(obj: Any, loc: tuple[str | int, ...]) -> Any:
    """The value at ``loc`` in ``obj``, or :data:`_MISSING`."""
    node = obj
    for part in loc:
        in_list = isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node)
        if not in_list and not (isinstance(part, str) and isinstance(node, dict) and part in node):
            return _MISSING
        node = node[part]
    return node


def has_value(obj: Any, loc: tuple[str | int, ...], value: Any) -> bool:
    """True if ``obj`` holds ``value`` at ``loc``."""
    found = value_at(obj, loc)
    return found is not _MISSING and found == value


def drop(obj: Any, locations: list[tuple[str | int, ...]]) -> None:
    """Remove, in place, the fields at ``locations`` (from :func:`unknown_fields`)."""
    for loc in locations:
        parent = value_at(obj, loc[:-1])
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)


def field_path(loc: tuple[str | int, ...]) -> str:
    """``spec.containers[0].name`` for ``("spec", "containers", 0, "name")``."""
    out = ""
    for part in loc:
        out = _join(out, part)
    return out


def apply_defaults(value: Any, schema: Schema) -> None:
    """Set, in place, the ``default`` of every missing property whose parent object is present."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, child in props.items():
            if key not in value and "default" in child and key not in ROOT_FIELDS:
                value[key] = json.loads(json.dumps(child["default"]))
            if key in value and key != "metadata":
                apply_defaults(value[key], child)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, child_value in value.items():
                if key not in props:
                    apply_defaults(child_value, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


# ------------------------------------------------------------------ validation


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def type_name(value: Any) -> str:
    """The JSON schema type of a value (``integer`` for whole numbers, ``null`` for ``None``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fits(type_: str, value: Any) -> bool:
    actual = type_name(value)
    if type_ == "number":
        return actual in ("integer", "number")
    if type_ == "integer" and isinstance(value, float):
        return value.is_integer()
    return actual == type_


def validate(obj: Any, schema: Schema) -> list[Cause]:
    """Every way ``obj`` breaks ``schema`` (after pruning and defaulting), as field-path causes.

    ``apiVersion``, ``kind`` and ``metadata`` at the root are the apiserver's own (not checked here).
    """
    causes: list[Cause] = []
    if isinstance(obj, dict):
        for key, child in (schema.get("properties") or {}).items():
            if key in ROOT_FIELDS:
                continue
            if key in obj:
                _validate(obj[key], child, key, (key,), causes)
        for key in schema.get("required") or []:
            if key not in obj and key not in ROOT_FIELDS:
                causes.append(Cause(key, "Required value", "FieldValueRequired", (key,)))
    return causes[:MAX_CAUSES]


def _invalid(path: str, loc: tuple[str | int, ...], value: Any, text: str) -> Cause:
    return Cause(path, f"Invalid value: {_shown(value)}: {path} in body {text}", "FieldValueInvalid", loc)


def _validate(value: Any, schema: Schema, path: str, loc: tuple[str | int, ...], out: list[Cause]) -> None:
    if len(out) >= MAX_CAUSES:
        return
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            out.append(_invalid(path, loc, value, f'must be of type {schema["type"]}: "null"'))
        return
    if schema.get(INT_OR_STRING):
        if type_name(value) not in ("integer", "string"):
            out.append(_invalid(path, loc, value, f'must be of type integer or string: "{type_name(value)}"'))
            return
    elif (type_ := schema.get("type")) and not _fits(type_, value):
        out.append(_invalid(path, loc, value, f'must be of type {type_}: "{type_name(value)}"'))
        return
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        supported = ", ".join(_shown(v) for v in enum)
        out.append(
            Cause(
                path,
                f"Unsupported value: {_shown(value)}: supported values: {supported}",
                "FieldValueNotSupported",
                loc,
            )
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _numbers(value, schema, path, loc, out)
    elif isinstance(value, str):
        _strings(value, schema, path, loc, out)
    elif isinstance(value, list):
        _arrays(value, schema, path, loc, out)
    elif isinstance(value, dict):
        _objects(value, schema, path, loc, out)


def _numbers(value: float, schema: Schema, path: str, loc: tuple[str | int, ...], out: list[Cause]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None:
        if schema.get("exclusiveMinimum") and value <= low:
            out.append(_invalid(path, loc, value, f"should be greater than {low}"))
        elif value < low:
            out.append(_invalid(path, loc, value, f"should be greater than or equal to {low}"))
    if high is not None:
        if schema.get("exclusiveMaximum") and value >= high:
            out.append(_invalid(path, loc, value, f"should be less than {high}"))
        elif value > high:
            out.append(_invalid(path, loc, value, f"should be less than or equal to {high}"))
    step = schema.get("multipleOf")
    if step and (value / step) != int(value / step):
        out.append(_invalid(path, loc, value, f"should be a multiple of {step}"))


def _strings(value: str, schema: Schema, path: str, loc: tuple[str | int, ...], out: list[Cause]) -> None:
    longest, shortest = schema.get("maxLength"), schema.get("minLength")
    if longest is not None and len(value) > longest:
        out.append(Cause(path, f"Too long: may not be more than {longest} bytes", "FieldValueTooLong", loc))
    if shortest is not None and len(value) < shortest:
        out.append(_invalid(path, loc, value, f"should be at least {shortest} chars long"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and _regex(pattern).search(value) is None:
        out.append(_invalid(path, loc, value, f"should match '{pattern}'"))


def _arrays(value: list[Any], schema: Schema, path: str, loc: tuple[str | int, ...], out: list[Cause]) -> None:
    most, least = schema.get("maxItems"), schema.get("minItems")
    if most is not None and len(value) > most:
        out.append(Cause(path, f"Too many: {len(value)}: must have at most {most} items", "FieldValueTooMany", loc))
    if least is not None and len(value) < least:
        out.append(_invalid(path, loc, len(value), f"should have at least {least} items"))
    if schema.get("uniqueItems"):
        seen: list[str] = []
        for i, item in enumerate(value):
            text = json.dumps(item, sort_keys=True)
            if text in seen:
                out.append(Cause(_join(path, i), f"Duplicate value: {_shown(item)}", "FieldValueDuplicate", (*loc, i)))
            seen.append(text)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, _join(path, i), (*loc, i), out)


def _objects(value: dict[str, Any], schema: Schema, path: str, loc: tuple[str | int, ...], out: list[Cause]) -> None:
    most, least = schema.get("maxProperties"), schema.get("minProperties")
    if most is not None and len(value) > most:
        out.append(Cause(path, f"Too many: {len(value)}: must have at most {most} items", "FieldValueTooMany", loc))
    if least is not None and len(value) < least:
        out.append(_invalid(path, loc, len(value), f"should have at least {least} properties"))
    for key in schema.get("required") or []:
        if key not in value:
            out.append(Cause(_join(path, key), "Required value", "FieldValueRequired", (*loc, key)))
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, child in value.items():
        if key in props:
            _validate(child, props[key], _join(path, key), (*loc, key), out)
        elif isinstance(extra, dict):
            _validate(child, extra, f"{path}[{key}]", (*loc, key), out)
