"""``x-kubernetes-validations`` of custom resources, evaluated with cel-python.

As apiextensions-apiserver does ("Validation rules" of CustomResourceDefinitions): each rule is a
CEL expression over ``self`` (the value of the node that carries it); a rule that is false, or
fails to evaluate, is a 422 cause at the node's field path with the rule's ``message`` (or
``failed rule: <rule>``), reason ``FieldValueInvalid`` (or the rule's ``reason``). ``oldSelf``
(transition rules) and ``messageExpression`` are not evaluated: rules using ``oldSelf`` are skipped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import celpy

from dockyard.api.errors import Cause
from dockyard.apiserver import structural

_RULES = "x-kubernetes-validations"


@lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def _holds(rule: str, value: Any) -> bool:
    try:
        return bool(_program(rule).evaluate({"self": celpy.json_to_cel(value)}))
    except Exception:  # a rule that does not compile or evaluate refuses, as on the apiserver
        return False


def causes(obj: Any, schema: dict[str, Any]) -> list[Cause]:
    """The causes of every failed rule under ``schema`` in ``obj`` (an object already schema-valid)."""
    out: list[Cause] = []
    _walk(obj, schema, "", out)
    return out


def _walk(value: Any, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    if value is None or not isinstance(schema, dict):
        return
    for rule in schema.get(_RULES) or []:
        text = str(rule.get("rule") or "")
        if not text or "oldSelf" in text:
            continue
        if not _holds(text, value):
            message = rule.get("message") or f"failed rule: {text}"
            shown = path or "<root>"
            kind = structural.type_name(value)
            out.append(
                Cause(shown, f'Invalid value: "{kind}": {message}', str(rule.get("reason") or "FieldValueInvalid"))
            )
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in props:
                _walk(child, props[key], f"{path}.{key}" if path else key, out)
            elif isinstance(extra, dict):
                _walk(child, extra, f"{path}[{key}]", out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{i}]", out)
