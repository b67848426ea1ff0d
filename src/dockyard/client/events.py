"""Recording ``core/v1`` Events about objects, as client-go's ``tools/record`` does.

``EventRecorder.record(obj, "Normal" | "Warning", reason, message)`` creates
an Event whose ``involvedObject`` names ``obj`` (apiVersion, kind, namespace,
name, uid, resourceVersion), with ``source.component``/``source.host``,
``firstTimestamp``, ``lastTimestamp`` and ``count: 1``. A repeat of the same
``(involvedObject.uid, type, reason, message)`` patches the existing Event's
``count`` and ``lastTimestamp`` instead (client-go's ``EventCorrelator``
de-duplication), which is what ``kubectl describe`` shows as ``(x4 over 2m)``.

The Event's name is ``<object name>.<16 hex digits of a hash of that key>``,
so a restarted component finds its earlier Event (409 on create) and counts
on rather than starting over. Events about cluster-scoped objects go to the
``default`` namespace, as in Kubernetes.

Recording never raises into the caller and never waits long (the client's
timeout is short): an Event is a hint, not state. Messages are cut to
:data:`MAX_MESSAGE` characters and credentials in URLs (``scheme://user:pass@``)
are masked; callers must not put Secret data in a message, and Events are
never recorded with a Secret's ``data``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from typing import Any

from lightkube import ApiError
from lightkube.types import PatchType

from dockyard.api import timefmt
from dockyard.client import objects, resources

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE = 1024
"""Longest message kept (the ``events.k8s.io`` limit on ``note`` is 1 kB)."""
CACHE_SIZE = 4096
"""Distinct events remembered for de-duplication (client-go's LRU size)."""
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s@]+@")


def _now() -> str:
    return timefmt.now()


def scrub(message: str) -> str:
    """``message`` with URL credentials masked and cut to :data:`MAX_MESSAGE` characters."""
    text = _URL_CREDENTIALS.sub(r"\1***@", str(message))
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def involved_object(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``ObjectReference`` of ``obj`` for ``involvedObject`` (no spec, status or data)."""
    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v}


def event_name(obj: dict[str, Any], type_: str, reason: str, message: str) -> str:
    """``<name>.<16 hex>``: stable for one (object uid, type, reason, message)."""
    meta = obj.get("metadata") or {}
    key = "\x00".join((str(meta.get("uid", "")), str(meta.get("name", "")), type_, reason, message))
    return f"{str(meta.get('name', 'object'))[:236]}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def new_event(
    obj: dict[str, Any],
    type_: str,
    reason: str,
    message: str,
    *,
    component: str,
    host: str = "",
    now: str | None = None,
) -> dict[str, Any]:
    """The ``v1 Event`` body for a first occurrence (``count: 1``). Pure."""
    now = now or _now()
    ref = involved_object(obj)
    source = {"component": component, **({"host": host} if host else {})}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(obj, type_, reason, message), "namespace": ref.get("namespace", "default")},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": host or component,
    }


class EventRecorder:
    """Records Events through a lightkube client; safe to share between threads.

    Args:
        api: a lightkube ``Client`` (use a short timeout: recording waits for it).
        component: ``source.component`` (``deployment-controller``, ``node-agent``).
        host: ``source.host`` (the node name, for the node agent).
    """

    def __init__(self, api: Any, *, component: str, host: str = "") -> None:
        self.api = api
        self.component = component
        self.host = host
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, obj: Any, type_: str, reason: str, message: str) -> None:
        """Record one occurrence about ``obj`` (a dict or a typed object). Never raises; failures are logged at
        debug level."""
        try:
            self._record(obj if isinstance(obj, dict) else objects.to_dict(obj), type_, reason, scrub(message))
        except Exception as err:
            log.debug("event %s for %s not recorded: %s", reason, resources.key(obj), err)

    def _record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        if obj.get("kind") == "Secret":
            obj = {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "metadata")}
        Event = resources.resource("Event")
        key = (str((obj.get("metadata") or {}).get("uid", "")), type_, reason, message)
        with self._lock:
            seen = self._seen.get(key)
        body = new_event(obj, type_, reason, message, component=self.component, host=self.host)
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        count = seen[2] if seen else 0
        if not seen:
            try:
                self.api.create(Event(body), namespace=namespace)
                self._remember(key, name, namespace, 1)
                return
            except ApiError as err:
                if err.status.code != 409:
                    raise
                current = resources.as_dict(self.api.get(Event, name, namespace=namespace))
                count = int(current.get("count") or 1)
        try:
            self.api.patch(
                Event,
                name,
                {"count": count + 1, "lastTimestamp": body["lastTimestamp"]},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
            self._remember(key, name, namespace, count + 1)
        except ApiError as err:
            if err.status.code != 404:
                raise
            self.api.create(Event(body), namespace=namespace)  # deleted meanwhile: start over
            self._remember(key, name, namespace, 1)

    def _remember(self, key: tuple[str, str, str, str], name: str, namespace: str, count: int) -> None:
        with self._lock:
            self._seen[key] = (name, namespace, count)
            self._seen.move_to_end(key)
            while len(self._seen) > CACHE_SIZE:
                self._seen.popitem(last=False)
