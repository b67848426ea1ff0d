"""The prober's pure logic (kubelet ``pkg/kubelet/prober/worker.go`` ``doProbe``): defaults, thresholds,
gating by initial delay and the startup probe, ports by name, and the kubelet's messages. No engine."""

from __future__ import annotations

import pytest
from lightkube.models.core_v1 import Container, ContainerPort, Probe

from dockyard.agent.pods import probes
from dockyard.agent.pods.probes import ProbeType, Result


def _spec(kind: ProbeType = ProbeType.READINESS, **fields: object) -> probes.ProbeSpec:
    return probes.ProbeSpec.of(kind, Probe.from_dict({"tcpSocket": {"port": 8080}, **fields}))


def test_defaults_are_the_kubelets():
    spec = _spec()
    assert (spec.initial_delay, spec.period, spec.timeout, spec.success_threshold, spec.failure_threshold) == (
        0,
        10,
        1,
        1,
        3,
    )
    assert spec.grace is None
    # zero means "default", as Kubernetes' SetDefaults_Probe has it
    zero = _spec(periodSeconds=0, timeoutSeconds=0, successThreshold=0, failureThreshold=0)
    assert (zero.period, zero.timeout, zero.success_threshold, zero.failure_threshold) == (10, 1, 1, 3)


def test_initial_values_per_probe_type():
    assert probes.INITIAL[ProbeType.READINESS] is Result.FAILURE
    assert probes.INITIAL[ProbeType.LIVENESS] is Result.SUCCESS
    assert probes.INITIAL[ProbeType.STARTUP] is Result.UNKNOWN


def test_failure_threshold_counts_consecutive_failures():
    counter = probes.Thresholds(success=1, failure=3)
    assert counter.observe(Result.FAILURE) is None
    assert counter.observe(Result.FAILURE) is None
    assert counter.observe(Result.SUCCESS) is Result.SUCCESS  # a success resets the run
    assert counter.observe(Result.FAILURE) is None
    assert counter.observe(Result.FAILURE) is None
    assert counter.observe(Result.FAILURE) is Result.FAILURE
    assert counter.observe(Result.FAILURE) is Result.FAILURE  # stays failed


def test_success_threshold_counts_consecutive_successes():
    counter = probes.Thresholds(success=2, failure=1)
    assert counter.observe(Result.SUCCESS) is None
    assert counter.observe(Result.FAILURE) is Result.FAILURE
    assert counter.observe(Result.SUCCESS) is None
    assert counter.observe(Result.SUCCESS) is Result.SUCCESS
    counter.reset()
    assert counter.observe(Result.SUCCESS) is None


@pytest.mark.parametrize(
    ("kind", "started", "elapsed", "want"),
    [
        (ProbeType.READINESS, False, 100, False),  # the startup probe gates readiness
        (ProbeType.LIVENESS, False, 100, False),  # ... and liveness
        (ProbeType.STARTUP, False, 100, True),
        (ProbeType.STARTUP, True, 100, False),  # a started container is not startup-probed any more
        (ProbeType.READINESS, True, 100, True),
        (ProbeType.READINESS, True, 4, False),  # initialDelaySeconds: 5
        (ProbeType.READINESS, True, 5, True),
    ],
)
def test_gate(kind: ProbeType, started: bool, elapsed: float, want: bool):
    spec = _spec(kind, initialDelaySeconds=5)
    assert probes.should_probe(spec, started=started, started_at=1000.0, now=1000.0 + elapsed) is want


def test_port_by_number_and_name():
    container = Container(name="web", ports=[ContainerPort(containerPort=8080, name="http")])
    assert probes.resolve_port(8080, container) == 8080
    assert probes.resolve_port("http", container) == 8080
    assert probes.resolve_port("8081", container) == 8081
    with pytest.raises(probes.ProbeError, match="couldn't find port"):
        probes.resolve_port("metrics", container)


def test_messages_are_the_kubelets():
    assert (
        probes.event_message(ProbeType.READINESS, "HTTP probe failed with statuscode: 503")
        == "Readiness probe failed: HTTP probe failed with statuscode: 503"
    )
    assert probes.event_message(ProbeType.LIVENESS, "x", errored=True) == "Liveness probe errored: x"
    assert probes.kill_message("web", ProbeType.LIVENESS) == "Container web failed liveness probe, will be restarted"
    assert probes.kill_message("web", ProbeType.STARTUP) == "Container web failed startup probe, will be restarted"


def test_http_status_success_range():
    assert probes.http_result(200) == (Result.SUCCESS, "")
    assert probes.http_result(302)[0] is Result.SUCCESS
    assert probes.http_result(503) == (Result.FAILURE, "HTTP probe failed with statuscode: 503")
    assert probes.http_result(404)[0] is Result.FAILURE


def test_probes_of_a_container():
    container = Container.from_dict(
        {
            "name": "web",
            "readinessProbe": {"exec": {"command": ["true"]}},
            "startupProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 30},
        }
    )
    found = {s.type: s for s in probes.container_probes(container)}
    assert set(found) == {ProbeType.READINESS, ProbeType.STARTUP}
    assert found[ProbeType.STARTUP].failure_threshold == 30
