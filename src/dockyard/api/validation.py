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

from dockyard.api import kinds, models, podsecurity
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
    if checker is not None and info.group in ("", "apps"):
        causes.extend(checker(obj))
    if causes:
        raise Invalid(kind=info.kind, group=info.group, name=name, causes=causes)
    return obj


def validate_fields(info: kinds.ResourceInfo, obj: dict[str, Any],
                    field_validation: str | None) -> tuple[dict[str, Any], list[str]]:
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
            raise BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                             f"strict decoding error: {fields}") from None
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
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return
    if isinstance(node, dict):
        node.pop(loc[-1], None)  # type: ignore[arg-type]


def _metadata_causes(meta: dict[str, Any]) -> list[Cause]:
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            return [Cause("metadata.name", "name or generateName is required", "FieldValueRequired")]
        return []
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not models.DNS1123_SUBDOMAIN.match(name):
        return [Cause("metadata.name", f"{str(name)[:64]!r}: a lowercase RFC 1123 subdomain must consist of "
                      "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                      "alphanumeric character")]
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
            causes.append(Cause(_path(prefix, loc), UNKNOWN_FIELD, "FieldValueNotSupported",
                                loc=(prefix, *(p for p in loc if isinstance(p, (str, int))))))
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
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


def _port_causes(port: Any, pwhere: str, host_ports: set[tuple[str, int]]) -> list[Cause]:
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
        key = (str(port.get("protocol") or "TCP"), hport)
        if key in host_ports:
            causes.append(Cause(f"{pwhere}.hostPort", f"{hport}/{key[0]} is already used by another port of "
                                "this pod", "FieldValueDuplicate"))
        host_ports.add(key)
    if port.get("hostIP") not in (None, "", "127.0.0.1"):
        causes.append(Cause(f"{pwhere}.hostIP", "pods publish on loopback only: use 127.0.0.1",
                            "FieldValueNotSupported"))
    return causes


def _containers_causes(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [Cause(path, "field required", "FieldValueRequired")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [Cause(f"{path}.containers", "at least one container is required", "FieldValueRequired")]
    causes: list[Cause] = []
    names: set[str] = set()
    host_ports: set[tuple[str, int]] = set()
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
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(Cause(f"{path}.restartPolicy", f'unsupported value {str(policy)[:32]!r}: supported values: '
                            '"Always", "OnFailure", "Never"', "FieldValueNotSupported"))
    volumes = {v.get("name") for v in _items(spec.get("volumes"), f"{path}.volumes", causes) if isinstance(v, dict)}
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        mounts = _items(container.get("volumeMounts"), f"{path}.containers[{i}].volumeMounts", causes)
        for j, mount in enumerate(mounts):
            if isinstance(mount, dict) and mount.get("name") not in volumes:
                causes.append(Cause(f"{path}.containers[{i}].volumeMounts[{j}].name",
                                    f"not found: no volume named {str(mount.get('name'))[:64]!r}",
                                    "FieldValueNotFound"))
            if isinstance(mount, dict) and mount.get("subPath"):
                causes.extend(_sub_path_causes(mount["subPath"], f"{path}.containers[{i}].volumeMounts[{j}].subPath"))
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


def _pod_causes(obj: dict[str, Any]) -> list[Cause]:
    return _containers_causes(obj.get("spec"), "spec") + podsecurity.runtime_class_causes(
        obj.get("metadata") or {}, obj.get("spec") or {})


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
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    if not isinstance(selector, dict) or not isinstance(selector.get("matchLabels"), dict) \
            or not selector["matchLabels"]:
        causes.append(Cause("spec.selector", "field required", "FieldValueRequired"))
    else:
        meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        if any(labels.get(k) != v for k, v in selector["matchLabels"].items()):
            causes.append(Cause("spec.template.metadata.labels", "`selector` does not match template `labels`"))
    causes.extend(_containers_causes(template.get("spec"), "spec.template.spec"))
    causes.extend(podsecurity.runtime_class_causes(template.get("metadata") or {}, template.get("spec") or {},
                                                   "spec.template.spec"))
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
            causes.append(Cause(f"data[{str(key)[:64]}]", "a valid config key must consist of alphanumeric "
                                "characters, '-', '_' or '.'"))
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


_CORE_CHECKS = {"Pod": _pod_causes, "Deployment": _workload_causes, "ReplicaSet": _workload_causes,
                "Secret": _secret_causes, "Namespace": _namespace_causes}
