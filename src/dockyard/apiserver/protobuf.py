"""Decoding the Kubernetes protobuf request encoding for a few built-in kinds. Pure.

kubectl's typed commands (``kubectl create namespace``, ``kubectl create
secret docker-registry``, ``kubectl create configmap``) send ``Content-Type: application/vnd.kubernetes.protobuf``
and do not fall back to JSON. The body is the envelope described in the
Kubernetes API concepts ("Protobuf encoding"): the magic ``k8s\\x00`` then a
``runtime.Unknown`` message (``typeMeta``, ``raw``), where ``raw`` is the
object in the field numbering of ``k8s.io/api/core/v1/generated.proto``.

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
# map_ss (map<string,string>), map_sb (map<string,bytes>), or another message name.
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
}
KINDS = {("v1", "Namespace"): "Namespace", ("v1", "Secret"): "Secret", ("v1", "ConfigMap"): "ConfigMap"}


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


def _map_entry(value: Any, bytes_values: bool) -> tuple[str, str]:
    key, val = "", "" if not bytes_values else b""
    for number, _, item in _fields(value):
        if number == 1:
            key = _text(item)
        elif number == 2:
            val = item if bytes_values else _text(item)
    if bytes_values:
        return key, base64.b64encode(val if isinstance(val, bytes) else b"").decode()
    return key, str(val)


def _time(value: Any) -> str:
    seconds = 0
    for number, _, item in _fields(value):
        if number == 1:
            seconds = item
    return timefmt.format(seconds)


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
        if type_ == "skip":
            continue
        if type_ == "string":
            decoded: Any = _text(value)
        elif type_ == "bytes":
            decoded = value if isinstance(value, bytes) else b""
        elif type_ == "int":
            decoded = value - (1 << 64) if isinstance(value, int) and value >= 1 << 63 else value
        elif type_ == "bool":
            decoded = bool(value)
        elif type_ == "time":
            decoded = _time(value)
        elif type_ in ("map_ss", "map_sb"):
            k, v = _map_entry(value, type_ == "map_sb")
            out.setdefault(key, {})[k] = v
            continue
        else:
            decoded = decode_message(type_, value)
        if repeated:
            out.setdefault(key, []).append(decoded)
        elif decoded not in ("", 0, False, b"") or type_ not in ("string", "int", "bool", "bytes"):
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
