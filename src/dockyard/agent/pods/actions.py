"""Decide what one sync of a pod must do: pure, no engine, no clock of its own.

kubelet ``pkg/kubelet/kuberuntime/kuberuntime_manager.go`` ``computePodActions``: from the pod spec (its
sandbox hash and per-container spec hashes, :mod:`dockyard.agent.podspec`) and what the engine shows
(:class:`Observed`), decide whether the sandbox is kept, stopped or (re-)created and, per app container,
whether it is started, killed, left alone or waits out its crash back-off. The pod worker
(:mod:`dockyard.agent.pods.worker`) then acts, as ``SyncPod`` does.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from lightkube.models.core_v1 import Container, PodSpec
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.pods import probes
from dockyard.agent.pods.state import EngineContainer, ExitInfo, Failure, latest

__all__ = [
    "POST_START_FAILED",
    "ContainerAction",
    "ContainerStep",
    "Observed",
    "PodActions",
    "SandboxAction",
    "SandboxStep",
    "compute_container_action",
    "compute_pod_actions",
    "pod_done",
]

POST_START_FAILED = "FailedPostStartHook"
"""The reason a container is killed for when its postStart hook failed (kubelet ``reasonFailedPostStartHook``)."""


class SandboxStep(enum.Enum):
    """What happens to the pod sandbox (the infra container holding the pod's namespaces)."""

    KEEP = "keep"  #: the running sandbox has the current sandbox hash; containers are synced into it
    STOP = "stop"  #: every container ran and none will restart: stop the sandbox, start nothing
    NEVER = "never"  #: restartPolicy Never and the sandbox exited after its containers ran: none again, kill them
    KILL_CONTAINERS = "kill-containers"  #: the sandbox must be re-created: stop its app containers first
    BACKOFF = "backoff"  #: re-create it later: the last attempt failed and its back-off runs
    CREATE = "create"  #: (re-)create the sandbox, then sync the containers into it


@dataclass(frozen=True)
class SandboxAction:
    """The sandbox part of :class:`PodActions`.

    Attributes:
        step: see :class:`SandboxStep`.
        infra_id: ``KEEP``: the running infra container's id.
        attempt: ``CREATE``: the new infra container's attempt (the last one's + 1, else 0).
        spec_hash: ``CREATE``: the sandbox hash (:func:`podspec.sandbox_hash`) to label it with.
        kill: ``KILL_CONTAINERS``, ``NEVER``: the running app containers to terminate (grace period applies);
            ``STOP``, ``BACKOFF``, ``CREATE``: running infra containers to kill at once.
        message: why no sandbox is ready (the pod's ``status.message`` while it is not).
    """

    step: SandboxStep
    infra_id: str = ""
    attempt: int = 0
    spec_hash: str = ""
    kill: tuple[EngineContainer, ...] = ()
    message: str = ""


class ContainerStep(enum.Enum):
    """What happens to one app container."""

    KEEP = "keep"  #: nothing to do (running with the current spec, or done for good)
    START = "start"  #: pull if needed, create and start attempt ``attempt``
    START_CREATED = "start-created"  #: start ``container_id``, created but never started (agent died)
    RECREATE = "recreate"  #: remove ``container_id`` (made for another spec or sandbox), then ``START``
    KILL = "kill"  #: its spec hash changed, or it failed its liveness/startup probe: terminate ``container_id``
    WAIT = "wait"  #: crash-loop back-off: ``reason`` and ``message`` are its waiting state


@dataclass(frozen=True)
class ContainerAction:
    """One app container's part of :class:`PodActions`.

    Attributes:
        name: the container's name in the pod spec.
        step: see :class:`ContainerStep`.
        spec_hash: the container's current spec hash (:func:`podspec.container_hash`).
        attempt: ``START``/``RECREATE``: the attempt (restart count) of the container to create.
        backoff: ``START``/``RECREATE``: the crash back-off, in seconds, to record on it (0: none).
        container_id: ``START_CREATED``/``RECREATE``/``KILL``: the engine container acted on.
        reason: ``WAIT``: ``CrashLoopBackOff``; ``KILL``: :data:`POST_START_FAILED` when its postStart hook failed
            (restarted per ``restartPolicy`` with back-off, as after a failed probe).
        message: ``WAIT``: the kubelet's back-off message; ``KILL`` for a failed probe or postStart hook: the
            ``Killing`` Event's message (``Container web failed liveness probe, will be restarted``,
            ``FailedPostStartHook``).
        probe: ``KILL``: the probe that failed (liveness or startup), ``None`` for a spec change (which
            restarts at once, whatever the policy; a probe kill restarts per ``restartPolicy`` with back-off).
        grace: ``KILL`` for a failed probe: the probe's ``terminationGracePeriodSeconds``, if set (else the
            pod's applies).
    """

    name: str
    step: ContainerStep
    spec_hash: str = ""
    attempt: int = 0
    backoff: float = 0.0
    container_id: str = ""
    reason: str = ""
    message: str = ""
    probe: probes.ProbeType | None = None
    grace: int | None = None


@dataclass(frozen=True)
class Observed:
    """What the engine (and the pod worker's memory) shows of one pod.

    Attributes:
        containers: every engine container of the pod, infra included, all attempts.
        exits: container id → how it ended, for containers that stopped or failed to start (the latest
            attempt of each app container at least).
        changed: ids of containers killed because their spec hash changed.
        start_failed: ids of containers whose engine start failed.
        networks: container id → ``HostConfig.NetworkMode`` of created (never started) containers that
            could be inspected.
        sandbox_failure: back-off after a failed sandbox creation, if any.
        unhealthy: container id → the probe (liveness or startup) it failed (the prober's results).
        post_start_failed: ids of running containers whose ``postStart`` hook failed (or was interrupted by an
            agent restart, :mod:`.lifecycle`).
    """

    containers: tuple[EngineContainer, ...] = ()
    exits: Mapping[str, ExitInfo] = field(default_factory=dict)
    changed: frozenset[str] = frozenset()
    start_failed: frozenset[str] = frozenset()
    networks: Mapping[str, str] = field(default_factory=dict)
    sandbox_failure: Failure | None = None
    unhealthy: Mapping[str, probes.ProbeType] = field(default_factory=dict)
    post_start_failed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PodActions:
    """What one sync does: the sandbox step, then (only when the sandbox is kept or created) the app
    containers' steps in spec order."""

    sandbox: SandboxAction
    containers: tuple[ContainerAction, ...] = ()


def compute_pod_actions(
    pod: Pod,
    observed: Observed,
    *,
    now: float,
    host_ip: str = "127.0.0.1",
    policy: podspec.BackOffPolicy = podspec.BackOffPolicy(),
    pod_ip: str | None = None,
) -> PodActions:
    """kubelet ``computePodActions`` for a pod that is neither deleted nor terminal.

    Args:
        pod: the Pod (``metadata``, ``spec``) as the API serves it.
        observed: the engine's view of the pod (:class:`Observed`).
        now: seconds since the epoch (crash and sandbox back-off are measured against it).
        host_ip: the address the sandbox publishes ports on (part of the sandbox hash).
        pod_ip: the pod's own address, its containerPorts are published on (part of the sandbox hash).
        policy: the crash back-off (kubelet: 10 s doubling to 300 s).

    Returns:
        The actions; containers are listed only when the sandbox step is ``KEEP`` or ``CREATE``. A new
        sandbox is made when there is none, it stopped, or its hash changed (ports, hostname, sysctls),
        after every app container stopped ("Pod sandbox changed, it will be killed and re-created").
    """
    spec = pod.spec or PodSpec(containers=[])
    ctrs = observed.containers
    infras = tuple(c for c in ctrs if c.name == podspec.INFRA_NAME and c.running)
    if pod_done(pod, observed):
        return PodActions(SandboxAction(SandboxStep.STOP, kill=infras))
    want = podspec.sandbox_hash(spec, host_ip=host_ip, pod_ip=pod_ip)
    infra = latest(ctrs, podspec.INFRA_NAME)
    if infra is not None and infra.running and infra.hash == want:
        sandbox = SandboxAction(SandboxStep.KEEP, infra_id=infra.id)
    else:
        apps = [c for c in ctrs if c.name != podspec.INFRA_NAME]
        running = tuple(c for c in apps if c.running)
        failure = observed.sandbox_failure
        if infra is not None and spec.restartPolicy == "Never" and apps and not infra.running:
            # kubelet: no new sandbox for a Never pod whose containers already ran (CreateSandbox false), and the
            # pod is killed (KillPod): its containers still running stop, and it ends Failed.
            message = "pod sandbox exited; restartPolicy is Never"
            return PodActions(SandboxAction(SandboxStep.NEVER, kill=running, message=message))
        if running:
            message = "stopping containers before the pod sandbox is re-created"
            return PodActions(SandboxAction(SandboxStep.KILL_CONTAINERS, kill=running, message=message))
        if failure is not None and now < failure.retry_at:
            message = f"back-off creating pod sandbox: {failure.message}"
            return PodActions(SandboxAction(SandboxStep.BACKOFF, kill=infras, message=message))
        attempt = infra.attempt + 1 if infra is not None else 0
        sandbox = SandboxAction(SandboxStep.CREATE, attempt=attempt, spec_hash=want, kill=infras)
    infra_id = sandbox.infra_id or None
    return PodActions(
        sandbox,
        tuple(
            compute_container_action(pod, c, observed, infra_id=infra_id, now=now, policy=policy)
            for c in spec.containers
        ),
    )


def pod_done(pod: Pod, observed: Observed) -> bool:
    """Every container ran and none will restart (so no sandbox is needed)."""
    spec = pod.spec
    if spec is None or not spec.containers:
        return False
    for container in spec.containers:
        last = latest(observed.containers, container.name)
        if last is None or last.id in observed.changed:
            return False
        info = observed.exits.get(last.id)
        if info is None or podspec.should_restart(spec.restartPolicy, info.exit_code):
            return False
    return True


def compute_container_action(
    pod: Pod,
    container: Container,
    observed: Observed,
    *,
    infra_id: str | None,
    now: float,
    policy: podspec.BackOffPolicy = podspec.BackOffPolicy(),
) -> ContainerAction:
    """kubelet ``computePodActions`` for one app container.

    Args:
        infra_id: the sandbox it is to run in; ``None`` when the sandbox is about to be created (a
            created container then belongs to an old sandbox and is made anew).

    Returns:
        ``START`` when it never ran; ``KILL`` when it runs with another spec hash (any restartPolicy), or
        failed its liveness or startup probe (``observed.unhealthy``; kubelet: ``Container web failed liveness
        probe, will be restarted``, then restarted per ``restartPolicy`` once it stopped);
        ``KILL`` too when its postStart hook failed (``observed.post_start_failed``);
        ``START_CREATED``/``RECREATE`` for a container created but never started; for an exited one, per
        ``restartPolicy`` (kubelet ``ShouldContainerBeRestarted``) ``START`` at once when it was killed
        for a spec change or its spec changed since (a new spec is a new back-off key, kubelet
        ``getStableKey``), ``WAIT`` while its crash back-off runs (``CrashLoopBackOff``), else ``START``
        with the doubled back-off (:func:`podspec.restart_backoff`).
    """
    spec = pod.spec or PodSpec(containers=[container])
    name = container.name
    want = podspec.container_hash(
        container, spec.volumes or [], spec.securityContext, pod.metadata.annotations if pod.metadata else None
    )
    last = latest(observed.containers, name)
    if last is None:
        return ContainerAction(name, ContainerStep.START, spec_hash=want, attempt=_attempt_after_loss(pod, name))
    if last.running:
        if last.hash != want:
            return ContainerAction(name, ContainerStep.KILL, spec_hash=want, container_id=last.id)
        if last.id in observed.post_start_failed:
            # kubelet ``startContainer``: killContainer(..., "FailedPostStartHook", reasonFailedPostStartHook)
            return ContainerAction(
                name,
                ContainerStep.KILL,
                spec_hash=want,
                container_id=last.id,
                reason=POST_START_FAILED,
                message=POST_START_FAILED,
            )
        failed = observed.unhealthy.get(last.id)
        if failed is not None:
            probe = getattr(container, failed.field)
            return ContainerAction(
                name,
                ContainerStep.KILL,
                spec_hash=want,
                container_id=last.id,
                probe=failed,
                message=probes.kill_message(name, failed, restart=spec.restartPolicy != "Never"),
                grace=probes.ProbeSpec.of(failed, probe).grace if probe is not None else None,
            )
        return ContainerAction(name, ContainerStep.KEEP, spec_hash=want)
    if last.created and last.id not in observed.start_failed:
        network = observed.networks.get(last.id)
        if (
            network is None
            or last.hash != want
            or infra_id is None
            or network not in (f"container:{infra_id}", infra_id)
        ):
            return ContainerAction(
                name,
                ContainerStep.RECREATE,
                spec_hash=want,
                attempt=last.attempt,
                backoff=last.backoff,
                container_id=last.id,
            )
        return ContainerAction(name, ContainerStep.START_CREATED, spec_hash=want, container_id=last.id)
    info = observed.exits.get(last.id)
    if info is None:
        return ContainerAction(name, ContainerStep.KEEP, spec_hash=want)
    if last.id in observed.changed:
        return ContainerAction(name, ContainerStep.START, spec_hash=want, attempt=last.attempt + 1)
    if not podspec.should_restart(spec.restartPolicy, info.exit_code):
        return ContainerAction(name, ContainerStep.KEEP, spec_hash=want)
    if last.hash != want:
        return ContainerAction(name, ContainerStep.START, spec_hash=want, attempt=last.attempt + 1)
    wait, next_backoff = podspec.restart_backoff(
        backoff=last.backoff, started_at=info.started_at, finished_at=info.finished_at, now=now, policy=policy
    )
    if wait > 0:
        message = (
            f"back-off {_fmt_duration(last.backoff)} restarting failed container={name} pod={podspec.format_pod(pod)}"
        )
        return ContainerAction(name, ContainerStep.WAIT, spec_hash=want, reason="CrashLoopBackOff", message=message)
    return ContainerAction(name, ContainerStep.START, spec_hash=want, attempt=last.attempt + 1, backoff=next_backoff)


def _attempt_after_loss(pod: Pod, name: str) -> int:
    """The attempt to start container ``name`` with, when the engine holds none of its containers: 0 if it never
    ran; if the pod's status in the API shows it ran (running or terminated, or restarted before), the attempt after
    that one, so that ``restartCount`` goes on as the kubelet's does when a node comes back (a clean stop of
    ``dockyard up`` removes every container; so does ``podman rm`` by hand)."""
    for cs in (pod.status.containerStatuses or []) if pod.status is not None else []:
        if cs.name == name:
            state = cs.state
            ran = state is not None and (state.running is not None or state.terminated is not None)
            return cs.restartCount + 1 if ran or cs.restartCount else 0
    return 0


def _fmt_duration(seconds: float) -> str:
    """Go ``time.Duration`` style for whole and fractional seconds/minutes."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m0s"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{seconds % 60:g}s"
    return f"{seconds:g}s"
