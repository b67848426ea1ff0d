"""Lifecycle hooks' pure parts: the API's checks (``podfields.lifecycle_causes``, Kubernetes ``validateLifecycle``),
the kill decided for a failed postStart (``compute_container_action``), and the preStop label."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lightkube.models.core_v1 import Container, ContainerPort
from lightkube.resources.core_v1 import Pod

from dockyard.agent import podspec
from dockyard.agent.pods import lifecycle
from dockyard.agent.pods.actions import POST_START_FAILED, ContainerStep, Observed, compute_container_action
from dockyard.agent.pods.state import EngineContainer
from dockyard.api import podfields

WHERE = "spec.containers[0].lifecycle"


def _fields(lifecycle_: Any, grace: Any = None, container: dict[str, Any] | None = None) -> list[str]:
    container = container or {"name": "c", "ports": [{"name": "web", "containerPort": 8080}]}
    return [c.field for c in podfields.lifecycle_causes(lifecycle_, WHERE, container, grace)]


@pytest.mark.parametrize(
    "hooks",
    [
        {"postStart": {"exec": {"command": ["sh", "-c", "true"]}}},
        {"preStop": {"httpGet": {"port": "web", "path": "/quit", "host": "127.0.0.1"}}},
        {"preStop": {"sleep": {"seconds": 30}}},
        {"postStart": {"sleep": {"seconds": 1}}, "preStop": {"httpGet": {"port": 8080, "scheme": "HTTPS"}}},
        {},
    ],
)
def test_hooks_the_agent_runs_are_accepted(hooks: dict[str, Any]) -> None:
    assert _fields(hooks) == []


@pytest.mark.parametrize(
    ("hooks", "grace", "field"),
    [
        ({"postStart": {"tcpSocket": {"port": 80}}}, None, f"{WHERE}.postStart.tcpSocket"),
        ({"preStop": {}}, None, f"{WHERE}.preStop"),
        ({"preStop": {"exec": {"command": ["true"]}, "sleep": {"seconds": 1}}}, None, f"{WHERE}.preStop"),
        ({"postStart": {"exec": {"command": []}}}, None, f"{WHERE}.postStart.exec.command"),
        ({"preStop": {"httpGet": {"port": 80, "host": "example.com"}}}, None, f"{WHERE}.preStop.httpGet.host"),
        ({"preStop": {"httpGet": {"port": "admin"}}}, None, f"{WHERE}.preStop.httpGet.port"),
        ({"preStop": {"httpGet": {"port": 80, "scheme": "FTP"}}}, None, f"{WHERE}.preStop.httpGet.scheme"),
        ({"preStop": {"sleep": {"seconds": 0}}}, None, f"{WHERE}.preStop.sleep.seconds"),
        ({"preStop": {"sleep": {"seconds": 31}}}, None, f"{WHERE}.preStop.sleep.seconds"),
        ({"preStop": {"sleep": {"seconds": 6}}}, 5, f"{WHERE}.preStop.sleep.seconds"),
        ({"stopSignal": "SIGINT"}, None, f"{WHERE}.stopSignal"),
        ("not an object", None, WHERE),
    ],
)
def test_hooks_the_agent_would_not_run_are_refused(hooks: Any, grace: Any, field: str) -> None:
    assert field in _fields(hooks, grace)


def test_sleep_up_to_the_pod_grace_period_is_accepted() -> None:
    assert _fields({"preStop": {"sleep": {"seconds": 5}}}, 5) == []


def _pod(container: Container) -> Pod:
    return Pod.from_dict(
        {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"containers": [container.to_dict()]}}
    )


def test_a_failed_post_start_kills_the_running_container() -> None:
    container = Container(name="web", image="busybox")
    pod = _pod(container)
    spec = pod.spec
    assert spec is not None
    want = podspec.container_hash(spec.containers[0], [], None, None)
    running = EngineContainer(id="abc", name="web", state="running", hash=want)
    observed = Observed(containers=(running,), post_start_failed=frozenset({"abc"}))
    action = compute_container_action(pod, spec.containers[0], observed, infra_id="infra", now=0.0)
    assert action.step is ContainerStep.KILL
    assert action.container_id == "abc"
    assert action.reason == POST_START_FAILED and action.probe is None
    kept = compute_container_action(pod, spec.containers[0], Observed(containers=(running,)), infra_id="infra", now=0)
    assert kept.step is ContainerStep.KEEP


def test_the_pre_stop_label_resolves_named_ports() -> None:
    container = Container.from_dict(
        {
            "name": "web",
            "ports": [ContainerPort(containerPort=8080, name="web").to_dict()],
            "lifecycle": {"preStop": {"httpGet": {"port": "web", "path": "/quit"}}},
        }
    )
    label = lifecycle.pre_stop_label(container)
    assert label is not None
    assert json.loads(label) == {"httpGet": {"port": 8080, "path": "/quit"}}
    assert lifecycle.pre_stop_label(Container(name="bare")) is None
