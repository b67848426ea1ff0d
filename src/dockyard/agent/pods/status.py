"""The status manager: the pod's ``status`` from the engine, the one place pod status is computed.

kubelet ``pkg/kubelet/status/status_manager.go`` and ``kubelet_pods.go`` ``generateAPIPodStatus``: phase
(:func:`podspec.pod_phase`), conditions with stable ``lastTransitionTime`` (:func:`podspec.pod_conditions`),
host and pod IPs, and one ``ContainerStatus`` per spec container (``state``, ``lastState``, ``ready``,
``restartCount``, ``containerID``, ``imageID``). The agent loop writes what this returns through ``/status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.agent import podspec
from dockyard.agent.pods.containers import ContainerManager
from dockyard.agent.pods.images import ImageManager
from dockyard.agent.pods.podips import PodIPs
from dockyard.agent.pods.prober import ProberManager
from dockyard.agent.pods.state import EXITED, EngineContainer, PodState, latest
from dockyard.agent.podspec import INFRA_NAME

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
        pod: Mapping[str, Any],
        ctrs: list[EngineContainer],
        now: float,
        sync: SyncResult,
        *,
        terminal: bool = False,
    ) -> dict[str, Any]:
        """Kubernetes ``PodStatus`` from the engine (kubelet ``generateAPIPodStatus``).

        Args:
            terminal: the pod is done for good (deleted, refused, or already ``Succeeded``/``Failed``).
        """
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        containers = spec.get("containers") or []
        statuses = [self._container_status(state, c, ctrs, sync) for c in containers]
        self._prober.update_pod_status(pod, statuses)
        infra = latest(ctrs, INFRA_NAME)
        sandbox_ready = infra is not None and infra.running
        phase = podspec.pod_phase(spec.get("restartPolicy"), statuses, total=len(containers), terminal=terminal)
        unready = [s["name"] for s in statuses if not s["ready"]]
        stamp = podspec.format_time(now)
        pod_ip = (self._pod_ips.get(str(pod["metadata"]["uid"])) if self._pod_ips else None) or self._host_ip
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": podspec.pod_conditions(
                sandbox_ready=sandbox_ready,
                containers_ready=bool(statuses) and not unready,
                now=stamp,
                previous=old.get("conditions") or (),
                not_ready_message=f"containers with unready status: [{' '.join(unready)}]" if unready else "",
            ),
            "hostIP": self._host_ip,
            "hostIPs": [{"ip": self._host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": old.get("startTime") or stamp,
            "containerStatuses": statuses,
        }
        if sync.sandbox_message and not sandbox_ready:
            status["message"] = sync.sandbox_message
        return status

    def _container_status(
        self, state: PodState, container: Mapping[str, Any], ctrs: list[EngineContainer], sync: SyncResult
    ) -> dict[str, Any]:
        name = str(container["name"])
        history = sorted((c for c in ctrs if c.name == name), key=lambda c: c.attempt)
        last = history[-1] if history else None
        previous = history[-2] if len(history) > 1 else None
        status: dict[str, Any] = {
            "name": name,
            "image": container.get("image", ""),
            "imageID": "",
            "ready": False,
            "restartCount": last.attempt if last else 0,
            "started": False,
            "state": {"waiting": {"reason": "ContainerCreating"}},
            "lastState": {},
        }
        if last is None:
            if name in sync.waiting:
                reason, message = sync.waiting[name]
                status["state"] = {"waiting": {"reason": reason, "message": message}}
            return status
        attrs = self._containers.inspect(state, last)
        status["containerID"] = self._containers.prefix() + last.id
        if attrs is not None:
            status["image"] = (attrs.get("Config") or {}).get("Image") or status["image"]
            status["imageID"] = self._images.image_id(str(attrs.get("Image") or ""))
        latest_terminated = self._terminated(state, last, attrs)
        previous_terminated = (
            self._terminated(state, previous, self._containers.inspect(state, previous)) if previous else None
        )
        if last.running and attrs is not None and last.id not in state.start_failures:
            started = podspec.parse_engine_time((attrs.get("State") or {}).get("StartedAt"))
            status["state"] = {"running": {"startedAt": podspec.format_time(started or self._clock())}}
            status["ready"] = status["started"] = True
            if previous_terminated:
                status["lastState"] = {"terminated": previous_terminated}
        elif name in sync.waiting:
            reason, message = sync.waiting[name]
            status["state"] = {"waiting": {"reason": reason, "message": message}}
            if latest_terminated:
                status["lastState"] = {"terminated": latest_terminated}
        elif latest_terminated:
            status["state"] = {"terminated": latest_terminated}
            if previous_terminated:
                status["lastState"] = {"terminated": previous_terminated}
        elif previous_terminated:
            status["lastState"] = {"terminated": previous_terminated}
        return status

    def _terminated(
        self, state: PodState, ctr: EngineContainer | None, attrs: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """``ContainerStateTerminated`` of a stopped (or failed-to-start) container."""
        if ctr is None:
            return None
        failure = state.start_failures.get(ctr.id)
        if failure is not None:
            stamp = podspec.format_time(failure[0])
            return {
                "exitCode": 128,
                "reason": "StartError",
                "message": failure[1],
                "startedAt": stamp,
                "finishedAt": stamp,
                "containerID": self._containers.prefix() + ctr.id,
            }
        if ctr.state not in EXITED or attrs is None:
            return None
        engine_state = attrs.get("State") or {}
        exit_code = int(engine_state.get("ExitCode") or 0)
        finished = podspec.parse_engine_time(engine_state.get("FinishedAt"))
        started = podspec.parse_engine_time(engine_state.get("StartedAt"))
        reason = "OOMKilled" if engine_state.get("OOMKilled") else ("Completed" if exit_code == 0 else "Error")
        out: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": podspec.format_time(started) if started else None,
            "finishedAt": podspec.format_time(finished) if finished else None,
            "containerID": self._containers.prefix() + ctr.id,
        }
        if engine_state.get("Error"):
            out["message"] = str(engine_state["Error"])
        return out
