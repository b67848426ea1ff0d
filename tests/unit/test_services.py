"""Services and EndpointSlices: validation with field paths, defaults, nodePort/clusterIP allocation. Pure."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from dockyard.api import errors, kinds, services, validation

SERVICE = kinds.by_kind("v1", "Service")
SLICE = kinds.by_kind("discovery.k8s.io/v1", "EndpointSlice")


def svc(spec: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def invalid(info: Any, obj: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(errors.Invalid) as exc:
        validation.validate(info, obj)
    assert exc.value.code == 422
    return {c["field"]: c["message"] for c in exc.value.to_status()["details"]["causes"]}


def test_kinds_are_served() -> None:
    assert SERVICE is not None and SERVICE.short_names == ("svc",)
    assert SLICE is not None and SLICE.group == "discovery.k8s.io"


def test_defaults_as_the_apiserver_sets_them() -> None:
    out = validation.validate(SERVICE, svc({"selector": {"app": "web"}, "ports": [{"port": 80}]}))
    spec = out["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "targetPort": 80, "protocol": "TCP"}]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    lb = validation.validate(SERVICE, svc({"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": "http"}]}))
    assert lb["spec"]["externalTrafficPolicy"] == "Cluster"
    assert lb["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}, "spec.sessionAffinity", "ClientIP"),
        ({"ports": [{"port": 80}], "type": "ExternalName"}, "spec.type", "ExternalName"),
        ({"ports": [{"port": 80}], "type": "Bogus"}, "spec.type", "supported values"),
        ({"ports": [{"port": 0}]}, "spec.ports[0].port", "between 1 and 65535"),
        ({"ports": [{"port": 80, "targetPort": 70000}]}, "spec.ports[0].targetPort", "between 1 and 65535"),
        ({"ports": [{"port": 80, "targetPort": "Not_A_Name"}]}, "spec.ports[0].targetPort", "IANA_SVC_NAME"),
        ({"ports": [{"port": 80, "protocol": "UDP"}]}, "spec.ports[0].protocol", "TCP"),
        ({"ports": [{"port": 80, "nodePort": 30080}]}, "spec.ports[0].nodePort", "ClusterIP"),
        (
            {"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]},
            "spec.ports[0].nodePort",
            "30000-32767",
        ),
        ({"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name", "Required"),
        ({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}, "spec.ports[1].name", "Duplicate"),
        ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}, "spec.ports[1]", "Duplicate"),
        ({"ports": [{"port": 80}], "selector": {"app": 5}}, "spec.selector", "string"),
        ({"ports": [{"port": 80}], "clusterIP": "10.0.0.1"}, "spec.clusterIP", "127.1.0.0/16"),
        ({"type": "LoadBalancer", "ports": [{"port": 80}], "clusterIP": "None"}, "spec.clusterIP", "None"),
        ({"ports": [{"port": 80}], "externalIPs": ["1.2.3.4"]}, "spec.externalIPs", "not supported"),
        ({"ports": [{"port": 80}], "ipFamilies": ["IPv6"]}, "spec.ipFamilies", "IPv4"),
        ({"ports": []}, "spec.ports", "Required"),
    ],
)
def test_refused_with_the_field_named(spec: dict[str, Any], field: str, words: str) -> None:
    found = invalid(SERVICE, svc(spec))
    assert field in found, found
    assert words in found[field], found[field]


def test_headless_service_needs_no_ports() -> None:
    out = validation.validate(SERVICE, svc({"clusterIP": "None", "selector": {"app": "x"}}))
    assert out["spec"]["clusterIP"] == "None"


def test_node_ports_allocated_unique_and_in_range() -> None:
    spec = validation.validate(SERVICE, svc({"type": "NodePort", "ports": [{"name": "a", "port": 80}]}))["spec"]
    spec["ports"].append({"name": "b", "port": 81, "targetPort": 81, "protocol": "TCP"})
    taken = set(range(30000, 32767))  # one free port left: 32767, then none
    with pytest.raises(errors.Invalid) as exc:
        services.allocate(spec, None, taken_node_ports=taken, taken_cluster_ips=set())
    assert "spec.ports[1].nodePort" in exc.value.message
    assert "no free" in exc.value.message or "range" in exc.value.message
    spec = validation.validate(SERVICE, svc({"type": "LoadBalancer", "ports": [{"port": 80}]}))["spec"]
    services.allocate(spec, None, taken_node_ports={30000, 30001}, taken_cluster_ips=set())
    port = spec["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767 and port not in (30000, 30001)
    assert ipaddress.ip_address(spec["clusterIP"]) in services.SERVICE_CIDR
    assert spec["clusterIPs"] == [spec["clusterIP"]]


def test_node_port_taken_by_another_service_is_422() -> None:
    spec = validation.validate(SERVICE, svc({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}))["spec"]
    with pytest.raises(errors.Invalid) as exc:
        services.allocate(spec, None, taken_node_ports={30080}, taken_cluster_ips=set())
    assert "spec.ports[0].nodePort" in exc.value.message
    assert "provided port is already allocated" in exc.value.message


def test_update_keeps_allocated_values() -> None:
    """An apply that omits nodePort and clusterIP keeps what was allocated (the apiserver's
    ``patchAllocatedValues``); a changed clusterIP is refused (immutable)."""
    old = validation.validate(SERVICE, svc({"type": "NodePort", "ports": [{"port": 80}]}))["spec"]
    services.allocate(old, None, taken_node_ports=set(), taken_cluster_ips=set())
    new = validation.validate(SERVICE, svc({"type": "NodePort", "ports": [{"port": 80}]}))["spec"]
    services.allocate(new, old, taken_node_ports=set(), taken_cluster_ips=set())
    assert new["ports"][0]["nodePort"] == old["ports"][0]["nodePort"]
    assert new["clusterIP"] == old["clusterIP"]
    changed = dict(new, clusterIP="127.1.9.9")
    with pytest.raises(errors.Invalid) as exc:
        services.allocate(changed, old, taken_node_ports=set(), taken_cluster_ips=set())
    assert "spec.clusterIP" in exc.value.message and "immutable" in exc.value.message


def test_endpointslice_validation() -> None:
    good = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "namespace": "default"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.2.0.5"], "conditions": {"ready": True}}],
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
    }
    validation.validate(SLICE, good)
    bad = dict(good, addressType="IPv6", endpoints=[{"addresses": ["nope"]}], ports=[{"port": 0}])
    found = invalid(SLICE, bad)
    assert "addressType" in found
    assert "endpoints[0].addresses[0]" in found
    assert "ports[0].port" in found


def test_table_columns_are_kubectls() -> None:
    from dockyard.apiserver import columns

    def cells(kind: str, obj: dict[str, Any]) -> dict[str, object]:
        return {c.name: c.cell(obj) for c in columns.columns(kind) if c.priority == 0}

    lb = {
        "metadata": {"name": "web"},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "127.1.0.9",
            "clusterIPs": ["127.1.0.9"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}],
        },
    }
    got = cells("Service", lb)
    assert list(got) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    assert got["External-IP"] == "<pending>" and got["Port(s)"] == "80:30080/TCP,81/TCP"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    assert cells("Service", lb)["External-IP"] == "127.0.0.1"
    es = {
        "metadata": {"name": "web-x"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [f"127.2.0.{i}"]} for i in range(5)],
        "ports": [{"port": 8080}],
    }
    got = cells("EndpointSlice", es)
    assert list(got) == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert got["Endpoints"] == "127.2.0.0,127.2.0.1,127.2.0.2 + 2 more..."
    assert cells("EndpointSlice", {"metadata": {"name": "e"}, "addressType": "IPv4"})["Endpoints"] == "<unset>"
