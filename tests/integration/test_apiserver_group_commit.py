"""Creates, updates and patches run on the event loop and are committed in groups (:mod:`dockyard.apiserver.writes`).

Real parts: the API server over HTTPS, clients on their own connections and threads, the SQLite file read by a
connection of the test's own. What must hold: a write is answered only once it is committed (another connection
to the file sees it when the answer arrives), concurrent writers share commits (fewer fsyncs than writes), and a
write that fails is answered with its error and leaves nothing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from integration.conftest import ApiServer

SECRETS = "/api/v1/namespaces/default/secrets"
WRITERS = 24
EACH = 10


def stored(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM objects WHERE resource = 'secrets' AND namespace = 'default' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def test_every_answered_write_is_committed_and_writers_share_commits(apiserver: ApiServer) -> None:
    commits = apiserver.store.commits
    problems: list[str] = []

    def writer(w: int) -> None:
        db = sqlite3.connect(f"file:{apiserver.db_path}?mode=ro", uri=True)
        try:
            with apiserver.client(timeout=30) as http:
                for i in range(EACH):
                    name = f"s-{w}-{i}"
                    resp = http.post(SECRETS, json={"metadata": {"name": name}, "stringData": {"k": name}})
                    if resp.status_code != 201:
                        problems.append(f"{name}: {resp.status_code} {resp.text[:200]}")
                    elif not stored(db, name):
                        problems.append(f"{name}: answered 201 before its commit")
                    patched = http.patch(
                        f"{SECRETS}/{name}",
                        json={"metadata": {"labels": {"n": str(i)}}},
                        headers={"Content-Type": "application/merge-patch+json"},
                    )
                    rv = patched.json().get("metadata", {}).get("resourceVersion")
                    row = db.execute(
                        "SELECT rv FROM objects WHERE resource = 'secrets' AND namespace = 'default' AND name = ?",
                        (name,),
                    ).fetchone()
                    if patched.status_code != 200 or row is None or str(row[0]) != rv:
                        problems.append(f"{name}: patch {patched.status_code}, stored rv {row}, answered {rv}")
        finally:
            db.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not problems, problems[:5]
    writes = WRITERS * EACH * 2
    used = apiserver.store.commits - commits
    assert used < writes, f"{used} commits for {writes} concurrent writes: no group commit"


def test_a_refused_write_is_answered_with_its_error_and_leaves_nothing(apiserver: ApiServer) -> None:
    with apiserver.client() as http:
        assert http.post(SECRETS, json={"metadata": {"name": "one"}, "stringData": {"k": "v"}}).status_code == 201
        again = http.post(SECRETS, json={"metadata": {"name": "one"}, "stringData": {"k": "other"}})
        assert again.status_code == 409, again.text
        bad = http.post(SECRETS, json={"metadata": {"name": "Bad_Name"}, "stringData": {"k": "v"}})
        assert bad.status_code == 422, bad.text
        stale: dict[str, Any] = http.get(f"{SECRETS}/one").json()
        assert http.put(f"{SECRETS}/one", json={**stale, "data": {"k": "dzI="}}).status_code == 200
        conflict = http.put(f"{SECRETS}/one", json={**stale, "data": {"k": "dzM="}})
        assert conflict.status_code == 409, conflict.text
        got = http.get(f"{SECRETS}/one").json()
        assert got["data"]["k"] == "dzI=" and got["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"]
    db = sqlite3.connect(f"file:{apiserver.db_path}?mode=ro", uri=True)
    try:
        assert stored(db, "one") and not stored(db, "Bad_Name")
    finally:
        db.close()


def test_a_write_waiting_for_the_store_does_not_hold_up_the_server(apiserver: ApiServer) -> None:
    """While another thread holds the store (a paged read, a worker thread's fsync on a slow disk), a create that
    arrives waits for it off the event loop: other requests are still answered, and the create completes after."""
    created: list[int] = []
    with apiserver.client(timeout=30) as http:
        assert http.post(SECRETS, json={"metadata": {"name": "warm"}}).status_code == 201
        with apiserver.store.atomic():  # this thread holds the store's lock, as a slow reader or committer would
            writer = threading.Thread(
                target=lambda: created.append(
                    apiserver.client(timeout=30).post(SECRETS, json={"metadata": {"name": "late"}}).status_code
                )
            )
            writer.start()
            time.sleep(0.5)  # the create has reached the server and waits for the store
            started = time.monotonic()
            assert http.get("/version").status_code == 200
            assert http.get(f"{SECRETS}/warm", params={"resourceVersion": "0"}).status_code == 200
            answered = time.monotonic() - started
            assert not created, "the create did not wait for the store"
        writer.join(30)
    assert answered < 1.0, f"the server answered other requests only after {answered:.1f}s"
    assert created == [201]
