"""Pure rolling-update arithmetic of the Kubernetes Deployment controller.

Sources: ``pkg/controller/deployment/rolling.go`` and ``util/deployment_util.go``
(``ResolveFenceposts``, ``NewRSNewReplicas``, ``MaxUnavailable``) and the
Deployment concepts page ("Max Surge", "Max Unavailable"). No I/O.

Also what the Deployment and ImageDeploy controllers both read of a rollout: the
``ProgressDeadlineExceeded`` reason and :func:`read_pod`. They live here, not in
``deployment.py``, so the ImageDeploy controller does not import the Deployment
controller's module (on a cluster it runs without it; its RBAC covers only its own calls).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from lightkube.models.apps_v1 import DeploymentStrategy
from lightkube.resources.core_v1 import Pod

from dockyard.api import phases, workloads
from dockyard.client import objects, resources

DEFAULT_SURGE = workloads.DEFAULT_MAX_SURGE
DEFAULT_UNAVAILABLE = workloads.DEFAULT_MAX_UNAVAILABLE
RECREATE = workloads.RECREATE
ROLLING_UPDATE = workloads.ROLLING_UPDATE
TIMED_OUT = phases.FailedImageReason.PROGRESS_DEADLINE
"""Reason of a Deployment's ``Progressing=False`` condition past ``spec.progressDeadlineSeconds``
(``deploymentutil.TimedOutReason``)."""


def _semantic(value: Any) -> Any:
    """``value`` without nulls, empty maps and empty lists, which decode to the same Go struct."""
    if isinstance(value, dict):
        out = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def template_hash(template: dict[str, Any]) -> str:
    """A stable 10-character hash of a pod template (the ``pod-template-hash`` label value).

    Computed over the template's meaning, not its spelling: ``kubectl rollout undo``
    sends back a ReplicaSet's template as Go serialises it (``creationTimestamp: null``,
    ``resources: {}``), which must hash as the original did.
    """
    canonical = json.dumps(_semantic(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def scaled_value(value: int | str | None, total: int, *, round_up: bool, default: str) -> int:
    """Resolve an ``IntOrString`` (``3`` or ``"25%"``) against ``total`` replicas
    (``intstr.GetScaledValueFromIntOrPercent``).

    Raises:
        ValueError: for a string that is not a percentage (``[0-9]+%``, :func:`dockyard.api.workloads.percent`);
            the API server refuses one (422), so only an object stored before that rule can hold it.
    """
    if value is None:
        value = default
    if isinstance(value, int):
        return value
    share = workloads.percent(value)
    if share is None:
        raise ValueError(f"{value!r}: expected an integer or a percentage such as '25%'")
    exact = share * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def is_recreate(strategy: DeploymentStrategy | None) -> bool:
    """True for ``strategy.type: Recreate`` (the default type is RollingUpdate)."""
    return strategy is not None and strategy.type == RECREATE


def fenceposts(strategy: DeploymentStrategy | None, desired: int) -> tuple[int, int]:
    """``(maxSurge, maxUnavailable)`` for a RollingUpdate strategy; never both zero (``ResolveFenceposts``:
    surge rounds up, unavailable down)."""
    rolling = strategy.rollingUpdate if strategy is not None else None
    surge = scaled_value(
        rolling.maxSurge if rolling is not None else None, desired, round_up=True, default=DEFAULT_SURGE
    )
    unavailable = scaled_value(
        rolling.maxUnavailable if rolling is not None else None, desired, round_up=False, default=DEFAULT_UNAVAILABLE
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(strategy: DeploymentStrategy | None, desired: int) -> int:
    """``deploymentutil.MaxUnavailable``: 0 for Recreate or no replicas, else the resolved fencepost,
    capped at ``desired``."""
    if is_recreate(strategy) or desired == 0:
        return 0
    return min(fenceposts(strategy, desired)[1], desired)


@dataclass(frozen=True)
class ReplicaSetState:
    """What the rollout needs of one ReplicaSet: name, ``spec.replicas``, ``status.availableReplicas`` and, for
    ``Recreate``, its pods still running (not ``Succeeded``/``Failed``, being deleted or not)."""

    name: str
    replicas: int
    available: int
    running: int = 0


def plan(
    *, desired: int, strategy: DeploymentStrategy | None, new: ReplicaSetState, old: list[ReplicaSetState]
) -> dict[str, int]:
    """One step of a rollout: the ``spec.replicas`` to set, by ReplicaSet name.

    ``old`` is ordered oldest first. RollingUpdate scales the new ReplicaSet up
    within ``desired + maxSurge`` and the old ones down while at least
    ``desired - maxUnavailable`` replicas stay available, counting the new
    set's not-yet-available replicas against them (``maxScaledDown``); Recreate scales old
    ones to zero and the new one up only when no old pod is left running, its grace period included
    (``rolloutRecreate``: ``oldPodsRunning``), so the two never run side by side.
    """
    out: dict[str, int] = {}
    if is_recreate(strategy):
        for rs in old:
            if rs.replicas:
                out[rs.name] = 0
        if not any(rs.replicas or rs.available or rs.running for rs in old) and new.replicas != desired:
            out[new.name] = desired
        return out
    surge, unavailable = fenceposts(strategy, desired)
    total = new.replicas + sum(rs.replicas for rs in old)
    if new.replicas > desired:
        out[new.name] = desired
    elif new.replicas < desired:
        room = desired + surge - total
        if room > 0:
            out[new.name] = min(desired, new.replicas + room)
    available = new.available + sum(rs.available for rs in old)
    can_remove = available - (desired - unavailable)
    # maxScaledDown (reconcileOldReplicaSets): the new set's unavailable replicas count against the old
    # ones, so an old set's stale availableReplicas never lets availability fall below the minimum
    new_after = out.get(new.name, new.replicas)
    max_scaled_down = (
        new_after + sum(rs.replicas for rs in old) - (desired - unavailable) - max(0, new_after - new.available)
    )
    # replicas of old sets that are not available can go without reducing availability
    for rs in old:
        if rs.replicas == 0 or max_scaled_down <= 0:
            continue
        idle = max(0, rs.replicas - rs.available)
        take = min(rs.replicas, idle + max(0, can_remove), max_scaled_down)
        if take > 0:
            out[rs.name] = rs.replicas - take
            can_remove -= max(0, take - idle)
            max_scaled_down -= take
    return out


def read_pod(raw: Any) -> Pod:
    """A listed pod as lightkube's model. A status written by a client that left out fields lightkube's model
    requires (``containerStatuses[].imageID``, which Go decodes to ``""``) is read for what a rollout
    needs of it: ``phase`` and ``conditions``."""
    data = resources.as_dict(raw)
    data.setdefault("kind", "Pod")
    try:
        return cast(Pod, objects.parse(data))
    except msgspec.ValidationError:
        status = data.get("status")
        if isinstance(status, dict):
            data["status"] = {k: v for k, v in status.items() if k in ("phase", "conditions")}
        return cast(Pod, objects.parse(data))
