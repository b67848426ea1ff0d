"""Event bodies, names and message scrubbing (pure parts of the EventRecorder)."""

from __future__ import annotations

import threading
import time

import pytest

from dockyard.client import events, resources

BUILD = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "Build",
    "metadata": {"name": "hello-1", "namespace": "team", "uid": "u-1", "resourceVersion": "7"},
    "spec": {"source": {}},
    "status": {"phase": "Running"},
}


def test_new_event_names_the_involved_object() -> None:
    ev = events.new_event(
        BUILD,
        "Normal",
        "BuildStarted",
        "Build team/hello-1 is now running",
        component="build-controller",
        now="2024-01-01T00:00:00Z",
    )
    assert ev["involvedObject"] == {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Build",
        "name": "hello-1",
        "namespace": "team",
        "uid": "u-1",
        "resourceVersion": "7",
    }
    assert ev["metadata"]["namespace"] == "team" and ev["metadata"]["name"].startswith("hello-1.")
    assert ev["count"] == 1 and ev["firstTimestamp"] == ev["lastTimestamp"] == "2024-01-01T00:00:00Z"
    assert ev["source"] == {"component": "build-controller"} and ev["type"] == "Normal"
    assert "spec" not in ev["involvedObject"] and "status" not in ev["involvedObject"]


def test_event_names_are_stable_per_key_and_valid() -> None:
    a = events.event_name(BUILD, "Normal", "R", "m")
    assert a == events.event_name(BUILD, "Normal", "R", "m")
    assert a != events.event_name(BUILD, "Normal", "R", "other")
    long = {"metadata": {"name": "x" * 253, "uid": "u"}}
    assert len(events.event_name(long, "Normal", "R", "m")) <= 253


def test_cluster_scoped_objects_get_events_in_default() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "uid": "u"}}
    assert events.new_event(ns, "Normal", "R", "m", component="c")["metadata"]["namespace"] == "default"


def test_scrub_masks_url_credentials_and_bounds_length() -> None:
    assert events.scrub("clone https://user:s3cret@git.example/x failed") == "clone https://***@git.example/x failed"
    assert len(events.scrub("x" * 5000)) == events.MAX_MESSAGE


class _FakeEvents:
    """A lightkube client stand-in that records Event creates, slowly when told to."""

    def __init__(self, delay: float = 0.0) -> None:
        self.created: list[dict[str, object]] = []
        self.delay = delay

    def create(self, obj: object, namespace: str | None = None) -> object:
        time.sleep(self.delay)
        self.created.append(resources.as_dict(obj))
        return obj


def test_spam_filter_allows_a_burst_then_one_per_refill() -> None:
    now = [0.0]
    spam = events.SpamFilter(burst=3, refill=10.0, clock=lambda: now[0])
    assert [spam.allow(("a",)) for _ in range(4)] == [True, True, True, False]
    assert spam.allow(("b",)), "each object has its own bucket"
    now[0] = 9.0
    assert not spam.allow(("a",))
    now[0] = 10.5
    assert spam.allow(("a",)) and not spam.allow(("a",))


def test_spam_filter_defaults_are_client_gos() -> None:
    assert (events.SPAM_BURST, events.SPAM_REFILL_SECONDS) == (25, 300.0)


def test_asynchronous_recorder_does_not_wait_for_the_api() -> None:
    api = _FakeEvents(delay=0.05)
    rec = events.EventRecorder(api, component="c", asynchronous=True)
    start = time.monotonic()
    for i in range(10):
        rec.record({**BUILD, "metadata": {**BUILD["metadata"], "uid": f"u-{i}"}}, "Normal", "R", f"m{i}")
    assert time.monotonic() - start < 0.05 * 5, "record() waited for the API server"
    assert rec.flush(timeout=10)
    assert [e["message"] for e in api.created] == [f"m{i}" for i in range(10)], "sent in order"


def test_asynchronous_recorder_drops_beyond_its_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MAX_QUEUED", 2)
    gate = threading.Event()

    class Blocked(_FakeEvents):
        def create(self, obj: object, namespace: str | None = None) -> object:
            gate.wait(10)
            return super().create(obj, namespace)

    api = Blocked()
    rec = events.EventRecorder(api, component="c", asynchronous=True)
    for i in range(6):
        rec.record({**BUILD, "metadata": {**BUILD["metadata"], "uid": f"u-{i}"}}, "Normal", "R", "m")
    gate.set()
    assert rec.flush(timeout=10)
    assert 2 <= len(api.created) <= 3 and rec.dropped == 6 - len(api.created)


def test_spam_filtered_recorder_drops_an_objects_events_beyond_the_burst() -> None:
    api = _FakeEvents()
    rec = events.EventRecorder(api, component="c", spam_filter=True)
    for i in range(events.SPAM_BURST + 5):
        rec.record(BUILD, "Normal", "R", f"m{i}")
    assert len(api.created) == events.SPAM_BURST and rec.dropped == 5
    rec.record({**BUILD, "metadata": {**BUILD["metadata"], "uid": "u-2"}}, "Normal", "R", "other object")
    assert len(api.created) == events.SPAM_BURST + 1
