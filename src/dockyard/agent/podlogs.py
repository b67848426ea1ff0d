"""The node agent's container log endpoint: the kubelet's ``GET /containerLogs/{namespace}/{pod}/{container}``.

kube-apiserver answers ``GET /api/v1/namespaces/NS/pods/NAME/log`` by asking the kubelet of the pod's node
(``pkg/registry/core/pod/rest/log.go`` → the kubelet's ``/containerLogs``, ``pkg/kubelet/server/server.go``),
which reads the container's output from its runtime. dockyard's API server does the same with this agent
(:mod:`dockyard.apiserver.podlogs`), which reads it from the engine (``GET /containers/{id}/logs``).

It listens on a Unix socket (``dockyard agent --logs-socket PATH``; ``dockyard up`` puts it in
``DATA_DIR/run``), created mode 0600 in a directory only its owner may enter: like the engine's own socket,
reaching it is the authorization (the API server, running as the same user, checked the caller's right to
``pods/log`` first). Nothing listens on a TCP port.

Query parameters, as the API server sends them (:func:`dockyard.api.podlogs.to_query`): ``podUID`` (the
pod's incarnation, required), ``follow``, ``previous``, ``timestamps``, ``since`` (seconds since the epoch),
``tailLines``, ``limitBytes``. Answers: 200 ``text/plain`` streaming the output; 400 with a ``Status`` when
the container cannot be read (``... is waiting to start: ContainerCreating``, ``previous terminated container
... not found``, the kubelet's words); 503 when the engine fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dockyard.agent import pods
from dockyard.agent.engine import errors as engine_errors

__all__ = ["LogServer"]

log = logging.getLogger(__name__)

PATH = "/containerLogs/{namespace}/{pod}/{container}"


def _status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status_code=code,
    )


def _flag(request: Request, key: str) -> bool:
    return request.query_params.get(key, "").lower() in ("true", "1")


def _number(request: Request, key: str, cast: type[int] | type[float]) -> int | float | None:
    value = request.query_params.get(key)
    if not value:
        return None
    number = cast(value)
    if number < 0:
        raise ValueError(f"{key} must not be negative")
    return number


class LogServer:
    """Serves the container log endpoint for one :class:`~dockyard.agent.pods.PodRuntime` on a Unix socket.

    Args:
        runtime: this node's pods.
        socket_path: where to listen (an existing file there is replaced).
    """

    def __init__(self, runtime: pods.PodRuntime, socket_path: Path) -> None:
        self.runtime = runtime
        self.socket_path = Path(socket_path)
        self.app = Starlette(routes=[Route(PATH, self._logs, methods=["GET"])])
        self._server: uvicorn.Server | None = None

    async def _logs(self, request: Request) -> Response:
        namespace, pod, container = (request.path_params[k] for k in ("namespace", "pod", "container"))
        uid = request.query_params.get("podUID", "")
        if not uid:
            return _status(400, "BadRequest", "podUID is required")
        try:
            tail = _number(request, "tailLines", int)
            limit = _number(request, "limitBytes", int)
            since = _number(request, "since", float)
        except ValueError as err:
            return _status(400, "BadRequest", str(err))
        follow = _flag(request, "follow")
        try:
            stream = await anyio.to_thread.run_sync(
                lambda: self.runtime.container_logs(
                    uid,
                    pod,
                    container,
                    previous=_flag(request, "previous"),
                    follow=follow,
                    tail=None if tail is None else int(tail),
                    timestamps=_flag(request, "timestamps"),
                    since=since,
                )
            )
        except pods.LogsUnavailable as err:
            return _status(400, "BadRequest", str(err))
        except engine_errors.EngineError as err:
            log.warning("logs of %s/%s/%s: %s", namespace, pod, container, err)
            return _status(503, "ServiceUnavailable", f"the engine could not read the logs: {err}")
        return StreamingResponse(_blocks(stream, None if limit is None else int(limit)), media_type="text/plain")

    def start(self, stop: threading.Event) -> threading.Thread:
        """Listen and serve on a daemon thread until ``stop`` is set.

        Raises:
            OSError: the socket cannot be made.
        """
        sock = _listen(self.socket_path)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = self._server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="pod-logs")
        thread.start()

        def watch_stop() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=watch_stop, daemon=True, name="pod-logs-stop").start()
        return thread


async def _blocks(stream: Any, limit: int | None) -> AsyncIterator[bytes]:
    """The stream's blocks, read on a worker thread, cut at ``limit`` bytes; the engine's response is closed
    when the client goes away (the read blocked on a silent container ends with it)."""
    blocks = iter(stream)
    sent = 0
    try:
        while limit is None or sent < limit:
            try:
                block = await anyio.to_thread.run_sync(next, blocks, None, abandon_on_cancel=True)
            except engine_errors.EngineError as err:
                log.info("container log stream ended: %s", err)
                return
            except Exception as err:  # the engine's connection shut under the read (client gone, stop)
                log.debug("container log stream ended: %r", err)
                return
            if block is None:
                return
            if limit is not None and sent + len(block) > limit:
                block = block[: limit - sent]
            sent += len(block)
            yield block
    finally:
        stream.close()


def _listen(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600 from its creation (no window where others may connect)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock
