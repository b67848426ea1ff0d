"""The BuildConfig controller's ``ConfigChange`` and ``ImageChange`` triggers against the API server.

The test plays the Image controller's part by writing ``Image.status.latestImage`` itself.
Semantics: OpenShift's buildconfig and image-trigger controllers (see
:mod:`dockyard.controllers.buildconfig`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dockyard.client import runtime
from dockyard.controllers.buildconfig import TRIGGER_ANNOTATION, BuildConfigController

from .conftest import Env, status
from .test_build_controller import config

BASE = "127.0.0.1:5000/base"
D1, D2 = "sha256:" + "11" * 32, "sha256:" + "22" * 32


@pytest.fixture
def configs(run_controller: Callable[..., runtime.Controller]) -> BuildConfigController:
    return run_controller(BuildConfigController)  # type: ignore[return-value]


def build_names(env: Env) -> list[str]:
    return sorted(b["metadata"]["name"] for b in env.list("Build"))


def image(env: Env, name: str = "base") -> None:
    env.create("Image", {"metadata": {"name": name}, "spec": {"repository": BASE, "tag": "latest"}})


def resolve(env: Env, digest: str, name: str = "base") -> None:
    """Write what the Image controller writes when the tag moves to ``digest``."""
    env.patch_status(
        "Image",
        name,
        {
            "latestImage": f"{BASE}@{digest}",
            "latestDigest": digest,
            "latestTag": "latest",
            "lastScanTime": runtime.now_rfc3339(),
        },
    )


IMAGE_TRIGGER: dict[str, Any] = {"type": "ImageChange", "imageChange": {"from": {"kind": "Image", "name": "base"}}}


def test_config_change_builds_once_per_generation(env: Env, configs: BuildConfigController) -> None:
    env.create("BuildConfig", config(triggers=[{"type": "ConfigChange"}]))
    env.wait(lambda: build_names(env) == ["app-1"], "the ConfigChange build")
    build = env.get("Build", "app-1")
    assert build["metadata"]["annotations"][TRIGGER_ANNOTATION] == "config-change/1"
    assert build["spec"]["triggeredBy"] == [{"message": "Build configuration change"}]
    env.wait_for(
        "BuildConfig", "app", lambda c: status(c).get("lastConfigChangeGeneration") == 1, "lastConfigChangeGeneration 1"
    )
    # metadata-only changes do not bump generation: no build
    env.patch("BuildConfig", "app", {"metadata": {"labels": {"team": "a"}}})
    assert env.settled(lambda: build_names(env)) == ["app-1"]
    # a spec change does
    env.patch("BuildConfig", "app", {"spec": {"completionDeadlineSeconds": 600}})
    env.wait(lambda: build_names(env) == ["app-1", "app-2"], "a build for generation 2")
    assert env.get("Build", "app-2")["metadata"]["annotations"][TRIGGER_ANNOTATION] == "config-change/2"
    assert env.settled(lambda: build_names(env)) == ["app-1", "app-2"]


def test_no_trigger_no_build(env: Env, configs: BuildConfigController) -> None:
    env.create("BuildConfig", config())
    image(env)
    resolve(env, D1)
    assert env.settled(lambda: build_names(env)) == []


def test_image_change_builds_from_the_new_image(env: Env, configs: BuildConfigController) -> None:
    image(env)
    env.create("BuildConfig", config(triggers=[IMAGE_TRIGGER]))
    assert env.settled(lambda: build_names(env)) == []  # no latestImage yet: nothing to build from
    resolve(env, D1)
    env.wait(lambda: build_names(env) == ["app-1"], "a build for the first image")
    first = env.get("Build", "app-1")
    assert first["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "DockerImage", "name": f"{BASE}@{D1}"}
    assert first["spec"]["triggeredBy"][0]["imageChangeBuild"] == {
        "imageID": f"{BASE}@{D1}",
        "fromRef": {"kind": "Image", "name": "base"},
    }
    assert first["metadata"]["annotations"][TRIGGER_ANNOTATION] == f"image-change/{D1}"
    env.wait_for(
        "BuildConfig",
        "app",
        lambda c: (
            [e.get("lastTriggeredImageID") for e in status(c).get("imageChangeTriggers") or []] == [f"{BASE}@{D1}"]
        ),
        "lastTriggeredImageID recorded",
    )

    # the same digest scanned again: no build
    resolve(env, D1)
    assert env.settled(lambda: build_names(env)) == ["app-1"]

    resolve(env, D2)
    env.wait(lambda: build_names(env) == ["app-1", "app-2"], "a build for the new image")
    second = env.get("Build", "app-2")
    assert second["spec"]["strategy"]["dockerStrategy"]["from"]["name"] == f"{BASE}@{D2}"
    assert env.settled(lambda: build_names(env)) == ["app-1", "app-2"]


def test_config_and_image_change_build_once_on_creation(env: Env, configs: BuildConfigController) -> None:
    image(env)
    resolve(env, D1)
    env.create("BuildConfig", config(triggers=[{"type": "ConfigChange"}, IMAGE_TRIGGER]))
    # the first resolution of the image is only recorded: the ConfigChange build covers it
    env.wait(lambda: build_names(env) == ["app-1"], "the ConfigChange build")
    env.wait_for(
        "BuildConfig",
        "app",
        lambda c: (
            [e.get("lastTriggeredImageID") for e in status(c).get("imageChangeTriggers") or []] == [f"{BASE}@{D1}"]
        ),
        "the image recorded",
    )
    assert env.settled(lambda: build_names(env)) == ["app-1"]
    resolve(env, D2)
    env.wait(lambda: build_names(env) == ["app-1", "app-2"], "the ImageChange build")
    assert env.get("Build", "app-2")["metadata"]["annotations"][TRIGGER_ANNOTATION] == f"image-change/{D2}"


def test_an_image_of_another_name_triggers_nothing(env: Env, configs: BuildConfigController) -> None:
    image(env)
    image(env, "other")
    env.create("BuildConfig", config(triggers=[IMAGE_TRIGGER]))
    resolve(env, D1, name="other")
    assert env.settled(lambda: build_names(env)) == []


def test_an_image_trigger_follows_only_an_image_it_names(env: Env, configs: BuildConfigController) -> None:
    """OpenShift's default ``imageChange`` (no ``from``: the strategy's ImageStreamTag) follows
    ``dockerStrategy.from`` only when that names an Image (kind Image; see test_build_controller_image_refs.py):
    beside a registry reference, or no ``from``, an ImageChange trigger names its Image, and a trigger that could
    never fire is refused (422 naming the field), not stored and left waiting."""
    refused = {
        "spec.triggers[0].imageChange": [{"type": "ImageChange"}],
        "spec.triggers[0].imageChange.from": [{"type": "ImageChange", "imageChange": {}}],
        "spec.triggers[0].imageChange.from.kind": [
            {"type": "ImageChange", "imageChange": {"from": {"kind": "DockerImage", "name": "base"}}}
        ],
        "spec.strategy.dockerStrategy.from.kind": [IMAGE_TRIGGER],
    }
    for field, triggers in refused.items():
        body = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "BuildConfig", **config(triggers=triggers)}
        if field.startswith("spec.strategy"):
            from_ = {"kind": "ImageStreamTag", "name": "base:latest"}
            body["spec"]["strategy"] = {"type": "Docker", "dockerStrategy": {"from": from_}}
        resp = env.http.post(f"/apis/dockyard.dev/v1alpha1/namespaces/{env.ns}/buildconfigs", json=body)
        assert resp.status_code == 422, resp.text
        assert [c["field"] for c in resp.json()["details"]["causes"]] == [field], resp.text
    assert env.list("BuildConfig") == []
