"""The main job on Docker Engine instead of Podman: the same flow, `dockyard up --engine docker`.

Starts a private ``dockerd`` (its own data root, exec root and socket under
the test's tmp dir, as ENVIRONMENT.md describes) and drives the hello example
through it: build, deploy on 127.0.0.1, rebuild and roll, commit and push.
"""

from __future__ import annotations

import json

import docker
import pytest
from harness import demo_module

from dockyard.agent import podspec
from privatedockerd import private_dockerd

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    with private_dockerd(tmp_path_factory.mktemp("dockerd")) as url:
        yield url


def test_hello_flow_on_docker_engine(dockerd, tmp_path):
    demo = demo_module().Demo(tmp_path, engine="docker")
    demo.env["DOCKER_HOST"] = dockerd
    try:
        demo.start()
        assert "engine docker" in (tmp_path / "up.log").read_text()
        demo.base_image()
        demo.make_repo()
        demo.apply()
        demo.build("v1")
        demo.serves("v1")
        pods_see_their_names(dockerd, demo)
        demo.change_source()
        demo.build("v2")
        demo.serves("v2")
        demo.commit_container()
        demo.stop()
    finally:
        demo.cleanup()


def pods_see_their_names(dockerd, demo) -> None:
    """Each pod's app container has the pod's name as its hostname (the sandbox's UTS namespace)."""
    client = docker.DockerClient(base_url=dockerd)
    pods = json.loads(demo.kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
    assert pods
    for pod in pods:
        labels = [f"{podspec.LABEL_POD_UID}={pod['metadata']['uid']}", f"{podspec.LABEL_CONTAINER_NAME}=web"]
        (web,) = client.containers.list(filters={"label": labels})
        assert web.exec_run(["hostname"]).output.decode().strip() == pod["metadata"]["name"]
