"""Run one Build on the engine: fetch the source, build with the engine's build API, push.

The node agent's version of OpenShift's ``docker-build`` builder image
(``openshift/builder``): the same three stages (``FetchInputs``, ``Build``,
``PushImage``) and the same failure reasons (``FetchSourceFailed``,
``DockerBuildFailed``, ``PushImageToRegistryFailed``), but with the engine's
own build API instead of a privileged Docker-in-Docker pod. The digest
reported is the one the registry serves for the pushed tag.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.engine import images
from dockyard.agent.logsink import LogSink
from dockyard.api.buildpod import BuildResult
from dockyard.registry import client as registry
from dockyard.registry import errors as registry_errors

log = logging.getLogger(__name__)

GIT_TIMEOUT = 300  # seconds for one clone


class StageFailed(Exception):
    """A build stage failed; ``reason`` is OpenShift's ``StatusReason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def run_build(client: docker.DockerClient, build: dict[str, Any], sink: LogSink) -> BuildResult:
    """Run ``build`` (``{"metadata", "spec"}`` from the build pod) to completion.

    Returns:
        The result to report in the build pod's termination message. Never raises
        for a failure of the build itself; those become ``succeeded=False``.
    """
    spec = build["spec"]
    to = spec["output"]["to"]["name"]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dockyard-build-") as workdir:
        try:
            sink.write(f"--> FetchInputs: {_describe_source(spec['source'])}")
            context_dir = fetch_source(spec["source"], Path(workdir), sink)
            dockerfile = (spec.get("strategy") or {}).get("dockerStrategy", {}).get("dockerfilePath") or "Dockerfile"
            if not (context_dir / dockerfile).is_file():
                raise StageFailed("FetchSourceFailed", f"no {dockerfile} in the source"
                                  + (f" (contextDir {spec['source'].get('contextDir')})"
                                     if spec["source"].get("contextDir") else ""))
            strategy = (spec.get("strategy") or {}).get("dockerStrategy") or {}
            sink.write(f"--> Build: {to}")
            try:
                images.build(client, context=tar_context(context_dir), tag=to, dockerfile=dockerfile,
                             buildargs={a["name"]: a.get("value", "") for a in strategy.get("buildArgs") or []},
                             nocache=bool(strategy.get("noCache")), on_log=sink.write)
            except engine_errors.BuildFailed as err:
                raise StageFailed("DockerBuildFailed", f"Docker build strategy has failed: {err}") from err
            sink.write(f"--> PushImage: {to}")
            try:
                images.push(client, to, auth=None, on_log=sink.write)
                digest = registry.manifest_digest(to)
            except (engine_errors.PushFailed, registry_errors.RegistryError) as err:
                raise StageFailed("PushImageToRegistryFailed", f"Failed to push the image: {err}") from err
        except StageFailed as err:
            sink.write(f"error: {err.message}")
            sink.close()
            return BuildResult(succeeded=False, reason=err.reason, message=err.message, log_snippet=sink.snippet())
        except engine_errors.EngineError as err:
            sink.write(f"error: {err}")
            sink.close()
            return BuildResult(succeeded=False, reason="GenericBuildFailed", message=str(err),
                               log_snippet=sink.snippet())
    sink.write(f"Successfully pushed {to}@{digest} in {time.monotonic() - started:.1f}s")
    sink.close()
    return BuildResult(succeeded=True, image_digest=digest)


def _describe_source(source: dict[str, Any]) -> str:
    git = source.get("git") or {}
    return f"git {git.get('uri')} {git.get('ref') or ''}".strip() if git else source.get("type", "")


def fetch_source(source: dict[str, Any], workdir: Path, sink: LogSink) -> Path:
    """Materialise the source into ``workdir/src``; return the context directory.

    Git URIs may be local paths, ``file://`` or ``http(s)://`` (``git clone``; then ``git checkout REF``).
    Raises:
        StageFailed: ``FetchSourceFailed`` with git's own message.
    """
    dest = workdir / "src"
    kind = source.get("type") or "Git"
    if kind == "Dockerfile":
        dest.mkdir()
        (dest / "Dockerfile").write_text(source.get("dockerfile") or "")
    elif kind == "Git":
        git = source.get("git") or {}
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")
        _git(["git", "clone", "--quiet", "--no-hardlinks", git["uri"], str(dest)], env, sink)
        if git.get("ref"):
            _git(["git", "-C", str(dest), "checkout", "--quiet", git["ref"]], env, sink)
        commit = subprocess.run(["git", "-C", str(dest), "log", "-1", "--format=%H %s"], capture_output=True,
                                text=True, env=env, timeout=30).stdout.strip()
        sink.write(f"Commit: {commit}")
    else:
        raise StageFailed("FetchSourceFailed", f"source type {kind!r} is not supported by this node agent yet")
    context = dest / source["contextDir"] if source.get("contextDir") else dest
    if not context.is_dir():
        raise StageFailed("FetchSourceFailed", f"contextDir {source.get('contextDir')!r} is not a directory "
                          "in the source")
    return context


def _git(argv: list[str], env: dict[str, str], sink: LogSink) -> None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise StageFailed("FetchSourceFailed", f"{' '.join(argv[:2])} timed out after {GIT_TIMEOUT}s") from err
    for line in (out.stdout + out.stderr).splitlines():
        sink.write(line)
    if out.returncode != 0:
        message = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        raise StageFailed("FetchSourceFailed", f"Failed to fetch the input source: {message}")


def tar_context(directory: Path) -> bytes:
    """The build context as an uncompressed tar (``.git`` left out), as ``POST /build`` expects it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in sorted(directory.iterdir()):
            if entry.name == ".git":
                continue
            tar.add(entry, arcname=entry.name)
    return buf.getvalue()
