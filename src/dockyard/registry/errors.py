"""One error tree for registry access (client and local server).

Messages name the registry, repository and HTTP status; they never carry
credentials or tokens.
"""

from __future__ import annotations

from dockyard.api import reference

__all__ = [
    "BlobUnknown",
    "DigestMismatch",
    "InsecureRealm",
    "InvalidDigest",
    "InvalidReference",
    "ManifestUnknown",
    "NameUnknown",
    "NotFound",
    "RegistryError",
    "RegistryServerError",
    "RegistryUnavailable",
    "ResponseTooLarge",
    "Unauthorized",
]


class RegistryError(Exception):
    """A registry request failed.

    Attributes:
        status: the HTTP status code, when there was a response.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidReference(RegistryError, reference.InvalidReference):
    """An image reference does not follow the distribution reference grammar (raised by
    :mod:`dockyard.registry.reference`; also a :class:`dockyard.api.reference.InvalidReference`)."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached or answered 5xx (temporary: retry)."""


class Unauthorized(RegistryError):
    """401/403: credentials missing, wrong, or without the needed scope."""


class NotFound(RegistryError):
    """404: the requested object does not exist."""


class ManifestUnknown(NotFound):
    """404 on a manifest: the tag or digest is not in the repository."""


class BlobUnknown(NotFound):
    """404 on a blob: the repository holds no blob of that digest (OCI distribution spec ``BLOB_UNKNOWN``)."""


class NameUnknown(NotFound):
    """404 on a repository (e.g. on the tags list): the repository does not exist."""


class RegistryServerError(RegistryError):
    """The local registry process could not be started."""


class InsecureRealm(RegistryError):
    """A Bearer challenge names a token realm we will not send credentials to.

    Only ``https://`` realms, or ``http://`` realms on loopback, are asked for a token
    (see :func:`dockyard.registry.client.check_realm`); nothing is sent to any other.

    Attributes:
        realm: the realm as the registry sent it.
        reason: why it was refused.
    """

    def __init__(self, message: str, *, realm: str, reason: str, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.realm = realm
        self.reason = reason


class InvalidDigest(RegistryError):
    """A digest from a registry or engine is not ``algorithm:encoded`` of a supported algorithm."""


class DigestMismatch(RegistryError):
    """Content does not hash to the digest the registry reported or the client asked for."""


class ResponseTooLarge(RegistryError):
    """A response body is larger than the client reads into memory (e.g. a manifest over 4 MiB)."""
