"""The pod worker's pure decisions (dockyard.agent.pods.actions), kubelet ``computePodActions``."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.models.core_v1 import Container
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.pods.actions import (
    ContainerStep,
    Observed,
    SandboxStep,
    compute_container_action,
    compute_pod_actions,
    pod_done,
)
from dockyard.agent.pods.probes import ProbeType
from dockyard.agent.pods.state import EngineContainer, ExitInfo, Failure

NOW = 1_000_000.0
POLICY = podspec.BackOffPolicy(initial=10.0, maximum=300.0)


def _pod(containers: list[dict[str, Any]], restart_policy: str = "Always") -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": "p", "namespace": "default", "uid": "u-1"},
            "spec": {"containers": containers, "restartPolicy": restart_policy},
        }
    )


def _hash(pod: Pod, name: str) -> str:
    assert pod.spec is not None
    container = next(c for c in pod.spec.containers if c.name == name)
    return podspec.container_hash(container, pod.spec.volumes or [], pod.spec.securityContext, None)


def _infra(pod: Pod, state: str = "running", attempt: int = 0) -> EngineContainer:
    return EngineContainer(
        id=f"infra{attempt}",
        name=podspec.INFRA_NAME,
        state=state,
        attempt=attempt,
        hash=podspec.sandbox_hash(pod.spec),
    )


def _ctr(pod: Pod, name: str, state: str, *, attempt: int = 0, backoff: float = 0.0, **kw: Any) -> EngineContainer:
    return EngineContainer(
        id=kw.get("id", f"{name}{attempt}"),
        name=name,
        state=state,
        attempt=attempt,
        hash=kw.get("hash", _hash(pod, name)),
        backoff=backoff,
    )


A = {"name": "a", "image": "busybox", "command": ["sleep", "1"]}
B = {"name": "b", "image": "busybox", "command": ["sleep", "2"]}
AC = Container.from_dict(A)


def test_new_pod_creates_the_sandbox_then_starts_every_container() -> None:
    pod = _pod([A, B])
    actions = compute_pod_actions(pod, Observed(), now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.CREATE
    assert actions.sandbox.attempt == 0
    assert actions.sandbox.spec_hash == podspec.sandbox_hash(pod.spec)
    assert [(c.name, c.step, c.attempt, c.backoff) for c in actions.containers] == [
        ("a", ContainerStep.START, 0, 0.0),
        ("b", ContainerStep.START, 0, 0.0),
    ]


def test_running_pod_with_current_spec_is_left_alone() -> None:
    pod = _pod([A, B])
    observed = Observed(containers=(_infra(pod), _ctr(pod, "a", "running"), _ctr(pod, "b", "running")))
    actions = compute_pod_actions(pod, observed, now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.KEEP and actions.sandbox.infra_id == "infra0"
    assert [c.step for c in actions.containers] == [ContainerStep.KEEP, ContainerStep.KEEP]


def test_spec_hash_change_of_one_container_kills_only_it_then_restarts_it_at_once() -> None:
    pod = _pod([A, B])
    stale = _ctr(pod, "a", "running", hash="old")
    observed = Observed(containers=(_infra(pod), stale, _ctr(pod, "b", "running")))
    actions = compute_pod_actions(pod, observed, now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.KEEP
    kill, keep = actions.containers
    assert (kill.name, kill.step, kill.container_id) == ("a", ContainerStep.KILL, stale.id)
    assert keep.step is ContainerStep.KEEP

    # Once it stopped (killed for the change): started again, attempt + 1, no back-off, any policy.
    stopped = _ctr(pod, "a", "exited", hash="old", backoff=40.0)
    after = Observed(
        containers=(_infra(pod), stopped, _ctr(pod, "b", "running")),
        exits={stopped.id: ExitInfo(137, NOW - 5, NOW - 1)},
        changed=frozenset({stopped.id}),
    )
    for policy in ("Always", "OnFailure", "Never"):
        pod.spec.restartPolicy = policy
        again = compute_container_action(pod, pod.spec.containers[0], after, infra_id="infra0", now=NOW, policy=POLICY)
        assert (again.step, again.attempt, again.backoff) == (ContainerStep.START, 1, 0.0), policy


@pytest.mark.parametrize(
    ("restart_policy", "exit_code", "step"),
    [
        ("Always", 0, ContainerStep.START),
        ("Always", 1, ContainerStep.START),
        ("OnFailure", 0, ContainerStep.KEEP),
        ("OnFailure", 1, ContainerStep.START),
        ("Never", 0, ContainerStep.KEEP),
        ("Never", 1, ContainerStep.KEEP),
    ],
)
def test_restart_policy_after_exit(restart_policy: str, exit_code: int, step: ContainerStep) -> None:
    pod = _pod([A, B], restart_policy)
    exited = _ctr(pod, "a", "exited")
    observed = Observed(
        containers=(_infra(pod), exited, _ctr(pod, "b", "running")),
        exits={exited.id: ExitInfo(exit_code, NOW - 60, NOW - 30)},
    )
    actions = compute_pod_actions(pod, observed, now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.KEEP
    action = actions.containers[0]
    assert action.step is step
    if step is ContainerStep.START:
        # First restart: no back-off entry yet; the next one records the initial back-off.
        assert (action.attempt, action.backoff) == (1, POLICY.initial)


def test_every_container_done_for_good_stops_the_sandbox() -> None:
    pod = _pod([A], "OnFailure")
    exited = _ctr(pod, "a", "exited")
    observed = Observed(containers=(_infra(pod), exited), exits={exited.id: ExitInfo(0, NOW - 10, NOW - 5)})
    assert pod_done(pod, observed)
    actions = compute_pod_actions(pod, observed, now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.STOP
    assert [c.id for c in actions.sandbox.kill] == ["infra0"]
    assert actions.containers == ()


def test_sandbox_gone_stops_the_containers_then_recreates_all() -> None:
    pod = _pod([A, B])
    dead = _infra(pod, state="exited")
    running = (_ctr(pod, "a", "running"), _ctr(pod, "b", "running"))
    actions = compute_pod_actions(pod, Observed(containers=(dead, *running)), now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.KILL_CONTAINERS
    assert {c.name for c in actions.sandbox.kill} == {"a", "b"}
    assert actions.containers == ()

    # Containers stopped (killed with the sandbox, no back-off yet): new sandbox, attempt + 1, all restarted.
    a, b = _ctr(pod, "a", "exited"), _ctr(pod, "b", "exited")
    observed = Observed(
        containers=(dead, a, b),
        exits={a.id: ExitInfo(137, NOW - 60, NOW - 1), b.id: ExitInfo(137, NOW - 60, NOW - 1)},
    )
    actions = compute_pod_actions(pod, observed, now=NOW, policy=POLICY)
    assert (actions.sandbox.step, actions.sandbox.attempt) == (SandboxStep.CREATE, 1)
    assert [(c.name, c.step, c.attempt) for c in actions.containers] == [
        ("a", ContainerStep.START, 1),
        ("b", ContainerStep.START, 1),
    ]


def test_sandbox_hash_change_recreates_the_sandbox() -> None:
    pod = _pod([A])
    old = EngineContainer(id="infra0", name=podspec.INFRA_NAME, state="running", hash="ports-before")
    actions = compute_pod_actions(pod, Observed(containers=(old,)), now=NOW, policy=POLICY)
    assert (actions.sandbox.step, actions.sandbox.attempt) == (SandboxStep.CREATE, 1)
    assert [c.id for c in actions.sandbox.kill] == ["infra0"]


def test_never_pod_whose_sandbox_exited_gets_no_new_one() -> None:
    pod = _pod([A], "Never")
    a = _ctr(pod, "a", "running")
    actions = compute_pod_actions(pod, Observed(containers=(_infra(pod, state="exited"), a)), now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.NEVER
    assert "restartPolicy is Never" in actions.sandbox.message


def test_crash_back_off_pending_waits_then_doubles() -> None:
    pod = _pod([A])
    crashed = _ctr(pod, "a", "exited", attempt=3, backoff=20.0)
    observed = Observed(containers=(_infra(pod), crashed), exits={crashed.id: ExitInfo(1, NOW - 10, NOW - 5)})
    waiting = compute_container_action(pod, AC, observed, infra_id="infra0", now=NOW, policy=POLICY)
    assert (waiting.step, waiting.reason) == (ContainerStep.WAIT, "CrashLoopBackOff")
    assert waiting.message == "back-off 20s restarting failed container=a pod=p_default(u-1)"

    later = compute_container_action(pod, AC, observed, infra_id="infra0", now=NOW + 16, policy=POLICY)
    assert (later.step, later.attempt, later.backoff) == (ContainerStep.START, 4, 40.0)


def test_sandbox_back_off_pending() -> None:
    pod = _pod([A])
    failure = Failure(retry_at=NOW + 2, backoff=2.0, message="failed to create pod sandbox: port busy")
    actions = compute_pod_actions(pod, Observed(sandbox_failure=failure), now=NOW, policy=POLICY)
    assert actions.sandbox.step is SandboxStep.BACKOFF
    assert actions.sandbox.message == "back-off creating pod sandbox: failed to create pod sandbox: port busy"
    assert actions.containers == ()
    retry = compute_pod_actions(pod, Observed(sandbox_failure=failure), now=NOW + 2, policy=POLICY)
    assert retry.sandbox.step is SandboxStep.CREATE


def test_created_but_never_started_is_started_in_its_sandbox_or_made_anew() -> None:
    pod = _pod([A])
    created = _ctr(pod, "a", "created")
    same = Observed(containers=(_infra(pod), created), networks={created.id: "container:infra0"})
    action = compute_container_action(pod, AC, same, infra_id="infra0", now=NOW, policy=POLICY)
    assert (action.step, action.container_id) == (ContainerStep.START_CREATED, created.id)

    other = Observed(containers=(_infra(pod), created), networks={created.id: "container:gone"})
    action = compute_container_action(pod, AC, other, infra_id="infra0", now=NOW, policy=POLICY)
    assert (action.step, action.container_id, action.attempt) == (ContainerStep.RECREATE, created.id, 0)

    # Its start failed: it counts as exited with 128 (StartError) and follows the crash back-off.
    failed = Observed(
        containers=(_infra(pod), created),
        start_failed=frozenset({created.id}),
        exits={created.id: ExitInfo(128, NOW, NOW)},
    )
    action = compute_container_action(pod, AC, failed, infra_id="infra0", now=NOW, policy=POLICY)
    assert (action.step, action.attempt) == (ContainerStep.START, 1)


LIVE = {**A, "livenessProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 2}}


@pytest.mark.parametrize(
    ("restart_policy", "probe", "message"),
    [
        ("Always", ProbeType.LIVENESS, "Container a failed liveness probe, will be restarted"),
        ("OnFailure", ProbeType.STARTUP, "Container a failed startup probe, will be restarted"),
        ("Never", ProbeType.LIVENESS, "Container a failed liveness probe"),
    ],
)
def test_a_failed_liveness_or_startup_probe_kills_the_running_container(
    restart_policy: str, probe: ProbeType, message: str
) -> None:
    pod = _pod([LIVE, B], restart_policy)
    sick = _ctr(pod, "a", "running")
    observed = Observed(containers=(_infra(pod), sick, _ctr(pod, "b", "running")), unhealthy={sick.id: probe})
    kill, keep = compute_pod_actions(pod, observed, now=NOW, policy=POLICY).containers
    assert (kill.step, kill.container_id, kill.probe, kill.message) == (ContainerStep.KILL, sick.id, probe, message)
    assert kill.grace == (2 if probe is ProbeType.LIVENESS else None)  # the probe's terminationGracePeriodSeconds
    assert keep.step is ContainerStep.KEEP

    # Once it stopped: restarted per restartPolicy with the crash back-off (not at once, as a spec change is).
    stopped = _ctr(pod, "a", "exited", backoff=POLICY.initial)
    after = Observed(
        containers=(_infra(pod), stopped, _ctr(pod, "b", "running")),
        exits={stopped.id: ExitInfo(137, NOW - 5, NOW - 1)},
        unhealthy={stopped.id: probe},
    )
    again = compute_container_action(pod, pod.spec.containers[0], after, infra_id="infra0", now=NOW, policy=POLICY)
    if restart_policy == "Never":
        assert again.step is ContainerStep.KEEP
    else:
        assert again.step is ContainerStep.WAIT and again.reason == "CrashLoopBackOff"
