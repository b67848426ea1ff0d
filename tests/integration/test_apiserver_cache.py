"""The watch cache over real HTTPS: fan-out, slow watchers cut off, the ring, reads from the cache.

To tell a read served from the cache from one served by SQLite, some tests change the
database behind the store's back (a second SQLite connection): the cache keeps what was
committed through the store, the store's own reads see the change.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.apiserver import cacher, httpproto

from .test_apiserver_watch import PODS, LiveWatch, collect, pod, summary

SECRETS = "/api/v1/namespaces/default/secrets"


def secret(name: str, size: int = 16) -> dict[str, Any]:
    payload = base64.b64encode(b"x" * size).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"payload": payload}}


def tamper(db: Path, name: str, label: str) -> None:
    """Give the stored pod ``name`` the label ``tampered=<label>`` directly in SQLite (not through the store)."""
    with sqlite3.connect(db, timeout=10) as conn:
        (data,) = conn.execute("SELECT data FROM objects WHERE resource = 'pods' AND name = ?", (name,)).fetchone()
        obj = json.loads(data)
        obj["metadata"].setdefault("labels", {})["tampered"] = label
        conn.execute("UPDATE objects SET data = ? WHERE resource = 'pods' AND name = ?", (json.dumps(obj), name))


def labels_of(listed: dict[str, Any], name: str) -> dict[str, str]:
    (item,) = [i for i in listed["items"] if i["metadata"]["name"] == name]
    return dict(item["metadata"].get("labels") or {})


def test_list_with_resource_version_0_is_served_from_the_cache(apiserver: Any, api: httpx.Client) -> None:
    api.post(PODS, json=pod("cached", app="web")).raise_for_status()
    tamper(apiserver.db_path, "cached", "sqlite")
    from_cache = api.get(PODS, params={"resourceVersion": "0"}).json()
    assert "tampered" not in labels_of(from_cache, "cached")
    # a paged list is read from the store
    from_store = api.get(PODS, params={"limit": "10"}).json()
    assert labels_of(from_store, "cached")["tampered"] == "sqlite"
    # so is a get at resourceVersion=0 from the cache, with the cached bytes
    got = api.get(f"{PODS}/cached", params={"resourceVersion": "0"}).json()
    assert "tampered" not in got["metadata"].get("labels", {})
    assert got["metadata"]["resourceVersion"] == from_cache["items"][0]["metadata"]["resourceVersion"]


def test_not_older_than_is_served_from_the_cache_once_it_is_fresh_enough(apiserver: Any, api: httpx.Client) -> None:
    created = api.post(PODS, json=pod("fresh", app="web")).json()
    rv = created["metadata"]["resourceVersion"]
    tamper(apiserver.db_path, "fresh", "sqlite")
    listed = api.get(PODS, params={"resourceVersion": rv, "resourceVersionMatch": "NotOlderThan"}).json()
    assert int(listed["metadata"]["resourceVersion"]) >= int(rv)
    assert "tampered" not in labels_of(listed, "fresh")
    # a consistent list (no resourceVersion) uses the cache too: it has applied the latest commit
    assert "tampered" not in labels_of(api.get(PODS).json(), "fresh")
    # Exact is the store's
    exact = api.get(
        PODS, params={"resourceVersion": listed["metadata"]["resourceVersion"], "resourceVersionMatch": "Exact"}
    )
    assert exact.status_code == 200 and labels_of(exact.json(), "fresh")["tampered"] == "sqlite"
    # a revision the store has not reached yet is still 504 after the catch-up wait
    future = api.get(PODS, params={"resourceVersion": str(int(rv) + 1000), "resourceVersionMatch": "NotOlderThan"})
    assert future.status_code == 504


def test_a_watch_from_a_recent_revision_is_served_from_the_ring(apiserver: Any, api: httpx.Client) -> None:
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    for i in range(3):
        api.post(PODS, json=pod(f"r{i}")).raise_for_status()
    with sqlite3.connect(apiserver.db_path, timeout=10) as conn:  # the store's watch log is gone...
        conn.execute("DELETE FROM events")
    # ...and the watch still gets every event after rv, from memory
    assert summary(collect(api, resourceVersion=rv)) == [("ADDED", "r0"), ("ADDED", "r1"), ("ADDED", "r2")]


def test_a_watch_from_before_the_ring_gets_410_expired(apiserver_factory: Any) -> None:
    server = apiserver_factory(retention=5)
    with server.client() as api:
        first = api.post(PODS, json=pod("old")).json()["metadata"]["resourceVersion"]
        for i in range(20):
            api.post(PODS, json=pod(f"o{i}")).raise_for_status()
        events = collect(api, resourceVersion=first)
        assert [e["type"] for e in events] == ["ERROR"]
        assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
        recent = api.get(f"{PODS}/o17").json()["metadata"]["resourceVersion"]
        assert summary(collect(api, resourceVersion=recent)) == [("ADDED", "o18"), ("ADDED", "o19")]


def test_selectors_filter_in_the_fan_out(apiserver: Any, api: httpx.Client) -> None:
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    web = LiveWatch(apiserver, resourceVersion=rv, labelSelector="app=web")
    named = LiveWatch(apiserver, resourceVersion=rv, fieldSelector="metadata.name=db-1")
    everything = LiveWatch(apiserver, resourceVersion=rv)
    try:
        api.post(PODS, json=pod("web-1", app="web")).raise_for_status()
        api.post(PODS, json=pod("db-1", app="db")).raise_for_status()
        merge = {"Content-Type": "application/merge-patch+json"}
        api.patch(f"{PODS}/web-1", json={"metadata": {"labels": {"app": "cache"}}}, headers=merge).raise_for_status()
        got_web = [web.next(), web.next()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in got_web] == [
            ("ADDED", "web-1"),
            ("DELETED", "web-1"),  # it left the selector
        ]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in [named.next()]] == [("ADDED", "db-1")]
        assert [everything.next()["type"] for _ in range(3)] == ["ADDED", "ADDED", "MODIFIED"]
        assert web.quiet(0.3) and named.quiet(0.1)
    finally:
        for w in (web, named, everything):
            w.close()


class _SmallWindow(http.client.HTTPSConnection):
    """An HTTPS connection with a tiny receive buffer, so a client that does not read stalls its stream soon."""

    def connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(self.timeout)
        sock.connect((self.host, self.port))
        assert self._context is not None  # type: ignore[attr-defined]
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["direct", "send"])
def test_a_slow_watcher_is_cut_off_while_a_fast_one_keeps_receiving(
    apiserver_factory: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """``direct``: the fan-out writes to the connection (only the byte bound can cut the watcher off);
    ``send``: without a ready chunk writer the stream task sends (only the event bound can)."""
    writes, size = 60, 96 * 1024
    if path == "direct":
        monkeypatch.setattr(cacher, "WATCHER_BUFFER_BYTES", 8 * size)
    else:
        monkeypatch.setattr(httpproto.ChunkWriter, "ready", lambda self: False)
        monkeypatch.setattr(cacher, "WATCHER_BUFFER", 8)
    server = apiserver_factory()
    with server.client(timeout=30) as api:
        rv = api.get(SECRETS).json()["metadata"]["resourceVersion"]
        fast = LiveWatch(server, SECRETS, resourceVersion=rv, timeoutSeconds=60)
        url = httpx.URL(server.url)
        slow = _SmallWindow(url.host, url.port, context=server.ssl_context(), timeout=30)
        slow.request(
            "GET",
            f"{SECRETS}?watch=true&resourceVersion={rv}&timeoutSeconds=60",
            headers={"Authorization": f"Bearer {server.token}"},
        )
        response = slow.getresponse()  # headers only: the body is not read while the writes go on
        assert response.status == 200
        try:
            for i in range(writes):
                api.post(SECRETS, json=secret(f"s{i:02d}", size)).raise_for_status()
            fast_names = [fast.next(10)["object"]["metadata"]["name"] for _ in range(writes)]
            assert fast_names == [f"s{i:02d}" for i in range(writes)]
            # the slow client now reads: what was buffered for it, then the end of the stream, long
            # before its timeoutSeconds
            started = time.monotonic()
            lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
            assert time.monotonic() - started < 20
            slow_names = [e["object"]["metadata"]["name"] for e in lines]
            assert 0 < len(slow_names) < writes
            assert slow_names == fast_names[: len(slow_names)]
            # it resumes from the last resourceVersion it saw and gets the rest, from the ring
            last = lines[-1]["object"]["metadata"]["resourceVersion"]
            rest = [e["object"]["metadata"]["name"] for e in collect(api, SECRETS, resourceVersion=last)]
            assert slow_names + rest == fast_names
        finally:
            slow.close()
            fast.close()
