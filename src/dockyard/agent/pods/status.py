"""The status manager: the pod's ``status`` from the engine, the one place pod status is computed.

kubelet ``pkg/kubelet/status/status_manager.go`` and ``kubelet_pods.go`` ``generateAPIPodStatus``: phase
(:func:`podspec.pod_phase`), conditions with stable ``lastTransitionTime`` (:func:`podspec.pod_conditions`),
host and pod IPs, and one ``ContainerStatus`` per spec container (``state``, ``lastState``, ``ready``,
``restartCount``, ``containerID``, ``imageID``), as lightkube's ``PodStatus``. A container whose ``postStart``
hook runs (or failed) is not yet ``Running``: waiting ``ContainerCreating`` (``PostStartHookError``). The agent loop writes what this
returns through ``/status`` (its ``to_dict()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lightkube.models.core_v1 import (
    Container,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    HostIP,
    PodIP,
    PodSpec,
    PodStatus,
)
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.pods.containers import ContainerManager
from dockyard.agent.pods.images import ImageManager
from dockyard.agent.pods.lifecycle import POST_START
from dockyard.agent.pods.podips import PodIPs
from dockyard.agent.pods.prober import ProberManager
from dockyard.agent.pods.state import EXITED, EngineContainer, PodState, latest
from dockyard.agent.podspec import INFRA_NAME
from dockyard.api.podfields import TERMINATION_MESSAGE_PATH

__all__ = ["StatusManager", "SyncResult"]


@dataclass
class SyncResult:
    """What one sync learnt beyond the engine state.

    Attributes:
        waiting: container name → ``(reason, message)`` of its waiting state (back-off, pull or create
            failures).
        acted: the sync changed something on the engine (so the containers are listed again).
        sandbox_message: why the sandbox is not ready (the pod's ``status.message`` while it is not).
    """

    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    acted: bool = False
    sandbox_message: str = ""


MAX_MESSAGE_BYTES = 4096
"""Bytes of a termination message file read (the kubelet's ``maxMessageLength``)."""
FALLBACK_LINES = 80
"""Lines of output a ``FallbackToLogsOnError`` message takes (the kubelet's ``fallbackToLogsMessageLines``)."""
FALLBACK_BYTES = 2048
"""Bytes of output a ``FallbackToLogsOnError`` message takes at most (the kubelet's ``maxLogsMessageBytes``)."""


def termination_message(attrs: dict[str, Any], container: Container) -> str:
    """What the container wrote in its termination message file: the source of its bind mount at
    ``terminationMessagePath`` (``/dev/termination-log``), at most :data:`MAX_MESSAGE_BYTES` bytes; '' if none
    (a container made before the agent bound one, or the file is gone)."""
    target = container.terminationMessagePath or TERMINATION_MESSAGE_PATH
    for mount in attrs.get("Mounts") or []:
        if isinstance(mount, dict) and mount.get("Destination") == target and mount.get("Source"):
            try:
                with open(str(mount["Source"]), "rb") as f:
                    return f.read(MAX_MESSAGE_BYTES).decode("utf-8", errors="replace")
            except OSError:
                return ""
    return ""


class StatusManager:
    """Computes pod status.

    Args:
        containers: inspects the engine containers.
        images: tells image ids.
        prober: sets containers' ``ready`` and ``started`` (:mod:`.prober`).
        host_ip: reported as ``hostIP`` (and as ``podIP`` of a pod without an address of its own).
        pod_ips: the pods' own addresses (:class:`~.podips.PodIPs`), reported as ``podIP``/``podIPs``.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        *,
        containers: ContainerManager,
        images: ImageManager,
        prober: ProberManager,
        host_ip: str,
        clock: Callable[[], float] = time.time,
        pod_ips: PodIPs | None = None,
    ) -> None:
        self._containers = containers
        self._images = images
        self._prober = prober
        self._host_ip = host_ip
        self._pod_ips = pod_ips
        self._clock = clock

    def status(
        self,
        state: PodState,
        pod: Pod,
        ctrs: list[EngineContainer],
        now: float,
        sync: SyncResult,
        *,
        terminal: bool = False,
    ) -> PodStatus:
        """Kubernetes ``PodStatus`` from the engine (kubelet ``generateAPIPodStatus``).

        Args:
            terminal: the pod is done for good (deleted, refused, or already ``Succeeded``/``Failed``).
        """
        spec = pod.spec or PodSpec(containers=[])
        old = pod.status or PodStatus()
        statuses = [self._container_status(state, c, ctrs, sync) for c in spec.containers]
        self._prober.update_pod_status(pod, statuses)
        infra = latest(ctrs, INFRA_NAME)
        sandbox_ready = infra is not None and infra.running
        phase = podspec.pod_phase(spec.restartPolicy, statuses, total=len(spec.containers), terminal=terminal)
        unready = [s.name for s in statuses if not s.ready]
        stamp = podspec.to_time(now)
        uid = str(pod.metadata.uid) if pod.metadata else ""
        pod_ip = (self._pod_ips.get(uid) if self._pod_ips else None) or self._host_ip
        return PodStatus(
            phase=phase,
            conditions=podspec.pod_conditions(
                sandbox_ready=sandbox_ready,
                containers_ready=bool(statuses) and not unready,
                now=stamp,
                previous=old.conditions or (),
                not_ready_message=f"containers with unready status: [{' '.join(unready)}]" if unready else "",
            ),
            hostIP=self._host_ip,
            hostIPs=[HostIP(ip=self._host_ip)],
            podIP=pod_ip,
            podIPs=[PodIP(ip=pod_ip)],
            startTime=old.startTime or stamp,
            containerStatuses=statuses,
            message=sync.sandbox_message if sync.sandbox_message and not sandbox_ready else None,
        )

    def _container_status(
        self, state: PodState, container: Container, ctrs: list[EngineContainer], sync: SyncResult
    ) -> ContainerStatus:
        name = container.name
        history = sorted((c for c in ctrs if c.name == name), key=lambda c: c.attempt)
        last = history[-1] if history else None
        previous = history[-2] if len(history) > 1 else None
        status = ContainerStatus(
            name=name,
            image=container.image or "",
            imageID="",
            ready=False,
            restartCount=last.attempt if last else 0,
            started=False,
            state=ContainerState(waiting=ContainerStateWaiting(reason="ContainerCreating")),
            lastState=ContainerState(),
        )
        if last is None:
            if name in sync.waiting:
                reason, message = sync.waiting[name]
                status.state = ContainerState(waiting=ContainerStateWaiting(reason=reason, message=message))
            return status
        attrs = self._containers.inspect(state, last)
        status.containerID = self._containers.prefix() + last.id
        if attrs is not None:
            status.image = (attrs.get("Config") or {}).get("Image") or status.image
            status.imageID = self._images.image_id(str(attrs.get("Image") or ""))
        latest_terminated = self._terminated(state, last, attrs, container)
        previous_terminated = (
            self._terminated(state, previous, self._containers.inspect(state, previous), container)
            if previous
            else None
        )
        hook = state.hooks.get((last.id, POST_START)) if last.running else None
        if hook is not None and (hook.pending or hook.failed):
            # kubelet: the container shows as started only once its postStart hook returned (the pod worker's
            # sync is blocked in startContainer until then); not probed, not ready.
            waiting = (
                ContainerStateWaiting(reason="PostStartHookError", message=hook.error)
                if hook.failed
                else ContainerStateWaiting(reason="ContainerCreating")
            )
            status.containerID = None
            status.state = ContainerState(waiting=waiting)
            if previous_terminated:
                status.lastState = ContainerState(terminated=previous_terminated)
        elif last.running and attrs is not None and last.id not in state.start_failures:
            started = podspec.parse_engine_time((attrs.get("State") or {}).get("StartedAt"))
            status.state = ContainerState(
                running=ContainerStateRunning(startedAt=podspec.to_time(started or self._clock()))
            )
            status.ready = status.started = True
            if previous_terminated:
                status.lastState = ContainerState(terminated=previous_terminated)
        elif name in sync.waiting:
            reason, message = sync.waiting[name]
            status.state = ContainerState(waiting=ContainerStateWaiting(reason=reason, message=message))
            if latest_terminated:
                status.lastState = ContainerState(terminated=latest_terminated)
        elif latest_terminated:
            status.state = ContainerState(terminated=latest_terminated)
            if previous_terminated:
                status.lastState = ContainerState(terminated=previous_terminated)
        elif previous_terminated:
            status.lastState = ContainerState(terminated=previous_terminated)
        return status

    def _terminated(
        self, state: PodState, ctr: EngineContainer | None, attrs: dict[str, Any] | None, container: Container
    ) -> ContainerStateTerminated | None:
        """``ContainerStateTerminated`` of a stopped (or failed-to-start) container; its ``message`` is what the
        container wrote at its ``terminationMessagePath`` (:func:`termination_message`), else the engine's error."""
        if ctr is None:
            return None
        failure = state.start_failures.get(ctr.id)
        if failure is not None:
            stamp = podspec.to_time(failure[0])
            return ContainerStateTerminated(
                exitCode=128,
                reason="StartError",
                message=failure[1],
                startedAt=stamp,
                finishedAt=stamp,
                containerID=self._containers.prefix() + ctr.id,
            )
        if ctr.state not in EXITED or attrs is None:
            return None
        engine_state = attrs.get("State") or {}
        exit_code = int(engine_state.get("ExitCode") or 0)
        finished = podspec.parse_engine_time(engine_state.get("FinishedAt"))
        started = podspec.parse_engine_time(engine_state.get("StartedAt"))
        reason = "OOMKilled" if engine_state.get("OOMKilled") else ("Completed" if exit_code == 0 else "Error")
        message = termination_message(attrs, container)
        if not message and exit_code != 0 and container.terminationMessagePolicy == "FallbackToLogsOnError":
            message = self._containers.output_tail(ctr, lines=FALLBACK_LINES, max_bytes=FALLBACK_BYTES)
        return ContainerStateTerminated(
            exitCode=exit_code,
            reason=reason,
            startedAt=podspec.to_time(started) if started else None,
            finishedAt=podspec.to_time(finished) if finished else None,
            containerID=self._containers.prefix() + ctr.id,
            message=message or (str(engine_state["Error"]) if engine_state.get("Error") else None),
        )
