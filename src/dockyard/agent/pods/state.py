"""What the pod worker knows about one pod beyond its spec: the engine's containers and the per-pod memory.

The engine is the record (container labels carry the spec hash, restart count, back-off and grace period),
so a new agent adopts what runs. :class:`PodState` holds only what leaves no trace on the engine; it belongs
to the pod's worker (:class:`dockyard.agent.pods.worker.PodWorker`) and goes with it when the pod goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.agent.pods.lifecycle import HookRun

__all__ = ["EXITED", "RUNNING", "EngineContainer", "ExitInfo", "Failure", "PodState", "latest"]

#: Engine ``State`` values of a container that runs (or is about to stop).
RUNNING = frozenset({"running", "paused", "restarting", "stopping"})
#: Engine ``State`` values of a container that stopped.
EXITED = frozenset({"exited", "dead", "stopped"})


@dataclass(frozen=True)
class EngineContainer:
    """One engine container of a pod, as its labels describe it.

    Attributes:
        id: engine container id.
        name: the pod's container name (``POD`` for the infra container, :data:`podspec.INFRA_NAME`).
        state: the engine's ``State``, lower case (``created``, ``running``, ``exited``, …).
        attempt: restart count when it was created (label ``dockyard.container.restarts``).
        hash: spec hash it was created from (kubelet ``HashContainer``; the infra's is the sandbox hash).
        backoff: crash back-off in seconds in force when it was created (0: none).
        grace: the pod's termination grace period in seconds when it was created.
        pre_stop: its preStop handler when it was created (JSON, :func:`.lifecycle.pre_stop_label`), or ''.
    """

    id: str
    name: str
    state: str
    attempt: int = 0
    hash: str = ""
    backoff: float = 0.0
    grace: int = 30
    pre_stop: str = ""

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def created(self) -> bool:
        """Created but never started (neither running nor exited)."""
        return self.state not in RUNNING and self.state not in EXITED


@dataclass(frozen=True)
class ExitInfo:
    """How a stopped container ended: exit code and engine times (seconds since the epoch)."""

    exit_code: int
    started_at: float
    finished_at: float


@dataclass
class Failure:
    """In-memory back-off for a failure that leaves no trace on the engine (a pull, a sandbox).

    Attributes:
        retry_at: seconds since the epoch before which no retry happens.
        backoff: the delay that set ``retry_at``, in seconds (doubles on each failure).
        message: what failed, for the container's or pod's status.
    """

    retry_at: float
    backoff: float
    message: str


@dataclass
class PodState:
    """The per-pod memory of the pod worker (kubelet: the pod worker's and runtime caches for one pod).

    Attributes:
        uid: the pod's ``metadata.uid``.
        inspected: container id → engine inspect of containers that exited (immutable, so cached).
        terminating: container id → when SIGKILL follows the SIGTERM already sent (seconds since the epoch).
        changed: ids of containers killed because their spec hash changed (restarted whatever the policy).
        start_failures: container id → ``(when, message)`` of a failed engine start (``StartError``).
        pull_failures: ``(container name, image)`` → image pull back-off.
        sandbox_failure: back-off after the pod sandbox could not be created.
        hooks: ``(container id, "postStart"|"preStop")`` → the lifecycle hook run (:mod:`.lifecycle`).
    """

    uid: str
    inspected: dict[str, dict[str, Any]] = field(default_factory=dict)
    terminating: dict[str, float] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    start_failures: dict[str, tuple[float, str]] = field(default_factory=dict)
    pull_failures: dict[tuple[str, str], Failure] = field(default_factory=dict)
    sandbox_failure: Failure | None = None
    hooks: dict[tuple[str, str], HookRun] = field(default_factory=dict)


def latest(ctrs: list[EngineContainer] | tuple[EngineContainer, ...], name: str) -> EngineContainer | None:
    """The container of ``name`` with the highest attempt, or ``None``."""
    mine = [c for c in ctrs if c.name == name]
    return max(mine, key=lambda c: c.attempt) if mine else None
