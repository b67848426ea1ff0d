"""Each pod's own loopback address: allocation by the node agent, and its containerPorts published there."""

from __future__ import annotations

import ipaddress
import threading

from dockyard.agent import podspec
from dockyard.agent.pods.podips import PodIPs
from dockyard.api import services

SPEC = {
    "containers": [
        {"name": "a", "image": "i", "ports": [{"containerPort": 8000, "name": "http"}]},
        {"name": "b", "image": "i", "ports": [{"containerPort": 9000, "hostPort": 19000}]},
    ]
}


def test_container_ports_published_on_the_pod_ip() -> None:
    bindings, errors = podspec.port_bindings(SPEC, pod_ip="127.2.0.9")
    assert errors == []
    assert bindings == {
        "8000/tcp": [("127.2.0.9", 8000)],
        "9000/tcp": [("127.0.0.1", 19000), ("127.2.0.9", 9000)],
    }


def test_without_a_pod_ip_only_host_ports_as_before() -> None:
    bindings, _ = podspec.port_bindings(SPEC)
    assert bindings == {"9000/tcp": [("127.0.0.1", 19000)]}
    assert podspec.sandbox_hash(SPEC) == podspec.sandbox_hash(SPEC, pod_ip=None)
    assert podspec.sandbox_hash(SPEC, pod_ip="127.2.0.9") != podspec.sandbox_hash(SPEC, pod_ip="127.2.0.10")


def test_allocation_is_stable_unique_and_released() -> None:
    ips = PodIPs()
    a = ips.assign("uid-a")
    assert ipaddress.ip_address(a) in services.POD_CIDR
    assert ips.assign("uid-a") == a  # the same pod keeps its address
    b = ips.assign("uid-b", preferred=a)  # taken: not given twice
    assert b != a
    assert PodIPs().assign("uid-a") == a  # after a restart, the same address (derived from the uid)
    kept = PodIPs().assign("uid-c", preferred="127.2.3.4")  # what status.podIP says is kept
    assert kept == "127.2.3.4"
    assert PodIPs().assign("uid-c", preferred="127.0.0.1") != "127.0.0.1"  # never outside the pod range
    ips.release("uid-a")
    assert ips.assign("uid-z", preferred=a) == a


def test_allocation_is_thread_safe() -> None:
    ips = PodIPs()
    got: list[str] = []
    lock = threading.Lock()

    def take(i: int) -> None:
        ip = ips.assign(f"uid-{i}")
        with lock:
            got.append(ip)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 200
