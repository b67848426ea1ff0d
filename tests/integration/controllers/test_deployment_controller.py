"""The Deployment and ReplicaSet controllers against the API server, the test playing the kubelet.

No node agent runs: pods stay Pending until the test marks them Ready
(``status.conditions[Ready]=True``), as the kubelet's readiness would. Semantics:
Kubernetes ``pkg/controller/deployment`` (rolling.go) and ``pkg/controller/replicaset``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dockyard.controllers.deployment import HASH_LABEL, REVISION, DeploymentController, ReplicaSetController

from .conftest import Env, Tracking, condition, path, status

LABELS = {"app": "web"}


def template(version: str = "1") -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(LABELS)},
        "spec": {"containers": [{"name": "web", "image": "busybox:1", "env": [{"name": "V", "value": version}]}]},
    }


def owned(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(r["uid"] == owner["metadata"]["uid"] for r in obj["metadata"].get("ownerReferences") or [])


def is_ready(pod: dict[str, Any]) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def live_pods(env: Env) -> list[dict[str, Any]]:
    return [p for p in env.list("Pod") if not p["metadata"].get("deletionTimestamp")]


def mark_ready(env: Env, pod: dict[str, Any]) -> None:
    """What the kubelet reports once the containers run and pass readiness."""
    env.patch_status(
        "Pod",
        pod["metadata"]["name"],
        {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
        },
    )


def replicaset(env: Env, replicas: int) -> dict[str, Any]:
    return env.create(
        "ReplicaSet",
        {
            "metadata": {"name": "web-rs"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(LABELS)}, "template": template()},
        },
    )


# ------------------------------------------------------------------ ReplicaSet alone


@pytest.fixture
def rsc(run_controller: Callable[..., Tracking]) -> Tracking:
    return run_controller(ReplicaSetController)


def test_replicaset_creates_its_pods_and_counts_the_ready_ones(env: Env, rsc: Tracking) -> None:
    rs = replicaset(env, 3)
    pods = env.wait(lambda: len(live_pods(env)) == 3 and live_pods(env), "3 pods")
    for pod in pods:
        assert owned(pod, rs)
        assert pod["metadata"]["name"].startswith("web-rs-")
        assert pod["metadata"]["labels"] == LABELS
        assert pod["spec"]["containers"][0]["image"] == "busybox:1"
    got = env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("replicas") == 3, "status.replicas 3")
    assert status(got)["readyReplicas"] == 0
    for pod in pods[:2]:
        mark_ready(env, pod)
    got = env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("readyReplicas") == 2, "2 ready")
    assert status(got)["availableReplicas"] == 2
    assert env.settled(lambda: len(live_pods(env))) == 3


def test_replicaset_scales_down_not_ready_pods_first(env: Env, rsc: Tracking) -> None:
    replicaset(env, 3)
    pods = env.wait(lambda: len(live_pods(env)) == 3 and live_pods(env), "3 pods")
    mark_ready(env, pods[1])
    env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("readyReplicas") == 1, "1 ready")
    env.patch("ReplicaSet", "web-rs", {"spec": {"replicas": 1}})
    env.wait(
        lambda: [p["metadata"]["name"] for p in live_pods(env)] == [pods[1]["metadata"]["name"]],
        "only the ready pod left",
    )
    assert env.settled(lambda: len(live_pods(env))) == 1


def test_replicaset_replaces_deleted_and_failed_pods(env: Env, rsc: Tracking) -> None:
    replicaset(env, 2)
    pods = env.wait(lambda: len(live_pods(env)) == 2 and live_pods(env), "2 pods")
    env.delete("Pod", pods[0]["metadata"]["name"])
    env.patch_status("Pod", pods[1]["metadata"]["name"], {"phase": "Failed"})
    env.wait(lambda: len([p for p in live_pods(env) if status(p).get("phase") != "Failed"]) == 2, "2 active pods again")
    assert env.settled(lambda: len(live_pods(env))) == 3  # 2 active + the Failed one, kept for inspection


# ------------------------------------------------------------------ Deployment alone


@pytest.fixture
def dc(run_controller: Callable[..., Tracking]) -> Tracking:
    return run_controller(DeploymentController)


def deployment(env: Env, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return env.create(
        "Deployment",
        {
            "metadata": {"name": "web", "annotations": {"kubernetes.io/change-cause": "v1"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(LABELS)}, "template": template(), **spec},
        },
    )


def test_deployment_creates_its_replicaset_and_reports_its_status(env: Env, dc: Tracking) -> None:
    deploy = deployment(env)
    sets = env.wait(lambda: env.list("ReplicaSet"), "a ReplicaSet")
    assert len(sets) == 1
    rs = sets[0]
    hash_ = rs["metadata"]["labels"][HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert owned(rs, deploy)
    assert rs["spec"]["replicas"] == 3
    assert rs["spec"]["selector"]["matchLabels"] == {**LABELS, HASH_LABEL: hash_}
    assert rs["spec"]["template"]["metadata"]["labels"] == {**LABELS, HASH_LABEL: hash_}
    assert rs["metadata"]["annotations"] == {REVISION: "1", "kubernetes.io/change-cause": "v1"}
    env.wait_for("Deployment", "web", lambda d: d["metadata"]["annotations"].get(REVISION) == "1", "revision 1")
    # the test plays the ReplicaSet controller: 3 pods, all available
    env.patch_status("ReplicaSet", rs["metadata"]["name"], {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3})
    got = env.wait_for("Deployment", "web", lambda d: status(d).get("availableReplicas") == 3, "3 available")
    st = status(got)
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["unavailableReplicas"]) == (3, 3, 3, 0)
    assert st["observedGeneration"] == got["metadata"]["generation"]
    assert condition(got, "Available")["status"] == "True"
    assert condition(got, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_recreate_scales_the_old_replicaset_to_zero_before_the_new_one_up(env: Env, dc: Tracking) -> None:
    deployment(env, 2, strategy={"type": "Recreate"})
    old = env.wait(lambda: env.list("ReplicaSet"), "a ReplicaSet")[0]
    env.patch_status("ReplicaSet", old["metadata"]["name"], {"replicas": 2, "availableReplicas": 2})
    env.patch("Deployment", "web", {"spec": {"template": template("2")}})
    env.wait_for("ReplicaSet", old["metadata"]["name"], lambda o: o["spec"]["replicas"] == 0, "old scaled to 0")
    new = env.wait(
        lambda: [r for r in env.list("ReplicaSet") if r["metadata"]["name"] != old["metadata"]["name"]],
        "the new ReplicaSet",
    )[0]
    # its pods are still there (status): the new one stays at 0
    assert env.settled(lambda: env.get("ReplicaSet", new["metadata"]["name"])["spec"]["replicas"]) == 0
    env.patch_status("ReplicaSet", old["metadata"]["name"], {"replicas": 0, "availableReplicas": 0})
    env.wait_for("ReplicaSet", new["metadata"]["name"], lambda o: o["spec"]["replicas"] == 2, "new scaled to 2")


# ------------------------------------------------------------------ Deployment → ReplicaSet → Pods


@pytest.fixture
def both(run_controller: Callable[..., Tracking]) -> None:
    run_controller(DeploymentController)
    run_controller(ReplicaSetController)


def roll(env: Env, *, desired: int, max_surge: int, max_unavailable: int) -> list[tuple[int, int]]:
    """Update the template and play the kubelet (one pod Ready per step) until the rollout ends.

    At every quiet point: at most ``desired + maxSurge`` pods and at least
    ``desired - maxUnavailable`` of them Ready. Returns ``(pods, ready)`` at each step.
    """
    old_hash = env.list("ReplicaSet")[0]["metadata"]["labels"][HASH_LABEL]
    env.patch("Deployment", "web", {"spec": {"template": template("2")}})
    seen = []
    for _ in range(4 * desired + 4):
        env.quiet()
        pods = live_pods(env)
        ready = [p for p in pods if is_ready(p)]
        seen.append((len(pods), len(ready)))
        assert len(pods) <= desired + max_surge, seen
        assert len(ready) >= desired - max_unavailable, seen
        deploy = env.get("Deployment", "web")
        if (
            len(ready) == desired == len(pods)
            and all(p["metadata"]["labels"][HASH_LABEL] != old_hash for p in pods)
            and status(deploy).get("updatedReplicas") == desired
            and status(deploy).get("availableReplicas") == desired
        ):
            return seen
        waiting = [p for p in pods if not is_ready(p)]
        if waiting:
            mark_ready(env, waiting[0])
    raise AssertionError(f"the rollout did not end: {seen}")


def start(env: Env, desired: int, strategy: dict[str, Any]) -> None:
    deployment(env, desired, strategy=strategy)
    for _ in range(desired):
        pod = env.wait(lambda: [p for p in live_pods(env) if not is_ready(p)], "a pod to start")[0]
        mark_ready(env, pod)
    env.wait_for("Deployment", "web", lambda d: status(d).get("availableReplicas") == desired, "all available")
    assert env.settled(lambda: len(live_pods(env))) == desired


@pytest.mark.usefixtures("both")
@pytest.mark.parametrize(("surge", "unavailable"), [(0, 1), (2, 1)])
def test_rolling_update_respects_max_surge_and_max_unavailable(env: Env, surge: int, unavailable: int) -> None:
    desired = 3
    start(env, desired, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    seen = roll(env, desired=desired, max_surge=surge, max_unavailable=unavailable)
    assert max(pods for pods, _ in seen) == desired + surge  # the surge is used, not only allowed
    deploy = env.get("Deployment", "web")
    assert deploy["metadata"]["annotations"][REVISION] == "2"
    assert condition(deploy, "Progressing")["reason"] == "NewReplicaSetAvailable"
    sets = {r["metadata"]["annotations"][REVISION]: r for r in env.list("ReplicaSet")}
    assert (sets["1"]["spec"]["replicas"], sets["2"]["spec"]["replicas"]) == (0, desired)


@pytest.mark.usefixtures("both")
def test_scaling_a_deployment_scales_its_pods(env: Env) -> None:
    start(env, 2, {"type": "RollingUpdate"})
    env.patch("Deployment", "web", {"spec": {"replicas": 4}})
    env.wait(lambda: len(live_pods(env)) == 4, "4 pods")
    env.patch("Deployment", "web", {"spec": {"replicas": 1}})
    env.wait(lambda: len(live_pods(env)) == 1, "1 pod")
    assert env.settled(lambda: len(live_pods(env))) == 1


# ------------------------------------------------------------------ rollouts as pkg/controller/deployment does them


def mark_ready_at(env: Env, pod: dict[str, Any], when: str) -> None:
    """Ready since ``when`` (the kubelet writes the Ready condition's lastTransitionTime)."""
    env.patch_status(
        "Pod",
        pod["metadata"]["name"],
        {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": when},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": when},
            ],
        },
    )


def test_min_ready_seconds_holds_availability(env: Env, rsc: Tracking) -> None:
    """``podutil.IsPodAvailable``: Ready for ``minReadySeconds`` before it counts as available."""
    from dockyard.api import timefmt

    env.create(
        "ReplicaSet",
        {
            "metadata": {"name": "web-rs"},
            "spec": {
                "replicas": 1,
                "minReadySeconds": 2,
                "selector": {"matchLabels": dict(LABELS)},
                "template": template(),
            },
        },
    )
    pod = env.wait(lambda: live_pods(env), "a pod")[0]
    mark_ready_at(env, pod, timefmt.now())
    got = env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("readyReplicas") == 1, "1 ready")
    assert status(got).get("availableReplicas", 0) == 0
    env.wait_for("ReplicaSet", "web-rs", lambda o: status(o).get("availableReplicas") == 1, "available after 2s")


def test_a_paused_deployment_does_not_roll_until_resumed(env: Env, dc: Tracking) -> None:
    deployment(env, 1)
    env.wait(lambda: env.list("ReplicaSet"), "a ReplicaSet")
    env.patch("Deployment", "web", {"spec": {"paused": True}})
    got = env.wait_for(
        "Deployment", "web", lambda d: condition(d, "Progressing").get("reason") == "DeploymentPaused", "paused"
    )
    assert condition(got, "Progressing")["status"] == "Unknown"
    env.patch("Deployment", "web", {"spec": {"template": template("2")}})
    assert env.settled(lambda: len(env.list("ReplicaSet"))) == 1
    env.patch("Deployment", "web", {"spec": {"paused": False}})
    env.wait(lambda: len(env.list("ReplicaSet")) == 2, "the new ReplicaSet once resumed")
    env.wait_for(
        "Deployment", "web", lambda d: condition(d, "Progressing").get("reason") != "DeploymentPaused", "resumed"
    )


@pytest.mark.usefixtures("both")
def test_progress_deadline_exceeded(env: Env) -> None:
    start(env, 1, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    env.patch("Deployment", "web", {"spec": {"progressDeadlineSeconds": 1, "template": template("2")}})
    got = env.wait_for(
        "Deployment",
        "web",
        lambda d: condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded",
        "ProgressDeadlineExceeded",
    )
    cond = condition(got, "Progressing")
    assert cond["status"] == "False" and "has timed out progressing" in cond["message"]
    assert condition(got, "Available")["status"] == "True"  # the old pod still serves
    assert len(live_pods(env)) == 2  # nothing was taken down


@pytest.mark.usefixtures("both")
def test_recreate_never_runs_old_and_new_pods_together(env: Env) -> None:
    start(env, 2, {"type": "Recreate"})
    old_hash = live_pods(env)[0]["metadata"]["labels"][HASH_LABEL]
    env.patch("Deployment", "web", {"spec": {"template": template("2")}})
    for _ in range(12):
        env.quiet()
        pods = live_pods(env)
        hashes = {p["metadata"]["labels"][HASH_LABEL] for p in pods}
        assert len(hashes) <= 1, "old and new pods at once"
        if hashes and old_hash not in hashes and all(is_ready(p) for p in pods) and len(pods) == 2:
            break
        for p in pods:
            if not is_ready(p):
                mark_ready(env, p)
    else:
        raise AssertionError("the Recreate rollout did not end")
    env.wait_for(
        "Deployment", "web", lambda d: condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable", "done"
    )


@pytest.mark.usefixtures("both")
def test_recreate_waits_for_old_pods_in_their_grace_period(env: Env) -> None:
    """An old pod being deleted still runs until its node has stopped it: the new pods are made only once it is
    gone (``oldPodsRunning``), so a Recreate Deployment's pods never overlap (one writer of its state)."""
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}
    assert env.http.post("/api/v1/nodes", json=node).status_code in (201, 409)
    start(env, 1, {"type": "Recreate"})
    old_pod = live_pods(env)[0]
    old_name = old_pod["metadata"]["name"]
    env.patch("Pod", old_name, {"spec": {"nodeName": "node-1"}})  # bound: its deletion is graceful
    env.patch("Deployment", "web", {"spec": {"template": template("2")}})
    env.wait(lambda: env.get("Pod", old_name)["metadata"].get("deletionTimestamp"), "the old pod Terminating")
    assert env.settled(lambda: live_pods(env)) == [], "a new pod while the old one still runs"
    # the test's kubelet has stopped it: it deletes the pod for good
    resp = env.http.delete(path("Pod", old_name, namespace=env.ns), params={"gracePeriodSeconds": "0"})
    assert resp.status_code == 200, resp.text
    new_pod = env.wait(lambda: live_pods(env), "the new pod")[0]
    assert new_pod["metadata"]["labels"][HASH_LABEL] != old_pod["metadata"]["labels"][HASH_LABEL]


def test_revision_history_limit_prunes_the_oldest_idle_replicasets(env: Env, dc: Tracking) -> None:
    """``cleanupDeployment``: once a rollout is complete, idle old ReplicaSets beyond the limit go, oldest first."""
    deployment(env, 1, strategy={"type": "Recreate"}, revisionHistoryLimit=1)

    def scaled_up(version: str) -> dict[str, Any]:
        def probe() -> list[dict[str, Any]]:
            return [
                r
                for r in env.list("ReplicaSet")
                if r["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == version
                and r["spec"]["replicas"] == 1
            ]

        rs = env.wait(probe, f"the ReplicaSet of v{version} scaled up")[0]
        env.patch_status(
            "ReplicaSet", rs["metadata"]["name"], {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}
        )
        return rs

    previous = scaled_up("1")
    for version in ("2", "3", "4"):
        env.patch("Deployment", "web", {"spec": {"template": template(version)}})
        name = previous["metadata"]["name"]
        env.wait_for("ReplicaSet", name, lambda o: o["spec"]["replicas"] == 0, "old scaled down")
        env.patch_status("ReplicaSet", name, {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0})
        previous = scaled_up(version)
    env.wait(lambda: len(env.list("ReplicaSet")) == 2, "only the newest and one old ReplicaSet kept")
    kept = sorted(int(r["metadata"]["annotations"][REVISION]) for r in env.list("ReplicaSet"))
    assert kept == [3, 4]
