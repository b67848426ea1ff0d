"""OCI distribution client: manifest digests and tag lists, with registry auth.

Follows the OCI Distribution Specification v1.1
(https://github.com/opencontainers/distribution-spec/blob/main/spec.md):

- "Pulling manifests" — ``HEAD``/``GET /v2/<name>/manifests/<reference>``
  (endpoints end-3 / end-2); the registry reports the digest of the exact
  bytes it serves in ``Docker-Content-Digest``. The ``Accept`` header must
  list every manifest type we take: without it, distribution 2.x converts an
  image to a schema-1 manifest with another digest.
- "Content discovery / Listing tags" — ``GET /v2/<name>/tags/list`` (end-8a,
  end-8b), paginated with ``n``/``last`` and an RFC 5988 ``Link`` header.
- "Error codes" — JSON ``{"errors": [{"code", "message", "detail"}]}``.

Authentication follows the registry's ``401`` challenge
(``WWW-Authenticate``, RFC 7235): ``Basic realm=…`` → resend with basic
credentials; ``Bearer realm=…,service=…,scope=…`` → fetch a token from
``realm`` as in the Docker "Token Authentication Specification"
(https://distribution.github.io/distribution/spec/auth/token/) and resend
with ``Authorization: Bearer``.

Plain ``http://`` is used for registries on ``127.0.0.1``, ``localhost`` and
``[::1]``; ``https://`` otherwise.

Layout: pure functions build requests and read responses (tested directly);
:class:`_Session` does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

from dockyard.registry import errors, reference

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "Manifest",
    "Challenge",
    "manifest_digest",
    "get_manifest",
    "list_tags",
    "base_url",
    "parse_challenge",
]

#: Manifest media types we accept, in order of preference (all four: see module doc).
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT_MANIFESTS = ", ".join(MANIFEST_MEDIA_TYPES)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_DOCKER_HUB_API = "registry-1.docker.io"
_MAX_TAG_PAGES = 1000

Auth = tuple[str, str]
_QueryValue = str | int | float | bool | None
RefLike = str | reference.Reference


@dataclass(frozen=True)
class Manifest:
    """A manifest as served: ``digest`` (``sha256:…`` of ``content``), ``media_type``, raw ``content``."""

    digest: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` challenge: ``scheme`` (lower-case) and its ``params``."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


# --- pure: request building and response reading -------------------------------------


def base_url(registry: str) -> str:
    """Scheme + host of a registry's API: ``http://`` on loopback, ``https://`` elsewhere.

    ``docker.io`` maps to its API host ``registry-1.docker.io``.
    """
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    if host in _LOOPBACK_HOSTS:
        return f"http://{registry}"
    if registry == reference.DEFAULT_REGISTRY:
        return f"https://{_DOCKER_HUB_API}"
    return f"https://{registry}"


def manifest_url(ref: reference.Reference) -> str:
    """``{base}/v2/<name>/manifests/<digest-or-tag>`` (OCI distribution spec, "Pulling manifests")."""
    return f"{base_url(ref.registry)}/v2/{ref.repository}/manifests/{ref.manifest_reference}"


def tags_url(ref: reference.Reference) -> str:
    """``{base}/v2/<name>/tags/list`` (OCI distribution spec, "Listing tags")."""
    return f"{base_url(ref.registry)}/v2/{ref.repository}/tags/list"


_CHALLENGE_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> Challenge | None:
    """Parse one ``WWW-Authenticate`` challenge (RFC 7235 §4.1).

    ``'Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"'``
    → ``Challenge("bearer", {"realm": …, "service": …, "scope": …})``.
    Returns ``None`` for an empty header.
    """
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {}
    for match in _CHALLENGE_PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return Challenge(scheme.lower(), params)


def token_request(challenge: Challenge, *, repository: str) -> tuple[str, list[tuple[str, _QueryValue]]]:
    """URL and query for a Bearer token (Docker token auth spec, "Requesting a Token").

    The challenge's ``scope`` is used when present, else ``repository:<name>:pull``.

    Raises:
        Unauthorized: the challenge has no ``realm``.
    """
    realm = challenge.params.get("realm")
    if not realm:
        raise errors.Unauthorized("registry sent a Bearer challenge without a realm", status=401)
    query: list[tuple[str, _QueryValue]] = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    scope = challenge.params.get("scope") or f"repository:{repository}:pull"
    for one in scope.split(" "):
        if one:
            query.append(("scope", one))
    return realm, query


def basic_authorization(username: str, password: str) -> str:
    """``Authorization`` value for HTTP Basic auth (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def digest_of(content: bytes) -> str:
    """``sha256:<hex>`` of ``content`` (a manifest's digest is that of its exact bytes)."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def next_page(link_header: str | None, current_url: str) -> str | None:
    """The ``rel="next"`` target of an RFC 5988 ``Link`` header, made absolute, or ``None``."""
    if not link_header:
        return None
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link_header)
    return urljoin(current_url, match.group(1)) if match else None


def error_detail(response: httpx.Response) -> str:
    """``"CODE: message"`` from an OCI error body (spec "Error codes"), or ``""``."""
    try:
        body = response.json()
        first = body["errors"][0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except Exception:  # noqa: BLE001 - any body shape: no detail
        return ""


# --- I/O -------------------------------------------------------------------------------


class _Session:
    """One httpx client plus the auth state for one registry (challenge → credentials/token)."""

    def __init__(
        self,
        ref: reference.Reference,
        *,
        auth: Auth | None,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.ref = ref
        self.auth = auth
        self.http = httpx.Client(timeout=timeout, follow_redirects=True, transport=transport)
        self.authorization: str | None = None

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """Send, answering at most one 401 challenge; raise on transport errors and 5xx."""
        response = self._send(method, url, headers)
        if response.status_code == 401 and self.authorization is None:
            self.authorization = self._authorize(response)
            response = self._send(method, url, headers)
        if response.status_code >= 500:
            raise errors.RegistryUnavailable(
                f"registry {self.ref.registry} answered {response.status_code} to {method} {_path(url)}",
                status=response.status_code,
            )
        if response.status_code in (401, 403):
            detail = error_detail(response)
            raise errors.Unauthorized(
                f"registry {self.ref.registry} refused {method} {_path(url)} ({response.status_code}"
                + (f", {detail}" if detail else "")
                + ")"
                + ("" if self.auth else ": credentials needed"),
                status=response.status_code,
            )
        return response

    def _send(self, method: str, url: str, headers: Mapping[str, str] | None) -> httpx.Response:
        all_headers = dict(headers or {})
        if self.authorization:
            all_headers["Authorization"] = self.authorization
        try:
            return self.http.request(method, url, headers=all_headers)
        except httpx.TransportError as e:
            raise errors.RegistryUnavailable(
                f"registry {self.ref.registry} unreachable ({type(e).__name__}) for {method} {_path(url)}"
            ) from None

    def _authorize(self, response: httpx.Response) -> str:
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise errors.Unauthorized(
                f"registry {self.ref.registry} asks for authentication without a usable challenge", status=401
            )
        if challenge.scheme == "basic":
            if self.auth is None:
                raise errors.Unauthorized(
                    f"registry {self.ref.registry} requires credentials (Basic auth) for {self.ref.repository}",
                    status=401,
                )
            return basic_authorization(*self.auth)
        realm, query = token_request(challenge, repository=self.ref.repository)
        try:
            token_response = self.http.get(realm, params=query, auth=httpx.BasicAuth(*self.auth) if self.auth else None)
        except httpx.TransportError as e:
            raise errors.RegistryUnavailable(
                f"token service of {self.ref.registry} unreachable ({type(e).__name__})"
            ) from None
        if token_response.status_code in (401, 403):
            raise errors.Unauthorized(
                f"token service of {self.ref.registry} refused the credentials ({token_response.status_code})",
                status=token_response.status_code,
            )
        if token_response.status_code != 200:
            raise errors.RegistryError(
                f"token service of {self.ref.registry} answered {token_response.status_code}",
                status=token_response.status_code,
            )
        try:
            body = token_response.json()
            token = body.get("token") or body.get("access_token")
        except ValueError:
            token = None
        if not token:
            raise errors.RegistryError(f"token service of {self.ref.registry} returned no token")
        return f"Bearer {token}"


def _path(url: str) -> str:
    return httpx.URL(url).path


def _as_reference(ref: RefLike) -> reference.Reference:
    return ref if isinstance(ref, reference.Reference) else reference.parse(ref)


def _raise_not_found(ref: reference.Reference, response: httpx.Response, *, what: str) -> None:
    """404 → ManifestUnknown on manifest endpoints (even for a missing repository), NameUnknown on tags."""
    detail = error_detail(response)
    suffix = f" ({detail})" if detail else ""
    if what == "tags":
        raise errors.NameUnknown(f"repository {ref.repository_url} not found{suffix}", status=404)
    raise errors.ManifestUnknown(f"manifest {ref} not found{suffix}", status=404)


def _unexpected(ref: reference.Reference, response: httpx.Response, method: str) -> errors.RegistryError:
    detail = error_detail(response)
    return errors.RegistryError(
        f"registry {ref.registry} answered {response.status_code} to {method} {_path(str(response.request.url))}"
        + (f" ({detail})" if detail else ""),
        status=response.status_code,
    )


def manifest_digest(
    ref: RefLike,
    *,
    auth: Auth | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """The digest the registry holds for a tag (or confirms for a digest).

    ``HEAD /v2/<name>/manifests/<reference>`` with all manifest media types in
    ``Accept``; reads ``Docker-Content-Digest``, else ``GET``s the manifest and
    hashes its bytes (OCI distribution spec, "Pulling manifests").

    Args:
        ref: ``registry/repository:tag`` (or ``@digest``), or a parsed Reference.
        auth: ``(username, password)`` for Basic auth or the token service.
        timeout: seconds for each HTTP request.
        transport: an httpx transport to send through (tests); default: the network.

    Returns:
        ``sha256:<64 hex>``.

    Raises:
        InvalidReference: ``ref`` does not parse.
        ManifestUnknown: 404 — no such tag/digest (or repository).
        Unauthorized: 401/403 — credentials missing or refused.
        RegistryUnavailable: connection failed or 5xx (temporary).
        RegistryError: any other unexpected answer.
    """
    parsed = _as_reference(ref)
    url = manifest_url(parsed)
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        response = session.request("HEAD", url, headers={"Accept": ACCEPT_MANIFESTS})
        if response.status_code == 404:
            _raise_not_found(parsed, response, what="manifest")
        if response.status_code == 200:
            digest = response.headers.get("Docker-Content-Digest")
            if digest:
                return str(digest)
        elif response.status_code != 405:  # some registries refuse HEAD: fall back to GET
            raise _unexpected(parsed, response, "HEAD")
        return _get_manifest(session, parsed, url).digest


def get_manifest(
    ref: RefLike,
    *,
    auth: Auth | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> Manifest:
    """``GET /v2/<name>/manifests/<reference>``: the manifest bytes, type and digest.

    The digest is computed from the bytes (and checked against a requested
    digest). Raises as :func:`manifest_digest`, plus :class:`RegistryError`
    when the content does not match a requested digest.
    """
    parsed = _as_reference(ref)
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        return _get_manifest(session, parsed, manifest_url(parsed))


def _get_manifest(session: _Session, ref: reference.Reference, url: str) -> Manifest:
    response = session.request("GET", url, headers={"Accept": ACCEPT_MANIFESTS})
    if response.status_code == 404:
        _raise_not_found(ref, response, what="manifest")
    if response.status_code != 200:
        raise _unexpected(ref, response, "GET")
    digest = digest_of(response.content)
    if ref.digest and ref.digest.startswith("sha256:") and ref.digest != digest:
        raise errors.RegistryError(f"manifest {ref} content has digest {digest}, not the requested one")
    return Manifest(digest=digest, media_type=response.headers.get("Content-Type", ""), content=response.content)


def list_tags(
    ref: RefLike,
    *,
    auth: Auth | None = None,
    timeout: float = 10.0,
    page_size: int = 1000,
    transport: httpx.BaseTransport | None = None,
) -> list[str]:
    """All tags of a repository, in the registry's (lexical) order.

    ``GET /v2/<name>/tags/list?n=<page_size>``, following ``Link: <…>;
    rel="next"`` (OCI distribution spec, "Listing tags"; at most 1000 pages).
    The tag/digest part of ``ref`` is ignored.

    Raises:
        NameUnknown: 404 — the repository does not exist.
        Unauthorized, RegistryUnavailable, RegistryError: as :func:`manifest_digest`.
    """
    parsed = _as_reference(ref)
    tags: list[str] = []
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        for response in _pages(session, parsed, f"{tags_url(parsed)}?n={page_size}"):
            body = response.json()
            tags.extend(body.get("tags") or [])
    return tags


def _pages(session: _Session, ref: reference.Reference, url: str | None) -> Iterator[httpx.Response]:
    for _ in range(_MAX_TAG_PAGES):
        if url is None:
            return
        response = session.request("GET", url)
        if response.status_code == 404:
            _raise_not_found(ref, response, what="tags")
        if response.status_code != 200:
            raise _unexpected(ref, response, "GET")
        yield response
        url = next_page(response.headers.get("Link"), url)
