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
import re
from typing import Any

import pydantic

from dockyard.api import kinds, models, podports, podsecurity, probes, services
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


def _items(value: Any, path: str, causes: list[Cause]) -> list[Any]:
    """``value`` if it is a list (``None``: empty); otherwise a cause and an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        causes.append(Cause(path, "must be a list"))
        return []
    return value


def _port_causes(port: Any, pwhere: str, host_ports: set[tuple[int, str]]) -> list[Cause]:
    if not isinstance(port, dict):
        return [Cause(pwhere, "must be an object")]
    causes: list[Cause] = []
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
        for j, port in enumerate(_items(container.get("ports"), f"{where}.ports", causes)):
            causes.extend(_port_causes(port, f"{where}.ports[{j}]", host_ports))
        causes.extend(probes.container_probe_causes(container, where))
        causes.extend(env_source_causes(container, where))
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            Cause(
                f"{path}.restartPolicy",
                f'unsupported value {str(policy)[:32]!r}: supported values: "Always", "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        )
    volumes = {v.get("name") for v in _items(spec.get("volumes"), f"{path}.volumes", causes) if isinstance(v, dict)}
    causes.extend(volume_source_causes(spec, path))
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        mounts = _items(container.get("volumeMounts"), f"{path}.containers[{i}].volumeMounts", causes)
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
                causes.extend(_sub_path_causes(mount["subPath"], f"{path}.containers[{i}].volumeMounts[{j}].subPath"))
    causes.extend(pod_spec_security_causes(spec, path))
    return causes


def _sub_path_causes(sub_path: Any, where: str) -> list[Cause]:
    """Kubernetes ``validateLocalDescendingPath``: relative, no ``..`` component. The node agent
    resolves it beneath the volume without following symlinks out of it (see ``agent/subpath.py``)."""
    if not isinstance(sub_path, str):
        return [Cause(where, "must be a string")]
    if sub_path.startswith("/"):
        return [Cause(where, f"must be a relative path (got {sub_path[:64]!r})")]
    if ".." in sub_path.split("/"):
        return [Cause(where, f"must not contain '..' (got {sub_path[:64]!r})")]
    return []


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
    for i, group in enumerate(_items(groups, f"{where}.supplementalGroups", causes)):
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
    for i, sysctl in enumerate(_items(sc.get("sysctls"), f"{where}.sysctls", causes)):
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
        for i, cap in enumerate(_items(caps.get(key), f"{where}.{key}", causes)):
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


# --- env and volume sources: each one the node agent honours, or a 422 naming it ------------------------------

ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.podIP",
)
"""``env[].valueFrom.fieldRef.fieldPath`` values the node agent resolves, besides ``metadata.labels['KEY']`` and
``metadata.annotations['KEY']``."""
_AGENT_REFUSED_FIELD_PATHS = ("status.hostIPs", "status.podIPs")
"""Field paths Kubernetes allows in ``env`` (``validEnvDownwardAPIFieldPathExpressions``) that the agent does not
resolve."""
_SUBSCRIPTED_FIELD_PATH = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$", re.DOTALL)
_VALUE_FROM_SOURCES = ("secretKeyRef", "fieldRef")
_REFUSED_VALUE_FROM = ("configMapKeyRef", "resourceFieldRef", "fileKeyRef")
VOLUME_SOURCES = ("hostPath", "emptyDir", "secret", "projected")
"""Volume types the node agent mounts, in the order Kubernetes' ``validateVolumeSource`` counts them."""
MAX_FILE_MODE = 0o777
_FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"
_QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PRINTABLE_NOT_EQUALS = re.compile(r"^[\x20-\x3c\x3e-\x7e]*$")


def _loc(path: str) -> tuple[str | int, ...]:
    """The keys and indices of a field path this module built from known keys (``a.b[0].c``: ``a, b, 0, c``)."""
    out: list[str | int] = []
    for part in path.split("."):
        name, *indices = part.split("[")
        out.append(name)
        out.extend(int(index.rstrip("]")) for index in indices)
    return tuple(out)


def _unknown_keys(value: dict[str, Any], where: str, known: tuple[str, ...]) -> list[Cause]:
    """Unknown fields of a source object: 422 by default, handled as ``fieldValidation`` asks (they carry
    ``loc``; see :func:`validate_fields`)."""
    return [
        Cause(f"{where}.{key}", UNKNOWN_FIELD, "FieldValueNotSupported", loc=(*_loc(where), key))
        for key in value
        if key not in known
    ]


def _forbidden(where: str, supported: str, why: str = "") -> Cause:
    return Cause(where, f"Forbidden: {_UNSUPPORTED}{why} (supported: {supported})", "FieldValueForbidden")


def _required_string(value: Any, where: str) -> list[Cause]:
    if value is None or value == "":
        return [Cause(where, "Required value", "FieldValueRequired")]
    if not isinstance(value, str):
        return [Cause(where, "must be a string")]
    return []


def _boolean(obj: dict[str, Any], key: str, where: str) -> list[Cause]:
    value = obj.get(key)
    return [Cause(f"{where}.{key}", "must be a boolean")] if value is not None and not isinstance(value, bool) else []


def _file_mode(value: Any, where: str) -> list[Cause]:
    """Kubernetes ``fileModeErrorMsg``: ``mode`` and ``defaultMode`` are between 0 and 0777."""
    if value is None or (_is_int(value) and 0 <= value <= MAX_FILE_MODE):
        return []
    return [Cause(where, f"Invalid value: {str(value)[:32]}: {_FILE_MODE}")]


def _secret_name(value: Any, where: str) -> list[Cause]:
    """A required Secret name, an RFC 1123 subdomain (Kubernetes ``ValidateSecretName``)."""
    causes = _required_string(value, where)
    if not causes and (len(value) > MAX_NAME_LENGTH or not models.DNS1123_SUBDOMAIN.match(value)):
        causes.append(
            Cause(
                where,
                f"Invalid value: {value[:64]!r}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    return causes


def _config_key(value: Any, where: str) -> list[Cause]:
    """A required Secret key (Kubernetes ``IsConfigMapKey``): ``[-._a-zA-Z0-9]+``, at most 253 characters, not
    ``.``, not starting with ``..``."""
    causes = _required_string(value, where)
    if causes:
        return causes
    if len(value) > MAX_NAME_LENGTH or not _SECRET_KEY.match(value):
        return [
            Cause(
                where,
                f"Invalid value: {value[:64]!r}: a valid config key must consist of alphanumeric characters, "
                "'-', '_' or '.'",
            )
        ]
    if value == "." or value.startswith(".."):
        return [Cause(where, f"Invalid value: {value[:64]!r}: must not be '.' or start with '..'")]
    return []


def _is_qualified_name(value: str) -> bool:
    """Kubernetes ``IsQualifiedName``: ``[prefix/]name``, the prefix an RFC 1123 subdomain, the name at most 63
    alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric."""
    parts = value.split("/")
    if len(parts) > 2:
        return False
    if len(parts) == 2 and (
        not parts[0] or len(parts[0]) > MAX_NAME_LENGTH or not models.DNS1123_SUBDOMAIN.match(parts[0])
    ):
        return False
    return 0 < len(parts[-1]) <= 63 and _QUALIFIED_NAME_PART.match(parts[-1]) is not None


def _field_ref_causes(ref: Any, where: str) -> list[Cause]:
    """``valueFrom.fieldRef`` (Kubernetes ``validateObjectFieldSelector`` with
    ``validEnvDownwardAPIFieldPathExpressions``): ``fieldPath`` required, one of :data:`ENV_FIELD_PATHS` or
    ``metadata.labels['KEY']`` / ``metadata.annotations['KEY']`` with a qualified-name key; ``apiVersion``, if
    set, ``v1``. ``status.hostIPs`` and ``status.podIPs`` are Forbidden: the agent does not resolve them."""
    if not isinstance(ref, dict):
        return [Cause(where, "must be an object")]
    causes = _unknown_keys(ref, where, ("apiVersion", "fieldPath"))
    version = ref.get("apiVersion")
    if version not in (None, "", "v1"):
        causes.append(
            Cause(
                f"{where}.apiVersion",
                f'Unsupported value: "{str(version)[:32]}": supported values: "v1"',
                "FieldValueNotSupported",
            )
        )
    field_path = ref.get("fieldPath")
    pwhere = f"{where}.fieldPath"
    problems = _required_string(field_path, pwhere)
    if problems or not isinstance(field_path, str):
        return causes + problems
    subscripted = _SUBSCRIPTED_FIELD_PATH.match(field_path)
    if field_path in ENV_FIELD_PATHS:
        return causes
    if subscripted:
        key = subscripted.group(2)
        if not _is_qualified_name(key.lower() if subscripted.group(1) == "annotations" else key):
            causes.append(
                Cause(
                    pwhere,
                    f"Invalid value: {field_path[:96]!r}: invalid key subscript: a qualified name must consist "
                    "of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'",
                )
            )
        return causes
    if field_path in _AGENT_REFUSED_FIELD_PATHS:
        causes.append(Cause(pwhere, f'Forbidden: "{field_path}" is {_UNSUPPORTED}', "FieldValueForbidden"))
        return causes
    supported = ", ".join(f'"{p}"' for p in ENV_FIELD_PATHS)
    causes.append(
        Cause(
            pwhere,
            f'Unsupported value: "{field_path[:96]}": supported values: {supported}, '
            "\"metadata.labels['KEY']\", \"metadata.annotations['KEY']\"",
            "FieldValueNotSupported",
        )
    )
    return causes


def _secret_key_ref_causes(ref: Any, where: str) -> list[Cause]:
    """``valueFrom.secretKeyRef`` (Kubernetes ``validateSecretKeySelector``): ``name`` a Secret name, ``key`` a
    config key, both required; ``optional`` a boolean."""
    if not isinstance(ref, dict):
        return [Cause(where, "must be an object")]
    return (
        _unknown_keys(ref, where, ("name", "key", "optional"))
        + _secret_name(ref.get("name"), f"{where}.name")
        + _config_key(ref.get("key"), f"{where}.key")
        + _boolean(ref, "optional", where)
    )


def _value_from_causes(var: dict[str, Any], where: str) -> list[Cause]:
    """``env[].valueFrom`` (Kubernetes ``validateEnvVarValueFrom``): exactly one source, and none when ``value``
    is not empty. The agent honours ``secretKeyRef`` and ``fieldRef``; ``configMapKeyRef``,
    ``resourceFieldRef`` and ``fileKeyRef`` are Forbidden."""
    value_from = var["valueFrom"]
    if not isinstance(value_from, dict):
        return [Cause(where, "must be an object")]
    present = [key for key, value in value_from.items() if value is not None]
    causes = [_forbidden(f"{where}.{key}", "secretKeyRef, fieldRef") for key in present if key in _REFUSED_VALUE_FROM]
    causes.extend(_unknown_keys(value_from, where, (*_VALUE_FROM_SOURCES, *_REFUSED_VALUE_FROM)))
    sources = [key for key in present if key in _VALUE_FROM_SOURCES]
    if not present:
        causes.append(Cause(where, "must specify one of: `fieldRef` or `secretKeyRef`"))
    elif len(sources) > 1:
        causes.append(Cause(where, "may not have more than one field specified at a time"))
    if var.get("value") and present:
        causes.append(Cause(where, "may not be specified when `value` is not empty"))
    if "secretKeyRef" in sources:
        causes.extend(_secret_key_ref_causes(value_from["secretKeyRef"], f"{where}.secretKeyRef"))
    if "fieldRef" in sources:
        causes.extend(_field_ref_causes(value_from["fieldRef"], f"{where}.fieldRef"))
    return causes


def _env_from_causes(source: Any, where: str) -> list[Cause]:
    """``envFrom[]`` (Kubernetes ``validateEnvFrom``): one source; ``prefix`` a relaxed environment variable
    name (printable ASCII but '='). The agent honours ``secretRef`` (``name`` required, ``optional``);
    ``configMapRef`` is Forbidden: this API server serves no ConfigMaps."""
    if not isinstance(source, dict):
        return [Cause(where, "must be an object")]
    causes = _unknown_keys(source, where, ("prefix", "secretRef", "configMapRef"))
    prefix = source.get("prefix")
    if prefix is not None and (not isinstance(prefix, str) or not _PRINTABLE_NOT_EQUALS.match(prefix)):
        causes.append(
            Cause(
                f"{where}.prefix",
                f"Invalid value: {str(prefix)[:64]!r}: a valid environment variable name must consist only of "
                "printable ASCII characters other than '='",
            )
        )
    if source.get("configMapRef") is not None:
        causes.append(_forbidden(f"{where}.configMapRef", "secretRef", ": this API server serves no ConfigMaps"))
    ref = source.get("secretRef")
    if ref is None:
        if not [key for key, value in source.items() if key != "prefix" and value is not None]:
            causes.append(Cause(where, "must specify one of: `secretRef`"))
        return causes
    if not isinstance(ref, dict):
        return [*causes, Cause(f"{where}.secretRef", "must be an object")]
    rwhere = f"{where}.secretRef"
    return (
        causes
        + _unknown_keys(ref, rwhere, ("name", "optional"))
        + _secret_name(ref.get("name"), f"{rwhere}.name")
        + _boolean(ref, "optional", rwhere)
    )


def env_source_causes(container: dict[str, Any], where: str) -> list[Cause]:
    """422 causes for a container's ``env[].valueFrom`` and ``envFrom[]`` (``where``: the container's path):
    the sources the node agent resolves, or a cause naming the field (see :func:`_value_from_causes`,
    :func:`_env_from_causes`)."""
    causes: list[Cause] = []
    for i, var in enumerate(_items(container.get("env"), f"{where}.env", causes)):
        if isinstance(var, dict) and var.get("valueFrom") is not None:
            causes.extend(_value_from_causes(var, f"{where}.env[{i}].valueFrom"))
    for i, source in enumerate(_items(container.get("envFrom"), f"{where}.envFrom", causes)):
        causes.extend(_env_from_causes(source, f"{where}.envFrom[{i}]"))
    return causes


def _local_path(path: Any, where: str) -> list[Cause]:
    """Kubernetes ``ValidateLocalNonReservedPath``: relative, no ``..`` component, not starting with ``..``;
    and it names a file beneath the volume (not ``.``, which is the volume's own directory: the node agent
    cannot write a file there, nor can the kubelet)."""
    causes = _sub_path_causes(path, where)
    if not causes and path.startswith(".."):
        causes.append(Cause(where, f"must not start with '..' (got {path[:64]!r})"))
    elif not causes and all(part in ("", ".") for part in path.split("/")):
        causes.append(Cause(where, f"must name a file beneath the volume (got {path[:64]!r})"))
    return causes


def _key_to_paths(items: Any, where: str, paths: set[str] | None = None) -> list[Cause]:
    """``items[]`` of a secret source (Kubernetes ``validateKeyToPath``): ``key`` and ``path`` required, the path
    local (:func:`_local_path`), ``mode`` a file mode. ``paths``: the paths seen so far in a projected volume,
    which must not repeat (``validateProjectionSources``: "conflicting duplicate paths")."""
    causes: list[Cause] = []
    for j, item in enumerate(_items(items, where, causes)):
        iwhere = f"{where}[{j}]"
        if not isinstance(item, dict):
            causes.append(Cause(iwhere, "must be an object"))
            continue
        causes.extend(_unknown_keys(item, iwhere, ("key", "path", "mode")))
        causes.extend(_required_string(item.get("key"), f"{iwhere}.key"))
        path = item.get("path")
        problems = _required_string(path, f"{iwhere}.path") or _local_path(path, f"{iwhere}.path")
        if not problems and paths is not None and isinstance(path, str):
            if path in paths:
                problems = [
                    Cause(
                        f"{iwhere}.path",
                        f'Duplicate value: "{path[:64]}": conflicting duplicate paths',
                        "FieldValueDuplicate",
                    )
                ]
            paths.add(path)
        causes.extend(problems)
        causes.extend(_file_mode(item.get("mode"), f"{iwhere}.mode"))
    return causes


def _secret_volume_causes(secret: Any, where: str) -> list[Cause]:
    """A ``secret`` volume (Kubernetes ``validateSecretVolumeSource``): ``secretName`` required, ``items``
    (:func:`_key_to_paths`), ``defaultMode`` a file mode, ``optional`` a boolean."""
    if not isinstance(secret, dict):
        return [Cause(where, "must be an object")]
    return (
        _unknown_keys(secret, where, ("secretName", "items", "defaultMode", "optional"))
        + _required_string(secret.get("secretName"), f"{where}.secretName")
        + _key_to_paths(secret.get("items"), f"{where}.items")
        + _file_mode(secret.get("defaultMode"), f"{where}.defaultMode")
        + _boolean(secret, "optional", where)
    )


def _projected_causes(projected: Any, where: str) -> list[Cause]:
    """A ``projected`` volume (Kubernetes ``validateProjectedVolumeSource``): ``defaultMode`` a file mode; each
    source exactly one ``secret`` (``name`` required, ``items``, ``optional``), paths unique across sources.
    ``configMap``, ``downwardAPI``, ``serviceAccountToken``, ``clusterTrustBundle`` (any other kind) sources
    are Forbidden: the node agent projects Secrets only."""
    if not isinstance(projected, dict):
        return [Cause(where, "must be an object")]
    causes = _unknown_keys(projected, where, ("sources", "defaultMode"))
    causes.extend(_file_mode(projected.get("defaultMode"), f"{where}.defaultMode"))
    paths: set[str] = set()
    for j, source in enumerate(_items(projected.get("sources"), f"{where}.sources", causes)):
        swhere = f"{where}.sources[{j}]"
        if not isinstance(source, dict):
            causes.append(Cause(swhere, "must be an object"))
            continue
        present = [key for key, value in source.items() if value is not None]
        if not present:
            causes.append(Cause(swhere, "must specify a projection source: secret", "FieldValueRequired"))
        causes.extend(_forbidden(f"{swhere}.{key}", "secret") for key in present if key != "secret")
        secret = source.get("secret")
        if secret is None:
            continue
        if not isinstance(secret, dict):
            causes.append(Cause(f"{swhere}.secret", "must be an object"))
            continue
        pwhere = f"{swhere}.secret"
        causes.extend(_unknown_keys(secret, pwhere, ("name", "items", "optional")))
        causes.extend(_required_string(secret.get("name"), f"{pwhere}.name"))
        causes.extend(_key_to_paths(secret.get("items"), f"{pwhere}.items", paths))
        causes.extend(_boolean(secret, "optional", pwhere))
    return causes


HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")
"""``hostPath.type`` values (Kubernetes ``HostPathType``), each checked by the node agent before it mounts."""


def _host_path_causes(source: Any, where: str) -> list[Cause]:
    """``hostPath``: ``path`` required, absolute (the engine binds only absolute paths) and without ``..``
    (Kubernetes ``validateHostPathVolumeSource``, ``validatePathNoBacksteps``); ``type`` one of
    :data:`HOST_PATH_TYPES`."""
    if not isinstance(source, dict):
        return [Cause(where, "must be an object")]
    causes = []
    path = source.get("path")
    if not isinstance(path, str) or not path:
        causes.append(Cause(f"{where}.path", "field required", "FieldValueRequired"))
    elif not path.startswith("/"):
        causes.append(Cause(f"{where}.path", f"must be an absolute path (got {path[:64]!r})"))
    elif ".." in path.split("/"):
        causes.append(Cause(f"{where}.path", f"must not contain '..' (got {path[:64]!r})"))
    kind = source.get("type")
    if kind is not None and kind not in HOST_PATH_TYPES:
        supported = ", ".join(f'"{t}"' for t in HOST_PATH_TYPES)
        causes.append(
            Cause(
                f"{where}.type",
                f"Unsupported value: {str(kind)[:32]!r}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        )
    return causes


def volume_source_causes(spec: dict[str, Any], path: str = "spec") -> list[Cause]:
    """422 causes for the sources of a pod spec's ``volumes`` (``path``: ``spec`` or ``spec.template.spec``).

    Each volume has at most one of :data:`VOLUME_SOURCES` (Kubernetes ``validateVolumeSource``: "may not
    specify more than 1 volume type", naming the later one); any other volume type (``configMap``,
    ``downwardAPI``, ``nfs``, ``persistentVolumeClaim``, ``csi``, ...) is Forbidden; ``secret`` and
    ``projected`` are checked by :func:`_secret_volume_causes` and :func:`_projected_causes`. A volume with
    no source at all stays accepted (Kubernetes defaults it to ``emptyDir``); a source set to null is unset.
    """
    volumes = spec.get("volumes")
    causes: list[Cause] = []
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        if not isinstance(volume, dict):
            continue
        where = f"{path}.volumes[{i}]"
        seen = False
        for key in VOLUME_SOURCES:
            if volume.get(key) is None:
                continue
            if seen:
                causes.append(
                    Cause(f"{where}.{key}", "Forbidden: may not specify more than 1 volume type", "FieldValueForbidden")
                )
            seen = True
        causes.extend(
            _forbidden(f"{where}.{key}", ", ".join(VOLUME_SOURCES))
            for key, value in volume.items()
            if key != "name" and key not in VOLUME_SOURCES and value is not None
        )
        if volume.get("hostPath") is not None:
            causes.extend(_host_path_causes(volume["hostPath"], f"{where}.hostPath"))
        if volume.get("secret") is not None:
            causes.extend(_secret_volume_causes(volume["secret"], f"{where}.secret"))
        if volume.get("projected") is not None:
            causes.extend(_projected_causes(volume["projected"], f"{where}.projected"))
    return causes


def _namespace_causes(obj: dict[str, Any]) -> list[Cause]:
    """Pod Security labels must name a level and a version (see :mod:`dockyard.api.podsecurity`)."""
    return podsecurity.label_causes((obj.get("metadata") or {}).get("labels"))


def _workload_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "field required", "FieldValueRequired")]
    causes: list[Cause] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(Cause("spec.replicas", "must be greater than or equal to 0"))
    selector = spec.get("selector")
    template: dict[str, Any] = spec["template"] if isinstance(spec.get("template"), dict) else {}
    if (
        not isinstance(selector, dict)
        or not isinstance(selector.get("matchLabels"), dict)
        or not selector["matchLabels"]
    ):
        causes.append(Cause("spec.selector", "field required", "FieldValueRequired"))
    else:
        meta: dict[str, Any] = template["metadata"] if isinstance(template.get("metadata"), dict) else {}
        labels: dict[str, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
        if any(labels.get(k) != v for k, v in selector["matchLabels"].items()):
            causes.append(Cause("spec.template.metadata.labels", "`selector` does not match template `labels`"))
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


_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_SECRET_BYTES = 1024 * 1024
"""Largest total size of a Secret's data (the apiserver's 1 MiB)."""


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
        if not isinstance(key, str) or not key or len(key) > 253 or not _SECRET_KEY.match(key):
            causes.append(
                Cause(
                    f"data[{str(key)[:64]}]",
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
            continue
        try:
            if not isinstance(value, str):
                raise ValueError
            size += len(base64.b64decode(value, validate=True))
        except (ValueError, binascii.Error):
            causes.append(Cause(f"data[{key}]", "must be base64-encoded bytes (the value is not shown)"))
    if size > MAX_SECRET_BYTES:
        causes.append(Cause("data", f"Too long: must have at most {MAX_SECRET_BYTES} bytes", "FieldValueTooLong"))
    if obj.get("type") is not None and not isinstance(obj.get("type"), str):
        causes.append(Cause("type", "must be a string"))
    return causes


_CORE_CHECKS = {
    "Pod": _pod_causes,
    "Deployment": _workload_causes,
    "ReplicaSet": _workload_causes,
    "Secret": _secret_causes,
    "Namespace": _namespace_causes,
    "Service": services.service_causes,
    "EndpointSlice": services.endpointslice_causes,
}
