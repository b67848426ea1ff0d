"""``metav1.LabelSelector`` (``matchLabels`` and ``matchExpressions``): matching and validation. Pure: no I/O.

Matching follows ``metav1.LabelSelectorAsSelector`` and ``labels.Requirement.Matches``
(``k8s.io/apimachinery``); validation follows ``ValidateLabelSelector`` (``apis/meta/v1/validation``) with the
wording of ``util/validation`` (``IsQualifiedName``, ``IsValidLabelValue``). Selectors are read in their wire
shape (a dict), so the API server's validation and the controllers (``lightkube``'s ``LabelSelector.to_dict()``)
share one definition. The query-string grammar of ``?labelSelector=`` is the API server's own
(``dockyard.apiserver.selectors``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dockyard.api import names
from dockyard.api.errors import Cause

__all__ = [
    "DOES_NOT_EXIST",
    "EXISTS",
    "IN",
    "NOT_IN",
    "OPERATORS",
    "invalid",
    "is_empty",
    "is_valid",
    "label_value_errors",
    "matches",
    "qualified_name_errors",
    "selector_causes",
    "show",
]

IN, NOT_IN, EXISTS, DOES_NOT_EXIST = "In", "NotIn", "Exists", "DoesNotExist"
OPERATORS = (IN, NOT_IN, EXISTS, DOES_NOT_EXIST)
"""``metav1.LabelSelectorOperator`` values."""

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME = re.compile(f"^{_QNAME_FMT}$")
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character"
)
MAX_NAME_PART = 63
MAX_LABEL_VALUE = 63
MAX_PREFIX = 253


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``validation.RegexError``, spaces as it spells them: ``msg (e.g. 'a',  or 'b', regex used for validation
    is 'fmt')``."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def invalid(value: Any, detail: str) -> str:
    """The body of a ``field.Invalid`` error: ``Invalid value: "abc": detail`` (strings quoted, numbers bare)."""
    return f"Invalid value: {show(value)}: {detail}"


def show(value: Any) -> str:
    """A value as an error message quotes it: JSON, strings quoted, long ones cut."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def qualified_name_errors(name: str) -> list[str]:
    """``validation.IsQualifiedName``: ``[prefix/]name``, the prefix an RFC 1123 subdomain, the name at most 63
    alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric. Empty: valid."""
    parts = name.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name "
            + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > MAX_PREFIX:
                errs.append(f"prefix part must be no more than {MAX_PREFIX} characters")
            if not names.DNS1123_SUBDOMAIN.match(prefix):
                errs.append(
                    "prefix part " + regex_error(_DNS1123_SUBDOMAIN_MSG, names.DNS1123_SUBDOMAIN_FMT, "example.com")
                )
    last = parts[-1]
    if not last:
        errs.append("name part must be non-empty")
    elif len(last) > MAX_NAME_PART:
        errs.append(f"name part must be no more than {MAX_NAME_PART} characters")
    if not _QNAME.match(last):
        errs.append("name part " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """``validation.IsValidLabelValue``: empty, or at most 63 alphanumeric characters, '-', '_' or '.', starting
    and ending alphanumeric. Empty list: valid."""
    errs = []
    if len(value) > MAX_LABEL_VALUE:
        errs.append(f"must be no more than {MAX_LABEL_VALUE} characters")
    if not _LABEL_VALUE.match(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def selector_causes(selector: Mapping[str, Any], path: str) -> list[Cause]:
    """``ValidateLabelSelector`` (``AllowInvalidLabelValueInSelector: false``): the keys and values of
    ``matchLabels``; each requirement's ``operator`` (``In``/``NotIn`` need ``values``, ``Exists``/``DoesNotExist``
    take none), ``key`` and ``values``. Whether an empty selector is allowed is the caller's rule.

    Args:
        selector: the selector in wire shape.
        path: its field path (``spec.selector``).
    Returns:
        One cause per bad field, paths such as ``spec.selector.matchExpressions[0].values[1]``.
    """
    causes: list[Cause] = []
    labels = selector.get("matchLabels")
    where = f"{path}.matchLabels"
    if labels is not None and not isinstance(labels, dict):
        causes.append(Cause(where, "must be a map of label keys to string values"))
        labels = None
    for key, value in (labels or {}).items():
        causes.extend(Cause(where, invalid(key, msg)) for msg in qualified_name_errors(str(key)))
        if not isinstance(value, str):
            causes.append(Cause(where, invalid(value, "must be a string")))
            continue
        causes.extend(Cause(where, invalid(value, msg)) for msg in label_value_errors(value))
    expressions = selector.get("matchExpressions")
    if expressions is not None and not isinstance(expressions, list):
        causes.append(Cause(f"{path}.matchExpressions", "must be a list of label selector requirements"))
    for i, expr in enumerate(_list(expressions)):
        where = f"{path}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            causes.append(Cause(where, "must be an object"))
            continue
        op, values = expr.get("operator"), expr.get("values")
        if op in (IN, NOT_IN):
            if not values:
                causes.append(
                    Cause(
                        f"{where}.values",
                        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                        "FieldValueRequired",
                    )
                )
        elif op in (EXISTS, DOES_NOT_EXIST):
            if values:
                causes.append(
                    Cause(
                        f"{where}.values",
                        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        "FieldValueForbidden",
                    )
                )
        else:
            causes.append(Cause(f"{where}.operator", invalid(op, "not a valid selector operator")))
        key = expr.get("key")
        if not isinstance(key, str) or not key:
            causes.append(Cause(f"{where}.key", "Required value", "FieldValueRequired"))
        else:
            causes.extend(Cause(f"{where}.key", invalid(key, msg)) for msg in qualified_name_errors(key))
        if values is not None and not isinstance(values, list):
            causes.append(Cause(f"{where}.values", "must be a list of strings"))
        for j, value in enumerate(_list(values)):
            if not isinstance(value, str):
                causes.append(Cause(f"{where}.values[{j}]", invalid(value, "must be a string")))
                continue
            causes.extend(Cause(f"{where}.values[{j}]", invalid(value, msg)) for msg in label_value_errors(value))
    return causes


def is_valid(selector: Mapping[str, Any]) -> bool:
    """True if ``metav1.LabelSelectorAsSelector`` can convert ``selector`` (no cause of :func:`selector_causes`)."""
    return not selector_causes(selector, "selector")


def is_empty(selector: Mapping[str, Any]) -> bool:
    """No ``matchLabels`` and no ``matchExpressions``: as a selector it matches everything."""
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _requirement(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """``labels.Requirement.Matches`` for one ``matchExpressions`` entry."""
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    present = key in labels
    if op == IN:
        return present and labels[str(key)] in values
    if op == NOT_IN:
        return not present or labels[str(key)] not in values
    if op == EXISTS:
        return present
    if op == DOES_NOT_EXIST:
        return not present
    return False


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """True if ``labels`` hold every ``matchLabels`` pair and satisfy every ``matchExpressions`` requirement
    (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``).

    As ``LabelSelectorAsSelector`` converts: an empty selector matches everything, ``None`` nothing, and an
    invalid one (an unknown operator, ``In`` without values) nothing.
    """
    if selector is None or not is_valid(selector):
        return False
    labels = labels or {}
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    return all(_requirement(expr, labels) for expr in selector.get("matchExpressions") or [])
