"""Registry client: request building, challenge parsing, and the auth flows over a mock transport."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from dockyard.registry import client, errors, reference

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def test_base_url_plain_http_only_on_loopback() -> None:
    assert client.base_url("127.0.0.1:41234") == "http://127.0.0.1:41234"
    assert client.base_url("localhost") == "http://localhost"
    assert client.base_url("[::1]:5000") == "http://[::1]:5000"
    assert client.base_url("quay.io") == "https://quay.io"
    assert client.base_url("127.0.0.1.example.com:5000") == "https://127.0.0.1.example.com:5000"
    assert client.base_url("docker.io") == "https://registry-1.docker.io"


def test_urls() -> None:
    ref = reference.parse("127.0.0.1:5000/team/app:v1")
    assert client.manifest_url(ref) == "http://127.0.0.1:5000/v2/team/app/manifests/v1"
    assert client.manifest_url(ref.with_digest(DIGEST)) == f"http://127.0.0.1:5000/v2/team/app/manifests/{DIGEST}"
    assert client.tags_url(ref) == "http://127.0.0.1:5000/v2/team/app/tags/list"


def test_accept_lists_all_manifest_types() -> None:
    for media_type in (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ):
        assert media_type in client.ACCEPT_MANIFESTS


def test_parse_challenge() -> None:
    c = client.parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push"'
    )
    assert c == client.Challenge(
        "bearer",
        {
            "realm": "https://auth.example.com/token",
            "service": "registry.example.com",
            "scope": "repository:team/app:pull,push",
        },
    )
    assert client.parse_challenge('Basic realm="dockyard"') == client.Challenge("basic", {"realm": "dockyard"})
    assert client.parse_challenge('basic realm="a \\"quoted\\" realm"').params["realm"] == 'a "quoted" realm'
    assert client.parse_challenge("") is None


def test_token_request() -> None:
    c = client.Challenge("bearer", {"realm": "https://a/token", "service": "reg"})
    assert client.token_request(c, repository="team/app") == (
        "https://a/token",
        [("service", "reg"), ("scope", "repository:team/app:pull")],
    )
    with pytest.raises(errors.Unauthorized):
        client.token_request(client.Challenge("bearer", {}), repository="x")


def test_next_page() -> None:
    url = "http://127.0.0.1:5000/v2/a/tags/list?n=2"
    assert client.next_page('</v2/a/tags/list?last=b&n=2>; rel="next"', url) == (
        "http://127.0.0.1:5000/v2/a/tags/list?last=b&n=2"
    )
    assert client.next_page(None, url) is None


# --- flows over httpx.MockTransport -------------------------------------------------------


def _bearer_registry(requests: list[httpx.Request]) -> httpx.MockTransport:
    """A registry that wants a Bearer token from its token service for user/secret."""

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path == "/token":
            expected = "Basic " + base64.b64encode(b"user:secret").decode()
            if request.headers.get("Authorization") != expected:
                return httpx.Response(401)
            assert request.url.params.get_list("scope") == ["repository:team/app:pull"]
            assert request.url.params["service"] == "reg"
            return httpx.Response(200, json={"token": "T0KEN"})
        if request.headers.get("Authorization") != "Bearer T0KEN":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://reg.example.com/token",service="reg",'
                    'scope="repository:team/app:pull"'
                },
                json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            )
        if request.url.path == "/v2/team/app/manifests/v1":
            assert "application/vnd.oci.image.index.v1+json" in request.headers["Accept"]
            return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})
        if request.url.path == "/v2/team/app/tags/list":
            if request.url.params.get("last") == "b":
                return httpx.Response(200, json={"name": "team/app", "tags": ["c"]})
            return httpx.Response(
                200,
                json={"name": "team/app", "tags": ["a", "b"]},
                headers={"Link": '</v2/team/app/tags/list?n=2&last=b>; rel="next"'},
            )
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})

    return httpx.MockTransport(handler)


def test_bearer_flow() -> None:
    seen: list[httpx.Request] = []
    transport = _bearer_registry(seen)
    digest = client.manifest_digest("reg.example.com/team/app:v1", auth=("user", "secret"), transport=transport)
    assert digest == DIGEST
    assert [r.method + " " + r.url.path for r in seen] == [
        "HEAD /v2/team/app/manifests/v1",
        "GET /token",
        "HEAD /v2/team/app/manifests/v1",
    ]
    assert client.list_tags("reg.example.com/team/app", auth=("user", "secret"), transport=transport) == ["a", "b", "c"]


def test_bearer_wrong_credentials_never_echoed() -> None:
    transport = _bearer_registry([])
    with pytest.raises(errors.Unauthorized) as info:
        client.manifest_digest("reg.example.com/team/app:v1", auth=("user", "hunter2"), transport=transport)
    assert "hunter2" not in str(info.value)
    with pytest.raises(errors.Unauthorized):
        client.manifest_digest("reg.example.com/team/app:v1", transport=transport)


def test_basic_flow_and_fallback_to_get() -> None:
    expected = "Basic " + base64.b64encode(b"u:p").decode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="dockyard"'})
        if request.method == "HEAD":
            return httpx.Response(200)  # no Docker-Content-Digest: hash the GET body
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})

    transport = httpx.MockTransport(handler)
    assert client.manifest_digest("127.0.0.1:5000/app:v1", auth=("u", "p"), transport=transport) == DIGEST
    with pytest.raises(errors.Unauthorized, match="requires credentials"):
        client.manifest_digest("127.0.0.1:5000/app:v1", transport=transport)


def test_not_found_and_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tags/list"):
            return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]})
        if "boom" in request.url.path:
            return httpx.Response(503)
        return httpx.Response(404)

    transport = httpx.MockTransport(handler)
    with pytest.raises(errors.ManifestUnknown):
        client.manifest_digest("127.0.0.1:5000/app:nope", transport=transport)
    with pytest.raises(errors.NameUnknown):
        client.list_tags("127.0.0.1:5000/app", transport=transport)
    with pytest.raises(errors.RegistryUnavailable) as info:
        client.manifest_digest("127.0.0.1:5000/boom:1", transport=transport)
    assert info.value.status == 503
    assert isinstance(info.value, errors.RegistryError)
