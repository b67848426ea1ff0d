"""Label and field selectors: parsing and matching. Pure functions, no I/O.

Grammar follows Kubernetes "Labels and Selectors" (set-based and
equality-based requirements, as parsed by ``k8s.io/apimachinery/pkg/labels``)
and "Field Selectors" (``=``, ``==``, ``!=`` joined by commas). Parse errors
raise :class:`dockyard.api.errors.BadRequest` (400), as the apiserver does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from dockyard.api import errors, kinds
from dockyard.storage import sqlite

_KEY = r"[A-Za-z0-9]([A-Za-z0-9_.\-/]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([A-Za-z0-9_.\-]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=|>|<)\s*(?P<value>{_VALUE})$")


@dataclass(frozen=True)
class Requirement:
    """One label requirement.

    Attributes:
        key: the label key.
        op: one of ``exists``, ``!``, ``=``, ``!=``, ``in``, ``notin``, ``>``, ``<``.
        values: the operand values (empty for ``exists``/``!``; one for ``=``, ``!=``, ``>``, ``<``).
    """

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if ``labels`` satisfy this requirement (semantics of ``labels.Requirement.Matches``)."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op in (">", "<"):
            try:
                have, want = int(str(value)), int(self.values[0])
            except (TypeError, ValueError):
                return False
            return present and (have > want if self.op == ">" else have < want)
        return False


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise errors.BadRequest(f"unable to parse requirement: unbalanced parenthesis in {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise errors.BadRequest(f"unable to parse requirement: unbalanced parenthesis in {text!r}")
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a ``labelSelector`` query value. Empty or ``None`` selects everything.

    Raises:
        errors.BadRequest: the selector does not parse.
    """
    if not text or not text.strip():
        return ()
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise errors.BadRequest(f"unable to parse requirement: empty requirement in {text!r}")
        if m := _SET.match(part):
            values = tuple(v.strip() for v in m["values"].split(","))
            if any(not re.fullmatch(_VALUE, v) for v in values):
                raise errors.BadRequest(f"unable to parse requirement: invalid value in {part!r}")
            requirements.append(Requirement(m["key"], m["op"], values))
        elif m := _EQ.match(part):
            op = "=" if m["op"] == "==" else m["op"]
            if op in (">", "<") and not re.fullmatch(r"-?[0-9]+", m["value"] or ""):
                raise errors.BadRequest(f"unable to parse requirement: {part!r}: value must be an integer")
            requirements.append(Requirement(m["key"], op, (m["value"] or "",)))
        elif m := _EXISTS.match(part):
            requirements.append(Requirement(m["key"], "!" if m["neg"] else "exists"))
        else:
            raise errors.BadRequest(f"unable to parse requirement: {part!r}")
    return tuple(requirements)


def labels_match(selector: tuple[Requirement, ...], obj: Mapping[str, Any]) -> bool:
    """True if the object's ``metadata.labels`` satisfy every requirement."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if not isinstance(labels, Mapping):
        labels = {}
    return all(r.matches(labels) for r in selector)


@dataclass(frozen=True)
class FieldRequirement:
    """``path op value``: ``path`` is dotted (``spec.nodeName``), ``op`` is ``=`` or ``!=``.

    ``path`` is the object path the field label reads (an Event's ``source``
    label reads ``source.component``).
    """

    path: str
    op: str
    value: str


def _split_escaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_field_selector(text: str | None, supported: tuple[str, ...] | None = None) -> tuple[FieldRequirement, ...]:
    """Parse a ``fieldSelector`` query value (``a=b,c!=d``; ``\\,`` escapes a comma).

    A missing field compares as the empty string (so ``spec.nodeName=``
    selects unscheduled pods, as in Kubernetes).

    Args:
        supported: the kind's field labels (:func:`dockyard.api.kinds.field_labels`);
            ``None`` accepts any dotted path.
    Raises:
        errors.BadRequest: a term has no operator or no field name, or names a
            field label the kind does not support (``field label not supported: x``).
    """
    if not text or not text.strip():
        return ()
    out: list[FieldRequirement] = []
    for raw in _split_top_level_escaped(text):
        term = raw.strip()
        if not term:
            continue
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", term, re.S)
        if not m or not m.group(1).strip():
            raise errors.BadRequest(f"invalid selector: {term!r}; can't understand {term!r}")
        op = "!=" if m.group(2) == "!=" else "="
        label = m.group(1).strip()
        if supported is not None and label not in supported:
            raise errors.BadRequest(f"field label not supported: {label}")
        out.append(FieldRequirement(kinds.field_path(label), op, _unescape(m.group(3))))
    return tuple(out)


def _split_top_level_escaped(text: str) -> list[str]:
    # Split on unescaped commas but keep escapes for the value part.
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return "".join(_split_escaped(text, "\x00"))


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form of the field at dotted ``path`` (``""`` when absent; booleans lower-case)."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return ""
        node = node[part]
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (str, int, float)):
        return str(node)
    return ""


def fields_match(selector: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    """True if every field requirement holds for ``obj``."""
    for req in selector:
        equal = field_value(obj, req.path) == req.value
        if equal != (req.op == "="):
            return False
    return True


@dataclass(frozen=True)
class Selector:
    """A parsed ``labelSelector`` plus ``fieldSelector``.

    ``info``: the kind selected; field requirements then read the object's selectable view
    (:func:`dockyard.storage.sqlite.selectable_view`), where a field Kubernetes defaults reads its default when
    unset (``spec.restartPolicy=Always`` selects pods that leave it unset), as kube-apiserver selects on
    defaulted objects.
    """

    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()
    info: kinds.ResourceInfo | None = field(default=None, compare=False, hash=False)

    @classmethod
    def parse(
        cls, label_selector: str | None, field_selector: str | None, info: kinds.ResourceInfo | None = None
    ) -> Selector:
        """Parse both query values (field labels checked against ``info``'s).

        Raises :class:`errors.BadRequest` on bad syntax or an unsupported field label.
        """
        supported = kinds.field_labels(info) if info is not None else None
        return cls(parse_label_selector(label_selector), parse_field_selector(field_selector, supported), info)

    @property
    def empty(self) -> bool:
        """True if it selects everything."""
        return not self.labels and not self.fields

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """True if ``obj`` satisfies both selectors."""
        if not labels_match(self.labels, obj):
            return False
        if not self.fields:
            return True
        return fields_match(
            self.fields, obj if self.info is None else sqlite.selectable_view(cast(dict[str, Any], obj), self.info)
        )
