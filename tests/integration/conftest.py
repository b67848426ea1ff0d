"""A real dockyard API server over HTTPS on 127.0.0.1 for integration tests.

The server runs in a background thread under uvicorn with a temporary SQLite
file, a self-signed certificate (kubectl sends bearer tokens only over TLS)
and bearer tokens for three identities (admin, view, the node agent of ``node-1``).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.apiserver import app as app_module
from dockyard.apiserver import serve, tls
from dockyard.storage import sqlite

TOKEN = "test-token-0123456789"
VIEW_TOKEN = "test-view-token-0123456789"
NODE_TOKEN = "test-node-token-0123456789"
NODE_NAME = "node-1"
USERS = {TOKEN: "admin", VIEW_TOKEN: "view", NODE_TOKEN: f"system:node:{NODE_NAME}"}
"""The identities of every test server: admin, read-only and the node agent of ``node-1``."""


@dataclass
class ApiServer:
    """A running server: ``url`` (``https://127.0.0.1:PORT``), ``token``, ``ca`` (PEM path), ``store``."""

    url: str
    token: str
    ca: Path
    store: sqlite.Store
    db_path: Path
    view_token: str = VIEW_TOKEN
    node_token: str = NODE_TOKEN
    node_name: str = NODE_NAME

    def client(self, *, token: str | None = TOKEN, timeout: float = 10.0) -> httpx.Client:
        """An httpx client with the bearer token (``token=None``: none)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, verify=self.ssl_context(), timeout=timeout)

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.ca))

    def kubeconfig(self, path: Path, *, namespace: str = "default", token: str | None = None) -> Path:
        """Write a kubeconfig for this server to ``path`` (admin unless ``token``) and return it."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: dockyard\n  cluster:\n    server: {self.url}\n"
            f"    certificate-authority: {self.ca}\n"
            f"users:\n- name: admin\n  user:\n    token: {token or self.token}\n"
            f"contexts:\n- name: dockyard\n  context:\n    cluster: dockyard\n    user: admin\n"
            f"    namespace: {namespace}\n"
            "current-context: dockyard\n"
        )
        return path


@pytest.fixture(scope="session")
def serving_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(cert, key)`` PEM paths of a self-signed certificate for 127.0.0.1."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    tls.write_self_signed(cert, key)
    return cert, key


Running = list[tuple[serve.Server, threading.Thread, sqlite.Store]]


def start_server(
    db: Path,
    serving_cert: tuple[Path, Path],
    running: Running,
    *,
    retention: int = sqlite.DEFAULT_RETENTION,
    ready: Callable[[], bool] = lambda: True,
    max_log_bytes: int = sqlite.DEFAULT_MAX_LOG_BYTES,
    **options: Any,
) -> ApiServer:
    """Start a server on the SQLite file ``db`` (appended to ``running``; see :func:`stop_servers`)."""
    store = sqlite.Store(db, retention=retention, max_log_bytes=max_log_bytes)
    app = app_module.create_app(store=store, tokens=USERS, ready=ready, **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    cert, key = serving_cert
    config = serve.config(app, cert=cert, key=key)
    config.timeout_graceful_shutdown = 1
    server = serve.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "API server did not start"
    running.append((server, thread, store))
    return ApiServer(url=f"https://127.0.0.1:{port}", token=TOKEN, ca=cert, store=store, db_path=db)


def stop_servers(running: Running) -> None:
    for server, thread, store in running:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture
def apiserver_factory(tmp_path: Path, serving_cert: tuple[Path, Path]) -> Iterator[Callable[..., ApiServer]]:
    """Start servers on demand: ``factory(retention=20000, ready=lambda: True, max_log_bytes=...,
    **create_app_options)`` (e.g. ``pod_security="baseline"``, ``long_running=...``); all stop at teardown."""
    running: Running = []

    def start(**options: Any) -> ApiServer:
        return start_server(tmp_path / f"dockyard-{len(running)}.db", serving_cert, running, **options)

    yield start
    stop_servers(running)


@pytest.fixture
def apiserver(apiserver_factory: Callable[..., ApiServer]) -> ApiServer:
    """One running API server with default settings."""
    return apiserver_factory()


@pytest.fixture
def api(apiserver: ApiServer) -> Iterator[httpx.Client]:
    """An authenticated httpx client for :func:`apiserver`."""
    with apiserver.client() as client:
        yield client
