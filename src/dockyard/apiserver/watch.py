"""Watch streams (``?watch=true``) and the wake-up signal from store commits.

Contract from the Kubernetes API concepts ("Efficient detection of changes",
"Watch bookmarks", "Resource versions"):

- ``resourceVersion`` absent or ``"0"``: synthetic ``ADDED`` events for every
  matching object, then changes; ``N``: only changes after revision N.
- The stream is newline-delimited JSON ``{"type": ..., "object": ...}``.
- A revision older than the retained watch log gets HTTP 200 and one
  ``ERROR`` event carrying a 410 ``Expired`` Status, then the stream ends.
- With selectors, an object that stops matching is reported as ``DELETED``
  and one that starts matching as ``ADDED`` (the watch cache's behaviour).
- ``timeoutSeconds`` ends the stream; ``allowWatchBookmarks`` adds periodic
  ``BOOKMARK`` events carrying only ``metadata.resourceVersion``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.concurrency import run_in_threadpool

from dockyard.api import errors, kinds
from dockyard.apiserver import listopts, wire
from dockyard.apiserver.selectors import Selector
from dockyard.storage import sqlite

if TYPE_CHECKING:
    from dockyard.apiserver import cacher as _cacher

Obj = dict[str, Any]

DEFAULT_TIMEOUT = 1800.0
"""Seconds a watch lasts without ``timeoutSeconds`` (the apiserver's minRequestTimeout)."""
MAX_TIMEOUT = 3600.0
"""Upper bound on any watch, in seconds."""
BOOKMARK_INTERVAL = 10.0
"""Seconds between bookmarks when ``allowWatchBookmarks=true``."""
BATCH = 1000
"""Watch-log events read per store query."""


class Notifier:
    """Wakes coroutines when the store commits; :meth:`notify` may be called from any thread.

    Waiters remember :attr:`seq` before they read the store and pass it to
    :meth:`wait`, which returns at once if a commit happened in between — no
    lost wake-ups, no polling.
    """

    def __init__(self) -> None:
        self._seq = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def seq(self) -> int:
        """Number of notifications so far."""
        return self._seq

    def notify(self) -> None:
        """Thread-safe: wake every waiter (on the event loop that first waited)."""
        loop = self._loop
        if loop is None:
            self._seq += 1
            return
        try:
            loop.call_soon_threadsafe(self._bump)
        except RuntimeError:  # loop closed
            pass

    def _bump(self) -> None:
        self._seq += 1
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait(self, seen: int, timeout: float) -> None:
        """Return when a notification newer than ``seen`` arrives or after ``timeout`` seconds."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._seq != seen or timeout <= 0:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)


def previous_view(obj: Obj, prev: Obj | None, paths: tuple[str, ...] = ()) -> Obj:
    """Approximate the previous state for selector checks.

    ``prev`` is :func:`dockyard.storage.sqlite.selectable_view` of the previous
    state. The result is ``obj`` with its name, namespace, labels and the
    values at ``paths`` (dotted field paths) taken from ``prev`` (removed
    where ``prev`` has none).
    """
    if prev is None:
        return obj
    out = copy.copy(obj)
    out["metadata"] = dict(obj.get("metadata") or {})
    for key in ("name", "namespace", "labels"):
        if key in (prev.get("metadata") or {}):
            out["metadata"][key] = prev["metadata"][key]
        else:
            out["metadata"].pop(key, None)
    for path in paths:
        parts = path.split(".")
        if parts[0] == "metadata":
            continue
        value: Any = prev
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return out


class LoggedEvent(Protocol):
    """What :func:`for_watcher` reads of an event (:class:`dockyard.storage.sqlite.Event`, a cached one)."""

    @property
    def type(self) -> str: ...
    @property
    def object(self) -> Obj: ...
    @property
    def prev(self) -> Obj | None: ...


def for_watcher(event: LoggedEvent, selector: Selector) -> tuple[str, Obj] | None:
    """The ``(type, object)`` a watcher with ``selector`` sees for a logged event, or ``None``."""
    if selector.empty:
        return event.type, event.object
    now = selector.matches(event.object)
    if event.type != "MODIFIED":
        return (event.type, event.object) if now else None
    before = selector.matches(previous_view(event.object, event.prev, tuple(f.path for f in selector.fields)))
    if now and before:
        return "MODIFIED", event.object
    if now:
        return "ADDED", event.object
    if before:
        return "DELETED", event.object
    return None


def encode_event(type_: str, obj: Obj) -> bytes:
    """One line of the stream: ``{"type": ..., "object": ...}`` plus ``\\n``."""
    return wire.dumps({"type": type_, "object": obj}) + b"\n"


def expired_event(err: errors.StatusError) -> bytes:
    """The ``ERROR`` event carrying a Status (410 ``Expired`` for a compacted revision)."""
    return encode_event("ERROR", err.to_status())


parse_start = listopts.parse_revision
"""The revision a watch starts after, or ``None`` (unset or ``"0"``); 400 if malformed."""


INITIAL_EVENTS_END = "k8s.io/initial-events-end"
"""Annotation of the bookmark that ends the initial events of ``sendInitialEvents=true``."""


async def stream(
    *,
    store: sqlite.Store,
    notifier: Notifier,
    info: kinds.ResourceInfo,
    namespace: str | None,
    selector: Selector,
    start: int | None,
    timeout: float,
    bookmarks: bool,
    render: Callable[[str, Obj], bytes] = encode_event,
    stopping: Callable[[], bool] = lambda: False,
    initial: bool | None = None,
    initial_end_bookmark: bool = False,
    cacher: _cacher.Cacher | None = None,
    sink: _cacher.Sink | None = None,
) -> AsyncIterator[bytes]:
    """Yield encoded watch events until ``timeout`` seconds pass, the client leaves, or the server stops.

    Args:
        start: revision to start after (``None``: the current one).
        initial: send the current objects as ``ADDED`` first (default: when
            ``start`` is ``None``, the legacy behaviour of an unset ``resourceVersion``).
        initial_end_bookmark: after them, a ``BOOKMARK`` annotated
            ``k8s.io/initial-events-end: "true"`` (``sendInitialEvents=true``).
        render: encodes one ``(type, object)`` event (Table rows use another).
        stopping: true once the server shuts down; the stream then ends at
            once (the notifier is woken too), as the apiserver closes watches
            on shutdown and clients re-establish them.
        cacher: the watch cache (:mod:`.cacher`): the watch is served from memory
            unless ``start`` is older than its ring (then from the store's watch log).
        sink: where the watch cache may write the events straight to the client's connection
            (:func:`.cacher.stream`); what it writes is not yielded.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, min(timeout, MAX_TIMEOUT))
    predicate = None if selector.empty else selector.matches
    if initial is None:
        initial = start is None
    if cacher is not None and not stopping():
        from dockyard.apiserver import cacher as cacher_module  # here: it imports this module

        registered = cacher.watch(
            info=info,
            namespace=namespace,
            selector=selector,
            start=start,
            initial=initial,
            render=None if render is encode_event else render,
        )
        if registered is not None:
            watcher, backlog, upto = registered
            async for chunk in cacher_module.stream(
                cacher,
                watcher,
                backlog,
                info=info,
                deadline=deadline,
                bookmarks=bookmarks,
                bookmark_interval=lambda: BOOKMARK_INTERVAL,
                render=render,
                initial_end=upto if initial and initial_end_bookmark else None,
                stopping=stopping,
                sink=sink,
            ):
                yield chunk
            return
    if initial:
        page = await run_in_threadpool(store.list, info, namespace, predicate=predicate)
        for obj in page.items:
            yield render("ADDED", obj)
        last = page.revision
        if initial_end_bookmark:
            yield render(
                "BOOKMARK",
                {
                    "kind": info.kind,
                    "apiVersion": info.api_version,
                    "metadata": {"resourceVersion": str(last), "annotations": {INITIAL_EVENTS_END: "true"}},
                },
            )
    else:
        last = start if start is not None else store.revision()
    next_bookmark = loop.time() + BOOKMARK_INTERVAL
    for _ in range(10_000_000):  # bounded by the deadline in practice
        now = loop.time()
        if now >= deadline or stopping():
            return
        seen = notifier.seq
        try:
            events, upto = await run_in_threadpool(store.events_since, info, last, namespace, limit=BATCH)
        except errors.Gone as e:
            yield expired_event(e)
            return
        for event in events:
            shown = for_watcher(event, selector)
            if shown is not None:
                yield render(*shown)
        caught_up = len(events) < BATCH
        last = upto
        if bookmarks and loop.time() >= next_bookmark:
            yield render(
                "BOOKMARK",
                {"kind": info.kind, "apiVersion": info.api_version, "metadata": {"resourceVersion": str(last)}},
            )
            next_bookmark = loop.time() + BOOKMARK_INTERVAL
        if not caught_up:
            continue
        wait_for = deadline - loop.time()
        if bookmarks:
            wait_for = min(wait_for, max(0.0, next_bookmark - loop.time()))
        await notifier.wait(seen, max(0.0, wait_for))
