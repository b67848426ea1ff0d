"""``kind: Image`` in ``output.to`` and ``dockerStrategy.from``: resolved by the build controller when a Build starts.

OpenShift's build controller resolves an ImageStreamTag output when it creates the build pod and records it in
``status.outputDockerImageReference``, what its builder pushes to; an ImageStreamTag ``from`` becomes the
``DockerImage`` it names. Here the Image of the Build's namespace stands for the ImageStreamTag:

- ``output.to: {kind: Image, name}`` → ``spec.repository:spec.tag`` (tag default ``latest``); an Image that chooses
  its tag by ``spec.policy`` has no single tag to push, and a missing Image nothing: the Build fails with reason
  ``InvalidOutputReference``, no pod made;
- ``dockerStrategy.from: {kind: Image, name}`` → the Image's ``status.latestImage`` (repository@digest), written on
  the Build as ``{kind: DockerImage, name: repository@digest}`` (as an ImageChange build's), or reason
  ``InvalidImageReference`` when the Image is missing or has no digest yet.

The first tests play the node agent (writing the build pod's status); the last runs the build pod's Build for
real with :func:`dockyard.agent.builds.run_build` on Podman, pushing to a real registry, with the Image controller
running: the pushed digest is the Build's and the Image's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.agent import builds as agent_builds
from dockyard.api import buildpod
from dockyard.api import objects as api_objects
from dockyard.client import runtime
from dockyard.controllers.build import BuildController
from dockyard.controllers.buildconfig import BuildConfigController
from dockyard.controllers.image import ImageController
from dockyard.registry import server
from integration.test_build_digests import ListSink

from .conftest import Env, status
from .test_build_controller import OK, config, pod_finished, pod_running

REPO = "127.0.0.1:5000/team/app"
BASE = "127.0.0.1:5000/team/base"
DIGEST = "sha256:" + "cd" * 32
TO_IMAGE = {"to": {"kind": "Image", "name": "app"}}
FROM_IMAGE = {"type": "Docker", "dockerStrategy": {"from": {"kind": "Image", "name": "base"}}}


@pytest.fixture
def builds(run_controller: Callable[..., runtime.Controller]) -> BuildController:
    return run_controller(BuildController)  # type: ignore[return-value]


def image(env: Env, name: str, repository: str, **spec: Any) -> None:
    env.create("Image", {"metadata": {"name": name}, "spec": {"repository": repository, "interval": "1h", **spec}})


def resolved(env: Env, name: str, repository: str, digest: str) -> None:
    """Write what the Image controller writes when it finds ``digest``."""
    env.patch_status("Image", name, {"latestImage": f"{repository}@{digest}", "latestDigest": digest})


def payload(env: Env, build: str) -> dict[str, Any]:
    pod = env.get("Pod", buildpod.pod_name(build))
    assert pod is not None
    return buildpod.build_from_pod(pod)


def failed(env: Env, build: str, reason: str) -> dict[str, Any]:
    done = env.wait_phase("Build", build, "Failed")
    assert status(done)["reason"] == reason, status(done)
    assert env.get("Pod", buildpod.pod_name(build)) is None
    return status(done)


def test_output_to_an_image_pushes_to_its_repository_and_tag(env: Env, builds: BuildController) -> None:
    image(env, "app", REPO, tag="v2")
    env.create("BuildConfig", config(output=TO_IMAGE))
    name = env.instantiate("app")["metadata"]["name"]
    pending = env.wait_phase("Build", name, "Pending")
    assert status(pending)["outputDockerImageReference"] == f"{REPO}:v2"
    assert pending["spec"]["output"]["to"] == {"kind": "Image", "name": "app"}  # the spec keeps what was asked
    # the builder pushes to the recorded reference (OpenShift's builder: status.outputDockerImageReference)
    carried = api_objects.Build.model_validate({"kind": "Build", **payload(env, name)})
    assert carried.status.outputDockerImageReference == f"{REPO}:v2"
    pod_running(env, name)
    pod_finished(env, name, OK)
    done = env.wait_phase("Build", name, "Complete")
    assert status(done)["outputDockerImageReference"] == f"{REPO}:v2"
    assert status(done)["output"]["to"]["imageDigest"] == OK.image_digest


def test_output_to_an_image_without_a_tag_pushes_latest(env: Env, builds: BuildController) -> None:
    image(env, "app", REPO)
    env.create("BuildConfig", config(output=TO_IMAGE))
    name = env.instantiate("app")["metadata"]["name"]
    assert status(env.wait_phase("Build", name, "Pending"))["outputDockerImageReference"] == f"{REPO}:latest"


def test_output_to_an_image_with_a_tag_policy_fails_the_build(env: Env, builds: BuildController) -> None:
    image(env, "app", REPO, policy={"semver": {"range": ">=1.0.0"}})
    env.create("BuildConfig", config(output=TO_IMAGE))
    name = env.instantiate("app")["metadata"]["name"]
    st = failed(env, name, "InvalidOutputReference")
    assert "app" in st["message"] and "policy" in st["message"] and "kind: DockerImage" in st["message"], st
    assert "outputDockerImageReference" not in st


def test_output_to_a_missing_image_fails_the_build(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(output={"to": {"kind": "Image", "name": "nowhere"}}))
    name = env.instantiate("app")["metadata"]["name"]
    st = failed(env, name, "InvalidOutputReference")
    assert '"nowhere"' in st["message"] and "not found" in st["message"], st


def test_from_an_image_builds_from_its_latest_digest(env: Env, builds: BuildController) -> None:
    image(env, "base", BASE)
    resolved(env, "base", BASE, DIGEST)
    env.create("BuildConfig", config(strategy=FROM_IMAGE))
    name = env.instantiate("app")["metadata"]["name"]
    pending = env.wait_phase("Build", name, "Pending")
    used = {"kind": "DockerImage", "name": f"{BASE}@{DIGEST}"}
    assert pending["spec"]["strategy"]["dockerStrategy"]["from"] == used  # recorded on the Build
    assert payload(env, name)["spec"]["strategy"]["dockerStrategy"]["from"] == used  # what the builder uses
    assert status(pending)["outputDockerImageReference"] == config()["spec"]["output"]["to"]["name"]


def test_from_an_image_without_a_digest_fails_the_build(env: Env, builds: BuildController) -> None:
    image(env, "base", BASE)
    env.create("BuildConfig", config(strategy=FROM_IMAGE))
    name = env.instantiate("app")["metadata"]["name"]
    st = failed(env, name, "InvalidImageReference")
    assert '"base"' in st["message"] and "latestImage" in st["message"], st


def test_from_a_missing_image_fails_the_build(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(strategy=FROM_IMAGE))
    name = env.instantiate("app")["metadata"]["name"]
    st = failed(env, name, "InvalidImageReference")
    assert '"base"' in st["message"] and "not found" in st["message"], st


# --- ImageChange without from: the strategy's Image (OpenShift's default) ------------------------------------


@pytest.fixture
def configs(run_controller: Callable[..., runtime.Controller]) -> BuildConfigController:
    return run_controller(BuildConfigController)  # type: ignore[return-value]


def build_names(env: Env) -> list[str]:
    return sorted(b["metadata"]["name"] for b in env.list("Build"))


def test_an_image_change_trigger_without_from_follows_the_strategy_image(
    env: Env, configs: BuildConfigController
) -> None:
    image(env, "base", BASE)
    env.create("BuildConfig", config(strategy=FROM_IMAGE, triggers=[{"type": "ImageChange", "imageChange": {}}]))
    assert env.settled(lambda: build_names(env)) == []
    resolved(env, "base", BASE, DIGEST)
    env.wait(lambda: build_names(env) == ["app-1"], "a build for the strategy's Image")
    build = env.get("Build", "app-1")
    assert build["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "DockerImage", "name": f"{BASE}@{DIGEST}"}
    assert build["spec"]["triggeredBy"][0]["imageChangeBuild"]["fromRef"] == {"kind": "Image", "name": "base"}
    entries = env.wait_for(
        "BuildConfig", "app", lambda c: bool(status(c).get("imageChangeTriggers")), "the trigger's status"
    )
    assert status(entries)["imageChangeTriggers"][0]["from"] == {"kind": "Image", "name": "base"}


def test_a_config_change_build_waits_for_the_strategy_image_to_resolve(
    env: Env, configs: BuildConfigController
) -> None:
    """As OpenShift's config-change build waits for its ImageStreamTag: started before the Image has a digest, it
    could only fail; it starts once the Image resolves, and the ImageChange trigger only records that digest."""
    image(env, "base", BASE)
    triggers = [{"type": "ConfigChange"}, {"type": "ImageChange", "imageChange": {}}]
    env.create("BuildConfig", config(strategy=FROM_IMAGE, triggers=triggers))
    assert env.settled(lambda: build_names(env)) == []
    resolved(env, "base", BASE, DIGEST)
    env.wait(lambda: build_names(env) == ["app-1"], "the ConfigChange build")
    assert env.get("Build", "app-1")["spec"]["triggeredBy"] == [{"message": "Build configuration change"}]
    assert env.settled(lambda: build_names(env)) == ["app-1"]


# --- a real build: Podman, a registry, the Image controller ---------------------------------------------------


def run_build_pod(env: Env, build: str, engine: Any, tmp_path: Path) -> buildpod.BuildResult:
    """What the node agent and its builder do with the build pod: run its Build, write the pod's end."""
    pod = env.wait(lambda: env.get("Pod", buildpod.pod_name(build)), "the build pod")
    carried = api_objects.Build.model_validate(buildpod.build_from_pod(pod))
    scratch = tmp_path / f"scratch-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    sink = ListSink()
    pod_running(env, build)
    result = agent_builds.run_build(engine.client, carried, sink, agent_builds.BuildInputs(scratch=scratch))
    assert result.succeeded, (result.reason, result.message, sink.lines[-20:])
    pod_finished(env, build, result)
    return result


def test_a_build_from_and_to_images_pushes_where_the_image_says(
    env: Env,
    run_controller: Callable[..., runtime.Controller],
    podman_engine: Any,
    registry_server: server.RegistryServer,
    busybox_image: tuple[str, str],
    tmp_path: Path,
) -> None:
    run_controller(BuildController)
    run_controller(ImageController)
    busybox, busybox_digest = busybox_image
    base_repo = busybox.rsplit(":", 1)[0]
    app_repo = f"{registry_server.address}/{env.ns}/app"
    image(env, "base", base_repo, tag=busybox.rsplit(":", 1)[1])
    image(env, "app", app_repo, tag="v1")
    env.wait_for("Image", "base", lambda i: status(i).get("latestDigest") == busybox_digest, "the base digest")
    dockerfile = "FROM scratch\nRUN echo built > /built\n"  # its FROM is replaced by the base Image's digest
    env.create(
        "BuildConfig",
        config(source={"type": "Dockerfile", "dockerfile": dockerfile}, strategy=FROM_IMAGE, output=TO_IMAGE),
    )
    name = env.instantiate("app")["metadata"]["name"]
    result = run_build_pod(env, name, podman_engine, tmp_path)
    done = env.wait_phase("Build", name, "Complete")
    assert status(done)["outputDockerImageReference"] == f"{app_repo}:v1"
    assert status(done)["output"]["to"]["imageDigest"] == result.image_digest
    assert done["spec"]["strategy"]["dockerStrategy"]["from"]["name"] == f"{base_repo}@{busybox_digest}"
    # the registry serves the Build's digest under the Image's tag, and the Image follows it
    app = env.wait_for(
        "Image", "app", lambda i: status(i).get("latestDigest") == result.image_digest, "the pushed digest"
    )
    assert status(app)["latestImage"] == f"{app_repo}@{result.image_digest}"


def test_a_builder_given_an_unresolved_image_output_pushes_nothing(podman_engine: Any, tmp_path: Path) -> None:
    """The node agent never takes an Image's name for a registry reference: a build pod whose Build names an
    Image output without the controller's ``status.outputDockerImageReference`` fails before any work."""
    build = api_objects.Build.model_validate(
        {
            "kind": "Build",
            "metadata": {"name": "app-1", "namespace": "t", "uid": str(uuid.uuid4())},
            "spec": {"source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"}, "output": TO_IMAGE},
        }
    )
    sink = ListSink()
    result = agent_builds.run_build(podman_engine.client, build, sink, agent_builds.BuildInputs(scratch=tmp_path))
    assert not result.succeeded and result.reason == "InvalidOutputReference", result
    assert '"app"' in (result.message or ""), result


def test_an_image_missing_from_the_cache_is_read_from_the_server(env: Env, builds: BuildController) -> None:
    """The controller's fallback when its cache lacks an Image (or its digest): a list by ``metadata.name`` (the
    controllers' role may list Images, not get them), which returns that Image alone."""
    image(env, "other", REPO)
    image(env, "base", BASE)
    resolved(env, "base", BASE, DIGEST)
    listed = env.http.get(
        f"/apis/dockyard.dev/v1alpha1/namespaces/{env.ns}/images", params={"fieldSelector": "metadata.name=base"}
    ).json()["items"]
    assert [i["metadata"]["name"] for i in listed] == ["base"]
    cached = builds.lister(api_objects.Image)
    env.wait(
        lambda: len(cached.list(env.ns)) == 2 and any(i.status.latestImage for i in cached.list(env.ns)),
        "the Images in the cache",
    )
    builds.informers["Image"].store.replace([])  # as if its watch had not delivered them yet
    got = builds._image(env.ns, "base", resolved=True)
    assert got is not None and got.status.latestImage == f"{BASE}@{DIGEST}"
    assert builds._image(env.ns, "nowhere", resolved=False) is None


def test_a_restarted_controller_records_what_the_existing_pod_pushes_to(
    env: Env, run_controller: Callable[..., runtime.Controller]
) -> None:
    """A crash between the pod's creation and the Pending write: the Image's tag moved meanwhile, but the Build
    records the reference its pod (already running) pushes to, not a new resolution."""
    image(env, "app", REPO, tag="v2")
    env.create("BuildConfig", config(output=TO_IMAGE))
    build = env.instantiate("app")
    env.create("Pod", buildpod.build_pod(build, output=f"{REPO}:v1"))  # made by the run that crashed
    run_controller(BuildController)
    pending = env.wait_phase("Build", build["metadata"]["name"], "Pending")
    assert status(pending)["outputDockerImageReference"] == f"{REPO}:v1"


def test_a_restarted_controller_follows_the_existing_pod_when_the_image_no_longer_resolves(
    env: Env, run_controller: Callable[..., runtime.Controller]
) -> None:
    """The same crash, and the Image deleted meanwhile: the pod made from the earlier resolution runs, so the
    Build follows it rather than failing beside a build that pushes."""
    env.create("BuildConfig", config(output=TO_IMAGE))
    build = env.instantiate("app")
    env.create("Pod", buildpod.build_pod(build, output=f"{REPO}:v1"))
    run_controller(BuildController)
    pending = env.wait_phase("Build", build["metadata"]["name"], "Pending")
    assert status(pending)["outputDockerImageReference"] == f"{REPO}:v1"
