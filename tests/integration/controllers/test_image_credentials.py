"""Registry reads with credentials and many tags: ``spec.secretRef`` (a dockerconfigjson Secret) against the real
CNCF registry with htpasswd (Basic) and with token auth (the distribution token flow), and tag lists followed
through ``Link`` pages."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.client import runtime
from dockyard.controllers.image import ImageController
from dockyard.registry import client, server
from integration.test_registry_hostile import (
    CREDS,
    LoopbackServer,
    RecordingTransport,
    Request,
    TokenAuthRegistry,
    TokenIssuer,
    issuer,  # noqa: F401  (fixtures)
    token_service,  # noqa: F401
)

from .conftest import Env, condition, status
from .test_image_controller import OCI_MANIFEST, push


@pytest.fixture
def htpasswd_registry(tmp_path: Path) -> Iterator[server.RegistryServer]:
    htpasswd = server.write_htpasswd(tmp_path / "htpasswd", {CREDS[0]: CREDS[1]})
    with server.RegistryServer(server.free_port(), tmp_path / "data", htpasswd=htpasswd) as registry:
        yield registry


def dockerconfig_secret(env: Env, name: str, registry: str, creds: tuple[str, str]) -> None:
    auth = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
    doc = json.dumps({"auths": {registry: {"auth": auth}}}).encode()
    env.create(
        "Secret",
        {
            "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(doc).decode()},
        },
    )


def ready(env: Env, status_: str) -> dict[str, Any]:
    return env.wait_for("Image", "app", lambda o: condition(o, "Ready").get("status") == status_, f"Ready {status_}")


def test_secret_ref_basic_auth(
    env: Env, run_controller: Callable[..., runtime.Controller], htpasswd_registry: server.RegistryServer
) -> None:
    reg = htpasswd_registry
    digest = push(reg, "team/app", "v1.2.0", "1", auth=CREDS)
    push(reg, "team/app", "v1.0.0", "0", auth=CREDS)
    run_controller(ImageController)
    spec = {"repository": f"{reg.address}/team/app", "interval": "1h", "policy": {"semver": {"range": "^1"}}}
    env.create("Image", {"metadata": {"name": "app"}, "spec": spec})
    refused = condition(ready(env, "False"), "Ready")
    assert refused["reason"] == "Unauthorized"
    env.patch("Image", "app", {"spec": {"secretRef": {"name": "regcred"}}})
    env.wait_for("Image", "app", lambda o: condition(o, "Ready").get("reason") == "SecretNotFound", "SecretNotFound")
    dockerconfig_secret(env, "wrong", reg.address, ("alice", "not-her-password"))
    env.patch("Image", "app", {"spec": {"secretRef": {"name": "wrong"}}})
    got = env.wait_for(
        "Image", "app", lambda o: "not-her-password" not in json.dumps(o) and o["metadata"]["generation"] == 3, "gen 3"
    )
    env.wait_for("Image", "app", lambda o: condition(o, "Ready").get("reason") == "Unauthorized", "refused again")
    dockerconfig_secret(env, "regcred", reg.address, CREDS)
    env.patch("Image", "app", {"spec": {"secretRef": {"name": "regcred"}}})
    got = env.wait_for("Image", "app", lambda o: status(o).get("latestDigest") == digest, "the digest with creds")
    assert (status(got)["latestTag"], status(got)["tagCount"]) == ("v1.2.0", 2)
    assert CREDS[1] not in json.dumps(env.list("Event"))


def test_secret_ref_bearer_token_flow(
    env: Env,
    run_controller: Callable[..., runtime.Controller],
    tmp_path: Path,
    issuer: TokenIssuer,
    token_service: LoopbackServer,
) -> None:
    realm = f"http://{token_service.address}/token"
    with TokenAuthRegistry(server.free_port(), tmp_path / "data", realm=realm, issuer=issuer) as reg:
        run_controller(ImageController)
        env.create("Image", {"metadata": {"name": "app"}, "spec": {"repository": f"{reg.address}/team/app"}})
        assert condition(ready(env, "False"), "Ready")["reason"] == "Unauthorized"  # no credentials for the realm
        dockerconfig_secret(env, "regcred", reg.address, CREDS)
        env.patch("Image", "app", {"spec": {"secretRef": {"name": "regcred"}}})
        # with the Secret: a token from the realm, then the registry itself answers (nothing pushed there)
        env.wait_for(
            "Image", "app", lambda o: condition(o, "Ready").get("reason") == "ManifestUnknown", "past the token flow"
        )
    assert any(r.path == "/token" and r.headers.get("Authorization") for r in token_service.seen)


def push_tags(reg: server.RegistryServer, repository: str, tags: list[str]) -> str:
    """One image under many tags (each tag a PUT of the same manifest); returns its digest."""
    digest = push(reg, repository, tags[0], "many")
    with httpx.Client(base_url=reg.url, timeout=10) as http:
        manifest = http.get(f"/v2/{repository}/manifests/{tags[0]}", headers={"Accept": OCI_MANIFEST}).content
        for tag in tags[1:]:
            r = http.put(f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
            assert r.status_code == 201, r.text
    return digest


def test_tag_lists_of_the_real_registry_are_complete(registry_server: server.RegistryServer) -> None:
    """distribution 2.8 answers ``n`` with every tag in one page (its tags list has no pagination; 3.x has):
    whatever it does, the client's list is complete."""
    tags = [f"1.0.{n}" for n in range(130)]
    push_tags(registry_server, "paged/app", tags)
    transport = RecordingTransport()
    listed = client.list_tags(f"{registry_server.address}/paged/app", page_size=25, transport=transport)
    assert sorted(listed) == sorted(tags)
    assert all(url.params.get("n") == "25" for _, url, _ in transport.sent)


SHA = "sha256:" + "c" * 64


def paging_registry(
    tags: list[str], seen: list[dict[str, list[str]]]
) -> Callable[[Request], tuple[int, dict[str, str], bytes]]:
    """A registry that pages its tags list as the OCI distribution spec says ("Listing Tags"): at most ``n`` tags
    after ``last``, lexically, and ``Link: <...?n=N&last=T>; rel="next"`` while more follow."""

    def route(request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.path == "/v2/paged/app/tags/list":
            seen.append(request.query)
            n = int(request.query.get("n", ["1000"])[0])
            last = request.query.get("last", [""])[0]
            rest = [t for t in sorted(tags) if t > last]
            page, more = rest[:n], len(rest) > n
            headers = {"Content-Type": "application/json"}
            if more:
                headers["Link"] = f'</v2/paged/app/tags/list?n={n}&last={page[-1]}>; rel="next"'
            return 200, headers, json.dumps({"name": "paged/app", "tags": page}).encode()
        if request.path.startswith("/v2/paged/app/manifests/"):
            return 200, {"Docker-Content-Digest": SHA, "Content-Type": OCI_MANIFEST}, b""
        return 404, {}, b""

    return route


def test_a_policy_reads_every_link_page(env: Env, run_controller: Callable[..., runtime.Controller]) -> None:
    tags = [f"1.0.{n}" for n in range(130)] + ["latest"]
    seen: list[dict[str, list[str]]] = []
    with LoopbackServer(paging_registry(tags, seen)) as reg:
        run_controller(ImageController, tags_page_size=25)
        spec = {"repository": f"{reg.address}/paged/app", "interval": "1h", "policy": {"semver": {"range": "~1.0"}}}
        env.create("Image", {"metadata": {"name": "app"}, "spec": spec})
        got = env.wait_for("Image", "app", lambda o: status(o).get("latestTag") == "1.0.129", "the highest tag")
    assert (status(got)["tagCount"], status(got)["latestDigest"]) == (131, SHA)
    first_scan = seen[:6]
    assert [q.get("n") for q in first_scan] == [["25"]] * 6
    assert [q.get("last") for q in first_scan][1:] == [[t] for t in sorted(tags)[24::25][:5]]  # each page's last
