"""The node agent's Node object, built without I/O (:mod:`dockyard.agent.nodestatus`)."""

from __future__ import annotations

import pytest

from dockyard.agent import nodestatus

FACTS = nodestatus.NodeFacts(
    node_name="vm",
    architecture="arm64",
    os_image="Debian GNU/Linux 12 (bookworm)",
    kernel_version="6.1.0-18-arm64",
    runtime_version="podman://4.3.1",
    kubelet_version="dockyard-0.1.0",
    cpu=4,
    memory_ki=16_000_000,
    machine_id="m",
    system_uuid="",
    boot_id="b",
)


@pytest.mark.parametrize(
    ("machine", "goarch"),
    [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64"), ("armv7l", "arm")],
)
def test_goarch(machine: str, goarch: str) -> None:
    assert nodestatus.goarch(machine) == goarch


def test_runtime_version_from_the_engine() -> None:
    podman = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
    assert nodestatus.runtime_version(podman) == "podman://4.3.1"
    assert (
        nodestatus.runtime_version({"Version": "20.10.24", "Components": [{"Name": "Engine"}]}) == "docker://20.10.24"
    )
    assert nodestatus.runtime_version({}) == "docker://unknown"


def test_os_release_and_meminfo() -> None:
    text = 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
    assert nodestatus.pretty_name(text) == "Debian GNU/Linux 12 (bookworm)"
    assert nodestatus.pretty_name("ID=x\n") == "Linux"
    assert nodestatus.meminfo_ki("MemTotal:       16303580 kB\nMemFree: 1 kB\n") == 16303580
    assert nodestatus.meminfo_ki("garbage") == 0


def test_the_node_the_agent_registers() -> None:
    obj = nodestatus.node_object(FACTS, now="2025-01-01T00:00:00Z")
    assert obj["metadata"] == {
        "name": "vm",
        "labels": {
            "kubernetes.io/hostname": "vm",
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "arm64",
            "dockyard.dev/nodename": "vm",
        },
    }
    status = obj["status"]
    assert status["capacity"] == {"cpu": "4", "memory": "16000000Ki", "pods": "110"}
    assert status["allocatable"] == status["capacity"]
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "127.0.0.1"},
        {"type": "Hostname", "address": "vm"},
    ]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    info = status["nodeInfo"]
    assert info["osImage"] == FACTS.os_image and info["bootID"] == "b" and info["operatingSystem"] == "linux"
    types = [c["type"] for c in status["conditions"]]
    assert types == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    ready = status["conditions"][-1]
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    assert ready["lastHeartbeatTime"] == ready["lastTransitionTime"] == "2025-01-01T00:00:00Z"


def test_a_heartbeat_keeps_the_transition_time_of_an_unchanged_condition() -> None:
    first = nodestatus.conditions(now="2025-01-01T00:00:00Z", previous=[])
    beat = nodestatus.conditions(now="2025-01-01T00:00:10Z", previous=first)
    assert all(c["lastHeartbeatTime"] == "2025-01-01T00:00:10Z" for c in beat)
    assert all(c["lastTransitionTime"] == "2025-01-01T00:00:00Z" for c in beat)
    down = nodestatus.stopped_conditions(now="2025-01-01T00:00:20Z", previous=beat)
    ready = next(c for c in down if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert ready["message"] == "Kubelet stopped posting node status."
    assert ready["lastTransitionTime"] == "2025-01-01T00:00:20Z"
    assert ready["lastHeartbeatTime"] == "2025-01-01T00:00:10Z"  # no heartbeat: the last one stands
    again = nodestatus.conditions(now="2025-01-01T00:00:30Z", previous=down)
    assert next(c for c in again if c["type"] == "Ready")["lastTransitionTime"] == "2025-01-01T00:00:30Z"


def test_a_node_whose_container_runtime_is_down_is_not_ready() -> None:
    """kubelet ``setNodeReadyCondition``: Ready False, reason KubeletNotReady, "container runtime is down"."""
    up = nodestatus.conditions(now="2025-01-01T00:00:00Z", previous=[])
    down = nodestatus.conditions(now="2025-01-01T00:00:10Z", previous=up, runtime_error="connection refused")
    ready = next(c for c in down if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady")
    assert ready["message"] == "container runtime is down: connection refused"
    assert ready["lastTransitionTime"] == "2025-01-01T00:00:10Z"
    back = nodestatus.conditions(now="2025-01-01T00:00:20Z", previous=down)
    assert next(c for c in back if c["type"] == "Ready")["status"] == "True"
