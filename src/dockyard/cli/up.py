"""``dockyard up``: the whole control plane embedded in one process tree.

API server (uvicorn, 127.0.0.1) over SQLite, the controllers, the node agent,
and, unless ``--registry`` names one, a CNCF distribution registry child
process; Podman's API service too when no engine socket answers. SIGINT or
SIGTERM stops everything within 10 s. All state is in ``--data-dir``:
``dockyard.db`` (objects, watch log, build logs), ``registry/``, ``tokens.json``
and the kubeconfigs, so a killed ``up`` resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from dockyard.agent.engine import connect as engine_connect
from dockyard.agent.node import NodeAgent
from dockyard.apiserver import tls
from dockyard.apiserver.app import create_app
from dockyard.client import connection
from dockyard.controllers.build import BuildController
from dockyard.controllers.buildconfig import BuildConfigController
from dockyard.controllers.deployment import DeploymentController, ReplicaSetController
from dockyard.controllers.image import ImageController
from dockyard.controllers.imagedeploy import ImageDeployController
from dockyard.registry.server import RegistryServer
from dockyard.storage.sqlite import Store

log = logging.getLogger("dockyard.up")

DEFAULT_PORT = 6443
DEFAULT_REGISTRY_PORT = 5000
STOP_BUDGET = 8.0  # seconds; the bound is 10


@dataclass(frozen=True, kw_only=True)
class UpOptions:
    data_dir: Path
    port: int = DEFAULT_PORT
    registry_port: int = DEFAULT_REGISTRY_PORT
    registry: str | None = None
    engine: str = "auto"
    engine_socket: str | None = None
    node_name: str = ""
    max_builds: int = 2


def _tokens(data_dir: Path) -> dict[str, str]:
    """Bearer tokens by identity, created once and kept in ``tokens.json`` (mode 0600)."""
    path = data_dir / "tokens.json"
    if path.exists():
        return json.loads(path.read_text())
    tokens = {"admin": secrets.token_urlsafe(32), "node": secrets.token_urlsafe(32),
              "view": secrets.token_urlsafe(32)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh)
    return tokens


def _instance_id(data_dir: Path) -> str:
    """A stable id of this data dir, labelling its pod containers so that several `dockyard up`
    sharing one engine never touch each other's containers."""
    import hashlib

    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _serving_certificate(data_dir: Path) -> tuple[Path, Path]:
    """The API server's self-signed certificate (its own CA) and key, made on first start.

    TLS is not optional: kubectl (client-go) sends a bearer token only over HTTPS.
    """
    pki = data_dir / "pki"
    pki.mkdir(exist_ok=True, mode=0o700)
    cert, key = pki / "apiserver.crt", pki / "apiserver.key"
    if not (cert.exists() and key.exists()):
        tls.write_self_signed(cert, key)
    return cert, key


class UpError(Exception):
    """``dockyard up`` cannot start; the message says what to fix."""


def run(opts: UpOptions, *, announce=print) -> int:
    """Run until SIGINT/SIGTERM. Returns the process exit code.

    Raises:
        UpError: a port is taken, the engine or registry cannot start.
    """
    data_dir = opts.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / "run").mkdir(exist_ok=True)
    if not _port_free(opts.port):
        raise UpError(f"port 127.0.0.1:{opts.port} is in use: is another `dockyard up` running? "
                      "Stop it or pass --port")
    node_name = opts.node_name or socket.gethostname()
    tokens = _tokens(data_dir)
    stop = threading.Event()
    cleanups: list = []
    try:
        store = Store(data_dir / "dockyard.db")
        cleanups.append(store.close)
        state = {"ready": False}
        app = create_app(store=store, tokens={tokens["admin"]: "admin", tokens["node"]: f"system:node:{node_name}",
                                              tokens["view"]: "view"},
                         ready=lambda: state["ready"])
        cert, key = _serving_certificate(data_dir)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=opts.port, log_level="warning",
                                               lifespan="off", timeout_graceful_shutdown=2,
                                               ssl_certfile=str(cert), ssl_keyfile=str(key)))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        api_thread = threading.Thread(target=server.run, daemon=True, name="apiserver")
        api_thread.start()
        cleanups.append(lambda: _stop_server(server, api_thread))
        deadline = time.monotonic() + 15
        while not server.started and api_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise UpError(f"the API server did not start on 127.0.0.1:{opts.port}")
        url = f"https://127.0.0.1:{opts.port}"
        for ident, fname in (("admin", "kubeconfig"), ("node", "kubeconfig-node"), ("view", "kubeconfig-view")):
            connection.write_kubeconfig(data_dir / fname, server=url, token=tokens[ident], user=ident, ca_file=cert)

        if opts.registry:
            registry_address = opts.registry
        else:
            if not _port_free(opts.registry_port):
                raise UpError(f"registry port 127.0.0.1:{opts.registry_port} is in use: pass --registry-port, "
                              "or --registry HOST:PORT to use the registry already there")
            reg = RegistryServer(opts.registry_port, data_dir / "registry",
                                 log_path=data_dir / "registry.log").start()
            cleanups.append(reg.stop)
            registry_address = reg.address

        engine = engine_connect.connect(opts.engine, opts.engine_socket, run_dir=data_dir / "run")
        cleanups.append(engine.close)

        admin = connection.connect(str(data_dir / "kubeconfig"))
        node = connection.connect(str(data_dir / "kubeconfig-node"))
        parts = [BuildConfigController(admin), BuildController(admin), ImageController(admin), ImageDeployController(admin),
                 DeploymentController(admin), ReplicaSetController(admin)]
        agent = NodeAgent(node, engine_client=engine.client, engine_kind=engine.kind, node_name=node_name,
                          state_dir=data_dir / "volumes", max_builds=opts.max_builds,
                          instance=_instance_id(data_dir))
        for part in parts:
            part.start(stop)
        agent.start(stop)
        cleanups.append(agent.stop_pods)
        deadline = time.monotonic() + 30
        while not (all(p.synced() for p in parts) and agent.synced()) and time.monotonic() < deadline:
            time.sleep(0.05)
        state["ready"] = True
        announce(f"dockyard is up: API {url} · registry {registry_address} · engine {engine.kind} "
                 f"({engine.socket}) · node {node_name}")
        announce(f"  export KUBECONFIG={data_dir / 'kubeconfig'}")
        _wait_for_signal(stop)
        announce("dockyard: stopping")
        return 0
    finally:
        stop.set()
        deadline = time.monotonic() + STOP_BUDGET
        for cleanup in reversed(cleanups):
            if time.monotonic() > deadline:
                break
            try:
                cleanup()
            except Exception:  # noqa: BLE001 — keep stopping the rest
                log.exception("error while stopping")


def _stop_server(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=3)


def _wait_for_signal(stop: threading.Event) -> None:
    def handler(signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.wait(0.5):
        pass
