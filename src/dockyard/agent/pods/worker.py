"""The pod worker: one per pod, serializing that pod's syncs and owning its memory.

kubelet ``pkg/kubelet/pod_workers.go`` (one worker per pod UID; syncs of one pod never overlap) driving
``kuberuntime_manager.go`` ``SyncPod``: list the pod's engine containers, compute the actions
(:func:`dockyard.agent.pods.actions.compute_pod_actions`, pure), act through the small managers (sandbox,
containers, images, volumes), and return the status the status manager computes. A deleted pod is
terminated over several syncs (SIGTERM, SIGKILL after its grace period), then its containers and pod dir
are removed and the worker is done (:attr:`PodWorker.gone`); its :class:`PodState` goes with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from lightkube.models.core_v1 import Container, PodSpec, PodStatus
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.pods.actions import (
    POST_START_FAILED,
    ContainerAction,
    ContainerStep,
    Observed,
    SandboxAction,
    SandboxStep,
    compute_container_action,
    compute_pod_actions,
)
from dockyard.agent.pods.containers import ContainerManager
from dockyard.agent.pods.lifecycle import POST_START, PRE_STOP
from dockyard.agent.pods.podips import PodIPs
from dockyard.agent.pods.prober import EventSink, ProberManager
from dockyard.agent.pods.sandbox import SandboxManager
from dockyard.agent.pods.state import EXITED, EngineContainer, ExitInfo, PodState, latest
from dockyard.agent.pods.status import StatusManager, SyncResult
from dockyard.agent.pods.volumes import VolumeManager
from dockyard.agent.podspec import INFRA_NAME
from dockyard.api import phases

__all__ = ["ExitHook", "Managers", "PodWorker"]

log = logging.getLogger(__name__)

ExitHook = Callable[[str, str, str, str], None]
"""``(namespace, pod name, container name, engine container id)`` of an exited container, before its restart."""

_TERMINAL_PHASES = phases.POD_TERMINAL
_STARTS = (ContainerStep.START, ContainerStep.START_CREATED, ContainerStep.RECREATE)
USAGE_CHECK_PERIOD = 10.0
"""Seconds between measures of a pod's ``emptyDir`` usage against its ``sizeLimit`` (the kubelet's eviction
manager's monitoring interval)."""
SECRET_REFRESH_PERIOD = 10.0
"""Seconds between rewrites of a running pod's ``secret`` and ``projected`` volumes from their Secrets
(:meth:`VolumeManager.refresh_secret_volumes`; the kubelet remounts them every sync period, 1 minute by default,
and reads the Secrets through a watch)."""


class Managers:
    """The node-wide managers a pod worker drives (shared by every pod's worker)."""

    def __init__(
        self,
        *,
        containers: ContainerManager,
        sandbox: SandboxManager,
        volumes: VolumeManager,
        status: StatusManager,
        prober: ProberManager,
        host_ip: str,
        backoff: podspec.BackOffPolicy,
        clock: Callable[[], float] = time.time,
        pod_ips: PodIPs | None = None,
        events: EventSink | None = None,
    ) -> None:
        self.containers = containers
        self.sandbox = sandbox
        self.volumes = volumes
        self.status = status
        self.prober = prober
        self.host_ip = host_ip
        self.backoff = backoff
        self.clock = clock
        self.events = events
        self.exit_hooks: list[ExitHook] = []
        self.pod_ips = pod_ips or PodIPs()


class PodWorker:
    """Syncs one pod (``uid``); :meth:`sync` calls are serialized.

    Attributes:
        state: what this worker remembers of the pod (:class:`PodState`).
        gone: the pod was deleted and everything of it removed; the worker is to be dropped.
    """

    def __init__(self, uid: str, managers: Managers) -> None:
        self.uid = uid
        self.state = PodState(uid)
        self.gone = False
        self._pod: Pod | None = None  # the pod as last synced: its preStop hooks when it is killed
        self._deletion_grace: int | None = None  # the grace period its deletion is stopping it with, once begun
        self._next_usage_check = 0.0
        self._next_secret_refresh = 0.0
        self._m = managers
        self._lock = threading.Lock()

    def sync(self, pod: Pod) -> PodStatus:
        """Make the engine match the pod; return its new ``status`` (see ``PodRuntime.sync_pod``)."""
        with self._lock:
            return self._sync(pod)

    def kill(self, *, grace_period_seconds: int | None = None) -> None:
        """Stop and remove every container of the pod, infra last, and its pod dir; blocking, bounded by
        the grace period (the pod's, from the container labels, unless given): app containers run their
        ``preStop`` hooks, then get SIGTERM, in parallel, then SIGKILL (kubelet ``killPodWithSyncResult``).
        The hooks come from the pod as last synced, else from the containers' labels."""
        m = self._m
        ctrs = m.containers.list_pod(self.uid)
        apps = [c for c in ctrs if c.name != INFRA_NAME and c.running]
        if apps:
            with ThreadPoolExecutor(max_workers=min(8, len(apps))) as pool:
                for c in apps:
                    grace = c.grace if grace_period_seconds is None else grace_period_seconds
                    pool.submit(m.containers.stop_with_hook, self.state, c, grace, pod=self._pod)
        m.containers.remove_all(self.state, ctrs)
        m.volumes.remove_pod_dir(self.uid)
        self.gone = True

    # --- one sync -------------------------------------------------------------------

    def _sync(self, pod: Pod) -> PodStatus:
        m, state = self._m, self.state
        old = pod.status or PodStatus()
        now = m.clock()
        ctrs = m.containers.list_pod(self.uid)
        self._pod = pod
        if pod.metadata is not None and pod.metadata.deletionTimestamp:
            m.prober.remove_pod(self.uid)  # kubelet: no probes for a pod being terminated
            return self._sync_deleting(pod, ctrs, now)
        if old.phase in _TERMINAL_PHASES:
            m.prober.remove_pod(self.uid)
            # Terminal is forever (kubelet never leaves Succeeded/Failed); a container still running is killed
            # (kubelet syncTerminatingPod), the sandbox stopped.
            grace = podspec.grace_period(pod)
            for c in ctrs:
                if c.running and c.name != INFRA_NAME:
                    m.containers.terminate(state, c, grace, now, pod=pod)
            m.containers.stop_sandbox(ctrs)
            if not ctrs:
                return old
            status = m.status.status(state, pod, ctrs, now, SyncResult(), terminal=True)
            status.phase = old.phase
            return status
        spec = pod.spec or PodSpec(containers=[])
        pod_ip = m.pod_ips.assign(self.uid, pod.status.podIP if pod.status else None)
        bindings, errors = podspec.port_bindings(spec, host_ip=m.host_ip, pod_ip=pod_ip)
        for key in ("hostNetwork", "hostPID", "hostIPC"):  # refused by the API server; pods stored before
            if getattr(spec, key):
                errors.append(podspec.PortError(f"spec.{key}", "host namespaces are not supported"))
        if errors:
            return self._refuse(pod, ctrs, now, errors)
        if now >= self._next_usage_check:
            self._next_usage_check = now + USAGE_CHECK_PERIOD
            over = m.volumes.empty_dir_over_limit(pod)
            if over is not None:
                return self._evict(
                    pod, ctrs, now, f'Usage of EmptyDir volume "{over[0]}" exceeds the limit "{over[1]}". '
                )

        if now >= self._next_secret_refresh:
            self._next_secret_refresh = now + SECRET_REFRESH_PERIOD
            for name in m.volumes.refresh_secret_volumes(pod):
                log.info("pod %s: volume %r now holds its Secrets' current keys", self.uid, name)

        m.prober.add_pod(pod)
        sync = SyncResult()
        observed = self._observe(ctrs, pod)
        self._exited(pod, ctrs, observed)
        actions = compute_pod_actions(pod, observed, now=now, host_ip=m.host_ip, policy=m.backoff, pod_ip=pod_ip)
        infra_id = self._act_sandbox(pod, actions.sandbox, bindings, ctrs, now, sync)
        if infra_id is not None:
            hooked = ""  # kubelet: containers start one after the other, each after its postStart hook
            for container, action in zip(spec.containers, actions.containers, strict=True):
                if hooked and action.step in _STARTS:
                    sync.waiting[action.name] = ("ContainerCreating", f'waiting for the postStart hook of "{hooked}"')
                    continue
                self._act_container(pod, container, action, ctrs, infra_id, now, sync)
                if m.containers.hooks is not None and m.containers.hooks.pending_post_start(state, container.name):
                    hooked = container.name
        if sync.acted:
            ctrs = m.containers.list_pod(self.uid)
        status = m.status.status(state, pod, ctrs, now, sync)
        if status.phase in _TERMINAL_PHASES:
            m.containers.stop_sandbox(ctrs)
            m.prober.remove_pod(self.uid)
        return status

    def _observe(self, ctrs: list[EngineContainer], pod: Pod) -> Observed:
        """The engine's view for :func:`compute_pod_actions`: exits and networks of each app container's
        latest attempt, and the running ones whose postStart hook failed."""
        m, state = self._m, self.state
        specs = {c.name: c for c in (pod.spec.containers if pod.spec else [])}
        exits: dict[str, ExitInfo] = {}
        networks: dict[str, str] = {}
        hook_failed: set[str] = set()
        for name in sorted({c.name for c in ctrs if c.name != INFRA_NAME}):
            last = latest(ctrs, name)
            if last is None:
                continue
            container = specs.get(name)
            if last.running and container is not None and m.containers.hooks is not None:
                run = m.containers.hooks.post_start_run(state, container, last)
                if run is not None and run.failed:
                    hook_failed.add(last.id)
            info = m.containers.exit_info(state, last)
            if info is not None:
                exits[last.id] = info
            if last.created and last.id not in state.start_failures:
                attrs = m.containers.inspect(state, last)
                if attrs is not None:
                    networks[last.id] = str((attrs.get("HostConfig") or {}).get("NetworkMode") or "")
        return Observed(
            containers=tuple(ctrs),
            exits=exits,
            changed=frozenset(state.changed),
            start_failed=frozenset(state.start_failures),
            networks=networks,
            sandbox_failure=state.sandbox_failure,
            unhealthy=m.prober.unhealthy(self.uid),
            post_start_failed=frozenset(hook_failed),
        )

    def _exited(self, pod: Pod, ctrs: list[EngineContainer], observed: Observed) -> None:
        """Tell the exit hooks (:meth:`PodRuntime.add_exit_hook`) of each exited container while it still exists:
        the actions computed next may restart it, removing it."""
        namespace = str((pod.metadata.namespace if pod.metadata else None) or "")
        name = str((pod.metadata.name if pod.metadata else None) or "")
        for c in ctrs:
            if c.id in observed.exits and c.state in EXITED:
                for hook in self._m.exit_hooks:
                    try:
                        hook(namespace, name, c.name, c.id)
                    except Exception:
                        log.exception("exit hook for container %s of pod %s failed", c.name, name)

    def _act_sandbox(
        self,
        pod: Pod,
        action: SandboxAction,
        bindings: dict[str, list[tuple[str, int]]],
        ctrs: list[EngineContainer],
        now: float,
        sync: SyncResult,
    ) -> str | None:
        """Carry out the sandbox step; return the infra id the containers run in, or ``None`` (then no
        container is touched)."""
        m = self._m
        step = action.step
        if step is SandboxStep.KEEP:
            return action.infra_id
        if step in (SandboxStep.KILL_CONTAINERS, SandboxStep.NEVER):
            # kubelet: "Pod sandbox changed, it will be killed and re-created" — all containers first (a Never
            # pod's are killed and not started again).
            grace = podspec.grace_period(pod)
            for c in action.kill:
                m.containers.terminate(self.state, c, grace, now, pod=pod)
        else:
            for c in action.kill:
                m.containers.kill_now(c.id)
        if step is not SandboxStep.CREATE:
            sync.sandbox_message = action.message
            return None
        sync.acted = True
        infra_id, message = m.sandbox.create(self.state, pod, action, bindings, ctrs)
        if infra_id is None:
            sync.sandbox_message = message
        return infra_id

    def _act_container(
        self,
        pod: Pod,
        container: Container,
        action: ContainerAction,
        ctrs: list[EngineContainer],
        infra_id: str,
        now: float,
        sync: SyncResult,
    ) -> None:
        m, state = self._m, self.state
        step = action.step
        if step is ContainerStep.KEEP:
            return
        if step is ContainerStep.WAIT:
            sync.waiting[action.name] = (action.reason, action.message)
            return
        sync.acted = True
        if step is ContainerStep.KILL:
            grace = podspec.grace_period(pod)
            first = action.container_id not in state.terminating and (action.container_id, PRE_STOP) not in state.hooks
            if action.reason == POST_START_FAILED:
                # Its postStart hook failed: restarted per restartPolicy, with the crash back-off.
                run = state.hooks.get((action.container_id, POST_START))
                if first and run is not None and m.containers.hooks is not None:
                    m.containers.hooks.record_post_start_failure(pod, run)
                if first and m.events is not None:
                    m.events(pod, "Normal", "Killing", action.message)
            elif action.probe is None:
                # "Container definition changed, will be restarted" (any restartPolicy).
                state.changed.add(action.container_id)
            else:
                # Failed its liveness/startup probe: restarted per restartPolicy, with the crash back-off.
                grace = action.grace if action.grace is not None else grace
                if first and m.events is not None:
                    m.events(pod, "Normal", "Killing", action.message)
            for c in ctrs:
                if c.id == action.container_id:
                    m.containers.terminate(state, c, grace, now, pod=pod)
            return
        if step is ContainerStep.RECREATE:
            m.containers.remove_quietly(state, action.container_id)
            ctrs = [c for c in ctrs if c.id != action.container_id]
        elif step is ContainerStep.START_CREATED:
            error = m.containers.start_existing(action.container_id)
            if error is None:
                if m.containers.hooks is not None:
                    m.containers.hooks.post_start(state, pod, container, action.container_id)
                return
            state.start_failures[action.container_id] = (now, error)
            # Decide again with the failure known, as the kubelet's next look at the pod would.
            again = compute_container_action(
                pod, container, self._observe(ctrs, pod), infra_id=infra_id, now=now, policy=m.backoff
            )
            self._act_container(pod, container, again, ctrs, infra_id, now, sync)
            return
        problem = m.containers.start(
            state,
            pod,
            container,
            spec_hash=action.spec_hash,
            attempt=action.attempt,
            backoff=action.backoff,
            infra_id=infra_id,
            ctrs=ctrs,
            now=now,
            pod_ip=m.pod_ips.get(self.uid),
            host_ip=m.host_ip,
        )
        if problem is not None:
            sync.waiting[action.name] = problem

    # --- deletion and refusal ---------------------------------------------------------

    def _sync_deleting(self, pod: Pod, ctrs: list[EngineContainer], now: float) -> PodStatus:
        m, state = self._m, self.state
        grace = podspec.grace_period(pod)
        if self._deletion_grace is not None and grace < self._deletion_grace:
            # a later delete shortened the grace period (kube-apiserver moved deletionTimestamp closer): as the
            # kubelet kills again with the shorter one, SIGKILL comes that many seconds from now at the latest
            for container_id, deadline in state.terminating.items():
                state.terminating[container_id] = min(deadline, now + grace)
        self._deletion_grace = grace
        stopping = [
            c for c in ctrs if c.name != INFRA_NAME and not m.containers.terminate(state, c, grace, now, pod=pod)
        ]
        if stopping:
            return m.status.status(state, pod, ctrs, now, SyncResult(sandbox_message="terminating"))
        if ctrs:
            status = m.status.status(state, pod, ctrs, now, SyncResult(), terminal=True)
            m.containers.stop_sandbox(ctrs)
            m.containers.remove_all(state, ctrs)
        else:
            status = pod.status or PodStatus()
            if status.phase not in _TERMINAL_PHASES:
                status.phase = phases.PodPhase.FAILED
        m.volumes.remove_pod_dir(self.uid)
        self.gone = True
        return status

    def _evict(self, pod: Pod, ctrs: list[EngineContainer], now: float, message: str) -> PodStatus:
        """The kubelet's eviction of one pod: its containers are stopped and it ends ``Failed``, reason
        ``Evicted`` (terminal: the controller that owns it makes a new one)."""
        m, state = self._m, self.state
        # a local-storage eviction has no grace period (kubelet ``localStorageEviction``: ``evictPod(pod, 0, …)``)
        if all([m.containers.terminate(state, c, 0, now) for c in ctrs if c.name != INFRA_NAME]):
            m.containers.stop_sandbox(ctrs)
        status = m.status.status(state, pod, ctrs, now, SyncResult(), terminal=True)
        status.phase, status.reason, status.message = phases.PodPhase.FAILED, "Evicted", message
        return status

    def _refuse(self, pod: Pod, ctrs: list[EngineContainer], now: float, errors: list[podspec.PortError]) -> PodStatus:
        """Kubelet admission rejection: the pod fails with a reason and the field paths; anything already
        running is stopped."""
        m, state = self._m, self.state
        message = "; ".join(f"{e.field}: {e.message}" for e in errors)
        grace = podspec.grace_period(pod)
        if all([m.containers.terminate(state, c, grace, now, pod=pod) for c in ctrs if c.name != INFRA_NAME]):
            m.containers.stop_sandbox(ctrs)
        sync = SyncResult(sandbox_message=message)
        for c in pod.spec.containers if pod.spec else []:
            if latest(ctrs, c.name) is None:
                sync.waiting[c.name] = ("HostPortRefused", message)
        status = m.status.status(state, pod, ctrs, now, sync, terminal=True)
        status.phase, status.reason, status.message = phases.PodPhase.FAILED, "HostPortRefused", message
        return status
