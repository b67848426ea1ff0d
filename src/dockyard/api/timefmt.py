"""RFC 3339 timestamps as Kubernetes writes and reads them. No I/O.

Written as ``metav1.Time`` serializes (``k8s.io/apimachinery/pkg/apis/meta/v1/time.go`` ``MarshalJSON``:
``time.RFC3339`` in UTC, seconds precision, ``Z``): ``2024-05-06T07:08:09Z``. Read as RFC 3339 section 5.6
``date-time``: an optional fraction (container engines write nanoseconds) and ``Z`` or a ``±hh:mm`` offset.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

__all__ = ["FORMAT", "MICRO_FORMAT", "format", "now", "now_micro", "parse", "parse_datetime", "parse_or_none"]

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""``strftime`` format of a ``metav1.Time`` (UTC, seconds, ``Z``)."""

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)?$")


def format(ts: float | datetime) -> str:
    """``ts`` (epoch seconds, or an aware datetime; naive means UTC) as ``2024-05-06T07:08:09Z``.

    Fractions of a second are dropped (truncated), as ``metav1.Time`` does.
    """
    if isinstance(ts, datetime):
        dt = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    else:
        dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime(FORMAT)


def now() -> str:
    """The current UTC time as :func:`format` writes it."""
    return time.strftime(FORMAT, time.gmtime())


MICRO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""``strftime`` format of a ``metav1.MicroTime`` (UTC, microseconds, ``Z``)."""


def now_micro() -> str:
    """The current UTC time with microseconds (``metav1.MicroTime``): ``2024-05-06T07:08:09.123456Z``."""
    return datetime.now(UTC).strftime(MICRO_FORMAT)


def parse_datetime(text: str) -> datetime:
    """An RFC 3339 ``date-time`` as an aware :class:`datetime` (microseconds; a missing offset means UTC).

    Raises:
        ValueError: ``text`` is not an RFC 3339 date-time.
    """
    match = _RFC3339.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an RFC 3339 time: {str(text)[:64]!r}")
    base, frac, zone = match.groups()
    offset = "+00:00" if zone in (None, "Z", "z") else zone
    dt = datetime.fromisoformat(base.replace(" ", "T").replace("t", "T") + offset)
    return dt + timedelta(microseconds=int((frac or "0")[:6].ljust(6, "0")))


def parse(text: str) -> float:
    """An RFC 3339 ``date-time`` as epoch seconds (fraction kept to nanoseconds' float precision).

    Raises:
        ValueError: ``text`` is not an RFC 3339 date-time.
    """
    match = _RFC3339.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an RFC 3339 time: {str(text)[:64]!r}")
    frac = match.group(2)
    whole = parse_datetime(text.strip().replace("." + frac, "", 1) if frac else text)
    return whole.timestamp() + (float("0." + frac) if frac else 0.0)


def parse_or_none(text: str | None) -> float | None:
    """:func:`parse`, but ``None`` for empty text, a malformed time, or Go's zero time (year 1, which the
    engines report for "never", e.g. ``State.FinishedAt`` of a running container)."""
    if not text or text.strip().startswith("0001-"):
        return None
    try:
        return parse(text)
    except ValueError:
        return None
