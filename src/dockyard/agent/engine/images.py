"""Build, push and commit images through the Docker Engine API (docker-py).

The domain layer over docker-py's low-level ``client.api``: each function
drives one Engine API call, streams its progress lines to ``on_log``, and turns
the engine's failure signals into :mod:`dockyard.agent.engine.errors`.

References (Docker Engine API v1.41, also served by Podman's compat service):
- build:  ``POST /build``  https://docs.docker.com/engine/api/v1.41/#tag/Image/operation/ImageBuild
- push:   ``POST /images/{name}/push``  https://docs.docker.com/engine/api/v1.41/#tag/Image/operation/ImagePush
- commit: ``POST /commit``  https://docs.docker.com/engine/api/v1.41/#tag/Image/operation/ImageCommit
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from dockyard.agent.engine import errors
from dockyard.api import reference as image_reference
from dockyard.registry import digest as registry_digest
from dockyard.registry import errors as registry_errors

__all__ = ["build", "commit", "push", "split_tag", "tag", "tar_directory", "tar_files", "untag"]

LogFn = Callable[[str], None]
_LOG_TAIL = 50
_API_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def _ignore(_line: str) -> None:
    pass


# --- build -----------------------------------------------------------------------


def build(
    client: docker.DockerClient,
    *,
    context: bytes,
    tag: str,
    dockerfile: str = "Dockerfile",
    buildargs: Mapping[str, str] | None = None,
    nocache: bool = False,
    labels: Mapping[str, str] | None = None,
    on_log: LogFn = _ignore,
) -> str:
    """Build an image from a tar build context and tag it.

    Args:
        client: docker-py client of the engine.
        context: the build context as a tar archive (plain or gzip), holding
            the Dockerfile at ``dockerfile`` (a path inside the archive).
        tag: reference to tag the result with, e.g. ``127.0.0.1:5000/app:v1``.
        buildargs: ``ARG`` values.
        nocache: do not reuse cached layers.
        labels: labels to set on the image.
        on_log: called with each line of build output (no trailing newline).

    Returns:
        The image ID, ``sha256:<hex>`` (the engine's local ID, not a registry digest).

    Raises:
        BuildFailed: the stream carried an ``error``/``errorDetail`` line (a
            failing ``RUN``, a bad Dockerfile), or the engine answered the
            request with an error; ``log_tail`` holds the last output lines.
        EngineError: the engine could not be reached.
    """
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL)
    image_id: str | None = None
    encoding = "gzip" if context[:2] == b"\x1f\x8b" else None

    def log(text: str) -> None:
        for line in text.splitlines():
            tail.append(line)
            on_log(line)

    try:
        stream = client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            encoding=encoding,
            tag=tag,
            dockerfile=dockerfile,
            buildargs=dict(buildargs or {}),
            nocache=nocache,
            labels=dict(labels or {}) or None,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                message = _error_message(chunk) or "build failed"
                log(message)
                raise errors.BuildFailed(message, list(tail))
            if "stream" in chunk:
                text = str(chunk["stream"])
                built = _BUILT.search(text)
                if built and image_id is None:
                    image_id = built.group(1)
                log(text.rstrip("\n"))
            elif "status" in chunk:
                log(_status_line(chunk))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except docker.errors.APIError as e:
        message = _api_message(e)
        log(message)
        raise errors.BuildFailed(message, list(tail)) from e
    except _API_ERRORS as e:
        raise errors.EngineError(f"engine connection failed during build of {tag}: {e}") from e

    try:
        # By the id this build produced, not by the tag: a parallel build may have moved the tag.
        inspected = client.api.inspect_image(image_id or tag)
    except docker.errors.ImageNotFound as e:
        raise errors.BuildFailed(f"build of {tag} reported no error but produced no image", list(tail)) from e
    except _API_ERRORS as e:
        raise errors.EngineError(f"cannot inspect built image {tag}: {e}") from e
    return str(inspected.get("Id") or image_id)  # the full sha256:… id


_BUILT = re.compile(r"Successfully built ([0-9a-f]{12,64})")
_PUSHED_DIGEST = re.compile(r"digest: (\S+)")

# --- push ------------------------------------------------------------------------


def push(
    client: docker.DockerClient,
    reference: str,
    *,
    auth: Mapping[str, str] | None = None,
    on_log: LogFn = _ignore,
) -> str | None:
    """Push a local image to its registry; return the digest of the manifest it pushed.

    The digest comes from the push stream itself (Docker's ``aux.Digest``, or the
    ``TAG: digest: sha256:… size: N`` status line both engines print), so it is
    the manifest *this* push wrote even when another push moves the tag right after.

    Args:
        reference: ``[registry/]repository[:tag]`` of an image the engine has;
            tag defaults to ``latest``. Digest references cannot be pushed.
        auth: Docker ``X-Registry-Auth`` fields: ``{"username", "password"}``
            (plus optional ``serveraddress``), or ``{"identitytoken"}``.
            ``None`` lets docker-py use ``~/.docker/config.json``, if any.
        on_log: called with progress lines (``"Pushed 3f2a…"``), not with
            per-byte progress updates.

    Returns:
        ``sha256:…`` (checked: :func:`dockyard.registry.digest.validate`), or None if the
        engine did not report one.

    Raises:
        PushFailed: the engine reported a malformed digest, answered with an error, or — as both engines do
            for registry failures (auth, TLS, unknown image) — with HTTP 200 and
            an ``errorDetail`` line in the progress stream. The message names
            the reference and the engine's reason; it never holds ``auth``
            values.
        EngineError: the engine could not be reached.
    """
    if "@" in reference:
        raise errors.PushFailed(f"cannot push a digest reference ({reference}): push a tag")
    repository, tag = split_tag(reference)
    secrets = _secrets(auth)
    try:
        stream = client.api.push(
            repository,
            tag=tag,
            stream=True,
            decode=True,
            auth_config=dict(auth) if auth else None,
        )
        last_status: tuple[str, str] | None = None
        digest: str | None = None
        for chunk in stream:
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "Digest" in aux:
                digest = _pushed_digest(aux["Digest"], reference)
            found = _PUSHED_DIGEST.search(str(chunk.get("status", "")))
            if found:
                digest = _pushed_digest(found.group(1), reference)
            if "error" in chunk or "errorDetail" in chunk:
                reason = _redact(_error_message(chunk) or "push failed", secrets)
                on_log(reason)
                raise errors.PushFailed(f"push of {reference} failed: {reason}")
            if "status" in chunk:
                key = (str(chunk.get("id", "")), str(chunk["status"]))
                if key != last_status:  # skip repeated "Pushing" progress ticks
                    last_status = key
                    on_log(_redact(_status_line(chunk), secrets))
    except docker.errors.APIError as e:
        raise errors.PushFailed(f"push of {reference} failed: {_redact(_api_message(e), secrets)}") from None
    except _API_ERRORS as e:
        raise errors.EngineError(
            f"engine connection failed during push of {reference}: {_redact(str(e), secrets)}"
        ) from None
    return digest


def _pushed_digest(value: object, reference: str) -> str:
    """The digest an engine reported for a push, if well-formed (OCI image spec digest grammar).

    Raises:
        PushFailed: malformed (the registry the engine pushed to may be hostile).
    """
    try:
        return registry_digest.validate(value, source=f"digest the engine reported for the push of {reference}")
    except registry_errors.InvalidDigest as e:
        raise errors.PushFailed(str(e)) from None


# --- commit ----------------------------------------------------------------------


def commit(
    client: docker.DockerClient,
    container_id: str,
    reference: str,
    *,
    pause: bool = True,
    changes: Iterable[str] | None = None,
    message: str | None = None,
    author: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Create an image from a container's current filesystem and config.

    Args:
        container_id: ID or name of the container.
        reference: ``[registry/]repository[:tag]`` to tag the new image with.
        pause: pause the container while committing (Docker's default).
        changes: Dockerfile instructions applied to the image config, e.g.
            ``['CMD ["httpd","-f"]', "ENV A=1"]`` (CMD, ENTRYPOINT, ENV,
            EXPOSE, LABEL, USER, VOLUME, WORKDIR).
        message: commit message; author: e.g. ``"Jane <jane@example.com>"``.
        labels: image config labels added after ``changes`` (each a ``LABEL "key"="value"`` change, quoted as
            JSON strings so any value survives the Dockerfile parser), e.g. the OCI provenance keys.

    Returns:
        The new image ID, ``sha256:<hex>``.

    Raises:
        CommitFailed: unknown container, bad ``changes``, or any engine refusal.
        EngineError: the engine could not be reached.
    """
    repository, tag = split_tag(reference)
    instructions = list(changes or []) + [f"LABEL {json.dumps(k)}={json.dumps(v)}" for k, v in (labels or {}).items()]
    try:
        result = client.api.commit(
            container_id,
            repository=repository,
            tag=tag,
            message=message,
            author=author,
            pause=pause,
            changes=instructions or None,
        )
    except docker.errors.APIError as e:
        raise errors.CommitFailed(f"commit of container {container_id} as {reference} failed: {_api_message(e)}") from e
    except _API_ERRORS as e:
        raise errors.EngineError(f"engine connection failed during commit of {container_id}: {e}") from e
    image_id = str(result.get("Id") or result.get("ID") or "")
    if not image_id:
        raise errors.CommitFailed(f"commit of container {container_id} returned no image id: {result!r}")
    return image_id if image_id.startswith("sha256:") else "sha256:" + image_id


# --- tag ---------------------------------------------------------------------------


def tag(client: docker.DockerClient, image: str, repository: str, tag: str) -> None:
    """``POST /images/{name}/tag``: tag ``image`` (an id or reference) as ``repository:tag``.

    Raises:
        TagFailed: the engine answered with an error (the message is docker-py's ``APIError`` text).
        EngineError: the engine could not be reached.
    """
    try:
        client.api.tag(image, repository, tag)
    except docker.errors.APIError as e:
        raise errors.TagFailed(str(e)) from e
    except _API_ERRORS as e:
        raise errors.EngineError(str(e)) from e


def untag(client: docker.DockerClient, reference: str) -> None:
    """``DELETE /images/{name}?noprune=1``: remove the tag ``reference``; the image stays under its other
    tags. An engine error (no such tag, image in use) is ignored.

    Raises:
        EngineError: the engine could not be reached.
    """
    try:
        client.api.remove_image(reference, noprune=True)
    except docker.errors.APIError:
        pass
    except _API_ERRORS as e:
        raise errors.EngineError(str(e)) from e


# --- helpers ---------------------------------------------------------------------


def split_tag(reference: str) -> tuple[str, str]:
    """``host:5000/a/b:v1`` → ``("host:5000/a/b", "v1")``; no tag → ``"latest"``
    (:func:`dockyard.api.reference.split_tag`)."""
    return image_reference.split_tag(reference)


def tar_directory(path: Path | str, dockerfile_path: Path | str | None = None) -> bytes:
    """Archive a directory as a build context (uncompressed tar).

    Args:
        path: the context directory; its contents become the archive root.
            Symlinks are stored as links. ``.dockerignore`` is not applied.
        dockerfile_path: a Dockerfile (inside or outside ``path``) to store
            as ``Dockerfile`` at the archive root, replacing any there.

    Returns:
        The tar archive bytes.

    Raises:
        FileNotFoundError / NotADirectoryError: ``path`` is not a directory.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"build context {root} is not a directory")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                arcname = full.relative_to(root).as_posix()
                if dockerfile_path is not None and arcname == "Dockerfile":
                    continue
                tar.add(full, arcname=arcname, recursive=False)
        if dockerfile_path is not None:
            _add_bytes(tar, "Dockerfile", Path(dockerfile_path).read_bytes(), mode=0o644)
    return buf.getvalue()


def tar_files(files: Mapping[str, bytes | str | Path], *, modes: Mapping[str, int] | None = None) -> bytes:
    """Archive in-memory files as a build context (uncompressed tar).

    Args:
        files: archive path → content (bytes, text, or a host file to copy).
        modes: archive path → permission bits (default 0o644, or the host
            file's mode for :class:`Path` values).

    Returns:
        The tar archive bytes, e.g. for ``build(context=...)``.
    """
    modes = modes or {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(files):
            content = files[name]
            if isinstance(content, Path):
                mode = modes.get(name, content.stat().st_mode & 0o7777)
                data = content.read_bytes()
            else:
                mode = modes.get(name, 0o644)
                data = content.encode() if isinstance(content, str) else content
            _add_bytes(tar, name, data, mode=mode)
    return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, *, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _error_message(chunk: Mapping[str, Any]) -> str:
    detail = chunk.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"]).strip()
    return str(chunk.get("error") or "").strip()


def _status_line(chunk: Mapping[str, Any]) -> str:
    parts = [str(chunk.get("id", "")), str(chunk.get("status", "")), str(chunk.get("progress", ""))]
    return " ".join(p for p in parts if p).strip()


def _api_message(e: docker.errors.APIError) -> str:
    explanation = e.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    status = e.status_code if e.response is not None else "?"
    return f"{explanation or e} (HTTP {status})"


def _secrets(auth: Mapping[str, str] | None) -> list[str]:
    if not auth:
        return []
    keys = ("password", "identitytoken", "registrytoken", "auth")
    return [str(auth[k]) for k in keys if auth.get(k) and len(str(auth[k])) >= 3]


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
