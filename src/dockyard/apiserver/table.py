"""Server-side printing: ``meta.k8s.io/v1`` Table responses for kubectl. Pure.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``
(API concepts, "Receiving resources as Tables"). Rows carry the object as
``PartialObjectMetadata`` (``includeObject=Metadata``, the default), the full
object (``Object``) or nothing (``None``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from dockyard.api import kinds
from dockyard.apiserver import wire

Obj = dict[str, Any]
Cell = Callable[[Obj], Any]


def wants_table(request: Request) -> bool:
    """True if the ``Accept`` header asks for a ``meta.k8s.io/v1`` Table."""
    accept = request.headers.get("accept", "").replace(" ", "")
    return any("as=Table" in part and "g=meta.k8s.io" in part and "v=v1;" in part + ";"
               for part in accept.split(","))


def _get(obj: Obj, *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's short duration (``45s``, ``5m10s``, ``3h``, ``2d4h``, ``30d``)."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def age(obj: Obj) -> str:
    """Time since ``metadata.creationTimestamp``, or ``<unknown>``."""
    created = _parse_time(_get(obj, "metadata", "creationTimestamp"))
    if created is None:
        return "<unknown>"
    return human_duration((dt.datetime.now(dt.timezone.utc) - created).total_seconds())


def _build_duration(obj: Obj) -> str:
    start = _parse_time(_get(obj, "status", "startTimestamp"))
    if start is None:
        return ""
    end = _parse_time(_get(obj, "status", "completionTimestamp")) or dt.datetime.now(dt.timezone.utc)
    return human_duration((end - start).total_seconds())


def _pod_ready(obj: Obj) -> str:
    statuses = _get(obj, "status", "containerStatuses") or []
    total = len(_get(obj, "spec", "containers") or []) or len(statuses)
    ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready"))
    return f"{ready}/{total}"


def _pod_status(obj: Obj) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    for cs in _get(obj, "status", "containerStatuses") or []:
        if isinstance(cs, dict):
            reason = _get(cs, "state", "waiting", "reason") or _get(cs, "state", "terminated", "reason")
            if reason:
                return str(reason)
    return str(_get(obj, "status", "phase") or "Pending")


def _restarts(obj: Obj) -> int:
    return sum(int(s.get("restartCount") or 0) for s in _get(obj, "status", "containerStatuses") or []
               if isinstance(s, dict))


def _text(*path: str) -> Cell:
    return lambda o: "" if _get(o, *path) is None else str(_get(o, *path))


_COLUMNS: dict[str, list[tuple[str, str, Cell]]] = {
    "Pod": [("Ready", "string", _pod_ready), ("Status", "string", _pod_status),
            ("Restarts", "integer", _restarts)],
    "Build": [("Phase", "string", _text("status", "phase")), ("Duration", "string", _build_duration)],
    "BuildConfig": [("Type", "string", _text("spec", "strategy", "type")),
                    ("From", "string", _text("spec", "source", "type")),
                    ("Latest", "string", _text("status", "lastVersion"))],
    "Push": [("Pod", "string", _text("spec", "podName")), ("Image", "string", _text("spec", "image")),
             ("Phase", "string", _text("status", "phase"))],
    "Image": [("Latest", "string", _text("status", "latestImage"))],
    "ImageDeploy": [("Deployment", "string", lambda o: str(_get(o, "metadata", "name") or ""))],
    "Namespace": [("Status", "string", _text("status", "phase"))],
    "Deployment": [("Ready", "string", lambda o: f"{_get(o, 'status', 'readyReplicas') or 0}/"
                                                  f"{_get(o, 'spec', 'replicas') or 0}"),
                   ("Up-to-date", "integer", lambda o: _get(o, "status", "updatedReplicas") or 0),
                   ("Available", "integer", lambda o: _get(o, "status", "availableReplicas") or 0)],
    "ReplicaSet": [("Desired", "integer", lambda o: _get(o, "spec", "replicas") or 0),
                   ("Current", "integer", lambda o: _get(o, "status", "replicas") or 0),
                   ("Ready", "integer", lambda o: _get(o, "status", "readyReplicas") or 0)],
    "Secret": [("Type", "string", _text("type")), ("Data", "integer", lambda o: len(o.get("data") or {}))],
}


def _columns(info: kinds.ResourceInfo) -> list[tuple[str, str, Cell]]:
    name: Cell = lambda o: str(_get(o, "metadata", "name") or "")  # noqa: E731
    return [("Name", "string", name)] + _COLUMNS.get(info.kind, []) + [("Age", "string", age)]


def _definitions(info: kinds.ResourceInfo) -> list[Obj]:
    out = []
    for title, type_, _ in _columns(info):
        out.append({"name": title, "type": type_, "format": "name" if title == "Name" else "",
                    "description": title, "priority": 0})
    return out


def _row(info: kinds.ResourceInfo, obj: Obj, include: str) -> Obj:
    row: Obj = {"cells": [cell(obj) for _, _, cell in _columns(info)]}
    if include == "Object":
        row["object"] = obj
    elif include != "None":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj.get("metadata") or {}}
    return row


def _include(request: Request) -> str:
    return request.query_params.get("includeObject") or "Metadata"


def list_table(info: kinds.ResourceInfo, listed: Obj, request: Request) -> Obj:
    """A Table for a ``<Kind>List`` (keeps its ``metadata``)."""
    include = _include(request)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": listed.get("metadata") or {},
            "columnDefinitions": _definitions(info),
            "rows": [_row(info, item, include) for item in listed.get("items") or []]}


def object_table(info: kinds.ResourceInfo, obj: Obj, request: Request) -> Obj:
    """A one-row Table for a single object."""
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": _get(obj, "metadata", "resourceVersion") or ""},
            "columnDefinitions": _definitions(info), "rows": [_row(info, obj, _include(request))]}


def watch_renderer(info: kinds.ResourceInfo, request: Request) -> Callable[[str, Obj], bytes]:
    """Encodes watch events whose objects are one-row Tables (bookmarks pass through)."""
    include = _include(request)

    def render(type_: str, obj: Obj) -> bytes:
        rv = _get(obj, "metadata", "resourceVersion") or ""
        table: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
                      "columnDefinitions": _definitions(info),
                      "rows": [] if type_ == "BOOKMARK" else [_row(info, obj, include)]}
        if type_ == "BOOKMARK":
            return wire.dumps({"type": type_, "object": obj}) + b"\n"
        return wire.dumps({"type": type_, "object": table}) + b"\n"

    return render
