"""The main job on Docker Engine instead of Podman: the same flow, `dockyard up --engine docker`.

Starts a private ``dockerd`` (its own data root, exec root and socket under
the test's tmp dir, as ENVIRONMENT.md describes) and drives the hello example
through it: build, deploy on 127.0.0.1, rebuild and roll, commit and push.
"""

from __future__ import annotations

import pytest
from harness import demo_module

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
        demo.change_source()
        demo.build("v2")
        demo.serves("v2")
        demo.commit_container()
        demo.stop()
    finally:
        demo.cleanup()
