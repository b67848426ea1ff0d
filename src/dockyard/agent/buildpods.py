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
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockyard.api import buildpod
from dockyard.client import runtime

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks at a running builder
KILL_AFTER = 10.0  # seconds from SIGTERM to SIGKILL for a cancelled builder


def _alive(pid: int, state_dir: Path) -> bool:
    """True if ``pid`` is a live builder of ``state_dir`` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]
    return not zombie and b"dockyard.agent.builder" in cmdline and str(state_dir).encode() in cmdline


def _builder_status(**state: Any) -> dict[str, Any]:
    return {"name": buildpod.BUILDER_CONTAINER, "image": buildpod.BUILDER_IMAGE, "imageID": "",
            "ready": "running" in state, "restartCount": 0, "started": "running" in state, "state": state}


class BuildPods:
    """Runs and follows this node's build pods.

    Args:
        api: lightkube client (node identity) for pod status writes.
        state_dir: where per-build directories live.
        kubeconfig: the node kubeconfig path the builder uses.
        engine_url: the engine endpoint for the builder (``unix:///…``).
        max_builds: the node-level limit on concurrent builds.
        waiting: returns the build pods of this node not yet started (from the informer cache).
    """

    def __init__(self, api: Any, *, state_dir: Path, kubeconfig: str, engine_url: str, max_builds: int,
                 waiting: Callable[[], list[dict[str, Any]]]) -> None:
        self.api = api
        self.root = Path(state_dir) / "builds"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.kubeconfig = kubeconfig
        self.engine_url = engine_url
        self.max_builds = max(1, max_builds)
        self.waiting = waiting
        self._start_lock = threading.Lock()

    def _dir(self, uid: str) -> Path:
        return self.root / uid

    def running(self) -> int:
        """Live builder processes on this node."""
        count = 0
        for d in self.root.iterdir():
            pid = self._pid(d)
            if pid and not (d / "result.json").exists() and _alive(pid, d):
                count += 1
        return count

    @staticmethod
    def _pid(d: Path) -> int | None:
        try:
            return int((d / "pid").read_text())
        except (OSError, ValueError):
            return None

    def sync(self, pod: dict[str, Any]) -> float | None:
        """Advance one build pod; returns seconds until it should be looked at again, or None."""
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        uid = pod["metadata"]["uid"]
        d = self._dir(uid)
        result = d / "result.json"
        if result.exists():
            self._finish(pod, json.loads(result.read_text()))
            return None
        pid = self._pid(d)
        if pid is not None:
            if _alive(pid, d):
                if (pod.get("status") or {}).get("phase") != "Running":
                    self._mark_running(pod)
                return POLL
            if result.exists():
                return 0.0
            self._finish(pod, {"succeeded": False, "reason": "BuildPodLost",
                               "message": "the builder process ended without a result (node agent or machine "
                                          "restarted?); the build is not run twice"})
            return None
        return self._maybe_start(pod)

    def _maybe_start(self, pod: dict[str, Any]) -> float | None:
        with self._start_lock:
            free = self.max_builds - self.running()
            if free <= 0:
                return 1.0
            queue = sorted((p for p in self.waiting() if not self._dir(p["metadata"]["uid"]).exists()),
                           key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
            first = [p["metadata"]["uid"] for p in queue[:free]]
            if pod["metadata"]["uid"] not in first and queue:
                return 1.0
            self._start(pod)
        return POLL

    def _start(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        d = self._dir(uid)
        try:
            build = buildpod.build_from_pod(pod)
        except ValueError as err:
            self._finish(pod, {"succeeded": False, "reason": "InvalidBuildPod", "message": str(err)})
            return
        d.mkdir(mode=0o700, exist_ok=True)
        (d / "request.json").write_text(json.dumps({"build": build, "kubeconfig": self.kubeconfig,
                                                     "engine": self.engine_url}))
        with open(d / "builder.log", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "dockyard.agent.builder", str(d)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
        (d / "pid").write_text(str(proc.pid))
        threading.Thread(target=proc.wait, daemon=True).start()  # reap it when it exits
        log.info("build %s/%s: builder started (pid %d)", build["metadata"]["namespace"],
                 build["metadata"]["name"], proc.pid)
        self._mark_running(pod)

    def _mark_running(self, pod: dict[str, Any]) -> None:
        started = (pod.get("status") or {}).get("startTime") or runtime.now_rfc3339()
        runtime.patch_status(self.api, "Pod", pod, {
            "phase": "Running", "startTime": started, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
            "containerStatuses": [_builder_status(running={"startedAt": started})]})

    def _finish(self, pod: dict[str, Any], doc: dict[str, Any]) -> None:
        if doc.get("cancelled"):
            return  # the pod is gone; the build controller records the cancellation
        result = buildpod.BuildResult(
            succeeded=bool(doc.get("succeeded")), image_digest=doc.get("image_digest"), reason=doc.get("reason"),
            message=doc.get("message"), log_snippet=doc.get("log_snippet"),
            stages=tuple(doc.get("stages") or ()), revision=doc.get("revision"))
        started = (pod.get("status") or {}).get("startTime") or runtime.now_rfc3339()
        runtime.patch_status(self.api, "Pod", pod, {
            "phase": "Succeeded" if result.succeeded else "Failed",
            "containerStatuses": [_builder_status(terminated={
                "exitCode": 0 if result.succeeded else 1,
                "reason": "Completed" if result.succeeded else "Error",
                "startedAt": started, "finishedAt": runtime.now_rfc3339(),
                "message": result.termination_message()})]})

    def cancel(self, uid: str) -> None:
        """The build pod was deleted (cancel or deadline): stop its builder (SIGTERM, then SIGKILL)."""
        d = self._dir(uid)
        pid = self._pid(d)
        if pid is None or not _alive(pid, d):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            return

        def escalate() -> None:
            deadline = time.monotonic() + KILL_AFTER
            while time.monotonic() < deadline:
                if not _alive(pid, d):
                    return
                time.sleep(0.2)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

        threading.Thread(target=escalate, daemon=True).start()

    def sweep(self, known_uids: set[str]) -> None:
        """Remove directories of build pods that no longer exist and whose builder has ended."""
        for d in list(self.root.iterdir()):
            if d.name in known_uids:
                continue
            pid = self._pid(d)
            if pid is not None and _alive(pid, d):
                self.cancel(d.name)
                continue
            shutil.rmtree(d, ignore_errors=True)
