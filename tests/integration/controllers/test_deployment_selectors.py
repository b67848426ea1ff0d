"""Set-based selectors (``matchExpressions``) in the Deployment and ReplicaSet controllers, the test playing the
kubelet: a ReplicaSet's pods are the pods it owns that its whole selector matches (``ClaimPods`` of
``pkg/controller/replicaset``); one relabelled out of it is released and replaced, as Kubernetes does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dockyard.controllers.deployment import HASH_LABEL, DeploymentController, ReplicaSetController

from .conftest import Env, Tracking, status
from .test_deployment_controller import is_ready, live_pods, mark_ready, owned

LABELS = {"app": "web", "tier": "x"}
TIER_IN_X = {"key": "tier", "operator": "In", "values": ["x"]}


def template() -> dict[str, Any]:
    return {"metadata": {"labels": dict(LABELS)}, "spec": {"containers": [{"name": "web", "image": "busybox:1"}]}}


def relabel(env: Env, pod: dict[str, Any], **labels: str) -> None:
    """``kubectl label pod NAME k=v --overwrite``."""
    env.patch("Pod", pod["metadata"]["name"], {"metadata": {"labels": labels}})


@pytest.fixture
def rsc(run_controller: Callable[..., Tracking]) -> Tracking:
    return run_controller(ReplicaSetController)


@pytest.fixture
def both(run_controller: Callable[..., Tracking]) -> None:
    run_controller(DeploymentController)
    run_controller(ReplicaSetController)


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": "web"}, "matchExpressions": [TIER_IN_X]},
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}, TIER_IN_X]},
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["y"]}]},
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
    ],
)
def test_a_pod_relabelled_out_of_the_expressions_is_released_and_replaced(
    env: Env, rsc: Tracking, selector: dict[str, Any]
) -> None:
    """``tier: x`` → ``tier: y`` (or the label removed, for ``Exists``) still matches ``matchLabels`` but not
    the expressions: the ReplicaSet no longer counts the pod, releases it and creates another."""
    rs = env.create(
        "ReplicaSet",
        {"metadata": {"name": "web-rs"}, "spec": {"replicas": 2, "selector": selector, "template": template()}},
    )
    pods = env.wait(lambda: len(live_pods(env)) == 2 and live_pods(env), "2 pods")
    moved = pods[0]
    if selector["matchExpressions"][-1]["operator"] == "Exists":
        env.http.patch(  # JSON patch: remove the label
            f"/api/v1/namespaces/{env.ns}/pods/{moved['metadata']['name']}",
            json=[{"op": "remove", "path": "/metadata/labels/tier"}],
            headers={"Content-Type": "application/json-patch+json"},
        ).raise_for_status()
    else:
        relabel(env, moved, tier="y")

    def mine() -> list[dict[str, Any]]:
        return [p for p in live_pods(env) if owned(p, rs)]

    env.wait(lambda: len(live_pods(env)) == 3 and len(mine()) == 2, "a replacement pod, the moved one released")
    assert moved["metadata"]["name"] not in {p["metadata"]["name"] for p in mine()}
    got = env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("replicas") == 2, "status.replicas 2")
    assert status(got)["fullyLabeledReplicas"] == 2
    assert env.settled(lambda: len(live_pods(env))) == 3  # the released pod runs on, as an orphan


def test_only_matching_pods_count_as_ready(env: Env, rsc: Tracking) -> None:
    """A Ready pod relabelled out of the selector no longer counts in ``readyReplicas``."""
    env.create(
        "ReplicaSet",
        {
            "metadata": {"name": "web-rs"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [TIER_IN_X]},
                "template": template(),
            },
        },
    )
    pod = env.wait(lambda: live_pods(env), "a pod")[0]
    mark_ready(env, pod)
    env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("readyReplicas") == 1, "1 ready")
    relabel(env, pod, tier="y")
    got = env.wait_for(
        "ReplicaSet",
        "web-rs",
        lambda o: status(o).get("readyReplicas") == 0 and status(o).get("replicas") == 1,
        "the relabelled pod not counted, its replacement not ready",
    )
    assert status(got)["availableReplicas"] == 0


@pytest.mark.usefixtures("both")
def test_a_deployment_selecting_by_expressions_only_rolls_out(env: Env) -> None:
    """A selector of only ``matchExpressions``: the ReplicaSet gets it plus ``pod-template-hash``, its pods
    roll out and count."""
    selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}, TIER_IN_X]}
    env.create(
        "Deployment",
        {"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": selector, "template": template()}},
    )
    rs = env.wait(lambda: env.list("ReplicaSet"), "a ReplicaSet")[0]
    hash_ = rs["metadata"]["labels"][HASH_LABEL]
    assert rs["spec"]["selector"] == {
        "matchLabels": {HASH_LABEL: hash_},
        "matchExpressions": selector["matchExpressions"],
    }
    for _ in range(2):
        pod = env.wait(lambda: [p for p in live_pods(env) if not is_ready(p)], "a pod to start")[0]
        mark_ready(env, pod)
    deploy = env.wait_for("Deployment", "web", lambda d: status(d).get("availableReplicas") == 2, "2 available")
    assert status(deploy)["updatedReplicas"] == 2
    assert env.settled(lambda: len(live_pods(env))) == 2
