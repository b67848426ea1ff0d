"""Blob GET and the POST-then-PUT upload against the real registry (``docker-registry`` on 127.0.0.1).

An image assembled from blobs uploaded with :func:`dockyard.registry.client.put_blob` (a layer, a config
labelled by :func:`dockyard.registry.manifests.labelled_config`) and an OCI manifest naming them is read back
with skopeo, an independent client: its config labels and manifest annotations are the ones written.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile

import httpx
import pytest

from dockyard.registry import client, errors, manifests, server


class CountingTransport(httpx.HTTPTransport):
    """Records ``METHOD path`` of each request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)


def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_blobs_round_trip_and_make_a_labelled_image(registry_server: server.RegistryServer) -> None:
    repo = f"{registry_server.address}/blobs/app"
    layer_tar = _layer()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"], "Labels": {"from.dockerfile": "yes"}},
            "rootfs": {"type": "layers", "diff_ids": [client.digest_of(layer_tar)]},
        }
    ).encode()
    transport = CountingTransport()
    layer_digest = client.put_blob(f"{repo}:any", layer, transport=transport)
    assert layer_digest == client.digest_of(layer)
    assert [s.split(" ")[0] for s in transport.sent] == ["HEAD", "POST", "PUT"]
    transport.sent.clear()
    assert client.put_blob(repo, layer, transport=transport) == layer_digest  # already there: HEAD only
    assert transport.sent == [f"HEAD /v2/blobs/app/blobs/{layer_digest}"]
    assert client.get_blob(repo, layer_digest, transport=transport) == layer

    labelled = manifests.labelled_config(config, {"org.opencontainers.image.revision": "abc123"})
    config_digest = client.put_blob(repo, labelled, check_existing=False)
    assert client.get_blob(repo, config_digest) == labelled
    pushed = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": manifests.DOCKER_MANIFEST,
            "config": {"mediaType": manifests.DOCKER_CONFIG, "digest": client.digest_of(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    content = manifests.annotated_oci_manifest(
        pushed, "", {"org.opencontainers.image.revision": "abc123"}, config=(config_digest, len(labelled))
    )
    digest = client.put_manifest(f"{repo}:v1", content, media_type=manifests.OCI_MANIFEST)

    def skopeo(*args: str) -> dict[str, object]:
        argv = ["skopeo", "inspect", "--tls-verify=false", *args, f"docker://{repo}@{digest}"]
        return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout)

    assert skopeo()["Labels"] == {"from.dockerfile": "yes", "org.opencontainers.image.revision": "abc123"}
    assert skopeo("--raw")["annotations"] == {"org.opencontainers.image.revision": "abc123"}


def test_missing_and_oversize_blobs(registry_server: server.RegistryServer) -> None:
    repo = f"{registry_server.address}/blobs/other"
    with pytest.raises(errors.BlobUnknown):
        client.get_blob(repo, "sha256:" + "0" * 64)
    digest = client.put_blob(repo, b"x" * 100)
    with pytest.raises(errors.ResponseTooLarge):
        client.get_blob(repo, digest, limit=99)
    assert client.get_blob(repo, digest, limit=100) == b"x" * 100
