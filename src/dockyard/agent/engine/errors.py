"""One error tree for the engine layer.

Everything the engine layer raises is an :class:`EngineError`; callers that
only care whether the engine step worked catch that. Messages name what to
fix and never carry credentials.
"""

from __future__ import annotations

__all__ = [
    "BuildFailed",
    "CommitFailed",
    "EngineError",
    "NotFound",
    "PullFailed",
    "PushFailed",
    "RequestFailed",
    "TagFailed",
]


class EngineError(Exception):
    """The container engine is missing, did not answer, or refused a request."""


class BuildFailed(EngineError):
    """An image build failed.

    Attributes:
        message: the engine's error text (the ``error``/``errorDetail`` line of
            the build stream, or the API error).
        log_tail: the last lines of build output before the failure, oldest
            first (at most ~50 lines).
    """

    def __init__(self, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_tail = list(log_tail or [])


class PushFailed(EngineError):
    """The engine could not push an image (the message never holds credentials)."""


class CommitFailed(EngineError):
    """The engine could not commit a container into an image."""


class RequestFailed(EngineError):
    """The engine answered a request with an error (HTTP 4xx/5xx).

    Attributes:
        status_code: the HTTP status of the engine's answer, or ``None`` when unknown.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class NotFound(RequestFailed):
    """No such container or image (HTTP 404)."""


class PullFailed(EngineError):
    """An image pull failed: the engine refused it, reported an error in its progress stream, or the pull
    ran past its deadline."""


class TagFailed(EngineError):
    """The engine could not tag an image."""
