"""Build pods on the embedded engine: one detached builder process per build pod.

The node agent's side of :mod:`dockyard.agent.builder`. All state is on disk
under ``STATE/builds/<pod uid>/`` and in the API, never only in memory, so an
agent killed at any moment resumes without running a build twice:

- no directory: the build has not started; it starts when a slot is free
  and it is among the oldest waiting build pods (the node-level limit on
  concurrent builds admits them in creation order; the others stay ``Pending``);
- ``pid`` of a live builder: the build is under way; the agent re-attaches;
- ``result.json``: the build ended; the agent writes the pod's terminal status
  (the termination-message contract of :mod:`dockyard.api.buildpod`);
- ``pid`` of a dead builder and no result: the builder was lost (e.g. the
  machine restarted); the pod ends ``Failed`` with reason ``BuildPodLost``,
  and the build is not run again.

Builders are forked from a ``multiprocessing`` forkserver that has the
builder's modules preloaded, so a build does not pay an interpreter start-up.
When the agent stops cleanly it stops its builders (the registry and API go
away with `dockyard up`); their pods end ``Failed`` with reason
``BuildPodEvicted``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import select
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
from lightkube.resources.core_v1 import Pod

from dockyard.agent import builder
from dockyard.api import buildpod, phases, timefmt
from dockyard.api import objects as api_objects
from dockyard.client import objects, runtime

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks at a starting builder, or a running one whose exit cannot be waited for
WATCHED_RESYNC = 30.0  # seconds between looks at a running builder whose exit wakes its pod (a safety net)
WAITING_RETRY = 5.0  # seconds between looks at a build pod waiting for a slot (a builder's exit wakes it sooner)
KILL_AFTER = 10.0  # seconds from SIGTERM to SIGKILL for a cancelled builder


STARTING_GRACE = 30.0  # seconds a builder may take to write its pid file before it counts as never started

_context: Any = None


def _forkserver() -> Any:
    """The multiprocessing context that forks builders from a preloaded server (started on first use)."""
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        # "__main__" too: otherwise every child imports the agent's main module again (for `dockyard up`, the
        # whole CLI: about 0.3 s per build on a busy 2-core machine), as multiprocessing's spawn preparation does
        ctx.set_forkserver_preload(["__main__", "dockyard.agent.builder"])
        _context = ctx
    return _context


def prestart_forkserver() -> threading.Thread:
    """Start the builders' forkserver now, on a thread (loading the builder's modules takes about 1 s
    on a busy 2-core machine), so the first build does not wait for it. Returns the thread."""

    def start() -> None:
        _forkserver()
        try:
            multiprocessing.forkserver.ensure_running()
        except Exception:  # the first build starts it (and reports the failure) instead
            log.exception("could not start the builders' forkserver")

    thread = threading.Thread(target=start, daemon=True, name="builder-forkserver")
    thread.start()
    return thread


def _alive(identity: str) -> bool:
    """True if the process named by ``"PID STARTTIME"`` still runs (a reused pid has another start time)."""
    try:
        pid = int(identity.split()[0])
    except (ValueError, IndexError):
        return False
    return builder.process_identity(pid) == identity.strip()


def _builder_status(**state: Any) -> dict[str, Any]:
    return {
        "name": buildpod.BUILDER_CONTAINER,
        "image": buildpod.BUILDER_IMAGE,
        "imageID": "",
        "ready": "running" in state,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }


def _uid(pod: Pod) -> str:
    return str(pod.metadata.uid if pod.metadata else "")


def _phase(pod: Pod) -> str | None:
    return pod.status.phase if pod.status else None


def _start_time(pod: Pod) -> str:
    """The pod's ``status.startTime`` (RFC 3339), or now."""
    started = pod.status.startTime if pod.status else None
    return timefmt.format(started) if started is not None else runtime.now_rfc3339()


def _created(pod: Pod) -> tuple[float, str]:
    """Admission order of waiting build pods: ``(creationTimestamp, name)``."""
    meta = pod.metadata
    created = meta.creationTimestamp if meta else None
    return (created.timestamp() if created is not None else 0.0, (meta.name if meta else None) or "")


class BuildPods:
    """Runs and follows this node's build pods.

    Args:
        api: lightkube client (node identity) for pod status writes.
        state_dir: where per-build directories live.
        kubeconfig: the node kubeconfig files the builder merges (``[]`` in-cluster: the builder
            finds the same service account).
        engine_url: the engine endpoint for the builder (``unix:///…``).
        engine_api_version: the Docker Engine API version the agent's client of that engine negotiated
            (the builder uses it as is instead of asking the engine again: ``GET /version`` costs Podman
            about 0.7 s), or None.
        max_builds: the node-level limit on concurrent builds.
        waiting: returns the build pods of this node not yet started (from the informer cache).
        on_exit: called with the pod when its builder process ends (to look at it at once).
    """

    def __init__(
        self,
        api: Any,
        *,
        state_dir: Path,
        kubeconfig: list[str],
        engine_url: str,
        max_builds: int,
        engine_api_version: str | None = None,
        waiting: Callable[[], list[Pod]],
        on_exit: Callable[[Pod], None] = lambda pod: None,
    ) -> None:
        self.api = api
        self.root = Path(state_dir) / "builds"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.kubeconfig = kubeconfig
        self.engine_url = engine_url
        self.engine_api_version = engine_api_version
        self.max_builds = max(1, max_builds)
        self.waiting = waiting
        self.on_exit = on_exit
        self._start_lock = threading.Lock()
        self._waited: set[str] = set()  # pod uids whose builder's exit a thread of this agent waits for
        self._waited_lock = threading.Lock()

    def _dir(self, uid: str) -> Path:
        return self.root / uid

    def running(self) -> int:
        """Builders on this node that are starting or running."""
        count = 0
        for d in self.root.iterdir():
            if (d / "result.json").exists():
                continue
            ident = self._pid(d)
            if (ident and _alive(ident)) or (ident is None and self._starting(d)):
                count += 1
        return count

    @staticmethod
    def _pid(d: Path) -> str | None:
        try:
            return (d / "pid").read_text().strip() or None
        except OSError:
            return None

    @staticmethod
    def _starting(d: Path) -> bool:
        """Asked to start less than :data:`STARTING_GRACE` ago and no pid yet."""
        try:
            return time.time() - (d / "request.json").stat().st_mtime < STARTING_GRACE
        except OSError:
            return False

    def sync(self, pod: Pod) -> float | None:
        """Advance one build pod; returns seconds until it should be looked at again, or None."""
        if _phase(pod) in phases.POD_TERMINAL:
            return None
        d = self._dir(_uid(pod))
        result = d / "result.json"
        if result.exists():
            self._finish(pod, json.loads(result.read_text()))
            return None
        ident = self._pid(d)
        if ident is not None:
            if _alive(ident):
                if _phase(pod) != phases.PodPhase.RUNNING:
                    self._mark_running(pod)
                # the builder's exit wakes this pod up (its reaper, or a pidfd for one that outlived an agent)
                return WATCHED_RESYNC if self._wait_for_exit(pod, ident) else POLL * 4
            if result.exists():
                return 0.0
            self._finish(
                pod,
                {
                    "succeeded": False,
                    "reason": "BuildPodLost",
                    "message": "the builder process ended without a result (node agent or machine "
                    "restarted?); the build is not run twice",
                },
            )
            return None
        if self._starting(d):
            return POLL
        return self._maybe_start(pod)

    def _maybe_start(self, pod: Pod) -> float | None:
        with self._start_lock:
            free = self.max_builds - self.running()
            if free <= 0:
                return WAITING_RETRY
            queue = sorted((p for p in self.waiting() if not self._dir(_uid(p)).exists()), key=_created)
            first = [_uid(p) for p in queue[:free]]
            if _uid(pod) not in first and queue:
                return WAITING_RETRY
            self._start(pod)
        return WATCHED_RESYNC

    def _wait_for_exit(self, pod: Pod, ident: str) -> bool:
        """Make sure a thread waits for the exit of the builder ``ident`` (``"PID STARTTIME"``) of ``pod`` and
        then calls :attr:`on_exit`: the reaper of a builder this agent started, else a pidfd
        (``pidfd_open(2)``, Linux 5.3) of one that outlived an earlier agent. Returns False if the exit
        cannot be waited for (the caller polls)."""
        uid = _uid(pod)
        with self._waited_lock:
            if uid in self._waited:
                return True
            try:
                fd = os.pidfd_open(int(ident.split()[0]))
            except (OSError, ValueError, AttributeError):
                return False
            if not _alive(ident):  # the pid was reused between the look and the pidfd: that is not our builder
                os.close(fd)
                return False
            self._waited.add(uid)

        def wait() -> None:
            try:
                select.select([fd], [], [])
            finally:
                os.close(fd)
                with self._waited_lock:
                    self._waited.discard(uid)
            self.on_exit(pod)

        threading.Thread(target=wait, daemon=True, name=f"wait-{uid}").start()
        return True

    def _start(self, pod: Pod) -> None:
        uid = _uid(pod)
        d = self._dir(uid)
        try:
            build: api_objects.Build = objects.parse(buildpod.build_from_pod(pod.to_dict()), api_objects.Build)
        except (ValueError, pydantic.ValidationError) as err:
            self._finish(pod, {"succeeded": False, "reason": "InvalidBuildPod", "message": str(err)})
            return
        d.mkdir(mode=0o700, exist_ok=True)
        builder.write_json_atomic(
            d / "request.json",
            {
                "build": api_objects.to_dict(build),
                "kubeconfig": self.kubeconfig,
                "engine": self.engine_url,
                "engine_api_version": self.engine_api_version,
            },
        )
        proc = _forkserver().Process(target=builder.detached_main, args=(str(d),), name=f"builder-{uid}")
        proc.start()
        # The builder outlives this agent on purpose: keep multiprocessing from joining it at exit.
        multiprocessing.process._children.discard(proc)  # type: ignore[attr-defined]

        def reap() -> None:
            try:
                proc.join()
            finally:
                with self._waited_lock:
                    self._waited.discard(uid)
            self.on_exit(pod)

        with self._waited_lock:
            self._waited.add(uid)
        threading.Thread(target=reap, daemon=True, name=f"reap-{uid}").start()
        log.info("build %s: builder started (pid %s)", build.key, proc.pid)
        self._mark_running(pod)

    def _mark_running(self, pod: Pod) -> None:
        started = _start_time(pod)
        runtime.patch_status(
            self.api,
            "Pod",
            pod,
            {
                "phase": "Running",
                "startTime": started,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "containerStatuses": [_builder_status(running={"startedAt": started})],
            },
        )

    def _finish(self, pod: Pod, doc: dict[str, Any]) -> None:
        if doc.get("cancelled"):
            # a deleted pod (cancel, deadline) is never synced again; a pod that is still here had
            # its builder stopped by a shutdown of the node agent
            doc = {
                "succeeded": False,
                "reason": "BuildPodEvicted",
                "message": "the node agent stopped while the build ran; start the build again",
            }
        result = buildpod.BuildResult(
            succeeded=bool(doc.get("succeeded")),
            image_digest=doc.get("image_digest"),
            reason=doc.get("reason"),
            message=doc.get("message"),
            log_snippet=doc.get("log_snippet"),
            stages=tuple(doc.get("stages") or ()),
            revision=doc.get("revision"),
        )
        started = _start_time(pod)
        runtime.patch_status(
            self.api,
            "Pod",
            pod,
            {
                "phase": "Succeeded" if result.succeeded else "Failed",
                "containerStatuses": [
                    _builder_status(
                        terminated={
                            "exitCode": 0 if result.succeeded else 1,
                            "reason": "Completed" if result.succeeded else "Error",
                            "startedAt": started,
                            "finishedAt": runtime.now_rfc3339(),
                            "message": result.termination_message(),
                        }
                    )
                ],
            },
        )

    def cancel(self, uid: str) -> threading.Thread | None:
        """Stop a pod's builder (SIGTERM to its session, SIGKILL after :data:`KILL_AFTER` s).

        Returns the thread that waits for it to end, or None if it was not running.
        """
        ident = self._pid(self._dir(uid))
        if ident is None or not _alive(ident):
            return None
        pid = int(ident.split()[0])
        # the builder stops on SIGTERM only with this file present: a stray SIGTERM (e.g. a dying `dockyard up`'s
        # death signal reaching its process tree) must not end a build that outlives the agent by design
        (self._dir(uid) / builder.CANCEL_FILE).touch()
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            return None

        def escalate() -> None:
            deadline = time.monotonic() + KILL_AFTER
            while time.monotonic() < deadline:
                if not _alive(ident):
                    return
                time.sleep(0.05)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

        thread = threading.Thread(target=escalate, daemon=True)
        thread.start()
        return thread

    def stop_all(self, budget: float = 3.0) -> list[str]:
        """Stop every builder of this node (clean shutdown); returns the pod uids whose builder was stopped."""
        waits = {d.name: self.cancel(d.name) for d in self.root.iterdir()}
        deadline = time.monotonic() + budget
        stopped = []
        for uid, thread in waits.items():
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                stopped.append(uid)
        return stopped

    def sweep(self, known_uids: set[str]) -> None:
        """Remove directories of build pods that no longer exist and whose builder has ended."""
        for d in list(self.root.iterdir()):
            if d.name in known_uids:
                continue
            ident = self._pid(d)
            if ident is not None and _alive(ident):
                self.cancel(d.name)
                continue
            if ident is None and self._starting(d):
                continue
            shutil.rmtree(d, ignore_errors=True)
