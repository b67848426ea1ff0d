"""Container lifecycle hooks: ``postStart`` and ``preStop``, as the kubelet runs them.

kubelet ``pkg/kubelet/lifecycle/handlers.go`` (the handler runner) and ``kuberuntime_container.go``
(``startContainer`` step 4, ``killContainer``, ``executePreStopHook``):

- Handlers (:class:`HandlerRunner`): ``exec`` through the engine's exec API (as the exec probe), ``httpGet`` to
  127.0.0.1 inside the pod's network namespace with the HTTP prober's code (:meth:`.prober.Prober.http_get`),
  ``sleep`` in the agent. ``tcpSocket`` is refused by the API server (Kubernetes never ran it).
- ``postStart`` runs right after the container started, on a thread of its own so that no sync waits for it;
  until it succeeds the container is not ``Running`` (nor started or ready) in the pod's status, later containers
  of the pod are not started (the kubelet starts them one after the other, each after its hook), and it is not
  probed. A failed hook records a Warning ``FailedPostStartHook`` Event; the pod worker then kills the container
  (``Killing`` Event ``FailedPostStartHook``) and it restarts per ``restartPolicy`` with the crash back-off.
  An ``exec`` or ``httpGet`` ``postStart`` is bounded by :data:`POST_START_TIMEOUT` (the kubelet sets none; a
  hook that times out fails).
- ``preStop`` runs before SIGTERM whenever the agent stops a running container (pod deletion, a restart for a
  spec change, a failed probe or postStart, a new sandbox, eviction with a grace period); it is given up to the
  grace period, then SIGTERM follows with what is left of it, at least :data:`MIN_GRACE_AFTER_PRE_STOP` seconds
  (kubelet ``minimumGracePeriodInSeconds``). A failed hook records a Warning ``FailedPreStopHook`` Event and the
  stop goes on. Its handler is also kept in a label of the engine container
  (:data:`dockyard.api.podfields.PRE_STOP_HANDLER_LABEL`, the kubelet's ``io.kubernetes.container.preStopHandler``)
  for stops of pods the agent no longer has the spec of.

Crash safety: before a hook runs, a marker file records it in the pod's directory
(``<pod dir>/hooks/<container id>.<hook>``, holding its start time). A new agent that adopts a running container:

- whose ``preStop`` marker exists does not run the hook again (an ``exec`` hook may even still run in the
  container: the engine does not end an exec when the agent dies): SIGTERM is sent at once, and SIGKILL after what
  is left of the grace period counted from the hook's recorded start (at least 2 s);
- whose ``postStart`` marker exists (the hook was interrupted, or failed before the kill) does not trust the
  container, nor run the hook a second time in it: it treats the hook as failed (``FailedPostStartHook``, the
  container is killed and started again per ``restartPolicy``, its new container running the hook afresh). A
  postStart hook that succeeded removes its marker.

Markers go with the pod directory when the pod is removed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from lightkube.models.core_v1 import Container, LifecycleHandler
from lightkube.resources.core_v1 import Pod

from dockyard.agent.engine import containers as engine
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.pods import probes
from dockyard.agent.pods.prober import EventSink, Prober
from dockyard.agent.pods.probes import Result
from dockyard.agent.pods.state import EngineContainer, PodState

__all__ = [
    "MIN_GRACE_AFTER_PRE_STOP",
    "POST_START",
    "POST_START_TIMEOUT",
    "PRE_STOP",
    "HandlerRunner",
    "HookManager",
    "HookRun",
    "pre_stop_label",
]

log = logging.getLogger(__name__)

POST_START = "postStart"
PRE_STOP = "preStop"
POST_START_TIMEOUT = 300.0
"""Seconds an ``exec`` or ``httpGet`` postStart hook may take before it counts as failed."""
MIN_GRACE_AFTER_PRE_STOP = 2
"""Seconds between SIGTERM and SIGKILL at least, after a preStop hook (kubelet ``minimumGracePeriodInSeconds``)."""
HTTP_TIMEOUT = 10.0
"""Seconds an ``httpGet`` hook waits for its connection and its answer (within the hook's own bound)."""
FAILED_POST_START = "FailedPostStartHook"
FAILED_PRE_STOP = "FailedPreStopHook"
INTERRUPTED = "the postStart hook was interrupted: the node agent restarted while it ran"
_WARNING = "Warning"


@dataclass
class HookRun:
    """One hook run for one engine container.

    Attributes:
        hook: ``postStart`` or ``preStop``.
        name: the pod's container name.
        container_id: the engine container.
        started: when it started, seconds since the epoch (an earlier agent's start, when adopted).
        done: set once it ended (at once for an adopted run).
        error: why it failed (``None``: it succeeded, or has not ended).
        cancel: set to abort it (the container is being stopped): a ``sleep`` ends, no failure is recorded.
    """

    hook: str
    name: str
    container_id: str
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def pending(self) -> bool:
        return not self.done.is_set()

    @property
    def failed(self) -> bool:
        return self.done.is_set() and self.error is not None


def pre_stop_label(container: Container) -> str | None:
    """The container's preStop handler as the label value kept on its engine container (JSON, named ports
    resolved to numbers), or ``None`` without one."""
    handler = container.lifecycle.preStop if container.lifecycle else None
    if handler is None:
        return None
    wire = handler.to_dict()
    get = wire.get("httpGet")
    if isinstance(get, dict):
        try:
            get["port"] = probes.resolve_port(get.get("port"), container)
        except probes.ProbeError:
            pass
    return json.dumps(wire, sort_keys=True, separators=(",", ":"))


def _pod_name(pod: Pod) -> str:
    meta = pod.metadata
    return f"{meta.name}_{meta.namespace}({meta.uid})" if meta else ""


class HandlerRunner:
    """Runs one lifecycle handler against a running container (kubelet ``handlerRunner.Run``).

    Args:
        engine: the engine's container operations (exec).
        prober: its netns lookup and HTTP client serve ``httpGet``.
    """

    def __init__(self, engine: engine.Containers, prober: Prober) -> None:
        self._engine = engine
        self._prober = prober

    def run(
        self,
        pod: Pod,
        container: Container,
        container_id: str,
        handler: LifecycleHandler,
        *,
        timeout: float,
        cancel: threading.Event,
    ) -> str | None:
        """Run the handler; ``None`` when it succeeded, else the failure in the kubelet's words
        (``Exec lifecycle hook ([sh -c exit 3]) for Container "web" in Pod "web_default(uid)" failed - error:
        command 'sh -c exit 3' exited with 3``), never the hook's output (it may print a Secret's value)."""
        where = f'for Container "{container.name}" in Pod "{_pod_name(pod)}"'
        if handler.exec is not None:
            command = list(handler.exec.command or [])
            text = "[" + " ".join(command) + "]"
            try:
                done = self._engine.exec_run(container_id, command, timeout=timeout)
            except engine_errors.EngineError as e:
                return f'Exec lifecycle hook ({text}) {where} failed - error: {e}, message: ""'
            # the hook's output is left out: it may print a Secret's value (the kubelet, too, keeps it out of Events)
            if done.timed_out:
                return f"Exec lifecycle hook ({text}) {where} failed - error: timed out after {timeout:g}s"
            if done.exit_code != 0:
                return f"Exec lifecycle hook ({text}) {where} failed - error: command '{' '.join(command)}' exited with {done.exit_code}"
            return None
        if handler.httpGet is not None:
            get = handler.httpGet
            try:
                port = probes.resolve_port(get.port, container)
                ns = self._prober.netns(container_id)
            except probes.ProbeError as e:
                return f"HTTP lifecycle hook ({get.path or '/'}) {where} failed - error: {e}"
            try:
                result, output = self._prober.http_get(get, port, ns, min(timeout, HTTP_TIMEOUT))
            finally:
                ns.close()
            if result is not Result.SUCCESS:
                return f"HTTP lifecycle hook ({get.path or '/'}) {where} failed - error: {output}"
            return None
        if handler.sleep is not None:
            cancel.wait(max(0.0, min(float(handler.sleep.seconds or 0), timeout)))
            return None
        return f"Unsupported lifecycle hook {where}: tcpSocket is not supported"


class HookManager:
    """Starts the hooks of this node's containers and keeps their marker files (see the module docstring).

    Args:
        runner: runs the handlers.
        pod_dir: the directory of a pod by uid (``VolumeManager.pod_dir``).
        events: records ``FailedPostStartHook``/``FailedPreStopHook``.
        on_done: called with the pod when a hook ended, from the hook's thread (the agent syncs the pod at
            once: the container turns Running, is killed, or gets its SIGTERM).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        runner: HandlerRunner,
        *,
        pod_dir: Callable[[str], Path],
        events: EventSink | None = None,
        on_done: Callable[[Pod], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runner = runner
        self._pod_dir = pod_dir
        self._events = events
        self._on_done = on_done
        self._clock = clock

    # --- postStart ------------------------------------------------------------------

    def post_start(self, state: PodState, pod: Pod, container: Container, container_id: str) -> None:
        """Start the container's postStart hook (if it has one), just after the engine started it."""
        handler = container.lifecycle.postStart if container.lifecycle else None
        if handler is None:
            return
        run = HookRun(POST_START, container.name, container_id, self._clock())
        self._mark(state.uid, run)
        state.hooks[(container_id, POST_START)] = run
        self._spawn(state.uid, run, pod, container, handler, timeout=POST_START_TIMEOUT)

    def post_start_run(self, state: PodState, container: Container, ctr: EngineContainer) -> HookRun | None:
        """The postStart run of a running container: this agent's, else (adopting it) a failed run when an
        earlier agent's marker shows the hook never succeeded; ``None`` when there is nothing to wait for."""
        key = (ctr.id, POST_START)
        run = state.hooks.get(key)
        if run is not None or container.lifecycle is None or container.lifecycle.postStart is None:
            return run
        started = self._marked(state.uid, ctr.id, POST_START)
        if started is None:
            run = HookRun(POST_START, ctr.name, ctr.id, 0.0)
        else:
            run = HookRun(POST_START, ctr.name, ctr.id, started, error=INTERRUPTED)
            log.warning("pod %s container %s: %s", state.uid, ctr.name, INTERRUPTED)
        run.done.set()
        state.hooks[key] = run
        return run

    def pending_post_start(self, state: PodState, name: str) -> bool:
        """Whether a postStart hook of the pod's container ``name`` is still running."""
        return any(r.hook == POST_START and r.name == name and r.pending for r in state.hooks.values())

    def record_post_start_failure(self, pod: Pod, run: HookRun) -> None:
        """Record the Warning ``FailedPostStartHook`` Event of a failed run, once."""
        if run.error is not None and self._events is not None:
            self._events(pod, _WARNING, FAILED_POST_START, run.error)

    # --- preStop --------------------------------------------------------------------

    def pre_stop(
        self,
        state: PodState,
        pod: Pod | None,
        ctr: EngineContainer,
        container: Container | None,
        *,
        grace: int,
        now: float,
    ) -> HookRun | None:
        """The container's preStop run, started now (given up to ``grace`` seconds) unless under way or started by
        an earlier agent (its marker); ``None`` when the container has no preStop hook (in ``container``, its spec,
        else in its engine container's label)."""
        key = (ctr.id, PRE_STOP)
        run = state.hooks.get(key)
        if run is not None:
            return run
        post = state.hooks.get((ctr.id, POST_START))
        if post is not None:
            post.cancel.set()  # kubelet: a postStart under way is abandoned when the container is killed
        handler = container.lifecycle.preStop if container is not None and container.lifecycle else None
        if handler is None and ctr.pre_stop:
            try:
                handler = cast(LifecycleHandler, LifecycleHandler.from_dict(json.loads(ctr.pre_stop)))
            except (ValueError, TypeError, AttributeError):
                log.warning("container %s: malformed preStop label; no hook run", ctr.id[:12])
        if handler is None:
            return None
        started = self._marked(state.uid, ctr.id, PRE_STOP)
        if started is not None:
            run = HookRun(PRE_STOP, ctr.name, ctr.id, started)
            run.done.set()
            state.hooks[key] = run
            return run
        run = HookRun(PRE_STOP, ctr.name, ctr.id, now)
        self._mark(state.uid, run)
        state.hooks[key] = run
        self._spawn(state.uid, run, pod, container or Container(name=ctr.name), handler, timeout=float(grace))
        return run

    # --- internals ------------------------------------------------------------------

    def _spawn(
        self,
        uid: str,
        run: HookRun,
        pod: Pod | None,
        container: Container,
        handler: LifecycleHandler,
        *,
        timeout: float,
    ) -> None:
        thread = threading.Thread(
            target=self._run, args=(uid, run, pod, container, handler, timeout), daemon=True, name=f"hook-{run.hook}"
        )
        thread.start()

    def _run(
        self, uid: str, run: HookRun, pod: Pod | None, container: Container, handler: LifecycleHandler, timeout: float
    ) -> None:
        error: str | None
        try:
            error = self._runner.run(
                pod or Pod(), container, run.container_id, handler, timeout=timeout, cancel=run.cancel
            )
        except Exception as e:  # a hook never takes the agent down
            log.exception("%s hook of container %s failed", run.hook, run.name)
            error = str(e)
        run.error = error
        if error is None and run.hook == POST_START:
            self._unmark(uid, run)
        if error is not None and not run.cancel.is_set():
            log.info("%s hook of container %s failed: %s", run.hook, run.name, error)
            if run.hook == PRE_STOP and pod is not None and self._events is not None:
                self._events(pod, _WARNING, FAILED_PRE_STOP, error)
        run.done.set()
        if pod is not None and self._on_done is not None and not run.cancel.is_set():
            try:
                self._on_done(pod)
            except Exception:
                log.exception("hook completion callback failed")

    def _marker(self, uid: str, container_id: str, hook: str) -> Path:
        return self._pod_dir(uid) / "hooks" / f"{container_id}.{hook}"

    def _mark(self, uid: str, run: HookRun) -> None:
        path = self._marker(uid, run.container_id, run.hook)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(repr(run.started))
        except OSError as e:
            log.warning(
                "%s hook of %s: no marker written (%s); a restarted agent may run it again", run.hook, run.name, e
            )

    def _unmark(self, uid: str, run: HookRun) -> None:
        try:
            self._marker(uid, run.container_id, run.hook).unlink()
        except OSError:
            pass

    def _marked(self, uid: str, container_id: str, hook: str) -> float | None:
        try:
            text = self._marker(uid, container_id, hook).read_text()
        except OSError:
            return None
        try:
            return float(text)
        except ValueError:
            return 0.0
