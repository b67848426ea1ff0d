"""OCI distribution client: manifest digests and tag lists, with registry auth.

Follows the OCI Distribution Specification v1.1
(https://github.com/opencontainers/distribution-spec/blob/main/spec.md):

- "Pulling manifests" — ``HEAD``/``GET /v2/<name>/manifests/<reference>``
  (endpoints end-3 / end-2); the registry reports the digest of the exact
  bytes it serves in ``Docker-Content-Digest``. The ``Accept`` header must
  list every manifest type we take: without it, distribution 2.x converts an
  image to a schema-1 manifest with another digest.
- "Pulling blobs" — ``GET /v2/<name>/blobs/<digest>`` (end-2 for blobs); the
  bytes must hash to the digest asked for.
- "Pushing blobs" — ``HEAD /v2/<name>/blobs/<digest>`` (end-2, does it exist),
  then the monolithic "POST then PUT" upload: ``POST /v2/<name>/blobs/uploads/``
  (end-4a) → ``202`` with a ``Location``, ``PUT <location>?digest=<digest>``
  (end-6) with the bytes → ``201``.
- "Content discovery / Listing tags" — ``GET /v2/<name>/tags/list`` (end-8a,
  end-8b), paginated with ``n``/``last`` and an RFC 5988 ``Link`` header.
- "Error codes" — JSON ``{"errors": [{"code", "message", "detail"}]}``.

Authentication follows the registry's ``401`` challenge
(``WWW-Authenticate``, RFC 7235): ``Basic realm=…`` → resend with basic
credentials; ``Bearer realm=…,service=…,scope=…`` → ``GET realm?service=…&scope=…``
with basic credentials, take ``token`` (or ``access_token``) from the JSON
answer, as in the distribution "Token Authentication Specification"
(https://distribution.github.io/distribution/spec/auth/token/), and resend
with ``Authorization: Bearer``.

What the client trusts a registry with (a registry can be hostile):

- Credentials go to the registry itself, and to a token realm only over
  ``https://`` or on loopback (:func:`check_realm`); any other realm is refused
  with :class:`~dockyard.registry.errors.InsecureRealm` before anything is sent.
- Redirects are followed by hand (at most :data:`MAX_REDIRECTS`): the
  ``Authorization`` header goes only to the registry's own origin, and plain
  ``http://`` only to loopback. The token request follows none.
- Every digest a registry reports (``Docker-Content-Digest``) must be
  ``algorithm:hex`` of sha256/sha512 (:mod:`.digest`) and, where the client has
  the bytes, their digest; otherwise :class:`~dockyard.registry.errors.InvalidDigest`
  or :class:`~dockyard.registry.errors.DigestMismatch`.
- Bodies are read into memory only up to a bound: manifests up to
  :data:`MAX_MANIFEST_BYTES` (4 MiB, distribution's own manifest limit), other
  answers up to :data:`MAX_RESPONSE_BYTES`; beyond it,
  :class:`~dockyard.registry.errors.ResponseTooLarge`. A tag list holds at most
  :data:`MAX_TAGS` tags in :data:`MAX_TAG_LIST_BYTES` bytes of pages in all.
- Every request (headers and body) ends within :data:`REQUEST_DEADLINE_FACTOR` times
  its per-read ``timeout``, however slowly the registry trickles its answer
  (:class:`_Watchdog`); past it, :class:`~dockyard.registry.errors.RegistryUnavailable`.
  So that the watchdog always holds the socket it may have to cut, each request
  has a connection of its own (``Connection: close``): a pooled connection is
  never reused.

Plain ``http://`` is used for registries on loopback (``127.0.0.0/8``,
``[::1]``, ``localhost``); ``https://`` otherwise.

Layout: pure functions build requests and read responses (tested directly);
:class:`_Session` does the I/O.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from dockyard.api import hosts
from dockyard.registry import digest as digests
from dockyard.registry import errors, reference

__all__ = [
    "LIST_DEADLINE_FACTOR",
    "MANIFEST_MEDIA_TYPES",
    "MAX_MANIFEST_BYTES",
    "MAX_REDIRECTS",
    "MAX_RESPONSE_BYTES",
    "MAX_TAGS",
    "MAX_TAG_LIST_BYTES",
    "REQUEST_DEADLINE_FACTOR",
    "Challenge",
    "Manifest",
    "base_url",
    "check_realm",
    "delete_manifest",
    "get_blob",
    "get_manifest",
    "is_loopback_host",
    "list_tags",
    "manifest_digest",
    "parse_challenge",
    "put_blob",
    "put_manifest",
]

#: Manifest media types we accept, in order of preference (all four: see module doc).
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT_MANIFESTS = ", ".join(MANIFEST_MEDIA_TYPES)

#: Largest manifest read (distribution refuses to store bigger ones: ``maxManifestBodySize = 4 << 20``).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Largest other answer read into memory (a tags page, a token, an error body).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: Redirects followed for one request (the token request follows none).
MAX_REDIRECTS = 5
#: Most tags :func:`list_tags` collects over all pages. Ten times a big repository's count (a few
#: thousand): a hostile registry's endless pages are refused long before they exhaust memory.
MAX_TAGS = 100_000
#: Most bytes of tag-list pages :func:`list_tags` reads in all: 100,000 tags of the longest the tag grammar
#: allows (128 characters) take about 13 MB; the tags in a page are not checked against the grammar, so
#: this, not :data:`MAX_TAGS`, bounds a list of few but huge "tags".
MAX_TAG_LIST_BYTES = 16 * 1024 * 1024
#: Each registry request's total deadline, in multiples of its per-read ``timeout`` (default 10 s → 30 s):
#: httpx's ``timeout`` bounds each read, so a registry trickling a byte at a time would otherwise hold a
#: request, and the worker making it, forever. Three reads' worth leaves a slow registry room to answer.
REQUEST_DEADLINE_FACTOR = 3
#: A whole tag listing's deadline, in request deadlines (default 10 × 30 s = 5 min): a registry answering each
#: page just in time, each linking to another, would otherwise hold a scan for the 1000-page bound.
LIST_DEADLINE_FACTOR = 10

_DOCKER_HUB_API = "registry-1.docker.io"
_MAX_TAG_PAGES = 1000
_CONNECTION_EVENTS = ("connection.connect_tcp.complete", "connection.start_tls.complete")  # httpcore trace

Auth = tuple[str, str]
_QueryValue = str | int | float | bool | None
RefLike = str | reference.Reference


@dataclass(frozen=True)
class Manifest:
    """A manifest as served: ``digest`` (``sha256:…``, or the ``sha512:…`` asked for or reported, of
    ``content``; always checked against it), ``media_type``, raw ``content``."""

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
    """Scheme + host of a registry's API: ``http://`` on loopback (:func:`is_loopback_host`), ``https://`` elsewhere.

    ``docker.io`` maps to its API host ``registry-1.docker.io``.
    """
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    if is_loopback_host(host):
        return f"http://{registry}"
    if registry == reference.DEFAULT_REGISTRY:
        return f"https://{_DOCKER_HUB_API}"
    return f"https://{registry}"


is_loopback_host = hosts.is_loopback
"""True for ``localhost`` and loopback addresses (:func:`dockyard.api.hosts.is_loopback`)."""


def check_realm(realm: str) -> str:
    """Return ``realm`` if credentials may be sent there for a token; raise otherwise.

    The realm of a Bearer challenge is chosen by the registry, so a hostile
    registry could name any URL. The token specification
    (https://distribution.github.io/distribution/spec/auth/token/, "Requesting a
    Token") has the client send its credentials there; we do so only over
    ``https://``, or over ``http://`` to a loopback host (:func:`is_loopback_host`),
    never with userinfo in the URL.

    Raises:
        InsecureRealm: the realm is not an absolute http(s) URL with a host, has
            userinfo, or is plain ``http://`` to a host that is not loopback. The
            error carries ``realm`` and ``reason``.
    """

    def refuse(reason: str) -> errors.InsecureRealm:
        return errors.InsecureRealm(
            f"refusing to send credentials to token realm {realm!r}: {reason}", realm=realm, reason=reason, status=401
        )

    try:
        url = httpx.URL(realm)
    except (httpx.InvalidURL, TypeError) as e:
        raise refuse("not a URL") from e
    if url.scheme not in ("http", "https"):
        raise refuse(f"scheme {url.scheme or '(none)'!r} is not http or https")
    if not url.host:
        raise refuse("no host")
    if url.userinfo:
        raise refuse("userinfo in the URL")
    if url.scheme == "http" and not is_loopback_host(url.host):
        raise refuse("plain http to a host that is not loopback (use https)")
    return realm


def manifest_url(ref: reference.Reference) -> str:
    """``{base}/v2/<name>/manifests/<digest-or-tag>`` (OCI distribution spec, "Pulling manifests")."""
    return f"{base_url(ref.registry)}/v2/{ref.repository}/manifests/{ref.manifest_reference}"


def blob_url(ref: reference.Reference, digest: str) -> str:
    """``{base}/v2/<name>/blobs/<digest>`` (OCI distribution spec, "Pulling blobs"); ``digest`` is validated
    first (:func:`.digest.validate`), so nothing else reaches the path."""
    digests.validate(digest, source=f"blob digest for {ref.repository_url}")
    return f"{base_url(ref.registry)}/v2/{ref.repository}/blobs/{digest}"


def upload_url(ref: reference.Reference) -> str:
    """``{base}/v2/<name>/blobs/uploads/`` (OCI distribution spec, "Pushing blobs", POST then PUT)."""
    return f"{base_url(ref.registry)}/v2/{ref.repository}/blobs/uploads/"


def with_digest_param(location: httpx.URL, digest: str) -> str:
    """An upload ``location`` with ``digest=<digest>`` appended to its query (``&`` when it has one, else
    ``?``), the rest of it byte for byte (OCI distribution spec, "Pushing a blob monolithically", POST then
    PUT: the ``Location`` may carry the registry's own query, e.g. distribution's ``_state``). ``digest``
    is a validated digest (``algorithm:hex``: nothing in it needs escaping); a fragment is dropped."""
    base = str(location.copy_with(fragment=None))
    return base + ("&" if location.query else "?") + "digest=" + digest


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
    return digests.compute(content)


def next_page(link_header: str | None, current_url: str) -> str | None:
    """The ``rel="next"`` target of an RFC 5988 ``Link`` header, made absolute, or ``None``."""
    if not link_header:
        return None
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link_header)
    return urljoin(current_url, match.group(1)) if match else None


def error_detail(response: Reply) -> str:
    """``"CODE: message"`` from an OCI error body (spec "Error codes"), or ``""`` (at most 200 characters)."""
    try:
        body = response.json()
        first = body["errors"][0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")[:200]
    except Exception:
        return ""


@dataclass(frozen=True)
class Reply:
    """An answer read within its size bound: ``status_code``, ``headers``, ``content``, final ``url``."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL

    def json(self) -> Any:
        """The body as JSON (raises ``ValueError`` when it is not)."""
        return json.loads(self.content)


_REDIRECT_CODES = (301, 302, 303, 307, 308)
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # visible ASCII: a header value, no spaces or line breaks


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


# --- I/O -------------------------------------------------------------------------------


class _Watchdog:
    """Cuts one HTTP exchange off at its deadline, however slowly the registry trickles its answer.

    httpx's ``timeout`` bounds each read, not a request: a registry sending one header line or body byte
    every few seconds would hold the request, and its caller, forever. A timer thread shuts down the
    exchange's socket when ``seconds`` have passed (``shutdown``, unlike ``close``, wakes a thread blocked
    reading it), so the pending read or write fails at once. The socket comes from httpcore's ``trace``
    request extension as the connection is made (``connect_tcp``, ``start_tls``; :meth:`trace`) and from
    the response's ``network_stream`` once the head is in (:meth:`watch`): hence a fresh connection per
    request (``Connection: close``; a reused pooled connection reports neither until its head is in). A
    transport with neither (e.g. ``httpx.MockTransport``) is bounded by the caller checking :meth:`expired`
    between chunks. Thread-safe: the timer and the requesting thread share the socket list under a lock.

    Args:
        seconds: the deadline, from now.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._disarmed = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disarm()

    def disarm(self) -> None:
        """Stop the timer; once this returns, no socket is shut down any more."""
        self._timer.cancel()
        with self._lock:
            self._disarmed = True

    def expired(self) -> bool:
        """True once the deadline has passed (whether or not the timer has fired yet)."""
        return self._fired or time.monotonic() >= self._ends

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's ``trace`` extension: watch the connection's stream as soon as it is made."""
        if event in _CONNECTION_EVENTS:
            self.watch(info.get("return_value"))

    def watch(self, stream: object) -> None:
        """Shut down the socket of an httpcore network ``stream`` at the deadline (at once if past it)."""
        get_extra_info = getattr(stream, "get_extra_info", None)
        sock = get_extra_info("socket") if callable(get_extra_info) else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._disarmed:
                return
            self._sockets.append(sock)
            if self._fired:
                _shut_down(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._disarmed:
                return
            self._fired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    # the plain socket's shutdown, also for an SSLSocket (whose own drops its TLS state under a reader)
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed (by the reader, or detached when TLS wrapped it)
        pass


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
        self.origin = _origin(httpx.URL(base_url(ref.registry)))
        self.http = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
        self.deadline = timeout * REQUEST_DEADLINE_FACTOR  # seconds, each request (see _Watchdog)
        # a caller's transport is the caller's to close (httpx's Client.close() closes any transport): it may
        # be serving a request of another thread, and its pooled connections are what it is given for
        self._owns_transport = transport is None
        self.authorization: str | None = None
        self.answered: str | None = None  # the WWW-Authenticate challenge self.authorization answers

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._owns_transport:
            self.http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        limit: int = MAX_RESPONSE_BYTES,
        content: bytes | None = None,
    ) -> Reply:
        """Send, answering a 401 challenge of the registry once per request; raise on transport errors and 5xx.

        A challenge is answered when the session has none yet, or when it differs from the one answered
        (a Bearer ``scope`` the token lacks: a ``HEAD`` gets a pull token, a following ``POST`` asks for
        ``pull,push``, as in the distribution token spec, "How to authenticate").
        """
        response = self._send(method, url, headers, limit, content)
        challenge = response.headers.get("WWW-Authenticate", "")
        if (
            response.status_code == 401
            and (self.authorization is None or (challenge and challenge != self.answered))
            and _origin(response.url) == self.origin
        ):
            self.authorization = self._authorize(response)
            self.answered = challenge
            response = self._send(method, url, headers, limit, content)
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

    def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, limit: int, content: bytes | None = None
    ) -> Reply:
        """Send, following up to MAX_REDIRECTS redirects; ``Authorization`` only to the registry's origin."""
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            all_headers = dict(headers or {})
            if self.authorization and _origin(target) == self.origin:
                all_headers["Authorization"] = self.authorization
            response = self._fetch(method, target, all_headers, limit, what=f"{method} {_path(url)}", content=content)
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECT_CODES or not location:
                return response
            target = self.next_target(target, location, what=f"redirect for {method} {_path(url)}")
        raise errors.RegistryError(
            f"registry {self.ref.registry} sent more than {MAX_REDIRECTS} redirects for {method} {_path(url)}"
        )

    def next_target(self, current: httpx.URL, location: str, *, what: str) -> httpx.URL:
        """``location`` (a redirect or a ``Link: rel="next"``) made absolute, if it may be followed.

        Raises:
            RegistryError: not an http(s) URL with a host, or plain ``http://`` off loopback.
        """
        try:
            target = current.join(location)
        except httpx.InvalidURL:
            target = None
        if target is None or target.scheme not in ("http", "https") or not target.host:
            raise errors.RegistryError(f"registry {self.ref.registry} sent an unusable {what}")
        if target.scheme == "http" and not is_loopback_host(target.host):
            raise errors.RegistryError(
                f"registry {self.ref.registry} sent a {what} to plain http on {target.host}: "
                "refused (plain http only on loopback)"
            )
        return target

    def _fetch(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        limit: int,
        *,
        what: str,
        token: bool = False,
        content: bytes | None = None,
    ) -> Reply:
        """One request, no redirects; the body is read up to ``limit`` bytes, the whole exchange within
        :attr:`deadline` seconds (:class:`_Watchdog`; on its own connection, ``Connection: close``).

        Raises:
            ResponseTooLarge: the body is over ``limit`` bytes.
            RegistryUnavailable: the connection failed, or the answer was not in by the deadline.
        """
        service = f"token service of {self.ref.registry}" if token else f"registry {self.ref.registry}"
        headers.setdefault("Accept-Encoding", "identity")
        headers["Connection"] = "close"
        watchdog = _Watchdog(self.deadline)
        try:
            with (
                watchdog,
                self.http.stream(
                    method, url, headers=headers, content=content, extensions={"trace": watchdog.trace}
                ) as response,
            ):
                try:
                    watchdog.watch(response.extensions.get("network_stream"))
                    length = response.headers.get("Content-Length", "")
                    if length.isdigit() and int(length) > limit:
                        raise self._too_large(what, limit, service)
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        if watchdog.expired():
                            raise self._overdue(what, service)
                        body += chunk
                        if len(body) > limit:
                            raise self._too_large(what, limit, service)
                finally:
                    watchdog.disarm()  # before the response closes its socket
        except httpx.TransportError as e:
            if watchdog.expired():
                raise self._overdue(what, service) from None
            raise errors.RegistryUnavailable(f"{service} unreachable ({type(e).__name__}) for {what}") from None
        return Reply(response.status_code, response.headers, bytes(body), url)

    def _overdue(self, what: str, service: str) -> errors.RegistryUnavailable:
        return errors.RegistryUnavailable(
            f"{service} did not answer {what} within {self.deadline:g} s (the deadline of a registry request)"
        )

    def _too_large(self, what: str, limit: int, service: str) -> errors.ResponseTooLarge:
        return errors.ResponseTooLarge(f"{service} answered {what} with more than {limit} bytes")

    def _authorize(self, response: Reply) -> str:
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
        url = httpx.URL(check_realm(realm)).copy_merge_params(query)
        headers = {"Authorization": basic_authorization(*self.auth)} if self.auth else {}
        token_response = self._fetch("GET", url, headers, MAX_RESPONSE_BYTES, what="GET token", token=True)
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
            token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        except ValueError:
            token = None
        if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
            raise errors.RegistryError(f"token service of {self.ref.registry} returned no usable token")
        return f"Bearer {token}"


def _path(url: str) -> str:
    return httpx.URL(url).path


def _as_reference(ref: RefLike) -> reference.Reference:
    return ref if isinstance(ref, reference.Reference) else reference.parse(ref)


def _raise_not_found(ref: reference.Reference, response: Reply, *, what: str) -> None:
    """404 → ManifestUnknown on manifest endpoints (even for a missing repository), NameUnknown on tags,
    BlobUnknown on blobs (``what`` is ``"blob <digest>"``)."""
    detail = error_detail(response)
    suffix = f" ({detail})" if detail else ""
    if what == "tags":
        raise errors.NameUnknown(f"repository {ref.repository_url} not found{suffix}", status=404)
    if what.startswith("blob"):
        raise errors.BlobUnknown(f"{what} not found in {ref.repository_url}{suffix}", status=404)
    raise errors.ManifestUnknown(f"manifest {ref} not found{suffix}", status=404)


def _unexpected(ref: reference.Reference, response: Reply, method: str) -> errors.RegistryError:
    detail = error_detail(response)
    return errors.RegistryError(
        f"registry {ref.registry} answered {response.status_code} to {method} {_path(str(response.url))}"
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
    hashes its bytes (OCI distribution spec, "Pulling manifests"). The header must
    be a well-formed sha256/sha512 digest (:func:`.digest.validate`) and, for a
    digest reference, the digest asked for.

    Args:
        ref: ``registry/repository:tag`` (or ``@digest``), or a parsed Reference.
        auth: ``(username, password)`` for Basic auth or the token service.
        timeout: seconds for each read (connect, write) of an HTTP request; the whole request, headers
            and body, ends within :data:`REQUEST_DEADLINE_FACTOR` times it.
        transport: an httpx transport to send through (tests); default: the network.

    Returns:
        ``sha256:<64 hex>`` (or ``sha512:<128 hex>`` if that is what the registry uses).

    Raises:
        InvalidReference: ``ref`` does not parse.
        InvalidDigest: ``Docker-Content-Digest`` is malformed or of an unsupported algorithm.
        DigestMismatch: the registry reports another digest than the one asked for, or
            the bytes it serves do not hash to it.
        InsecureRealm: a Bearer challenge names a realm credentials must not go to.
        ResponseTooLarge: the manifest is over :data:`MAX_MANIFEST_BYTES`.
        ManifestUnknown: 404 — no such tag/digest (or repository).
        Unauthorized: 401/403 — credentials missing or refused.
        RegistryUnavailable: connection failed, the answer was not in by the deadline, or 5xx (temporary).
        RegistryError: any other unexpected answer.
    """
    parsed = _as_reference(ref)
    url = manifest_url(parsed)
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        response = session.request("HEAD", url, headers={"Accept": ACCEPT_MANIFESTS})
        if response.status_code == 404:
            _raise_not_found(parsed, response, what="manifest")
        if response.status_code == 200:
            header = response.headers.get("Docker-Content-Digest")
            if header:
                reported = digests.validate(header, source=f"Docker-Content-Digest of {parsed}")
                if parsed.digest and reported != parsed.digest:
                    raise errors.DigestMismatch(
                        f"registry {parsed.registry} reports digest {reported} for {parsed}", status=200
                    )
                return reported
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

    The digest is that of the bytes: a requested digest, and the
    ``Docker-Content-Digest`` header when sent, must both match them
    (:func:`.digest.verify`). Bodies over :data:`MAX_MANIFEST_BYTES` are refused.
    Raises as :func:`manifest_digest` (``DigestMismatch`` when the content does
    not match the requested or reported digest).
    """
    parsed = _as_reference(ref)
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        return _get_manifest(session, parsed, manifest_url(parsed))


def _get_manifest(session: _Session, ref: reference.Reference, url: str) -> Manifest:
    response = session.request("GET", url, headers={"Accept": ACCEPT_MANIFESTS}, limit=MAX_MANIFEST_BYTES)
    if response.status_code == 404:
        _raise_not_found(ref, response, what="manifest")
    if response.status_code != 200:
        raise _unexpected(ref, response, "GET")
    content = response.content
    digest = digests.compute(content)
    header = response.headers.get("Docker-Content-Digest")
    if header:
        digest = digests.verify(content, header, source=f"Docker-Content-Digest of {ref}")
    if ref.digest:
        digest = digests.verify(content, ref.digest, source=f"manifest {ref}")
    return Manifest(digest=digest, media_type=response.headers.get("Content-Type", ""), content=content)


def put_manifest(
    ref: RefLike,
    content: bytes,
    *,
    media_type: str,
    auth: Auth | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """``PUT /v2/<name>/manifests/<reference>``: store ``content`` under a tag or its own digest.

    OCI distribution spec, "Pushing manifests" (end-7): the registry answers ``201 Created``
    with the digest of the bytes it stored in ``Docker-Content-Digest``. Every blob the manifest
    references must already be in the repository. The digest returned is that of ``content``;
    a registry reporting another one is refused.

    Args:
        ref: ``registry/repository:tag`` or ``registry/repository@digest`` (the digest of ``content``).
        content: the manifest bytes, exactly as they are to be served (their hash is the digest).
        media_type: the manifest's ``mediaType``, sent as ``Content-Type``.

    Returns:
        ``sha256:<hex>`` of ``content``.

    Raises:
        DigestMismatch: ``ref`` names another digest, or the registry reports another one.
        Unauthorized: 401/403 — credentials missing or refused (push needs write access).
        RegistryUnavailable: connection failed or 5xx (temporary).
        RegistryError: any other refusal (e.g. ``MANIFEST_BLOB_UNKNOWN``, 400), with the registry's detail.
    """
    parsed = _as_reference(ref)
    digest = digests.compute(content)
    if parsed.digest and parsed.digest != digest:
        raise errors.DigestMismatch(f"manifest bytes hash to {digest}, not {parsed.digest}")
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        response = session.request("PUT", manifest_url(parsed), headers={"Content-Type": media_type}, content=content)
    if response.status_code not in (200, 201, 202):
        raise _unexpected(parsed, response, "PUT")
    header = response.headers.get("Docker-Content-Digest")
    if header and digests.validate(header, source=f"Docker-Content-Digest of {parsed}") != digest:
        raise errors.DigestMismatch(f"registry {parsed.registry} stored {parsed} as {header}, not {digest}")
    return digest


def delete_manifest(
    ref: RefLike,
    *,
    auth: Auth | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> bool:
    """``DELETE /v2/<name>/manifests/<digest>`` (OCI distribution spec, "Deleting manifests", end-9).

    Distribution removes the manifest and every tag that names it; blobs stay until garbage
    collection. Returns True if the registry deleted it (202), False if it does not allow
    deletes (405 ``UNSUPPORTED``, distribution's default) or already had no such manifest (404).

    Raises:
        ValueError: ``ref`` names a tag, not a digest.
        Unauthorized, RegistryUnavailable, RegistryError: as :func:`put_manifest`.
    """
    parsed = _as_reference(ref)
    if not parsed.digest:
        raise ValueError(f"delete_manifest needs a digest reference, not {parsed}")
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        response = session.request("DELETE", manifest_url(parsed))
    if response.status_code in (200, 202):
        return True
    if response.status_code in (404, 405):
        return False
    raise _unexpected(parsed, response, "DELETE")


def get_blob(
    ref: RefLike,
    digest: str,
    *,
    limit: int = MAX_RESPONSE_BYTES,
    auth: Auth | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """``GET /v2/<name>/blobs/<digest>``: a blob's bytes (OCI distribution spec, "Pulling blobs", end-2).

    Redirects (a registry may send blobs from other storage) are followed by the session's rules:
    ``Authorization`` only to the registry's own origin, plain ``http://`` only on loopback. The body is
    read into memory up to ``limit`` bytes and must hash to ``digest`` (:func:`.digest.verify`).

    Args:
        ref: a reference in the repository (its tag or digest is ignored).
        digest: the blob's ``sha256:<hex>`` (or ``sha512:<hex>``), e.g. a manifest's ``config.digest``.
        limit: the largest body read, in bytes.

    Returns:
        The blob's bytes.

    Raises:
        InvalidDigest: ``digest`` is malformed or of an unsupported algorithm.
        DigestMismatch: the bytes served do not hash to ``digest``.
        ResponseTooLarge: the body is over ``limit`` bytes.
        BlobUnknown: 404 — no such blob in the repository.
        Unauthorized, RegistryUnavailable, InsecureRealm, RegistryError: as :func:`manifest_digest`.
    """
    parsed = _as_reference(ref)
    url = blob_url(parsed, digest)
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        response = session.request("GET", url, limit=limit)
    if response.status_code == 404:
        _raise_not_found(parsed, response, what=f"blob {digest}")
    if response.status_code != 200:
        raise _unexpected(parsed, response, "GET")
    digests.verify(response.content, digest, source=f"blob {digest} of {parsed.repository_url}")
    return response.content


def put_blob(
    ref: RefLike,
    content: bytes,
    *,
    check_existing: bool = True,
    auth: Auth | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Store ``content`` as a blob of the repository (OCI distribution spec, "Pushing blobs").

    With ``check_existing``, ``HEAD /v2/<name>/blobs/<digest>`` (end-2) first: ``200`` means the registry
    has it, and nothing is uploaded. Otherwise the monolithic "POST then PUT" upload:
    ``POST /v2/<name>/blobs/uploads/`` (end-4a) → ``202 Accepted`` with a ``Location`` (absolute or
    relative; followed by the session's redirect rules), then ``PUT <location>?digest=<digest>``
    (end-6; ``&digest=`` when the location has a query) with the bytes → ``201 Created``.

    Args:
        ref: a reference in the repository (its tag or digest is ignored).
        content: the blob's bytes (e.g. an image config).
        check_existing: ask the registry first (one round trip; skip it for a blob that is surely new).

    Returns:
        ``sha256:<hex>`` of ``content``: the blob's digest (the registry's ``Docker-Content-Digest``, when
        sent, must be it).

    Raises:
        DigestMismatch: the registry reports another digest for the stored blob.
        Unauthorized: 401/403 — credentials missing or refused (an upload needs push access).
        RegistryUnavailable: connection failed or 5xx (temporary).
        RegistryError: a ``POST`` answered without ``202`` and a usable ``Location``, a ``PUT``
            without ``201`` (e.g. ``DIGEST_INVALID``, 400), with the registry's detail.
    """
    parsed = _as_reference(ref)
    digest = digests.compute(content)
    url = blob_url(parsed, digest)
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        if check_existing:
            response = session.request("HEAD", url)
            if response.status_code == 200:
                return digest
        started = session.request("POST", upload_url(parsed), content=b"")
        location = started.headers.get("Location")
        if started.status_code != 202 or not location:
            raise _unexpected(parsed, started, "POST")
        target = session.next_target(httpx.URL(upload_url(parsed)), location, what="blob upload location")
        response = session.request(
            "PUT",
            with_digest_param(target, digest),
            headers={"Content-Type": "application/octet-stream"},
            content=content,
        )
    if response.status_code not in (201, 204):
        raise _unexpected(parsed, response, "PUT")
    header = response.headers.get("Docker-Content-Digest")
    if header and digests.validate(header, source=f"Docker-Content-Digest of a blob of {parsed}") != digest:
        raise errors.DigestMismatch(f"registry {parsed.registry} stored the blob {digest} as {header}")
    return digest


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
    rel="next"`` (OCI distribution spec, "Listing tags"; at most 1000 pages of at most
    :data:`MAX_RESPONSE_BYTES` each, and at most :data:`MAX_TAGS` tags in
    :data:`MAX_TAG_LIST_BYTES` bytes of pages in all, so that a hostile registry's pages
    cannot exhaust memory), within :data:`LIST_DEADLINE_FACTOR` request deadlines in all.
    The tag/digest part of ``ref`` is ignored.

    Raises:
        NameUnknown: 404 — the repository does not exist.
        ResponseTooLarge: a page is over :data:`MAX_RESPONSE_BYTES`, or the list over
            :data:`MAX_TAGS` tags or :data:`MAX_TAG_LIST_BYTES` bytes (the message names the limit).
        RegistryUnavailable: also when the listing outlasts its deadline.
        Unauthorized, RegistryError: as :func:`manifest_digest`.
    """
    parsed = _as_reference(ref)
    tags: list[str] = []
    read = 0  # bytes of pages so far
    whole = LIST_DEADLINE_FACTOR * REQUEST_DEADLINE_FACTOR * timeout
    ends = time.monotonic() + whole
    with _Session(parsed, auth=auth, timeout=timeout, transport=transport) as session:
        for response in _pages(session, parsed, f"{tags_url(parsed)}?n={page_size}"):
            if time.monotonic() > ends:
                raise errors.RegistryUnavailable(
                    f"registry {parsed.registry} did not finish listing the tags of {parsed.repository} within "
                    f"{whole:g} s (the deadline of a tag listing)"
                )
            read += len(response.content)
            if read > MAX_TAG_LIST_BYTES:
                raise errors.ResponseTooLarge(
                    f"registry {parsed.registry} lists more than {MAX_TAG_LIST_BYTES} bytes of tags for "
                    f"{parsed.repository}: refused (the client's limit, MAX_TAG_LIST_BYTES)"
                )
            try:
                body = response.json()
            except ValueError:
                body = None
            page = body.get("tags") if isinstance(body, dict) else ()
            if page is not None and not (isinstance(page, list) and all(isinstance(t, str) for t in page)):
                raise errors.RegistryError(
                    f"registry {parsed.registry} sent a malformed tag list for {parsed.repository}"
                )
            if len(tags) + len(page or ()) > MAX_TAGS:
                raise errors.ResponseTooLarge(
                    f"registry {parsed.registry} lists more than {MAX_TAGS} tags for {parsed.repository}: "
                    "refused (the client's limit, MAX_TAGS)"
                )
            tags.extend(page or [])
    return tags


def _pages(session: _Session, ref: reference.Reference, url: str | None) -> Iterator[Reply]:
    for _ in range(_MAX_TAG_PAGES):
        if url is None:
            return
        response = session.request("GET", url)
        if response.status_code == 404:
            _raise_not_found(ref, response, what="tags")
        if response.status_code != 200:
            raise _unexpected(ref, response, "GET")
        yield response
        following = next_page(response.headers.get("Link"), url)
        url = None if following is None else str(session.next_target(httpx.URL(url), following, what="next tags page"))
