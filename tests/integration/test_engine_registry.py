"""Engine layer + registry client against real parts.

A real ``docker-registry`` (RegistryServer) on 127.0.0.1, a real Podman
service started by ``connect("podman")``, and ``skopeo`` as an independent
third-party check of what the registry holds. Every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.agent.engine import connect, errors, images
from dockyard.cli import base_image
from dockyard.registry import client as registry_client
from dockyard.registry import errors as registry_errors
from dockyard.registry import server
from privatedockerd import private_dockerd

pytestmark = pytest.mark.e2e


def skopeo_digest(ref: str, *, creds: str | None = None) -> str:
    """The manifest digest skopeo (containers/image) reads from the registry."""
    args = ["skopeo", "inspect", "--tls-verify=false", "--raw"]
    if creds:
        args += ["--creds", creds]
    raw = subprocess.run([*args, f"docker://{ref}"], check=True, capture_output=True, timeout=60).stdout
    args.remove("--raw")
    info = json.loads(subprocess.run([*args, f"docker://{ref}"], check=True, capture_output=True, timeout=60).stdout)
    assert info["Digest"] == registry_client.digest_of(raw)
    return str(info["Digest"])


def wait_http(url: str, *, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.2)


@pytest.fixture()
def cleanup(podman_engine: connect.Engine) -> Iterator[list[str]]:
    """Container ids appended here are force-removed after the test."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        try:
            podman_engine.client.api.remove_container(cid, force=True)
        except Exception:
            pass


def test_engine_is_our_podman_service(podman_engine: connect.Engine) -> None:
    assert podman_engine.kind == "podman"
    assert podman_engine.started_service
    assert podman_engine.socket.startswith("unix://")
    assert podman_engine.client.ping()


def test_base_image_digest_matches_skopeo(
    busybox_image: tuple[str, str], registry_server: server.RegistryServer
) -> None:
    ref, digest = busybox_image
    assert digest.startswith("sha256:") and len(digest) == 71
    assert registry_client.manifest_digest(ref) == digest
    assert skopeo_digest(ref) == digest
    assert registry_client.get_manifest(ref).digest == digest
    assert "1" in registry_client.list_tags(ref)


def test_registry_answers_unknowns(registry_server: server.RegistryServer, busybox_image: tuple[str, str]) -> None:
    ref, _ = busybox_image
    with pytest.raises(registry_errors.ManifestUnknown):
        registry_client.manifest_digest(ref.rsplit(":", 1)[0] + ":no-such-tag")
    with pytest.raises(registry_errors.NameUnknown):
        registry_client.list_tags(f"{registry_server.address}/no/such/repo")


def test_build_run_commit_push(
    podman_engine: connect.Engine,
    registry_server: server.RegistryServer,
    busybox_image: tuple[str, str],
    cleanup: list[str],
) -> None:
    base_ref, _ = busybox_image
    api = podman_engine.client.api
    app_ref = f"{registry_server.address}/dockyard-test/app:v1"
    dockerfile = (
        f"FROM {base_ref}\n"
        "ARG GREETING=unset\n"
        "COPY index.html /www/index.html\n"
        'RUN echo "$GREETING" > /www/greeting.txt\n'
        "EXPOSE 8080\n"
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    lines: list[str] = []
    image_id = images.build(
        podman_engine.client,
        context=images.tar_files({"Dockerfile": dockerfile, "index.html": "hello from dockyard\n"}),
        tag=app_ref,
        buildargs={"GREETING": "hi-there"},
        on_log=lines.append,
    )
    assert image_id.startswith("sha256:")
    assert any("COPY index.html" in line for line in lines)
    assert api.inspect_image(app_ref)["Id"] == image_id

    images.push(podman_engine.client, app_ref)
    assert registry_client.manifest_digest(app_ref) == skopeo_digest(app_ref)

    port = server.free_port()
    container = api.create_container(
        app_ref,
        ports=[8080],
        host_config=api.create_host_config(port_bindings={8080: ("127.0.0.1", port)}),
    )
    cleanup.append(container["Id"])
    api.start(container["Id"])
    assert wait_http(f"http://127.0.0.1:{port}/index.html").text == "hello from dockyard\n"
    assert httpx.get(f"http://127.0.0.1:{port}/greeting.txt", timeout=5).text == "hi-there\n"

    # change the running container, then snapshot it
    exec_id = api.exec_create(container["Id"], ["sh", "-c", "echo committed > /www/committed.html"])
    api.exec_start(exec_id)
    snap_ref = f"{registry_server.address}/dockyard-test/app:snapshot"
    snap_id = images.commit(
        podman_engine.client,
        container["Id"],
        snap_ref,
        pause=True,
        changes=["ENV COMMITTED=yes", "LABEL dockyard.test=commit"],
        message="snapshot for test",
        author="Dockyard Test <test@example.com>",
    )
    assert snap_id.startswith("sha256:")
    assert api.inspect_container(container["Id"])["State"]["Running"]  # unpaused after the commit
    assert wait_http(f"http://127.0.0.1:{port}/committed.html").text == "committed\n"

    info = api.inspect_image(snap_ref)
    assert "COMMITTED=yes" in info["Config"]["Env"]
    assert info["Config"]["Labels"]["dockyard.test"] == "commit"
    assert info["Author"] == "Dockyard Test <test@example.com>"

    images.push(podman_engine.client, snap_ref)
    digest = registry_client.manifest_digest(snap_ref)
    assert digest == skopeo_digest(snap_ref)
    assert digest != registry_client.manifest_digest(app_ref)

    # the snapshot carries the change
    check = api.create_container(snap_ref, ["cat", "/www/committed.html"])
    cleanup.append(check["Id"])
    api.start(check["Id"])
    assert api.wait(check["Id"], timeout=30)["StatusCode"] == 0
    assert api.logs(check["Id"]).decode() == "committed\n"


def test_build_failure_has_log(podman_engine: connect.Engine, busybox_image: tuple[str, str]) -> None:
    base_ref, _ = busybox_image
    dockerfile = f'FROM {base_ref}\nRUN echo "about to fail"; exit 3\n'
    with pytest.raises(errors.BuildFailed) as info:
        images.build(
            podman_engine.client,
            context=images.tar_files({"Dockerfile": dockerfile}),
            tag="127.0.0.1:1/dockyard-test/broken:1",
        )
    assert "exit status 3" in info.value.message or "non-zero code" in info.value.message
    assert any("about to fail" in line for line in info.value.log_tail)
    assert isinstance(info.value, errors.EngineError)


def test_build_with_bad_dockerfile(podman_engine: connect.Engine) -> None:
    with pytest.raises(errors.BuildFailed):
        images.build(
            podman_engine.client,
            context=images.tar_files({"Dockerfile": "FROM scratch\nNOTANINSTRUCTION x\n"}),
            tag="127.0.0.1:1/dockyard-test/broken:2",
        )


def test_push_unknown_image(podman_engine: connect.Engine, registry_server: server.RegistryServer) -> None:
    with pytest.raises(errors.PushFailed, match="no-such-image"):
        images.push(podman_engine.client, f"{registry_server.address}/dockyard-test/no-such-image:1")


def test_commit_unknown_container(podman_engine: connect.Engine) -> None:
    with pytest.raises(errors.CommitFailed):
        images.commit(podman_engine.client, "no-such-container-dockyard", "127.0.0.1:1/x:1")


def test_push_to_registry_with_auth(
    podman_engine: connect.Engine, busybox_image: tuple[str, str], tmp_path: Path
) -> None:
    htpasswd = server.write_htpasswd(tmp_path / "htpasswd", {"alice": "s3cret-pw"})
    with server.RegistryServer(server.free_port(), tmp_path / "data", htpasswd=htpasswd) as registry:
        base_ref, _ = busybox_image
        target = f"{registry.address}/private/busybox:1"
        assert podman_engine.client.api.tag(base_ref, target.rsplit(":", 1)[0], "1")

        with pytest.raises(errors.PushFailed) as no_creds:
            images.push(podman_engine.client, target)
        assert target in str(no_creds.value)

        with pytest.raises(errors.PushFailed) as wrong:
            images.push(podman_engine.client, target, auth={"username": "alice", "password": "wrong-pw-xyz"})
        assert "wrong-pw-xyz" not in str(wrong.value)

        with pytest.raises(registry_errors.Unauthorized):
            registry_client.manifest_digest(target)

        images.push(podman_engine.client, target, auth={"username": "alice", "password": "s3cret-pw"})
        digest = registry_client.manifest_digest(target, auth=("alice", "s3cret-pw"))
        assert digest == skopeo_digest(target, creds="alice:s3cret-pw")
        with pytest.raises(registry_errors.Unauthorized) as refused:
            registry_client.manifest_digest(target, auth=("alice", "nope-pw"))
        assert "nope-pw" not in str(refused.value)


def test_base_image_rejects_unknown_name(podman_engine: connect.Engine) -> None:
    with pytest.raises(errors.EngineError, match="only busybox"):
        base_image.build_base_image(podman_engine, name="alpine", to="127.0.0.1:1/x:1")


def test_base_image_needs_static_busybox(podman_engine: connect.Engine, tmp_path: Path) -> None:
    with pytest.raises(errors.EngineError, match="busybox-static"):
        base_image.build_base_image(podman_engine, to="127.0.0.1:1/x:1", busybox=tmp_path / "missing")


def test_connect_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.EngineError, match="unknown engine kind"):
        connect.connect("containerd", run_dir=tmp_path)
    with pytest.raises(errors.EngineError, match="does not answer"):
        connect.connect("docker", socket=str(tmp_path / "missing.sock"), run_dir=tmp_path)


def test_connect_reuses_answering_socket(podman_engine: connect.Engine, tmp_path: Path) -> None:
    engine = connect.connect("auto", socket=podman_engine.socket, run_dir=tmp_path)
    try:
        assert engine.kind == "podman"
        assert not engine.started_service  # close() must leave the shared service running
    finally:
        engine.close()
    assert podman_engine.client.ping()


def test_connect_auto_honours_docker_host(
    podman_engine: connect.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman_engine.socket)
    engine = connect.connect(run_dir=tmp_path)
    try:
        assert (engine.kind, engine.socket, engine.started_service) == ("podman", podman_engine.socket, False)
    finally:
        engine.close()


def test_registry_server_port_in_use(registry_server: server.RegistryServer, tmp_path: Path) -> None:
    clash = server.RegistryServer(registry_server.port, tmp_path / "data", start_timeout=5)
    with pytest.raises(registry_errors.RegistryServerError):
        clash.start()
    assert not clash.running
    assert registry_server.running


@pytest.mark.skipif(shutil.which("dockerd") is None, reason="dockerd (docker.io) not installed")
def test_docker_engine_through_same_layer(
    registry_server: server.RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with private_dockerd(tmp_path_factory.mktemp("dockerd"), bridge=False) as url:
        engine = connect.connect(
            "docker", socket=url.removeprefix("unix://"), run_dir=tmp_path_factory.mktemp("unused")
        )
        try:
            assert engine.kind == "docker"
            assert not engine.started_service
            ref = f"{registry_server.address}/dockyard-test/busybox-docker:1"
            digest = base_image.build_base_image(engine, to=ref)
            assert digest == skopeo_digest(ref)
            with pytest.raises(errors.BuildFailed):
                images.build(
                    engine.client,
                    context=images.tar_files({"Dockerfile": f"FROM {ref}\nRUN exit 4\n"}),
                    tag=f"{registry_server.address}/dockyard-test/broken-docker:1",
                )
            with pytest.raises(errors.PushFailed):
                images.push(engine.client, f"{registry_server.address}/dockyard-test/absent-docker:1")

            api = engine.client.api
            container = api.create_container(
                ref,
                ["sh", "-c", "echo snap > /snap.txt; sleep 60"],
                host_config=api.create_host_config(network_mode="none"),
            )
            api.start(container["Id"])
            try:
                snap = f"{registry_server.address}/dockyard-test/snap-docker:1"
                images.commit(
                    engine.client, container["Id"], snap, changes=["ENV SNAP=1"], message="m", author="a <a@b.c>"
                )
                assert "SNAP=1" in api.inspect_image(snap)["Config"]["Env"]
                images.push(engine.client, snap)
                assert registry_client.manifest_digest(snap) == skopeo_digest(snap)
            finally:
                api.remove_container(container["Id"], force=True)
        finally:
            engine.close()
