"""The env and volume sources of a pod spec: each one the node agent honours is checked, every other is a 422
naming it (the API conventions' "Validation": the field path in dotted form with list indices).

Honoured (``dockyard.agent.pods.sources``): ``env[].valueFrom.secretKeyRef`` and ``configMapKeyRef``,
``valueFrom.fieldRef`` for :data:`ENV_FIELD_PATHS` and label/annotation subscripts, ``envFrom[].secretRef`` and
``configMapRef``, and the volume types of :data:`VOLUME_SOURCES` (``projected`` of ``secret`` and ``configMap``
sources only). Refused: ``resourceFieldRef``, ``fileKeyRef``, other field paths and every other volume type. The Kubernetes
rules each check follows are named in its docstring (``pkg/apis/core/validation``).
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.api import labelselector, models
from dockyard.api.errors import Cause

MAX_NAME_LENGTH = 253
_UNKNOWN_FIELD = "field not declared in schema"  # validation.UNKNOWN_FIELD (validation imports this module)
_UNSUPPORTED = "not supported by the node agent"  # as validation's
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
"""A Secret's data key (Kubernetes ``IsConfigMapKey``)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_list(value: Any, path: str, causes: list[Cause]) -> list[Any]:
    """``value`` if it is a list (``None``: empty); otherwise a cause and an empty list (validation uses it too)."""
    if value is None:
        return []
    if not isinstance(value, list):
        causes.append(Cause(path, "must be a list"))
        return []
    return value


def descending_path_causes(sub_path: Any, where: str) -> list[Cause]:
    """Kubernetes ``validateLocalDescendingPath`` (a ``subPath``, an item's ``path``): relative, no ``..``
    component. The node agent resolves a ``subPath`` beneath the volume without following symlinks out of it
    (see ``agent/subpath.py``)."""
    if not isinstance(sub_path, str):
        return [Cause(where, "must be a string")]
    if sub_path.startswith("/"):
        return [Cause(where, f"must be a relative path (got {sub_path[:64]!r})")]
    if ".." in sub_path.split("/"):
        return [Cause(where, f"must not contain '..' (got {sub_path[:64]!r})")]
    return []


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
_VALUE_FROM_SOURCES = ("secretKeyRef", "configMapKeyRef", "fieldRef")
_REFUSED_VALUE_FROM = ("resourceFieldRef", "fileKeyRef")
VOLUME_SOURCES = ("hostPath", "emptyDir", "secret", "configMap", "projected")
"""Volume types the node agent mounts, in the order Kubernetes' ``validateVolumeSource`` counts them."""
MAX_FILE_MODE = 0o777
_FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"


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
        Cause(f"{where}.{key}", _UNKNOWN_FIELD, "FieldValueNotSupported", loc=(*_loc(where), key))
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
    """A required Secret or ConfigMap name, an RFC 1123 subdomain (Kubernetes ``ValidateSecretName``,
    ``ValidateConfigMapName``)."""
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
    if len(value) > MAX_NAME_LENGTH or not SECRET_KEY.match(value):
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
        if labelselector.qualified_name_errors(key.lower() if subscripted.group(1) == "annotations" else key):
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


def _key_ref_causes(ref: Any, where: str) -> list[Cause]:
    """``valueFrom.secretKeyRef`` and ``configMapKeyRef`` (Kubernetes ``validateSecretKeySelector``,
    ``validateConfigMapKeySelector``): ``name`` an object name, ``key`` a config key, both required; ``optional``
    a boolean."""
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
    is not empty. The agent honours ``secretKeyRef``, ``configMapKeyRef`` and ``fieldRef``; ``resourceFieldRef``
    and ``fileKeyRef`` are Forbidden."""
    value_from = var["valueFrom"]
    if not isinstance(value_from, dict):
        return [Cause(where, "must be an object")]
    present = [key for key, value in value_from.items() if value is not None]
    causes = [
        _forbidden(f"{where}.{key}", "secretKeyRef, configMapKeyRef, fieldRef")
        for key in present
        if key in _REFUSED_VALUE_FROM
    ]
    causes.extend(_unknown_keys(value_from, where, (*_VALUE_FROM_SOURCES, *_REFUSED_VALUE_FROM)))
    sources = [key for key in present if key in _VALUE_FROM_SOURCES]
    if not present:
        causes.append(Cause(where, "must specify one of: `fieldRef`, `configMapKeyRef` or `secretKeyRef`"))
    elif len(sources) > 1:
        causes.append(Cause(where, "may not have more than one field specified at a time"))
    if var.get("value") and present:
        causes.append(Cause(where, "may not be specified when `value` is not empty"))
    for key in ("secretKeyRef", "configMapKeyRef"):
        if key in sources:
            causes.extend(_key_ref_causes(value_from[key], f"{where}.{key}"))
    if "fieldRef" in sources:
        causes.extend(_field_ref_causes(value_from["fieldRef"], f"{where}.fieldRef"))
    return causes


def _env_name_causes(name: Any, where: str, *, required: bool = True) -> list[Cause]:
    """An environment variable name (``env[].name``; ``envFrom[].prefix`` with ``required=False``):
    :data:`dockyard.api.models.ENV_NAME_CHARS`."""
    if required and (name is None or name == ""):
        return [Cause(where, "Required value", "FieldValueRequired")]
    if not isinstance(name, str) or not models.ENV_NAME_CHARS.match(name):
        return [Cause(where, f"Invalid value: {str(name)[:64]!r}: {models.ENV_NAME_MESSAGE}")]
    return []


def _env_from_causes(source: Any, where: str) -> list[Cause]:
    """``envFrom[]`` (Kubernetes ``validateEnvFrom``): one source; ``prefix`` a relaxed environment variable
    name (printable ASCII but '='). The agent honours ``secretRef`` and ``configMapRef`` (``name`` required,
    ``optional``), one of them per entry ("may not have more than one field specified at a time")."""
    if not isinstance(source, dict):
        return [Cause(where, "must be an object")]
    causes = _unknown_keys(source, where, ("prefix", "secretRef", "configMapRef"))
    prefix = source.get("prefix")
    if prefix is not None:
        causes.extend(_env_name_causes(prefix, f"{where}.prefix", required=False))
    refs = [key for key in ("configMapRef", "secretRef") if source.get(key) is not None]
    if not refs:
        if not [key for key, value in source.items() if key != "prefix" and value is not None]:
            causes.append(Cause(where, "must specify one of: `configMapRef` or `secretRef`"))
        return causes
    if len(refs) > 1:
        causes.append(Cause(where, "may not have more than one field specified at a time"))
    for key in refs:
        ref, rwhere = source[key], f"{where}.{key}"
        if not isinstance(ref, dict):
            causes.append(Cause(rwhere, "must be an object"))
            continue
        causes.extend(
            _unknown_keys(ref, rwhere, ("name", "optional"))
            + _secret_name(ref.get("name"), f"{rwhere}.name")
            + _boolean(ref, "optional", rwhere)
        )
    return causes


def env_source_causes(container: dict[str, Any], where: str) -> list[Cause]:
    """422 causes for a container's ``env[]`` and ``envFrom[]`` (``where``: the container's path): each name
    (:func:`_env_name_causes`), and the sources the node agent resolves, or a cause naming the field (see
    :func:`_value_from_causes`, :func:`_env_from_causes`)."""
    causes: list[Cause] = []
    for i, var in enumerate(as_list(container.get("env"), f"{where}.env", causes)):
        if not isinstance(var, dict):
            continue
        causes.extend(_env_name_causes(var.get("name"), f"{where}.env[{i}].name"))
        if var.get("valueFrom") is not None:
            causes.extend(_value_from_causes(var, f"{where}.env[{i}].valueFrom"))
    for i, source in enumerate(as_list(container.get("envFrom"), f"{where}.envFrom", causes)):
        causes.extend(_env_from_causes(source, f"{where}.envFrom[{i}]"))
    return causes


def _local_path(path: Any, where: str) -> list[Cause]:
    """Kubernetes ``ValidateLocalNonReservedPath``: relative, no ``..`` component, not starting with ``..``;
    and it names a file beneath the volume (not ``.``, which is the volume's own directory: the node agent
    cannot write a file there, nor can the kubelet)."""
    causes = descending_path_causes(path, where)
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
    for j, item in enumerate(as_list(items, where, causes)):
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


def _object_volume_causes(source: Any, where: str, name_key: str) -> list[Cause]:
    """A ``secret`` or ``configMap`` volume (Kubernetes ``validateSecretVolumeSource``,
    ``validateConfigMapVolumeSource``): the name (``secretName``, ``name``) required, ``items``
    (:func:`_key_to_paths`), ``defaultMode`` a file mode, ``optional`` a boolean."""
    if not isinstance(source, dict):
        return [Cause(where, "must be an object")]
    return (
        _unknown_keys(source, where, (name_key, "items", "defaultMode", "optional"))
        + _required_string(source.get(name_key), f"{where}.{name_key}")
        + _key_to_paths(source.get("items"), f"{where}.items")
        + _file_mode(source.get("defaultMode"), f"{where}.defaultMode")
        + _boolean(source, "optional", where)
    )


_PROJECTED_SOURCES = ("secret", "configMap")


def _projected_causes(projected: Any, where: str) -> list[Cause]:
    """A ``projected`` volume (Kubernetes ``validateProjectedVolumeSource``): ``defaultMode`` a file mode; each
    source exactly one ``secret`` or ``configMap`` (``name`` required, ``items``, ``optional``), paths unique
    across sources. ``downwardAPI``, ``serviceAccountToken``, ``clusterTrustBundle`` (any other kind) sources are
    Forbidden: the node agent projects Secrets and ConfigMaps only."""
    if not isinstance(projected, dict):
        return [Cause(where, "must be an object")]
    causes = _unknown_keys(projected, where, ("sources", "defaultMode"))
    causes.extend(_file_mode(projected.get("defaultMode"), f"{where}.defaultMode"))
    paths: set[str] = set()
    for j, source in enumerate(as_list(projected.get("sources"), f"{where}.sources", causes)):
        swhere = f"{where}.sources[{j}]"
        if not isinstance(source, dict):
            causes.append(Cause(swhere, "must be an object"))
            continue
        present = [key for key, value in source.items() if value is not None]
        if not present:
            causes.append(Cause(swhere, "must specify a projection source: secret or configMap", "FieldValueRequired"))
        causes.extend(
            _forbidden(f"{swhere}.{key}", ", ".join(_PROJECTED_SOURCES))
            for key in present
            if key not in _PROJECTED_SOURCES
        )
        kinds = [key for key in _PROJECTED_SOURCES if key in present]
        if len(kinds) > 1:
            causes.append(
                Cause(
                    f"{swhere}.{kinds[1]}", "Forbidden: may not specify more than 1 volume type", "FieldValueForbidden"
                )
            )
        for key in kinds:
            ref, pwhere = source[key], f"{swhere}.{key}"
            if not isinstance(ref, dict):
                causes.append(Cause(pwhere, "must be an object"))
                continue
            causes.extend(_unknown_keys(ref, pwhere, ("name", "items", "optional")))
            causes.extend(_required_string(ref.get("name"), f"{pwhere}.name"))
            causes.extend(_key_to_paths(ref.get("items"), f"{pwhere}.items", paths))
            causes.extend(_boolean(ref, "optional", pwhere))
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
    specify more than 1 volume type", naming the later one); any other volume type (``downwardAPI``, ``nfs``,
    ``persistentVolumeClaim``, ``csi``, ...) is Forbidden; ``secret``, ``configMap`` and ``projected`` are
    checked by :func:`_object_volume_causes` and :func:`_projected_causes`. A volume with
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
            causes.extend(_object_volume_causes(volume["secret"], f"{where}.secret", "secretName"))
        if volume.get("configMap") is not None:
            causes.extend(_object_volume_causes(volume["configMap"], f"{where}.configMap", "name"))
        if volume.get("projected") is not None:
            causes.extend(_projected_causes(volume["projected"], f"{where}.projected"))
    return causes
