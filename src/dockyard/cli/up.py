"""``dockyard up``: the whole control plane embedded in one process tree.

API server (uvicorn, 127.0.0.1, in this process) over SQLite; the controllers
and the node agent as supervised child processes (`dockyard controllers`,
`dockyard agent`: restarted if they die, pids in ``run/*.pid``, logs in
``controllers.log`` and ``agent.log``); and, unless ``--registry`` names one,
a CNCF distribution registry child process; Podman's API service too when no
engine socket answers. SIGINT or
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
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from dockyard.agent.engine import connect as engine_connect
from dockyard.agent.engine.errors import EngineError
from dockyard.api import archive, podsecurity
from dockyard.apiserver import inflight, registryhooks, serve, tls
from dockyard.apiserver.app import create_app
from dockyard.cli import supervisor
from dockyard.cli.components import CONTROLLERS
from dockyard.client import connection
from dockyard.registry.server import RegistryServer
from dockyard.storage import datadir, encryption
from dockyard.storage.sqlite import DEFAULT_MAX_LOG_BYTES

log = logging.getLogger("dockyard.up")

DEFAULT_PORT = 6443
DEFAULT_REGISTRY_PORT = 5000
STOP_BUDGET = 8.0  # seconds; the bound is 10
LOGS_SOCKET = "agent-logs.sock"
"""The agent's container log socket in DATA_DIR/run (the API server's pods/log asks it)."""


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
    pod_manifest_path: Path | None = None  # static pods (kubelet staticPodPath), passed to the agent
    manifest_url: str | None = None  # static pods at a loopback URL (kubelet --manifest-url)
    pod_security: str = podsecurity.DEFAULT_LEVEL  # enforce level of namespaces without the label
    max_context_bytes: int = archive.DEFAULT_MAX_BYTES  # binary build contexts, uploaded and uncompressed
    max_context_members: int = archive.DEFAULT_MAX_MEMBERS
    insecure_http: bool = False  # plain HTTP on 127.0.0.1 instead of TLS (kubectl then sends no token)
    max_long_running: int = inflight.DEFAULT_TOTAL
    max_long_running_per_user: int = inflight.DEFAULT_PER_USER
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES


def _free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tokens(data_dir: Path) -> dict[str, str]:
    """Bearer tokens by identity (``admin``, ``node``, ``view``, and ``registry``: the embedded registry's
    notification token), created once and kept in ``tokens.json`` (mode 0600); a missing one is added."""
    path = data_dir / "tokens.json"
    tokens: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if all(tokens.get(i) for i in TOKEN_IDENTITIES):
        return tokens
    for ident in TOKEN_IDENTITIES:
        tokens.setdefault(ident, secrets.token_urlsafe(32))
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh)
    os.replace(tmp, path)
    return tokens


TOKEN_IDENTITIES = ("admin", "node", "view", "registry")


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


def _serving_certificate(data_dir: Path) -> tuple[Path, Path, Path]:
    """``(ca_cert, cert, key)``: a CA and the API server's certificate signed by it, made on first start.

    TLS is not optional: kubectl (client-go) sends a bearer token only over HTTPS.
    """
    return tls.ensure_serving_certificate(data_dir / "pki")


class UpError(Exception):
    """``dockyard up`` cannot start; the message says what to fix."""


def run(opts: UpOptions, *, announce: Callable[[str], None] = print) -> int:
    """Run until SIGINT/SIGTERM. Returns the process exit code.

    Raises:
        UpError: the data dir is in use, a port is taken, the engine or registry cannot start.
    """
    data_dir = datadir.prepare(opts.data_dir)
    try:
        held = datadir.lock(data_dir)
    except datadir.InUse as err:
        holder = f" (pid {err.pid})" if err.pid is not None else ""
        raise UpError(
            f"data dir {data_dir} is in use by another `dockyard up`{holder}: stop it, or pass another --data-dir"
        ) from None
    (data_dir / "run").mkdir(exist_ok=True)
    announce(f"dockyard: starting in {data_dir} (API server, registry, engine, controllers, node agent)")
    if not _port_free(opts.port):
        raise UpError(f"port 127.0.0.1:{opts.port} is in use: is another `dockyard up` running? Stop it or pass --port")
    node_name = opts.node_name or socket.gethostname()
    tokens = _tokens(data_dir)
    stop = threading.Event()
    cleanups: list[Callable[[], object]] = []
    revived: list[supervisor.Revived] = []  # the registry and Podman service `up` started or adopted
    try:
        try:
            store = datadir.open_store(data_dir, max_log_bytes=opts.max_log_bytes)
        except encryption.ConfigError as err:
            raise UpError(f"cannot use the encryption configuration: {err}") from None
        cleanups.append(store.close)
        state: dict[str, Callable[[], bool]] = {"ready_check": lambda: False}
        app = create_app(
            store=store,
            tokens={tokens["admin"]: "admin", tokens["node"]: f"system:node:{node_name}", tokens["view"]: "view"},
            ready=lambda: state["ready_check"](),
            pod_security=opts.pod_security,
            long_running=inflight.Limits(total=opts.max_long_running, per_user=opts.max_long_running_per_user),
            max_context_bytes=opts.max_context_bytes,
            max_context_members=opts.max_context_members,
            registry_notifier_token=tokens["registry"],
            serve_dockyard_crds=True,  # installs or upgrades dockyard's CRDs, as a cluster has them installed
            node_logs={node_name: data_dir / "run" / LOGS_SOCKET},
        )
        ca, cert, key = (None, None, None) if opts.insecure_http else _serving_certificate(data_dir)
        server = serve.Server(
            serve.config(app, host="127.0.0.1", port=opts.port, cert=cert, key=key, insecure_http=opts.insecure_http)
        )
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        api_thread = threading.Thread(target=server.run, daemon=True, name="apiserver")
        api_thread.start()
        cleanups.append(lambda: _stop_server(server, api_thread))
        deadline = time.monotonic() + 15
        while not server.started and api_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise UpError(f"the API server did not start on 127.0.0.1:{opts.port}")
        url = f"{'http' if opts.insecure_http else 'https'}://127.0.0.1:{opts.port}"
        for ident, fname in (("admin", "kubeconfig"), ("node", "kubeconfig-node"), ("view", "kubeconfig-view")):
            connection.write_kubeconfig(data_dir / fname, server=url, token=tokens[ident], user=ident, ca_file=ca)

        run_dir = data_dir / "run"
        if opts.registry:
            registry_address = opts.registry
        else:
            registry_address = f"127.0.0.1:{opts.registry_port}"
            adopted = _adopt(run_dir / "registry.pid", b"docker-registry", str(data_dir).encode())

            def start_registry() -> tuple[int, Callable[[], None]]:
                # notifications first, polling as backstop: every push, by any client, reaches the API at once
                reg = RegistryServer(
                    opts.registry_port,
                    data_dir / "registry",
                    log_path=data_dir / "registry.log",
                    die_with_parent=False,
                    notify_url=f"{url}{registryhooks.PATH}",
                    notify_token=tokens["registry"],
                    notify_ca=ca,
                ).start()
                assert reg.pid is not None
                return reg.pid, reg.stop

            if adopted is not None:
                log.info("adopting the registry left running by a previous `dockyard up` (pid %d)", adopted)
                registry_now: tuple[int, Callable[[], None]] = (adopted, lambda: _terminate(adopted))
            elif not _port_free(opts.registry_port):
                raise UpError(
                    f"registry port 127.0.0.1:{opts.registry_port} is in use: pass --registry-port, "
                    "or --registry HOST:PORT to use the registry already there"
                )
            else:
                registry_now = start_registry()
                (run_dir / "registry.pid").write_text(str(registry_now[0]))
            registry_watch = supervisor.Revived(
                "registry", registry_now, start_registry, pid_file=run_dir / "registry.pid"
            ).start()
            revived.append(registry_watch)
            cleanups.append(registry_watch.stop)

        engine = engine_connect.connect(opts.engine, opts.engine_socket, run_dir=run_dir, die_with_parent=False)
        podman_now: tuple[int, Callable[[], None]] | None = None
        if engine.process is not None:
            (run_dir / "podman.pid").write_text(str(engine.process.pid))
            podman_now = (engine.process.pid, engine.close)
        else:
            cleanups.append(engine.close)
            podman = _adopt(run_dir / "podman.pid", b"system", str(run_dir).encode())
            if podman is not None:  # our own service from before a crash: stop it when we stop
                podman_now = (podman, lambda: _terminate(podman))
        if podman_now is not None:  # ours, so ours to start again (an engine found running is its owner's)

            def start_podman() -> tuple[int, Callable[[], None]]:
                again = engine_connect.connect("podman", None, run_dir=run_dir, die_with_parent=False)
                if again.process is None:
                    again.close()
                    raise EngineError(f"another Podman service answers on {engine.socket}")
                return again.process.pid, again.close

            podman_watch = supervisor.Revived(
                "Podman service", podman_now, start_podman, pid_file=run_dir / "podman.pid"
            ).start()
            revived.append(podman_watch)
            cleanups.append(podman_watch.stop)

        run_dir = data_dir / "run"
        python = [sys.executable, "-m", "dockyard"]
        metrics_ports = {"controllers": _free_loopback_port(), "agent": _free_loopback_port()}
        controllers = supervisor.Child(
            "controllers",
            python
            + [
                "controllers",
                "--kubeconfig",
                str(data_dir / "kubeconfig"),
                "--controllers",
                ",".join(CONTROLLERS),
                "--ready-file",
                str(run_dir / "controllers.ready"),
                # one supervised process: no Lease to wait out after a crash (a cluster runs two, with election)
                "--leader-elect=false",
                "--metrics-bind-address",
                f"127.0.0.1:{metrics_ports['controllers']}",
            ],
            run_dir=run_dir,
            log_path=data_dir / "controllers.log",
        )
        agent = supervisor.Child(
            "agent",
            python
            + [
                "agent",
                "--kubeconfig",
                str(data_dir / "kubeconfig-node"),
                "--engine",
                engine.kind,
                "--engine-socket",
                engine.socket,
                "--node-name",
                node_name,
                "--state-dir",
                str(data_dir / "agent"),
                "--max-builds",
                str(opts.max_builds),
                "--instance",
                _instance_id(data_dir),
                "--ready-file",
                str(run_dir / "agent.ready"),
                "--metrics-bind-address",
                f"127.0.0.1:{metrics_ports['agent']}",
                "--logs-socket",
                str(run_dir / LOGS_SOCKET),
                *(["--pod-manifest-path", str(opts.pod_manifest_path)] if opts.pod_manifest_path else []),
                *(["--manifest-url", opts.manifest_url] if opts.manifest_url else []),
            ],
            run_dir=run_dir,
            log_path=data_dir / "agent.log",
            # `up`'s death (SIGKILL, a crash) is not a stop: the agent leaves builds and pods for the next `up`
            death_signal=signal.SIGHUP,
        )
        for child in (controllers, agent):
            child.start()
        cleanups.append(lambda: _stop_children([agent, controllers], grace=6.0))
        state["ready_check"] = lambda: controllers.ready() and agent.ready() and all(w.alive() for w in revived)
        deadline = time.monotonic() + 60
        while not state["ready_check"]() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not state["ready_check"]():
            announce(f"dockyard: components not ready yet; see {data_dir}/controllers.log and agent.log")
        announce(
            f"dockyard is up: API {url} · registry {registry_address} · engine {engine.kind} "
            f"({engine.socket}) · node {node_name}"
        )
        announce(
            f"  metrics: {url}/metrics · controllers http://127.0.0.1:{metrics_ports['controllers']}/metrics"
            f" · agent http://127.0.0.1:{metrics_ports['agent']}/metrics"
        )
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
            except Exception:
                log.exception("error while stopping")
        held.release()


def _adopt(pid_file: Path, *markers: bytes) -> int | None:
    """The pid in ``pid_file`` if that process still runs and its command line holds every marker.

    Used after a crash of `dockyard up`: the registry and the Podman service it started were
    left running on purpose (work under way survives), and are taken over instead of restarted.
    """
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if all(m in cmdline for m in markers) else None


def _terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM ``pid``, SIGKILL it after ``grace`` seconds."""
    import os

    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _stop_children(kids: list[supervisor.Child], *, grace: float) -> None:
    """Stop the components in parallel (the agent stops its pods on SIGTERM)."""
    threads = [threading.Thread(target=k.stop, kwargs={"grace": grace}) for k in kids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(grace + 6)


def _stop_server(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=3)


def _wait_for_signal(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.wait(0.5):
        pass
