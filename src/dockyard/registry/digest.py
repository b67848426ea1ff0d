"""Content digests: check the ones a registry or engine reports, compute and compare our own.

Pure (no I/O). The grammar is the OCI image spec's descriptor digest
(https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests)::

    digest              ::= algorithm ":" encoded
    algorithm           ::= algorithm-component (algorithm-separator algorithm-component)*
    algorithm-component ::= [a-z0-9]+
    algorithm-separator ::= [+._-]
    encoded             ::= [a-zA-Z0-9=_-]+

with the registered algorithms ``sha256`` (encoded: 64 lower-case hex) and
``sha512`` (128 lower-case hex). A digest of any other algorithm cannot be
verified here, so it is refused rather than used.
"""

from __future__ import annotations

import hashlib
import re

from dockyard.registry import errors

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "compute", "validate", "verify"]

#: Registered algorithms → the exact form of their encoded part (OCI image spec, "Registered algorithms").
ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}
DEFAULT_ALGORITHM = "sha256"

_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_MAX_LENGTH = 256  # "sha512:" + 128 hex is the longest digest we take
_SHOWN = 80  # characters of a bad value quoted in an error message


def validate(value: object, *, source: str) -> str:
    """Return ``value`` if it is a well-formed digest of a registered algorithm.

    Args:
        value: what a remote party sent (a header value, a JSON field, an engine's status line).
        source: where it came from, for the message (``"Docker-Content-Digest of 127.0.0.1:5000/app:v1"``).

    Returns:
        ``value`` unchanged, e.g. ``sha256:<64 hex>``.

    Raises:
        InvalidDigest: not a string, not ``algorithm:encoded``, an algorithm other than
            sha256/sha512, or an encoded part of the wrong form (upper-case hex, wrong length).
    """
    if not isinstance(value, str) or len(value) > _MAX_LENGTH or not _GRAMMAR.fullmatch(value):
        raise errors.InvalidDigest(f"{source}: malformed digest {_quote(value)} (want algorithm:hex)")
    algorithm, _, encoded = value.partition(":")
    pattern = ALGORITHMS.get(algorithm)
    if pattern is None:
        raise errors.InvalidDigest(
            f"{source}: unsupported digest algorithm {algorithm!r} (want one of {', '.join(ALGORITHMS)})"
        )
    if not pattern.fullmatch(encoded):
        raise errors.InvalidDigest(
            f"{source}: malformed {algorithm} digest {_quote(value)} "
            f"(want {ALGORITHMS[algorithm].pattern} after '{algorithm}:')"
        )
    return value


def compute(content: bytes, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """``algorithm:<hex>`` of ``content`` (a manifest's digest is that of its exact bytes).

    Raises:
        InvalidDigest: ``algorithm`` is not registered.
    """
    if algorithm not in ALGORITHMS:
        raise errors.InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"


def verify(content: bytes, expected: str, *, source: str) -> str:
    """Check that ``content`` hashes to ``expected`` (validated first); return ``expected``.

    Raises:
        InvalidDigest: ``expected`` is malformed (see :func:`validate`).
        DigestMismatch: the content has another digest; the message gives both.
    """
    validate(expected, source=source)
    actual = compute(content, expected.partition(":")[0])
    if actual != expected:
        raise errors.DigestMismatch(f"{source}: content has digest {actual}, not {expected}")
    return expected


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
