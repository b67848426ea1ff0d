"""The SQLite store: revisions, optimistic concurrency, watch log, compaction, logs, threads, restart."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from dockyard.api import errors, kinds
from dockyard.storage import sqlite

POD = kinds.by_kind("v1", "Pod")
NS = kinds.by_kind("v1", "Namespace")
BUILD = kinds.by_kind("dockyard.dev/v1alpha1", "Build")
assert POD and NS and BUILD


def pod(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels},
        "spec": {},
    }


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = sqlite.Store(tmp_path / "db.sqlite")
    yield s
    s.close()


def test_revisions_are_global_and_monotonic(store: sqlite.Store) -> None:
    assert store.revision() == 0
    a = store.create(POD, pod("a"))
    b = store.create(POD, pod("b"))
    assert (a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"]) == ("1", "2")
    a2 = store.update(POD, dict(a, spec={"x": 1}))
    assert a2["metadata"]["resourceVersion"] == "3"
    gone = store.delete(POD, "default", "b")
    assert gone["metadata"]["resourceVersion"] == "4" and store.revision() == 4
    assert store.get(POD, "default", "a") == a2


def test_wal_mode_and_revision_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    s = sqlite.Store(path)
    s.create(POD, pod("a"))
    s.create(POD, pod("b"))
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()
    s = sqlite.Store(path)
    assert s.revision() == 2
    assert s.create(POD, pod("c"))["metadata"]["resourceVersion"] == "3"
    events, upto = s.events_since(POD, 0)
    assert [e.object["metadata"]["name"] for e in events] == ["a", "b", "c"] and upto == 3
    s.close()


def test_errors(store: sqlite.Store) -> None:
    store.create(POD, pod("a"))
    with pytest.raises(errors.AlreadyExists):
        store.create(POD, pod("a"))
    with pytest.raises(errors.NotFound) as nf:
        store.get(POD, "default", "zzz")
    assert nf.value.message == 'pods "zzz" not found'
    with pytest.raises(errors.Conflict) as conflict:
        store.update(POD, pod("a"), expect_rv="999")
    assert "the object has been modified" in conflict.value.message
    with pytest.raises(errors.NotFound):
        store.update(POD, pod("nope"))
    with pytest.raises(errors.NotFound):
        store.delete(POD, "default", "nope")
    with pytest.raises(errors.Conflict):
        store.delete(POD, "default", "a", expect_uid="other")


def test_list_namespaces_predicates_and_paging(store: sqlite.Store) -> None:
    for ns in ("b-ns", "a-ns"):
        for name in ("y", "x", "z"):
            store.create(POD, pod(name, ns, app="1" if name != "z" else "2"))
    page = store.list(POD)
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page.items] == [
        ("a-ns", "x"),
        ("a-ns", "y"),
        ("a-ns", "z"),
        ("b-ns", "x"),
        ("b-ns", "y"),
        ("b-ns", "z"),
    ]
    assert page.revision == 6 and page.next_key is None
    assert [o["metadata"]["name"] for o in store.list(POD, "b-ns").items] == ["x", "y", "z"]
    only = store.list(POD, predicate=lambda o: o["metadata"]["labels"]["app"] == "2")
    assert [o["metadata"]["namespace"] for o in only.items] == ["a-ns", "b-ns"]
    first = store.list(POD, limit=4)
    assert len(first.items) == 4 and first.next_key == ("b-ns", "x")
    rest = store.list(POD, limit=4, after=first.next_key)
    assert [o["metadata"]["name"] for o in rest.items] == ["y", "z"] and rest.next_key is None


def test_watch_log_events_and_prev_view(store: sqlite.Store) -> None:
    a = store.create(POD, pod("a", app="1"))
    store.update(POD, dict(a, metadata=dict(a["metadata"], labels={"app": "2"})))
    store.delete(POD, "default", "a")
    store.create(BUILD, {"metadata": {"name": "b", "namespace": "default"}})
    events, upto = store.events_since(POD, 0)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"] and upto == 4
    assert events[1].prev["metadata"] == {"name": "a", "namespace": "default", "labels": {"app": "1"}}
    assert events[1].prev["status"] == {"phase": "Pending"}  # selectable values as Kubernetes defaults them
    assert events[1].object["metadata"]["labels"] == {"app": "2"}
    assert store.events_since(POD, 2)[0][0].type == "DELETED"
    assert store.events_since(POD, 0, "other")[0] == []
    few, upto = store.events_since(POD, 0, limit=2)
    assert len(few) == 2 and upto == 2


def test_compaction_makes_old_revisions_gone(tmp_path: Path) -> None:
    s = sqlite.Store(tmp_path / "db.sqlite", retention=10)
    for i in range(50):
        s.create(POD, pod(f"p{i}"))
    s.compact()
    assert s.compacted_revision() == 40
    with pytest.raises(errors.Gone) as gone:
        s.events_since(POD, 5)
    assert gone.value.code == 410 and gone.value.reason == "Expired"
    events, _ = s.events_since(POD, 40)
    assert len(events) == 10
    s.close()
    s = sqlite.Store(tmp_path / "db.sqlite", retention=10)
    with pytest.raises(errors.Gone):
        s.events_since(POD, 39)
    s.close()


def test_atomic_rolls_back_everything(store: sqlite.Store) -> None:
    store.create(POD, pod("a"))
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.create(POD, pod("b"))
            store.delete(POD, "default", "a")
            raise RuntimeError("boom")
    assert store.revision() == 1
    assert [o["metadata"]["name"] for o in store.list(POD).items] == ["a"]
    assert store.create(POD, pod("c"))["metadata"]["resourceVersion"] == "2"


def test_subscribers_hear_commits_only(store: sqlite.Store) -> None:
    heard: list[set[str]] = []
    unsubscribe = store.subscribe(heard.append)
    with store.atomic():
        store.create(POD, pod("a"))
        store.create(POD, pod("b"))
        assert heard == []
    assert heard == [{"objects"}]
    store.append_log(POD, "default", "a", b"x")
    assert heard[-1] == {"logs"}
    unsubscribe()
    store.create(POD, pod("c"))
    assert len(heard) == 2


def test_logs_are_appended_read_and_deleted_with_the_object(store: sqlite.Store) -> None:
    store.create(BUILD, {"metadata": {"name": "b", "namespace": "default"}})
    with pytest.raises(errors.NotFound):
        store.append_log(BUILD, "default", "nope", b"x")
    s1 = store.append_log(BUILD, "default", "b", b"one\n")
    store.append_log(BUILD, "default", "b", b"two\n")
    chunks, last = store.read_log(BUILD, "default", "b")
    assert chunks == [b"one\n", b"two\n"] and last > s1
    assert store.read_log(BUILD, "default", "b", after=s1)[0] == [b"two\n"]
    assert store.read_log(BUILD, "default", "b", after=last) == ([], last)
    store.delete(BUILD, "default", "b")
    store.create(BUILD, {"metadata": {"name": "b", "namespace": "default"}})
    assert store.read_log(BUILD, "default", "b") == ([], 0)


def test_dependents_and_namespace_contents(store: sqlite.Store) -> None:
    owner = store.create(POD, pod("owner"))
    child = pod("child")
    child["metadata"]["ownerReferences"] = [{"uid": owner["metadata"]["uid"], "name": "owner"}]
    store.create(POD, child)
    store.create(BUILD, {"metadata": {"name": "b", "namespace": "default", "ownerReferences": [{"uid": "uid-owner"}]}})
    store.create(POD, pod("elsewhere", "other"))
    deps = store.dependents("uid-owner", "default")
    assert sorted((i.kind, n) for i, _, n in deps) == [("Build", "b"), ("Pod", "child")]
    assert store.dependents("uid-own", "default") == []
    assert sorted((i.kind, n) for i, n in store.namespace_contents("default")) == [
        ("Build", "b"),
        ("Pod", "child"),
        ("Pod", "owner"),
    ]


def test_concurrent_writers_get_distinct_revisions(store: sqlite.Store) -> None:
    failures: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for i in range(50):
                store.create(POD, pod(f"{prefix}-{i}"))
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(str(n),)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    assert store.revision() == 200
    events, _ = store.events_since(POD, 0, limit=1000)
    assert [e.revision for e in events] == list(range(1, 201))


def test_deferred_writes_stay_in_the_open_batch_until_committed(tmp_path: Path) -> None:
    """Inside ``deferred()`` a write returns before its commit, naming its batch; writes join that batch
    until ``commit_open``; after it the batch is done and a second store on the file sees every write."""
    path = tmp_path / "db.sqlite"
    store = sqlite.Store(path)
    commits = store.commits
    with store.deferred() as first:
        store.create(POD, pod("a"))
    with store.deferred() as second:
        store.create(POD, pod("b"))
    assert first.batch and first.batch == second.batch and store.done_batch < first.batch
    assert store.commits == commits and store.revision() == 0  # nothing durable yet, so nothing is read
    assert store.commit_open() >= first.batch and store.commits == commits + 1
    store.deferred_outcome(first.batch)
    store.deferred_outcome(second.batch)
    assert store.revision() == 2
    other = sqlite.Store(path)
    assert sorted(p["metadata"]["name"] for p in other.list(POD, "default").items) == ["a", "b"]
    other.close()
    assert store.commit_open() == store.done_batch  # nothing open: no commit
    assert store.commits == commits + 1
    store.close()


def test_a_reader_commits_an_open_deferred_batch_first(store: sqlite.Store) -> None:
    """A read never sees a write that is not on disk: another thread's read commits the open batch."""
    with store.deferred() as pending:
        store.create(POD, pod("a"))
    found: list[Any] = []
    reader = threading.Thread(target=lambda: found.append(store.get(POD, "default", "a")))
    reader.start()
    reader.join(10)
    assert found and store.done_batch >= pending.batch


def test_a_failed_deferred_write_is_rolled_back_and_not_counted(store: sqlite.Store) -> None:
    """A deferred write that raises leaves nothing in the batch and names no batch."""
    store.create(POD, pod("a"))
    with store.deferred() as pending, pytest.raises(errors.AlreadyExists):
        store.create(POD, pod("a"))
    assert pending.batch == 0


def test_a_failed_commit_fails_every_deferred_writer_of_its_batch(store: sqlite.Store) -> None:
    """When the batch's COMMIT fails (here: the disk is full), each of its deferred writers gets the error
    (507), and nothing of the batch is stored."""

    class FullDisk:
        def __init__(self, db: Any) -> None:
            self.db = db

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return self.db.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.db, name)

    with store.deferred() as one:
        store.create(POD, pod("a"))
    with store.deferred() as two:
        store.create(POD, pod("b"))
    real, store._db = store._db, FullDisk(store._db)  # type: ignore[assignment]
    try:
        assert store.commit_open() >= one.batch
    finally:
        store._db = real
    for pending in (one, two):
        with pytest.raises(errors.InsufficientStorage):
            store.deferred_outcome(pending.batch)
    store.deferred_outcome(one.batch)  # the record is gone once each writer has looked
    assert store.revision() == 0 and not store.exists(POD, "default", "a")


def test_held_if_free_never_waits_for_another_thread(store: sqlite.Store) -> None:
    """The event loop's way in: the lock when it is free, False at once while another thread holds it."""
    with store.held_if_free() as free:
        assert free
        with store.atomic():  # the holder may write (the lock is re-entrant)
            store.create(POD, pod("a"))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.atomic():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    with store.held_if_free() as free:
        assert not free
    release.set()
    holder.join(10)
    with store.held_if_free() as free:
        assert free
