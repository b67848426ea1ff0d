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
from typing import Any

from dockyard.client import connection, leaderelection

log = logging.getLogger(__name__)

#: Every controller `dockyard controllers` knows; the last three only matter on the embedded engine
#: (on Kubernetes the kube-controller-manager runs Deployments, ReplicaSets and EndpointSlices).
CONTROLLERS = ("buildconfig", "build", "image", "imagedeploy", "deployment", "replicaset", "endpoints")
DEFAULT_CONTROLLERS = CONTROLLERS[:4]


SHUTDOWN_BUDGET = 15.0
"""Seconds a component's orderly shutdown may take after SIGTERM before the process exits anyway (e.g. the
API server is gone and every status write would time out)."""


def _on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` (main thread only); a second one ends the process at once (exit 1)."""

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("signal %d during shutdown: exiting now", signum)
            logging.shutdown()
            os._exit(1)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _bounded_shutdown(work: Callable[[], object], budget: float) -> None:
    """Run ``work`` in a daemon thread and wait for it at most ``budget`` seconds (logged if it overruns)."""
    worker = threading.Thread(target=work, daemon=True, name="shutdown")
    worker.start()
    worker.join(budget)
    if worker.is_alive():
        log.warning("shutdown did not finish within %.0fs; exiting anyway", budget)


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
    registry_qps: float = 20.0,
    registry_burst: int = 40,
) -> int:
    """Run the named controllers until SIGINT/SIGTERM; with ``election``, only while leading.

    With ``election`` (kube-controller-manager's ``--leader-elect``; an empty namespace means the
    connection's: the kubeconfig context's, or the pod's service account's), nothing starts, not even an
    informer, until this process holds the Lease; losing it ends the process at once (return 1, as
    kube-controller-manager's ``leaderelection lost``), and the supervisor (``dockyard up``, or the kubelet
    on a cluster) starts a fresh candidate. A graceful stop releases the Lease.

    Returns:
        0 after a signal, 1 when leadership was lost.

    ``registry_qps``/``registry_burst`` bound the image controller's requests to each registry
    (:mod:`dockyard.registry.ratelimit`).

    Raises:
        ValueError: an unknown controller name, or ``registry_qps`` ≤ 0 / ``registry_burst`` < 1.
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
    if registry_qps <= 0 or registry_burst < 1:
        raise ValueError(f"--registry-qps must be > 0 and --registry-burst ≥ 1 (got {registry_qps}, {registry_burst})")
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
    options: dict[str, dict[str, Any]] = {
        "image": {"registry_qps": registry_qps, "registry_burst": registry_burst},
    }
    parts = [table[n](conn, **options.get(n, {})) for n in names]
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
    run_pods: bool = True,
    serve_services: bool = True,
    pod_manifest_path: Path | None = None,
    manifest_url: str | None = None,
    logs_socket: Path | None = None,
) -> int:
    """Run the node agent until SIGINT/SIGTERM; then stop this node's pod containers (if asked).

    ``run_pods=False`` (``dockyard agent --no-pods``, the agent DaemonSet on a Kubernetes cluster, where the
    kubelet runs pods and build pods) serves only Pushes: it neither binds, runs nor reports pods.
    With ``serve_services`` (and pods run) it also runs the Service proxy (:mod:`dockyard.agent.services`:
    LoadBalancer ports, node ports and cluster IPs on loopback, as k3s's ServiceLB and kube-proxy).
    ``pod_manifest_path``/``manifest_url``: static pod sources (:mod:`dockyard.agent.staticpods`).
    ``logs_socket``: serve the pods' container logs there for the API server (:mod:`dockyard.agent.podlogs`).

    Raises:
        dockyard.agent.engine.errors.EngineError: no engine could be reached.
    """
    from dockyard.agent.engine import connect as engine_connect
    from dockyard.agent.node import NodeAgent

    parent = os.getppid()
    conn = connection.connect(kubeconfig)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    eng = engine_connect.connect(engine, engine_socket, run_dir=state_dir)
    stop = threading.Event()
    try:
        if not run_pods:
            return _run_pushes_only(
                conn, eng, node_name=node_name, state_dir=state_dir, instance=instance, ready_file=ready_file
            )
        agent = NodeAgent(
            conn,
            engine_client=eng.client,
            engine_url=eng.socket,
            node_name=node_name,
            state_dir=state_dir,
            max_builds=max_builds,
            instance=instance,
            pod_manifest_path=pod_manifest_path,
            manifest_url=manifest_url,
        )
        agent.start(stop)
        if logs_socket is not None:
            from dockyard.agent.podlogs import LogServer

            LogServer(agent.runtime, logs_socket).start(stop)
        synced = agent.synced
        if serve_services:
            from dockyard.agent.services import ServiceProxy

            proxy = ServiceProxy(conn)
            proxy.start(stop)
            synced = lambda: agent.synced() and proxy.synced()  # noqa: E731
        log.info("node agent %s running on %s (%s), API %s", node_name, eng.kind, eng.socket, conn.server)
        threading.Thread(target=_mark_ready, args=(ready_file, synced, stop), daemon=True).start()
        orphaned = threading.Event()

        def on_hangup(_signum: int, _frame: object) -> None:
            orphaned.set()
            stop.set()

        signal.signal(signal.SIGHUP, on_hangup)
        _wait_for_signal(stop)
        log.info("node agent stopping")
        if stop_pods_on_exit and (orphaned.is_set() or os.getppid() != parent):
            # our parent (`dockyard up`) died: SIGHUP is its death signal (PR_SET_PDEATHSIG), not a stop. Leave
            # builders and pods running: the next `dockyard up` adopts them, as after a crash of the agent.
            log.warning("parent process gone: leaving this node's builds and pods running for the next start")
        elif stop_pods_on_exit:

            def shutdown() -> None:
                agent.node_stopped()  # Ready Unknown first, so the budget never leaves it Ready
                agent.stop_builds()
                agent.stop_pods()

            _bounded_shutdown(shutdown, SHUTDOWN_BUDGET)
        else:
            _bounded_shutdown(agent.node_stopped, SHUTDOWN_BUDGET)
    finally:
        eng.close()
    return 0


def _run_pushes_only(
    conn: connection.Connection,
    eng: Any,
    *,
    node_name: str,
    state_dir: Path,
    instance: str | None,
    ready_file: Path | None,
) -> int:
    """The agent's Push worker alone, until SIGINT/SIGTERM (see :func:`run_agent`)."""
    from dockyard.agent import pods, pushes

    stop = threading.Event()
    runtime_ = pods.PodRuntime(eng.client, node_name=node_name, state_dir=state_dir / "volumes", instance=instance)
    worker = pushes.PushWorker(conn, runtime_=runtime_, engine_client=eng.client, node_name=node_name)
    worker.start(stop)
    log.info("node agent %s serving pushes only on %s (%s), API %s", node_name, eng.kind, eng.socket, conn.server)
    threading.Thread(target=_mark_ready, args=(ready_file, worker.synced, stop), daemon=True).start()
    _wait_for_signal(stop)
    log.info("node agent stopping")
    return 0
