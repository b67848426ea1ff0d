"""The prober: liveness, readiness and startup probes, as the kubelet runs them.

kubelet ``pkg/kubelet/prober``:

- :class:`ProbeManager` (``prober_manager.go``): the pod worker adds a pod's probe workers on every sync
  (:meth:`~ProbeManager.add_pod`, one worker per container and probe type), removes them when the pod is
  deleted or done (:meth:`~ProbeManager.remove_pod`); the status manager asks it for each container's
  ``started`` and ``ready`` (:meth:`~ProbeManager.update_pod_status`), and the pod worker for the containers
  that failed their liveness or startup probe (:meth:`~ProbeManager.unhealthy`), which it kills and restarts
  (``Killing`` Event, the kubelet's crash back-off, ``restartCount``).
- The workers (``worker.go``): each with its own period, scheduled by one thread and run on a small bounded
  pool (:data:`MAX_PARALLEL` probes at once); ``initialDelaySeconds``; the startup probe gates the others;
  ``successThreshold``/``failureThreshold`` (:mod:`.probes`); after a liveness/startup failure a worker holds
  until the container is replaced.
- The results cache (``results_manager.go``): per container id and probe type; a change calls
  ``on_change(pod)`` so the pod is synced and its status written at once (readiness → ``ready``,
  ``ContainersReady``/``Ready``; liveness → kill).
- :class:`Prober` (``prober.go``): ``exec`` through the engine's exec API (:meth:`Containers.exec_run
  <dockyard.agent.engine.containers.Containers.exec_run>`, bound by ``timeoutSeconds``); ``httpGet`` and
  ``tcpSocket`` to 127.0.0.1 inside the pod's network namespace (:mod:`dockyard.agent.netns`: the socket is
  made in the namespace of the container's process, so traffic never leaves the pod's loopback and no
  bridge address is used). ``Unhealthy`` Warning Events in the kubelet's words
  (``Readiness probe failed: HTTP probe failed with statuscode: 503``).

:class:`NoProbes` is the manager for a runtime that must not probe (containers are ready once running).
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lightkube.models.core_v1 import Container, ContainerStatus, HTTPGetAction
from lightkube.resources.core_v1 import Pod

from dockyard.agent import netns
from dockyard.agent.engine import containers as engine
from dockyard.agent.engine import errors as engine_errors
from dockyard.agent.pods import probes
from dockyard.agent.pods.probes import ProbeSpec, ProbeType, Result
from dockyard.api import kinds

__all__ = ["MAX_PARALLEL", "USER_AGENT", "EventSink", "NoProbes", "ProbeManager", "Prober", "ProberManager"]

log = logging.getLogger(__name__)

EventSink = Callable[[Pod, str, str, str], None]
"""``(pod, type, reason, message)``: records a Kubernetes Event about the pod (``Warning``, ``Unhealthy``, …)."""

MAX_PARALLEL = 8
"""Probes run at once on this node (more wait their turn; each is bound by its ``timeoutSeconds``)."""
USER_AGENT = "kube-probe/{}.{}".format(*kinds.KUBERNETES_VERSION)
"""The kubelet's ``User-Agent`` for HTTP probes (``kube-probe/<major>.<minor>``)."""
_HTTP_BODY_LIMIT = 10 * 1024
_LOOPBACK = "127.0.0.1"
_WARNING = "Warning"
_UNHEALTHY = "Unhealthy"


class ProberManager(Protocol):
    """What the pod runtime needs from a prober manager (kubelet ``prober.Manager``)."""

    def add_pod(self, pod: Pod) -> None:
        """Start probing the pod's containers (called on every sync; idempotent)."""

    def remove_pod(self, uid: str) -> None:
        """Stop probing the pod ``uid`` (it was killed, deleted or is done)."""

    def update_pod_status(self, pod: Pod, container_statuses: list[ContainerStatus]) -> None:
        """Set ``ready`` and ``started`` of the pod's ``containerStatuses`` (kubelet ``UpdatePodStatus``)
        in place, before the pod's conditions are computed from them."""

    def unhealthy(self, uid: str) -> dict[str, ProbeType]:
        """Engine container id → the probe (liveness or startup) it failed, for the pod ``uid``."""


class NoProbes:
    """A prober manager that never probes: containers are ready and started once running."""

    def add_pod(self, pod: Pod) -> None:
        pass

    def remove_pod(self, uid: str) -> None:
        pass

    def update_pod_status(self, pod: Pod, container_statuses: list[ContainerStatus]) -> None:
        pass

    def unhealthy(self, uid: str) -> dict[str, ProbeType]:
        return {}


# --- running one probe ------------------------------------------------------------------------------


class Prober:
    """Runs one probe against a container (kubelet ``prober.runProbe``).

    Args:
        engine: the engine's container operations (exec, and inspect for the process whose network namespace
            ``httpGet``/``tcpSocket`` use).
    """

    def __init__(self, engine: engine.Containers) -> None:
        self._engine = engine

    def netns(self, container_id: str) -> netns.NetNS:
        """The network namespace of the running container (that of its process, ``State.Pid``, which is the
        pod's: app containers join the infra container's).

        Raises:
            ProbeError: the container is gone or not running, or the namespace cannot be opened.
        """
        try:
            attrs = self._engine.inspect(container_id)
        except engine_errors.EngineError as e:
            raise probes.ProbeError(f"inspect container: {e}") from e
        pid = int((attrs.get("State") or {}).get("Pid") or 0)
        try:
            return netns.NetNS(pid)
        except netns.NetNSError as e:
            raise probes.ProbeError(str(e)) from e

    def run(
        self, spec: ProbeSpec, container: Container, container_id: str, ns: Callable[[], netns.NetNS]
    ) -> tuple[Result, str]:
        """Run the probe once; return ``(SUCCESS|FAILURE, output)`` where ``output`` says why it failed in the
        kubelet's words.

        Args:
            ns: gives the pod's network namespace (called only for ``httpGet``/``tcpSocket``).

        Raises:
            ProbeError: the probe could not be run (no handler, unknown port name, container not running):
                the kubelet's ``probe errored``; the result is discarded.
        """
        probe = spec.probe
        if probe.exec is not None:
            return self._exec(list(probe.exec.command or []), container_id, spec.timeout)
        if probe.httpGet is not None:
            port = probes.resolve_port(probe.httpGet.port, container)
            return self._http(spec, port, ns())
        if probe.tcpSocket is not None:
            port = probes.resolve_port(probe.tcpSocket.port, container)
            return self._tcp(port, ns(), spec.timeout)
        raise probes.ProbeError("missing probe handler")

    def _exec(self, command: list[str], container_id: str, timeout: int) -> tuple[Result, str]:
        """kubelet ``pkg/probe/exec``: exit 0 succeeds; otherwise the output is the failure's text."""
        try:
            done = self._engine.exec_run(container_id, command, timeout=timeout)
        except engine_errors.EngineError as e:
            raise probes.ProbeError(str(e)) from e
        output = done.output.decode("utf-8", "replace")
        if done.timed_out:
            return Result.FAILURE, f"command {' '.join(command)!r} timed out".replace("'", '"')
        return (Result.SUCCESS, output) if done.exit_code == 0 else (Result.FAILURE, output)

    def _connect(self, ns: netns.NetNS, port: int, timeout: float) -> socket.socket:
        try:
            sock = ns.socket()
        except netns.NetNSError as e:
            raise probes.ProbeError(str(e)) from e
        sock.settimeout(timeout)
        try:
            sock.connect((_LOOPBACK, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _tcp(self, port: int, ns: netns.NetNS, timeout: int) -> tuple[Result, str]:
        """kubelet ``pkg/probe/tcp``: the connection opens (then closes) or the probe fails."""
        where = f"dial tcp {_LOOPBACK}:{port}"
        try:
            self._connect(ns, port, timeout).close()
        except TimeoutError:
            return Result.FAILURE, f"{where}: i/o timeout"
        except OSError as e:
            return Result.FAILURE, f"{where}: connect: {(e.strerror or str(e)).lower()}"
        return Result.SUCCESS, ""

    def _http(self, spec: ProbeSpec, port: int, ns: netns.NetNS) -> tuple[Result, str]:
        get = spec.probe.httpGet
        assert get is not None
        return self.http_get(get, port, ns, spec.timeout)

    def http_get(self, get: HTTPGetAction, port: int, ns: netns.NetNS, timeout: float) -> tuple[Result, str]:
        """kubelet ``pkg/probe/http``: ``GET`` with ``User-Agent: kube-probe/<version>`` and ``Accept: */*``
        (``httpHeaders`` add to or replace them, ``Host`` included); 200–399 succeeds. HTTPS does not verify
        the certificate, as the kubelet does not. Also the ``httpGet`` lifecycle hooks' request
        (:mod:`.lifecycle`), as the kubelet's handler runner shares the HTTP prober's code.

        Args:
            port: the port on the pod's loopback.
            ns: the pod's network namespace.
            timeout: seconds for the connection and for the answer."""
        scheme = (get.scheme or "HTTP").upper()
        path = get.path or "/"
        if not path.startswith("/"):
            path = "/" + path
        url = f"{scheme.lower()}://{_LOOPBACK}:{port}{path}"
        # ``host`` (loopback only, see dockyard.api.probes) names the Host header; the connection is always to
        # 127.0.0.1 in the pod's namespace.
        headers = {"Host": f"{get.host or _LOOPBACK}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
        for header in get.httpHeaders or []:
            headers = {k: v for k, v in headers.items() if k.lower() != header.name.lower()}
        extra = [(h.name, h.value or "") for h in get.httpHeaders or []]
        conn = http.client.HTTPConnection(_LOOPBACK, port, timeout=timeout)
        try:
            try:
                sock = self._connect(ns, port, timeout)
            except TimeoutError:
                return Result.FAILURE, f'Get "{url}": dial tcp {_LOOPBACK}:{port}: i/o timeout'
            except OSError as e:
                reason = (e.strerror or str(e)).lower()
                return Result.FAILURE, f'Get "{url}": dial tcp {_LOOPBACK}:{port}: connect: {reason}'
            if scheme == "HTTPS":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                try:
                    sock = context.wrap_socket(sock)
                except (OSError, ssl.SSLError) as e:
                    sock.close()
                    return Result.FAILURE, f'Get "{url}": {e}'
            conn.sock = sock
            conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            for name, value in [*headers.items(), *extra]:
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            response.read(_HTTP_BODY_LIMIT)
        except TimeoutError:
            return (
                Result.FAILURE,
                f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
            )
        except (OSError, http.client.HTTPException) as e:
            return Result.FAILURE, f'Get "{url}": {e or type(e).__name__}'
        finally:
            conn.close()
        return probes.http_result(response.status)


# --- workers and results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """What the last status computation showed of one container (kubelet: the status manager's pod status)."""

    container_id: str
    running: bool
    started_at: float
    started: bool
    terminated: bool
    restart_policy: str


class _Worker:
    """One probe of one container (kubelet ``worker``); its mutable fields are touched only by the single
    run in flight, or under the manager's lock."""

    def __init__(self, pod: Pod, container: Container, spec: ProbeSpec) -> None:
        self.pod = pod
        self.container = container
        self.spec = spec
        self.uid = str(pod.metadata.uid if pod.metadata else "")
        self.container_id = ""
        self.on_hold = False
        self.thresholds = probes.Thresholds(success=spec.success_threshold, failure=spec.failure_threshold)
        self.ns: netns.NetNS | None = None
        self.due = 0.0  # time.monotonic() of the next run
        self.in_flight = False
        self.stopped = False

    def close_ns(self) -> None:
        if self.ns is not None:
            self.ns.close()
            self.ns = None


_Key = tuple[str, str, ProbeType]  # (pod uid, container name, probe type)


class ProbeManager:
    """Runs the probes of this node's pods (see the module docstring).

    Args:
        engine: the engine's container operations.
        events: records Events (``Unhealthy``); default: none.
        on_change: called with the pod when a probe result changes (a readiness flip, a liveness failure),
            from a probe thread; the agent enqueues the pod for a sync.
        clock: seconds since the epoch (container start times are compared with it).
        max_parallel: probes run at once.
    """

    def __init__(
        self,
        engine: engine.Containers,
        *,
        events: EventSink | None = None,
        on_change: Callable[[Pod], None] | None = None,
        clock: Callable[[], float] = time.time,
        max_parallel: int = MAX_PARALLEL,
    ) -> None:
        self.prober = Prober(engine)
        self._events = events
        self._on_change = on_change
        self._clock = clock
        self._max_parallel = max_parallel
        self._lock = threading.Condition()
        self._workers: dict[_Key, _Worker] = {}
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._results: dict[tuple[ProbeType, str], Result] = {}
        self._heap: list[tuple[float, int, _Worker]] = []
        self._seq = itertools.count()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- the pod worker's and status manager's side ----------------------------------------------

    def add_pod(self, pod: Pod) -> None:
        uid = str(pod.metadata.uid if pod.metadata else "")
        wanted: dict[_Key, tuple[Container, ProbeSpec]] = {}
        for container in pod.spec.containers if pod.spec else []:
            for spec in probes.container_probes(container):
                wanted[(uid, container.name, spec.type)] = (container, spec)
        with self._lock:
            for key in [k for k in self._workers if k[0] == uid and k not in wanted]:
                self._stop(key)
            for key, (container, spec) in wanted.items():
                worker = self._workers.get(key)
                if worker is not None and worker.spec == spec:
                    worker.pod, worker.container = pod, container
                    continue
                if worker is not None:
                    self._stop(key)
                worker = self._workers[key] = _Worker(pod, container, spec)
                self._schedule(worker, time.monotonic())
            if wanted:
                self._start()

    def remove_pod(self, uid: str) -> None:
        with self._lock:
            for key in [k for k in self._workers if k[0] == uid]:
                self._stop(key)
            for seen in [k for k in self._seen if k[0] == uid]:
                del self._seen[seen]

    def update_pod_status(self, pod: Pod, container_statuses: list[ContainerStatus]) -> None:
        """kubelet ``UpdatePodStatus``: ``started`` is the startup probe's success (true without one) for a
        running container; ``ready`` needs ``started`` and the readiness probe's success (or none). A worker
        whose container is new is run at once."""
        uid = str(pod.metadata.uid if pod.metadata else "")
        policy = (pod.spec.restartPolicy if pod.spec else None) or "Always"
        with self._lock:
            for status in container_statuses:
                container_id = (status.containerID or "").split("://", 1)[-1]
                running = status.state is not None and status.state.running is not None
                started_at = 0.0
                if running and status.state is not None and status.state.running is not None:
                    started_at = _epoch(status.state.running.startedAt)
                started = running and self._passed(uid, status.name, ProbeType.STARTUP, container_id)
                ready = started and self._passed(uid, status.name, ProbeType.READINESS, container_id)
                status.started, status.ready = started, ready
                if not any((uid, status.name, kind) in self._workers for kind in ProbeType):
                    continue  # not probed: nothing to remember
                self._seen[(uid, status.name)] = _Seen(
                    container_id=container_id,
                    running=running,
                    started_at=started_at,
                    started=started,
                    terminated=status.state is not None and status.state.terminated is not None,
                    restart_policy=policy,
                )
                if running and container_id:
                    for kind in ProbeType:
                        worker = self._workers.get((uid, status.name, kind))
                        if worker is not None and worker.container_id != container_id and not worker.in_flight:
                            self._schedule(worker, time.monotonic())

    def unhealthy(self, uid: str) -> dict[str, ProbeType]:
        with self._lock:
            return {
                w.container_id: w.spec.type
                for (wuid, _, kind), w in self._workers.items()
                if wuid == uid
                and kind in (ProbeType.LIVENESS, ProbeType.STARTUP)
                and w.container_id
                and self._results.get((kind, w.container_id)) is Result.FAILURE
            }

    def close(self) -> None:
        """Stop every worker and the scheduler thread (idempotent)."""
        with self._lock:
            for key in list(self._workers):
                self._stop(key)
            self._closed = True
            self._lock.notify_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # --- internals (``self._lock`` held where noted) ------------------------------------------------

    def _passed(self, uid: str, name: str, kind: ProbeType, container_id: str) -> bool:
        """Lock held. The probe succeeded for the container, or the container has no such probe."""
        if (uid, name, kind) not in self._workers:
            return True
        return self._results.get((kind, container_id)) is Result.SUCCESS

    def _stop(self, key: _Key) -> None:
        """Lock held."""
        worker = self._workers.pop(key)
        worker.stopped = True
        if worker.container_id:
            self._results.pop((worker.spec.type, worker.container_id), None)
        if not worker.in_flight:
            worker.close_ns()

    def _schedule(self, worker: _Worker, due: float) -> None:
        """Lock held."""
        worker.due = due
        heapq.heappush(self._heap, (due, next(self._seq), worker))
        self._lock.notify_all()

    def _start(self) -> None:
        """Lock held: start the scheduler thread and the pool on first use."""
        if self._thread is None and not self._closed:
            self._pool = ThreadPoolExecutor(max_workers=self._max_parallel, thread_name_prefix="probe")
            self._thread = threading.Thread(target=self._loop, name="probe-scheduler", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._closed:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._lock.wait(timeout=(self._heap[0][0] - now) if self._heap else None)
                if self._closed:
                    return
                due, _, worker = heapq.heappop(self._heap)
                if worker.stopped or worker.in_flight or due != worker.due:
                    continue
                worker.in_flight = True
            assert self._pool is not None
            try:
                self._pool.submit(self._run, worker)
            except RuntimeError:  # the pool was shut down
                return

    def _run(self, worker: _Worker) -> None:
        started = time.monotonic()
        delay: float = worker.spec.period
        try:
            delay = self._do_probe(worker) or delay
        except Exception:
            log.exception("probe %s of %s failed", worker.spec.type.value, worker.container.name)
        with self._lock:
            worker.in_flight = False
            if worker.stopped:
                worker.close_ns()
            elif worker.due <= started:  # not re-triggered meanwhile
                self._schedule(worker, started + delay)

    def _set(self, worker: _Worker, result: Result) -> None:
        with self._lock:
            if worker.stopped:
                return
            key = (worker.spec.type, worker.container_id)
            changed = self._results.get(key) is not result
            self._results[key] = result
        if changed and self._on_change is not None:
            try:
                self._on_change(worker.pod)
            except Exception:
                log.exception("probe result hook failed")

    def _record(self, worker: _Worker, message: str) -> None:
        if self._events is not None:
            self._events(worker.pod, _WARNING, _UNHEALTHY, message)

    def _do_probe(self, worker: _Worker) -> float | None:
        """kubelet ``worker.doProbe``; returns seconds to the next run when sooner than the period (the end of
        ``initialDelaySeconds``), else ``None``."""
        with self._lock:
            seen = self._seen.get((worker.uid, worker.container.name))
        if seen is None or not seen.container_id:
            return None
        if worker.container_id != seen.container_id:
            with self._lock:
                if worker.container_id:
                    self._results.pop((worker.spec.type, worker.container_id), None)
            worker.close_ns()
            worker.container_id = seen.container_id
            worker.on_hold = False
            worker.thresholds.reset()
            self._set(worker, probes.INITIAL[worker.spec.type])
        if worker.on_hold:
            return None
        if not seen.running:
            self._set(worker, Result.FAILURE)
            return None
        now = self._clock()
        if not probes.should_probe(worker.spec, started=seen.started, started_at=seen.started_at, now=now):
            remaining = seen.started_at + worker.spec.initial_delay - now
            return max(0.05, remaining) if 0 < remaining < worker.spec.period else None
        try:
            result, output = self.prober.run(
                worker.spec, worker.container, worker.container_id, lambda: self._ns(worker)
            )
        except probes.ProbeError as e:
            worker.close_ns()  # the process may have changed: look it up again next time
            self._record(worker, probes.event_message(worker.spec.type, str(e), errored=True))
            return None
        if result is Result.FAILURE:
            self._record(worker, probes.event_message(worker.spec.type, output.strip()))
        counted = worker.thresholds.observe(result)
        if counted is None:
            return None
        self._set(worker, counted)
        if counted is Result.FAILURE and worker.spec.type in (ProbeType.LIVENESS, ProbeType.STARTUP):
            # kubelet: hold until a new container replaces this one (it is being killed).
            worker.on_hold = True
            worker.thresholds.reset()
        return None

    def _ns(self, worker: _Worker) -> netns.NetNS:
        if worker.ns is None:
            worker.ns = self.prober.netns(worker.container_id)
        return worker.ns


def _epoch(value: datetime | str | None) -> float:
    """A ``metav1.Time`` (lightkube gives a ``datetime``) as seconds since the epoch; 0 when unset."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0
