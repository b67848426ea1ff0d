"""Decoding kubectl's protobuf request bodies (Namespace, Secret)."""

from __future__ import annotations

import pytest

from dockyard.apiserver import protobuf


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | int | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")


def test_decode_secret_with_metadata() -> None:
    meta = (
        field(1, "regcred")
        + field(2, "")
        + field(3, "team")
        + field(7, 0)
        + field(11, field(1, "app") + field(2, "web"))
        + field(14, "f1")
        + field(13, field(1, "Pod") + field(3, "p") + field(4, "u1") + field(5, "v1") + field(6, 1))
    )
    raw = field(1, meta) + field(2, field(1, ".dockerconfigjson") + field(2, b"{}")) + field(3, "kubernetes.io/x")
    obj = protobuf.decode(envelope("v1", "Secret", raw))
    assert obj == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "regcred",
            "namespace": "team",
            "labels": {"app": "web"},
            "finalizers": ["f1"],
            "ownerReferences": [{"kind": "Pod", "name": "p", "uid": "u1", "apiVersion": "v1", "controller": True}],
        },
        "data": {".dockerconfigjson": "e30="},
        "type": "kubernetes.io/x",
    }


def test_decode_namespace() -> None:
    raw = field(1, field(1, "team")) + field(2, field(1, "kubernetes")) + field(3, b"")
    assert protobuf.decode(envelope("v1", "Namespace", raw)) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team"},
        "spec": {"finalizers": ["kubernetes"]},
    }


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        protobuf.MAGIC + b"\xff",
        envelope("batch/v1", "Job", b""),
        envelope("v1", "Secret", field(99, "x")),
        envelope("v1", "Secret", field(1, field(1, b"\xff\xfe"))),
    ],
)
def test_unsupported_bodies(body: bytes) -> None:
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(body)
