"""Who the client is: the credential sources of a kubeconfig user, as client-go runs them.

One :class:`Credentials` object per connection is shared by every HTTP client
made from it (lightkube's and the raw httpx ones), so an exec plugin runs once
per credential lifetime, not once per client. Sources:

* ``token``: a fixed bearer token.
* ``tokenFile`` (and the in-cluster service-account token): re-read every
  :data:`TOKEN_FILE_PERIOD` seconds and after a 401, as client-go's
  ``cachingTokenSource`` (transport/token_source.go) does, so a rotated
  projected token is picked up without a restart.
* ``exec``: the ``client.authentication.k8s.io`` ExecCredential protocol
  (KEP-541, client-go ``plugin/pkg/client/auth/exec``), ``v1`` and ``v1beta1``;
  the credential is cached until its ``status.expirationTimestamp`` and
  refreshed after a 401.
* ``username``/``password``: HTTP Basic (RFC 7617).

A credential that cannot be had raises :class:`CredentialError` from inside
the request, with a message naming the kubeconfig entry to fix.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

try:  # lightkube >= 1.0 speaks through httpx2; one Auth object serves both libraries
    import httpx2

    _AUTH_BASES: tuple[type, ...] = (httpx.Auth, httpx2.Auth)
    _BYTE_STREAMS: tuple[type, ...] = (httpx.ByteStream, httpx2.ByteStream)
except ImportError:  # pragma: no cover - older lightkube on httpx
    _AUTH_BASES = (httpx.Auth,)
    _BYTE_STREAMS = (httpx.ByteStream,)

TOKEN_FILE_PERIOD = 60.0
"""Seconds a token read from a file is used before the file is read again (client-go: one minute)."""

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
"""The ExecCredential versions a kubeconfig ``exec`` may name (v1alpha1 was removed in Kubernetes 1.24)."""

EXEC_TIMEOUT = 60.0
"""Seconds an exec plugin may run before the credential is given up on."""


class CredentialError(Exception):
    """A credential could not be obtained (exec plugin failed, token file unreadable); the message says which."""


class Source:
    """A source of the ``Authorization`` header value."""

    def header(self) -> str | None:
        """The current ``Authorization`` value (``None``: send none).

        Raises:
            CredentialError: the credential cannot be had.
        """
        raise NotImplementedError

    def refresh(self, rejected: str | None) -> bool:
        """After a 401 for a request sent with ``rejected``: renew if possible; True if the header changed."""
        return False


@dataclass
class StaticToken(Source):
    """``user.token``: ``Authorization: Bearer TOKEN`` (RFC 6750 section 2.1)."""

    token: str

    def header(self) -> str | None:
        return f"Bearer {self.token}"


@dataclass
class Basic(Source):
    """``user.username`` / ``user.password``: HTTP Basic (RFC 7617)."""

    username: str
    password: str

    def header(self) -> str | None:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass
class TokenFile(Source):
    """``user.tokenFile`` / the service-account token: the file's content, re-read every ``period`` seconds.

    ``initial`` (a ``user.token`` given beside ``tokenFile``) is used until the first read, as client-go does.
    """

    path: Path
    where: str
    initial: str | None = None
    period: float = TOKEN_FILE_PERIOD
    _token: str | None = field(default=None, init=False)
    _read_at: float = field(default=float("-inf"), init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def _read(self) -> str:
        try:
            token = self.path.read_text().strip()
        except OSError as err:
            if self.initial:
                return self.initial
            raise CredentialError(f"{self.where}: cannot read tokenFile {self.path}: {err.strerror or err}") from err
        if not token:
            raise CredentialError(f"{self.where}: tokenFile {self.path} is empty")
        return token

    def header(self) -> str | None:
        with self._lock:
            if self._token is None or time.monotonic() - self._read_at >= self.period:
                self._token, self._read_at = self._read(), time.monotonic()
            return f"Bearer {self._token}"

    def refresh(self, rejected: str | None) -> bool:
        with self._lock:
            self._token, self._read_at = self._read(), time.monotonic()
            return f"Bearer {self._token}" != rejected


@dataclass(frozen=True)
class ExecResult:
    """One ExecCredential ``status``: ``token`` and/or PEM ``client_cert``/``client_key``, ``expires`` (UTC)."""

    token: str | None
    client_cert: str | None
    client_key: str | None
    expires: datetime | None

    def expired(self, now: datetime | None = None) -> bool:
        """True once ``expires`` has passed (client-go: ``now.After(expirationTimestamp)``)."""
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires


def parse_exec_output(output: bytes, *, api_version: str, where: str) -> ExecResult:
    """Parse an exec plugin's stdout: an ``ExecCredential`` of ``api_version``.

    The rules are client-go's (``plugin/pkg/client/auth/exec/exec.go``): the
    ``apiVersion`` must be the one the kubeconfig asked for, ``kind``
    ``ExecCredential``, ``status`` must carry a ``token`` or both
    ``clientCertificateData`` and ``clientKeyData`` (PEM), and
    ``expirationTimestamp`` is RFC 3339.

    Raises:
        CredentialError: any rule broken; the message names the field.
    """
    try:
        doc = json.loads(output)
    except ValueError as err:
        raise CredentialError(f"{where}: exec plugin printed no ExecCredential JSON: {err}") from err
    if not isinstance(doc, dict):
        raise CredentialError(f"{where}: exec plugin printed {type(doc).__name__}, not an ExecCredential object")
    if doc.get("kind") != "ExecCredential":
        raise CredentialError(f"{where}: exec plugin output has kind {doc.get('kind')!r}, want ExecCredential")
    if doc.get("apiVersion") != api_version:
        raise CredentialError(
            f"{where}: exec plugin is configured to use API version {api_version}, "
            f"plugin returned version {doc.get('apiVersion')!r}"
        )
    status = doc.get("status")
    if not isinstance(status, dict):
        raise CredentialError(f"{where}: exec plugin didn't return a status field")
    token = status.get("token") or None
    cert, key = status.get("clientCertificateData") or None, status.get("clientKeyData") or None
    if bool(cert) != bool(key):
        raise CredentialError(
            f"{where}: exec plugin returned only one of status.clientCertificateData and status.clientKeyData"
        )
    if not token and not cert:
        raise CredentialError(
            f"{where}: exec plugin didn't return a token or cert/key pair (status.token, status.clientCertificateData)"
        )
    expires = None
    stamp = status.get("expirationTimestamp")
    if stamp:
        try:
            expires = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError as err:
            raise CredentialError(f"{where}: status.expirationTimestamp {stamp!r} is not RFC 3339") from err
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
    return ExecResult(token=token, client_cert=cert, client_key=key, expires=expires)


@dataclass
class Exec(Source):
    """``user.exec``: run the plugin, cache its ExecCredential until it expires or a 401 rejects it.

    ``cluster_info`` is the ``spec.cluster`` sent in ``KUBERNETES_EXEC_INFO``
    when the kubeconfig sets ``provideClusterInfo: true``. ``on_cert`` is
    called with ``(cert_pem, key_pem)`` whenever the plugin returns a client
    certificate, so the TLS layer can present it on new connections.
    """

    api_version: str
    command: str
    args: Sequence[str]
    env: Mapping[str, str]
    where: str
    install_hint: str | None = None
    cluster_info: dict[str, Any] | None = None
    on_cert: Any = None
    timeout: float = EXEC_TIMEOUT
    _cached: ExecResult | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def exec_info(self) -> str:
        """The ``KUBERNETES_EXEC_INFO`` value: an ExecCredential with only ``spec`` (never interactive here)."""
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster_info is not None:
            spec["cluster"] = self.cluster_info
        return json.dumps({"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec})

    def run(self) -> ExecResult:
        """Run the plugin once (stdin closed, stderr captured) and parse what it prints.

        Raises:
            CredentialError: not found, non-zero exit, timeout, or bad output.
        """
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": self.exec_info()}
        argv = [self.command, *self.args]
        try:
            proc = subprocess.run(
                argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError as err:
            hint = f" ({self.install_hint.strip()})" if self.install_hint else ""
            raise CredentialError(f"{self.where}: exec plugin {self.command!r} not found{hint}") from err
        except (OSError, subprocess.TimeoutExpired) as err:
            raise CredentialError(f"{self.where}: exec plugin {self.command!r} failed: {err}") from err
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip()[-500:]
            raise CredentialError(
                f"{self.where}: exec plugin {self.command!r} exited {proc.returncode}" + (f": {tail}" if tail else "")
            )
        result = parse_exec_output(proc.stdout, api_version=self.api_version, where=self.where)
        if result.client_cert and self.on_cert is not None:
            self.on_cert(result.client_cert, result.client_key)
        return result

    def current(self) -> ExecResult:
        """The cached credential, running the plugin when there is none or it has expired."""
        with self._lock:
            if self._cached is None or self._cached.expired():
                self._cached = self.run()
            return self._cached

    def header(self) -> str | None:
        token = self.current().token
        return f"Bearer {token}" if token else None

    def refresh(self, rejected: str | None) -> bool:
        with self._lock:
            cached = self._cached
            if cached is not None and (f"Bearer {cached.token}" if cached.token else None) != rejected:
                return True  # another request already renewed it
            self._cached = self.run()
            token = self._cached.token
            return (f"Bearer {token}" if token else None) != rejected


class Auth(*_AUTH_BASES):  # type: ignore[misc]
    """An ``httpx.Auth`` (and ``httpx2.Auth``) setting ``Authorization`` from a :class:`Source`.

    After a 401 the source is renewed and the request sent once more if its
    body can be sent again (client-go renews on 401 for the next request).
    """

    def __init__(self, source: Source) -> None:
        self.source = source

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        sent = self.source.header()
        if sent:
            request.headers["Authorization"] = sent
        response = yield request
        if response.status_code != 401 or not self.source.refresh(sent):
            return
        if request.stream is not None and not isinstance(request.stream, _BYTE_STREAMS):
            return  # a streamed upload cannot be replayed; the next request uses the new credential
        renewed = self.source.header()
        if renewed:
            request.headers["Authorization"] = renewed
        yield request
