"""The Service proxy's pure part: which addresses it listens on and which endpoints it may pick."""

from __future__ import annotations

from typing import Any

from dockyard.agent.services import proxy
from dockyard.client import objects


def svc(name: str, type_: str, ports: list[dict[str, Any]], cluster_ip: str = "127.1.0.5") -> Any:
    return objects.parse(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": type_, "clusterIP": cluster_ip, "ports": ports},
        }
    )


def es(name: str, endpoints: list[tuple[str, bool | None]], port: int = 8000, port_name: str = "") -> Any:
    return objects.parse(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-x", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": [ip], **({"conditions": {"ready": ready}} if ready is not None else {})}
                for ip, ready in endpoints
            ],
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        }
    )


def test_listeners_by_type() -> None:
    got = proxy.routes(
        [
            svc("c", "ClusterIP", [{"port": 80, "protocol": "TCP"}], cluster_ip="127.1.0.1"),
            svc("n", "NodePort", [{"port": 80, "nodePort": 30001, "protocol": "TCP"}], cluster_ip="127.1.0.2"),
            svc("lb", "LoadBalancer", [{"name": "h", "port": 8080, "nodePort": 30002, "protocol": "TCP"}]),
            svc("headless", "ClusterIP", [{"port": 80, "protocol": "TCP"}], cluster_ip="None"),
        ]
    )
    assert got == {
        ("127.1.0.1", 80): proxy.Route("default", "c", ""),
        ("127.1.0.2", 80): proxy.Route("default", "n", ""),
        ("127.0.0.1", 30001): proxy.Route("default", "n", ""),
        ("127.1.0.5", 8080): proxy.Route("default", "lb", "h"),
        ("127.0.0.1", 30002): proxy.Route("default", "lb", "h"),
        ("127.0.0.1", 8080): proxy.Route("default", "lb", "h"),
    }


def test_two_load_balancers_on_one_port_first_wins() -> None:
    got = proxy.routes(
        [
            svc("b", "LoadBalancer", [{"port": 8080, "nodePort": 30003, "protocol": "TCP"}], cluster_ip="127.1.0.3"),
            svc("a", "LoadBalancer", [{"port": 8080, "nodePort": 30004, "protocol": "TCP"}], cluster_ip="127.1.0.4"),
        ]
    )
    assert got[("127.0.0.1", 8080)].name == "a"


def test_only_ready_loopback_endpoints() -> None:
    route = proxy.Route("default", "web", "")
    slices = [
        es("web", [("127.2.0.2", True), ("127.2.0.3", False), ("127.2.0.4", None), ("10.88.0.5", True)]),
        es("other", [("127.2.0.9", True)]),
    ]
    assert proxy.backends(slices, route) == [proxy.Backend("127.2.0.2", 8000), proxy.Backend("127.2.0.4", 8000)]
    assert proxy.backends(slices, proxy.Route("default", "web", "http")) == []
