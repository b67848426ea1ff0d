"""One error tree for the API, translated to a Kubernetes ``Status`` at the boundary.

The ``Status`` shape and the reason vocabulary follow the Kubernetes API
conventions ("Response Status Kind", ``metav1.StatusReason``): ``NotFound``
404, ``AlreadyExists`` 409, ``Conflict`` 409, ``Invalid`` 422, ``BadRequest``
400, ``Gone`` 410 (``Expired``), ``Unauthorized`` 401, ``Forbidden`` 403,
``UnsupportedMediaType`` 415, ``RequestEntityTooLarge`` 413, ``Timeout`` 504. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class StatusError(Exception):
    """Base of every error the API answers with a ``Status`` body.

    Attributes:
        code: HTTP status code.
        reason: ``metav1.StatusReason`` (CamelCase).
        message: human-readable text; never contains secret data.
        details: optional ``StatusDetails`` dict (``name``, ``group``, ``kind``, ``causes``).
    """

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_status(self) -> dict[str, Any]:
        """The ``v1 Status`` object for this error (``status: Failure``)."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(StatusError):
    code, reason = 405, "MethodNotAllowed"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"


class Conflict(StatusError):
    code, reason = 409, "Conflict"


class Gone(StatusError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class TooManyRequests(StatusError):
    """429: a limit on concurrent requests is reached; ``retry_after`` seconds go out as ``Retry-After``
    (kube-apiserver's max-in-flight filter answers the same)."""

    code, reason = 429, "TooManyRequests"

    def __init__(self, message: str, *, retry_after: int = 1, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={**(details or {}), "retryAfterSeconds": retry_after})
        self.retry_after = retry_after


class InsufficientStorage(StatusError):
    """507: the store's disk is full; nothing of the request was written (RFC 4918 section 11.5)."""

    code, reason = 507, "InsufficientStorage"


class Timeout(StatusError):
    """504: the request could not be served in time, or (with a ``ResourceVersionTooLarge``
    cause) asked for a ``resourceVersion`` newer than the store's, as the apiserver answers."""

    code, reason = 504, "Timeout"


def too_large_resource_version(wanted: int, current: int) -> Timeout:
    """504 ``Timeout`` for a list at a revision the store has not reached (client-go retries it)."""
    return Timeout(
        f"Too large resource version: {wanted}, current: {current}",
        details={
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )


@dataclass(frozen=True)
class Cause:
    """One ``StatusCause``: ``field`` is a dotted path such as ``spec.output.to.name``.

    ``loc`` is the same path as keys and list indices (``("spec", "triggers", 0)``)
    when the validator knows it; it is never sent to clients.
    """

    field: str
    message: str
    type: str = "FieldValueInvalid"
    loc: tuple[str | int, ...] = ()


class Invalid(StatusError):
    """422: the object failed validation. The message names every field path.

    Example message (as the Kubernetes apiserver words it)::

        BuildConfig.dockyard.dev "hello" is invalid: spec.output.to.name: field required
    """

    code, reason = 422, "Invalid"

    def __init__(self, *, kind: str, group: str, name: str, causes: list[Cause]) -> None:
        qualified = f"{kind}.{group}" if group else kind
        text = "; ".join(f"{c.field}: {c.message}" for c in causes)
        super().__init__(
            f'{qualified} "{name}" is invalid: {text}',
            details={
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [{"reason": c.type, "message": c.message, "field": c.field} for c in causes],
            },
        )
        self.causes = causes


def not_found(info_group: str, plural: str, name: str) -> NotFound:
    """The apiserver's wording: ``builds.dockyard.dev "x" not found``."""
    resource = f"{plural}.{info_group}" if info_group else plural
    return NotFound(f'{resource} "{name}" not found', details={"name": name, "group": info_group, "kind": plural})
