"""Registry notification endpoints of the API server, attacked: who may post, what is read, what it changes.

``POST /registry/notifications`` (distribution envelope, the registry-notifier token) and
``POST /registry/notifications/namespaces/NS/images/NAME`` (generic form, the Image's own token).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dockyard.api import labels

from .conftest import ApiServer

NOTIFY_TOKEN = "registry-notifier-token-0123456789"
REG = "127.0.0.1:5999"
ENVELOPE = "application/vnd.docker.distribution.events.v1+json"
IMAGES = "/apis/dockyard.dev/v1alpha1/namespaces/default/images"


@pytest.fixture
def server(apiserver_factory: Callable[..., ApiServer]) -> ApiServer:
    return apiserver_factory(registry_notifier_token=NOTIFY_TOKEN)


def envelope(repository: str, tag: str | None = "latest", *, host: str = REG, action: str = "push") -> dict[str, Any]:
    target: dict[str, Any] = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "repository": repository,
        "digest": "sha256:" + "a" * 64,
    }
    if tag is not None:
        target["tag"] = tag
    return {"events": [{"id": "1", "action": action, "target": target, "request": {"host": host, "method": "PUT"}}]}


def post(server: ApiServer, body: Any, *, token: str | None = NOTIFY_TOKEN, raw: bytes | None = None) -> httpx.Response:
    with server.client(token=token) as http:
        content = raw if raw is not None else json.dumps(body).encode()
        return http.post("/registry/notifications", content=content, headers={"Content-Type": ENVELOPE})


def make_image(server: ApiServer, name: str, spec: dict[str, Any]) -> None:
    with server.client() as http:
        r = http.post(
            IMAGES,
            json={"apiVersion": "dockyard.dev/v1alpha1", "kind": "Image", "metadata": {"name": name}, "spec": spec},
        )
        assert r.status_code == 201, r.text


def requested(server: ApiServer, name: str) -> str | None:
    with server.client() as http:
        obj = http.get(f"{IMAGES}/{name}").json()
    return (obj["metadata"].get("annotations") or {}).get(labels.RECONCILE_REQUESTED_AT)


def test_a_push_annotates_exactly_the_images_tracking_it(server: ApiServer) -> None:
    make_image(server, "app", {"repository": f"{REG}/team/app"})
    make_image(server, "app-v2", {"repository": f"{REG}/team/app", "tag": "v2"})
    make_image(server, "policy", {"repository": "localhost:5999/team/app", "policy": {"semver": {"range": "^1"}}})
    make_image(server, "other-registry", {"repository": "127.0.0.1:6000/team/app"})
    make_image(server, "other-repo", {"repository": f"{REG}/team/other"})
    r = post(server, envelope("team/app", "latest"))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "Success"
    assert requested(server, "app") and requested(server, "policy")  # localhost and 127.0.0.1: one registry
    assert requested(server, "app-v2") is None  # another tag
    assert requested(server, "other-registry") is None
    assert requested(server, "other-repo") is None
    first = requested(server, "app")
    assert post(server, envelope("team/app", "latest")).status_code == 202
    assert requested(server, "app") != first  # each push is a new request (microsecond stamps)


def test_untracked_pulls_blobs_and_untagged_pushes_are_accepted_and_do_nothing(server: ApiServer) -> None:
    make_image(server, "app", {"repository": f"{REG}/team/app"})
    for body in (
        envelope("nobody/tracks"),
        envelope("team/app", action="pull"),
        envelope("team/app", tag=None),
        {"events": []},
    ):
        r = post(server, body)
        assert r.status_code == 202, r.text
    assert requested(server, "app") is None


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, 401), ("wrong-token-0123456789", 401), ("test-view-token-0123456789", 403)],
)
def test_only_the_notifier_and_admin_may_post(server: ApiServer, token: str | None, code: int) -> None:
    make_image(server, "app", {"repository": f"{REG}/team/app"})
    r = post(server, envelope("team/app"), token=token)
    assert r.status_code == code, r.text
    assert "app" not in r.text and "team" not in r.text  # nothing about which Images exist
    assert requested(server, "app") is None
    assert post(server, envelope("team/app"), token="test-token-0123456789").status_code == 202  # admin


def test_the_notifier_token_opens_nothing_else(server: ApiServer) -> None:
    with server.client(token=NOTIFY_TOKEN) as http:
        assert http.get("/api/v1/namespaces/default/secrets").status_code == 403
        assert http.get(IMAGES).status_code == 403
        assert http.post(IMAGES, json={}).status_code == 403


def test_bad_bodies(server: ApiServer) -> None:
    assert post(server, None, raw=b"{not json").status_code == 400
    assert post(server, None, raw=b"x" * (4 * 1024 * 1024 + 1)).status_code == 413
    r = post(server, {"events": "no"})
    assert (r.status_code, r.json()["details"]["causes"][0]["field"]) == (400, "events")
    bad_tag = envelope("team/app", "bad tag!")
    r = post(server, bad_tag)
    assert (r.status_code, r.json()["details"]["causes"][0]["field"]) == (400, "events[0].target.tag")
    r = post(server, {"events": [{"action": "push", "target": {"repository": 5}}]})
    assert (r.status_code, r.json()["details"]["causes"][0]["field"]) == (400, "events[0].target.repository")


# --- the generic, per-Image form ------------------------------------------------------------------


def generic(server: ApiServer, name: str, body: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with server.client(token=None) as http:
        return http.post(f"/registry/notifications/namespaces/default/images/{name}", json=body, headers=headers)


def make_secret(server: ApiServer, name: str, token: str) -> None:
    with server.client() as http:
        r = http.post(
            "/api/v1/namespaces/default/secrets",
            json={
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "data": {"token": base64.b64encode(token.encode()).decode()},
            },
        )
        assert r.status_code == 201, r.text


def test_generic_form_with_the_images_own_token(server: ApiServer) -> None:
    make_secret(server, "hook", "per-image-token-123")
    make_image(server, "app", {"repository": f"{REG}/team/app", "notificationSecretRef": {"name": "hook"}})
    make_image(server, "bare", {"repository": f"{REG}/team/app"})  # no notificationSecretRef
    make_image(server, "lost", {"repository": f"{REG}/team/app", "notificationSecretRef": {"name": "missing"}})
    body = {"repository": f"{REG}/team/app", "tag": "latest", "digest": "sha256:" + "b" * 64}
    assert generic(server, "app", body, None).status_code == 401
    refusals = [
        generic(server, "app", body, "wrong"),
        generic(server, "nosuchimage", body, "per-image-token-123"),
        generic(server, "bare", body, "per-image-token-123"),
        generic(server, "lost", body, "per-image-token-123"),
    ]
    assert {r.status_code for r in refusals} == {403}
    assert len({r.json()["message"] for r in refusals}) == 1  # the same answer whatever was wrong
    assert requested(server, "app") is None
    assert generic(server, "app", {"repository": f"{REG}/team/other"}, "per-image-token-123").status_code == 202
    assert requested(server, "app") is None  # not its repository
    r = generic(server, "app", {"repository": "team/app", "tag": "latest"}, "per-image-token-123")
    assert r.status_code == 202, r.text
    assert requested(server, "app") is not None
    assert requested(server, "bare") is None  # only the Image named
    r = generic(server, "app", {"repository": "team/app", "digest": "sha256:nothex"}, "per-image-token-123")
    assert (r.status_code, r.json()["details"]["causes"][0]["field"]) == (400, "digest")
