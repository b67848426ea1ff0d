"""Decoding the Kubernetes protobuf request encoding for a few built-in kinds. Pure.

kubectl's typed commands (``kubectl create namespace``, ``kubectl create
secret docker-registry``, ``kubectl create configmap``, ``kubectl create service clusterip|nodeport|loadbalancer``,
``kubectl create deployment``) send ``Content-Type: application/vnd.kubernetes.protobuf`` and do not fall back to JSON. The body is the envelope described in the
Kubernetes API concepts ("Protobuf encoding"): the magic ``k8s\\x00`` then a
``runtime.Unknown`` message (``typeMeta``, ``raw``), where ``raw`` is the
object in the field numbering of ``k8s.io/api/core/v1/generated.proto`` (``apps/v1`` for Deployments).

Only the messages in :data:`MESSAGES` are known. A field number not listed
raises :class:`Unsupported` (the server answers 415) so nothing is silently
dropped.
"""

from __future__ import annotations

import base64
from typing import Any

from dockyard.api import timefmt

MAGIC = b"k8s\x00"

# message -> field number -> (json name, type, repeated). Types: string, bytes, int, bool, time,
# map_ss (map<string,string>), map_sb (map<string,bytes>), map_sq (map<string,Quantity>), intstr (IntOrString: a JSON int or string),
# or another message name. A scalar at its zero value is omitted (Go's ``omitempty``), except with a ``?``
# (``int?``, ``bool?``, ``string?``): a Go pointer, written only when set, so an explicit 0/false/"" is kept.
# Field numbers: k8s.io/api (core/v1, apps/v1) and k8s.io/apimachinery generated.proto of Kubernetes v1.32.
# PodSpec and Container list every scalar field but only the nested messages kubectl's typed commands send
# (ports, resources, imagePullSecrets): volumes, env, probes, securityContext... are refused (415).
Field = tuple[str, str, bool]
MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta", False),
        2: ("raw", "bytes", False),
        3: ("contentEncoding", "string", False),
        4: ("contentType", "string", False),
    },
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {
        1: ("name", "string", False),
        2: ("generateName", "string", False),
        3: ("namespace", "string", False),
        4: ("selfLink", "string", False),
        5: ("uid", "string", False),
        6: ("resourceVersion", "string", False),
        7: ("generation", "int", False),
        8: ("creationTimestamp", "time", False),
        9: ("deletionTimestamp", "time", False),
        10: ("deletionGracePeriodSeconds", "int", False),
        11: ("labels", "map_ss", False),
        12: ("annotations", "map_ss", False),
        13: ("ownerReferences", "OwnerReference", True),
        14: ("finalizers", "string", True),
        17: ("managedFields", "skip", True),
    },
    "OwnerReference": {
        1: ("kind", "string", False),
        3: ("name", "string", False),
        4: ("uid", "string", False),
        5: ("apiVersion", "string", False),
        6: ("controller", "bool", False),
        7: ("blockOwnerDeletion", "bool", False),
    },
    "Namespace": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "NamespaceSpec", False),
        3: ("status", "skip", False),
    },
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "Secret": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", "map_sb", False),
        3: ("type", "string", False),
        4: ("stringData", "map_ss", False),
        5: ("immutable", "bool", False),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", "map_ss", False),
        3: ("binaryData", "map_sb", False),
        4: ("immutable", "bool", False),
    },
    "Service": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "ServiceSpec", False),
        3: ("status", "ServiceStatus", False),
    },
    "ServiceSpec": {
        1: ("ports", "ServicePort", True),
        2: ("selector", "map_ss", False),
        3: ("clusterIP", "string", False),
        18: ("clusterIPs", "string", True),
        4: ("type", "string", False),
        5: ("externalIPs", "string", True),
        7: ("sessionAffinity", "string", False),
        8: ("loadBalancerIP", "string", False),
        9: ("loadBalancerSourceRanges", "string", True),
        10: ("externalName", "string", False),
        11: ("externalTrafficPolicy", "string", False),
        12: ("healthCheckNodePort", "int", False),
        13: ("publishNotReadyAddresses", "bool", False),
        14: ("sessionAffinityConfig", "SessionAffinityConfig", False),
        19: ("ipFamilies", "string", True),
        17: ("ipFamilyPolicy", "string?", False),
        20: ("allocateLoadBalancerNodePorts", "bool?", False),
        21: ("loadBalancerClass", "string?", False),
        22: ("internalTrafficPolicy", "string?", False),
        23: ("trafficDistribution", "string?", False),
    },
    "ServicePort": {
        1: ("name", "string", False),
        2: ("protocol", "string", False),
        6: ("appProtocol", "string?", False),
        3: ("port", "int", False),
        4: ("targetPort", "intstr", False),
        5: ("nodePort", "int", False),
    },
    "SessionAffinityConfig": {1: ("clientIP", "ClientIPConfig", False)},
    "ClientIPConfig": {1: ("timeoutSeconds", "int?", False)},
    "ServiceStatus": {
        1: ("loadBalancer", "LoadBalancerStatus", False),
        2: ("conditions", "Condition", True),
    },
    "LoadBalancerStatus": {1: ("ingress", "LoadBalancerIngress", True)},
    "LoadBalancerIngress": {
        1: ("ip", "string", False),
        2: ("hostname", "string", False),
        3: ("ipMode", "string?", False),
        4: ("ports", "PortStatus", True),
    },
    "PortStatus": {
        1: ("port", "int", False),
        2: ("protocol", "string", False),
        3: ("error", "string?", False),
    },
    "Deployment": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "DeploymentSpec", False),
        3: ("status", "DeploymentStatus", False),
    },
    "DeploymentSpec": {
        1: ("replicas", "int?", False),
        2: ("selector", "LabelSelector", False),
        3: ("template", "PodTemplateSpec", False),
        4: ("strategy", "DeploymentStrategy", False),
        5: ("minReadySeconds", "int", False),
        6: ("revisionHistoryLimit", "int?", False),
        7: ("paused", "bool", False),
        9: ("progressDeadlineSeconds", "int?", False),
    },
    "DeploymentStrategy": {
        1: ("type", "string", False),
        2: ("rollingUpdate", "RollingUpdateDeployment", False),
    },
    "RollingUpdateDeployment": {
        1: ("maxUnavailable", "intstr?", False),
        2: ("maxSurge", "intstr?", False),
    },
    "DeploymentStatus": {
        1: ("observedGeneration", "int", False),
        2: ("replicas", "int", False),
        3: ("updatedReplicas", "int", False),
        7: ("readyReplicas", "int", False),
        4: ("availableReplicas", "int", False),
        5: ("unavailableReplicas", "int", False),
        6: ("conditions", "DeploymentCondition", True),
        8: ("collisionCount", "int?", False),
    },
    "DeploymentCondition": {
        1: ("type", "string", False),
        2: ("status", "string", False),
        6: ("lastUpdateTime", "time", False),
        7: ("lastTransitionTime", "time", False),
        4: ("reason", "string", False),
        5: ("message", "string", False),
    },
    "LabelSelector": {
        1: ("matchLabels", "map_ss", False),
        2: ("matchExpressions", "LabelSelectorRequirement", True),
    },
    "LabelSelectorRequirement": {
        1: ("key", "string", False),
        2: ("operator", "string", False),
        3: ("values", "string", True),
    },
    "PodTemplateSpec": {
        1: ("metadata", "ObjectMeta", False),
        2: ("spec", "PodSpec", False),
    },
    "PodSpec": {
        20: ("initContainers", "Container", True),
        2: ("containers", "Container", True),
        3: ("restartPolicy", "string", False),
        4: ("terminationGracePeriodSeconds", "int?", False),
        5: ("activeDeadlineSeconds", "int?", False),
        6: ("dnsPolicy", "string", False),
        7: ("nodeSelector", "map_ss", False),
        8: ("serviceAccountName", "string", False),
        9: ("serviceAccount", "string", False),
        21: ("automountServiceAccountToken", "bool?", False),
        10: ("nodeName", "string", False),
        11: ("hostNetwork", "bool", False),
        12: ("hostPID", "bool", False),
        13: ("hostIPC", "bool", False),
        27: ("shareProcessNamespace", "bool?", False),
        15: ("imagePullSecrets", "LocalObjectReference", True),
        16: ("hostname", "string", False),
        17: ("subdomain", "string", False),
        19: ("schedulerName", "string", False),
        24: ("priorityClassName", "string", False),
        25: ("priority", "int?", False),
        29: ("runtimeClassName", "string?", False),
        30: ("enableServiceLinks", "bool?", False),
        31: ("preemptionPolicy", "string?", False),
        35: ("setHostnameAsFQDN", "bool?", False),
        37: ("hostUsers", "bool?", False),
        40: ("resources", "ResourceRequirements", False),
    },
    "Container": {
        1: ("name", "string", False),
        2: ("image", "string", False),
        3: ("command", "string", True),
        4: ("args", "string", True),
        5: ("workingDir", "string", False),
        6: ("ports", "ContainerPort", True),
        8: ("resources", "ResourceRequirements", False),
        24: ("restartPolicy", "string?", False),
        13: ("terminationMessagePath", "string", False),
        20: ("terminationMessagePolicy", "string", False),
        14: ("imagePullPolicy", "string", False),
        16: ("stdin", "bool", False),
        17: ("stdinOnce", "bool", False),
        18: ("tty", "bool", False),
    },
    "ContainerPort": {
        1: ("name", "string", False),
        2: ("hostPort", "int", False),
        3: ("containerPort", "int", False),
        4: ("protocol", "string", False),
        5: ("hostIP", "string", False),
    },
    "ResourceRequirements": {
        1: ("limits", "map_sq", False),
        2: ("requests", "map_sq", False),
        3: ("claims", "ResourceClaim", True),
    },
    "ResourceClaim": {1: ("name", "string", False), 2: ("request", "string", False)},
    "LocalObjectReference": {1: ("name", "string", False)},
    "Condition": {  # k8s.io.apimachinery.pkg.apis.meta.v1.Condition
        1: ("type", "string", False),
        2: ("status", "string", False),
        3: ("observedGeneration", "int", False),
        4: ("lastTransitionTime", "time", False),
        5: ("reason", "string", False),
        6: ("message", "string", False),
    },
}
KINDS = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Secret"): "Secret",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Service"): "Service",
    ("apps/v1", "Deployment"): "Deployment",
}


class Unsupported(ValueError):
    """The body uses a kind or field this decoder does not know, or is not valid protobuf."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise Unsupported("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise Unsupported("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    if not isinstance(data, bytes):
        raise Unsupported("expected a length-delimited message")
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise Unsupported("truncated field")
            value, pos = data[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise Unsupported(f"wire type {wire}")
        out.append((number, wire, value))
    return out


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise Unsupported("expected a length-delimited string")
    try:
        return value.decode()
    except UnicodeDecodeError as e:
        raise Unsupported("invalid UTF-8 in a string field") from e


def _map_entry(value: Any, kind: str) -> tuple[str, str]:
    """A map entry (``key`` 1, ``value`` 2) of a ``map_ss``, ``map_sb`` or ``map_sq`` field."""
    key, val = "", "" if kind != "map_sb" else b""
    for number, _, item in _fields(value):
        if number == 1:
            key = _text(item)
        elif number == 2:
            val = item if kind == "map_sb" else _quantity(item) if kind == "map_sq" else _text(item)
    if kind == "map_sb":
        return key, base64.b64encode(val if isinstance(val, bytes) else b"").decode()
    return key, str(val)


def _quantity(value: Any) -> str:
    """A ``resource.Quantity`` (``string`` 1): its JSON form is that string."""
    if not isinstance(value, bytes):
        raise Unsupported("expected a Quantity message")
    text = ""
    for number, _, item in _fields(value):
        if number != 1:
            raise Unsupported(f"field {number} of Quantity is not supported")
        text = _text(item)
    return text


def _time(value: Any) -> str | None:
    """A ``metav1.Time`` (``seconds``, ``nanos``); empty is Go's zero time (JSON ``null``): None."""
    if not value:
        return None
    seconds = 0
    for number, _, item in _fields(value):
        if number == 1:
            seconds = _signed(item)
        elif number != 2:
            raise Unsupported(f"field {number} of Time is not supported")
    return timefmt.format(seconds)


def _signed(value: Any) -> int:
    """A varint as Go's int32/int64 (negative numbers are sent as 10-byte two's complement)."""
    if not isinstance(value, int):
        raise Unsupported("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value


def _int_or_string(value: Any, keep_zero: bool = False) -> int | str | None:
    """An ``IntOrString`` (``type`` 0 int, 1 string; ``intVal``; ``strVal``).

    Its zero value (unset) is None, unless ``keep_zero`` (a ``*IntOrString``, sent only when set).
    """
    kind, number_value, text = 0, 0, ""
    for number, _, item in _fields(value):
        if number == 1:
            kind = item
        elif number == 2:
            number_value = _signed(item)
        elif number == 3:
            text = _text(item)
        else:
            raise Unsupported(f"field {number} of IntOrString is not supported")
    if kind == 1:
        return text
    if kind != 0:
        raise Unsupported(f"IntOrString type {kind} is not supported")
    return number_value if number_value or keep_zero else None


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    """Decode one message of type ``name`` into its JSON shape.

    Raises:
        Unsupported: unknown field number or malformed data.
    """
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, _, value in _fields(data):
        if number not in schema:
            raise Unsupported(f"field {number} of {name} is not supported")
        key, type_, repeated = schema[number]
        pointer = type_.endswith("?")
        type_ = type_.rstrip("?")
        if type_ == "skip":
            continue
        if type_ == "string":
            decoded: Any = _text(value)
        elif type_ == "bytes":
            decoded = value if isinstance(value, bytes) else b""
        elif type_ == "int":
            decoded = _signed(value)
        elif type_ == "bool":
            decoded = bool(value)
        elif type_ in ("time", "intstr"):
            decoded = _time(value) if type_ == "time" else _int_or_string(value, keep_zero=pointer)
            if decoded is None:
                continue
        elif type_ in ("map_ss", "map_sb", "map_sq"):
            k, v = _map_entry(value, type_)
            out.setdefault(key, {})[k] = v
            continue
        else:
            decoded = decode_message(type_, value)
        if repeated:
            out.setdefault(key, []).append(decoded)
        elif pointer or decoded not in ("", 0, False, b"") or type_ not in ("string", "int", "bool", "bytes"):
            out[key] = decoded  # scalars at their zero value are omitted, like Go's ``omitempty``
    return out


def decode(body: bytes) -> dict[str, Any]:
    """Decode a protobuf request body into a JSON-shaped object with ``apiVersion`` and ``kind``.

    Raises:
        Unsupported: no magic prefix, unknown kind, unknown field, or malformed data.
    """
    if not body.startswith(MAGIC):
        raise Unsupported("missing the k8s protobuf magic prefix")
    envelope = decode_message("Unknown", body[len(MAGIC) :])
    type_meta = envelope.get("typeMeta") or {}
    key = (type_meta.get("apiVersion", ""), type_meta.get("kind", ""))
    if key not in KINDS:
        raise Unsupported(f"protobuf encoding of {key[0]}/{key[1]} is not supported; send application/json")
    if envelope.get("contentEncoding"):
        raise Unsupported("content encodings are not supported")
    obj = decode_message(KINDS[key], envelope.get("raw") or b"")
    return {"apiVersion": key[0], "kind": key[1], **obj}
