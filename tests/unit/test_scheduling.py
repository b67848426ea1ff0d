"""kube-scheduler's NodePorts filter as the node agent applies it (dockyard.agent.scheduling), and the
Deployment warning for host ports that cannot roll (dockyard.apiserver.admission)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from lightkube.models.core_v1 import PodSpec

from dockyard.agent import scheduling
from dockyard.agent.scheduling import HostPort
from dockyard.apiserver import admission


def _spec(*ports: dict[str, Any]) -> PodSpec:
    return PodSpec.from_dict({"containers": [{"name": "c", "ports": list(ports)}]})


def test_host_ports_default_the_address_and_protocol() -> None:
    spec = _spec({"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "udp"})
    assert scheduling.host_ports(spec) == {HostPort("127.0.0.1", 8080, "TCP"), HostPort("127.0.0.1", 53, "UDP")}
    assert scheduling.host_ports(_spec({"containerPort": 80})) == set()


def test_conflicts_need_the_same_port_and_protocol() -> None:
    tcp = HostPort("127.0.0.1", 8080, "TCP")
    assert scheduling.conflicts([tcp], [HostPort("127.0.0.1", 8080, "TCP")])
    assert scheduling.conflicts([tcp], [HostPort("0.0.0.0", 8080, "TCP")])
    assert not scheduling.conflicts([tcp], [HostPort("127.0.0.1", 8080, "UDP")])
    assert not scheduling.conflicts([tcp], [HostPort("127.0.0.1", 8081, "TCP")])


def test_in_use_tries_to_bind() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert scheduling.in_use(HostPort("127.0.0.1", port, "TCP"))
    assert not scheduling.in_use(HostPort("127.0.0.1", port, "TCP"))


def test_the_message_is_kube_schedulers() -> None:
    assert scheduling.no_free_ports_message() == (
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
    )


def _deployment(strategy: dict[str, Any] | None, replicas: int = 1) -> dict[str, Any]:
    port = {"containerPort": 80, "hostPort": 8080}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "template": {"spec": {"containers": [{"name": "c", "ports": [port]}]}},
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {"kind": "Deployment", "spec": spec}


@pytest.mark.parametrize(
    ("strategy", "replicas", "warned"),
    [
        (None, 1, True),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "10%"}}, 1, True),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, 1, False),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 1}}, 1, False),
        ({"type": "Recreate"}, 1, False),
        (None, 0, False),
    ],
)
def test_host_port_rollout_warnings(strategy: dict[str, Any] | None, replicas: int, warned: bool) -> None:
    warnings = admission.host_port_rollout_warnings(_deployment(strategy, replicas))
    assert len(warnings) == int(warned)
    if warned:
        assert warnings[0].startswith("spec.template.spec.containers[0].ports[0].hostPort: ")
        assert "Service" in warnings[0]
