"""A hostile source cannot reach the build host's files (README: hostile until checked).

A Git repository may hold any symbolic link, absolute ones included (git stores the link, ``git clone``
makes it). The builder runs as the agent's user (root under ``dockyard up``): a link it followed would let
whoever may create a Build read the host's files into an image (``contextDir`` through a link to ``/``) or
overwrite them (the ``dockerStrategy.from`` rewrite of a Dockerfile that is a link). Each test builds with
:func:`dockyard.agent.builds.run_build`, what the builder process runs, against the real Podman service,
and checks the build fails with ``FetchSourceFailed`` naming the path, and that the host file is untouched.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dockyard.agent import builds
from dockyard.api import objects as api_objects
from integration.test_build_digests import GIT_ENV, ListSink

SECRET = "host secret " + uuid.uuid4().hex


def git_repo(path: Path, files: dict[str, str], links: dict[str, str]) -> Path:
    """A committed repository with ``files`` (path → text) and symbolic ``links`` (path → target)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for name, target in links.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path / name)
    env = dict(os.environ, **GIT_ENV)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "hostile"], check=True, env=env)
    return path


def build_of(repo: Path, *, context_dir: str | None = None, strategy: dict[str, Any] | None = None) -> Any:
    source: dict[str, Any] = {"type": "Git", "git": {"uri": f"file://{repo}"}}
    if context_dir is not None:
        source["contextDir"] = context_dir
    return api_objects.Build.model_validate(
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Build",
            "metadata": {
                "name": "hostile-1",
                "namespace": "t",
                "uid": str(uuid.uuid4()),
                "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": {
                "source": source,
                "strategy": {"type": "Docker", "dockerStrategy": strategy or {}},
                "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:1/hostile:latest"}},
            },
        }
    )


def run(podman_engine: Any, build: Any, tmp_path: Path) -> tuple[Any, ListSink]:
    sink = ListSink()
    result = builds.run_build(podman_engine.client, build, sink, builds.BuildInputs(scratch=tmp_path))  # type: ignore[arg-type]
    return result, sink


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    """A file outside every source: what the attacks aim at."""
    victim = tmp_path / "host" / "secret.txt"
    victim.parent.mkdir()
    victim.write_text(SECRET)
    return victim


def test_a_context_dir_that_is_a_link_out_of_the_source_is_refused(
    podman_engine: Any, tmp_path: Path, host_file: Path
) -> None:
    """``contextDir: ctx`` where ``ctx`` links to a host directory would send that directory to the engine as
    the build context (``COPY . /``: the host's files in the pushed image)."""
    repo = git_repo(tmp_path / "repo", {"Dockerfile": "FROM scratch\nCOPY . /\n"}, {"ctx": str(host_file.parent)})
    (host_file.parent / "Dockerfile").write_text("FROM scratch\nCOPY secret.txt /\n")
    result, sink = run(podman_engine, build_of(repo, context_dir="ctx"), tmp_path)
    assert not result.succeeded and result.reason == "FetchSourceFailed", (result, sink.lines)
    assert "contextDir" in result.message and "ctx" in result.message, result.message
    assert not any("Build:" in line for line in sink.lines), sink.lines  # the engine was never asked


def test_a_dockerfile_that_links_out_of_the_context_is_neither_read_nor_rewritten(
    podman_engine: Any, tmp_path: Path, host_file: Path
) -> None:
    """``Dockerfile`` → a host file, with ``dockerStrategy.from`` set: the rewrite of the last ``FROM`` would write
    through the link (the host file overwritten), and the provenance labels would quote its text."""
    host_file.write_text(f"FROM busybox\n# {SECRET}\n")
    before = host_file.read_text()
    repo = git_repo(tmp_path / "repo", {"README": "x\n"}, {"Dockerfile": str(host_file)})
    build = build_of(repo, strategy={"from": {"kind": "DockerImage", "name": "127.0.0.1:1/evil:latest"}})
    result, sink = run(podman_engine, build, tmp_path)
    assert not result.succeeded and result.reason == "FetchSourceFailed", (result, sink.lines)
    assert "Dockerfile" in result.message, result.message
    assert host_file.read_text() == before
    assert SECRET not in "\n".join(sink.lines)


def test_a_dockerfile_path_through_a_linked_directory_is_refused(
    podman_engine: Any, tmp_path: Path, host_file: Path
) -> None:
    """``dockerfilePath: d/secret.txt`` where ``d`` links to a host directory."""
    repo = git_repo(tmp_path / "repo", {"Dockerfile": "FROM scratch\n"}, {"d": str(host_file.parent)})
    build = build_of(
        repo,
        strategy={"dockerfilePath": "d/secret.txt", "from": {"kind": "DockerImage", "name": "127.0.0.1:1/e:1"}},
    )
    result, sink = run(podman_engine, build, tmp_path)
    assert not result.succeeded and result.reason == "FetchSourceFailed", (result, sink.lines)
    assert "d/secret.txt" in result.message, result.message
    assert host_file.read_text() == SECRET


def test_links_that_stay_inside_the_source_still_build(podman_engine: Any, tmp_path: Path) -> None:
    """The check is about where a path resolves, not about links: ``contextDir`` and the Dockerfile may be links
    that stay inside the source (the build then gets past the source checks to the engine)."""
    repo = git_repo(
        tmp_path / "repo",
        {"app/Dockerfile.real": "FROM 127.0.0.1:1/none:latest\n"},
        {"ctx": "app", "app/Dockerfile": "Dockerfile.real"},
    )
    result, sink = run(podman_engine, build_of(repo, context_dir="ctx"), tmp_path)
    assert any(line.startswith("--> Build:") for line in sink.lines), sink.lines
    assert result.reason != "FetchSourceFailed", (result, sink.lines)


def test_dockerfile_path_names_the_dockerfile_inside_the_context(podman_engine: Any, tmp_path: Path) -> None:
    """README (Builds): ``dockerStrategy.dockerfilePath`` picks the Dockerfile; the engine builds that one (its
    steps are in the log) and the build reaches the push (to a registry that is not there)."""
    repo = git_repo(
        tmp_path / "repo",
        {
            "Dockerfile": "FROM scratch\nCOPY root.txt /\n",
            "root.txt": "root\n",
            "web.txt": "web\n",
            "docker/Dockerfile.web": "FROM scratch\nCOPY web.txt /from-web.txt\n",
        },
        {},
    )
    result, sink = run(podman_engine, build_of(repo, strategy={"dockerfilePath": "docker/Dockerfile.web"}), tmp_path)
    log = "\n".join(sink.lines)
    assert "COPY web.txt /from-web.txt" in log and "COPY root.txt" not in log, log
    assert result.reason == "PushImageToRegistryFailed", (result, log)
