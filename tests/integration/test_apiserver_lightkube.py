"""lightkube against the API server: generic dockyard resources and typed core resources."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

Build = create_namespaced_resource("dockyard.dev", "v1alpha1", "Build", "builds")

SPEC = {
    "source": {"type": "Dockerfile", "dockerfile": "FROM scratch"},
    "strategy": {"type": "Docker"},
    "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/hello:1"}},
}


@pytest.fixture
def client(apiserver: Any) -> Client:
    config = KubeConfig.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "d", "cluster": {"server": apiserver.url, "certificate-authority": str(apiserver.ca)}}
            ],
            "users": [{"name": "u", "user": {"token": apiserver.token}}],
            "contexts": [{"name": "d", "context": {"cluster": "d", "user": "u", "namespace": "default"}}],
            "current-context": "d",
        }
    )
    return Client(config=config)


def test_generic_resource_lifecycle(client: Client) -> None:
    created = client.create(Build(metadata=ObjectMeta(name="b1", labels={"app": "x"}), spec=SPEC))
    assert created.metadata.uid and created.metadata.resourceVersion
    got = client.get(Build, "b1")
    assert got.spec["output"]["to"]["name"] == "127.0.0.1:5000/hello:1"
    listed = client.list(Build, labels={"app": "x"})
    assert [b.metadata.name for b in listed] == ["b1"]
    assert listed.resourceVersion

    patched = client.patch(Build, "b1", {"metadata": {"labels": {"stage": "two"}}}, patch_type=PatchType.MERGE)
    assert patched.metadata.labels == {"app": "x", "stage": "two"}

    got = client.get(Build, "b1")
    replaced = client.replace(Build.Status(metadata=got.metadata, status={"phase": "Running"}), "b1")
    assert replaced.status == {"phase": "Running"}
    status_patch = client.patch(Build.Status, "b1", {"status": {"phase": "Complete"}}, patch_type=PatchType.MERGE)
    assert status_patch.status["phase"] == "Complete"
    assert client.get(Build, "b1").metadata.generation == 1

    with pytest.raises(ApiError) as err:
        client.get(Build, "missing")
    assert err.value.status.code == 404
    stale = client.get(Build, "b1")
    client.patch(Build, "b1", {"metadata": {"labels": {"bump": "1"}}}, patch_type=PatchType.MERGE)
    stale.metadata.labels["again"] = "1"
    with pytest.raises(ApiError) as err:
        client.replace(stale)
    assert err.value.status.code == 409
    client.delete(Build, "b1")
    assert list(client.list(Build)) == []


def test_watch_resumes_from_resource_version(apiserver: Any, client: Client) -> None:
    client.create(Build(metadata=ObjectMeta(name="before"), spec=SPEC))
    listing = client.list(Build)
    assert [b.metadata.name for b in listing] == ["before"]
    rv = listing.resourceVersion
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def watch() -> None:
        for kind, obj in client.watch(Build, resource_version=rv):
            seen.append((kind, obj.metadata.name))
            if len(seen) == 3:
                break
        done.set()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    client.create(Build(metadata=ObjectMeta(name="after"), spec=SPEC))
    client.patch(Build, "after", {"metadata": {"labels": {"x": "1"}}}, patch_type=PatchType.MERGE)
    client.delete(Build, "before")
    assert done.wait(10)
    assert seen == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "before")]


def test_typed_core_pod(client: Client) -> None:
    pod = Pod(metadata=ObjectMeta(name="p"), spec=PodSpec(containers=[Container(name="c", image="busybox")]))
    created = client.create(pod)
    assert created.metadata.namespace == "default"
    assert client.get(Pod, "p").spec.containers[0].image == "busybox"
    with pytest.raises(ApiError) as err:
        client.create(Pod(metadata=ObjectMeta(name="bad"), spec=PodSpec(containers=[])))
    assert err.value.status.code == 422 and "spec.containers" in (err.value.status.message or "")
    patched = client.patch(
        Pod, "p", {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}, patch_type=PatchType.STRATEGIC
    )
    assert patched.spec.containers[0].image == "busybox:2"
