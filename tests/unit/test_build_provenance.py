"""Pure parts of build provenance and publication: the OCI keys' values, the annotated OCI manifest, build order."""

from __future__ import annotations

import json

import pytest

from dockyard.agent import builds
from dockyard.api import objects as api_objects
from dockyard.api import provenance
from dockyard.registry import errors, manifests

DOCKER_MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": manifests.DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 9,
                "digest": "sha256:" + "b" * 64,
            }
        ],
    }
).encode()


@pytest.mark.parametrize(
    "uri,public",
    [
        ("https://bob:s3cret@git.example/app.git", "https://git.example/app.git"),
        ("https://token@git.example:8443/app.git", "https://git.example:8443/app.git"),
        ("https://git.example/app.git", "https://git.example/app.git"),
        ("git@github.com:org/app.git", "git@github.com:org/app.git"),
        ("/srv/git/app", "/srv/git/app"),
    ],
)
def test_source_uri_loses_its_credentials(uri: str, public: str) -> None:
    assert provenance.public_source_uri(uri) == public


@pytest.mark.parametrize(
    "dockerfile,args,base",
    [
        ("FROM busybox\n", {}, "busybox"),
        ("ARG BASE=reg/base:1\nFROM ${BASE}\nCOPY a /a\n", {}, "reg/base:1"),
        ("ARG BASE=reg/base:1\nFROM $BASE\n", {"BASE": "reg/other:2"}, "reg/other:2"),
        ("ARG V\nFROM reg/base:${V:-7}\n", {}, "reg/base:7"),
        ("FROM reg/golang:1 AS build\nRUN x\nFROM --platform=linux/amd64 reg/rt:3\n", {}, "reg/rt:3"),
        ("FROM reg/base:1 AS base\nFROM base\n", {}, "reg/base:1"),
        ("FROM scratch\n", {}, None),
        ("# no FROM\n", {}, None),
        ("FROM reg/a:1\nARG BASE=x\nFROM reg/b:${BASE}\n", {"BASE": "9"}, "reg/b:"),  # ARG after FROM: not in scope
    ],
)
def test_final_base_image_follows_the_dockerfile_reference(dockerfile: str, args: dict[str, str], base: str) -> None:
    assert provenance.final_base_image(dockerfile, args) == base


def test_a_docker_manifest_becomes_an_annotated_oci_manifest_of_the_same_blobs() -> None:
    out = json.loads(manifests.annotated_oci_manifest(DOCKER_MANIFEST, manifests.DOCKER_MANIFEST, {"k": "v"}))
    assert out["mediaType"] == manifests.OCI_MANIFEST
    assert out["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + "a" * 64,
        "size": 7,
    }
    assert out["layers"] == [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "b" * 64, "size": 9}
    ]
    assert out["annotations"] == {"k": "v"}
    again = manifests.annotated_oci_manifest(DOCKER_MANIFEST, manifests.DOCKER_MANIFEST, {"k": "v"})
    assert manifests.annotated_oci_manifest(DOCKER_MANIFEST, "", {"k": "v"}) == again  # same bytes, same digest
    assert manifests.annotations_of(again) == {"k": "v"}


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b'{"schemaVersion": 1}',
        json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
        ).encode(),
    ],
)
def test_only_an_image_manifest_is_annotated(content: bytes) -> None:
    with pytest.raises(errors.RegistryError):
        manifests.annotated_oci_manifest(content, "", {"k": "v"})


def _build(name: str, created: str, number: str) -> api_objects.Build:
    return api_objects.Build.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "creationTimestamp": created,
                "labels": {"dockyard.dev/build.number": number},
            },
            "spec": {
                "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\n"},
                "strategy": {"type": "Docker", "dockerStrategy": {}},
                "output": {"to": {"kind": "DockerImage", "name": "r/a:1"}},
            },
        }
    )


def test_build_order_sorts_by_creation_then_number() -> None:
    a = builds.build_order(_build("app-9", "2026-01-01T00:00:00Z", "9"))
    b = builds.build_order(_build("app-10", "2026-01-01T00:00:00Z", "10"))
    c = builds.build_order(_build("other-1", "2026-01-01T00:00:01Z", "1"))
    assert a < b < c


def test_own_tag_is_a_valid_tag_no_other_build_shares() -> None:
    build = _build("a" * 200, "2026-01-01T00:00:00Z", "1")
    build.metadata.uid = "1234abcd-0000"
    tag = builds.own_tag(build)
    assert tag.startswith(builds.OWN_TAG_PREFIX) and len(tag) <= 128


CONFIG = (
    b'{"architecture":"amd64","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Labels":{"keep":"1","k":"old"}},'
    b'"created":"2026-01-01T00:00:00Z","history":[{"created_by":"COPY x /x"}],"os":"linux",'
    b'"rootfs":{"type":"layers","diff_ids":["sha256:' + b"c" * 64 + b'"]}}'
)


def test_labels_are_merged_into_the_config_and_nothing_else_changes() -> None:
    out = manifests.labelled_config(CONFIG, {"k": "v", "org.opencontainers.image.revision": "abc"})
    doc, before = json.loads(out), json.loads(CONFIG)
    assert doc["config"]["Labels"] == {"keep": "1", "k": "v", "org.opencontainers.image.revision": "abc"}
    doc["config"].pop("Labels"), before["config"].pop("Labels")
    assert doc == before
    assert list(json.loads(out)) == list(json.loads(CONFIG))  # key order kept
    assert manifests.labelled_config(CONFIG, {"k": "v", "org.opencontainers.image.revision": "abc"}) == out


@pytest.mark.parametrize("config", [b'{"os":"linux"}', b'{"os":"linux","config":null}', b'{"config":{"Labels":null}}'])
def test_a_config_without_labels_gets_them(config: bytes) -> None:
    assert json.loads(manifests.labelled_config(config, {"k": "v"}))["config"]["Labels"] == {"k": "v"}


@pytest.mark.parametrize("config", [b"not json", b"[]", b'{"config":[]}', b'{"config":{"Labels":"x"}}'])
def test_a_config_that_is_not_an_image_config_is_refused(config: bytes) -> None:
    with pytest.raises(errors.RegistryError):
        manifests.labelled_config(config, {"k": "v"})


def test_the_annotated_manifest_can_name_a_replacement_config() -> None:
    assert manifests.config_descriptor(DOCKER_MANIFEST) == ("sha256:" + "a" * 64, 7)
    new = ("sha256:" + "d" * 64, 123)
    out = json.loads(manifests.annotated_oci_manifest(DOCKER_MANIFEST, "", {"k": "v"}, config=new))
    assert out["config"] == {"mediaType": manifests.OCI_CONFIG, "digest": new[0], "size": new[1]}
    assert out["layers"][0]["digest"] == "sha256:" + "b" * 64
    with pytest.raises(errors.InvalidDigest):
        manifests.annotated_oci_manifest(DOCKER_MANIFEST, "", {}, config=("sha256:../x", 1))
    with pytest.raises(errors.RegistryError):
        manifests.config_descriptor(b'{"schemaVersion":2,"config":{"digest":"sha256:x","size":1}}')
