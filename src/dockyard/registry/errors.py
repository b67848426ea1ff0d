"""One error tree for registry access (client and local server).

Messages name the registry, repository and HTTP status; they never carry
credentials or tokens.
"""

from __future__ import annotations

__all__ = [
    "RegistryError",
    "InvalidReference",
    "RegistryUnavailable",
    "Unauthorized",
    "NotFound",
    "ManifestUnknown",
    "NameUnknown",
    "RegistryServerError",
]


class RegistryError(Exception):
    """A registry request failed.

    Attributes:
        status: the HTTP status code, when there was a response.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidReference(RegistryError, ValueError):
    """An image reference does not follow the distribution reference grammar."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached or answered 5xx (temporary: retry)."""


class Unauthorized(RegistryError):
    """401/403: credentials missing, wrong, or without the needed scope."""


class NotFound(RegistryError):
    """404: the requested object does not exist."""


class ManifestUnknown(NotFound):
    """404 on a manifest: the tag or digest is not in the repository."""


class NameUnknown(NotFound):
    """404 on a repository (e.g. on the tags list): the repository does not exist."""


class RegistryServerError(RegistryError):
    """The local registry process could not be started."""
