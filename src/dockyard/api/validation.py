"""Validation and defaulting of objects before they are stored.

``validate(info, obj)`` is the single entry point the API server calls on
create, update and patch. It returns the object with defaults applied, or
raises :class:`dockyard.api.errors.Invalid` naming every bad field path
(Kubernetes API conventions, "Validation": errors name the field path in
dotted form with list indices, e.g. ``spec.containers[0].image``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

import pydantic

from dockyard.api import (
    kinds,
    models,
    names,
    objectmeta,
    podfields,
    podports,
    podsecurity,
    podsources,
    probes,
    services,
    workloads,
)
from dockyard.api import labels as well_known
from dockyard.api.errors import BadRequest, Cause, Invalid

MAX_NAME_LENGTH = 253
UNKNOWN_FIELD = "field not declared in schema"
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
"""Values of the ``fieldValidation`` query parameter (API concepts, "Field validation")."""


def validate(info: kinds.ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """Validate and default ``obj`` (a full object with metadata) for ``info``.

    Returns:
        The defaulted object (a new dict; the argument is not modified).
    Raises:
        dockyard.api.errors.Invalid: with one cause per bad field path.
    """
    obj = copy.deepcopy(obj)
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or meta.get("generateName") or "")
    causes = _metadata_causes(meta)
    spec_model = models.SPEC_MODELS.get(info.kind) if info.group == kinds.GROUP else None
    if spec_model is not None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            causes.append(Cause("spec", "field required", "FieldValueRequired"))
        else:
            try:
                parsed = spec_model.model_validate(spec)
            except pydantic.ValidationError as err:
                causes.extend(_pydantic_causes(err, prefix="spec"))
            else:
                obj["spec"] = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    checker = _CORE_CHECKS.get(info.kind)
    if checker is not None and info.group in ("", "apps", kinds.DISCOVERY_GROUP):
        causes.extend(checker(obj))
    if causes:
        raise Invalid(kind=info.kind, group=info.group, name=name, causes=causes)
    return obj


def validate_fields(
    info: kinds.ResourceInfo, obj: dict[str, Any], field_validation: str | None
) -> tuple[dict[str, Any], list[str]]:
    """:func:`validate`, with unknown fields handled as ``fieldValidation`` asks.

    - ``None`` (not given): unknown fields are invalid like any other error
      (422; dockyard's default is stricter than the apiserver's ``Warn``).
    - ``Strict``: unknown fields are a decoding error, 400 ``BadRequest``:
      ``BuildConfig in version "v1alpha1" cannot be handled as a BuildConfig:
      strict decoding error: unknown field "spec.bogus"``.
    - ``Warn``: unknown fields are dropped and reported as warnings
      (``unknown field "spec.bogus"``, sent as ``Warning`` headers).
    - ``Ignore``: unknown fields are dropped silently.

    Returns:
        ``(object, warnings)``.
    Raises:
        dockyard.api.errors.Invalid: any other validation error (422).
        dockyard.api.errors.BadRequest: unknown fields under ``Strict``.
    """
    try:
        return validate(info, obj), []
    except Invalid as err:
        unknown = [c for c in err.causes if c.message == UNKNOWN_FIELD and c.loc]
        if not unknown or field_validation not in FIELD_VALIDATION:
            raise
        if field_validation == "Strict":
            fields = ", ".join(f'unknown field "{c.field}"' for c in unknown)
            raise BadRequest(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                f"strict decoding error: {fields}"
            ) from None
        pruned = copy.deepcopy(obj)
        for cause in unknown:
            _drop(pruned, cause.loc)
        warnings = [f'unknown field "{c.field}"' for c in unknown] if field_validation == "Warn" else []
        return validate(info, pruned), warnings


def _drop(obj: Any, loc: tuple[str | int, ...]) -> None:
    node = obj
    for part in loc[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            continue
        return
    if isinstance(node, dict):
        node.pop(loc[-1], None)


def _metadata_causes(meta: dict[str, Any]) -> list[Cause]:
    return _name_causes(meta) + objectmeta.causes(meta)


def _name_causes(meta: dict[str, Any]) -> list[Cause]:
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            return [Cause("metadata.name", "name or generateName is required", "FieldValueRequired")]
        return []
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not models.DNS1123_SUBDOMAIN.match(name):
        return [
            Cause(
                "metadata.name",
                f"{str(name)[:64]!r}: a lowercase RFC 1123 subdomain must consist of "
                "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        ]
    return []


def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _pydantic_causes(err: pydantic.ValidationError, *, prefix: str) -> list[Cause]:
    causes = []
    for item in err.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function"))))
        if item["type"] == "missing":
            causes.append(Cause(_path(prefix, loc), "field required", "FieldValueRequired"))
        elif item["type"] == "extra_forbidden":
            causes.append(
                Cause(
                    _path(prefix, loc),
                    UNKNOWN_FIELD,
                    "FieldValueNotSupported",
                    loc=(prefix, *(p for p in loc if isinstance(p, (str, int)))),
                )
            )
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            causes.append(Cause(_path(prefix, loc), message[:1].lower() + message[1:]))
    return causes


# --- core kinds: the checks kubectl users rely on (full schemas are a later issue) -------------


def _port_causes(port: Any, pwhere: str, host_ports: set[tuple[int, str]]) -> list[Cause]:
    if not isinstance(port, dict):
        return [Cause(pwhere, "must be an object")]
    causes: list[Cause] = []
    name = port.get("name")
    if isinstance(name, str) and name:
        causes.extend(
            Cause(f"{pwhere}.name", f"Invalid value: {name[:64]!r}: {msg}") for msg in names.port_name_errors(name)
        )
    cport = port.get("containerPort")
    if not isinstance(cport, int) or isinstance(cport, bool) or not 0 < cport < 65536:
        causes.append(Cause(f"{pwhere}.containerPort", "must be between 1 and 65535, inclusive"))
    hport = port.get("hostPort")
    if hport is not None:
        if not isinstance(hport, int) or isinstance(hport, bool) or not 0 < hport < 65536:
            return causes + [Cause(f"{pwhere}.hostPort", "must be between 1 and 65535, inclusive")]
        key = podports.host_port_key(port, hport)
        if key in host_ports:
            causes.append(
                Cause(
                    f"{pwhere}.hostPort",
                    f"{hport}/{key[1]} is already used by another port of this pod",
                    "FieldValueDuplicate",
                )
            )
        host_ports.add(key)
    if not podports.protocol_supported(port):
        causes.append(
            Cause(
                f"{pwhere}.protocol",
                f'Unsupported value: "{str(port.get("protocol"))[:32]}": '
                "supported values: " + ", ".join(f'"{p}"' for p in podports.PROTOCOLS),
                "FieldValueNotSupported",
            )
        )
    if not podports.host_ip_allowed(port.get("hostIP")):
        causes.append(
            Cause(
                f"{pwhere}.hostIP", f"pods publish on loopback only: use {podports.LOOPBACK}", "FieldValueNotSupported"
            )
        )
    return causes


def _containers_causes(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [Cause(path, "field required", "FieldValueRequired")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [Cause(f"{path}.containers", "at least one container is required", "FieldValueRequired")]
    causes: list[Cause] = []
    names: set[str] = set()
    host_ports: set[tuple[int, str]] = set()
    for i, container in enumerate(containers):
        where = f"{path}.containers[{i}]"
        if not isinstance(container, dict):
            causes.append(Cause(where, "must be an object"))
            continue
        cname = container.get("name")
        if not cname or not isinstance(cname, str):
            causes.append(Cause(f"{where}.name", "field required", "FieldValueRequired"))
        elif cname in names:
            causes.append(Cause(f"{where}.name", f"duplicate container name {cname[:64]!r}", "FieldValueDuplicate"))
        else:
            names.add(cname)
        if not container.get("image") or not isinstance(container.get("image"), str):
            causes.append(Cause(f"{where}.image", "field required", "FieldValueRequired"))
        for j, port in enumerate(podsources.as_list(container.get("ports"), f"{where}.ports", causes)):
            causes.extend(_port_causes(port, f"{where}.ports[{j}]", host_ports))
        causes.extend(probes.container_probe_causes(container, where))
        causes.extend(podsources.env_source_causes(container, where))
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            Cause(
                f"{path}.restartPolicy",
                f'unsupported value {str(policy)[:32]!r}: supported values: "Always", "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        )
    volumes = {
        v.get("name") for v in podsources.as_list(spec.get("volumes"), f"{path}.volumes", causes) if isinstance(v, dict)
    }
    causes.extend(podsources.volume_source_causes(spec, path))
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        mounts = podsources.as_list(container.get("volumeMounts"), f"{path}.containers[{i}].volumeMounts", causes)
        for j, mount in enumerate(mounts):
            if isinstance(mount, dict) and mount.get("name") not in volumes:
                causes.append(
                    Cause(
                        f"{path}.containers[{i}].volumeMounts[{j}].name",
                        f"not found: no volume named {str(mount.get('name'))[:64]!r}",
                        "FieldValueNotFound",
                    )
                )
            if isinstance(mount, dict) and mount.get("subPath"):
                causes.extend(
                    podsources.descending_path_causes(
                        mount["subPath"], f"{path}.containers[{i}].volumeMounts[{j}].subPath"
                    )
                )
    causes.extend(pod_spec_security_causes(spec, path))
    causes.extend(podfields.unhonoured_causes(spec, path))
    return causes


def _unsupported_containers(spec: Any, path: str) -> list[Cause]:
    """``initContainers`` and ``ephemeralContainers``: the node agent runs neither, so neither is accepted."""
    if not isinstance(spec, dict):
        return []
    return [
        Cause(
            f"{path}.{key}",
            "Forbidden: not supported: the node agent does not run "
            f"{'init' if key == 'initContainers' else 'ephemeral'} containers",
            "FieldValueForbidden",
        )
        for key in ("initContainers", "ephemeralContainers")
        if spec.get(key)
    ]


def _pod_causes(obj: dict[str, Any]) -> list[Cause]:
    return (
        _unsupported_containers(obj.get("spec"), "spec")
        + _containers_causes(obj.get("spec"), "spec")
        + podsecurity.runtime_class_causes(obj.get("metadata") or {}, obj.get("spec") or {})
        + app_armor_annotation_causes(obj.get("metadata") or {}, obj.get("spec") or {})
    )


# --- security fields: each one the node agent honours, or a 422 naming it -------------------------------------

LINUX_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    }
)
"""Linux capability names (``capabilities(7)``, ``include/uapi/linux/capability.h``), Kubernetes-style
without ``CAP_``; ``CAP_NAME`` is accepted too (the engines and containerd add the prefix when missing), and
``ALL`` means every capability."""

ALL_CAPABILITIES = "ALL"
SECCOMP_RUNTIME_DEFAULT = "RuntimeDefault"
SECCOMP_UNCONFINED = "Unconfined"
PROFILE_TYPES = (SECCOMP_RUNTIME_DEFAULT, SECCOMP_UNCONFINED)
"""``seccompProfile.type`` and ``appArmorProfile.type`` the node agent honours: ``RuntimeDefault`` is the
engine's default profile (also what an unset profile gets: dockyard runs the kubelet's ``--seccomp-default``),
``Unconfined`` is ``seccomp=unconfined`` / ``apparmor=unconfined``. ``Localhost`` is refused: the agent has no
profile root."""
PROC_MOUNT_DEFAULT = "Default"
SUPPLEMENTAL_GROUPS_MERGE = "Merge"
FS_GROUP_CHANGE_POLICIES = ("Always", "OnRootMismatch")
MAX_ID = 2**31 - 1
"""Largest ``runAsUser``/``runAsGroup``/``fsGroup``/``supplementalGroups`` value (``validation.IsValidUserID``)."""

_UNSUPPORTED = "not supported by the node agent"
_POD_SECURITY_KEYS = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "fsGroup",
    "fsGroupChangePolicy",
    "sysctls",
    "seccompProfile",
    "appArmorProfile",
    "seLinuxOptions",
    "seLinuxChangePolicy",
    "windowsOptions",
)
_CONTAINER_SECURITY_KEYS = (
    "capabilities",
    "privileged",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "procMount",
    "seccompProfile",
    "appArmorProfile",
    "seLinuxOptions",
    "windowsOptions",
)
_REFUSED_SECURITY_KEYS = {
    "seLinuxOptions": "SELinux labels are " + _UNSUPPORTED + " (the engine's default label applies)",
    "seLinuxChangePolicy": "SELinux is " + _UNSUPPORTED,
    "windowsOptions": "Windows options are not supported: the node runs Linux containers",
}
_REFUSED_POD_FIELDS = {
    "hostNetwork": (True, "host networking is " + _UNSUPPORTED + ": pods publish ports on 127.0.0.1 only"),
    "hostPID": (True, "the host PID namespace is " + _UNSUPPORTED),
    "hostIPC": (True, "the host IPC namespace is " + _UNSUPPORTED),
    "hostUsers": (False, "user namespaces are " + _UNSUPPORTED + " (pods run in the host user namespace)"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id_causes(value: Any, where: str) -> list[Cause]:
    if not _is_int(value) or not 0 <= value <= MAX_ID:
        return [Cause(where, f"Invalid value: {str(value)[:32]}: must be between 0 and {MAX_ID}, inclusive")]
    return []


def _profile_causes(profile: Any, where: str, name: str) -> list[Cause]:
    """``seccompProfile`` / ``appArmorProfile``: ``RuntimeDefault`` or ``Unconfined`` (see :data:`PROFILE_TYPES`)."""
    if not isinstance(profile, dict):
        return [Cause(where, "must be an object")]
    causes = [
        Cause(f"{where}.{k}", UNKNOWN_FIELD, "FieldValueNotSupported")
        for k in profile
        if k not in ("type", "localhostProfile")
    ]
    kind = profile.get("type")
    if kind == "Localhost":
        causes.append(
            Cause(
                f"{where}.type",
                f'Unsupported value: "Localhost": {name} profiles from the node are '
                f'{_UNSUPPORTED}: supported values: "RuntimeDefault", "Unconfined"',
                "FieldValueNotSupported",
            )
        )
    elif kind not in PROFILE_TYPES:
        causes.append(
            Cause(
                f"{where}.type",
                f'Unsupported value: "{str(kind)[:32]}": supported values: "RuntimeDefault", "Unconfined"',
                "FieldValueNotSupported",
            )
        )
    elif profile.get("localhostProfile") is not None:
        causes.append(
            Cause(
                f"{where}.localhostProfile", "can only be set when the profile type is Localhost", "FieldValueForbidden"
            )
        )
    return causes


def _common_security_causes(sc: dict[str, Any], where: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("runAsUser", "runAsGroup"):
        if sc.get(key) is not None:
            causes.extend(_id_causes(sc[key], f"{where}.{key}"))
    if sc.get("runAsNonRoot") is not None and not isinstance(sc["runAsNonRoot"], bool):
        causes.append(Cause(f"{where}.runAsNonRoot", "must be a boolean"))
    for key, name in (("seccompProfile", "seccomp"), ("appArmorProfile", "AppArmor")):
        if sc.get(key) is not None:
            causes.extend(_profile_causes(sc[key], f"{where}.{key}", name))
    for key, why in _REFUSED_SECURITY_KEYS.items():
        if sc.get(key) is not None:
            causes.append(Cause(f"{where}.{key}", why, "FieldValueForbidden"))
    return causes


def pod_security_context_causes(sc: Any, where: str = "spec.securityContext") -> list[Cause]:
    """422 causes for a ``PodSecurityContext``: what the node agent cannot honour, and malformed values.

    Honoured (:func:`dockyard.agent.podspec.security_args`): ``runAsUser``, ``runAsGroup``,
    ``runAsNonRoot`` (defaults of every container), ``supplementalGroups`` (and ``fsGroup``) as the
    containers' extra groups, ``supplementalGroupsPolicy: Merge``, ``fsGroup`` on ``emptyDir`` volumes
    (``fsGroupChangePolicy`` either value), ``sysctls`` of Pod Security's safe set
    (:data:`dockyard.api.podsecurity.SAFE_SYSCTLS`, set on the pod's sandbox), ``seccompProfile`` and
    ``appArmorProfile`` of :data:`PROFILE_TYPES`. Refused: ``seLinuxOptions``, ``seLinuxChangePolicy``,
    ``windowsOptions``, ``supplementalGroupsPolicy: Strict``, ``Localhost`` profiles, unknown keys.
    Value rules follow Kubernetes ``ValidatePodSecurityContext``.
    """
    if sc is None:
        return []
    if not isinstance(sc, dict):
        return [Cause(where, "must be an object")]
    causes = [Cause(f"{where}.{k}", UNKNOWN_FIELD, "FieldValueNotSupported") for k in sc if k not in _POD_SECURITY_KEYS]
    causes.extend(_common_security_causes(sc, where))
    if sc.get("fsGroup") is not None:
        causes.extend(_id_causes(sc["fsGroup"], f"{where}.fsGroup"))
    groups = sc.get("supplementalGroups")
    for i, group in enumerate(podsources.as_list(groups, f"{where}.supplementalGroups", causes)):
        causes.extend(_id_causes(group, f"{where}.supplementalGroups[{i}]"))
    policy = sc.get("supplementalGroupsPolicy")
    if policy is not None and policy != SUPPLEMENTAL_GROUPS_MERGE:
        causes.append(
            Cause(
                f"{where}.supplementalGroupsPolicy",
                f'Unsupported value: "{str(policy)[:32]}": '
                f'supported values: "{SUPPLEMENTAL_GROUPS_MERGE}" (the engine merges the groups of '
                "the image's /etc/group)",
                "FieldValueNotSupported",
            )
        )
    change = sc.get("fsGroupChangePolicy")
    if change is not None and change not in FS_GROUP_CHANGE_POLICIES:
        causes.append(
            Cause(
                f"{where}.fsGroupChangePolicy",
                f'Unsupported value: "{str(change)[:32]}": supported values: "Always", "OnRootMismatch"',
                "FieldValueNotSupported",
            )
        )
    seen: set[str] = set()
    for i, sysctl in enumerate(podsources.as_list(sc.get("sysctls"), f"{where}.sysctls", causes)):
        swhere = f"{where}.sysctls[{i}]"
        if (
            not isinstance(sysctl, dict)
            or not isinstance(sysctl.get("name"), str)
            or not isinstance(sysctl.get("value"), str)
        ):
            causes.append(Cause(swhere, "must be an object with a string name and a string value"))
            continue
        name = sysctl["name"]
        if name not in podsecurity.SAFE_SYSCTLS:
            causes.append(
                Cause(
                    f"{swhere}.name",
                    f'Forbidden: "{name[:64]}": only the safe, namespaced sysctls '
                    "are supported: " + ", ".join(sorted(podsecurity.SAFE_SYSCTLS)),
                    "FieldValueForbidden",
                )
            )
        elif name in seen:
            causes.append(Cause(f"{swhere}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        seen.add(name)
    return causes


def _capability_causes(caps: Any, where: str) -> list[Cause]:
    if not isinstance(caps, dict):
        return [Cause(where, "must be an object")]
    causes = [Cause(f"{where}.{k}", UNKNOWN_FIELD, "FieldValueNotSupported") for k in caps if k not in ("add", "drop")]
    for key in ("add", "drop"):
        for i, cap in enumerate(podsources.as_list(caps.get(key), f"{where}.{key}", causes)):
            name = cap[4:] if isinstance(cap, str) and cap.startswith("CAP_") else cap
            if name != ALL_CAPABILITIES and name not in LINUX_CAPABILITIES:
                causes.append(
                    Cause(
                        f"{where}.{key}[{i}]",
                        f'Unsupported value: "{str(cap)[:32]}": not a Linux '
                        'capability (names as in capabilities(7) without CAP_, or "ALL")',
                        "FieldValueNotSupported",
                    )
                )
    return causes


def container_security_context_causes(sc: Any, where: str) -> list[Cause]:
    """422 causes for a container's ``SecurityContext`` (``where``: its field path).

    Honoured (:func:`dockyard.agent.podspec.security_args`): ``capabilities`` (engine ``CapAdd``/``CapDrop``),
    ``privileged`` (Pod Security decides who may), ``runAsUser``, ``runAsGroup``, ``runAsNonRoot`` (the
    kubelet's ``verifyRunAsNonRoot``), ``readOnlyRootFilesystem``, ``allowPrivilegeEscalation``
    (``no-new-privileges``), ``procMount: Default``, ``seccompProfile``/``appArmorProfile`` of
    :data:`PROFILE_TYPES`. Refused: ``procMount: Unmasked`` (Kubernetes requires ``hostUsers: false``, which
    the agent does not do), ``seLinuxOptions``, ``windowsOptions``, ``Localhost`` profiles, unknown keys, and
    Kubernetes' own contradictions (``allowPrivilegeEscalation: false`` with ``privileged`` or
    ``SYS_ADMIN``; ``ValidateSecurityContext``).
    """
    if sc is None:
        return []
    if not isinstance(sc, dict):
        return [Cause(where, "must be an object")]
    causes = [
        Cause(f"{where}.{k}", UNKNOWN_FIELD, "FieldValueNotSupported") for k in sc if k not in _CONTAINER_SECURITY_KEYS
    ]
    causes.extend(_common_security_causes(sc, where))
    for key in ("privileged", "readOnlyRootFilesystem", "allowPrivilegeEscalation"):
        if sc.get(key) is not None and not isinstance(sc[key], bool):
            causes.append(Cause(f"{where}.{key}", "must be a boolean"))
    if sc.get("capabilities") is not None:
        causes.extend(_capability_causes(sc["capabilities"], f"{where}.capabilities"))
    mount = sc.get("procMount")
    if mount is not None and mount != PROC_MOUNT_DEFAULT:
        causes.append(
            Cause(
                f"{where}.procMount",
                f'Unsupported value: "{str(mount)[:32]}": supported values: '
                '"Default" (Unmasked needs hostUsers: false, and user namespaces are '
                f"{_UNSUPPORTED})",
                "FieldValueNotSupported",
            )
        )
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            causes.append(Cause(where, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
        added = (sc.get("capabilities") or {}).get("add") if isinstance(sc.get("capabilities"), dict) else None
        if isinstance(added, list) and ({"SYS_ADMIN", "CAP_SYS_ADMIN"} & {str(c) for c in added}):
            causes.append(
                Cause(where, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")
            )
    return causes


def pod_spec_security_causes(spec: Any, path: str = "spec") -> list[Cause]:
    """422 causes for every security field of a pod spec (``path``: ``spec`` or ``spec.template.spec``).

    Pod fields: ``hostNetwork``, ``hostPID``, ``hostIPC`` must not be true and ``hostUsers`` must not be
    false (the agent runs every pod in its own network, PID and IPC namespaces and the host user
    namespace); ``shareProcessNamespace`` is honoured. Then :func:`pod_security_context_causes` and
    :func:`container_security_context_causes` for each container.
    """
    if not isinstance(spec, dict):
        return []
    causes: list[Cause] = []
    for key, (refused, why) in _REFUSED_POD_FIELDS.items():
        value = spec.get(key)
        if value is not None and not isinstance(value, bool):
            causes.append(Cause(f"{path}.{key}", "must be a boolean"))
        elif value is refused:
            causes.append(Cause(f"{path}.{key}", f"Forbidden: {why}", "FieldValueForbidden"))
    share = spec.get("shareProcessNamespace")
    if share is not None and not isinstance(share, bool):
        causes.append(Cause(f"{path}.shareProcessNamespace", "must be a boolean"))
    causes.extend(pod_security_context_causes(spec.get("securityContext"), f"{path}.securityContext"))
    containers = spec.get("containers")
    for i, container in enumerate(containers if isinstance(containers, list) else []):
        if isinstance(container, dict):
            causes.extend(
                container_security_context_causes(
                    container.get("securityContext"), f"{path}.containers[{i}].securityContext"
                )
            )
    return causes


APP_ARMOR_ANNOTATION_PREFIX = well_known.APP_ARMOR_PREFIX
"""The deprecated per-container AppArmor annotation, which the kubelet still honours when the container's
``appArmorProfile`` is unset: ``runtime/default`` or ``unconfined`` (``localhost/NAME`` is refused, as the
``Localhost`` type is)."""
APP_ARMOR_ANNOTATION_VALUES = {"runtime/default": SECCOMP_RUNTIME_DEFAULT, "unconfined": SECCOMP_UNCONFINED}


def app_armor_annotation_causes(meta: Any, spec: Any, path: str = "metadata") -> list[Cause]:
    """422 causes for ``container.apparmor.security.beta.kubernetes.io/<container>`` annotations: a value
    of :data:`APP_ARMOR_ANNOTATION_VALUES`, naming a container of the pod (Kubernetes
    ``ValidateAppArmorPodAnnotations``)."""
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict):
        return []
    containers = spec.get("containers") if isinstance(spec, dict) else None
    names = {c.get("name") for c in containers if isinstance(c, dict)} if isinstance(containers, list) else set()
    causes: list[Cause] = []
    for key, value in annotations.items():
        if not str(key).startswith(APP_ARMOR_ANNOTATION_PREFIX):
            continue
        where = f"{path}.annotations[{key}]"
        if str(key)[len(APP_ARMOR_ANNOTATION_PREFIX) :] not in names:
            causes.append(Cause(where, "container not found", "FieldValueInvalid"))
        elif value not in APP_ARMOR_ANNOTATION_VALUES:
            causes.append(
                Cause(
                    where,
                    f'Unsupported value: "{str(value)[:64]}": supported values: '
                    '"runtime/default", "unconfined" (AppArmor profiles from the node are '
                    f"{_UNSUPPORTED})",
                    "FieldValueNotSupported",
                )
            )
    return causes


def _namespace_causes(obj: dict[str, Any]) -> list[Cause]:
    """Pod Security labels must name a level and a version (see :mod:`dockyard.api.podsecurity`); each of
    ``spec.finalizers`` a standard or a qualified name (:func:`dockyard.api.objectmeta.namespace_finalizer_causes`)."""
    spec = obj.get("spec")
    finalizers = spec.get("finalizers") if isinstance(spec, dict) else None
    named = [f for f in finalizers if isinstance(f, str)] if isinstance(finalizers, list) else []
    return podsecurity.label_causes((obj.get("metadata") or {}).get("labels")) + objectmeta.namespace_finalizer_causes(
        named
    )


NODE_TAINTS_REFUSED = (
    "Forbidden: dockyard's node agent schedules every pod to its one node and honours no taints "
    "(pods' tolerations are accepted because the node has none); set spec.unschedulable to keep new pods off it"
)
NODE_CONFIG_SOURCE_REFUSED = "Forbidden: dynamic kubelet configuration was removed in Kubernetes 1.24"


def _node_causes(obj: dict[str, Any]) -> list[Cause]:
    """``ValidateNode`` where it matters here: ``spec.unschedulable`` a boolean; ``spec.taints`` and
    ``spec.configSource`` refused, since nothing would honour them (the name is every kind's DNS subdomain)."""
    spec = obj.get("spec")
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [Cause("spec", "Invalid value: must be an object")]
    causes: list[Cause] = []
    if "unschedulable" in spec and not isinstance(spec["unschedulable"], bool):
        causes.append(Cause("spec.unschedulable", "Invalid value: must be a boolean"))
    if spec.get("taints"):
        causes.append(Cause("spec.taints", NODE_TAINTS_REFUSED, "FieldValueForbidden"))
    if spec.get("configSource"):
        causes.append(Cause("spec.configSource", NODE_CONFIG_SOURCE_REFUSED, "FieldValueForbidden"))
    return causes


def _workload_causes(obj: dict[str, Any]) -> list[Cause]:
    """apps/v1 Deployment and ReplicaSet: the spec rules of :func:`dockyard.api.workloads.spec_causes`
    (selector with ``matchExpressions``, strategy, counts, deadlines, template ``restartPolicy``), then the
    template's pod spec with a Pod's rules."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "field required", "FieldValueRequired")]
    causes = workloads.spec_causes(spec, deployment=obj.get("kind") == "Deployment")
    template: dict[str, Any] = spec["template"] if isinstance(spec.get("template"), dict) else {}
    causes.extend(_unsupported_containers(template.get("spec"), "spec.template.spec"))
    causes.extend(_containers_causes(template.get("spec"), "spec.template.spec"))
    causes.extend(
        podsecurity.runtime_class_causes(
            template.get("metadata") or {}, template.get("spec") or {}, "spec.template.spec"
        )
    )
    causes.extend(
        app_armor_annotation_causes(
            template.get("metadata") or {}, template.get("spec") or {}, "spec.template.metadata"
        )
    )
    return causes


_SECRET_KEY = podsources.SECRET_KEY
MAX_SECRET_BYTES = 1024 * 1024
"""Largest total size of a Secret's data (the apiserver's 1 MiB)."""


def _is_config_key(key: Any) -> bool:
    """Kubernetes ``IsConfigMapKey`` (a Secret's and a ConfigMap's keys): ``[-._a-zA-Z0-9]+``, at most 253."""
    return isinstance(key, str) and 0 < len(key) <= 253 and _SECRET_KEY.match(key) is not None


def _bad_config_key(where: str) -> Cause:
    return Cause(where, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")


def _base64_size(value: Any) -> int | None:
    """Bytes that base64 ``value`` decodes to; ``None`` if it is not a base64 string."""
    try:
        if not isinstance(value, str):
            return None
        return len(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        return None


def _secret_causes(obj: dict[str, Any]) -> list[Cause]:
    """``data``: keys as in Kubernetes, values base64; ``stringData`` folded into ``data``.

    Messages name keys, never values.
    """
    causes: list[Cause] = []
    data = obj.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return [Cause("data", "must be a map of keys to base64-encoded values")]
    string_data = obj.pop("stringData", None)
    if string_data is not None:
        if not isinstance(string_data, dict) or not all(isinstance(v, str) for v in string_data.values()):
            return [Cause("stringData", "must be a map of keys to strings")]
        data = dict(data)
        for key, value in string_data.items():
            data[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = data
    size = 0
    for key, value in data.items():
        if not _is_config_key(key):
            causes.append(_bad_config_key(f"data[{str(key)[:64]}]"))
            continue
        decoded = _base64_size(value)
        if decoded is None:
            causes.append(Cause(f"data[{key}]", "must be base64-encoded bytes (the value is not shown)"))
        else:
            size += decoded
    if size > MAX_SECRET_BYTES:
        causes.append(Cause("data", f"Too long: must have at most {MAX_SECRET_BYTES} bytes", "FieldValueTooLong"))
    if obj.get("type") in (None, ""):
        obj["type"] = SECRET_TYPE_DEFAULT  # SetDefaults_Secret
    elif not isinstance(obj.get("type"), str):
        causes.append(Cause("type", "must be a string"))
    elif not causes:
        causes.extend(_secret_type_causes(obj["type"], data, obj.get("metadata") or {}))
    if obj.get("immutable") is not None and not isinstance(obj.get("immutable"), bool):
        causes.append(Cause("immutable", "must be a boolean"))
    return causes


SECRET_TYPE_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "kubernetes.io/dockerconfigjson": ((".dockerconfigjson",),),
    "kubernetes.io/dockercfg": ((".dockercfg",),),
    "kubernetes.io/basic-auth": (("username", "password"),),
    "kubernetes.io/ssh-auth": (("ssh-privatekey",),),
    "kubernetes.io/tls": (("tls.crt",), ("tls.key",)),
}
"""The keys each built-in Secret type needs (``ValidateSecret``): each tuple is one requirement, met by any of
its keys (a basic-auth Secret needs ``username`` or ``password``)."""
_SECRET_TYPE_JSON = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson", "kubernetes.io/dockercfg": ".dockercfg"}
SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"


def _secret_type_causes(kind: str, data: dict[str, Any], meta: dict[str, Any]) -> list[Cause]:
    """``ValidateSecret``'s rules by ``type``: the keys of :data:`SECRET_TYPE_KEYS` (Required), a Docker config
    that is a JSON object, a service account token's ``kubernetes.io/service-account.name`` annotation. Other
    types (``Opaque``, a custom one) hold any keys. Messages never show a value."""
    causes: list[Cause] = []
    for keys in SECRET_TYPE_KEYS.get(kind, ()):
        if not any(key in data for key in keys):
            causes.extend(Cause(f"data[{key}]", "Required value", "FieldValueRequired") for key in keys)
    json_key = _SECRET_TYPE_JSON.get(kind)
    if json_key is not None and json_key in data:
        try:
            parsed = json.loads(base64.b64decode(data[json_key], validate=True))
        except (ValueError, binascii.Error):
            parsed = None
        if not isinstance(parsed, dict):
            causes.append(
                Cause(f"data[{json_key}]", 'Invalid value: "<secret contents redacted>": must be a JSON object')
            )
    if kind == "kubernetes.io/service-account-token":
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict) or not annotations.get(SERVICE_ACCOUNT_NAME_ANNOTATION):
            causes.append(
                Cause(
                    f"metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]", "Required value", "FieldValueRequired"
                )
            )
    return causes


def _configmap_causes(obj: dict[str, Any]) -> list[Cause]:
    """``ValidateConfigMap``: ``data`` maps keys to strings, ``binaryData`` keys to base64; keys as a Secret's
    (``IsConfigMapKey``) and in only one of the two; at most :data:`MAX_SECRET_BYTES` in all (``MaxSecretSize``)."""
    causes: list[Cause] = []
    size = 0
    keys: dict[str, str] = {}
    for field in ("data", "binaryData"):
        values = obj.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            causes.append(Cause(field, f"must be a map of keys to {'strings' if field == 'data' else 'base64'}"))
            continue
        for key, value in values.items():
            where = f"{field}[{str(key)[:64]}]"
            if not _is_config_key(key):
                causes.append(_bad_config_key(where))
                continue
            if key in keys:
                causes.append(Cause(where, f'Invalid value: "{key}": duplicate of key present in {keys[key]}'))
                continue
            keys[key] = field
            if field == "data":
                if not isinstance(value, str):
                    causes.append(Cause(where, "must be a string"))
                    continue
                size += len(value.encode())
                continue
            decoded = _base64_size(value)
            if decoded is None:
                causes.append(Cause(where, "must be base64-encoded bytes"))
            else:
                size += decoded
    if size > MAX_SECRET_BYTES:
        causes.append(Cause("", f"Too long: must have at most {MAX_SECRET_BYTES} bytes", "FieldValueTooLong"))
    if obj.get("immutable") is not None and not isinstance(obj.get("immutable"), bool):
        causes.append(Cause("immutable", "must be a boolean"))
    return causes


SECRET_TYPE_DEFAULT = "Opaque"
"""A Secret's ``type`` when a write gives none (Kubernetes ``SetDefaults_Secret``)."""

IMMUTABLE_WHEN_SET = "Forbidden: field is immutable when `immutable` is set"


def _immutable(field: str, value: Any) -> Cause:
    """``Invalid value: <value>: field is immutable`` (``ValidateImmutableField``)."""
    shown = json.dumps(value, separators=(",", ":"), sort_keys=True) if not isinstance(value, str) else f'"{value}"'
    return Cause(field, f"Invalid value: {shown[:256]}: field is immutable")


def _secret_update_causes(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """``ValidateSecretUpdate``: ``type`` never changes; once ``immutable`` is true, ``data`` and ``immutable``
    stay as they are (``stringData`` is already folded into ``data``). Messages never show data."""
    causes: list[Cause] = []
    old_type = old.get("type") or SECRET_TYPE_DEFAULT
    if (new.get("type") or SECRET_TYPE_DEFAULT) != old_type:
        causes.append(_immutable("type", new.get("type")))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            causes.append(Cause("immutable", IMMUTABLE_WHEN_SET, "FieldValueForbidden"))
        if (new.get("data") or {}) != (old.get("data") or {}):
            causes.append(Cause("data", IMMUTABLE_WHEN_SET, "FieldValueForbidden"))
    return causes


def _configmap_update_causes(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """``ValidateConfigMapUpdate``: once ``immutable`` is true, ``data``, ``binaryData`` and ``immutable`` stay."""
    if old.get("immutable") is not True:
        return []
    causes: list[Cause] = []
    if new.get("immutable") is not True:
        causes.append(Cause("immutable", IMMUTABLE_WHEN_SET, "FieldValueForbidden"))
    for field in ("data", "binaryData"):
        if (new.get(field) or {}) != (old.get(field) or {}):
            causes.append(Cause(field, IMMUTABLE_WHEN_SET, "FieldValueForbidden"))
    return causes


def _workload_update_causes(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """apps/v1 ``ValidateDeploymentUpdate`` / ``ValidateReplicaSetUpdate``: ``spec.selector`` never changes."""
    selector = (new.get("spec") or {}).get("selector")
    if selector != (old.get("spec") or {}).get("selector"):
        return [_immutable("spec.selector", selector)]
    return []


_UPDATE_CHECKS = {
    ("", "Secret"): _secret_update_causes,
    ("", "ConfigMap"): _configmap_update_causes,
    ("apps", "Deployment"): _workload_update_causes,
    ("apps", "ReplicaSet"): _workload_update_causes,
}


def update_causes(info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """What an update may not change, beyond :func:`validate` of the new object: no finalizer added to an object
    that is being deleted (:func:`dockyard.api.objectmeta.update_causes`, every kind), and kube-apiserver's
    ``Validate<Kind>Update`` of the core and apps groups.

    Args:
        new: the object after :func:`validate` (defaults applied, ``stringData`` folded into ``data``).
        old: the stored object.
    Returns:
        One cause per field that may not change (empty: the update may go on).
    """
    causes = objectmeta.update_causes(new.get("metadata") or {}, old.get("metadata") or {})
    check = _UPDATE_CHECKS.get((info.group, info.kind))
    return causes + check(new, old) if check is not None else causes


_CORE_CHECKS = {
    "Pod": _pod_causes,
    "Deployment": _workload_causes,
    "ReplicaSet": _workload_causes,
    "Secret": _secret_causes,
    "ConfigMap": _configmap_causes,
    "Namespace": _namespace_causes,
    "Node": _node_causes,
    "Service": services.service_causes,
    "EndpointSlice": services.endpointslice_causes,
}
