"""The long-running components as processes: `dockyard controllers` and `dockyard agent`.

``dockyard up`` starts each as a child process and restarts it if it dies;
on a real Kubernetes cluster the same commands run in a Deployment and a
DaemonSet with their own kubeconfig or service account. A component killed at
any moment resumes from stored state (the API, the engine, its state dir).

Each writes ``READY_FILE`` (its pid) once its informers have listed
everything, which ``dockyard up``'s ``/readyz`` waits for.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dockyard.client import connection, leaderelection

log = logging.getLogger(__name__)

#: Every controller `dockyard controllers` knows; the last three only matter on the embedded engine
#: (on Kubernetes the kube-controller-manager runs Deployments, ReplicaSets and EndpointSlices).
CONTROLLERS = ("buildconfig", "build", "image", "imagedeploy", "deployment", "replicaset", "endpoints")
DEFAULT_CONTROLLERS = CONTROLLERS[:4]


def _on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` (main thread only)."""

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _wait_for_signal(stop: threading.Event) -> None:
    _on_signals(stop)
    while not stop.wait(0.5):
        pass


def _mark_ready(
    ready_file: Path | None, synced: Callable[[], bool], stop: threading.Event, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not synced() and not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, ready_file)


def run_controllers(
    *,
    kubeconfig: str | None,
    names: tuple[str, ...],
    ready_file: Path | None = None,
    election: leaderelection.Config | None = None,
) -> int:
    """Run the named controllers until SIGINT/SIGTERM; with ``election``, only while leading.

    With ``election`` (kube-controller-manager's ``--leader-elect``; an empty namespace means the
    connection's: the kubeconfig context's, or the pod's service account's), nothing starts, not even an
    informer, until this process holds the Lease; losing it ends the process at once (return 1, as
    kube-controller-manager's ``leaderelection lost``), and the supervisor (``dockyard up``, or the kubelet
    on a cluster) starts a fresh candidate. A graceful stop releases the Lease.

    Returns:
        0 after a signal, 1 when leadership was lost.

    Raises:
        ValueError: an unknown controller name.
        leaderelection.InvalidConfig: election durations that cannot work.
        connection.NoKubeconfig: no kubeconfig to reach the API with.
    """
    from dockyard.controllers.build import BuildController
    from dockyard.controllers.buildconfig import BuildConfigController
    from dockyard.controllers.deployment import DeploymentController, ReplicaSetController
    from dockyard.controllers.endpoints import EndpointsController
    from dockyard.controllers.image import ImageController
    from dockyard.controllers.imagedeploy import ImageDeployController

    table = {
        "buildconfig": BuildConfigController,
        "build": BuildController,
        "image": ImageController,
        "imagedeploy": ImageDeployController,
        "deployment": DeploymentController,
        "replicaset": ReplicaSetController,
        "endpoints": EndpointsController,
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown controller(s) {', '.join(unknown)}; known: {', '.join(CONTROLLERS)}")
    conn = connection.connect(kubeconfig)
    if election is not None and not election.namespace:
        election = dataclasses.replace(election, namespace=conn.namespace or "default")
    if election is not None:
        election.check()
    stop = threading.Event()
    _on_signals(stop)
    elector = leaderelection.LeaderElector(conn, election) if election is not None else None
    if elector is not None and not elector.acquire(stop):
        log.info("controllers stopping (never led)")
        return 0
    parts = [table[n](conn) for n in names]
    for part in parts:
        part.start(stop)
    log.info("controllers running: %s (API %s)", ", ".join(names), conn.server)
    threading.Thread(
        target=_mark_ready, args=(ready_file, lambda: all(p.synced() for p in parts), stop), daemon=True
    ).start()
    if elector is not None:
        if elector.hold(stop):
            log.error("leaderelection lost: exiting so that no controller acts without the lease")
            return 1
        stop.set()
        elector.release()
    else:
        while not stop.wait(0.5):
            pass
    log.info("controllers stopping")
    return 0


def run_agent(
    *,
    kubeconfig: str | None,
    engine: str,
    engine_socket: str | None,
    node_name: str,
    state_dir: Path,
    max_builds: int,
    instance: str | None,
    ready_file: Path | None = None,
    stop_pods_on_exit: bool = True,
    serve_services: bool = True,
) -> int:
    """Run the node agent until SIGINT/SIGTERM; then stop this node's pod containers (if asked).

    With ``serve_services`` it also runs the Service proxy (:mod:`dockyard.agent.services`: LoadBalancer
    ports, node ports and cluster IPs on loopback, as k3s's ServiceLB and kube-proxy).

    Raises:
        dockyard.agent.engine.errors.EngineError: no engine could be reached.
    """
    from dockyard.agent.engine import connect as engine_connect
    from dockyard.agent.node import NodeAgent

    conn = connection.connect(kubeconfig)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    eng = engine_connect.connect(engine, engine_socket, run_dir=state_dir)
    stop = threading.Event()
    try:
        agent = NodeAgent(
            conn,
            engine_client=eng.client,
            engine_url=eng.socket,
            node_name=node_name,
            state_dir=state_dir,
            max_builds=max_builds,
            instance=instance,
        )
        agent.start(stop)
        synced = agent.synced
        if serve_services:
            from dockyard.agent.services import ServiceProxy

            proxy = ServiceProxy(conn)
            proxy.start(stop)
            synced = lambda: agent.synced() and proxy.synced()  # noqa: E731
        log.info("node agent %s running on %s (%s), API %s", node_name, eng.kind, eng.socket, conn.server)
        threading.Thread(target=_mark_ready, args=(ready_file, synced, stop), daemon=True).start()
        _wait_for_signal(stop)
        log.info("node agent stopping")
        if stop_pods_on_exit:
            agent.stop_builds()
            agent.stop_pods()
    finally:
        eng.close()
    return 0
