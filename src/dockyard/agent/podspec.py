"""Pure pod logic for the node agent: no I/O, no engine, no clock of its own.

Everything here follows the kubelet and is driven directly by unit tests:

- Kubernetes resource quantities (``100m``, ``0.5``, ``128Mi``, ``1G``),
  as in ``k8s.io/apimachinery/pkg/api/resource``.
- The per-container spec hash (kubelet ``pkg/kubelet/container/helpers.go``
  ``HashContainer``: FNV-1a 32 over the container's JSON).
- Crash-loop back-off (kubelet ``flowcontrol.Backoff`` as used by
  ``kuberuntime_manager.go`` ``doBackOff``): 10 s doubling to 300 s, reset
  once a container ran for longer than twice the maximum (10 min).
- Pod phase from container states (kubelet ``kubelet_pods.go`` ``getPhase``).
- Pod conditions (``PodScheduled``, ``PodReadyToStartContainers``,
  ``Initialized``, ``ContainersReady``, ``Ready``) with stable
  ``lastTransitionTime``.
- Engine names and labels (kubelet dockershim ``naming.go``:
  ``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>``).
- Security contexts as engine options (kubelet ``securitycontext.DetermineEffectiveSecurityContext``,
  ``kuberuntime/security_context.go``, dockershim ``security_context.go``) and the kubelet's
  ``verifyRunAsNonRoot`` (``kuberuntime/security_context_others.go``).

The engine I/O lives in :mod:`dockyard.agent.pods` (through :mod:`dockyard.agent.engine`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lightkube.models.core_v1 import (
    AppArmorProfile,
    Container,
    ContainerStatus,
    PodCondition,
    PodSecurityContext,
    PodSpec,
    SecurityContext,
    Volume,
)
from lightkube.resources.core_v1 import Pod

from dockyard.api import buildpod, podports, reference, timefmt, validation
from dockyard.api import labels as well_known
from dockyard.api.quantity import parse_quantity

__all__ = [
    "BUILD_POD_LABEL",
    "INFRA_NAME",
    "LABEL_CONTAINER_BACKOFF",
    "LABEL_CONTAINER_HASH",
    "LABEL_CONTAINER_NAME",
    "LABEL_CONTAINER_RESTARTS",
    "LABEL_INSTANCE",
    "LABEL_POD_GRACE",
    "LABEL_POD_NAME",
    "LABEL_POD_NAMESPACE",
    "LABEL_POD_UID",
    "BackOffPolicy",
    "ConfigError",
    "PortError",
    "container_hash",
    "container_labels",
    "container_name",
    "cpu_to_nano",
    "create_args",
    "effective_pull_policy",
    "expand_vars",
    "format_time",
    "grace_period",
    "is_build_pod",
    "memory_to_bytes",
    "milli_cpu_to_shares",
    "parse_engine_time",
    "parse_quantity",
    "pod_conditions",
    "pod_phase",
    "port_bindings",
    "restart_backoff",
    "sandbox_hash",
    "sandbox_sysctls",
    "security_args",
    "should_restart",
    "verify_run_as_non_root",
]

# --- labels and names -------------------------------------------------------

# the engine container labels; their one home is dockyard.api.labels
LABEL_POD_UID = well_known.CONTAINER_POD_UID
LABEL_POD_NAME = well_known.CONTAINER_POD_NAME
LABEL_POD_NAMESPACE = well_known.CONTAINER_POD_NAMESPACE
LABEL_POD_GRACE = well_known.CONTAINER_POD_GRACE
LABEL_CONTAINER_NAME = well_known.CONTAINER_NAME
LABEL_CONTAINER_HASH = well_known.CONTAINER_HASH
LABEL_CONTAINER_RESTARTS = well_known.CONTAINER_RESTARTS
LABEL_CONTAINER_BACKOFF = well_known.CONTAINER_BACKOFF
LABEL_INSTANCE = well_known.CONTAINER_INSTANCE

#: The container name of the infra ("pause") container. Pod container names are
#: DNS labels (lower case), so this can never clash (kubelet dockershim uses
#: the same name).
INFRA_NAME = "POD"

BUILD_POD_LABEL = well_known.BUILD_POD

DEFAULT_GRACE_SECONDS = 30


def is_build_pod(pod: Pod) -> bool:
    """True for build pods, which the agent's build-pod runner handles (:func:`dockyard.api.buildpod.is_build_pod`)."""
    return buildpod.is_build_pod(pod)


def container_name(*, container: str, pod: str, namespace: str, uid: str, attempt: int) -> str:
    """Engine name of a pod container, as the kubelet's dockershim named them.

    ``k8s_<container>_<pod>_<namespace>_<uid8>_<attempt>``; the infra container
    uses :data:`INFRA_NAME` as ``container``.
    """
    return f"k8s_{container}_{pod}_{namespace}_{uid[:8]}_{attempt}"


def container_labels(
    pod: Pod, *, container: str, spec_hash: str, restarts: int, backoff: float, instance: str = ""
) -> dict[str, str]:
    """Labels that make the pod's state derivable from the engine alone."""
    meta = pod.metadata
    assert meta is not None
    return {
        LABEL_INSTANCE: instance,
        LABEL_POD_UID: str(meta.uid),
        LABEL_POD_NAME: meta.name or "",
        LABEL_POD_NAMESPACE: meta.namespace or "default",
        LABEL_POD_GRACE: str(grace_period(pod)),
        LABEL_CONTAINER_NAME: container,
        LABEL_CONTAINER_HASH: spec_hash,
        LABEL_CONTAINER_RESTARTS: str(restarts),
        LABEL_CONTAINER_BACKOFF: _format_seconds(backoff),
    }


def _format_seconds(value: float) -> str:
    return repr(float(value))


def grace_period(pod: Pod) -> int:
    """Termination grace period: ``metadata.deletionGracePeriodSeconds`` when the
    pod is being deleted, else ``spec.terminationGracePeriodSeconds`` (default 30)."""
    deleting = pod.metadata.deletionGracePeriodSeconds if pod.metadata else None
    for value in (deleting, pod.spec.terminationGracePeriodSeconds if pod.spec else None):
        if value is not None:
            return max(0, int(value))
    return DEFAULT_GRACE_SECONDS


# --- quantities -------------------------------------------------------------


def cpu_to_nano(value: str | int | float) -> int:
    """CPU quantity to Docker ``NanoCpus`` (rounded up, like ``MilliValue``)."""
    return math.ceil(parse_quantity(value) * Decimal(10**9))


def memory_to_bytes(value: str | int | float) -> int:
    """Memory quantity to bytes (rounded up, like ``Quantity.Value``)."""
    return math.ceil(parse_quantity(value))


# --- hashing ----------------------------------------------------------------

#: Fields of a container that shape its engine container. Probes, lifecycle,
#: imagePullPolicy, ports (held by the infra container) and termination
#: message settings are left out, so changing them restarts nothing.
_HASHED_FIELDS = (
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "env",
    "envFrom",
    "volumeMounts",
    "resources",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
)


def _prune(value: Any) -> Any:
    """Drop ``None``/empty values so that defaulted and omitted fields hash alike."""
    if isinstance(value, Mapping):
        out = {str(k): _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, (list, tuple)):
        return [_prune(v) for v in value]
    return value


def _fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _hash_json(obj: Any) -> str:
    text = json.dumps(_prune(obj), sort_keys=True, separators=(",", ":"), default=str)
    return f"{_fnv1a32(text.encode()):08x}"


def container_hash(
    container: Container,
    volumes: Iterable[Volume] = (),
    pod_security_context: PodSecurityContext | None = None,
    annotations: Mapping[str, str] | None = None,
) -> str:
    """Stable hash of one container's spec (kubelet ``HashContainer``: FNV-1a 32
    over JSON). The definitions of the volumes it mounts are included, so a
    changed ``hostPath`` restarts exactly the containers that mount it; so is the
    pod's ``securityContext`` (the defaults of the container's own, its groups),
    so a changed ``spec.securityContext`` restarts every container, and so is the
    container's AppArmor annotation (``annotations``: the pod's).
    Key order and omitted-vs-empty fields do not change the hash: the hash is over the container's wire
    JSON (``to_dict()``), exactly as it was over the dict the API served, so an unchanged pod keeps its hash
    across releases (pinned by ``tests/unit/test_pod_hash_pin.py``).
    """
    wire = container.to_dict()
    picked = {k: wire.get(k) for k in _HASHED_FIELDS}
    picked["podSecurityContext"] = pod_security_context.to_dict() if pod_security_context is not None else None
    picked["appArmorAnnotation"] = (annotations or {}).get(validation.APP_ARMOR_ANNOTATION_PREFIX + container.name)
    mounted = {m.name for m in container.volumeMounts or []}
    picked["volumes"] = sorted((v.to_dict() for v in volumes if v.name in mounted), key=lambda v: str(v["name"]))
    return _hash_json(picked)


def _spec(spec: PodSpec | Mapping[str, Any]) -> PodSpec:
    """A typed pod spec; a wire dict (as older callers pass) is parsed."""
    return spec if isinstance(spec, PodSpec) else PodSpec.from_dict(dict(spec))


def sandbox_hash(spec: PodSpec | Mapping[str, Any], *, host_ip: str = "127.0.0.1", pod_ip: str | None = None) -> str:
    """Hash of what the infra container holds: published ports, hostname,
    shared PID namespace, sysctls. A change recreates the sandbox (and so every
    container), as the kubelet does when ``podSandboxChanged``. ``pod_ip``: as
    for :func:`port_bindings` (the pod's address is part of its sandbox)."""
    spec = _spec(spec)
    bindings, _ = port_bindings(spec, host_ip=host_ip, pod_ip=pod_ip)
    return _hash_json(
        {
            "ports": sorted((k, sorted(map(list, v))) for k, v in bindings.items()),
            "hostname": spec.hostname,
            "shareProcessNamespace": bool(spec.shareProcessNamespace),
            "sysctls": sorted(sandbox_sysctls(spec).items()),
        }
    )


# --- ports ------------------------------------------------------------------


@dataclass(frozen=True)
class PortError:
    """A port the agent refuses to publish, with the field path that names it."""

    field: str
    message: str


def port_bindings(
    spec: PodSpec | Mapping[str, Any], *, host_ip: str = "127.0.0.1", pod_ip: str | None = None
) -> tuple[dict[str, list[tuple[str, int]]], list[PortError]]:
    """Port bindings for the infra container, in docker-py's ``ports=`` shape.

    Every ``containers[].ports[]`` entry with a ``hostPort`` is published on
    ``host_ip`` (loopback): an empty ``hostIP`` means ``host_ip``; any other
    address (``0.0.0.0`` included) is refused, as is a host port used twice.
    The rules are :mod:`dockyard.api.podports`' (the API server's), applied to each port's wire form.
    With ``pod_ip`` (the pod's own loopback address, :mod:`dockyard.agent.pods.podips`)
    every ``containerPort`` is also published on ``pod_ip:containerPort``, so
    that the pod is reachable at ``status.podIP`` as on a cluster network.

    Args:
        spec: the pod's spec (typed; a wire dict is parsed).

    Returns:
        ``({"8080/tcp": [("127.0.0.1", 18080), ("127.2.0.9", 8080)]}, errors)``.
    """
    bindings: dict[str, list[tuple[str, int]]] = {}
    errors: list[PortError] = []
    seen: dict[tuple[int, str], str] = {}
    for i, container in enumerate(_spec(spec).containers):
        for j, typed_port in enumerate(container.ports or []):
            field = f"spec.containers[{i}].ports[{j}]"
            host_port = typed_port.hostPort
            if not host_port:
                continue
            port = typed_port.to_dict()
            protocol = podports.protocol(port).lower()  # the engine's port keys: 8080/tcp
            if not podports.protocol_supported(port):
                errors.append(PortError(f"{field}.protocol", f"unsupported protocol {typed_port.protocol!r}"))
                continue
            ip = typed_port.hostIP or host_ip
            if not podports.host_ip_allowed(typed_port.hostIP, loopback=host_ip):
                errors.append(
                    PortError(
                        f"{field}.hostIP",
                        f"hostIP {ip!r} is not allowed: pods publish on {host_ip} only",
                    )
                )
                continue
            try:
                container_port, host_port = int(typed_port.containerPort), int(host_port)
            except (TypeError, ValueError):
                errors.append(PortError(f"{field}.containerPort", "containerPort and hostPort must be integers"))
                continue
            key = podports.host_port_key(port, host_port)
            if key in seen:
                errors.append(
                    PortError(f"{field}.hostPort", f"host port {host_port}/{protocol} already used by {seen[key]}")
                )
                continue
            seen[key] = field
            bindings.setdefault(f"{container_port}/{protocol}", []).append((ip, host_port))
    if pod_ip:
        _publish_on_pod_ip(spec, pod_ip, bindings)
    return bindings, errors


def _publish_on_pod_ip(
    spec: PodSpec | Mapping[str, Any], pod_ip: str, bindings: dict[str, list[tuple[str, int]]]
) -> None:
    """Add ``(pod_ip, containerPort)`` for every valid container port (once per port and protocol)."""
    for container in _spec(spec).containers:
        for typed_port in container.ports or []:
            port = typed_port.to_dict()
            number = port.get("containerPort")
            if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536:
                continue
            if not podports.protocol_supported(port):
                continue
            published = bindings.setdefault(f"{number}/{podports.protocol(port).lower()}", [])
            if (pod_ip, number) not in published:
                published.append((pod_ip, number))


# --- env and images ---------------------------------------------------------


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion (``third_party/forked/golang/expansion``):
    ``$(NAME)`` becomes the value when NAME is defined and stays as written
    otherwise; ``$$`` is an escaped ``$``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env[name] if name in env else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def effective_pull_policy(container: Container) -> str:
    """``imagePullPolicy`` with the Kubernetes default: ``Always`` for
    ``:latest`` or an untagged image, else ``IfNotPresent``."""
    policy = container.imagePullPolicy
    if policy in ("Always", "IfNotPresent", "Never"):
        return str(policy)
    image = container.image or ""
    try:
        ref = reference.parse(image)
    except reference.InvalidReference:
        # the kubelet's defaulting ignores a parse error (`parsers.ParseImageName`); the pull reports it
        return "IfNotPresent"
    return "Always" if ref.digest is None and ref.tag == reference.DEFAULT_TAG else "IfNotPresent"


# --- time -------------------------------------------------------------------


def format_time(ts: float | datetime) -> str:
    """RFC 3339 at second precision, as ``metav1.Time`` serialises (:func:`dockyard.api.timefmt.format`)."""
    return timefmt.format(ts)


def to_time(ts: float) -> datetime:
    """Epoch seconds as the ``metav1.Time`` of a typed object: UTC, whole seconds (its wire precision)."""
    return datetime.fromtimestamp(int(ts), tz=UTC)


def parse_engine_time(text: str | None) -> float | None:
    """Engine timestamp (``2024-01-02T03:04:05.123456789Z``, nanoseconds allowed) to epoch seconds;
    ``None`` for empty, malformed or the zero time (year 1) (:func:`dockyard.api.timefmt.parse_or_none`)."""
    return timefmt.parse_or_none(text)


# --- restart policy and back-off -------------------------------------------


def should_restart(restart_policy: str | None, exit_code: int) -> bool:
    """kubelet ``ShouldContainerBeRestarted`` for an exited container."""
    policy = restart_policy or "Always"
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


@dataclass(frozen=True)
class BackOffPolicy:
    """The kubelet's crash back-off: ``initial`` doubling up to ``maximum``
    seconds; an entry expires (resets) when more than ``2 * maximum`` passed
    between the restart that set it and the next crash."""

    initial: float = 10.0
    maximum: float = 300.0


def restart_backoff(
    *,
    backoff: float,
    started_at: float,
    finished_at: float,
    now: float,
    policy: BackOffPolicy = BackOffPolicy(),
) -> tuple[float, float]:
    """Decide whether an exited container may restart now.

    The back-off state lives on the engine: ``backoff`` is the value the
    kubelet's ``flowcontrol.Backoff`` entry had when this container was
    started (its ``dockyard.container.backoff`` label; 0 means no entry),
    ``started_at``/``finished_at`` are its engine times. This mirrors
    ``doBackOff``: ``IsInBackOffSince(finishedAt)`` then ``Next``.

    Returns:
        ``(wait, next_backoff)``: seconds still to wait (0 = restart now) and
        the back-off to record on the next container.
    """
    if backoff <= 0 or finished_at - started_at > 2 * policy.maximum:
        return 0.0, policy.initial
    remaining = backoff - (now - finished_at)
    if remaining > 0:
        return remaining, backoff
    return 0.0, min(backoff * 2, policy.maximum)


# --- phase and conditions ---------------------------------------------------


def pod_phase(
    restart_policy: str | None, container_statuses: Iterable[ContainerStatus], *, total: int, terminal: bool = False
) -> str:
    """kubelet ``getPhase`` for a pod without init containers.

    Args:
        restart_policy: ``spec.restartPolicy``.
        container_statuses: the containers' ``ContainerStatus``.
        total: number of containers in the spec (missing statuses are unknown).
        terminal: the pod is being torn down, nothing restarts any more.
    """
    policy = restart_policy or "Always"
    running = waiting = stopped = succeeded = 0
    seen = 0
    for status in container_statuses:
        seen += 1
        state = status.state
        if state is not None and state.running is not None:
            running += 1
        elif state is not None and state.terminated is not None:
            stopped += 1
            if state.terminated.exitCode == 0:
                succeeded += 1
        elif state is not None and state.waiting is not None:
            if status.lastState is not None and status.lastState.terminated is not None:
                stopped += 1
            else:
                waiting += 1
        else:
            seen -= 1
    unknown = max(0, total - seen)
    if waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def condition(
    kind: str,
    ok: bool,
    *,
    now: datetime,
    previous: Iterable[PodCondition] = (),
    reason: str = "",
    message: str = "",
) -> PodCondition:
    """One pod condition; ``lastTransitionTime`` is carried over from the same condition in ``previous`` while
    its status is unchanged, and is ``now`` when it flips (kubelet ``status_manager.go``
    ``updateLastTransitionTime``). ``reason``/``message`` are set only while the condition is false."""
    status = "True" if ok else "False"
    prev = next((c for c in previous if c.type == kind), None)
    since = prev.lastTransitionTime if prev is not None and prev.status == status else None
    return PodCondition(
        type=kind,
        status=status,
        lastTransitionTime=since or now,
        reason=reason if not ok and reason else None,
        message=message if not ok and message else None,
    )


def pod_conditions(
    *,
    sandbox_ready: bool,
    containers_ready: bool,
    now: datetime,
    previous: Iterable[PodCondition] = (),
    not_ready_reason: str = "ContainersNotReady",
    not_ready_message: str = "",
) -> list[PodCondition]:
    """Pod conditions as the kubelet's status manager writes them (:func:`condition` each)."""
    previous = list(previous)
    return [
        condition("PodReadyToStartContainers", sandbox_ready, now=now, previous=previous),
        condition("Initialized", True, now=now, previous=previous),
        condition(
            "Ready", containers_ready, now=now, previous=previous, reason=not_ready_reason, message=not_ready_message
        ),
        condition(
            "ContainersReady",
            containers_ready,
            now=now,
            previous=previous,
            reason=not_ready_reason,
            message=not_ready_message,
        ),
        condition("PodScheduled", True, now=now, previous=previous),
    ]


# --- engine container configuration ------------------------------------------


class ConfigError(ValueError):
    """The container cannot be configured (kubelet ``CreateContainerConfigError``)."""


def milli_cpu_to_shares(value: str | int | float) -> int:
    """CPU request to cgroup v1 ``cpu.shares`` (kubelet ``MilliCPUToShares``)."""
    milli = math.ceil(parse_quantity(value) * 1000)
    return max(2, milli * 1024 // 1000)


def create_args(
    container: Container,
    *,
    binds: list[str],
    pod_spec: PodSpec | None = None,
    image_user: str = "",
    annotations: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Arguments for docker-py ``APIClient.create_container`` and
    ``create_host_config`` from one Kubernetes container.

    ``env`` is the container's environment with its sources resolved
    (:func:`dockyard.agent.pods.sources.container_env`); without it only
    ``env[].value`` is read.

    ``command`` replaces the image ENTRYPOINT and ``args`` its CMD; with
    ``command`` but no ``args`` the image CMD is dropped, as Kubernetes does.
    ``$(VAR)`` references are expanded from the container's ``env``. The
    security context (the container's over ``pod_spec.securityContext``) is
    mapped by :func:`security_args`; ``image_user`` is the image's
    ``Config.User``.

    Returns:
        ``(config, host_config)`` keyword dicts (without name, labels,
        network and IPC modes, which belong to the pod).

    Raises:
        ConfigError: ``env[].valueFrom`` or ``envFrom`` without ``env``,
        malformed quantities, or a security field the API server refuses (a
        pod stored before the refusal).
    """
    environment: dict[str, str] = {}
    if env is not None:
        environment.update(env)
    else:
        for i, item in enumerate(container.env or []):
            name = item.name or ""
            if not name:
                raise ConfigError(f"env[{i}].name: required")
            if item.valueFrom is not None:
                raise ConfigError(f"env[{i}].valueFrom ({name}): this agent reads no Secrets")
            environment[name] = expand_vars(str(item.value or ""), environment)
        if container.envFrom:
            raise ConfigError("envFrom: this agent reads no Secrets")
    command, args = container.command, container.args
    config: dict[str, Any] = {"image": container.image, "environment": environment}
    if command:
        config["entrypoint"] = [expand_vars(str(x), environment) for x in command]
        config["command"] = [expand_vars(str(x), environment) for x in args or []]
    elif args:
        config["command"] = [expand_vars(str(x), environment) for x in args]
    if container.workingDir:
        config["working_dir"] = str(container.workingDir)
    if container.tty:
        config["tty"] = True
    if container.stdin:
        config["stdin_open"] = True
    host: dict[str, Any] = {"binds": binds}
    limits = (container.resources.limits if container.resources else None) or {}
    requests = (container.resources.requests if container.resources else None) or {}
    try:
        if limits.get("cpu") is not None:
            host["nano_cpus"] = cpu_to_nano(limits["cpu"])
        if limits.get("memory") is not None:
            host["mem_limit"] = memory_to_bytes(limits["memory"])
        cpu_request = requests.get("cpu", limits.get("cpu"))
        if cpu_request is not None:
            host["cpu_shares"] = milli_cpu_to_shares(cpu_request)
    except ValueError as e:
        raise ConfigError(f"resources: {e}") from e
    user, security = security_args(
        pod_spec or PodSpec(containers=[container]), container, image_user=image_user, annotations=annotations
    )
    if user:
        config["user"] = user
    host.update(security)
    return config, host


# --- security context ----------------------------------------------------------

#: Fields of the pod's ``securityContext`` that are defaults of every container's
#: (``DetermineEffectiveSecurityContext``).
_INHERITED = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "seccompProfile",
    "appArmorProfile",
    "seLinuxOptions",
    "windowsOptions",
)


def effective_security_context(
    pod_spec: PodSpec, container: Container, annotations: Mapping[str, str] | None = None
) -> SecurityContext:
    """The container's ``securityContext`` with the pod's as defaults (kubelet
    ``securitycontext.DetermineEffectiveSecurityContext``): container fields win. Without an
    ``appArmorProfile`` on either, the pod's ``container.apparmor.security.beta.kubernetes.io/<name>``
    annotation gives it (kubelet ``getAppArmorProfile``)."""
    pod_sc = pod_spec.securityContext or PodSecurityContext()
    own = container.securityContext or SecurityContext()
    out = SecurityContext(**{k: getattr(pod_sc, k) for k in _INHERITED})
    for name in SecurityContext.__struct_fields__:
        if getattr(own, name) is not None:
            setattr(out, name, getattr(own, name))
    legacy = (annotations or {}).get(validation.APP_ARMOR_ANNOTATION_PREFIX + container.name)
    if out.appArmorProfile is None and legacy is not None:
        out.appArmorProfile = AppArmorProfile(type=validation.APP_ARMOR_ANNOTATION_VALUES.get(legacy, legacy))
    return out


def _check(pod_spec: PodSpec, container: Container) -> None:
    """Refuse what the API server refuses (:mod:`dockyard.api.validation`, on the wire form), for pods
    stored before."""
    pod_sc = pod_spec.securityContext.to_dict() if pod_spec.securityContext is not None else None
    own = container.securityContext.to_dict() if container.securityContext is not None else None
    causes = validation.pod_security_context_causes(pod_sc) + validation.container_security_context_causes(
        own, "securityContext"
    )
    if causes:
        raise ConfigError("; ".join(f"{c.field}: {c.message}" for c in causes))


def security_args(
    pod_spec: PodSpec,
    container: Container,
    *,
    image_user: str = "",
    annotations: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The engine user and ``create_host_config`` keywords of a container's effective security context.

    The mapping follows the kubelet (``kuberuntime/security_context.go``) and
    dockershim's Docker mapping (``security_context.go``):

    - ``runAsUser``/``runAsGroup`` → ``User`` ``uid[:gid]``; ``runAsGroup``
      alone keeps the image's user (``image_user``'s user part, root if empty).
    - ``capabilities.add``/``drop`` → ``CapAdd``/``CapDrop`` (names as given,
      ``ALL`` allowed); ``privileged`` → ``Privileged``.
    - ``allowPrivilegeEscalation: false`` → ``SecurityOpt no-new-privileges``.
    - ``seccompProfile``/``appArmorProfile`` ``Unconfined`` →
      ``seccomp=unconfined``/``apparmor=unconfined``; ``RuntimeDefault`` and
      unset → the engine's default profile (the kubelet's ``--seccomp-default``).
    - ``readOnlyRootFilesystem`` → ``ReadonlyRootfs``.
    - ``annotations``: the pod's, for the deprecated AppArmor annotation.
    - pod ``fsGroup`` then ``supplementalGroups`` → ``GroupAdd`` (decimal strings).

    Returns:
        ``(user, host_kwargs)``; ``user`` is ``""`` when the image's user stays.
    Raises:
        ConfigError: a field the API server refuses (see
        :func:`dockyard.api.validation.pod_spec_security_causes`).
    """
    _check(pod_spec, container)
    sc = effective_security_context(pod_spec, container, annotations)
    apparmor = sc.appArmorProfile.type if sc.appArmorProfile is not None else None
    if apparmor not in (None, *validation.PROFILE_TYPES):
        raise ConfigError(f"unsupported AppArmor profile {apparmor!r}")
    pod_sc = pod_spec.securityContext or PodSecurityContext()
    user = ""
    if sc.runAsUser is not None:
        user = str(int(sc.runAsUser))
    if sc.runAsGroup is not None:
        user = f"{user or image_user.split(':', 1)[0] or '0'}:{int(sc.runAsGroup)}"
    host: dict[str, Any] = {}
    caps = sc.capabilities
    if caps is not None and caps.drop:
        host["cap_drop"] = [str(c) for c in caps.drop]
    if caps is not None and caps.add:
        host["cap_add"] = [str(c) for c in caps.add]
    if sc.privileged:
        host["privileged"] = True
    options = []
    if sc.allowPrivilegeEscalation is False:
        options.append("no-new-privileges")
    if sc.seccompProfile is not None and sc.seccompProfile.type == validation.SECCOMP_UNCONFINED:
        options.append("seccomp=unconfined")
    if apparmor == validation.SECCOMP_UNCONFINED:
        options.append("apparmor=unconfined")
    if options:
        host["security_opt"] = options
    if sc.readOnlyRootFilesystem:
        host["read_only"] = True
    groups: list[str] = []
    for group in ([pod_sc.fsGroup] if pod_sc.fsGroup is not None else []) + list(pod_sc.supplementalGroups or []):
        if str(int(group)) not in groups:
            groups.append(str(int(group)))
    if groups:
        host["group_add"] = groups
    return user, host


def sandbox_sysctls(spec: PodSpec) -> dict[str, str]:
    """``spec.securityContext.sysctls`` as the infra container's ``Sysctls`` (the kubelet sets them on the
    sandbox, whose network and IPC namespaces every container joins). Only Pod Security's safe set passes
    the API server (:func:`dockyard.api.validation.pod_security_context_causes`)."""
    sysctls = (spec.securityContext.sysctls if spec.securityContext else None) or []
    return {s.name: str(s.value) for s in sysctls if s.name}


def format_pod(pod: Pod) -> str:
    """kubelet ``format.Pod``: ``name_namespace(uid)`` (in its messages)."""
    meta = pod.metadata
    if meta is None:
        return "_default()"
    return f"{meta.name or ''}_{meta.namespace or 'default'}({meta.uid or ''})"


def verify_run_as_non_root(pod: Pod, container: Container, *, image_user: str) -> None:
    """The kubelet's ``verifyRunAsNonRoot`` (``kuberuntime/security_context_others.go``), in its words.

    Args:
        pod: the Pod (``metadata`` names it in the message, ``spec.securityContext`` gives defaults).
        container: the container (its ``securityContext`` wins).
        image_user: the image's ``Config.User`` (``uid``, ``name``, ``uid:gid``, or empty for root),
            read as containerd's ``getUserFromImage`` reads it.
    Raises:
        ConfigError: the container would run as root, or as a user name that cannot be verified
        (the container's waiting reason becomes ``CreateContainerConfigError``).
    """
    sc = effective_security_context(pod.spec or PodSpec(containers=[container]), container)
    if sc.runAsNonRoot is not True:
        return
    where = f'(pod: "{format_pod(pod)}", container: {container.name})'
    if sc.runAsUser is not None:
        if int(sc.runAsUser) == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    name = image_user.split(":", 1)[0]
    if name and not name.isdigit():
        raise ConfigError(
            f"container has runAsNonRoot and image has non-numeric user ({name}), "
            f"cannot verify user is non-root {where}"
        )
    uid = int(name) if name else 0
    if uid == 0:
        raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
    if uid > validation.MAX_ID:
        raise ConfigError(
            f"container has runAsNonRoot and image has an invalid user id ({uid}). "
            f"(Must be 1-({validation.MAX_ID})): must be between 0 and {validation.MAX_ID}, "
            f"inclusive {where}"
        )
