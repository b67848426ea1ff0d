"""Server-side printing: ``meta.k8s.io/v1`` Table responses for kubectl. Pure.

The columns of each kind come from :mod:`dockyard.apiserver.columns`.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``
(API concepts, "Receiving resources as Tables"). Rows carry the object as
``PartialObjectMetadata`` (``includeObject=Metadata``, the default), the full
object (``Object``) or nothing (``None``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from dockyard.api import kinds
from dockyard.apiserver import columns, customresources, jsonpath, wire

Obj = dict[str, Any]


def wants_table(request: Request) -> bool:
    """True if the ``Accept`` header asks for a ``meta.k8s.io/v1`` Table."""
    accept = request.headers.get("accept", "").replace(" ", "")
    return any("as=Table" in part and "g=meta.k8s.io" in part and "v=v1;" in part + ";" for part in accept.split(","))


human_duration = columns.human_duration


def _printer_cell(path: str, type_: str) -> Callable[[Obj], Any]:
    """A cell of an ``additionalPrinterColumns`` entry, as apiextensions-apiserver's table convertor
    computes it: the JSONPath's first value; ``date`` as the time since it; ``<none>``-free empty otherwise."""

    def cell(obj: Obj) -> Any:
        values = jsonpath.find(obj, path)
        if not values:
            return None
        value = values[0]
        if type_ == "date":
            return columns.since(value)
        if type_ == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        if type_ == "boolean" and isinstance(value, bool):
            return value
        if type_ == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        return value if isinstance(value, str) else jsonpath.text(value)

    return cell


def table_columns(info: kinds.ResourceInfo) -> list[columns.Column]:
    """The columns of ``info``: a CRD's ``additionalPrinterColumns`` after ``Name`` (or ``Name``, ``Age``
    without them); dockyard's own kinds keep :mod:`.columns` (the source of their printer columns)."""
    served = customresources.lookup(info)
    if served is None or served.owned:
        return columns.columns(info.kind)
    if not served.columns:
        return [columns.NAME, columns.AGE]
    out = [columns.NAME]
    for spec in served.columns:
        type_ = str(spec.get("type") or "string")
        out.append(
            columns.Column(
                str(spec["name"]),
                _printer_cell(str(spec["jsonPath"]), type_),
                type="string" if type_ == "date" else type_,
                description=str(spec.get("description") or ""),
                priority=int(spec.get("priority") or 0),
                format=str(spec.get("format") or ""),
            )
        )
    return out


def _definitions(info: kinds.ResourceInfo) -> list[Obj]:
    return [c.definition() for c in table_columns(info)]


def _row(info: kinds.ResourceInfo, obj: Obj, include: str) -> Obj:
    row: Obj = {"cells": [_cell(c, obj) for c in table_columns(info)]}
    if include == "Object":
        row["object"] = obj
    elif include != "None":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {},
        }
    return row


def _cell(column: columns.Column, obj: Obj) -> Any:
    try:
        return column.cell(obj)
    except (TypeError, ValueError, AttributeError, KeyError):  # a malformed stored field prints empty
        return ""


def _include(request: Request) -> str:
    return request.query_params.get("includeObject") or "Metadata"


def list_table(info: kinds.ResourceInfo, listed: Obj, request: Request) -> Obj:
    """A Table for a ``<Kind>List`` (keeps its ``metadata``)."""
    include = _include(request)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": listed.get("metadata") or {},
        "columnDefinitions": _definitions(info),
        "rows": [_row(info, item, include) for item in listed.get("items") or []],
    }


def object_table(info: kinds.ResourceInfo, obj: Obj, request: Request) -> Obj:
    """A one-row Table for a single object."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": columns.get(obj, "metadata", "resourceVersion") or ""},
        "columnDefinitions": _definitions(info),
        "rows": [_row(info, obj, _include(request))],
    }


def watch_renderer(info: kinds.ResourceInfo, request: Request) -> Callable[[str, Obj], bytes]:
    """Encodes watch events whose objects are one-row Tables (bookmarks pass through)."""
    include = _include(request)

    def render(type_: str, obj: Obj) -> bytes:
        rv = columns.get(obj, "metadata", "resourceVersion") or ""
        table: Obj = {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": _definitions(info),
            "rows": [] if type_ == "BOOKMARK" else [_row(info, obj, include)],
        }
        if type_ == "BOOKMARK":
            return wire.dumps({"type": type_, "object": obj}) + b"\n"
        return wire.dumps({"type": type_, "object": table}) + b"\n"

    return render
