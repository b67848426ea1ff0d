"""The registry client against hostile and real registries, on 127.0.0.1 only.

- A hostile fake registry (stdlib ``http.server``): the attacker IS the registry,
  so a fake is the honest model. It names token realms credentials must not go to,
  lies in ``Docker-Content-Digest``, serves oversize manifests, redirects elsewhere.
- A real ``docker-registry`` (distribution 2.8) with ``auth.token``: once with a
  realm on a host that is never contacted (``http://registry.invalid/token``),
  once with a real token service on loopback issuing signed JWTs (the Bearer flow
  of https://distribution.github.io/distribution/spec/auth/token/).

Every request the client makes goes through a recording transport, so the tests
can assert what was (not) sent, and where.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from dockyard.agent import builds
from dockyard.agent.engine import images
from dockyard.registry import client, errors, server

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OTHER = "sha256:" + hashlib.sha256(b"something else").hexdigest()
CREDS = ("alice", "s3cret-pw")
BASIC = "Basic " + base64.b64encode(b"alice:s3cret-pw").decode()


class RecordingTransport(httpx.HTTPTransport):
    """An httpx transport that records ``(method, url, Authorization)`` of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, httpx.URL, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url, request.headers.get("Authorization")))
        return super().handle_request(request)

    def hosts(self) -> set[str]:
        return {f"{url.host}:{url.port}" for _, url, _ in self.sent}


# --- a tiny HTTP server on 127.0.0.1 -------------------------------------------------------

Route = Callable[["Request"], tuple[int, dict[str, str], bytes]]
CLOSE_DELIMITED = "X-Test-Close-Delimited"  # a route's header: send no Content-Length, close after the body


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 answering with ``route``; ``seen`` records requests."""

    route: Route
    seen: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()))
                outer.seen.append(request)
                status, headers, body = outer.route(request)
                self.send_response(status)
                close_delimited = headers.pop(CLOSE_DELIMITED, None) is not None  # HTTP/1.0: body ends at close
                for key, value in headers.items():
                    self.send_header(key, value)
                if not close_delimited:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(body)
                    except ConnectionError:  # the client stopped reading (as it should, past a size bound)
                        pass

            do_GET = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def bearer_challenge(realm: str) -> Route:
    """A registry that answers every request with a Bearer challenge naming ``realm``."""

    def route(request: Request) -> tuple[int, dict[str, str], bytes]:
        return 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="hostile"'}, b""

    return route


# --- hostile fake registry ---------------------------------------------------------------


@pytest.mark.parametrize(
    "realm",
    [
        "http://registry.invalid/token",
        "http://auth.registry.invalid:9/token",
        "ftp://127.0.0.1/token",
        "file:///etc/passwd",
    ],
)
def test_hostile_realm_gets_no_credentials(realm: str) -> None:
    with LoopbackServer(bearer_challenge(realm)) as fake:
        transport = RecordingTransport()
        with pytest.raises(errors.InsecureRealm) as info:
            client.manifest_digest(f"{fake.address}/team/app:v1", auth=CREDS, transport=transport)
    assert info.value.realm == realm
    assert realm in str(info.value) and CREDS[1] not in str(info.value)
    assert transport.hosts() == {fake.address}  # the realm was never contacted
    assert all(auth is None for _, _, auth in transport.sent)
    assert all("Authorization" not in r.headers for r in fake.seen)


def test_loopback_http_realm_gets_the_bearer_flow() -> None:
    tokens = LoopbackServer(lambda r: (200, {"Content-Type": "application/json"}, b'{"access_token": "T0K"}'))

    def registry(request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.headers.get("Authorization") != "Bearer T0K":
            realm = f"http://{tokens.address}/token"
            return (
                401,
                {"WWW-Authenticate": f'Bearer realm="{realm}",service="svc",scope="repository:team/app:pull"'},
                b"",
            )
        return 200, {"Docker-Content-Digest": DIGEST}, b""

    with tokens, LoopbackServer(registry) as fake:
        assert client.manifest_digest(f"{fake.address}/team/app:v1", auth=CREDS) == DIGEST
    (token_request,) = tokens.seen
    assert token_request.headers["Authorization"] == BASIC
    assert token_request.query == {"service": ["svc"], "scope": ["repository:team/app:pull"]}
    assert all(r.headers.get("Authorization") in (None, "Bearer T0K") for r in fake.seen)


def manifests(*, head: str | None, get: str | None, body: bytes = MANIFEST) -> Route:
    def route(request: Request) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        digest = head if request.method == "HEAD" else get
        if digest:
            headers["Docker-Content-Digest"] = digest
        return 200, headers, body

    return route


def test_wrong_docker_content_digest() -> None:
    with LoopbackServer(manifests(head=OTHER, get=OTHER)) as fake:
        with pytest.raises(errors.DigestMismatch):
            client.get_manifest(f"{fake.address}/app:v1")
        with pytest.raises(errors.DigestMismatch):
            client.manifest_digest(f"{fake.address}/app@{DIGEST}")
        with pytest.raises(errors.DigestMismatch):
            client.get_manifest(f"{fake.address}/app@{OTHER}")
    with LoopbackServer(manifests(head="sha256:" + "Z" * 64, get="sha256:../../../etc")) as fake:
        with pytest.raises(errors.InvalidDigest, match="Docker-Content-Digest"):
            client.manifest_digest(f"{fake.address}/app:v1")
        with pytest.raises(errors.InvalidDigest, match="Docker-Content-Digest"):
            client.get_manifest(f"{fake.address}/app:v1")


def test_push_and_verify_refuses_a_registry_serving_other_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "push", lambda *a, **k: OTHER)  # the engine says it pushed OTHER
    with LoopbackServer(manifests(head=OTHER, get=OTHER)) as fake:  # the registry confirms, but serves MANIFEST
        with pytest.raises(errors.DigestMismatch):
            builds.push_and_verify(None, f"{fake.address}/app:v1", auth=None, registry_auth=None, on_log=print)  # type: ignore[arg-type]
    monkeypatch.setattr(images, "push", lambda *a, **k: DIGEST)
    with LoopbackServer(manifests(head=DIGEST, get=DIGEST)) as fake:
        pushed = builds.push_and_verify(None, f"{fake.address}/app:v1", auth=None, registry_auth=None, on_log=print)  # type: ignore[arg-type]
        assert pushed.digest == DIGEST


def test_oversize_manifest_is_refused() -> None:
    big = b" " * (client.MAX_MANIFEST_BYTES + 1)
    with LoopbackServer(manifests(head=None, get=None, body=big)) as fake:
        with pytest.raises(errors.ResponseTooLarge):
            client.get_manifest(f"{fake.address}/app:v1")

    def endless(request: Request) -> tuple[int, dict[str, str], bytes]:  # no Content-Length, then close
        return 200, {CLOSE_DELIMITED: "1"}, b"{" * (5 << 20)

    with LoopbackServer(endless) as fake:
        with pytest.raises(errors.ResponseTooLarge):
            client.get_manifest(f"{fake.address}/app:v1")


def test_credentials_do_not_follow_a_redirect_to_another_origin() -> None:
    with LoopbackServer(manifests(head=None, get=DIGEST)) as elsewhere:

        def registry(request: Request) -> tuple[int, dict[str, str], bytes]:
            if request.headers.get("Authorization") != BASIC:
                return 401, {"WWW-Authenticate": 'Basic realm="hostile"'}, b""
            return 307, {"Location": f"http://{elsewhere.address}/v2/app/manifests/v1"}, b""

        with LoopbackServer(registry) as fake:
            assert client.get_manifest(f"{fake.address}/app:v1", auth=CREDS).digest == DIGEST
    assert elsewhere.seen and all("Authorization" not in r.headers for r in elsewhere.seen)


# --- a real registry (distribution) with token auth ------------------------------------------


def _key_id(public_key: rsa.RSAPublicKey) -> str:
    """libtrust key ID, as distribution computes it for the keys of ``rootcertbundle``."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class TokenIssuer:
    """Signs registry tokens (RS256 JWT, distribution's claim set) with a self-signed certificate's key."""

    key: rsa.RSAPrivateKey
    cert_pem: bytes
    service: str = "dockyard-test"
    issuer: str = "dockyard-test-issuer"

    @classmethod
    def new(cls) -> TokenIssuer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-test-token-issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert.public_bytes(serialization.Encoding.PEM))

    def token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": _key_id(self.key.public_key())}
        claims = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class TokenAuthRegistry(server.RegistryServer):
    """The real registry with ``auth.token`` (distribution configuration, "auth: token")."""

    def __init__(self, *args: Any, realm: str, issuer: TokenIssuer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.realm = realm
        self.issuer = issuer

    def config(self) -> dict[str, Any]:
        config = super().config()
        bundle = self.root_dir.parent / "token-root.pem"
        bundle.write_bytes(self.issuer.cert_pem)
        config["auth"] = {
            "token": {
                "realm": self.realm,
                "service": self.issuer.service,
                "issuer": self.issuer.issuer,
                "rootcertbundle": str(bundle),
            }
        }
        return config


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer.new()


@pytest.fixture()
def token_service(issuer: TokenIssuer) -> Iterator[LoopbackServer]:
    def route(request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.path != "/token" or request.headers.get("Authorization") != BASIC:
            return 401, {}, b""
        if request.query.get("service") != [issuer.service]:
            return 400, {}, b""
        body = json.dumps({"token": issuer.token(request.query.get("scope", []))}).encode()
        return 200, {"Content-Type": "application/json"}, body

    with LoopbackServer(route) as tokens:
        yield tokens


def test_real_registry_bearer_flow(tmp_path: Path, issuer: TokenIssuer, token_service: LoopbackServer) -> None:
    realm = f"http://{token_service.address}/token"
    with TokenAuthRegistry(server.free_port(), tmp_path / "data", realm=realm, issuer=issuer) as registry:
        transport = RecordingTransport()
        with pytest.raises(errors.Unauthorized):  # no credentials: the token service refuses
            client.list_tags(f"{registry.address}/team/app", transport=transport)
        # with credentials: a token from the realm, then the registry itself answers (no such repository)
        with pytest.raises(errors.NameUnknown):
            client.list_tags(f"{registry.address}/team/app", auth=CREDS, transport=transport)
        with pytest.raises(errors.ManifestUnknown):
            client.manifest_digest(f"{registry.address}/team/app:v1", auth=CREDS, transport=transport)
    assert transport.hosts() == {registry.address, token_service.address}
    for _, url, auth in transport.sent:
        if auth and auth.startswith("Basic"):
            assert f"{url.host}:{url.port}" == token_service.address and url.path == "/token"
    scopes = [r.query.get("scope") for r in token_service.seen]
    assert ["repository:team/app:pull"] in scopes


def test_real_registry_blob_upload_gets_a_push_token(
    tmp_path: Path, issuer: TokenIssuer, token_service: LoopbackServer
) -> None:
    """put_blob's HEAD gets a pull token; the POST that follows is challenged for ``pull,push`` and the
    client fetches that token too (distribution token spec), then GETs the blob back."""
    realm = f"http://{token_service.address}/token"
    with TokenAuthRegistry(server.free_port(), tmp_path / "data", realm=realm, issuer=issuer) as registry:
        digest = client.put_blob(f"{registry.address}/team/app", b"config bytes", auth=CREDS)
        assert client.get_blob(f"{registry.address}/team/app", digest, auth=CREDS) == b"config bytes"
        with pytest.raises(errors.Unauthorized):
            client.put_blob(f"{registry.address}/team/app", b"other bytes")
    scopes = [r.query.get("scope") for r in token_service.seen]
    assert ["repository:team/app:pull"] in scopes
    # the challenge names the actions in the registry's order, which varies (distribution builds it from a Go map)
    assert any(
        s is not None
        and len(s) == 1
        and s[0].startswith("repository:team/app:")
        and sorted(s[0].rsplit(":", 1)[1].split(",")) == ["pull", "push"]
        for s in scopes
    ), scopes


def test_real_registry_with_an_insecure_realm(tmp_path: Path, issuer: TokenIssuer) -> None:
    realm = "http://registry.invalid/token"
    with TokenAuthRegistry(server.free_port(), tmp_path / "data", realm=realm, issuer=issuer) as registry:
        transport = RecordingTransport()
        for call in (client.manifest_digest, client.get_manifest):
            with pytest.raises(errors.InsecureRealm, match=r"registry\.invalid") as info:
                call(f"{registry.address}/team/app:v1", auth=CREDS, transport=transport)  # type: ignore[operator]
            assert info.value.reason.startswith("plain http")
        with pytest.raises(errors.InsecureRealm):
            client.list_tags(f"{registry.address}/team/app", auth=CREDS, transport=transport)
    assert transport.hosts() == {registry.address}
    assert all(auth is None for _, _, auth in transport.sent)


def paged_tags(pages: list[list[str]]) -> Route:
    """A registry listing ``pages`` one per request, each linking to the next (``?page=N``)."""

    def route(request: Request) -> tuple[int, dict[str, str], bytes]:
        number = int(request.query.get("page", ["0"])[0])
        headers = {"Content-Type": "application/json"}
        if number + 1 < len(pages):
            headers["Link"] = f'</v2/app/tags/list?page={number + 1}>; rel="next"'
        return 200, headers, json.dumps({"name": "app", "tags": pages[number]}).encode()

    return route


def test_a_tag_list_over_max_tags_is_refused() -> None:
    """Pages of 20,000 short tags each: the scan stops at :data:`client.MAX_TAGS` (100,000) in all."""
    pages = [[f"v{page}.{i}" for i in range(20_000)] for page in range(10)]
    with LoopbackServer(paged_tags(pages)) as fake:
        with pytest.raises(errors.ResponseTooLarge, match=r"more than 100000 tags") as info:
            client.list_tags(f"{fake.address}/app")
    assert fake.address in str(info.value) and "app" in str(info.value)
    assert len(fake.seen) == 100_000 // 20_000 + 1  # no page past the limit is asked for


def test_a_tag_list_over_max_tag_list_bytes_is_refused() -> None:
    """Few but long tags (a tag list's strings are not checked against the tag grammar): 8 pages of
    about 3.6 MB each stop at :data:`client.MAX_TAG_LIST_BYTES` (16 MiB) in all."""
    pages = [[f"{page}{i}" + "x" * 1_200_000 for i in range(3)] for page in range(8)]
    with LoopbackServer(paged_tags(pages)) as fake:
        with pytest.raises(errors.ResponseTooLarge, match=rf"more than {16 << 20} bytes of tags") as info:
            client.list_tags(f"{fake.address}/app")
    assert fake.address in str(info.value)
    assert len(fake.seen) == 5  # the fifth page crosses 16 MiB
