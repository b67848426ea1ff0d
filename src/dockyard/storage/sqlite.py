"""SQLite object store: one global revision, optimistic concurrency, a watch log, build logs.

The store keeps every served object as JSON in one table keyed by
``(resource, namespace, name)``; ``resource`` is the qualified plural
(``builds.dockyard.dev``, ``pods``). Every write takes the next value of one
global, monotonically increasing revision, stores it as the object's
``metadata.resourceVersion`` and appends a change event (``ADDED``,
``MODIFIED``, ``DELETED``) with that revision to the watch log — the model of
etcd's revision and the apiserver's watch cache ("Resource versions" and
"Efficient detection of changes" in the Kubernetes API concepts). The watch
log keeps the last ``retention`` events; asking for events after a revision
older than that raises :class:`dockyard.api.errors.Gone` (410 ``Expired``).

The store is thread-safe: one connection guarded by a re-entrant lock;
:meth:`Store.atomic` groups several calls into one transaction (used for
read-modify-write and for ``instantiate``). Reads see only committed
(fsynced) state: a read that finds a group-commit batch open commits it
first.
Subscribers are called after each commit with the topics written
(``"objects"``, ``"logs"``).

Durability: ``synchronous=FULL`` — when a write returns, its commit is on
disk (fsynced), as etcd acknowledges only what it has fsynced. To win back
the cost of one fsync per write, concurrent writes share commits (*group
commit*): each write is a SAVEPOINT inside a batch transaction, and the batch
is committed by the last writer in the queue (or after
:data:`MAX_BATCH` writes, or by the next reader); every writer returns only after the commit that
holds its write. A write that fails rolls back to its savepoint only. A disk
that fills up fails the writes of the batch with 507
(:class:`dockyard.api.errors.InsufficientStorage`) and leaves the database as it
was before the batch. The database files are mode 0600.

Encryption at rest: values of the resources a
:class:`dockyard.storage.encryption.Transformer` names (Secrets by default in
``dockyard up``) are stored encrypted, in the objects table and in the watch
log alike; plaintext rows of those resources left from before are encrypted
when the store opens.

No HTTP here; errors are :mod:`dockyard.api.errors` classes.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sqlite3
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from dockyard.api import errors, kinds, phases, podfields
from dockyard.api import labels as well_known
from dockyard.storage import encryption as _encryption

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

_PARTIAL, _BLOB = ".part", ".blob"  # suffixes of blob files being written and of stored ones

DEFAULT_RETENTION = 20_000
"""Number of watch events kept (the apiserver's watch cache is of this order)."""
DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024
"""A log is kept to its last this many bytes (``dockyard up --max-log-bytes``)."""
LOG_MARKER_PREFIX = b"[dockyard] "
LOG_MARKER = "[dockyard] {dropped} bytes of earlier log dropped: a log keeps its last {limit} bytes (--max-log-bytes)\n"
EVENT_PLAINTEXT_CACHE = 4096
"""Decrypted watch-log rows kept for the next watcher that reads the same revision."""
MAX_BATCH = 64
"""Writes of worker threads committed together at most (group commit); bounds how long a write waits for its
commit. A :meth:`Store.deferred` batch has no bound: its committer commits whatever is open."""
DB_MODE = 0o600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, rv INTEGER NOT NULL, owners TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name));
CREATE INDEX IF NOT EXISTS objects_namespace ON objects(namespace);
CREATE TABLE IF NOT EXISTS events (
    rev INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    type TEXT NOT NULL, object TEXT NOT NULL, prev TEXT);
CREATE INDEX IF NOT EXISTS events_resource ON events(resource, rev);
CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, resource TEXT NOT NULL, namespace TEXT NOT NULL,
    name TEXT NOT NULL, chunk BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS logs_object ON logs(resource, namespace, name, seq);
CREATE TABLE IF NOT EXISTS log_sizes (
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, bytes INTEGER NOT NULL,
    dropped INTEGER NOT NULL, PRIMARY KEY (resource, namespace, name));
CREATE TABLE IF NOT EXISTS blobs (
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (resource, namespace, name));
"""

# Fields a watcher may select on (labels, and each kind's field labels); their previous values
# travel with MODIFIED events so that an object leaving a selector can be reported as DELETED.


def resource_key(info: kinds.ResourceInfo) -> str:
    """The qualified plural ``plural.group`` (just ``plural`` for the core group)."""
    return f"{info.plural}.{info.group}" if info.group else info.plural


def info_for_key(key: str) -> kinds.ResourceInfo:
    """Inverse of :func:`resource_key` (served kinds, CRDs' included). Raises ``KeyError`` for an unknown key."""
    info = kinds.by_key(key)
    if info is None:
        raise KeyError(key)
    return info


SELECTABLE_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "Pod"): {
        "spec.restartPolicy": "Always",  # SetDefaults_PodSpec (pkg/apis/core/v1/defaults.go)
        "spec.schedulerName": podfields.DEFAULT_SCHEDULER,  # SetDefaults_PodSpec
        "spec.hostNetwork": False,  # PodToSelectableFields: "default to false"
        "spec.serviceAccountName": "default",  # the ServiceAccount admission plugin (not for mirror pods)
        "status.phase": phases.PodPhase.PENDING,  # the pod strategy's PrepareForCreate
    },
    ("apps", "ReplicaSet"): {"status.replicas": 0},  # ReplicaSetToSelectableFields: strconv.Itoa of an int32
    ("", "Node"): {"spec.unschedulable": False},  # NodeToSelectableFields: strconv.FormatBool of a bool
}
"""The value a field selector reads where a built-in object leaves a selectable field unset (or ``""``): the one
Kubernetes stores after defaulting and admission, or formats from a Go zero value. Objects are stored as the
client sent them; only selection reads these."""


def _selectable_default(obj: Obj, info: kinds.ResourceInfo, path: str) -> Any:
    if info.kind == "Pod" and not info.group and path == "spec.serviceAccountName":
        spec = obj.get("spec")
        # the deprecated alias serviceAccount (Convert_v1_PodSpec_To_core_PodSpec)
        if isinstance(spec, dict) and spec.get("serviceAccount"):
            return spec["serviceAccount"]
        annotations = (obj.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict) and well_known.CONFIG_MIRROR in annotations:
            return None  # the admission plugin leaves mirror pods alone
    return SELECTABLE_DEFAULTS.get((info.group, info.kind), {}).get(path)


def selectable_view(obj: Obj, info: kinds.ResourceInfo | None = None) -> Obj:
    """The part of ``obj`` that label and field selectors look at.

    Shape: ``{"metadata": {"name", "namespace", "labels"}}`` plus, nested the
    same way, the value at each of ``info``'s field labels
    (:func:`dockyard.api.kinds.field_labels`; e.g. ``{"spec": {"nodeName": ...}}``),
    or, where the object leaves it unset, the value Kubernetes would hold
    (:data:`SELECTABLE_DEFAULTS`: a pod without ``restartPolicy`` is ``Always``).
    Absent values are omitted.
    """
    meta = obj.get("metadata") or {}
    view: Obj = {"metadata": {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}}
    labels = kinds.field_labels(info) if info is not None else ("spec.nodeName", "status.phase")
    for label in labels:
        path = kinds.field_path(label)
        parts = path.split(".")
        node: Any = obj
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if (node is None or node == "") and info is not None:
            node = _selectable_default(obj, info, path)
        if node is None or parts[0] == "metadata":
            continue
        target = view
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = node
    return view


@dataclass(frozen=True)
class Event:
    """One watch-log entry.

    Attributes:
        revision: the global revision of the write.
        type: ``ADDED``, ``MODIFIED`` or ``DELETED``.
        object: the object after the write (for ``DELETED``, its last state
            with ``metadata.resourceVersion`` = ``revision``).
        prev: for ``MODIFIED``, :func:`selectable_view` of the previous state.
    """

    revision: int
    type: str
    object: Obj
    prev: Obj | None


@dataclass(frozen=True)
class Change:
    """One committed write, as :meth:`Store.watch_changes` hands it to its listener.

    Attributes:
        revision: the global revision of the write.
        resource: the qualified plural (:func:`resource_key`).
        namespace: ``""`` for cluster-scoped objects.
        name: the object's name.
        type: ``ADDED``, ``MODIFIED`` or ``DELETED``.
        data: the object after the write as compact JSON (plaintext, even for encrypted resources).
        prev: for ``MODIFIED``, :func:`selectable_view` of the previous state.
    """

    revision: int
    resource: str
    namespace: str
    name: str
    type: str
    data: str
    prev: Obj | None


ChangeListener = Callable[[int, int, "list[Change]"], None]
"""``listener(revision, compacted, changes)``: called after each commit that wrote objects, with the
store's revision and compacted revision after it and the commit's changes in revision order."""


@dataclass(frozen=True)
class ListPage:
    """A page of a list.

    Attributes:
        items: objects ordered by ``(namespace, name)``.
        revision: the store revision the list reflects (the list's ``resourceVersion``).
        next_key: ``(namespace, name)`` of the last item when more matching
            items follow (feed back as ``after``), else ``None``.
    """

    items: list[Obj]
    revision: int
    next_key: tuple[str, str] | None


def _dumps(obj: Any) -> str:
    """Compact JSON text (orjson; the standard library for what orjson refuses, e.g. integers beyond 64 bits)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _owner_uids(obj: Obj) -> str:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    uids = [r.get("uid") for r in refs if isinstance(r, dict) and isinstance(r.get("uid"), str)]
    return " ".join(f"<{u}>" for u in uids)


class Deferred:
    """The batch holding the writes of one :meth:`Store.deferred` block (``batch``: 0 while none)."""

    __slots__ = ("batch",)

    def __init__(self) -> None:
        self.batch = 0


class Store:
    """The SQLite store (WAL mode, ``synchronous=FULL``, group commit). Thread-safe.

    Args:
        path: database file; created (mode 0600) with its tables if missing.
        retention: number of watch events kept (older ones are compacted).
        encryption: encrypts the values of the resources it names
            (default: nothing is encrypted).
        max_log_bytes: each object's log keeps its last this many bytes; older
            whole lines are dropped and a marker line says how many bytes
            (``<= 0``: unbounded).

    Objects are plain dicts in Kubernetes shape. ``create``/``update``/``delete``
    set ``metadata.resourceVersion`` (a decimal string of the revision); all
    other server-owned metadata (uid, timestamps, generation) is the caller's job.

    Raises (from every write):
        errors.InsufficientStorage: the disk is full (507); nothing was written.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        retention: int = DEFAULT_RETENTION,
        encryption: _encryption.Transformer | None = None,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self._path = str(path)
        self._max_log_bytes = max_log_bytes
        self._retention = max(1, retention)
        self._crypt = encryption or _encryption.IDENTITY
        self._lock = threading.RLock()
        self._committed = threading.Condition(self._lock)
        self._owner: int | None = None
        self._depth = 0
        self._pending: set[str] = set()
        self._subscribers: list[Callable[[set[str]], None]] = []
        self._queued = 0  # writers waiting for the lock (group commit: the last one commits)
        self._queue_lock = threading.Lock()
        self._batch = 0  # id of the open batch transaction, 0 when none is open
        self._batch_writes = 0
        self._batch_saved: tuple[int, int] = (0, 0)
        self._last_batch = 0
        self._done_batch = 0
        self._deferring = threading.local()  # .pending: this thread's Deferred while in deferred()
        self._failed: dict[int, tuple[BaseException, int]] = {}  # batch -> (error, writers yet to see it)
        self.commits = 0
        """Number of commits (fsyncs of the WAL) so far; with group commit, fewer than writes."""
        self._event_plain: OrderedDict[int, str | bytes] = OrderedDict()
        self._batch_events: builtins.list[Change] = []  # changes of the open batch, for change listeners
        self._change_listeners: builtins.list[ChangeListener] = []
        self._plain_lock = threading.Lock()
        _create_private(self._path)
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(self._path + suffix, DB_MODE)
        self._revision = self._meta("revision")
        self._durable = self._revision  # the revision of the last commit on disk
        self._compacted = self._meta("compacted")
        self._writes_since_compaction = 0
        self._dropped_blob_files: set[str] = set()  # see the blobs section
        self._seal_plaintext()

    # ----------------------------------------------------------------- plumbing

    def _meta(self, key: str, db: sqlite3.Connection | None = None) -> int:
        row = (db or self._db).execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        """Commit any open group-commit batch, then close the database. Further calls fail."""
        with self._lock:
            if self._batch:
                self._commit()
            self._db.close()

    def subscribe(self, callback: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``callback(topics)`` after every commit; returns an unsubscribe function.

        ``topics`` is a subset of ``{"objects", "logs"}``. The callback runs on
        the writing thread while the store lock is held: it must be quick and
        must not call the store (e.g. ``loop.call_soon_threadsafe``).
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection to read from, under the store lock, showing only committed (fsynced) writes.

        Inside this thread's own write it shows that write too. Outside, an open
        group-commit batch (writes whose writers wait for their fsync) is
        committed first: one connection keeps its page cache warm across reads
        and writes (a second connection's cache would be dropped at every commit),
        and a read never sees a write that is not yet on disk.
        """
        with self._lock:
            if self._batch and self._owner != threading.get_ident():
                self._commit()
            yield self._db

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Store]:
        """Run the enclosed calls as one transaction under the store lock.

        Nested use joins the outer transaction. On an exception everything
        the enclosed calls wrote is rolled back (including revisions taken) and
        the exception propagates. Returns once the write is committed to disk
        (possibly together with other threads' writes: group commit), except
        inside :meth:`deferred`.

        Raises:
            errors.InsufficientStorage: the disk is full (507); nothing was written.
        """
        if self._owner == threading.get_ident():
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        with self._queue_lock:
            self._queued += 1
        self._lock.acquire()
        try:
            with self._queue_lock:
                self._queued -= 1
            self._owner, self._depth = threading.get_ident(), 1
            ok = False
            try:
                self._begin()
                saved = (self._revision, self._compacted, set(self._pending), self._writes_since_compaction)
                saved_events = len(self._batch_events)
                self._db.execute("SAVEPOINT write")
                try:
                    yield self
                except BaseException:
                    self._db.execute("ROLLBACK TO write")
                    self._revision, self._compacted, self._pending, self._writes_since_compaction = saved
                    del self._batch_events[saved_events:]
                    raise
                finally:
                    self._db.execute("RELEASE write")
                ok = True
            except sqlite3.OperationalError as err:
                raise _storage_error(err) from err
            finally:
                self._owner, self._depth = None, 0
                if self._batch:
                    pending: Deferred | None = getattr(self._deferring, "pending", None)
                    if pending is None:
                        self._batch_writes += 1
                        self._settle(self._batch, report=ok)
                    elif ok:  # its writer awaits the commit itself (see deferred)
                        self._batch_writes += 1
                        pending.batch = self._batch
        finally:
            self._lock.release()

    def _begin(self) -> int:
        if not self._batch:
            self._db.execute("BEGIN IMMEDIATE")
            self._last_batch += 1
            self._batch, self._batch_writes = self._last_batch, 0
            self._batch_saved = (self._revision, self._compacted)
        return self._batch

    def _settle(self, batch: int, *, report: bool = True) -> None:
        """Commit the batch if no other writer is queued (or it is full), else wait for its commit.

        Called with the lock held; :class:`threading.Condition` releases it while waiting.
        """
        with self._queue_lock:
            queued = self._queued
        if self._batch == batch and (queued == 0 or self._batch_writes >= MAX_BATCH):
            self._commit()
        while self._done_batch < batch:
            self._committed.wait(timeout=1.0)
            if self._batch == batch and self._owner is None:  # the batch lost its committer
                with self._queue_lock:
                    idle = self._queued == 0
                if idle:
                    self._commit()
        self._outcome(batch, report=report)

    def _outcome(self, batch: int, *, report: bool) -> None:
        """One writer of the committed (or failed) ``batch`` looks at its result; lock held.

        Raises:
            errors.InsufficientStorage, sqlite3.Error: the batch's commit failed (every writer of a
                failed batch fails, not only the first to look); only with ``report``.
        """
        entry = self._failed.get(batch)
        if entry is None:
            return
        failed, waiting = entry
        if waiting <= 1:
            del self._failed[batch]
        else:
            self._failed[batch] = (failed, waiting - 1)
        if report:
            raise _storage_error(failed) if isinstance(failed, sqlite3.OperationalError) else failed

    # ----------------------------------------------------------------- deferred writes

    @contextlib.contextmanager
    def deferred(self) -> Iterator[Deferred]:
        """This thread's :meth:`atomic` writes in the block return before their commit.

        For a writer that waits for its commit elsewhere (the API server's event loop,
        :mod:`dockyard.apiserver.writes`): each write stays in the open batch, and the block
        yields a :class:`Deferred` whose ``batch`` names it (0: nothing was written). Its writer
        must not be answered before :meth:`commit_open` (or any other writer's commit) has
        committed that batch (``batch <= done_batch``), and then calls :meth:`deferred_outcome`
        once. Nothing else changes: readers never see the batch before it is on disk
        (:meth:`_reading` commits it first), and other threads' writes join it as usual.
        """
        pending = Deferred()
        self._deferring.pending = pending
        try:
            yield pending
        finally:
            self._deferring.pending = None

    @contextlib.contextmanager
    def held_if_free(self) -> Iterator[bool]:
        """Hold the store's lock for the block if no other thread holds it (True), else do not wait (False).

        For a caller that must not block (the API server's event loop): its writes in the block then never
        wait for another thread's read or commit.
        """
        acquired = self._lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                self._lock.release()

    @property
    def done_batch(self) -> int:
        """Id of the last batch whose commit ended (on disk, or failed: :meth:`deferred_outcome` says)."""
        return self._done_batch

    def commit_open(self) -> int:
        """Commit the open batch now, if one is open (blocking: one fsync); returns :attr:`done_batch`.

        A failed commit is kept for its writers (:meth:`deferred_outcome`), not raised here.
        """
        with self._lock:
            if self._batch:
                self._commit()
            return self._done_batch

    def deferred_outcome(self, batch: int) -> None:
        """For one :meth:`deferred` writer of ``batch``, once ``batch <= done_batch``.

        Raises:
            errors.InsufficientStorage: the disk was full; the batch's writes are not stored.
            sqlite3.Error: another failure of the batch's commit; its writes are not stored.
        """
        with self._lock:
            self._outcome(batch, report=True)

    def _commit(self) -> None:
        batch, self._batch = self._batch, 0
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._revision, self._compacted = self._batch_saved
            self._pending.clear()
            self._batch_events = []
            self._failed[batch] = (err, self._batch_writes)
        else:
            self.commits += 1
            self._durable = self._revision
            topics, self._pending = self._pending, set()
            changes, self._batch_events = self._batch_events, []
            if changes:
                for listener in list(self._change_listeners):
                    try:
                        listener(self._durable, self._compacted, changes)
                    except Exception:  # a broken listener must not break writes
                        pass
            if topics:
                for callback in list(self._subscribers):
                    try:
                        callback(topics)
                    except Exception:  # a broken subscriber must not break writes
                        pass
        finally:
            self._done_batch = batch
            self._committed.notify_all()

    def _seal_plaintext(self) -> None:
        """Encrypt rows of encrypted resources that are stored as plaintext (written before encryption)."""
        resources = sorted(self._crypt.resources)
        if not resources:
            return
        marks = ",".join("?" * len(resources))
        with self.atomic():
            rows = self._db.execute(
                f"SELECT resource, namespace, name, data FROM objects WHERE resource IN ({marks}) "
                "AND typeof(data) = 'text'",
                resources,
            ).fetchall()
            for key, ns, name, data in rows:
                self._db.execute(
                    "UPDATE objects SET data = ? WHERE resource = ? AND namespace = ? AND name = ?",
                    (self._crypt.seal(key, _location(key, ns, name), data), key, ns, name),
                )
            rows = self._db.execute(
                f"SELECT rev, resource, namespace, name, object FROM events "
                f"WHERE resource IN ({marks}) AND typeof(object) = 'text'",
                resources,
            ).fetchall()
            for rev, key, ns, name, data in rows:
                self._db.execute(
                    "UPDATE events SET object = ? WHERE rev = ?",
                    (self._crypt.seal(key, _location(key, ns, name), data), rev),
                )

    def _seal(self, key: str, obj: Obj) -> tuple[str, str | bytes]:
        """``(plaintext JSON, stored value)`` of ``obj``."""
        meta = obj["metadata"]
        plain = _dumps(obj)
        return plain, self._crypt.seal(key, _location(key, meta.get("namespace", ""), meta["name"]), plain)

    def _open_event(self, key: str, ns: str, name: str, revision: int, stored: str | bytes) -> Obj:
        """:meth:`_open` for a watch-log row, decrypting each revision once for all watchers (an LRU of
        :data:`EVENT_PLAINTEXT_CACHE` plaintexts; events never change once written)."""
        if isinstance(stored, str):
            return self._open(key, ns, name, stored)
        with self._plain_lock:
            plain = self._event_plain.get(revision)
            if plain is not None:
                self._event_plain.move_to_end(revision)
        if plain is None:
            try:
                plain = self._crypt.open(key, _location(key, ns, name), stored)
            except _encryption.DecryptError as err:
                raise errors.StatusError(f"the stored object cannot be decrypted: {err}") from None
            with self._plain_lock:
                self._event_plain[revision] = plain
                while len(self._event_plain) > EVENT_PLAINTEXT_CACHE:
                    self._event_plain.popitem(last=False)
        obj: Obj = json.loads(plain)
        return obj

    def _open_text(self, key: str, ns: str, name: str, stored: str | bytes) -> str:
        """The plaintext JSON of a stored value."""
        try:
            plain = self._crypt.open(key, _location(key, ns, name), stored)
        except _encryption.DecryptError as err:
            raise errors.StatusError(f"the stored object cannot be decrypted: {err}") from None
        return plain if isinstance(plain, str) else plain.decode()

    def _open(self, key: str, ns: str, name: str, stored: str | bytes) -> Obj:
        try:
            obj: Obj = json.loads(self._crypt.open(key, _location(key, ns, name), stored))
        except _encryption.DecryptError as err:
            raise errors.StatusError(f"the stored object cannot be decrypted: {err}") from None
        return obj

    def revision(self) -> int:
        """The global revision of the last committed write (0 for an empty store).

        Inside this thread's :meth:`atomic`, the revision of its own latest write.
        """
        return self._revision if self._owner == threading.get_ident() else self._durable

    @property
    def retention(self) -> int:
        """Number of watch events kept."""
        return self._retention

    def compacted_revision(self) -> int:
        """Events at or below this revision are no longer in the watch log."""
        with self._lock:
            return self._compacted

    def _next_revision(self) -> int:
        self._revision += 1
        self._set_meta("revision", self._revision)
        return self._revision

    def _record(
        self, key: str, obj: Obj, type_: str, prev: Obj | None, plain: str | None = None, sealed: str | bytes = ""
    ) -> None:
        """Log the event (``plain``/``sealed``: ``obj`` as JSON and as stored, when the caller has them)."""
        meta = obj["metadata"]
        if plain is None:
            plain = _dumps(obj)
            sealed = self._crypt.seal(key, _location(key, meta.get("namespace", ""), meta["name"]), plain)
        view = selectable_view(prev, kinds.by_key(key)) if prev is not None else None
        revision, ns = int(meta["resourceVersion"]), meta.get("namespace", "")
        self._db.execute(
            "INSERT INTO events(rev, resource, namespace, name, type, object, prev) VALUES(?,?,?,?,?,?,?)",
            (revision, key, ns, meta["name"], type_, sealed, _dumps(view) if view is not None else None),
        )
        self._batch_events.append(
            Change(revision=revision, resource=key, namespace=ns, name=meta["name"], type=type_, data=plain, prev=view)
        )
        self._pending.add("objects")
        self._writes_since_compaction += 1
        if self._writes_since_compaction >= max(1, min(1000, self._retention // 10)):
            self._compact()

    def _compact(self) -> None:
        self._writes_since_compaction = 0
        horizon = self._revision - self._retention
        if horizon > self._compacted:
            self._db.execute("DELETE FROM events WHERE rev <= ?", (horizon,))
            self._compacted = horizon
            self._set_meta("compacted", horizon)

    def compact(self) -> None:
        """Drop watch events beyond the retention now (normally done every few writes)."""
        with self.atomic():
            self._compact()

    # ----------------------------------------------------------------- objects

    @staticmethod
    def _ns(info: kinds.ResourceInfo, namespace: str | None) -> str:
        return (namespace or "") if info.namespaced else ""

    def get(self, info: kinds.ResourceInfo, namespace: str | None, name: str) -> Obj:
        """The stored object.

        Raises:
            errors.NotFound: no such object (apiserver wording ``pods "x" not found``).
        """
        key, ns = resource_key(info), self._ns(info, namespace)
        with self._reading() as db:
            row = db.execute(
                "SELECT data FROM objects WHERE resource = ? AND namespace = ? AND name = ?", (key, ns, name)
            ).fetchone()
        if row is None:
            raise errors.not_found(info.group, info.plural, name)
        return self._open(key, ns, name, row[0])

    def exists(self, info: kinds.ResourceInfo, namespace: str | None, name: str) -> bool:
        """True if the object is stored."""
        with self._reading() as db:
            row = db.execute(
                "SELECT 1 FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                (resource_key(info), self._ns(info, namespace), name),
            ).fetchone()
        return row is not None

    def list(
        self,
        info: kinds.ResourceInfo,
        namespace: str | None = None,
        *,
        predicate: Predicate | None = None,
        limit: int | None = None,
        after: tuple[str, str] | None = None,
    ) -> ListPage:
        """Objects of one resource, optionally in one namespace, ordered by ``(namespace, name)``.

        Args:
            namespace: restrict to this namespace (``None``: all).
            predicate: keep only objects for which it is true (selectors).
            limit: at most this many items (``None`` or ``<= 0``: all).
            after: continue after this ``(namespace, name)`` key.
        """
        sql = "SELECT namespace, name, data FROM objects WHERE resource = ?"
        args: list[Any] = [resource_key(info)]
        if namespace is not None and info.namespaced:
            sql += " AND namespace = ?"
            args.append(namespace)
        if after is not None:
            sql += " AND (namespace > ? OR (namespace = ? AND name > ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY namespace, name"
        items: list[Obj] = []
        next_key: tuple[str, str] | None = None
        key = resource_key(info)
        with self._reading() as db:
            revision = self._meta("revision", db)
            cursor = db.execute(sql, args)
            for ns, name, data in cursor:
                obj = self._open(key, ns, name, data)
                if predicate is not None and not predicate(obj):
                    continue
                if limit and limit > 0 and len(items) >= limit:
                    last = items[-1]["metadata"]
                    next_key = (last.get("namespace", ""), last["name"])
                    break
                items.append(obj)
            cursor.close()
        return ListPage(items=items, revision=revision, next_key=next_key)

    def count(
        self, info: kinds.ResourceInfo, namespace: str | None = None, *, after: tuple[str, str] | None = None
    ) -> int:
        """Number of objects :meth:`list` would return without a predicate (``remainingItemCount``)."""
        sql = "SELECT count(*) FROM objects WHERE resource = ?"
        args: list[Any] = [resource_key(info)]
        if namespace is not None and info.namespaced:
            sql += " AND namespace = ?"
            args.append(namespace)
        if after is not None:
            sql += " AND (namespace > ? OR (namespace = ? AND name > ?))"
            args += [after[0], after[0], after[1]]
        with self._reading() as db:
            return int(db.execute(sql, args).fetchone()[0])

    def create(self, info: kinds.ResourceInfo, obj: Obj) -> Obj:
        """Store a new object; sets ``metadata.resourceVersion``. Returns the stored object.

        Raises:
            errors.AlreadyExists: an object with that name exists (409).
        """
        meta = obj["metadata"]
        ns = self._ns(info, meta.get("namespace"))
        key = resource_key(info)
        with self.atomic():
            if self.exists(info, ns, meta["name"]):
                resource = resource_key(info)
                raise errors.AlreadyExists(
                    f'{resource} "{meta["name"]}" already exists',
                    details={"name": meta["name"], "group": info.group, "kind": info.plural},
                )
            stored = dict(obj)
            stored["metadata"] = dict(meta, resourceVersion=str(self._next_revision()))
            plain, sealed = self._seal(key, stored)
            self._db.execute(
                "INSERT INTO objects(resource, namespace, name, uid, rv, owners, data) VALUES(?,?,?,?,?,?,?)",
                (key, ns, meta["name"], meta.get("uid", ""), self._revision, _owner_uids(stored), sealed),
            )
            self._record(key, stored, "ADDED", None, plain, sealed)
        return stored

    def update(self, info: kinds.ResourceInfo, obj: Obj, *, expect_rv: str | int | None = None) -> Obj:
        """Replace a stored object; sets a new ``metadata.resourceVersion``.

        Args:
            obj: the full new object (``metadata.name``/``namespace`` locate it).
            expect_rv: optimistic-concurrency precondition ("Concurrency Control
                and Consistency" in the API conventions): the stored
                ``resourceVersion`` must equal it.
        Raises:
            errors.NotFound: no such object.
            errors.Conflict: the stored resourceVersion differs from ``expect_rv``.
        """
        meta = obj["metadata"]
        ns = self._ns(info, meta.get("namespace"))
        key = resource_key(info)
        with self.atomic():
            old = self.get(info, ns, meta["name"])
            if expect_rv not in (None, "") and str(expect_rv) != old["metadata"].get("resourceVersion"):
                raise conflict(info, meta["name"])
            stored = dict(obj)
            stored["metadata"] = dict(meta, resourceVersion=str(self._next_revision()))
            plain, sealed = self._seal(key, stored)
            self._db.execute(
                "UPDATE objects SET uid = ?, rv = ?, owners = ?, data = ? "
                "WHERE resource = ? AND namespace = ? AND name = ?",
                (meta.get("uid", ""), self._revision, _owner_uids(stored), sealed, key, ns, meta["name"]),
            )
            self._record(key, stored, "MODIFIED", old, plain, sealed)
        return stored

    def delete(
        self,
        info: kinds.ResourceInfo,
        namespace: str | None,
        name: str,
        *,
        expect_rv: str | int | None = None,
        expect_uid: str | None = None,
    ) -> Obj:
        """Remove an object (and its log chunks). Returns its last state with the deletion's revision.

        Raises:
            errors.NotFound: no such object.
            errors.Conflict: a precondition (``expect_rv``, ``expect_uid``) fails.
        """
        ns = self._ns(info, namespace)
        key = resource_key(info)
        with self.atomic():
            old = self.get(info, ns, name)
            if expect_rv not in (None, "") and str(expect_rv) != old["metadata"].get("resourceVersion"):
                raise conflict(info, name)
            if expect_uid not in (None, "") and expect_uid != old["metadata"].get("uid"):
                raise errors.Conflict(
                    f'Operation cannot be fulfilled on {key} "{name}": Precondition failed: '
                    f"UID in precondition: {expect_uid}, UID in object meta: {old['metadata'].get('uid')}",
                    details={"name": name, "group": info.group, "kind": info.plural},
                )
            self._db.execute("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?", (key, ns, name))
            self._db.execute("DELETE FROM logs WHERE resource = ? AND namespace = ? AND name = ?", (key, ns, name))
            self._db.execute("DELETE FROM log_sizes WHERE resource = ? AND namespace = ? AND name = ?", (key, ns, name))
            self._drop_blob(key, ns, name)
            gone = dict(old)
            gone["metadata"] = dict(old["metadata"], resourceVersion=str(self._next_revision()))
            self._record(key, gone, "DELETED", None)
        return gone

    def dependents(self, uid: str, namespace: str | None = None) -> builtins.list[tuple[kinds.ResourceInfo, str, str]]:
        """Objects whose ``metadata.ownerReferences[].uid`` is ``uid``: ``(info, namespace, name)``.

        ``namespace`` restricts the search (owners and dependents share a namespace).
        """
        if not uid:
            return []
        sql = "SELECT resource, namespace, name FROM objects WHERE instr(owners, ?) > 0"
        args: list[Any] = [f"<{uid}>"]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        with self._reading() as db:
            rows = db.execute(sql, args).fetchall()
        return [(info_for_key(r), ns, n) for r, ns, n in rows if kinds.by_key(r) is not None]

    def namespace_contents(
        self, namespace: str, *, limit: int | None = None
    ) -> builtins.list[tuple[kinds.ResourceInfo, str]]:
        """Every object in ``namespace`` (the first ``limit`` of them): ``(info, name)``."""
        sql = "SELECT resource, name FROM objects WHERE namespace = ? ORDER BY resource, name LIMIT ?"
        with self._reading() as db:
            rows = db.execute(sql, (namespace, -1 if limit is None else limit)).fetchall()  # LIMIT -1: no limit
        return [(info_for_key(r), n) for r, n in rows if kinds.by_key(r) is not None]

    def namespace_remaining(self, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
        """What is left in ``namespace``: ``({resource key: objects}, {finalizer: objects carrying it})``."""
        with self._reading() as db:
            per_resource = db.execute(
                "SELECT resource, count(*) FROM objects WHERE namespace = ? GROUP BY resource", (namespace,)
            ).fetchall()
            per_finalizer = db.execute(
                "SELECT f.value, count(*) FROM objects, json_each(objects.data, '$.metadata.finalizers') AS f "
                "WHERE objects.namespace = ? GROUP BY f.value",
                (namespace,),
            ).fetchall()
        return {str(r): int(n) for r, n in per_resource}, {str(f): int(n) for f, n in per_finalizer}

    # ----------------------------------------------------------------- watch log

    def events_since(
        self, info: kinds.ResourceInfo, after: int, namespace: str | None = None, *, limit: int = 1000
    ) -> tuple[builtins.list[Event], int]:
        """Watch-log events of one resource with revision > ``after``.

        Returns:
            ``(events, upto)``: the caller has now seen every event of this
            resource up to revision ``upto`` (pass it as ``after`` next time).
        Raises:
            errors.Gone: ``after`` is older than the retained log (410 Expired,
                "too old resource version" as the apiserver words it).
        """
        key = resource_key(info)
        sql = "SELECT rev, type, object, prev, namespace, name FROM events WHERE resource = ? AND rev > ?"
        args: list[Any] = [key, after]
        if namespace is not None and info.namespaced:
            sql += " AND namespace = ?"
            args.append(namespace)
        sql += " ORDER BY rev LIMIT ?"
        args.append(max(1, limit))
        with self._reading() as db:
            marks = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('revision', 'compacted')").fetchall())
            compacted, upto = int(marks.get("compacted", 0)), int(marks.get("revision", 0))
            if after < compacted:
                raise errors.Gone(f"too old resource version: {after} ({compacted + 1})")
            rows = db.execute(sql, args).fetchall()
        events = [
            Event(revision=r, type=t, object=self._open_event(key, ns, n, r, o), prev=json.loads(p) if p else None)
            for r, t, o, p, ns, n in rows
        ]
        if len(rows) >= max(1, limit):
            upto = events[-1].revision
        return events, max(upto, after)

    def watch_changes(
        self,
        on_snapshot: Callable[[int, int, builtins.list[tuple[str, str, str, str]]], None],
        on_changes: ChangeListener,
    ) -> Callable[[], None]:
        """Hand every stored object to ``on_snapshot``, then every later committed write to ``on_changes``.

        This is the store side of a watch cache (kube-apiserver's Cacher lists once, then follows
        etcd's watch): ``on_snapshot(revision, compacted, rows)`` gets the committed state as rows
        ``(resource, namespace, name, JSON)`` (plaintext) at ``revision``; from then on
        ``on_changes(revision, compacted, changes)`` (see :data:`ChangeListener`) gets each commit's
        writes, with no gap and no overlap. Both run on the calling/writing thread with the store lock
        held: they must be quick and must not call the store. Returns an unsubscribe function.
        """
        with self._reading() as db:
            rows = db.execute("SELECT resource, namespace, name, data FROM objects").fetchall()
            plain = [(key, ns, name, self._open_text(key, ns, name, data)) for key, ns, name, data in rows]
            on_snapshot(self._durable, self._compacted, plain)
            self._change_listeners.append(on_changes)

        def unsubscribe() -> None:
            with self._lock:
                if on_changes in self._change_listeners:
                    self._change_listeners.remove(on_changes)

        return unsubscribe

    # ----------------------------------------------------------------- blobs
    # A Build's uploaded context lives in a file of its own under blob_dir (never whole in memory);
    # the blobs row holds the file's name, so the row decides whether a file belongs to an object.

    @property
    def blob_dir(self) -> Path:
        """Folder of the blob files: ``<database>-contexts`` beside the database (mode 0700), made if missing."""
        path = Path(self._path + "-contexts")
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def new_blob_file(self) -> tuple[Path, BinaryIO]:
        """A new, empty temporary file in :attr:`blob_dir` (mode 0600), open for writing.

        Hand it to :meth:`put_blob_file` or delete it; one left by a crash is removed by
        :meth:`remove_orphan_blob_files`.
        """
        fd, name = tempfile.mkstemp(dir=self.blob_dir, prefix="upload-", suffix=_PARTIAL)
        return Path(name), os.fdopen(fd, "wb")

    def put_blob_file(self, info: kinds.ResourceInfo, namespace: str, name: str, path: Path) -> None:
        """Attach the file ``path`` (from :meth:`new_blob_file`) to an existing object; removed with it.

        The file is renamed into place within the caller's transaction; if the transaction
        rolls back, the file is an orphan that :meth:`remove_orphan_blob_files` removes.
        Raises:
            errors.NotFound: the object does not exist.
        """
        with self.atomic():
            if not self.exists(info, namespace, name):
                raise errors.not_found(info.group, info.plural, name)
            key, ns = resource_key(info), self._ns(info, namespace)
            self._drop_blob(key, ns, name)
            final = f"{uuid.uuid4().hex}{_BLOB}"
            os.replace(path, self.blob_dir / final)
            self._db.execute(
                "INSERT INTO blobs(resource, namespace, name, data) VALUES(?,?,?,?)", (key, ns, name, final)
            )

    def blob_path(self, info: kinds.ResourceInfo, namespace: str, name: str) -> Path | None:
        """The object's blob file, or None if it has none."""
        with self._reading() as db:
            row = db.execute(
                "SELECT data FROM blobs WHERE resource = ? AND namespace = ? AND name = ?",
                (resource_key(info), self._ns(info, namespace), name),
            ).fetchone()
        if not row or not isinstance(row[0], str):
            return None
        return self.blob_dir / row[0]

    def _drop_blob(self, key: str, ns: str, name: str) -> None:
        """Delete the object's blob row; its file goes once the deletion is committed."""
        row = self._db.execute(
            "SELECT data FROM blobs WHERE resource = ? AND namespace = ? AND name = ?", (key, ns, name)
        ).fetchone()
        if row is None:
            return
        self._db.execute("DELETE FROM blobs WHERE resource = ? AND namespace = ? AND name = ?", (key, ns, name))
        if isinstance(row[0], str):
            self._dropped_blob_files.add(row[0])
            if self._unlink_dropped_blob_files not in self._subscribers:
                self._subscribers.append(self._unlink_dropped_blob_files)

    def _unlink_dropped_blob_files(self, _topics: set[str]) -> None:
        # After a commit, under the store lock: remove the dropped files no row names any more
        # (a rolled-back deletion leaves its row, and then the file stays).
        with self._lock:
            if self._depth:
                return
            dropped, self._dropped_blob_files = self._dropped_blob_files, set()
            for file in dropped:
                if self._db.execute("SELECT 1 FROM blobs WHERE data = ?", (file,)).fetchone() is None:
                    (self.blob_dir / file).unlink(missing_ok=True)

    def remove_orphan_blob_files(self) -> builtins.list[str]:
        """Delete the files of :attr:`blob_dir` that no object owns: uploads a crash interrupted,
        and blobs whose object is gone. Call it at start, before uploads are accepted.

        Returns:
            The names of the files removed.
        """
        with self._lock:
            owned = {r[0] for r in self._db.execute("SELECT data FROM blobs").fetchall() if isinstance(r[0], str)}
            removed = []
            for path in self.blob_dir.iterdir():
                if path.name not in owned:
                    path.unlink(missing_ok=True)
                    removed.append(path.name)
        return removed

    # ----------------------------------------------------------------- logs

    def append_log(self, info: kinds.ResourceInfo, namespace: str, name: str, chunk: bytes) -> int:
        """Append a log chunk to an existing object; returns the chunk's sequence number.

        Raises:
            errors.NotFound: the object does not exist.
        """
        key, ns = resource_key(info), self._ns(info, namespace)
        with self.atomic():
            if not self.exists(info, namespace, name):
                raise errors.not_found(info.group, info.plural, name)
            cur = self._db.execute(
                "INSERT INTO logs(resource, namespace, name, chunk) VALUES(?,?,?,?)", (key, ns, name, chunk)
            )
            seq = int(cur.lastrowid or 0)
            self._db.execute(
                "INSERT INTO log_sizes(resource, namespace, name, bytes, dropped) VALUES(?,?,?,?,0) "
                "ON CONFLICT(resource, namespace, name) DO UPDATE SET bytes = bytes + excluded.bytes",
                (key, ns, name, len(chunk)),
            )
            total, dropped = self._db.execute(
                "SELECT bytes, dropped FROM log_sizes WHERE resource = ? AND namespace = ? AND name = ?",
                (key, ns, name),
            ).fetchone()
            if 0 < self._max_log_bytes < total:
                self._trim_log(key, ns, name, total, dropped)
            self._pending.add("logs")
            return seq

    def _trim_log(self, key: str, ns: str, name: str, total: int, dropped: int) -> None:
        """Drop the oldest whole lines of a log over :attr:`max_log_bytes` down to 90 % of it, with a marker."""
        where = "resource = ? AND namespace = ? AND name = ?"
        excess = total - self._max_log_bytes * 9 // 10
        rows = self._db.execute(f"SELECT seq, chunk FROM logs WHERE {where} ORDER BY seq", (key, ns, name))
        first: tuple[int, bytes] | None = None
        gone: builtins.list[int] = []
        cut = 0  # log bytes dropped now
        at_line_start = True
        for seq, chunk in rows:
            chunk = bytes(chunk)
            if chunk.startswith(LOG_MARKER_PREFIX) and b"\n" in chunk:  # an earlier trim's marker: not log
                chunk = chunk[chunk.index(b"\n") + 1 :]
            k = max(0, excess - cut)
            head, rest = chunk[:k], chunk[k:]
            if head:
                at_line_start = head.endswith(b"\n")
            if not at_line_start:
                newline = rest.find(b"\n")
                rest = rest[newline + 1 :] if newline >= 0 else b""
                at_line_start = newline >= 0
            if not rest:
                cut += len(chunk)
                gone.append(seq)
                at_line_start = chunk.endswith(b"\n") if chunk else at_line_start
                continue
            cut += len(chunk) - len(rest)
            first = (seq, rest)
            break
        rows.close()
        self._db.executemany("DELETE FROM logs WHERE seq = ?", [(s,) for s in gone])
        dropped += cut
        marker = LOG_MARKER.format(dropped=dropped, limit=self._max_log_bytes).encode()
        if first is None:
            self._db.execute(
                "INSERT INTO logs(resource, namespace, name, chunk) VALUES(?,?,?,?)", (key, ns, name, marker)
            )
        else:
            self._db.execute("UPDATE logs SET chunk = ? WHERE seq = ?", (marker + first[1], first[0]))
        self._db.execute(
            f"UPDATE log_sizes SET bytes = ?, dropped = ? WHERE {where}", (total - cut, dropped, key, ns, name)
        )

    def read_log_tail(self, info: kinds.ResourceInfo, namespace: str, name: str, lines: int) -> tuple[bytes, int]:
        """The end of a log holding at least its last ``lines`` whole lines, read from the end.

        Reads only as many chunks as those lines need (never the whole log).

        Returns:
            ``(text, last)``: ``text`` may start with more than ``lines`` lines
            (cut it with a line tail); ``last`` is the sequence number of the
            log's last chunk (0 if none), to follow from.
        """
        parts: builtins.list[bytes] = []
        newlines, last = 0, 0
        with self._reading() as db:
            cursor = db.execute(
                "SELECT seq, chunk FROM logs WHERE resource = ? AND namespace = ? AND name = ? ORDER BY seq DESC",
                (resource_key(info), self._ns(info, namespace), name),
            )
            for seq, chunk in cursor:
                last = last or int(seq)
                parts.append(bytes(chunk))
                newlines += parts[-1].count(b"\n")
                if newlines > lines:
                    break
            cursor.close()
        return b"".join(reversed(parts)), last

    def read_log(
        self, info: kinds.ResourceInfo, namespace: str, name: str, *, after: int = 0, limit: int = 10_000
    ) -> tuple[builtins.list[bytes], int]:
        """Log chunks with sequence number > ``after``, oldest first.

        Returns:
            ``(chunks, last)``: ``last`` is the sequence number of the last chunk
            returned (``after`` if none); feed it back as ``after``.
        """
        with self._reading() as db:
            rows = db.execute(
                "SELECT seq, chunk FROM logs WHERE resource = ? AND namespace = ? AND name = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (resource_key(info), self._ns(info, namespace), name, after, max(1, limit)),
            ).fetchall()
        if not rows:
            return [], after
        return [bytes(c) for _, c in rows], int(rows[-1][0])


def _location(key: str, namespace: str, name: str) -> str:
    """Where an object is stored: ``resource/namespace/name`` (the AAD of its encrypted value)."""
    return f"{key}/{namespace}/{name}"


def _create_private(path: str) -> None:
    """Create the database file with mode 0600 if it is missing (SQLite gives its -wal and -shm files
    the database file's mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_MODE))


def _storage_error(err: BaseException) -> BaseException:
    """SQLite's "database or disk is full" as 507; anything else unchanged."""
    if isinstance(err, sqlite3.OperationalError) and "full" in str(err).lower():
        return errors.InsufficientStorage("the server's storage is full: the write was not stored")
    return err


def conflict(info: kinds.ResourceInfo, name: str) -> errors.Conflict:
    """409 with the apiserver's wording for a stale ``resourceVersion``."""
    return errors.Conflict(
        f'Operation cannot be fulfilled on {resource_key(info)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details={"name": name, "group": info.group, "kind": info.plural},
    )
