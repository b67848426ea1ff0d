"""images.push: the digest an engine reports for a push is checked before it is used."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.agent.engine import errors, images

GOOD = "sha256:" + "ab" * 32


class _Api:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks

    def push(self, *args: object, **kwargs: object) -> Iterator[dict[str, Any]]:
        return iter(self.chunks)


class _Client:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.api = _Api(chunks)


def _push(chunks: list[dict[str, Any]]) -> str | None:
    return images.push(_Client(chunks), "127.0.0.1:5000/app:v1")  # type: ignore[arg-type]


def test_reported_digests_are_returned() -> None:
    assert _push([{"status": f"v1: digest: {GOOD} size: 528"}]) == GOOD
    assert _push([{"aux": {"Tag": "v1", "Digest": GOOD, "Size": 528}}]) == GOOD
    assert _push([{"status": "Pushed"}]) is None


@pytest.mark.parametrize(
    "chunk",
    [
        {"aux": {"Digest": "sha256:../../etc/passwd"}},
        {"aux": {"Digest": "sha256:" + "AB" * 32}},
        {"aux": {"Digest": 7}},
        {"status": "v1: digest: sha256:" + "a" * 65 + " size: 1"},
        {"status": "v1: digest: sha256:" + "a" * 63 + " size: 1"},
    ],
)
def test_malformed_reported_digest_is_an_error(chunk: dict[str, Any]) -> None:
    with pytest.raises(errors.PushFailed, match="digest"):
        _push([chunk])
