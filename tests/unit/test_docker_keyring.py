"""The pull-secret keyring, matched as the kubelet's ``credentialprovider.BasicDockerKeyring`` matches."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from dockyard.api import credentials


def secret(name: str, auths: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps({"auths": auths}).encode()
    return {
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(raw).decode()},
    }


def basic(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "key",
    [
        "127.0.0.1:5000",
        "http://127.0.0.1:5000",
        "https://127.0.0.1:5000/",
        "https://127.0.0.1:5000/v2/",
        "127.0.0.1:5000/v1/",
        "127.0.0.1:5000/team",
    ],
)
def test_a_key_with_or_without_scheme_and_path_matches_its_host(key: str) -> None:
    ring = credentials.DockerKeyring.from_secrets([secret("s", {key: basic("u", "p")})])
    assert ring.lookup("127.0.0.1:5000/team/app:1") == [("u", "p")]


def test_port_path_and_labels_must_match() -> None:
    ring = credentials.DockerKeyring.from_secrets(
        [secret("s", {"127.0.0.1:5000/team": basic("u", "p"), "*.example.com": {"username": "w", "password": "q"}})]
    )
    assert ring.lookup("127.0.0.1:5001/team/app") == []
    assert ring.lookup("127.0.0.1/team/app") == []
    assert ring.lookup("127.0.0.1:5000/other/app") == []
    assert ring.lookup("registry.example.com/app@sha256:" + "a" * 64) == [("w", "q")]
    assert ring.lookup("a.registry.example.com/app") == []


def test_more_specific_keys_first_and_every_secret_tried() -> None:
    ring = credentials.DockerKeyring.from_secrets(
        [
            secret("one", {"127.0.0.1:5000": basic("host", "1")}),
            secret("two", {"127.0.0.1:5000/team": basic("team", "2"), "127.0.0.1:5000/": basic("host2", "3")}),
        ]
    )
    assert ring.lookup("127.0.0.1:5000/team/app") == [("team", "2"), ("host", "1"), ("host2", "3")]


def test_docker_hub_images_use_the_index_entry() -> None:
    ring = credentials.DockerKeyring.from_secrets([secret("s", {"https://index.docker.io/v1/": basic("hub", "p")})])
    assert ring.lookup("busybox") == [("hub", "p")]
    assert ring.lookup("docker.io/library/busybox:1") == [("hub", "p")]
    assert ring.lookup("127.0.0.1:5000/busybox") == []


def test_a_bad_secret_is_named_never_its_values() -> None:
    bad = {"metadata": {"name": "creds"}, "data": {".dockerconfigjson": base64.b64encode(b"hunter2{").decode()}}
    with pytest.raises(credentials.CredentialError) as err:
        credentials.DockerKeyring.from_secrets([bad])
    assert "'creds'" in str(err.value) and "hunter2" not in str(err.value)
    with pytest.raises(credentials.CredentialError, match="no data"):
        credentials.DockerKeyring.from_secrets([{"metadata": {"name": "opaque"}, "data": {}}])
