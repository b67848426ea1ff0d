"""The main job on Docker Engine instead of Podman: the same flow, `dockyard up --engine docker`.

Starts a private ``dockerd`` (its own data root, exec root and socket under
the test's tmp dir, as ENVIRONMENT.md describes) and drives the hello example
through it: build, deploy on 127.0.0.1, rebuild and roll, commit and push.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import docker
import pytest
from harness import demo_module

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    binary = shutil.which("dockerd")
    assert binary, "dockerd is missing: scripts/bootstrap.sh installs docker.io"
    root = tmp_path_factory.mktemp("dockerd")
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 — held by the child process
    proc = subprocess.Popen(
        [
            binary,
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "pid"),
            "-H",
            f"unix://{sock}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            docker.DockerClient(base_url=f"unix://{sock}").ping()
            break
        except Exception:
            assert proc.poll() is None, (root / "dockerd.log").read_text()[-2000:]
            time.sleep(0.2)
    else:
        raise AssertionError("dockerd did not answer within 30 s")
    yield f"unix://{sock}"
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


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
