"""The Image controller against the API server and a real CNCF ``docker-registry`` on 127.0.0.1.

Images are pushed with the OCI distribution API itself (a config blob and an image
manifest, "Pushing blobs" / "Pushing manifests"), so no engine is needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dockyard.api import labels
from dockyard.client import runtime
from dockyard.controllers.image import ImageController
from dockyard.registry import server

from .conftest import Env, condition, status

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push(
    registry: server.RegistryServer, repository: str, tag: str, label: str, *, auth: tuple[str, str] | None = None
) -> str:
    """Push a one-config, no-layer OCI image to ``repository:tag``; returns its manifest digest."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"v": label}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with httpx.Client(base_url=registry.url, timeout=10, auth=auth) as http:
        start = http.post(f"/v2/{repository}/blobs/uploads/")
        assert start.status_code == 202, start.text
        # the Location keeps its own query (the upload's state): add the digest to it
        location = httpx.URL(start.headers["Location"]).copy_merge_params({"digest": config_digest})
        upload = http.put(location, content=config, headers={"Content-Type": "application/octet-stream"})
        assert upload.status_code == 201, upload.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "layers": [],
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
            }
        ).encode()
        put = http.put(f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert put.status_code == 201, put.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.fixture
def images(run_controller: Callable[..., runtime.Controller]) -> ImageController:
    return run_controller(ImageController)  # type: ignore[return-value]


@pytest.fixture
def repo(registry_server: server.RegistryServer, request: pytest.FixtureRequest) -> str:
    """A repository of its own for each test in the shared registry: ``127.0.0.1:PORT/ctrl/<test>``."""
    return f"{registry_server.address}/ctrl/{request.node.name.lower().replace('_', '-')[:60]}"


def image(env: Env, repo: str, *, interval: str = "1h", tag: str = "latest") -> None:
    env.create("Image", {"metadata": {"name": "app"}, "spec": {"repository": repo, "tag": tag, "interval": interval}})


def latest(env: Env) -> str | None:
    return status(env.get("Image", "app")).get("latestImage")


def test_image_resolves_the_tags_digest(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    digest = push(registry_server, repo.split("/", 1)[1], "latest", "1")
    image(env, repo)
    env.wait(lambda: latest(env) == f"{repo}@{digest}", "latestImage")
    got = env.get("Image", "app")
    st = status(got)
    assert (st["latestDigest"], st["latestTag"], st["observedGeneration"]) == (
        digest,
        "latest",
        got["metadata"]["generation"],
    )
    assert st["lastScanTime"]
    ready = condition(got, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Resolved")
    env.wait(lambda: any(e["reason"] == "ImageResolved" for e in env.list("Event")), "an ImageResolved event")


def test_missing_tag_is_not_ready_then_resolves_on_the_next_poll(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    image(env, repo, interval="1s")
    failed = env.wait_for("Image", "app", lambda o: condition(o, "Ready").get("status") == "False", "Ready False")
    assert condition(failed, "Ready")["reason"] == "ManifestUnknown"
    assert "latestImage" not in status(failed)
    env.wait(lambda: any(e["reason"] == "ScanFailed" for e in env.list("Event")), "a ScanFailed event")
    digest = push(registry_server, repo.split("/", 1)[1], "latest", "1")
    env.wait(lambda: latest(env) == f"{repo}@{digest}", "latestImage after the poll interval", timeout=5)
    assert condition(env.get("Image", "app"), "Ready")["status"] == "True"


def test_a_complete_build_of_the_tag_rescans_at_once(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    first = push(registry_server, repo.split("/", 1)[1], "latest", "1")
    image(env, repo)  # polls only hourly: only the Build can explain a rescan
    env.wait(lambda: latest(env) == f"{repo}@{first}", "the first digest")
    images.quiet()  # the echo of its own status write has been reconciled too
    before = images.reconciles
    second = push(registry_server, repo.split("/", 1)[1], "latest", "2")
    env.create(
        "Build",
        {
            "metadata": {"name": "app-1"},
            "spec": {
                "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
                "output": {"to": {"kind": "DockerImage", "name": f"{repo}:latest"}},
            },
        },
    )
    # a Build that is not Complete enqueues nothing
    assert env.settled(lambda: (latest(env), images.reconciles)) == (f"{repo}@{first}", before)
    env.patch_status(
        "Build",
        "app-1",
        {
            "phase": "Complete",
            "outputDockerImageReference": f"{repo}:latest",
            "output": {"to": {"imageDigest": second}},
        },
    )
    env.wait(lambda: latest(env) == f"{repo}@{second}", "the digest the build pushed")


def test_a_succeeded_push_of_the_tag_rescans_at_once(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    first = push(registry_server, repo.split("/", 1)[1], "latest", "1")
    image(env, repo)
    env.wait(lambda: latest(env) == f"{repo}@{first}", "the first digest")
    images.quiet()
    second = push(registry_server, repo.split("/", 1)[1], "latest", "2")
    env.create("Push", {"metadata": {"name": "snap"}, "spec": {"podName": "web", "image": f"{repo}:latest"}})
    env.patch_status("Push", "snap", {"phase": "Succeeded", "imageDigest": second})
    env.wait(lambda: latest(env) == f"{repo}@{second}", "the digest the push wrote")


def test_a_build_of_another_tag_does_not_rescan(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    first = push(registry_server, repo.split("/", 1)[1], "latest", "1")
    image(env, repo)
    env.wait(lambda: latest(env) == f"{repo}@{first}", "the first digest")
    images.quiet()
    before = images.reconciles
    push(registry_server, repo.split("/", 1)[1], "latest", "2")
    env.create(
        "Build",
        {
            "metadata": {"name": "app-1"},
            "spec": {
                "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
                "output": {"to": {"kind": "DockerImage", "name": f"{repo}:v2"}},
            },
        },
    )
    env.patch_status("Build", "app-1", {"phase": "Complete", "outputDockerImageReference": f"{repo}:v2"})
    assert env.settled(lambda: (latest(env), images.reconciles)) == (f"{repo}@{first}", before)


def policy_image(env: Env, repo: str, policy: dict[str, Any], **extra: Any) -> None:
    env.create(
        "Image",
        {"metadata": {"name": "app"}, "spec": {"repository": repo, "interval": "1h", "policy": policy, **extra}},
    )


def request_reconcile(env: Env, value: str) -> None:
    """What the notification endpoint does: a new ``dockyard.dev/reconcile-requested-at`` value."""
    env.patch("Image", "app", {"metadata": {"annotations": {labels.RECONCILE_REQUESTED_AT: value}}})


def test_a_semver_policy_follows_the_highest_version_in_range(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    path = repo.split("/", 1)[1]
    digests = {tag: push(registry_server, path, tag, tag) for tag in ("v1.0.0", "v1.2.0", "v2.0.0", "latest")}
    policy_image(env, repo, {"semver": {"range": ">=1.0.0 <2.0.0"}})
    got = env.wait_for("Image", "app", lambda o: status(o).get("latestTag") == "v1.2.0", "the highest 1.x tag")
    st = status(got)
    assert (st["latestImage"], st["latestDigest"], st["tagCount"]) == (
        f"{repo}@{digests['v1.2.0']}",
        digests["v1.2.0"],
        4,
    )
    assert "observedPreviousImage" not in st
    digests["v1.3.0"] = push(registry_server, path, "v1.3.0", "v1.3.0")
    request_reconcile(env, "2026-01-01T00:00:00Z")  # polls hourly: only the request explains a rescan
    got = env.wait_for("Image", "app", lambda o: status(o).get("latestTag") == "v1.3.0", "the new 1.x tag")
    st = status(got)
    assert st["latestImage"] == f"{repo}@{digests['v1.3.0']}"
    assert st["observedPreviousImage"] == f"{repo}@{digests['v1.2.0']}"
    assert st["lastHandledReconcileAt"] == "2026-01-01T00:00:00Z"
    assert st["tagCount"] == 5


def test_numerical_policy_with_filter_tags_extract(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    path = repo.split("/", 1)[1]
    digests = {t: push(registry_server, path, t, t) for t in ("main-aaa-99", "main-bbb-100", "dev-ccc-999", "latest")}
    policy_image(
        env,
        repo,
        {"numerical": {"order": "asc"}},
        filterTags={"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
    )
    got = env.wait_for("Image", "app", lambda o: status(o).get("latestTag") == "main-bbb-100", "main-bbb-100")
    assert status(got)["latestDigest"] == digests["main-bbb-100"]


def test_alphabetical_desc_and_a_failing_numerical_policy(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    path = repo.split("/", 1)[1]
    for t in ("b", "a", "c"):
        push(registry_server, path, t, t)
    policy_image(env, repo, {"numerical": {"order": "asc"}})  # 'a' is not a number: Flux fails the policy
    failed = env.wait_for("Image", "app", lambda o: condition(o, "Ready").get("status") == "False", "Ready False")
    assert condition(failed, "Ready")["reason"] == "PolicyFailed"
    assert "is not a number" in condition(failed, "Ready")["message"]
    env.patch("Image", "app", {"spec": {"policy": {"numerical": None, "alphabetical": {"order": "desc"}}}})
    env.wait_for("Image", "app", lambda o: status(o).get("latestTag") == "a", "the first tag in alphabetical order")
    assert condition(env.get("Image", "app"), "Ready")["status"] == "True"


def test_no_tag_matching_is_not_ready(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    push(registry_server, repo.split("/", 1)[1], "latest", "1")
    policy_image(env, repo, {"semver": {"range": "^3"}})
    failed = env.wait_for("Image", "app", lambda o: condition(o, "Ready").get("status") == "False", "Ready False")
    assert condition(failed, "Ready")["reason"] == "NoMatchingTag"
    assert status(failed)["tagCount"] == 1


def test_a_builds_own_tag_is_never_picked_by_a_policy(
    env: Env, images: ImageController, repo: str, registry_server: server.RegistryServer
) -> None:
    """A Build pushes under ``dockyard-build-<name>-<uid>`` before it moves the output tag (see agent/builds.py):
    alphabetically it sorts after "2.0", but it is no release."""
    path = repo.split("/", 1)[1]
    for t in ("1.0", "2.0", "dockyard-build-app-1-0123abcd"):
        push(registry_server, path, t, t)
    policy_image(env, repo, {"alphabetical": {"order": "asc"}})
    done = env.wait_for("Image", "app", lambda o: status(o).get("latestTag") is not None, "a tag picked")
    assert status(done)["latestTag"] == "2.0"
    assert status(done)["tagCount"] == 2
