"""The prober's pure logic: probe specs with their defaults, thresholds, gating, the kubelet's messages.

kubelet ``pkg/kubelet/prober/worker.go`` (``doProbe``: initial delay, the startup probe gating liveness and
readiness, ``successThreshold``/``failureThreshold`` runs), ``results/results_manager.go`` (initial values)
and ``pkg/probe/http``/``tcp``/``exec`` (success ranges and failure texts). No I/O, no clock of its own;
:mod:`.prober` runs the probes and keeps the workers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from lightkube.models.core_v1 import Container, Probe

from dockyard.api import probes as rules

__all__ = [
    "INITIAL",
    "ProbeError",
    "ProbeSpec",
    "ProbeType",
    "Result",
    "Thresholds",
    "container_probes",
    "event_message",
    "http_result",
    "kill_message",
    "resolve_port",
    "should_probe",
]


class ProbeType(enum.Enum):
    """The three probes, valued as the kubelet's Events spell them (``Liveness probe failed: …``)."""

    LIVENESS = "Liveness"
    READINESS = "Readiness"
    STARTUP = "Startup"

    @property
    def field(self) -> str:
        """The ``v1.Container`` field: ``livenessProbe``, ``readinessProbe``, ``startupProbe``."""
        return f"{self.value.lower()}Probe"


class Result(enum.Enum):
    """kubelet ``results.Result``."""

    UNKNOWN = "unknown"
    SUCCESS = "success"
    FAILURE = "failure"


INITIAL = {ProbeType.LIVENESS: Result.SUCCESS, ProbeType.READINESS: Result.FAILURE, ProbeType.STARTUP: Result.UNKNOWN}
"""The result a probe worker starts a new container with (kubelet ``newWorker``): a container is alive and
not ready until probed; its startup is unknown."""


class ProbeError(Exception):
    """The probe could not be run (not a failed check: kubelet's ``probe errored``, the result is discarded)."""


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a container with Kubernetes' defaults applied (``SetDefaults_Probe``: 0 means default).

    Attributes:
        type: liveness, readiness or startup.
        probe: the ``v1.Probe`` (its handler: ``exec``, ``httpGet`` or ``tcpSocket``).
        initial_delay: ``initialDelaySeconds`` (seconds after the container started before the first probe).
        period: ``periodSeconds`` (default 10).
        timeout: ``timeoutSeconds`` (default 1), bound on one probe.
        success_threshold: ``successThreshold`` (default 1).
        failure_threshold: ``failureThreshold`` (default 3).
        grace: ``terminationGracePeriodSeconds`` of the probe (liveness, startup), else ``None`` (the pod's).
    """

    type: ProbeType
    probe: Probe
    initial_delay: int
    period: int
    timeout: int
    success_threshold: int
    failure_threshold: int
    grace: int | None

    @classmethod
    def of(cls, kind: ProbeType, probe: Probe) -> ProbeSpec:
        """The spec of ``probe`` as ``kind``, defaults applied."""
        return cls(
            type=kind,
            probe=probe,
            initial_delay=max(0, probe.initialDelaySeconds or 0),
            period=probe.periodSeconds or rules.DEFAULT_PERIOD_SECONDS,
            timeout=probe.timeoutSeconds or rules.DEFAULT_TIMEOUT_SECONDS,
            success_threshold=probe.successThreshold or rules.DEFAULT_SUCCESS_THRESHOLD,
            failure_threshold=probe.failureThreshold or rules.DEFAULT_FAILURE_THRESHOLD,
            grace=probe.terminationGracePeriodSeconds or None,
        )


def container_probes(container: Container) -> Iterator[ProbeSpec]:
    """The container's probes (those set), defaults applied."""
    for kind in ProbeType:
        probe = getattr(container, kind.field)
        if probe is not None:
            yield ProbeSpec.of(kind, probe)


class Thresholds:
    """kubelet worker's ``lastResult``/``resultRun``: a result counts once it repeated ``success`` (or
    ``failure``) times in a row.

    Args:
        success: ``successThreshold``.
        failure: ``failureThreshold``.
    """

    def __init__(self, *, success: int, failure: int) -> None:
        self._success = success
        self._failure = failure
        self._last: Result | None = None
        self._run = 0

    def observe(self, result: Result) -> Result | None:
        """Count one probe's result; return it when its run reached the threshold (the result to record),
        else ``None`` (the recorded result stays as it was)."""
        if result is self._last:
            self._run += 1
        else:
            self._last, self._run = result, 1
        if result is Result.FAILURE and self._run < self._failure:
            return None
        if result is Result.SUCCESS and self._run < self._success:
            return None
        return result

    def reset(self) -> None:
        """Start counting anew (a new container, or a liveness/startup failure put the worker on hold)."""
        self._last, self._run = None, 0


def should_probe(spec: ProbeSpec, *, started: bool, started_at: float, now: float) -> bool:
    """Whether a running container is probed now (kubelet ``doProbe``).

    Args:
        started: the container's ``started`` (its startup probe succeeded, or it has none).
        started_at: when the container started, seconds since the epoch.
        now: seconds since the epoch.

    Returns:
        False while ``initialDelaySeconds`` have not passed since the container started; a startup probe
        runs only until the container started; liveness and readiness only once it has.
    """
    if now - started_at < spec.initial_delay:
        return False
    if spec.type is ProbeType.STARTUP:
        return not started
    return started


def resolve_port(port: int | str | None, container: Container) -> int:
    """The port number of ``httpGet.port``/``tcpSocket.port``: a number, or the name of one of the
    container's ports (kubelet ``findPortByName``).

    Raises:
        ProbeError: no port of that name, or not a port number (``couldn't find port``).
    """
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str) and port.isdigit():
        number = int(port)
    else:
        for p in container.ports or []:
            if p.name == port:
                return int(p.containerPort)
        raise ProbeError(f"couldn't find port: {port} in {container.name}")
    if not 0 < number < 65536:
        raise ProbeError(f"invalid port number: {number}")
    return number


def http_result(status_code: int) -> tuple[Result, str]:
    """kubelet ``pkg/probe/http``: ``200 <= code < 400`` succeeds; otherwise ``HTTP probe failed with
    statuscode: N``. (Redirects are not followed here: a 3xx counts as success, as the kubelet counts a
    redirect to another host.)"""
    if 200 <= status_code < 400:
        return Result.SUCCESS, ""
    return Result.FAILURE, f"HTTP probe failed with statuscode: {status_code}"


def event_message(kind: ProbeType, output: str, *, errored: bool = False) -> str:
    """The ``Unhealthy`` Event's message (kubelet ``prober.probe``): ``Readiness probe failed: <output>``,
    or ``... probe errored: <error>`` when the probe could not be run."""
    return f"{kind.value} probe {'errored' if errored else 'failed'}: {output}"


def kill_message(container: str, kind: ProbeType, *, restart: bool = True) -> str:
    """The ``Killing`` Event's message (kubelet ``computePodActions``): ``Container web failed liveness
    probe, will be restarted`` (without the tail when ``restartPolicy`` is ``Never``)."""
    message = f"Container {container} failed {kind.value.lower()} probe"
    return f"{message}, will be restarted" if restart else message
