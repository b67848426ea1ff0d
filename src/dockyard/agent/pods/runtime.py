"""The pod runtime: this node's pods on one engine, one :class:`~.worker.PodWorker` per pod.

See :mod:`dockyard.agent.pods` for how it follows the kubelet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightkube.models.core_v1 import PodStatus
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.engine import connect
from dockyard.agent.engine import containers as engine
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.pods.containers import ContainerManager
from dockyard.agent.pods.images import PAUSE_IMAGE, ImageManager, PullAuth
from dockyard.agent.pods.lifecycle import HandlerRunner, HookManager
from dockyard.agent.pods.podips import PodIPs
from dockyard.agent.pods.prober import EventSink, ProbeManager, Prober, ProberManager
from dockyard.agent.pods.sandbox import SandboxManager
from dockyard.agent.pods.sources import ObjectLookup, SecretLookup
from dockyard.agent.pods.state import EngineContainer, latest
from dockyard.agent.pods.status import StatusManager
from dockyard.agent.pods.volumes import VolumeManager
from dockyard.agent.pods.worker import ExitHook, Managers, PodWorker

__all__ = ["LogsUnavailable", "PodRuntime"]


class LogsUnavailable(Exception):
    """A container's output cannot be read (yet): the message says why, in the kubelet's words (400)."""


class PodRuntime:
    """Runs pods on one engine (Docker Engine or Podman, through :mod:`dockyard.agent.engine`).

    Thread-safe: syncs of one pod are serialized by its worker; different pods sync concurrently.

    Args:
        client: the engine's client (:data:`dockyard.agent.engine.connect.Client`).
        node_name: this node's name (reported nowhere else yet).
        instance: identity of the agent that owns the containers (label ``dockyard.instance``;
            default ``node_name``). Containers of other instances on the same engine are never
            adopted, swept or stopped.
        host_ip: the address pods publish host ports on and report as ``hostIP``;
            only loopback is meant to be used. Each pod also gets its own address
            (``status.podIP``, :mod:`.podips`) its ``containerPorts`` are published on.
        state_dir: where ``emptyDir`` volumes live
            (``<state_dir>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>``,
            the kubelet's layout) and where ``subPath`` mounts are staged
            (``<state_dir>/pods/<uid>/volume-subpaths/<volume>/<container>/<index>``,
            see :mod:`dockyard.agent.subpath`).
        pause_image: the infra image; built from ``busybox`` if missing.
        busybox: a static busybox binary for the pause image.
        backoff: crash back-off (also used for image pull and sandbox
            failures); tests pass a short one.
        pull_timeout: bound on one image pull, in seconds.
        pull_auth: optional ``(pod, image) -> auth configs`` for private
            registries (image pull secrets, :data:`.images.PullAuth`).
        clock: seconds since the epoch (tests may inject).
        prober: the prober manager (:mod:`.prober`); default: a :class:`~.prober.ProbeManager` on this engine
            (liveness, readiness and startup probes, as the kubelet runs them).
        events: records the pod Events the runtime, its prober and its lifecycle hooks raise (``Unhealthy``,
            ``Killing``, ``FailedPostStartHook``, ``FailedPreStopHook``); default: none.
        on_probe_result: called with a pod whose probe result changed (from a probe thread), or one of whose
            lifecycle hooks ended (from the hook's thread, :mod:`.lifecycle`); the agent enqueues the pod so its
            status is written (or its container killed or sent SIGTERM) at once.
        secrets: reads the Secrets of ``env[].valueFrom.secretKeyRef``, ``envFrom[].secretRef`` and ``secret``
            and ``projected`` volumes (:mod:`.sources`); default: none (such pods get
            ``CreateContainerConfigError``).
        config_maps: reads the ConfigMaps of ``configMapKeyRef``, ``configMapRef``, ``configMap`` volumes and
            projected sources, likewise.

    Attributes:
        containers: the container manager (:class:`~.containers.ContainerManager`).
    """

    def __init__(
        self,
        client: connect.Client,
        *,
        node_name: str,
        host_ip: str = "127.0.0.1",
        state_dir: Path | None = None,
        pause_image: str = PAUSE_IMAGE,
        busybox: Path = Path("/bin/busybox"),
        backoff: podspec.BackOffPolicy = podspec.BackOffPolicy(),
        pull_timeout: float = 300.0,
        pull_auth: PullAuth | None = None,
        clock: Callable[[], float] = time.time,
        instance: str | None = None,
        prober: ProberManager | None = None,
        events: EventSink | None = None,
        on_probe_result: Callable[[Pod], None] | None = None,
        secrets: SecretLookup | None = None,
        config_maps: ObjectLookup | None = None,
    ) -> None:
        self.node_name = node_name
        self.instance = instance or node_name
        ops = self._ops = engine.Containers(client)
        volumes = VolumeManager(
            Path(state_dir) if state_dir is not None else Path("/var/lib/dockyard/agent"),
            secrets=secrets,
            config_maps=config_maps,
        )
        images = ImageManager(
            ops,
            backoff=backoff,
            pull_timeout=pull_timeout,
            pull_auth=pull_auth,
            pause_image=pause_image,
            busybox=busybox,
            clock=clock,
        )
        self._prober: ProberManager = prober or ProbeManager(ops, events=events, on_change=on_probe_result, clock=clock)
        hooks = HookManager(
            HandlerRunner(ops, Prober(ops)),
            pod_dir=volumes.pod_dir,
            events=events,
            on_done=on_probe_result,
            clock=clock,
        )
        self.containers = ContainerManager(
            ops,
            images=images,
            volumes=volumes,
            instance=self.instance,
            clock=clock,
            secrets=secrets,
            config_maps=config_maps,
            hooks=hooks,
        )
        pod_ips = PodIPs()
        self._managers = Managers(
            containers=self.containers,
            sandbox=SandboxManager(
                ops, containers=self.containers, images=images, instance=self.instance, backoff=backoff, clock=clock
            ),
            volumes=volumes,
            status=StatusManager(
                containers=self.containers,
                images=images,
                prober=self._prober,
                host_ip=host_ip,
                clock=clock,
                pod_ips=pod_ips,
            ),
            prober=self._prober,
            host_ip=host_ip,
            backoff=backoff,
            clock=clock,
            pod_ips=pod_ips,
            events=events,
        )
        self._workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()

    def add_exit_hook(self, hook: ExitHook) -> None:
        """Call ``hook(namespace, pod name, container name, engine container id)`` whenever a pod's sync sees one
        of its containers exited, before the sync restarts (removes) it: the container can still be committed
        (a Push with ``trigger: OnExit``). A hook runs within the pod's sync; an exception it raises is logged."""
        self._managers.exit_hooks.append(hook)

    def container_logs(
        self,
        pod_uid: str,
        pod_name: str,
        container_name: str,
        *,
        previous: bool = False,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> engine.LogStream:
        """The output of the pod's current container ``container_name`` (its previous, terminated attempt with
        ``previous``), as the kubelet's ``GetContainerLogs`` reads it from the runtime.

        Raises:
            LogsUnavailable: no such container yet (``... is waiting to start``) or no previous attempt kept
                (the kubelet's wording), or the engine no longer has it.
            dockyard.agent.engine.errors.EngineError: the engine failed.
        """
        ctrs = [c for c in self.containers.list_pod(pod_uid) if c.name == container_name]
        current = max(ctrs, key=lambda c: c.attempt) if ctrs else None
        if previous:
            older = [c for c in ctrs if current is not None and c.attempt < current.attempt]
            if not older:
                raise LogsUnavailable(f'previous terminated container "{container_name}" in pod "{pod_name}" not found')
            chosen = max(older, key=lambda c: c.attempt)
        elif current is None or current.state == "created":
            raise LogsUnavailable(
                f'container "{container_name}" in pod "{pod_name}" is waiting to start: ContainerCreating'
            )
        else:
            chosen = current
        try:
            return self._ops.logs(chosen.id, follow=follow, tail=tail, timestamps=timestamps, since=since)
        except engine_errors.NotFound as err:
            raise LogsUnavailable(f'container "{container_name}" in pod "{pod_name}" is gone: {err}') from err

    def latest_container(self, pod_uid: str, container_name: str) -> EngineContainer | None:
        """The pod's latest engine container of ``container_name`` (running or not), or ``None``."""
        return latest(self.containers.list_pod(pod_uid), container_name)

    # --- public interface ---------------------------------------------------

    def sync_pod(self, pod: Pod) -> PodStatus:
        """Make the engine match the pod spec; return the pod's new ``status``.

        Cheap when nothing changes (one list and a few inspects); never
        blocks except while pulling an image. A pod with
        ``metadata.deletionTimestamp`` is terminated (SIGTERM, SIGKILL after
        its grace period over later calls) and, once every container has
        stopped, its containers and ``emptyDir`` volumes are removed; from
        then on its uid is absent from :meth:`pod_uids`.

        Build pods (label ``dockyard.dev/build-pod``) are not handled here;
        their current status is returned unchanged.
        """
        if podspec.is_build_pod(pod):
            return pod.status or PodStatus()
        uid = str(pod.metadata.uid if pod.metadata else "")
        worker = self._worker(uid)
        status = worker.sync(pod)
        if worker.gone:
            self._drop(uid, worker)
        return status

    def kill_pod(self, uid: str, *, grace_period_seconds: int | None = None) -> None:
        """Stop and remove every container of the pod, infra last; idempotent.

        Blocks up to the grace period (the pod's, from the container labels,
        unless ``grace_period_seconds`` is given): app containers get SIGTERM
        in parallel, then SIGKILL (kubelet ``killPodWithSyncResult``). Also
        removes the pod's ``emptyDir`` volumes and drops the pod's worker.
        """
        worker = self._worker(uid)
        worker.kill(grace_period_seconds=grace_period_seconds)
        self._drop(uid, worker)

    def close(self) -> None:
        """No new container from now on: a sync under way (or later) that would create or start one (the
        sandbox included) fails there as if the engine had refused, with the reason "the node agent is
        stopping". Called when the node agent stops, before it stops the pods' containers, so that none starts
        after them (a sync can outlast the wait for it, e.g. in a pull)."""
        self._ops.refuse_new("the node agent is stopping: no new container")

    def pod_uids(self) -> set[str]:
        """Uids of the pods that have containers on this engine."""
        return self.containers.pod_uids()

    def container_id(self, pod: Pod | Mapping[str, Any], container_name: str) -> str | None:
        """Engine id of the pod's current container ``container_name`` (the
        latest attempt, running or not), or ``None``. ``pod``: typed, or a wire dict (the Push worker's)."""
        uid = pod.metadata.uid if isinstance(pod, Pod) and pod.metadata else pod["metadata"]["uid"]
        last = latest(self.containers.list_pod(str(uid)), container_name)
        return last.id if last else None

    # --- pod workers --------------------------------------------------------

    def _worker(self, uid: str) -> PodWorker:
        with self._lock:
            worker = self._workers.get(uid)
            if worker is None:
                worker = self._workers[uid] = PodWorker(uid, self._managers)
            return worker

    def _drop(self, uid: str, worker: PodWorker) -> None:
        """Forget the pod: its worker and with it the pod's :class:`~.state.PodState`."""
        with self._lock:
            if self._workers.get(uid) is worker:
                del self._workers[uid]
        self._prober.remove_pod(uid)
        self._managers.pod_ips.release(uid)
