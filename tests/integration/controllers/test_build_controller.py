"""The build controller against the API server, the test playing the node agent.

The controller creates ``<build>-build``; the test writes that pod's status as the agent
would (Running, then Succeeded/Failed with the builder's termination message,
:meth:`dockyard.api.buildpod.BuildResult.termination_message`) and checks the Build's phase.
Run policies, history limits, ``completionDeadlineSeconds`` and cancellation follow OpenShift's
build controller (``pkg/build/controller/build``, ``.../policy``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.api import buildpod
from dockyard.client import runtime
from dockyard.controllers.build import BuildController

from .conftest import Env, condition, status

DIGEST = "sha256:" + "ab" * 32
OUTPUT = "127.0.0.1:5000/app:latest"


def config(name: str = "app", **spec: Any) -> dict[str, Any]:
    """A BuildConfig with an inline Dockerfile and no triggers; ``spec`` overrides fields."""
    return {
        "metadata": {"name": name},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": OUTPUT}},
            **spec,
        },
    }


def pod_running(env: Env, build: str) -> None:
    env.patch_status(
        "Pod",
        buildpod.pod_name(build),
        {
            "phase": "Running",
            "startTime": runtime.now_rfc3339(),
            "containerStatuses": [
                {
                    "name": buildpod.BUILDER_CONTAINER,
                    "ready": True,
                    "restartCount": 0,
                    "image": buildpod.BUILDER_IMAGE,
                    "imageID": "",
                    "state": {"running": {}},
                }
            ],
        },
    )


def pod_finished(env: Env, build: str, result: buildpod.BuildResult) -> None:
    """Write the build pod's terminal status as the node agent does when the builder exits."""
    env.patch_status(
        "Pod",
        buildpod.pod_name(build),
        {
            "phase": "Succeeded" if result.succeeded else "Failed",
            "containerStatuses": [
                {
                    "name": buildpod.BUILDER_CONTAINER,
                    "ready": False,
                    "restartCount": 0,
                    "image": buildpod.BUILDER_IMAGE,
                    "imageID": "",
                    "state": {
                        "terminated": {
                            "exitCode": 0 if result.succeeded else 1,
                            "reason": "Completed" if result.succeeded else "Error",
                            "message": result.termination_message(),
                        }
                    },
                }
            ],
        },
    )


OK = buildpod.BuildResult(
    succeeded=True,
    image_digest=DIGEST,
    stages=({"name": "Build", "startTime": "2024-01-01T00:00:00Z", "durationMilliseconds": 1500},),
)
FAILED = buildpod.BuildResult(
    succeeded=False, reason="DockerBuildFailed", message="RUN false: exit 1", log_snippet="step 2/2 failed"
)


def has_pod(env: Env, build: str) -> bool:
    return env.get("Pod", buildpod.pod_name(build)) is not None


@pytest.fixture
def builds(run_controller: Callable[..., runtime.Controller]) -> BuildController:
    return run_controller(BuildController)  # type: ignore[return-value]


def test_build_runs_pending_running_complete_with_digest(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config())
    name = env.instantiate("app")["metadata"]["name"]
    assert name == "app-1"
    pending = env.wait_phase("Build", name, "Pending")
    assert status(pending)["podName"] == buildpod.pod_name(name)
    pod = env.get("Pod", buildpod.pod_name(name))
    assert pod is not None
    assert pod["metadata"]["labels"][buildpod.BUILD_NAME_LABEL] == name
    assert pod["metadata"]["ownerReferences"][0]["uid"] == pending["metadata"]["uid"]
    assert buildpod.build_from_pod(pod)["metadata"]["name"] == name

    pod_running(env, name)
    running = env.wait_phase("Build", name, "Running")
    assert status(running)["startTimestamp"]
    assert condition(running, "Succeeded")["reason"] == "Running"

    pod_finished(env, name, OK)
    done = env.wait_phase("Build", name, "Complete")
    st = status(done)
    assert st["output"]["to"]["imageDigest"] == DIGEST
    assert st["outputDockerImageReference"] == OUTPUT
    assert st["completionTimestamp"]
    assert st["duration"] == 1500 * 1_000_000  # nanoseconds, from the builder's stage timings
    assert condition(done, "Succeeded")["status"] == "True"
    reasons = env.wait(
        lambda: {e["reason"] for e in env.list("Event")} >= {"BuildStarted", "BuildCompleted"},
        "BuildStarted and BuildCompleted events",
    )
    assert reasons


def test_failed_pod_fails_the_build_with_the_builders_reason(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config())
    name = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", name, "Pending")
    pod_finished(env, name, FAILED)
    failed = env.wait_phase("Build", name, "Failed")
    st = status(failed)
    assert (st["reason"], st["message"], st["logSnippet"]) == (
        "DockerBuildFailed",
        "RUN false: exit 1",
        "step 2/2 failed",
    )
    assert condition(failed, "Succeeded") | {"lastTransitionTime": None} == {
        "type": "Succeeded",
        "status": "False",
        "reason": "DockerBuildFailed",
        "message": "RUN false: exit 1",
        "lastTransitionTime": None,
    }


def test_deleted_build_pod_errors_the_build(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config())
    name = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", name, "Pending")
    env.delete("Pod", buildpod.pod_name(name))
    assert status(env.wait_phase("Build", name, "Error"))["reason"] == "BuildPodDeleted"


def test_serial_starts_the_next_build_only_when_the_previous_ends(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(runPolicy="Serial"))
    first = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", first, "Pending")
    second = env.instantiate("app")["metadata"]["name"]
    # the second stays New with no pod while the first is not terminal
    assert env.settled(lambda: (status(env.get("Build", second)).get("phase"), has_pod(env, second))) == ("New", False)
    pod_running(env, first)
    env.wait_phase("Build", first, "Running")
    assert env.settled(lambda: status(env.get("Build", second)).get("phase")) == "New"
    pod_finished(env, first, OK)
    env.wait_phase("Build", first, "Complete")
    env.wait_phase("Build", second, "Pending")
    assert has_pod(env, second)


def test_serial_latest_only_cancels_superseded_queued_builds(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(runPolicy="SerialLatestOnly"))
    first = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", first, "Pending")
    second = env.instantiate("app")["metadata"]["name"]
    third = env.instantiate("app")["metadata"]["name"]
    cancelled = env.wait_phase("Build", second, "Cancelled")
    assert status(cancelled)["reason"] == "CancelledBuild"
    assert "SerialLatestOnly" in status(cancelled)["message"]
    assert not has_pod(env, second)
    assert env.settled(lambda: status(env.get("Build", third)).get("phase")) == "New"
    assert status(env.get("Build", first))["phase"] == "Pending"  # the running one is never cancelled
    pod_finished(env, first, OK)
    env.wait_phase("Build", third, "Pending")


def test_parallel_starts_every_build_at_once(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(runPolicy="Parallel"))
    names = [env.instantiate("app")["metadata"]["name"] for _ in range(3)]
    for name in names:
        env.wait_phase("Build", name, "Pending")
        assert has_pod(env, name)


def test_history_limits_prune_the_oldest_terminal_builds(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(runPolicy="Parallel", successfulBuildsHistoryLimit=1, failedBuildsHistoryLimit=1))
    names = [env.instantiate("app")["metadata"]["name"] for _ in range(5)]
    for name in names:
        env.wait_phase("Build", name, "Pending")
    for name, result in zip(names[:4], (OK, OK, FAILED, FAILED), strict=True):
        pod_finished(env, name, result)
    # newest Complete (app-2) and newest Failed (app-4) are kept; app-5 is still running
    env.wait(
        lambda: sorted(b["metadata"]["name"] for b in env.list("Build")) == ["app-2", "app-4", "app-5"],
        "builds pruned to the history limits",
    )
    assert status(env.get("Build", "app-2"))["phase"] == "Complete"
    assert status(env.get("Build", "app-4"))["phase"] == "Failed"
    assert env.settled(lambda: sorted(b["metadata"]["name"] for b in env.list("Build"))) == ["app-2", "app-4", "app-5"]


def test_completion_deadline_fails_the_build_and_deletes_its_pod(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(completionDeadlineSeconds=1))
    name = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", name, "Pending")
    try:
        pod_running(env, name)  # Pending time counts too; running does not stop the clock
    except AssertionError:
        pass  # on a busy machine the 1 s deadline may already have deleted the pod: that is the behaviour under test
    failed = env.wait_phase("Build", name, "Failed", timeout=5)
    assert status(failed)["reason"] == "BuildDeadlineExceeded"
    env.wait_gone("Pod", buildpod.pod_name(name))


def test_a_build_that_ends_before_its_deadline_is_not_failed(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config(completionDeadlineSeconds=30))
    name = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", name, "Pending")
    pod_finished(env, name, OK)
    env.wait_phase("Build", name, "Complete")


@pytest.mark.parametrize("phase", ["New", "Pending", "Running"])
def test_cancel_ends_the_build_cancelled_and_deletes_its_pod(env: Env, builds: BuildController, phase: str) -> None:
    env.create("BuildConfig", config())
    name = env.instantiate("app")["metadata"]["name"]
    if phase == "New":  # blocked behind a running build, so it never gets a pod
        env.wait_phase("Build", name, "Pending")
        name = env.instantiate("app")["metadata"]["name"]
        env.settled(lambda: status(env.get("Build", name)).get("phase"))
    else:
        env.wait_phase("Build", name, "Pending")
        if phase == "Running":
            pod_running(env, name)
            env.wait_phase("Build", name, "Running")
    env.patch_status("Build", name, {"cancelled": True})  # what `dockyard cancel-build` sends
    cancelled = env.wait_phase("Build", name, "Cancelled")
    assert status(cancelled)["reason"] == "CancelledBuild"
    assert status(cancelled)["completionTimestamp"]
    env.wait_gone("Pod", buildpod.pod_name(name))


def test_the_builders_source_revision_is_written_to_the_spec(env: Env, builds: BuildController) -> None:
    """The resolved commit the builder reports goes to ``spec.revision`` (OpenShift's builds/details)."""
    env.create("BuildConfig", config())
    name = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", name, "Pending")
    revision = {
        "type": "Git",
        "git": {"commit": "a" * 40, "author": {"name": "A. Author", "email": "a@example.com"}, "message": "fix"},
    }
    pod_finished(env, name, dataclasses.replace(OK, revision=revision))
    done = env.wait_phase("Build", name, "Complete")
    assert done["spec"]["revision"] == revision
    assert [st["name"] for st in status(done)["stages"]] == ["Build"]
    assert status(done)["startTimestamp"] <= status(done)["completionTimestamp"]


def test_a_failed_build_without_a_reason_has_the_generic_one(env: Env, builds: BuildController) -> None:
    env.create("BuildConfig", config())
    name = env.instantiate("app")["metadata"]["name"]
    env.wait_phase("Build", name, "Pending")
    pod_running(env, name)
    running = env.wait_phase("Build", name, "Running")
    pod_finished(env, name, buildpod.BuildResult(succeeded=False))
    failed = env.wait_phase("Build", name, "Failed")
    assert status(failed)["reason"] == "GenericBuildFailed"
    assert status(failed)["startTimestamp"] == status(running)["startTimestamp"]
    assert condition(failed, "Succeeded")["reason"] == "GenericBuildFailed"
