"""Run Kubernetes Pods on Docker Engine or Podman, the way the kubelet does.

:class:`PodRuntime` takes Pod objects as plain dicts (``metadata``, ``spec``,
``status``, as the API serves them) and returns the pod's new ``status``
dict; the agent loop does all Kubernetes API I/O.

How it follows the kubelet (``pkg/kubelet/kuberuntime/kuberuntime_manager.go``
``computePodActions`` / ``SyncPod``):

- One infra ("pause") container per pod holds the network (and IPC)
  namespace and publishes the ``hostPort``\\ s on loopback; every app
  container joins it with ``network_mode="container:<infra>"``.
- Each engine container carries labels (pod uid/name/namespace, container
  name, spec hash, restart count, back-off, grace period) so that the whole
  state, back-off included, is derived from the engine: a new
  :class:`PodRuntime` after a crash adopts what is running, never duplicates.
- A container whose spec hash changed is killed and started again; others
  are left alone. Exited containers restart per ``restartPolicy`` with the
  crash back-off of :func:`dockyard.agent.podspec.restart_backoff`.
- Termination is non-blocking in :meth:`PodRuntime.sync_pod` (SIGTERM, then
  SIGKILL once the grace period is over, checked on later syncs);
  :meth:`PodRuntime.kill_pod` is the blocking, bounded variant for orphans.

Engine API reference: https://docs.docker.com/engine/api/v1.41/ (Podman
serves the same through ``podman system service``).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.utils
import requests

from dockyard.agent import podspec, subpath
from dockyard.agent.podspec import INFRA_NAME
from dockyard.api import phases

__all__ = ["PAUSE_IMAGE", "PodRuntime"]

log = logging.getLogger(__name__)

SANDBOX_RETRY_INITIAL = 1.0  # seconds before the first retry of a failed pod sandbox

#: Built locally from the static busybox (nothing can be pulled here).
PAUSE_IMAGE = "localhost/dockyard-pause:1"
_PAUSE_DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox", "sleep", "2147483647"]\n'

_RUNNING = frozenset({"running", "paused", "restarting", "stopping"})
_EXITED = frozenset({"exited", "dead", "stopped"})
_TERMINAL_PHASES = phases.POD_TERMINAL
_CACHE_LIMIT = 4096

#: ``(uid, container name, image)`` → image pull back-off entry.
_PullKey = tuple[str, str, str]
#: Called before a pull: ``(pod, image) -> auth_config or None``.
PullAuth = Callable[[Mapping[str, Any], str], "dict[str, str] | None"]


@dataclass(frozen=True)
class _Ctr:
    """One engine container of a pod, as its labels describe it."""

    id: str
    name: str
    state: str
    attempt: int
    hash: str
    backoff: float
    grace: int

    @property
    def running(self) -> bool:
        return self.state in _RUNNING

    @property
    def created(self) -> bool:
        return self.state not in _RUNNING and self.state not in _EXITED


@dataclass
class _Failure:
    """In-memory back-off for failures that leave no trace on the engine."""

    retry_at: float
    backoff: float
    message: str


@dataclass
class _Sync:
    """What one sync learnt beyond the engine state."""

    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    acted: bool = False
    sandbox_message: str = ""


class _PullError(Exception):
    pass


class PodRuntime:
    """Runs pods on one engine (Docker Engine or Podman, through docker-py).

    Not thread-safe per pod: call :meth:`sync_pod` for one pod uid from one
    worker at a time (the agent's workqueue guarantees this); different pods
    may sync concurrently.

    Args:
        client: docker-py client of the engine.
        node_name: this node's name (reported nowhere else yet).
        instance: identity of the agent that owns the containers (label ``dockyard.instance``;
            default ``node_name``). Containers of other instances on the same engine are never
            adopted, swept or stopped.
        host_ip: the address pods publish on and report as ``hostIP`` and
            ``podIP``; only loopback is meant to be used.
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
        pull_auth: optional ``(pod, image) -> auth_config`` for private
            registries (image pull secrets).
        clock: seconds since the epoch (tests may inject).
    """

    def __init__(
        self,
        client: docker.DockerClient,
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
    ) -> None:
        self._client = client
        self._api = client.api
        self.node_name = node_name
        self.instance = instance or node_name
        self._instance_label = f"{podspec.LABEL_INSTANCE}={self.instance}"
        self._host_ip = host_ip
        self._state_dir = Path(state_dir) if state_dir is not None else Path("/var/lib/dockyard/agent")
        self._pause_image = pause_image
        self._busybox = Path(busybox)
        self._backoff = backoff
        self._pull_timeout = pull_timeout
        self._pull_auth = pull_auth
        self._clock = clock
        self._lock = threading.Lock()
        self._pause_ready = False
        self._id_prefix: str | None = None
        self._inspected: dict[str, dict[str, Any]] = {}  # only containers that exited (immutable)
        self._image_ids: dict[str, str] = {}
        self._terminating: dict[str, float] = {}  # container id -> SIGKILL deadline
        self._changed: set[str] = set()  # container ids killed because their spec changed
        self._start_failures: dict[str, tuple[float, str]] = {}  # container id -> (when, message)
        self._pull_failures: dict[_PullKey, _Failure] = {}
        self._sandbox_failures: dict[str, _Failure] = {}

    # --- public interface ---------------------------------------------------

    def sync_pod(self, pod: Mapping[str, Any]) -> dict[str, Any]:
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
        meta = pod.get("metadata") or {}
        old = dict(pod.get("status") or {})
        if podspec.is_build_pod(pod):
            return old
        uid = str(meta["uid"])
        now = self._clock()
        ctrs = self._list(uid)
        if meta.get("deletionTimestamp"):
            return self._sync_deleting(pod, ctrs, now)
        if old.get("phase") in _TERMINAL_PHASES:
            # Terminal is forever (kubelet never leaves Succeeded/Failed).
            self._stop_sandbox(ctrs)
            if not ctrs:
                return old
            status = self._status(pod, ctrs, now, _Sync(), terminal=True)
            status["phase"] = old["phase"]
            return status
        spec = pod.get("spec") or {}
        bindings, errors = podspec.port_bindings(spec, host_ip=self._host_ip)
        for key in ("hostNetwork", "hostPID", "hostIPC"):  # refused by the API server; pods stored before
            if spec.get(key):
                errors.append(podspec.PortError(f"spec.{key}", "host namespaces are not supported"))
        if errors:
            return self._refuse(pod, ctrs, now, errors)

        sync = _Sync()
        if self._pod_done(pod, ctrs):
            self._stop_sandbox(ctrs)
        else:
            infra = self._sync_sandbox(pod, ctrs, bindings, now, sync)
            if infra is not None:
                for container in spec.get("containers") or []:
                    self._sync_container(pod, container, ctrs, infra, now, sync)
        if sync.acted:
            ctrs = self._list(uid)
        status = self._status(pod, ctrs, now, sync)
        if status["phase"] in _TERMINAL_PHASES:
            self._stop_sandbox(ctrs)
        return status

    def kill_pod(self, uid: str, *, grace_period_seconds: int | None = None) -> None:
        """Stop and remove every container of the pod, infra last; idempotent.

        Blocks up to the grace period (the pod's, from the container labels,
        unless ``grace_period_seconds`` is given): app containers get SIGTERM
        in parallel, then SIGKILL (kubelet ``killPodWithSyncResult``). Also
        removes the pod's ``emptyDir`` volumes.
        """
        ctrs = self._list(uid)
        apps = [c for c in ctrs if c.name != INFRA_NAME and c.running]
        if apps:
            with ThreadPoolExecutor(max_workers=min(8, len(apps))) as pool:
                for c in apps:
                    grace = c.grace if grace_period_seconds is None else grace_period_seconds
                    pool.submit(self._stop_blocking, c.id, grace)
        self._remove_all(ctrs)
        self._forget(uid, ctrs)
        self._remove_pod_dir(uid)

    def pod_uids(self) -> set[str]:
        """Uids of the pods that have containers on this engine."""
        found = self._api.containers(all=True, filters={"label": [podspec.LABEL_POD_UID, self._instance_label]})
        return {c["Labels"][podspec.LABEL_POD_UID] for c in found if (c.get("Labels") or {}).get(podspec.LABEL_POD_UID)}

    def container_id(self, pod: Mapping[str, Any], container_name: str) -> str | None:
        """Engine id of the pod's current container ``container_name`` (the
        latest attempt, running or not), or ``None``."""
        latest = _latest(self._list(str(pod["metadata"]["uid"])), container_name)
        return latest.id if latest else None

    # --- engine state -------------------------------------------------------

    def _list(self, uid: str) -> list[_Ctr]:
        found = self._api.containers(
            all=True, filters={"label": [f"{podspec.LABEL_POD_UID}={uid}", self._instance_label]}
        )
        out = []
        for c in found:
            labels = c.get("Labels") or {}
            if labels.get(podspec.LABEL_POD_UID) != uid:
                continue
            try:
                out.append(
                    _Ctr(
                        id=c["Id"],
                        name=labels[podspec.LABEL_CONTAINER_NAME],
                        state=str(c.get("State") or "").lower(),
                        attempt=int(labels.get(podspec.LABEL_CONTAINER_RESTARTS, "0")),
                        hash=labels.get(podspec.LABEL_CONTAINER_HASH, ""),
                        backoff=float(labels.get(podspec.LABEL_CONTAINER_BACKOFF, "0")),
                        grace=int(labels.get(podspec.LABEL_POD_GRACE, podspec.DEFAULT_GRACE_SECONDS)),
                    )
                )
            except (KeyError, ValueError):
                log.warning("container %s of pod %s has malformed labels; ignored", c.get("Id"), uid)
        return out

    def _inspect(self, ctr: _Ctr) -> dict[str, Any] | None:
        cached = self._inspected.get(ctr.id)
        if cached is not None:
            return cached
        try:
            attrs: dict[str, Any] = self._api.inspect_container(ctr.id)
        except docker.errors.NotFound:
            return None
        if str((attrs.get("State") or {}).get("Status", "")).lower() in _EXITED:
            if len(self._inspected) > _CACHE_LIMIT:
                self._inspected.clear()
            self._inspected[ctr.id] = attrs
        return attrs

    def _exit_info(self, ctr: _Ctr) -> tuple[int, float, float] | None:
        """``(exitCode, startedAt, finishedAt)`` of a stopped container or
        one whose start failed; ``None`` while it has not run."""
        failure = self._start_failures.get(ctr.id)
        if failure is not None:
            return 128, failure[0], failure[0]
        if ctr.state not in _EXITED:
            return None
        attrs = self._inspect(ctr)
        if attrs is None:
            return None
        state = attrs.get("State") or {}
        finished = podspec.parse_engine_time(state.get("FinishedAt")) or self._clock()
        started = podspec.parse_engine_time(state.get("StartedAt")) or finished
        return int(state.get("ExitCode") or 0), started, finished

    def _prefix(self) -> str:
        if self._id_prefix is None:
            try:
                components = self._client.version().get("Components") or []
            except docker.errors.APIError:
                components = []
            podman = any("podman" in str(c.get("Name", "")).lower() for c in components)
            self._id_prefix = "podman://" if podman else "docker://"
        return self._id_prefix

    # --- sandbox ------------------------------------------------------------

    def _pod_done(self, pod: Mapping[str, Any], ctrs: list[_Ctr]) -> bool:
        """Every container ran and none will restart (so no sandbox is needed)."""
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or []
        if not containers:
            return False
        for container in containers:
            latest = _latest(ctrs, container["name"])
            if latest is None or latest.id in self._changed:
                return False
            info = self._exit_info(latest)
            if info is None or podspec.should_restart(spec.get("restartPolicy"), info[0]):
                return False
        return True

    def _sync_sandbox(
        self,
        pod: Mapping[str, Any],
        ctrs: list[_Ctr],
        bindings: dict[str, list[tuple[str, int]]],
        now: float,
        sync: _Sync,
    ) -> str | None:
        """Ensure a running infra container with the current sandbox hash;
        return its id, or ``None`` while it is not (yet) there."""
        spec = pod.get("spec") or {}
        uid = str(pod["metadata"]["uid"])
        want = podspec.sandbox_hash(spec, host_ip=self._host_ip)
        infra = _latest(ctrs, INFRA_NAME)
        if infra is not None and infra.running and infra.hash == want:
            return infra.id
        apps = [c for c in ctrs if c.name != INFRA_NAME]
        if infra is not None and spec.get("restartPolicy") == "Never" and apps and not infra.running:
            # kubelet: no new sandbox for a Never pod whose containers already ran.
            sync.sandbox_message = "pod sandbox exited; restartPolicy is Never"
            return None
        # kubelet: "Pod sandbox changed, it will be killed and re-created" — all containers first.
        still_running = [c for c in apps if not self._terminate(c, podspec.grace_period(pod), now)]
        if still_running:
            sync.sandbox_message = "stopping containers before the pod sandbox is re-created"
            return None
        for c in ctrs:
            if c.name == INFRA_NAME and c.running:
                self._kill_now(c.id)
        failure = self._sandbox_failures.get(uid)
        if failure is not None and now < failure.retry_at:
            sync.sandbox_message = f"back-off creating pod sandbox: {failure.message}"
            return None
        attempt = infra.attempt + 1 if infra is not None else 0
        meta = pod["metadata"]
        name = podspec.container_name(
            container=INFRA_NAME, pod=meta["name"], namespace=meta.get("namespace", "default"), uid=uid, attempt=attempt
        )
        sync.acted = True
        infra_id = None
        try:
            self._ensure_pause_image()
            self._remove_named(name)
            published: dict[int | str, Any] = {k: v for k, v in bindings.items()}
            host_config = self._api.create_host_config(
                port_bindings=published or None, ipc_mode="shareable", sysctls=podspec.sandbox_sysctls(spec) or None
            )
            created = self._api.create_container(
                self._pause_image,
                name=name,
                hostname=str(spec.get("hostname") or meta["name"])[:63],
                labels=podspec.container_labels(
                    pod, container=INFRA_NAME, spec_hash=want, restarts=attempt, backoff=0, instance=self.instance
                ),
                ports=[_port_spec(k) for k in bindings],
                host_config=host_config,
            )
            infra_id = created["Id"]
            self._api.start(infra_id)
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            message = f"failed to create pod sandbox: {_error_text(e)}"
            if infra_id is not None:
                self._remove_quietly(infra_id)
            # Sandbox errors (often a host port still held by a terminating pod) are retried sooner than
            # crashes: 1 s doubling, as the kubelet's pod worker retries a failed sync.
            first = min(SANDBOX_RETRY_INITIAL, self._backoff.initial)
            backoff = first if failure is None else min(2 * failure.backoff, self._backoff.maximum)
            self._sandbox_failures[uid] = _Failure(retry_at=self._clock() + backoff, backoff=backoff, message=message)
            sync.sandbox_message = message
            log.warning("pod %s/%s: %s", meta.get("namespace"), meta.get("name"), message)
            return None
        self._sandbox_failures.pop(uid, None)
        for c in ctrs:
            if c.name == INFRA_NAME:
                # Podman refuses while old app containers still depend on it; a later GC retries.
                self._remove_quietly(c.id)
        return str(infra_id)

    def _stop_sandbox(self, ctrs: list[_Ctr]) -> None:
        for c in ctrs:
            if c.name == INFRA_NAME and c.running:
                self._kill_now(c.id)

    def _ensure_pause_image(self) -> None:
        with self._lock:
            if self._pause_ready:
                return
            try:
                self._api.inspect_image(self._pause_image)
            except docker.errors.ImageNotFound:
                self._build_pause_image()
            self._pause_ready = True

    def _build_pause_image(self) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            _add_file(tar, "Dockerfile", _PAUSE_DOCKERFILE.encode(), 0o644)
            _add_file(tar, "busybox", self._busybox.read_bytes(), 0o755)
        buf.seek(0)
        for line in self._api.build(fileobj=buf, custom_context=True, tag=self._pause_image, rm=True, decode=True):
            if "error" in line or "errorDetail" in line:
                raise docker.errors.BuildError(str(line.get("error") or line.get("errorDetail")), iter([]))

    # --- containers ---------------------------------------------------------

    def _sync_container(
        self,
        pod: Mapping[str, Any],
        container: Mapping[str, Any],
        ctrs: list[_Ctr],
        infra_id: str,
        now: float,
        sync: _Sync,
    ) -> None:
        """kubelet ``computePodActions`` for one app container."""
        spec = pod.get("spec") or {}
        name = str(container["name"])
        want = podspec.container_hash(
            container,
            spec.get("volumes") or [],
            spec.get("securityContext"),
            (pod.get("metadata") or {}).get("annotations"),
        )
        latest = _latest(ctrs, name)
        if latest is None:
            self._start(pod, container, want, attempt=0, backoff=0.0, infra_id=infra_id, ctrs=ctrs, now=now, sync=sync)
            return
        if latest.running:
            if latest.hash != want:
                # "Container definition changed, will be restarted" (any restartPolicy).
                self._changed.add(latest.id)
                self._terminate(latest, podspec.grace_period(pod), now)
                sync.acted = True
            return
        if latest.created and latest.id not in self._start_failures:
            # Created but never started (the agent died in between): start it,
            # unless it was made for an earlier sandbox; then make it anew.
            sync.acted = True
            attrs = self._inspect(latest)
            network = ((attrs or {}).get("HostConfig") or {}).get("NetworkMode", "")
            if attrs is None or latest.hash != want or network not in (f"container:{infra_id}", infra_id):
                self._remove_quietly(latest.id)
                remaining = [c for c in ctrs if c.id != latest.id]
                self._start(pod, container, want, latest.attempt, latest.backoff, infra_id, remaining, now, sync)
                return
            if self._start_existing(latest.id, now):
                return
        info = self._exit_info(latest)
        if info is None:
            return
        exit_code, started, finished = info
        if latest.id in self._changed:
            self._start(pod, container, want, latest.attempt + 1, 0.0, infra_id, ctrs, now, sync)
            return
        if not podspec.should_restart(spec.get("restartPolicy"), exit_code):
            return
        if latest.hash != want:
            # A new spec is a new back-off key (kubelet getStableKey includes the hash).
            self._start(pod, container, want, latest.attempt + 1, 0.0, infra_id, ctrs, now, sync)
            return
        wait, next_backoff = podspec.restart_backoff(
            backoff=latest.backoff, started_at=started, finished_at=finished, now=now, policy=self._backoff
        )
        if wait > 0:
            meta = pod["metadata"]
            sync.waiting[name] = (
                "CrashLoopBackOff",
                f"back-off {_fmt_duration(latest.backoff)} restarting failed container={name} "
                f"pod={meta['name']}_{meta.get('namespace', 'default')}({meta['uid']})",
            )
            return
        self._start(pod, container, want, latest.attempt + 1, next_backoff, infra_id, ctrs, now, sync)

    def _start(
        self,
        pod: Mapping[str, Any],
        container: Mapping[str, Any],
        spec_hash: str,
        attempt: int,
        backoff: float,
        infra_id: str,
        ctrs: list[_Ctr],
        now: float,
        sync: _Sync,
    ) -> None:
        """kubelet ``startContainer``: pull, create, start; failures become the
        container's waiting reason."""
        meta = pod["metadata"]
        uid = str(meta["uid"])
        name = str(container["name"])
        sync.acted = True
        problem = self._ensure_image(pod, container, now)
        if problem is not None:
            sync.waiting[name] = problem
            return
        try:
            image_user = self._image_user(str(container.get("image") or ""))
            podspec.verify_run_as_non_root(pod, container, image_user=image_user)
            binds = self._binds(pod, container)
            config, host = podspec.create_args(
                container,
                binds=binds,
                pod_spec=pod.get("spec") or {},
                image_user=image_user,
                annotations=(pod.get("metadata") or {}).get("annotations"),
            )
        except podspec.ConfigError as e:
            sync.waiting[name] = ("CreateContainerConfigError", str(e))
            return
        except _MountError as e:
            sync.waiting[name] = ("ContainerCreating", str(e))
            return
        except (docker.errors.DockerException, requests.RequestException) as e:
            sync.waiting[name] = ("CreateContainerError", _error_text(e))
            return
        # Keep only the latest old container (for lastState and logs), as kubelet GC does.
        old = sorted((c for c in ctrs if c.name == name), key=lambda c: c.attempt)
        for c in old[:-1]:
            self._remove_quietly(c.id)
        for c in ctrs:
            if c.name == INFRA_NAME and c.id != infra_id and not c.running:
                self._remove_quietly(c.id)  # an old sandbox, once nothing depends on it
        engine_name = podspec.container_name(
            container=name, pod=meta["name"], namespace=meta.get("namespace", "default"), uid=uid, attempt=attempt
        )
        try:
            self._remove_named(engine_name)
            host_args: dict[str, Any] = {
                "network_mode": f"container:{infra_id}",
                "ipc_mode": f"container:{infra_id}",
                **host,
            }
            if (pod.get("spec") or {}).get("shareProcessNamespace"):
                host_args["pid_mode"] = f"container:{infra_id}"
            host_config = self._api.create_host_config(**host_args)
            created = self._api.create_container(
                name=engine_name,
                labels=podspec.container_labels(
                    pod,
                    container=name,
                    spec_hash=spec_hash,
                    restarts=attempt,
                    backoff=backoff,
                    instance=self.instance,
                ),
                host_config=host_config,
                **config,
            )
        except (docker.errors.DockerException, requests.RequestException) as e:
            sync.waiting[name] = ("CreateContainerError", _error_text(e))
            return
        self._start_existing(created["Id"], now)

    def _start_existing(self, container_id: str, now: float) -> bool:
        try:
            self._api.start(container_id)
        except (docker.errors.DockerException, requests.RequestException) as e:
            self._start_failures[container_id] = (now, _error_text(e))
            return False
        return True

    def _binds(self, pod: Mapping[str, Any], container: Mapping[str, Any]) -> list[str]:
        """``hostPath`` and ``emptyDir`` volume mounts as engine binds (``SOURCE:TARGET:rw|ro``); a mount
        with ``subPath`` binds its staged path (:meth:`_stage_subpath`).

        Raises:
            podspec.ConfigError: unknown volume, relative ``mountPath``, unsupported volume type, or a
                refused ``subPath`` (kubelet ``CreateContainerConfigError``).
            _MountError: a ``hostPath`` type check failed (the container stays ``ContainerCreating``).
        """
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
        binds = []
        for i, mount in enumerate(container.get("volumeMounts") or []):
            vol = volumes.get(mount.get("name"))
            if vol is None:
                raise podspec.ConfigError(f"volumeMounts[{i}].name: no volume {mount.get('name')!r}")
            source = self._volume_source(pod, vol)
            target = str(mount.get("mountPath") or "")
            if not target.startswith("/"):
                raise podspec.ConfigError(f"volumeMounts[{i}].mountPath: must be absolute")
            sub = str(mount.get("subPath") or "")
            if sub:
                source = self._stage_subpath(pod, container, i, source, sub)
            binds.append(f"{source}:{target}:{'ro' if mount.get('readOnly') else 'rw'}")
        return binds

    def _stage_subpath(
        self, pod: Mapping[str, Any], container: Mapping[str, Any], index: int, root: Path, sub: str
    ) -> Path:
        """kubelet ``makeMounts`` + ``PrepareSafeSubpath``: resolve ``sub`` beneath the volume ``root``
        without following symlinks out of it, make missing directories, and bind-mount the checked inode
        on a staging path of the pod dir; the engine mounts that path (see :mod:`dockyard.agent.subpath`).

        Raises:
            podspec.ConfigError: the subPath is refused (the container gets ``CreateContainerConfigError``
                with a message naming the subPath, the volumeMount and the container; no host path).
        """
        mount = (container.get("volumeMounts") or [])[index]
        volume, name = str(mount.get("name") or ""), str(container["name"])
        try:
            staging = subpath.staging_path(
                self._pod_dir(str(pod["metadata"]["uid"])), volume=volume, container=name, index=index
            )
            return subpath.stage(root, sub, staging)
        except subpath.SubPathError as e:
            raise podspec.ConfigError(
                f'failed to prepare subPath "{sub}" for volumeMount "{volume}" of container "{name}": {e}'
            ) from e

    def _remove_pod_dir(self, uid: str) -> None:
        """Remove the pod dir (emptyDir volumes, staged subPaths); staged subPath mounts are unmounted
        first and, if one cannot be, the dir stays (a recursive delete would reach into the volume)."""
        pod_dir = self._pod_dir(uid)
        if not pod_dir.exists():
            return
        if not subpath.unmount_all(pod_dir):
            log.warning("pod %s: a subPath mount under %s could not be unmounted; the directory is kept", uid, pod_dir)
            return
        shutil.rmtree(pod_dir, ignore_errors=True)

    def _volume_source(self, pod: Mapping[str, Any], vol: Mapping[str, Any]) -> Path:
        name = str(vol.get("name"))
        if "emptyDir" in vol:
            path = self._pod_dir(str(pod["metadata"]["uid"])) / "volumes" / "kubernetes.io~empty-dir" / name
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o777)  # kubelet makes emptyDir world-writable
            fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
            if fs_group is not None:
                _set_volume_ownership(path, int(fs_group))
            return path
        if "hostPath" in vol:
            host = vol["hostPath"] or {}
            path = Path(str(host.get("path") or ""))
            kind = host.get("type") or ""
            if not path.is_absolute():
                raise podspec.ConfigError(f"volume {name!r}: hostPath.path must be absolute")
            if kind == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(exist_ok=True)
            elif kind == "Directory" and not path.is_dir():
                raise _MountError(
                    f'MountVolume.SetUp failed for volume "{name}": hostPath type check failed: {path} is not a directory'
                )
            elif kind == "File" and not path.is_file():
                raise _MountError(
                    f'MountVolume.SetUp failed for volume "{name}": hostPath type check failed: {path} is not a file'
                )
            elif kind in ("Socket", "CharDevice", "BlockDevice") and not path.exists():
                raise _MountError(f'MountVolume.SetUp failed for volume "{name}": {path} does not exist')
            return path
        raise podspec.ConfigError(f"volume {name!r}: only hostPath and emptyDir are supported")

    def _pod_dir(self, uid: str) -> Path:
        return self._state_dir / "pods" / uid

    # --- images -------------------------------------------------------------

    def _ensure_image(self, pod: Mapping[str, Any], container: Mapping[str, Any], now: float) -> tuple[str, str] | None:
        """kubelet ``EnsureImageExists``: ``None`` when the image is there,
        else the waiting ``(reason, message)``."""
        image = str(container.get("image") or "")
        if not image:
            return "InvalidImageName", "image is required"
        policy = podspec.effective_pull_policy(container)
        present = self._image_present(image)
        if policy == "Never":
            if present:
                return None
            return "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
        if policy == "IfNotPresent" and present:
            return None
        key = (str(pod["metadata"]["uid"]), str(container["name"]), image)
        failure = self._pull_failures.get(key)
        if failure is not None and now < failure.retry_at:
            return "ImagePullBackOff", f'Back-off pulling image "{image}": {failure.message}'
        try:
            auth = self._pull_auth(pod, image) if self._pull_auth else None
            self._pull(image, auth)
        except _PullError as e:
            backoff = self._backoff.initial if failure is None else min(2 * failure.backoff, self._backoff.maximum)
            message = f'failed to pull image "{image}": {e}'
            self._pull_failures[key] = _Failure(retry_at=self._clock() + backoff, backoff=backoff, message=message)
            return "ErrImagePull", message
        self._pull_failures.pop(key, None)
        return None

    def _image_user(self, image: str) -> str:
        """The image's ``Config.User`` (``""``: root), for ``runAsNonRoot`` and ``runAsGroup`` (kubelet
        ``getImageUser``)."""
        attrs = self._api.inspect_image(image)
        return str((attrs.get("Config") or {}).get("User") or "")

    def _image_present(self, image: str) -> bool:
        try:
            self._api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as e:
            if e.status_code == 404:
                return False
            raise
        return True

    def _pull(self, image: str, auth: dict[str, str] | None) -> None:
        """Pull with a deadline; a progress line with ``error`` fails (engines
        may answer 200 and report the failure in the stream)."""
        repo, tag = docker.utils.parse_repository_tag(image)
        deadline = time.monotonic() + self._pull_timeout
        try:
            stream = self._api.pull(repo, tag=tag or "latest", stream=True, decode=True, auth_config=auth)
            try:
                for line in stream:
                    if isinstance(line, dict) and (line.get("error") or line.get("errorDetail")):
                        detail = line.get("errorDetail") or {}
                        raise _PullError(str(line.get("error") or detail.get("message") or detail))
                    if time.monotonic() > deadline:
                        raise _PullError(f"timed out after {self._pull_timeout:g}s")
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise _PullError(_error_text(e)) from e
        if not self._image_present(image):
            raise _PullError("the engine reported success but has no such image")

    def _image_id(self, image_ref: str) -> str:
        """``docker-pullable://repo@sha256:…`` when the image has a repo
        digest, else its id ``sha256:…``."""
        if not image_ref:
            return ""
        cached = self._image_ids.get(image_ref)
        if cached is not None:
            return cached
        try:
            attrs = self._api.inspect_image(image_ref)
        except docker.errors.DockerException:
            return ""
        digests = attrs.get("RepoDigests") or []
        image_id = str(attrs.get("Id") or image_ref)
        if image_id and not image_id.startswith("sha256:"):
            image_id = "sha256:" + image_id
        value = f"docker-pullable://{digests[0]}" if digests else image_id
        if len(self._image_ids) > _CACHE_LIMIT:
            self._image_ids.clear()
        self._image_ids[image_ref] = value
        return value

    # --- termination --------------------------------------------------------

    def _terminate(self, ctr: _Ctr, grace: int, now: float) -> bool:
        """Non-blocking kill: SIGTERM first, SIGKILL once ``grace`` seconds
        passed (checked on later calls). True when the container is stopped."""
        if not ctr.running:
            return True
        deadline = self._terminating.get(ctr.id)
        try:
            if deadline is None:
                self._terminating[ctr.id] = now + grace
                self._api.kill(ctr.id, signal="SIGTERM" if grace > 0 else "SIGKILL")
            elif now >= deadline:
                self._api.kill(ctr.id, signal="SIGKILL")
        except docker.errors.APIError as e:
            # 404 gone or 409/500 "not running": both mean it is stopping or stopped.
            log.debug("kill %s: %s", ctr.id[:12], e)
        return False

    def _stop_blocking(self, container_id: str, grace: int) -> None:
        try:
            self._api.stop(container_id, timeout=grace)
        except docker.errors.DockerException as e:
            log.debug("stop %s: %s", container_id[:12], e)

    def _kill_now(self, container_id: str) -> None:
        try:
            self._api.kill(container_id, signal="SIGKILL")
        except docker.errors.APIError as e:
            log.debug("kill %s: %s", container_id[:12], e)

    def _remove_all(self, ctrs: list[_Ctr]) -> None:
        """Apps first, infra last (podman refuses to remove a container others depend on)."""
        for c in sorted(ctrs, key=lambda c: c.name == INFRA_NAME):
            self._remove_quietly(c.id)

    def _remove_quietly(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            log.debug("remove %s: %s", container_id[:12], e)
        self._inspected.pop(container_id, None)

    def _remove_named(self, name: str) -> None:
        """Remove a leftover container holding ``name`` that our labels do not
        show (it would make create fail with 409)."""
        try:
            self._api.remove_container(name, force=True, v=True)
        except docker.errors.NotFound:
            pass

    def _forget(self, uid: str, ctrs: list[_Ctr]) -> None:
        for c in ctrs:
            self._inspected.pop(c.id, None)
            self._terminating.pop(c.id, None)
            self._changed.discard(c.id)
            self._start_failures.pop(c.id, None)
        self._sandbox_failures.pop(uid, None)
        for key in [k for k in self._pull_failures if k[0] == uid]:
            del self._pull_failures[key]

    def _sync_deleting(self, pod: Mapping[str, Any], ctrs: list[_Ctr], now: float) -> dict[str, Any]:
        uid = str(pod["metadata"]["uid"])
        grace = podspec.grace_period(pod)
        stopping = [c for c in ctrs if c.name != INFRA_NAME and not self._terminate(c, grace, now)]
        if stopping:
            return self._status(pod, ctrs, now, _Sync(sandbox_message="terminating"))
        if ctrs:
            status = self._status(pod, ctrs, now, _Sync(), terminal=True)
            self._stop_sandbox(ctrs)
            self._remove_all(ctrs)
            self._forget(uid, ctrs)
        else:
            status = dict(pod.get("status") or {})
            if status.get("phase") not in _TERMINAL_PHASES:
                status["phase"] = "Failed"
        self._remove_pod_dir(uid)
        return status

    def _refuse(
        self, pod: Mapping[str, Any], ctrs: list[_Ctr], now: float, errors: list[podspec.PortError]
    ) -> dict[str, Any]:
        """Kubelet admission rejection: the pod fails with a reason and the
        field paths; anything already running is stopped."""
        message = "; ".join(f"{e.field}: {e.message}" for e in errors)
        grace = podspec.grace_period(pod)
        if all([self._terminate(c, grace, now) for c in ctrs if c.name != INFRA_NAME]):
            self._stop_sandbox(ctrs)
        sync = _Sync(sandbox_message=message)
        for c in (pod.get("spec") or {}).get("containers") or []:
            if _latest(ctrs, c["name"]) is None:
                sync.waiting[c["name"]] = ("HostPortRefused", message)
        status = self._status(pod, ctrs, now, sync, terminal=True)
        status.update(phase="Failed", reason="HostPortRefused", message=message)
        return status

    # --- status -------------------------------------------------------------

    def _status(
        self, pod: Mapping[str, Any], ctrs: list[_Ctr], now: float, sync: _Sync, *, terminal: bool = False
    ) -> dict[str, Any]:
        """Kubernetes ``PodStatus`` from the engine (kubelet ``generateAPIPodStatus``)."""
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        containers = spec.get("containers") or []
        statuses = [self._container_status(c, ctrs, sync) for c in containers]
        infra = _latest(ctrs, INFRA_NAME)
        sandbox_ready = infra is not None and infra.running
        phase = podspec.pod_phase(spec.get("restartPolicy"), statuses, total=len(containers), terminal=terminal)
        unready = [s["name"] for s in statuses if not s["ready"]]
        stamp = podspec.format_time(now)
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": podspec.pod_conditions(
                sandbox_ready=sandbox_ready,
                containers_ready=bool(statuses) and not unready,
                now=stamp,
                previous=old.get("conditions") or (),
                not_ready_message=f"containers with unready status: [{' '.join(unready)}]" if unready else "",
            ),
            "hostIP": self._host_ip,
            "hostIPs": [{"ip": self._host_ip}],
            "podIP": self._host_ip,
            "podIPs": [{"ip": self._host_ip}],
            "startTime": old.get("startTime") or stamp,
            "containerStatuses": statuses,
        }
        if sync.sandbox_message and not sandbox_ready:
            status["message"] = sync.sandbox_message
        return status

    def _container_status(self, container: Mapping[str, Any], ctrs: list[_Ctr], sync: _Sync) -> dict[str, Any]:
        name = str(container["name"])
        history = sorted((c for c in ctrs if c.name == name), key=lambda c: c.attempt)
        latest = history[-1] if history else None
        previous = history[-2] if len(history) > 1 else None
        status: dict[str, Any] = {
            "name": name,
            "image": container.get("image", ""),
            "imageID": "",
            "ready": False,
            "restartCount": latest.attempt if latest else 0,
            "started": False,
            "state": {"waiting": {"reason": "ContainerCreating"}},
            "lastState": {},
        }
        if latest is None:
            if name in sync.waiting:
                reason, message = sync.waiting[name]
                status["state"] = {"waiting": {"reason": reason, "message": message}}
            return status
        attrs = self._inspect(latest)
        status["containerID"] = self._prefix() + latest.id
        if attrs is not None:
            status["image"] = (attrs.get("Config") or {}).get("Image") or status["image"]
            status["imageID"] = self._image_id(str(attrs.get("Image") or ""))
        latest_terminated = self._terminated(latest, attrs)
        previous_terminated = self._terminated(previous, self._inspect(previous)) if previous else None
        if latest.running and attrs is not None and latest.id not in self._start_failures:
            started = podspec.parse_engine_time((attrs.get("State") or {}).get("StartedAt"))
            status["state"] = {"running": {"startedAt": podspec.format_time(started or self._clock())}}
            status["ready"] = status["started"] = True
            if previous_terminated:
                status["lastState"] = {"terminated": previous_terminated}
        elif name in sync.waiting:
            reason, message = sync.waiting[name]
            status["state"] = {"waiting": {"reason": reason, "message": message}}
            if latest_terminated:
                status["lastState"] = {"terminated": latest_terminated}
        elif latest_terminated:
            status["state"] = {"terminated": latest_terminated}
            if previous_terminated:
                status["lastState"] = {"terminated": previous_terminated}
        elif previous_terminated:
            status["lastState"] = {"terminated": previous_terminated}
        return status

    def _terminated(self, ctr: _Ctr | None, attrs: dict[str, Any] | None) -> dict[str, Any] | None:
        """``ContainerStateTerminated`` of a stopped (or failed-to-start) container."""
        if ctr is None:
            return None
        failure = self._start_failures.get(ctr.id)
        if failure is not None:
            stamp = podspec.format_time(failure[0])
            return {
                "exitCode": 128,
                "reason": "StartError",
                "message": failure[1],
                "startedAt": stamp,
                "finishedAt": stamp,
                "containerID": self._prefix() + ctr.id,
            }
        if ctr.state not in _EXITED or attrs is None:
            return None
        state = attrs.get("State") or {}
        exit_code = int(state.get("ExitCode") or 0)
        finished = podspec.parse_engine_time(state.get("FinishedAt"))
        started = podspec.parse_engine_time(state.get("StartedAt"))
        reason = "OOMKilled" if state.get("OOMKilled") else ("Completed" if exit_code == 0 else "Error")
        out: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": podspec.format_time(started) if started else None,
            "finishedAt": podspec.format_time(finished) if finished else None,
            "containerID": self._prefix() + ctr.id,
        }
        if state.get("Error"):
            out["message"] = str(state["Error"])
        return out


class _MountError(Exception):
    pass


def _set_volume_ownership(path: Path, fs_group: int) -> None:
    """kubelet ``volume.SetVolumeOwnership`` for an ``emptyDir``'s root: group ``fs_group``, group
    read/write/search and set-group-ID (``mode | 0660 | 0110 | S_ISGID``), so files made in it belong to
    the group. Only the root, which the agent made and no container can replace: walking the contents
    while the pod's containers run would race with symlinks they plant (the contents of a new emptyDir
    are empty; ``fsGroupChangePolicy`` ``Always`` and ``OnRootMismatch`` act alike on it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, -1, fs_group)
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | 0o660 | 0o110 | stat.S_ISGID)
    finally:
        os.close(fd)


def _latest(ctrs: list[_Ctr], name: str) -> _Ctr | None:
    mine = [c for c in ctrs if c.name == name]
    return max(mine, key=lambda c: c.attempt) if mine else None


def _port_spec(key: str) -> int | tuple[int, str]:
    port, proto = key.split("/", 1)
    return (int(port), proto) if proto != "tcp" else int(port)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _fmt_duration(seconds: float) -> str:
    """Go ``time.Duration`` style for whole and fractional seconds/minutes."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m0s"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{seconds % 60:g}s"
    return f"{seconds:g}s"


def _error_text(e: BaseException) -> str:
    if isinstance(e, docker.errors.APIError):
        return str(e.explanation or e)
    return str(e)
