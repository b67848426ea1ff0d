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
timeout is short): an Event is a hint, not state. With ``asynchronous=True``
(what controllers use) :meth:`EventRecorder.record` only queues the Event and
one sender thread writes it, as client-go's ``EventBroadcaster`` does: at most
:data:`MAX_QUEUED` wait (``maxQueuedEvents``); more are dropped, never waited
for, so a fan-out of many reconciles is not slowed by its Events.
With ``spam_filter=True`` each involved object (per source) may record
:data:`SPAM_BURST` Events at once and one more every :data:`SPAM_REFILL_SECONDS`
after that (client-go's ``EventSourceObjectSpamFilter``: burst 25, 1 per 5 min);
the rest are dropped. Messages are cut to
:data:`MAX_MESSAGE` characters and credentials in URLs (``scheme://user:pass@``)
are masked; callers must not put Secret data in a message, and Events are
never recorded with a Secret's ``data``.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
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
MAX_QUEUED = 1000
"""Events an asynchronous recorder holds before it drops new ones (client-go ``maxQueuedEvents``)."""
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0
"""Token bucket of the spam filter, per (source, involved object): client-go ``defaultSpamBurst`` (25) and
``defaultSpamQPS`` (1/300: one token every 5 minutes)."""
SPAM_KEYS = 4096
"""Objects whose bucket the spam filter remembers (client-go's LRU size); the least recent one is forgotten."""
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


class SpamFilter:
    """client-go's ``EventSourceObjectSpamFilter``: a token bucket per key (source and involved object) of
    ``burst`` tokens refilled at one per ``refill`` seconds; :meth:`allow` takes one. Thread-safe.

    Args:
        burst: tokens of a new (or long quiet) key (default :data:`SPAM_BURST`).
        refill: seconds per new token (default :data:`SPAM_REFILL_SECONDS`).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        *,
        burst: int = SPAM_BURST,
        refill: float = SPAM_REFILL_SECONDS,
        size: int = SPAM_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst, self._refill, self._size, self._clock = burst, refill, size, clock
        self._buckets: OrderedDict[tuple[str, ...], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: tuple[str, ...]) -> bool:
        """Take a token of ``key``'s bucket: False when it has none left (the Event is dropped)."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - at) / self._refill)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self._size:
                self._buckets.popitem(last=False)
            return allowed


def spam_key(obj: dict[str, Any], component: str, host: str) -> tuple[str, ...]:
    """The spam filter's key of an Event about ``obj`` (client-go ``getSpamKey``: source component and host,
    involved object kind, namespace, name, uid and apiVersion)."""
    ref = involved_object(obj)
    return (
        component,
        host,
        str(obj.get("kind", "")),
        ref.get("namespace", ""),
        ref.get("name", ""),
        ref.get("uid", ""),
        ref.get("apiVersion", ""),
    )


class EventRecorder:
    """Records Events through a lightkube client; safe to share between threads.

    Args:
        api: a lightkube ``Client`` (use a short timeout: recording, or the sender thread, waits for it).
        component: ``source.component`` (``deployment-controller``, ``node-agent``).
        host: ``source.host`` (the node name, for the node agent).
        asynchronous: queue Events for a sender thread (started on first use) instead of writing them in
            :meth:`record`; at most :data:`MAX_QUEUED` wait, later ones are dropped.
        spam_filter: drop an object's Events beyond :class:`SpamFilter`'s budget.
    """

    def __init__(
        self, api: Any, *, component: str, host: str = "", asynchronous: bool = False, spam_filter: bool = False
    ) -> None:
        self.api = api
        self.component = component
        self.host = host
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._spam = SpamFilter() if spam_filter else None
        self._queue: queue.Queue[tuple[Any, str, str, str]] | None = queue.Queue(MAX_QUEUED) if asynchronous else None
        self._sender: threading.Thread | None = None
        self.dropped = 0
        """Events not recorded because the queue was full or the spam filter refused them."""

    def record(self, obj: Any, type_: str, reason: str, message: str) -> None:
        """Record one occurrence about ``obj`` (a dict or a typed object, not changed afterwards: an
        asynchronous recorder reads it later). Never raises; failures are logged at debug level."""
        if self._queue is None:
            self._send(obj, type_, reason, message)
            return
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except queue.Full:
            self.dropped += 1
            log.debug("event %s for %s dropped: %d events queued", reason, resources.key(obj), MAX_QUEUED)
            return
        if self._sender is None:
            with self._lock:
                if self._sender is None:
                    self._sender = threading.Thread(
                        target=self._send_queued, daemon=True, name=f"events-{self.component}"
                    )
                    self._sender.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued Event was sent (or dropped), at most ``timeout`` seconds; True if so."""
        if self._queue is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _send_queued(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            try:
                self._send(*item)
            finally:
                self._queue.task_done()

    def _send(self, obj: Any, type_: str, reason: str, message: str) -> None:
        try:
            whole = obj if isinstance(obj, dict) else objects.to_dict(obj)
            if self._spam is not None and not self._spam.allow(spam_key(whole, self.component, self.host)):
                self.dropped += 1
                log.debug("event %s for %s dropped by the spam filter", reason, resources.key(obj))
                return
            self._record(whole, type_, reason, scrub(message))
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
