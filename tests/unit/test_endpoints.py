"""The endpoints controller's pure part: which EndpointSlices a Service's pods make."""

from __future__ import annotations

from typing import Any

from dockyard.api import labels as well_known
from dockyard.client import objects
from dockyard.controllers import endpoints


def service(ports: list[dict[str, Any]], selector: dict[str, str] | None = None) -> Any:
    return objects.parse(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"},
            "spec": {"type": "LoadBalancer", "selector": selector or {"app": "web"}, "ports": ports},
        }
    )


def pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    deleting: bool = False,
    phase: str = "Running",
    port_name: str = "http",
    port: int = 8000,
) -> Any:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": f"{name}-uid",
        "labels": labels or {"app": "web"},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
    return objects.parse(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "c", "image": "i", "ports": [{"name": port_name, "containerPort": port}]}],
            },
            "status": status,
        }
    )


def test_selected_pods_with_readiness_and_named_ports() -> None:
    svc = service([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    pods = [
        pod("a", "127.2.0.2"),
        pod("b", "127.2.0.3", ready=False),
        pod("c", "127.2.0.4", deleting=True),
        pod("other", "127.2.0.5", labels={"app": "other"}),
        pod("noip", None),
        pod("done", "127.2.0.6", phase="Succeeded"),
    ]
    slices = endpoints.desired_slices(svc, pods)
    assert len(slices) == 1
    es = objects.to_dict(slices[0])
    assert es["metadata"]["name"].startswith("web-")
    assert es["metadata"]["labels"][well_known.SERVICE_NAME] == "web"
    assert es["metadata"]["labels"][well_known.ENDPOINTSLICE_MANAGED_BY] == well_known.ENDPOINTSLICE_CONTROLLER
    assert es["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    assert es["addressType"] == "IPv4"
    assert es["ports"] == [{"name": "http", "port": 8000, "protocol": "TCP"}]
    by_ip = {e["addresses"][0]: e for e in es["endpoints"]}
    assert set(by_ip) == {"127.2.0.2", "127.2.0.3", "127.2.0.4"}
    assert by_ip["127.2.0.2"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert by_ip["127.2.0.3"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert by_ip["127.2.0.4"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert by_ip["127.2.0.2"]["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "a", "uid": "a-uid"}


def test_numeric_target_port_and_pods_resolving_differently() -> None:
    svc = service([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    slices = endpoints.desired_slices(svc, [pod("a", "127.2.0.2"), pod("b", "127.2.0.3", port=9000)])
    ports = sorted(objects.to_dict(s)["ports"][0]["port"] for s in slices)
    assert ports == [8000, 9000]
    assert len({s.metadata.name for s in slices}) == 2
    numeric = service([{"port": 80, "targetPort": 8080, "protocol": "TCP"}])
    (only,) = endpoints.desired_slices(numeric, [pod("a", "127.2.0.2")])
    assert objects.to_dict(only)["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]


def test_no_pods_is_one_empty_slice() -> None:
    svc = service([{"port": 80, "targetPort": 8080, "protocol": "TCP"}])
    (only,) = endpoints.desired_slices(svc, [])
    assert objects.to_dict(only).get("endpoints") in (None, [])
