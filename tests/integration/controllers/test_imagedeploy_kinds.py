"""``ImageDeploy.spec.imageRef.apiVersion``/``kind``: any kind with ``status.latestImage`` is followed through
discovery and a dynamic informer (as kpush follows kpack's Images); a kind the server does not serve is named
in the Ready condition and looked at again; bad values are refused with a 422 naming the field.

The embedded server serves no kpack kind, so the followed kind here is another served kind that carries
``status.latestImage``: a staging ImageDeploy (a promotion chain: production follows what staging deploys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dockyard.controllers.imagedeploy import KIND_NOT_SERVED, ImageDeployController

from .conftest import Env, Tracking, condition, status
from .test_imagedeploy_controller import D1, D2, REPO, deployment_spec, image, images_of, ready

KPACK = {"apiVersion": "kpack.io/v1alpha2", "kind": "Image"}


@pytest.fixture
def deploys(run_controller: Callable[..., Tracking]) -> Tracking:
    return run_controller(ImageDeployController)


def imagedeploy(env: Env, name: str, image_ref: dict[str, Any]) -> dict[str, Any]:
    return env.create(
        "ImageDeploy",
        {
            "metadata": {"name": name},
            "spec": {"imageRef": image_ref, "containerName": "web", "deployment": deployment_spec()},
        },
    )


def test_a_kind_the_server_does_not_serve_is_named_and_looked_at_again(env: Env, deploys: Tracking) -> None:
    deploys.NOT_SERVED_RECHECK = 0.3  # type: ignore[misc]
    deploys.DISCOVERY_TTL = 0.0  # type: ignore[misc]
    imagedeploy(env, "hello", {"name": "hello", **KPACK})
    got = env.wait_for("ImageDeploy", "hello", lambda o: ready(o)[1] == KIND_NOT_SERVED, KIND_NOT_SERVED)
    assert condition(got, "Ready")["status"] == "False"
    assert condition(got, "Ready")["message"] == "kpack.io/v1alpha2 Image is not served by this API server"
    before = deploys.reconciles
    env.wait(lambda: deploys.reconciles >= before + 2, "the ImageDeploy reconciled again (discovery re-asked)")
    assert env.get("Deployment", "hello") is None
    assert "kpack.io/v1alpha2/Image" not in {str(g) for g in deploys.dynamic_informers}


def test_another_served_kind_with_status_latest_image_is_followed(env: Env, deploys: Tracking) -> None:
    image(env, D1)
    imagedeploy(env, "staging", {"name": "hello"})  # follows the dockyard Image (default kind)
    imagedeploy(env, "prod", {"name": "staging", "apiVersion": "dockyard.dev/v1alpha1", "kind": "ImageDeploy"})
    env.wait_for("Deployment", "prod", lambda d: images_of(d)["web"] == f"{REPO}@{D1}", "prod on D1")
    assert any(g.kind == "ImageDeploy" for g in deploys.dynamic_informers)
    image(env, D2)  # staging moves to D2 and prod follows staging's status.latestImage
    env.wait_for("Deployment", "staging", lambda d: images_of(d)["web"] == f"{REPO}@{D2}", "staging on D2")
    env.wait_for("Deployment", "prod", lambda d: images_of(d)["web"] == f"{REPO}@{D2}", "prod on D2")
    env.wait_for("ImageDeploy", "prod", lambda o: status(o).get("latestImage") == f"{REPO}@{D2}", "prod status")


def test_a_followed_object_of_another_kind_that_is_missing_is_reported(env: Env, deploys: Tracking) -> None:
    imagedeploy(env, "prod", {"name": "nowhere", "apiVersion": "dockyard.dev/v1alpha1", "kind": "ImageDeploy"})
    got = env.wait_for("ImageDeploy", "prod", lambda o: ready(o)[1] == "ImageNotResolved", "ImageNotResolved")
    assert condition(got, "Ready")["message"] == "ImageDeploy 'nowhere' not found"


def test_the_default_kind_given_explicitly_is_followed(env: Env, deploys: Tracking) -> None:
    image(env, D1)
    imagedeploy(env, "hello", {"name": "hello", "apiVersion": "dockyard.dev/v1alpha1", "kind": "Image"})
    env.wait_for("Deployment", "hello", lambda d: images_of(d)["web"] == f"{REPO}@{D1}", "on D1")
    image(env, D2)
    env.wait_for("Deployment", "hello", lambda d: images_of(d)["web"] == f"{REPO}@{D2}", "on D2")


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        ({"apiVersion": "kpack.io"}, "spec.imageRef.apiVersion"),
        ({"apiVersion": "kpack.io/v1/alpha"}, "spec.imageRef.apiVersion"),
        ({"apiVersion": "Kpack.IO/v1alpha2"}, "spec.imageRef.apiVersion"),
        ({"kind": "image"}, "spec.imageRef.kind"),
        ({"kind": "Image.kpack"}, "spec.imageRef.kind"),
    ],
)
def test_a_bad_api_version_or_kind_is_refused_naming_the_field(env: Env, ref: dict[str, str], field: str) -> None:
    resp = env.http.post(
        f"/apis/dockyard.dev/v1alpha1/namespaces/{env.ns}/imagedeploys",
        json={
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "ImageDeploy",
            "metadata": {"name": "hello"},
            "spec": {"imageRef": {"name": "hello", **ref}, "deployment": deployment_spec()},
        },
    )
    assert resp.status_code == 422, resp.text
    assert [c["field"] for c in resp.json()["details"]["causes"]] == [field]
