"""apps/v1 Deployment and ReplicaSet spec rules, and the strategy values the controllers read. Pure: no I/O.

Kubernetes ``pkg/apis/apps/validation`` (``ValidateDeploymentSpec``, ``ValidateReplicaSetSpec``,
``ValidatePodTemplateSpecForReplicaSet``, ``ValidateDeploymentStrategy``, ``ValidateRollingUpdateDeployment``)
with its field paths and wording, read against apps/v1 defaulting (``SetDefaults_Deployment``): an unset
``strategy.type`` is ``RollingUpdate``, unset ``maxSurge`` / ``maxUnavailable`` are ``25%``, an unset
``progressDeadlineSeconds`` is 600. The pod spec inside the template is checked with a Pod's rules elsewhere
(:mod:`dockyard.api.validation`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.api import labelselector, objectmeta
from dockyard.api.errors import Cause

__all__ = [
    "DEFAULT_MAX_SURGE",
    "DEFAULT_MAX_UNAVAILABLE",
    "DEFAULT_PROGRESS_DEADLINE",
    "DEFAULT_REVISION_HISTORY_LIMIT",
    "RECREATE",
    "ROLLING_UPDATE",
    "percent",
    "spec_causes",
]

RECREATE = "Recreate"
ROLLING_UPDATE = "RollingUpdate"
STRATEGY_TYPES = (RECREATE, ROLLING_UPDATE)
"""``spec.strategy.type`` values (``apps.DeploymentStrategyType``); unset is ``RollingUpdate``."""
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_PROGRESS_DEADLINE = 600
"""``spec.progressDeadlineSeconds`` when unset (apps/v1 defaulting)."""
DEFAULT_REVISION_HISTORY_LIMIT = 10
RESTART_ALWAYS = "Always"
POD_RESTART_POLICIES = ("Always", "OnFailure", "Never")

NEGATIVE = "must be greater than or equal to 0"
"""``validation.IsNegativeErrorMsg``."""
_PERCENT_FMT = "[0-9]+%"
_PERCENT = re.compile(f"^{_PERCENT_FMT}$")
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"


def percent(value: Any) -> int | None:
    """The number of a valid percent string (``"25%"`` → 25; ``validation.IsValidPercent``: ``[0-9]+%``), or
    None for anything else (``"abc"``, ``"25"``, ``"-5%"``, ``"2.5%"``, an integer)."""
    if not isinstance(value, str) or not _PERCENT.match(value):
        return None
    return int(value[:-1])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _nonnegative(value: Any, field: str) -> list[Cause]:
    """``ValidateNonnegativeField`` (JSON types were checked before: only a negative integer is refused here)."""
    if _is_int(value) and value < 0:
        return [Cause(field, labelselector.invalid(value, NEGATIVE))]
    return []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_or_percent_causes(value: Any, field: str) -> list[Cause]:
    """``ValidatePositiveIntOrPercent``: a non-negative integer or a percent string."""
    if value is None:
        return []
    if isinstance(value, str):
        if percent(value) is None:
            detail = labelselector.regex_error(_PERCENT_MSG, _PERCENT_FMT, "1%", "93%")
            return [Cause(field, labelselector.invalid(value, detail))]
        return []
    if _is_int(value):
        return _nonnegative(value, field)
    return [Cause(field, labelselector.invalid(value, "must be an integer or percentage (e.g '5%')"))]


def _amount(value: Any) -> int:
    """``getIntOrPercentValue``: a percent string's number, an integer, or (as ``IntOrString.IntValue``) the
    integer a string spells, else 0."""
    number = percent(value)
    if number is not None:
        return number
    if _is_int(value):
        return int(value)
    try:
        return int(value) if isinstance(value, str) else 0
    except ValueError:
        return 0


def _strategy_causes(strategy: Any, path: str) -> list[Cause]:
    """``ValidateDeploymentStrategy`` with ``ValidateRollingUpdateDeployment``, after defaulting."""
    if strategy is None:
        return []
    if not isinstance(strategy, dict):
        return [Cause(path, "must be an object")]
    kind = strategy.get("type") or ROLLING_UPDATE
    rolling = strategy.get("rollingUpdate")
    if kind == RECREATE:
        if rolling is not None:
            return [
                Cause(
                    f"{path}.rollingUpdate",
                    f"Forbidden: may not be specified when strategy `type` is '{RECREATE}'",
                    "FieldValueForbidden",
                )
            ]
        return []
    if kind != ROLLING_UPDATE:
        supported = ", ".join(f'"{t}"' for t in STRATEGY_TYPES)
        return [
            Cause(
                path,
                f"Unsupported value: {labelselector.show(kind)}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        ]
    rolling = _dict(rolling)
    where = f"{path}.rollingUpdate"
    surge = rolling.get("maxSurge", DEFAULT_MAX_SURGE)
    unavailable = rolling.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    causes = _int_or_percent_causes(rolling.get("maxUnavailable"), f"{where}.maxUnavailable")
    causes += _int_or_percent_causes(rolling.get("maxSurge"), f"{where}.maxSurge")
    if _amount(unavailable) == 0 and _amount(surge) == 0:
        causes.append(
            Cause(f"{where}.maxUnavailable", labelselector.invalid(unavailable, "may not be 0 when `maxSurge` is 0"))
        )
    share = percent(unavailable)
    if share is not None and share > 100:
        causes.append(
            Cause(f"{where}.maxUnavailable", labelselector.invalid(unavailable, "must not be greater than 100%"))
        )
    return causes


def _selector_causes(selector: Any, template_labels: Any, path: str) -> list[Cause]:
    """``spec.selector`` required, valid and not empty; and it must select the template's labels."""
    if selector is None:
        return [Cause(f"{path}.selector", "Required value", "FieldValueRequired")]
    if not isinstance(selector, dict):
        return [Cause(f"{path}.selector", labelselector.invalid(selector, "must be a label selector"))]
    causes = labelselector.selector_causes(selector, f"{path}.selector")
    if labelselector.is_empty(selector):
        causes.append(
            Cause(f"{path}.selector", labelselector.invalid(selector, "empty selector is invalid for deployment"))
        )
    if causes:
        if not labelselector.is_valid(selector):
            causes.append(Cause(f"{path}.selector", labelselector.invalid(selector, "invalid label selector")))
        return causes
    labels = template_labels if isinstance(template_labels, dict) else {}
    if not labelselector.matches(selector, labels):
        causes.append(
            Cause(
                f"{path}.template.metadata.labels",
                labelselector.invalid(labels, "`selector` does not match template `labels`"),
            )
        )
    return causes


def _template_causes(template: dict[str, Any], path: str) -> list[Cause]:
    """``ValidatePodTemplateSpecForReplicaSet`` beyond the pod spec: ``restartPolicy`` is ``Always`` (the
    default) and ``activeDeadlineSeconds`` is unset; the template's labels and annotations as an object's
    (:func:`dockyard.api.objectmeta.template_causes`). A ``restartPolicy`` no pod may have is the pod rules'."""
    spec = _dict(template.get("spec"))
    causes = objectmeta.template_causes(template.get("metadata") or {}, f"{path}.metadata")
    policy = spec.get("restartPolicy") or RESTART_ALWAYS
    if policy != RESTART_ALWAYS and policy in POD_RESTART_POLICIES:
        causes.append(
            Cause(
                f"{path}.spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "{RESTART_ALWAYS}"',
                "FieldValueNotSupported",
            )
        )
    if spec.get("activeDeadlineSeconds") is not None:
        causes.append(
            Cause(
                f"{path}.spec.activeDeadlineSeconds",
                "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
                "FieldValueForbidden",
            )
        )
    return causes


def spec_causes(spec: Mapping[str, Any], *, deployment: bool, path: str = "spec") -> list[Cause]:
    """The causes of ``ValidateDeploymentSpec`` (``deployment``) or ``ValidateReplicaSetSpec``, but those of
    the template's pod spec.

    Args:
        spec: ``spec`` of the object as sent (not defaulted).
        deployment: True for a Deployment (adds ``strategy``, ``revisionHistoryLimit``,
            ``progressDeadlineSeconds``).
        path: the field path of ``spec``.
    Returns:
        One cause per bad field, named by its path (``spec.strategy.rollingUpdate.maxSurge``).
    """
    template = _dict(spec.get("template"))
    causes = _nonnegative(spec.get("replicas"), f"{path}.replicas")
    causes += _selector_causes(spec.get("selector"), _dict(template.get("metadata")).get("labels"), path)
    causes += _template_causes(template, f"{path}.template")
    min_ready: Any = spec.get("minReadySeconds")
    causes += _nonnegative(min_ready, f"{path}.minReadySeconds")
    if not deployment:
        return causes
    causes += _strategy_causes(spec.get("strategy"), f"{path}.strategy")
    causes += _nonnegative(spec.get("revisionHistoryLimit"), f"{path}.revisionHistoryLimit")
    given = spec.get("progressDeadlineSeconds")
    causes += _nonnegative(given, f"{path}.progressDeadlineSeconds")
    deadline: Any = DEFAULT_PROGRESS_DEADLINE if given is None else given
    floor: int = min_ready if _is_int(min_ready) else 0
    if _is_int(deadline) and deadline <= floor:
        causes.append(
            Cause(
                f"{path}.progressDeadlineSeconds",
                labelselector.invalid(deadline, "must be greater than minReadySeconds"),
            )
        )
    return causes
