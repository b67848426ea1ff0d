"""The watch contract over real HTTP: list+watch, resume, 410 Expired, selectors, bookmarks, latency."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import httpx
import pytest

from dockyard.apiserver import watch as watch_module

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def collect(api: httpx.Client, path: str = PODS, **params: Any) -> list[dict[str, Any]]:
    """Run one watch to its ``timeoutSeconds`` end and return the events."""
    params = {"watch": "true", "timeoutSeconds": 1, **params}
    with api.stream("GET", path, params=params) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")
        return [json.loads(line) for line in resp.iter_lines() if line.strip()]


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


class LiveWatch:
    """A watch read by a background thread into a queue (bounded by ``timeoutSeconds``)."""

    def __init__(self, server: Any, path: str = PODS, **params: Any) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = server.client(timeout=30)
        self.params = {"watch": "1", "timeoutSeconds": 20, **params}
        self.path = path
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.connected.wait(5)

    def _run(self) -> None:
        try:
            with self.client.stream("GET", self.path, params=self.params) as resp:
                self.connected.set()
                for line in resp.iter_lines():
                    if line.strip():
                        self.events.put(json.loads(line))
        except Exception:
            self.connected.set()

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def quiet(self, seconds: float = 0.5) -> bool:
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        # Wait for the reader thread: closing a client while another thread reads its socket frees the fd, and
        # the next watch's connection may get the same fd number, which the old reader would then read from
        # (seen as "bad record mac" on the server and a lost event on the new watch).
        self.client.close()
        self.thread.join(5)


def test_watch_from_list_resource_version_sees_exactly_later_events(api: httpx.Client) -> None:
    api.post(PODS, json=pod("a"))
    api.post(PODS, json=pod("b"))
    listed = api.get(PODS).json()
    rv = listed["metadata"]["resourceVersion"]
    api.post(PODS, json=pod("c"))
    api.patch(f"{PODS}/a", json={"metadata": {"labels": {"v": "2"}}}, headers=MERGE)
    api.delete(f"{PODS}/b")
    events = collect(api, resourceVersion=rv)
    assert summary(events) == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(rv)
    assert events[0]["object"]["kind"] == "Pod" and events[0]["object"]["apiVersion"] == "v1"


def test_watch_without_resource_version_starts_with_current_state(apiserver: Any, api: httpx.Client) -> None:
    api.post(PODS, json=pod("a"))
    api.post(PODS, json=pod("b"))
    existing = ["a", "b"]
    for rv in (None, "0"):
        params = {"resourceVersion": rv} if rv else {}
        w = LiveWatch(apiserver, **params)
        try:
            assert summary([w.next() for _ in existing]) == [("ADDED", n) for n in existing]
            name = f"c{rv or ''}"
            existing.append(name)
            started = time.monotonic()
            api.post(PODS, json=pod(name))
            event = w.next()
            latency = time.monotonic() - started
            assert summary([event]) == [("ADDED", name)]
            assert latency < 0.5, f"watch event took {latency:.3f}s"
        finally:
            w.close()


def test_resume_after_reconnect_from_last_seen_version(api: httpx.Client) -> None:
    start = api.get(PODS).json()["metadata"]["resourceVersion"]
    api.post(PODS, json=pod("a"))
    api.post(PODS, json=pod("b"))
    first = collect(api, resourceVersion=start)
    assert summary(first) == [("ADDED", "a"), ("ADDED", "b")]
    last = first[-1]["object"]["metadata"]["resourceVersion"]
    api.post(PODS, json=pod("c"))
    api.delete(f"{PODS}/a")
    assert summary(collect(api, resourceVersion=last)) == [("ADDED", "c"), ("DELETED", "a")]


def test_compacted_resource_version_gets_410_expired_event(apiserver_factory: Any) -> None:
    server = apiserver_factory(retention=5)
    with server.client() as api:
        for i in range(30):
            api.post(PODS, json=pod(f"p{i}"))
        server.store.compact()
        events = collect(api, resourceVersion="1")
        assert len(events) == 1 and events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
        current = api.get(PODS).json()["metadata"]["resourceVersion"]
        api.post(PODS, json=pod("late"))
        assert summary(collect(api, resourceVersion=current)) == [("ADDED", "late")]
        assert_bad = api.get(PODS, params={"watch": "true", "resourceVersion": "abc"})
        assert assert_bad.status_code == 400


def test_selectors_report_objects_entering_and_leaving(apiserver: Any, api: httpx.Client) -> None:
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    api.post(PODS, json=pod("x", app="web"))
    api.patch(f"{PODS}/x", json={"metadata": {"labels": {"app": "db"}}}, headers=MERGE)
    api.patch(f"{PODS}/x", json={"metadata": {"labels": {"extra": "1"}}}, headers=MERGE)
    api.patch(f"{PODS}/x", json={"metadata": {"labels": {"app": "web"}}}, headers=MERGE)
    api.post(PODS, json=pod("y", app="db"))
    api.patch(f"{PODS}/x", json={"metadata": {"labels": {"extra": "2"}}}, headers=MERGE)
    events = collect(api, resourceVersion=rv, labelSelector="app=web")
    assert summary(events) == [("ADDED", "x"), ("DELETED", "x"), ("ADDED", "x"), ("MODIFIED", "x")]
    events = collect(api, resourceVersion=rv, fieldSelector="metadata.name=y")
    assert summary(events) == [("ADDED", "y")]


def test_status_phase_field_selector_transitions(api: httpx.Client) -> None:
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    api.post(PODS, json=pod("p"))
    api.patch(f"{PODS}/p/status", json={"status": {"phase": "Running"}}, headers=MERGE)
    api.patch(f"{PODS}/p/status", json={"status": {"phase": "Succeeded"}}, headers=MERGE)
    events = collect(api, resourceVersion=rv, fieldSelector="status.phase=Running")
    assert summary(events) == [("ADDED", "p"), ("DELETED", "p")]


def test_watch_is_scoped_to_the_namespace(api: httpx.Client) -> None:
    api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    api.post("/api/v1/namespaces/team/pods", json=pod("other"))
    api.post(PODS, json=pod("mine"))
    assert summary(collect(api, resourceVersion=rv)) == [("ADDED", "mine")]
    assert summary(collect(api, "/api/v1/pods", resourceVersion=rv)) == [("ADDED", "other"), ("ADDED", "mine")]


def test_bookmarks_and_timeout(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "BOOKMARK_INTERVAL", 0.2)
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    started = time.monotonic()
    events = collect(api, resourceVersion=rv, allowWatchBookmarks="true")
    assert time.monotonic() - started < 3
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert events[0]["object"]["metadata"]["resourceVersion"] == rv
    assert events[0]["object"]["kind"] == "Pod"


def test_many_concurrent_writes_are_all_delivered_in_order(apiserver: Any, api: httpx.Client) -> None:
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    w = LiveWatch(apiserver, resourceVersion=rv)
    try:

        def writer(prefix: str) -> None:
            with apiserver.client() as c:
                for i in range(10):
                    c.post(PODS, json=pod(f"{prefix}{i}"))

        threads = [threading.Thread(target=writer, args=(p,)) for p in "abc"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        got = [w.next() for _ in range(30)]
        assert {e["object"]["metadata"]["name"] for e in got} == {f"{p}{i}" for p in "abc" for i in range(10)}
        versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
        assert versions == sorted(versions)
        assert w.quiet(0.3)
    finally:
        w.close()


def test_watch_events_carry_full_objects(api: httpx.Client) -> None:
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    created = api.post(PODS, json=pod("full")).json()
    event = collect(api, resourceVersion=rv)[0]
    assert event["object"] == created
