"""The watch cache: every stored object and a ring of recent events in memory, fed once per commit.

Modelled on kube-apiserver's Cacher (``staging/src/k8s.io/apiserver/pkg/storage/cacher``):

- The store hands each commit's writes to :meth:`Cacher._apply` once
  (:meth:`dockyard.storage.sqlite.Store.watch_changes`), before any writer of the commit is
  answered; the cache updates its objects and appends the events to one ring (one global
  revision, as etcd's). So the cache holds every acknowledged write: it is *current* when its
  revision equals the store's (``ConsistentListFromCache``).
- Events are fanned out in memory on the event loop to every watcher whose resource, namespace,
  label and field selectors match (:func:`dockyard.apiserver.watch.for_watcher`); each event is
  encoded once for all watchers that render it the default way.
- Once a watch's stream has sent its first events and the server offers a
  :class:`~dockyard.apiserver.httpproto.ChunkWriter` for its response, the fan-out writes each
  watcher's events of a commit as one chunk straight to its connection: no task wake-up, no ASGI
  ``send`` chain per chunk. Without one (another server), the watcher's stream task sends them.
- Each watcher has a bounded buffer: :data:`WATCHER_BUFFER` events waiting for its stream task, or
  :data:`WATCHER_BUFFER_BYTES` written to its connection and not yet sent. A watcher whose client
  does not read fast enough to stay below that is *cut off*: its stream sends what it has buffered
  and ends, as the Cacher terminates a blocked watcher instead of slowing the rest. A client
  resuming from the last ``resourceVersion`` it saw gets the events after it (or 410 ``Expired``
  once they are compacted), as from any other ended watch.
- A watch from a ``resourceVersion`` the ring still covers starts from the ring without touching
  SQLite; an older one is for the store's watch log (events or 410, :func:`.watch.stream`).
- ``resourceVersion=0`` / ``NotOlderThan`` gets and lists are served from the cache once it is
  at least that fresh; consistent ones (no ``resourceVersion``) when it is current.

Objects are kept as their stored JSON bytes (served as they are) and parsed lazily, once, when
a selector, a table or redaction needs the dict; neither is ever mutated.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

from dockyard.api import errors, kinds
from dockyard.apiserver import fastjson, watch
from dockyard.apiserver.selectors import Selector
from dockyard.storage import sqlite

Obj = dict[str, Any]
Render = Callable[[str, Obj], bytes]

RING_CAPACITY = 20_000
"""Most recent events kept in memory (at most the store's retention: what it compacted is 410)."""
WATCHER_BUFFER = 10_000
"""Events buffered per watcher before it is cut off as too slow (the Cacher's blocked-watcher rule)."""
WATCHER_BUFFER_BYTES = 16 * 1024 * 1024
"""Bytes written directly to a watcher's connection and not yet sent before it is cut off (same rule)."""


class Sink(Protocol):
    """Where the fan-out writes a watcher's events directly (:class:`~.httpproto.ChunkWriter` shaped)."""

    def ready(self) -> bool:
        """True while :meth:`write` may be called."""

    def write(self, data: bytes, events: int) -> int:
        """Write ``data`` (``events`` encoded events); returns the bytes not yet sent.

        Raises:
            ConnectionError: the client is gone.
        """


class Entry:
    """One object version: its stored JSON bytes and, parsed on first use, its dict (never mutated)."""

    __slots__ = ("_obj", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._obj: Obj | None = None

    @property
    def obj(self) -> Obj:
        """The object as a dict (shared: callers must copy before changing it)."""
        obj = self._obj
        if obj is None:
            obj = self._obj = fastjson.loads(self.raw)
        return obj


class CachedEvent:
    """One event of the ring: ``revision``, ``key`` (qualified plural), ``namespace``, ``type``,
    ``entry`` (the object after the write), ``prev`` (selectable view before a ``MODIFIED``)."""

    __slots__ = ("_lines", "entry", "key", "namespace", "prev", "revision", "type")

    def __init__(self, revision: int, key: str, namespace: str, type_: str, entry: Entry, prev: Obj | None) -> None:
        self.revision, self.key, self.namespace, self.type = revision, key, namespace, type_
        self.entry, self.prev = entry, prev
        self._lines: dict[str, bytes] = {}

    @property
    def object(self) -> Obj:
        return self.entry.obj

    def line(self, type_: str) -> bytes:
        """``{"type": type_, "object": ...}`` plus newline, encoded once for every watcher."""
        line = self._lines.get(type_)
        if line is None:
            line = self._lines[type_] = b'{"type":"' + type_.encode() + b'","object":' + self.entry.raw + b"}\n"
        return line


def _rendered(event: CachedEvent, selector: Selector, render: Render | None) -> bytes | None:
    """The encoded event a watcher with ``selector`` and ``render`` (``None``: the default
    encoding, shared by every watcher) gets, or ``None`` if it sees nothing."""
    if selector.empty:  # no parse needed for the default encoding
        return event.line(event.type) if render is None else render(event.type, event.object)
    shown = watch.for_watcher(event, selector)
    if shown is None:
        return None
    return event.line(shown[0]) if render is None else render(*shown)


class Watcher:
    """One watch's position and buffer; fed on the event loop by :meth:`Cacher._fan_out`."""

    def __init__(
        self,
        *,
        key: str,
        namespace: str | None,
        selector: Selector,
        render: Render | None,
        after: int,
        limit: int,
    ) -> None:
        self.key, self.namespace, self.selector, self.render = key, namespace, selector, render
        self.after = after  # events up to this revision are not for it (sent as its backlog, or before it)
        self.limit = limit
        self.buffer: list[bytes] = []
        self.cut = False
        self.wake = asyncio.Event()
        self.sink: Sink | None = None
        """Set by the stream once the fan-out may write to the connection itself (:meth:`Cacher._fan_out`)."""

    @property
    def view(self) -> tuple[str | None, Selector, Render | None]:
        """What decides the events it sees and their encoding: watchers with one view share them."""
        return self.namespace, self.selector, self.render


class _View:
    """The watchers of one resource with one :attr:`Watcher.view`: each event is filtered and
    encoded once for all of them, and their chunk of a commit joined once."""

    __slots__ = ("namespace", "render", "selector", "watchers")

    def __init__(self, namespace: str | None, selector: Selector, render: Render | None) -> None:
        self.namespace, self.selector, self.render = namespace, selector, render
        self.watchers: set[Watcher] = set()

    def lines(self, events: list[CachedEvent]) -> list[tuple[int, bytes]]:
        """``(revision, encoded event)`` of the ``events`` (one resource's, in order) these watchers see."""
        out = []
        ns, selector, render = self.namespace, self.selector, self.render
        for event in events:
            if ns is not None and event.namespace != ns:
                continue
            line = _rendered(event, selector, render)
            if line is not None:
                out.append((event.revision, line))
        return out


class Cacher:
    """The watch cache of one store (see the module docstring). Thread-safe where noted.

    Args:
        store: the store to follow (:meth:`start` subscribes).
        capacity: events kept in the ring (default :data:`RING_CAPACITY`; at most the store's
            retention, whose older events are compacted: a watch from before it gets 410 as from the store).
        watcher_buffer: events buffered per watcher before it is cut off (default :data:`WATCHER_BUFFER`).
        watcher_bytes: bytes written to a watcher's connection and not yet sent before it is cut off
            (default :data:`WATCHER_BUFFER_BYTES`).
    """

    def __init__(
        self,
        store: sqlite.Store,
        *,
        capacity: int | None = None,
        watcher_buffer: int | None = None,
        watcher_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._capacity = max(1, min(RING_CAPACITY if capacity is None else capacity, store.retention))
        self._watcher_buffer = max(1, WATCHER_BUFFER if watcher_buffer is None else watcher_buffer)
        self._watcher_bytes = max(0, WATCHER_BUFFER_BYTES if watcher_bytes is None else watcher_bytes)
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, dict[str, Entry]]] = {}  # key -> namespace -> name -> entry
        self._ring: deque[CachedEvent] = deque()
        self._base = 0  # the ring holds every event with _base < revision <= self.revision
        self.revision = 0
        """Revision of the last commit applied (every acknowledged write is in the cache)."""
        self._compacted = 0
        self._fanned = 0  # loop side: every event up to this revision was offered to the watchers
        self._inbox: deque[CachedEvent] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: dict[str, dict[tuple[str | None, Selector, Render | None], _View]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.cut_off = 0
        """Watchers cut off as too slow so far."""

    # ------------------------------------------------------------------ feeding (writer threads)

    def start(self) -> None:
        """Load every stored object and follow the store's commits from there."""
        self._unsubscribe = self._store.watch_changes(self._load, self._apply)

    def close(self) -> None:
        """Stop following the store and end every watch."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.stop()

    def _load(self, revision: int, compacted: int, rows: list[tuple[str, str, str, str]]) -> None:
        with self._lock:
            for key, ns, name, data in rows:
                self._objects.setdefault(key, {}).setdefault(ns, {})[name] = Entry(data.encode())
            self.revision = self._base = self._fanned = revision
            self._compacted = compacted

    def _apply(self, revision: int, compacted: int, changes: list[sqlite.Change]) -> None:
        """Store listener (writing thread, store lock held): apply a commit's writes."""
        events = []
        with self._lock:
            ring, capacity = self._ring, self._capacity
            for change in changes:
                entry = Entry(change.data.encode())
                table = self._objects.setdefault(change.resource, {})
                if change.type == "DELETED":
                    names = table.get(change.namespace)
                    if names is not None:
                        names.pop(change.name, None)
                        if not names:
                            del table[change.namespace]
                else:
                    table.setdefault(change.namespace, {})[change.name] = entry
                event = CachedEvent(change.revision, change.resource, change.namespace, change.type, entry, change.prev)
                events.append(event)
                ring.append(event)
                if len(ring) > capacity:
                    self._base = ring.popleft().revision
            self.revision, self._compacted = revision, compacted
            loop = self._loop
            if loop is None:
                return
            idle = not self._inbox
            self._inbox.extend(events)
        if idle:
            try:
                loop.call_soon_threadsafe(self._fan_out)
            except RuntimeError:  # the loop is closed: no watcher is left to feed
                pass

    # ------------------------------------------------------------------ fan-out (event loop)

    def _fan_out(self) -> None:
        with self._lock:
            events = list(self._inbox)
            self._inbox.clear()
        if not events:
            return
        by_key: dict[str, list[CachedEvent]] = {}
        for event in events:
            by_key.setdefault(event.key, []).append(event)
        woken: list[Watcher] = []
        for key, keyed in by_key.items():
            for view in list(self._watchers.get(key, {}).values()):
                lines = view.lines(keyed)
                if lines:
                    self._offer(view, lines, woken)
        self._fanned = events[-1].revision
        for watcher in woken:
            sink = watcher.sink
            if sink is not None and watcher.buffer and not watcher.cut:
                data, count = b"".join(watcher.buffer), len(watcher.buffer)
                watcher.buffer.clear()
                if self._write(watcher, sink, data, count):
                    continue
            if watcher.buffer or watcher.cut:
                watcher.wake.set()

    def _offer(self, view: _View, lines: list[tuple[int, bytes]], woken: list[Watcher]) -> None:
        """Give one view's ``lines`` of a commit to its watchers: written at once to those with a
        sink (one join for all of them), buffered for the others, who are in ``woken`` then."""
        first, last = lines[0][0], lines[-1][0]
        whole: bytes | None = None
        for watcher in list(view.watchers):
            after = watcher.after
            if after >= last:
                continue
            sink = watcher.sink
            if sink is not None and after < first and not watcher.buffer:
                if whole is None:
                    whole = b"".join(line for _, line in lines)
                if not self._write(watcher, sink, whole, len(lines)):
                    watcher.wake.set()
                continue
            watcher.buffer.extend(line for revision, line in lines if revision > after)
            if len(watcher.buffer) > watcher.limit:
                watcher.cut = True
                view.watchers.discard(watcher)
                self.cut_off += 1
            woken.append(watcher)

    def _write(self, watcher: Watcher, sink: Sink, data: bytes, count: int) -> bool:
        """Write to ``watcher``'s sink; False if that cut it off (connection gone or too far behind)."""
        try:
            unsent = sink.write(data, count)
        except ConnectionError:
            unsent = self._watcher_bytes + 1
        if unsent <= self._watcher_bytes:
            return True
        watcher.cut = True
        self.cut_off += 1
        self.forget(watcher)
        return False

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            with self._lock:
                self._loop = loop
                self._inbox.clear()
                self._fanned = self.revision

    def stop(self) -> None:
        """End every watch (thread-safe; the server is shutting down)."""
        loop = self._loop
        if loop is None:
            return

        def wake_all() -> None:
            for views in self._watchers.values():
                for view in views.values():
                    for watcher in view.watchers:
                        watcher.cut = True
                        watcher.wake.set()

        try:
            loop.call_soon_threadsafe(wake_all)
        except RuntimeError:
            pass

    # ------------------------------------------------------------------ reads

    def is_current(self) -> bool:
        """True if the cache has applied the store's latest commit (a consistent read may use it)."""
        return self.revision >= self._store.revision()

    def covers(self, revision: int) -> bool:
        """True if the ring holds every event after ``revision`` that the store still keeps."""
        return revision >= self._base and revision >= self._compacted

    def get(self, info: kinds.ResourceInfo, namespace: str | None, name: str) -> Entry:
        """The cached object.

        Raises:
            errors.NotFound: no such object (the store's wording).
        """
        ns = (namespace or "") if info.namespaced else ""
        entry = self._objects.get(sqlite.resource_key(info), {}).get(ns, {}).get(name)
        if entry is None:
            raise errors.not_found(info.group, info.plural, name)
        return entry

    def _entries(self, key: str, namespace: str | None) -> list[Entry]:
        """Entries of one resource (one namespace or all) ordered by ``(namespace, name)``; lock held."""
        table = self._objects.get(key)
        if not table:
            return []
        if namespace is not None:
            names = table.get(namespace)
            return [names[n] for n in sorted(names)] if names else []
        out: list[Entry] = []
        for ns in sorted(table):
            names = table[ns]
            out.extend(names[n] for n in sorted(names))
        return out

    def list(self, info: kinds.ResourceInfo, namespace: str | None, selector: Selector) -> tuple[list[Entry], int]:
        """``(entries, revision)``: the matching objects ordered by ``(namespace, name)`` at ``revision``."""
        ns = namespace if info.namespaced else None
        with self._lock:
            entries = self._entries(sqlite.resource_key(info), ns)
            revision = self.revision
        if not selector.empty:
            entries = [e for e in entries if selector.matches(e.obj)]
        return entries, revision

    def list_body(self, info: kinds.ResourceInfo, entries: Iterable[Entry], revision: int) -> bytes:
        """The ``<Kind>List`` JSON of ``entries``, joined from their stored bytes (nothing re-encoded)."""
        head = fastjson.dumps(
            {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": {"resourceVersion": str(revision)}}
        )
        return head[:-1] + b',"items":[' + b",".join(e.raw for e in entries) + b"]}"

    # ------------------------------------------------------------------ watches

    def watch(
        self,
        *,
        info: kinds.ResourceInfo,
        namespace: str | None,
        selector: Selector,
        start: int | None,
        initial: bool,
        render: Render | None,
    ) -> tuple[Watcher, builtins.list[bytes], int] | None:
        """Register a watcher (on the event loop), or ``None`` if ``start`` is older than the ring.

        Returns:
            ``(watcher, backlog, revision)``: ``backlog`` holds the encoded initial ``ADDED`` events
            (``initial``) or the ring's events after ``start``; ``revision`` is where they end.
        """
        self._bind_loop()
        key = sqlite.resource_key(info)
        ns = namespace if info.namespaced else None
        with self._lock:
            if initial:
                entries = self._entries(key, ns)
                after = self.revision
            else:
                if start is None:
                    start = self.revision
                if start < self.revision and not self.covers(start):
                    return None
                after = max(start, self.revision)
                entries = []
                events = self._since(start)
            watcher = Watcher(
                key=key, namespace=ns, selector=selector, render=render, after=after, limit=self._watcher_buffer
            )
            views = self._watchers.setdefault(key, {})
            view = views.get(watcher.view)
            if view is None:
                view = views[watcher.view] = _View(ns, selector, render)
            view.watchers.add(watcher)
        backlog: builtins.list[bytes] = []
        if initial:
            for entry in entries:
                if selector.empty or selector.matches(entry.obj):
                    backlog.append(
                        b'{"type":"ADDED","object":' + entry.raw + b"}\n"
                        if render is None
                        else render("ADDED", entry.obj)
                    )
        else:
            for event in events:
                if event.key != key or (ns is not None and event.namespace != ns):
                    continue
                line = _rendered(event, selector, render)
                if line is not None:
                    backlog.append(line)
        return watcher, backlog, after

    def _since(self, start: int) -> builtins.list[CachedEvent]:
        """Ring events with revision > ``start``, oldest first; lock held."""
        ring = self._ring
        if not ring or ring[-1].revision <= start:
            return []
        if start < ring[0].revision:
            return list(ring)
        # revisions are increasing: bisect over an index view of the deque
        index = bisect.bisect_right(_RevisionView(ring), start)
        return [ring[i] for i in range(index, len(ring))]

    def forget(self, watcher: Watcher) -> None:
        """Unregister a watcher (its stream ended)."""
        views = self._watchers.get(watcher.key, {})
        view = views.get(watcher.view)
        if view is not None:
            view.watchers.discard(watcher)
            if not view.watchers:
                del views[watcher.view]

    def bookmark_revision(self, watcher: Watcher) -> int:
        """The revision a bookmark may carry once ``watcher``'s buffer is empty (loop side)."""
        return max(watcher.after, self._fanned)

    def watcher_count(self) -> int:
        """Watchers registered now."""
        return sum(len(view.watchers) for views in self._watchers.values() for view in views.values())


class _RevisionView:
    """A sequence view of a ring's revisions for :func:`bisect.bisect_right`."""

    def __init__(self, ring: deque[CachedEvent]) -> None:
        self._ring = ring

    def __len__(self) -> int:
        return len(self._ring)

    def __getitem__(self, i: int) -> int:
        return self._ring[i].revision


async def stream(
    cacher: Cacher,
    watcher: Watcher,
    backlog: list[bytes],
    *,
    info: kinds.ResourceInfo,
    deadline: float,
    bookmarks: bool,
    bookmark_interval: Callable[[], float],
    render: Render,
    initial_end: int | None,
    stopping: Callable[[], bool],
    sink: Sink | None = None,
) -> AsyncIterator[bytes]:
    """Yield a registered watcher's events, in chunks of whatever is buffered, until ``deadline``
    (loop time), the server stops, or the watcher is cut off; unregister it at the end.

    With a ``sink`` (the response's :class:`~.httpproto.ChunkWriter`), once the backlog is sent and
    the sink is :meth:`~Sink.ready`, the fan-out writes the events and this writes the bookmarks to
    it instead: from then on nothing is yielded unless the watcher is cut off with events left over.
    """
    loop = asyncio.get_running_loop()
    try:
        if backlog:
            yield b"".join(backlog)
            backlog.clear()
        if initial_end is not None:
            yield render(
                "BOOKMARK",
                {
                    "kind": info.kind,
                    "apiVersion": info.api_version,
                    "metadata": {
                        "resourceVersion": str(initial_end),
                        "annotations": {watch.INITIAL_EVENTS_END: "true"},
                    },
                },
            )
        next_bookmark = loop.time() + bookmark_interval()
        for _ in range(100_000_000):  # bounded by the deadline in practice
            if watcher.buffer:
                chunk = b"".join(watcher.buffer)
                watcher.buffer.clear()
                yield chunk
                continue
            now = loop.time()
            if watcher.cut or now >= deadline or stopping():
                return
            if bookmarks and now >= next_bookmark:
                line = render(
                    "BOOKMARK",
                    {
                        "kind": info.kind,
                        "apiVersion": info.api_version,
                        "metadata": {"resourceVersion": str(cacher.bookmark_revision(watcher))},
                    },
                )
                next_bookmark = loop.time() + bookmark_interval()
                if watcher.sink is None:
                    yield line
                    continue
                try:  # after every event the fan-out wrote, as a yield would be
                    watcher.sink.write(line, 1)
                except ConnectionError:
                    return
                continue
            if sink is not None and watcher.sink is None and sink.ready():
                watcher.sink = sink  # the buffer is empty and everything yielded is sent
            wait_for = deadline - now
            if bookmarks:
                wait_for = min(wait_for, max(0.0, next_bookmark - now))
            watcher.wake.clear()
            if watcher.buffer or watcher.cut:
                continue
            # a timer that sets the event, not asyncio.wait_for: that makes a task per wait, and a
            # watcher waits once per fan-out
            timer = loop.call_later(max(0.0, wait_for), watcher.wake.set)
            try:
                await watcher.wake.wait()
            finally:
                timer.cancel()
    finally:
        cacher.forget(watcher)
