"""The prober seam: where liveness, readiness and startup probes will plug in.

kubelet ``pkg/kubelet/prober/prober_manager.go``: the pod worker adds a pod's probe workers when it syncs
the pod, removes them when the pod goes, and the status manager asks the prober for each container's
``ready`` and ``started`` before it computes the pod's conditions. Probes are not implemented yet:
:class:`NoProbes` (the default) leaves a running container ``ready`` and ``started``, as the kubelet does
for a container without probes.
"""

from __future__ import annotations

from typing import Protocol

from lightkube.models.core_v1 import ContainerStatus
from lightkube.resources.core_v1 import Pod

__all__ = ["NoProbes", "ProberManager"]


class ProberManager(Protocol):
    """What the pod runtime needs from a prober manager (kubelet ``prober.Manager``)."""

    def add_pod(self, pod: Pod) -> None:
        """Start probing the pod's containers (called on every sync; idempotent)."""

    def remove_pod(self, uid: str) -> None:
        """Stop probing the pod ``uid`` (it was killed or deleted)."""

    def update_pod_status(self, pod: Pod, container_statuses: list[ContainerStatus]) -> None:
        """Set ``ready`` and ``started`` of the pod's ``containerStatuses`` (kubelet ``UpdatePodStatus``)
        in place, before the pod's conditions are computed from them."""


class NoProbes:
    """A prober manager for pods without probes: containers are ready once running."""

    def add_pod(self, pod: Pod) -> None:
        pass

    def remove_pod(self, uid: str) -> None:
        pass

    def update_pod_status(self, pod: Pod, container_statuses: list[ContainerStatus]) -> None:
        pass
