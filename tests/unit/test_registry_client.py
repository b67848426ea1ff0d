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
        return httpx.Response(
            200, content=MANIFEST, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        )

    transport = httpx.MockTransport(handler)
    assert client.manifest_digest("127.0.0.1:5000/app:v1", auth=("u", "p"), transport=transport) == DIGEST
    with pytest.raises(errors.Unauthorized, match="requires credentials"):
        client.manifest_digest("127.0.0.1:5000/app:v1", transport=transport)


def test_not_found_and_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tags/list"):
            return httpx.Response(
                404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}
            )
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


# --- security: token realms, digests, redirects, sizes --------------------------------------

BASIC_USER_SECRET = "Basic " + base64.b64encode(b"user:secret").decode()


@pytest.mark.parametrize(
    "realm",
    [
        "https://auth.example.com/token",
        "HTTPS://auth.example.com:8443/token",
        "http://127.0.0.1:5001/token",
        "http://127.9.8.7/token",
        "http://[::1]:5001/token",
        "http://localhost/token",
        "http://LocalHost:80/token",
    ],
)
def test_check_realm_accepts_https_and_loopback(realm: str) -> None:
    assert client.check_realm(realm) == realm


@pytest.mark.parametrize(
    ("realm", "why"),
    [
        ("http://registry.invalid/token", "plain http"),
        ("http://10.0.0.1/token", "plain http"),
        ("http://127.0.0.1.evil.example/token", "plain http"),
        ("http://[::ffff:10.0.0.1]/token", "plain http"),
        ("ftp://127.0.0.1/token", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("/token", "scheme"),
        ("https:///token", "host"),
        ("http://user:pw@127.0.0.1/token", "userinfo"),
    ],
)
def test_check_realm_refuses(realm: str, why: str) -> None:
    with pytest.raises(errors.InsecureRealm, match=why) as info:
        client.check_realm(realm)
    assert info.value.realm == realm
    assert realm in str(info.value)
    assert isinstance(info.value, errors.RegistryError)


def test_is_loopback_host() -> None:
    for host in ("127.0.0.1", "127.255.0.9", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert client.is_loopback_host(host), host
    for host in ("10.0.0.1", "registry.invalid", "127.0.0.1.nip.io", "localhost.example", "", "::2"):
        assert not client.is_loopback_host(host), host


def _hostile_realm_registry(realm: str, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host != "reg.example.com":
            return httpx.Response(200, json={"token": "STOLEN"})
        return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "realm", ["http://registry.invalid/token", "ftp://reg.example.com/token", "file:///etc/passwd"]
)
def test_credentials_never_sent_to_insecure_realm(realm: str) -> None:
    seen: list[httpx.Request] = []
    transport = _hostile_realm_registry(realm, seen)
    for call in (
        lambda: client.manifest_digest("reg.example.com/team/app:v1", auth=("user", "secret"), transport=transport),
        lambda: client.get_manifest("reg.example.com/team/app:v1", auth=("user", "secret"), transport=transport),
        lambda: client.list_tags("reg.example.com/team/app", auth=("user", "secret"), transport=transport),
    ):
        with pytest.raises(errors.InsecureRealm) as info:
            call()
        assert realm in str(info.value) and "secret" not in str(info.value)
    assert seen and all(r.url.host == "reg.example.com" for r in seen)
    assert all("Authorization" not in r.headers for r in seen)


def test_bearer_flow_over_loopback_http_realm() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/token":
            assert request.headers["Authorization"] == BASIC_USER_SECRET
            return httpx.Response(200, json={"access_token": "ACCESS"})
        if request.headers.get("Authorization") != "Bearer ACCESS":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:5001/token"'})
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})

    transport = httpx.MockTransport(handler)
    assert client.manifest_digest("127.0.0.1:5000/app:v1", auth=("user", "secret"), transport=transport) == DIGEST
    token = next(r for r in seen if r.url.path == "/token")
    assert (token.url.host, token.url.port) == ("127.0.0.1", 5001)
    assert token.url.params.get_list("scope") == ["repository:app:pull"]


@pytest.mark.parametrize("body", [{"token": 42}, {"token": "a\r\nX-Evil: 1"}, {"token": ""}, ["token"]])
def test_bad_token_bodies(body: object) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json=body)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token"'})

    with pytest.raises(errors.RegistryError, match="no usable token"):
        client.manifest_digest("reg.example.com/app:v1", auth=("u", "p"), transport=httpx.MockTransport(handler))


SHA512 = "sha512:" + hashlib.sha512(MANIFEST).hexdigest()


def test_digest_validate() -> None:
    from dockyard.registry import digest

    assert digest.validate(DIGEST, source="t") == DIGEST
    assert digest.validate(SHA512, source="t") == SHA512
    for bad in (
        "sha256:" + "A" * 64,  # upper-case hex
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha512:" + "a" * 64,
        "sha256:../../etc/passwd",
        "sha256",
        ":abc",
        "SHA256:" + "a" * 64,
        "md5:" + "a" * 32,  # well-formed but not a registered algorithm: cannot be verified
        "sha256:" + "a" * 64 + "\n",
        "",
        None,
        "x" * 10_000,
    ):
        with pytest.raises(errors.InvalidDigest):
            digest.validate(bad, source="t")
    assert digest.compute(MANIFEST) == DIGEST
    assert digest.compute(MANIFEST, "sha512") == SHA512
    assert digest.verify(MANIFEST, SHA512, source="t") == SHA512
    with pytest.raises(errors.DigestMismatch, match=DIGEST):
        digest.verify(MANIFEST + b" ", DIGEST, source="t")


def _serving(
    *,
    head_digest: str | None = None,
    get_digest: str | None = None,
    content: bytes = MANIFEST,
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Docker-Content-Digest": head_digest} if head_digest else {})
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if get_digest:
            headers["Docker-Content-Digest"] = get_digest
        return httpx.Response(200, content=content, headers=headers)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("bad", ["sha256:" + "A" * 64, "sha256:nope", "md5:" + "a" * 32, "sha256:" + "a" * 64 + ",x"])
def test_malformed_docker_content_digest_is_an_error(bad: str) -> None:
    with pytest.raises(errors.InvalidDigest, match="Docker-Content-Digest"):
        client.manifest_digest("127.0.0.1:5000/app:v1", transport=_serving(head_digest=bad))
    with pytest.raises(errors.InvalidDigest, match="Docker-Content-Digest"):
        client.get_manifest("127.0.0.1:5000/app:v1", transport=_serving(get_digest=bad))


def test_docker_content_digest_must_match_the_bytes() -> None:
    other = "sha256:" + "0" * 64
    with pytest.raises(errors.DigestMismatch):
        client.get_manifest("127.0.0.1:5000/app:v1", transport=_serving(get_digest=other))
    # HEAD by digest: the registry must confirm the digest asked for
    with pytest.raises(errors.DigestMismatch):
        client.manifest_digest(f"127.0.0.1:5000/app@{DIGEST}", transport=_serving(head_digest=other))
    # GET by digest: the bytes must hash to it, whatever the header says
    with pytest.raises(errors.DigestMismatch):
        client.get_manifest(f"127.0.0.1:5000/app@{other}", transport=_serving(get_digest=other))
    # HEAD without the header falls back to GET, which is checked too
    with pytest.raises(errors.DigestMismatch):
        client.manifest_digest(f"127.0.0.1:5000/app@{other}", transport=_serving())
    # matching headers (sha256 or sha512) are accepted
    assert client.get_manifest("127.0.0.1:5000/app:v1", transport=_serving(get_digest=DIGEST)).digest == DIGEST
    assert client.get_manifest("127.0.0.1:5000/app:v1", transport=_serving(get_digest=SHA512)).digest == SHA512
    assert client.get_manifest(f"127.0.0.1:5000/app@{SHA512}", transport=_serving()).digest == SHA512
    assert client.manifest_digest(f"127.0.0.1:5000/app@{DIGEST}", transport=_serving(head_digest=DIGEST)) == DIGEST


def test_manifest_over_4_mib_is_refused() -> None:
    big = b"{" + b" " * client.MAX_MANIFEST_BYTES + b"}"
    with pytest.raises(errors.ResponseTooLarge, match="4194304"):
        client.get_manifest("127.0.0.1:5000/app:v1", transport=_serving(content=big))

    def chunked(request: httpx.Request) -> httpx.Response:  # no Content-Length: counted while read
        return httpx.Response(200, content=iter([b" " * (1 << 20)] * 5))

    with pytest.raises(errors.ResponseTooLarge):
        client.get_manifest("127.0.0.1:5000/app:v1", transport=httpx.MockTransport(chunked))
    with pytest.raises(errors.ResponseTooLarge):
        client.list_tags("127.0.0.1:5000/app", transport=httpx.MockTransport(chunked))
    exact = b" " * client.MAX_MANIFEST_BYTES
    assert client.get_manifest("127.0.0.1:5000/app:v1", transport=_serving(content=exact)).content == exact


def test_credentials_do_not_follow_a_redirect_to_another_origin() -> None:
    seen: list[httpx.Request] = []
    expected = "Basic " + base64.b64encode(b"u:p").decode()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.port == 5000:
            if request.headers.get("Authorization") != expected:
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            if request.url.path.endswith("/v1"):
                return httpx.Response(307, headers={"Location": "/v2/app/manifests/v2"})  # same origin
            return httpx.Response(307, headers={"Location": "http://127.0.0.1:5999/elsewhere"})
        return httpx.Response(200, content=MANIFEST)

    transport = httpx.MockTransport(handler)
    assert client.get_manifest("127.0.0.1:5000/app:v1", auth=("u", "p"), transport=transport).digest == DIGEST
    by_target = {(r.url.port, r.url.path): r.headers.get("Authorization") for r in seen}
    assert by_target[(5000, "/v2/app/manifests/v2")] == expected
    assert by_target[(5999, "/elsewhere")] is None


def test_redirects_are_bounded_and_stay_on_http() -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": request.url.path + "x"})

    with pytest.raises(errors.RegistryError, match="redirects"):
        client.get_manifest("127.0.0.1:5000/app:v1", transport=httpx.MockTransport(loop))

    def to_file(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "file:///etc/passwd"})

    with pytest.raises(errors.RegistryError, match="redirect"):
        client.get_manifest("127.0.0.1:5000/app:v1", transport=httpx.MockTransport(to_file))

    def downgrade(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            return httpx.Response(302, headers={"Location": "http://reg.example.com/v2/app/manifests/v1"})
        return httpx.Response(200, content=MANIFEST)

    with pytest.raises(errors.RegistryError, match="redirect"):
        client.get_manifest("reg.example.com/app:v1", transport=httpx.MockTransport(downgrade))


def test_token_request_follows_no_redirect() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "auth.example.com":
            return httpx.Response(302, headers={"Location": "http://registry.invalid/token"})
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token"'})

    with pytest.raises(errors.RegistryError, match="302"):
        client.manifest_digest("reg.example.com/app:v1", auth=("u", "p"), transport=httpx.MockTransport(handler))
    assert all(r.url.host != "registry.invalid" for r in seen)


def test_tags_next_page_stays_on_http_only_on_loopback() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"tags": ["a"]}, headers={"Link": '<http://registry.invalid/v2/a/tags/list>; rel="next"'}
        )

    with pytest.raises(errors.RegistryError, match="plain http"):
        client.list_tags("reg.example.com/a", transport=httpx.MockTransport(handler))
    assert [r.url.host for r in seen] == ["reg.example.com"]


# --- blobs: GET, and the POST-then-PUT upload ---------------------------------------------

BLOB = b'{"architecture":"amd64","os":"linux","config":{}}'
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


def test_digest_param_is_appended_to_the_upload_location() -> None:
    bare = httpx.URL("http://127.0.0.1:5000/v2/a/blobs/uploads/u1")
    assert client.with_digest_param(bare, BLOB_DIGEST) == f"{bare}?digest={BLOB_DIGEST}"
    state = httpx.URL("http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=ab%2Bc%3D%3D#frag")
    assert client.with_digest_param(state, BLOB_DIGEST) == (
        f"http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=ab%2Bc%3D%3D&digest={BLOB_DIGEST}"
    )


def _upload_registry(seen: list[httpx.Request], *, location: str | None, exists: bool = False) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "HEAD":
            return httpx.Response(200 if exists else 404)
        if request.method == "POST" and request.url.path == "/v2/team/app/blobs/uploads/":
            return httpx.Response(202, headers={"Location": location} if location else {})
        if request.method == "PUT":
            assert request.url.params["digest"] == hashlib.sha256(request.content).hexdigest().join(("sha256:", ""))
            return httpx.Response(201, headers={"Docker-Content-Digest": request.url.params["digest"]})
        return httpx.Response(400)

    return httpx.MockTransport(handler)


def test_put_blob_posts_then_puts_to_the_relative_location_with_its_query() -> None:
    seen: list[httpx.Request] = []
    transport = _upload_registry(seen, location="/v2/team/app/blobs/uploads/u1?_state=s%3D")
    assert client.put_blob("127.0.0.1:5000/team/app:v1", BLOB, transport=transport) == BLOB_DIGEST
    assert [r.method for r in seen] == ["HEAD", "POST", "PUT"]
    put = seen[-1]
    assert put.url.path == "/v2/team/app/blobs/uploads/u1"
    assert put.url.params["_state"] == "s=" and put.url.params["digest"] == BLOB_DIGEST
    assert put.content == BLOB


def test_put_blob_skips_a_blob_the_registry_has_and_can_skip_the_check() -> None:
    seen: list[httpx.Request] = []
    assert client.put_blob(
        "127.0.0.1:5000/team/app", BLOB, transport=_upload_registry(seen, location="/u", exists=True)
    )
    assert [r.method for r in seen] == ["HEAD"]
    seen.clear()
    transport = _upload_registry(seen, location="http://127.0.0.1:5000/u")
    client.put_blob("127.0.0.1:5000/team/app", BLOB, check_existing=False, transport=transport)
    assert [r.method for r in seen] == ["POST", "PUT"]


@pytest.mark.parametrize(
    "location,error",
    [
        (None, "answered 202 to POST"),  # no Location
        ("http://evil.example/u", "plain http"),  # off loopback over http
        ("file:///etc/passwd", "unusable"),
    ],
)
def test_put_blob_refuses_an_unusable_upload_location(location: str | None, error: str) -> None:
    with pytest.raises(errors.RegistryError, match=error):
        client.put_blob("127.0.0.1:5000/team/app", BLOB, transport=_upload_registry([], location=location))


def test_put_blob_refuses_a_registry_reporting_another_digest() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/team/app/blobs/uploads/u1"})
        return httpx.Response(201, headers={"Docker-Content-Digest": "sha256:" + "0" * 64})

    with pytest.raises(errors.DigestMismatch):
        client.put_blob("127.0.0.1:5000/team/app", BLOB, check_existing=False, transport=httpx.MockTransport(handler))


def test_get_blob_checks_the_bytes_the_status_and_the_bound() -> None:
    served = {BLOB_DIGEST: BLOB, "sha256:" + "1" * 64: b"other bytes"}

    def handler(request: httpx.Request) -> httpx.Response:
        body = served.get(request.url.path.rsplit("/", 1)[-1])
        if body is None:
            return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
        return httpx.Response(200, content=body)

    transport = httpx.MockTransport(handler)
    assert client.get_blob("127.0.0.1:5000/team/app:v1", BLOB_DIGEST, transport=transport) == BLOB
    with pytest.raises(errors.DigestMismatch):
        client.get_blob("127.0.0.1:5000/team/app", "sha256:" + "1" * 64, transport=transport)
    with pytest.raises(errors.BlobUnknown, match="BLOB_UNKNOWN"):
        client.get_blob("127.0.0.1:5000/team/app", "sha256:" + "2" * 64, transport=transport)
    with pytest.raises(errors.ResponseTooLarge):
        client.get_blob("127.0.0.1:5000/team/app", BLOB_DIGEST, limit=len(BLOB) - 1, transport=transport)
    with pytest.raises(errors.InvalidDigest):
        client.get_blob("127.0.0.1:5000/team/app", "sha256:../../manifests/x", transport=transport)


def test_a_push_scope_challenge_after_a_pull_token_is_answered() -> None:
    """A HEAD gets a pull token; the POST that follows is challenged for pull,push and gets a new token."""
    tokens = {"repository:team/app:pull": "PULL", "repository:team/app:pull,push": "PUSH"}
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/token":
            return httpx.Response(200, json={"token": tokens[request.url.params["scope"]]})
        scope = "repository:team/app:pull" if request.method in ("GET", "HEAD") else "repository:team/app:pull,push"
        if request.headers.get("Authorization") != f"Bearer {tokens[scope]}" and not (
            scope.endswith(":pull") and request.headers.get("Authorization") == "Bearer PUSH"
        ):
            challenge = f'Bearer realm="https://reg.example.com/token",service="reg",scope="{scope}"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/team/app/blobs/uploads/u1"})
        return httpx.Response(201)

    transport = httpx.MockTransport(handler)
    assert client.put_blob("reg.example.com/team/app", BLOB, auth=("u", "p"), transport=transport) == BLOB_DIGEST
    assert seen == [
        "HEAD /v2/team/app/blobs/" + BLOB_DIGEST,
        "GET /token",
        "HEAD /v2/team/app/blobs/" + BLOB_DIGEST,
        "POST /v2/team/app/blobs/uploads/",
        "GET /token",
        "POST /v2/team/app/blobs/uploads/",
        "PUT /v2/team/app/blobs/uploads/u1",
    ]


def test_a_callers_transport_is_not_closed() -> None:
    """A transport passed in is the caller's (a build's pool shared by two threads): a request never closes it,
    or a request of the other thread loses its connection mid-read."""

    class Counting(httpx.MockTransport):
        closed = 0

        def close(self) -> None:
            Counting.closed += 1

    body = b'{"schemaVersion": 2}'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and "/blobs/" in request.url.path:
            return httpx.Response(200, content=body)
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    transport = Counting(handler)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert client.get_blob("127.0.0.1:5000/app", digest, transport=transport) == body
    with pytest.raises(errors.ManifestUnknown):
        client.get_manifest("127.0.0.1:5000/app:v1", transport=transport)
    assert Counting.closed == 0
