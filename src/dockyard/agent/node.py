"""The node agent: registers this node's Node and runs its pods, build pods and pushes.

Kubelet-like: it watches Pods through the Kubernetes API, makes the engine
match each pod (via :class:`dockyard.agent.pods.PodRuntime`), and writes pod
status through ``/status``. Pods labelled ``dockyard.dev/build-pod`` are run
by a detached builder process each, with the engine's build API (see
:mod:`dockyard.agent.buildpods`). Pushes are served here because only this
node can reach the container.

State lives in the API, in the engine (container labels) and in the state
dir, never only in memory, so a killed agent resumes: running containers are
adopted, builders that outlived it are re-attached (never started twice), and
a Push left ``Running`` is committed and pushed again. The node's ``v1`` Node is registered and heart-beaten
by :mod:`dockyard.agent.nodestatus`; while it is cordoned (``spec.unschedulable``) no new pod is bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightkube.models.core_v1 import ContainerStatus, PodStatus
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from dockyard.agent import (
    buildpods,
    nodestatus,
    pods,
    podsecrets,
    podspec,
    pullsecrets,
    pushes,
    scheduling,
    staticpods,
)
from dockyard.agent.engine import connect as engine_connect
from dockyard.api import buildpod, phases, timefmt
from dockyard.api import labels as well_known
from dockyard.client import events, resources, runtime
from dockyard.client.connection import Connection

log = logging.getLogger(__name__)

SYNC_PERIOD = 2.0  # seconds between syncs of one running pod (kubelet's housekeeping)
SWEEP_PERIOD = 10.0  # seconds between sweeps for containers of pods that no longer exist
TERMINATING_RESYNC = 1.0  # seconds between syncs of a pod being deleted (its grace period is checked at each)
SCHEDULE_RETRY = 2.0  # seconds between checks of an unschedulable pod (sooner when a pod of this node goes)


class PodWorker(runtime.Controller):
    """Reconciles this node's Pods (key ``namespace/name``)."""

    name = "pods"

    def __init__(
        self,
        conn: Connection,
        *,
        runtime_: pods.PodRuntime,
        node_name: str,
        state_dir: Path,
        engine_url: str,
        max_builds: int = 2,
        engine_api_version: str | None = None,
    ) -> None:
        super().__init__(conn=conn, workers=4)
        self.component, self.host = "kubelet", node_name  # Events read as the kubelet's
        self.pods = runtime_
        self.node = node_name
        self._uids: dict[str, str] = {}
        self._terminating: set[str] = set()  # uids of pods whose deletion this agent has begun (one Killing Event)
        self._lock = threading.Lock()
        self._schedule_lock = threading.Lock()  # one scheduling decision at a time, as kube-scheduler's
        self._assumed: dict[str, Pod] = {}  # bound here, not yet seen bound by the informer (scheduler "assume")
        self._state_dir = Path(state_dir)
        self._engine_url = engine_url
        self._engine_api_version = engine_api_version
        self._max_builds = max_builds
        self.static_uids: Callable[[], set[str]] = set  # the static pods' UIDs (their containers are no orphans)
        self.node_unschedulable: Callable[[], bool] = lambda: False  # spec.unschedulable of this node's Node

    def setup(self) -> None:
        super().setup()
        # asynchronous, as the controllers' recorders: a bind (the start of every pod, build pods included)
        # does not wait for its Scheduled Event's round trip
        self.scheduler_events = events.EventRecorder(
            self.conn.lightkube(timeout=self.EVENT_TIMEOUT), component=scheduling.COMPONENT, asynchronous=True
        )
        self.builds = buildpods.BuildPods(
            self.api,
            state_dir=self._state_dir,
            kubeconfig=[str(p) for p in self.conn.paths],
            engine_url=self._engine_url,
            engine_api_version=self._engine_api_version,
            max_builds=self._max_builds,
            waiting=self._waiting_build_pods,
            on_exit=self._builder_exited,
        )
        buildpods.prestart_forkserver()

    def _builder_exited(self, pod: Pod) -> None:
        """A builder ended: report its pod now, and let the next waiting build pod take the slot."""
        self.queue.add(resources.key(pod))
        for waiting in self._waiting_build_pods():
            self.queue.add(resources.key(waiting))

    def _waiting_build_pods(self) -> list[Pod]:
        informer = self.informers.get("Pod")
        return [
            p
            for p in (informer.items() if informer else [])
            if buildpod.is_build_pod(p)
            and (p.spec.nodeName if p.spec else None) in (None, "", self.node)
            and ((p.status.phase if p.status else None) or phases.PodPhase.PENDING) == phases.PodPhase.PENDING
        ]

    def watches(self) -> list[runtime.Watch]:
        def track(event: str, pod: Pod) -> list[str]:
            k = resources.key(pod)
            keys = [k]
            with self._lock:
                if event == "DELETED" or (pod.spec is not None and pod.spec.nodeName):
                    self._assumed.pop(k, None)
                if event == "DELETED" and pod.spec is not None and pod.spec.nodeName == self.node:
                    keys += [resources.key(p) for p in self._unscheduled()]  # its ports may be free now
                if event == "DELETED":
                    uid = self._uids.pop(k, None)
                    if staticpods.is_mirror_pod(pod):
                        pass  # a mirror pod's static pod runs on (and its mirror comes back): staticpods
                    elif buildpod.is_build_pod(pod):
                        self.builds.cancel(str(pod.metadata.uid))  # cancel or deadline: abort the build
                    elif uid:
                        if uid not in self._terminating:  # removed at once (force, cascade, namespace)
                            self.events.record(pod, events.NORMAL, "Killing", "Stopping the pod's containers")
                        self._terminating.discard(uid)
                        self._kill_later(uid)  # nothing left to stop after a graceful deletion; else it stops
                else:
                    self._uids[k] = str(pod.metadata.uid)
            return keys

        return [runtime.Watch("Pod", track)]

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        threads = super().start(stop)
        sweeper = threading.Thread(target=self._sweep, args=(stop,), daemon=True, name="pods-sweep")
        sweeper.start()
        return threads + [sweeper]

    def _kill_later(self, uid: str) -> None:
        threading.Thread(target=self._kill, args=(uid,), daemon=True).start()

    def _kill(self, uid: str) -> None:
        """Stop and remove a deleted pod's containers; then look again at once at the pods waiting for a host
        port (the pod's sandbox held its ports until now; kube-scheduler moves unschedulable pods back to its
        active queue when a pod is deleted, ``MoveAllToActiveOrBackoffQueue``), not after
        :data:`SCHEDULE_RETRY`."""
        try:
            self.pods.kill_pod(uid)
        finally:
            for pod in self._unscheduled():
                self.queue.add(resources.key(pod))

    def _sweep(self, stop: threading.Event) -> None:
        """Remove containers whose pod is gone (deleted while the agent was down, or missed)."""
        while not stop.wait(SWEEP_PERIOD):
            informer = self.informers.get("Pod")
            if informer is None or not informer.synced.is_set():
                continue
            try:
                known = {str(p.metadata.uid) for p in informer.items()} | self.static_uids()
                self.builds.sweep(known)
                for uid in self.pods.pod_uids() - known:
                    log.info("removing containers of deleted pod %s", uid)
                    self.pods.kill_pod(uid)
            except Exception:
                log.exception("sweep failed")

    def reconcile(self, key: str) -> float | None:
        ns, name = resources.split_key(key)
        pod = self._current(key, ns, name)
        if pod is None or pod.spec is None or staticpods.is_mirror_pod(pod):
            return None  # a mirror pod is run from its manifest (kubelet: mirror pods are never run)
        node = pod.spec.nodeName
        if node and node != self.node:
            return None
        if pod.metadata.deletionTimestamp:  # never bound once its deletion is asked for (kube-scheduler skips it)
            return self._terminate(pod) if node else None
        if not node:
            with self._schedule_lock:
                if self.node_unschedulable():  # cordoned: kube-scheduler's NodeUnschedulable filter
                    return self._unschedulable(pod, scheduling.unschedulable_node_message())
                if not self._fits(pod):
                    return self._unschedulable(pod)
                pod = self._bind(pod)
        if buildpod.is_build_pod(pod):
            return self.builds.sync(pod)
        status = self.pods.sync_pod(pod)
        self._container_events(pod, status)
        runtime.patch_status(self.api, "Pod", pod, status.to_dict())
        return SYNC_PERIOD

    def _terminate(self, pod: Pod) -> float | None:
        """A pod of this node being deleted (``metadata.deletionTimestamp``): stop it within its
        ``deletionGracePeriodSeconds`` (``preStop`` hooks, SIGTERM, SIGKILL once the grace period is over; a
        build pod's builder is cancelled), report its containers' last states, then delete it with grace period 0
        and its uid as precondition, as the kubelet's status manager does once a deleted pod's containers are
        gone. Returns when to look again while it stops: the engine is not waited on here, so the workers stay
        free for other pods (a build pod's builder is, at most ``buildpods.KILL_AFTER`` + 1 s). An agent
        restarted halfway takes it up from the stored state (the pod's ``deletionTimestamp``, its containers)."""
        uid = str(pod.metadata.uid)
        with self._lock:
            first = uid not in self._terminating
            self._terminating.add(uid)
        if first:
            self.events.record(pod, events.NORMAL, "Killing", "Stopping the pod's containers")
        if buildpod.is_build_pod(pod):
            waiter = self.builds.cancel(uid)
            if waiter is not None:
                waiter.join(buildpods.KILL_AFTER + 1)
        else:
            status = self.pods.sync_pod(pod)
            runtime.patch_status(self.api, "Pod", pod, status.to_dict())
            if uid in self.pods.pod_uids():
                return TERMINATING_RESYNC
        self._delete_terminated(pod)
        return None

    def _delete_terminated(self, pod: Pod) -> None:
        """``DELETE`` the stopped ``pod`` with ``gracePeriodSeconds: 0`` and a uid precondition (a pod made again
        with its name is not touched: 409); gone already (404) is done too."""
        meta = pod.metadata
        options = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta.uid},
        }
        with self.conn.http() as http:
            resp = http.request("DELETE", f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}", json=options)
        if resp.status_code not in (200, 202, 404, 409):
            resp.raise_for_status()

    def _current(self, key: str, ns: str, name: str) -> Pod | None:
        """The pod as this agent last knows it: from the informer's cache, as the kubelet reads its pods from its
        watch (client-go listers), unless the cache may lag this agent's own last write to it (a status patch
        not yet seen, :func:`dockyard.client.runtime.unseen_write`; a bind not yet seen bound), has not synced,
        or does not hold it (deleted, or not seen yet): then a live ``GET`` (None on 404)."""
        informer = self.informers.get("Pod")
        cached: Pod | None = (
            informer.lister.get(ns, name) if informer is not None and informer.synced.is_set() else None
        )
        with self._lock:
            assumed = key in self._assumed
        if cached is None or assumed or runtime.unseen_write(cached):
            found: Pod | None = runtime.get(self.api, "Pod", name, ns)
            return found
        return cached

    def _container_events(self, pod: Pod, status: PodStatus) -> None:
        """The kubelet's container Events: ``Started`` on each new container, ``BackOff`` and failures."""
        before = {c.name: c for c in (pod.status.containerStatuses if pod.status else None) or []}
        for now in status.containerStatuses or []:
            old = before.get(now.name)
            if now.containerID and now.containerID != (old.containerID if old else None) and _running(now):
                self.events.record(pod, events.NORMAL, "Started", f"Started container {now.name}")
            reason, message = _waiting(now)
            if reason and reason != _waiting(old)[0] and reason not in ("ContainerCreating", "PodInitializing"):
                kind = "BackOff" if reason in ("CrashLoopBackOff", "ImagePullBackOff") else "Failed"
                self.events.record(pod, events.WARNING, kind, f"{now.name}: {reason}: {message}".rstrip(": "))

    def _unscheduled(self) -> list[Pod]:
        informer = self.informers.get("Pod")
        return [p for p in (informer.items() if informer else []) if p.spec is not None and not p.spec.nodeName]

    def _fits(self, pod: Pod) -> bool:
        """kube-scheduler's ``NodePorts`` filter on this node (:mod:`dockyard.agent.scheduling`): no pod of the
        node (bound, or bound here and not yet seen so) holds one of the pod's host ports, and nothing else
        listens on one."""
        assert pod.spec is not None
        wanted = scheduling.host_ports(pod.spec)
        if not wanted:
            return True
        informer = self.informers.get("Pod")
        on_node = {resources.key(p): p for p in (informer.items() if informer else []) if p.spec is not None}
        on_node = {k: p for k, p in on_node.items() if p.spec.nodeName == self.node}
        with self._lock:
            on_node.update(self._assumed)
        used = {
            port
            for k, p in on_node.items()
            if k != resources.key(pod) and (p.status.phase if p.status else None) not in phases.POD_TERMINAL
            for port in scheduling.host_ports(p.spec)
        }
        return not scheduling.conflicts(wanted, used) and not any(scheduling.in_use(port) for port in wanted)

    def _unschedulable(self, pod: Pod, message: str | None = None) -> float:
        """Leave the pod ``Pending`` with ``PodScheduled=False``/``Unschedulable`` and, when it turns so, a
        ``FailedScheduling`` Event, in kube-scheduler's words (``message``: no free ports by default); look again
        in :data:`SCHEDULE_RETRY` seconds."""
        message = message or scheduling.no_free_ports_message()
        previous = (pod.status.conditions if pod.status else None) or []
        was = next((c for c in previous if c.type == "PodScheduled"), None)
        condition = podspec.condition(
            "PodScheduled",
            False,
            now=podspec.to_time(time.time()),
            previous=previous,
            reason=scheduling.UNSCHEDULABLE,
            message=message,
        )
        runtime.patch_status(
            self.api, "Pod", pod, {"phase": phases.PodPhase.PENDING, "conditions": [condition.to_dict()]}
        )
        if was is None or was.reason != scheduling.UNSCHEDULABLE or was.message != message:
            self.scheduler_events.record(pod, events.WARNING, scheduling.FAILED_SCHEDULING, message)
        return SCHEDULE_RETRY

    def _bind(self, pod: Pod) -> Pod:
        """Assign the pod to this node (the embedded engine has one node; no scheduler)."""
        bound: Pod = self.api.patch(
            Pod,
            pod.metadata.name,
            {"metadata": {"labels": {well_known.NODE_NAME: self.node}}, "spec": {"nodeName": self.node}},
            namespace=pod.metadata.namespace,
            patch_type=PatchType.MERGE,
        )
        self.scheduler_events.record(
            bound,
            events.NORMAL,
            "Scheduled",
            f"Successfully assigned {bound.metadata.namespace}/{bound.metadata.name} to {self.node}",
        )
        with self._lock:
            self._assumed[resources.key(bound)] = bound
        return bound


def _running(status: ContainerStatus) -> bool:
    return status.state is not None and status.state.running is not None


def _waiting(status: ContainerStatus | None) -> tuple[str, str]:
    """``(reason, message)`` of a container's waiting state; ``("", "")`` when it is not waiting."""
    waiting = status.state.waiting if status is not None and status.state is not None else None
    return (waiting.reason or "", waiting.message or "") if waiting is not None else ("", "")


class NodeAgent:
    """All of a node's workers; ``start(stop)`` runs them on daemon threads.

    Args:
        conn: API connection (the node identity's kubeconfig).
        engine_client: a ``docker.DockerClient`` for Docker Engine or Podman's service.
        engine_url: that engine's endpoint (``unix:///…``), for builder processes.
        node_name: this node's name (``spec.nodeName``, label ``dockyard.dev/nodename``).
        state_dir: the agent's state: ``volumes/`` (emptyDir) and ``builds/`` (builder processes).
        instance: which agent owns the engine's pod containers (see ``PodRuntime``).
        pod_manifest_path: a folder of static pod manifests (kubelet ``staticPodPath``), or ``None``.
        manifest_url: a loopback URL of static pod manifests (kubelet ``--manifest-url``), or ``None``.
        static_period: seconds between reads of ``pod_manifest_path`` and syncs of the static pods.
        url_period: seconds between reads of ``manifest_url`` (kubelet's default: 20).

    Raises:
        ValueError: ``manifest_url`` is not an http(s) URL on loopback.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        engine_client: Any,
        engine_url: str,
        node_name: str,
        state_dir: Path,
        max_builds: int = 2,
        instance: str | None = None,
        pod_manifest_path: Path | None = None,
        manifest_url: str | None = None,
        static_period: float = SYNC_PERIOD,
        url_period: float = 20.0,
    ) -> None:
        self.runtime = pods.PodRuntime(
            engine_client,
            node_name=node_name,
            state_dir=Path(state_dir) / "volumes",
            instance=instance,
            pull_auth=pullsecrets.PullSecrets(conn, node_name=node_name),
            secrets=podsecrets.SecretReader(conn),
            config_maps=podsecrets.ConfigMapReader(conn),
            events=self._pod_event,
            on_probe_result=self._probe_result,
        )
        self.pods = PodWorker(
            conn,
            runtime_=self.runtime,
            node_name=node_name,
            state_dir=Path(state_dir),
            engine_url=engine_url,
            engine_api_version=engine_connect.api_version(engine_client),
            max_builds=max_builds,
        )
        self.pushes = pushes.PushWorker(conn, runtime_=self.runtime, engine_client=engine_client, node_name=node_name)
        self.node_status = nodestatus.NodeStatusReporter(conn, node_name=node_name, engine_client=engine_client)
        self.pods.node_unschedulable = lambda: self.node_status.unschedulable
        self.static: staticpods.StaticPods | None = None
        if pod_manifest_path is not None or manifest_url:
            self.static = staticpods.StaticPods(
                conn,
                runtime_=self.runtime,
                node_name=node_name,
                manifest_path=pod_manifest_path,
                manifest_url=manifest_url,
                period=static_period,
                url_period=url_period,
                mirrors=self._pods_seen,
                on_status=lambda mirror, status: self.pods._container_events(mirror, status),
            )
            self.pods.static_uids = self.static.uids

    def _pods_seen(self) -> list[Pod]:
        informer = self.pods.informers.get("Pod")
        return informer.items() if informer is not None and informer.synced.is_set() else []

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        threads = self.node_status.start(stop) + self.pods.start(stop) + self.pushes.start(stop)
        return threads + (self.static.start(stop) if self.static is not None else [])

    def node_stopped(self) -> None:
        """On a clean stop: this node's Node ``Ready`` ``Unknown`` (:meth:`.nodestatus.NodeStatusReporter.stopped`)."""
        self.node_status.stopped()

    def _pod_event(self, pod: Pod, type_: str, reason: str, message: str) -> None:
        """The runtime's and prober's pod Events (``Unhealthy``, ``Killing``), recorded as the kubelet's."""
        recorder = getattr(self.pods, "events", None)  # set when the pod worker starts
        if recorder is not None:
            recorder.record(pod, type_, reason, message)

    def _probe_result(self, pod: Pod) -> None:
        """A probe result changed: sync the pod now, so its readiness is written (or it is restarted) at once."""
        self.pods.queue.add(resources.key(pod))

    def synced(self) -> bool:
        return self.pods.synced() and self.pushes.synced()

    def stop_builds(self) -> None:
        """Stop this node's builders and mark their pods ``Failed`` (``BuildPodEvicted``)."""
        stopped = set(self.pods.builds.stop_all())
        informer = self.pods.informers.get("Pod")
        for pod in informer.items() if informer else []:
            if pod.metadata.uid in stopped:
                try:
                    self.pods.builds.sync(pod)
                except Exception:
                    log.warning("could not record the stopped build of pod %s", pod.metadata.name)

    def stop_pods(self, *, grace_seconds: int = 2, budget: float = 5.0) -> None:
        """Stop and remove every pod container on this node, in parallel, within ``budget`` seconds.

        Used on a clean shutdown of ``dockyard up``, once the agent's ``stop`` is set: no container may be
        created or started from then on (:meth:`.pods.PodRuntime.close`), the pod workers' syncs under way are
        waited for (within half the budget), then every container of this node is stopped. The Pod objects stay
        in the API, so the next start runs them again, except those with ``restartPolicy: Never``: their one run
        was cut short, so they end ``Failed`` as Kubernetes' graceful node shutdown leaves a pod it stopped
        (:func:`shutdown_status`).
        """
        deadline = time.monotonic() + budget
        self.runtime.close()  # a sync that outlasts the wait below starts no container after the stop
        if not self.pods.join_workers(budget / 2):
            log.warning("a pod sync was still running after %.1fs; stopping the containers anyway", budget / 2)
        here = set(self.runtime.pod_uids())
        never = [
            p
            for p in self._pods_seen()
            if p.spec is not None
            and p.spec.restartPolicy == "Never"
            and str(p.metadata.uid) in here
            and not p.metadata.deletionTimestamp
            and (p.status.phase if p.status else None) not in phases.POD_TERMINAL
            and not buildpod.is_build_pod(p)
            and not staticpods.is_mirror_pod(p)
        ]
        threads = [
            threading.Thread(
                target=self.runtime.kill_pod, args=(uid,), kwargs={"grace_period_seconds": grace_seconds}, daemon=True
            )
            for uid in self.runtime.pod_uids()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for pod in never:
            try:
                runtime.patch_status(self.pods.api, "Pod", pod, shutdown_status(pod))
            except Exception as err:  # the API may be stopping too: the next start sees the pod as it was
                log.warning("pod %s: could not record its stop: %s", pod.metadata.name, err)


SHUTDOWN_REASON = "Terminated"
SHUTDOWN_MESSAGE = "Pod was terminated in response to imminent node shutdown."
"""The reason and message Kubernetes' graceful node shutdown (kubelet ``nodeshutdown`` manager) gives a pod it stopped."""


def shutdown_status(pod: Pod, now: str | None = None) -> dict[str, Any]:
    """The status patch of a ``restartPolicy: Never`` pod stopped by a clean stop of the node: ``phase`` Failed,
    reason :data:`SHUTDOWN_REASON`, message :data:`SHUTDOWN_MESSAGE`, Ready False, each container that was running
    ``terminated`` (exit code 137, as killed) at ``now`` (RFC 3339, default: the current time)."""
    now = now or timefmt.now()
    status = pod.status.to_dict() if pod.status is not None else {}
    containers = []
    for cs in status.get("containerStatuses") or []:
        running = (cs.get("state") or {}).get("running")
        if running is not None:
            terminated = {"exitCode": 137, "reason": "Error", "finishedAt": now}
            if running.get("startedAt"):
                terminated["startedAt"] = running["startedAt"]
            if cs.get("containerID"):
                terminated["containerID"] = cs["containerID"]
            cs = {**cs, "state": {"terminated": terminated}, "ready": False, "started": False}
        containers.append(cs)
    conditions = [
        {**c, "status": "False", "lastTransitionTime": now} if c.get("type") in ("Ready", "ContainersReady") else c
        for c in status.get("conditions") or []
    ]
    patch: dict[str, Any] = {"phase": "Failed", "reason": SHUTDOWN_REASON, "message": SHUTDOWN_MESSAGE}
    if containers:
        patch["containerStatuses"] = containers
    if conditions:
        patch["conditions"] = conditions
    return patch
