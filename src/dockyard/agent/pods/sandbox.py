"""The sandbox manager: the pod's infra ("pause") container.

kubelet ``kuberuntime_sandbox.go`` ``createPodSandbox``: one infra container per pod holds the network and
IPC namespaces, publishes the ``hostPort``\\ s on loopback and sets the pod's namespaced sysctls; every app
container joins it (``network_mode="container:<infra>"``). A failed creation (often a host port still held
by a terminating pod) is retried after 1 s doubling, as the kubelet's pod worker retries a failed sync.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from lightkube.models.core_v1 import PodSpec
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.engine import containers as engine
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.pods.actions import SandboxAction
from dockyard.agent.pods.containers import ContainerManager
from dockyard.agent.pods.images import ImageManager
from dockyard.agent.pods.state import EngineContainer, Failure, PodState
from dockyard.agent.podspec import INFRA_NAME

__all__ = ["SANDBOX_RETRY_INITIAL", "SandboxManager"]

log = logging.getLogger(__name__)

SANDBOX_RETRY_INITIAL = 1.0  # seconds before the first retry of a failed pod sandbox


class SandboxManager:
    """Creates and stops pod sandboxes.

    Args:
        engine: the engine's container operations.
        containers: removes and kills containers.
        images: provides the pause image.
        instance: the agent identity (label ``dockyard.instance``).
        backoff: its ``maximum`` caps the sandbox retry delay; the first retry waits
            ``min(SANDBOX_RETRY_INITIAL, backoff.initial)``.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        engine: engine.Containers,
        *,
        containers: ContainerManager,
        images: ImageManager,
        instance: str,
        backoff: podspec.BackOffPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._containers = containers
        self._images = images
        self._instance = instance
        self._backoff = backoff
        self._clock = clock

    def create(
        self,
        state: PodState,
        pod: Pod,
        action: SandboxAction,
        bindings: dict[str, list[tuple[str, int]]],
        ctrs: list[EngineContainer],
    ) -> tuple[str | None, str]:
        """Create and start the infra container ``action`` asks for (``CREATE``).

        Args:
            bindings: the pod's port bindings (:func:`podspec.port_bindings`).
            ctrs: the pod's engine containers; old infra containers are removed once the new one runs.

        Returns:
            ``(infra_id, "")``, or ``(None, message)`` when creation failed (the failure's back-off is
            recorded in ``state.sandbox_failure``).
        """
        spec = pod.spec or PodSpec(containers=[])
        meta = pod.metadata
        assert meta is not None
        name = podspec.container_name(
            container=INFRA_NAME,
            pod=meta.name or "",
            namespace=meta.namespace or "default",
            uid=str(meta.uid),
            attempt=action.attempt,
        )
        infra_id = None
        try:
            self._images.ensure_pause_image()
            self._containers.remove_named(name)
            published: dict[int | str, Any] = {k: v for k, v in bindings.items()}
            infra_id = self._engine.create(
                image=self._images.pause_image,
                name=name,
                hostname=(spec.hostname or meta.name or "")[:63],
                labels=podspec.container_labels(
                    pod,
                    container=INFRA_NAME,
                    spec_hash=action.spec_hash,
                    restarts=action.attempt,
                    backoff=0,
                    instance=self._instance,
                ),
                ports=[_port_spec(k) for k in bindings],
                host_config={
                    "port_bindings": published or None,
                    "ipc_mode": "shareable",
                    "sysctls": podspec.sandbox_sysctls(spec) or None,
                },
            )
            self._engine.start(infra_id)
        except (engine_errors.EngineError, OSError) as e:
            message = f"failed to create pod sandbox: {e}"
            if infra_id is not None:
                self._containers.remove_quietly(state, infra_id)
            failure = state.sandbox_failure
            first = min(SANDBOX_RETRY_INITIAL, self._backoff.initial)
            backoff = first if failure is None else min(2 * failure.backoff, self._backoff.maximum)
            state.sandbox_failure = Failure(retry_at=self._clock() + backoff, backoff=backoff, message=message)
            log.warning("pod %s/%s: %s", meta.namespace, meta.name, message)
            return None, message
        state.sandbox_failure = None
        for c in ctrs:
            if c.name == INFRA_NAME:
                # Podman refuses while old app containers still depend on it; a later GC retries.
                self._containers.remove_quietly(state, c.id)
        return infra_id, ""


def _port_spec(key: str) -> int | tuple[int, str]:
    port, proto = key.split("/", 1)
    return (int(port), proto) if proto != "tcp" else int(port)
