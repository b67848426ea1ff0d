"""The container manager: list, inspect, start and stop a pod's engine containers.

kubelet ``kuberuntime_container.go``: ``startContainer`` (ensure the image, make the mounts, create with
labels, start, then the ``postStart`` hook; failures become the container's waiting reason), ``killContainer``
(the ``preStop`` hook, SIGTERM, SIGKILL after the grace period; here non-blocking over syncs, or blocking for
orphans; hooks: :mod:`.lifecycle`), and the container GC that keeps only the latest exited attempt. Engine calls go through :mod:`dockyard.agent.engine.containers`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from lightkube.models.core_v1 import Container
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.engine import containers as engine
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.pods import lifecycle, sources
from dockyard.agent.pods.images import ImageManager
from dockyard.agent.pods.state import EXITED, EngineContainer, ExitInfo, PodState
from dockyard.agent.pods.volumes import MountError, VolumeManager
from dockyard.agent.podspec import INFRA_NAME
from dockyard.api import labels as well_known
from dockyard.api.podfields import PRE_STOP_HANDLER_LABEL

__all__ = ["ContainerManager"]

log = logging.getLogger(__name__)

_CACHE_LIMIT = 4096


class ContainerManager:
    """The engine containers of this agent's pods.

    Args:
        engine: the engine's container operations.
        images: pulls images and tells their user and id.
        volumes: makes the binds of a container's volume mounts.
        instance: the agent identity (label ``dockyard.instance``); other instances' containers are
            never listed, adopted or stopped.
        clock: seconds since the epoch.
        hooks: runs the containers' ``postStart`` and ``preStop`` hooks; default: none are run.
    """

    def __init__(
        self,
        engine: engine.Containers,
        *,
        images: ImageManager,
        volumes: VolumeManager,
        instance: str,
        clock: Callable[[], float] = time.time,
        secrets: sources.SecretLookup | None = None,
        config_maps: sources.ObjectLookup | None = None,
        hooks: lifecycle.HookManager | None = None,
    ) -> None:
        self._engine = engine
        self.hooks = hooks
        self._images = images
        self._volumes = volumes
        self._secrets = secrets
        self._config_maps = config_maps
        self.instance = instance
        self._instance_label = f"{podspec.LABEL_INSTANCE}={instance}"
        self._clock = clock
        self._id_prefix: str | None = None

    # --- reading the engine -------------------------------------------------

    def list_pod(self, uid: str) -> list[EngineContainer]:
        """The pod's engine containers of this instance (all attempts, infra included); containers with
        malformed labels are logged and left out."""
        # by the instance label alone: containers of dockyard 0.1 carry the pod uid under the legacy key
        found = self._engine.list_labelled([self._instance_label])
        out = []
        for c in found:
            labels = c.get("Labels") or {}
            if well_known.lookup(labels, podspec.LABEL_POD_UID) != uid:
                continue
            try:
                name = well_known.lookup(labels, podspec.LABEL_CONTAINER_NAME)
                if name is None:
                    raise KeyError(podspec.LABEL_CONTAINER_NAME)
                out.append(
                    EngineContainer(
                        id=c["Id"],
                        name=name,
                        state=str(c.get("State") or "").lower(),
                        attempt=int(well_known.lookup(labels, podspec.LABEL_CONTAINER_RESTARTS) or "0"),
                        hash=well_known.lookup(labels, podspec.LABEL_CONTAINER_HASH) or "",
                        backoff=float(well_known.lookup(labels, podspec.LABEL_CONTAINER_BACKOFF) or "0"),
                        grace=int(well_known.lookup(labels, podspec.LABEL_POD_GRACE) or podspec.DEFAULT_GRACE_SECONDS),
                        pre_stop=str(labels.get(PRE_STOP_HANDLER_LABEL) or ""),
                    )
                )
            except (KeyError, ValueError):
                log.warning("container %s of pod %s has malformed labels; ignored", c.get("Id"), uid)
        return out

    def pod_uids(self) -> set[str]:
        """Uids of the pods that have containers of this instance on the engine."""
        found = self._engine.list_labelled([self._instance_label])
        uids = (well_known.lookup(c.get("Labels") or {}, podspec.LABEL_POD_UID) for c in found)
        return {uid for uid in uids if uid}

    def inspect(self, state: PodState, ctr: EngineContainer) -> dict[str, Any] | None:
        """The engine's inspect of ``ctr`` (cached in ``state`` once it exited), or ``None`` when gone."""
        cached = state.inspected.get(ctr.id)
        if cached is not None:
            return cached
        try:
            attrs = self._engine.inspect(ctr.id)
        except engine_errors.NotFound:
            return None
        if str((attrs.get("State") or {}).get("Status", "")).lower() in EXITED:
            if len(state.inspected) > _CACHE_LIMIT:
                state.inspected.clear()
            state.inspected[ctr.id] = attrs
        return attrs

    def exit_info(self, state: PodState, ctr: EngineContainer) -> ExitInfo | None:
        """How a stopped container, or one whose start failed (exit code 128), ended; ``None`` while it has
        not run."""
        failure = state.start_failures.get(ctr.id)
        if failure is not None:
            return ExitInfo(128, failure[0], failure[0])
        if ctr.state not in EXITED:
            return None
        attrs = self.inspect(state, ctr)
        if attrs is None:
            return None
        engine_state = attrs.get("State") or {}
        finished = podspec.parse_engine_time(engine_state.get("FinishedAt")) or self._clock()
        started = podspec.parse_engine_time(engine_state.get("StartedAt")) or finished
        return ExitInfo(int(engine_state.get("ExitCode") or 0), started, finished)

    def output_tail(self, ctr: EngineContainer, *, lines: int, max_bytes: int) -> str:
        """The last ``lines`` lines of the container's output, at most its last ``max_bytes`` bytes ('' if the
        engine cannot say): the kubelet's ``FallbackToLogsOnError`` message."""
        try:
            stream = self._engine.logs(ctr.id, tail=lines)
            try:
                out = b"".join(stream)
            finally:
                stream.close()
        except engine_errors.EngineError as e:
            log.debug("container %s: no output for its termination message: %s", ctr.id, e)
            return ""
        return out[-max_bytes:].decode("utf-8", errors="replace")

    def prefix(self) -> str:
        """The ``containerID`` scheme: ``podman://`` or ``docker://``."""
        if self._id_prefix is None:
            self._id_prefix = "podman://" if self._engine.is_podman() else "docker://"
        return self._id_prefix

    # --- starting -----------------------------------------------------------

    def start(
        self,
        state: PodState,
        pod: Pod,
        container: Container,
        *,
        spec_hash: str,
        attempt: int,
        backoff: float,
        infra_id: str,
        ctrs: list[EngineContainer],
        now: float,
        pod_ip: str | None = None,
        host_ip: str = "127.0.0.1",
    ) -> tuple[str, str] | None:
        """kubelet ``startContainer``: pull, create, start, then start its ``postStart`` hook. ``pod_ip``/``host_ip`` are the downward API's
        ``status.podIP``/``status.hostIP`` (:mod:`.sources`). Returns ``None`` once created (a failed engine
        start is recorded in ``state.start_failures`` and shows as ``StartError``), else the container's
        waiting ``(reason, message)``: the image's, ``CreateContainerConfigError``, ``ContainerCreating``
        (a volume is not ready) or ``CreateContainerError``.

        Also removes the pod's older attempts of this container but the latest (kept for ``lastState`` and
        logs, as kubelet GC does) and old stopped sandboxes.
        """
        meta, spec = pod.metadata, pod.spec
        assert meta is not None and spec is not None
        name = container.name
        problem = self._images.ensure_image(state, pod, container, now)
        if problem is not None:
            return problem
        try:
            image_user = self._images.image_user(container.image or "")
            podspec.verify_run_as_non_root(pod, container, image_user=image_user)
            binds = self._volumes.binds(pod, container) + [self._volumes.termination_message_bind(pod, container)]
            env = (
                sources.container_env(
                    pod, container, self._secrets, config_maps=self._config_maps, pod_ip=pod_ip, host_ip=host_ip
                )
                if self._secrets is not None or self._config_maps is not None
                else None
            )
            config, host = podspec.create_args(
                container, binds=binds, pod_spec=spec, image_user=image_user, annotations=meta.annotations, env=env
            )
        except podspec.ConfigError as e:
            return "CreateContainerConfigError", str(e)
        except MountError as e:
            return "ContainerCreating", str(e)
        except engine_errors.EngineError as e:
            return "CreateContainerError", str(e)
        old = sorted((c for c in ctrs if c.name == name), key=lambda c: c.attempt)
        for c in old[:-1]:
            self.remove_quietly(state, c.id)
        for c in ctrs:
            if c.name == INFRA_NAME and c.id != infra_id and not c.running:
                self.remove_quietly(state, c.id)  # an old sandbox, once nothing depends on it
        engine_name = podspec.container_name(
            container=name,
            pod=meta.name or "",
            namespace=meta.namespace or "default",
            uid=str(meta.uid),
            attempt=attempt,
        )
        try:
            self.remove_named(engine_name)
            host_args: dict[str, Any] = {
                "network_mode": f"container:{infra_id}",
                "ipc_mode": f"container:{infra_id}",
                "uts_mode": f"container:{infra_id}",  # the sandbox's hostname: the pod's
                **host,
            }
            if spec.shareProcessNamespace:
                host_args["pid_mode"] = f"container:{infra_id}"
            labels = podspec.container_labels(
                pod, container=name, spec_hash=spec_hash, restarts=attempt, backoff=backoff, instance=self.instance
            )
            pre_stop = lifecycle.pre_stop_label(container)
            if pre_stop is not None:
                labels[PRE_STOP_HANDLER_LABEL] = pre_stop
            created = self._engine.create(
                name=engine_name,
                labels=labels,
                host_config=host_args,
                **config,
            )
        except engine_errors.EngineError as e:
            return "CreateContainerError", str(e)
        error = self.start_existing(created)
        if error is not None:
            state.start_failures[created] = (now, error)
        elif self.hooks is not None:
            self.hooks.post_start(state, pod, container, created)
        return None

    def start_existing(self, container_id: str) -> str | None:
        """Start a created container; ``None`` on success, else the engine's reason."""
        try:
            self._engine.start(container_id)
        except engine_errors.EngineError as e:
            return str(e)
        return None

    # --- stopping -----------------------------------------------------------

    def terminate(
        self, state: PodState, ctr: EngineContainer, grace: int, now: float, *, pod: Pod | None = None
    ) -> bool:
        """Non-blocking kill (kubelet ``killContainer``): the ``preStop`` hook first when the container has one and
        ``grace`` > 0 (its spec in ``pod``, else its label), given up to ``grace`` seconds; then SIGTERM (SIGKILL
        when ``grace`` is 0), SIGKILL once the rest of ``grace`` passed, at least 2 s after a hook (checked on
        later calls). True when the container is stopped."""
        if not ctr.running:
            return True
        deadline = state.terminating.get(ctr.id)
        try:
            if deadline is None:
                if grace > 0 and self.hooks is not None:
                    run = self.hooks.pre_stop(state, pod, ctr, _spec_of(pod, ctr.name), grace=grace, now=now)
                    if run is not None:
                        if run.pending and now < run.started + grace:
                            return False
                        grace = max(grace - int(now - run.started), lifecycle.MIN_GRACE_AFTER_PRE_STOP)
                state.terminating[ctr.id] = now + grace
                self._engine.kill(ctr.id, "SIGTERM" if grace > 0 else "SIGKILL")
            elif now >= deadline:
                self._engine.kill(ctr.id, "SIGKILL")
        except engine_errors.RequestFailed as e:
            # 404 gone or 409/500 "not running": both mean it is stopping or stopped.
            log.debug("kill %s: %s", ctr.id[:12], e)
        return False

    def stop_with_hook(self, state: PodState, ctr: EngineContainer, grace: int, *, pod: Pod | None = None) -> None:
        """Blocking kill (kubelet ``killContainer``): the ``preStop`` hook (its spec in ``pod``, else its label)
        for up to ``grace`` seconds, then :meth:`stop_blocking` with what is left (at least 2 s after a hook)."""
        if grace > 0 and self.hooks is not None:
            now = self._clock()
            run = self.hooks.pre_stop(state, pod, ctr, _spec_of(pod, ctr.name), grace=grace, now=now)
            if run is not None:
                run.done.wait(max(0.0, run.started + grace - now))
                elapsed = self._clock() - run.started
                grace = max(grace - int(elapsed), lifecycle.MIN_GRACE_AFTER_PRE_STOP)
        self.stop_blocking(ctr.id, grace)

    def stop_blocking(self, container_id: str, grace: int) -> None:
        """SIGTERM, SIGKILL after ``grace`` seconds; blocks until stopped. Errors are logged."""
        try:
            self._engine.stop(container_id, grace)
        except engine_errors.EngineError as e:
            log.debug("stop %s: %s", container_id[:12], e)

    def kill_now(self, container_id: str) -> None:
        """SIGKILL; a container already stopped or gone is fine."""
        try:
            self._engine.kill(container_id, "SIGKILL")
        except engine_errors.RequestFailed as e:
            log.debug("kill %s: %s", container_id[:12], e)

    def stop_sandbox(self, ctrs: list[EngineContainer]) -> None:
        """SIGKILL the pod's running infra containers."""
        for c in ctrs:
            if c.name == INFRA_NAME and c.running:
                self.kill_now(c.id)

    def remove_all(self, state: PodState | None, ctrs: list[EngineContainer]) -> None:
        """Remove the containers, apps first, infra last (podman refuses to remove a container others
        depend on)."""
        for c in sorted(ctrs, key=lambda c: c.name == INFRA_NAME):
            self.remove_quietly(state, c.id)

    def remove_quietly(self, state: PodState | None, container_id: str) -> None:
        """Remove a container; gone already is fine, an engine refusal is logged."""
        try:
            self._engine.remove(container_id)
        except engine_errors.NotFound:
            pass
        except engine_errors.RequestFailed as e:
            log.debug("remove %s: %s", container_id[:12], e)
        if state is not None:
            state.inspected.pop(container_id, None)
            state.hooks.pop((container_id, lifecycle.POST_START), None)
            state.hooks.pop((container_id, lifecycle.PRE_STOP), None)

    def remove_named(self, name: str) -> None:
        """Remove a leftover container holding ``name`` that our labels do not show (it would make create
        fail with 409).

        Raises:
            EngineError: the engine failed otherwise than with a 404.
        """
        try:
            self._engine.remove(name)
        except engine_errors.NotFound:
            pass


def _spec_of(pod: Pod | None, name: str) -> Container | None:
    """The pod's container ``name``, or ``None`` (no pod known, or no longer in its spec)."""
    if pod is None or pod.spec is None:
        return None
    return next((c for c in pod.spec.containers if c.name == name), None)
