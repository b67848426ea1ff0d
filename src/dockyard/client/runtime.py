"""Controller runtime: list + watch → workqueue → reconcile(key).

Follows client-go's shape (``tools/cache`` informers, ``util/workqueue``):

- An :class:`Informer` lists a resource, then watches from the list's
  ``resourceVersion``; on ``410 Gone`` or a dropped connection it relists.
  Each event is mapped to zero or more keys (``namespace/name``) that go on
  the queue. Events carry no work; the worker reads the current object.
  The cache holds typed objects (:mod:`dockyard.client.objects`): mappers and
  listers get ``Build``, ``Pod``, ... rather than dicts.
- A :class:`Lister` reads an informer's cache (a :class:`Store` with indexes by
  namespace, by owner uid and by chosen labels, as client-go's ``cache.Indexer``
  and generated listers): reconcile reads its object and the related ones from
  listers, never with a LIST (and a GET only where a cache miss must be told
  from a deletion).
- :class:`Expectations` (client-go ``pkg/controller`` ``ControllerExpectations``
  and ``UIDTrackingControllerExpectations``): a controller that created or
  deleted objects waits until its informer has seen those writes before it
  computes again, so a lagging cache never makes it act twice.
- A :class:`WorkQueue` de-duplicates keys and never hands one key to two
  workers at once (a key added while in flight is re-queued when done).
  Failures come back with per-key exponential backoff; success ``forget``\\ s.
- A :class:`Controller` owns a queue, informers and worker threads; its
  ``reconcile(key)`` returns ``None`` or a delay in seconds to look again.
- Kinds dockyard does not know (another project's custom resources, e.g. kpack's ``kpack.io/v1alpha2``
  Image) are watched by group/version/kind: :func:`discover` finds their plural and scope through the
  server's discovery (``GET /apis/{group}/{version}``, an ``APIResourceList``), and
  :meth:`Controller.dynamic_informer` starts an :class:`Informer` on a lightkube generic resource for them
  while the controller runs (client-go's ``dynamicinformer`` over a ``RESTMapper``).
"""

from __future__ import annotations

import builtins
import heapq
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, Literal, TypeVar

import httpx
from lightkube import ApiError, generic_resource
from lightkube.core.generic_client import ALL_NS
from pydantic import BaseModel

from dockyard.api import kinds, models, timefmt
from dockyard.api import labels as well_known
from dockyard.api import objects as api_objects
from dockyard.client import events, metrics, objects, resources
from dockyard.client.connection import UNANSWERED, Connection, lightkube_http

log = logging.getLogger(__name__)

Mapper = Callable[[str, Any], Iterable[str]]
"""``(event type, typed object) -> keys``."""

T = TypeVar("T")


Parser = Callable[[dict[str, Any]], Any]
"""``wire dict -> typed object`` for a kind :mod:`dockyard.client.objects` does not know."""


@dataclass(frozen=True)
class GroupVersionKind:
    """A kind as Kubernetes names it across groups (``schema.GroupVersionKind`` in apimachinery).

    ``group`` is ``""`` for the core group (``apiVersion: v1``)."""

    group: str
    version: str
    kind: str

    @classmethod
    def of(cls, api_version: str, kind: str) -> GroupVersionKind:
        """Split ``apiVersion`` (``GROUP/VERSION``, or ``VERSION`` for the core group) and pair it with ``kind``
        (``schema.ParseGroupVersion``). Raises ValueError for more than one ``/`` or an empty part."""
        group, slash, version = api_version.rpartition("/")
        if not version or (slash and not group) or "/" in group:
            raise ValueError(f"apiVersion {api_version!r} is not GROUP/VERSION")
        return cls(group, version, kind)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.api_version} {self.kind}"


def discovery_path(gvk: GroupVersionKind) -> str:
    """The discovery document listing ``gvk``'s resources: ``/apis/{group}/{version}`` (``/api/{version}`` for
    the core group), an ``APIResourceList`` (Kubernetes API concepts, "Discovery API")."""
    return f"/apis/{gvk.group}/{gvk.version}" if gvk.group else f"/api/{gvk.version}"


def resource_from_discovery(gvk: GroupVersionKind, resource_list: Mapping[str, Any]) -> kinds.ResourceInfo | None:
    """The resource serving ``gvk`` in an ``APIResourceList`` (meta/v1): the entry whose ``kind`` is
    ``gvk.kind`` and whose ``name`` is a plural, not a subresource (``images/status`` has the same kind),
    that can be listed and watched. None if there is none (the kind is not served at that group/version)."""
    for entry in resource_list.get("resources") or []:
        name = str(entry.get("name") or "")
        verbs = set(entry.get("verbs") or ())
        if entry.get("kind") != gvk.kind or not name or "/" in name or not {"list", "watch"} <= verbs:
            continue
        return kinds.ResourceInfo(
            group=gvk.group,
            version=gvk.version,
            kind=gvk.kind,
            plural=name,
            namespaced=bool(entry.get("namespaced")),
            subresources=tuple(
                str(e["name"]).partition("/")[2]
                for e in resource_list.get("resources") or []
                if str(e.get("name") or "").startswith(name + "/")
            ),
            short_names=tuple(entry.get("shortNames") or ()),
        )
    return None


def discover(conn: Connection, gvk: GroupVersionKind, *, timeout: float = 10.0) -> kinds.ResourceInfo | None:
    """Ask the server whether it serves ``gvk`` (``GET`` :func:`discovery_path`); its resource, or None when the
    group/version is not served (404) or does not list the kind.

    Raises:
        httpx.HTTPError: the server could not be reached, or answered another error (e.g. 403, 503).
    """
    with conn.http(timeout=timeout) as http:
        resp = http.get(discovery_path(gvk))
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return resource_from_discovery(gvk, resp.json())


def generic(info: kinds.ResourceInfo) -> Any:
    """A lightkube generic resource class for ``info`` (any group/version/kind, dockyard's or not): the one of
    :func:`dockyard.client.resources.resource` for a kind dockyard serves at that group/version, so one class
    stands for each group/version/kind (lightkube's registry refuses a second)."""
    try:
        known = resources.info(info.kind)
    except KeyError:
        known = None
    if known is not None and (known.group, known.version) == (info.group, info.version):
        return resources.resource(info.kind)
    return _generic(info.group, info.version, info.kind, info.plural, info.namespaced)


@cache
def _generic(group: str, version: str, kind: str, plural: str, namespaced: bool) -> Any:
    factory = generic_resource.create_namespaced_resource if namespaced else generic_resource.create_global_resource
    return factory(group, version, kind, plural)


def _typed(kind: str, raw: Any, parse: Parser | None = None) -> Any:
    """The typed object of a lightkube generic object (or dict) of ``kind`` (by ``parse`` when given, else
    :func:`objects.parse`); ``None`` (logged) if its model refuses it, so one malformed object cannot stop an
    informer."""
    data = resources.as_dict(raw)
    data.setdefault("kind", kind)
    try:
        return parse(data) if parse is not None else objects.parse(data)
    except Exception as err:
        status = data.get("status")
        if isinstance(status, dict):
            # a status written by a client that left out fields the model requires (a pod's
            # containerStatuses[].imageID, which Go decodes to ""): read for its phase and conditions
            try:
                lean = {k: v for k, v in status.items() if k in ("phase", "conditions")}
                return objects.parse({**data, "status": lean})
            except Exception:
                pass
        log.warning("%s %s: cannot read it: %s", kind, (data.get("metadata") or {}).get("name"), err)
        return None


class WorkQueue:
    """A de-duplicating delaying queue with per-key exponential backoff.

    Semantics of client-go ``workqueue.RateLimitingInterface``: ``add`` (no-op if
    queued), ``get`` (blocks; marks processing), ``done``, ``add_after(key, s)``,
    ``add_rate_limited`` (delay = base * 2**failures, capped), ``forget``.
    With a ``name``, it records client-go's workqueue metrics under that name
    (:mod:`dockyard.client.metrics`).
    """

    def __init__(self, *, base_delay: float = 0.05, max_delay: float = 30.0, name: str = "") -> None:
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        self._seq = 0
        self._failures: dict[str, int] = {}
        self._base, self._max = base_delay, max_delay
        self._shutdown = False
        self._added_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}
        self._name = name
        self._m = (
            (
                metrics.WORKQUEUE_DEPTH.labels(name),
                metrics.WORKQUEUE_ADDS.labels(name),
                metrics.WORKQUEUE_RETRIES.labels(name),
                metrics.WORKQUEUE_QUEUE_DURATION.labels(name),
                metrics.WORKQUEUE_WORK_DURATION.labels(name),
            )
            if name
            else None
        )

    def _enqueue(self, key: str) -> None:
        """Append ``key`` (not queued, not processing); caller holds the lock."""
        self._queued.add(key)
        self._queue.append(key)
        self._added_at[key] = time.monotonic()
        if self._m:
            self._m[0].inc()
            self._m[1].inc()

    def add(self, key: str) -> None:
        with self._cond:
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._enqueue(key)
                self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            self._seq += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, self._seq, key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> float:
        """Re-add ``key`` after its backoff; returns the delay in seconds."""
        with self._cond:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        if self._m:
            self._m[2].inc()
        delay = float(min(self._max, self._base * (2**n)))
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def get(self, timeout: float = 1.0) -> str | None:
        """Next key to process, or None after ``timeout`` seconds / on shutdown."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, key = heapq.heappop(self._delayed)
                    if key in self._processing:
                        self._dirty.add(key)
                    elif key not in self._queued:
                        self._enqueue(key)
                if self._queue:
                    key = self._queue.pop(0)
                    self._queued.discard(key)
                    self._processing.add(key)
                    added = self._added_at.pop(key, now)
                    self._started_at[key] = now
                    if self._m:
                        self._m[0].dec()
                        self._m[3].observe(max(0.0, now - added))
                    return key
                if self._shutdown or now >= deadline:
                    return None
                wait = deadline - now
                if self._delayed:
                    wait = min(wait, max(0.0, self._delayed[0][0] - now))
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            started = self._started_at.pop(key, None)
            if self._m and started is not None:
                self._m[4].observe(max(0.0, time.monotonic() - started))
            if key in self._dirty:
                self._dirty.discard(key)
                self._enqueue(key)
                self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)


IndexFunc = Callable[[Any], Iterable[str]]
"""``typed object -> index values`` (client-go ``cache.IndexFunc``)."""

NAMESPACE_INDEX = "namespace"
"""Index of every :class:`Store`: ``metadata.namespace`` (``""`` for cluster-scoped objects)."""
OWNER_INDEX = "owner"
"""Index of every :class:`Store`: the ``uid`` of each ``metadata.ownerReferences`` entry."""


def namespace_index(obj: Any) -> list[str]:
    """:data:`NAMESPACE_INDEX` values of ``obj`` (client-go ``cache.MetaNamespaceIndexFunc``)."""
    return [obj.metadata.namespace or ""]


def owner_index(obj: Any) -> list[str]:
    """:data:`OWNER_INDEX` values of ``obj``: the uids of its owners (controller or not)."""
    return [str(ref.uid) for ref in obj.metadata.ownerReferences or [] if ref.uid]


def label_index_name(key: str) -> str:
    """The name of the index :func:`label_index` builds for label ``key``."""
    return f"label:{key}"


def label_index(key: str) -> IndexFunc:
    """An index of objects by ``namespace/value`` of label ``key`` (its legacy spelling too,
    :func:`dockyard.api.labels.get`); objects without the label are not in it."""

    def index(obj: Any) -> list[str]:
        value = well_known.get(obj, key)
        return [] if value is None else [f"{obj.metadata.namespace or ''}/{value}"]

    return index


def label_indexers(*keys: str) -> dict[str, IndexFunc]:
    """``{label_index_name(k): label_index(k)}`` for each label ``k``: for :attr:`Watch.indexers`."""
    return {label_index_name(k): label_index(k) for k in keys}


_BASE_INDEXERS: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index, OWNER_INDEX: owner_index}


class Store:
    """A thread-safe store of typed objects by key (``namespace/name``) with indexes (client-go
    ``cache.ThreadSafeStore`` + ``Indexers``). Always indexed by :data:`NAMESPACE_INDEX` and
    :data:`OWNER_INDEX`, plus ``indexers``. Objects handed out are shared: do not modify them."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Any] = {}
        self._indexers = {**_BASE_INDEXERS, **(indexers or {})}
        self._indices: dict[str, dict[str, dict[str, None]]] = {name: {} for name in self._indexers}

    def _index(self, key: str, obj: Any, *, add: bool) -> None:
        """Add ``key`` to (or drop it from) the index entries of ``obj``; caller holds the lock."""
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                if add:
                    index.setdefault(value, {})[key] = None
                else:
                    keys = index.get(value)
                    if keys is not None:
                        keys.pop(key, None)
                        if not keys:
                            del index[value]

    def update(self, obj: Any) -> Any:
        """Add or replace ``obj``; returns the object it replaced, or None."""
        key = resources.key(obj)
        with self._lock:
            old = self._items.get(key)
            if old is not None:
                self._index(key, old, add=False)
            self._items[key] = obj
            self._index(key, obj, add=True)
        return old

    def delete(self, obj: Any) -> Any:
        """Remove the object with ``obj``'s key; returns what was stored, or None."""
        key = resources.key(obj)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._index(key, old, add=False)
        return old

    def replace(self, objs: Iterable[Any]) -> tuple[builtins.list[Any], builtins.list[Any], builtins.list[Any]]:
        """Make the store hold exactly ``objs`` (a relist, client-go ``Replace``).

        Returns:
            ``(gone, added, kept)``: objects no longer listed (as they were stored), listed objects that were
            not stored, and listed objects that were (their new versions).
        """
        fresh = {resources.key(o): o for o in objs}
        with self._lock:
            old = self._items
            gone = [o for k, o in old.items() if k not in fresh]
            added = [o for k, o in fresh.items() if k not in old]
            kept = [o for k, o in fresh.items() if k in old]
            self._items = fresh
            self._indices = {name: {} for name in self._indexers}
            for key, obj in fresh.items():
                self._index(key, obj, add=True)
        return gone, added, kept

    def get(self, key: str) -> Any:
        """The object stored under ``key`` (``namespace/name``), or None."""
        with self._lock:
            return self._items.get(key)

    def list(self) -> builtins.list[Any]:
        """Every stored object."""
        with self._lock:
            return list(self._items.values())

    def by_index(self, name: str, value: str) -> builtins.list[Any]:
        """The objects whose index ``name`` has ``value`` (client-go ``ByIndex``).

        Raises:
            KeyError: no index ``name`` (the :class:`Watch` declares none such).
        """
        with self._lock:
            keys = self._indices[name].get(value) or {}
            return [self._items[k] for k in keys]

    def has_index(self, name: str) -> bool:
        return name in self._indexers


class Lister(Generic[T]):
    """Reads of one kind from its informer's cache, as client-go's generated listers
    (``listers/apps/v1.ReplicaSetLister``: ``Get``, ``List(selector)``, ``ByIndex``).

    The cache is a consistent prefix of the watch stream: it may lag the API server, never reorder it.
    Objects are shared with the cache and other readers: copy before changing one.
    """

    def __init__(self, kind: str, store: Store, synced: threading.Event) -> None:
        self.kind = kind
        self._store = store
        self._synced = synced

    def has_synced(self) -> bool:
        """True once the informer's first list is in the cache (client-go ``HasSynced``)."""
        return self._synced.is_set()

    def get(self, namespace: str | None, name: str) -> T | None:
        """The cached object ``namespace/name`` (``name`` for cluster-scoped kinds), or None."""
        found: T | None = self._store.get(f"{namespace}/{name}" if namespace else name)
        return found

    def list(self, namespace: str | None = None, selector: Mapping[str, str] | None = None) -> builtins.list[T]:
        """The cached objects in ``namespace`` (all when None) whose labels hold every ``key: value`` of
        ``selector`` (a ``matchLabels`` equality selector; empty or None: all). Uses a label index when
        the :class:`Watch` declared one for a key of ``selector``, else the namespace index."""
        selector = dict(selector or {})
        items: builtins.list[T]
        indexed = next((k for k in selector if self._store.has_index(label_index_name(k))), None)
        if indexed is not None and namespace is not None:
            items = self._store.by_index(label_index_name(indexed), f"{namespace}/{selector[indexed]}")
        elif namespace is not None:
            items = self._store.by_index(NAMESPACE_INDEX, namespace)
        else:
            items = self._store.list()
        if not selector:
            return items
        out = []
        for obj in items:
            labels = obj.metadata.labels or {}  # type: ignore[attr-defined]
            if all(labels.get(k) == v for k, v in selector.items()):
                out.append(obj)
        return out

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        """The cached objects whose ``index`` has ``value`` (:data:`OWNER_INDEX`, a :func:`label_index`, ...).

        Raises:
            KeyError: the informer has no such index.
        """
        return self._store.by_index(index, value)

    def owned_by(self, owner: Any) -> builtins.list[T]:
        """The cached objects with an ``ownerReferences`` entry naming ``owner``'s uid."""
        uid = owner.metadata.uid
        return self._store.by_index(OWNER_INDEX, str(uid)) if uid else []


class Informer:
    """List + watch one kind across all namespaces, keep an indexed cache, call ``on_event``.

    ``on_event(type, obj)`` gets ``ADDED``/``MODIFIED``/``DELETED`` after the cache has the change. After
    every (re)list it gets ``DELETED`` for each cached object no longer listed, ``ADDED`` for each listed
    object the cache did not hold and ``MODIFIED`` for each it did (a resync, as client-go's ``Replace``
    calls ``OnUpdate``), so handlers are level-based. :attr:`lister` reads the cache.

    ``kind`` is one of dockyard's served kinds by name (:mod:`dockyard.api.kinds`), or any resource as a
    :class:`~dockyard.api.kinds.ResourceInfo` (e.g. from :func:`discover`); objects of a kind
    :mod:`dockyard.client.objects` does not know are made typed by ``parse``.
    """

    def __init__(
        self,
        conn: Connection,
        kind: str | kinds.ResourceInfo,
        on_event: Callable[[str, Any], None],
        *,
        label_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        parse: Parser | None = None,
    ) -> None:
        self.resource = kind if isinstance(kind, kinds.ResourceInfo) else resources.info(kind)
        self.kind = self.resource.kind
        self._conn = conn
        self._on_event = on_event
        self._labels = label_selector
        self._parse = parse
        self.store = Store(indexers)
        self.synced = threading.Event()
        self.lister: Lister[Any] = Lister(self.kind, self.store, self.synced)

    def items(self) -> list[Any]:
        """A snapshot of the cached typed objects (possibly slightly stale; do not modify them)."""
        return self.store.list()

    def run(self, stop: threading.Event) -> None:
        res = generic(self.resource)
        namespaced = self.resource.namespaced
        backoff = 0.2
        while not stop.is_set():
            client = self._conn.lightkube(timeout=60)
            try:
                listing = client.list(res, namespace=ALL_NS if namespaced else None, labels=_parse_labels(self._labels))
                objs = [t for t in (_typed(self.kind, o, self._parse) for o in listing) if t is not None]
                rv = listing.resourceVersion
                self.relisted(objs)
                backoff = 0.2
                for event, raw in client.watch(
                    res,
                    namespace=ALL_NS if namespaced else None,
                    labels=_parse_labels(self._labels),
                    resource_version=rv,
                ):
                    if stop.is_set():
                        return
                    if event == "BOOKMARK":
                        continue
                    obj = _typed(self.kind, raw, self._parse)
                    if obj is None:
                        continue
                    self.deliver(event, obj)
            except ApiError as err:
                if err.status.code != 410:
                    log.warning("watch %s: %s", self.kind, err.status.message)
            except (httpx.HTTPError, lightkube_http.HTTPError, OSError) as err:
                log.debug("watch %s dropped: %s", self.kind, err)
            except Exception:
                log.exception("watch %s failed", self.kind)
            finally:
                client.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def relisted(self, objs: list[Any]) -> None:
        """Put a (re)list in the cache, emit its events, and mark the informer synced."""
        gone, added, kept = self.store.replace(objs)
        for obj in gone:
            self._emit("DELETED", obj)
        for obj in added:
            self._emit("ADDED", obj)
        for obj in kept:
            self._emit("MODIFIED", obj)
        self.synced.set()

    def deliver(self, event: str, obj: Any) -> None:
        """Apply one watch event to the cache, then emit it."""
        if event == "DELETED":
            self.store.delete(obj)
        else:
            self.store.update(obj)
        self._emit(event, obj)

    def _emit(self, event: str, obj: Any) -> None:
        try:
            self._on_event(event, obj)
        except Exception:
            log.exception("event handler for %s failed", self.kind)


def _parse_labels(selector: str | None) -> dict[str, Any] | None:
    if not selector:
        return None
    out: dict[str, Any] = {}
    for part in selector.split(","):
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip() if v else lightkube_exists()
    return out


def lightkube_exists() -> Any:
    from lightkube import operators

    return operators.exists()


EXPECTATIONS_TIMEOUT = 300.0
"""Seconds after which unmet expectations are given up and the controller computes again anyway
(client-go ``pkg/controller`` ``ExpectationsTimeout``, 5 minutes): a watch event lost for good must not
stall a controller forever."""


@dataclass
class _Expected:
    adds: int
    deletes: set[str]
    since: float


class Expectations:
    """What a controller has written and its informers have not seen yet, by controller key (client-go
    ``pkg/controller/controller_utils.go``: ``ControllerExpectations`` for creations, counted because a
    ``generateName`` create has no name before it is sent, and ``UIDTrackingControllerExpectations`` for
    deletions, by object key, because a deleted object may be seen as gone in several ways).

    The protocol, as the ReplicaSet controller follows it: reconcile computes only when :meth:`satisfied`;
    before creating N objects it calls :meth:`expect_creations` (N), before deleting some
    :meth:`expect_deletions` (their keys); a create or delete that fails is lowered at once
    (:meth:`creation_observed` / :meth:`deletion_observed`); the informer's event handler
    (:meth:`Controller.observe`) lowers them as the cache sees each object appear or go. Expectations
    older than ``timeout`` seconds count as satisfied. Thread-safe.
    """

    def __init__(self, *, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, _Expected] = {}
        self._timeout = timeout
        self._clock = clock

    def satisfied(self, key: str) -> bool:
        """True when nothing is expected for ``key``, everything expected was observed, or the expectations
        expired (client-go ``SatisfiedExpectations``)."""
        with self._lock:
            exp = self._by_key.get(key)
            if exp is None:
                return True
            if exp.adds <= 0 and not exp.deletes:
                return True
            return self._clock() - exp.since > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        """Expect ``count`` objects to appear for ``key`` (replaces what was expected: set them before
        writing, once the last expectations are satisfied)."""
        with self._lock:
            self._by_key[key] = _Expected(adds=count, deletes=set(), since=self._clock())

    def raise_creations(self, key: str, count: int) -> None:
        """Expect ``count`` more objects to appear for ``key``, on top of what it already expects (client-go
        ``RaiseExpectations``); the expiry counts from now."""
        with self._lock:
            exp = self._by_key.get(key)
            if exp is None:
                self._by_key[key] = _Expected(adds=count, deletes=set(), since=self._clock())
            else:
                exp.adds = max(0, exp.adds) + count
                exp.since = self._clock()

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        """Expect the objects ``object_keys`` (``namespace/name``) to go (replaces what was expected)."""
        with self._lock:
            self._by_key[key] = _Expected(adds=0, deletes=set(object_keys), since=self._clock())

    def creation_observed(self, key: str) -> None:
        """One expected object of ``key`` appeared in the cache, or its create failed."""
        with self._lock:
            exp = self._by_key.get(key)
            if exp is not None:
                exp.adds -= 1

    def deletion_observed(self, key: str, object_key: str) -> None:
        """``object_key`` is gone or going (deleted, or ``deletionTimestamp`` set), or its delete failed."""
        with self._lock:
            exp = self._by_key.get(key)
            if exp is not None:
                exp.deletes.discard(object_key)

    def forget(self, key: str) -> None:
        """Drop what ``key`` expected (the controller object is gone; client-go ``DeleteExpectations``)."""
        with self._lock:
            self._by_key.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """``(creations, deletions)`` still expected for ``key`` (for logs and tests)."""
        with self._lock:
            exp = self._by_key.get(key)
            return (max(0, exp.adds), len(exp.deletes)) if exp is not None else (0, 0)


@dataclass
class Watch:
    """A kind to watch and how its events map to this controller's keys."""

    kind: str
    mapper: Mapper | None = None  # None: the object's own key
    label_selector: str | None = None
    indexers: Mapping[str, IndexFunc] | None = None
    """Indexes of the cache beyond namespace and owner (e.g. :func:`label_indexers`)."""


def no_keys(_event: str, _obj: Any) -> list[str]:
    """A :class:`Watch` mapper that enqueues nothing: the kind is watched only to be read from its lister."""
    return []


class Controller:
    """Base class: subclasses set ``name``, define :meth:`watches` and implement :meth:`reconcile`.

    ``reconcile(key)`` must be idempotent and read current state itself.
    Returns ``None`` (done) or seconds after which to reconcile again.
    Raising requeues with backoff; a ``409 Conflict`` is an expected race.
    """

    name = "controller"
    component = ""
    """``source.component`` of the Events it records (default ``<name>-controller``)."""
    host = ""
    """``source.host`` of the Events it records (a node agent sets its node name)."""
    EVENT_TIMEOUT = 5.0
    """Seconds recording one Event may take at most."""
    informer_class: type[Informer] = Informer
    """What :meth:`start` makes an informer with (tests put a lagging one here)."""

    def __init__(self, conn: Connection, *, workers: int = 1) -> None:
        self.conn = conn
        self.workers = workers
        self.queue = WorkQueue(name=self.name)
        self.informers: dict[str, Informer] = {}
        self.dynamic_informers: dict[GroupVersionKind, Informer] = {}
        """Informers started while running (:meth:`dynamic_informer`), by group/version/kind."""
        self._stop: threading.Event | None = None
        self._dynamic_lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def watches(self) -> list[Watch]:
        raise NotImplementedError

    def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    def observe(self, kind: str, event: str, obj: Any) -> None:
        """Called with every event of every watched kind, after the cache has it and before it is mapped to
        keys: where :class:`Expectations` are told what the informer has seen. Default: nothing."""

    def lister(self, cls: type[T]) -> Lister[T]:
        """The :class:`Lister` of ``cls``'s kind (``objects.Build``, lightkube's ``Pod``, ...).

        Raises:
            KeyError: this controller watches no such kind (its :meth:`watches` must name it).
        """
        kind = kind_of(cls)
        informer = self.informers.get(kind)
        if informer is None:
            raise KeyError(f"{self.name}: no informer of {kind}; add a Watch({kind!r}) to watches()")
        lister: Lister[T] = informer.lister
        return lister

    def setup(self) -> None:
        """Called once before the informers start (e.g. to make API clients).

        Sets ``self.api`` (lightkube client) and ``self.events`` (an asynchronous, spam-filtered
        :class:`dockyard.client.events.EventRecorder`: recording never waits for the API server).
        """
        self.api = self.conn.lightkube()
        self.events = events.EventRecorder(
            self.conn.lightkube(timeout=self.EVENT_TIMEOUT),
            component=self.component or f"{self.name}-controller",
            host=self.host,
            asynchronous=True,
            spam_filter=True,
        )

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Start informers and workers as daemon threads; they end when ``stop`` is set. The workers take
        keys from the queue only once every informer has listed (:meth:`wait_for_cache_sync`)."""
        self._stop = stop
        self.setup()
        threads = []
        for w in self.watches():
            informer = self.informer_class(
                self.conn, w.kind, self._handler(w), label_selector=w.label_selector, indexers=w.indexers
            )
            self.informers[w.kind] = informer
            threads.append(
                threading.Thread(target=informer.run, args=(stop,), daemon=True, name=f"{self.name}-watch-{w.kind}")
            )
        self._workers = [
            threading.Thread(target=self._work, args=(stop, i == 0), daemon=True, name=f"{self.name}-worker-{i}")
            for i in range(self.workers)
        ]
        threads.extend(self._workers)
        threading.Thread(target=self._stopper, args=(stop,), daemon=True).start()
        for t in threads:
            t.start()
        return threads

    def join_workers(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the workers to end (after ``stop`` is set, each ends once its
        current reconcile has returned). Returns True if none is left running."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in self._workers)

    def synced(self) -> bool:
        """True once every informer of :meth:`watches` has listed (dynamic informers are not waited for)."""
        return all(i.synced.is_set() for i in self.informers.values())

    def dynamic_informer(
        self, resource: kinds.ResourceInfo, mapper: Mapper, *, parse: Parser | None = None
    ) -> Informer:
        """The informer of ``resource`` (any group/version/kind, e.g. found by :func:`discover`), started now
        on a daemon thread if this controller has none yet; its events go through ``mapper`` to the queue.

        Callers check ``informer.synced`` before trusting its (possibly empty) cache.

        Raises:
            RuntimeError: the controller is not started (:meth:`start`).
        """
        gvk = GroupVersionKind(resource.group, resource.version, resource.kind)
        with self._dynamic_lock:
            found = self.dynamic_informers.get(gvk)
            if found is not None:
                return found
            if self._stop is None:
                raise RuntimeError(f"{self.name}: not started")
            informer = Informer(self.conn, resource, self._handler(Watch(resource.kind, mapper)), parse=parse)
            self.dynamic_informers[gvk] = informer
            threading.Thread(
                target=informer.run, args=(self._stop,), daemon=True, name=f"{self.name}-watch-{gvk}"
            ).start()
            log.info("%s: watching %s (%s)", self.name, gvk, resource.plural)
            return informer

    def _stopper(self, stop: threading.Event) -> None:
        stop.wait()
        self.queue.shutdown()

    def _handler(self, w: Watch) -> Callable[[str, Any], None]:
        def handle(event: str, obj: Any) -> None:
            self.observe(w.kind, event, obj)
            keys = [resources.key(obj)] if w.mapper is None else w.mapper(event, obj)
            for k in keys:
                self.queue.add(k)

        return handle

    def wait_for_cache_sync(self, stop: threading.Event, *, warn_after: float = 30.0) -> bool:
        """Block until every informer of :meth:`watches` has put its first list in the cache (client-go
        ``cache.WaitForCacheSync``, which a controller's ``Run`` calls before it starts its workers).

        A reconcile before that reads an incomplete cache as the truth: a Build whose BuildConfig is not
        cached yet looks like one of a ``Serial`` config; a ReplicaSet whose pods are not, like one with none.
        Logs a warning every ``warn_after`` seconds naming the kinds not listed yet (an informer that cannot
        list, e.g. refused with 403, keeps the workers waiting, as in client-go).

        Returns:
            True once synced; False if ``stop`` was set first.
        """
        waited = 0.0
        for informer in list(self.informers.values()):
            while not informer.synced.wait(0.1):
                if stop.is_set():
                    return False
                waited += 0.1
                if waited >= warn_after:
                    waited = 0.0
                    pending = [i.kind for i in self.informers.values() if not i.synced.is_set()]
                    log.warning("%s: workers still wait for the caches of %s to sync", self.name, ", ".join(pending))
        return not stop.is_set()

    def _work(self, stop: threading.Event, first: bool = True) -> None:
        if not self.wait_for_cache_sync(stop, warn_after=30.0 if first else math.inf):  # one worker warns
            return
        while not stop.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            try:
                again = self.reconcile(key)
            except ApiError as err:
                level = logging.DEBUG if err.status.code == 409 else logging.WARNING
                log.log(level, "%s: reconcile %s: %s", self.name, key, err.status.message)
                self.queue.add_rate_limited(key)
            except UNANSWERED as err:  # a server or engine that does not answer: one line, retried
                log.warning(
                    "%s: reconcile %s: %s: %s",
                    self.name,
                    key,
                    type(err).__name__,
                    str(err).splitlines()[0][:300] if str(err) else "",
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: reconcile %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            finally:
                self.queue.done(key)


def get(api: Any, kind: str, name: str, namespace: str | None) -> Any:
    """GET an object as a typed object (:mod:`dockyard.client.objects`), or None on 404 (gone: not an error)."""
    found = get_or_none(api, kind, name, namespace)
    if found is None:
        return None
    found.setdefault("kind", kind)
    return objects.parse(found)


def kind_of(cls: type[Any]) -> str:
    """The ``kind`` of a typed object class: a dockyard model's ``kind`` default (``objects.Build`` → ``Build``),
    else the class name (lightkube's ``Pod`` → ``Pod``)."""
    field = getattr(cls, "model_fields", {}).get("kind")
    return str(field.default) if field is not None else cls.__name__


def get_as(api: Any, cls: type[T], name: str, namespace: str | None) -> T | None:
    """GET ``name`` as a typed object of ``cls`` (a :mod:`dockyard.api.objects` kind or a lightkube model, e.g.
    ``objects.Build``, ``Pod``), or None on 404 (gone: not an error).

    Raises:
        lightkube.ApiError: any other error answer.
        pydantic.ValidationError: a dockyard object whose spec its model refuses.
    """
    found = get_or_none(api, kind_of(cls), name, namespace)
    if found is None:
        return None
    found.setdefault("kind", kind_of(cls))
    return objects.parse(found, cls)


def list_as(api: Any, cls: type[T], *, namespace: str | None, labels: Mapping[str, str] | None = None) -> list[T]:
    """A live LIST (not an informer's cache) of ``cls`` objects in ``namespace`` with the ``labels`` (equality
    selector), as typed objects.

    Raises:
        lightkube.ApiError: an error answer.
        pydantic.ValidationError: a dockyard object whose spec its model refuses.
    """
    kind = kind_of(cls)
    out = []
    for item in api.list(resources.resource(kind), namespace=namespace, labels=dict(labels) if labels else None):
        data = resources.as_dict(item)
        data.setdefault("kind", kind)
        out.append(objects.parse(data, cls))
    return out


def get_or_none(api: Any, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    """GET an object as a dict, or None on 404 (the object is gone: not an error)."""
    try:
        return resources.as_dict(api.get(resources.resource(kind), name=name, namespace=namespace))
    except ApiError as err:
        if err.status.code == 404:
            return None
        raise


def owner_keys(kind: str) -> Mapper:
    """Map an event of an owned object to its controlling owner of ``kind`` (same namespace)."""

    def mapper(_event: str, obj: Any) -> list[str]:
        owner = resources.controller_of(obj, kind)
        ns = obj.metadata.namespace
        return [f"{ns}/{owner}"] if owner else []

    return mapper


def now_rfc3339() -> str:
    """Current UTC time as Kubernetes writes timestamps (RFC 3339, seconds, ``Z``)."""
    return timefmt.now()


@dataclass
class _Write:
    before: str
    after: str
    patch: dict[str, Any]


class _OwnWrites:
    """Status writes of this process that the informers' caches may not have seen yet, by ``(kind, uid)``:
    the ``resourceVersion`` written from and the one the server answered, and what was written."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: OrderedDict[tuple[str, str], _Write] = OrderedDict()

    def unseen(self, kind: str, uid: str, rv: str) -> _Write | None:
        """The write made from ``rv`` when the object read still has that ``rv`` (the cache has not caught
        up), else None (and the record is dropped: seen, or superseded by another write)."""
        with self._lock:
            found = self._by_uid.get((kind, uid))
            if found is None:
                return None
            if found.before != rv:
                del self._by_uid[(kind, uid)]
                return None
            return found

    def remember(self, kind: str, uid: str, write: _Write) -> None:
        with self._lock:
            self._by_uid[(kind, uid)] = write
            self._by_uid.move_to_end((kind, uid))
            while len(self._by_uid) > self.LIMIT:
                self._by_uid.popitem(last=False)


_OWN_WRITES = _OwnWrites()


def _identity(kind: str, whole: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = whole.get("metadata") or {}
    return kind, str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


def _identity_of(obj: Any) -> tuple[str, str, str]:
    """``(kind, uid, resourceVersion)`` of a dict or a typed object (read from its metadata, not converted)."""
    if isinstance(obj, dict):
        return _identity(str(obj.get("kind") or ""), obj)
    meta = obj.metadata
    kind = getattr(obj, "kind", None) or type(obj).__name__
    return str(kind), str(meta.uid or "") if meta else "", str(meta.resourceVersion or "") if meta else ""


def unseen_write(obj: Any) -> bool:
    """True when this process wrote ``obj``'s status (:func:`patch_status`), or ``obj`` (:func:`wrote`), from the
    very version ``obj`` is
    (same ``resourceVersion``) and the server stored a new version: ``obj`` comes from a cache that has not
    seen that write yet. Its watch event is on the way and enqueues the key again, so a reconcile may wait
    for it rather than act on the older state (e.g. end a Build twice)."""
    kind, uid, rv = _identity_of(obj)
    return bool(uid and rv) and _OWN_WRITES.unseen(kind, uid, rv) is not None


def wrote(before: Any, written: Any) -> bool:
    """Remember that this process replaced ``before`` (the object as read, typically from an informer's cache)
    and the server stored ``written`` (a new ``resourceVersion``): until the cache holds a version other than
    ``before``'s, :func:`unseen_write` is True for it. Returns False, remembering nothing, when the server
    stored nothing new (same ``resourceVersion``: no watch event will come)."""
    kind, uid, rv = _identity_of(before)
    after = _identity_of(written)[2]
    if not (uid and rv and after) or after == rv:
        return False
    _OWN_WRITES.remember(kind, uid, _Write(rv, after, {}))
    return True


def patch_status(api: Any, kind: str, obj: Any, status: dict[str, Any]) -> dict[str, Any] | None:
    """JSON-merge-patch ``status`` (a dict of wire-shaped fields) through the ``/status`` subresource, only if it
    changes something. ``obj`` is the object as last read: a dict or a typed object, possibly from an
    informer's cache that has not yet seen this process's last status write to it (then what that write set
    counts as current, so the same patch is not sent twice).

    Returns the updated object as a dict, or None when the object is gone (404) or nothing changed.
    Keys set to None in ``status`` are removed (RFC 7386).
    """
    from lightkube.types import PatchType

    whole = obj if isinstance(obj, dict) else objects.to_dict(obj)
    current = whole.get("status") or {}
    _, uid, rv = _identity(kind, whole)
    earlier = _OWN_WRITES.unseen(kind, uid, rv) if uid and rv else None
    if earlier is not None:
        current = {**current, **earlier.patch}
    if all(current.get(k) == v for k, v in status.items()):
        return None
    meta = whole["metadata"]
    try:
        out = api.patch(
            resources.resource(kind).Status,
            meta["name"],
            {"status": status},
            namespace=meta.get("namespace"),
            patch_type=PatchType.MERGE,
        )
    except ApiError as err:
        if err.status.code == 404:
            return None
        raise
    written = resources.as_dict(out)
    after = str((written.get("metadata") or {}).get("resourceVersion") or "")
    if uid and rv and after and after != rv:
        _OWN_WRITES.remember(kind, uid, _Write(rv, after, {**(earlier.patch if earlier else {}), **status}))
    return written


def update_status(api: Any, obj: T, status: Mapping[str, Any] | BaseModel) -> T | None:
    """:func:`patch_status` for a typed object ``obj`` (kind from the object), returning a typed object.

    ``status`` is a dict of wire-shaped fields, or a status model (e.g. ``models.BuildStatus(phase=...)``) whose
    *set* fields are the patch (``exclude_unset``: a field set to ``None`` is removed, RFC 7386).

    Returns:
        The updated object, of ``obj``'s type; None when the object is gone (404) or nothing changed.
    Raises:
        lightkube.ApiError: any error answer but 404 (409 Conflict included).
    """
    patch = api_objects.to_dict(status) if isinstance(status, BaseModel) else dict(status)
    kind = getattr(obj, "kind", None) or type(obj).__name__
    out = patch_status(api, kind, obj, patch)
    if out is None:
        return None
    out.setdefault("kind", kind)
    return objects.parse(out, type(obj))


def with_condition(
    conditions: Sequence[models.Condition], type_: str, status: bool, reason: str, message: str = ""
) -> list[models.Condition]:
    """:func:`set_condition` for typed conditions: a new list (``conditions`` is not modified) with condition
    ``type_`` set; its ``lastTransitionTime`` changes only when ``status`` flips (Kubernetes API conventions,
    "Typical status properties"). Conditions of other types are kept as they are."""
    value: Literal["True", "False"] = "True" if status else "False"
    out = []
    found = False
    for cond in conditions:
        if cond.type == type_:
            found = True
            cond = cond.model_copy()
            if cond.status != value:
                cond.lastTransitionTime = now_rfc3339()
            cond.status, cond.reason, cond.message = value, reason, message
        out.append(cond)
    if not found:
        out.append(
            models.Condition(type=type_, status=value, reason=reason, message=message, lastTransitionTime=now_rfc3339())
        )
    return out


def set_condition(
    conditions: list[dict[str, Any]] | None, type_: str, status: bool, reason: str, message: str = ""
) -> list[dict[str, Any]]:
    """Return ``conditions`` with condition ``type_`` set (Kubernetes API conventions, "Typical status
    properties"): ``lastTransitionTime`` changes only when ``status`` flips."""
    out = [dict(c) for c in conditions or []]
    value = "True" if status else "False"
    for cond in out:
        if cond.get("type") == type_:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now_rfc3339()
            cond.update(status=value, reason=reason, message=message)
            return out
    out.append(
        {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": now_rfc3339()}
    )
    return out
