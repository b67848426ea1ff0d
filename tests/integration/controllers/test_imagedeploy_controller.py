"""The ImageDeploy controller against the API server.

The test plays the Image controller (it writes ``Image.status.latestImage``) and the
Deployment controller (it writes the Deployment's status).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dockyard.controllers.imagedeploy import ImageDeployController

from .conftest import Env, Tracking, condition, status

REPO = "127.0.0.1:5000/hello"
D1, D2 = "sha256:" + "11" * 32, "sha256:" + "22" * 32


@pytest.fixture
def deploys(run_controller: Callable[..., Tracking]) -> Tracking:
    return run_controller(ImageDeployController)


def image(env: Env, digest: str | None = None) -> None:
    if env.get("Image", "hello") is None:
        env.create("Image", {"metadata": {"name": "hello"}, "spec": {"repository": REPO}})
    if digest:
        env.patch_status("Image", "hello", {"latestImage": f"{REPO}@{digest}", "latestDigest": digest})


def deployment_spec(**extra: Any) -> dict[str, Any]:
    return {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "hello"}},
        "template": {
            "metadata": {"labels": {"app": "hello"}},
            "spec": {
                "containers": [{"name": "sidecar", "image": "busybox:1"}, {"name": "web", "image": "placeholder"}]
            },
        },
        **extra,
    }


def imagedeploy(env: Env, *, container: str = "web", **spec: Any) -> dict[str, Any]:
    return env.create(
        "ImageDeploy",
        {
            "metadata": {"name": "hello", "labels": {"team": "a"}},
            "spec": {
                "imageRef": {"name": "hello"},
                "containerName": container,
                "deployment": deployment_spec(),
                **spec,
            },
        },
    )


def images_of(deploy: dict[str, Any] | None) -> dict[str, str]:
    return {c["name"]: c["image"] for c in (deploy or {})["spec"]["template"]["spec"]["containers"]}


def ready(obj: dict[str, Any] | None) -> tuple[str | None, str | None]:
    c = condition(obj, "Ready")
    return c.get("status"), c.get("reason")


def test_waits_for_the_image_then_creates_an_owned_deployment(env: Env, deploys: Tracking) -> None:
    image(env)
    idp = imagedeploy(env)
    env.wait_for("ImageDeploy", "hello", lambda o: ready(o) == ("False", "ImageNotResolved"), "ImageNotResolved")
    assert env.settled(lambda: env.get("Deployment", "hello")) is None
    image(env, D1)
    deploy = env.wait_for("Deployment", "hello", lambda d: True, "created")
    assert images_of(deploy) == {"sidecar": "busybox:1", "web": f"{REPO}@{D1}"}
    owner = deploy["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"], o.get("controller")) for o in owner] == [
        ("ImageDeploy", "hello", idp["metadata"]["uid"], True)
    ]
    assert deploy["metadata"]["labels"] == {"team": "a"}
    assert deploy["spec"]["replicas"] == 2
    got = env.wait_for(
        "ImageDeploy", "hello", lambda o: status(o).get("latestImage") == f"{REPO}@{D1}", "status.latestImage"
    )
    assert status(got)["deploymentName"] == "hello"
    assert ready(got) == ("False", "RollingOut")  # nothing has rolled the Deployment out yet
    env.wait(lambda: any(e["reason"] == "DeploymentCreated" for e in env.list("Event")), "DeploymentCreated event")


def test_a_new_digest_updates_only_the_image_and_keeps_a_manual_scale(env: Env, deploys: Tracking) -> None:
    image(env, D1)
    imagedeploy(env)
    env.wait_for("Deployment", "hello", lambda d: images_of(d)["web"] == f"{REPO}@{D1}", "on D1")
    env.patch("Deployment", "hello", {"spec": {"replicas": 5}})  # kubectl scale
    image(env, D2)
    deploy = env.wait_for("Deployment", "hello", lambda d: images_of(d)["web"] == f"{REPO}@{D2}", "on D2")
    assert images_of(deploy)["sidecar"] == "busybox:1"
    assert deploy["spec"]["replicas"] == 5
    env.wait_for("ImageDeploy", "hello", lambda o: status(o).get("latestImage") == f"{REPO}@{D2}", "status on D2")


def test_ready_mirrors_the_deployments_rollout(env: Env, deploys: Tracking) -> None:
    image(env, D1)
    imagedeploy(env)
    deploy = env.wait_for("Deployment", "hello", lambda d: True, "created")
    env.patch_status(
        "Deployment",
        "hello",
        {
            "observedGeneration": deploy["metadata"]["generation"],
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "2 of 2"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "done"},
            ],
        },
    )
    got = env.wait_for("ImageDeploy", "hello", lambda o: ready(o) == ("True", "RolledOut"), "Ready RolledOut")
    assert condition(got, "Available")["status"] == "True"
    assert condition(got, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert status(got)["observedGeneration"] == got["metadata"]["generation"]


def test_a_spec_change_rewrites_the_template(env: Env, deploys: Tracking) -> None:
    image(env, D1)
    imagedeploy(env)
    env.wait_for("Deployment", "hello", lambda d: True, "created")
    env.patch("Deployment", "hello", {"spec": {"replicas": 4}})
    spec = deployment_spec(replicas=None)  # merge patch: removed from the spec, so the Deployment's count is kept
    spec["template"]["spec"]["containers"] = [{"name": "web", "image": "placeholder", "args": ["-v"]}]
    env.patch("ImageDeploy", "hello", {"spec": {"deployment": spec}})
    deploy = env.wait_for("Deployment", "hello", lambda d: list(images_of(d)) == ["web"], "the new template")
    web = deploy["spec"]["template"]["spec"]["containers"][0]
    assert (web["image"], web["args"]) == (f"{REPO}@{D1}", ["-v"])
    assert deploy["spec"]["replicas"] == 4


def test_a_deployment_the_server_refuses_is_reported_and_a_fixed_spec_goes_on(env: Env, deploys: Tracking) -> None:
    image(env, D1)
    imagedeploy(env)
    env.wait_for("Deployment", "hello", lambda d: True, "created")
    # a Deployment's selector is immutable (apps/v1): the API server refuses the new spec with 422
    moved = deployment_spec()
    moved["selector"] = {"matchLabels": {"app": "hello", "tier": "web"}}
    moved["template"]["metadata"]["labels"] = {"app": "hello", "tier": "web"}
    env.patch("ImageDeploy", "hello", {"spec": {"deployment": moved}})
    got = env.wait_for(
        "ImageDeploy", "hello", lambda o: ready(o) == ("False", "DeploymentInvalid"), "DeploymentInvalid"
    )
    assert "spec.selector" in condition(got, "Ready")["message"]
    assert env.get("Deployment", "hello")["spec"]["selector"] == {"matchLabels": {"app": "hello"}}
    # put back, the template change of the same edit is written
    fixed = deployment_spec()
    fixed["selector"]["matchLabels"]["tier"] = None  # merge patch: removed
    fixed["template"]["metadata"]["labels"]["tier"] = None
    fixed["template"]["spec"]["containers"] = [{"name": "web", "image": "placeholder", "args": ["-v"]}]
    env.patch("ImageDeploy", "hello", {"spec": {"deployment": fixed}})
    env.wait_for("Deployment", "hello", lambda d: list(images_of(d)) == ["web"], "the fixed template")
    env.wait_for("ImageDeploy", "hello", lambda o: ready(o)[1] != "DeploymentInvalid", "DeploymentInvalid cleared")


def test_an_unknown_container_is_reported(env: Env, deploys: Tracking) -> None:
    image(env, D1)
    imagedeploy(env, container="nope")
    got = env.wait_for("ImageDeploy", "hello", lambda o: ready(o)[1] == "ContainerNotFound", "ContainerNotFound")
    assert "nope" in condition(got, "Ready")["message"]
    assert env.settled(lambda: env.get("Deployment", "hello")) is None


def test_a_deployment_it_does_not_own_is_left_alone(env: Env, deploys: Tracking) -> None:
    env.create("Deployment", {"metadata": {"name": "hello"}, "spec": deployment_spec()})
    image(env, D1)
    imagedeploy(env)
    env.wait_for("ImageDeploy", "hello", lambda o: ready(o) == ("False", "DeploymentNotOwned"), "DeploymentNotOwned")
    assert env.settled(lambda: images_of(env.get("Deployment", "hello"))["web"]) == "placeholder"


# ------------------------------------------------------------------ automatic rollback (issue 8 item 5)
# The ImageDeploy, Deployment and ReplicaSet controllers run; the test plays the Image controller and the kubelet.

D3 = "sha256:" + "33" * 32


@pytest.fixture
def chain(run_controller: Callable[..., Tracking]) -> None:
    from dockyard.controllers.deployment import DeploymentController, ReplicaSetController

    run_controller(ImageDeployController)
    run_controller(DeploymentController)
    run_controller(ReplicaSetController)


def pods_on(env: Env, digest: str) -> list[dict[str, Any]]:
    return [
        p
        for p in env.list("Pod")
        if not p["metadata"].get("deletionTimestamp")
        and any(c["image"] == f"{REPO}@{digest}" for c in p["spec"]["containers"])
    ]


def kubelet(env: Env, pod: dict[str, Any], *, ready: bool, waiting: str | None = None, restarts: int = 0) -> None:
    """Write the pod status the node agent would: Ready, or a container waiting (CrashLoopBackOff)."""
    state = {"waiting": {"reason": waiting, "message": "back-off 10s restarting failed container"}} if waiting else {}
    env.patch_status(
        "Pod",
        pod["metadata"]["name"],
        {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": str(ready)},
                {"type": "ContainersReady", "status": str(ready)},
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "ready": ready,
                    "restartCount": restarts,
                    "state": state or {"running": {}},
                }
                for c in pod["spec"]["containers"]
            ],
        },
    )


def rolling_imagedeploy(env: Env, **rollback: Any) -> None:
    spec = deployment_spec(
        replicas=1, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    )
    env.create(
        "ImageDeploy",
        {
            "metadata": {"name": "hello"},
            "spec": {"imageRef": {"name": "hello"}, "containerName": "web", "deployment": spec, "rollback": rollback},
        },
    )


def rolled_out_on(env: Env, digest: str) -> dict[str, Any]:
    pod = env.wait(lambda: pods_on(env, digest), f"a pod on {digest[:12]}")[0]
    kubelet(env, pod, ready=True)
    return env.wait_for(
        "ImageDeploy",
        "hello",
        lambda o: ready(o) == ("True", "RolledOut") and status(o).get("availableImage") == f"{REPO}@{digest}",
        f"rolled out on {digest[:12]}",
    )


def on(env: Env, digest: str) -> bool:
    return images_of(env.get("Deployment", "hello"))["web"] == f"{REPO}@{digest}"


@pytest.mark.usefixtures("chain")
def test_a_crash_looping_digest_is_rolled_back_quarantined_and_a_newer_one_tried(env: Env) -> None:
    image(env, D1)
    rolling_imagedeploy(env)
    rolled_out_on(env, D1)
    image(env, D2)
    bad = env.wait(lambda: pods_on(env, D2), "a pod on D2")[0]
    kubelet(env, bad, ready=False, waiting="CrashLoopBackOff", restarts=1)
    got = env.wait_for(
        "ImageDeploy", "hello", lambda o: condition(o, "RolledBack").get("status") == "True", "RolledBack"
    )
    assert on(env, D1)
    failed = status(got)["failedImages"]
    assert [(f["image"], f["digest"], f["reason"]) for f in failed] == [(f"{REPO}@{D2}", D2, "CrashLoopBackOff")]
    assert failed[0]["time"]
    assert [h["digest"] for h in status(got)["history"]][:3] == [D1, D2, D1]
    assert status(got)["history"][0]["rollback"] is True
    env.wait(lambda: any(e["reason"] == "RolledBack" for e in env.list("Event")), "a RolledBack event")
    assert env.settled(lambda: on(env, D1))  # not tried again
    image(env, D3)  # a newer digest is tried
    env.wait(lambda: on(env, D3), "the Deployment on D3")
    got = rolled_out_on(env, D3)
    assert condition(got, "RolledBack")["status"] == "False"
    assert [f["digest"] for f in status(got)["failedImages"]] == [D2]


@pytest.mark.usefixtures("chain")
def test_restarts_beyond_max_restarts_count_as_failure(env: Env) -> None:
    image(env, D1)
    rolling_imagedeploy(env, maxRestarts=2)
    rolled_out_on(env, D1)
    image(env, D2)
    bad = env.wait(lambda: pods_on(env, D2), "a pod on D2")[0]
    kubelet(env, bad, ready=False, restarts=2)
    got = env.wait_for("ImageDeploy", "hello", lambda o: status(o).get("failedImages"), "failedImages")
    assert status(got)["failedImages"][0]["reason"] == "RestartLimitExceeded"
    env.wait(lambda: on(env, D1), "back on D1")


@pytest.mark.usefixtures("chain")
def test_the_progress_deadline_rolls_back(env: Env) -> None:
    image(env, D1)
    rolling_imagedeploy(env)
    rolled_out_on(env, D1)
    env.patch("ImageDeploy", "hello", {"spec": {"deployment": deployment_spec(replicas=1, progressDeadlineSeconds=1)}})
    image(env, D2)  # its pod never turns Ready
    got = env.wait_for("ImageDeploy", "hello", lambda o: status(o).get("failedImages"), "failedImages")
    assert status(got)["failedImages"][0]["reason"] == "ProgressDeadlineExceeded"
    env.wait(lambda: on(env, D1), "back on D1")


@pytest.mark.usefixtures("chain")
def test_not_ready_within_the_rollback_timeout_rolls_back(env: Env) -> None:
    image(env, D1)
    rolling_imagedeploy(env, timeout="2s")
    rolled_out_on(env, D1)
    image(env, D2)
    env.wait(lambda: pods_on(env, D2), "a pod on D2")
    got = env.wait_for("ImageDeploy", "hello", lambda o: status(o).get("failedImages"), "failedImages")
    assert status(got)["failedImages"][0]["reason"] == "ReadinessTimeout"
    env.wait(lambda: on(env, D1), "back on D1")


@pytest.mark.usefixtures("chain")
def test_with_rollback_disabled_a_failed_rollout_is_only_reported(env: Env) -> None:
    image(env, D1)
    rolling_imagedeploy(env, enabled=False)
    rolled_out_on(env, D1)
    image(env, D2)
    bad = env.wait(lambda: pods_on(env, D2), "a pod on D2")[0]
    kubelet(env, bad, ready=False, waiting="CrashLoopBackOff", restarts=1)
    got = env.wait_for("ImageDeploy", "hello", lambda o: ready(o) == ("False", "CrashLoopBackOff"), "failure reported")
    assert condition(got, "Progressing")["status"] == "False"
    assert not status(got).get("failedImages")
    assert env.settled(lambda: on(env, D2))


def test_a_bad_rollback_timeout_is_refused_naming_the_field(env: Env) -> None:
    image(env, D1)
    resp = env.http.post(
        f"/apis/dockyard.dev/v1alpha1/namespaces/{env.ns}/imagedeploys",
        json={
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "ImageDeploy",
            "metadata": {"name": "hello"},
            "spec": {"imageRef": {"name": "hello"}, "deployment": deployment_spec(), "rollback": {"timeout": "soon"}},
        },
    )
    assert resp.status_code == 422, resp.text
    assert "spec.rollback.timeout" in resp.text
