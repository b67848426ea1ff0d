"""Find or start a container engine and hand back a docker-py client for it.

Both engines speak the Docker Engine API
(https://docs.docker.com/engine/api/v1.41/): Docker Engine natively, Podman
through ``podman system service`` (its Docker-compatible REST service). So one
``docker.DockerClient`` (docker-py, the raw API layer) serves both; this module
only decides which socket to use and, for Podman, may run the service itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import docker
import docker.errors
import requests.exceptions

from dockyard import children
from dockyard.agent.engine import errors

__all__ = ["DOCKER_SOCKET", "PODMAN_SOCKETS", "Client", "Engine", "connect", "open_client"]

DOCKER_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKETS = ("/run/podman/podman.sock",)  # plus $XDG_RUNTIME_DIR/podman/podman.sock

#: Longest path a unix socket may have on Linux (sun_path is 108 bytes).
_MAX_SOCKET_PATH = 107
#: Seconds a docker-py request may wait for the next bytes. Builds and pushes
#: stream, so this bounds silence, not their total duration.
API_TIMEOUT = 300.0

#: The raw Engine API client the engine layer's functions take (docker-py's); callers outside
#: ``agent/engine`` name its type through this alias and never import docker-py themselves.
Client: TypeAlias = docker.DockerClient


@dataclass(frozen=True)
class Engine:
    """A connected container engine.

    Attributes:
        client: docker-py client (``client.api`` is the low-level API).
        kind: ``"podman"`` or ``"docker"``, from the engine's ``/version``.
        socket: the endpoint as docker-py takes it, e.g. ``unix:///run/x.sock``.
        process: the ``podman system service`` we started, or ``None`` when
            the engine was already running (then :meth:`close` leaves it alone).
    """

    client: docker.DockerClient
    kind: str
    socket: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def started_service(self) -> bool:
        """True when :meth:`close` will stop a service this process started."""
        return self.process is not None

    def close(self) -> None:
        """Close the client and stop the service we started, if any.

        The service gets SIGTERM, up to 5 s to exit, then SIGKILL. Safe to
        call twice.
        """
        try:
            self.client.close()
        finally:
            if self.process is not None:
                _stop(self.process, grace=5.0)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(
    kind: str = "auto",
    socket: str | None = None,
    *,
    run_dir: Path,
    start_timeout: float = 30.0,
    die_with_parent: bool = True,
) -> Engine:
    """Connect to a Docker Engine API endpoint, starting Podman's if needed.

    Args:
        kind: ``"auto"``, ``"podman"`` or ``"docker"``.
            ``auto``: ``DOCKER_HOST`` if set; else the first socket that
            answers ``GET /_ping`` among ``/var/run/docker.sock``,
            ``/run/podman/podman.sock``, ``$XDG_RUNTIME_DIR/podman/podman.sock``;
            else, if ``podman`` is installed, start our own service as for
            ``"podman"``.
            ``podman`` without ``socket``: run ``podman system service --time=0
            unix://{run_dir}/podman.sock`` as a child (reusing one that already
            answers there). ``docker`` without ``socket``: ``/var/run/docker.sock``.
        socket: an explicit endpoint: a socket path, ``unix://PATH`` or
            ``tcp://HOST:PORT``. Overrides discovery.
        die_with_parent: a Podman service started here gets SIGTERM from the kernel when this
            process dies (``PR_SET_PDEATHSIG``); ``dockyard up`` turns it off so that builds under way
            survive its crash, and adopts the running service when it restarts.
        run_dir: directory for our Podman socket and its log
            (``podman-service.log``); created if missing.
        start_timeout: seconds to wait for a started service to answer ``ping``.

    Returns:
        An :class:`Engine`; call :meth:`Engine.close` when done.

    Raises:
        EngineError: unknown ``kind``, no engine found, the endpoint does not
            answer, or the Podman service did not come up in time.
    """
    if kind not in ("auto", "podman", "docker"):
        raise errors.EngineError(f"unknown engine kind {kind!r}: use auto, podman or docker")

    if socket:
        return _attach(_endpoint(socket), expect=None if kind == "auto" else kind)

    if kind == "docker":  # as the docker CLI: $DOCKER_HOST, else the default socket
        return _attach(os.environ.get("DOCKER_HOST") or _endpoint(DOCKER_SOCKET), expect="docker")

    if kind == "auto":
        if os.environ.get("DOCKER_HOST"):
            return _attach(os.environ["DOCKER_HOST"], expect=None, from_env=True)
        for path in _candidate_sockets():
            if Path(path).is_socket():
                endpoint = _endpoint(path)
                if _answers(endpoint):
                    return _attach(endpoint, expect=None)
        if shutil.which("podman") is None:
            raise errors.EngineError(
                "no container engine found: install podman (or docker.io), or pass --engine-socket / set DOCKER_HOST"
            )

    return _start_podman(Path(run_dir), timeout=start_timeout, die_with_parent=die_with_parent)


def _candidate_sockets() -> list[str]:
    paths = [DOCKER_SOCKET, *PODMAN_SOCKETS]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        paths.append(os.path.join(xdg, "podman", "podman.sock"))
    return paths


def _endpoint(socket: str) -> str:
    """``/x.sock`` → ``unix:///x.sock``; URLs pass through unchanged."""
    if "://" in socket:
        return socket
    return "unix://" + os.path.abspath(socket)


def open_client(endpoint: str, *, timeout: float = API_TIMEOUT, api_version: str | None = None) -> Client:
    """A client of the engine at ``endpoint`` (``unix:///PATH`` or ``tcp://HOST:PORT``), without checking
    that it answers; ``timeout`` bounds each request's silence, in seconds. Close it when done.

    ``api_version`` (``"1.41"``: the Docker Engine API version another client of the same engine negotiated)
    is used as given; without it docker-py asks the engine (``GET /version``: about 0.7 s on Podman 4.3,
    which runs its OCI runtime and conmon to answer).
    """
    client: Client = docker.DockerClient(base_url=endpoint, timeout=int(timeout), version=api_version)
    return client


def api_version(client: Any) -> str | None:
    """The Docker Engine API version ``client`` (a ``docker.DockerClient``) speaks, or None if unknown."""
    version = getattr(getattr(client, "api", None), "api_version", None)
    return version if isinstance(version, str) else None


def _client(endpoint: str, *, from_env: bool = False) -> docker.DockerClient:
    if from_env:
        return docker.from_env(timeout=int(API_TIMEOUT))
    return docker.DockerClient(base_url=endpoint, timeout=int(API_TIMEOUT))


def _answers(endpoint: str, *, timeout: float = 3.0) -> bool:
    """True if ``GET /_ping`` on ``endpoint`` answers OK within ``timeout`` s."""
    try:
        client = docker.DockerClient(base_url=endpoint, timeout=max(1, int(timeout)))
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return False
    finally:
        client.close()


def _engine_kind(client: docker.DockerClient) -> str:
    """``"podman"`` if ``GET /version`` lists a Podman component, else ``"docker"``."""
    version = client.version()
    names = [str(c.get("Name", "")) for c in version.get("Components") or []]
    if any("podman" in n.lower() for n in names) or "podman" in str(version.get("Platform", "")).lower():
        return "podman"
    return "docker"


def _attach(
    endpoint: str,
    *,
    expect: str | None,
    from_env: bool = False,
    process: subprocess.Popen[bytes] | None = None,
) -> Engine:
    try:
        client = _client(endpoint, from_env=from_env)
        client.ping()
        kind = _engine_kind(client)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        raise errors.EngineError(
            f"container engine at {endpoint} does not answer ({type(e).__name__}): "
            "start the engine or pass another --engine-socket"
        ) from e
    if expect is not None and kind != expect:
        client.close()
        raise errors.EngineError(f"engine at {endpoint} is {kind}, not {expect}: pass --engine {kind}")
    return Engine(client=client, kind=kind, socket=endpoint, process=process)


def _start_podman(run_dir: Path, *, timeout: float, die_with_parent: bool = True) -> Engine:
    """Run ``podman system service --time=0 unix://RUN_DIR/podman.sock`` and attach.

    The service reads ``registries.conf`` (insecure registries) once, at start.
    """
    podman = shutil.which("podman")
    if podman is None:
        raise errors.EngineError("podman is not installed: apt-get install podman runc (see scripts/bootstrap.sh)")
    run_dir.mkdir(parents=True, exist_ok=True)
    sock = run_dir.resolve() / "podman.sock"
    if len(str(sock)) > _MAX_SOCKET_PATH:
        raise errors.EngineError(f"socket path too long for a unix socket ({len(str(sock))} > 107 bytes): {sock}")
    endpoint = "unix://" + str(sock)
    if sock.is_socket() and _answers(endpoint):
        return _attach(endpoint, expect="podman")  # someone else's (or an earlier run's): reuse, never stop
    sock.unlink(missing_ok=True)

    log_path = run_dir / "podman-service.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [podman, "system", "service", "--time=0", endpoint],
            stdin=subprocess.DEVNULL,
            preexec_fn=children.die_with_parent if die_with_parent else None,
            start_new_session=not die_with_parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise errors.EngineError(
                f"podman system service exited with code {process.returncode}: {_tail(log_path)} (log: {log_path})"
            )
        if sock.is_socket() and _answers(endpoint, timeout=2.0):
            break
        if time.monotonic() > deadline:
            _stop(process, grace=5.0)
            raise errors.EngineError(
                f"podman system service did not answer on {sock} within {timeout:.0f}s (log: {log_path})"
            )
        time.sleep(0.1)
    try:
        return _attach(endpoint, expect="podman", process=process)
    except errors.EngineError:
        _stop(process, grace=5.0)
        raise


def _stop(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL (bounded: ≤ grace + 5 s)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
