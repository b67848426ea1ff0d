"""Serving the ASGI app: uvicorn set up for the API server, started and stopped promptly.

- TLS by default: kubectl (client-go) sends a bearer token only over HTTPS.
  Plain HTTP only when asked for (``insecure_http=True``) and only on a
  loopback address (:class:`InsecureListen` otherwise), as the apiserver's
  long-gone ``--insecure-port`` was bound to localhost.
- No access log: request lines could carry names of Secrets and the like
  into logs; errors are logged by the app itself. Should an access log be
  turned on anyway (a handler on ``uvicorn.access``), :class:`RedactWebhookSecrets`
  replaces the secret in build webhook paths in every uvicorn record.
- :class:`Server` tells the app (``ServerState.stop``) that it is shutting
  down before uvicorn's graceful shutdown starts, so open watches and
  ``follow=true`` log streams end at once instead of being cancelled after
  the grace period with a "Cancel N running task(s)" error and tracebacks.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from dockyard.api import hosts
from dockyard.apiserver import auth, httpproto

GRACEFUL_SECONDS = 3.0
"""uvicorn's ``timeout_graceful_shutdown``: how long a stop waits for in-flight requests."""
KEEP_ALIVE_SECONDS = 30
"""Idle keep-alive connections are closed after this many seconds."""
MAX_HEADER_BYTES = httpproto.MAX_HEAD_BYTES
"""Largest request line plus headers (Go's ``http.DefaultMaxHeaderBytes``, 1 MiB): long
field and label selectors fit; larger heads get 431 from the HTTP layer (:mod:`.httpproto`)."""


class InsecureListen(ValueError):
    """Plain HTTP was asked for on an address that is not loopback."""


is_loopback = hosts.is_loopback
"""True for ``localhost`` and loopback IP addresses (:func:`dockyard.api.hosts.is_loopback`)."""


class RedactWebhookSecrets(logging.Filter):
    """A log filter replacing build webhook secrets in a record's message and arguments.

    uvicorn's access record is ``'%s - "%s %s HTTP/%s" %d'`` with the path as an
    argument; every string argument goes through :func:`dockyard.apiserver.auth.redact_path`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = auth.redact_path(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(auth.redact_path(a) if isinstance(a, str) else a for a in record.args)
        return True


UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn.asgi")
"""The loggers uvicorn writes request data to; each gets :class:`RedactWebhookSecrets`."""


def _redact_uvicorn_logs() -> None:
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactWebhookSecrets) for f in logger.filters):
            logger.addFilter(RedactWebhookSecrets())


def config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    insecure_http: bool = False,
) -> uvicorn.Config:
    """A uvicorn config for the API server.

    Args:
        cert, key: PEM serving certificate and key (required unless ``insecure_http``).
        insecure_http: serve plain HTTP (loopback only).
    Raises:
        InsecureListen: ``insecure_http`` on a non-loopback ``host``.
        ValueError: TLS without ``cert``/``key``.
    """
    if insecure_http:
        if not is_loopback(host):
            raise InsecureListen(f"plain HTTP is served only on loopback, not on {host!r}; drop --insecure-http")
        tls: dict[str, str] = {}
    else:
        if cert is None or key is None:
            raise ValueError("TLS needs a serving certificate and key")
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    _redact_uvicorn_logs()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # not uvloop: its TLS transport keeps reading a request body the app refused (a 1 GiB upload answered
        # 413 was drained in full; tests/integration/test_build_contexts.py), asyncio's stops at once
        loop="asyncio",
        lifespan="off",
        timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=httpproto.BoundedHttpToolsProtocol,
        server_header=False,
        # no X-Forwarded-* rewriting: the API server is not served behind a proxy (and its middleware layer
        # costs every request)
        proxy_headers=False,
        **tls,
    )  # type: ignore[arg-type]


class Server(uvicorn.Server):
    """``uvicorn.Server`` whose shutdown first ends the app's long-running streams.

    Idle keep-alive connections are dropped outright: a TLS close waits for
    the peer's ``close_notify``, which an idle client never sends, so a plain
    close would hold the shutdown for the whole grace period.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(getattr(self.config.app, "state", None), "dockyard", None)
        if state is not None:
            state.stop()
        self._drop_idle()
        await asyncio.sleep(0.05)  # let the ended streams send their last chunk
        self._drop_idle()
        await super().shutdown(sockets)

    def _drop_idle(self) -> None:
        for conn in list(self.server_state.connections):
            cycle = getattr(conn, "cycle", None)
            transport = getattr(conn, "transport", None)
            if transport is not None and (cycle is None or getattr(cycle, "response_complete", False)):
                transport.abort()


def start_thread(
    server: uvicorn.Server, *, sockets: list[socket.socket] | None = None, timeout: float = 15.0
) -> threading.Thread:
    """Run ``server`` on a daemon thread and wait until it accepts connections.

    Raises:
        RuntimeError: it did not start within ``timeout`` seconds (port taken, bad certificate).
    """
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True, name="apiserver")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        raise RuntimeError("the API server did not start")
    return thread


def stop_thread(server: uvicorn.Server, thread: threading.Thread, *, timeout: float = GRACEFUL_SECONDS + 2) -> None:
    """Ask ``server`` to exit and wait up to ``timeout`` seconds for its thread."""
    server.should_exit = True
    thread.join(timeout=timeout)
