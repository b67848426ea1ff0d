"""Event bodies, names and message scrubbing (pure parts of the EventRecorder)."""

from __future__ import annotations

from dockyard.client import events

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
