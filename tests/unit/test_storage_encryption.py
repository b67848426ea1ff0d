"""Secrets encrypted at rest (EncryptionConfiguration, aesgcm), group commit and file modes of the store."""

from __future__ import annotations

import base64
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from dockyard.api import errors, kinds
from dockyard.storage import datadir, encryption, sqlite

SECRET = kinds.by_kind("v1", "Secret")
POD = kinds.by_kind("v1", "Pod")
PLAIN = "hunter2-at-rest"
ENCODED = base64.b64encode(PLAIN.encode()).decode()


def secret(name: str, value: str = ENCODED) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"password": value},
    }


def raw_rows(path: Path) -> list[bytes]:
    db = sqlite3.connect(path)
    rows = [r[0] for r in db.execute("SELECT data FROM objects")] + [
        r[0] for r in db.execute("SELECT object FROM events")
    ]
    db.close()
    return [r if isinstance(r, bytes) else r.encode() for r in rows]


def test_secrets_and_their_watch_history_are_sealed(tmp_path: Path) -> None:
    store = datadir.open_store(tmp_path / "data")
    store.create(SECRET, secret("s"))
    store.update(SECRET, secret("s", base64.b64encode(b"second-value").decode()))
    store.create(POD, {"metadata": {"name": "p", "namespace": "default"}, "spec": {}})
    store.delete(SECRET, "default", "s")
    store.create(SECRET, secret("kept"))
    assert store.get(SECRET, "default", "kept")["data"]["password"] == ENCODED
    events, _ = store.events_since(SECRET, 0)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED", "ADDED"]
    assert events[1].object["data"]["password"] == base64.b64encode(b"second-value").decode()
    store.close()
    rows = raw_rows(tmp_path / "data" / "dockyard.db")
    sealed = [r for r in rows if r.startswith(encryption.PREFIX)]
    assert len(sealed) == 5  # one object + four events
    for row in rows:
        assert ENCODED.encode() not in row and b"second-value" not in row and b"c2Vjb25k" not in row
    assert any(b'"name":"p"' in r for r in rows)  # other kinds stay plaintext (and selectable)


def test_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    store = datadir.open_store(data)
    store.create(SECRET, secret("s"))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("dockyard.db", "dockyard.db-wal", "dockyard.db-shm", "pki/encryption-config.json"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    store.close()


def test_plaintext_from_before_is_sealed_on_open_and_still_read(tmp_path: Path) -> None:
    path = tmp_path / "data" / "dockyard.db"
    path.parent.mkdir()
    old = sqlite.Store(path)
    old.create(SECRET, secret("old"))
    old.close()
    assert any(ENCODED.encode() in r for r in raw_rows(path))
    store = datadir.open_store(tmp_path / "data")
    assert store.get(SECRET, "default", "old")["data"]["password"] == ENCODED
    store.close()
    assert not any(ENCODED.encode() in r for r in raw_rows(path))


def test_a_value_moved_to_another_row_or_read_with_another_key_is_refused(tmp_path: Path) -> None:
    store = datadir.open_store(tmp_path / "data")
    store.create(SECRET, secret("a"))
    store.create(SECRET, secret("b", base64.b64encode(b"other").decode()))
    store.close()
    db = sqlite3.connect(tmp_path / "data" / "dockyard.db")
    value = db.execute("SELECT data FROM objects WHERE name = 'b'").fetchone()[0]
    db.execute("UPDATE objects SET data = ? WHERE name = 'a'", (value,))
    db.commit()
    db.close()
    store = datadir.open_store(tmp_path / "data")
    with pytest.raises(errors.StatusError, match="authentication failed"):
        store.get(SECRET, "default", "a")
    store.close()
    other = encryption.parse(encryption.new_config())
    store = sqlite.Store(tmp_path / "data" / "dockyard.db", encryption=other)
    with pytest.raises(errors.StatusError, match=r"no configured key|authentication failed"):
        store.get(SECRET, "default", "b")
    store.close()


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"kind": "Nope"}, "kind"),
        (
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "EncryptionConfiguration",
                "resources": [{"resources": ["secrets"], "providers": [{"aescbc": {"keys": []}}]}],
            },
            "providers[0]",
        ),
        (
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "EncryptionConfiguration",
                "resources": [
                    {
                        "resources": ["secrets"],
                        "providers": [{"aesgcm": {"keys": [{"name": "k", "secret": "c2hvcnQ="}]}}],
                    }
                ],
            },
            "keys[0]",
        ),
    ],
)
def test_bad_configuration_names_the_field(doc: dict, field: str) -> None:
    with pytest.raises(encryption.ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        encryption.parse(doc)


def test_concurrent_writes_share_commits_and_none_is_lost(tmp_path: Path) -> None:
    store = sqlite.Store(tmp_path / "db.sqlite")
    threads, per_thread = 8, 50
    revisions: list[int] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(per_thread):
                created = store.create(POD, {"metadata": {"name": f"p-{t}-{i}", "namespace": "default"}})
                with lock:
                    revisions.append(int(created["metadata"]["resourceVersion"]))
        except BaseException as err:
            failures.append(err)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not failures
    assert sorted(revisions) == list(range(1, threads * per_thread + 1))
    assert store.revision() == threads * per_thread
    assert store.commits < threads * per_thread  # some commits carried several writes
    store.close()
    reopened = sqlite.Store(tmp_path / "db.sqlite")
    assert len(reopened.list(POD).items) == threads * per_thread
    reopened.close()


def test_a_failed_write_rolls_back_only_itself(tmp_path: Path) -> None:
    store = sqlite.Store(tmp_path / "db.sqlite")
    store.create(POD, {"metadata": {"name": "a", "namespace": "default"}})
    with pytest.raises(errors.AlreadyExists):
        store.create(POD, {"metadata": {"name": "a", "namespace": "default"}})
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.create(POD, {"metadata": {"name": "b", "namespace": "default"}})
            raise RuntimeError("boom")
    store.create(POD, {"metadata": {"name": "c", "namespace": "default"}})
    assert [p["metadata"]["name"] for p in store.list(POD).items] == ["a", "c"]
    assert store.revision() == 2
    store.close()


class _FailingCommit:
    """The store's connection, with the next COMMIT failing as a full disk makes it fail."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.fail_next_commit = True

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.fail_next_commit:
            self.fail_next_commit = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_every_writer_of_a_batch_whose_commit_fails_gets_507(tmp_path: Path) -> None:
    store = sqlite.Store(tmp_path / "db.sqlite")
    store.create(POD, {"metadata": {"name": "before", "namespace": "default"}})
    store._db = _FailingCommit(store._db)  # type: ignore[assignment]
    entered = threading.Event()
    outcomes: dict[str, str] = {}

    def write(name: str, hold: bool = False) -> None:
        try:
            with store.atomic():
                store.create(POD, {"metadata": {"name": name, "namespace": "default"}})
                if hold:  # keep the batch open until the other writers queue behind this one
                    entered.set()
                    deadline = time.monotonic() + 10
                    while store._queued < 2 and time.monotonic() < deadline:
                        time.sleep(0.005)
            outcomes[name] = "ok"
        except errors.InsufficientStorage:
            outcomes[name] = "507"

    first = threading.Thread(target=write, args=("a", True))
    first.start()
    assert entered.wait(10)
    others = [threading.Thread(target=write, args=(n,)) for n in ("b", "c")]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert outcomes == {"a": "507", "b": "507", "c": "507"}
    assert [p["metadata"]["name"] for p in store.list(POD).items] == ["before"]
    assert store.revision() == 1
    store.create(POD, {"metadata": {"name": "after", "namespace": "default"}})
    assert store.revision() == 2
    store.close()
