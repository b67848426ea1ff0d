"""Typed objects (:mod:`dockyard.api.objects`): a dict round-trips unchanged; edits reach the dict."""

from __future__ import annotations

import pytest
from lightkube.resources.core_v1 import Pod
from pydantic import ValidationError

from dockyard.api import objects
from dockyard.client import objects as client_objects

BUILD = {
    "apiVersion": "dockyard.dev/v1alpha1",
    "kind": "Build",
    "metadata": {"name": "hello-1", "namespace": "default", "uid": "u1", "resourceVersion": "7", "x-extra": 1},
    "spec": {
        "source": {"git": {"uri": "https://example.com/r.git"}},
        "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:latest"}},
    },
    "status": {"phase": "Running", "podName": "hello-1-build", "somethingNew": True},
}


def test_round_trip_adds_no_defaults_and_keeps_unknown_metadata_and_status() -> None:
    build = objects.parse(BUILD)
    assert isinstance(build, objects.Build)
    assert build.key == "default/hello-1"
    out = objects.to_dict(build)
    assert out["spec"] == BUILD["spec"]  # no runPolicy/strategy defaults materialised
    assert out["metadata"]["x-extra"] == 1
    assert out["status"] == BUILD["status"]


def test_edits_to_defaulted_nested_fields_reach_the_dict() -> None:
    body = {k: v for k, v in BUILD.items() if k != "status"}
    body["metadata"] = {"name": "b", "namespace": "default"}
    build = objects.parse(body, objects.Build)
    build.status.phase = "Pending"
    build.metadata.labels["a"] = "b"
    out = objects.to_dict(build)
    assert out["status"] == {"phase": "Pending"}
    assert out["metadata"]["labels"] == {"a": "b"}


def test_core_kinds_are_lightkube_models() -> None:
    pod = client_objects.parse(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    )
    assert isinstance(pod, Pod)
    assert client_objects.to_dict(pod)["metadata"] == {"name": "p"}
    assert isinstance(client_objects.parse(BUILD), objects.Build)


def test_unknown_kind_and_bad_spec_raise() -> None:
    with pytest.raises(KeyError):
        client_objects.parse({"kind": "Nope"})
    with pytest.raises(ValidationError):
        objects.parse({**BUILD, "spec": {"bogus": 1}})
