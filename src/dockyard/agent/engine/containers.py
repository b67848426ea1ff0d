"""Containers and the images they run, through the Docker Engine API (docker-py).

The domain layer the pod runtime (:mod:`dockyard.agent.pods`) reaches the engine through, as the kubelet
reaches its runtime only through the CRI: list, inspect, create, start, kill, stop and remove containers;
inspect and pull images; build the pause image. Every docker-py and ``requests`` error is translated here
into :mod:`dockyard.agent.engine.errors` (``raise ... from e``):

- the engine answered 404 → :class:`~.errors.NotFound`;
- the engine answered another error → :class:`~.errors.RequestFailed` (``status_code`` set);
- the engine could not be reached, or docker-py refused the arguments → :class:`~.errors.EngineError`.

Messages are the engine's own explanation (the ``message`` of its JSON error body) when it gave one.

References (Docker Engine API v1.41, also served by Podman's compat service):
https://docs.docker.com/engine/api/v1.41/#tag/Container and ``#tag/Image``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import docker
import docker.errors
import docker.utils
import requests

from dockyard.agent.engine import errors, images

__all__ = ["Containers", "ExecResult", "LogStream", "error_text"]

EXEC_OUTPUT_LIMIT = 10 * 1024
"""Bytes of an exec's output kept (the kubelet's exec prober reads at most 10 KiB)."""


class ExecResult:
    """How a command run by :meth:`Containers.exec_run` ended.

    Attributes:
        exit_code: the command's exit code; ``None`` when it timed out.
        output: stdout and stderr interleaved, at most :data:`EXEC_OUTPUT_LIMIT` bytes.
        timed_out: the deadline passed before the command ended (it may still run in the container).
    """

    __slots__ = ("exit_code", "output", "timed_out")

    def __init__(self, exit_code: int | None, output: bytes, timed_out: bool) -> None:
        self.exit_code, self.output, self.timed_out = exit_code, output, timed_out


class LogStream:
    """A container's output being read (:meth:`Containers.logs`): iterate for byte blocks; :meth:`close`
    (from any thread) ends it, also while a read waits for the container to write."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream  # docker-py's CancellableStream: close() shuts the response's socket

    def __iter__(self) -> Iterator[bytes]:
        with _translated():
            yield from self._stream

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed, or the engine went away: nothing left to end
            self._stream.close()


def error_text(e: BaseException) -> str:
    """The engine's explanation of a docker-py error (``APIError.explanation``), else ``str(e)``."""
    if isinstance(e, docker.errors.APIError):
        return str(e.explanation or e)
    return str(e)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except docker.errors.NotFound as e:
        raise errors.NotFound(error_text(e), 404) from e
    except docker.errors.APIError as e:
        raise errors.RequestFailed(error_text(e), e.status_code) from e
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise errors.EngineError(error_text(e)) from e


def _read_frames(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """Read an attached, non-TTY stream until EOF or ``deadline`` (``time.monotonic()``): frames of an 8-byte
    header (stream type, 3 zero bytes, big-endian length) and the payload (Engine API "Attach to a
    container", stream format). Returns ``(stdout and stderr, at most EXEC_OUTPUT_LIMIT bytes; timed out)``."""
    buf = b""
    out = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(out), True
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return bytes(out), True
        if not chunk:
            return bytes(out), False
        buf += chunk
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            if len(out) < EXEC_OUTPUT_LIMIT:
                out += buf[8 : 8 + size][: EXEC_OUTPUT_LIMIT - len(out)]
            buf = buf[8 + size :]


class Containers:
    """The container operations of one engine.

    Args:
        client: a ``docker.DockerClient`` (see :mod:`.connect`); its low-level ``client.api`` is used.

    Every method raises :class:`~.errors.EngineError` (or a subclass, see the module docstring) when the
    engine fails; nothing else from docker-py or ``requests`` escapes.
    """

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._api = client.api
        self._refusal: str | None = None

    def refuse_new(self, reason: str) -> None:
        """From now on :meth:`create` and :meth:`start` raise :class:`~.errors.EngineError` with ``reason``
        instead of asking the engine (a stopping node agent: a pod sync still under way, e.g. after a pull,
        must not start a container after the agent has stopped the others)."""
        self._refusal = reason

    def _check_new(self) -> None:
        if self._refusal is not None:
            raise errors.EngineError(self._refusal)

    # --- containers -----------------------------------------------------------------

    def list_labelled(self, labels: Sequence[str]) -> list[dict[str, Any]]:
        """``GET /containers/json?all=1`` filtered by ``labels`` (``key`` or ``key=value``, all must match).

        Returns:
            The engine's summaries: ``Id``, ``Names``, ``State`` (``running``, ``exited``, …), ``Labels``.
        """
        with _translated():
            found: list[dict[str, Any]] = self._api.containers(all=True, filters={"label": list(labels)})
        return found

    def inspect(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``: the container's ``State``, ``Config``, ``HostConfig``, ``Image``.

        Raises:
            NotFound: no such container.
        """
        with _translated():
            attrs: dict[str, Any] = self._api.inspect_container(container_id)
        return attrs

    def create(self, *, name: str, labels: Mapping[str, str], host_config: Mapping[str, Any], **config: Any) -> str:
        """``POST /containers/create``; return the new container's id.

        Args:
            name: the container's name (a clash with an existing container is a 409).
            labels: the container's labels.
            host_config: keyword arguments of docker-py ``APIClient.create_host_config``
                (``port_bindings``, ``network_mode``, ``binds``, ``cap_add``, …); ``uts_mode`` may also be
                ``container:<id>`` (another container's UTS namespace: its hostname), which both engines
                take in ``HostConfig.UTSMode`` and docker-py's check (``host`` only) would refuse.
            config: keyword arguments of docker-py ``APIClient.create_container`` (``image``, ``command``,
                ``environment``, ``user``, ``ports``, ``hostname``, …).
        """
        self._check_new()
        host_args = dict(host_config)
        uts = host_args.get("uts_mode")
        if isinstance(uts, str) and uts.startswith("container:"):
            del host_args["uts_mode"]
        else:
            uts = None
        with _translated():
            host = self._api.create_host_config(**host_args)
            if uts is not None:
                host["UTSMode"] = uts
            created = self._api.create_container(name=name, labels=dict(labels), host_config=host, **config)
        return str(created["Id"])

    def start(self, container_id: str) -> None:
        """``POST /containers/{id}/start``.

        Raises:
            EngineError: :meth:`refuse_new` was called.
        """
        self._check_new()
        with _translated():
            self._api.start(container_id)

    def kill(self, container_id: str, signal: str) -> None:
        """``POST /containers/{id}/kill`` with ``signal`` (e.g. ``"SIGTERM"``); a stopped container gives a
        409 or 500 (:class:`~.errors.RequestFailed`)."""
        with _translated():
            self._api.kill(container_id, signal=signal)

    def stop(self, container_id: str, grace_seconds: int) -> None:
        """``POST /containers/{id}/stop``: SIGTERM, SIGKILL after ``grace_seconds``; blocks until stopped."""
        with _translated():
            self._api.stop(container_id, timeout=grace_seconds)

    def remove(self, container: str) -> None:
        """``DELETE /containers/{id}?force=1&v=1`` by id or name (kills it first if running).

        Raises:
            NotFound: no such container.
        """
        with _translated():
            self._api.remove_container(container, force=True, v=True)

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> LogStream:
        """``GET /containers/{id}/logs?stdout=1&stderr=1``: the container's output, stdout and stderr
        interleaved as the engine recorded them (demultiplexed), as a stream of byte blocks.

        Args:
            follow: keep streaming until the container stops (or :meth:`LogStream.close`).
            tail: only the last ``tail`` lines (``None``: all).
            timestamps: prefix each line with its RFC 3339 time (nanoseconds), as the kubelet's ``timestamps``.
            since: only lines written at or after this time (seconds since the epoch).

        Raises:
            NotFound: no such container.
            EngineError: the engine could not be reached or refused (also while iterating).
        """
        with _translated():
            stream = self._api.logs(
                container_id,
                stdout=True,
                stderr=True,
                stream=True,
                follow=follow,
                timestamps=timestamps,
                tail="all" if tail is None else max(0, tail),
                since=since if since is not None and since > 0 else None,
            )
        return LogStream(stream)

    def exec_run(self, container_id: str, command: Sequence[str], *, timeout: float) -> ExecResult:
        """``POST /containers/{id}/exec`` then ``POST /exec/{id}/start`` (attached, no TTY) and ``GET
        /exec/{id}/json``: run ``command`` in the running container, wait at most ``timeout`` seconds.

        The output stream is read from the engine's hijacked connection with a socket deadline, so a
        command that hangs never holds the caller past ``timeout``; the engines cannot stop an exec, so a
        timed-out command keeps running in the container until it ends by itself (as with dockershim).

        Raises:
            NotFound: no such container.
            RequestFailed: the container is not running, or the engine refused the exec.
            EngineError: the engine could not be reached.
        """
        deadline = time.monotonic() + timeout
        with _translated():
            created = self._api.exec_create(container_id, list(command), stdout=True, stderr=True, tty=False)
            exec_id = created["Id"]
            stream = self._api.exec_start(exec_id, socket=True)
        raw = getattr(stream, "_sock", stream)  # the hijacked connection's socket
        try:
            output, timed_out = _read_frames(raw, deadline)
        except OSError as e:
            raise errors.EngineError(f"exec output: {e}") from e
        finally:
            stream.close()
        if timed_out:
            return ExecResult(None, output, True)
        with _translated():
            inspected = self._api.exec_inspect(exec_id)
        # The stream ends when the command does; the engine may take a moment to record the exit code.
        while inspected.get("Running") and time.monotonic() < deadline:
            time.sleep(0.01)
            with _translated():
                inspected = self._api.exec_inspect(exec_id)
        if inspected.get("Running"):
            return ExecResult(None, output, True)
        return ExecResult(int(inspected.get("ExitCode") or 0), output, False)

    def is_podman(self) -> bool:
        """True when ``GET /version`` lists a Podman component; False for Docker Engine or when unknown."""
        try:
            with _translated():
                components = self._client.version().get("Components") or []
        except errors.RequestFailed:
            components = []
        return any("podman" in str(c.get("Name", "")).lower() for c in components)

    # --- images ---------------------------------------------------------------------

    def inspect_image(self, reference: str) -> dict[str, Any]:
        """``GET /images/{name}/json``: ``Id``, ``RepoDigests``, ``Config`` (``User``, …).

        Raises:
            NotFound: the engine has no such image.
        """
        with _translated():
            attrs: dict[str, Any] = self._api.inspect_image(reference)
        return attrs

    def image_present(self, reference: str) -> bool:
        """True when the engine has the image ``reference``.

        Raises:
            EngineError: the engine failed otherwise than with a 404.
        """
        try:
            self.inspect_image(reference)
        except errors.NotFound:
            return False
        except errors.RequestFailed as e:
            if e.status_code == 404:
                return False
            raise
        return True

    def pull(self, reference: str, *, auth: Mapping[str, str] | None, timeout: float) -> None:
        """``POST /images/create``: pull ``reference`` (tag ``latest`` when it has none) within ``timeout``
        seconds.

        A progress line carrying ``error`` fails the pull: engines may answer 200 and report the failure in
        the stream. The pull succeeded only if the engine then has the image.

        Raises:
            PullFailed: the engine refused, reported an error, had no image afterwards, or the deadline
                passed (checked between progress lines). The message is the engine's reason.
        """
        repo, tag = docker.utils.parse_repository_tag(reference)
        deadline = time.monotonic() + timeout
        try:
            with _translated():
                stream = self._api.pull(
                    repo, tag=tag or "latest", stream=True, decode=True, auth_config=dict(auth) if auth else None
                )
                try:
                    for line in stream:
                        if isinstance(line, dict) and (line.get("error") or line.get("errorDetail")):
                            detail = line.get("errorDetail") or {}
                            raise errors.PullFailed(str(line.get("error") or detail.get("message") or detail))
                        if time.monotonic() > deadline:
                            raise errors.PullFailed(f"timed out after {timeout:g}s")
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
        except errors.PullFailed:
            raise
        except errors.EngineError as e:
            raise errors.PullFailed(str(e)) from e
        if not self.image_present(reference):
            raise errors.PullFailed("the engine reported success but has no such image")

    def build(self, *, context: bytes, tag: str) -> str:
        """Build the image of a tar build context (``Dockerfile`` at its root) and tag it ``tag``; see
        :func:`.images.build` (its errors: ``BuildFailed``, ``EngineError``)."""
        return images.build(self._client, context=context, tag=tag)
