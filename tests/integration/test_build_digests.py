"""A Build's digest is always its own, on Podman and on Docker Engine (issue 10 item 7, issue 9 item 7).

Ten builds of ONE output tag, each of its own git branch (its own ``content.txt``), run two at a
time (the agent's default ``--max-builds 2``) in an order that is not their creation order, through
:func:`dockyard.agent.builds.run_build` — what the builder process runs for a build pod; its result's
``image_digest`` is what the build pod reports and the build controller copies to
``status.output.to.imageDigest``. Each digest is pulled back with skopeo: its layers must carry that
build's own content, its config labels (written at publish, with no LABEL step in its history) and
manifest annotations the OCI provenance keys. The tag ends on the last-created Build whatever order
they finish in, and no build's own tag is left.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import pytest

from dockyard.agent import builds
from dockyard.api import labels as well_known
from dockyard.api import objects as api_objects
from dockyard.registry import client as registry
from dockyard.registry import server
from privatedockerd import private_dockerd

N_BUILDS = 10
PARALLEL = 2
GIT_ENV = {
    "GIT_AUTHOR_NAME": "A",
    "GIT_AUTHOR_EMAIL": "a@example",
    "GIT_COMMITTER_NAME": "A",
    "GIT_COMMITTER_EMAIL": "a@example",
}


class ListSink:
    """A LogSink that keeps the lines (the builder ships them to the API server)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def close(self) -> None:
        pass

    def snippet(self, lines: int = 5) -> str:
        return "\n".join(self.lines[-lines:])


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[docker.DockerClient]:
    """A private Docker Engine without a bridge or iptables rules (builds here need no network: COPY only)."""
    with private_dockerd(tmp_path_factory.mktemp("dockerd"), bridge=False) as url:
        client = docker.DockerClient(base_url=url, timeout=300)
        try:
            yield client
        finally:
            client.close()


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env).stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git repository with one branch per build, each with its own ``content.txt``: ``(path, {branch: content})``."""
    repo = tmp_path_factory.mktemp("src") / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "Dockerfile").write_text("ARG BASE=127.0.0.1:1/none:latest\nFROM ${BASE}\nCOPY content.txt /content.txt\n")
    (repo / "content.txt").write_text("main\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "main")
    contents = {}
    for i in range(N_BUILDS):
        branch = f"b{i}"
        git(repo, "checkout", "-q", "-b", branch, "main")
        contents[branch] = f"build {i} {uuid.uuid4()}\n"
        (repo / "content.txt").write_text(contents[branch])
        git(repo, "commit", "-q", "-am", branch)
    git(repo, "checkout", "-q", "main")
    return repo, contents


def make_build(i: int, *, repo: Path, base: str, output: str, created: datetime) -> api_objects.Build:
    return api_objects.Build.model_validate(
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Build",
            "metadata": {
                "name": f"app-{i + 1}",
                "namespace": "t",
                "uid": str(uuid.uuid4()),
                "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "labels": {well_known.BUILD_NUMBER: str(i + 1), well_known.BUILD_CONFIG: "app"},
            },
            "spec": {
                "source": {"type": "Git", "git": {"uri": f"file://{repo}", "ref": f"b{i}"}},
                "strategy": {"type": "Docker", "dockerStrategy": {"buildArgs": [{"name": "BASE", "value": base}]}},
                "output": {"to": {"kind": "DockerImage", "name": output}},
            },
        }
    )


def pulled_files(ref: str, dest: Path) -> dict[str, bytes]:
    """Every regular file of every layer of ``ref`` as skopeo pulls it (``skopeo copy docker://… dir:``)."""
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    manifest = json.loads((dest / "manifest.json").read_text())
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        blob = (dest / layer["digest"].split(":", 1)[1]).read_bytes()
        data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    files[member.name.lstrip("./")] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return files


def skopeo_inspect(ref: str, *, raw: bool = False, config: bool = False) -> Any:
    flags = [*(["--raw"] if raw else []), *(["--config"] if config else [])]
    argv = ["skopeo", "inspect", "--tls-verify=false", *flags, f"docker://{ref}"]
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout)


def run_parallel_builds(
    engine: docker.DockerClient,
    name: str,
    registry_server: server.RegistryServer,
    busybox_image: tuple[str, str],
    source: tuple[Path, dict[str, str]],
    tmp_path: Path,
) -> None:
    repo, contents = source
    base_ref, base_digest = busybox_image
    output = f"{registry_server.address}/digests-{name}:latest"
    created = datetime.now(UTC).replace(microsecond=0)
    # the same creationTimestamp for all (one second): the build number orders them
    all_builds = [make_build(i, repo=repo, base=base_ref, output=output, created=created) for i in range(N_BUILDS)]
    order = list(range(N_BUILDS))
    random.Random(7).shuffle(order)
    order.remove(N_BUILDS - 1)
    order.insert(0, N_BUILDS - 1)  # the last-created Build runs first: every older one finishes after it

    def run(i: int) -> Any:
        sink = ListSink()
        result = builds.run_build(engine, all_builds[i], sink)  # type: ignore[arg-type]
        assert result.succeeded, f"{all_builds[i].metadata.name}: {result.reason}: {result.message}\n" + "\n".join(
            sink.lines[-20:]
        )
        return result

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = dict(zip(order, pool.map(run, order), strict=True))

    digests = [results[i].image_digest for i in range(N_BUILDS)]
    assert len(set(digests)) == N_BUILDS, f"two Builds report one digest: {digests}"
    repository = output.rsplit(":", 1)[0]
    for i in range(N_BUILDS):
        ref = f"{repository}@{digests[i]}"
        files = pulled_files(ref, tmp_path / f"pull-{i}")
        assert files.get("content.txt") == contents[f"b{i}"].encode(), f"app-{i + 1}: {ref} is not its own image"
        commit = git(repo, "rev-parse", f"b{i}").strip()
        want = {
            well_known.OCI_SOURCE: f"file://{repo}",
            well_known.OCI_REVISION: commit,
            well_known.OCI_BASE_NAME: base_ref,
            well_known.OCI_BASE_DIGEST: base_digest,
        }
        labels = skopeo_inspect(ref)["Labels"]
        annotations = skopeo_inspect(ref, raw=True)["annotations"]
        for key, value in want.items():
            assert labels.get(key) == value, (key, labels)
            assert annotations.get(key) == value, (key, annotations)
        assert labels[well_known.OCI_CREATED] == annotations[well_known.OCI_CREATED]
        assert labels[well_known.BUILD_ORDER] == annotations[well_known.BUILD_ORDER]
        # written into the config at publish time, not by a LABEL step of the build (one commit less)
        history = [h.get("created_by", "") for h in skopeo_inspect(ref, config=True).get("history", [])]
        assert not any(well_known.BUILD_ORDER in step for step in history), history
        datetime.strptime(labels[well_known.OCI_CREATED], "%Y-%m-%dT%H:%M:%SZ")
    # last writer by creation order: the tag names the last-created Build although it finished first
    assert registry.manifest_digest(output) == digests[N_BUILDS - 1]
    tags = registry.list_tags(output)
    assert tags == ["latest"], f"builds' own tags left in the registry: {tags}"


def test_parallel_builds_of_one_tag_report_their_own_digests_on_podman(
    podman_engine: Any,
    registry_server: server.RegistryServer,
    busybox_image: tuple[str, str],
    source: tuple[Path, dict[str, str]],
    tmp_path: Path,
) -> None:
    run_parallel_builds(podman_engine.client, "podman", registry_server, busybox_image, source, tmp_path)


def test_parallel_builds_of_one_tag_report_their_own_digests_on_docker_engine(
    dockerd: docker.DockerClient,
    registry_server: server.RegistryServer,
    busybox_image: tuple[str, str],
    source: tuple[Path, dict[str, str]],
    tmp_path: Path,
) -> None:
    run_parallel_builds(dockerd, "docker", registry_server, busybox_image, source, tmp_path)
