"""Pod spec fields the node agent does not honour: each one is a 422 naming it, never accepted and ignored.

The node agent runs every pod on its one node, in the engine's own network, DNS and scheduling, with cpu
and memory limits only. So a field that asks for more is refused here, on Pods and on the pod templates of
workloads (Kubernetes' own checks where it has them, ``ValidatePodSpec`` in
``pkg/apis/core/validation/validation.go``, and the field's wording there), while a value that changes
nothing on this node stays accepted:

- scheduling: ``nodeSelector`` only ``kubernetes.io/os: linux`` (true of every dockyard node), preferred
  (soft) affinities, ``tolerations`` (the node has no taints), ``topologySpreadConstraints`` on
  ``kubernetes.io/hostname`` or with ``ScheduleAnyway`` (one node: no skew), ``schedulerName``
  ``default-scheduler``, ``os.name`` ``linux``; refused: other node selectors, required affinities,
  ``schedulingGates``, priorities, ``overhead``;
- DNS and names: ``dnsPolicy`` ``ClusterFirst`` or ``Default`` (both: the engine's resolver), no
  ``dnsConfig``, ``hostAliases``, ``setHostnameAsFQDN`` or ``enableServiceLinks: true`` (no service
  variables are injected);
- lifecycle: no ``activeDeadlineSeconds`` or ``readinessGates``; container ``lifecycle`` hooks (``postStart``,
  ``preStop``) with exactly one handler each, as Kubernetes ``validateLifecycle``/``validateHandler``: ``exec`` (a
  command), ``httpGet`` (the probes' rules, :func:`dockyard.api.probes.action_causes`: loopback ``host`` only, a
  port number or a declared port name) or ``sleep`` (``seconds`` from 1 to the pod's grace period); refused:
  ``tcpSocket`` (Kubernetes keeps it only for compatibility and fails such a hook at run time: it was never
  implemented) and ``stopSignal`` (the engine's stop signal is not chosen per container); a
  ``terminationMessagePath`` must be absolute (the agent binds a file there and reads it when the container
  ends), a ``terminationMessagePolicy`` ``File`` or ``FallbackToLogsOnError``;
- containers: ``imagePullPolicy`` one of ``Always``, ``IfNotPresent``, ``Never``; no container
  ``restartPolicy`` (Kubernetes: only init containers); ``resources`` of ``cpu`` and ``memory`` only, each a
  quantity, a request at most its limit; no ``claims``, ``resizePolicy`` or ``volumeDevices``; ports ``TCP``
  or ``UDP`` (spelled so), names unique; mounts without ``subPathExpr``, ``mountPropagation`` other than
  ``None`` or ``recursiveReadOnly`` other than ``Disabled``, each ``mountPath`` once; volume names unique.

Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dockyard.api import labels as well_known
from dockyard.api import probes
from dockyard.api.errors import Cause
from dockyard.api.quantity import parse_quantity

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "LIFECYCLE_HANDLERS",
    "LIFECYCLE_HOOKS",
    "PRE_STOP_HANDLER_LABEL",
    "lifecycle_causes",
    "unhonoured_causes",
]

_AGENT = "not supported by the node agent"
OS_LABEL = well_known.OS
HOSTNAME_KEY = well_known.HOSTNAME
DEFAULT_SCHEDULER = "default-scheduler"
DNS_POLICIES = ("ClusterFirst", "Default")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PORT_PROTOCOLS = ("TCP", "UDP")
RESOURCES = ("cpu", "memory")
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
DEFAULT_GRACE_SECONDS = 30
"""``terminationGracePeriodSeconds`` when unset (Kubernetes ``SetDefaults_PodSpec``)."""
LIFECYCLE_HOOKS = ("postStart", "preStop")
"""The ``v1.Lifecycle`` hooks the node agent runs."""
PRE_STOP_HANDLER_LABEL = well_known.PRE_STOP_HANDLER
"""Engine container label holding its preStop handler (:data:`dockyard.api.labels.PRE_STOP_HANDLER`)."""
LIFECYCLE_HANDLERS = ("exec", "httpGet", "sleep")
"""``v1.LifecycleHandler`` members the node agent runs (``tcpSocket`` is refused)."""

_REFUSED_WHEN_SET = {
    "activeDeadlineSeconds": "pods are not stopped after a deadline",
    "hostAliases": "/etc/hosts entries are not added",
    "dnsConfig": "DNS settings are not applied: pods use the engine's resolver",
    "schedulingGates": "pods are not held back from the node",
    "priorityClassName": "there are no PriorityClasses: pods are never preempted",
    "priority": "there are no PriorityClasses: pods are never preempted",
    "preemptionPolicy": "there are no PriorityClasses: pods are never preempted",
    "overhead": "there are no RuntimeClasses with overhead",
    "readinessGates": "readiness gates are not evaluated: Ready follows the containers only",
    "resourceClaims": "dynamic resources are not allocated",
    "resources": "pod-level resources are not applied: set them per container (cpu and memory)",
}
_CONTAINER_REFUSED_WHEN_SET = {
    "resizePolicy": "resources are not resized in place: a change restarts the container",
    "volumeDevices": "block devices are not attached",
    "restartPolicy": "may not be set for non-init containers",
}


def _forbidden(field: str, why: str) -> Cause:
    return Cause(field, f"Forbidden: {why}", "FieldValueForbidden")


def _unsupported(field: str, value: Any, supported: tuple[str, ...], why: str = "") -> Cause:
    choices = ", ".join(f'"{s}"' for s in supported)
    return Cause(
        field,
        f'Unsupported value: "{str(value)[:64]}": supported values: {choices}{f" ({why})" if why else ""}',
        "FieldValueNotSupported",
    )


def _set(value: Any) -> bool:
    """Whether a field is given a value that asks for something (an empty list or object asks for nothing)."""
    return value is not None and value != [] and value != {}


def _scheduling_causes(spec: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    selector = spec.get("nodeSelector")
    if isinstance(selector, dict):
        for key, value in selector.items():
            if (key, value) != (OS_LABEL, "linux"):
                causes.append(
                    _forbidden(
                        f"{path}.nodeSelector",
                        f"node selectors other than {OS_LABEL}: linux are {_AGENT} (one node, no node labels)",
                    )
                )
                break
    affinity = spec.get("affinity")
    if isinstance(affinity, dict):
        for kind in ("nodeAffinity", "podAffinity", "podAntiAffinity"):
            terms = affinity.get(kind)
            if isinstance(terms, dict) and _set(terms.get("requiredDuringSchedulingIgnoredDuringExecution")):
                causes.append(
                    _forbidden(
                        f"{path}.affinity.{kind}.requiredDuringSchedulingIgnoredDuringExecution",
                        f"required affinities are {_AGENT} (preferred ones are accepted: one node)",
                    )
                )
    for i, constraint in enumerate(spec.get("topologySpreadConstraints") or []):
        if (
            isinstance(constraint, dict)
            and constraint.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
            and constraint.get("topologyKey") != HOSTNAME_KEY
        ):
            causes.append(
                _unsupported(
                    f"{path}.topologySpreadConstraints[{i}].topologyKey",
                    constraint.get("topologyKey"),
                    (HOSTNAME_KEY,),
                    "the node has no other topology labels; or whenUnsatisfiable: ScheduleAnyway",
                )
            )
    scheduler = spec.get("schedulerName")
    if scheduler is not None and scheduler != DEFAULT_SCHEDULER:
        causes.append(
            _unsupported(f"{path}.schedulerName", scheduler, (DEFAULT_SCHEDULER,), "the node agent places every pod")
        )
    os_ = spec.get("os")
    if isinstance(os_, dict) and os_.get("name") != "linux":
        causes.append(_unsupported(f"{path}.os.name", os_.get("name"), ("linux",)))
    return causes


def _pod_level_causes(spec: dict[str, Any], path: str) -> list[Cause]:
    causes = [
        _forbidden(f"{path}.{key}", f"{why} ({_AGENT})")
        for key, why in _REFUSED_WHEN_SET.items()
        if _set(spec.get(key))
    ]
    policy = spec.get("dnsPolicy")
    if policy is not None and policy not in DNS_POLICIES:
        causes.append(_unsupported(f"{path}.dnsPolicy", policy, DNS_POLICIES, "both give the engine's resolver"))
    for key, why in (
        ("enableServiceLinks", "service environment variables are not injected: set false or leave it unset"),
        ("setHostnameAsFQDN", "pods have no cluster domain"),
    ):
        if spec.get(key) is True:
            causes.append(_forbidden(f"{path}.{key}", f"{why} ({_AGENT})"))
    names: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name") if isinstance(volume, dict) else None
        if isinstance(name, str) and name in names:
            causes.append(Cause(f"{path}.volumes[{i}].name", f'Duplicate value: "{name[:64]}"', "FieldValueDuplicate"))
        names.add(str(name))
    return causes + _scheduling_causes(spec, path)


def _quantity(value: Any) -> Decimal | None:
    try:
        number = parse_quantity(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def _resource_causes(resources: Any, where: str) -> list[Cause]:
    if not isinstance(resources, dict):
        return []
    causes: list[Cause] = []
    amounts: dict[str, dict[str, Decimal]] = {}
    for kind in ("limits", "requests"):
        given = resources.get(kind)
        if not isinstance(given, dict):
            continue
        for name, value in given.items():
            field = f"{where}.{kind}[{name}]"
            if name not in RESOURCES:
                causes.append(_forbidden(field, f"the node agent limits cpu and memory only ({_AGENT})"))
                continue
            amount = _quantity(value)
            if amount is None:
                causes.append(
                    Cause(
                        field, f'Invalid value: "{str(value)[:32]}": must be a non-negative quantity (e.g. 500m, 64Mi)'
                    )
                )
            else:
                amounts.setdefault(kind, {})[name] = amount
    for name in RESOURCES:
        request, limit = amounts.get("requests", {}).get(name), amounts.get("limits", {}).get(name)
        if request is not None and limit is not None and request > limit:
            value = resources["requests"][name]
            causes.append(
                Cause(
                    f"{where}.requests",
                    f'Invalid value: "{value}": must be less than or equal to {name} limit of {resources["limits"][name]}',
                )
            )
    if _set(resources.get("claims")):
        causes.append(_forbidden(f"{where}.claims", f"dynamic resources are not allocated ({_AGENT})"))
    return causes


def _mount_causes(mounts: Any, where: str) -> list[Cause]:
    causes: list[Cause] = []
    paths: set[str] = set()
    for j, mount in enumerate(mounts if isinstance(mounts, list) else []):
        if not isinstance(mount, dict):
            continue
        mwhere = f"{where}.volumeMounts[{j}]"
        if mount.get("subPathExpr"):
            causes.append(_forbidden(f"{mwhere}.subPathExpr", f"expanded subpaths are {_AGENT}: use subPath"))
        propagation = mount.get("mountPropagation")
        if propagation is not None and propagation != "None":
            causes.append(_unsupported(f"{mwhere}.mountPropagation", propagation, ("None",), _AGENT))
        recursive = mount.get("recursiveReadOnly")
        if recursive is not None and recursive != "Disabled":
            causes.append(_unsupported(f"{mwhere}.recursiveReadOnly", recursive, ("Disabled",), _AGENT))
        path = mount.get("mountPath")
        if isinstance(path, str):
            if path in paths:
                causes.append(Cause(f"{mwhere}.mountPath", "must be unique", "FieldValueInvalid"))
            paths.add(path)
    return causes


def lifecycle_causes(lifecycle: Any, where: str, container: dict[str, Any], grace: Any) -> list[Cause]:
    """Causes against a container's ``lifecycle`` at ``where`` (``spec.containers[0].lifecycle``); ``grace``: the
    pod's ``terminationGracePeriodSeconds`` (``None``: the default), the bound of a ``sleep`` (Kubernetes
    ``validateSleepAction``, 1.32: more than 0 and at most the grace period)."""
    if lifecycle is None:
        return []
    if not isinstance(lifecycle, dict):
        return [Cause(where, "must be an object")]
    causes: list[Cause] = []
    if lifecycle.get("stopSignal") is not None:
        causes.append(_forbidden(f"{where}.stopSignal", f"containers are stopped with the engine's SIGTERM ({_AGENT})"))
    limit = grace if isinstance(grace, int) and not isinstance(grace, bool) and grace >= 0 else DEFAULT_GRACE_SECONDS
    for hook in LIFECYCLE_HOOKS:
        handler = lifecycle.get(hook)
        if handler is None:
            continue
        hwhere = f"{where}.{hook}"
        if not isinstance(handler, dict):
            causes.append(Cause(hwhere, "must be an object"))
            continue
        given = [k for k in (*LIFECYCLE_HANDLERS, "tcpSocket") if handler.get(k) is not None]
        if not given:
            causes.append(Cause(hwhere, "Required value: must specify a handler type", "FieldValueRequired"))
        elif len(given) > 1:
            causes.append(Cause(hwhere, "Forbidden: may not specify more than 1 handler type", "FieldValueForbidden"))
        for kind in given:
            value = handler[kind]
            if kind == "tcpSocket":
                causes.append(
                    _forbidden(
                        f"{hwhere}.tcpSocket",
                        "tcpSocket is not supported as a lifecycle handler (Kubernetes never ran it: such a hook "
                        "fails); use exec, httpGet or sleep",
                    )
                )
            elif kind == "sleep":
                causes.extend(_sleep_causes(value, f"{hwhere}.sleep", limit))
            else:
                causes.extend(probes.action_causes(kind, value, f"{hwhere}.{kind}", container, what="lifecycle hooks"))
    return causes


def _sleep_causes(sleep: Any, where: str, grace: int) -> list[Cause]:
    if not isinstance(sleep, dict):
        return [Cause(where, "must be an object")]
    seconds = sleep.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 < seconds <= grace:
        return [
            Cause(
                f"{where}.seconds",
                f"Invalid value: {str(seconds)[:32]}: must be greater than 0 and less than "
                f"terminationGracePeriodSeconds ({grace})",
            )
        ]
    return []


def _container_causes(container: dict[str, Any], where: str, grace: Any = None) -> list[Cause]:
    causes = [
        _forbidden(f"{where}.{key}", why if key == "restartPolicy" else f"{why} ({_AGENT})")
        for key, why in _CONTAINER_REFUSED_WHEN_SET.items()
        if _set(container.get(key))
    ]
    pull = container.get("imagePullPolicy")
    if pull is not None and pull not in PULL_POLICIES:
        causes.append(_unsupported(f"{where}.imagePullPolicy", pull, PULL_POLICIES))
    path = container.get("terminationMessagePath")
    if path is not None and (not isinstance(path, str) or not path.startswith("/") or len(path) > 4096):
        causes.append(Cause(f"{where}.terminationMessagePath", "Invalid value: must be an absolute path"))
    policy = container.get("terminationMessagePolicy")
    if policy is not None and policy not in TERMINATION_MESSAGE_POLICIES:
        causes.append(_unsupported(f"{where}.terminationMessagePolicy", policy, TERMINATION_MESSAGE_POLICIES))
    causes.extend(_resource_causes(container.get("resources"), f"{where}.resources"))
    port_names: set[str] = set()
    for j, port in enumerate(container.get("ports") or [] if isinstance(container.get("ports"), list) else []):
        if not isinstance(port, dict):
            continue
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PORT_PROTOCOLS and str(protocol).upper() in ("TCP", "UDP", "SCTP"):
            causes.append(
                _unsupported(
                    f"{where}.ports[{j}].protocol", protocol, PORT_PROTOCOLS, "the engines publish TCP and UDP"
                )
            )
        name = port.get("name")
        if isinstance(name, str) and name:
            if name in port_names:
                causes.append(
                    Cause(f"{where}.ports[{j}].name", f'Duplicate value: "{name[:64]}"', "FieldValueDuplicate")
                )
            port_names.add(name)
    causes.extend(_mount_causes(container.get("volumeMounts"), where))
    causes.extend(lifecycle_causes(container.get("lifecycle"), f"{where}.lifecycle", container, grace))
    return causes


def unhonoured_causes(spec: Any, path: str = "spec") -> list[Cause]:
    """422 causes for the fields of a pod spec (``path``: ``spec`` or ``spec.template.spec``) that the node agent
    would not honour (see the module docstring); ``[]`` when there are none."""
    if not isinstance(spec, dict):
        return []
    causes = _pod_level_causes(spec, path)
    containers = spec.get("containers")
    for i, container in enumerate(containers if isinstance(containers, list) else []):
        if isinstance(container, dict):
            causes.extend(
                _container_causes(container, f"{path}.containers[{i}]", spec.get("terminationGracePeriodSeconds"))
            )
    return causes
