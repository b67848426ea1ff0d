"""Pod Security Admission: the Pod Security Standards checks, as Kubernetes implements them. No I/O.

Source of every rule and every message: ``k8s.io/pod-security-admission``
(``policy/check_*.go`` for the checks, ``policy/registry.go`` for their order,
``policy/checks.go`` for ``ForbiddenDetail``, ``api/helpers.go`` for the
namespace labels, ``admission/admission.go`` for the wording of the 403 and
the warnings). Only the ``latest`` policy version is implemented; a
``-version`` label of ``v1.N`` is accepted and evaluated as ``latest``.

- Each namespace enforces the level of its label
  ``pod-security.kubernetes.io/enforce`` (``privileged``, ``baseline``,
  ``restricted``); without the label, the server's default (``baseline``
  unless ``--pod-security`` says otherwise). ``warn`` and ``audit`` labels
  produce ``Warning`` headers (``audit`` has no audit log here, so it warns too).
- A refused pod gets kube-apiserver's words::

      pods "x" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "root"), ...

- Differences from Kubernetes, all stricter: the user-namespace relaxation
  (``hostUsers: false`` relaxing ``procMount``, ``runAsNonRoot`` and
  ``runAsUser``) is not applied, because the node agent does not run pods in
  user namespaces.

Exemptions (Kubernetes' ``PodSecurityConfiguration.exemptions``:
``usernames``, ``runtimeClasses``, ``namespaces``). dockyard's only default
exemption is the runtime class :data:`BUILD_RUNTIME_CLASS` (``dockyard-build``),
which build pods carry (:func:`dockyard.api.buildpod.build_pod`). The node
agent never runs a build pod's containers: it runs the Build in the pod's
``BUILD`` variable with the engine's build API, so a build pod's container
security fields mean nothing and its Dockerfile's ``RUN`` steps get the
engine's defaults (not privileged, no host mounts). The exemption cannot be
borrowed: a pod that names ``runtimeClassName: dockyard-build`` must have
exactly the build pod's shape (:func:`runtime_class_causes`: the build-pod
label, one ``docker-build`` container of the builder image with only ``env``,
no volumes, no host namespaces, no security context), or it is refused with
422; any other ``runtimeClassName`` is refused (422) because the agent has no
other runtime. Usernames are not exempted: the controllers act as ``admin``,
and exempting a user would exempt everything that user creates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.api import buildpod
from dockyard.api import labels as well_known
from dockyard.api.errors import Cause

Obj = Mapping[str, Any]

PREFIX = well_known.POD_SECURITY_PREFIX
ENFORCE_LEVEL_LABEL = PREFIX + "enforce"
ENFORCE_VERSION_LABEL = PREFIX + "enforce-version"
AUDIT_LEVEL_LABEL = PREFIX + "audit"
AUDIT_VERSION_LABEL = PREFIX + "audit-version"
WARN_LEVEL_LABEL = PREFIX + "warn"
WARN_VERSION_LABEL = PREFIX + "warn-version"

PRIVILEGED = "privileged"
BASELINE = "baseline"
RESTRICTED = "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)
"""The levels, least strict first (``api.validLevels``)."""
DEFAULT_LEVEL = BASELINE
LATEST = "latest"

BUILD_RUNTIME_CLASS = buildpod.BUILD_RUNTIME_CLASS

_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")


@dataclass(frozen=True)
class Result:
    """One failed check: ``ForbiddenReason`` and ``ForbiddenDetail`` (``policy.CheckResult``)."""

    reason: str
    detail: str = ""


def _join_quote(items: list[str]) -> str:
    return '"' + '", "'.join(items) + '"' if items else ""


def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _containers(spec: Obj) -> Iterator[Mapping[str, Any]]:
    """Init containers, containers, ephemeral containers, in that order (``visitContainers``)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _list(spec.get(key)):
            if isinstance(container, Mapping):
                yield container


def _name(container: Obj) -> str:
    return str(container.get("name") or "")


def _sc(obj: Obj) -> Mapping[str, Any]:
    return _dict(obj.get("securityContext"))


def _windows(spec: Obj) -> bool:
    return _dict(spec.get("os")).get("name") == "windows"


def _containers_phrase(names: list[str]) -> str:
    return f"{_plural('container', 'containers', len(names))} {_join_quote(names)}"


# ------------------------------------------------------------------ baseline checks


def check_app_armor_profile(meta: Obj, spec: Obj) -> Result | None:
    """``appArmorProfile``: profile types ``RuntimeDefault``/``Localhost`` only (check_appArmorProfile.go)."""
    setters: list[str] = []
    values: set[str] = set()
    profile = _dict(_sc(spec).get("appArmorProfile"))
    if _sc(spec).get("appArmorProfile") is not None and profile.get("type") not in ("RuntimeDefault", "Localhost"):
        setters.append("pod")
        values.add(str(profile.get("type") or ""))
    bad = []
    for c in _containers(spec):
        if _sc(c).get("appArmorProfile") is not None:
            ctype = _dict(_sc(c).get("appArmorProfile")).get("type")
            if ctype not in ("RuntimeDefault", "Localhost"):
                bad.append(_name(c))
                values.add(str(ctype or ""))
    if bad:
        setters.append(_containers_phrase(bad))
    value_list = sorted(values)
    annotations = []
    prefix = well_known.APP_ARMOR_PREFIX
    for key, value in _dict(meta.get("annotations")).items():
        value = str(value)
        if str(key).startswith(prefix) and not (value in ("", "runtime/default") or value.startswith("localhost/")):
            annotations.append(f'{key}="{value}"')
    if annotations:
        value_list += sorted(annotations)
        setters.append(_plural("annotation", "annotations", len(annotations)))
    if setters:
        return Result(
            _plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(value_list)),
            f"{' and '.join(setters)} must not set AppArmor profile type to {_join_quote(value_list)}",
        )
    return None


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def check_capabilities_baseline(meta: Obj, spec: Obj) -> Result | None:
    """``capabilities_baseline``: ``capabilities.add`` only from the default set (check_capabilities_baseline.go)."""
    bad: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        added = [str(x) for x in _list(_dict(_sc(c).get("capabilities")).get("add"))]
        extra = [x for x in added if x not in BASELINE_CAPABILITIES]
        if extra:
            bad.append(_name(c))
            caps.update(extra)
    if bad:
        return Result(
            "non-default capabilities",
            f"{_containers_phrase(bad)} must not include "
            f"{_join_quote(sorted(caps))} in securityContext.capabilities.add",
        )
    return None


def check_host_namespaces(meta: Obj, spec: Obj) -> Result | None:
    """``hostNamespaces``: ``hostNetwork``, ``hostPID``, ``hostIPC`` false (check_hostNamespaces.go)."""
    found = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return Result("host namespaces", ", ".join(found)) if found else None


def check_host_path_volumes(meta: Obj, spec: Obj) -> Result | None:
    """``hostPathVolumes``: no ``hostPath`` volume (check_hostPathVolumes.go)."""
    names = [
        str(_dict(v).get("name") or "") for v in _list(spec.get("volumes")) if _dict(v).get("hostPath") is not None
    ]
    if names:
        return Result("hostPath volumes", f"{_plural('volume', 'volumes', len(names))} {_join_quote(names)}")
    return None


def check_host_ports(meta: Obj, spec: Obj) -> Result | None:
    """``hostPorts``: no ``ports[].hostPort`` (check_hostPorts.go)."""
    bad: list[str] = []
    ports: set[str] = set()
    for c in _containers(spec):
        used = [
            str(p.get("hostPort"))
            for p in _list(c.get("ports"))
            if isinstance(p, Mapping) and p.get("hostPort") not in (None, 0)
        ]
        if used:
            bad.append(_name(c))
            ports.update(used)
    if bad:
        return Result(
            "hostPort",
            f"{_containers_phrase(bad)} {_plural('uses', 'use', len(bad))} "
            f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
        )
    return None


def check_host_probes_and_host_lifecycle(meta: Obj, spec: Obj) -> Result | None:
    """``hostProbesAndHostLifecycle``: no ``host`` in probes and lifecycle handlers (1.34+)."""
    bad: set[str] = set()
    hosts: set[str] = set()
    for c in _containers(spec):
        lifecycle = _dict(c.get("lifecycle"))
        handlers = [
            c.get("livenessProbe"),
            c.get("readinessProbe"),
            c.get("startupProbe"),
            lifecycle.get("postStart"),
            lifecycle.get("preStop"),
        ]
        for handler in handlers:
            for kind in ("httpGet", "tcpSocket"):
                host = _dict(_dict(handler).get(kind)).get("host")
                if host:
                    bad.add(_name(c))
                    hosts.add(str(host))
    if bad:
        return Result(
            "probe or lifecycle host",
            f"{_containers_phrase(sorted(bad))} {_plural('uses', 'use', len(bad))} "
            f"{_plural('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
            f"{_join_quote(sorted(hosts))}",
        )
    return None


def check_privileged(meta: Obj, spec: Obj) -> Result | None:
    """``privileged``: ``securityContext.privileged`` not true (check_privileged.go)."""
    bad = [_name(c) for c in _containers(spec) if _sc(c).get("privileged") is True]
    if bad:
        return Result("privileged", f"{_containers_phrase(bad)} must not set securityContext.privileged=true")
    return None


def check_proc_mount(meta: Obj, spec: Obj) -> Result | None:
    """``procMount`` (and ``procMount_restricted``): unset or ``Default`` (check_procMount*.go)."""
    bad: list[str] = []
    types: set[str] = set()
    for c in _containers(spec):
        mount = _sc(c).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(_name(c))
            types.add(str(mount))
    if bad:
        return Result(
            "procMount",
            f"{_containers_phrase(bad)} must not set securityContext.procMount to {_join_quote(sorted(types))}",
        )
    return None


SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})


def check_se_linux_options(meta: Obj, spec: Obj) -> Result | None:
    """``seLinuxOptions``: allowed types only, no ``user`` or ``role`` (check_seLinuxOptions.go, 1.31+)."""
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(options: Obj) -> bool:
        ok = True
        if str(options.get("type") or "") not in SELINUX_TYPES:
            ok = False
            bad_types.add(str(options.get("type") or ""))
        for key in ("user", "role"):
            if options.get(key):
                ok = False
                flags[key] = True
        return ok

    setters: list[str] = []
    if _sc(spec).get("seLinuxOptions") is not None and not valid(_dict(_sc(spec).get("seLinuxOptions"))):
        setters.append("pod")
    bad = [
        _name(c)
        for c in _containers(spec)
        if _sc(c).get("seLinuxOptions") is not None and not valid(_dict(_sc(c).get("seLinuxOptions")))
    ]
    if bad:
        setters.append(_containers_phrase(bad))
    if not setters:
        return None
    data: list[str] = []
    if bad_types:
        data.append(f"{_plural('type', 'types', len(bad_types))} {_join_quote(sorted(bad_types))}")
    if flags["user"]:
        data.append("user may not be set")
    if flags["role"]:
        data.append("role may not be set")
    return Result(
        "seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}"
    )


_SECCOMP_OK = ("RuntimeDefault", "Localhost")


def _seccomp(meta: Obj, spec: Obj, *, required: bool) -> Result | None:
    setters: list[str] = []
    values: set[str] = set()
    pod_set = False
    if _sc(spec).get("seccompProfile") is not None:
        ptype = _dict(_sc(spec).get("seccompProfile")).get("type")
        if ptype not in _SECCOMP_OK:
            setters.append("pod")
            values.add(str(ptype or ""))
        else:
            pod_set = True
    explicit: list[str] = []
    implicit: list[str] = []
    for c in _containers(spec):
        if _sc(c).get("seccompProfile") is not None:
            ctype = _dict(_sc(c).get("seccompProfile")).get("type")
            if ctype not in _SECCOMP_OK:
                explicit.append(_name(c))
                values.add(str(ctype or ""))
        elif not pod_set:
            implicit.append(_name(c))
    if explicit:
        setters.append(_containers_phrase(explicit))
    if setters:
        return Result(
            "seccompProfile",
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type "
            f"to {_join_quote(sorted(values))}",
        )
    if required and implicit:
        return Result(
            "seccompProfile",
            f"pod or {_containers_phrase(implicit)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
        )
    return None


def check_seccomp_profile_baseline(meta: Obj, spec: Obj) -> Result | None:
    """``seccompProfile_baseline``: if set, ``RuntimeDefault`` or ``Localhost`` (1.19+)."""
    return _seccomp(meta, spec, required=False)


SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",  # 1.27
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",  # 1.29
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",  # 1.32
    }
)


def check_sysctls(meta: Obj, spec: Obj) -> Result | None:
    """``sysctls``: only the safe set (check_sysctls.go, 1.32+)."""
    bad = [
        str(_dict(s).get("name") or "")
        for s in _list(_sc(spec).get("sysctls"))
        if str(_dict(s).get("name") or "") not in SAFE_SYSCTLS
    ]
    return Result("forbidden sysctls", ", ".join(bad)) if bad else None


def check_windows_host_process(meta: Obj, spec: Obj) -> Result | None:
    """``windowsHostProcess``: ``windowsOptions.hostProcess`` not true (check_windowsHostProcess.go)."""

    def host(obj: Obj) -> bool:
        return _dict(_sc(obj).get("windowsOptions")).get("hostProcess") is True

    setters = ["pod"] if host(spec) else []
    bad = [_name(c) for c in _containers(spec) if host(c)]
    if bad:
        setters.append(_containers_phrase(bad))
    if setters:
        return Result(
            "hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true"
        )
    return None


# ------------------------------------------------------------------ restricted checks


def check_allow_privilege_escalation(meta: Obj, spec: Obj) -> Result | None:
    """``allowPrivilegeEscalation``: explicitly false; Windows pods exempt (1.25+)."""
    if _windows(spec):
        return None
    bad = [_name(c) for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return Result(
            "allowPrivilegeEscalation != false",
            f"{_containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false",
        )
    return None


def check_capabilities_restricted(meta: Obj, spec: Obj) -> Result | None:
    """``capabilities_restricted``: drop ``ALL``, add only ``NET_BIND_SERVICE`` (1.25+)."""
    if _windows(spec):
        return None
    missing: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        if _sc(c).get("capabilities") is None:
            missing.append(_name(c))
            continue
        capabilities = _dict(_sc(c).get("capabilities"))
        if "ALL" not in [str(x) for x in _list(capabilities.get("drop"))]:
            missing.append(_name(c))
        extra = [str(x) for x in _list(capabilities.get("add")) if str(x) != "NET_BIND_SERVICE"]
        if extra:
            adding.append(_name(c))
            caps.update(extra)
    details = []
    if missing:
        details.append(f'{_containers_phrase(missing)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(
            f"{_containers_phrase(adding)} must not include {_join_quote(sorted(caps))} in "
            "securityContext.capabilities.add"
        )
    return Result("unrestricted capabilities", "; ".join(details)) if details else None


RESTRICTED_VOLUME_TYPES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
    "image",
)
"""Volume sources the restricted level allows (check_restrictedVolumes.go)."""


_RESTRICTED_TYPES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def check_restricted_volumes(meta: Obj, spec: Obj) -> Result | None:
    """``restrictedVolumes``: only the volume types of :data:`RESTRICTED_VOLUME_TYPES` (check_restrictedVolumes.go)."""
    names: list[str] = []
    types: set[str] = set()
    for volume in _list(spec.get("volumes")):
        volume = _dict(volume)
        if any(volume.get(t) is not None for t in RESTRICTED_VOLUME_TYPES):
            continue
        names.append(str(volume.get("name") or ""))
        types.add(next((t for t in _RESTRICTED_TYPES if volume.get(t) is not None), "unknown"))
    if names:
        return Result(
            "restricted volume types",
            f"{_plural('volume', 'volumes', len(names))} {_join_quote(names)} "
            f"{_plural('uses', 'use', len(names))} "
            f"{_plural('restricted volume type', 'restricted volume types', len(types))} "
            f"{_join_quote(sorted(types))}",
        )
    return None


def check_run_as_non_root(meta: Obj, spec: Obj) -> Result | None:
    """``runAsNonRoot``: true on the pod or every container (check_runAsNonRoot.go; no user-namespace relaxation)."""
    setters: list[str] = []
    pod_true = False
    if _sc(spec).get("runAsNonRoot") is not None:
        if _sc(spec).get("runAsNonRoot") is not True:
            setters.append("pod")
        else:
            pod_true = True
    explicit: list[str] = []
    implicit: list[str] = []
    for c in _containers(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is not None:
            if value is not True:
                explicit.append(_name(c))
        elif not pod_true:
            implicit.append(_name(c))
    if explicit:
        setters.append(_containers_phrase(explicit))
    if setters:
        return Result(
            "runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false"
        )
    if implicit:
        return Result(
            "runAsNonRoot != true", f"pod or {_containers_phrase(implicit)} must set securityContext.runAsNonRoot=true"
        )
    return None


def check_run_as_user(meta: Obj, spec: Obj) -> Result | None:
    """``runAsUser``: never 0 (check_runAsUser.go, 1.23+; no user-namespace relaxation)."""

    def root(obj: Obj) -> bool:
        value = _sc(obj).get("runAsUser")
        return value == 0 and not isinstance(value, bool)

    setters = ["pod"] if root(spec) else []
    bad = [_name(c) for c in _containers(spec) if root(c)]
    if bad:
        setters.append(_containers_phrase(bad))
    if setters:
        return Result("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")
    return None


def check_seccomp_profile_restricted(meta: Obj, spec: Obj) -> Result | None:
    """``seccompProfile_restricted``: ``RuntimeDefault`` or ``Localhost`` required; Windows pods exempt (1.25+)."""
    if _windows(spec):
        return None
    return _seccomp(meta, spec, required=True)


Check = Callable[[Obj, Obj], "Result | None"]

BASELINE_CHECKS: tuple[tuple[str, Check], ...] = (
    ("appArmorProfile", check_app_armor_profile),
    ("capabilities_baseline", check_capabilities_baseline),
    ("hostNamespaces", check_host_namespaces),
    ("hostPathVolumes", check_host_path_volumes),
    ("hostPorts", check_host_ports),
    ("hostProbesAndHostLifecycle", check_host_probes_and_host_lifecycle),
    ("privileged", check_privileged),
    ("procMount", check_proc_mount),
    ("seLinuxOptions", check_se_linux_options),
    ("seccompProfile_baseline", check_seccomp_profile_baseline),
    ("sysctls", check_sysctls),
    ("windowsHostProcess", check_windows_host_process),
)
"""Baseline checks by ID, in Go's byte order of IDs (``registry.go`` sorts them for stable messages)."""

RESTRICTED_CHECKS: tuple[tuple[str, Check], ...] = (
    ("allowPrivilegeEscalation", check_allow_privilege_escalation),
    ("capabilities_restricted", check_capabilities_restricted),
    ("procMount_restricted", check_proc_mount),
    ("restrictedVolumes", check_restricted_volumes),
    ("runAsNonRoot", check_run_as_non_root),
    ("runAsUser", check_run_as_user),
    ("seccompProfile_restricted", check_seccomp_profile_restricted),
)
"""Restricted checks by ID, evaluated after the baseline checks they do not override."""

OVERRIDES = frozenset({"capabilities_baseline", "hostPathVolumes", "seccompProfile_baseline"})
"""Baseline checks a restricted check supersedes (``OverrideCheckIDs``)."""


def evaluate(level: str, meta: Obj, spec: Obj) -> list[Result]:
    """The failed checks of a pod (or pod template) at ``level``, in kube-apiserver's order.

    Args:
        level: ``privileged`` (nothing is checked), ``baseline`` or ``restricted``.
        meta: the pod's (template's) metadata; spec: its ``spec``.
    Returns:
        The failures, empty if the pod is allowed (``checkRegistry.EvaluatePod``).
    """
    if level == PRIVILEGED:
        return []
    if level == BASELINE:
        checks = BASELINE_CHECKS
    else:
        checks = tuple(c for c in BASELINE_CHECKS if c[0] not in OVERRIDES) + RESTRICTED_CHECKS
    results = []
    for _, check in checks:
        result = check(_dict(meta), _dict(spec))
        if result is not None:
            results.append(result)
    return results


def forbidden_detail(results: list[Result]) -> str:
    """``reason (detail), reason (detail)`` (``AggregateCheckResult.ForbiddenDetail``)."""
    return ", ".join(f"{r.reason} ({r.detail})" if r.detail else r.reason for r in results)


# ------------------------------------------------------------------ namespace labels


@dataclass(frozen=True)
class Policy:
    """The levels a namespace enforces, audits and warns about (``api.Policy``; versions are all ``latest``)."""

    enforce: str = DEFAULT_LEVEL
    audit: str = PRIVILEGED
    warn: str = PRIVILEGED


def _invalid(label: str, value: str, message: str) -> Cause:
    return Cause(f"metadata.labels[{label}]", f'Invalid value: "{value}": {message}')


def policy_from_labels(
    labels: Mapping[str, Any] | None, *, default_level: str = DEFAULT_LEVEL
) -> tuple[Policy, list[Cause]]:
    """The namespace's policy from its labels, and one cause per bad label value (``api.PolicyToEvaluate``).

    A bad ``enforce`` level evaluates as ``restricted``; bad ``audit``/``warn``
    levels as ``privileged`` (Kubernetes fails closed for enforce, open for
    the others). Levels default to ``default_level`` for enforce and
    ``privileged`` for audit and warn.

    Returns:
        ``(policy, causes)``; causes name ``metadata.labels[<label>]`` as kube-apiserver does.
    """
    labels = labels or {}
    causes: list[Cause] = []
    levels = {"enforce": default_level, "audit": PRIVILEGED, "warn": PRIVILEGED}
    for mode, level_label, version_label in (
        ("enforce", ENFORCE_LEVEL_LABEL, ENFORCE_VERSION_LABEL),
        ("audit", AUDIT_LEVEL_LABEL, AUDIT_VERSION_LABEL),
        ("warn", WARN_LEVEL_LABEL, WARN_VERSION_LABEL),
    ):
        if level_label in labels:
            value = str(labels[level_label])
            if value in LEVELS:
                levels[mode] = value
            else:
                levels[mode] = RESTRICTED if mode == "enforce" else PRIVILEGED
                causes.append(_invalid(level_label, value, "must be one of " + ", ".join(LEVELS)))
        if version_label in labels:
            value = str(labels[version_label])
            if value != LATEST and not _VERSION.match(value):
                causes.append(_invalid(version_label, value, 'must be "latest" or "v1.x"'))
    return Policy(**levels), causes


def label_causes(labels: Any) -> list[Cause]:
    """Causes for bad ``pod-security.kubernetes.io/*`` label values of a Namespace (422 on create and update)."""
    return policy_from_labels(labels if isinstance(labels, Mapping) else {})[1]


# ------------------------------------------------------------------ exemptions and build pods


@dataclass(frozen=True)
class Exemptions:
    """``PodSecurityConfiguration.exemptions``: what is never checked."""

    usernames: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = field(default_factory=lambda: frozenset({BUILD_RUNTIME_CLASS}))

    def exempt(self, *, user: str, namespace: str, spec: Obj) -> bool:
        """True if the request is exempt by user, namespace or the pod's ``runtimeClassName``."""
        return (
            user in self.usernames
            or namespace in self.namespaces
            or str(_dict(spec).get("runtimeClassName") or "") in self.runtime_classes
        )


_BUILD_SPEC_KEYS = frozenset(
    {"containers", "restartPolicy", "runtimeClassName", "nodeName", "terminationGracePeriodSeconds"}
)


def runtime_class_causes(meta: Obj, spec: Obj, path: str = "spec") -> list[Cause]:
    """422 causes for ``spec.runtimeClassName``: only ``dockyard-build``, and only on a build pod's shape.

    The shape is :func:`dockyard.api.buildpod.build_pod`'s: label
    ``dockyard.dev/build-pod: "true"``; spec keys among
    ``containers``, ``restartPolicy``, ``runtimeClassName``, ``nodeName``,
    ``terminationGracePeriodSeconds``; one container ``docker-build`` of the
    builder image with only ``name``, ``image``, ``env`` (and the defaults
    ``imagePullPolicy``, ``terminationMessage*``, ``resources``).
    """
    spec = _dict(spec)
    runtime_class = spec.get("runtimeClassName")
    if runtime_class in (None, ""):
        return []
    where = f"{path}.runtimeClassName"
    if runtime_class != BUILD_RUNTIME_CLASS:
        return [
            Cause(
                where,
                f'Unsupported value: "{str(runtime_class)[:64]}": supported values: '
                f'"{BUILD_RUNTIME_CLASS}" (build pods only)',
                "FieldValueNotSupported",
            )
        ]
    problems = []
    if not buildpod.is_build_pod({"metadata": _dict(meta)}):
        problems.append(f'the label {buildpod.BUILD_POD_LABEL}: "{well_known.BUILD_POD_TRUE}"')
    extra = sorted(set(spec) - _BUILD_SPEC_KEYS)
    if extra:
        problems.append("no other spec fields (found " + ", ".join(extra) + ")")
    containers = _list(spec.get("containers"))
    container = _dict(containers[0]) if len(containers) == 1 else {}
    allowed = {
        "name",
        "image",
        "env",
        "imagePullPolicy",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "resources",
    }
    if (
        not container
        or container.get("name") != buildpod.BUILDER_CONTAINER
        or container.get("image") != buildpod.BUILDER_IMAGE
        or set(container) - allowed
    ):
        problems.append(
            f'exactly one container "{buildpod.BUILDER_CONTAINER}" of image '
            f'"{buildpod.BUILDER_IMAGE}" with only name, image and env'
        )
    if problems:
        return [
            Cause(
                where,
                f'"{BUILD_RUNTIME_CLASS}" is reserved for build pods, which need ' + "; ".join(problems),
                "FieldValueForbidden",
            )
        ]
    return []
